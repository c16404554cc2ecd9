//! The `gradscope` binary as a user runs it: the README's command, the report formats, exit
//! codes, and the message for each kind of bad input.

use crate::common;

use crate::common::{HAND, gradscope};

use std::process::Output;

fn workspace_root() -> std::path::PathBuf {
    common::configs_dir().join("..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn readme_command_runs_the_three_seed_experiments() {
    let o = gradscope(&["run", "--all"], &workspace_root());
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for name in ["seed-example-1", "seed-example-2", "seed-example-3"] {
        assert!(
            out.contains(&format!("experiment  {name}")),
            "{name} missing:\n{out}"
        );
    }
    assert_eq!(
        out.matches("verdict: every gradient value is finite")
            .count(),
        3,
        "{out}"
    );
    // Example 3 reports its three inputs with their shapes.
    for input in ["input x1 [1, 10]", "input x2 [1, 10]", "input x3 [3, 10]"] {
        assert!(out.contains(input), "{input} missing:\n{out}");
    }
    assert!(
        stderr(&o).is_empty(),
        "stderr should be quiet: {}",
        stderr(&o)
    );
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        widest <= 100,
        "the table must fit in 100 columns; widest line {widest}"
    );
}

#[test]
fn hand_computed_table_snapshot() {
    // Expected values derived in tests/it/gradients.rs (hand_derived_gradients_with_constant_weights).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "hand.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("hand_table", stdout(&o));
}

#[test]
fn json_has_the_documented_fields_and_is_byte_identical_across_runs() {
    let root = workspace_root();
    let a = gradscope(&["run", "--all", "--format", "json"], &root);
    let b = gradscope(&["run", "--all", "--format", "json"], &root);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(
        a.stdout, b.stdout,
        "same configs and seeds must give identical JSON"
    );
    let lines: Vec<&str> = std::str::from_utf8(&a.stdout)
        .unwrap_or("")
        .lines()
        .collect();
    assert_eq!(lines.len(), 3, "one JSON document per experiment");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["experiment", "backend", "seed", "cases", "all_finite"] {
            assert!(v.get(key).is_some(), "missing {key}: {line}");
        }
        assert_eq!(v["backend"], "ndarray");
        assert_eq!(v["all_finite"], true);
        for case in v["cases"].as_array().into_iter().flatten() {
            assert!(case["input"]["name"].is_string() && case["input"]["shape"].is_array());
            assert!(case["loss"].is_number());
            for p in case["params"].as_array().into_iter().flatten() {
                for key in ["name", "shape", "max", "min", "nonfinite"] {
                    assert!(p.get(key).is_some(), "param lacks {key}: {p}");
                }
                assert!(p["max"].as_f64() >= p["min"].as_f64());
            }
        }
    }
}

#[test]
fn hand_json_values_are_the_derived_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "hand.toml", "--format", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    let params = &v["cases"][0]["params"];
    // Derivation in tests/it/gradients.rs: ∂L/∂W1 = 1, ∂L/∂b1 = 1, ∂L/∂W2 = 2, ∂L/∂b2 = 2, loss 1.
    assert_eq!(v["cases"][0]["loss"], 1.0);
    let got: Vec<(String, f64, f64)> = params
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["max"].as_f64().unwrap_or(0.0),
                p["min"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("layers.0.weight".into(), 1.0, 1.0),
            ("layers.0.bias".into(), 1.0, 1.0),
            ("layers.1.weight".into(), 2.0, 2.0),
            ("layers.1.bias".into(), 2.0, 2.0),
        ]
    );
}

