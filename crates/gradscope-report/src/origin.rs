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

use serde::{Deserialize, Serialize};

/// The kind of place a non-finite value was born, in the order the computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A dynamic loss scale that collapsed: below 2⁻²⁴, or `growth_interval` steps in a row
    /// skipped for non-finite gradients (training runs).
    #[serde(rename = "loss_scale")]
    LossScale,
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
            Self::LossScale => "loss_scale",
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
            Self::LossScale => "in the loss scale",
        }
    }
}

/// How many rows (examples) of a batch-shaped tensor hold a non-finite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rows {
    /// Rows holding one or more; for the loss, rows whose own loss is non-finite (0 where
    /// each row's loss is finite and only their reduction overflowed).
    pub affected: usize,
    /// Rows in the batch.
    pub of: usize,
}

/// Where the first non-finite value was born. JSON: `{kind, step, case, layer, tensor, count,
/// rows}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// For the input, targets, z_l, the loss and δ_l: how many of the batch's rows hold them
    /// (`null` for a parameter or a gradient, whose rows are not examples, and in older
    /// records).
    #[serde(default)]
    pub rows: Option<Rows>,
    /// What made it, in IEEE 754's words, for the kinds that compute (forward, loss,
    /// backward, update). For the input and the weights: `overflow` where they were finite in
    /// f32 (as drawn or read) and rounded to ±inf in the run's precision (f16: |v| ≥ 65520),
    /// `null` where they arrived non-finite, and in older records.
    #[serde(default)]
    pub cause: Option<crate::Cause>,
}

impl Origin {
    /// Where, for people: `in the forward pass: z.layers.3 of case x (12 values)`, `in the
    /// loss of case x`, `in the weights, before the pass: layers.1.bias (1 value)`.
    pub fn describe(&self) -> String {
        match self.cause {
            // The input and the weights compute nothing: their overflow is their rounding.
            Some(crate::Cause::Overflow)
                if matches!(self.kind, OriginKind::Input | OriginKind::Weights) =>
            {
                format!(
                    "{}: overflow (finite in f32, ±inf once rounded to the run's precision)",
                    self.place()
                )
            }
            Some(cause) => format!("{}: {}", self.place(), cause.name()),
            None => self.place(),
        }
    }

    /// [`Self::describe`] without the cause.
    fn place(&self) -> String {
        let step = self
            .step
            .map(|s| format!(" at step {s}"))
            .unwrap_or_default();
        let plural = if self.count == 1 { "" } else { "s" };
        let count = match self.rows.filter(|r| r.of > 1) {
            Some(r) => format!(
                "({} value{plural} in {} of {} rows)",
                self.count, r.affected, r.of
            ),
            None => format!("({} value{plural})", self.count),
        };
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
            OriginKind::Loss => match self.rows.filter(|r| r.of > 1) {
                Some(Rows { affected: 0, of }) => format!(
                    "in the loss{case}{step} (each of the {of} rows' own loss is finite: their \
                     reduction overflowed)"
                ),
                Some(r) => format!(
                    "in the loss{case}{step} ({} of {} rows' own loss non-finite)",
                    r.affected, r.of
                ),
                None => format!("in the loss{case}{step}"),
            },
            OriginKind::Weights | OriginKind::Update => format!("{kind}{step}: {tensor} {count}"),
            OriginKind::LossScale => {
                let plural = if self.count == 1 { "" } else { "s" };
                format!(
                    "{kind}{step}: it collapsed after {} skipped step{plural} in a row",
                    self.count
                )
            }
            OriginKind::Forward | OriginKind::Backward => {
                format!("{kind}{step}: {tensor}{case} {count}")
            }
        }
    }
}
