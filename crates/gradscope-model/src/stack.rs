//! `MlpStack`: several networks of one architecture, each with its own parameters, stacked
//! along a leading *trial* dimension so that one forward and one backward pass give every
//! network's gradients.
//!
//! A sweep runs the same network over many seeds. One small network at a time spends most of
//! its time in per-operation overhead (graph bookkeeping, allocation, read-back); a stack of
//! `T` of them runs the same operations once on `[T, ...]` tensors. The trials stay
//! independent: the caller sums the per-trial losses, and since trial `t`'s parameters enter
//! only trial `t`'s loss, ∂(Σ losses)/∂θ_t = ∂loss_t/∂θ_t.
//!
//! Layer `l` computes z = a·W + b with `a` `[T, batch, d_in]`, `W` `[T, d_in, d_out]` (a batched
//! matmul: each trial's own kernel) and `b` `[T, 1, d_out]`, the same arithmetic as
//! [`Mlp`](crate::Mlp)'s `Linear` layers trial by trial.

use burn::tensor::{Device, FloatDType, Gradients, Tensor, TensorData};

use crate::activation::Activation;
use crate::engine::{ForwardTrace, Layers};
use crate::host::HostTensor;
use crate::mlp::MlpWeights;
use crate::params::NamedTensor;

/// `T` networks of one architecture on a device, parameters stacked along dimension 0.
#[derive(Debug)]
pub struct MlpStack {
    /// Kernels `[T, d_in, d_out]`, input layer first; leaves that require grad (on an
    /// autodiff device).
    pub weights: Vec<Tensor<3>>,
    /// Biases `[T, 1, d_out]`, where the layers have them; leaves that require grad (on an
    /// autodiff device).
    pub biases: Vec<Option<Tensor<3>>>,
    /// Activation after hidden layer `i` (shared by every trial).
    pub activations: Vec<Activation>,
    /// The number of stacked networks.
    pub trials: usize,
}

/// What one stacked forward pass recorded: tensors `[T, batch, d_l]` per layer.
pub type StackTrace = ForwardTrace<3>;

/// Why networks cannot be stacked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackError {
    /// No network was given.
    #[error("no network to stack")]
    Empty,
    /// Network `index` differs from the first in its layer shapes, bias or activations.
    #[error("network {index} has a different architecture from network 0")]
    Architecture {
        /// The offending network.
        index: usize,
    },
}

fn same_architecture(a: &MlpWeights, b: &MlpWeights) -> bool {
    a.activations == b.activations
        && a.layers.len() == b.layers.len()
        && a.layers.iter().zip(b.layers.iter()).all(|(x, y)| {
            x.weight.shape == y.weight.shape
                && x.bias.as_ref().map(|t| &t.shape) == y.bias.as_ref().map(|t| &t.shape)
        })
}

/// Stack `parts` (each of shape `inner`) into one `[parts.len(), inner...]` tensor's data.
fn stacked_data<'a>(
    parts: impl Iterator<Item = &'a HostTensor>,
    shape: Vec<usize>,
    dtype: FloatDType,
) -> TensorData {
    let mut data = Vec::with_capacity(shape.iter().product());
    for p in parts {
        data.extend_from_slice(&p.data);
    }
    crate::host::data_as(data, shape, dtype)
}

impl MlpStack {
    /// Load `nets` (all of one architecture) onto `device`, stacked in the given order, in f32.
    pub fn from_weights(nets: &[&MlpWeights], device: &Device) -> Result<Self, StackError> {
        Self::from_weights_as(nets, device, FloatDType::F32)
    }

    /// [`Self::from_weights`] in `dtype`, each value rounded once on the host
    /// ([`crate::host::data_as`]).
    pub fn from_weights_as(
        nets: &[&MlpWeights],
        device: &Device,
        dtype: FloatDType,
    ) -> Result<Self, StackError> {
        let first = nets.first().ok_or(StackError::Empty)?;
        if let Some(index) = nets.iter().position(|n| !same_architecture(first, n)) {
            return Err(StackError::Architecture { index });
        }
        let trials = nets.len();
        // On an autodiff device the parameters are leaves that require grad; on a plain one
        // (the written-out backward pass) plain tensors.
        let leaf = |t: Tensor<3>| {
            if device.is_autodiff() {
                t.require_grad()
            } else {
                t
            }
        };
        let mut weights = Vec::with_capacity(first.layers.len());
        let mut biases = Vec::with_capacity(first.layers.len());
        for (l, layer) in first.layers.iter().enumerate() {
            let (d_in, d_out) = (layer.weight.shape[0], layer.weight.shape[1]);
            let w = stacked_data(
                nets.iter().map(|n| &n.layers[l].weight),
                vec![trials, d_in, d_out],
                dtype,
            );
            weights.push(leaf(crate::host::tensor_as::<3>(w, device, dtype)));
            biases.push(layer.bias.as_ref().map(|_| {
                let b = stacked_data(
                    nets.iter().filter_map(|n| n.layers[l].bias.as_ref()),
                    vec![trials, 1, d_out],
                    dtype,
                );
                leaf(crate::host::tensor_as::<3>(b, device, dtype))
            }));
        }
        Ok(Self {
            weights,
            biases,
            activations: first.activations.clone(),
            trials,
        })
    }

