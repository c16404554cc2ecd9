//! Running sweeps: every (grid point, trial) unit on one backend, each finished trial appended
//! durably to `trials.jsonl` in the sweep's record directory, so an interrupted sweep loses no
//! finished trial; `--resume DIR` skips those, `--shard i/n` runs a disjoint part, and `merge`
//! combines shard records into the summary of the whole sweep.
//!
//! The trials of one grid point differ only in their seed, so they run as stacks of networks
//! ([`run::execute_stack`]): one forward and one backward pass for up to
//! [`SweepOptions::stack`] trials at a time. Each trial's line is written with one `write`
//! (whole, or torn and dropped on resume) and the file is synced after every stack.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::backend::Backend;
use crate::config::sweep::Sweep;
use crate::config::{self, Experiment};
use crate::report::Thresholds;
use crate::run;
use crate::summary::{SweepSummary, TrialRecord, summarise};

/// Environment variable for tests: abort the process after this many trials of a sweep run.
pub const FAULT_ENV: &str = "GRADSCOPE_FAULT_AFTER_TRIALS";

/// The file in a shard's sweep record that says which part it holds (`i/n`).
pub const SHARD_FILE: &str = "shard.txt";

/// `--shard i/n`: the i-th (1-based) of n disjoint parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

/// Text that is not a shard `i/n` with 1 ≤ i ≤ n.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --shard `{0}`: expected i/n with 1 ≤ i ≤ n, e.g. 2/3")]
pub struct BadShard(pub String);

impl Shard {
    /// Parse `i/n` with 1 ≤ i ≤ n.
    pub fn parse(s: &str) -> Result<Self, BadShard> {
        let bad = || BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            Err(bad())
        } else {
            Ok(Self { index, count })
        }
    }

    /// Whether unit `k` (point-major, trial-minor) belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }
}

/// A failure of a sweep run or merge. [`SweepError::is_bad_input`] says which are the
/// user's input (exit 2); the others are failures (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// `--resume DIR`: DIR holds no readable sweep config.
    #[error("--resume {}: not a sweep record ({source})", dir.display())]
    NotARecord {
        /// The directory named.
        dir: PathBuf,
        /// Why its config could not be read.
        source: std::io::Error,
    },
    /// `--resume DIR`: DIR is the record of another config.
    #[error("--resume {}: the record is of a different config than {}", dir.display(), config.display())]
    DifferentConfig {
        /// The directory named.
        dir: PathBuf,
        /// The config that was to run.
        config: PathBuf,
    },
    /// `--resume DIR`: DIR's shard file cannot be read as a shard.
    #[error("--resume {}: {SHARD_FILE}: {source}", dir.display())]
    BadShardFile {
        /// The directory named.
        dir: PathBuf,
        /// What is wrong with its shard file.
        source: BadShard,
    },
    /// `--resume DIR`: DIR holds another part of the sweep than the run asks for.
    #[error("--resume {}: the record is {recorded}, but this run asks for {asked}; resume it with {flag}", dir.display())]
    WrongShard {
        /// The directory named.
        dir: PathBuf,
        /// The part the record holds (`shard 2/3`, `the whole sweep`).
        recorded: String,
        /// The part the run asks for.
        asked: String,
        /// The flag that resumes it (`--shard 2/3`, `no --shard`).
        flag: String,
    },
    /// `merge` without directories.
    #[error("merge needs at least one record directory")]
    NoRecords,
    /// `merge`: a record's config does not read as an experiment.
    #[error("{}: {source}", dir.display())]
    BadRecordConfig {
        /// The record.
        dir: PathBuf,
        /// What is wrong with its config.
        source: Box<crate::config::ConfigError>,
    },
    /// `merge`: a record is not of a sweep.
    #[error("{} is not a sweep record", dir.display())]
    NotASweep {
        /// The record.
        dir: PathBuf,
    },
    /// `merge`: a directory holds no readable config.
    #[error("{}: not a sweep record ({source})", dir.display())]
    NoConfig {
        /// The directory.
        dir: PathBuf,
        /// Why its config could not be read.
        source: std::io::Error,
    },
    /// `merge`: records of different sweeps.
    #[error("{} is a record of a different sweep than {}", dir.display(), first.display())]
    DifferentSweep {
        /// The record that differs.
        dir: PathBuf,
        /// The first record.
        first: PathBuf,
    },
    /// `merge`: two records hold the same part of the sweep.
    #[error("{} and {} are both {shard} of the sweep: merge each part once", first.display(), second.display())]
    DuplicateShard {
        /// The part (`shard 2/3`, `the whole sweep`).
        shard: String,
        /// The first record holding it.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// `merge`: two records hold the same trials.
    #[error("{} and {} hold the same trials ({count} trial records, the first: {example}): merge each part once", first.display(), second.display())]
    DuplicateTrials {
        /// The first record holding them.
        first: PathBuf,
        /// The second.
        second: PathBuf,
        /// How many trial records the two share.
        count: usize,
        /// The first shared one, `point 0, trial 3, case x`.
        example: String,
    },
    /// `merge`: the records do not cover the sweep.
    #[error(
        "the records hold {done} of the sweep's {expected} trial records; missing: {missing}\nhint: merge every part, or pass --allow-partial to write a summary marked partial"
    )]
    Incomplete {
        /// Trial records found.
        done: usize,
        /// Trial records of the whole sweep.
        expected: usize,
        /// The missing shards or trials, for people.
        missing: String,
    },
    /// A file of the record could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// `read`, `write`, `create`, `open`, `append to`, `sync`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing CSV failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Writing JSON failed.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Running trials failed.
    #[error("{0}")]
    Run(#[from] crate::run::RunError),
    /// A grid point no longer validates (a file it reads changed since the sweep was loaded).
    #[error("{0}")]
    Point(Box<crate::config::ConfigError>),
}

