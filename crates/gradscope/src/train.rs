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
use burn::tensor::activation::{log_softmax, softmax};
use gradscope_model::rng::{TEACHER_STREAM, batch_stream};
use gradscope_model::{HostRng, HostTensor, Initializer, MlpConfig, MlpWeights, NamedTensor};
pub use gradscope_report::{Growth, LayerEvent, LayerStep, StepRecord, TrainReport};

use crate::backend::Backend;
use crate::config::kinds::{CLIPS, OPTIMIZERS, describe_named};
use crate::config::{Clip, Data, Distribution, Experiment, InputSource, Loss, Optimizer, Train};
use crate::origin::{Origin, OriginKind, nonfinite, origin_of_case};
use crate::run::{CaseOutcome, RunError, loss_of};

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
}

/// The teacher network: the model's architecture with Glorot-uniform kernels and zero biases,
/// drawn from the seed's teacher stream. Its forward pass runs on the host in f32, in one fixed
/// order of operations (no backend, no fused multiply-add), so its labels are the same on every
/// machine and backend.
pub struct Teacher {
    /// Per layer: kernel `[d_in, d_out]` row-major, bias, d_out.
    layers: Vec<(Vec<f32>, Vec<f32>, usize)>,
    activations: Vec<gradscope_model::Activation>,
}

/// The teacher of `exp`.
pub fn teacher(exp: &Experiment) -> Teacher {
    let config = MlpConfig {
        kernel_init: Initializer::GlorotUniform,
        bias_init: Initializer::Zeros,
        gain: 1.0,
        bias: true,
        ..exp.model.clone()
    };
    let w = config.draw_weights_on(TEACHER_STREAM);
    Teacher {
        layers: w
            .layers
            .into_iter()
            .map(|l| {
                let d_out = l.weight.shape[1];
                let bias = l.bias.map_or(vec![0.0; d_out], |b| b.data);
                (l.weight.data, bias, d_out)
            })
            .collect(),
        activations: w.activations,
    }
}

impl Teacher {
    /// The forward pass of `x` `[batch, d_input]`: the output `[batch, d_output]`, row-major.
    /// Each z_l is accumulated input by input; every kernel row is read once per batch.
    fn forward(&self, x: &HostTensor) -> Vec<f32> {
        let (rows, mut d) = (x.shape[0], x.shape[1]);
        let mut a: Vec<f32> = x.data.clone();
        let mut z: Vec<f32> = Vec::new();
        let last = self.layers.len() - 1;
        for (l, (kernel, bias, d_out)) in self.layers.iter().enumerate() {
            z.clear();
            for _ in 0..rows {
                z.extend_from_slice(bias);
            }
            for (i, w_row) in kernel.chunks_exact(*d_out).enumerate() {
                for (z_r, a_r) in z.chunks_exact_mut(*d_out).zip(a.chunks_exact(d)) {
                    let ai = a_r[i];
                    if ai == 0.0 {
                        // A dead ReLU unit adds exactly 0: z starts from the bias.
                        continue;
                    }
                    for (zj, wij) in z_r.iter_mut().zip(w_row) {
                        *zj += ai * wij;
                    }
                }
            }
            if l < last {
                let act = self.activations[l];
                z.iter_mut()
                    .for_each(|v| *v = act.apply_f64(f64::from(*v)) as f32);
            }
            std::mem::swap(&mut a, &mut z);
            d = *d_out;
        }
        a
    }
}