    /// Every network's parameter gradients, named and ordered as
    /// [`collect_gradients`](crate::collect_gradients) names an [`Mlp`](crate::Mlp)'s
    /// (`layers.{i}.weight` `[d_in, d_out]`, `layers.{i}.bias` `[d_out]`). `Err` lists the
    /// parameters without a gradient.
    ///
    /// The gradients are removed from `grads`: a tensor held only once is read back without a
    /// copy (on ndarray, a shared one is read element by element, many times slower).
    pub fn gradients(&self, grads: &mut Gradients) -> Result<Vec<Vec<NamedTensor>>, Vec<String>> {
        let mut per_trial: Vec<Vec<NamedTensor>> = (0..self.trials)
            .map(|_| Vec::with_capacity(2 * self.weights.len()))
            .collect();
        let mut missing = Vec::new();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let params = [(w, "weight", false)]
                .into_iter()
                .chain(b.iter().map(|b| (b, "bias", true)));
            for (p, kind, is_bias) in params {
                let name = format!("layers.{l}.{kind}");
                match p.grad_remove(grads) {
                    None => missing.push(name),
                    Some(g) => {
                        let parts = split_trials(HostTensor::from_tensor(g));
                        for (trial, mut t) in parts.into_iter().enumerate() {
                            if is_bias {
                                // [1, d_out] → [d_out], the shape of a Linear bias.
                                t.shape.remove(0);
                            }
                            per_trial[trial].push(NamedTensor {
                                name: name.clone(),
                                tensor: t,
                            });
                        }
                    }
                }
            }
        }
        if missing.is_empty() {
            Ok(per_trial)
        } else {
            Err(missing)
        }
    }
}

/// Every network's layers at once: batched products over the trial dimension,
/// through [`crate::dense`]'s products at rank 3.
impl Layers<3> for MlpStack {
    fn depth(&self) -> usize {
        self.weights.len()
    }

    fn activations(&self) -> &[Activation] {
        &self.activations
    }

    fn has_bias(&self, l: usize) -> bool {
        self.biases[l].is_some()
    }

    fn dense(&self, l: usize, x: Tensor<3>) -> Tensor<3> {
        crate::dense::dense(x, self.weights[l].clone(), self.biases[l].clone())
    }

    fn dense_x_backward(&self, l: usize, grad: Tensor<3>) -> Tensor<3> {
        crate::dense::dense_x_backward(self.weights[l].clone(), grad)
    }

    fn dense_weight_backward(&self, _l: usize, x: Tensor<3>, grad: Tensor<3>) -> Tensor<3> {
        crate::dense::dense_weight_backward(x, grad)
    }
}

/// Split a host tensor `[T, rest...]` into `T` tensors of shape `rest` (a stack of one loses
/// its first dimension, its values not copied).
pub fn split_trials(mut t: HostTensor) -> Vec<HostTensor> {
    let trials = t.shape.first().copied().unwrap_or(0);
    if trials == 1 {
        t.shape.remove(0);
        return vec![t];
    }
    let inner: Vec<usize> = t.shape[1..].to_vec();
    let size: usize = inner.iter().product();
    (0..trials)
        .map(|i| {
            let part = i * size..(i + 1) * size;
            let mut h = HostTensor::new(inner.clone(), t.data[part.clone()].to_vec());
            h.wide = t.wide.as_ref().map(|w| w[part].to_vec());
            h
        })
        .collect()
}

/// Stack `T` host tensors of one shape into one `[T, shape...]` host tensor.
///
/// # Panics
/// Panics if the shapes differ (a programming error).
pub fn stack_trials(parts: &[HostTensor]) -> HostTensor {
    let inner = parts.first().map(|p| p.shape.clone()).unwrap_or_default();
    let mut shape = vec![parts.len()];
    shape.extend_from_slice(&inner);
    let mut data = Vec::with_capacity(shape.iter().product());
    for p in parts {
        assert_eq!(p.shape, inner, "stack_trials: shapes differ");
        data.extend_from_slice(&p.data);
    }
    HostTensor::new(shape, data)
}
