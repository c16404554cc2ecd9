//! Every loss, defined once: its value on a batch (and on each trial of a stack, and on each
//! row alone), and its gradient ∂loss/∂output as the written-out backward pass starts from it.
//! Plain runs, sweeps' stacks and training all take them from here.
//!
//! A label loss (`cross_entropy`, `cross_entropy_naive`) needs one label per row; validation
//! refuses it without `[train]`, and given no labels here it is NaN, not a panic.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};
use gradscope_model::HostTensor;

use crate::config::Loss;

/// No targets: what a plain run's losses compare with.
pub fn no_targets() -> HostTensor {
    HostTensor::new(vec![0], Vec::new())
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

/// Whether `targets` holds one label per row of a `[b, k]` output.
fn has_labels(targets: &HostTensor, b: usize) -> bool {
    targets.shape.len() == 1 && targets.data.len() == b
}

/// The loss of `output` `[batch, k]` against `targets` (labels `[batch]`, values `[batch, k]`
/// for `mse`, or none), as a one-element tensor.
pub fn value(loss: Loss, output: Tensor<2>, targets: &HostTensor) -> Tensor<1> {
    let device = output.device();
    let [b, k] = output.dims();
    match loss {
        Loss::CrossEntropy | Loss::CrossEntropyNaive if !has_labels(targets, b) => {
            Tensor::<1>::from_floats([f32::NAN], &device)
        }
        Loss::CrossEntropy => cross_entropy(output, onehot(targets, k, &device)),
        Loss::CrossEntropyNaive => (softmax(output, 1).log() * onehot(targets, k, &device))
            .sum()
            .neg()
            .div_scalar(b as f64),
        Loss::Mse { .. } if targets.shape == [b, k] => {
            let diff = output - targets.to_device::<2>(&device);
            (diff.clone() * diff).mean()
        }
        // x·x rather than powf(x, 2): a power of a negative base is NaN on some GPU drivers.
        Loss::SumSquares => (output.clone() * output).sum(),
        Loss::MeanSquares => (output.clone() * output).mean(),
        Loss::Sum => output.sum(),
        Loss::Mean => output.mean(),
        Loss::Mse { target } => {
            let diff = output.sub_scalar(target);
            (diff.clone() * diff).mean()
        }
    }
}

/// The stable cross-entropy of `output` `[batch, k]` against the one-hot rows `onehot`.
fn cross_entropy(output: Tensor<2>, onehot: Tensor<2>) -> Tensor<1> {
    let b = output.dims()[0];
    (log_softmax(output, 1) * onehot)
        .sum()
        .neg()
        .div_scalar(b as f64)
}

/// ∂/∂output of [`cross_entropy`]: (softmax(output) − onehot) / batch.
fn cross_entropy_gradient(output: Tensor<2>, onehot: Tensor<2>) -> Tensor<2> {
    let b = output.dims()[0];
    (softmax(output, 1) - onehot).div_scalar(b as f64)
}

/// [`value`] and [`gradient`] of one output, as a training step takes them: the same
/// tensors, the labels' one-hot rows built and uploaded once for the stable cross-entropy, and
/// on flex the stable cross-entropy's ops in one host pass where they give the same bits
/// ([`gradscope_model::cross_entropy`]).
pub fn value_and_gradient(
    loss: Loss,
    output: Tensor<2>,
    targets: &HostTensor,
) -> (Tensor<1>, Tensor<2>) {
    let [b, k] = output.dims();
    match loss {
        Loss::CrossEntropy if has_labels(targets, b) => {
            if let Some(both) =
                gradscope_model::cross_entropy::cross_entropy(&output, &targets.data)
            {
                return both;
            }
            let onehot = onehot(targets, k, &output.device());
            (
                cross_entropy(output.clone(), onehot.clone()),
                cross_entropy_gradient(output, onehot),
            )
        }
        _ => (
            value(loss, output.clone(), targets),
            gradient(loss, output, targets),
        ),
    }
}

/// The loss of each trial's output `[T, batch, d_output]`, as a `[T]` tensor: what [`value`]
/// gives each trial's `[batch, d_output]` output without targets. A stack of one (a plain run)
/// reduces as [`value`] does, so that its loss is one network's bit for bit.
pub fn per_trial(loss: Loss, output: Tensor<3>) -> Tensor<1> {
    let [trials, batch, d_output] = output.dims();
    if trials == 1 {
        return value(loss, output.reshape([batch, d_output]), &no_targets());
    }
    let flat: Tensor<2> = output.reshape([trials, batch * d_output]);
    let per_trial = match loss {
        Loss::SumSquares => (flat.clone() * flat).sum_dim(1),
        Loss::MeanSquares => (flat.clone() * flat).mean_dim(1),
        Loss::Sum => flat.sum_dim(1),
        Loss::Mean => flat.mean_dim(1),
        Loss::Mse { target } => {
            let diff = flat.sub_scalar(target);
            (diff.clone() * diff).mean_dim(1)
        }
        Loss::CrossEntropy | Loss::CrossEntropyNaive => {
            Tensor::<2>::full([trials, 1], f32::NAN, &flat.device())
        }
    };
    per_trial.reshape([trials])
}

/// The loss of each row of `output` `[batch, k]` against its own target, alone (which
/// examples a non-finite loss comes from): [`value`] over one row at a time (a row's own
/// mean, for the mean losses).
pub fn per_row(
    loss: Loss,
    output: &HostTensor,
    targets: &HostTensor,
    device: &burn::tensor::Device,
    dtype: burn::tensor::FloatDType,
) -> Vec<f32> {
    let (b, k) = (output.shape[0], output.shape.get(1).copied().unwrap_or(1));
    let t = targets.data.len() / b.max(1);
    (0..b)
        .map(|r| {
            let row = HostTensor::new(vec![1, k], output.data[r * k..(r + 1) * k].to_vec());
            let target = match (targets.data.is_empty(), targets.shape.len()) {
                (true, _) => no_targets(),
                (false, 1) => HostTensor::new(vec![1], targets.data[r * t..(r + 1) * t].to_vec()),
                (false, _) => {
                    HostTensor::new(vec![1, t], targets.data[r * t..(r + 1) * t].to_vec())
                }
            };
            let l = value(loss, row.to_device_as::<2>(device, dtype), &target);
            HostTensor::from_tensor(l).data[0]
        })
        .collect()
}

/// ∂loss/∂output for `output` `[batch, k]`, written out per loss as the autodiff of [`value`]
/// computes it: for the naive cross-entropy through log and softmax, so that a probability
/// of 0 gives what autodiff gives (0/0 = NaN where the one-hot is 0; −inf at the label).
pub fn gradient(loss: Loss, output: Tensor<2>, targets: &HostTensor) -> Tensor<2> {
    let device = output.device();
    let [b, k] = output.dims();
    let (bf, n) = (b as f64, (b * k) as f64);
    match loss {
        Loss::CrossEntropy | Loss::CrossEntropyNaive if !has_labels(targets, b) => {
            output.full_like(f32::NAN)
        }
        Loss::CrossEntropy => cross_entropy_gradient(output, onehot(targets, k, &device)),
        Loss::CrossEntropyNaive => {
            // loss = −Σ onehot·log p / B: ∂/∂p = −onehot / (B·p); softmax's backward is
            // p ⊙ (g − Σ_k g_k p_k).
            let p = softmax(output, 1);
            let g = onehot(targets, k, &device).neg().div_scalar(bf) / p.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendKind, open};

    /// out = [[1, 2], [3, −4]], by hand: Σ out² = 1 + 4 + 9 + 16 = 30; Σ out = 2; mean 0.5;
    /// mse to 1: (0 + 1 + 4 + 25)/4 = 7.5; per row Σ out² = [5, 25]. Cross-entropy with labels
    /// [1, 0]: row 0 −log_softmax = log(1 + e^−1) = 0.313262, row 1 log(1 + e^−7) =
    /// 0.000911, mean 0.157087; without labels NaN, not a panic.
    #[test]
    fn every_loss_by_hand() {
        let b = open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
        let host = HostTensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, -4.0]);
        let out = || host.to_device::<2>(&b.plain);
        let v = |loss, targets: &HostTensor| {
            HostTensor::from_tensor(value(loss, out(), targets)).data[0]
        };
        let none = no_targets();
        assert_eq!(v(Loss::SumSquares, &none), 30.0);
        assert_eq!(v(Loss::Sum, &none), 2.0);
        assert_eq!(v(Loss::Mean, &none), 0.5);
        assert_eq!(v(Loss::Mse { target: 1.0 }, &none), 7.5);
        assert_eq!(
            per_row(
                Loss::SumSquares,
                &host,
                &none,
                &b.plain,
                burn::tensor::FloatDType::F32
            ),
            [5.0, 25.0]
        );
        let labels = HostTensor::new(vec![2], vec![1.0, 0.0]);
        let ce = v(Loss::CrossEntropy, &labels);
        let want = ((1.0 + (-1f64).exp()).ln() + (1.0 + (-7f64).exp()).ln()) / 2.0;
        assert!((f64::from(ce) - want).abs() < 1e-6, "{ce} against {want}");
        assert!(v(Loss::CrossEntropy, &none).is_nan());
        let g = HostTensor::from_tensor(gradient(Loss::SumSquares, out(), &none)).data;
        assert_eq!(g, [2.0, 4.0, 6.0, -8.0]);
        let t = HostTensor::from_tensor(per_trial(
            Loss::SumSquares,
            host.to_device::<2>(&b.plain).reshape([2, 1, 2]),
        ))
        .data;
        assert_eq!(t, [5.0, 25.0], "each row as a trial");
    }

    /// A training step's [`value_and_gradient`] is [`value`] and [`gradient`] bit for bit, for
    /// every loss, with labels and without (the cross-entropies' NaN), on both CPU backends, on
    /// an output with a logit of 100 (e^100 overflows f32 without the max shift) and a −0.
    #[test]
    fn value_and_gradient_are_value_and_gradient() {
        let host = HostTensor::new(
            vec![3, 4],
            vec![
                1.0, 2.0, 3.0, -4.0, 100.0, -0.0, 0.5, 7.0, -3.0, 2.5, 0.0, 1e-3,
            ],
        );
        let labels = HostTensor::new(vec![3], vec![1.0, 0.0, 3.0]);
        let values = HostTensor::new(vec![3, 4], (0..12).map(|i| i as f32 * 0.25).collect());
        let none = no_targets();
        let bits = |t: HostTensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            let b = open(kind, None).unwrap_or_else(|e| panic!("{e}"));
            for (loss, targets) in [
                (Loss::CrossEntropy, &labels),
                (Loss::CrossEntropy, &none),
                (Loss::CrossEntropyNaive, &labels),
                (Loss::Mse { target: 1.0 }, &none),
                (Loss::Mse { target: 0.0 }, &values),
                (Loss::SumSquares, &none),
                (Loss::MeanSquares, &none),
                (Loss::Sum, &none),
                (Loss::Mean, &none),
            ] {
                let out = || host.to_device::<2>(&b.plain);
                let (v, g) = value_and_gradient(loss, out(), targets);
                let at = format!("{kind:?} {loss:?} {:?}", targets.shape);
                assert_eq!(
                    bits(HostTensor::from_tensor(v)),
                    bits(HostTensor::from_tensor(value(loss, out(), targets))),
                    "{at}: value"
                );
                assert_eq!(
                    bits(HostTensor::from_tensor(g)),
                    bits(HostTensor::from_tensor(gradient(loss, out(), targets))),
                    "{at}: gradient"
                );
            }
        }
    }

    /// Flex's host pass for the stable cross-entropy ([`gradscope_model::cross_entropy`]) is
    /// the tensor ops of [`cross_entropy`] and [`cross_entropy_gradient`] bit for bit: rows
    /// shorter than, as long as and longer than a vector of every width flex may pick (1 to
    /// 129 classes), logits at scale 30 (whose exps underflow to 0), a row of equal logits,
    /// rows with exact +0s, with −0s and a row whose max is −0. Where it cannot promise that
    /// (a NaN, an infinity, a row of max 0 holding both zeros, a label past the last class, an
    /// ndarray tensor) it gives way to the ops, and a training step's loss is still theirs.
    #[test]
    fn flexs_host_cross_entropy_is_the_ops_bit_for_bit() {
        let flex = open(BackendKind::Flex, None).unwrap_or_else(|e| panic!("{e}"));
        // `got` is the ops' value and gradient of `out` against `labels`, bit for bit.
        let is_ops = |got: (Tensor<1>, Tensor<2>),
                      out: &HostTensor,
                      labels: &HostTensor,
                      dev: &burn::tensor::Device,
                      at: &str| {
            let k = out.shape[1];
            let x = || out.to_device::<2>(dev);
            let want_value = cross_entropy(x(), onehot(labels, k, dev));
            let want_grad = cross_entropy_gradient(x(), onehot(labels, k, dev));
            let bits = |t: HostTensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let (value, grad) = (
                HostTensor::from_tensor(got.0),
                HostTensor::from_tensor(got.1),
            );
            assert_eq!(
                bits(value),
                bits(HostTensor::from_tensor(want_value)),
                "{at}: value"
            );
            assert_eq!(
                bits(grad),
                bits(HostTensor::from_tensor(want_grad)),
                "{at}: gradient"
            );
        };
        let mut rng = gradscope_model::HostRng::new(11, 0);
        let mut checked = 0;
        for (b, k) in [
            (1, 1),
            (1, 2),
            (2, 3),
            (3, 10),
            (32, 10),
            (7, 16),
            (5, 17),
            (4, 33),
            (3, 129),
            (65, 10),
            (64, 33),
            (64, 129),
        ]
        .into_iter()
        // A row alone, whose value is its own log-softmax at the label: the row sum's order
        // shows in it, where a batch's mean rounds it away.
        .chain((0..40).flat_map(|_| [(1, 33), (1, 129)]))
        {
            for scale in [1.0, 30.0, 1e-3] {
                let mut x = rng.normals_f32(b * k, 0.0, scale);
                if b >= 3 && k >= 3 {
                    x[..k].fill(0.25); // equal logits
                    x[k] = 0.0; // a +0 beside positive values
                    x[2 * k + 1] = -0.0;
                }
                if b >= 4 && k >= 2 {
                    // A row of max −0: −0 and negatives only.
                    for (j, v) in x[3 * k..4 * k].iter_mut().enumerate() {
                        *v = if j == 1 { -0.0 } else { -v.abs() - 1.0 };
                    }
                }
                let out = HostTensor::new(vec![b, k], x);
                let labels =
                    HostTensor::new(vec![b], (0..b).map(|r| ((r * 7 + 3) % k) as f32).collect());
                let at = format!("[{b}, {k}] at scale {scale}");
                let got = gradscope_model::cross_entropy::cross_entropy(
                    &out.to_device::<2>(&flex.plain),
                    &labels.data,
                )
                .unwrap_or_else(|| panic!("{at}: the host pass gave way"));
                is_ops(got, &out, &labels, &flex.plain, &at);
                checked += 1;
            }
        }
        assert_eq!(checked, (12 + 80) * 3);
        // Where the host pass gives way, and value_and_gradient is the ops all the same.
        let nd = open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
        let row = |v: [f32; 3]| HostTensor::new(vec![2, 3], [v, [1.0, -2.0, 0.5]].concat());
        let two = HostTensor::new(vec![2], vec![0.0, 2.0]);
        for (out, labels, dev, what) in [
            (row([f32::NAN, 1.0, 0.0]), &two, &flex.plain, "a NaN"),
            (
                row([f32::INFINITY, 1.0, 0.0]),
                &two,
                &flex.plain,
                "an infinity",
            ),
            (
                row([0.0, -0.0, -1.0]),
                &two,
                &flex.plain,
                "max 0 with +0 and -0",
            ),
            (
                row([1.0, 2.0, 3.0]),
                &HostTensor::new(vec![2], vec![0.0, 3.0]),
                &flex.plain,
                "label 3 of 3",
            ),
            (row([1.0, 2.0, 3.0]), &two, &nd.plain, "ndarray"),
        ] {
            let x = || out.to_device::<2>(dev);
            if what != "label 3 of 3" {
                let got = value_and_gradient(Loss::CrossEntropy, x(), labels);
                is_ops(got, &out, labels, dev, what);
            }
            assert!(
                gradscope_model::cross_entropy::cross_entropy(&x(), &labels.data).is_none(),
                "{what}: the host pass should give way"
            );
        }
    }
}
