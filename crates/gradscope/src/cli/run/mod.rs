//! `gradscope run`: every file loaded, every flag checked and every backend opened before
//! anything runs; then each experiment, plain or sweep, run and written as asked.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backend::{self, Backend, BackendKind};
use crate::config::{self, Experiment, Task};
use gradscope_render::{plot, sweep as sweep_text, text, train as train_text};

use crate::record;
use crate::report::{ExperimentReport, Thresholds};
use crate::run;

use super::settings;
use super::{CommandError, CommandResult, ExitStatus, Format, print_summary};

mod train;

use train::run_training;

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
    /// Floating-point type of every tensor: overrides the file's `precision` (and a swept
    /// one), as `--set precision="P"` would. f64 runs without [train] only; on wgpu, after
    /// the activations' operations are checked against the host's f64.
    #[arg(long, value_name = "P", value_parser = ["f64", "f32", "bf16", "f16"])]
    pub precision: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// With --format csv: one row per case × layer (δ statistics) instead of per parameter.
    #[arg(long)]
    pub layers: bool,
    /// Gradient flow ‖δ_first‖/‖δ_last‖ below this is reported as vanishing.
    #[arg(
        long,
        value_name = "RATIO",
        default_value_t = 1e-3,
        allow_negative_numbers = true
    )]
    pub vanishing: f64,
    /// Gradient flow ‖δ_first‖/‖δ_last‖ above this is reported as exploding.
    #[arg(
        long,
        value_name = "RATIO",
        default_value_t = 1e3,
        allow_negative_numbers = true
    )]
    pub exploding: f64,
    /// Exit 0 rather than 3 when some gradient value is not finite.
    #[arg(long)]
    pub allow_nonfinite: bool,
    /// Override a config key, e.g. `--set model.depth=32 --set seed=7` (repeatable); applied to
    /// every file, validated like the file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run even when the memory estimate exceeds the memory available.
    #[arg(long)]
    pub allow_large: bool,
    /// Where run records go: <DIR>/<experiment>/<UTC time>-<backend>/.
    #[arg(long, value_name = "DIR", default_value = "experiments/runs")]
    pub out: PathBuf,
    /// Write no run record.
    #[arg(long)]
    pub no_record: bool,
    /// Write <DIR>/<case>.safetensors per input case: input, output, weights, gradients
    /// (`grad.layers.{i}.weight`, ...) and δ (`delta.layers.{i}`).
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
    /// Sweeps: run only the i-th of n disjoint parts (e.g. 2/3), for job arrays.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Sweeps: continue the sweep recorded in DIR, skipping its finished trials.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Sweeps: run at most N trials of a grid point as one stacked forward and backward pass
    /// (default: as many as fit in a quarter of the available memory, within 64–512 MiB, at
    /// most 250; 1 runs one trial at a time). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub stack: Option<u32>,
    /// Also write the markdown report as a notebook page DIR/<experiment>.md (with
    /// DIR/<experiment>.svg for a sweep), headed by the command that regenerates it.
    #[arg(long, value_name = "DIR")]
    pub notebook: Option<PathBuf>,
}

/// The `--set`s, and `--precision` as the last of them.
fn sets_of(args: &RunArgs) -> Vec<String> {
    let mut sets = args.sets.clone();
    if let Some(p) = &args.precision {
        sets.push(format!("precision=\"{p}\""));
    }
    sets
}

/// `run`'s settings: every flag resolved and checked against every file once, before anything
/// runs. What runs and writes reads these, never [`RunArgs`].
pub(super) struct RunSettings {
    /// The report format on standard output.
    format: Format,
    /// `--layers`: CSV per case × layer.
    layers: bool,
    /// The vanishing and exploding ratios.
    thresholds: Thresholds,
    /// `--allow-nonfinite`: exit 0 rather than 3.
    allow_nonfinite: bool,
    /// Where records go (`--out`); a sweep always writes one.
    out: PathBuf,
    /// `--no-record`: plain and training runs write none.
    no_record: bool,
    /// `--dump DIR`.
    dump: Option<PathBuf>,
    /// `--shard i/n`, parsed.
    shard: Option<crate::sweep::Shard>,
    /// `--resume DIR`.
    resume: Option<PathBuf>,
    /// `--stack N`.
    stack: Option<usize>,
    /// `--notebook DIR`.
    notebook: Option<PathBuf>,
    /// The flags a notebook page's command repeats (backend, precision, sets,
    /// allow-nonfinite), each with its leading space.
    regenerate_flags: String,
    /// Whether several experiments run (a dump then goes in a directory each).
    many: bool,
}

/// What `run` settled before running anything: the settings, every experiment with the
/// backend it runs on (an index into `backends`), and those backends, opened and checked.
struct RunPlan {
    settings: RunSettings,
    experiments: Vec<(Experiment, usize)>,
    backends: Vec<Backend>,
}

