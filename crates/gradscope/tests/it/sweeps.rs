//! Sweeps: the measured layer-to-layer decay of δ matches mean-field theory; sharded and merged
//! equals unsharded exactly; a killed sweep resumes to the identical result.

use crate::common;

use crate::common::gradscope_env as run_bin;

use std::path::{Path, PathBuf};

use gradscope::backend::{self, BackendKind};
use gradscope::config::{self, Source};
use gradscope::report::Thresholds;
use gradscope::summary::TrialRecord;
use gradscope::sweep::{SweepOptions, run_sweep};

#[test]
fn delta_decay_per_layer_matches_mean_field_theory() {
    // For a hidden layer l of width n fed to a layer l+1 of width n:
    //   E‖δ_l‖² = n · σ_w² · E[φ'(z)²] · ‖δ_{l+1}‖²   (δ_l = (W_{l+1} δ_{l+1}) ⊙ φ'(z_l)).
    // relu: E[φ'²] = P(z > 0) = 1/2. he_normal: σ_w² = 2/n -> ratio 1. glorot_uniform with
    // equal fans: σ_w² = 2/(n + n) = 1/n -> ratio 1/2. tanh: φ'² ≤ 1 -> ratio ≤ 1 under glorot;
    // sigmoid: φ' ≤ 1/4 -> ratio ≤ 1/16 under glorot.
    let text = r#"
name = "theory"
description = "Mean-field check: width 256, depth 16"
seed = 1000
[model]
input = 256
depth = 16
width = 256
output = 1
[[inputs]]
name = "x"
batch = 1
distribution = "normal"
[sweep]
trials = 20
"model.activation" = ["relu", "tanh", "sigmoid"]
"model.kernel_init" = ["he_normal", "glorot_uniform"]
"#;
    let exp = config::parse(Source {
        path: "theory.toml".into(),
        text: text.into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let sweep = exp.sweep.clone().unwrap_or_else(|| panic!("no sweep"));
    let backend = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SweepOptions {
        out: out.path(),
        resume: None,
        shard: None,
        thresholds: Thresholds::default(),
        stack: None,
    };
    let (_, records) = run_sweep(&exp, &sweep, &backend, &opts, &mut std::io::sink())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(records.len(), 6 * 20);
    let mean_ratio = |point: usize| {
        let ratios: Vec<f64> = records
            .iter()
            .filter(|r| r.point == point)
            .flat_map(|r| (0..15).map(move |l| (r.delta_l2[l] / r.delta_l2[l + 1]).powi(2)))
            .collect();
        ratios.iter().sum::<f64>() / ratios.len() as f64
    };
    let point = |act: &str, init: &str| {
        (0..sweep.len())
            .position(|i| {
                let settings = sweep.settings(i);
                settings.iter().any(|(_, v)| v == &format!("\"{act}\""))
                    && settings.iter().any(|(_, v)| v == &format!("\"{init}\""))
            })
            .unwrap_or_else(|| panic!("no point {act}/{init}"))
    };
    // Mean-field theory (gradscope::theory) computes the same gains from the config, layer by
    // layer (tanh's and sigmoid's depend on q_l): the measured mean of (‖δ_l‖/‖δ_{l+1}‖)² over
    // layers 0..15 and 20 trials against the mean of the predicted χ over the same layers.
    // Measured: within 0.3 % for all six (relu/he 1.0031 vs 1, relu/glorot 0.5012 vs 0.5,
    // tanh/glorot 0.8278 vs 0.8288, tanh/he 1.0542 vs 1.0517, sigmoid/he 0.0988 vs 0.0990,
    // sigmoid/glorot 0.05502 vs 0.05495); the issue asks for 5 %.
    for (act, init, tolerance) in [
        ("relu", "he_normal", 0.05),
        ("relu", "glorot_uniform", 0.05),
        ("tanh", "glorot_uniform", 0.05),
        ("tanh", "he_normal", 0.05),
        ("sigmoid", "he_normal", 0.05),
        ("sigmoid", "glorot_uniform", 0.05),
    ] {
        let at = point(act, init);
        let p = sweep.point(at);
        let theory = gradscope::theory::predict(&p.model, &p.loss, &p.inputs[0]);
        let predicted = theory.chi[..15].iter().sum::<f64>() / 15.0;
        let measured = mean_ratio(at);
        eprintln!("{act}/{init}: measured {measured:.5}, predicted {predicted:.5}");
        assert!(
            (measured - predicted).abs() <= tolerance * predicted,
            "{act}/{init}: measured {measured}, mean-field theory {predicted}"
        );
    }
    // The summary carries the same prediction per point: relu/he_normal is critical (every
    // χ exactly 1, so the predicted ratio is 1); relu/glorot_uniform halves ‖δ‖² per layer
    // between the width-256 layers (the last gain, into the width-1 output, is
    // 256·2/257·½ = 0.996).
    let summary = gradscope::summary::summarise(&exp.name, &sweep, &records);
    let theory_at = |at: usize| {
        summary
            .points
            .iter()
            .find(|p| p.point == at)
            .and_then(|p| p.theory.clone())
            .unwrap_or_else(|| panic!("no theory at point {at}"))
    };
    let he = theory_at(point("relu", "he_normal"));
    assert!((he.delta_ratio - 1.0).abs() < 1e-12 && he.chi.iter().all(|c| (c - 1.0).abs() < 1e-12));
    let glorot = theory_at(point("relu", "glorot_uniform"));
    assert!(
        glorot.chi[..15].iter().all(|c| (c - 0.5).abs() < 1e-12)
            && (glorot.chi[15] - 256.0 / 257.0).abs() < 1e-12,
        "{:?}",
        glorot.chi
    );
    let relu_he = mean_ratio(point("relu", "he_normal"));
    let relu_glorot = mean_ratio(point("relu", "glorot_uniform"));
    let tanh_glorot = mean_ratio(point("tanh", "glorot_uniform"));
    let sigmoid_glorot = mean_ratio(point("sigmoid", "glorot_uniform"));
    assert!((relu_he - 1.0).abs() <= 0.05, "relu/he_normal: {relu_he}");
    assert!(
        (relu_glorot - 0.5).abs() <= 0.05 * 0.5,
        "relu/glorot_uniform: {relu_glorot}"
    );
    assert!(tanh_glorot <= 1.0, "tanh/glorot_uniform: {tanh_glorot}");
    assert!(
        sigmoid_glorot <= 1.0 / 16.0,
        "sigmoid/glorot_uniform: {sigmoid_glorot}"
    );
}

const SMALL: &str = r#"name = "small-sweep"
description = "A small sweep for the shard and resume tests"
seed = 5
[model]
input = 6
depth = 3
width = 8
output = 2
[[inputs]]
name = "a"
batch = 2
distribution = "normal"
[[inputs]]
name = "b"
batch = 1
distribution = { kind = "uniform", low = -1.0, high = 1.0 }
[sweep]
trials = 7
"model.activation" = ["relu", "tanh"]
"model.depth" = [2, 5]
"#;

fn record_dirs(base: &Path) -> Vec<PathBuf> {
    common::record_dirs_of(base, "small-sweep")
}

use crate::common::read_text as read;

#[test]
fn sharded_and_merged_equals_unsharded_exactly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let whole = run_bin(
        &["run", "s.toml", "--out", "whole", "--format", "json"],
        dir.path(),
        &[],
    );
    assert_eq!(
        whole.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    for i in 1..=3 {
        let o = run_bin(
            &[
                "run",
                "s.toml",
                "--out",
                "shards",
                "--shard",
                &format!("{i}/3"),
            ],
            dir.path(),
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let shards = record_dirs(&dir.path().join("shards"));
    assert_eq!(shards.len(), 3);
    let shard_args: Vec<String> = shards
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["merge", "--out", "merged", "--format", "json"];
    args.extend(shard_args.iter().map(String::as_str));
    let merged = run_bin(&args, dir.path(), &[]);
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_eq!(
        merged.stdout, whole.stdout,
        "merged summary equals the unsharded one"
    );
    let w = &record_dirs(&dir.path().join("whole"))[0];
    let m = &record_dirs(&dir.path().join("merged"))[0];
    assert_eq!(read(&w.join("summary.json")), read(&m.join("summary.json")));
    assert_eq!(
        read(&w.join("trials.csv")),
        read(&m.join("trials.csv")),
        "every trial, in CSV"
    );
    for file in [
        "config.toml",
        "trials.jsonl",
        "summary.csv",
        "report.md",
        "sweep.svg",
    ] {
        assert!(w.join(file).exists(), "the sweep record lacks {file}");
    }
    // The merged record says what made it: the merge, on the backend its parts agree on,
    // and each part with its shard and its own meta.json.
    let meta: serde_json::Value =
        serde_json::from_str(&read(&m.join("meta.json"))).unwrap_or_else(|e| panic!("{e}"));
    let parts = meta["merged_from"].as_array().cloned().unwrap_or_default();
    assert_eq!(parts.len(), 3, "{meta}");
    let mut named: Vec<String> = parts
        .iter()
        .map(|p| p["part"].as_str().unwrap_or("").to_string())
        .collect();
    named.sort();
    assert_eq!(named, ["shard 1/3", "shard 2/3", "shard 3/3"]);
    assert!(
        parts
            .iter()
            .all(|p| p["meta"]["backend"] == meta["backend"]),
        "{meta}"
    );
    assert_eq!(meta["command"][1], "merge", "{meta}");
    assert!(
        read(&m.join("report.html")).contains(">meta.json<"),
        "the page lists the merge's meta"
    );
    // 4 points x 7 trials x 2 cases x (depth + 1) layers, plus the header.
    assert_eq!(
        read(&w.join("trials.csv")).lines().count(),
        1 + 7 * 2 * (2 * 3 + 2 * 6)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&whole.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["trials_done"], 4 * 7 * 2, "4 points x 7 trials x 2 cases");
    assert_eq!(
        (v["trials_expected"].as_u64(), v["partial"].as_bool()),
        (Some(56), Some(false))
    );

    // An incomplete set of shards is refused, naming what is missing; a repeated one too.
    let merge = |extra: &[&str], dirs: &[&str]| {
        let mut args = vec!["merge", "--out", "partial"];
        args.extend(extra);
        args.extend(dirs);
        let o = run_bin(&args, dir.path(), &[]);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            o.stdout,
        )
    };
    let (one, two) = (shard_args[0].as_str(), shard_args[1].as_str());
    let (code, stderr, _) = merge(&[], &[one]);
    assert_eq!(code, Some(2), "{stderr}");
    // Shard i/3 holds every third of the 4 x 7 (point, trial) units: shard 1/3 holds 10, each
    // with both cases: 20 of 56 trial records.
    assert!(
        stderr.contains("the records hold 20 of the sweep's 56 trial records")
            && stderr.contains("missing: shard 2/3, shard 3/3")
            && stderr.contains("--allow-partial"),
        "{stderr}"
    );
    let (code, stderr, _) = merge(&[], &[one, two, one]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("are both shard 1/3 of the sweep"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("partial").exists(),
        "nothing written for a refused merge"
    );

    // With --allow-partial, every output says so.
    let (code, stderr, stdout) = merge(&["--allow-partial", "--format", "json"], &[one]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (v["partial"].as_bool(), v["trials_done"].as_u64()),
        (Some(true), Some(20))
    );
    let p = &common::record_dirs_of(&dir.path().join("partial"), "small-sweep")[0];
    let table = read(&p.join("summary.txt"));
    assert!(
        table.starts_with("sweep small-sweep: PARTIAL: 20 of 56 trial records of the sweep"),
        "{table}"
    );
    assert!(read(&p.join("report.md")).contains("**PARTIAL: 20 of 56"));
    assert!(read(&p.join("report.html")).contains("PARTIAL: 20 of 56 trial records"));
    #[derive(serde::Deserialize)]
    struct Row {
        partial: bool,
    }
    let csv = read(&p.join("summary.csv"));
    let rows: Vec<Row> = csv::Reader::from_reader(csv.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!rows.is_empty() && rows.iter().all(|r| r.partial), "{csv}");
}

#[test]
fn trials_per_stack_do_not_change_a_single_bit() {
    // The default stacks all 7 trials of a point; --stack 3 splits each point 3 + 3 + 1; --stack
    // 1 runs every trial alone. Every trial's record and
    // the summary must be byte-identical: a trial's numbers may not depend on its neighbours.
    // (That a stack of one equals `run` of the same network is checked in
    // stacked_trials_equal_single_runs.) trials.jsonl lists the trials in the order they ran,
    // which the stack size sets (the points of both activations run side by side on each
    // chunk of trials): its lines are compared sorted.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let mut outputs = Vec::new();
    for (out, stack) in [("auto", None), ("three", Some("3")), ("one", Some("1"))] {
        let mut args = vec!["run", "s.toml", "--out", out, "--format", "json"];
        args.extend(stack.iter().flat_map(|n| ["--stack", *n]));
        let o = run_bin(&args, dir.path(), &[]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rec = &record_dirs(&dir.path().join(out))[0];
        let mut lines: Vec<String> = read(&rec.join("trials.jsonl"))
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        outputs.push((out, o.stdout, lines, read(&rec.join("summary.json"))));
    }
    let (_, stdout, log, summary) = &outputs[0];
    assert_eq!(log.len(), 4 * 7 * 2, "4 points x 7 trials x 2 cases");
    for (name, o, l, s) in &outputs[1..] {
        assert_eq!(o, stdout, "--stack {name}: report");
        assert_eq!(l, log, "--stack {name}: trials.jsonl");
        assert_eq!(s, summary, "--stack {name}: summary.json");
    }
    // --stack belongs to sweeps, and must be at least 1.
    let seed = dir.path().join("seed.toml");
    std::fs::write(&seed, SMALL.split("[sweep]").next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let o = run_bin(&["run", "seed.toml", "--stack", "4"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--stack apply to sweeps"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run_bin(&["run", "s.toml", "--stack", "0"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn points_sharing_their_weights_give_what_each_gives_alone() {
    // SMALL's points (relu, 2), (relu, 5), (tanh, 2), (tanh, 5): the two activations of each
    // depth run on one draw of weights, loaded once. Each activation swept alone (its points
    // have no partner, so each draws and loads its own) must give every trial's record bit for
    // bit; its points 0 and 1 are the whole sweep's 0 and 1 (relu) or 2 and 3 (tanh).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let records = |name: &str, text: &str| -> Vec<TrialRecord> {
        std::fs::write(dir.path().join(format!("{name}.toml")), text)
            .unwrap_or_else(|e| panic!("{e}"));
        let o = run_bin(
            &[
                "run",
                &format!("{name}.toml"),
                "--out",
                name,
                "--stack",
                "3",
            ],
            dir.path(),
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rec = &record_dirs(&dir.path().join(name))[0];
        read(&rec.join("trials.jsonl"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect()
    };
    let line = |r: &TrialRecord| serde_json::to_string(r).unwrap_or_else(|e| panic!("{e}"));
    let mut whole: Vec<String> = records("whole", SMALL).iter().map(line).collect();
    whole.sort();
    let mut alone = Vec::new();
    for (offset, activation) in [(0, "relu"), (2, "tanh")] {
        let text = SMALL.replace(
            r#""model.activation" = ["relu", "tanh"]"#,
            &format!(r#""model.activation" = ["{activation}"]"#),
        );
        assert_ne!(text, SMALL);
        for mut r in records(activation, &text) {
            r.point += offset;
            alone.push(line(&r));
        }
    }
    alone.sort();
    assert_eq!(whole.len(), 4 * 7 * 2);
    assert_eq!(whole, alone);
}

#[test]
fn a_killed_sweep_resumes_to_the_identical_result() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let whole = run_bin(
        &["run", "s.toml", "--out", "whole", "--format", "json"],
        dir.path(),
        &[],
    );
    // Killed after 11 of 28 trials, then a torn half line as a kill mid-write would leave.
    let killed = run_bin(
        &["run", "s.toml", "--out", "killed"],
        dir.path(),
        &[("GRADSCOPE_FAULT_AFTER_TRIALS", "11")],
    );
    assert_ne!(killed.status.code(), Some(0));
    let rec = record_dirs(&dir.path().join("killed"))[0].clone();
    let log = rec.join("trials.jsonl");
    let before: Vec<TrialRecord> = read(&log)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        before.len(),
        11 * 2,
        "every finished trial (2 cases each) is on disk"
    );
    assert!(
        !rec.join("summary.json").exists(),
        "no summary from an unfinished sweep"
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap_or_else(|e| panic!("{e}"));
    std::io::Write::write_all(&mut f, b"{\"point\":3,\"trial\":1,\"se")
        .unwrap_or_else(|e| panic!("{e}"));
    let resumed = run_bin(
        &[
            "run",
            "s.toml",
            "--resume",
            &rec.to_string_lossy(),
            "--format",
            "json",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(resumed.stdout, whole.stdout);
    let w = &record_dirs(&dir.path().join("whole"))[0];
    assert_eq!(
        read(&w.join("summary.json")),
        read(&rec.join("summary.json"))
    );
    // Resuming a record of another config is refused.
    let other = SMALL.replace("trials = 7", "trials = 8");
    std::fs::write(dir.path().join("other.toml"), other).unwrap_or_else(|e| panic!("{e}"));
    let o = run_bin(
        &["run", "other.toml", "--resume", &rec.to_string_lossy()],
        dir.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn set_overrides_sweep_lists_and_bad_sweeps_are_bad_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let o = run_bin(
        &[
            "run",
            "s.toml",
            "--out",
            "o",
            "--format",
            "json",
            "--set",
            "sweep.model.depth=[1]",
            "--set",
            "sweep.trials=2",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v["trials_done"],
        2 * 2 * 2,
        "2 activations x 1 depth x 2 trials x 2 cases"
    );
    let mut all = String::new();
    for (name, edit) in [
        ("unknown_key", "\"model.dpeth\" = [2]"),
        ("not_a_list", "\"model.width\" = 4"),
        ("empty_list", "\"model.width\" = []"),
        ("bad_point", "\"model.width\" = [4, 0]"),
        ("zero_trials", "trials = 0"),
    ] {
        let text = SMALL.replace("\"model.depth\" = [2, 5]", edit).replace(
            "trials = 7\n",
            if edit.starts_with("trials") {
                ""
            } else {
                "trials = 7\n"
            },
        );
        std::fs::write(dir.path().join(format!("{name}.toml")), text)
            .unwrap_or_else(|e| panic!("{e}"));
        let o = run_bin(
            &["run", &format!("{name}.toml"), "--out", "o"],
            dir.path(),
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{name}");
        all.push_str(&format!(
            "--- {name}\n{}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    insta::assert_snapshot!("bad_sweeps", all);
    // Flags that only make sense for one run, or only for sweeps, are refused rather than ignored.
    let o = run_bin(
        &["run", "s.toml", "--out", "o", "--dump", "d"],
        dir.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("d").exists());
    std::fs::write(
        dir.path().join("one.toml"),
        SMALL.split("[sweep]").next().unwrap_or(""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = run_bin(
        &["run", "one.toml", "--no-record", "--shard", "1/2"],
        dir.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stacked_trials_equal_single_runs() {
    // run::execute_stack (a sweep's path) against run::execute (a plain run's path: Burn's
    // Linear module), trial by trial, for every loss and two input cases of different batch.
    let base = r#"
name = "stack-vs-single"
description = "execute_stack against execute"
seed = 3
[model]
input = 4
hidden = [6, 5]
output = 2
activation = "gelu"
bias_init = { kind = "uniform", low = -0.5, high = 0.5 }
[[inputs]]
name = "a"
batch = 3
distribution = "normal"
[[inputs]]
name = "b"
batch = 1
distribution = { kind = "uniform", low = -2.0, high = 2.0 }
"#;
    let backend = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    for loss in [
        "\"sum_squares\"",
        "\"mean_squares\"",
        "\"sum\"",
        "\"mean\"",
        "{ kind = \"mse\", target = 0.5 }",
    ] {
        let text = base.replacen("seed = 3", &format!("seed = 3\nloss = {loss}"), 1);
        let exp = config::parse(Source {
            path: "s.toml".into(),
            text,
        })
        .unwrap_or_else(|e| panic!("{loss}: {e}"));
        // Trials as a sweep makes them: the same experiment, seeds 3, 4, 5.
        let trials: Vec<_> = (0..3)
            .map(|t| gradscope::sweep::trial_experiment(&exp, exp.seed, t))
            .collect();
        // With z_l kept (as a sweep over precision keeps them), so that they are compared too.
        let stacked = gradscope::run::execute_stack(&trials, &backend, true)
            .unwrap_or_else(|e| panic!("{loss}: {e}"));
        assert_eq!(stacked.len(), 3);
        for (t, (trial, got)) in trials.iter().zip(&stacked).enumerate() {
            let want =
                gradscope::run::execute(trial, &backend).unwrap_or_else(|e| panic!("{loss}: {e}"));
            assert_eq!(got.weights, want.weights, "{loss} trial {t}: weights");
            assert_eq!(got.cases.len(), 2);
            for (g, w) in got.cases.iter().zip(&want.cases) {
                let at = format!("{loss} trial {t} case {}", w.name);
                assert_eq!(g.name, w.name, "{at}");
                assert_eq!(g.input, w.input, "{at}: input");
                // The same f32 operations per trial on ndarray: identical, not merely close.
                assert_eq!(g.output, w.output, "{at}: output");
                assert_eq!(g.grads, w.grads, "{at}: gradients");
                assert_eq!(g.deltas, w.deltas, "{at}: δ");
                assert_eq!(g.layer_outputs, w.layer_outputs, "{at}: layer outputs");
                assert_eq!(g.pre_activations, w.pre_activations, "{at}: z");
                // The loss is reduced over a [T, batch·d_out] row rather than the whole
                // [batch, d_out] tensor; the summation may associate differently, a few ulps.
                let tol = 4.0 * f32::EPSILON * w.loss.abs();
                assert!(
                    (g.loss - w.loss).abs() <= tol,
                    "{at}: loss {} vs {}",
                    g.loss,
                    w.loss
                );
            }
        }
    }
}

#[test]
fn a_shard_resumes_only_as_the_same_shard() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        let o = run_bin(args, dir.path(), &[]);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["run", "s.toml", "--out", "part", "--shard", "2/3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(&["run", "s.toml", "--out", "whole"]);
    assert_eq!(code, Some(0), "{stderr}");
    let part = record_dirs(&dir.path().join("part"))[0].clone();
    let whole = record_dirs(&dir.path().join("whole"))[0].clone();
    assert_eq!(read(&part.join("shard.txt")), "2/3\n");
    assert!(!whole.join("shard.txt").exists());
    let part = part.to_string_lossy().into_owned();
    let whole = whole.to_string_lossy().into_owned();
    for (args, says) in [
        (
            vec!["--resume", &part],
            "the record is shard 2/3, but this run asks for the whole sweep; resume it with --shard 2/3",
        ),
        (
            vec!["--resume", &part, "--shard", "1/3"],
            "the record is shard 2/3, but this run asks for shard 1/3",
        ),
        (
            vec!["--resume", &whole, "--shard", "1/2"],
            "the record is the whole sweep, but this run asks for shard 1/2; resume it with no --shard",
        ),
    ] {
        let mut all = vec!["run", "s.toml"];
        all.extend(args.iter().copied());
        let (code, stderr) = run(&all);
        assert_eq!(code, Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
    // The matching part resumes (nothing left to run) and exits 0.
    let (code, stderr) = run(&["run", "s.toml", "--resume", &part, "--shard", "2/3"]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Parse `text` as CSV with a header (the csv crate): (header, rows).
fn csv_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r
        .headers()
        .unwrap_or_else(|e| panic!("{e}: {text}"))
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            rec.unwrap_or_else(|e| panic!("{e}: {text}"))
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (header, rows)
}

/// A numeric CSV field parses back as f32: a number, or NaN/inf/-inf spelled as in the JSON.
fn csv_f32(field: &str) -> f32 {
    match field {
        "NaN" => f32::NAN,
        "inf" => f32::INFINITY,
        "-inf" => f32::NEG_INFINITY,
        _ => field.parse().unwrap_or_else(|e| panic!("`{field}`: {e}")),
    }
}

/// Issue 11: CSV and JSON streams read back with real readers, for plain runs, `--layers`,
/// sweeps, merges and the files of a sweep record; one header per stream, quoting by RFC 4180,
/// and a `kind` telling runs from sweeps in one JSON stream.
#[test]
fn csv_and_json_outputs_read_back_with_real_readers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    let seed = common::seed_configs();
    std::fs::copy(&seed[0], d.join("p1.toml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&seed[2], d.join("p3.toml")).unwrap_or_else(|e| panic!("{e}"));
    let ok = |args: &[&str]| {
        let o = run_bin(args, d, &[]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap_or_else(|e| panic!("{e}"))
    };

    // Two plain runs: one header, every case × parameter of both (seed 1: 1 case x 4
    // parameters; seed 3: 3 cases x 8 parameters).
    let text = ok(&[
        "run",
        "p1.toml",
        "p3.toml",
        "--no-record",
        "--format",
        "csv",
    ]);
    let (header, rows) = csv_table(&text);
    assert_eq!(
        header[..6],
        [
            "experiment",
            "backend",
            "precision",
            "seed",
            "case",
            "parameter"
        ]
    );
    // 17 columns, and `finite_only` (whether the gradient's statistics skip non-finite values).
    assert_eq!(header.len(), 18);
    assert_eq!(header[17], "finite_only");
    assert_eq!(rows.len(), 4 + 3 * 8);
    assert_eq!(text.matches("experiment,").count(), 1, "one header: {text}");
    for row in &rows {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[2], "f32");
        for field in &row[7..14] {
            csv_f32(field);
        }
    }
    // The same per layer (seed 1: 2 layers; seed 3: 3 cases x 4 layers).
    let (header, rows) = csv_table(&ok(&[
        "run",
        "p1.toml",
        "p3.toml",
        "--no-record",
        "--format",
        "csv",
        "--layers",
    ]));
    assert_eq!(header[5..7], ["layer", "width"]);
    assert_eq!(rows.len(), 2 + 3 * 4);

    // A sweep: its own header first (the plain-run header was once printed before it), a
    // column per swept key holding its value, the ratio and theory as columns.
    let text = ok(&["run", "s.toml", "--out", "whole", "--format", "csv"]);
    assert!(
        text.starts_with("experiment,point,model.activation,model.depth,case,trials,nonfinite_trials,dead_trials,zero_gradient_trials,ratio_median,ratio_q1,ratio_q3,theory_delta_ratio,theory_applies,layer,"),
        "{text}"
    );
    let (header, rows) = csv_table(&text);
    assert_eq!(header.len(), 26);
    assert_eq!(header[25], "partial");
    // 4 points x 2 cases x (depth + 1) layers: depths 2 and 5 for each activation.
    assert_eq!(rows.len(), 2 * 2 * (3 + 6));
    assert_eq!(rows[0][2..4], ["relu", "2"]);
    assert!(
        rows.iter()
            .all(|r| r[0] == "small-sweep" && r.len() == 26 && r[25] == "false")
    );
    for row in &rows {
        for field in row[9..13].iter().chain(&row[15..25]) {
            csv_f32(field);
        }
        assert!(["true", "false", ""].contains(&row[13].as_str()), "{row:?}");
    }
    // The record's CSV files read back the same way, and summary.csv is what was printed.
    let rec = &record_dirs(&d.join("whole"))[0];
    assert_eq!(read(&rec.join("summary.csv")), text);
    let (header, rows) = csv_table(&read(&rec.join("trials.csv")));
    assert_eq!(
        header[..6],
        [
            "point",
            "model.activation",
            "model.depth",
            "trial",
            "seed",
            "case"
        ]
    );
    assert_eq!(rows.len(), 7 * 2 * (2 * 3 + 2 * 6));
    // A merge prints the same CSV.
    let merged = ok(&[
        "merge",
        &rec.to_string_lossy(),
        "--out",
        "merged",
        "--format",
        "csv",
    ]);
    assert_eq!(merged, text);

    // Plain runs and sweeps in one CSV stream would be two tables: refused before any work.
    let o = run_bin(
        &[
            "run", "p1.toml", "s.toml", "--out", "mixed", "--format", "csv",
        ],
        d,
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("plain runs and sweeps"));
    assert!(
        !d.join("mixed").exists(),
        "nothing may run before the refusal"
    );

    // JSON: one stream of a plain run and a sweep; each line parses and says its kind.
    let text = ok(&["run", "p1.toml", "s.toml", "--out", "j", "--format", "json"]);
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["kind"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(kinds, ["run", "sweep"]);
    let summary: serde_json::Value =
        serde_json::from_str(&read(&record_dirs(&d.join("j"))[0].join("summary.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary["kind"], "sweep");
}

/// Flags that apply to sweeps only, or to plain runs only, are checked against every file
/// before anything runs: no file is run, printed or recorded before another is refused.
#[test]
fn cross_flag_errors_come_before_any_file_runs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("s.toml"), SMALL).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&common::seed_configs()[0], d.join("p1.toml")).unwrap_or_else(|e| panic!("{e}"));
    for (args, says) in [
        (
            &["p1.toml", "s.toml", "--dump", "d", "--out", "o"][..],
            "--dump writes the tensors of one run",
        ),
        (
            &["p1.toml", "s.toml", "--no-record"],
            "a sweep always writes a record",
        ),
        (
            &["s.toml", "p1.toml", "--stack", "3", "--out", "o"],
            "apply to sweeps",
        ),
        (
            &["s.toml", "p1.toml", "--shard", "1/2", "--out", "o"],
            "apply to sweeps",
        ),
        (
            &["s.toml", "--shard", "3/2", "--out", "o"],
            "invalid --shard",
        ),
    ] {
        let o = run_bin(&[&["run"][..], args].concat(), d, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            o.stdout.is_empty(),
            "{args:?} printed a report before refusing"
        );
        let mut left: Vec<_> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["p1.toml", "s.toml"], "{args:?} wrote something");
    }
}

/// The README's GNU parallel line, run as written (the binary's path put in for `gradscope`,
/// and `--will-cite`, which only silences parallel's citation notice):
/// four shards of the notebook's sweep in parallel, merged, give the unsharded summary byte for
/// byte. Skips with a printed reason where `parallel` is missing, except in CI.
#[test]
fn the_readme_gnu_parallel_line_merges_to_the_unsharded_summary() {
    let has_parallel = std::process::Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::part_or_skip(
        "the_readme_gnu_parallel_line_merges_to_the_unsharded_summary",
        has_parallel,
        ".ci/run installs GNU parallel",
        "GNU parallel is not installed (apt-get install parallel)",
    ) {
        return;
    }
    let readme = include_str!("../../../../README.md");
    let line = readme
        .lines()
        .find_map(|l| l.trim().strip_prefix("`parallel gradscope run"))
        .and_then(|l| l.strip_suffix('`'))
        .unwrap_or_else(|| panic!("the README has no GNU parallel line"));
    let bin = env!("CARGO_BIN_EXE_gradscope");
    let command = format!("parallel --will-cite {bin} run{line}");
    let dir = dir_with_configs();
    let d = dir.path();
    let o = std::process::Command::new("bash")
        .args(["-c", &command])
        .current_dir(d)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    merge_shards_and_compare(d, 4);
}

/// The README's Slurm array script, run as written on a one-node Slurm (`.ci/slurm-up`) with
/// `sbatch --wait` (the binary's path put in for `gradscope`): its 8 shards, merged as its last
/// line says, give the unsharded summary.json byte for byte. Skips with a printed reason
/// where no Slurm answers, except in CI.
#[test]
fn the_readme_slurm_script_merges_to_the_unsharded_summary() {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"));
    if !common::part_or_skip(
        "the_readme_slurm_script_merges_to_the_unsharded_summary",
        up,
        ".ci/run starts a one-node Slurm (.ci/slurm-up)",
        "no Slurm node answers here (bash .ci/slurm-up starts one, as root)",
    ) {
        return;
    }
    let readme = include_str!("../../../../README.md");
    let script: String = readme
        .split("With Slurm:")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|block| block.split("```").next())
        .unwrap_or_else(|| panic!("the README has no Slurm script"))
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n");
    let bin = env!("CARGO_BIN_EXE_gradscope");
    let script = script.replacen("\ngradscope run", &format!("\n{bin} run"), 1);
    assert!(script.contains(bin), "{script}");
    let dir = dir_with_configs();
    let d = dir.path();
    std::fs::write(d.join("job.sh"), &script).unwrap_or_else(|e| panic!("{e}"));
    let o = std::process::Command::new("sbatch")
        .args(["--wait", "--output=slurm-%A_%a.out", "job.sh"])
        .current_dir(d)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The script's last line: gradscope merge shards/activation-init-depth/*-sweep-shard-*
    merge_shards_and_compare(d, 8);
}

/// A temporary directory with `configs` linked to the repository's, where the README's
/// commands run as written.
fn dir_with_configs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(common::configs_dir(), dir.path().join("configs"))
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// Merge the `count` shard records under `d/shards` and check the merged summary.json equals
/// the unsharded run's byte for byte.
fn merge_shards_and_compare(d: &Path, count: usize) {
    let shards = common::record_dirs_of(&d.join("shards"), "activation-init-depth");
    assert_eq!(shards.len(), count, "{shards:?}");
    let mut args = vec!["merge".to_string(), "--out".into(), "merged".into()];
    args.extend(shards.iter().map(|p| p.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let merged = run_bin(&args, d, &[]);
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let dirs = common::record_dirs_of(&d.join("merged"), "activation-init-depth");
    assert_eq!(
        read(&dirs[0].join("summary.json")),
        unsharded_notebook_summary()
    );
}

/// The notebook sweep's summary.json run whole, once for the tests that compare shards with it.
fn unsharded_notebook_summary() -> &'static str {
    static SUMMARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SUMMARY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = common::configs_dir().join("sweeps/10-sweep-activation-init-depth.toml");
        let whole = run_bin(
            &["run", &config.to_string_lossy(), "--out", "whole"],
            dir.path(),
            &[],
        );
        assert_eq!(
            whole.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&whole.stderr)
        );
        let dirs = common::record_dirs_of(&dir.path().join("whole"), "activation-init-depth");
        read(&dirs[0].join("summary.json"))
    })
}
