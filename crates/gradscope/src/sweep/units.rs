//! The trial loop of a sweep: the units still to run (resume, shards), each stack of trials
//! run and appended to `trials.jsonl`, training trials, and the progress shown.

use super::*;

/// A tensor's ‖·‖₂ as a trial records it: `finite_part`, the norm over its finite values,
/// where all `nonfinite` = 0 of them are; NaN where it holds a non-finite value.
fn whole_norm(finite_part: f64, nonfinite: usize) -> f64 {
    if nonfinite == 0 {
        finite_part
    } else {
        f64::NAN
    }
}

/// The trial log lines (one per input case) and records of one finished trial.
pub(super) fn trial_lines(
    point: usize,
    trial: usize,
    trial_exp: &Experiment,
    outcome: &run::Outcome,
    thresholds: Thresholds,
) -> Result<(String, Vec<TrialRecord>), SweepError> {
    let cases = crate::report::cases_without_theory(trial_exp, outcome, thresholds);
    let mut lines = String::new();
    let mut records = Vec::with_capacity(cases.len());
    for (case, out) in cases.iter().zip(&outcome.cases) {
        let record = TrialRecord {
            point,
            trial,
            seed: trial_exp.seed,
            case: case.input.name.clone(),
            precision: trial_exp.precision,
            // The norm of a tensor holding a non-finite value is not a number: NaN, not the
            // norm of its finite part (0 for an all-inf δ), which a median would count.
            delta_l2: case
                .layers
                .iter()
                .map(|l| whole_norm(l.delta_l2, l.delta_nonfinite))
                .collect(),
            weight_l2: case
                .params
                .iter()
                .filter(|p| p.name.ends_with(".weight"))
                .map(|p| whole_norm(p.l2, p.nonfinite))
                .collect(),
            ratio: case.delta_ratio,
            nonfinite: case.params.iter().any(|p| p.nonfinite > 0),
            first_nonfinite_step: None,
            origin: None,
            final_loss: None,
            dead: !case.dead_layers.is_empty(),
            zero_gradient: case.zero_gradients.iter().any(|p| p.ends_with(".weight")),
            range_checked: !out.pre_activations.is_empty(),
            leaves_range: crate::range::first_to_leave(
                &out.pre_activations,
                &out.deltas,
                trial_exp.precision,
            ),
        };
        lines.push_str(&serde_json::to_string(&record)?);
        lines.push('\n');
        records.push(record);
    }
    Ok((lines, records))
}

/// The sweep's record directory: the one `--resume` names, checked to be this sweep's (and
/// this shard's), or a new one with the config (and shard) written into it.
pub(super) fn record_dir(
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
pub(super) fn check_resume(
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
pub(super) fn pending_units(
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
pub(super) struct TrialLog {
    pub(super) file: std::fs::File,
    pub(super) path: PathBuf,
    pub(super) written: usize,
}

/// Run `units` (training trials of one point, `base`): independent runs, in parallel on the
/// CPU backends (a GPU queue gains nothing from it); the lines are appended to the log in
/// trial order all the same. Returns their records.
pub(super) fn run_training_units(
    exp: &Experiment,
    base: &Experiment,
    units: &[(usize, usize)],
    backend: &Backend,
    log: &mut TrialLog,
) -> Result<Vec<TrialRecord>, SweepError> {
    let trial_exps: Vec<Experiment> = units
        .iter()
        .map(|&(_, trial)| trial_experiment(base, exp.seed, trial))
        .collect();
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
    log.append(lines)
}

/// One training trial, run to its end or its first non-finite step, as its log line and
/// record (case `train`; ‖δ_l‖ and ‖∂L/∂W_l‖ of the last step run).
pub(super) fn training_line(
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
        precision: trial_exp.precision,
        ratio: match (delta_l2.first(), delta_l2.last()) {
            (Some(a), Some(b)) => f64::from(a / b),
            _ => f64::NAN,
        },
        delta_l2: delta_l2.iter().map(|&v| f64::from(v)).collect(),
        weight_l2: per_layer(&|l| l.grad_l2)
            .into_iter()
            .map(f64::from)
            .collect(),
        nonfinite: outcome.origin.is_some(),
        first_nonfinite_step: outcome.origin.as_ref().and_then(|o| o.step),
        origin: outcome.origin.as_ref().map(|o| o.kind.name().to_string()),
        final_loss: last.map(|s| f64::from(s.loss)),
        dead: !report.dead_layers.is_empty(),
        zero_gradient: !report.zero_gradients.is_empty(),
        range_checked: false,
        leaves_range: None,
    };
    let line = format!("{}\n", serde_json::to_string(&record)?);
    Ok((line, vec![record]))
}

impl TrialLog {
    /// Append each unit's lines (one write per unit: a unit is on disk whole, or torn and
    /// dropped on resume), then sync; returns the units' records.
    pub(super) fn append(
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
pub(super) struct Progress {
    pub(super) bar: Option<indicatif::ProgressBar>,
    pub(super) last_point: Option<usize>,
}

impl Progress {
    pub(super) fn new(units: usize) -> Self {
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
    pub(super) fn advance(
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

    pub(super) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