impl SweepError {
    /// The user's input (exit 2) rather than a failure (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::NotARecord { .. }
                | Self::DifferentConfig { .. }
                | Self::BadShardFile { .. }
                | Self::WrongShard { .. }
                | Self::NoRecords
                | Self::BadRecordConfig { .. }
                | Self::NotASweep { .. }
                | Self::NoConfig { .. }
                | Self::DifferentSweep { .. }
                | Self::DuplicateShard { .. }
                | Self::DuplicateTrials { .. }
                | Self::Incomplete { .. }
                | Self::Point(_)
        )
    }
}

fn io(what: &'static str, path: &Path) -> impl Fn(std::io::Error) -> SweepError + use<> {
    let path = path.to_path_buf();
    move |source| SweepError::Io {
        what,
        path: path.clone(),
        source,
    }
}

/// The trials recorded in `dir/trials.jsonl`; a torn last line (from a kill mid-write) is
/// dropped and the file rewritten without it.
pub fn read_trials(dir: &Path) -> Result<Vec<TrialRecord>, SweepError> {
    let path = dir.join("trials.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let mut records = Vec::new();
    let mut good = String::new();
    for line in text.lines() {
        match serde_json::from_str::<TrialRecord>(line) {
            Ok(r) => {
                records.push(r);
                good.push_str(line);
                good.push('\n');
            }
            Err(_) => break,
        }
    }
    if good.len() != text.len() {
        write_atomic(&path, &good)?;
    }
    Ok(records)
}

/// The part of the sweep a record holds: its shard file's `i/n`, or the whole sweep.
fn recorded_shard(dir: &Path) -> Result<Option<Shard>, SweepError> {
    match std::fs::read_to_string(dir.join(SHARD_FILE)) {
        Ok(text) => {
            Shard::parse(text.trim())
                .map(Some)
                .map_err(|source| SweepError::BadShardFile {
                    dir: dir.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", &dir.join(SHARD_FILE))(e)),
    }
}

/// `shard 2/3`, or `the whole sweep`.
fn part_name(shard: Option<Shard>) -> String {
    shard.map_or("the whole sweep".to_string(), |s| {
        format!("shard {}/{}", s.index, s.count)
    })
}

/// What an incomplete set of records lacks, for people: the shards no record holds (when the
/// records are shards of one split), then the first missing trials.
fn missing_parts(
    sweep: &Sweep,
    parts: &[(Option<Shard>, &PathBuf)],
    owner: &std::collections::HashMap<(usize, usize, String), usize>,
) -> String {
    let mut out = Vec::new();
    let counts: HashSet<Option<usize>> = parts.iter().map(|(s, _)| s.map(|s| s.count)).collect();
    if let [Some(n)] = counts.into_iter().collect::<Vec<_>>()[..] {
        let held: HashSet<usize> = parts
            .iter()
            .filter_map(|(s, _)| s.map(|s| s.index))
            .collect();
        let absent: Vec<String> = (1..=n)
            .filter(|i| !held.contains(i))
            .map(|i| format!("shard {i}/{n}"))
            .collect();
        if !absent.is_empty() {
            out.push(absent.join(", "));
        }
    }
    let mut missing = (0..sweep.len() * sweep.trials).flat_map(|k| {
        let (point, trial) = (k / sweep.trials, k % sweep.trials);
        sweep
            .cases
            .iter()
            .filter(move |c| !owner.contains_key(&(point, trial, (*c).clone())))
            .map(move |c| format!("point {point}, trial {trial}, case {c}"))
    });
    let listed: Vec<String> = missing.by_ref().take(3).collect();
    let more = missing.count();
    let mut trials = listed.join("; ");
    if more > 0 {
        trials.push_str(&format!("; and {more} more"));
    }
    out.push(format!("trials {trials}"));
    out.join("; ")
}

/// `record::write_atomic`, with the error naming the file.
fn write_atomic(path: &Path, contents: &str) -> Result<(), SweepError> {
    crate::record::write_atomic(path, contents.as_bytes()).map_err(io("write", path))
}

/// The resolved config without its header comment, which names the file it came from.
fn config_body(toml: &str) -> String {
    toml.lines()
        .filter(|l| !l.starts_with("# Resolved from"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a sweep is run.
pub struct SweepOptions<'a> {
    /// Where the record directory is created (ignored with `resume`).
    pub out: &'a Path,
    /// An existing record to continue.
    pub resume: Option<&'a Path>,
    /// A part of the sweep.
    pub shard: Option<Shard>,
    /// Thresholds for the per-trial verdicts.
    pub thresholds: Thresholds,
    /// The most trials run as one stack; `None` chooses from the network's size
    /// ([`auto_stack`]).
    pub stack: Option<usize>,
}

/// The least memory one stack of trials is given, in bytes (by
/// [`Experiment::memory_estimate`]).
pub const STACK_BYTES_MIN: u128 = 64 << 20;

/// The most memory one stack of trials is given, in bytes. Measured on the notebook's sweep
/// (benchmarks/README.md): budgets of 64, 128 and 256 MiB ran it in 21–23 s, 512 MiB in
/// 17–18 s, 1 and 2 GiB in 19–24 s (the larger stacks' fresh buffers cost more in page faults
/// than the batching saves).
pub const STACK_BYTES_MAX: u128 = 512 << 20;

/// The most trials one stack runs, whatever their size: a progress bar still moves, and a
/// killed sweep has synced all but the last stack.
pub const STACK_MAX: usize = 250;

/// Memory one stack may take: a quarter of the memory `available` (so a sweep on a busy
/// laptop stays well inside the memory guard), between [`STACK_BYTES_MIN`] and
/// [`STACK_BYTES_MAX`]; the minimum where the available memory is unknown.
pub fn stack_budget(available: Option<u128>) -> u128 {
    available.map_or(STACK_BYTES_MIN, |a| {
        (a / 4).clamp(STACK_BYTES_MIN, STACK_BYTES_MAX)
    })
}

/// How many trials of `exp` to run as one stack: as many as fit in `budget` bytes, at least 1
/// and at most [`STACK_MAX`].
pub fn auto_stack(exp: &Experiment, budget: u128) -> usize {
    let each = exp.memory_estimate().max(1);
    usize::try_from(budget / each)
        .unwrap_or(STACK_MAX)
        .clamp(1, STACK_MAX)
}

/// Trial `trial` of a grid point: the point's experiment with seed `seed + trial`, for its
/// inputs and its weights alike.
pub fn trial_experiment(point: &Experiment, seed: u64, trial: usize) -> Experiment {
    let mut e = point.clone();
    e.seed = seed + trial as u64;
    e.model.seed = e.seed;
    e
}

/// The trial log lines (one per input case) and records of one finished trial.
fn trial_lines(
    point: usize,
    trial: usize,
    trial_exp: &Experiment,
    backend: &Backend,
    outcome: &run::Outcome,
    thresholds: Thresholds,
) -> Result<(String, Vec<TrialRecord>), SweepError> {
    let report = crate::report::build(trial_exp, backend, outcome, thresholds);
    let mut lines = String::new();
    let mut records = Vec::with_capacity(report.cases.len());
    for case in &report.cases {
        let record = TrialRecord {
            point,
            trial,
            seed: trial_exp.seed,
            case: case.input.name.clone(),
            delta_l2: case.layers.iter().map(|l| l.delta_l2).collect(),
            weight_l2: case
                .params
                .iter()
                .filter(|p| p.name.ends_with(".weight"))
                .map(|p| p.l2)
                .collect(),
            ratio: case.delta_ratio,
            nonfinite: case.params.iter().any(|p| p.nonfinite > 0),
            first_nonfinite_step: None,
            origin: None,
            final_loss: None,
            dead: !case.dead_layers.is_empty(),
            zero_gradient: case.zero_gradients.iter().any(|p| p.ends_with(".weight")),
        };
        lines.push_str(&serde_json::to_string(&record)?);
        lines.push('\n');
        records.push(record);
    }
    Ok((lines, records))
}

/// Run `exp`'s sweep on `backend`; returns the record directory and every trial recorded in it.
pub fn run_sweep(
    exp: &Experiment,
    sweep: &Sweep,
    backend: &Backend,
    opts: &SweepOptions,
    err: &mut dyn Write,
) -> Result<(PathBuf, Vec<TrialRecord>), SweepError> {
    let (started, clock) = (std::time::SystemTime::now(), std::time::Instant::now());
    let dir = record_dir(exp, backend, opts)?;
    let mut records = read_trials(&dir)?;
    let todo = pending_units(&mut records, sweep, sweep.cases.len(), opts.shard);
    let log_path = dir.join("trials.jsonl");
    let mut log = TrialLog {
        file: std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open", &log_path))?,
        path: log_path,
        written: 0,
    };
    let mut progress = Progress::new(todo.len());
    let budget = stack_budget(crate::config::available_memory());
    let mut start = 0usize;
    while start < todo.len() {
        let point = todo[start].0;
        let base = sweep
            .point(point)
            .map_err(|e| SweepError::Point(Box::new(e)))?;
        let limit = opts
            .stack
            .unwrap_or_else(|| auto_stack(&base, budget))
            .max(1);
        let len = todo[start..]
            .iter()
            .take(limit)
            .take_while(|u| u.0 == point)
            .count();
        let units = &todo[start..start + len];
        records.extend(run_units(exp, &base, units, backend, opts, &mut log)?);
        start += len;
        let finished_point = todo.get(start).is_none_or(|next| next.0 != point);
        progress.advance(len, finished_point.then_some(point), sweep, err);
    }
    progress.finish();
    // What made the record: this process (a resumed sweep's meta.json describes the run that
    // finished it).
    let meta = crate::record::meta_json(exp, backend, started, clock.elapsed());
    write_atomic(&dir.join("meta.json"), &meta)?;
    Ok((dir, records))
}

/// The sweep's record directory: the one `--resume` names, checked to be this sweep's (and
/// this shard's), or a new one with the config (and shard) written into it.
fn record_dir(
    exp: &Experiment,
    backend: &Backend,
    opts: &SweepOptions,
) -> Result<PathBuf, SweepError> {
    let toml = exp.to_toml();
    if let Some(dir) = opts.resume {
        check_resume(dir, exp, opts, &toml)?;
        return Ok(dir.to_path_buf());
    }
    let shard = opts.shard.map_or(String::new(), |s| {
        format!("-shard-{}-of-{}", s.index, s.count)
    });
    let stem = format!(
        "{}-{}-sweep{shard}",
        crate::record::utc(std::time::SystemTime::now(), false),
        backend.kind.name()
    );
    let dir = crate::record::unused_dir(&opts.out.join(&exp.name), &stem);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    write_atomic(&dir.join("config.toml"), &toml)?;
    if let Some(s) = opts.shard {
        write_atomic(&dir.join(SHARD_FILE), &format!("{}/{}\n", s.index, s.count))?;
    }
    Ok(dir)
}

/// `--resume DIR` continues only a record of the same config and the same shard.
fn check_resume(
    dir: &Path,
    exp: &Experiment,
    opts: &SweepOptions,
    toml: &str,
) -> Result<(), SweepError> {
    let recorded = std::fs::read_to_string(dir.join("config.toml")).map_err(|source| {
        SweepError::NotARecord {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    if config_body(&recorded) != config_body(toml) {
        return Err(SweepError::DifferentConfig {
            dir: dir.to_path_buf(),
            config: exp.path.clone(),
        });
    }
    // A shard's record holds only its own units: resuming it as another part (or as the whole
    // sweep) would mix parts and break `merge`.
    let recorded_shard = recorded_shard(dir)?;
    if recorded_shard == opts.shard {
        return Ok(());
    }
    Err(SweepError::WrongShard {
        dir: dir.to_path_buf(),
        recorded: part_name(recorded_shard),
        asked: part_name(opts.shard),
        flag: recorded_shard.map_or("no --shard".to_string(), |s| {
            format!("--shard {}/{}", s.index, s.count)
        }),
    })
}

/// The (point, trial) units still to run, in order: those of this shard not recorded for every
/// case. Records of units left half done (some cases only) are dropped; they run again.
fn pending_units(
    records: &mut Vec<TrialRecord>,
    sweep: &Sweep,
    cases: usize,
    shard: Option<Shard>,
) -> Vec<(usize, usize)> {
    let mut count = std::collections::HashMap::new();
    for r in records.iter() {
        *count.entry((r.point, r.trial)).or_insert(0usize) += 1;
    }
    let done: HashSet<(usize, usize)> = count
        .into_iter()
        .filter(|(_, c)| *c >= cases)
        .map(|(k, _)| k)
        .collect();
    records.retain(|r| done.contains(&(r.point, r.trial)));
    (0..sweep.len() * sweep.trials)
        .filter(|k| shard.is_none_or(|s| s.owns(*k)))
        .map(|k| (k / sweep.trials, k % sweep.trials))
        .filter(|u| !done.contains(u))
        .collect()
}

/// The trial log, `trials.jsonl`, appended to one unit at a time.
struct TrialLog {
    file: std::fs::File,
    path: PathBuf,
    written: usize,
}

/// Run `units` (trials of one point, `base`) as one stack, and append each unit's lines to the
/// log in trial order; returns their records.
fn run_units(
    exp: &Experiment,
    base: &Experiment,
    units: &[(usize, usize)],
    backend: &Backend,
    opts: &SweepOptions,
    log: &mut TrialLog,
) -> Result<Vec<TrialRecord>, SweepError> {
    let trial_exps: Vec<Experiment> = units
        .iter()
        .map(|&(_, trial)| trial_experiment(base, exp.seed, trial))
        .collect();
    if base.train.is_some() {
        // Training trials are independent runs: in parallel on the CPU backends (a GPU queue
        // gains nothing from it). The lines are written in trial order all the same.
        let run = |(&(point, trial), trial_exp): (&(usize, usize), &Experiment)| {
            training_line(point, trial, trial_exp, backend)
        };
        let lines = if backend.kind == crate::backend::BackendKind::Wgpu {
            units
                .iter()
                .zip(&trial_exps)
                .map(run)
                .collect::<Result<Vec<_>, _>>()?
        } else {
            units
                .par_iter()
                .zip(&trial_exps)
                .map(run)
                .collect::<Result<Vec<_>, _>>()?
        };
        return log.append(lines);
    }
    let outcomes = run::execute_stack(&trial_exps, backend)?;
    // Statistics per trial, in parallel; then the lines are written in trial order.
    let lines: Vec<(String, Vec<TrialRecord>)> = units
        .par_iter()
        .zip(&trial_exps)
        .zip(outcomes)
        .map(|((&(point, trial), trial_exp), outcome)| {
            trial_lines(point, trial, trial_exp, backend, &outcome, opts.thresholds)
        })
        .collect::<Result<_, _>>()?;
    log.append(lines)
}

/// One training trial, run to its end or its first non-finite step, as its log line and
/// record (case `train`; ‖δ_l‖ and ‖∂L/∂W_l‖ of the last step run).
fn training_line(
    point: usize,
    trial: usize,
    trial_exp: &Experiment,
    backend: &Backend,
) -> Result<(String, Vec<TrialRecord>), SweepError> {
    let outcome = crate::train::train(trial_exp, backend, &mut |_| {})?;
    let report = crate::train::train_report(trial_exp, backend, &outcome);
    let last = outcome.steps.last();
    let per_layer = |f: &dyn Fn(&crate::train::LayerStep) -> f64| -> Vec<f32> {
        last.map_or(Vec::new(), |s| {
            s.layers.iter().map(|l| f(l) as f32).collect()
        })
    };
    let delta_l2 = per_layer(&|l| l.delta_l2);
    let record = TrialRecord {
        point,
        trial,
        seed: trial_exp.seed,
        case: "train".into(),
        ratio: match (delta_l2.first(), delta_l2.last()) {
            (Some(a), Some(b)) => a / b,
            _ => f32::NAN,
        },
        delta_l2,
        weight_l2: per_layer(&|l| l.grad_l2),
        nonfinite: outcome.origin.is_some(),
        first_nonfinite_step: outcome.origin.as_ref().and_then(|o| o.step),
        origin: outcome.origin.as_ref().map(|o| o.kind.name().to_string()),
        final_loss: last.map(|s| s.loss),
        dead: !report.dead_layers.is_empty(),
        zero_gradient: !report.zero_gradients.is_empty(),
    };
    let line = format!("{}\n", serde_json::to_string(&record)?);
    Ok((line, vec![record]))
}

impl TrialLog {
    /// Append each unit's lines (one write per unit: a unit is on disk whole, or torn and
    /// dropped on resume), then sync; returns the units' records.
    fn append(
        &mut self,
        lines: Vec<(String, Vec<TrialRecord>)>,
    ) -> Result<Vec<TrialRecord>, SweepError> {
        let mut records = Vec::new();
        for (text, trial_records) in lines {
            self.file
                .write_all(text.as_bytes())
                .map_err(io("append to", &self.path))?;
            records.extend(trial_records);
            self.written += 1;
            if std::env::var(FAULT_ENV)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|n| self.written >= n)
            {
                std::process::abort();
            }
        }
        // A killed process loses nothing written; the sync bounds what a machine crash loses.
        self.file.sync_data().map_err(io("sync", &self.path))?;
        Ok(records)
    }
}

/// Progress: a bar on a terminal, else a line per finished grid point on stderr.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_point: Option<usize>,
}

impl Progress {
    fn new(units: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(units as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} trials  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Self {
            bar,
            last_point: None,
        }
    }

    /// `units` more done; `finished`: the grid point whose last unit just ran, if any.
    fn advance(
        &mut self,
        units: usize,
        finished: Option<usize>,
        sweep: &Sweep,
        err: &mut dyn Write,
    ) {
        match &self.bar {
            Some(bar) => bar.inc(units as u64),
            None => {
                if let Some(point) = finished.filter(|p| self.last_point != Some(*p)) {
                    let _ = writeln!(
                        err,
                        "sweep: point {}/{} done: {}",
                        point + 1,
                        sweep.len(),
                        sweep.label(point)
                    );
                    self.last_point = Some(point);
                }
            }
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Write the summary files of a sweep record (`records`: every trial, for `trials.csv`).
pub fn write_summary(
    dir: &Path,
    summary: &SweepSummary,
    records: &[TrialRecord],
) -> Result<(), SweepError> {
    write_atomic(
        &dir.join("trials.csv"),
        &gradscope_render::sweep::trials_csv(summary, records)?,
    )?;
    let json = serde_json::to_string_pretty(summary)?;
    write_atomic(&dir.join("summary.json"), &format!("{json}\n"))?;
    write_atomic(
        &dir.join("summary.csv"),
        &gradscope_render::sweep::layers_csv(summary, true)?,
    )?;
    write_atomic(
        &dir.join("summary.txt"),
        &gradscope_render::sweep::table(summary),
    )?;
    write_atomic(
        &dir.join("sweep.svg"),
        &gradscope_render::plot::svg(summary),
    )?;
    if let Some(ratio) = gradscope_render::plot::ratio_svg(summary) {
        write_atomic(&dir.join("sweep-ratio.svg"), &ratio)?;
    }
    write_atomic(
        &dir.join("report.md"),
        &gradscope_render::sweep::markdown(summary, "sweep.svg"),
    )?;
    crate::page::write(dir).map_err(io("write", &dir.join("report.html")))
}

/// Combine sweep records (shards of one sweep) into a new record under `out`; returns its
/// directory and summary. Two records of the same part, or sharing trials, are refused; so is
/// a set that does not cover the sweep, unless `allow_partial` (the summary then says it is
/// partial in every output).
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    allow_partial: bool,
) -> Result<(PathBuf, SweepSummary), SweepError> {
    let started = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let first = dirs.first().ok_or(SweepError::NoRecords)?;
    // The first record's config is read once: parsed for the sweep, compared with the others,
    // and copied into the merged record.
    let bad_config = |e| SweepError::BadRecordConfig {
        dir: first.clone(),
        source: Box::new(e),
    };
    let source = config::read_source(&first.join("config.toml")).map_err(bad_config)?;
    let exp = config::parse(source.clone()).map_err(bad_config)?;
    let sweep = exp
        .sweep
        .clone()
        .ok_or_else(|| SweepError::NotASweep { dir: first.clone() })?;
    let body = config_body(&source.text);
    let mut parts: Vec<(Option<Shard>, &PathBuf)> = Vec::new();
    let mut owner: std::collections::HashMap<(usize, usize, String), usize> =
        std::collections::HashMap::new();
    let mut records = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.join("config.toml");
        let other = std::fs::read_to_string(&path).map_err(|source| SweepError::NoConfig {
            dir: dir.clone(),
            source,
        })?;
        if config_body(&other) != body {
            return Err(SweepError::DifferentSweep {
                dir: dir.clone(),
                first: first.clone(),
            });
        }
        let shard = recorded_shard(dir)?;
        if let Some((_, earlier)) = parts.iter().find(|(s, _)| *s == shard) {
            return Err(SweepError::DuplicateShard {
                shard: part_name(shard),
                first: (*earlier).clone(),
                second: dir.clone(),
            });
        }
        parts.push((shard, dir));
        let mut shared: Vec<(usize, TrialRecord)> = Vec::new();
        for r in read_trials(dir)? {
            use std::collections::hash_map::Entry;
            match owner.entry((r.point, r.trial, r.case.clone())) {
                Entry::Occupied(e) => shared.push((*e.get(), r)),
                Entry::Vacant(e) => {
                    e.insert(i);
                    records.push(r);
                }
            }
        }
        if let Some((j, r)) = shared.first() {
            return Err(SweepError::DuplicateTrials {
                first: dirs[*j].clone(),
                second: dir.clone(),
                count: shared.len(),
                example: format!("point {}, trial {}, case {}", r.point, r.trial, r.case),
            });
        }
    }
    let expected = sweep.len() * sweep.trials * sweep.cases.len();
    if records.len() < expected && !allow_partial {
        return Err(SweepError::Incomplete {
            done: records.len(),
            expected,
            missing: missing_parts(&sweep, &parts, &owner),
        });
    }
    records.sort_by(|a, b| (a.point, a.trial, &a.case).cmp(&(b.point, b.trial, &b.case)));
    let summary = summarise(&exp.name, &sweep, &records);
    let stem = format!(
        "{}-merged",
        crate::record::utc(std::time::SystemTime::now(), false)
    );
    let dir = crate::record::unused_dir(&out.join(&exp.name), &stem);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    write_atomic(&dir.join("config.toml"), &source.text)?;
    let lines: String = records
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect();
    write_atomic(&dir.join("trials.jsonl"), &lines)?;
    let named: Vec<(PathBuf, String)> = parts
        .iter()
        .map(|(shard, d)| ((*d).clone(), part_name(*shard)))
        .collect();
    let meta = crate::record::merged_meta(&exp, &named, started, clock.elapsed());
    let json = serde_json::to_string_pretty(&meta)?;
    write_atomic(&dir.join("meta.json"), &format!("{json}\n"))?;
    // Last: the summary files end with report.html, which lists every file of the record.
    write_summary(&dir, &summary, &records)?;
    Ok((dir, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_units() {
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        for k in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
        }
        assert!(
            Shard::parse("0/3").is_err()
                && Shard::parse("4/3").is_err()
                && Shard::parse("x").is_err()
        );
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
    }

    #[test]
    fn the_stack_budget_is_a_quarter_of_the_available_memory_within_its_bounds() {
        const MIB: u128 = 1 << 20;
        assert_eq!(stack_budget(None), 64 * MIB, "unknown: the minimum");
        assert_eq!(
            stack_budget(Some(100 * MIB)),
            64 * MIB,
            "a quarter is below the minimum"
        );
        assert_eq!(
            stack_budget(Some(1024 * MIB)),
            256 * MIB,
            "a quarter of 1 GiB"
        );
        assert_eq!(stack_budget(Some(24 * 1024 * MIB)), 512 * MIB, "capped");
    }
}
