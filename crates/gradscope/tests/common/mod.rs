//! Helpers shared by the integration tests: the f64 oracle and tolerant comparisons.
#![allow(dead_code)]

pub mod oracle;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
/// records into the source tree; record writing has its own tests (tests/records.rs).
pub fn gradscope(args: &[&str], cwd: &Path) -> Output {
    let mut args: Vec<&str> = args.to_vec();
    if args.first() == Some(&"run") && !args.contains(&"--out") {
        args.push("--no-record");
    }
    gradscope_env(&args, cwd, &[])
}

/// The workspace's `configs/` directory.
pub fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// Every config in `configs/`, sorted.
pub fn seed_configs() -> Vec<PathBuf> {
    gradscope::cli::configs_in(&configs_dir())
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
