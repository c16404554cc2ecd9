//! `Activation`: the element-wise non-linearities applied after each hidden layer, each
//! computed by Burn's own activation function so that autodiff differentiates it, except gelu
//! (see [`gelu_exact`]).

use burn::tensor::{DType, Tensor, activation};

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

/// An element-wise operation beyond +, −, ×, comparison and the matrix product that a
/// network's forward or backward pass evaluates on the device: what an f64 run must find
/// accurate on its device before it is trusted (f64 transcendentals through naga are not, on
/// every adapter: gfx-rs/wgpu#6087).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementOp {
    /// eˣ.
    Exp,
    /// ln(1 + x).
    Log1p,
    /// tanh(x).
    Tanh,
    /// erf(x).
    Erf,
    /// 1/x.
    Recip,
}

impl ElementOp {
    /// Every operation, in the order they are probed.
    pub const ALL: [Self; 5] = [Self::Exp, Self::Log1p, Self::Tanh, Self::Erf, Self::Recip];

    /// The operation's name, as Burn's tensor API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exp => "exp",
            Self::Log1p => "log1p",
            Self::Tanh => "tanh",
            Self::Erf => "erf",
            Self::Recip => "recip",
        }
    }

    /// The operation on the device.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Exp => x.exp(),
            Self::Log1p => x.log1p(),
            Self::Tanh => x.tanh(),
            Self::Erf => x.erf(),
            Self::Recip => x.recip(),
        }
    }

    /// The operation on the host in f64: Rust's own functions, and libm's (fdlibm's) erf, each
    /// within an ulp or so.
    pub fn apply_f64(self, x: f64) -> f64 {
        match self {
            Self::Exp => x.exp(),
            Self::Log1p => x.ln_1p(),
            Self::Tanh => x.tanh(),
            Self::Erf => libm::erf(x),
            Self::Recip => 1.0 / x,
        }
    }

    /// Where it is probed: 64 points spread evenly over the inputs a network meets, at the
    /// middles of 64 equal steps, so none is 0 (where erf and tanh are 0 and a relative error
    /// means nothing) and no result leaves f64's normal range.
    pub fn probe_points(self) -> Vec<f64> {
        let (low, high) = match self {
            Self::Exp => (-40.0, 40.0),
            Self::Log1p => (-0.9, 40.0),
            Self::Tanh => (-12.0, 12.0),
            Self::Erf => (-5.0, 5.0),
            Self::Recip => (-40.0, 40.0),
        };
        (0..64)
            .map(|i| low + (high - low) * (f64::from(i) + 0.5) / 64.0)
            .collect()
    }
}

