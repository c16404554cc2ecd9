//! What a step and a run record: the per-layer statistics of a step, the accuracy, and the
//! run's report (growth before a failure, layers that died).

use super::*;
use gradscope_model::sums;

/// ‖values‖₂, max |values| (NaN when a value is NaN, else inf when a value is ±inf) and the
/// count of non-finite values. Σx² is [`sums::squares`], what a step reads of the device, so
/// that on a CPU backend the host's checks and the device's sums give the same norms.
pub(super) fn scan(values: &[f32]) -> (f64, f64, usize) {
    let sum = sums::squares(values);
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    // Squares are ≥ 0: the sum is NaN exactly when a value is.
    let max = if sum.is_nan() {
        f64::NAN
    } else {
        f64::from(sums::max_abs(values))
    };
    (sum.sqrt(), max, bad)
}

/// ‖before‖₂ and ‖after − before‖₂ ([`sums::squares`], [`sums::change_squares`]).
pub(super) fn norm_and_change(before: &[f32], after: &[f32]) -> (f64, f64) {
    (
        sums::squares(before).sqrt(),
        sums::change_squares(after, before).sqrt(),
    )
}

/// The step's record from its pass, the weights before and after it, the norms, and whether
/// the step made an update (no update ratio is computed where it made none).
pub(super) fn record(
    step: usize,
    pass: &CaseOutcome,
    (before, after): (&MlpWeights, &MlpWeights),
    grad_norms: (f64, f64),
    updated: bool,
) -> StepRecord {
    let n = before.layers.len();
    let mut grads = pass.grads.iter();
    let layers = (0..n)
        .map(|l| {
            let z = &pass.pre_activations[l];
            let (z_l2, z_max_abs, z_bad) = scan(&z.data);
            let (delta_l2, _, delta_bad) = scan(&pass.deltas[l].data);
            // Gradients come in parameter order: the kernel, then the bias if any.
            let n_params = 1 + usize::from(before.layers[l].bias.is_some());
            let (mut grad_l2, mut grad_bad) = (0.0, 0);
            for (i, g) in grads.by_ref().take(n_params).enumerate() {
                let (l2, _, bad) = scan(&g.tensor.data);
                if i == 0 {
                    grad_l2 = l2;
                }
                grad_bad += bad;
            }
            let (weight_l2, diff) =
                norm_and_change(&before.layers[l].weight.data, &after.layers[l].weight.data);
            let dead = if l + 1 < n {
                dead_fraction(&pass.layer_outputs[l])
            } else {
                0.0
            };
            LayerStep {
                z_max_abs,
                z_l2,
                delta_l2,
                grad_l2,
                weight_l2,
                update_ratio: updated.then_some(diff / weight_l2),
                dead_fraction: dead,
                nonfinite: z_bad + delta_bad + grad_bad,
                z_nonfinite: z_bad,
                delta_nonfinite: delta_bad,
                grad_nonfinite: grad_bad,
            }
        })
        .collect();
    StepRecord {
        step,
        loss: pass.loss,
        grad_norm: grad_norms.0,
        grad_norm_clipped: grad_norms.1,
        layers,
        accuracy: None,
        loss_scale: None,
        skipped: None,
    }
}

/// The fraction of units (columns of `a`, `[batch, width]`) that are 0 for every example.
pub(super) fn dead_fraction(a: &HostTensor) -> f64 {
    let width = a.shape[1];
    sums::zero_columns(&a.data, a.shape[0], width) as f64 / width.max(1) as f64
}

/// The fraction of rows of `output` `[batch, k]` whose largest value (the first of equal
/// ones) is at their label in `targets` `[batch]`; a row holding NaN counts as wrong.
pub(super) fn accuracy(output: &HostTensor, targets: &HostTensor) -> f32 {
    let k = output.shape[1].max(1);
    let rows = output.data.chunks_exact(k);
    let n = rows.len();
    let right = rows
        .zip(&targets.data)
        .filter(|(row, label)| !row.iter().any(|v| v.is_nan()) && argmax(row) as f32 == **label)
        .count();
    right as f32 / n.max(1) as f32
}

