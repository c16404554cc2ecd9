//! A theory of a precision's headroom: from the q_l and χ_l recursions, the typical and the
//! largest entry of each z_l and δ_l, and the first of them to leave the precision's range.
//!
//! - z_l's entries are ≈ N(0, q_l) across the batch (mean-field theory's Gaussian), so the
//!   typical one is √q_l and the largest of N = batch × width is ≈ √(2·q_l·ln(2N)) (the
//!   Gaussian tail: P(|z| > t) ≈ e^{−t²/2q}, set to 1/N).
//! - δ_L = ∂loss/∂output: its entries' second moment m_L follows from the loss (sum: 1;
//!   mean: 1/(B·k)²; sum of squares: 4·q_L; mean of squares: (2/(B·k))²·q_L; mse to t:
//!   (2/(B·k))²·(q_L + t²)); the label losses have none.
//! - Backward, per entry: E[δ_{l−1}²] = n_l·σ²_{w,l}·E[φ'(z_{l−1})²]·E[δ_l²] = χ_l·(n_l/n_{l−1})·m_l,
//!   the δ recursion divided by the widths (χ_l is ‖δ_{l−1}‖²/‖δ_l‖² over whole rows).
//!   The largest entry as for z, treating δ as Gaussian too.
//!
//! A tensor leaves the range above when its predicted largest entry is past the largest
//! finite value, below when its typical entry is under the smallest normal (most of it is
//! then subnormal or 0). Where it fails: the Gaussian tail is mean-field theory's, not one
//! network's (a finite-width network's q_l spreads across seeds, e^{±√(2·Σ1/n)} at depth, the
//! theory issue's band); ReLU's δ is half zeros, so its largest entry is over half as many
//! entries; and it inherits every caveat of `predict` (zero-mean weights, one loss gradient).

use gradscope_model::MlpConfig;
use gradscope_report::{LayerRangePrediction, LeavesRange, Precision, Theory};

use crate::config::{InputCase, Loss};

/// The largest of `n` entries of second moment `m`, ≈ √(2·m·ln(2n)); as √m·√(2·ln(2n))
/// where the product under the root would overflow f64 though m does not (an f64 run's
/// entries near 2⁵¹²).
fn largest(m: f64, n: usize) -> f64 {
    let ln = (2.0 * n.max(1) as f64).ln();
    let product = 2.0 * m * ln;
    if product.is_finite() || !m.is_finite() {
        product.sqrt()
    } else {
        m.sqrt() * (2.0 * ln).sqrt()
    }
}

/// E[δ_L²] per entry for `loss` on a `[batch, k]` output of variance `q_last`; `None` for the
/// label losses.
fn output_delta_moment(loss: &Loss, q_last: f64, batch: usize, k: usize) -> Option<f64> {
    let n = (batch * k).max(1) as f64;
    Some(match loss {
        Loss::Sum => 1.0,
        Loss::Mean => 1.0 / (n * n),
        Loss::SumSquares => 4.0 * q_last,
        Loss::MeanSquares => 4.0 / (n * n) * q_last,
        Loss::Mse { target } => 4.0 / (n * n) * (q_last + target * target),
        Loss::CrossEntropy | Loss::CrossEntropyNaive => return None,
    })
}

