//! Run records: what a run writes, that `--no-record` writes nothing, and that a run killed
//! while writing leaves no partial record.

use crate::common;

use crate::common::gradscope_env as gradscope;

use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("seed1.toml");
    std::fs::copy(&common::seed_configs()[0], &cfg).unwrap_or_else(|e| panic!("{e}"));
    (dir, cfg)
}

#[test]
fn a_run_writes_a_complete_record_that_reproduces_the_report() {
    let (dir, _) = setup();
    let o = gradscope(&["run", "seed1.toml", "--format", "json"], dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let records = entries(&dir.path().join("experiments/runs/seed-example-1"));
    assert_eq!(records.len(), 1, "{records:?}");
    let rec = &records[0];
    let name = rec
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        name.ends_with("Z-ndarray") && name.len() == "20261129T124501Z-ndarray".len(),
        "{name}"
    );
    let files: Vec<String> = entries(rec)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        files,
        vec![
            "config.toml",
            "meta.json",
            "report.html",
            "report.json",
            "report.md"
        ]
    );
    let report = std::fs::read(rec.join("report.json")).unwrap_or_default();
    assert_eq!(
        report, o.stdout,
        "report.json is what --format json printed"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec.join("meta.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    for key in [
        "gradscope_version",
        "burn_version",
        "backend",
        "adapter",
        "seed",
        "started_utc",
        "wall_time_s",
        "host",
    ] {
        assert!(meta.get(key).is_some(), "meta.json lacks {key}: {meta}");
    }
    assert_eq!(meta["burn_version"], "0.22.1");
    assert_eq!(meta["seed"], 1);
    // The recorded config runs again to the identical report.
    let again = gradscope(
        &[
            "run",
            &rec.join("config.toml").to_string_lossy(),
            "--format",
            "json",
            "--no-record",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(again.stdout, report);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("note: run record written to experiments/runs/seed-example-1/"),
        "{stderr}"
    );
}

#[test]
fn no_record_writes_nothing_and_out_redirects() {
    let (dir, _) = setup();
    let o = gradscope(&["run", "seed1.toml", "--no-record"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!dir.path().join("experiments").exists());
    assert!(o.stderr.is_empty());
    let o = gradscope(
        &["run", "seed1.toml", "--out", "elsewhere"],
        dir.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        entries(&dir.path().join("elsewhere/seed-example-1")).len(),
        1
    );
}

#[test]
fn a_run_killed_while_writing_leaves_no_partial_record() {
    let (dir, _) = setup();
    for after in 1..=4 {
        // The process aborts right after writing `after` of the record's four files.
        let o = gradscope(
            &["run", "seed1.toml"],
            dir.path(),
            &[("GRADSCOPE_FAULT_AFTER_RECORD_FILES", &after.to_string())],
        );
        assert_ne!(
            o.status.code(),
            Some(0),
            "the fault hook must stop the process"
        );
        let parent = dir.path().join("experiments/runs/seed-example-1");
        let records: Vec<PathBuf> = entries(&parent)
            .into_iter()
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        assert!(
            records.is_empty(),
            "after {after} files a record appeared: {records:?}"
        );
    }
    let parent = dir.path().join("experiments/runs/seed-example-1");
    assert!(
        !entries(&parent).is_empty(),
        "the killed writers left their .partial-* directories"
    );
    // A normal run afterwards still writes a complete record, and removes the directories
    // of the killed writers (their processes are gone).
    let o = gradscope(&["run", "seed1.toml"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    let leftovers: Vec<PathBuf> = entries(&parent)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".partial-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let complete: Vec<PathBuf> = entries(&dir.path().join("experiments/runs/seed-example-1"))
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    assert_eq!(complete.len(), 1);
    assert_eq!(
        entries(&complete[0]).len(),
        5,
        "the record's four files and report.html"
    );
}

#[test]
fn an_unwritable_record_place_is_exit_1_with_a_hint() {
    let (dir, _) = setup();
    std::fs::write(dir.path().join("blocker"), "a file, not a directory")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "seed1.toml", "--out", "blocker"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: cannot write the run record under blocker:"),
        "{err}"
    );
    assert!(
        err.contains("hint: choose another place with --out DIR, or pass --no-record"),
        "{err}"
    );
}

/// Every file and directory below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in entries(&d) {
            out.push(
                p.strip_prefix(dir)
                    .map(|r| r.display().to_string())
                    .unwrap_or_default(),
            );
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Issue 11: experiment and case names become record directories, notebook pages, dump files
/// and merged records; a name that would leave the directory it is joined to (`..`), hide
/// (`.x`), read as a flag (`-x`) or hold a separator is refused with exit 2 and a located
/// message, by every command, before anything is written anywhere.
#[test]
fn unsafe_names_are_refused_wherever_a_name_becomes_a_path() {
    let seed = std::fs::read_to_string(&common::seed_configs()[0]).unwrap_or_default();
    let with_name = |name: &str| {
        seed.replacen(
            "name = \"seed-example-1\"",
            &format!("name = \"{name}\""),
            1,
        )
    };
    let with_case = |name: &str| seed.replacen("name = \"x\"", &format!("name = \"{name}\""), 1);
    assert_ne!(with_name("z"), seed, "the seed config's name line moved");
    assert_ne!(with_case("z"), seed, "the seed config's case line moved");
    for bad in [".", "..", ".hidden", "-rf", "a/b", "../up", ""] {
        let sweep = format!("{}\n[sweep]\ntrials = 2\n", with_name(bad));
        // (what, file text, arguments); the file is c.toml in an empty directory.
        let tries: Vec<(&str, String, Vec<String>)> = vec![
            (
                "record",
                with_name(bad),
                vec!["run".into(), "c.toml".into(), "--out".into(), "out1".into()],
            ),
            (
                "notebook",
                with_name(bad),
                vec![
                    "run".into(),
                    "c.toml".into(),
                    "--no-record".into(),
                    "--notebook".into(),
                    "nb".into(),
                ],
            ),
            (
                "--set",
                seed.clone(),
                vec![
                    "run".into(),
                    "c.toml".into(),
                    "--out".into(),
                    "out1".into(),
                    "--set".into(),
                    format!("name=\"{bad}\""),
                ],
            ),
            (
                "dump case",
                with_case(bad),
                vec![
                    "run".into(),
                    "c.toml".into(),
                    "--no-record".into(),
                    "--dump".into(),
                    "d".into(),
                ],
            ),
            (
                "sweep",
                sweep.clone(),
                vec!["run".into(), "c.toml".into(), "--out".into(), "out1".into()],
            ),
            (
                "validate",
                with_name(bad),
                vec!["validate".into(), "c.toml".into()],
            ),
        ];
        for (what, text, args) in tries {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(dir.path().join("c.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = gradscope(&args, dir.path(), &[]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{what} `{bad}`: {err}");
            assert!(
                err.contains("c.toml") && err.contains("name") && err.contains(&format!("`{bad}`")),
                "{what} `{bad}`: the message must name the file, the key and the value: {err}"
            );
            assert_eq!(
                tree(dir.path()),
                vec!["c.toml"],
                "{what} `{bad}` wrote something"
            );
        }
        // A sweep record whose config was edited to such a name: merge refuses it too.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let rec = dir.path().join("rec");
        std::fs::create_dir(&rec).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(rec.join("config.toml"), &sweep).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(rec.join("trials.jsonl"), "").unwrap_or_else(|e| panic!("{e}"));
        let o = gradscope(&["merge", "rec", "--out", "out1"], dir.path(), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "merge `{bad}`: {err}");
        assert!(err.contains(&format!("`{bad}`")), "merge `{bad}`: {err}");
        assert_eq!(
            tree(dir.path()),
            vec!["rec", "rec/config.toml", "rec/trials.jsonl"],
            "merge `{bad}` wrote something"
        );
    }
}

/// The fixtures: records written at commit de88a6a, before `schema_version` (fixtures/v1/).
fn v1_fixture(name: &str) -> PathBuf {
    common::manifest_dir()
        .join("tests/it/fixtures/v1")
        .join(name)
}

/// Records of schema version 1 stay readable: each fixture parses into the schema's types as
/// version 1 (its `null` losses as NaN), and `gradscope report` builds its page from it.
#[test]
fn records_of_schema_version_1_stay_readable() {
    use gradscope_report::Report;
    let read = |dir: &Path, name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let cases = [
        ("run", "report.json", "seed-example-1"),
        ("run-nonfinite", "report.json", "relu-explodes-f32"),
        ("train", "report.json", "train-a-naive-ce-high-lr"),
        ("sweep", "summary.json", "small-sweep"),
        ("train-sweep", "summary.json", "small-train-sweep"),
    ];
    for (fixture, file, experiment) in cases {
        let dir = v1_fixture(fixture);
        let report =
            Report::from_json(&read(&dir, file)).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let (version, name) = match &report {
            Report::Run(r) => (r.schema_version, r.experiment.clone()),
            Report::Train(r) => (r.schema_version, r.experiment.clone()),
            Report::Sweep(r) => (r.schema_version, r.experiment.clone()),
            Report::Compare(r) => (r.schema_version, r.experiment.clone()),
        };
        assert_eq!((version, name.as_str()), (1, experiment), "{fixture}");

        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            std::fs::copy(e.path(), tmp.path().join(e.file_name()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let o = gradscope(&["report", "."], tmp.path(), &[]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{fixture}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let page = read(tmp.path(), "report.html");
        assert!(
            page.contains(&format!("<h1>{experiment}</h1>")),
            "{fixture}"
        );
    }
    // The training fixture's last step went non-finite; version 1 wrote its loss as null.
    let steps = read(&v1_fixture("train"), "steps.jsonl");
    let last = steps.lines().last().unwrap_or("");
    assert!(last.contains("\"loss\":null"), "{last}");
    let step: gradscope_report::StepRecord =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}"));
    assert!(step.loss.is_nan());
    let meta: gradscope_report::Meta = serde_json::from_str(&read(&v1_fixture("run"), "meta.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((meta.schema_version, meta.backend.as_str()), (1, "ndarray"));
}

/// A report.json that does not fit the schema is refused as bad input (exit 2), naming the
/// file and what did not fit.
#[test]
fn a_record_that_does_not_fit_the_schema_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        tmp.path().join("report.json"),
        r#"{"kind": "run", "experiment": 3}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["report", "."], tmp.path(), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("report.json") && stderr.contains("expected a string"),
        "{stderr}"
    );
}

/// Every record kind has a `meta.json`, and it names each file the experiment read with its
/// sha256, as `sha256sum` computes it (an independent implementation).
#[test]
fn every_record_has_meta_with_the_sha256_of_the_files_it_read() {
    let (dir, cfg) = setup();
    let o = gradscope(
        &["run", "seed1.toml", "--out", "rec", "--dump", "d"],
        dir.path(),
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The dump as the weights of a second run.
    let text = std::fs::read_to_string(&cfg).unwrap_or_default().replace(
        "bias_init = \"zeros\"",
        "bias_init = \"zeros\"\nweights = \"d/x.safetensors\"",
    );
    assert!(text.contains("weights ="), "{text}");
    std::fs::write(dir.path().join("w.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "w.toml", "--out", "rec2"], dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rec = &entries(&dir.path().join("rec2/seed-example-1"))[0];
    let meta: gradscope_report::Meta =
        serde_json::from_str(&std::fs::read_to_string(rec.join("meta.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.schema_version, gradscope_report::SCHEMA_VERSION);
    assert_eq!(meta.files.len(), 1, "{:?}", meta.files);
    let sum = std::process::Command::new("sha256sum")
        .arg(dir.path().join("d/x.safetensors"))
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    let want = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(want.len(), 64, "sha256sum printed {want}");
    assert_eq!(
        (meta.files[0].role.as_str(), meta.files[0].sha256.as_str()),
        ("weights", want.as_str())
    );

    // A training record and a sweep record have one too.
    let training = common::configs_dir().join("training/c-naive-cross-entropy-clipped.toml");
    let t = std::fs::read_to_string(training)
        .unwrap_or_default()
        .replace("steps = 200", "steps = 2");
    assert!(t.contains("steps = 2\n"), "{t}");
    std::fs::write(dir.path().join("t.toml"), t).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "t.toml", "--out", "rec3"], dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = std::fs::read_to_string(&cfg).unwrap_or_default() + "[sweep]\ntrials = 2\n";
    std::fs::write(dir.path().join("s.toml"), s).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "s.toml", "--out", "rec4"], dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for base in ["rec3/train-c-naive-ce-clipped", "rec4/seed-example-1"] {
        let rec = &entries(&dir.path().join(base))[0];
        let meta: gradscope_report::Meta = serde_json::from_str(
            &std::fs::read_to_string(rec.join("meta.json"))
                .unwrap_or_else(|e| panic!("{base}: {e}")),
        )
        .unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!((meta.backend.as_str(), meta.seed), ("ndarray", 1), "{base}");
        assert!(
            meta.files.is_empty(),
            "{base}: drawn, not read: {:?}",
            meta.files
        );
    }
}
