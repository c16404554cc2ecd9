//! The command line: raw flags (clap) → validated settings → runs → reports and exit code.
//! One module per command: `run`, `compare`, `inspect` (validate, list, show); `merge` and
//! `bench` are dispatched here.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{self, BackendKind};
use crate::config::{self, ConfigError};

mod compare;
mod inspect;
mod run;
mod settings;

pub use inspect::{ListArgs, ShowArgs, ValidateArgs};
pub use run::RunArgs;

/// How a command ended. `main` maps it to the process's exit code, once; where several
/// experiments end differently, the larger code wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// 0: every experiment ran and every gradient value is finite.
    Ok,
    /// 1: a failure that is not the input's fault (an internal or device error).
    Failure,
    /// 2: bad input (command line, config file, unusable backend choice).
    BadInput,
    /// 3: some gradient value is NaN or infinite (see `--allow-nonfinite`).
    NonFinite,
    /// 4: `compare`: the backends disagree past `--tolerance`, or a value is finite on one
    /// backend and not on another.
    Disagree,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::Failure => 1,
            Self::BadInput => 2,
            Self::NonFinite => 3,
            Self::Disagree => 4,
        }
    }
}

/// Measure how gradients behave in multi-layer networks.
#[derive(Debug, Parser)]
#[command(name = "gradscope", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 failure, 2 bad input, 3 a gradient is not finite, 4 backends disagree (compare)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run experiments and report per-parameter gradient statistics.
    Run(RunArgs),
    /// Run experiments on several backends from the same weights and inputs, and report how
    /// far each backend's loss, output, gradients and δ lie from the first backend's.
    Compare(compare::CompareArgs),
    /// Check experiment files without running them.
    Validate(ValidateArgs),
    /// List the experiments in a directory: file, name and description.
    List(ListArgs),
    /// Print an experiment with every default filled in, as TOML that `run` accepts.
    Show(ShowArgs),
    /// Combine the records of sweep shards into one record and summary.
    Merge(MergeArgs),
    /// Time the speed workloads on this machine (see benchmarks/README.md).
    Bench(BenchArgs),
    /// Rebuild the HTML report (report.html) of existing run, sweep or training records.
    Report(ReportArgs),
}

/// `gradscope report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Record directories (of `run`, a sweep, a training run, or `merge`).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
}

/// `gradscope bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Workloads: seed, throughput, sweep, train, or all (default).
    #[arg(value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
    /// Backend to time.
    #[arg(long, value_enum, default_value = "ndarray")]
    pub backend: BackendKind,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Directory of the seed configs (workload `seed`).
    #[arg(long, value_name = "DIR", default_value = "configs")]
    pub configs: PathBuf,
    /// Workload `sweep`: trials per stacked pass, as `run --stack` (default: chosen by size).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub stack: Option<u32>,
    /// Workloads `throughput` and `sweep`: the precision to time them in (`seed` and `train`
    /// run in f32 only).
    #[arg(long, value_name = "P", value_parser = ["f32", "bf16", "f16"], default_value = "f32")]
    pub precision: String,
}

/// `gradscope show`: the resolved config.
fn show(args: &ShowArgs, out: &mut dyn Write) -> CommandResult {
    let exp =
        config::sets::load_with_sets(&args.file, &args.sets).map_err(CommandError::bad_input)?;
    match out.write_all(exp.to_toml().as_bytes()) {
        Ok(()) => Ok(ExitStatus::Ok),
        Err(_) => Ok(ExitStatus::Failure),
    }
}

/// `gradscope merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Sweep record directories (from `run --shard i/n`), all of one sweep.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged record goes: <DIR>/<experiment>/<UTC time>-merged/.
    #[arg(long, value_name = "DIR", default_value = "experiments/runs")]
    pub out: PathBuf,
    /// Summary format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Merge a set of records that does not cover the sweep; every output of the summary then
    /// says it is partial (without it, an incomplete set is refused, exit 2).
    #[arg(long)]
    pub allow_partial: bool,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people (fits in 100 columns).
    Table,
    /// One JSON object per experiment, one per line (JSON Lines).
    Json,
    /// CSV: one row per case × parameter (with --layers, per case × layer).
    Csv,
    /// Markdown, for notebooks.
    Markdown,
}