/// The predicted range of every layer of `model` on `case`, and where it first leaves
/// `precision`, from `theory`'s q_l and χ_l (its `predict`). Empty and `None` for the label
/// losses.
pub fn predict_range(
    model: &MlpConfig,
    loss: &Loss,
    case: &InputCase,
    precision: Precision,
    theory: &Theory,
) -> RangePrediction {
    let widths = model.widths();
    let layers = theory.q.len();
    let (Some(&q_last), true) = (theory.q.last(), theory.chi.len() + 1 == layers) else {
        return RangePrediction::default();
    };
    let Some(m_last) = output_delta_moment(loss, q_last, case.batch, model.d_output) else {
        return RangePrediction::default();
    };
    // δ's second moment per entry, output layer first, then back.
    let mut m = vec![0.0; layers];
    m[layers - 1] = m_last;
    for l in (1..layers).rev() {
        // chi[l − 1] is χ_l; layer l has widths[l + 1] units, layer l − 1 widths[l].
        m[l - 1] = theory.chi[l - 1] * widths[l + 1] as f64 / widths[l] as f64 * m[l];
    }
    let range: Vec<LayerRangePrediction> = (0..layers)
        .map(|l| {
            let n = case.batch * widths[l + 1];
            LayerRangePrediction {
                layer: l,
                z_rms: theory.q[l].sqrt(),
                z_max: largest(theory.q[l], n),
                delta_rms: m[l].sqrt(),
                delta_max: largest(m[l], n),
            }
        })
        .collect();
    let (max, min) = (precision.max_finite(), precision.min_normal());
    let leaves = |rms: f64, largest: f64| {
        if largest > max {
            Some("above")
        } else if rms < min {
            Some("below")
        } else {
            None
        }
    };
    let first = LeavesRange::first_in_pass(
        range.len(),
        |l| leaves(range[l].z_rms, range[l].z_max),
        |l| leaves(range[l].delta_rms, range[l].delta_max),
    );
    // Theory's moments are second powers: in f64 they overflow (or underflow) f64 where the
    // entries are only past about 2^±511, well inside f64's range. From the first such tensor
    // on, theory cannot say whether the run leaves f64 (below f64 such a moment is past the
    // precision's range anyway, and is judged as above).
    let beyond = |m: f64| {
        if precision != Precision::F64 {
            None
        } else if !m.is_finite() {
            Some("above")
        } else if m > 0.0 && m < f64::MIN_POSITIVE {
            Some("below")
        } else {
            None
        }
    };
    let unknown =
        LeavesRange::first_in_pass(range.len(), |l| beyond(theory.q[l]), |l| beyond(m[l]));
    let n = range.len();
    let first = match (&first, &unknown) {
        (Some(f), Some(u)) if u.pass_index(n) <= f.pass_index(n) => None,
        _ => first,
    };
    RangePrediction {
        range,
        leaves_range: first,
        unknown_from: unknown,
    }
}

/// What theory predicts of a pass's range ([`predict_range`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangePrediction {
    /// Per layer, the typical and the largest entry of z_l and δ_l.
    pub range: Vec<LayerRangePrediction>,
    /// The first tensor predicted to leave the precision's range.
    pub leaves_range: Option<LeavesRange>,
    /// The first tensor whose second moment leaves f64's own range in an f64 run (see
    /// `Theory::range_unknown_from`).
    pub unknown_from: Option<LeavesRange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Gaussian maximum: N = 1 gives √(2·ln 2)·√m; N = 512 entries of m = 4:
    /// √(8·ln 1024) = √(8·6.9315) = 7.4467.
    #[test]
    fn the_largest_entry_follows_the_gaussian_tail() {
        assert!((largest(1.0, 1) - (2.0 * 2f64.ln()).sqrt()).abs() < 1e-15);
        assert!((largest(4.0, 512) - (8.0 * 1024f64.ln()).sqrt()).abs() < 1e-12);
        // m = 2¹⁰²³, 512 entries: 2·m·ln(1024) ≈ 6.9·2¹⁰²⁴ overflows f64; the largest entry,
        // √(2¹⁰²⁴·ln 1024) = 2⁵¹²·√(ln 1024) ≈ 3.5e154, does not.
        let m = 2f64.powi(1023);
        let want = 2f64.powi(512) * 1024f64.ln().sqrt();
        assert!((largest(m, 512) - want).abs() <= 4.0 * f64::EPSILON * want);
        assert_eq!(largest(f64::INFINITY, 1), f64::INFINITY);
    }

    /// δ_L's second moment per loss, by the loss's gradient: sum → 1; sum of squares → 2·out,
    /// 4q; mean over B·k = 8 → 1/64; mse to 3 over 8 → (2/8)²·(q + 9).
    #[test]
    fn the_output_delta_follows_the_loss() {
        let q = 2.0;
        assert_eq!(output_delta_moment(&Loss::Sum, q, 4, 2), Some(1.0));
        assert_eq!(output_delta_moment(&Loss::SumSquares, q, 4, 2), Some(8.0));
        assert_eq!(output_delta_moment(&Loss::Mean, q, 4, 2), Some(1.0 / 64.0));
        assert_eq!(
            output_delta_moment(&Loss::Mse { target: 3.0 }, q, 4, 2),
            Some(0.0625 * 11.0)
        );
        assert_eq!(output_delta_moment(&Loss::CrossEntropy, q, 4, 2), None);
    }
}
