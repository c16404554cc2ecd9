//! Running sweeps: every (grid point, trial) unit on one backend, each finished trial appended
//! durably to `trials.jsonl` in the sweep's record directory, so an interrupted sweep loses no
//! finished trial; `--resume DIR` skips those, `--shard i/n` runs a disjoint part, and `merge`
//! combines shard records into the summary of the whole sweep.
//!
//! The trials of one grid point differ only in their seed, so they run as stacks of networks
//! ([`run::execute_stack`]): one forward and one backward pass for up to
//! [`SweepOptions::stack`] trials at a time. Points that differ only in their activations
//! share each trial's weights, drawn and loaded once (`draws`). Each trial's line is written
//! with one `write` (whole, or torn and dropped on resume) and the file is synced after every
//! stack.

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

mod draws;
mod merge;
mod units;

use draws::*;
pub use merge::merge;
use merge::*;
use units::*;

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
    // Units left per point, for the line that says a point is done.
    let mut left = std::collections::HashMap::<usize, usize>::new();
    for u in &todo {
        *left.entry(u.0).or_default() += 1;
    }
    for draw in sweep_plan(&todo, sweep, opts.stack, budget) {
        let done = run_draw(
            exp,
            sweep,
            &draw,
            backend,
            opts,
            &mut log,
            |point, units| {
                let rest = left.get_mut(&point).map_or(0, |n| {
                    *n -= units;
                    *n
                });
                progress.advance(units, (rest == 0).then_some(point), sweep, err);
            },
        )?;
        records.extend(done);
    }
    progress.finish();
    // What made the record: this process (a resumed sweep's meta.json describes the run that
    // finished it).
    let meta = crate::record::meta_json(exp, backend, started, clock.elapsed());
    write_atomic(&dir.join("meta.json"), &meta)?;
    Ok((dir, records))
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
