//! Training runs (`[train]`): optimisation steps on fresh batches, every step measured and
//! checked, in the order the computation runs, for the first non-finite value.
//!
//! A step stays on the backend. The forward and backward passes are the engine's, with the
//! backward pass written out (δ_l, then each gradient; [`pass`]) rather than taken by Burn's
//! autodiff: that gives every δ_l directly and costs no autodiff graph. The clipping and the
//! optimiser's update are tensor operations in f32 ([`optimizer`]), in the order of PyTorch's
//! `torch.optim.SGD`, `torch.optim.Adam` and `clip_grad_norm_`; Burn's optimisers are not used
//! because its norm clipping is per tensor, not global, and because the `update` origin and the
//! update ratio need the step before it is applied. The parameters and the optimiser's state
//! stay on the device between steps; per step the host reads a few sums per layer ([`step`])
//! and, for a classification, the output (the accuracy's argmax), all in one read, and reads
//! the tensors only where those sums are not all finite, to check them value by value. Batches and targets are drawn on the host, so every
//! backend gets the same batches; the whole run is held against an f64 oracle on every
//! backend.

use burn::tensor::Tensor;
use gradscope_model::rng::{TEACHER_STREAM, batch_stream};
use gradscope_model::{HostRng, HostTensor, Initializer, MlpConfig, MlpWeights, NamedTensor};
pub use gradscope_report::{Growth, LayerEvent, LayerStep, LossScaling, StepRecord, TrainReport};

use crate::backend::Backend;
use crate::config::kinds::{CLIPS, LOSS_SCALES, OPTIMIZERS, describe_named};
use crate::config::{Clip, Data, Experiment, InputSource, Loss, Optimizer, Train};
use crate::origin::{Origin, OriginKind, nonfinite, origin_of_case};
use crate::run::{CaseOutcome, RunError};

mod data;
mod optimizer;
mod pass;
mod records;
pub mod scaler;
mod step;

use data::*;
pub use data::{Teacher, batch, teacher};
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
    /// The optimiser steps taken (the failing step takes none: an update that would make the
    /// weights non-finite is found before it replaces them).
    pub optimizer_steps: usize,
    /// The step before the failing one (the last finite one, or one a dynamic loss scale
    /// skipped) and the failing one (with a failure).
    pub dumps: Vec<StepTensors>,
    /// How it was trained (the `[train]` table's optimiser, learning rate, clipping, batch and
    /// steps), for its report.
    pub setting: Setting,
    /// With loss scaling: the scale after the last step, and where the first step it skipped
    /// went non-finite.
    pub scaling: Option<ScaleEnd>,
}