#[test]
fn overflowing_gradients_exit_3_and_are_shown_as_not_finite() {
    // Kernels of 1e20 on a width-10 stack: z1 = 10·1e20 = 1e21, z2 ≈ 10·1e20·1e21 = 1e42 > f32::MAX.
    let text = HAND
        .replace("value = 0.5", "value = 1e20")
        .replace("input = 2\nhidden = [2]", "input = 10\nhidden = [10, 10]");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("boom.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "boom.toml"], dir.path());
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("verdict: NOT FINITE"), "{out}");
    // A gradient holding inf or NaN: its row marked, its norm not shown as a number.
    assert!(
        out.lines()
            .any(|l| l.contains("layers.") && l.ends_with(" <-") && l.contains("non-finite")),
        "{out}"
    );
    assert!(out.contains("inf") || out.contains("NaN"), "{out}");
    // δ overflowed too, so the flow ratio is undefined, never read as "vanishing".
    assert!(
        out.contains("(undefined)") && !out.contains("VANISHING"),
        "{out}"
    );
    let j = gradscope(
        &["run", "boom.toml", "--format", "json", "--allow-nonfinite"],
        dir.path(),
    );
    assert_eq!(j.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["all_finite"], false);
    // Input ten ones, every kernel entry 1e20, biases 0: z_0 = 10·1e20 = 1e21 is finite,
    // z_1 = 10·1e20·1e21 = 1e42 overflows f32 (max 3.4e38) in all 10 units of layer 1.
    assert_eq!(
        v["origin"],
        serde_json::json!({"kind": "forward", "step": null, "case": "ones", "layer": 1,
                           "tensor": "z.layers.1", "count": 10,
                           "rows": {"affected": 1, "of": 1}, "cause": "overflow"})
    );
    assert!(
        out.contains("born in the forward pass: z.layers.1 of case ones (10 values): overflow"),
        "{out}"
    );
    let counted: u64 = v["cases"][0]["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["nonfinite"].as_u64().unwrap_or(0))
        .sum();
    assert!(counted > 0, "{v}");
}

#[test]
fn backend_flag_selects_flex() {
    let o = gradscope(
        &[
            "run",
            "configs/01-seed-single-hidden.toml",
            "--backend",
            "flex",
            "--format",
            "json",
        ],
        &workspace_root(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["backend"], "flex");
}

#[test]
fn usage_errors_exit_2() {
    let root = workspace_root();
    for args in [
        &["run"][..],
        &["run", "--backend", "tpu", "x.toml"],
        &["frobnicate"],
        &["run", "--format", "xml", "--all"],
    ] {
        let o = gradscope(args, &root);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    let o = gradscope(
        &[
            "run",
            "configs/01-seed-single-hidden.toml",
            "--device",
            "cpu",
        ],
        &root,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: --device selects a wgpu adapter; backend `ndarray` has none\n"
    );
}

/// Bad configs and the message each gets. Each is a valid seed config with one edit.
const BAD: &[(&str, &str, &str)] = &[
    ("syntax", "seed = 0", "seed = = 0"),
    ("unterminated_string", "name = \"hand\"", "name = \"hand"),
    ("unknown_top_key", "seed = 0", "seed = 0\nsede = 3"),
    (
        "unknown_model_key",
        "output = 1",
        "output = 1\nactivaton = \"relu\"",
    ),
    ("unknown_input_key", "batch = 1", "batch = 1\nbacth = 2"),
    ("wrong_type_seed", "seed = 0", "seed = \"zero\""),
    ("wrong_type_hidden", "hidden = [2]", "hidden = 2"),
    ("wrong_type_width", "hidden = [2]", "hidden = [\"2\"]"),
    ("missing_name", "name = \"hand\"\n", ""),
    ("missing_model_input", "input = 2\n", ""),
    (
        "missing_inputs",
        "[[inputs]]\nname = \"ones\"\nbatch = 1\ndistribution = { kind = \"constant\", value = 1.0 }\n",
        "",
    ),
    ("missing_hidden", "hidden = [2]\n", ""),
    ("zero_width", "hidden = [2]", "hidden = [2, 0]"),
    ("negative_input", "input = 2", "input = -3"),
    ("zero_batch", "batch = 1", "batch = 0"),
    ("negative_seed", "seed = 0", "seed = -1"),
    (
        "hidden_and_depth",
        "hidden = [2]",
        "hidden = [2]\ndepth = 3\nwidth = 4",
    ),
    ("depth_without_width", "hidden = [2]", "depth = 3"),
    (
        "unknown_activation",
        "output = 1",
        "output = 1\nactivation = \"rleu\"",
    ),
    (
        "unknown_initialiser",
        "kind = \"constant\", value = 0.5",
        "kind = \"glorot_uniformm\"",
    ),
    (
        "unknown_distribution",
        "kind = \"constant\", value = 1.0",
        "kind = \"gaussian\"",
    ),
    ("unknown_loss", "seed = 0", "seed = 0\nloss = \"hinge\""),
    (
        "unknown_backend",
        "seed = 0",
        "seed = 0\nbackend = \"cuda\"",
    ),
    (
        "param_not_taken",
        "kind = \"constant\", value = 1.0",
        "kind = \"normal\", value = 1.0",
    ),
    (
        "unknown_param",
        "kind = \"constant\", value = 1.0",
        "kind = \"normal\", sdt = 1.0",
    ),
    (
        "negative_std",
        "kind = \"constant\", value = 1.0",
        "kind = \"normal\", std = -1.0",
    ),
    (
        "nan_std",
        "kind = \"constant\", value = 1.0",
        "kind = \"normal\", std = nan",
    ),
    (
        "inf_mean",
        "kind = \"constant\", value = 1.0",
        "kind = \"normal\", mean = inf",
    ),
    (
        "low_not_below_high",
        "kind = \"constant\", value = 1.0",
        "kind = \"uniform\", low = 1.0, high = 1.0",
    ),
    (
        "constant_without_value",
        "kind = \"constant\", value = 1.0",
        "kind = \"constant\"",
    ),
    (
        "duplicate_case",
        "distribution = { kind = \"constant\", value = 1.0 }\n",
        "distribution = \"normal\"\n[[inputs]]\nname = \"ones\"\nbatch = 2\ndistribution = \"normal\"\n",
    ),
    ("bad_name", "name = \"hand\"", "name = \"my experiment\""),
    (
        "empty_description",
        "description = \"Hand-computable: constant weights 0.5, zero biases, input of ones\"",
        "description = \"\"",
    ),
    ("zero_gain", "output = 1", "output = 1\ngain = 0.0"),
    (
        "unknown_table",
        "[[inputs]]\nname = \"ones\"\nbatch = 1\ndistribution = { kind = \"constant\", value = 1.0 }\n",
        "[[inputs_]]\n",
    ),
];

#[test]
fn bad_configs_exit_2_with_located_messages() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut all = String::new();
    for (name, from, to) in BAD {
        assert!(HAND.contains(from), "{name}: the edit does not apply");
        let text = HAND.replacen(from, to, 1);
        let file = format!("{name}.toml");
        std::fs::write(dir.path().join(&file), text).unwrap_or_else(|e| panic!("{e}"));
        let o = gradscope(&["run", &file], dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.starts_with(&format!("error: {file}")), "{name}: {err}");
        assert!(
            !err.contains("panicked") && o.stdout.is_empty(),
            "{name}: {err}"
        );
        all.push_str(&format!("--- {name}\n{err}"));
    }
    insta::assert_snapshot!("bad_configs", all);
}

#[test]
fn unreadable_empty_non_utf8_and_caseless_files_exit_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("empty.toml"), "  \n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("latin1.toml"), b"name = \"caf\xe9\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let caseless = HAND.replace("seed = 0\n", "seed = 0\ninputs = []\n");
    let caseless = &caseless[..caseless.find("[[inputs]]").unwrap_or(caseless.len())];
    std::fs::write(dir.path().join("no_cases.toml"), caseless).unwrap_or_else(|e| panic!("{e}"));
    let mut all = String::new();
    for file in ["missing.toml", "empty.toml", "latin1.toml", "no_cases.toml"] {
        let o = gradscope(&["run", file], dir.path());
        assert_eq!(o.status.code(), Some(2), "{file}");
        all.push_str(&format!("--- {file}\n{}", stderr(&o)));
    }
    insta::assert_snapshot!("unreadable_files", all);
}

#[test]
fn hand_computed_markdown_and_csv_snapshots() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let md = gradscope(&["run", "hand.toml", "--format", "markdown"], dir.path());
    assert_eq!(md.status.code(), Some(0), "{}", stderr(&md));
    insta::assert_snapshot!("hand_markdown", stdout(&md));
    let csv = gradscope(&["run", "hand.toml", "--format", "csv"], dir.path());
    let layers = gradscope(
        &["run", "hand.toml", "--format", "csv", "--layers"],
        dir.path(),
    );
    insta::assert_snapshot!("hand_csv", format!("{}{}", stdout(&csv), stdout(&layers)));
    let bad = gradscope(&["run", "hand.toml", "--layers"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
}

/// The JSON schema the README documents, checked field by field: name → JSON type.
fn check_schema(v: &serde_json::Value) {
    use serde_json::Value::{Array, Bool, Null, Number, Object, String as Str};
    let is_float = |x: &serde_json::Value| {
        matches!(x, Number(_)) || matches!(x.as_str(), Some("NaN" | "inf" | "-inf"))
    };
    let obj = |x: &serde_json::Value, keys: &[&str]| {
        let Object(m) = x else {
            panic!("not an object: {x}")
        };
        let mut got: Vec<&str> = m.keys().map(String::as_str).collect();
        got.sort();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(got, want, "fields of {x}");
    };
    obj(
        v,
        &[
            "kind",
            "schema_version",
            "experiment",
            "description",
            "backend",
            "adapter",
            "precision",
            "seed",
            "loss",
            "thresholds",
            "cases",
            "all_finite",
            "origin",
        ],
    );
    assert_eq!(v["kind"], "run", "a plain run's report is kind \"run\"");
    assert_eq!(
        v["schema_version"], 2,
        "the schema version this build writes"
    );
    assert!(
        matches!(v["experiment"], Str(_))
            && matches!(v["backend"], Str(_))
            && matches!(v["loss"], Str(_))
    );
    assert!(matches!(v["adapter"], Str(_) | Null));
    match &v["origin"] {
        Null => assert_eq!(v["all_finite"], true, "no origin, so every value is finite"),
        o => obj(
            o,
            &[
                "kind", "step", "case", "layer", "tensor", "count", "rows", "cause",
            ],
        ),
    }
    assert!(
        matches!(
            v["precision"].as_str(),
            Some("f64" | "f32" | "bf16" | "f16")
        ),
        "{}",
        v["precision"]
    );
    // A range: the magnitudes, headroom and floor in bits (floats, or null where there is no
    // nonzero value), and three counts.
    let range = |r: &serde_json::Value| {
        obj(
            r,
            &[
                "max_abs",
                "min_abs",
                "headroom_bits",
                "floor_bits",
                "zeros",
                "subnormal",
                "overflow",
                "nan",
            ],
        );
        assert!(
            is_float(&r["max_abs"]) && is_float(&r["headroom_bits"]),
            "{r}"
        );
        for k in ["min_abs", "floor_bits"] {
            assert!(r[k].is_null() || is_float(&r[k]), "{k}: {r}");
        }
        for k in ["zeros", "subnormal", "overflow", "nan"] {
            assert!(r[k].is_u64(), "{k}: {r}");
        }
    };
    assert!(v["seed"].is_u64() && matches!(v["all_finite"], Bool(_)));
    obj(&v["thresholds"], &["vanishing", "exploding"]);
    let Array(cases) = &v["cases"] else {
        panic!("cases")
    };
    for c in cases {
        let mut fields = vec![
            "input",
            "loss",
            "params",
            "layers",
            "delta_ratio",
            "hidden_rate",
            "dead_layers",
            "zero_gradients",
            "flow",
            "theory",
        ];
        // Present where a tensor left the precision's range (measured), absent otherwise.
        if let Some(l) = c.get("leaves_range") {
            fields.push("leaves_range");
            obj(l, &["layer", "tensor", "direction"]);
            assert!(
                matches!(l["direction"].as_str(), Some("above" | "below")),
                "{l}"
            );
        }
        obj(c, &fields);
        match &c["theory"] {
            Null => {}
            t => {
                obj(
                    t,
                    &[
                        "q",
                        "chi",
                        "delta_ratio",
                        "phase",
                        "q_star",
                        "chi_star",
                        "depth_scales",
                        "hidden_rate",
                        "ratio_quartiles",
                        "applies",
                        "caveats",
                        "range",
                        "leaves_range",
                    ],
                );
                for r in t["range"].as_array().into_iter().flatten() {
                    obj(r, &["layer", "z_rms", "z_max", "delta_rms", "delta_max"]);
                }
                if !t["leaves_range"].is_null() {
                    obj(&t["leaves_range"], &["layer", "tensor", "direction"]);
                }
                assert!(matches!(t["applies"], Bool(_)) && matches!(t["caveats"], Array(_)));
                if !t["depth_scales"].is_null() {
                    obj(&t["depth_scales"], &["xi_q", "xi_c"]);
                }
                let layers = c["layers"].as_array().map_or(0, Vec::len);
                assert_eq!(
                    t["q"].as_array().map(Vec::len),
                    Some(layers),
                    "one q per layer"
                );
                assert_eq!(
                    t["chi"].as_array().map(Vec::len),
                    Some(layers - 1),
                    "one chi per layer after the first"
                );
                assert!(
                    matches!(
                        t["phase"].as_str(),
                        Some("ordered" | "critical" | "chaotic")
                    ) || t["phase"].is_null()
                );
            }
        }
        obj(&c["input"], &["name", "shape", "distribution"]);
        assert!(is_float(&c["loss"]) && is_float(&c["delta_ratio"]) && is_float(&c["hidden_rate"]));
        assert!(matches!(
            c["flow"].as_str(),
            Some("ok" | "vanishing" | "exploding" | "undefined")
        ));
        for p in c["params"].as_array().into_iter().flatten() {
            obj(
                p,
                &[
                    "name",
                    "shape",
                    "max",
                    "min",
                    "nonfinite",
                    "max_abs",
                    "l2",
                    "mean_abs",
                    "std",
                    "zero_fraction",
                    "nan",
                    "pos_inf",
                    "neg_inf",
                    "range",
                ],
            );
            range(&p["range"]);
            for k in [
                "max",
                "min",
                "max_abs",
                "l2",
                "mean_abs",
                "std",
                "zero_fraction",
            ] {
                assert!(is_float(&p[k]), "{k}: {p}");
            }
            for k in ["nonfinite", "nan", "pos_inf", "neg_inf"] {
                assert!(p[k].is_u64(), "{k}: {p}");
            }
        }
        for l in c["layers"].as_array().into_iter().flatten() {
            obj(
                l,
                &[
                    "layer",
                    "width",
                    "delta_l2",
                    "delta_max_abs",
                    "delta_nonfinite",
                    "dead_fraction",
                    "activation_mean",
                    "activation_std",
                    "activation_nonfinite",
                    "z_range",
                    "a_range",
                    "delta_range",
                ],
            );
            range(&l["z_range"]);
            range(&l["delta_range"]);
            if !l["a_range"].is_null() {
                range(&l["a_range"]);
            }
        }
    }
}

#[test]
fn json_follows_the_documented_schema_for_finite_and_overflowing_runs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("hand.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let boom = HAND.replace("value = 0.5", "value = 1e20").replace(
        "input = 2\nhidden = [2]",
        "input = 10\nhidden = [10, 10, 10, 10]",
    );
    std::fs::write(dir.path().join("boom.toml"), boom).unwrap_or_else(|e| panic!("{e}"));
    for file in ["hand.toml", "boom.toml"] {
        let o = gradscope(
            &["run", file, "--format", "json", "--allow-nonfinite"],
            dir.path(),
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
        check_schema(&v);
    }
}

#[test]
fn bench_runs_its_workloads_and_refuses_unknown_ones() {
    let root = workspace_root();
    let o = gradscope(&["bench", "seed", "sweep", "--repeat", "1"], &root);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("three seed experiments") && out.contains("trials/s"),
        "{out}"
    );
    let o = gradscope(&["bench", "warp-speed"], &root);
    assert_eq!(o.status.code(), Some(2));
    // The training workload in mixed precision: the header names f16, the line its steps.
    let args = [
        "bench",
        "train",
        "--backend",
        "flex",
        "--precision",
        "f16",
        "--repeat",
        "1",
    ];
    let o = gradscope(&args, &root);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("precision f16") && out.contains("steps/s  1000 SGD steps"),
        "{out}"
    );
}

