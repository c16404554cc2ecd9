//! gradscope's record schema: the typed reports a run, a training run, a sweep and a backend
//! comparison produce, their `meta.json`, and the one float policy their JSON follows
//! ([`floats`]). The field names here are the JSON interface, written in this one place: the
//! commands fill these types, the store writes them, and the renderers (`gradscope-render`)
//! and `gradscope report` read them back. No Burn: this crate builds and tests in seconds.
//!
//! Every top-level record carries `schema_version` ([`SCHEMA_VERSION`]). Records written
//! before the field existed (version 1, gradscope at commit de88a6a) read as version 1.

pub mod compare;
pub mod floats;
pub mod meta;
pub mod names;
pub mod origin;
pub mod precision;
pub mod run;
pub mod settings;
pub mod sweep;
pub mod theory;
pub mod train;

pub use compare::{BackendInfo, CompareReport, PLACES_LISTED, Place, TensorDiff};
pub use meta::{FileDigest, MergedPart, Meta};
pub use origin::{Origin, OriginKind, Rows};
pub use precision::{Cause, Precision, Range};
pub use run::{CaseReport, ExperimentReport, Flow, InputInfo, LayerStats, ParamStats, Thresholds};
pub use settings::Settings;
pub use sweep::{
    LeftRange, PointSummary, PointTheory, Spread, SweepSummary, TrainingSpread, TrialRecord,
};
pub use theory::{CRITICAL_BAND, DepthScales, LayerRangePrediction, LeavesRange, Phase, Theory};
pub use train::{Growth, LayerEvent, LayerStep, LossScaling, StepRecord, TrainReport};

/// The version of the schema this crate writes. 2: `schema_version` itself, non-finite f64s
/// as strings (version 1 wrote `null` in training reports and step logs), losses as f32.
pub const SCHEMA_VERSION: u32 = 2;

/// The version a record without `schema_version` was written in.
pub fn version_1() -> u32 {
    1
}

/// The version this crate writes, for the field's serde default on new values.
pub fn current_version() -> u32 {
    SCHEMA_VERSION
}

/// Any record's `report.json`, told apart by its `kind`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Report {
    /// `"kind": "run"`.
    Run(ExperimentReport),
    /// `"kind": "train"`.
    Train(TrainReport),
    /// `"kind": "sweep"`.
    Sweep(SweepSummary),
    /// `"kind": "compare"`.
    Compare(CompareReport),
}

impl Report {
    /// Read a `report.json`'s text; the error says what did not fit the schema.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        // Dispatch on `kind` first, so that a broken record of a known kind reports its own
        // error (an untagged enum would only say that no variant matched).
        #[derive(serde::Deserialize)]
        struct Kind {
            kind: String,
        }
        let kind: Kind = serde_json::from_str(text)?;
        match kind.kind.as_str() {
            "run" => serde_json::from_str(text).map(Self::Run),
            "train" => serde_json::from_str(text).map(Self::Train),
            "sweep" => serde_json::from_str(text).map(Self::Sweep),
            "compare" => serde_json::from_str(text).map(Self::Compare),
            other => Err(serde::de::Error::custom(format!(
                "unknown record kind `{other}` (expected run, train, sweep or compare)"
            ))),
        }
    }
}
