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

/// The hand network with kernels 1e20 (f32: w = 100000002004087734272), every value of which
/// is past f32's range from the output on: z_0 = a_0 = [2w, 2w], the output y = 2·(2w)·w =
/// 4w², the loss y² = 16w⁴ ≈ 1.6e81, δ_1 = 2y = 8w², ∂W_1 = a_0ᵀ·δ_1 = 16w³ (2 values),
/// ∂b_1 = 8w², δ_0 = W_1·δ_1 = 8w³ (2), ∂W_0 = xᵀ·δ_0 = 8w³ (4) and ∂b_0 = 8w³ (2). The
/// ratio ‖δ_0‖/‖δ_1‖ = √2·8w³ / 8w² = √2·w.
fn huge_hand(d: &std::path::Path) -> (f64, &'static str) {
    std::fs::write(
        d.join("huge.toml"),
        HAND.replace("value = 0.5", "value = 1e20"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (f64::from(1e20f32), "huge.toml")
}

/// `gradscope ARGS --out OUT` in `d`, which must exit 0: its stdout and the newest record
/// directory of experiment `name` under `out`.
fn run_to_record(
    d: &std::path::Path,
    args: &[&str],
    out: &str,
    name: &str,
) -> (String, std::path::PathBuf) {
    let out_dir = d.join(out);
    let out_s = out_dir.to_string_lossy().into_owned();
    let args = [args, &["--out", &out_s]].concat();
    let o = gradscope(&args, d);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let what = args.join(" ");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{what}: {text}{err}");
    let rec = crate::common::record_dirs_of(&out_dir, name)
        .pop()
        .unwrap_or_else(|| panic!("{what}: no record"));
    (text, rec)
}

/// Within a few units of f64's roundoff of a value derived by hand.
fn near(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no number"));
    assert!(
        (got - want).abs() <= 8.0 * f64::EPSILON * want.abs(),
        "{what}: {got:e}, by hand {want:e}"
    );
}

/// A run in f64 records every statistic in f64: values past f32's range are finite and shown
/// as themselves in the record, the table and the markdown, on ndarray and flex (and wgpu
/// where the adapter has f64: relu's operations pass the check there). The same file in f32
/// overflows at the output layer's z and exits 3.
#[test]
fn an_f64_run_records_values_past_f32s_range_as_themselves() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let (w, file) = huge_hand(d);
    let mut backends = vec!["ndarray", "flex"];
    if let Some(b) = wgpu_or_skip("an_f64_run_records_values_past_f32s_range_as_themselves")
        && b.check_precision(Precision::F64).is_ok()
    {
        backends.push("wgpu");
    }
    for backend in backends {
        let args = ["run", file, "--precision", "f64", "--backend", backend];
        let (text, rec) = run_to_record(d, &args, backend, "hand");
        let json = crate::common::read_text(&rec.join("report.json"));
        let r: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r["precision"], "f64");
        assert_eq!(r["all_finite"], true, "{backend}: {json}");
        let case = &r["cases"][0];
        let param = |name: &str, key: &str| {
            case["params"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name)
                .and_then(|p| p[key].as_f64())
        };
        let on = |what: &str| format!("{backend} {what}");
        near(case["loss"].as_f64(), 16.0 * w.powi(4), &on("loss"));
        near(
            param("layers.1.weight", "max"),
            16.0 * w.powi(3),
            &on("∂W_1 max"),
        );
        near(
            param("layers.1.weight", "l2"),
            2f64.sqrt() * 16.0 * w.powi(3),
            &on("‖∂W_1‖"),
        );
        near(param("layers.1.bias", "max_abs"), 8.0 * w * w, &on("∂b_1"));
        near(
            param("layers.0.weight", "l2"),
            2.0 * 8.0 * w.powi(3),
            &on("‖∂W_0‖"),
        );
        near(
            case["layers"][1]["delta_l2"].as_f64(),
            8.0 * w * w,
            &on("‖δ_1‖"),
        );
        near(case["delta_ratio"].as_f64(), 2f64.sqrt() * w, &on("ratio"));
        // The range is measured in f64: ∂W_1's largest value leaves log2(f64::MAX / 16w³)
        // bits of headroom.
        let room = case["params"][2]["range"]["headroom_bits"].as_f64();
        assert_eq!(
            room.map(|r| r as f32),
            Some((f64::MAX / (16.0 * w.powi(3))).log2() as f32),
            "{}",
            on("∂W_1 headroom")
        );
        // People see the f64 values too.
        let loss = gradscope_report::floats::fmt_sci64(16.0 * w.powi(4), 6);
        assert!(text.contains(&format!("loss {loss}")), "{backend}: {text}");
        let md = crate::common::read_text(&rec.join("report.md"));
        assert!(md.contains("f64"), "{md}");
        assert!(!md.contains("| inf"), "{backend}: {md}");
    }
    let o = gradscope(&["run", file, "--backend", "flex"], d);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(text.contains("z.layers.1"), "{text}");
    // The dump keeps the pass's tensors in f64 (the output 4w², past f32's range) and the
    // host draw, the weights and the input, in the f32 it was drawn in.
    let o = gradscope(&["run", file, "--precision", "f64", "--dump", "dump"], d);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(d.join("dump/ones.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let dtype = |name: &str| st.tensor(name).map(|t| t.dtype()).ok();
    assert_eq!(dtype("output"), Some(safetensors::Dtype::F64));
    assert_eq!(dtype("grad.layers.0.weight"), Some(safetensors::Dtype::F64));
    assert_eq!(dtype("layers.0.weight"), Some(safetensors::Dtype::F32));
    let out = st.tensor("output").unwrap_or_else(|e| panic!("{e}"));
    let value = out.data().try_into().map(f64::from_le_bytes).ok();
    near(value, 4.0 * w * w, "the dumped output");
}

/// A record of either width reads back as the values it was written from: report.json
/// through the schema and out again is the same bytes (f32's shortest forms, f64's), and
/// `gradscope report` rebuilds the same report.html, for the same network in f64 (finite,
/// past f32's range) and in f32 (inf and NaN).
#[test]
fn records_of_f64_and_f32_runs_read_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let (_, file) = huge_hand(d);
    for precision in ["f64", "f32"] {
        let args = ["run", file, "--precision", precision, "--backend", "flex"];
        let args = [&args[..], &["--allow-nonfinite"]].concat();
        let (_, rec) = run_to_record(d, &args, precision, "hand");
        let json = crate::common::read_text(&rec.join("report.json"));
        let back = gradscope_report::Report::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
        let again = serde_json::to_string(&back).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.trim_end(), json.trim_end(), "{precision}");
        let html = crate::common::read_text(&rec.join("report.html"));
        let rec_s = rec.to_string_lossy().into_owned();
        let o = gradscope(&["report", &rec_s], d);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            crate::common::read_text(&rec.join("report.html")),
            html,
            "{precision}"
        );
    }
}