/// A command's failure: what to tell the user (one `error: …` line each, in order) and the
/// exit status it ends with. Commands return it; [`run`] prints it, once.
#[derive(Debug)]
pub struct CommandError {
    /// The exit status.
    pub status: ExitStatus,
    /// The messages.
    pub messages: Vec<String>,
}

impl CommandError {
    /// One message.
    pub fn new(status: ExitStatus, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            messages: vec![message.to_string()],
        }
    }

    /// Bad input (exit 2).
    pub fn bad_input(message: impl std::fmt::Display) -> Self {
        Self::new(ExitStatus::BadInput, message)
    }

    /// A failure that is not the input's fault (exit 1).
    pub fn failure(message: impl std::fmt::Display) -> Self {
        Self::new(ExitStatus::Failure, message)
    }

    /// An ending with nothing to say (standard output closed: nobody reads it).
    pub fn silent(status: ExitStatus) -> Self {
        Self {
            status,
            messages: Vec::new(),
        }
    }
}

/// How a command ends: its status, or the error that ended it.
pub type CommandResult = Result<ExitStatus, CommandError>;

/// Run the parsed command line, writing reports to `out` and diagnostics to `err`; returns the
/// exit code. A command's error is printed here, once.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus {
    let result = match cli.command {
        Command::Run(args) => run::run_experiments(&args, out, err),
        Command::Compare(args) => compare::run(&args, out),
        Command::Validate(args) => inspect::validate(&args, out),
        Command::List(args) => inspect::list(&args, out),
        Command::Bench(args) => bench(&args, out),
        Command::Report(args) => report(&args, out),
        Command::Merge(args) => merge(&args, out, err),
        Command::Show(args) => show(&args, out),
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            for m in &e.messages {
                let _ = writeln!(err, "error: {m}");
            }
            e.status
        }
    }
}

/// `gradscope merge`.
fn merge(args: &MergeArgs, out: &mut dyn Write, err: &mut dyn Write) -> CommandResult {
    match crate::sweep::merge(&args.dirs, &args.out, args.allow_partial) {
        Ok((dir, summary)) => {
            let _ = writeln!(
                err,
                "note: merged sweep record written to {}",
                dir.display()
            );
            Ok(print_summary(&summary, args.format, true, out))
        }
        Err(e) if e.is_bad_input() => Err(CommandError::bad_input(e)),
        Err(e) => Err(CommandError::failure(e)),
    }
}

/// Threads for the work pool where gradscope should choose them: a Slurm task's
/// `SLURM_CPUS_PER_TASK` (`#SBATCH --cpus-per-task`), so that array tasks sharing a node do
/// not each start a thread per core of the whole node (Slurm without CPU binding lets every
/// task see them all). `None` leaves it to rayon: where `RAYON_NUM_THREADS` is set (the
/// user's choice wins), or outside Slurm (one thread per core this process may use).
pub fn pool_threads(rayon: Option<&str>, slurm_cpus_per_task: Option<&str>) -> Option<usize> {
    if rayon.is_some() {
        return None;
    }
    slurm_cpus_per_task?.trim().parse().ok().filter(|n| *n > 0)
}

