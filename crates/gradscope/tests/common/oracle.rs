//! An independent oracle: the MLP's forward and backward pass written out by hand in f64,
//! with no Burn anywhere. Given the same (f32) weights and input as a Burn run, it yields the
//! loss, the gradient of every parameter and δ_l = ∂loss/∂z_l of every layer.

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

fn act(a: Activation, z: f64) -> f64 {
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
        Activation::Gelu => unimplemented!("the oracle has no erf"),
    }
}

/// φ'(z), with ReLU's derivative at 0 taken as 0 (TensorFlow's and Burn's convention).
fn act_grad(a: Activation, z: f64) -> f64 {
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
        Activation::Gelu => unimplemented!("the oracle has no erf"),
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
    let (_, out) = forward(layers, acts, x, batch);
    loss_and_grad(loss, &out).0
}

/// Returns (per layer: (input a_{l-1}, pre-activation z_l)), output.
fn forward(
    layers: &Layers,
    acts: &[Activation],
    x: &[f64],
    batch: usize,
) -> (Vec<(Vec<f64>, Vec<f64>)>, Vec<f64>) {
    let mut a = x.to_vec();
    let mut tape = Vec::new();
    for (l, (w, b, d_in, d_out)) in layers.iter().enumerate() {
        let mut z = vec![0.0; batch * d_out];
        for r in 0..batch {
            for j in 0..*d_out {
                let mut s = b[j];
                for i in 0..*d_in {
                    s += a[r * d_in + i] * w[i * d_out + j];
                }
                z[r * d_out + j] = s;
            }
        }
        let next = if l + 1 < layers.len() {
            z.iter().map(|&v| act(acts[l], v)).collect()
        } else {
            z.clone()
        };
        tape.push((a, z));
        a = next;
    }
    (tape, a)
}

/// The full oracle.
pub fn oracle(w: &MlpWeights, x: &HostTensor, loss: Loss) -> OracleResult {
    let layers = layers_of(w);
    let batch = x.shape[0];
    let xs: Vec<f64> = x.data.iter().map(|&v| f64::from(v)).collect();
    let (tape, out) = forward(&layers, &w.activations, &xs, batch);
    let (loss_value, mut delta) = loss_and_grad(loss, &out);
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
                gb[j] += d;
                for i in 0..*d_in {
                    gw[i * d_out + j] += a_prev[r * d_in + i] * d;
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
                        s += w_l[i * d_out + j] * delta[r * d_out + j];
                    }
                    next[r * d_in + i] = s * act_grad(w.activations[l - 1], z_prev[r * d_in + i]);
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
