//! Where the first non-finite value was born: the checks, in the order the computation runs
//! (the kinds and their meaning: `gradscope_report::origin`).

use gradscope_model::MlpWeights;
pub use gradscope_report::{Origin, OriginKind};

use crate::run::{CaseOutcome, Outcome};

pub fn nonfinite(values: &[f32]) -> usize {
    values.iter().filter(|v| !v.is_finite()).count()
}

/// The first failing tensor of one case, in computation order (see the module docs).
/// The origin in one case of a pass over `weights`, if anything in it is non-finite.
pub fn origin_of_case(weights: &MlpWeights, case: &CaseOutcome) -> Option<Origin> {
    let at = |kind, layer, tensor: String, count| Origin {
        kind,
        step: None,
        case: case.name.clone(),
        layer,
        tensor,
        count,
    };
    let n = nonfinite(&case.input.data);
    if n > 0 {
        return Some(at(OriginKind::Input, None, "input".into(), n));
    }
    if let Some((l, tensor, n)) = nonfinite_weight(weights) {
        return Some(at(OriginKind::Weights, Some(l), tensor, n));
    }
    for (l, z) in case.pre_activations.iter().enumerate() {
        let n = nonfinite(&z.data);
        if n > 0 {
            return Some(at(OriginKind::Forward, Some(l), format!("z.layers.{l}"), n));
        }
    }
    if !case.loss.is_finite() {
        return Some(at(OriginKind::Loss, None, "loss".into(), 1));
    }
    for (l, d) in case.deltas.iter().enumerate().rev() {
        let n = nonfinite(&d.data);
        if n > 0 {
            return Some(at(
                OriginKind::Backward,
                Some(l),
                format!("delta.layers.{l}"),
                n,
            ));
        }
    }
    // Every δ finite, a gradient not (∂L/∂W = aᵀδ overflowing): the last layer first, as
    // backprop computes them.
    case.grads.iter().rev().find_map(|g| {
        let n = nonfinite(&g.tensor.data);
        let layer = g
            .name
            .strip_prefix("layers.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse().ok());
        (n > 0).then(|| at(OriginKind::Backward, layer, format!("grad.{}", g.name), n))
    })
}

/// Where the first non-finite value of `outcome` was born: the first case (in file order) with
/// any, and in it the first tensor in computation order; `None` when every value is finite.
pub fn origin(outcome: &Outcome) -> Option<Origin> {
    outcome
        .cases
        .iter()
        .find_map(|c| origin_of_case(&outcome.weights, c))
}

/// The first parameter (in layer order, weight before bias) holding a non-finite value: its
/// layer, name and count.
pub fn nonfinite_weight(weights: &MlpWeights) -> Option<(usize, String, usize)> {
    weights.layers.iter().enumerate().find_map(|(l, layer)| {
        [
            ("weight", Some(&layer.weight)),
            ("bias", layer.bias.as_ref()),
        ]
        .into_iter()
        .find_map(|(what, tensor)| {
            let n = tensor.map_or(0, |t| nonfinite(&t.data));
            (n > 0).then(|| (l, format!("layers.{l}.{what}"), n))
        })
    })
}
