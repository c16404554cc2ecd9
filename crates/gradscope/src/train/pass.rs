//! One forward and backward pass of a training step on the backend, the backward pass written
//! out, and the losses of a batch and of each of its rows.

use super::*;

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

/// One forward + backward pass of `w` on `batch`, on the backend without autodiff: the
/// backward pass is written out (δ_L = ∂loss/∂output, δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}),
/// ∂loss/∂W_l = a_{l−1}ᵀ·δ_l, ∂loss/∂b_l = Σ_batch δ_l), which gives δ_l without probes and
/// costs no autodiff graph. The f64 oracle checks it on every backend.
pub(super) fn pass(
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
pub(super) fn forward(
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
pub(super) fn backward(
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
            let z = zs[l - 1].clone();
            delta = match w.activations[l - 1] {
                // relu's backward is a mask, as Burn's autodiff (`relu_backward`: the
                // gradient where z > 0, else 0) and PyTorch's: an overflowed δ (inf) meets a
                // dead unit as 0, where inf·0 would be NaN.
                gradscope_model::Activation::Relu => back.mask_fill(z.lower_equal_elem(0.0), 0.0),
                a => back * a.derivative(z),
            };
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
pub(super) fn loss_gradient(loss: Loss, output: Tensor<2>, targets: &HostTensor) -> Tensor<2> {
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

/// The training loss of each row of `output` against its own target, on its own (which
/// examples a non-finite loss comes from): [`train_loss`] over one row at a time.
pub(super) fn row_losses(
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

/// The plain run of `exp` on `backend` with the backward pass written out, as training runs
/// it (δ_L from the loss, δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}), then each gradient), instead of
/// Burn's autodiff: the same weights and inputs as [`crate::run::execute`], so `compare
/// --check-backward` can hold one backward pass against the other.
pub fn manual_outcome(
    exp: &Experiment,
    backend: &Backend,
) -> Result<crate::run::Outcome, RunError> {
    let weights = match &exp.weights {
        Some(loaded) => loaded.weights.clone(),
        None => exp.model.draw_weights(),
    };
    let cases = (0..exp.inputs.len())
        .map(|i| {
            let batch = Batch {
                inputs: crate::run::draw_input(exp, i),
                targets: HostTensor::new(vec![0], Vec::new()),
            };
            let mut case = pass(exp, backend, &weights, &batch)?;
            case.name = exp.inputs[i].name.clone();
            Ok(case)
        })
        .collect::<Result<_, RunError>>()?;
    Ok(crate::run::Outcome { weights, cases })
}
