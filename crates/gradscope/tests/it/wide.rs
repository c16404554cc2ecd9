//! f64 runs: the same host-drawn network widened exactly, computed in f64 on the device and
//! read back in f64, against the f64 oracle.

use crate::common::oracle;
use crate::common::{
    DEEP, EVERY_ACTIVATION, HAND, activation_experiment, every_backend, gradscope, wgpu_or_skip,
};
use gradscope::backend::BackendKind;
use gradscope::config::Precision;
use gradscope::run::{self, CaseOutcome};
use gradscope_model::{Activation, ElementOp};

/// Every tensor of an f64 case beside the oracle's: (name, Burn's f64 values, the oracle's).
fn pairs64(case: &CaseOutcome, want: &oracle::OracleResult) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let mut v = vec![("loss".to_string(), vec![case.loss_f64], vec![want.loss])];
    let mut grads = case.grads.iter();
    for (l, (gw, gb)) in want.grads.iter().enumerate() {
        for (suffix, values) in [("weight", gw), ("bias", gb)] {
            let g = grads
                .next()
                .unwrap_or_else(|| panic!("no layers.{l}.{suffix}"));
            assert_eq!(g.name, format!("layers.{l}.{suffix}"));
            v.push((
                g.name.clone(),
                g.tensor.values_f64().into_owned(),
                values.clone(),
            ));
        }
    }
    for (l, d) in case.deltas.iter().enumerate() {
        v.push((
            format!("delta.layers.{l}"),
            d.values_f64().into_owned(),
            want.deltas[l].clone(),
        ));
    }
    v
}

/// ‖got − want‖₂ / ‖want‖₂ and the worst element error relative to the tensor's scale.
fn errors(got: &[f64], want: &[f64]) -> (f64, f64) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let (mut d, mut n, mut worst) = (0.0f64, 0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        d += (g - w).powi(2);
        n += w * w;
        worst = worst.max((g - w).abs() / scale);
    }
    ((d / n).sqrt(), worst)
}

/// What an f64 run is held to against the oracle, normwise and per element (relative to the
/// tensor's largest magnitude): about 450 units of f64's roundoff. Measured on 2026-12-03 over
/// every activation (depth 8, width 24, batch 5): at most 6.0e-15 normwise and 6.4e-15 per
/// element (identity, whose sums are the largest), 1.5e-15 for every other activation, on
/// ndarray, flex and wgpu (lavapipe) alike; an f32-accurate step anywhere shows as 1e-8 (Burn's
/// autodiff `div_scalar` backward took gelu there before `gelu_exact` multiplied in f64).
const F64_BOUND: f64 = 1e-13;

