//! `MlpConfig` → `Mlp`: a stack of Burn `Linear` layers with an activation after every hidden
//! layer and a linear output layer, built from host-generated weights.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, FloatDType, Tensor};

use crate::activation::Activation;
use crate::dense::{dense, dense_weight_backward, dense_x_backward};
use crate::engine::Layers;
use crate::host::HostTensor;
use crate::init::{Fans, Initializer};
use crate::rng::{HostRng, PARAMETER_STREAM};

/// Everything needed to draw an MLP's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpConfig {
    /// Input width.
    pub d_input: usize,
    /// Widths of the hidden layers, first to last (may be empty: a single linear layer).
    pub hidden: Vec<usize>,
    /// Output width.
    pub d_output: usize,
    /// Activation after each hidden layer (`hidden.len()` entries).
    pub activations: Vec<Activation>,
    /// Whether layers have a bias.
    pub bias: bool,
    /// Kernel initialiser.
    pub kernel_init: Initializer,
    /// Bias initialiser.
    pub bias_init: Initializer,
    /// Gain applied by both initialisers.
    pub gain: f64,
    /// Seed of the parameter draw (stream `PARAMETER_STREAM` of `HostRng`).
    pub seed: u64,
}

/// One layer's parameters on the host: kernel `[d_in, d_out]` (Keras layout), bias `[d_out]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// Kernel, shape `[d_in, d_out]`.
    pub weight: HostTensor,
    /// Bias, shape `[d_out]`, when the layer has one.
    pub bias: Option<HostTensor>,
}

/// All of an MLP's parameters on the host, plus its activations.
///
/// The layers are shared, not copied, between clones: networks that differ only in their
/// activations (a sweep's points over `model.activation`) hold one copy of the parameters
/// ([`Self::with_activations`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MlpWeights {
    /// Layers, input first.
    pub layers: Arc<[LayerWeights]>,
    /// Activation after each hidden layer.
    pub activations: Vec<Activation>,
}

impl MlpWeights {
    /// These parameters with `activations` after the hidden layers instead; the layers are
    /// shared, not copied.
    pub fn with_activations(&self, activations: Vec<Activation>) -> Self {
        Self {
            layers: Arc::clone(&self.layers),
            activations,
        }
    }
}

impl MlpConfig {
    /// Widths of every layer boundary: input, hidden..., output.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = Vec::with_capacity(self.hidden.len() + 2);
        w.push(self.d_input);
        w.extend_from_slice(&self.hidden);
        w.push(self.d_output);
        w
    }

    /// Draw the parameters from `self.seed`: layer by layer, kernel then bias, from one stream.
    /// The same config gives bit-identical weights on every machine and backend.
    pub fn draw_weights(&self) -> MlpWeights {
        self.draw_weights_on(PARAMETER_STREAM)
    }

    /// Draw the parameters from the seed's `stream` (a teacher network uses its own).
    pub fn draw_weights_on(&self, stream: u64) -> MlpWeights {
        let mut rng = HostRng::new(self.seed, stream);
        let widths = self.widths();
        let layers = widths
            .windows(2)
            .map(|w| {
                let (d_in, d_out) = (w[0], w[1]);
                let fans = Fans {
                    fan_in: d_in,
                    fan_out: d_out,
                };
                let weight = HostTensor::new(
                    vec![d_in, d_out],
                    self.kernel_init
                        .sample(d_in * d_out, fans, self.gain, &mut rng),
                );
                let bias = self.bias.then(|| {
                    let bias_fans = match self.bias_init {
                        Initializer::BurnDefault => fans,
                        _ => Fans {
                            fan_in: d_out,
                            fan_out: d_out,
                        },
                    };
                    HostTensor::new(
                        vec![d_out],
                        self.bias_init.sample(d_out, bias_fans, self.gain, &mut rng),
                    )
                });
                LayerWeights { weight, bias }
            })
            .collect::<Vec<_>>();
        MlpWeights {
            layers: layers.into(),
            activations: self.activations.clone(),
        }
    }

    /// Draw the parameters and build the model on `device`.
    pub fn init(&self, device: &Device) -> Mlp {
        Mlp::from_weights(&self.draw_weights(), device)
    }
}

/// A multi-layer perceptron: `Linear` layers, an activation after each hidden one. Runs take
/// the stack of one ([`crate::MlpStack`], [`crate::engine`]); this one-network form, Burn's own
/// module, is what the tests hold the stack against.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers, input first. Parameters are named `layers.{i}.weight` and `layers.{i}.bias`.
    pub layers: Vec<Linear>,
    /// Activation after hidden layer `i`.
    #[module(skip)]
    pub activations: Vec<Activation>,
}

impl Mlp {
    /// Build the model from host weights (each loaded as a trainable parameter), in f32.
    pub fn from_weights(weights: &MlpWeights, device: &Device) -> Self {
        Self::from_weights_as(weights, device, FloatDType::F32)
    }

    /// Build the model from host weights in `dtype`, each value rounded once on the host
    /// ([`crate::host::data_as`]).
    pub fn from_weights_as(weights: &MlpWeights, device: &Device, dtype: FloatDType) -> Self {
        let layers = weights
            .layers
            .iter()
            .map(|l| Linear {
                weight: param(&l.weight, device, dtype),
                bias: l.bias.as_ref().map(|b| param(b, device, dtype)),
            })
            .collect();
        Self {
            layers,
            activations: weights.activations.clone(),
        }
    }
}

/// `t` as a trainable parameter on `device` in `dtype`: f32 by Burn's `Param::from_data` as
/// before, any other type rounded once on the host ([`HostTensor::to_device_as`]).
fn param<const D: usize>(t: &HostTensor, device: &Device, dtype: FloatDType) -> Param<Tensor<D>> {
    match dtype {
        FloatDType::F32 => Param::from_data(t.to_data(), device),
        _ => Param::from_tensor(t.to_device_as::<D>(device, dtype)),
    }
}

/// One network through the 2-D layer of [`crate::dense`]: Burn's `linear` for x·W + b, with
/// flex's faster products on large layers, tracked by autodiff on an autodiff device.
impl Layers<2> for Mlp {
    fn depth(&self) -> usize {
        self.layers.len()
    }

    fn activations(&self) -> &[Activation] {
        &self.activations
    }

    fn has_bias(&self, l: usize) -> bool {
        self.layers[l].bias.is_some()
    }

    fn dense(&self, l: usize, x: Tensor<2>) -> Tensor<2> {
        let layer = &self.layers[l];
        dense(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
    }

    fn dense_x_backward(&self, l: usize, grad: Tensor<2>) -> Tensor<2> {
        dense_x_backward(self.layers[l].weight.val(), grad)
    }

    fn dense_weight_backward(&self, _l: usize, x: Tensor<2>, grad: Tensor<2>) -> Tensor<2> {
        dense_weight_backward(x, grad)
    }
}