/// The backend `exp` runs on: `--backend`, then the file's `backend`, then ndarray.
fn kind_for(exp: &Experiment, args: &RunArgs) -> BackendKind {
    args.backend.or(exp.backend).unwrap_or(BackendKind::Ndarray)
}

/// Every file loaded (with the `--set`s and `--precision`), validated and memory-checked;
/// every file's errors at once.
fn load_all(args: &RunArgs) -> Result<Vec<Experiment>, Vec<String>> {
    let available = settings::available_memory(args.allow_large);
    let loaded = settings::load_each(&args.files, args.all, &sets_of(args), available)
        .map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut experiments = Vec::new();
    for (_, result) in loaded {
        match result {
            Ok(e) => experiments.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(experiments)
    } else {
        Err(errors)
    }
}

/// Load, check and open everything `run` needs; every error is the input's (exit 2).
fn plan_run(args: &RunArgs) -> Result<RunPlan, Vec<String>> {
    let one = |m: String| vec![m];
    let experiments = load_all(args)?;
    let settings = settings_of(args, &experiments).map_err(one)?;
    let mut backends: Vec<Backend> = Vec::new();
    let mut planned = Vec::new();
    for exp in experiments {
        let kind = kind_for(&exp, args);
        let index = match backends.iter().position(|b| b.kind == kind) {
            Some(i) => i,
            None => {
                let b =
                    backend::open(kind, args.device.as_deref()).map_err(|e| one(e.to_string()))?;
                backends.push(b);
                backends.len() - 1
            }
        };
        let b = &backends[index];
        let refuse = |p: config::Precision, reason: String| {
            let (path, name) = (exp.path.display(), b.kind.name());
            one(format!("{path}: precision `{p}` on {name}: {reason}"))
        };
        let precisions = exp.precisions();
        if let Some(r) = settings::refused_precisions(b, &precisions)
            .into_iter()
            .next()
        {
            return Err(refuse(r.precision, r.reason));
        }
        if precisions.contains(&config::Precision::F64) {
            settings::check_f64(b, &settings::f64_activations(&exp))
                .map_err(|reason| refuse(config::Precision::F64, reason))?;
        }
        planned.push((exp, index));
    }
    Ok(RunPlan {
        settings,
        experiments: planned,
        backends,
    })
}

pub(super) fn run_experiments(
    args: &RunArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CommandResult {
    let plan = plan_run(args).map_err(|messages| CommandError {
        status: ExitStatus::BadInput,
        messages,
    })?;
    let s = &plan.settings;
    // CSV: one header for the whole stream, written with the first rows.
    let mut csv_header = true;
    let mut code = ExitStatus::Ok;
    for (i, (exp, b)) in plan.experiments.iter().enumerate() {
        let backend = &plan.backends[*b];
        let header = std::mem::replace(&mut csv_header, false);
        let result = match (&exp.sweep, &exp.task) {
            (Some(sweep), _) => run_one_sweep(exp, sweep, backend, s, header, out, err),
            (None, Task::Train(train)) => run_training(exp, train, backend, s, i, out, err),
            (None, Task::Probe) => run_plain(exp, backend, s, (i, header), out, err),
        };
        code = code.max(result?);
    }
    Ok(code)
}

/// Run one plain experiment and write what was asked for: notebook page, dump, record, report.
/// `at`: the experiment's index, and whether it prints the CSV header.
fn run_plain(
    exp: &Experiment,
    backend: &Backend,
    s: &RunSettings,
    at: (usize, bool),
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CommandResult {
    let (index, csv_header) = at;
    let started = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let outcome = run::execute(exp, backend).map_err(|e| {
        let m = format!("{}: {e}", exp.path.display());
        CommandError::new(ExitStatus::Failure, m)
    })?;
    let report = crate::report::build(exp, backend, &outcome, s.thresholds);
    write_plain_files(exp, backend, s, &outcome, &report)?;
    if !s.no_record {
        let files = [
            ("report.json", format!("{}\n", report.to_json())),
            ("report.md", text::markdown(&report)),
            (
                "meta.json",
                record::meta_json(exp, backend, started, clock.elapsed()),
            ),
        ];
        let written = record::write(&s.out, exp, &report.backend, &files, started)
            .and_then(|dir| crate::page::write(&dir).map(|()| dir));
        let dir = written.map_err(|e| {
            let m = format!(
                "cannot write the run record under {}: {e}\nhint: choose another place with --out DIR, or pass --no-record",
                s.out.display()
            );
            CommandError::new(ExitStatus::Failure, m)
        })?;
        let _ = writeln!(err, "note: run record written to {}", dir.display());
    }
    let sep = if index > 0 { "\n" } else { "" };
    let text = match s.format {
        Format::Table => Ok(format!("{sep}{}", text::table(&report))),
        Format::Markdown => Ok(format!("{sep}{}", text::markdown(&report))),
        Format::Json => Ok(format!("{}\n", report.to_json())),
        Format::Csv if s.layers => text::csv_layers(&report, csv_header),
        Format::Csv => text::csv_params(&report, csv_header),
    };
    let text =
        text.map_err(|e| CommandError::new(ExitStatus::Failure, format!("cannot write CSV: {e}")))?;
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|_| CommandError::silent(ExitStatus::Failure))?;
    Ok(if !report.all_finite && !s.allow_nonfinite {
        ExitStatus::NonFinite
    } else {
        ExitStatus::Ok
    })
}

/// The notebook page (`--notebook`) and tensor dump (`--dump`) of a plain run.
fn write_plain_files(
    exp: &Experiment,
    backend: &Backend,
    s: &RunSettings,
    outcome: &run::Outcome,
    report: &ExperimentReport,
) -> Result<(), CommandError> {
    if let Some(nb) = &s.notebook {
        let command = regenerate_command(exp, s, nb);
        let page = text::markdown_with_picture(report, &format!("{}.svg", exp.name));
        let svg = plot::run_svg(
            &exp.name,
            &plot::RunCase::from_report(report),
            report.precision,
        );
        record::write_notebook_page(nb, &exp.name, &command, &page, Some(&svg))
            .map_err(|e| CommandError::new(ExitStatus::Failure, notebook_error(nb, &e)))?;
    }
    if let Some(dir) = &s.dump {
        // Several experiments dump into a directory each.
        let dir = if s.many {
            dir.join(&exp.name)
        } else {
            dir.clone()
        };
        crate::tensors::dump(&dir, exp, backend.kind.name(), outcome).map_err(|e| {
            let m = format!("cannot write tensors to {}: {e}", dir.display());
            CommandError::new(ExitStatus::Failure, m)
        })?;
    }
    Ok(())
}

/// `--vanishing` and `--exploding`: ratios of gradient norms, so finite and > 0, in order.
fn thresholds(args: &RunArgs) -> Result<Thresholds, String> {
    for (flag, v) in [("vanishing", args.vanishing), ("exploding", args.exploding)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "--{flag} {v}: the threshold is a ratio of gradient norms (‖δ_first‖/‖δ_last‖, never negative), so it must be a finite number > 0"
            ));
        }
    }
    if args.vanishing >= args.exploding {
        return Err(format!(
            "--vanishing {} must be below --exploding {}",
            args.vanishing, args.exploding
        ));
    }
    Ok(Thresholds {
        vanishing: args.vanishing,
        exploding: args.exploding,
    })
}

