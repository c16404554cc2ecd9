//! The bound `compare --precision` holds each precision to: what rounding to that precision
//! alone does to each tensor of a plain evaluation.
//!
//! The network is evaluated on the host twice, from the same f32 weights and inputs: in f64,
//! and "plainly" in the precision p, every operation's result rounded to p (the inputs and
//! weights first; each sum, of a matrix product, the loss or a gradient over the batch,
//! accumulated in f32 term by term, left to right, and its result rounded to p, as the
//! backends accumulate in f32 and round the result; each bias add, activation, derivative and
//! product rounded again). A tensor's plain error e_p is the normwise error of that evaluation
//! against the f64 one, taken at least one unit of p's roundoff (u = 2⁻²⁴ for f32, 2⁻¹¹ for
//! f16, 2⁻⁸ for bf16), since a single value can land on the exact one by luck. f64 has no
//! wider host arithmetic to be measured against: its e_p is f32's scaled by 2⁻⁵³/2⁻²⁴, the
//! first-order model in which rounding errors grow linearly with u. A run in p compared with
//! a reference in p₀ is then allowed `FACTOR · (e_p + e_p₀)`: each side's own rounding, with
//! room for a backend's other summation order. Rounding f64 → f32 → p is correctly rounded for
//! f16 and bf16, since 24 ≥ 2·11 + 2.
//!
//! Accumulating in f32 rather than in f64 (rounding each sum once, as before 2026-12-03) is
//! what a backend does: with f64 accumulation the plain error of a sum over many terms was
//! below a backend's f32 reduction error, and the seed network's loss on wgpu (6.98e-7 from
//! f64) fell past its bound (6.68e-7).

use gradscope_model::{HostTensor, MlpWeights};
use gradscope_report::names::{self, Param};

use crate::config::{Loss, Precision};
pub use crate::range::round_to;

/// How many times the plain evaluations' errors a compared run may differ by. Measured over
/// depth-8, width-64 networks (relu, tanh, gelu and sigmoid under he_normal and
/// glorot_uniform, 16 rows, seed 3), with sums accumulated in f32 and f64 bounded as above:
/// normwise / (e_p + e_p₀) at most 1.50 for flex in bf16 and f16 against flex f64, 2.39 for
/// f32 against f64 (flex and ndarray), 2.65 for f64 between ndarray and flex, 0.95 for wgpu's
/// f64 (relu: its other operations fail the f64 check on lavapipe), 4.26 for wgpu's f16 on
/// lavapipe against flex f32, and 3.98 for f32 between flex and wgpu (another summation
/// order). Before sums accumulated in f32: 1.42, 4.68 and 3.99 for the last three kinds.
pub const FACTOR: f64 = 8.0;

/// The least plain error credited to a tensor, in units of its precision's roundoff: one
/// rounding.
const FLOOR_UNITS: f64 = 1.0;

/// One evaluation's tensors, in `compare`'s order: the loss, the output, each parameter's
/// gradient (`layers.{l}.weight`, then `layers.{l}.bias`) and each δ_l.
pub struct Evaluation {
    /// (name, values).
    pub tensors: Vec<(String, Vec<f64>)>,
}

/// Σ term(i) over `0..n`, each term and each partial sum passed through `acc`: a sum as a
/// backend accumulates it, in its accumulation precision, left to right.
fn sum(n: usize, acc: &dyn Fn(f64) -> f64, term: impl Fn(usize) -> f64) -> f64 {
    (0..n).fold(0.0, |s, i| acc(s + acc(term(i))))
}

/// ∂loss/∂output and the loss of `out` (`[batch, k]`, flat), its sum accumulated through
/// `acc`; `None` for the losses a plain run cannot have (the cross-entropies take labels,
/// which come with training).
fn loss_and_gradient(loss: Loss, out: &[f64], acc: &dyn Fn(f64) -> f64) -> Option<(f64, Vec<f64>)> {
    let n = out.len().max(1) as f64;
    let total = |f: &dyn Fn(f64) -> f64| sum(out.len(), acc, |i| f(out[i]));
    Some(match loss {
        Loss::SumSquares => (total(&|o| o * o), out.iter().map(|o| 2.0 * o).collect()),
        Loss::MeanSquares => (
            total(&|o| o * o) / n,
            out.iter().map(|o| 2.0 * o / n).collect(),
        ),
        Loss::Sum => (total(&|o| o), vec![1.0; out.len()]),
        Loss::Mean => (total(&|o| o) / n, vec![1.0 / n; out.len()]),
        Loss::Mse { target } => (
            total(&|o| (o - target).powi(2)) / n,
            out.iter().map(|o| 2.0 * (o - target) / n).collect(),
        ),
        Loss::CrossEntropy | Loss::CrossEntropyNaive => return None,
    })
}