/// The batch of `step`, drawn from the seed's batch stream.
pub fn batch(exp: &Experiment, train: &Train, teacher: Option<&Teacher>, step: usize) -> Batch {
    let b = train.batch;
    match &train.data {
        Data::Files {
            inputs, targets, ..
        } => {
            // In file order, wrapping around: step s takes rows s·b, s·b + 1, ... (mod N). A
            // dump's batch, given as both files with `batch` = its rows, is replayed exactly.
            let n = inputs.shape[0];
            let rows: Vec<usize> = (0..b).map(|i| (step * b + i) % n).collect();
            let pick = |t: &HostTensor| {
                let w = t.shape.get(1).copied().unwrap_or(1);
                let data = rows
                    .iter()
                    .flat_map(|&r| t.data[r * w..(r + 1) * w].iter().copied())
                    .collect();
                let mut shape = t.shape.clone();
                shape[0] = b;
                HostTensor::new(shape, data)
            };
            Batch {
                inputs: pick(inputs),
                targets: pick(targets),
            }
        }
        Data::Teacher { classes } => {
            let inputs = teacher_inputs(exp, b, step);
            let k = exp.model.d_output;
            let targets = match (teacher, exp.loss) {
                (Some(t), _) if classes.is_some() => {
                    let out = t.forward(&inputs);
                    let labels = out.chunks_exact(k).map(|row| argmax(row) as f32).collect();
                    HostTensor::new(vec![b], labels)
                }
                (Some(t), Loss::Mse { .. }) => HostTensor::new(vec![b, k], t.forward(&inputs)),
                _ => HostTensor::new(vec![0], Vec::new()),
            };
            Batch { inputs, targets }
        }
    }
}

/// Teacher data's inputs at `step`: `rows` × `model.input` values of the first input case's
/// distribution (N(0, 1) without `[[inputs]]`), from the seed's batch stream for that step.
fn teacher_inputs(exp: &Experiment, rows: usize, step: usize) -> HostTensor {
    let mut rng = HostRng::new(exp.seed, batch_stream(step));
    let d = exp.model.d_input;
    let dist = match exp.inputs.first().map(|c| &c.source) {
        Some(InputSource::Distribution(d)) => *d,
        _ => crate::config::TEACHER_INPUTS,
    };
    let data = match dist {
        Distribution::Normal { mean, std } => rng.normals_f32(rows * d, mean, std),
        Distribution::Uniform { low, high } => (0..rows * d)
            .map(|_| rng.uniform(low, high) as f32)
            .collect(),
        Distribution::Constant { value } => vec![value as f32; rows * d],
    };
    HostTensor::new(vec![rows, d], data)
}

/// The index of the largest value (the first of equals; NaN never wins).
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// The labels `targets` `[batch]` as one-hot rows `[batch, k]` on `device`.
fn onehot(targets: &HostTensor, k: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let b = targets.data.len();
    let mut data = vec![0.0f32; b * k];
    for (r, &label) in targets.data.iter().enumerate() {
        data[r * k + label as usize] = 1.0;
    }
    HostTensor::new(vec![b, k], data).to_device::<2>(device)
}

/// The training loss of `output` `[batch, k]` against the batch's targets.
pub fn train_loss(loss: Loss, output: Tensor<2>, targets: &HostTensor) -> Tensor<1> {
    let device = output.device();
    let [b, k] = output.dims();
    let onehot = || onehot(targets, k, &device);
    match loss {
        Loss::CrossEntropy => (log_softmax(output, 1) * onehot())
            .sum()
            .neg()
            .div_scalar(b as f64),
        Loss::CrossEntropyNaive => (softmax(output, 1).log() * onehot())
            .sum()
            .neg()
            .div_scalar(b as f64),
        Loss::Mse { .. } if targets.shape == [b, k] => {
            let diff = output - targets.to_device::<2>(&device);
            (diff.clone() * diff).mean()
        }
        other => loss_of(other, output),
    }
}

/// Optimiser state: one buffer (SGD momentum) or two (Adam) per parameter tensor.
#[derive(Clone)]
struct OptimizerState {
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
    steps: i32,
}

/// Parameters in collection order (`layers.0.weight`, `layers.0.bias`, ...), mutable.
fn params_mut(w: &mut MlpWeights) -> Vec<&mut HostTensor> {
    w.layers
        .iter_mut()
        .flat_map(|l| std::iter::once(&mut l.weight).chain(l.bias.as_mut()))
        .collect()
}

