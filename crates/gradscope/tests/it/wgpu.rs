//! The wgpu backend, for real: the same seed gives the same weights and inputs on ndarray,
//! flex and wgpu, and gradients that agree; the oracle holds on wgpu; a missing adapter is a
//! clear exit-2 error.
//!
//! All wgpu tests live in this one test binary so the device is set up once per process. On a
//! machine without a Vulkan/GL driver they skip with a printed reason; under CI (`CI` set) a
//! missing adapter fails instead, because `.ci/run` installs lavapipe.

use crate::common;

use std::process::Command;

use crate::common::{
    EVERY_ACTIVATION, activation_experiment, activation_toml, close, seed_configs, wgpu_or_skip,
};
use gradscope::backend::{self, Backend, BackendKind};
use gradscope::config;
use gradscope::run;
use gradscope_model::{Mlp, collect_parameters};

/// `got` agrees with `want` (another backend's run of the same case): identical input; loss,
/// every gradient and every δ within 1e-4 relative, 1e-6 absolute near zero (issue 3's
/// tolerance).
fn assert_case_close(at: &str, got: &run::CaseOutcome, want: &run::CaseOutcome) {
    let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let check = |what: &str, g: &[f32], w: &[f32]| {
        close(&format!("{at} / {what}"), g, &f64s(w), 1e-4, 1e-6).unwrap_or_else(|e| panic!("{e}"));
    };
    assert_eq!(got.input, want.input, "{at}: inputs must be bit-identical");
    check("loss", &[got.loss], &[want.loss]);
    assert_eq!(got.grads.len(), want.grads.len(), "{at}");
    for (g, w) in got.grads.iter().zip(&want.grads) {
        assert_eq!(
            (&g.name, &g.tensor.shape),
            (&w.name, &w.tensor.shape),
            "{at}"
        );
        check(&g.name, &g.tensor.data, &w.tensor.data);
    }
    assert_eq!(got.deltas.len(), want.deltas.len(), "{at}");
    for (l, (g, w)) in got.deltas.iter().zip(&want.deltas).enumerate() {
        check(&format!("δ{l}"), &g.data, &w.data);
    }
}

#[test]
fn wgpu_reports_its_adapter() {
    let Some(b) = wgpu_or_skip("wgpu_reports_its_adapter") else {
        return;
    };
    let adapter = b.adapter.unwrap_or_default();
    assert!(!adapter.is_empty(), "the adapter name must be reported");
    eprintln!("wgpu adapter: {adapter}");
}

#[test]
fn same_seed_same_weights_inputs_and_gradients_on_every_backend() {
    let Some(wgpu) = wgpu_or_skip("parity") else {
        return;
    };
    let cpu: Vec<Backend> = [BackendKind::Ndarray, BackendKind::Flex]
        .into_iter()
        .map(|k| backend::open(k, None).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    for path in seed_configs() {
        let exp = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let reference = run::execute(&exp, &cpu[0]).unwrap_or_else(|e| panic!("{e}"));
        for b in cpu.iter().skip(1).chain(std::iter::once(&wgpu)) {
            // Weights loaded onto the device read back bit for bit.
            let model = Mlp::from_weights(&reference.weights, &b.device);
            let on_device = collect_parameters(&model);
            let host: Vec<&[f32]> = reference
                .weights
                .layers
                .iter()
                .flat_map(|l| {
                    std::iter::once(l.weight.data.as_slice())
                        .chain(l.bias.iter().map(|b| b.data.as_slice()))
                })
                .collect();
            let back: Vec<&[f32]> = on_device.iter().map(|p| p.tensor.data.as_slice()).collect();
            assert_eq!(
                back,
                host,
                "{}: weights differ on {}",
                exp.name,
                b.kind.name()
            );

            let other = run::execute(&exp, b).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(other.weights, reference.weights);
            for (r, o) in reference.cases.iter().zip(&other.cases) {
                let at = format!("{} / {}: ndarray vs {}", exp.name, r.name, b.kind.name());
                assert_case_close(&at, o, r);
            }
        }
    }
}

#[test]
fn wgpu_gradients_match_the_oracle() {
    let Some(b) = wgpu_or_skip("oracle") else {
        return;
    };
    for path in seed_configs() {
        let exp = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        common::check_against_oracle(&exp, &b, 1e-5);
    }
}

#[test]
fn wgpu_run_from_the_command_line_names_backend_and_adapter() {
    let Some(b) = wgpu_or_skip("cli") else { return };
    let root = common::configs_dir().join("..");
    let o = Command::new(env!("CARGO_BIN_EXE_gradscope"))
        .args([
            "run",
            "configs/01-seed-single-hidden.toml",
            "--backend",
            "wgpu",
            "--format",
            "json",
            "--no-record",
        ])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.is_empty(),
        "stderr must stay free of driver noise, got:\n{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["backend"], "wgpu");
    assert_eq!(v["adapter"].as_str(), b.adapter.as_deref());
}

/// Run the binary on wgpu, with every graphics driver hidden when `hide_drivers`.
fn run_wgpu(extra: &[&str], hide_drivers: bool) -> std::process::Output {
    let root = common::configs_dir().join("..");
    let mut args = vec![
        "run",
        "configs/01-seed-single-hidden.toml",
        "--backend",
        "wgpu",
        "--no-record",
    ];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradscope"));
    cmd.args(&args).current_dir(&root);
    if hide_drivers {
        // No Vulkan ICD and no EGL vendor: neither Vulkan nor OpenGL can find a device.
        cmd.env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json");
    }
    cmd.output().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn missing_adapter_is_a_clear_exit_2() {
    let o = run_wgpu(&[], true);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    // The detail line is wgpu's own words; the first and last lines are ours.
    let first = err.lines().next().unwrap_or("");
    let first = first.split(": tried").next().unwrap_or("").to_string();
    let hint = err.lines().last().unwrap_or("").to_string();
    insta::assert_snapshot!("missing_adapter", format!("{first}\n{hint}\n"));
    assert!(err.contains("tried adapter `default`"), "{err}");
}

#[test]
fn a_selector_that_matches_no_adapter_is_exit_2() {
    // No machine this runs on has eight discrete GPUs; lavapipe is a `cpu` adapter.
    let o = run_wgpu(&["--device", "discrete:7"], false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("tried adapter `discrete:7`"), "{err}");
    assert!(err.ends_with("hint: install a Vulkan driver (on Debian: mesa-vulkan-drivers) or use --backend ndarray\n"), "{err}");
}

#[test]
fn stacked_trials_on_wgpu_match_single_runs_on_ndarray() {
    // A sweep's path on wgpu (run::execute_stack: batched matmuls, [T, batch, d] tensors)
    // against the plain path on ndarray, trial by trial: seed config 3 (three cases, batch 1
    // and 3) as 4 trials with seeds 3..6.
    let Some(wgpu) = wgpu_or_skip("stack") else {
        return;
    };
    let ndarray = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    let path = seed_configs()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("03-"))
        .unwrap_or_else(|| panic!("seed config 3"));
    let exp = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let trials: Vec<_> = (0..4)
        .map(|t| gradscope::sweep::trial_experiment(&exp, exp.seed, t))
        .collect();
    let stacked = run::execute_stack(&trials, &wgpu, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stacked.len(), 4);
    for (t, (trial, got)) in trials.iter().zip(&stacked).enumerate() {
        let want = run::execute(trial, &ndarray).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.weights, want.weights);
        for (g, w) in got.cases.iter().zip(&want.cases) {
            let at = format!("trial {t} / {}: wgpu stack vs ndarray", w.name);
            assert_case_close(&at, g, w);
        }
    }
}