impl Activation {
    /// The [`ElementOp`]s its forward and its autodiff backward evaluate (relu, leaky_relu and
    /// identity need none: comparisons, masks and products only).
    pub fn element_ops(&self) -> &'static [ElementOp] {
        use ElementOp::{Erf, Exp, Log1p, Recip, Tanh};
        match self {
            Self::Relu | Self::LeakyRelu { .. } | Self::Identity => &[],
            Self::Elu { .. } => &[Exp],
            // erf's derivative is 2/√π·e^(−u²).
            Self::Gelu => &[Erf, Exp],
            Self::Silu | Self::Sigmoid => &[Exp, Recip],
            // ln(1 + eˣ) and its derivative eˣ/(1 + eˣ).
            Self::Softplus => &[Exp, Log1p, Recip],
            Self::Tanh => &[Tanh],
        }
    }

    /// Apply the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match *self {
            Self::Relu => activation::relu(x),
            Self::LeakyRelu { slope } => activation::leaky_relu(x, slope),
            Self::Elu { alpha } => elu(x, alpha),
            Self::Gelu => gelu_exact(x),
            Self::Silu => x.clone() * sigmoid(x),
            Self::Softplus => activation::softplus(x, 1.0),
            Self::Sigmoid => sigmoid(x),
            Self::Tanh => activation::tanh(x),
            Self::Identity => x,
        }
    }

    /// φ'(x) element-wise, written out from tensor operations (for a backward pass written by
    /// hand, without autodiff). At the kinks (x = 0 for relu, leaky_relu, elu) the left
    /// derivative, as Burn's autodiff and TensorFlow take it.
    pub fn derivative<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match *self {
            Self::Relu => x.greater_elem(0.0).float(),
            Self::LeakyRelu { slope } => {
                let positive = x.greater_elem(0.0).float();
                positive.mul_scalar(1.0 - slope).add_scalar(slope)
            }
            Self::Elu { alpha } => {
                let positive = x.clone().greater_elem(0.0);
                x.exp().mul_scalar(alpha).mask_fill(positive, 1.0)
            }
            // Φ(x) + x·φ(x).
            Self::Gelu => {
                let cdf = x
                    .clone()
                    .div_scalar(std::f64::consts::SQRT_2)
                    .erf()
                    .add_scalar(1.0)
                    .mul_scalar(0.5);
                let pdf = x
                    .clone()
                    .square()
                    .mul_scalar(-0.5)
                    .exp()
                    .div_scalar((2.0 * std::f64::consts::PI).sqrt());
                cdf + x * pdf
            }
            Self::Silu => {
                let s = sigmoid(x.clone());
                let one_minus = s.clone().neg().add_scalar(1.0);
                s * (x * one_minus).add_scalar(1.0)
            }
            Self::Softplus => sigmoid(x),
            Self::Sigmoid => {
                let s = sigmoid(x);
                s.clone() * s.neg().add_scalar(1.0)
            }
            Self::Tanh => activation::tanh(x).square().neg().add_scalar(1.0),
            Self::Identity => x.ones_like(),
        }
    }

    /// ∂L/∂x from `grad` = ∂L/∂φ(x): `grad ⊙ φ'(x)`, the step of a backward pass written out.
    /// relu's is a mask, as Burn's autodiff (`relu_backward`: the gradient where x > 0, else 0)
    /// and PyTorch's: an overflowed gradient (inf) meets a dead unit as 0, where inf·0 would be
    /// NaN.
    ///
    /// relu's is the backend's own `relu_backward`, given x for relu(x): it keeps the gradient
    /// where its first operand is > 0 or NaN, and relu(x) is > 0 or NaN exactly where x is.
    /// Burn's default (every backend but flex) is `grad.mask_fill(x <= 0, 0)`, so the same;
    /// flex's is one branch-free pass, where flex's `mask_fill` on a tensor it may overwrite
    /// branches per element (13 % of a training step of the seed network). On ndarray, whose
    /// `mask_fill` walks a broadcast mask index by index (12 % of a training step), the same
    /// rule runs as one pass over the two tensors' host memory ([`relu_backward_ndarray`]).
    pub fn backward<const D: usize>(&self, x: Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
        use burn::backend::Dispatch;
        use burn::backend::ops::ActivationOps;
        match *self {
            Self::Relu => {
                let dims = x.dims();
                let same_shape = dims == grad.dims();
                let (x, grad) = (x.into_dispatch(), grad.into_dispatch());
                let ours = same_shape
                    .then(|| relu_backward_ndarray(&x, &grad, dims.to_vec()))
                    .flatten();
                Tensor::from_dispatch(match ours {
                    Some(out) => out,
                    None => <Dispatch as ActivationOps<Dispatch>>::relu_backward(x, grad),
                })
            }
            a => grad * a.derivative(x),
        }
    }

    /// The activation of one value in f64 (a teacher network's host forward pass).
    #[inline]
    pub fn apply_f64(&self, x: f64) -> f64 {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        match *self {
            Self::Relu => x.max(0.0),
            Self::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            Self::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            Self::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Self::Silu => x * sigmoid(x),
            Self::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Self::Sigmoid => sigmoid(x),
            Self::Tanh => x.tanh(),
            Self::Identity => x,
        }
    }

    /// [`Self::apply_f64`] on each of `values` in place, widened to f64 and rounded back to
    /// f32: for each value the very result of `apply_f64(f64::from(v)) as f32`. The match on
    /// the activation is taken once for the slice, not once per value, so that the loop of the
    /// piecewise-linear ones (relu, leaky relu) is a vector loop.
    pub fn apply_f64_to_f32s(&self, values: &mut [f32]) {
        #[inline(always)]
        fn each(values: &mut [f32], f: impl Fn(f64) -> f64) {
            for v in values {
                *v = f(f64::from(*v)) as f32;
            }
        }
        match *self {
            Self::Relu => each(values, |x| Self::Relu.apply_f64(x)),
            Self::LeakyRelu { slope } => each(values, |x| Self::LeakyRelu { slope }.apply_f64(x)),
            a => each(values, |x| a.apply_f64(x)),
        }
    }

    /// φ'(x) in f64, for the theory (x > 0 picks the branch at a kink: 0 for relu at 0, as
    /// [`Activation::derivative`] takes it).
    pub fn derivative_f64(&self, z: f64) -> f64 {
        let s = 1.0 / (1.0 + (-z).exp());
        match *self {
            Self::Relu => f64::from(u8::from(z > 0.0)),
            Self::LeakyRelu { slope } => {
                if z > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Self::Elu { alpha } => {
                if z > 0.0 {
                    1.0
                } else {
                    alpha * z.exp()
                }
            }
            Self::Identity => 1.0,
            // Φ(z) + z·φ(z), Φ through erfc (the theory's χ depends on these last bits).
            Self::Gelu => {
                0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
                    + z * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
            }
            Self::Silu => s * (1.0 + z * (1.0 - s)),
            Self::Softplus => s,
            Self::Sigmoid => s * (1.0 - s),
            Self::Tanh => 1.0 - z.tanh().powi(2),
        }
    }

    /// φ''(x) in f64, for the theory (0 on the linear pieces of relu, leaky_relu and identity).
    pub fn second_derivative_f64(&self, z: f64) -> f64 {
        let s = 1.0 / (1.0 + (-z).exp());
        let normal_pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        match *self {
            Self::Gelu => normal_pdf * (2.0 - z * z),
            Self::Silu => s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s)),
            Self::Softplus => s * (1.0 - s),
            Self::Sigmoid => s * (1.0 - s) * (1.0 - 2.0 * s),
            Self::Tanh => -2.0 * z.tanh() * (1.0 - z.tanh().powi(2)),
            // Piecewise linear: φ'' is 0 but at the kink, where φ(0) = 0 cancels it.
            Self::Relu | Self::LeakyRelu { .. } | Self::Identity => 0.0,
            Self::Elu { alpha } => {
                if z > 0.0 {
                    0.0
                } else {
                    alpha * z.exp()
                }
            }
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

/// gelu(x) = x·Φ(x) = x·(1 + erf(x/√2))/2, built from the tensor operations erf, add, mul and
/// div so that autodiff differentiates it exactly: d/dx = Φ(x) + x·φ(x).
///
/// Burn 0.22.1's `activation::gelu` computes this same forward (burn-backend's default
/// `ActivationOps::gelu` is exactly this sequence of operations), but its default
/// `gelu_backward` is the derivative of the *tanh approximation* of gelu, off from the exact
/// derivative by up to 8.7e-4 (at |x| ≈ 2.2). ndarray and wgpu use that default; flex
/// overrides both with exact formulas. Composing the forward here gives every backend the same,
/// exact backward through erf's own derivative, 2/√π·exp(−u²) (burn-autodiff `float_erf`).
/// On ndarray and wgpu the forward values are bit-identical to `activation::gelu`'s.
///
/// In f64 the division by √2 is a multiplication by 1/√2 (f64): burn-autodiff 0.22.1's
/// `float_div_scalar` backward takes the reciprocal of the scalar in f32 (`1.0 /
/// ops.state.elem::<f32>()`), which made an f64 gelu network's gradients only f32-accurate
/// (1.8e-8 against the f64 oracle, measured). x·(1/√2) and x/√2 differ by at most an f64
/// rounding.
pub fn gelu_exact<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let scaled = if x.dtype() == DType::F64 {
        x.clone().mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
    } else {
        x.clone().div_scalar(std::f64::consts::SQRT_2)
    };
    let cdf_times_two = scaled.erf().add_scalar(1.0);
    // 1/2 is exact in every precision: its f32 reciprocal is too.
    (x * cdf_times_two).div_scalar(2.0)
}

