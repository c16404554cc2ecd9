//! Sweeps: the measured layer-to-layer decay of δ matches mean-field theory; sharded and merged
//! equals unsharded exactly; a killed sweep resumes to the identical result.

mod common;

use common::gradscope_env as run_bin;

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
            .flat_map(|r| {
                (0..15)
                    .map(move |l| (f64::from(r.delta_l2[l]) / f64::from(r.delta_l2[l + 1])).powi(2))
            })
            .collect();
        ratios.iter().sum::<f64>() / ratios.len() as f64
    };
    let point = |act: &str, init: &str| {
        sweep
            .points
            .iter()
            .position(|p| {
                p.settings.iter().any(|(_, v)| v == &format!("\"{act}\""))
                    && p.settings.iter().any(|(_, v)| v == &format!("\"{init}\""))
            })
            .unwrap_or_else(|| panic!("no point {act}/{init}"))
    };
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
    let mut v: Vec<PathBuf> = std::fs::read_dir(base.join("small-sweep"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

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
    // 4 points x 7 trials x 2 cases x (depth + 1) layers, plus the header.
    assert_eq!(
        read(&w.join("trials.csv")).lines().count(),
        1 + 7 * 2 * (2 * 3 + 2 * 6)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&whole.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["trials_done"], 4 * 7 * 2, "4 points x 7 trials x 2 cases");
}

#[test]
fn trials_per_stack_do_not_change_a_single_bit() {
    // The default stacks all 7 trials of a point; --stack 3 splits each point 3 + 3 + 1; --stack
    // 1 runs every trial alone. Every trial's record and
    // the summary must be byte-identical: a trial's numbers may not depend on its neighbours.
    // (That a stack of one equals `run` of the same network is checked in
    // stacked_trials_equal_single_runs.)
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
        outputs.push((
            out,
            o.stdout,
            read(&rec.join("trials.jsonl")),
            read(&rec.join("summary.json")),
        ));
    }
    let (_, stdout, log, summary) = &outputs[0];
    assert_eq!(
        log.lines().count(),
        4 * 7 * 2,
        "4 points x 7 trials x 2 cases"
    );
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
        let stacked = gradscope::run::execute_stack(&trials, &backend)
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
