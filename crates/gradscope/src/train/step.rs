//! What the host reads of a step that stays on the device: a few sums per layer, not the
//! tensors.
//!
//! A step reads twice: after the pass (the loss; per layer Σz², max|z|, Σδ², Σ(∂L/∂W)²,
//! Σ(∂L/∂b)², ‖W‖² and the count of dead units), and after the update (per parameter Σp² of
//! the new values, per layer Σ(ΔW)², and the clipped gradients' Σg²), each in one
//! [`sums::read`]. On flex and ndarray the sums are taken in place in f64, the very functions
//! the host's checks take, so a step's record is the one its host checks would make, bit for
//! bit; on wgpu they are f32 tensor sums. A sum of squares is finite exactly when every value
//! is finite and the sum does not overflow (f32's range on wgpu; f64's, which no f32 tensor
//! reaches, on the CPU), so an all-finite read proves the step holds no inf or NaN (every
//! non-finite count is 0). Any other read sends the step to the host: its tensors are read back
//! and checked value by value, in the order the computation ran, as before (the exact counts,
//! the origin).

use burn::tensor::Tensor;

use super::optimizer::Params;
use super::pass::DevicePass;
use super::*;

use gradscope_model::sums::{self, Sum};

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
    let loss = pass.loss.clone().unsqueeze::<3>();
    let mut parts = vec![Sum::Values(&loss)];
    parts.extend(grads.iter().map(Sum::Squares));
    for l in 0..n {
        parts.push(Sum::Squares(&pass.trace.pre_activations[l]));
        parts.push(Sum::Squares(&b.deltas[l]));
        if stats {
            parts.push(Sum::MaxAbs(&pass.trace.pre_activations[l]));
            parts.push(Sum::Squares(&params[kernels[l]]));
            if l + 1 < n {
                parts.push(Sum::ZeroColumns(&pass.trace.activations[l]));
            }
        }
    }
    let sums = parts.len();
    let [_, rows, k] = pass.trace.output.dims();
    if output {
        parts.push(Sum::Values(&pass.trace.output));
    }
    let mut values = sums::read(&parts);
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
    let mut parts: Vec<Sum<'_, 3>> = after.iter().map(Sum::Squares).collect();
    if stats {
        parts.extend(
            kernels
                .iter()
                .map(|&k| Sum::ChangeSquares(&after[k], &before[k])),
        );
    }
    if let Some(c) = clipped {
        parts.extend(c.iter().map(Sum::Squares));
    }
    let values = sums::read(&parts);
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

#[cfg(test)]
mod tests {
    use super::super::records;
    use super::*;
    use crate::backend::{BackendKind, open};
    use crate::config::{Source, parse};

    /// On flex and ndarray a step's sums are read in place in f64 ([`sums::read`]) and the
    /// host's checks of the values read back take the same functions: the record a finite step
    /// makes from its sums is the record the host's checks make, bit for bit (every norm, the
    /// maxima, the dead fractions, the update ratios, the global norm). Adam with momentum on a
    /// relu network of hidden widths 20 and 9 (dead units likely), a teacher's batch of 16.
    #[test]
    fn on_the_cpu_backends_a_steps_sums_are_its_host_checks_bit_for_bit() {
        let text = r#"
name = "sums"
seed = 3
loss = "cross_entropy"
[model]
input = 6
hidden = [20, 9]
output = 4
activation = "relu"
[train]
steps = 3
batch = 16
optimizer = "adam"
learning_rate = 0.01
data = { kind = "teacher", classes = 4 }
"#;
        let exp = parse(Source {
            path: "sums.toml".into(),
            text: text.into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let Some(train) = exp.task.train() else {
            panic!("a training config")
        };
        let w = crate::run::weights_of(&exp);
        let kernels = kernels_of(&w);
        let teacher = teacher(&exp);
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            let backend = open(kind, None).unwrap_or_else(|e| panic!("{e}"));
            let device = &backend.plain;
            let mut params = params_of(&w, device);
            let mut state = OptimizerState::start(train, &w, None, device);
            for step in 0..3 {
                let batch = batch(&exp, train, Some(&teacher), step);
                let pass = DevicePass::run(&exp, &w, &params, device, &batch);
                let sums = pass_sums(&pass, &params, &kernels, true, false);
                assert!(sums.finite, "{kind:?} step {step}");
                let after = state.step(train, &params, &pass.grads());
                let update = update_sums(&params, &after, &kernels, None, true);
                let norm = sums.grad_sq.iter().sum::<f64>().sqrt();
                let device_record =
                    record_from_sums(step, &sums, &update.change_sq, (norm, norm), true);
                let host = pass.to_host(&batch);
                let host_norm = super::super::global_norm(host.grads.iter().map(|g| &g.tensor));
                let (before, new) = (host_weights(&w, &params), host_weights(&w, &after));
                let host_record =
                    records::record(step, &host, (&before, &new), (host_norm, host_norm), true);
                let json = |r: &StepRecord| serde_json::to_string(r).unwrap_or_default();
                assert_eq!(norm.to_bits(), host_norm.to_bits(), "{kind:?} step {step}");
                assert!(!device_record.layers.is_empty());
                assert_eq!(
                    json(&device_record),
                    json(&host_record),
                    "{kind:?} step {step}"
                );
                for (d, h) in device_record.layers.iter().zip(&host_record.layers) {
                    let bits = |s: &LayerStep| {
                        [s.z_l2, s.z_max_abs, s.delta_l2, s.grad_l2, s.weight_l2].map(f64::to_bits)
                    };
                    assert_eq!(bits(d), bits(h), "{kind:?} step {step}");
                    assert_eq!(
                        d.update_ratio.map(f64::to_bits),
                        h.update_ratio.map(f64::to_bits)
                    );
                    assert_eq!(d.dead_fraction.to_bits(), h.dead_fraction.to_bits());
                }
                params = after;
            }
        }
    }
}
