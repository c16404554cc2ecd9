//! One forward and backward pass of a training step on the backend: the engine's forward and
//! its backward pass written out.

use burn::tensor::FloatDType;
use gradscope_model::{ForwardTrace, Layers, MlpStack, Record};
use gradscope_report::names::{self, Param};

use super::*;

/// One forward + backward pass of `w` on `batch`, on the backend without autodiff: the
/// backward pass is written out ([`Layers::backward`]: δ_L = ∂loss/∂output, then
/// δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}), ∂loss/∂W_l = a_{l−1}ᵀ·δ_l, ∂loss/∂b_l = Σ_batch δ_l),
/// which gives δ_l without probes and costs no autodiff graph. The f64 oracle checks it on
/// every backend.
pub(super) fn pass(
    exp: &Experiment,
    backend: &Backend,
    w: &MlpWeights,
    batch: &Batch,
) -> Result<CaseOutcome, RunError> {
    let params = params_of(w, &backend.plain);
    Ok(DevicePass::run(exp, w, &params, &backend.plain, batch).to_host(batch))
}

/// The network of `arch`'s architecture with parameters `params` (collection order, shaped as
/// [`Params`]) as the engine runs it: the stack of one network.
fn stack_of_one(arch: &MlpWeights, params: impl IntoIterator<Item = Tensor<3>>) -> MlpStack {
    let mut params = params.into_iter();
    let mut weights = Vec::with_capacity(arch.layers.len());
    let mut biases = Vec::with_capacity(arch.layers.len());
    for layer in arch.layers.iter() {
        weights.extend(params.next());
        biases.push(layer.bias.as_ref().and_then(|_| params.next()));
    }
    MlpStack {
        weights,
        biases,
        activations: arch.activations.clone(),
        trials: 1,
    }
}

/// The stack of one's `[1, rows, cols]` tensor read back as the one network's `[rows, cols]`.
fn host_one(t: &Tensor<3>) -> HostTensor {
    let mut h = HostTensor::from_tensor(t.clone());
    h.shape.remove(0);
    h
}

/// One pass on the device: the engine's forward ([`Record::PASS`]) and its written-out
/// backward ([`Layers::backward`]), held there until the step asks for what it needs.
#[derive(Clone)]
pub(super) struct DevicePass {
    /// The forward pass: input, every z_l and a_l, the output.
    pub(super) trace: ForwardTrace<3>,
    /// Every δ_l and gradient.
    pub(super) backward: gradscope_model::Backward<3>,
    /// The loss, `[1]`.
    pub(super) loss: Tensor<1>,
}

/// The type a step's pass computes in, and its loss scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Compute {
    /// The type of the pass's tensors: the master weights are cast to it each step, and the
    /// batch rounded to it on the host.
    pub(super) dtype: FloatDType,
    /// The loss scale and its inverse (see [`super::scaler::Scaler`]), or none.
    pub(super) scale: Option<(f32, f32)>,
}

impl Compute {
    /// f32, unscaled: the pass as it runs without mixed precision.
    pub(super) const F32: Self = Self {
        dtype: FloatDType::F32,
        scale: None,
    };
}

impl DevicePass {
    /// The pass of the network `arch` with parameters `params` on `batch`, in f32.
    pub(super) fn run(
        exp: &Experiment,
        arch: &MlpWeights,
        params: &Params,
        device: &burn::tensor::Device,
        batch: &Batch,
    ) -> Self {
        Self::run_in(exp, (arch, params), device, batch, Compute::F32)
    }