/// The global L2 norm of `grads`.
fn global_norm(grads: &[NamedTensor]) -> f64 {
    grads
        .iter()
        .flat_map(|g| &g.tensor.data)
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// Clip `grads` in place; returns the global norm after clipping.
pub fn clip(grads: &mut [NamedTensor], clip: Clip) -> f64 {
    match clip {
        Clip::None => {}
        Clip::Norm { max } => {
            let norm = global_norm(grads);
            // PyTorch's clip_grad_norm_: coefficient max / (norm + 1e-6), clamped to 1.
            let coef = (max / (norm + 1e-6)).min(1.0);
            if coef < 1.0 {
                for v in grads.iter_mut().flat_map(|g| g.tensor.data.iter_mut()) {
                    *v = (f64::from(*v) * coef) as f32;
                }
            }
        }
        Clip::Value { max } => {
            let m = max as f32;
            for v in grads.iter_mut().flat_map(|g| g.tensor.data.iter_mut()) {
                *v = v.clamp(-m, m);
            }
        }
    }
    global_norm(grads)
}

impl OptimizerState {
    /// The state as named tensors shaped as the parameters `w` (see [`TrainOutcome::optimizer`]);
    /// none for plain SGD, which keeps none.
    fn tensors(&self, train: &Train, w: &MlpWeights) -> Vec<NamedTensor> {
        let buffers: Vec<(&str, &Vec<Vec<f32>>)> = match train.optimizer {
            Optimizer::Sgd { momentum: 0.0 } => Vec::new(),
            Optimizer::Sgd { .. } => vec![("momentum_buffer", &self.first)],
            Optimizer::Adam { .. } => vec![("exp_avg", &self.first), ("exp_avg_sq", &self.second)],
        };
        let params: Vec<(String, &HostTensor)> = w
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let bias = l.bias.as_ref().map(|b| (format!("layers.{i}.bias"), b));
                std::iter::once((format!("layers.{i}.weight"), &l.weight)).chain(bias)
            })
            .collect();
        buffers
            .iter()
            .flat_map(|(prefix, values)| {
                params
                    .iter()
                    .zip(values.iter())
                    .map(move |((name, p), v)| NamedTensor {
                        name: format!("{prefix}.{name}"),
                        tensor: HostTensor::new(p.shape.clone(), v.clone()),
                    })
            })
            .collect()
    }

    /// The state a run starts from: the one saved beside `loaded` weights where the file
    /// holds one (a record's `weights.safetensors`, a dump: the run then continues or replays
    /// exactly), else zero buffers and no steps taken.
    fn start(train: &Train, w: &MlpWeights, loaded: Option<&crate::config::LoadedWeights>) -> Self {
        let mut state = Self::new(w);
        let Some(loaded) = loaded.filter(|l| !l.optimizer.is_empty()) else {
            return state;
        };
        let names: Vec<String> = w
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let bias = l.bias.as_ref().map(|_| format!("layers.{i}.bias"));
                std::iter::once(format!("layers.{i}.weight")).chain(bias)
            })
            .collect();
        let buffers: Vec<(&str, &mut Vec<Vec<f32>>)> = match train.optimizer {
            Optimizer::Sgd { momentum: 0.0 } => Vec::new(),
            Optimizer::Sgd { .. } => vec![("momentum_buffer", &mut state.first)],
            Optimizer::Adam { .. } => vec![
                ("exp_avg", &mut state.first),
                ("exp_avg_sq", &mut state.second),
            ],
        };
        let mut loaded_any = false;
        for (prefix, values) in buffers {
            for (name, v) in names.iter().zip(values.iter_mut()) {
                let full = format!("{prefix}.{name}");
                if let Some(t) = loaded.optimizer.iter().find(|t| t.name == full) {
                    v.clone_from(&t.tensor.data);
                    loaded_any = true;
                }
            }
        }
        if loaded_any {
            state.steps = i32::try_from(loaded.optimizer_steps).unwrap_or(i32::MAX);
        }
        state
    }

    fn new(w: &MlpWeights) -> Self {
        let zeros: Vec<Vec<f32>> = w
            .layers
            .iter()
            .flat_map(|l| std::iter::once(&l.weight).chain(l.bias.as_ref()))
            .map(|t| vec![0.0; t.data.len()])
            .collect();
        Self {
            first: zeros.clone(),
            second: zeros,
            steps: 0,
        }
    }

    /// One step of `train`'s optimiser on `w` with `grads` (in parameter order).
    fn step(&mut self, train: &Train, w: &mut MlpWeights, grads: &[NamedTensor]) {
        self.steps += 1;
        let lr = train.learning_rate;
        let t = self.steps;
        for (i, p) in params_mut(w).into_iter().enumerate() {
            let g = &grads[i].tensor.data;
            let (m, v) = (&mut self.first[i], &mut self.second[i]);
            for j in 0..p.data.len() {
                let gj = f64::from(g[j]);
                let wj = f64::from(p.data[j]);
                p.data[j] = match train.optimizer {
                    Optimizer::Sgd { momentum } => {
                        // PyTorch: the buffer starts as the first gradient.
                        let b = if t == 1 {
                            gj
                        } else {
                            momentum * f64::from(m[j]) + gj
                        };
                        m[j] = b as f32;
                        wj - lr * b
                    }
                    Optimizer::Adam {
                        beta1,
                        beta2,
                        epsilon,
                    } => {
                        let mj = beta1 * f64::from(m[j]) + (1.0 - beta1) * gj;
                        let vj = beta2 * f64::from(v[j]) + (1.0 - beta2) * gj * gj;
                        m[j] = mj as f32;
                        v[j] = vj as f32;
                        let c1 = 1.0 - beta1.powi(t);
                        let c2 = 1.0 - beta2.powi(t);
                        let denom = f64::from(v[j]).sqrt() / c2.sqrt() + epsilon;
                        wj - (lr / c1) * f64::from(m[j]) / denom
                    }
                } as f32;
            }
        }
    }
}