/// The network `w` on `input` evaluated with every operation's result passed through `r`, and
/// every sum (each matrix product's, the loss's, each gradient's over the batch) accumulated
/// through `acc` term by term before its result goes through `r`.
pub fn evaluate(
    w: &MlpWeights,
    input: &HostTensor,
    loss: Loss,
    r: &dyn Fn(f64) -> f64,
    acc: &dyn Fn(f64) -> f64,
) -> Option<Evaluation> {
    let rows = input.shape[0];
    let round = |v: &[f32]| v.iter().map(|&x| r(f64::from(x))).collect::<Vec<f64>>();
    let kernels: Vec<Vec<f64>> = w.layers.iter().map(|l| round(&l.weight.data)).collect();
    let biases: Vec<Option<Vec<f64>>> = w
        .layers
        .iter()
        .map(|l| l.bias.as_ref().map(|b| round(&b.data)))
        .collect();
    let n = w.layers.len();
    // a[0] is the input; z[l] and a[l + 1] each layer's.
    let mut a = vec![round(&input.data)];
    let mut z = Vec::with_capacity(n);
    for l in 0..n {
        let (d_in, d_out) = (w.layers[l].weight.shape[0], w.layers[l].weight.shape[1]);
        let x = &a[l];
        let mut zl = vec![0.0; rows * d_out];
        for b in 0..rows {
            for j in 0..d_out {
                let dot = sum(d_in, acc, |i| x[b * d_in + i] * kernels[l][i * d_out + j]);
                let mut v = r(dot);
                if let Some(bias) = &biases[l] {
                    v = r(v + bias[j]);
                }
                zl[b * d_out + j] = v;
            }
        }
        if l + 1 < n {
            let act = w.activations[l];
            a.push(zl.iter().map(|&v| r(act.apply_f64(v))).collect());
        }
        z.push(zl);
    }
    let out = z[n - 1].clone();
    let (value, grad) = loss_and_gradient(loss, &out, acc)?;
    let mut deltas = vec![Vec::new(); n];
    deltas[n - 1] = grad.into_iter().map(r).collect();
    let mut grads: Vec<Vec<(String, Vec<f64>)>> = vec![Vec::new(); n];
    for l in (0..n).rev() {
        let (d_in, d_out) = (w.layers[l].weight.shape[0], w.layers[l].weight.shape[1]);
        let (x, d) = (&a[l], &deltas[l]);
        let mut gw = vec![0.0; d_in * d_out];
        for i in 0..d_in {
            for j in 0..d_out {
                gw[i * d_out + j] = r(sum(rows, acc, |b| x[b * d_in + i] * d[b * d_out + j]));
            }
        }
        grads[l].push((names::param(l, Param::Weight), gw));
        if biases[l].is_some() {
            let gb = (0..d_out)
                .map(|j| r(sum(rows, acc, |b| d[b * d_out + j])))
                .collect();
            grads[l].push((names::param(l, Param::Bias), gb));
        }
        if l > 0 {
            let act = w.activations[l - 1];
            let mut prev = vec![0.0; rows * d_in];
            for b in 0..rows {
                for i in 0..d_in {
                    let back = sum(d_out, acc, |j| d[b * d_out + j] * kernels[l][i * d_out + j]);
                    let slope = r(act.derivative_f64(z[l - 1][b * d_in + i]));
                    prev[b * d_in + i] = r(r(back) * slope);
                }
            }
            deltas[l - 1] = prev;
        }
    }
    let mut tensors = vec![
        ("loss".to_string(), vec![r(value)]),
        ("output".to_string(), out),
    ];
    tensors.extend(grads.into_iter().flatten());
    tensors.extend(
        deltas
            .into_iter()
            .enumerate()
            .map(|(l, d)| (names::delta(l), d)),
    );
    Some(Evaluation { tensors })
}

/// ‖got − want‖₂ / ‖want‖₂ over the elements finite in both (0 where `want` is all zero and
/// `got` is too, inf where only `got` is nonzero); NaN where no element is finite in both:
/// there is nothing to measure.
pub fn normwise(got: &[f64], want: &[f64]) -> f64 {
    let (mut diff, mut norm, mut pairs) = (0.0f64, 0.0f64, 0usize);
    for (&g, &w) in got.iter().zip(want) {
        if g.is_finite() && w.is_finite() {
            diff += (g - w) * (g - w);
            norm += w * w;
            pairs += 1;
        }
    }
    match (pairs, diff, norm) {
        (0, _, _) => f64::NAN,
        (_, 0.0, _) => 0.0,
        (_, _, 0.0) => f64::INFINITY,
        (_, d, n) => (d / n).sqrt(),
    }
}