    /// The pass of `model` (f32 master weights) on `batch`, computed as `compute` says, as
    /// `torch.autocast` with a `GradScaler` computes it: the weights cast to the compute type
    /// on the device and the batch rounded to it; the forward and the backward pass in that
    /// type; the loss and its gradient in f32 from the output widened to f32 (autocast runs
    /// the losses in f32); the gradient times the scale in f32, then rounded to the compute
    /// type for the backward pass. Everything the pass made is then widened to f32, and every
    /// δ and gradient multiplied by the inverse scale in f32 (`GradScaler.unscale_`): the
    /// pass holds unscaled values, each finite exactly where the computed one was.
    ///
    /// The network runs as the engine's stack of one ([`stack_of_one`]): every tensor of the
    /// pass is `[1, ...]`.
    pub(super) fn run_in(
        exp: &Experiment,
        (arch, params): (&MlpWeights, &Params),
        device: &burn::tensor::Device,
        batch: &Batch,
        compute: Compute,
    ) -> Self {
        let low = compute.dtype != FloatDType::F32;
        let (network, input) = match low {
            false => (
                stack_of_one(arch, params.iter().cloned()),
                batch.inputs.to_device::<2>(device),
            ),
            true => (
                stack_of_one(arch, params.iter().map(|p| p.clone().cast(compute.dtype))),
                batch.inputs.to_device_as::<2>(device, compute.dtype),
            ),
        };
        let mut trace = network.forward(input.unsqueeze::<3>(), Record::PASS);
        let widen = |t: Tensor<3>| if low { t.cast(FloatDType::F32) } else { t };
        let [_, rows, k] = trace.output.dims();
        // The losses take one network's `[batch, k]` output.
        let output = widen(trace.output.clone()).reshape([rows, k]);
        let (loss, mut delta) = crate::loss::value_and_gradient(exp.loss, output, &batch.targets);
        if let Some((scale, _)) = compute.scale {
            delta = delta.mul_scalar(scale);
        }
        if low {
            delta = delta.cast(compute.dtype);
        }
        let mut backward = network.backward(&trace, delta.unsqueeze::<3>());
        if low {
            trace.input = widen(trace.input);
            trace.output = widen(trace.output);
            for t in trace
                .pre_activations
                .iter_mut()
                .chain(&mut trace.activations)
            {
                *t = widen(t.clone());
            }
        }
        if low || compute.scale.is_some() {
            let unscale = |t: Tensor<3>| match compute.scale {
                Some((_, inv)) => widen(t).mul_scalar(inv),
                None => widen(t),
            };
            let b = &mut backward;
            for t in b
                .deltas
                .iter_mut()
                .chain(&mut b.weights)
                .chain(b.biases.iter_mut().flatten())
            {
                *t = unscale(t.clone());
            }
        }
        Self {
            trace,
            backward,
            loss,
        }
    }

    /// The gradients in parameter order, shaped as [`Params`]: each layer's kernel, then its
    /// bias.
    pub(super) fn grads(&self) -> Vec<Tensor<3>> {
        self.backward
            .weights
            .iter()
            .zip(&self.backward.biases)
            .flat_map(|(w, b)| std::iter::once(w.clone()).chain(b.clone()))
            .collect()
    }

    /// Everything the pass made, read back to the host.
    pub(super) fn to_host(&self, batch: &Batch) -> CaseOutcome {
        let output = host_one(&self.trace.output);
        let host = host_one;
        let mut layer_outputs: Vec<HostTensor> = self.trace.activations.iter().map(host).collect();
        layer_outputs.push(output.clone());
        let loss = HostTensor::from_tensor(self.loss.clone());
        CaseOutcome {
            name: "train".into(),
            input: batch.inputs.clone(),
            output,
            loss: loss.data[0],
            loss_f64: loss.values_f64()[0],
            grads: named_gradients(&self.backward.weights, &self.backward.biases),
            deltas: self.backward.deltas.iter().map(host).collect(),
            layer_outputs,
            pre_activations: self.trace.pre_activations.iter().map(host).collect(),
        }
    }
}

/// The written-out pass's gradients read back to the host and named in parameter order
/// (`layers.{l}.weight`, then `layers.{l}.bias` `[d_out]`, as [`MlpStack::gradients`] names
/// each network's).
fn named_gradients(weights: &[Tensor<3>], biases: &[Option<Tensor<3>>]) -> Vec<NamedTensor> {
    let mut named = Vec::with_capacity(2 * weights.len());
    for (l, (w, b)) in weights.iter().zip(biases).enumerate() {
        named.push(NamedTensor {
            name: names::param(l, Param::Weight),
            tensor: host_one(w),
        });
        if let Some(b) = b {
            let mut tensor = host_one(b);
            // [1, d_out] → [d_out], the shape of a Linear bias.
            tensor.shape.remove(0);
            named.push(NamedTensor {
                name: names::param(l, Param::Bias),
                tensor,
            });
        }
    }
    named
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