/// ‖values‖₂, max |values| (NaN when a value is NaN, else inf when a value is ±inf) and the
/// count of non-finite values, in one pass.
fn scan(values: &[f32]) -> (f64, f64, usize) {
    let (mut sum, mut max, mut bad) = (0.0f64, 0.0f32, 0usize);
    for &v in values {
        sum += f64::from(v) * f64::from(v);
        let a = v.abs();
        max = if a > max { a } else { max };
        bad += usize::from(!v.is_finite());
    }
    // Squares are ≥ 0: the sum is NaN exactly when a value is.
    let max = if sum.is_nan() {
        f64::NAN
    } else {
        f64::from(max)
    };
    (sum.sqrt(), max, bad)
}

/// ‖before‖₂ and ‖after − before‖₂ in one pass.
fn norm_and_change(before: &[f32], after: &[f32]) -> (f64, f64) {
    let (mut norm, mut change) = (0.0f64, 0.0f64);
    for (&b, &a) in before.iter().zip(after) {
        let (b, a) = (f64::from(b), f64::from(a));
        norm += b * b;
        change += (a - b) * (a - b);
    }
    (norm.sqrt(), change.sqrt())
}

/// One forward + backward pass of `w` on `batch`, on the backend without autodiff: the
/// backward pass is written out (δ_L = ∂loss/∂output, δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}),
/// ∂loss/∂W_l = a_{l−1}ᵀ·δ_l, ∂loss/∂b_l = Σ_batch δ_l), which gives δ_l without probes and
/// costs no autodiff graph. The f64 oracle checks it on every backend.
fn pass(
    exp: &Experiment,
    backend: &Backend,
    w: &MlpWeights,
    batch: &Batch,
) -> Result<CaseOutcome, RunError> {
    let device = &backend.plain;
    let kernels: Vec<Tensor<2>> = w
        .layers
        .iter()
        .map(|l| l.weight.to_device(device))
        .collect();
    let (inputs, zs) = forward(w, &kernels, batch.inputs.to_device(device));
    let output = zs[zs.len() - 1].clone();
    let loss = train_loss(exp.loss, output.clone(), &batch.targets);
    let delta = loss_gradient(exp.loss, output.clone(), &batch.targets);
    let (deltas, grads) = backward(w, &kernels, &inputs, &zs, delta);
    let output = HostTensor::from_tensor(output);
    let mut layer_outputs: Vec<HostTensor> = inputs
        .into_iter()
        .skip(1)
        .map(HostTensor::from_tensor)
        .collect();
    layer_outputs.push(output.clone());
    Ok(CaseOutcome {
        name: "train".into(),
        input: batch.inputs.clone(),
        output,
        loss: HostTensor::from_tensor(loss).data[0],
        grads,
        deltas,
        layer_outputs,
        pre_activations: zs.into_iter().map(HostTensor::from_tensor).collect(),
    })
}

