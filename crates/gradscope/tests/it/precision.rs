//! The `precision` axis from the command line: refusals before anything runs, each located
//! and saying what is supported; the same network in f16 as the f32 draw rounded once; every
//! output naming the precision.

use crate::common::{DEEP, HAND, gradscope, wgpu_or_skip};

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Each unsupported combination: exit 2, the file named, what is needed and what is there,
/// nothing written, no panic.
#[test]
fn unsupported_precisions_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let swept = format!("{HAND}[sweep]\ntrials = 2\nprecision = [\"f32\", \"f16\"]\n");
    std::fs::write(d.join("swept.toml"), swept).unwrap_or_else(|e| panic!("{e}"));
    let train = HAND.replace("seed = 0\n", "seed = 0\nprecision = \"f16\"\n")
        + "[train]\nsteps = 2\nlearning_rate = 0.1\n";
    std::fs::write(d.join("train.toml"), &train).unwrap_or_else(|e| panic!("{e}"));
    let table = HAND.replace(
        "seed = 0\n",
        "seed = 0\nprecision = { compute = \"f16\", master = \"f32\" }\n",
    );
    std::fs::write(d.join("table.toml"), table).unwrap_or_else(|e| panic!("{e}"));
    let mixed = |name: &str, precision: &str, loss_scale: &str| {
        let t =
            HAND.replace(
                "seed = 0\n",
                &format!("seed = 0\nprecision = {precision}\n"),
            ) + &format!("[train]\nsteps = 2\nlearning_rate = 0.1\nloss_scale = {loss_scale}\n");
        std::fs::write(d.join(name), t).unwrap_or_else(|e| panic!("{e}"));
    };
    let table = "{ compute = \"f16\", master = \"f32\" }";
    mixed(
        "master.toml",
        "{ compute = \"f16\", master = \"f16\" }",
        "\"none\"",
    );
    mixed(
        "growth.toml",
        table,
        "{ kind = \"dynamic\", growth_factor = 1.0 }",
    );
    mixed(
        "interval.toml",
        table,
        "{ kind = \"dynamic\", growth_interval = 2.5 }",
    );
    mixed("huge.toml", table, "{ kind = \"dynamic\", init = 1e39 }");
    mixed("static.toml", table, "\"static\"");
    mixed("dyn.toml", table, "\"dynamc\"");
    let mut cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "f16 on ndarray",
            vec!["run", "hand.toml", "--precision", "f16"],
            vec![
                "hand.toml: precision `f16` on ndarray",
                "f16 needs the flex backend",
                "ndarray has f64, f32",
            ],
        ),
        (
            "bf16 on ndarray",
            vec!["run", "hand.toml", "--set", "precision=\"bf16\""],
            vec![
                "precision `bf16` on ndarray",
                "bf16 needs the flex backend",
                "ndarray has f64, f32",
            ],
        ),
        (
            // Every point's precision is checked, not only the first's: the record directory
            // must not be made.
            "a swept f16 on ndarray",
            vec!["run", "swept.toml", "--out", "rec"],
            vec!["swept.toml: precision `f16` on ndarray"],
        ),
        (
            "training in f64",
            vec![
                "run",
                "train.toml",
                "--precision",
                "f64",
                "--backend",
                "flex",
            ],
            vec![
                "train.toml",
                "`precision`",
                "training in f64 is not supported: the weights, the optimiser's state and the update are kept in f32 on the device",
                "hint: train in f32 (or mixed precision); a run without [train], and a sweep of such runs, can be in f64",
            ],
        ),
        (
            "a typo",
            vec!["run", "hand.toml", "--set", "precision=\"fp16\""],
            vec![
                "unknown precision `fp16`, expected one of: f64, f32, bf16, f16",
                "did you mean `f16`?",
            ],
        ),
        (
            // Mixed precision runs, but f16 needs flex (or wgpu with shaderFloat16).
            "mixed f16 training on ndarray",
            vec!["run", "train.toml"],
            vec![
                "train.toml: precision `f16` on ndarray",
                "f16 needs the flex backend",
            ],
        ),
        (
            "master weights without training",
            vec!["run", "table.toml", "--backend", "flex"],
            vec![
                "table.toml:4:13: `precision`",
                "mixed precision, which belongs to training",
                "hint: write precision = \"f16\"",
            ],
        ),
        (
            "master weights in f16",
            vec!["run", "master.toml", "--backend", "flex"],
            vec![
                "master.toml:4:13: `precision.master`",
                "master weights in f16 are not supported",
            ],
        ),
        (
            "a loss scale's growth factor of 1",
            vec!["run", "growth.toml", "--backend", "flex"],
            vec![
                "`train.loss_scale`",
                "`growth_factor` must be a finite number > 1, found 1",
            ],
        ),
        (
            "a fractional growth interval",
            vec!["run", "interval.toml", "--backend", "flex"],
            vec![
                "`growth_interval` must be a whole number of steps",
                "found 2.5",
            ],
        ),
        (
            "a scale past f32's range",
            vec!["run", "huge.toml", "--backend", "flex"],
            vec![
                "`init` must be a number > 0 and finite in f32",
                "found 1e39",
            ],
        ),
        (
            "a static scale without its scale",
            vec!["run", "static.toml", "--backend", "flex"],
            vec!["`static` needs `scale`"],
        ),
        (
            "an unknown loss scale",
            vec!["run", "dyn.toml", "--backend", "flex"],
            vec!["unknown loss scaling `dynamc`", "did you mean `dynamic`?"],
        ),
        (
            "compare in f16",
            vec![
                "compare",
                "hand.toml",
                "--backend",
                "flex,wgpu",
                "--set",
                "precision=\"f16\"",
            ],
            vec![
                "compare's --tolerance is an f32 bound",
                "hint: compare it with its precision's own bound: --precision f32,f16",
            ],
        ),
        (
            "compare naming a precision twice",
            vec!["compare", "hand.toml", "--precision", "f16,f32,f16"],
            vec!["--precision names f16 twice"],
        ),
        (
            "compare with a misspelt precision",
            vec!["compare", "hand.toml", "--precision", "f32,fp16"],
            vec!["--precision fp16: unknown precision, expected one of: f64, f32, bf16, f16"],
        ),
        (
            "compare's two checks at once",
            vec![
                "compare",
                "hand.toml",
                "--precision",
                "f32,f16",
                "--check-backward",
            ],
            vec!["--check-backward compares the backward passes in the file's precision"],
        ),
        (
            "compare in f16 on ndarray",
            vec![
                "compare",
                "hand.toml",
                "--precision",
                "f32,f16",
                "--backend",
                "flex,ndarray",
            ],
            vec!["--precision f16 on ndarray", "f16 needs the flex backend"],
        ),
        (
            "compare of one run",
            vec!["compare", "hand.toml", "--precision", "f16"],
            vec!["compare needs at least two backends", "or two precisions"],
        ),
    ];
    cases.push((
        "bench's seed workload in f16",
        vec!["bench", "seed", "--backend", "flex", "--precision", "f16"],
        vec!["the seed workload runs the seed configs as they are, in f32"],
    ));
    cases.push((
        "bench in f16 on ndarray",
        vec!["bench", "throughput", "--precision", "f16"],
        vec!["--precision f16", "f16 needs the flex backend"],
    ));
    if wgpu_or_skip("unsupported_precisions_are_refused_before_anything_runs").is_some() {
        cases.push((
            // Mesa's lavapipe has f16 (shaderFloat16), and no wgpu adapter has bf16.
            "bf16 on wgpu",
            vec![
                "run",
                "hand.toml",
                "--backend",
                "wgpu",
                "--precision",
                "bf16",
            ],
            vec![
                "precision `bf16` on wgpu",
                "bf16 needs the flex backend (wgpu has no bf16)",
                "this wgpu adapter (",
            ],
        ));
    }
    for (what, args, wants) in cases {
        let o = gradscope(&args, d);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {e}");
        for want in wants {
            assert!(e.contains(want), "{what}: no `{want}` in {e}");
        }
        assert!(!e.contains("panicked"), "{what}: {e}");
        assert!(
            o.stdout.is_empty(),
            "{what}: printed {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(!d.join("rec").exists(), "{what}: a record was made");
    }
}