/// σ(x) = 1 / (1 + e⁻ˣ): Burn's `activation::sigmoid` in f32, f16 and bf16; in f64 written
/// from `exp` and `recip`, since Burn 0.22.1's default `ActivationOps::sigmoid` (ndarray's and
/// cubecl's) casts to f32 and back, which would make an f64 run's sigmoid, silu and softplus
/// derivative only f32-accurate. The exponent is capped at 709 (x ≥ −709), where e⁻ˣ is still
/// finite in f64, so autodiff never multiplies 0 by ∞: for x < −709 the value is σ(−709) ≈
/// 1.2e-308 instead of a subnormal or 0, and its derivative 0 instead of a subnormal.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F64 {
        x.clamp_min(-709.0).neg().exp().add_scalar(1.0).recip()
    } else {
        activation::sigmoid(x)
    }
}

/// Burn's default `relu_backward` (`grad.mask_fill(x <= 0, 0)`: +0 where x ≤ 0, the gradient
/// where x > 0 or x is NaN) for two f32 ndarray tensors of the one shape `dims` (the caller
/// checks it), both row-major in host memory ([`crate::sums::host_values`]), as one pass into
/// a new buffer; `None` for any other pair, which then takes Burn's.
#[allow(deprecated)] // burn-ndarray's types, as in dense/ and sums.rs
fn relu_backward_ndarray(
    x: &burn::backend::DispatchTensor,
    grad: &burn::backend::DispatchTensor,
    dims: Vec<usize>,
) -> Option<burn::backend::DispatchTensor> {
    use burn::backend::ndarray::NdArrayTensor;
    use burn::backend::{
        BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind,
    };
    let ndarray = |t: &DispatchTensor| matches!(t.kind, DispatchTensorKind::NdArray(_));
    if !ndarray(x) || !ndarray(grad) {
        return None;
    }
    let (xs, gs) = (
        crate::sums::host_values(x)?,
        crate::sums::host_values(grad)?,
    );
    let out: Vec<f32> = xs
        .iter()
        .zip(gs)
        .map(|(&x, &g)| if x <= 0.0 { 0.0 } else { g })
        .collect();
    let data = burn::tensor::TensorData::new(out, dims);
    Some(DispatchTensor {
        kind: DispatchTensorKind::NdArray(BackendTensor::Float(NdArrayTensor::from_data(data))),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

/// elu(x) = x for x > 0, α·(eˣ − 1) otherwise, with `exp` evaluated on min(x, 0).
///
/// Burn 0.22.1's `activation::elu` evaluates α·(eˣ − 1) on every element and then keeps x
/// where x > 0 (`mask_where`). For x > 88.7, eˣ overflows f32 in the branch it discards, and
/// autodiff carries the discarded branch's gradient back through `exp`: 0·∞ = NaN. An elu
/// network with large positive pre-activations (He kernels at gain 1.5, depth 8, width 256)
/// then reported NaN δ where every value is finite. Burn's own softplus caps its discarded
/// branch the same way. The forward values are Burn's, bit for bit: for x ≤ 0, min(x, 0) = x.
pub fn elu<const D: usize>(x: Tensor<D>, alpha: f64) -> Tensor<D> {
    let mask = x.clone().lower_equal_elem(0.0);
    let scaled = x
        .clone()
        .clamp_max(0.0)
        .exp()
        .sub_scalar(1.0)
        .mul_scalar(alpha);
    x.mask_where(mask, scaled)
}
