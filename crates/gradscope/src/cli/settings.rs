//! The settings stage `run` and `compare` share, as ripgrep's `HiArgs` and uv's `settings.rs`
//! turn raw flags into what the commands read: the files named, each loaded with its `--set`s
//! and validated (a sweep's points once, in its plan), its memory estimate checked, and the
//! backends checked for the precisions they will run. Each command then checks its own flags
//! against these and runs from what it settled; nothing downstream reads a flag again.

use std::path::PathBuf;

use gradscope_model::Activation;

use crate::backend::Backend;
use crate::config::{self, ConfigError, Experiment, Precision};

use super::expand;

/// The memory a run may use: what the machine has, or `None` (not checked) with
/// `--allow-large`.
pub(super) fn available_memory(allow_large: bool) -> Option<u128> {
    if allow_large {
        None
    } else {
        config::available_memory()
    }
}

/// A file named on the command line, and what loading it gave.
pub(super) type Loaded = (PathBuf, Result<Experiment, ConfigError>);

/// The files `paths` (and with `all`, ./configs) name, each loaded with `sets`, validated and
/// its memory checked against `available` (`None`: not checked): one result per file, in order, so that a command reports every file's
/// problem, its own refusals among them, in file order. `Err` where the paths themselves
/// cannot be listed.
pub(super) fn load_each(
    paths: &[PathBuf],
    all: bool,
    sets: &[String],
    available: Option<u128>,
) -> Result<Vec<Loaded>, String> {
    let files = expand(paths, all).map_err(|e| e.to_string())?;
    Ok(files
        .into_iter()
        .map(|file| {
            let loaded = config::sets::load_with_sets(&file, sets).and_then(|e| {
                check_memory(&e, available)?;
                Ok(e)
            });
            (file, loaded)
        })
        .collect())
}

/// `exp`'s memory estimate, and each of its sweep points', against `available`.
fn check_memory(exp: &Experiment, available: Option<u128>) -> Result<(), ConfigError> {
    let points = exp.sweep.iter().flat_map(|s| s.points());
    for e in std::iter::once(exp).chain(points) {
        config::check_memory(e, available)?;
    }
    Ok(())
}

/// Why a backend cannot run a precision: the precision and the device's reason.
pub(super) struct Refused {
    /// The precision refused.
    pub precision: Precision,
    /// Why.
    pub reason: String,
}

/// The precisions of `precisions` that `backend` cannot run, each with the device's reason.
pub(super) fn refused_precisions(backend: &Backend, precisions: &[Precision]) -> Vec<Refused> {
    precisions
        .iter()
        .filter_map(|&p| {
            let e = backend.check_precision(p).err()?;
            Some(Refused {
                precision: p,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Whether `backend` computes the element-wise operations `activations` need in f64 as the
/// host does (wgpu's f64 transcendentals through naga may not).
pub(super) fn check_f64(backend: &Backend, activations: &[Activation]) -> Result<(), String> {
    backend
        .check_f64_activations(activations)
        .map_err(|e| e.to_string())
}

/// The activations `exp` computes in f64: its own where it runs in f64, and those of each
/// sweep point that does.
pub(super) fn f64_activations(exp: &Experiment) -> Vec<Activation> {
    let points: Vec<&Experiment> = match &exp.sweep {
        Some(sweep) => sweep.points().collect(),
        None => vec![exp],
    };
    points
        .into_iter()
        .filter(|e| e.precision == Precision::F64)
        .flat_map(|e| e.model.activations.iter().copied())
        .collect()
}