/// Every activation, and the losses that average, on each backend that has f64: within
/// [`F64_BOUND`] of the oracle where the device's element-wise operations pass the f64 check;
/// where they do not (wgpu's transcendentals through naga), the run is refused by that check,
/// never on ndarray or flex, whose f64 functions are Rust's and libm's.
#[test]
fn f64_runs_match_the_f64_oracle_on_every_backend() {
    let mut cases: Vec<gradscope::config::Experiment> = EVERY_ACTIVATION
        .iter()
        .map(|a| activation_experiment(a))
        .collect();
    for loss in [
        "\"mean_squares\"",
        "\"mean\"",
        "{ kind = \"mse\", target = 0.5 }",
    ] {
        let mut e = activation_experiment("\"tanh\"");
        e.loss = gradscope::config::parse(gradscope::config::Source {
            path: "loss.toml".into(),
            text: crate::common::activation_toml("\"tanh\"")
                .replace("loss = \"sum_squares\"", &format!("loss = {loss}")),
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .loss;
        cases.push(e);
    }
    for backend in every_backend("f64_runs_match_the_f64_oracle_on_every_backend") {
        let on = backend.kind.name();
        if let Err(e) = backend.check_precision(Precision::F64) {
            assert_eq!(backend.kind, BackendKind::Wgpu, "{on} computes in f64: {e}");
            eprintln!("{on}: no f64 on this adapter: {e}");
            continue;
        }
        for exp in &cases {
            let mut exp = exp.clone();
            exp.precision = Precision::F64;
            if let Err(e) = backend.check_f64_activations(&exp.model.activations) {
                assert_eq!(
                    backend.kind,
                    BackendKind::Wgpu,
                    "{on} refused {}: {e}",
                    exp.name
                );
                eprintln!("{on} {}: refused: {e}", exp.name);
                continue;
            }
            let outcome = run::execute(&exp, &backend).unwrap_or_else(|e| panic!("{e}"));
            let (mut nw, mut ew) = (0.0f64, 0.0f64);
            for case in &outcome.cases {
                let want = oracle::oracle(&outcome.weights, &case.input, exp.loss);
                for (name, got, want) in pairs64(case, &want) {
                    let (n, e) = errors(&got, &want);
                    assert!(
                        n <= F64_BOUND && e <= F64_BOUND,
                        "{on} {} / {name}: normwise {n:e}, element {e:e} against the f64 oracle",
                        exp.name
                    );
                    nw = nw.max(n);
                    ew = ew.max(e);
                }
            }
            eprintln!(
                "{on} {} ({}): normwise {nw:e}, element {ew:e}",
                exp.name,
                exp.loss.name()
            );
        }
    }
}

/// The f64 check of each element-wise operation: ndarray and flex are within a few ulps of the
/// host at every probe point (their f64 functions are Rust's and libm's); an operation the
/// device computes only in f32 would be off by about 2⁻²⁴ and is caught (shown by rounding
/// the host's own exact values to f32 and measuring them the same way).
#[test]
fn the_f64_operation_check_passes_the_cpu_backends_and_catches_f32_accuracy() {
    for kind in [BackendKind::Ndarray, BackendKind::Flex] {
        let b = gradscope::backend::open(kind, None).unwrap_or_else(|e| panic!("{e}"));
        for op in ElementOp::ALL {
            let e = b.f64_op_error(op);
            eprintln!("{} {}: {e:e}", kind.name(), op.name());
            assert!(e <= 1e-15, "{} {}: {e:e}", kind.name(), op.name());
        }
        let every = [Activation::Gelu, Activation::Softplus, Activation::Tanh];
        assert!(b.check_f64_activations(&every).is_ok());
    }
    for op in ElementOp::ALL {
        let worst = op.probe_points().iter().fold(0.0f64, |w, &p| {
            let exact = op.apply_f64(p);
            w.max((f64::from(exact as f32) - exact).abs() / exact.abs())
        });
        assert!(
            worst > gradscope::backend::F64_OP_TOLERANCE,
            "{}: {worst:e}",
            op.name()
        );
    }
    if let Some(w) = wgpu_or_skip("the_f64_operation_check_passes_the_cpu_backends") {
        for op in ElementOp::ALL {
            eprintln!("wgpu {}: {:e}", op.name(), w.f64_op_error(op));
        }
    }
}

/// `compare` as JSON: (exit code, report, stderr).
fn compare_json(d: &std::path::Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["compare"];
    all.extend(args);
    all.extend(["--format", "json"]);
    let o = gradscope(&all, d);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, err)
}

/// Underflow against f64, derived by hand. The hand network with kernels 1e-4 (f16:
/// 1.0002e-4): z_0 = 2e-4 (normal in f16, whose smallest normal is 2⁻¹⁴ ≈ 6.1e-5), the output
/// 2·z_0·w ≈ 4e-8, below 2⁻¹⁴ and so zero or subnormal in f16, and everything after it
/// smaller still: the loss out² ≈ 1.6e-15, δ_1 = 2·out ≈ 8e-8, ∂W_1 = a_0·δ_1 ≈ 1.6e-11 (2),
/// ∂b_1 = δ_1, δ_0 = w·δ_1 ≈ 8e-12 (2), ∂b_0 = δ_0 (2) and ∂W_0 = x·δ_0 (4). Every one is normal
/// in f64 (and in f32, whose smallest normal is 1.2e-38), so f16 underflows at 1, 1, 4, 2, 2,
/// 1, 2 and 1 values of the loss, the output, ∂W_0, ∂b_0, ∂W_1, ∂b_1, δ_0 and δ_1: 14 in all;
/// f32 at none. Underflow is a loss of range, not a disagreement: the exit status is 0.
#[test]
fn compare_against_f64_counts_each_underflow_derived_by_hand() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let tiny = HAND.replace("value = 0.5", "value = 1e-4");
    assert_ne!(tiny, HAND);
    std::fs::write(d.join("tiny.toml"), tiny).unwrap_or_else(|e| panic!("{e}"));
    let (code, r, err) = compare_json(d, &["tiny.toml", "--precision", "f64,f32,f16"]);
    assert_eq!(code, Some(0), "{r}{err}");
    let count = |backend: &str, tensor: &str| {
        r["tensors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["backend"] == backend && t["tensor"] == tensor)
            .and_then(|t| t["underflow"].as_u64())
            .unwrap_or_else(|| panic!("no underflow for {backend} {tensor}: {r}"))
    };
    let want = [
        ("loss", 1),
        ("output", 1),
        ("layers.0.weight", 4),
        ("layers.0.bias", 2),
        ("layers.1.weight", 2),
        ("layers.1.bias", 1),
        ("delta.layers.0", 2),
        ("delta.layers.1", 1),
    ];
    for (tensor, n) in want {
        assert_eq!(count("flex f16", tensor), n, "f16 {tensor}");
        assert_eq!(count("flex f32", tensor), 0, "f32 {tensor}");
    }
    // The table marks each, and the verdict adds them up.
    let o = gradscope(&["compare", "tiny.toml", "--precision", "f64,f32,f16"], d);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("uN: N values zero or subnormal"), "{text}");
    assert!(text.contains(" u4"), "{text}");
    assert!(
        text.contains(
            "14 values underflow (zero or subnormal where f64's are normal) in 8 tensors"
        ),
        "{text}"
    );
    // CSV: a column, empty where nothing was measured (f32 as the reference).
    let csv = |precisions: &str| {
        let o = gradscope(
            &[
                "compare",
                "tiny.toml",
                "--precision",
                precisions,
                "--format",
                "csv",
            ],
            d,
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let with = csv("f64,f16");
    let head: Vec<&str> = with.lines().next().unwrap_or("").split(',').collect();
    let at = head
        .iter()
        .position(|&c| c == "underflow")
        .unwrap_or_else(|| panic!("{with}"));
    let cells: Vec<String> = with
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(at).unwrap_or("?").to_string())
        .collect();
    assert_eq!(cells, ["1", "1", "4", "2", "2", "1", "2", "1"], "{with}");
    let without = csv("f32,f16");
    assert!(
        without
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(at) == Some("")),
        "{without}"
    );
}