/// The forward pass: each layer's input (x, then a_l = φ(z_l) of the hidden layers) and z_l.
fn forward(
    w: &MlpWeights,
    kernels: &[Tensor<2>],
    x: Tensor<2>,
) -> (Vec<Tensor<2>>, Vec<Tensor<2>>) {
    let n = w.layers.len();
    let device = x.device();
    let mut inputs = vec![x];
    let mut zs: Vec<Tensor<2>> = Vec::with_capacity(n);
    for (l, layer) in w.layers.iter().enumerate() {
        let mut z = inputs[l].clone().matmul(kernels[l].clone());
        if let Some(b) = &layer.bias {
            z = z + b.to_device::<1>(&device).unsqueeze::<2>();
        }
        if l + 1 < n {
            inputs.push(w.activations[l].forward(z.clone()));
        }
        zs.push(z);
    }
    (inputs, zs)
}

/// The backward pass from δ of the output layer: every δ_l and every parameter's gradient (in
/// parameter order), read back to the host.
fn backward(
    w: &MlpWeights,
    kernels: &[Tensor<2>],
    inputs: &[Tensor<2>],
    zs: &[Tensor<2>],
    mut delta: Tensor<2>,
) -> (Vec<HostTensor>, Vec<NamedTensor>) {
    let n = w.layers.len();
    let mut deltas: Vec<Option<HostTensor>> = vec![None; n];
    let mut grads: Vec<Vec<NamedTensor>> = vec![Vec::new(); n];
    for l in (0..n).rev() {
        let grad_w = inputs[l].clone().transpose().matmul(delta.clone());
        grads[l].push(NamedTensor {
            name: format!("layers.{l}.weight"),
            tensor: HostTensor::from_tensor(grad_w),
        });
        if w.layers[l].bias.is_some() {
            let grad_b: Tensor<1> = delta.clone().sum_dim(0).squeeze_dim(0);
            grads[l].push(NamedTensor {
                name: format!("layers.{l}.bias"),
                tensor: HostTensor::from_tensor(grad_b),
            });
        }
        deltas[l] = Some(HostTensor::from_tensor(delta.clone()));
        if l > 0 {
            let back = delta.matmul(kernels[l].clone().transpose());
            delta = back * w.activations[l - 1].derivative(zs[l - 1].clone());
        }
    }
    (
        deltas.into_iter().flatten().collect(),
        grads.into_iter().flatten().collect(),
    )
}