/// Issue 11 on wgpu: every activation (gelu with its exact derivative), on a depth-8 network
/// with a batch of 5 and non-zero biases, agrees with the f64 oracle within a few f32 roundings,
/// with the CPU backends' bounds (tests/it/gradients.rs says why). wgpu's erf is Abramowitz &
/// Stegun 7.1.26 (absolute error ≤ 1.5e-7, cubecl-core polyfills.rs), inside them.
#[test]
fn every_activation_matches_the_oracle_on_wgpu() {
    let Some(b) = wgpu_or_skip("every_activation_matches_the_oracle_on_wgpu") else {
        return;
    };
    for activation in EVERY_ACTIVATION {
        let exp = activation_experiment(activation);
        let (worst, ratio) =
            common::check_within_f32_rounding(&exp, &b, crate::gradients::F32_FACTOR, 1e-4);
        eprintln!(
            "wgpu {activation}: worst error {worst:.2e}; at most {ratio:.2} x a plain f32 evaluation's"
        );
    }
}

/// Issue 11: `gradscope compare` over ndarray, flex and wgpu, every activation in one process:
/// the three agree within the default tolerance (1e-4), gelu included, so exit 0.
#[test]
fn compare_finds_every_activation_in_agreement_on_all_three_backends() {
    if wgpu_or_skip("compare_finds_every_activation_in_agreement_on_all_three_backends").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut args = vec!["compare".to_string()];
    for (i, a) in EVERY_ACTIVATION.iter().enumerate() {
        let file = format!("a{i:02}.toml");
        std::fs::write(dir.path().join(&file), activation_toml(a))
            .unwrap_or_else(|e| panic!("{e}"));
        args.push(file);
    }
    args.extend(["--backend", "ndarray,flex,wgpu", "--format", "json"].map(String::from));
    let o = Command::new(env!("CARGO_BIN_EXE_gradscope"))
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), EVERY_ACTIVATION.len());
    for (a, r) in EVERY_ACTIVATION.iter().zip(&reports) {
        assert_eq!(r["backends"][2]["name"], "wgpu");
        assert_eq!(r["agree"], true, "{a}: {r}");
        eprintln!(
            "compare {a}: largest relative difference {}",
            r["max_rel_diff"]
        );
    }
}

/// `compare` with wgpu in its list (the default) on a machine without a graphics driver: exit 2
/// before anything runs, with a hint that fits compare (two backends), not run's.
#[test]
fn compare_without_an_adapter_is_exit_2_with_a_hint_for_compare() {
    let root = common::configs_dir().join("..");
    let o = Command::new(env!("CARGO_BIN_EXE_gradscope"))
        .args(["compare", "configs/01-seed-single-hidden.toml"])
        .current_dir(&root)
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty());
    assert!(
        err.ends_with("or compare the CPU backends only: --backend ndarray,flex\n"),
        "{err}"
    );
}
