//! An independent oracle: the MLP's forward and backward pass written out by hand in f64,
//! with no Burn anywhere. Given the same (f32) weights and input as a Burn run, it yields the
//! loss, the gradient of every parameter and δ_l = ∂loss/∂z_l of every layer.
//!
//! [`oracle_rounded`] runs the same loops with the result of every operation rounded to f32:
//! a plain f32 evaluation of the network, whose distance from the f64 oracle measures how much
//! f32 rounding alone moves each value (the problem's own conditioning).

use gradscope::config::Loss;
use gradscope_model::{Activation, HostTensor, MlpWeights};

/// What the oracle computes.
pub struct OracleResult {
    pub loss: f64,
    pub output: Vec<f64>,
    /// Per layer: (∂loss/∂W as row-major [d_in, d_out], ∂loss/∂b [d_out]).
    pub grads: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per layer: δ as row-major [batch, d_out].
    pub deltas: Vec<Vec<f64>>,
}

pub fn act(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu { slope } => {
            if z > 0.0 {
                z
            } else {
                slope * z
            }
        }
        Activation::Elu { alpha } => {
            if z > 0.0 {
                z
            } else {
                alpha * (z.exp() - 1.0)
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Softplus => z.exp().ln_1p(),
        Activation::Silu => z / (1.0 + (-z).exp()),
        Activation::Identity => z,
        // x·Φ(x); libm's erf is fdlibm's, within 1 ulp in f64.
        Activation::Gelu => 0.5 * z * (1.0 + libm::erf(z / std::f64::consts::SQRT_2)),
    }
}

/// φ'(z), with ReLU's derivative at 0 taken as 0 (TensorFlow's and Burn's convention).
pub fn act_grad(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu { slope } => {
            if z > 0.0 {
                1.0
            } else {
                slope
            }
        }
        Activation::Elu { alpha } => {
            if z > 0.0 {
                1.0
            } else {
                alpha * z.exp()
            }
        }
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        Activation::Softplus => 1.0 / (1.0 + (-z).exp()),
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 + z * (1.0 - s))
        }
        Activation::Identity => 1.0,
        // Φ(x) + x·φ(x): the exact derivative (not that of gelu's tanh approximation).
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + z * pdf
        }
    }
}

/// Weights as f64 layers: (W row-major [d_in, d_out], b, d_in, d_out).
pub type Layers = Vec<(Vec<f64>, Vec<f64>, usize, usize)>;

pub fn layers_of(w: &MlpWeights) -> Layers {
    w.layers
        .iter()
        .map(|l| {
            let (d_in, d_out) = (l.weight.shape[0], l.weight.shape[1]);
            let b = match &l.bias {
                Some(b) => b.data.iter().map(|&v| f64::from(v)).collect(),
                None => vec![0.0; d_out],
            };
            (
                l.weight.data.iter().map(|&v| f64::from(v)).collect(),
                b,
                d_in,
                d_out,
            )
        })
        .collect()
}

/// The precision the oracle's arithmetic rounds to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Precision {
    /// f64 throughout: the reference.
    F64,
    /// Every operation's result rounded to f32 (each correctly rounded, so as good as f32
    /// arithmetic gets).
    F32,
}

impl Precision {
    fn q(self, x: f64) -> f64 {
        match self {
            Self::F64 => x,
            Self::F32 => f64::from(x as f32),
        }
    }
}

fn loss_and_grad(loss: Loss, out: &[f64]) -> (f64, Vec<f64>) {
    let n = out.len() as f64;
    match loss {
        Loss::SumSquares => (
            out.iter().map(|o| o * o).sum(),
            out.iter().map(|o| 2.0 * o).collect(),
        ),
        Loss::MeanSquares => (
            out.iter().map(|o| o * o).sum::<f64>() / n,
            out.iter().map(|o| 2.0 * o / n).collect(),
        ),
        Loss::Sum => (out.iter().sum(), vec![1.0; out.len()]),
        Loss::Mean => (out.iter().sum::<f64>() / n, vec![1.0 / n; out.len()]),
        Loss::Mse { target } => (
            out.iter().map(|o| (o - target).powi(2)).sum::<f64>() / n,
            out.iter().map(|o| 2.0 * (o - target) / n).collect(),
        ),
        Loss::CrossEntropy | Loss::CrossEntropyNaive => {
            panic!("the label losses need labels: training tests compute them themselves")
        }
    }
}