/// Summarise `outcome` of `exp` on `backend`.
pub fn train_report(exp: &Experiment, backend: &Backend, outcome: &TrainOutcome) -> TrainReport {
    let t = &outcome.setting;
    let first_skip = outcome.scaling.as_ref().and_then(|s| s.first_skip.as_ref());
    // The layer of the first non-finite value (the output layer for the loss and the
    // inputs), and the steps up to it. For a collapsed loss scale: the first skipped step's,
    // up to that step, since the steps skipped after it hold no finite growth to show.
    let (born, until) = match (&outcome.origin, first_skip) {
        (Some(o), Some(f)) if o.kind == OriginKind::LossScale => (Some(f), f.step),
        (Some(o), _) => (Some(o), None),
        (None, _) => (None, None),
    };
    let upto = until.map_or(outcome.steps.len(), |s| {
        (s as usize + 1).min(outcome.steps.len())
    });
    let growth = born
        .map(|o| o.layer.unwrap_or(outcome.weights.layers.len() - 1))
        .filter(|_| outcome.steps.iter().all(|s| !s.layers.is_empty()))
        .map(|layer| growth(&outcome.steps[..upto], layer));
    let skipped_steps = outcome
        .steps
        .iter()
        .filter(|s| s.skipped == Some(true))
        .count();
    let scales = || outcome.steps.iter().filter_map(|s| s.loss_scale);
    let loss_scale = outcome.scaling.as_ref().map(|end| {
        Box::new(LossScaling {
            kind: describe_named(
                LOSS_SCALES,
                &exp.task
                    .train()
                    .map_or(crate::config::LossScale::None, |t| t.loss_scale),
            ),
            init: scales().next().unwrap_or(end.last),
            last: end.last,
            min: scales().fold(end.last, f32::min),
            max: scales().fold(end.last, f32::max),
            skipped_steps,
            first_skip: end.first_skip.clone(),
        })
    });
    TrainReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: exp.name.clone(),
        description: exp.description.clone(),
        backend: backend.kind.name().to_string(),
        precision: exp.precision,
        seed: exp.seed,
        loss: exp.loss.name().to_string(),
        optimizer: describe_named(OPTIMIZERS, &t.optimizer),
        learning_rate: t.learning_rate,
        clip: describe_named(CLIPS, &t.clip),
        batch: t.batch,
        steps: t.steps,
        steps_run: outcome.steps.len(),
        first_loss: outcome.steps.first().map_or(f32::NAN, |s| s.loss),
        last_loss: outcome.steps.last().map_or(f32::NAN, |s| s.loss),
        finite: outcome.origin.is_none() && skipped_steps == 0,
        origin: outcome.origin.clone(),
        growth,
        accuracy: match (outcome.steps.first(), outcome.steps.last()) {
            (Some(a), Some(b)) => a.accuracy.zip(b.accuracy).map(|(a, b)| [a, b]),
            _ => None,
        },
        dead_layers: layer_events(&outcome.steps, |s| s.dead_fraction == 1.0),
        zero_gradients: layer_events(&outcome.steps, |s| s.grad_l2 == 0.0),
        master_precision: (exp.precision != crate::config::Precision::F32)
            .then_some(crate::config::Precision::F32),
        loss_scale,
    }
}

/// The layers for which `is` held at some step, each with the first such step and whether
/// it held at the last step run (steps without per-layer statistics are skipped).
pub(super) fn layer_events(
    steps: &[StepRecord],
    is: impl Fn(&LayerStep) -> bool,
) -> Vec<LayerEvent> {
    let Some(last) = steps.iter().rev().find(|s| !s.layers.is_empty()) else {
        return Vec::new();
    };
    (0..last.layers.len())
        .filter_map(|l| {
            let first = steps.iter().find(|s| s.layers.get(l).is_some_and(&is))?;
            Some(LayerEvent {
                layer: l,
                first_step: first.step,
                at_end: is(&last.layers[l]),
            })
        })
        .collect()
}

pub(super) fn growth(steps: &[StepRecord], layer: usize) -> Growth {
    let from = steps.len().saturating_sub(11);
    let window = &steps[from..];
    let z: Vec<f64> = window.iter().map(|s| s.layers[layer].z_max_abs).collect();
    let finite: Vec<(usize, f64)> = z
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .collect();
    let factor = match (finite.first(), finite.last()) {
        (Some(&(i, a)), Some(&(j, b))) if j > i => (b / a).powf(1.0 / (j - i) as f64),
        _ => f64::NAN,
    };
    Growth {
        layer,
        steps: window.iter().map(|s| s.step).collect(),
        z_max_abs: z,
        delta_l2: window.iter().map(|s| s.layers[layer].delta_l2).collect(),
        z_factor_per_step: factor,
    }
}