/// glibc malloc settings gradscope asks for at start: `(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)`
/// in bytes, or `None` where the user set malloc tunables of their own in `GLIBC_TUNABLES`
/// (theirs win). Tensors of a few MiB are allocated and freed on every layer of every pass;
/// with glibc's defaults each one is a fresh `mmap` (or heap growth) that the kernel then
/// zero-fills page by page and takes back with a TLB shootdown on every core, which halved
/// one weight-gradient product and cost the whole forward + backward step about 5 %
/// (benchmarks/README.md). Blocks up to 32 MiB (glibc's largest mmap threshold on 64-bit)
/// come from the heap instead, and up to 1 GiB of freed heap is kept for the next pass. glibc
/// holds only blocks over 64 KiB ([`crate::alloc`]), so nothing small and long-lived sits
/// above them to keep the freed ones from merging into the heap's top: with 128 MiB kept, the
/// notebook's sweep gave its top back and faulted it in again, 1.5 million page faults instead
/// of 0.11 million, 8.0 → 11.5 s (benchmarks/README.md, "The allocator of small blocks").
pub fn malloc_settings(glibc_tunables: Option<&str>) -> Option<(i32, i32)> {
    const MMAP_THRESHOLD: i32 = 32 << 20;
    const TRIM_THRESHOLD: i32 = 1 << 30;
    let theirs = glibc_tunables.is_some_and(|t| t.contains("glibc.malloc."));
    (!theirs).then_some((MMAP_THRESHOLD, TRIM_THRESHOLD))
}

/// `gradscope bench`: the named workloads, timed.
fn bench(args: &BenchArgs, out: &mut dyn Write) -> CommandResult {
    if let Some(w) = args
        .workloads
        .iter()
        .find(|w| !["seed", "throughput", "sweep", "train", "all"].contains(&w.as_str()))
    {
        return Err(CommandError::bad_input(format!(
            "unknown workload `{w}`: expected seed, throughput, sweep, train or all"
        )));
    }
    let b = backend::open(args.backend, None).map_err(CommandError::bad_input)?;
    let precision = config::Precision::parse(&args.precision).unwrap_or_default();
    b.check_precision(precision)
        .map_err(|e| CommandError::bad_input(format!("--precision {precision}: {e}")))?;
    let all = args.workloads.is_empty() || args.workloads.iter().any(|w| w == "all");
    let f32_only = all || args.workloads.iter().any(|x| x == "seed");
    if precision != config::Precision::F32 && f32_only {
        return Err(CommandError::bad_input(format!(
            "--precision {precision}: the seed workload runs the seed configs as they are, in f32; name the workloads to time: throughput, sweep, train"
        )));
    }
    crate::bench::run(
        &args.workloads,
        (&b, precision),
        args.repeat.max(1),
        &args.configs,
        args.stack.map(|n| n as usize),
        out,
    )
    .map_err(CommandError::failure)?;
    Ok(ExitStatus::Ok)
}

/// `gradscope report`: each record directory's report.html written anew.
fn report(args: &ReportArgs, out: &mut dyn Write) -> CommandResult {
    for dir in &args.dirs {
        let is_record = ["report.json", "summary.json"]
            .iter()
            .any(|f| dir.join(f).is_file());
        if !dir.exists() {
            let m = format!("{}: does not exist", dir.display());
            return Err(CommandError::bad_input(m));
        }
        if !dir.is_dir() {
            let m = format!(
                "{}: is a file, not a record directory (give the directory that holds report.json or summary.json)",
                dir.display()
            );
            return Err(CommandError::bad_input(m));
        }
        if !is_record {
            let m = format!(
                "{}: not a record directory (it holds no report.json or summary.json)",
                dir.display()
            );
            return Err(CommandError::bad_input(m));
        }
        if let Err(e) = crate::page::write(dir) {
            // A record whose report does not fit the schema is bad input, not a failure.
            if e.kind() == std::io::ErrorKind::InvalidData {
                let m = format!("cannot read the record: {e}");
                return Err(CommandError::bad_input(m));
            }
            let m = format!("{}: cannot write report.html: {e}", dir.display());
            return Err(CommandError::failure(m));
        }
        let _ = writeln!(out, "{}", dir.join("report.html").display());
    }
    Ok(ExitStatus::Ok)
}

