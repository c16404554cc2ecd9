//! `Activation`: the element-wise non-linearities applied after each hidden layer, each
//! computed by Burn's own activation function so that autodiff differentiates it.

use burn::tensor::{Tensor, activation};

/// An element-wise activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// max(0, x); derivative 1 for x > 0, else 0.
    Relu,
    /// x for x > 0, else slope·x.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f64,
    },
    /// x for x > 0, else alpha·(eˣ − 1).
    Elu {
        /// Scale of the negative branch.
        alpha: f64,
    },
    /// x·Φ(x), Φ the standard normal CDF (exact, erf-based).
    Gelu,
    /// x·σ(x).
    Silu,
    /// ln(1 + eˣ).
    Softplus,
    /// σ(x) = 1 / (1 + e⁻ˣ).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// x.
    Identity,
}

impl Activation {
    /// Apply the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match *self {
            Self::Relu => activation::relu(x),
            Self::LeakyRelu { slope } => activation::leaky_relu(x, slope),
            Self::Elu { alpha } => activation::elu(x, alpha),
            Self::Gelu => activation::gelu(x),
            Self::Silu => activation::silu(x),
            Self::Softplus => activation::softplus(x, 1.0),
            Self::Sigmoid => activation::sigmoid(x),
            Self::Tanh => activation::tanh(x),
            Self::Identity => x,
        }
    }

    /// The activation's name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::LeakyRelu { .. } => "leaky_relu",
            Self::Elu { .. } => "elu",
            Self::Gelu => "gelu",
            Self::Silu => "silu",
            Self::Softplus => "softplus",
            Self::Sigmoid => "sigmoid",
            Self::Tanh => "tanh",
            Self::Identity => "identity",
        }
    }
}