/// ∂loss/∂output for `output` `[batch, k]`, written out per loss as the autodiff of
/// [`train_loss`] computes it: for the naive cross-entropy through log and softmax, so that a
/// probability of 0 gives what autodiff gives (0/0 = NaN where the one-hot is 0; −inf at the
/// label).
fn loss_gradient(loss: Loss, output: Tensor<2>, targets: &HostTensor) -> Tensor<2> {
    let device = output.device();
    let [b, k] = output.dims();
    let (bf, n) = (b as f64, (b * k) as f64);
    let onehot = || onehot(targets, k, &device);
    match loss {
        Loss::CrossEntropy => (softmax(output, 1) - onehot()).div_scalar(bf),
        Loss::CrossEntropyNaive => {
            // loss = −Σ onehot·log p / B: ∂/∂p = −onehot / (B·p); softmax's backward is
            // p ⊙ (g − Σ_k g_k p_k).
            let p = softmax(output, 1);
            let g = onehot().neg().div_scalar(bf) / p.clone();
            let dot = (g.clone() * p.clone()).sum_dim(1);
            p * (g - dot)
        }
        Loss::Mse { .. } if targets.shape == [b, k] => {
            (output - targets.to_device::<2>(&device)).mul_scalar(2.0 / n)
        }
        Loss::Mse { target } => output.sub_scalar(target).mul_scalar(2.0 / n),
        Loss::SumSquares => output.mul_scalar(2.0),
        Loss::MeanSquares => output.mul_scalar(2.0 / n),
        Loss::Sum => output.ones_like(),
        Loss::Mean => output.ones_like().div_scalar(n),
    }
}

/// The step's record from its pass, the weights before and after it, the norms, and whether
/// the step made an update (no update ratio is computed where it made none).
fn record(
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
    }
}

/// The fraction of units (columns of `a`, `[batch, width]`) that are 0 for every example.
fn dead_fraction(a: &HostTensor) -> f64 {
    let width = a.shape[1];
    let mut alive = vec![false; width];
    for row in a.data.chunks(width) {
        for (alive, v) in alive.iter_mut().zip(row) {
            *alive |= *v != 0.0;
        }
    }
    alive.iter().filter(|a| !**a).count() as f64 / width.max(1) as f64
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
    let Some(train) = &exp.train else {
        unreachable!("train() is called for experiments with [train]")
    };
    let mut weights = match &exp.weights {
        Some(loaded) => loaded.weights.clone(),
        None => exp.model.draw_weights(),
    };
    let teacher = matches!(train.data, Data::Teacher { .. }).then(|| teacher(exp));
    let mut state = OptimizerState::start(train, &weights, exp.weights.as_ref());
    let mut steps = Vec::with_capacity(train.steps.min(1 << 20));
    let mut last: Option<StepTensors> = None;
    for step in 0..train.steps {
        let batch = batch(exp, train, teacher.as_ref(), step);
        let pass = pass(exp, backend, &weights, &batch)?;
        let before = weights.clone();
        let state_before = state.clone();
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
            optimizer: state_before.tensors(train, &before),
            optimizer_steps: state_before.steps as usize,
            weights: before,
            batch,
            pass,
        };
        if let Some(mut o) = origin {
            o.step = Some(step as u64);
            let dumps = last.into_iter().chain([tensors]).collect();
            return Ok(TrainOutcome {
                steps,
                origin: Some(o),
                optimizer: state.tensors(train, &weights),
                optimizer_steps: state.steps as usize,
                weights,
                dumps,
            });
        }
        last = Some(tensors);
    }
    Ok(TrainOutcome {
        steps,
        origin: None,
        optimizer: state.tensors(train, &weights),
        optimizer_steps: state.steps as usize,
        weights,
        dumps: Vec::new(),
    })
}

/// A step's record without the per-layer statistics.
fn record_without_layers(step: usize, pass: &CaseOutcome, norms: (f64, f64)) -> StepRecord {
    StepRecord {
        step,
        loss: pass.loss,
        grad_norm: norms.0,
        grad_norm_clipped: norms.1,
        layers: Vec::new(),
        accuracy: None,
    }
}