/// A depth-6 gelu network with non-zero biases: rounding differs between ndarray's and flex's
/// matrix kernels, so the two backends agree closely but not bit for bit.
const GELU: &str = r#"name = "gelu-deep"
description = "Depth 6, width 32, gelu, he_normal, normal biases"
seed = 3
[model]
input = 16
depth = 6
width = 32
output = 2
activation = "gelu"
kernel_init = "he_normal"
bias_init = { kind = "normal", std = 0.2 }
[[inputs]]
name = "x"
batch = 4
distribution = "normal"
"#;

/// Issue 11: `compare` runs one experiment on several backends from the same weights and
/// inputs and reports, per tensor, the largest relative difference from the first backend;
/// every format reads back; past `--tolerance` the exit code is 4.
#[test]
fn compare_reports_per_tensor_differences_in_every_format() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("g.toml"), GELU).unwrap_or_else(|e| panic!("{e}"));
    let args = ["compare", "g.toml", "--backend", "ndarray,flex"];
    let o = gradscope(&[&args[..], &["--format", "json"]].concat(), dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["kind"], "compare");
    assert_eq!(v["backends"][0]["name"], "ndarray");
    assert_eq!(v["backends"][1]["name"], "flex");
    assert_eq!(v["agree"], true);
    // One case: loss, output, 7 layers x (weight, bias), 7 δ.
    let tensors = v["tensors"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tensors
        .iter()
        .filter_map(|t| t["tensor"].as_str())
        .collect();
    assert_eq!(names.len(), 2 + 14 + 7, "{names:?}");
    assert_eq!(names[..3], ["loss", "output", "layers.0.weight"]);
    assert_eq!(names[names.len() - 1], "delta.layers.6");
    // The two backends use different matrix kernels: not bit-identical, but within the default
    // 1e-4 (measured 2.4e-5: the f32 rounding of a depth-6 network in this measure, where each
    // backend is within 3.5e-5 of the f64 oracle, tests/it/gradients.rs).
    let worst = v["max_rel_diff"].as_f64().unwrap_or(f64::NAN);
    assert!(
        worst > 0.0 && worst < 1e-4,
        "largest relative difference {worst}"
    );

    // Past the tolerance: exit 4, the table marks the tensors and the verdict says so.
    let o = gradscope(&[&args[..], &["--tolerance", "1e-12"]].concat(), dir.path());
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("<-") && table.contains("BACKENDS DISAGREE"),
        "{table}"
    );
    assert!(
        table.contains("reference   ndarray") && table.contains("delta.layers.6"),
        "{table}"
    );

    // CSV: one header, a row per tensor, read back by the csv crate.
    let o = gradscope(&[&args[..], &["--format", "csv"]].concat(), dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut r = csv::Reader::from_reader(o.stdout.as_slice());
    let header: Vec<String> = r
        .headers()
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header[..4], ["experiment", "seed", "case", "tensor"]);
    assert_eq!(r.records().count(), names.len());

    let o = gradscope(&[&args[..], &["--format", "markdown"]].concat(), dir.path());
    assert!(
        stdout(&o).contains("| case | tensor | flex |"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn compare_refuses_bad_input_before_running() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("g.toml"), GELU).unwrap_or_else(|e| panic!("{e}"));
    let sweep = format!("{GELU}[sweep]\ntrials = 2\n");
    std::fs::write(dir.path().join("s.toml"), sweep).unwrap_or_else(|e| panic!("{e}"));
    let training = workspace_root().join("configs/training/a-naive-cross-entropy-high-lr.toml");
    std::fs::copy(training, dir.path().join("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    for (args, says) in [
        (
            vec!["g.toml", "--backend", "ndarray"],
            "at least two backends",
        ),
        (vec!["g.toml", "--backend", "ndarray,ndarray"], "twice"),
        (
            vec!["g.toml", "--backend", "ndarray,flex", "--tolerance=-1"],
            "--tolerance",
        ),
        (
            vec!["g.toml", "--backend", "ndarray,flex", "--tolerance", "NaN"],
            "--tolerance",
        ),
        (
            vec!["g.toml", "--backend", "ndarray,flex", "--device", "cpu"],
            "--device",
        ),
        (vec!["s.toml", "--backend", "ndarray,flex"], "sweep"),
        // A training config reached `unreachable!` here (exit 1, "internal error").
        (
            vec!["t.toml", "--backend", "ndarray,flex"],
            "this file is a training run",
        ),
        (vec!["g.toml", "--backend", "ndarray,cuda"], "invalid value"),
    ] {
        let o = gradscope(&[&["compare"][..], &args].concat(), dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} printed a report");
    }
}

/// A reader that goes away (`gradscope run ... | head`) ends the run quietly with exit 0, as
/// ripgrep does, instead of an error about a broken pipe.
#[test]
fn a_closed_stdout_pipe_ends_quietly_with_exit_0() {
    // 30 copies of the three seed configs print about 200 KB of tables, more than a pipe holds
    // (64 KiB on Linux): once `head` has read its 100 bytes and exited, a write fails (EPIPE).
    let bin = env!("CARGO_BIN_EXE_gradscope");
    let script = format!(
        "{bin} run {}--no-record | head -c 100 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        "configs ".repeat(30)
    );
    let o = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash: {e}"));
    assert_eq!(
        stdout(&o),
        "0\n",
        "gradscope's exit code; stderr: {}",
        stderr(&o)
    );
    assert_eq!(stderr(&o), "", "nothing to say about a closed pipe");
}

/// A finite verdict is not a healthy one: with kernels of −0.5 the hand network's hidden
/// units see z = 2·(−0.5)·1 = −1 < 0 and ReLU gives 0 for every example, so layer 0 is dead;
/// δ_0 = 0 there, so ∂L/∂W_0 = xᵀδ_0 and ∂L/∂b_0 = δ_0 are exactly 0, as is ∂L/∂W_1 = a_0ᵀδ_1
/// (a_0 = 0). Only the output bias learns (∂L/∂b_1 = 2·z_1 = 0 too: z_1 = 0·W_1 + 0 = 0).
#[test]
fn a_dead_layer_and_zero_gradients_are_named_in_every_verdict() {
    let text = HAND.replace("value = 0.5", "value = -0.5");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("dead.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "dead.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "finite: {}", stderr(&o));
    let out = stdout(&o);
    let verdict = out
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        verdict.contains("every gradient value is finite")
            && verdict.contains("DEAD (every unit 0 for the whole batch): layer 0 (case ones)")
            && verdict.contains(
                "ZERO GRADIENT (exactly 0 everywhere): layers.0.weight, layers.0.bias, layers.1.weight, layers.1.bias (case ones)"
            ),
        "{verdict}"
    );
    let j = gradscope(&["run", "dead.toml", "--format", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["cases"][0]["dead_layers"], serde_json::json!([0]));
    assert_eq!(
        v["cases"][0]["zero_gradients"].as_array().map(Vec::len),
        Some(4)
    );
    let md = stdout(&gradscope(
        &["run", "dead.toml", "--format", "markdown"],
        dir.path(),
    ));
    assert!(
        md.contains("DEAD (every unit 0 for the whole batch): layer 0"),
        "{md}"
    );
}

/// `compare --check-backward`: on each backend, Burn's autodiff against the backward pass
/// written out (what training runs). On the seed's deep network they agree (the largest
/// relative difference is at most 1e-4, exit 0), one report per backend. On the f32
/// counterexample, where δ overflows, they agree too, non-finite values included: relu's
/// written-out backward is a mask, as autodiff's (inf meets a dead unit as 0, not inf·0 =
/// NaN). They are two computations, not one: with gelu (autodiff's erf-based derivative
/// against the written-out Φ(x) + x·φ(x)) they differ by a few 1e-6, so `--tolerance 0`
/// exits 4.
#[test]
fn check_backward_holds_autodiff_against_the_written_out_pass() {
    let root = common::configs_dir().join("..");
    let o = gradscope(
        &[
            "compare",
            "configs/02-seed-deeper.toml",
            "--check-backward",
            "--backend",
            "ndarray,flex",
            "--format",
            "json",
        ],
        &root,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 2, "one report per backend");
    for (r, b) in reports.iter().zip(["ndarray", "flex"]) {
        assert_eq!(
            r["backends"],
            serde_json::json!([
                {"name": format!("{b} autodiff"), "adapter": null},
                {"name": format!("{b} manual"), "adapter": null}
            ])
        );
        let tensors = r["tensors"].as_array().cloned().unwrap_or_default();
        // loss, output, 4 kernels, 4 biases, 4 δ.
        assert_eq!(tensors.len(), 14, "{r}");
        assert!(
            tensors.iter().all(
                |t| t["agree"] == true && t["max_rel_diff"].as_f64().is_some_and(|d| d <= 1e-4)
            ),
            "{r}"
        );
    }
    let json = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let o = gradscope(args, &root);
        let v = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code(), v)
    };
    let (code, r) = json(&[
        "compare",
        "configs/counterexamples/relu-explodes-f32.toml",
        "--check-backward",
        "--backend",
        "ndarray",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{r}");
    let tensors = r["tensors"].as_array().cloned().unwrap_or_default();
    assert!(
        tensors.iter().all(|t| t["nonfinite_mismatches"] == 0),
        "{r}"
    );
    assert!(
        tensors
            .iter()
            .any(|t| t["nonfinite_both"].as_u64().unwrap_or(0) > 0),
        "δ holds inf and NaN in both: {r}"
    );
    let (code, r) = json(&[
        "compare",
        "configs/02-seed-deeper.toml",
        "--check-backward",
        "--backend",
        "ndarray",
        "--set",
        "model.activation=gelu",
        "--tolerance",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(4), "{r}");
    assert_eq!(r["compared"], "backward_passes", "{r}");
    let o = gradscope(
        &[
            "compare",
            "configs/02-seed-deeper.toml",
            "--check-backward",
            "--backend",
            "ndarray",
            "--set",
            "model.activation=gelu",
            "--tolerance",
            "0",
        ],
        &root,
    );
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("verdict: BACKWARD PASSES DISAGREE:")
            && table.contains("finite in one backward pass and not the other"),
        "{table}"
    );
    let worst = r["tensors"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["max_rel_diff"].as_f64())
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    assert!(worst > 0.0 && worst < 1e-4, "{worst}");
}