/// A sweep over precision with f64 in it: the deep relu counterexample (100 hidden layers,
/// He uniform with gain 2, whose δ overflow f32 near layer 70), 2 trials per point. Every f32
/// trial is non-finite and every f64 one finite; the f64 trial lines name their precision and
/// read back as themselves, byte for byte; the summary's f64 point says so too.
#[test]
fn a_sweep_over_precision_runs_f64_points_with_f64_records() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let src = crate::common::read_text(
        &crate::common::configs_dir().join("counterexamples/relu-explodes-f32.toml"),
    );
    let sweep = format!("{src}\n[sweep]\ntrials = 2\nprecision = [\"f32\", \"f64\"]\n");
    std::fs::write(d.join("deep.toml"), sweep).unwrap_or_else(|e| panic!("{e}"));
    let args = ["run", "deep.toml", "--backend", "flex", "--allow-nonfinite"];
    let (_, rec) = run_to_record(d, &args, "out", "relu-explodes-f32");
    let lines = crate::common::read_text(&rec.join("trials.jsonl"));
    let mut seen = [0, 0];
    for line in lines.lines() {
        let t: gradscope_report::TrialRecord =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(serde_json::to_string(&t).unwrap_or_default(), line);
        match t.precision {
            Precision::F64 => {
                assert!(
                    !t.nonfinite && line.contains("\"precision\":\"f64\""),
                    "{line}"
                );
                assert!(t.delta_l2.iter().all(|v| v.is_finite()), "{line}");
                seen[1] += 1;
            }
            _ => {
                assert!(t.nonfinite && !line.contains("precision"), "{line}");
                // δ_0 holds inf in f32 (δ overflows from about layer 68 back): its norm is
                // not a number, not the 0 its finite part sums to.
                assert!(t.delta_l2[0].is_nan(), "{line}");
                seen[0] += 1;
            }
        }
    }
    assert_eq!(seen, [2, 2], "{lines}");
    let summary = crate::common::read_text(&rec.join("summary.json"));
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap_or_else(|e| panic!("{e}"));
    let points = s["points"].as_array().cloned().unwrap_or_default();
    let f64_point = points
        .iter()
        .find(|p| p["precision"] == "f64")
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(f64_point["nonfinite_trials"], 0, "{f64_point}");
    let f32_point = points
        .iter()
        .find(|p| p.get("precision").is_none())
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(f32_point["delta_l2"][0]["median"], "NaN", "{f32_point}");
    let back = gradscope_report::Report::from_json(&summary).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::to_string_pretty(&back)
            .unwrap_or_default()
            .trim_end(),
        summary.trim_end()
    );
}