/// The files `paths` name: files as they are, each directory's `*.toml` in name order; with
/// `all`, every `*.toml` in `./configs` too.
fn expand(paths: &[PathBuf], all: bool) -> Result<Vec<PathBuf>, ConfigError> {
    let mut inputs = paths.to_vec();
    if all {
        let configs = PathBuf::from("configs");
        if !configs.is_dir() {
            return Err(ConfigError::file(
                &configs,
                "--all runs every *.toml in ./configs, and the current directory has no `configs` directory",
            )
            .with_hint("run it where the experiments' configs/ directory is, or name the files or directories to run"));
        }
        inputs.push(configs);
    }
    let mut files = Vec::new();
    for path in inputs {
        if path.is_dir() {
            let found = config::toml_files(&path)
                .map_err(|e| ConfigError::file(&path, format!("cannot list the directory: {e}")))?;
            if found.is_empty() {
                return Err(ConfigError::file(
                    &path,
                    "the directory holds no *.toml experiment",
                ));
            }
            files.extend(found);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Print a sweep's summary in `format`; with CSV, the header first when `csv_header`.
fn print_summary(
    summary: &crate::summary::SweepSummary,
    format: Format,
    csv_header: bool,
    out: &mut dyn Write,
) -> ExitStatus {
    let text = match format {
        Format::Table => gradscope_render::sweep::table(summary),
        Format::Markdown => gradscope_render::sweep::markdown(summary, "sweep.svg"),
        Format::Csv => match gradscope_render::sweep::layers_csv(summary, csv_header) {
            Ok(t) => t,
            Err(_) => return ExitStatus::Failure,
        },
        Format::Json => format!("{}\n", serde_json::to_string(summary).unwrap_or_default()),
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) => ExitStatus::Ok,
        Err(_) => ExitStatus::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, ExitStatus, malloc_settings, pool_threads, run};
    use clap::Parser;

    /// A command's error is printed once, by `run`, as `error: …` lines, and its status is
    /// the exit status; several errors (validate over several files) each get a line.
    #[test]
    fn a_commands_error_is_printed_once_with_its_status() {
        let go = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let status = run(cli, &mut out, &mut err);
            (status, String::from_utf8_lossy(&err).into_owned())
        };
        let (status, err) = go(&["gradscope", "report", "/nonexistent-record"]);
        assert_eq!(status, ExitStatus::BadInput);
        assert_eq!(err, "error: /nonexistent-record: does not exist\n");
        let (status, err) = go(&[
            "gradscope",
            "validate",
            "/nonexistent-a.toml",
            "/nonexistent-b.toml",
        ]);
        assert_eq!(status, ExitStatus::BadInput);
        assert_eq!(err.matches("error: ").count(), 2, "{err}");
        assert!(
            err.find("nonexistent-a") < err.find("nonexistent-b"),
            "in order: {err}"
        );
    }

    #[test]
    fn malloc_settings_step_aside_for_the_users_tunables() {
        // 32 MiB is glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (4 MiB * sizeof(long)):
        // mallopt refuses anything larger.
        assert_eq!(malloc_settings(None), Some((32 << 20, 1 << 30)));
        assert_eq!(
            malloc_settings(Some("glibc.cpu.hwcaps=-AVX512F")),
            Some((32 << 20, 1 << 30)),
            "tunables of other kinds leave malloc to gradscope"
        );
        assert_eq!(
            malloc_settings(Some("glibc.malloc.arena_max=1")),
            None,
            "the user's malloc tunables win"
        );
    }

    #[test]
    fn a_slurm_task_gets_its_cpus_unless_the_user_chose() {
        assert_eq!(pool_threads(None, Some("2")), Some(2), "--cpus-per-task=2");
        assert_eq!(
            pool_threads(Some("8"), Some("2")),
            None,
            "RAYON_NUM_THREADS wins"
        );
        assert_eq!(
            pool_threads(None, None),
            None,
            "outside Slurm: rayon's default"
        );
        assert_eq!(pool_threads(None, Some("0")), None);
        assert_eq!(pool_threads(None, Some("two")), None);
    }
}