/// `run`'s flags resolved into its settings, each checked against every file before
/// anything runs, so that no file is run and recorded before another is refused.
fn settings_of(args: &RunArgs, experiments: &[Experiment]) -> Result<RunSettings, String> {
    let thresholds = thresholds(args)?;
    if args.layers && args.format != Format::Csv {
        return Err("--layers applies to --format csv only".into());
    }
    check_csv(args.format, experiments)?;
    let shard = args
        .shard
        .as_deref()
        .map(crate::sweep::Shard::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    for exp in experiments {
        let path = exp.path.display();
        if exp.task.train().is_some() && exp.sweep.is_none() && args.format == Format::Csv {
            return Err(format!(
                "{path}: a training run prints a table, markdown or JSON; its steps, one JSON object per line, are in the record's steps.jsonl"
            ));
        }
        if exp.sweep.is_some() {
            if args.no_record {
                return Err("a sweep always writes a record (its finished trials are kept there); choose where with --out DIR".into());
            }
            if args.dump.is_some() {
                return Err(format!(
                    "{path}: --dump writes the tensors of one run; this file is a sweep of many"
                ));
            }
        } else if args.shard.is_some() || args.resume.is_some() || args.stack.is_some() {
            return Err(format!(
                "{path}: --shard, --resume and --stack apply to sweeps; this file has no [sweep]"
            ));
        }
    }
    Ok(RunSettings {
        format: args.format,
        layers: args.layers,
        thresholds,
        allow_nonfinite: args.allow_nonfinite,
        out: args.out.clone(),
        no_record: args.no_record,
        dump: args.dump.clone(),
        shard,
        resume: args.resume.clone(),
        stack: args.stack.map(|n| n as usize),
        notebook: args.notebook.clone(),
        regenerate_flags: regenerate_flags(args),
        many: experiments.len() > 1,
    })
}

/// `--format csv` over several files: one table in one stream, so the files must give the
/// same columns (plain runs, or sweeps over the same keys).
fn check_csv(format: Format, experiments: &[Experiment]) -> Result<(), String> {
    let sweeps = experiments.iter().filter(|e| e.sweep.is_some()).count();
    if format == Format::Csv && sweeps > 0 && sweeps < experiments.len() {
        return Err("--format csv over plain runs and sweeps together would print two tables with different columns in one stream; run the sweeps and the plain files in separate commands (or use --format json, whose objects carry a \"kind\")".into());
    }
    if format == Format::Csv && sweeps > 1 {
        // summary.csv has a column per swept key: sweeps over other keys would change the
        // columns mid-stream.
        let keys = |e: &Experiment| -> Vec<String> {
            e.sweep
                .as_ref()
                .map(|s| s.axes.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default()
        };
        let first = keys(&experiments[0]);
        if let Some(other) = experiments.iter().find(|e| keys(e) != first) {
            return Err(format!(
                "--format csv over sweeps of different keys would print tables with different columns in one stream: {} sweeps {}, {} sweeps {}; run them in separate commands (or use --format json)",
                experiments[0].name,
                first.join(", "),
                other.name,
                keys(other).join(", ")
            ));
        }
    }
    Ok(())
}

/// The flags that change what is computed, as a notebook page's command repeats them.
fn regenerate_flags(args: &RunArgs) -> String {
    let mut c = String::new();
    if let Some(b) = args.backend {
        c.push_str(&format!(" --backend {}", b.name()));
    }
    if let Some(p) = &args.precision {
        c.push_str(&format!(" --precision {p}"));
    }
    for s in &args.sets {
        c.push_str(&format!(" --set '{s}'"));
    }
    if args.allow_nonfinite {
        c.push_str(" --allow-nonfinite");
    }
    c
}

/// The command that writes a notebook page again: the config, its `--set`s and the flags that
/// change what is computed.
fn regenerate_command(exp: &Experiment, s: &RunSettings, nb: &Path) -> String {
    format!(
        "gradscope run {}{} --notebook {}",
        exp.path.display(),
        s.regenerate_flags,
        nb.display()
    )
}

/// Run one sweep and write what was asked for: its record, its notebook page, its summary.
fn run_one_sweep(
    exp: &Experiment,
    sweep: &crate::config::sweep::Sweep,
    backend: &Backend,
    s: &RunSettings,
    csv_header: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CommandResult {
    let opts = crate::sweep::SweepOptions {
        out: &s.out,
        resume: s.resume.as_deref(),
        shard: s.shard,
        thresholds: s.thresholds,
        stack: s.stack,
    };
    let result =
        crate::sweep::run_sweep(exp, sweep, backend, &opts, err).and_then(|(dir, records)| {
            let summary = crate::summary::summarise(&exp.name, sweep, &records);
            crate::sweep::write_summary(&dir, &summary, &records)?;
            Ok((dir, summary))
        });
    match result {
        Ok((dir, summary)) => {
            let _ = writeln!(err, "note: sweep record written to {}", dir.display());
            if let Some(nb) = &s.notebook
                && let Err(e) = sweep_notebook_page(exp, s, nb, &summary)
            {
                return Err(CommandError::failure(notebook_error(nb, &e)));
            }
            let code = print_summary(&summary, s.format, csv_header, out);
            let nonfinite = summary.points.iter().any(|p| p.nonfinite_trials > 0);
            Ok(if code != ExitStatus::Ok {
                code
            } else if nonfinite && !s.allow_nonfinite {
                ExitStatus::NonFinite
            } else {
                ExitStatus::Ok
            })
        }
        Err(e) if e.is_bad_input() => Err(CommandError::new(ExitStatus::BadInput, e)),
        Err(e) => Err(CommandError::new(ExitStatus::Failure, e)),
    }
}

/// A sweep's notebook page in `nb`: the markdown summary with its picture, and the ratio
/// picture where the sweep has a depth axis.
fn sweep_notebook_page(
    exp: &Experiment,
    s: &RunSettings,
    nb: &Path,
    summary: &crate::summary::SweepSummary,
) -> std::io::Result<()> {
    let svg = plot::svg(summary);
    let body = sweep_text::markdown(summary, &format!("{}.svg", exp.name));
    let command = regenerate_command(exp, s, nb);
    let ratio = plot::ratio_svg(summary).map(|r| {
        let path = nb.join(format!("{}-ratio.svg", exp.name));
        std::fs::create_dir_all(nb).and_then(|()| record::write_atomic(&path, r.as_bytes()))
    });
    record::write_notebook_page(nb, &exp.name, &command, &body, Some(&svg))
        .and(ratio.unwrap_or(Ok(())))
}

fn notebook_error(dir: &Path, e: &std::io::Error) -> String {
    format!("cannot write the notebook page in {}: {e}", dir.display())
}
