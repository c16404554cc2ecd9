//! The experiment language from the command line: new experiments without code, `validate`,
//! `list`, `show` (whose output runs back to the identical report), `--set`, input files and
//! the memory guard.

use crate::common;

use crate::common::{gradscope, npy};

use std::path::Path;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("{e}"));
}

fn seed_config(n: usize) -> String {
    let path = &common::seed_configs()[n];
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_new_experiment_is_a_copied_and_edited_file() {
    // Example 2, made deeper, tanh, He-initialised, with a batch of 8 uniform inputs.
    let dir = tempdir();
    let edited = seed_config(1)
        .replace("name = \"seed-example-2\"", "name = \"deep-tanh\"")
        .replace("hidden = [100, 50, 25]", "depth = 12\nwidth = 64")
        .replace("activation = \"relu\"", "activation = \"tanh\"")
        .replace(
            "kernel_init = \"glorot_uniform\"",
            "kernel_init = \"he_normal\"",
        )
        .replace("batch = 1", "batch = 8")
        .replace(
            "{ kind = \"normal\", mean = 0.0, std = 1.0 }",
            "{ kind = \"uniform\", low = -1.0, high = 1.0 }",
        );
    write(dir.path(), "deep.toml", &edited);
    let o = gradscope(&["run", "deep.toml", "--format", "json"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["experiment"], "deep-tanh");
    let params = v["cases"][0]["params"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        params.len(),
        2 * 13,
        "12 hidden layers + output, weight and bias each"
    );
    assert_eq!(params[2]["shape"], serde_json::json!([64, 64]));
    assert_eq!(v["cases"][0]["input"]["shape"], serde_json::json!([8, 10]));
}

#[test]
fn show_prints_every_default_and_runs_back_to_the_identical_report() {
    let root = common::configs_dir().join("..");
    let dir = tempdir();
    for (i, path) in common::seed_configs().iter().enumerate() {
        let shown = gradscope(&["show", &path.to_string_lossy()], &root);
        assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
        let toml = text(&shown.stdout);
        for key in [
            "gain = 1.0",
            "precision = \"f32\"",
            "bias = true",
            "loss = \"sum_squares\"",
            "kernel_init = \"glorot_uniform\"",
        ] {
            assert!(toml.contains(key), "{key} missing from:\n{toml}");
        }
        let file = format!("shown{i}.toml");
        write(dir.path(), &file, &toml);
        let original = gradscope(&["run", &path.to_string_lossy(), "--format", "json"], &root);
        let back = gradscope(&["run", &file, "--format", "json"], dir.path());
        assert_eq!(back.status.code(), Some(0), "{}", text(&back.stderr));
        assert_eq!(
            text(&original.stdout),
            text(&back.stdout),
            "show output must run to the same report"
        );
        // And showing the shown file gives the same TOML (but for the header comment).
        let again = gradscope(&["show", &file], dir.path());
        let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(body(&toml), body(&text(&again.stdout)));
    }
}

#[test]
fn show_writes_overrides_and_non_default_choices() {
    let dir = tempdir();
    let edited = seed_config(1)
        .replace("activation = \"relu\"", "activation = \"relu\"\nactivation_overrides = { 1 = { kind = \"leaky_relu\", slope = 0.2 }, 2 = \"gelu\" }\ngain = 2.0")
        .replace("loss = \"sum_squares\"", "loss = { kind = \"mse\", target = 1.5 }")
        .replace("bias_init = \"zeros\"", "bias_init = { kind = \"truncated_normal\", std = 0.1 }");
    write(dir.path(), "x.toml", &edited);
    let o = gradscope(&["show", "x.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("show_overrides", text(&o.stdout));
}

#[test]
fn set_overrides_keys_and_is_validated_like_the_file() {
    let root = common::configs_dir().join("..");
    let cfg = "configs/02-seed-deeper.toml";
    let o = gradscope(
        &[
            "run",
            cfg,
            "--set",
            "model.depth=5",
            "--set",
            "model.width=16",
            "--set",
            "seed=7",
            "--format",
            "json",
        ],
        &root,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["seed"], 7);
    assert_eq!(v["cases"][0]["params"].as_array().map(Vec::len), Some(12));
    // The same via show: the override lands in the resolved config.
    let s = gradscope(
        &[
            "show",
            cfg,
            "--set",
            "inputs.0.batch=4",
            "--set",
            "model.activation=tanh",
        ],
        &root,
    );
    let shown = text(&s.stdout);
    assert!(
        shown.contains("batch = 4") && shown.contains("activation = \"tanh\""),
        "{shown}"
    );

    let mut all = String::new();
    for set in [
        "model.dpeth=3",
        "model.depth=-2",
        "model.activation=rleu",
        "inputs.3.batch=2",
        "seed=\"x\"",
        "novalue",
    ] {
        let o = gradscope(&["run", cfg, "--set", set], &root);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", text(&o.stderr));
        all.push_str(&format!("--- {set}\n{}", text(&o.stderr)));
    }
    insta::assert_snapshot!("bad_sets", all);
}

#[test]
fn validate_and_list() {
    let root = common::configs_dir().join("..");
    let o = gradscope(&["validate", "configs"], &root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        common::seed_configs().len()
    );
    // The predefined sweeps, counterexamples and training runs are valid too: every file.
    let dirs = [
        "configs/sweeps",
        "configs/counterexamples",
        "configs/training",
    ];
    let o = gradscope(&[&["validate"][..], &dirs[..]].concat(), &root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let files: usize = dirs
        .iter()
        .map(|d| {
            gradscope::config::toml_files(&root.join(d))
                .unwrap_or_else(|e| panic!("{d}: {e}"))
                .len()
        })
        .sum();
    assert!(
        files >= 9,
        "2 sweeps, a counterexample, 5 training runs and a training sweep"
    );
    assert_eq!(
        text(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        files
    );
    let l = gradscope(&["list"], &root);
    assert_eq!(l.status.code(), Some(0));
    let listing = text(&l.stdout);
    for n in 1..=3 {
        assert!(listing.contains(&format!("seed-example-{n}")), "{listing}");
    }
    assert!(listing.contains("Mirrors seed example 3"), "{listing}");

    let dir = tempdir();
    write(dir.path(), "good.toml", seed_config(0));
    write(
        dir.path(),
        "bad.toml",
        seed_config(0).replace("seed = 1", "seed = -1"),
    );
    let v = gradscope(&["validate", "good.toml", "bad.toml"], dir.path());
    assert_eq!(v.status.code(), Some(2));
    assert!(text(&v.stdout).contains("ok  good.toml"));
    assert!(
        text(&v.stderr).starts_with("error: bad.toml:"),
        "{}",
        text(&v.stderr)
    );
}

#[test]
fn inputs_from_npy_and_safetensors_files() {
    let dir = tempdir();
    let hand = "name = \"hand\"\ndescription = \"d\"\nseed = 0\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
                kernel_init = { kind = \"constant\", value = 0.5 }\n[[inputs]]\nname = \"ones\"\nFILE\n";
    // Input [[1, 1]]: the hand-derived case of tests/it/gradients.rs (loss 1, ∂L/∂b2 = 2).
    write(dir.path(), "x.npy", npy(1, 2, &[1.0, 1.0]));
    let header = r#"{"input":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header.as_bytes());
    st.extend(
        1.0f32
            .to_le_bytes()
            .iter()
            .chain(1.0f32.to_le_bytes().iter()),
    );
    write(dir.path(), "x.safetensors", st);
    for file in ["x.npy", "x.safetensors"] {
        write(
            dir.path(),
            "f.toml",
            hand.replace("FILE", &format!("file = \"{file}\"")),
        );
        let o = gradscope(&["run", "f.toml", "--format", "json"], dir.path());
        assert_eq!(o.status.code(), Some(0), "{file}: {}", text(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["cases"][0]["loss"], 1.0, "{file}");
        assert_eq!(v["cases"][0]["params"][3]["max"], 2.0, "{file}");
    }
    // Bad files: missing, malformed, wrong width, wrong batch.
    write(dir.path(), "junk.npy", b"not numpy at all");
    write(dir.path(), "wide.npy", npy(1, 3, &[1.0, 2.0, 3.0]));
    let mut all = String::new();
    for (name, line) in [
        ("missing", "file = \"nope.npy\""),
        ("malformed", "file = \"junk.npy\""),
        ("wrong_width", "file = \"wide.npy\""),
        ("wrong_batch", "file = \"x.npy\"\nbatch = 3"),
        ("both", "file = \"x.npy\"\ndistribution = \"normal\""),
        ("neither", "batch = 1"),
    ] {
        write(
            dir.path(),
            &format!("{name}.toml"),
            hand.replace("FILE", line),
        );
        let o = gradscope(&["run", &format!("{name}.toml")], dir.path());
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
        all.push_str(&format!("--- {name}\n{}", text(&o.stderr)));
    }
    insta::assert_snapshot!("bad_input_files", all);
}

#[test]
fn a_config_too_large_for_memory_is_refused_before_allocating() {
    let dir = tempdir();
    // 8 layers of 2^20 x 2^20 kernels: 8·2^40 parameters, petabytes; no machine has that.
    let big = seed_config(1).replace("hidden = [100, 50, 25]", "depth = 8\nwidth = 1048576");
    write(dir.path(), "big.toml", big);
    let o = gradscope(&["run", "big.toml"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("this experiment needs about") && err.contains("GiB"),
        "{err}"
    );
    assert!(
        err.contains("hint: make the network or batch smaller, or pass --allow-large"),
        "{err}"
    );
    // compare holds every run's tensors at once, and says how many runs it counted.
    let o = gradscope(
        &["compare", "big.toml", "--backend", "ndarray,flex"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("comparing its 2 runs needs about"), "{err}");
    assert!(err.contains("or pass --allow-large"), "{err}");
}

/// The README's smallest training config: no `description`, no `[[inputs]]`. Its teacher
/// draws N(0, 1) inputs: the same batches as an explicit `distribution = "normal"` case
/// (mean 0, std 1) whose `batch`, which training does not use, is left out too.
#[test]
fn a_minimal_training_config_runs_with_n01_inputs() {
    let dir = tempdir();
    let minimal = "name = \"minimal\"\nseed = 3\nloss = \"cross_entropy\"\n\
                   [model]\ninput = 4\nhidden = [8]\noutput = 3\n\
                   [train]\nsteps = 4\nlearning_rate = 0.1\n";
    write(dir.path(), "m.toml", minimal);
    let explicit = minimal.replace(
        "[train]",
        "[[inputs]]\nname = \"x\"\ndistribution = { kind = \"normal\", mean = 0.0, std = 1.0 }\n[train]",
    );
    write(dir.path(), "e.toml", &explicit);
    let json = |file: &str| {
        let o = gradscope(&["run", file, "--format", "json"], dir.path());
        assert_eq!(o.status.code(), Some(0), "{file}: {}", text(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
        v
    };
    let (m, e) = (json("m.toml"), json("e.toml"));
    assert_eq!(m["steps_run"], 4);
    assert_eq!(m["description"], "");
    assert_eq!(m, e, "the default inputs are N(0, 1)");
    let load = |file: &str| {
        gradscope::config::load(&dir.path().join(file)).unwrap_or_else(|e| panic!("{e}"))
    };
    let (m, e) = (load("m.toml"), load("e.toml"));
    let (tm, te) = (m.task.train(), e.task.train());
    let (Some(tm), Some(te)) = (tm, te) else {
        panic!("no [train]")
    };
    let teacher = gradscope::train::teacher(&m);
    for step in 0..4 {
        assert_eq!(
            gradscope::train::batch(&m, tm, Some(&teacher), step),
            gradscope::train::batch(&e, te, Some(&teacher), step),
            "step {step}"
        );
    }
    // `show` writes neither, and what it writes runs back.
    let shown = gradscope(&["show", "m.toml"], dir.path());
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    let shown = text(&shown.stdout);
    assert!(
        !shown.contains("description") && !shown.contains("[[inputs]]"),
        "{shown}"
    );
    write(dir.path(), "shown.toml", &shown);
    let o = gradscope(&["validate", "shown.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// Every missing key of a file at once, each with its table and place; and the messages that
/// name what was wrong: integers with their range, ASCII names, paths that do not exist, a
/// `./configs` that is not there, negative thresholds.
#[test]
fn bad_input_is_named_all_at_once_and_in_plain_words() {
    let dir = tempdir();
    let mut all = String::new();
    let mut case = |name: &str, args: &[&str], cwd: &Path| {
        let o = gradscope(args, cwd);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("internal"),
            "{name}: {err}"
        );
        all.push_str(&format!("--- {name}\n{err}"));
    };
    // No name, no seed, no model.input, a case without name and batch, no train.learning_rate.
    write(
        dir.path(),
        "lacking.toml",
        "loss = \"cross_entropy\"\n[model]\nhidden = [4]\noutput = 2\n\
         [[inputs]]\ndistribution = \"normal\"\n[train]\nsteps = 3\n",
    );
    case(
        "every missing key",
        &["validate", "lacking.toml"],
        dir.path(),
    );
    write(
        dir.path(),
        "plain.toml",
        "name = \"p\"\nseed = 1\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n",
    );
    case(
        "no inputs, no train",
        &["validate", "plain.toml"],
        dir.path(),
    );
    write(
        dir.path(),
        "nocase.toml",
        "name = \"p\"\nseed = 1\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
         [[inputs]]\nname = \"x\"\ndistribution = \"normal\"\n",
    );
    case(
        "a drawn case without batch",
        &["validate", "nocase.toml"],
        dir.path(),
    );
    write(
        dir.path(),
        "p.toml",
        "name = \"p\"\nseed = 1\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n[[inputs]]\nname = \"x\"\nbatch = 1\ndistribution = \"normal\"\n",
    );
    case(
        "seed as a string",
        &["validate", "p.toml", "--set", "seed=\"x\""],
        dir.path(),
    );
    case(
        "width as a float",
        &["validate", "p.toml", "--set", "model.input=2.5"],
        dir.path(),
    );
    case(
        "a name in Greek",
        &["validate", "p.toml", "--set", "name=\"δέλτα\""],
        dir.path(),
    );
    case(
        "report of nothing",
        &["report", "/nonexistent/record"],
        dir.path(),
    );
    case("run --all without configs", &["run", "--all"], dir.path());
    case("list without configs", &["list"], dir.path());
    case(
        "negative --vanishing",
        &["run", "p.toml", "--vanishing", "-1"],
        dir.path(),
    );
    case(
        "--vanishing above --exploding",
        &["run", "p.toml", "--vanishing", "10", "--exploding", "5"],
        dir.path(),
    );
    write(
        dir.path(),
        "t.toml",
        "name = \"t\"\nseed = 1\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
         [train]\nsteps = 2\nlearning_rate = 0.1\n",
    );
    case("compare without inputs", &["compare", "t.toml"], dir.path());
    insta::assert_snapshot!("bad_input_in_plain_words", all);
}

/// The training config the README shows under "Training runs" runs as written (3 steps of it
/// here): a whole experiment, without `description` or `[[inputs]]`.
#[test]
fn the_readmes_training_config_runs_as_written() {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("### Training runs")
        .nth(1)
        .unwrap_or_else(|| panic!("no Training runs section"));
    let config = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("no toml block in Training runs"));
    assert!(
        config.contains("[train]") && config.contains("[model]"),
        "{config}"
    );
    let dir = tempdir();
    write(dir.path(), "readme.toml", config);
    let o = gradscope(
        &[
            "run",
            "readme.toml",
            "--set",
            "train.steps=3",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["steps_run"], 3);
    assert_eq!(v["experiment"], "first-training");
}
