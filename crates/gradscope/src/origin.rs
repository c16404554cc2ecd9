//! Where the first non-finite value was born: the checks, in the order the computation runs
//! (the kinds and their meaning: `gradscope_report::origin`).

use gradscope_model::{HostTensor, MlpWeights};
use gradscope_report::names::{self, Param};
pub use gradscope_report::{Cause, Origin, OriginKind, Rows};

use crate::config::{Loss, Precision};
use crate::run::{CaseOutcome, Outcome};

/// How many of `values` (finite in f32) are ±inf once rounded to `precision`: past its largest
/// finite value by half a unit or more (f16: |v| ≥ 65520). None in f32 or f64.
pub fn overflow_in(values: &[f32], precision: Precision) -> usize {
    use crate::range::round_to;
    values
        .iter()
        .filter(|&&v| v.is_finite() && round_to(precision, f64::from(v)).is_infinite())
        .count()
}

/// What made the non-finite values of a tensor computed from finite operands: an inf is an
/// overflow (a NaN beside it followed from it, ∞ − ∞ in the same sum); NaNs alone are invalid
/// operations (0·∞, ∞ − ∞, 0/0 inside the operation).
pub fn cause_of(t: &HostTensor) -> Cause {
    if t.has_inf() {
        Cause::Overflow
    } else {
        Cause::Invalid
    }
}

/// What made a non-finite `loss` value of `kind` from a finite output. The naive
/// cross-entropy takes log p of a softmax p ∈ [0, 1] of finite values (itself finite): its only
/// non-finite value is log(0) = −inf, a division by zero, and a NaN beside it is the 0·(−inf)
/// of a row's other classes that followed. Any other loss: an inf overflowed, a NaN alone is
/// invalid.
pub fn loss_cause(kind: Loss, loss: f32) -> Cause {
    match kind {
        Loss::CrossEntropyNaive => Cause::DivideByZero,
        _ if loss.is_nan() => Cause::Invalid,
        _ => Cause::Overflow,
    }
}

/// How many of `values` are NaN or ±inf.
pub fn nonfinite(values: &[f32]) -> usize {
    values.iter().filter(|v| !v.is_finite()).count()
}

/// How many rows of `t` (`[batch, ...]`) hold a non-finite value (in f64 for an f64 tensor).
pub fn nonfinite_rows(t: &HostTensor) -> Rows {
    Rows {
        affected: t.finite_rows().iter().filter(|&&finite| !finite).count(),
        of: t.shape.first().copied().unwrap_or(1).max(1),
    }
}

/// How many rows of `t` (`[batch, ...]`) hold a value `count` counts.
fn rows_where(t: &HostTensor, count: impl Fn(&[f32]) -> usize) -> Rows {
    let of = t.shape.first().copied().unwrap_or(1).max(1);
    let width = (t.data.len() / of).max(1);
    Rows {
        affected: t.data.chunks(width).filter(|row| count(row) > 0).count(),
        of,
    }
}

/// The loss of each row of a case's output on its own (to count the rows a non-finite loss
/// comes from).
pub type RowLosses<'a> = &'a dyn Fn(&CaseOutcome) -> Vec<f32>;

