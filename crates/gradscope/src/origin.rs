//! Where the first non-finite value was born. Tools people use report the operation where the
//! symptom shows (TensorFlow's "ReluGrad input is not finite", raised on a ReLU's input during
//! backprop, when the forward pass had already gone wrong). gradscope checks, in the order the
//! computation runs, and names the first tensor that fails:
//!
//! | kind | meaning |
//! |---|---|
//! | `input` | the batch holds NaN or ±inf |
//! | `weights` | a parameter was non-finite before the pass (from a weights file, say) |
//! | `forward` | the first layer whose pre-activation z_l holds a non-finite value |
//! | `loss` | every z_l finite, the loss not |
//! | `backward` | the first δ_l, counting back from the output, or else the first gradient, that is non-finite while everything before it was finite |
//!
//! Training runs add `update` (gradients finite, the updated weights not) and a step.

use gradscope_model::MlpWeights;
use serde::Serialize;

use crate::run::{CaseOutcome, Outcome};

/// The kind of place a non-finite value was born, in the order the computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    /// The input batch (or targets).
    Input,
    /// A parameter, before the pass.
    Weights,
    /// A layer's pre-activation z_l.
    Forward,
    /// The loss, every z_l finite.
    Loss,
    /// A δ_l or a parameter gradient, everything before it finite.
    Backward,
    /// The weights an optimiser step produced, every gradient finite (training runs).
    Update,
}

impl OriginKind {
    /// The kind's name, as JSON writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Weights => "weights",
            Self::Forward => "forward",
            Self::Loss => "loss",
            Self::Backward => "backward",
            Self::Update => "update",
        }
    }

    /// What the kind means, for people.
    pub fn phrase(&self) -> &'static str {
        match self {
            Self::Input => "in the input",
            Self::Weights => "in the weights, before the pass",
            Self::Forward => "in the forward pass",
            Self::Loss => "in the loss",
            Self::Backward => "in the backward pass",
            Self::Update => "in the update",
        }
    }
}

/// Where the first non-finite value was born. JSON: `{kind, step, case, layer, tensor, count}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// Which stage of the computation.
    pub kind: OriginKind,
    /// The training step (`null` in a plain run).
    pub step: Option<u64>,
    /// The input case.
    pub case: String,
    /// The layer, from 0 (`null` for the input and the loss).
    pub layer: Option<usize>,
    /// The tensor: `input`, `layers.1.bias`, `z.layers.3`, `loss`, `delta.layers.0`,
    /// `grad.layers.2.weight`.
    pub tensor: String,
    /// How many of its values are NaN or ±inf.
    pub count: usize,
}

impl Origin {
    /// Where, for people: `in the forward pass: z.layers.3 of case x (12 values)`, `in the
    /// loss of case x`, `in the weights, before the pass: layers.1.bias (1 value)`.
    pub fn describe(&self) -> String {
        let step = self
            .step
            .map(|s| format!(" at step {s}"))
            .unwrap_or_default();
        let plural = if self.count == 1 { "" } else { "s" };
        let count = format!("({} value{plural})", self.count);
        let (kind, tensor) = (self.kind.phrase(), &self.tensor);
        // A training run has one batch per step: no case to name.
        let case = match self.step {
            Some(_) => String::new(),
            None => format!(" of case {}", self.case),
        };
        match self.kind {
            OriginKind::Input if self.step.is_some() => {
                format!("in the {tensor} of the batch{step} {count}")
            }
            OriginKind::Input => format!("in the input{case}{step} {count}"),
            OriginKind::Loss => format!("in the loss{case}{step}"),
            OriginKind::Weights | OriginKind::Update => format!("{kind}{step}: {tensor} {count}"),
            OriginKind::Forward | OriginKind::Backward => {
                format!("{kind}{step}: {tensor}{case} {count}")
            }
        }
    }
}

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
