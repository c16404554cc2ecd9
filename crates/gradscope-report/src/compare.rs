//! A backend comparison's report (`"kind": "compare"`): per case, tensor and compared backend,
//! the largest relative difference from the reference and every place where one is finite and
//! the other is not (the measure: gradscope's `compare` module).

use serde::{Deserialize, Serialize};

use crate::floats::{
    de_float, de_float64, de_opt_float, de_opt_float64, float, float64, opt_float, opt_float64,
};

/// Where a non-finite class mismatch was, at most this many per tensor are listed (all are
/// counted).
pub const PLACES_LISTED: usize = 20;

/// One place where the reference and the other backend differ in finiteness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The element's index, one per dimension.
    pub index: Vec<usize>,
    /// The reference backend's value (an f64 run's rounded to f32).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub reference: f32,
    /// The other backend's value (an f64 run's rounded to f32).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub value: f32,
    /// The reference value itself where `reference` is not it (an f64 run's value that f32
    /// does not hold exactly, or at all: past f32's range it would read ±inf or 0); absent
    /// otherwise. See [`wide`].
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub reference_f64: Option<f64>,
    /// The other value itself where `value` is not it, as `reference_f64`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub value_f64: Option<f64>,
}

/// `v` where its f32 rounding is not `v` (NaN is NaN in f32): the f64 a record keeps beside
/// the f32 it shows, so that no f64 value is shown as another number.
pub fn wide(v: f64) -> Option<f64> {
    (!v.is_nan() && f64::from(v as f32) != v).then_some(v)
}

impl Place {
    /// The reference value, exactly.
    pub fn reference_exact(&self) -> f64 {
        self.reference_f64.unwrap_or(f64::from(self.reference))
    }

    /// The other value, exactly.
    pub fn value_exact(&self) -> f64 {
        self.value_f64.unwrap_or(f64::from(self.value))
    }
}

/// How one backend's tensor differs from the reference backend's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorDiff {
    /// Input case.
    pub case: String,
    /// `loss`, `output`, a parameter's gradient (`layers.0.weight`) or `delta.layers.0`.
    pub tensor: String,
    /// The backend compared with the reference.
    pub backend: String,
    /// Largest relative difference over the elements finite on both (0 when there is none).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub max_rel_diff: f32,
    /// Where that largest difference is (`null` when every element agrees exactly).
    pub at: Option<Vec<usize>>,
    /// The reference value there (an f64 run's rounded to f32).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub reference: f32,
    /// The other backend's value there (an f64 run's rounded to f32).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub value: f32,
    /// The reference value there itself, where `reference` is not it ([`wide`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub reference_f64: Option<f64>,
    /// The other value there itself, where `value` is not it ([`wide`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub value_f64: Option<f64>,
    /// Elements finite on one backend and not on the other (or NaN on one, ±inf on the other).
    pub nonfinite_mismatches: usize,
    /// The first [`PLACES_LISTED`] of those, in index order.
    pub places: Vec<Place>,
    /// Elements non-finite on both backends alike (the same NaN or the same ±inf): agreement,
    /// but not a number either.
    pub nonfinite_both: usize,
    /// Within the tolerance (with precisions compared: within `bound`) and no non-finite
    /// mismatch.
    pub agree: bool,
    /// Precisions compared (`compare --precision`): ‖value − reference‖₂ / ‖reference‖₂ over
    /// the elements finite in both (absent otherwise).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float",
        deserialize_with = "de_opt_float"
    )]
    pub normwise: Option<f32>,
    /// Precisions compared: the normwise error allowed, from plain evaluations rounded to the
    /// two precisions (absent otherwise).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_float",
        deserialize_with = "de_opt_float"
    )]
    pub bound: Option<f32>,
    /// Precisions compared against an f64 reference: values zero or subnormal in this run's
    /// precision (and finite) where the f64 run has a normal nonzero value (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underflow: Option<usize>,
}

/// A backend taking part, with the wgpu adapter it ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `ndarray`, `flex` or `wgpu`.
    pub name: String,
    /// The wgpu adapter (`null` on CPU backends).
    pub adapter: Option<String>,
}

/// The comparison of one experiment across backends. JSON: `"kind": "compare"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "compare")]
pub struct CompareReport {
    /// The schema's version ([`crate::SCHEMA_VERSION`]; 1 when absent).
    #[serde(default = "crate::version_1")]
    pub schema_version: u32,
    /// Experiment name.
    pub experiment: String,
    /// Its seed.
    pub seed: u64,
    /// The backends, the reference first.
    pub backends: Vec<BackendInfo>,
    /// The largest relative difference allowed (`NaN` where precisions are compared: each
    /// tensor's `bound` applies).
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub tolerance: f64,
    /// Per case, tensor and non-reference backend.
    pub tensors: Vec<TensorDiff>,
    /// The largest relative difference of all.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub max_rel_diff: f32,
    /// Non-finite mismatches in all.
    pub nonfinite_mismatches: usize,
    /// Values non-finite on every backend alike, in all.
    pub nonfinite_both: usize,
    /// Every tensor agrees.
    pub agree: bool,
    /// What was compared: the backends (`gradscope compare`), or on one backend its two
    /// backward passes (`--check-backward`: the "backends" are then `B autodiff` and `B
    /// manual`). Absent from older records, read as the backends.
    #[serde(default)]
    pub compared: Compared,
}

/// What a comparison held against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compared {
    /// Backends, from the same weights and inputs.
    #[default]
    Backends,
    /// Burn's autodiff and the backward pass written out, on one backend.
    BackwardPasses,
    /// Backends in precisions (`compare --precision`), each held to its precision's bound.
    Precisions,
}

/// Whether a reported largest difference is past the tolerance.
pub fn over_tolerance(max_rel_diff: f32, tolerance: f64) -> bool {
    f64::from(max_rel_diff) > tolerance
}
