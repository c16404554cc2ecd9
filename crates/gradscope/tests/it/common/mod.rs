//! Helpers shared by the integration tests: the f64 oracle and tolerant comparisons.
#![allow(dead_code)]

pub mod oracle;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gradscope::backend::Backend;
use gradscope::config::{self, Experiment, Source};
use gradscope::run;

/// Run the gradscope binary with `args` in `cwd`, with extra environment variables.
pub fn gradscope_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradscope"));
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start gradscope: {e}"))
}

/// Run the binary in `cwd`. A `run` without `--out` gets `--no-record`, so no test writes run
/// records into the source tree; record writing has its own tests (tests/it/records.rs).
pub fn gradscope(args: &[&str], cwd: &Path) -> Output {
    let mut args: Vec<&str> = args.to_vec();
    if args.first() == Some(&"run") && !args.contains(&"--out") {
        args.push("--no-record");
    }
    gradscope_env(&args, cwd, &[])
}

/// This crate's directory in the checkout under test: `cargo test` sets `CARGO_MANIFEST_DIR`
/// for the test process too. The path `env!` bakes in at build time is only the fallback: a
/// target directory shared by two checkouts (`.ci/run` keeps one under `$HOME/.cache`) can run
/// a test binary built in the other one, which would then read that checkout's files.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The workspace's `configs/` directory.
pub fn configs_dir() -> PathBuf {
    manifest_dir().join("../../configs")
}

/// Every config in `configs/`, sorted.
pub fn seed_configs() -> Vec<PathBuf> {
    config::configs_in(&configs_dir())
}

/// Compare `got` (f32, from Burn) with `want` (f64, from the oracle or another backend):
/// relative error ≤ `rel` where |want| ≥ 1e-2·max|want| ("not near zero"), and absolute error
/// ≤ `rel`·max|want| (plus `abs_floor`) everywhere. Returns the first violation as a message.
///
/// Why 1 % of the tensor's largest magnitude: an f32 gradient entry is a sum of products whose
/// rounding error is about 6e-8 times the size of its terms, which are of the order of the
/// largest entries. An entry at 1e-3 of the scale can so carry 6e-5 relative error from
/// cancellation alone (seen on seed example 3); at 1e-2 of the scale at most about 6e-6.
pub fn close(
    what: &str,
    got: &[f32],
    want: &[f64],
    rel: f64,
    abs_floor: f64,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        let diff = (g - w).abs();
        if !g.is_finite() || diff > rel * scale + abs_floor {
            return Err(format!(
                "{what}[{i}]: got {g:e}, want {w:e} (scale {scale:e})"
            ));
        }
        if w.abs() >= 1e-2 * scale && diff > rel * w.abs() + abs_floor {
            return Err(format!(
                "{what}[{i}]: got {g:e}, want {w:e}: relative error {:e}",
                diff / w.abs()
            ));
        }
    }
    Ok(())
}

/// The worst error of `got` against `want` in `close`'s measure: |got − want| relative to
/// |want| where |want| ≥ 1 % of the tensor's largest magnitude, relative to that largest
/// magnitude elsewhere. Infinite when `got` is not finite.
pub fn worst_error(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0.0, |worst, (&g, &w)| {
        let g = f64::from(g);
        let diff = if g.is_finite() {
            (g - w).abs()
        } else {
            f64::INFINITY
        };
        let base = if w.abs() >= 1e-2 * scale {
            w.abs()
        } else {
            scale
        };
        worst.max(if base > 0.0 { diff / base } else { diff })
    })
}

/// The normwise relative error ‖got − want‖₂ / ‖want‖₂ (infinite when `got` holds a non-finite
/// value; 0 against an all-zero `want` only when `got` is all zero too).
pub fn normwise_error(got: &[f32], want: &[f64]) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        let g = f64::from(g);
        if !g.is_finite() {
            return f64::INFINITY;
        }
        diff += (g - w).powi(2);
        norm += w * w;
    }
    if norm > 0.0 {
        (diff / norm).sqrt()
    } else if diff > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Every activation as a TOML value; those with a parameter also at a non-default value
/// (leaky_relu's default slope is 0.01, elu's default alpha 1).
pub const EVERY_ACTIVATION: [&str; 11] = [
    "\"relu\"",
    "\"leaky_relu\"",
    "{ kind = \"leaky_relu\", slope = 0.2 }",
    "\"elu\"",
    "{ kind = \"elu\", alpha = 0.5 }",
    "\"gelu\"",
    "\"silu\"",
    "\"softplus\"",
    "\"sigmoid\"",
    "\"tanh\"",
    "\"identity\"",
];

