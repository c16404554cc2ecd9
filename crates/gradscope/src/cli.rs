//! The command line: raw flags (clap) → validated settings → runs → reports and exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{self, Backend, BackendKind};
use crate::config::{self, ConfigError, Experiment};
use crate::report::ExperimentReport;
use crate::run;

/// Exit code: every experiment ran and every gradient value is finite.
pub const EXIT_OK: i32 = 0;
/// Exit code: a failure that is not the input's fault (an internal or device error).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad input (command line, config file, unusable backend choice).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: some gradient value is NaN or infinite (see `--allow-nonfinite`).
pub const EXIT_NONFINITE: i32 = 3;

/// Measure how gradients behave in multi-layer networks.
#[derive(Debug, Parser)]
#[command(name = "gradscope", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 ok, 1 failure, 2 bad input, 3 a gradient is not finite.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run experiments and report per-parameter gradient statistics.
    Run(RunArgs),
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON object per experiment, one per line (JSON Lines).
    Json,
}

/// `gradscope run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment files (TOML), or directories whose `*.toml` files are all run.
    #[arg(value_name = "FILE", required_unless_present = "all")]
    pub files: Vec<PathBuf>,
    /// Run every `*.toml` in ./configs (in name order).
    #[arg(long)]
    pub all: bool,
    /// Backend: overrides the file's `backend`; without either, `ndarray`.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// wgpu adapter: default, cpu, discrete:N, integrated:N or virtual:N.
    #[arg(long, value_name = "SELECTOR")]
    pub device: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 0 rather than 3 when some gradient value is not finite.
    #[arg(long)]
    pub allow_nonfinite: bool,
}

/// Run the parsed command line, writing reports to `out` and diagnostics to `err`; returns the
/// exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match cli.command {
        Command::Run(args) => run_experiments(&args, out, err),
    }
}

fn expand(args: &RunArgs) -> Result<Vec<PathBuf>, ConfigError> {
    let mut inputs = args.files.clone();
    if args.all {
        inputs.push(PathBuf::from("configs"));
    }
    let mut files = Vec::new();
    for path in inputs {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| ConfigError::file(&path, format!("cannot list the directory: {e}")))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            if found.is_empty() {
                return Err(ConfigError::file(&path, "the directory holds no *.toml experiment"));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

fn load_all(files: &[PathBuf]) -> Result<Vec<Experiment>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut experiments = Vec::new();
    for file in files {
        match config::load(file) {
            Ok(e) => experiments.push(e),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(experiments) } else { Err(errors) }
}

fn run_experiments(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let files = match expand(args) {
        Ok(f) => f,
        Err(e) => return report_error(err, &e, EXIT_BAD_INPUT),
    };
    let experiments = match load_all(&files) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            return EXIT_BAD_INPUT;
        }
    };
    let mut code = EXIT_OK;
    let mut opened: Vec<Backend> = Vec::new();
    for (i, exp) in experiments.iter().enumerate() {
        let kind = args.backend.or(exp.backend).unwrap_or(BackendKind::Ndarray);
        let backend = match opened.iter().find(|b| b.kind == kind) {
            Some(b) => b.clone(),
            None => match backend::open(kind, args.device.as_deref()) {
                Ok(b) => {
                    opened.push(b.clone());
                    b
                }
                Err(e) => return report_error(err, &e, EXIT_BAD_INPUT),
            },
        };
        let outcome = match run::execute(exp, &backend) {
            Ok(o) => o,
            Err(e) => return report_error(err, &format!("{}: {e}", exp.path.display()), EXIT_FAILURE),
        };
        let report = ExperimentReport::new(exp, &backend, &outcome);
        let text = match args.format {
            Format::Table => {
                let sep = if i > 0 { "\n" } else { "" };
                format!("{sep}{}", report.to_table())
            }
            Format::Json => format!("{}\n", report.to_json()),
        };
        if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
            return EXIT_FAILURE;
        }
        if !report.all_finite && !args.allow_nonfinite {
            code = EXIT_NONFINITE;
        }
    }
    code
}

fn report_error(err: &mut dyn Write, e: &dyn std::fmt::Display, code: i32) -> i32 {
    let _ = writeln!(err, "error: {e}");
    code
}

/// Every `*.toml` under `dir`, sorted (used by `--all` and tests).
pub fn configs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}
