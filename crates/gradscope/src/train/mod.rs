//! Training runs (`[train]`): optimisation steps on fresh batches, every step measured and
//! checked, in the order the computation runs, for the first non-finite value.
//!
//! The forward and backward passes run on the backend, with the backward pass written out
//! (δ_l, then each gradient; [`pass`]) rather than taken by Burn's autodiff: that gives every
//! δ_l directly, and a step of the seed's deep network costs 0.19 ms on flex instead of 0.29 ms
//! (the autodiff graph of ~40 small operations was a third of a step). The derivatives are
//! `Activation::derivative`, each checked against its formula, and the whole step against an
//! f64 oracle on every backend. Batches, targets, clipping and the optimiser step run on the
//! host, element by element in f64 and stored as f32. So every backend gets the same batches
//! and the same update rule, and only the passes differ. The update rules are PyTorch's
//! (`torch.optim.SGD`, `torch.optim.Adam`, `clip_grad_norm_`); Burn's optimisers are not used
//! because its norm clipping is per tensor, not global, and because the `update` origin and the
//! update ratio need the step before it is applied.

use burn::tensor::Tensor;
use gradscope_model::rng::{TEACHER_STREAM, batch_stream};
use gradscope_model::{HostRng, HostTensor, Initializer, MlpConfig, MlpWeights, NamedTensor};
pub use gradscope_report::{Growth, LayerEvent, LayerStep, StepRecord, TrainReport};

use crate::backend::Backend;
use crate::config::kinds::{CLIPS, OPTIMIZERS, describe_named};
use crate::config::{Clip, Data, Experiment, InputSource, Loss, Optimizer, Train};
use crate::origin::{Origin, OriginKind, nonfinite, origin_of_case};
use crate::run::{CaseOutcome, RunError};

mod data;
mod optimizer;
mod pass;
mod records;

use data::*;
pub use data::{Teacher, batch, teacher};
pub use optimizer::clip;
use optimizer::*;
pub use pass::manual_outcome;
use pass::*;
pub use records::train_report;
use records::*;

/// One batch: inputs `[batch, d_input]` and targets (`[batch]` labels as f32, or
/// `[batch, d_output]` values; empty for losses without targets).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The inputs.
    pub inputs: HostTensor,
    /// The targets.
    pub targets: HostTensor,
}

/// The tensors of one step, for `--dump`.
#[derive(Debug, Clone)]
pub struct StepTensors {
    /// The step.
    pub step: usize,
    /// The parameters before the step.
    pub weights: MlpWeights,
    /// The batch.
    pub batch: Batch,
    /// The pass: z, δ, gradients.
    pub pass: CaseOutcome,
    /// The optimiser's state before the step (named as [`TrainOutcome::optimizer`]).
    pub optimizer: Vec<NamedTensor>,
    /// The optimiser steps taken before it.
    pub optimizer_steps: usize,
}

/// A whole training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// One record per step run (the failing step is the last).
    pub steps: Vec<StepRecord>,
    /// Where the first non-finite value was born, if anywhere.
    pub origin: Option<Origin>,
    /// The parameters after the last step.
    pub weights: MlpWeights,
    /// The optimiser's state after the last step, named as in PyTorch's state dicts:
    /// `momentum_buffer.<param>` (SGD with momentum), `exp_avg.<param>` and `exp_avg_sq.<param>`
    /// (Adam), where `<param>` is `layers.{i}.weight` or `layers.{i}.bias`.
    pub optimizer: Vec<NamedTensor>,
    /// The optimiser steps taken (the failing step takes none, unless its update made the
    /// weights non-finite).
    pub optimizer_steps: usize,
    /// The last finite step and the failing one (with a failure).
    pub dumps: Vec<StepTensors>,
    /// How it was trained (the `[train]` table's optimiser, learning rate, clipping, batch and
    /// steps), for its report.
    pub setting: Setting,
}

/// A training run's setting, as its report states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// The optimiser.
    pub optimizer: crate::config::Optimizer,
    /// The learning rate.
    pub learning_rate: f64,
    /// The clipping.
    pub clip: Clip,
    /// Examples per step.
    pub batch: usize,
    /// Steps asked for.
    pub steps: usize,
}

/// The first parameter an update made non-finite.
fn update_origin(step: usize, after: &MlpWeights) -> Option<Origin> {
    crate::origin::nonfinite_weight(after).map(|(l, tensor, count)| Origin {
        kind: OriginKind::Update,
        step: Some(step as u64),
        case: "train".into(),
        layer: Some(l),
        tensor,
        count,
        rows: None,
    })
}

/// The weights and the optimiser's state after `steps` steps (`train.checkpoint_every`).
pub struct Checkpoint<'a> {
    /// Steps done.
    pub steps: usize,
    /// The weights after them.
    pub weights: &'a MlpWeights,
    /// The optimiser's state (named as [`TrainOutcome::optimizer`]).
    pub optimizer: Vec<NamedTensor>,
    /// The optimiser steps taken.
    pub optimizer_steps: usize,
}