/// A network deep enough for rounding to compound and for a wrong derivative to show: 8 hidden
/// layers of width 24 with `activation`, he_normal kernels, N(0, 0.2²) biases (non-zero, so
/// bias gradients and shifted pre-activations are exercised), a batch of 5 N(0, 1) inputs.
/// He scaling keeps the pre-activations of order 1-3 at every depth, where gelu's exact
/// derivative and that of its tanh approximation are furthest apart.
pub fn activation_experiment(activation: &str) -> Experiment {
    config::parse(Source {
        path: "every-activation.toml".into(),
        text: activation_toml(activation),
    })
    .unwrap_or_else(|e| panic!("{activation}: {e}"))
}

/// The TOML text of [`activation_experiment`].
pub fn activation_toml(activation: &str) -> String {
    // The name says which activation: `{ kind = "elu", alpha = 0.5 }` -> `kind-elu-alpha-0.5`.
    let name = activation
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!(
        "name = \"{name}\"\ndescription = \"d\"\nseed = 11\nloss = \"sum_squares\"\n\
         [model]\ninput = 12\ndepth = 8\nwidth = 24\noutput = 3\nactivation = {activation}\n\
         kernel_init = \"he_normal\"\nbias_init = {{ kind = \"normal\", std = 0.2 }}\n\
         [[inputs]]\nname = \"x\"\nbatch = 5\ndistribution = \"normal\"\n"
    )
}

/// Every tensor of a Burn case next to the oracle's: (name, Burn's values, the oracle's) for
/// the loss, each parameter gradient (`layers.{l}.weight`, `layers.{l}.bias`) and each δ_l.
fn pairs<'a>(
    case: &'a run::CaseOutcome,
    want: &'a oracle::OracleResult,
) -> Vec<(String, &'a [f32], &'a [f64])> {
    let mut v = vec![(
        "loss".to_string(),
        std::slice::from_ref(&case.loss),
        std::slice::from_ref(&want.loss),
    )];
    let mut grads = case.grads.iter();
    for (l, (gw, gb)) in want.grads.iter().enumerate() {
        for (suffix, values) in [("weight", gw), ("bias", gb)] {
            let name = format!("layers.{l}.{suffix}");
            // Without biases Burn has no bias parameter, and the oracle's bias gradient is unused.
            if suffix == "bias" && case.grads.len() == want.grads.len() {
                continue;
            }
            let g = grads.next().unwrap_or_else(|| panic!("Burn has no {name}"));
            assert_eq!(g.name, name);
            v.push((name, g.tensor.data.as_slice(), values.as_slice()));
        }
    }
    for (l, d) in case.deltas.iter().enumerate() {
        v.push((
            format!("delta.layers.{l}"),
            d.data.as_slice(),
            want.deltas[l].as_slice(),
        ));
    }
    v
}

/// Run `exp` on `backend` and compare the loss, every parameter gradient and every δ_l with
/// the f64 oracle; panics past `rel` (in `close`'s measure), else returns the worst error seen.
pub fn check_against_oracle(exp: &Experiment, backend: &Backend, rel: f64) -> f64 {
    let outcome = run::execute(exp, backend).unwrap_or_else(|e| panic!("{e}"));
    let mut worst = 0.0f64;
    for case in &outcome.cases {
        let want = oracle::oracle(&outcome.weights, &case.input, exp.loss);
        for (what, got, want) in pairs(case, &want) {
            let at = format!(
                "{} / {} / {what} on {}",
                exp.name,
                case.name,
                backend.kind.name()
            );
            close(&at, got, want, rel, 0.0).unwrap_or_else(|e| panic!("{e}"));
            worst = worst.max(worst_error(got, want));
        }
    }
    worst
}

/// The least error a plain f32 evaluation is credited with: 8 units in the last place
/// (u = 2⁻²⁴). A single value such as the loss can land within one ulp by luck in one
/// summation order and not in another (measured: Burn 1.4e-7 to 5.7e-7 on the loss, 10 ulps at
/// most, where the plain loop was within 1 ulp).
pub const F32_FLOOR: f64 = 8.0 * 5.960464477539063e-8;

