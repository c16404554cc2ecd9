//! `MlpConfig` → `Mlp`: a stack of Burn `Linear` layers with an activation after every hidden
//! layer and a linear output layer, built from host-generated weights.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::dense::dense;
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
#[derive(Debug, Clone, PartialEq)]
pub struct MlpWeights {
    /// Layers, input first.
    pub layers: Vec<LayerWeights>,
    /// Activation after each hidden layer.
    pub activations: Vec<Activation>,
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
            .collect();
        MlpWeights {
            layers,
            activations: self.activations.clone(),
        }
    }

    /// Draw the parameters and build the model on `device`.
    pub fn init(&self, device: &Device) -> Mlp {
        Mlp::from_weights(&self.draw_weights(), device)
    }
}

/// A multi-layer perceptron: `Linear` layers, an activation after each hidden one.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers, input first. Parameters are named `layers.{i}.weight` and `layers.{i}.bias`.
    pub layers: Vec<Linear>,
    /// Activation after hidden layer `i`.
    #[module(skip)]
    pub activations: Vec<Activation>,
}

/// What one forward pass recorded, per layer `l` (0-based, output layer last). `D` is 2 for an
/// [`Mlp`] (`[batch, d]` tensors) and 3 for an [`MlpStack`](crate::MlpStack) (`[T, batch, d]`).
#[derive(Debug, Clone)]
pub struct ForwardTrace<const D: usize = 2> {
    /// The network's output, `[batch, d_output]`.
    pub output: Tensor<D>,
    /// z_l = a_{l-1}·W_l + b_l, `[batch, d_l]`; the last one equals `output`.
    pub pre_activations: Vec<Tensor<D>>,
    /// a_l = φ(z_l) for each hidden layer.
    pub activations: Vec<Tensor<D>>,
    /// Zero leaves added to each z_l; their gradients are δ_l = ∂loss/∂z_l. Empty unless
    /// probes were asked for.
    pub delta_probes: Vec<Tensor<D>>,
}

impl<const D: usize> ForwardTrace<D> {
    /// Run `layers` layers on `input`, `linear(l, a)` giving z_l from the previous layer's
    /// output, with `activations[l]` after every layer but the last, and record the pass. With
    /// `probes`, a zero leaf requiring grad is added to each pre-activation so that its
    /// gradient after `backward` is δ_l (Burn cannot `require_grad` an intermediate tensor,
    /// burn #1802).
    ///
    /// # Panics
    /// Panics if there are fewer activations than hidden layers (a programming error).
    pub(crate) fn record(
        input: Tensor<D>,
        layers: usize,
        activations: &[Activation],
        probes: bool,
        mut linear: impl FnMut(usize, Tensor<D>) -> Tensor<D>,
    ) -> Self {
        let last = layers - 1;
        let device = input.device();
        let mut trace = Self {
            output: input.clone(),
            pre_activations: Vec::with_capacity(layers),
            activations: Vec::with_capacity(last),
            delta_probes: Vec::new(),
        };
        let mut x = input;
        assert!(
            activations.len() >= last,
            "{layers} layers need {last} activations, got {}",
            activations.len()
        );
        // Each hidden layer's activation, then none after the output layer.
        let after = activations.iter().take(last).map(Some).chain([None]);
        for (l, activation) in after.enumerate() {
            let mut z = linear(l, x);
            if probes {
                let probe = Tensor::<D>::zeros(z.shape(), &device).require_grad();
                z = z + probe.clone();
                trace.delta_probes.push(probe);
            }
            trace.pre_activations.push(z.clone());
            x = match activation {
                Some(activation) => {
                    let a = activation.forward(z);
                    trace.activations.push(a.clone());
                    a
                }
                None => z,
            };
        }
        trace.output = x;
        trace
    }
}

/// `layer`'s z = x·W + b through [`dense`]: Burn's `Linear::forward` for a 2-D input, with
/// flex's faster ∂L/∂x.
fn dense_layer(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    dense(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

impl Mlp {
    /// Build the model from host weights (each loaded as a trainable parameter).
    pub fn from_weights(weights: &MlpWeights, device: &Device) -> Self {
        let layers = weights
            .layers
            .iter()
            .map(|l| Linear {
                weight: Param::from_data(l.weight.to_data(), device),
                bias: l
                    .bias
                    .as_ref()
                    .map(|b| Param::from_data(b.to_data(), device)),
            })
            .collect();
        Self {
            layers,
            activations: weights.activations.clone(),
        }
    }

    /// The forward pass.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut x = input;
        for (i, layer) in self.layers.iter().enumerate() {
            x = dense_layer(layer, x);
            if i < last {
                x = self.activations[i].forward(x);
            }
        }
        x
    }

    /// The forward pass, recording pre-activations and activations, and with `probes` the δ
    /// probes ([`ForwardTrace::record`]).
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    pub fn forward_traced(&self, input: Tensor<2>, probes: bool) -> ForwardTrace {
        ForwardTrace::record(
            input,
            self.layers.len(),
            &self.activations,
            probes,
            |l, x| dense_layer(&self.layers[l], x),
        )
    }
}