/// Forward only: the loss for `layers` on input `x` ([batch, d_in] row-major).
pub fn forward_loss(
    layers: &Layers,
    acts: &[Activation],
    x: &[f64],
    batch: usize,
    loss: Loss,
) -> f64 {
    let (_, out) = forward(layers, acts, x, batch, Precision::F64);
    loss_and_grad(loss, &out).0
}

/// Returns (per layer: (input a_{l-1}, pre-activation z_l)), output.
fn forward(
    layers: &Layers,
    acts: &[Activation],
    x: &[f64],
    batch: usize,
    p: Precision,
) -> (Vec<(Vec<f64>, Vec<f64>)>, Vec<f64>) {
    let mut a = x.to_vec();
    let mut tape = Vec::new();
    for (l, (w, b, d_in, d_out)) in layers.iter().enumerate() {
        let mut z = vec![0.0; batch * d_out];
        for r in 0..batch {
            for j in 0..*d_out {
                let mut s = 0.0;
                for i in 0..*d_in {
                    s = p.q(s + p.q(a[r * d_in + i] * w[i * d_out + j]));
                }
                z[r * d_out + j] = p.q(s + b[j]);
            }
        }
        let next = if l + 1 < layers.len() {
            z.iter().map(|&v| p.q(act(acts[l], v))).collect()
        } else {
            z.clone()
        };
        tape.push((a, z));
        a = next;
    }
    (tape, a)
}

/// The full oracle, in f64.
pub fn oracle(w: &MlpWeights, x: &HostTensor, loss: Loss) -> OracleResult {
    oracle_in(w, x, loss, Precision::F64)
}

/// The oracle's loops with every operation rounded to f32 (see the module docs).
pub fn oracle_rounded(w: &MlpWeights, x: &HostTensor, loss: Loss) -> OracleResult {
    oracle_in(w, x, loss, Precision::F32)
}

fn oracle_in(w: &MlpWeights, x: &HostTensor, loss: Loss, p: Precision) -> OracleResult {
    oracle_layers(
        &layers_of(w),
        &w.activations,
        x,
        &|out| loss_and_grad(loss, out),
        p,
    )
}

/// The oracle on f64 `layers` with the loss (and ∂loss/∂output) `loss_grad` gives for the
/// output `[batch, d_out]`.
pub fn oracle_layers(
    layers: &Layers,
    activations: &[Activation],
    x: &HostTensor,
    loss_grad: &dyn Fn(&[f64]) -> (f64, Vec<f64>),
    p: Precision,
) -> OracleResult {
    let batch = x.shape[0];
    let xs: Vec<f64> = x.data.iter().map(|&v| f64::from(v)).collect();
    let (tape, out) = forward(layers, activations, &xs, batch, p);
    let (loss_value, delta) = loss_grad(&out);
    let (loss_value, mut delta) = (
        p.q(loss_value),
        delta.into_iter().map(|d| p.q(d)).collect::<Vec<_>>(),
    );
    let mut grads = vec![(Vec::new(), Vec::new()); layers.len()];
    let mut deltas = vec![Vec::new(); layers.len()];
    for l in (0..layers.len()).rev() {
        let (w_l, _, d_in, d_out) = &layers[l];
        let (a_prev, _) = &tape[l];
        // δ_l is ∂loss/∂z_l; for hidden layers it was multiplied by φ'(z_l) below.
        let mut gw = vec![0.0; d_in * d_out];
        let mut gb = vec![0.0; *d_out];
        for r in 0..batch {
            for j in 0..*d_out {
                let d = delta[r * d_out + j];
                gb[j] = p.q(gb[j] + d);
                for i in 0..*d_in {
                    gw[i * d_out + j] = p.q(gw[i * d_out + j] + p.q(a_prev[r * d_in + i] * d));
                }
            }
        }
        grads[l] = (gw, gb);
        deltas[l] = delta.clone();
        if l > 0 {
            let (_, z_prev) = &tape[l - 1];
            let mut next = vec![0.0; batch * d_in];
            for r in 0..batch {
                for i in 0..*d_in {
                    let mut s = 0.0;
                    for j in 0..*d_out {
                        s = p.q(s + p.q(w_l[i * d_out + j] * delta[r * d_out + j]));
                    }
                    let slope = p.q(act_grad(activations[l - 1], z_prev[r * d_in + i]));
                    next[r * d_in + i] = p.q(s * slope);
                }
            }
            delta = next;
        }
    }
    OracleResult {
        loss: loss_value,
        output: out,
        grads,
        deltas,
    }
}
