//! `gradscope validate`, `list` and `show`: experiment files read and checked, never run.

use std::io::Write;
use std::path::PathBuf;

use crate::config;

use super::{CommandError, CommandResult, ExitStatus, expand};

/// `gradscope validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Experiment files, or directories of them.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Override a config key, e.g. `--set model.depth=32` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// `gradscope list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Directory to list (default: ./configs).
    #[arg(value_name = "DIR", default_value = "configs")]
    pub dir: PathBuf,
}

/// `gradscope show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The experiment file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Override a config key, e.g. `--set seed=7` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub(super) fn validate(args: &ValidateArgs, out: &mut dyn Write) -> CommandResult {
    let files = expand(&args.files, false).map_err(CommandError::bad_input)?;
    let mut errors = Vec::new();
    for file in files {
        match config::sets::load_with_sets(&file, &args.sets) {
            Ok(exp) => {
                let _ = writeln!(out, "ok  {}  ({})", file.display(), exp.name);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    every_file(errors)
}

/// Ok where no file had an error; else every error, bad input.
fn every_file(errors: Vec<String>) -> CommandResult {
    match errors.is_empty() {
        true => Ok(ExitStatus::Ok),
        false => Err(CommandError {
            status: ExitStatus::BadInput,
            messages: errors,
        }),
    }
}

pub(super) fn list(args: &ListArgs, out: &mut dyn Write) -> CommandResult {
    if !args.dir.is_dir() {
        let why = if args.dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        let m = format!(
            "{}: {why} (list shows the experiments of a directory)",
            args.dir.display()
        );
        return Err(CommandError::bad_input(m));
    }
    let files = expand(std::slice::from_ref(&args.dir), false).map_err(CommandError::bad_input)?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for file in files {
        match config::load(&file) {
            Ok(exp) => rows.push((file.display().to_string(), exp.name, exp.description)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let fw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let nw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (file, name, description) in rows {
        let _ = writeln!(out, "{file:fw$}  {name:nw$}  {description}");
    }
    every_file(errors)
}