/// f64 is refused, before anything runs and with the reason, where it cannot be what it says:
/// training (the weights, the optimiser and the update stay in f32), and, on a wgpu adapter
/// whose f64 transcendentals fail the check (lavapipe's tanh), a run that needs them.
#[test]
fn f64_training_and_an_inaccurate_devices_f64_are_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let train = crate::common::configs_dir().join("training/b-stable-cross-entropy-high-lr.toml");
    let train_s = train.to_string_lossy().into_owned();
    let o = gradscope(&["run", &train_s, "--precision", "f64"], d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "b-stable-cross-entropy-high-lr.toml",
        "training in f64 is not supported",
    ] {
        assert!(err.contains(want), "no `{want}` in: {err}");
    }
    let Some(w) = wgpu_or_skip("f64_training_and_an_inaccurate_devices_f64_are_refused") else {
        return;
    };
    if w.check_precision(Precision::F64).is_err()
        || w.f64_op_error(ElementOp::Tanh) <= gradscope::backend::F64_OP_TOLERANCE
    {
        eprintln!("this wgpu adapter has no f64, or an accurate f64 tanh: nothing to refuse");
        return;
    }
    std::fs::write(d.join("deep.toml"), DEEP).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(
        &[
            "run",
            "deep.toml",
            "--precision",
            "f64",
            "--backend",
            "wgpu",
        ],
        d,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in ["deep.toml: precision `f64` on wgpu", "tanh is off by"] {
        assert!(err.contains(want), "no `{want}` in: {err}");
    }
}

/// Theory's moments are second powers: in an f64 run of the relu counterexample at depth 600
/// (q_l grows 4× a layer), q_l itself passes f64's largest value while the entries (√q_l) are
/// near 2⁵¹², well inside f64. From that tensor on theory predicts nothing: the record names
/// it (`range_unknown_from`, z at the first layer whose q is not finite), claims no leaving
/// tensor, and the table says so instead of "stays within f64". In f32 the same q is judged
/// as it always was: past f32's range.
#[test]
fn theory_says_where_its_own_f64_moments_leave_f64() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let src = crate::common::configs_dir().join("counterexamples/relu-explodes-f32.toml");
    let src = src.to_string_lossy().into_owned();
    let base = ["run", &src, "--set", "model.depth=600", "--backend", "flex"];
    let args = [&base[..], &["--precision", "f64", "--allow-nonfinite"]].concat();
    let (text, rec) = run_to_record(d, &args, "out", "relu-explodes-f32");
    let json = crate::common::read_text(&rec.join("report.json"));
    let r: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let t = &r["cases"][0]["theory"];
    let q: Vec<f64> = t["q"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_f64().unwrap_or(f64::INFINITY))
        .collect();
    let first_inf = q.iter().position(|v| !v.is_finite());
    let first_inf = first_inf.unwrap_or_else(|| panic!("q stays finite: {t}"));
    // The layer is read from the record's own q (q_0 depends on the drawn input); that q
    // grows as derived by hand: relu under He uniform at gain 2 with zero biases gives
    // q_{l+1} = (2·gain²/n)·n·q_l/2 = 4·q_l, so the last finite one is past f64::MAX / 4.
    let growth = q[first_inf - 1] / q[first_inf - 2];
    assert!((growth - 4.0).abs() < 1e-12, "q grows 4× a layer: {growth}");
    assert!(q[first_inf - 1] > f64::MAX / 4.0, "{:e}", q[first_inf - 1]);
    let unknown = &t["range_unknown_from"];
    assert_eq!(unknown["tensor"], format!("z.layers.{first_inf}"), "{t}");
    assert_eq!(unknown["direction"], "above");
    assert!(t["leaves_range"].is_null(), "{t}");
    assert!(
        text.contains(&format!(
            "cannot follow the pass from z.layers.{first_inf} on"
        )),
        "{text}"
    );
    assert!(!text.contains("stays within f64"), "{text}");
    let o = gradscope(
        &[&base[..], &["--allow-nonfinite", "--format", "json"]].concat(),
        d,
    );
    let f32_json = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!f32_json.contains("range_unknown_from"), "{f32_json}");
}
