//! What the host reads of a step that stays on the device: a few sums per layer, not the
//! tensors.
//!
//! A step reads twice: after the pass (the loss; per layer Σz², max|z|, Σδ², Σ(∂L/∂W)²,
//! Σ(∂L/∂b)², ‖W‖² and the count of dead units), and after the update (per parameter Σp² of
//! the new values, per layer Σ(ΔW)², and the clipped gradients' Σg²). A sum of squares is
//! finite exactly when every value is finite and the sum does not overflow f32, so an all-finite
//! read proves the step holds no inf or NaN (every non-finite count is 0). Any other read sends
//! the step to the host: its tensors are read back and checked value by value, in the order
//! the computation ran, as before (the exact counts, the origin, the exact f64 norms).

use burn::tensor::Tensor;

use super::optimizer::Params;
use super::pass::DevicePass;
use super::*;

/// Σx² of `t`, `[1]`, in the tensor's type.
fn sum_sq(t: &Tensor<3>) -> Tensor<1> {
    t.clone().square().sum()
}

/// Per-layer sums read after a pass.
pub(super) struct LayerSums {
    pub(super) z_sq: f64,
    pub(super) z_max: f64,
    pub(super) delta_sq: f64,
    pub(super) grad_w_sq: f64,
    pub(super) weight_sq: f64,
    /// Units 0 for every example (hidden layers; 0 for the output layer).
    pub(super) dead: f64,
    pub(super) width: usize,
}

/// What the host reads of a pass: the loss, per parameter Σg², and (with statistics) the
/// per-layer sums.
pub(super) struct PassSums {
    pub(super) loss: f32,
    pub(super) grad_sq: Vec<f64>,
    pub(super) layers: Vec<LayerSums>,
    /// Whether every value read is finite: the pass then holds no inf or NaN.
    pub(super) finite: bool,
    /// The output `[batch, k]`, where it was asked for (the accuracy's argmax): read in the
    /// same read as the sums, so that a step syncs with the device once.
    pub(super) output: Option<HostTensor>,
}