/// "Within a few f32 roundings", made concrete: for every tensor (loss, each gradient, each
/// δ_l), Burn's normwise relative error against the f64 oracle (`normwise_error`) is at most
/// `factor` times that of a plain f32 evaluation of the same network
/// (`oracle::oracle_rounded`: the same loops, every operation rounded to f32), which is what
/// f32 rounding alone does to that tensor; the plain evaluation is credited with at least
/// [`F32_FLOOR`]. The same run is also held element-wise to `rel` (as `check_against_oracle`).
/// Returns the worst element-wise error and the largest normwise ratio seen.
pub fn check_within_f32_rounding(
    exp: &Experiment,
    backend: &Backend,
    factor: f64,
    rel: f64,
) -> (f64, f64) {
    let outcome = run::execute(exp, backend).unwrap_or_else(|e| panic!("{e}"));
    let (mut worst, mut largest) = (0.0f64, 0.0f64);
    for case in &outcome.cases {
        let want = oracle::oracle(&outcome.weights, &case.input, exp.loss);
        let plain = oracle::oracle_rounded(&outcome.weights, &case.input, exp.loss);
        let plain_pairs = pairs(case, &plain);
        for ((what, got, want), (_, _, plain)) in pairs(case, &want).into_iter().zip(plain_pairs) {
            let at = format!(
                "{} / {} / {what} on {}",
                exp.name,
                case.name,
                backend.kind.name()
            );
            close(&at, got, want, rel, 0.0).unwrap_or_else(|e| panic!("{e}"));
            worst = worst.max(worst_error(got, want));
            let plain: Vec<f32> = plain.iter().map(|&v| v as f32).collect();
            let burn_error = normwise_error(got, want);
            let f32_error = normwise_error(&plain, want).max(F32_FLOOR);
            assert!(
                burn_error <= factor * f32_error,
                "{} / {} / {what} on {}: normwise error {burn_error:.2e} against the f64 oracle, \
                 more than {factor} x the {f32_error:.2e} of a plain f32 evaluation",
                exp.name,
                case.name,
                backend.kind.name()
            );
            largest = largest.max(burn_error / f32_error);
        }
    }
    (worst, largest)
}

/// A 2-D little-endian f32 `.npy` file (format version 1), as NumPy writes it.
pub fn npy(rows: usize, cols: usize, values: &[f32]) -> Vec<u8> {
    npy_of(&format!("({rows}, {cols})"), values)
}

/// A version-1.0 .npy file of f32 `values` with the shape written as Python does
/// (`(3,)`, `(2, 4)`).
pub fn npy_of(shape: &str, values: &[f32]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// A `.safetensors` file of F32 tensors written from the format's specification (an 8-byte
/// header length, a JSON header of dtype, shape and data offsets, then the data), not by the
/// safetensors crate gradscope reads it with.
pub fn write_by_spec(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let begin = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(data);
    out
}

/// Whether a real part a test needs (a program, a running service) is `present`; where it is
/// not, the test skips with `why` printed, except under CI (`CI` set), where it fails: `.ci/run`
/// provides every part (`provided` says how).
pub fn part_or_skip(test: &str, present: bool, provided: &str, why: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI must run this test: {provided}"
        );
        eprintln!("skipping {test}: {why}");
    }
    present
}

/// The wgpu backend, or `None` with a printed reason where this machine has no adapter; under
/// CI (`CI` set) a missing adapter fails instead, because `.ci/run` installs lavapipe.
pub fn wgpu_or_skip(test: &str) -> Option<gradscope::backend::Backend> {
    use gradscope::backend::{self, BackendKind};
    match backend::open(BackendKind::Wgpu, None) {
        Ok(b) => Some(b),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: wgpu must work in CI: {e}"),
        Err(e) => {
            eprintln!("skipping {test}: no wgpu adapter on this machine: {e}");
            None
        }
    }
}

/// ndarray, flex and (where there is an adapter) wgpu.
pub fn every_backend(test: &str) -> Vec<gradscope::backend::Backend> {
    use gradscope::backend::{self, BackendKind};
    let mut b: Vec<_> = [BackendKind::Ndarray, BackendKind::Flex]
        .into_iter()
        .map(|k| backend::open(k, None).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    b.extend(wgpu_or_skip(test));
    b
}

/// The record directories of experiment `name` under `base`, sorted.
pub fn record_dirs_of(base: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(base.join(name))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// A file's text (the test fails, naming the file, when it cannot be read).
pub fn read_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The hand network: 2 → 2 → 1, every kernel entry 0.5, zero biases, one input of ones (its
/// values are derived by hand in cli.rs's snapshots).
pub const HAND: &str = r#"name = "hand"
description = "Hand-computable: constant weights 0.5, zero biases, input of ones"
seed = 0
[model]
input = 2
hidden = [2]
output = 1
kernel_init = { kind = "constant", value = 0.5 }
[[inputs]]
name = "ones"
batch = 1
distribution = { kind = "constant", value = 1.0 }
"#;

/// A deep network for precision comparisons: depth 8, width 64, tanh under he_normal with
/// N(0, 0.1²) biases, a batch of 16 N(0, 1) inputs.
pub const DEEP: &str = r#"name = "deep"
seed = 2
[model]
input = 32
depth = 8
width = 64
output = 4
activation = "tanh"
kernel_init = "he_normal"
bias_init = { kind = "normal", std = 0.1 }
[[inputs]]
name = "x"
batch = 16
distribution = "normal"
"#;