/// Per tensor, in [`evaluate`]'s order, the plain error of precision `p`: `(name, e_p)`, NaN
/// where the plain evaluation holds no value finite where the f64 one is (it overflowed).
pub fn plain_errors(
    w: &MlpWeights,
    input: &HostTensor,
    loss: Loss,
    p: Precision,
) -> Option<Vec<(String, f64)>> {
    let floor = FLOOR_UNITS * p.unit_roundoff();
    if p == Precision::F64 {
        // The host has no wider arithmetic to measure f64's own rounding against: f64's plain
        // error is f32's scaled by the ratio of their roundoffs (2⁻⁵³ / 2⁻²⁴), the first-order
        // model in which rounding errors grow linearly with u; the floor where f32's plain
        // evaluation overflowed and measured nothing.
        let ratio = p.unit_roundoff() / Precision::F32.unit_roundoff();
        return plain_errors(w, input, loss, Precision::F32).map(|errors| {
            errors
                .into_iter()
                .map(|(name, e)| {
                    (
                        name,
                        if e.is_nan() {
                            floor
                        } else {
                            (e * ratio).max(floor)
                        },
                    )
                })
                .collect()
        });
    }
    let exact = evaluate(w, input, loss, &|v| v, &|v| v)?;
    // Sums accumulate in f32 (flex's and wgpu's 16-bit products accumulate in f32, as gemm-f16
    // does on x86 within its depth blocks), each result rounded to p.
    let plain = evaluate(w, input, loss, &|v| round_to(p, v), &|v| {
        round_to(Precision::F32, v)
    })?;
    Some(
        exact
            .tensors
            .iter()
            .zip(&plain.tensors)
            .map(|((name, want), (_, got))| (name.clone(), normwise(got, want).max(floor)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_model::{Activation, LayerWeights};

    fn t(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        HostTensor::new(shape, data)
    }

    /// The hand network (2 → 2 → 1, kernels 0.5, zero biases, relu, one input of ones,
    /// Σ out²): z_0 = [1, 1], out = 1, loss 1, δ_1 = 2, ∂W_1 = [2, 2], δ_0 = [1, 1],
    /// ∂W_0 = 1 everywhere: every value exact in every precision, so every plain error is the
    /// floor.
    #[test]
    fn the_hand_network_evaluates_to_its_hand_derived_values() {
        let w = MlpWeights {
            layers: vec![
                LayerWeights {
                    weight: t(vec![2, 2], vec![0.5; 4]),
                    bias: Some(t(vec![2], vec![0.0; 2])),
                },
                LayerWeights {
                    weight: t(vec![2, 1], vec![0.5; 2]),
                    bias: Some(t(vec![1], vec![0.0])),
                },
            ]
            .into(),
            activations: vec![Activation::Relu],
        };
        let x = t(vec![1, 2], vec![1.0, 1.0]);
        let e = evaluate(&w, &x, Loss::SumSquares, &|v| v, &|v| v)
            .unwrap_or_else(|| panic!("a plain loss"));
        let get = |name: &str| {
            e.tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(get("loss"), [1.0]);
        assert_eq!(get("output"), [1.0]);
        assert_eq!(get("delta.layers.1"), [2.0]);
        assert_eq!(get("layers.1.weight"), [2.0, 2.0]);
        assert_eq!(get("layers.1.bias"), [2.0]);
        assert_eq!(get("delta.layers.0"), [1.0, 1.0]);
        assert_eq!(get("layers.0.weight"), [1.0; 4]);
        assert_eq!(get("layers.0.bias"), [1.0, 1.0]);
        let errors = plain_errors(&w, &x, Loss::SumSquares, Precision::F16)
            .unwrap_or_else(|| panic!("a plain loss"));
        assert!(
            errors.iter().all(|(_, e)| *e == 2f64.powi(-11)),
            "{:?}",
            errors.iter().map(|e| e.1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn rounding_is_to_nearest_even_with_f16s_edges() {
        // 65504 is f16's largest finite; 65520 is halfway to 65536 and rounds to even: inf.
        assert_eq!(round_to(Precision::F16, 65504.0), 65504.0);
        assert_eq!(round_to(Precision::F16, 65520.0), f64::INFINITY);
        // 2⁻²⁵ is halfway between 0 and the smallest subnormal 2⁻²⁴: to even, 0.
        assert_eq!(round_to(Precision::F16, 2f64.powi(-25)), 0.0);
        assert_eq!(round_to(Precision::Bf16, 1.0 + 2f64.powi(-9)), 1.0);
        assert_eq!(round_to(Precision::F32, 0.1), f64::from(0.1f32));
    }

    #[test]
    fn normwise_error_is_over_the_finite_pairs() {
        assert_eq!(normwise(&[3.0, f64::NAN], &[4.0, 1.0]), 0.25);
        assert_eq!(normwise(&[0.0], &[0.0]), 0.0);
        assert_eq!(normwise(&[1.0], &[0.0]), f64::INFINITY);
        assert!(
            normwise(&[f64::INFINITY], &[1.0]).is_nan(),
            "nothing finite to measure"
        );
    }
}