/// One read of `parts` (each `[1]`) back to the host, as f64.
fn read(parts: Vec<Tensor<1>>) -> Vec<f64> {
    if parts.is_empty() {
        return Vec::new();
    }
    HostTensor::from_tensor(Tensor::cat(parts, 0))
        .data
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The sums of `pass` over the parameters `params` it ran with (one read); `kernels` are the
/// indices of each layer's kernel among them ([`kernels_of`]). Without `stats` only the loss
/// and the sums that check every tensor for non-finite values (z, δ, the gradients). With
/// `output`, the pass's output too, in the same read.
pub(super) fn pass_sums(
    pass: &DevicePass,
    params: &Params,
    kernels: &[usize],
    stats: bool,
    output: bool,
) -> PassSums {
    let b = &pass.backward;
    let n = b.deltas.len();
    let grads = pass.grads();
    let mut parts = vec![pass.loss.clone()];
    parts.extend(grads.iter().map(sum_sq));
    for l in 0..n {
        parts.push(sum_sq(&pass.trace.pre_activations[l]));
        parts.push(sum_sq(&b.deltas[l]));
        if stats {
            parts.push(pass.trace.pre_activations[l].clone().abs().max());
            parts.push(sum_sq(&params[kernels[l]]));
            if l + 1 < n {
                let a = pass.trace.activations[l].clone();
                parts.push(a.abs().max_dim(1).equal_elem(0.0).float().sum());
            }
        }
    }
    let sums = parts.len();
    let [_, rows, k] = pass.trace.output.dims();
    if output {
        parts.push(pass.trace.output.clone().reshape([rows * k]));
    }
    let mut values = read(parts);
    let output = output.then(|| {
        let out = values.split_off(sums.min(values.len()));
        HostTensor::new(vec![rows, k], out.into_iter().map(|v| v as f32).collect())
    });
    // The output is z_L, whose sum is among the sums: they alone say whether the pass is finite.
    let finite = values.iter().all(|v| v.is_finite());
    let mut v = values.into_iter();
    let mut next = || v.next().unwrap_or(f64::NAN);
    let loss = next() as f32;
    let grad_sq: Vec<f64> = grads.iter().map(|_| next()).collect();
    let layers = (0..n)
        .map(|l| {
            let (z_sq, delta_sq) = (next(), next());
            let width = b.deltas[l].dims()[2];
            let (z_max, weight_sq, dead) = match stats {
                true => (next(), next(), if l + 1 < n { next() } else { 0.0 }),
                false => (f64::NAN, f64::NAN, 0.0),
            };
            LayerSums {
                z_sq,
                z_max,
                delta_sq,
                grad_w_sq: grad_sq[kernels[l]],
                weight_sq,
                dead,
                width,
            }
        })
        .collect();
    PassSums {
        loss,
        grad_sq,
        layers,
        finite,
        output,
    }
}

/// What the host reads after an update.
pub(super) struct UpdateSums {
    /// Per parameter Σp² of the new values: all finite exactly when the new parameters are
    /// (unless a sum overflowed, which the host then checks value by value).
    pub(super) param_sq: Vec<f64>,
    /// Per layer ‖ΔW_l‖² of the kernel (with statistics).
    pub(super) change_sq: Vec<f64>,
    /// Σg² of the clipped gradients (with clipping).
    pub(super) clipped_sq: Option<f64>,
}

/// The sums after an update from `before` to `after` with gradients `clipped` (one read).
pub(super) fn update_sums(
    before: &Params,
    after: &Params,
    kernels: &[usize],
    clipped: Option<&[Tensor<3>]>,
    stats: bool,
) -> UpdateSums {
    let mut parts: Vec<Tensor<1>> = after.iter().map(sum_sq).collect();
    if stats {
        parts.extend(
            kernels
                .iter()
                .map(|&k| after[k].clone().sub(before[k].clone()).square().sum()),
        );
    }
    if let Some(c) = clipped {
        parts.extend(c.iter().map(sum_sq));
    }
    let values = read(parts);
    let (param_sq, rest) = values.split_at(after.len());
    let (change_sq, rest) = rest.split_at(if stats { kernels.len() } else { 0 });
    UpdateSums {
        param_sq: param_sq.to_vec(),
        change_sq: change_sq.to_vec(),
        clipped_sq: clipped.map(|_| rest.iter().sum()),
    }
}

/// The indices of each layer's kernel among `w`'s parameters.
pub(super) fn kernels_of(w: &MlpWeights) -> Vec<usize> {
    let mut at = 0;
    w.layers
        .iter()
        .map(|l| {
            let k = at;
            at += 1 + usize::from(l.bias.is_some());
            k
        })
        .collect()
}

/// A step's record from the sums of an all-finite pass and its update (`change_sq` empty where
/// no update was made).
pub(super) fn record_from_sums(
    step: usize,
    sums: &PassSums,
    change_sq: &[f64],
    norms: (f64, f64),
    stats: bool,
) -> StepRecord {
    let layers = match stats {
        false => Vec::new(),
        true => sums
            .layers
            .iter()
            .enumerate()
            .map(|(l, s)| {
                let weight_l2 = s.weight_sq.sqrt();
                LayerStep {
                    z_max_abs: s.z_max,
                    z_l2: s.z_sq.sqrt(),
                    delta_l2: s.delta_sq.sqrt(),
                    grad_l2: s.grad_w_sq.sqrt(),
                    weight_l2,
                    update_ratio: change_sq.get(l).map(|c| c.sqrt() / weight_l2),
                    dead_fraction: s.dead / s.width.max(1) as f64,
                    nonfinite: 0,
                    z_nonfinite: 0,
                    delta_nonfinite: 0,
                    grad_nonfinite: 0,
                }
            })
            .collect(),
    };
    StepRecord {
        step,
        loss: sums.loss,
        grad_norm: norms.0,
        grad_norm_clipped: norms.1,
        layers,
        accuracy: None,
        loss_scale: None,
        skipped: None,
    }
}