/// An f64 value past f32's range is shown as itself. Kernels 1e20 (f32: w = 100000002004087734272):
/// z_0 = 2w and the output 2·z_0·w = 4w² ≈ 4.0e40, finite in f64 and inf in f32. The report keeps
/// the f64 value beside its f32 rounding (inf), and the table prints the f64 one.
#[test]
fn an_f64_reference_past_f32s_range_is_shown_as_itself() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let huge = HAND.replace("value = 0.5", "value = 1e20");
    std::fs::write(d.join("huge.toml"), huge).unwrap_or_else(|e| panic!("{e}"));
    let (code, r, err) = compare_json(d, &["huge.toml", "--precision", "f64,f32"]);
    assert_eq!(code, Some(4), "f32 overflows where f64 does not: {r}{err}");
    let out = r["tensors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["tensor"] == "output")
        .cloned()
        .unwrap_or_else(|| panic!("{r}"));
    let w = f64::from(1e20f32);
    let place = &out["places"][0];
    assert_eq!(place["reference"], "inf", "{place}");
    assert_eq!(place["value"], "inf", "{place}");
    let exact = place["reference_f64"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (exact - 4.0 * w * w).abs() <= 1e-15 * exact,
        "{exact:e} against {:e}",
        4.0 * w * w
    );
    assert!(
        place.get("value_f64").is_none(),
        "f32's inf is inf: {place}"
    );
    let o = gradscope(&["compare", "huge.toml", "--precision", "f64,f32"], d);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("[0, 0]: flex f64 4.0000e+40, flex f32 inf"),
        "{text}"
    );
}

/// Two backends in f64 agree within f64's own bound (f32's plain error scaled by 2⁻²⁹): the
/// deep tanh network on ndarray and flex, every tensor, exit 0, each bound under 1e-12.
/// wgpu joins where its f64 tanh passes the check; where it does not (lavapipe), compare
/// refuses before anything runs, naming the operation, its error and the file.
#[test]
fn f64_runs_compare_within_f64s_bound_and_an_inaccurate_device_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("deep.toml"), DEEP).unwrap_or_else(|e| panic!("{e}"));
    let (code, r, err) = compare_json(
        d,
        &[
            "deep.toml",
            "--precision",
            "f64",
            "--backend",
            "ndarray,flex",
        ],
    );
    assert_eq!(code, Some(0), "{r}{err}");
    for t in r["tensors"].as_array().into_iter().flatten() {
        let (n, b) = (
            t["normwise"].as_f64().unwrap_or(f64::NAN),
            t["bound"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(n <= b && b < 1e-12 && t["agree"] == true, "{t}");
    }
    let Some(w) = wgpu_or_skip("f64_runs_compare_within_f64s_bound") else {
        return;
    };
    if w.check_precision(Precision::F64).is_err() {
        eprintln!("this wgpu adapter has no f64");
        return;
    }
    let args = ["deep.toml", "--precision", "f64", "--backend", "flex,wgpu"];
    let (code, r, err) = compare_json(d, &args);
    if w.f64_op_error(ElementOp::Tanh) > gradscope::backend::F64_OP_TOLERANCE {
        assert_eq!(code, Some(2), "{r}{err}");
        for want in [
            "deep.toml: --precision f64 on wgpu",
            "tanh is off by",
            "needed by tanh",
        ] {
            assert!(err.contains(want), "no `{want}` in: {err}");
        }
    } else {
        assert_eq!(code, Some(0), "{r}{err}");
    }
}