/// How a run's loss scale ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleEnd {
    /// The scale after the last step.
    pub last: f32,
    /// The first non-finite value of the first step skipped, if any was.
    pub first_skip: Option<Origin>,
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
    crate::origin::nonfinite_weight(after).map(|(l, tensor, count)| {
        let layer = &after.layers[l];
        let values = match &layer.bias {
            Some(b) if tensor.ends_with(".bias") => b,
            _ => &layer.weight,
        };
        Origin {
            kind: OriginKind::Update,
            step: Some(step as u64),
            case: "train".into(),
            layer: Some(l),
            tensor,
            count,
            rows: None,
            cause: Some(crate::origin::cause_of(values)),
        }
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
    let device = &backend.plain;
    let start = crate::run::weights_of(exp);
    let kernels = step::kernels_of(&start);
    // Loaded weights may hold non-finite values: the first step then goes to the host, whose
    // checks name them. Later weights are checked after each update.
    let mut weights_checked = crate::origin::nonfinite_weight(&start).is_none();
    // The parameters, on the device; `start` gives the architecture.
    let mut params = params_of(&start, device);
    let teacher = matches!(train.data, Data::Teacher { .. }).then(|| teacher(exp));
    let mut state = OptimizerState::start(train, &start, exp.weights.as_deref(), device);
    let mut steps = Vec::with_capacity(train.steps.min(1 << 20));
    let dtype = crate::backend::dtype(exp.precision);
    let mut scaler = scaler::Scaler::new(train.loss_scale);
    let mut first_skip: Option<Origin> = None;
    // The step before, on the device, for the dumps of a failure.
    let mut last: Option<DeviceStep> = None;
    let finish = |params: &optimizer::Params,
                  state: &OptimizerState,
                  steps: Vec<StepRecord>,
                  origin: Option<Origin>,
                  dumps: Vec<StepTensors>,
                  scaling: Option<ScaleEnd>| {
        let weights = host_weights(&start, params);
        TrainOutcome {
            steps,
            origin,
            optimizer: state.tensors(train, &weights),
            optimizer_steps: state.steps as usize,
            weights,
            dumps,
            setting,
            scaling,
        }
    };
    std::thread::scope(|scope| {
        let mut batches = Ahead::new(scope, exp, train, teacher.as_ref());
        for step in 0..train.steps {
            let batch = batches.next(step);
            let compute = Compute {
                dtype,
                scale: scaler.as_ref().map(|s| (s.scale(), s.inv_scale())),
            };
            let pass = DevicePass::run_in(exp, (&start, &params), device, &batch, compute);
            let grads = pass.grads();
            let labels = exp.loss.needs_labels();
            let mut sums = step::pass_sums(&pass, &params, &kernels, stats, labels);
            let this = DeviceStep {
                step,
                params: params.clone(),
                state: state.clone(),
                batch,
                pass,
            };
            let batch_finite =
                nonfinite(&this.batch.inputs.data) == 0 && nonfinite(&this.batch.targets.data) == 0;
            // The host's checks, value by value, where the sums do not prove the pass finite.
            let host = (!(sums.finite && batch_finite && weights_checked)).then(|| {
                let before = this.weights(&start);
                let pass = this.pass.to_host(&this.batch);
                let origin = pass_origin(exp, backend, &before, &this.batch, &pass);
                (before, pass, origin)
            });
            weights_checked = true;
            let norm = match &host {
                Some((_, pass, _)) => global_norm(pass.grads.iter().map(|g| &g.tensor)),
                None => sums.grad_sq.iter().sum::<f64>().sqrt(),
            };
            let clipped = match train.clip {
                Clip::None => None,
                c => Some(clip(&grads, c, norm)),
            };
            // A pass with a non-finite value makes no update. With a dynamic loss scale, a pass
            // whose gradients hold one is skipped (GradScaler's rule: the gradients decide) and the
            // run goes on; any other non-finite value ends the run.
            let failed = host.as_ref().is_some_and(|(_, _, origin)| origin.is_some());
            let skipped = scaler.as_ref().is_some_and(scaler::Scaler::skips)
                && host.as_ref().is_some_and(|(_, pass, origin)| {
                    let computed = origin.as_ref().is_some_and(|o| {
                        matches!(
                            o.kind,
                            OriginKind::Forward | OriginKind::Loss | OriginKind::Backward
                        )
                    });
                    computed && pass.grads.iter().any(|g| nonfinite(&g.tensor.data) > 0)
                });
            let after = (!failed).then(|| {
                let mut next = state.clone();
                let after = next.step(train, &params, clipped.as_deref().unwrap_or(&grads));
                (next, after)
            });
            let updated = after.as_ref().map(|(_, a)| a);
            let sums_after = step::update_sums(
                &params,
                updated.unwrap_or(&params),
                &kernels,
                clipped.as_deref(),
                stats && updated.is_some(),
            );
            let clipped_norm = sums_after.clipped_sq.map_or(norm, f64::sqrt);
            let mut origin = host.as_ref().and_then(|(_, _, o)| o.clone());
            let mut after_host = None;
            if let Some((_, new)) = &after
                && !sums_after.param_sq.iter().all(|v| v.is_finite())
            {
                // The new weights are checked before they replace the old.
                let w = host_weights(&start, new);
                origin = update_origin(step, &w);
                after_host = Some(w);
            }
            let mut record = match &host {
                Some((before, pass, _)) if stats => {
                    let after = match (&after_host, &after) {
                        (Some(w), _) => w.clone(),
                        (None, Some((_, new))) => host_weights(&start, new),
                        (None, None) => before.clone(),
                    };
                    let norms = (norm, clipped_norm_host(&clipped, norm));
                    record(step, pass, (before, &after), norms, !failed)
                }
                _ => step::record_from_sums(
                    step,
                    &sums,
                    &sums_after.change_sq,
                    (norm, clipped_norm),
                    stats,
                ),
            };
            if let Some(output) = sums.output.take() {
                record.accuracy = Some(accuracy(&output, &this.batch.targets));
            }
            if let Some(s) = scaler.as_mut() {
                record.loss_scale = Some(s.scale());
                if s.skips() {
                    record.skipped = Some(skipped);
                }
                if skipped {
                    if first_skip.is_none() {
                        first_skip = origin.take().map(|mut o| {
                            o.step = Some(step as u64);
                            o
                        });
                    }
                    origin = None;
                }
                if origin.is_none() {
                    s.update(skipped);
                }
                if s.collapsed() {
                    origin = Some(Origin {
                        kind: OriginKind::LossScale,
                        step: Some(step as u64),
                        case: "train".into(),
                        layer: None,
                        tensor: "loss_scale".into(),
                        count: s.skips_in_a_row(),
                        rows: None,
                        cause: None,
                    });
                }
            }
            on_step(&record);
            steps.push(record);
            if let Some(mut o) = origin {
                o.step = Some(step as u64);
                let dumps = last
                    .into_iter()
                    .chain([this])
                    .map(|s| s.into_host(train, &start))
                    .collect();
                let scaling = scale_end(&scaler, &first_skip);
                return Ok(finish(&params, &state, steps, Some(o), dumps, scaling));
            }
            if let Some((next, new)) = after {
                state = next;
                params = new;
            }
            if let Some(n) = train.checkpoint_every
                && (step + 1) % n == 0
            {
                let weights = host_weights(&start, &params);
                on_checkpoint(&Checkpoint {
                    steps: step + 1,
                    weights: &weights,
                    optimizer: state.tensors(train, &weights),
                    optimizer_steps: state.steps as usize,
                });
            }
            last = Some(this);
        }
        let scaling = scale_end(&scaler, &first_skip);
        Ok(finish(&params, &state, steps, None, Vec::new(), scaling))
    })
}

/// How the loss scale ended (none without scaling).
fn scale_end(scaler: &Option<scaler::Scaler>, first_skip: &Option<Origin>) -> Option<ScaleEnd> {
    scaler.as_ref().map(|s| ScaleEnd {
        last: s.scale(),
        first_skip: first_skip.clone(),
    })
}

/// The clipped gradients' global norm on the host path, read back value by value (the
/// unclipped `norm` without clipping).
fn clipped_norm_host(clipped: &Option<Vec<Tensor<3>>>, norm: f64) -> f64 {
    match clipped {
        None => norm,
        Some(c) => {
            let host: Vec<HostTensor> = c
                .iter()
                .map(|g| HostTensor::from_tensor(g.clone()))
                .collect();
            global_norm(host.iter())
        }
    }
}

/// The global L2 norm of `grads`, in f64: each tensor's Σg² as the step's sums take it
/// ([`gradscope_model::sums::squares`]), added in parameter order, so that on a CPU backend it
/// is the norm a step read from the device bit for bit.
fn global_norm<'a>(grads: impl Iterator<Item = &'a HostTensor>) -> f64 {
    grads
        .map(|g| gradscope_model::sums::squares(&g.data))
        .sum::<f64>()
        .sqrt()
}

/// One step as it ran on the device, kept for the dumps of a failure at the next.
struct DeviceStep {
    step: usize,
    /// The parameters before the step.
    params: optimizer::Params,
    /// The optimiser's state before the step.
    state: OptimizerState,
    batch: Batch,
    pass: DevicePass,
}

impl DeviceStep {
    /// The parameters before the step, on the host (`arch` gives the architecture).
    fn weights(&self, arch: &MlpWeights) -> MlpWeights {
        host_weights(arch, &self.params)
    }

    /// The step's tensors for `--dump`.
    fn into_host(self, train: &Train, arch: &MlpWeights) -> StepTensors {
        let weights = self.weights(arch);
        StepTensors {
            step: self.step,
            optimizer: self.state.tensors(train, &weights),
            optimizer_steps: self.state.steps as usize,
            pass: self.pass.to_host(&self.batch),
            weights,
            batch: self.batch,
        }
    }
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
            cause: None,
        });
    }
    origin_of_case(
        weights,
        pass,
        (exp.loss, &|c| {
            crate::loss::per_row(
                exp.loss,
                &c.output,
                &batch.targets,
                &backend.plain,
                burn::tensor::FloatDType::F32,
            )
        }),
        exp.precision,
    )
}