/// The hand network in f16 on flex: every weight (0.5), input (1) and value on the way (z_0 =
/// 1, out = 1, δ = 2, every gradient 1 or 2) is exact in f16, so the numbers are f32's; the
/// report, the markdown, the CSV and the dump name the precision; the headroom is f16's:
/// log2(65504 / 1) = 15.999 for z_0, log2(65504 / 2) = 14.999 for δ_1.
#[test]
fn a_run_in_f16_names_its_precision_everywhere_and_measures_f16s_range() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "hand.toml",
            "--backend",
            "flex",
            "--precision",
            "f16",
        ];
        args.extend_from_slice(extra);
        let o = gradscope(&args, d);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--format", "json"])).unwrap_or_else(|e| panic!("{e}"));
    let f32_json: serde_json::Value = {
        let o = gradscope(
            &["run", "hand.toml", "--backend", "flex", "--format", "json"],
            d,
        );
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(json["precision"], "f16");
    assert_eq!(f32_json["precision"], "f32");
    let (c16, c32) = (&json["cases"][0], &f32_json["cases"][0]);
    assert_eq!(c16["loss"], c32["loss"]);
    for p in 0..4 {
        assert_eq!(c16["params"][p]["l2"], c32["params"][p]["l2"], "param {p}");
    }
    let z0 = &c16["layers"][0]["z_range"];
    let want = (65504f64).log2();
    assert!(
        (z0["headroom_bits"].as_f64().unwrap_or(0.0) - want).abs() < 1e-5,
        "{z0}"
    );
    // 1 / 2⁻¹⁴: 14 bits above f16's smallest normal.
    assert_eq!(z0["floor_bits"], 14.0);
    let d1 = &c16["layers"][1]["delta_range"];
    assert!(
        (d1["headroom_bits"].as_f64().unwrap_or(0.0) - (want - 1.0)).abs() < 1e-5,
        "{d1}"
    );
    assert!(run(&[]).contains("precision   f16 (max finite 6.5504e+04"));
    assert!(run(&["--format", "markdown"]).contains("- precision: f16"));
    let csv = run(&["--format", "csv"]);
    let header = csv.lines().next().unwrap_or("");
    assert!(
        header.starts_with("experiment,backend,precision,"),
        "{header}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .unwrap_or("")
            .starts_with("hand,flex,f16,"),
        "{csv}"
    );
    run(&["--dump", "dump"]);
    let bytes = std::fs::read(d.join("dump/ones.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let meta = meta.metadata().clone().unwrap_or_default();
    assert_eq!(meta.get("precision").map(String::as_str), Some("f16"));
}

/// A sweep over precision runs each point in its own: f16 and bf16 round the f32 draw, so
/// their gradients differ from f32's, and f16 and bf16 differ from each other.
#[test]
fn a_sweep_over_precision_runs_each_point_in_its_precision() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let text = HAND
        .replace(
            "kernel_init = { kind = \"constant\", value = 0.5 }",
            "kernel_init = \"he_normal\"",
        )
        .replace("input = 2\nhidden = [2]", "input = 16\nhidden = [32, 32]")
        + "[sweep]\ntrials = 3\nprecision = [\"f32\", \"bf16\", \"f16\"]\n";
    std::fs::write(d.join("s.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(
        &[
            "run",
            "s.toml",
            "--backend",
            "flex",
            "--out",
            "rec",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    let points = v["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 3, "{v}");
    let ratios: Vec<String> = points
        .iter()
        .map(|p| p["ratio"]["median"].to_string())
        .collect();
    assert!(
        ratios[0] != ratios[1] && ratios[1] != ratios[2] && ratios[0] != ratios[2],
        "{ratios:?}"
    );
}

/// Theory's headroom against the measured one: a He-scale relu network (σ_w = 0.177 ≈ √(2/64)
/// ·1.0, width 128: χ ≈ 2, so z's largest entry gains about half a bit a layer) on inputs of
/// std 30, depth 24, in f16 on flex. Theory names the first z_l whose predicted largest
/// entry passes 65504, and the run's origin is the first z_l that overflowed: for three
/// seeds they are at most one layer apart, and where both are finite the predicted headroom
/// of z_l is within 1.5 bits of the measured one (finite width moves one network's q_l off
/// the mean field's by tens of percent: the theory issue's band).
#[test]
fn theory_predicts_where_f16_overflows_to_a_layer() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let text = "name = \"deep\"\ndescription = \"d\"\nseed = 1\nloss = \"sum_squares\"\n\
        [model]\ninput = 128\ndepth = 24\nwidth = 128\noutput = 1\nactivation = \"relu\"\n\
        kernel_init = { kind = \"normal\", std = 0.177 }\n\
        [[inputs]]\nname = \"x\"\nbatch = 16\ndistribution = { kind = \"normal\", std = 30.0 }\n";
    std::fs::write(d.join("deep.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    for seed in ["1", "2", "3"] {
        let set = format!("seed={seed}");
        let args = [
            "run",
            "deep.toml",
            "--backend",
            "flex",
            "--precision",
            "f16",
            "--format",
            "json",
            "--allow-nonfinite",
            "--set",
            &set,
        ];
        let o = gradscope(&args, d);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
        let case = &v["cases"][0];
        let predicted = &case["theory"]["leaves_range"];
        assert_eq!(predicted["direction"], "above", "seed {seed}: {predicted}");
        let measured = &v["origin"];
        assert_eq!(measured["kind"], "forward", "seed {seed}: {measured}");
        assert_eq!(measured["cause"], "overflow");
        let (p, m) = (
            predicted["layer"].as_i64().unwrap_or(-9),
            measured["layer"].as_i64().unwrap_or(99),
        );
        assert!(
            (p - m).abs() <= 1,
            "seed {seed}: theory z.layers.{p}, measured z.layers.{m}"
        );
        let layers = case["layers"].as_array().cloned().unwrap_or_default();
        for (l, layer) in layers.iter().enumerate().take(m as usize) {
            let got = layer["z_range"]["headroom_bits"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let z_max = case["theory"]["range"][l]["z_max"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let want = (65504.0 / z_max).log2();
            assert!(
                (got - want).abs() <= 1.5,
                "seed {seed}, z.layers.{l}: {got} against {want}"
            );
        }
    }
}

/// `show` writes the precision (a shown f16 config that dropped it would run back in f32),
/// and the shown file runs back on flex to the identical f16 report.
#[test]
fn show_keeps_the_precision_and_runs_back_to_the_same_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let shown = gradscope(&["show", "hand.toml", "--set", "precision=\"f16\""], d);
    assert_eq!(shown.status.code(), Some(0), "{}", err(&shown));
    let toml = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(toml.contains("precision = \"f16\""), "{toml}");
    std::fs::write(d.join("shown.toml"), &toml).unwrap_or_else(|e| panic!("{e}"));
    let json = |args: &[&str]| {
        let o = gradscope(args, d);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let flags = ["--backend", "flex", "--format", "json"];
    let original = json(&[&["run", "hand.toml", "--precision", "f16"][..], &flags].concat());
    let back = json(&[&["run", "shown.toml"][..], &flags].concat());
    assert!(original.contains("\"precision\":\"f16\""), "{original}");
    assert_eq!(original, back);
}

/// `compare --precision` as JSON: (exit code, report).
fn compare_json(d: &std::path::Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["compare"];
    all.extend(args);
    all.extend(["--format", "json"]);
    let o = gradscope(&all, d);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{}", err(&o)));
    (o.status.code(), v)
}

/// Each precision held to its own bound: every tensor of the deep network in bf16 and f16 on
/// flex (and f16 on wgpu where the adapter has it) within 8× the plain evaluations' errors,
/// each nonzero (16 bits do change the numbers), bf16's bound above f16's (2⁻⁸ against
/// 2⁻¹¹ roundoff), and the run names each backend with its precision.
#[test]
fn compare_holds_each_precision_to_its_bound() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("deep.toml"), DEEP).unwrap_or_else(|e| panic!("{e}"));
    let (code, r) = compare_json(d, &["deep.toml", "--precision", "f32,bf16,f16"]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["compared"], "precisions");
    let names: Vec<&str> = r["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["flex f32", "flex bf16", "flex f16"]);
    let tensors = r["tensors"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        tensors.len(),
        2 * (2 + 2 * 9 + 9),
        "29 tensors, two compared runs"
    );
    for pair in tensors.chunks(2) {
        for t in pair {
            let (n, b) = (
                t["normwise"].as_f64().unwrap_or(f64::NAN),
                t["bound"].as_f64().unwrap_or(0.0),
            );
            assert!(n > 0.0 && n <= b && t["agree"] == true, "{t}");
        }
        let bound = |t: &serde_json::Value| t["bound"].as_f64().unwrap_or(0.0);
        assert!(
            bound(&pair[0]) > bound(&pair[1]),
            "bf16's bound above f16's: {pair:?}"
        );
    }
    if let Some(b) = wgpu_or_skip("compare_holds_each_precision_to_its_bound")
        && b.check_precision(gradscope::config::Precision::F16).is_ok()
    {
        let (code, r) = compare_json(
            d,
            &[
                "deep.toml",
                "--precision",
                "f32,f16",
                "--backend",
                "flex,wgpu",
            ],
        );
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(r["backends"][3]["name"], "wgpu f16");
    }
}

/// The hand network with kernels 200: z_0 = 400 in both units, out = 2 · 400 · 200 = 160000,
/// past f16's 65504 (finite in f32). Every tensor from the output on holds a value finite in
/// f32 and not in f16: the output's one value, the loss, and back; exit 4.
#[test]
fn compare_names_where_f16_leaves_the_range_f32_holds() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let big = HAND.replace("value = 0.5", "value = 200.0");
    assert_ne!(big, HAND);
    std::fs::write(d.join("big.toml"), big).unwrap_or_else(|e| panic!("{e}"));
    let (code, r) = compare_json(d, &["big.toml", "--precision", "f32,f16"]);
    assert_eq!(code, Some(4), "{r}");
    let find = |name: &str| {
        r["tensors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tensor"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {r}"))
    };
    let out = find("output");
    assert_eq!(out["nonfinite_mismatches"], 1, "{out}");
    assert_eq!(out["places"][0]["reference"], 160000.0);
    assert_eq!(out["places"][0]["value"], "inf");
    assert_eq!(find("loss")["nonfinite_mismatches"], 1);
    // Before the output every value is finite in both: z_0 = 400 is exact in f16.
    assert_eq!(
        find("delta.layers.0")["nonfinite_mismatches"],
        2,
        "δ_0 = δ_1 · 200 · φ'(400): inf"
    );
    assert_eq!(r["agree"], false);
}

/// The bound bites: the hand network's values are exact in f16, so each tensor's bound is
/// 8 · (2⁻¹¹ + 2⁻²⁴) (the plain errors at their one-roundoff floor). A gradient moved by
/// 1e-3 of one of its four equal entries (normwise 5e-4) is within it; by 5 % (normwise
/// 0.025) it is not.
#[test]
fn compare_precisions_flags_an_error_past_rounding() {
    use gradscope::compare::{self, BackendInfo};
    use gradscope::config::Precision;
    let exp = gradscope::config::parse(gradscope::config::Source {
        path: "hand.toml".into(),
        text: HAND.into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let b = gradscope::backend::open(gradscope::backend::BackendKind::Ndarray, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope::run::execute(&exp, &b).unwrap_or_else(|e| panic!("{e}"));
    let info = |n: &str| BackendInfo {
        name: n.into(),
        adapter: None,
    };
    let bound = (8.0 * (2f64.powi(-11) + 2f64.powi(-24))) as f32;
    for (factor, agree) in [(1.0 + 1e-3, true), (1.05, false)] {
        let mut moved = o.clone();
        moved.cases[0].grads[0].tensor.data[0] *= factor;
        let runs = vec![
            (info("a f32"), Precision::F32, o.clone()),
            (info("b f16"), Precision::F16, moved),
        ];
        let r = compare::compare_precisions("hand", 0, &runs, exp.loss)
            .unwrap_or_else(|e| panic!("{e}"));
        let t = &r.tensors[2];
        assert_eq!(t.tensor, "layers.0.weight");
        assert_eq!(t.bound, Some(bound));
        let want = (factor - 1.0) / 2.0;
        let n = t.normwise.unwrap_or(f32::NAN);
        assert!((n - want).abs() <= 1e-3 * want, "{n} against {want}");
        assert_eq!(t.agree, agree, "{t:?}");
        assert_eq!(r.agree, agree);
    }
}

/// A sweep over precision measures where each trial leaves the range, derived by hand on the
/// hand network (constant kernels: every trial the same). Kernels 200: z_0 = 400 and
/// z_1 = 2·400·200 = 160000, past f16's 65504 (finite in f32): `z.layers.1 above` in f16,
/// nothing in f32. Kernels 1e-4: z_0 = 2e-4, in range (f16's smallest normal is 2⁻¹⁴ ≈
/// 6.1e-5), and z_1 ≈ 4e-8, under it: `z.layers.1 below` in f16; in f32 4e-8 is normal. The
/// summary counts both trials, and the markdown prints it beside theory's. A plain f32 sweep
/// keeps no z_l and records nothing of it.
#[test]
fn a_sweep_over_precision_measures_the_first_tensor_to_leave_the_range() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    for (name, kernel, want) in [
        ("big", "200.0", "z.layers.1 above"),
        ("tiny", "1e-4", "z.layers.1 below"),
    ] {
        let text = HAND.replace("value = 0.5", &format!("value = {kernel}"))
            + "[sweep]\ntrials = 2\nprecision = [\"f32\", \"f16\"]\n";
        std::fs::write(d.join(format!("{name}.toml")), text).unwrap_or_else(|e| panic!("{e}"));
        let o = gradscope(
            &[
                "run",
                &format!("{name}.toml"),
                "--backend",
                "flex",
                "--out",
                "rec",
                "--format",
                "json",
                "--allow-nonfinite",
            ],
            d,
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", err(&o)));
        let points = v["points"].as_array().cloned().unwrap_or_default();
        assert_eq!(points.len(), 2, "{v}");
        assert_eq!(
            points[0]["left_range"],
            serde_json::json!({"checked": 2, "left": 0, "first": null, "first_trials": 0}),
            "{name}: f32"
        );
        let l = &points[1]["left_range"];
        assert_eq!(
            (l["checked"].as_u64(), l["left"].as_u64()),
            (Some(2), Some(2)),
            "{name}: {l}"
        );
        let first = format!(
            "{} {}",
            l["first"]["tensor"].as_str().unwrap_or("?"),
            l["first"]["direction"].as_str().unwrap_or("?")
        );
        assert_eq!(first, want, "{name}: {l}");
        assert_eq!(l["first_trials"], 2);
        let dirs = crate::common::record_dirs_of(&d.join("rec"), "hand");
        let md = dirs
            .iter()
            .map(|r| crate::common::read_text(&r.join("report.md")))
            .find(|m| m.contains(&format!("{want} (2/2)")));
        assert!(
            md.is_some(),
            "{name}: no `{want} (2/2)` in any report.md of {dirs:?}"
        );
        // Under the table, in every form: the two f16 trials of the four, at point 1.
        let md = md.unwrap_or_default();
        assert!(
            md.contains("2 of 4 trials measured left their precision's range")
                && md.contains("at points 1;"),
            "{name}: {md}"
        );
    }
    // Without a precision axis (f32): no z_l kept, nothing recorded.
    let text = HAND.replace("value = 0.5", "value = 200.0") + "[sweep]\ntrials = 2\n";
    std::fs::write(d.join("plain.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(
        &["run", "plain.toml", "--out", "plain", "--format", "json"],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(v["points"][0].get("left_range").is_none(), "{v}");
    let dirs = crate::common::record_dirs_of(&d.join("plain"), "hand");
    let trials = crate::common::read_text(&dirs[0].join("trials.jsonl"));
    assert!(
        !trials.contains("range_checked") && !trials.contains("leaves_range"),
        "{trials}"
    );
}

/// A plain run says which tensor left the range first, measured as a sweep measures it, beside
/// theory's line: the hand network with kernels 200 in f16 holds z_1 = 160000 (derived above):
/// `z.layers.1 above`, in JSON (`cases[0].leaves_range`) and in the table; in f32 nothing
/// leaves, and the report carries no such field.
#[test]
fn a_plain_run_names_the_first_tensor_measured_to_leave_the_range() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let big = HAND.replace("value = 0.5", "value = 200.0");
    std::fs::write(d.join("big.toml"), big).unwrap_or_else(|e| panic!("{e}"));
    let json = |precision: &str| {
        let o = gradscope(
            &[
                "run",
                "big.toml",
                "--backend",
                "flex",
                "--precision",
                precision,
                "--format",
                "json",
                "--allow-nonfinite",
            ],
            d,
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", err(&o)))
    };
    let v = json("f16");
    assert_eq!(
        v["cases"][0]["leaves_range"],
        serde_json::json!({"layer": 1, "tensor": "z.layers.1", "direction": "above"}),
        "{v}"
    );
    assert!(json("f32")["cases"][0].get("leaves_range").is_none());
    let o = gradscope(
        &[
            "run",
            "big.toml",
            "--backend",
            "flex",
            "--precision",
            "f16",
            "--allow-nonfinite",
        ],
        d,
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("measured: z.layers.1 is the first to leave f16 above"),
        "{text}"
    );
}
