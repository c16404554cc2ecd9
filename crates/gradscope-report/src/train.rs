//! A training run's records: one `StepRecord` per line of `steps.jsonl`, and the summary
//! `TrainReport` (`"kind": "train"`). Losses are f32 (what the pass computed); the norms are
//! f64, accumulated in f64 over the step's f32 tensors (see [`crate::floats`]).

use serde::{Deserialize, Serialize};

use crate::floats::{
    de_float, de_float64, de_floats64, de_opt_float, de_opt_float64, de_opt_floats, float, float64,
    floats64, opt_float, opt_float64, opt_floats,
};
use crate::origin::Origin;

/// What one layer did in one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStep {
    /// max |z_l| (NaN or inf when z_l holds such values).
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub z_max_abs: f64,
    /// ‖z_l‖₂.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub z_l2: f64,
    /// ‖δ_l‖₂.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_l2: f64,
    /// ‖∂L/∂W_l‖₂ (the kernel's gradient, before clipping).
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub grad_l2: f64,
    /// ‖W_l‖₂ before the step.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub weight_l2: f64,
    /// ‖ΔW_l‖₂ / ‖W_l‖₂: the relative size of the step's update of the kernel; `null` at a
    /// step that made no update (the failing step of a run whose pass went non-finite).
    #[serde(serialize_with = "opt_float64", deserialize_with = "de_opt_float64")]
    pub update_ratio: Option<f64>,
    /// Fraction of units whose activation is 0 for every example of the batch (hidden layers).
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub dead_fraction: f64,
    /// Non-finite values in z_l, δ_l and the layer's gradients together: the sum of the three
    /// counts below.
    pub nonfinite: usize,
    /// Non-finite values in z_l (absent from version-1 records, read as 0).
    #[serde(default)]
    pub z_nonfinite: usize,
    /// Non-finite values in δ_l (absent from version-1 records, read as 0).
    #[serde(default)]
    pub delta_nonfinite: usize,
    /// Non-finite values in the layer's parameter gradients, kernel and bias (absent from
    /// version-1 records, read as 0).
    #[serde(default)]
    pub grad_nonfinite: usize,
}

/// One line of `steps.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step, from 0.
    pub step: usize,
    /// The loss of the batch before the update.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub loss: f32,
    /// The global gradient norm over all parameters, before clipping.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub grad_norm: f64,
    /// The same after clipping.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub grad_norm_clipped: f64,
    /// Per layer, input first.
    pub layers: Vec<LayerStep>,
    /// Classification: the fraction of the batch's examples whose largest output is their
    /// label, before the update (absent for other losses).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float",
        deserialize_with = "de_opt_float"
    )]
    pub accuracy: Option<f32>,
    /// With loss scaling: the scale this step's loss gradient was multiplied by (absent
    /// without scaling).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float",
        deserialize_with = "de_opt_float"
    )]
    pub loss_scale: Option<f32>,
    /// With a dynamic loss scale: whether the step was skipped (no update) because its
    /// gradients held inf or NaN (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
}

/// A layer that stopped learning during training: from `first_step` on, every unit of it was
/// 0 for the whole batch (dead), or its kernel's gradient was exactly 0 everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEvent {
    /// The layer.
    pub layer: usize,
    /// The first step at which it was so.
    pub first_step: usize,
    /// Whether it still was at the last step run.
    pub at_end: bool,
}

/// The growth of one layer before a failure: max |z_l| and ‖δ_l‖ over the last steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// The layer.
    pub layer: usize,
    /// The steps covered (at most the last 10 before the failing one, and it).
    pub steps: Vec<usize>,
    /// max |z_l| at each.
    #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
    pub z_max_abs: Vec<f64>,
    /// ‖δ_l‖₂ at each.
    #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
    pub delta_l2: Vec<f64>,
    /// The geometric mean factor per step of max |z_l| over the finite values covered.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub z_factor_per_step: f64,
}

/// A training run's summary: what `report.json` holds and the text report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "train")]
pub struct TrainReport {
    /// The schema's version ([`crate::SCHEMA_VERSION`]; 1 when absent).
    #[serde(default = "crate::version_1")]
    pub schema_version: u32,
    /// The experiment's name.
    pub experiment: String,
    /// Its description.
    pub description: String,
    /// The backend.
    pub backend: String,
    /// The floating-point type the pass computes in (`f32` in older records); with
    /// `master_precision`, the weights are kept in that.
    #[serde(default)]
    pub precision: crate::Precision,
    /// The seed.
    pub seed: u64,
    /// The loss.
    pub loss: String,
    /// The optimiser, as in the config.
    pub optimizer: String,
    /// The learning rate.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub learning_rate: f64,
    /// The clipping, as in the config.
    pub clip: String,
    /// The batch size.
    pub batch: usize,
    /// Steps asked for.
    pub steps: usize,
    /// Steps run (fewer when a step went non-finite).
    pub steps_run: usize,
    /// The first step's loss.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub first_loss: f32,
    /// The last step's loss.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub last_loss: f32,
    /// Whether every step stayed finite: false when a step went non-finite, including a step
    /// a dynamic loss scale skipped (see `loss_scale`).
    pub finite: bool,
    /// Where the first non-finite value was born.
    pub origin: Option<Origin>,
    /// The growth of the origin's layer before the failure.
    pub growth: Option<Growth>,
    /// Classification: the accuracy of the first and of the last step (see
    /// [`StepRecord::accuracy`]); absent for other losses.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_floats",
        deserialize_with = "de_opt_floats"
    )]
    pub accuracy: Option<[f32; 2]>,
    /// Hidden layers that died (every unit 0 for the whole batch), each with the first step
    /// it was so (absent from older records, read as none).
    #[serde(default)]
    pub dead_layers: Vec<LayerEvent>,
    /// Layers whose kernel gradient was exactly 0 everywhere, each with the first step it was
    /// so: finite, but learning nothing (absent from older records, read as none).
    #[serde(default)]
    pub zero_gradients: Vec<LayerEvent>,
    /// Mixed precision: the type the weights, the optimiser's state and the update are kept
    /// in while the pass computes in `precision` (absent when they are one type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_precision: Option<crate::Precision>,
    /// The loss scale's course (absent without loss scaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<Box<LossScaling>>,
}

/// What a run's loss scale did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaling {
    /// `dynamic` or `static`, with its parameters, as in the config.
    pub kind: String,
    /// The scale of the first step.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub init: f32,
    /// The scale after the last step.
    #[serde(
        rename = "final",
        serialize_with = "float",
        deserialize_with = "de_float"
    )]
    pub last: f32,
    /// The smallest and the largest scale any step used.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub min: f32,
    /// See `min`.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub max: f32,
    /// Steps skipped because their gradients held inf or NaN.
    pub skipped_steps: usize,
    /// Where the first skipped step's first non-finite value was born (`null` when none was
    /// skipped).
    pub first_skip: Option<Origin>,
}

impl TrainReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
