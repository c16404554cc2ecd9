//! One forward and backward pass of a training step on the backend, the backward pass written
//! out, and the losses of a batch and of each of its rows.

use super::*;

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
    let loss = crate::loss::value(exp.loss, output.clone(), &batch.targets);
    let delta = crate::loss::gradient(exp.loss, output.clone(), &batch.targets);
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

/// The plain run of `exp` on `backend` with the backward pass written out, as training runs
/// it (δ_L from the loss, δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}), then each gradient), instead of
/// Burn's autodiff: the same weights and inputs as [`crate::run::execute`], so `compare
/// --check-backward` can hold one backward pass against the other.
pub fn manual_outcome(
    exp: &Experiment,
    backend: &Backend,
) -> Result<crate::run::Outcome, RunError> {
    let weights = crate::run::weights_of(exp);
    let cases = (0..exp.inputs.len())
        .map(|i| {
            let batch = Batch {
                inputs: crate::run::draw_input(exp, i),
                targets: crate::loss::no_targets(),
            };
            let mut case = pass(exp, backend, &weights, &batch)?;
            case.name = exp.inputs[i].name.clone();
            Ok(case)
        })
        .collect::<Result<_, RunError>>()?;
    Ok(crate::run::Outcome { weights, cases })
}