/// The fraction of rows of `output` `[batch, k]` whose largest value (the first of equal
/// ones) is at their label in `targets` `[batch]`; a row holding NaN counts as wrong.
fn accuracy(output: &HostTensor, targets: &HostTensor) -> f32 {
    let k = output.shape[1].max(1);
    let rows = output.data.chunks_exact(k);
    let n = rows.len();
    let right = rows
        .zip(&targets.data)
        .filter(|(row, label)| !row.iter().any(|v| v.is_nan()) && argmax(row) as f32 == **label)
        .count();
    right as f32 / n.max(1) as f32
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
        row_losses(exp.loss, &c.output, &batch.targets, &backend.plain)
    })
}

/// The training loss of each row of `output` against its own target, on its own (which
/// examples a non-finite loss comes from): [`train_loss`] over one row at a time.
fn row_losses(
    loss: Loss,
    output: &HostTensor,
    targets: &HostTensor,
    device: &burn::tensor::Device,
) -> Vec<f32> {
    let (b, k) = (output.shape[0], output.shape[1]);
    let t = targets.data.len() / b.max(1);
    (0..b)
        .map(|r| {
            let row = HostTensor::new(vec![1, k], output.data[r * k..(r + 1) * k].to_vec());
            let target_shape = if targets.shape.len() == 1 {
                vec![1]
            } else {
                vec![1, t]
            };
            let target = HostTensor::new(target_shape, targets.data[r * t..(r + 1) * t].to_vec());
            let l = train_loss(loss, row.to_device::<2>(device), &target);
            HostTensor::from_tensor(l).data[0]
        })
        .collect()
}

/// Clip the pass's gradients and, with `apply`, take the optimiser's step; returns the global
/// gradient norm before and after clipping.
fn update(
    train: &Train,
    state: &mut OptimizerState,
    weights: &mut MlpWeights,
    pass: &CaseOutcome,
    apply: bool,
) -> (f64, f64) {
    let norm = global_norm(&pass.grads);
    // Clipping works on a copy; without it the pass's gradients are used as they are.
    let mut clipped_grads = None;
    let clipped = match train.clip {
        Clip::None => norm,
        c => clip(clipped_grads.insert(pass.grads.clone()), c),
    };
    if apply {
        state.step(
            train,
            weights,
            clipped_grads.as_deref().unwrap_or(&pass.grads),
        );
    }
    (norm, clipped)
}

/// Summarise `outcome` of `exp` on `backend`.
pub fn train_report(exp: &Experiment, backend: &Backend, outcome: &TrainOutcome) -> TrainReport {
    let Some(t) = &exp.train else {
        unreachable!("a training report is of an experiment with [train]")
    };
    let growth = outcome
        .origin
        .as_ref()
        // The origin's layer; the output layer for the loss (and the inputs).
        .map(|o| o.layer.unwrap_or(outcome.weights.layers.len() - 1))
        .map(|layer| growth(&outcome.steps, layer));
    TrainReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: exp.name.clone(),
        description: exp.description.clone(),
        backend: backend.kind.name().to_string(),
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
        finite: outcome.origin.is_none(),
        origin: outcome.origin.clone(),
        growth,
        accuracy: match (outcome.steps.first(), outcome.steps.last()) {
            (Some(a), Some(b)) => a.accuracy.zip(b.accuracy).map(|(a, b)| [a, b]),
            _ => None,
        },
        dead_layers: layer_events(&outcome.steps, |s| s.dead_fraction == 1.0),
        zero_gradients: layer_events(&outcome.steps, |s| s.grad_l2 == 0.0),
    }
}

/// The layers for which `is` held at some step, each with the first such step and whether
/// it held at the last step run (steps without per-layer statistics are skipped).
fn layer_events(steps: &[StepRecord], is: impl Fn(&LayerStep) -> bool) -> Vec<LayerEvent> {
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

fn growth(steps: &[StepRecord], layer: usize) -> Growth {
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
