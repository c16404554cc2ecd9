//! `gradscope run` of a training experiment: the run with its record (steps, checkpoints,
//! weights, page), the dump, the notebook page and the printed report.

use super::*;

/// Run one training experiment: steps appended to the record's `steps.jsonl` as they finish,
/// then the summary (`report.json`, `report.md`) and the report on stdout. Exit 3 when a step
/// went non-finite (unless `--allow-nonfinite`).
pub(super) fn run_training(
    exp: &Experiment,
    train: &config::Train,
    backend: &Backend,
    s: &RunSettings,
    index: usize,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CommandResult {
    let fail = |m: String| CommandError::failure(m);
    let (started, clock) = (std::time::SystemTime::now(), std::time::Instant::now());
    let mut log = if s.no_record {
        None
    } else {
        let stamp = record::utc(started, false);
        let l = record::StepLog::create(&s.out, exp, &stamp, backend.kind.name())
            .map_err(|e| fail(format!("cannot write the run record under {}: {e}\nhint: choose another place with --out DIR, or pass --no-record", s.out.display())))?;
        Some(l)
    };
    let mut write_error = None;
    let checkpoints = log.as_ref().map(|l| l.dir().join("checkpoints"));
    let mut checkpoint_error = None;
    let outcome = crate::train::train_checkpointed(
        exp,
        backend,
        &mut |step| {
            if let Some(l) = log.as_mut()
                && let Err(e) = l.append(step)
            {
                write_error.get_or_insert(e);
            }
        },
        &mut |c| {
            let Some(dir) = &checkpoints else { return };
            let path = dir.join(format!("step-{}.safetensors", c.steps));
            let written = std::fs::create_dir_all(dir).and_then(|()| {
                crate::tensors::write_checkpoint(&path, exp, backend.kind.name(), c)
            });
            if let Err(e) = written {
                checkpoint_error.get_or_insert(format!("{}: {e}", path.display()));
            }
        },
    )
    .map_err(|e| fail(format!("{}: {e}", exp.path.display())))?;
    if let Some(e) = checkpoint_error {
        return Err(fail(format!("cannot write a checkpoint: {e}")));
    }
    if checkpoints.is_none() && train.checkpoint_every.is_some() {
        let _ = writeln!(
            err,
            "note: train.checkpoint_every writes into the run record; with --no-record none was written"
        );
    }
    if let Some(e) = write_error {
        return Err(fail(format!("cannot append to steps.jsonl: {e}")));
    }
    let report = crate::train::train_report(exp, backend, &outcome);
    let table = train_text::training(&report, &outcome.steps);
    if let Some(l) = log {
        let svg = plot::training_svg(&report.experiment, &outcome.steps, report.origin.as_ref());
        let files = [
            ("train.svg", svg),
            ("report.json", format!("{}\n", report.to_json())),
            (
                "report.md",
                train_text::training_markdown(&report, &outcome.steps, "train.svg"),
            ),
            (
                "meta.json",
                record::meta_json(exp, backend, started, clock.elapsed()),
            ),
        ];
        let dir = l
            .finish(&files)
            .map_err(|e| fail(format!("cannot finish the run record: {e}")))?;
        let weights = dir.join(crate::tensors::TRAINED_WEIGHTS);
        crate::tensors::write_trained_weights(&weights, exp, backend.kind.name(), &outcome)
            .map_err(|e| fail(format!("cannot write {}: {e}", weights.display())))?;
        // Last: the page lists every file of the record, the weights included.
        crate::page::write(&dir).map_err(|e| fail(format!("cannot finish the run record: {e}")))?;
        let _ = writeln!(err, "note: run record written to {}", dir.display());
    }
    if let Some(dir) = &s.dump {
        let written = crate::tensors::write_training_dump(dir, exp, backend.kind.name(), &outcome)
            .map_err(|e| fail(format!("cannot write the dump: {e}")))?;
        let names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let _ = writeln!(
            err,
            "note: tensors written to {}: {}",
            dir.display(),
            names.join(", ")
        );
    }
    write_training_page(exp, s, &report, &outcome.steps)?;
    let sep = if index > 0 { "\n" } else { "" };
    let shown = match s.format {
        Format::Json => format!("{}\n", report.to_json()),
        Format::Markdown => format!(
            "{sep}{}",
            train_text::training_markdown(&report, &outcome.steps, "train.svg")
        ),
        _ => format!("{sep}{table}"),
    };
    out.write_all(shown.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|_| CommandError::silent(ExitStatus::Failure))?;
    Ok(if report.origin.is_some() && !s.allow_nonfinite {
        ExitStatus::NonFinite
    } else {
        ExitStatus::Ok
    })
}

/// A training run's notebook page (`--notebook`) and its picture.
pub(super) fn write_training_page(
    exp: &Experiment,
    s: &RunSettings,
    report: &crate::train::TrainReport,
    steps: &[crate::train::StepRecord],
) -> Result<(), CommandError> {
    let Some(nb) = &s.notebook else {
        return Ok(());
    };
    let command = regenerate_command(exp, s, nb);
    let page = train_text::training_markdown(report, steps, &format!("{}.svg", exp.name));
    let svg = plot::training_svg(&exp.name, steps, report.origin.as_ref());
    record::write_notebook_page(nb, &exp.name, &command, &page, Some(&svg))
        .map(|_| ())
        .map_err(|e| CommandError::new(ExitStatus::Failure, notebook_error(nb, &e)))
}