/// The first failing tensor of one case, in computation order (see the module docs).
/// The origin in one case of a pass over `weights`, if anything in it is non-finite.
///
/// The input and the weights are drawn (or read) in f32 and rounded once to `precision`, the
/// pass's: a value finite in f32 that rounds to ±inf there is non-finite in the pass from the
/// start, and is named as the input's or the weights', with the cause `overflow` (the
/// rounding overflowed), not as the first z_l that holds it.
pub fn origin_of_case(
    weights: &MlpWeights,
    case: &CaseOutcome,
    (loss, row_losses): (Loss, RowLosses),
    precision: Precision,
) -> Option<Origin> {
    let at = |kind, layer, tensor: String, count, rows| Origin {
        kind,
        step: None,
        case: case.name.clone(),
        layer,
        tensor,
        count,
        rows,
        cause: None,
    };
    let caused = |o: Origin, cause: Cause| Origin {
        cause: Some(cause),
        ..o
    };
    let n = case.input.count_nonfinite();
    if n > 0 {
        let rows = Some(nonfinite_rows(&case.input));
        return Some(at(OriginKind::Input, None, "input".into(), n, rows));
    }
    let n = overflow_in(&case.input.data, precision);
    if n > 0 {
        let rows = rows_where(&case.input, |r| overflow_in(r, precision));
        let o = at(OriginKind::Input, None, "input".into(), n, Some(rows));
        return Some(caused(o, Cause::Overflow));
    }
    if let Some((l, tensor, n)) = nonfinite_weight(weights) {
        return Some(at(OriginKind::Weights, Some(l), tensor, n, None));
    }
    if let Some((l, tensor, n)) = overflowing_weight(weights, precision) {
        let o = at(OriginKind::Weights, Some(l), tensor, n, None);
        return Some(caused(o, Cause::Overflow));
    }
    // z_l, then a_l = φ(z_l): an activation can overflow where its input did not (leaky_relu
    // with slope 2 at z ≤ −32768 in f16).
    let hidden = case.layer_outputs.len().saturating_sub(1);
    for (l, z) in case.pre_activations.iter().enumerate() {
        let a = case.layer_outputs.get(l).filter(|_| l < hidden);
        for (t, name) in [(Some(z), "z"), (a, "a")] {
            let Some(t) = t else { continue };
            let n = t.count_nonfinite();
            if n > 0 {
                let rows = Some(nonfinite_rows(t));
                let tensor = names::pass_tensor(name, l);
                let o = at(OriginKind::Forward, Some(l), tensor, n, rows);
                return Some(caused(o, cause_of(t)));
            }
        }
    }
    if !case.loss_f64.is_finite() {
        let losses = row_losses(case);
        let rows = Rows {
            affected: nonfinite(&losses),
            of: losses.len(),
        };
        let o = at(OriginKind::Loss, None, "loss".into(), 1, Some(rows));
        return Some(caused(o, loss_cause(loss, case.loss)));
    }
    for (l, d) in case.deltas.iter().enumerate().rev() {
        let n = d.count_nonfinite();
        if n > 0 {
            let rows = Some(nonfinite_rows(d));
            let tensor = names::delta(l);
            let o = at(OriginKind::Backward, Some(l), tensor, n, rows);
            return Some(caused(o, cause_of(d)));
        }
    }
    // Every δ finite, a gradient not (∂L/∂W = aᵀδ overflowing): the last layer first, as
    // backprop computes them.
    case.grads.iter().rev().find_map(|g| {
        let n = g.tensor.count_nonfinite();
        let layer = gradscope_model::layer_of(&g.name);
        (n > 0).then(|| {
            let tensor = format!("grad.{}", g.name);
            let o = at(OriginKind::Backward, layer, tensor, n, None);
            caused(o, cause_of(&g.tensor))
        })
    })
}

/// Where the first non-finite value of `outcome` was born: the first case (in file order) with
/// any, and in it the first tensor in computation order; `None` when every value is finite.
pub fn origin(
    outcome: &Outcome,
    loss: Loss,
    row_losses: RowLosses,
    precision: Precision,
) -> Option<Origin> {
    outcome
        .cases
        .iter()
        .find_map(|c| origin_of_case(&outcome.weights, c, (loss, row_losses), precision))
}

/// The first parameter (in layer order, weight before bias) holding a value finite in f32 that
/// rounds to ±inf in `precision`: its layer, name and count.
pub fn overflowing_weight(
    weights: &MlpWeights,
    precision: Precision,
) -> Option<(usize, String, usize)> {
    first_weight(weights, |v| overflow_in(v, precision))
}

/// The first parameter (in layer order, weight before bias) holding a non-finite value: its
/// layer, name and count.
pub fn nonfinite_weight(weights: &MlpWeights) -> Option<(usize, String, usize)> {
    first_weight(weights, nonfinite)
}

/// The first parameter (in layer order, weight before bias) holding values `count` counts: its
/// layer, name and count.
fn first_weight(
    weights: &MlpWeights,
    count: impl Fn(&[f32]) -> usize,
) -> Option<(usize, String, usize)> {
    weights.layers.iter().enumerate().find_map(|(l, layer)| {
        [
            (Param::Weight, Some(&layer.weight)),
            (Param::Bias, layer.bias.as_ref()),
        ]
        .into_iter()
        .find_map(|(which, tensor)| {
            let n = tensor.map_or(0, |t| count(&t.data));
            (n > 0).then(|| (l, names::param(l, which), n))
        })
    })
}