/// Train `exp` on `backend`, calling `on_step` with each step's record as it finishes (to
/// append it to `steps.jsonl`). Stops at the first step with a non-finite value.
pub fn train(
    exp: &Experiment,
    backend: &Backend,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<TrainOutcome, RunError> {
    train_with(exp, backend, true, on_step)
}

/// [`train`], calling `on_checkpoint` every `train.checkpoint_every` steps with the weights
/// and the optimiser's state after them (a step that went non-finite makes none).
pub fn train_checkpointed(
    exp: &Experiment,
    backend: &Backend,
    on_step: &mut dyn FnMut(&StepRecord),
    on_checkpoint: &mut dyn FnMut(&Checkpoint<'_>),
) -> Result<TrainOutcome, RunError> {
    run_training(exp, backend, true, on_step, on_checkpoint)
}

/// [`train`], with the per-layer statistics of each step (`stats`) or without them (the
/// records then hold the step, loss and gradient norms only): the benchmark measures what
/// the statistics cost. The checks for non-finite values run either way.
pub fn train_with(
    exp: &Experiment,
    backend: &Backend,
    stats: bool,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<TrainOutcome, RunError> {
    run_training(exp, backend, stats, on_step, &mut |_| {})
}

fn run_training(
    exp: &Experiment,
    backend: &Backend,
    stats: bool,
    on_step: &mut dyn FnMut(&StepRecord),
    on_checkpoint: &mut dyn FnMut(&Checkpoint<'_>),
) -> Result<TrainOutcome, RunError> {
    let Some(train) = exp.task.train() else {
        return Err(RunError::NotTraining(exp.name.clone()));
    };
    let setting = Setting {
        optimizer: train.optimizer,
        learning_rate: train.learning_rate,
        clip: train.clip,
        batch: train.batch,
        steps: train.steps,
    };
    let mut weights = crate::run::weights_of(exp);
    let teacher = matches!(train.data, Data::Teacher { .. }).then(|| teacher(exp));
    let mut state = OptimizerState::start(train, &weights, exp.weights.as_ref());
    let mut steps = Vec::with_capacity(train.steps.min(1 << 20));
    // A dump needs the optimiser's state before its step; plain SGD keeps none to copy. The
    // state becomes named tensors only for the (at most two) steps a failure dumps.
    let keeps_state = !matches!(train.optimizer, Optimizer::Sgd { momentum: 0.0 });
    let mut last: Option<(StepTensors, Option<OptimizerState>)> = None;
    for step in 0..train.steps {
        let batch = batch(exp, train, teacher.as_ref(), step);
        let pass = pass(exp, backend, &weights, &batch)?;
        let before = weights.clone();
        let state_before = keeps_state.then(|| state.clone());
        let steps_before = state.steps as usize;
        let mut origin = pass_origin(exp, backend, &weights, &batch, &pass);
        // A pass with a non-finite value makes no update.
        let updated = origin.is_none();
        let norms = update(train, &mut state, &mut weights, &pass, updated);
        if updated {
            origin = update_origin(step, &weights);
        }
        let mut record = match stats {
            true => record(step, &pass, (&before, &weights), norms, updated),
            false => record_without_layers(step, &pass, norms),
        };
        if exp.loss.needs_labels() {
            record.accuracy = Some(accuracy(&pass.output, &batch.targets));
        }
        on_step(&record);
        steps.push(record);
        if let Some(n) = train.checkpoint_every
            && origin.is_none()
            && (step + 1) % n == 0
        {
            on_checkpoint(&Checkpoint {
                steps: step + 1,
                weights: &weights,
                optimizer: state.tensors(train, &weights),
                optimizer_steps: state.steps as usize,
            });
        }
        let tensors = StepTensors {
            step,
            optimizer: Vec::new(),
            optimizer_steps: steps_before,
            weights: before,
            batch,
            pass,
        };
        if let Some(mut o) = origin {
            o.step = Some(step as u64);
            let dumps = last
                .into_iter()
                .chain([(tensors, state_before)])
                .map(|(mut t, s)| {
                    if let Some(s) = s {
                        t.optimizer = s.tensors(train, &t.weights);
                    }
                    t
                })
                .collect();
            return Ok(TrainOutcome {
                steps,
                origin: Some(o),
                optimizer: state.tensors(train, &weights),
                optimizer_steps: state.steps as usize,
                weights,
                dumps,
                setting,
            });
        }
        last = Some((tensors, state_before));
    }
    Ok(TrainOutcome {
        steps,
        origin: None,
        optimizer: state.tensors(train, &weights),
        optimizer_steps: state.steps as usize,
        weights,
        dumps: Vec::new(),
        setting,
    })
}

/// The first non-finite value of a pass, in the order the computation runs: the batch
/// (inputs, then targets), the weights, z, the loss, δ and the gradients.
fn pass_origin(
    exp: &Experiment,
    backend: &Backend,
    weights: &MlpWeights,
    batch: &Batch,
    pass: &CaseOutcome,
) -> Option<Origin> {
    let targets_bad = nonfinite(&batch.targets.data);
    if targets_bad > 0 && nonfinite(&batch.inputs.data) == 0 {
        return Some(Origin {
            kind: OriginKind::Input,
            step: None,
            case: "train".into(),
            layer: None,
            tensor: "targets".into(),
            count: targets_bad,
            rows: Some(crate::origin::nonfinite_rows(&batch.targets)),
        });
    }
    origin_of_case(weights, pass, &|c| {
        crate::loss::per_row(exp.loss, &c.output, &batch.targets, &backend.plain)
    })
}
