//! What mean-field theory predicts for one input case, as the reports hold it (computed by
//! gradscope's `theory` module). Its values are f64 on purpose: they are computed in f64 from
//! the config, not measured from f32 tensors (see [`crate::floats`]).

use serde::{Deserialize, Serialize};

use crate::floats::{de_float64, de_floats64, float64, floats64};

/// Where a network sits: χ below, at or above 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The geometric mean of χ below 1 − [`CRITICAL_BAND`]: signals vanish with depth.
    Ordered,
    /// Within [`CRITICAL_BAND`] of 1.
    Critical,
    /// Above 1 + [`CRITICAL_BAND`]: signals grow with depth.
    Chaotic,
}

impl Phase {
    /// The phase's name, as JSON writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Critical => "critical",
            Self::Chaotic => "chaotic",
        }
    }
}

/// How far from 1 the geometric mean of χ may be for a network to count as critical: 5 %.
pub const CRITICAL_BAND: f64 = 0.05;

/// What theory predicts for one input case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theory {
    /// q_l, the variance of each layer's pre-activations.
    #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
    pub q: Vec<f64>,
    /// χ_l for each layer but the first (the gain from layer l back to l − 1); χ_0 is not
    /// defined and not listed, so `chi[i]` is χ_{i+1}.
    #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
    pub chi: Vec<f64>,
    /// The predicted ‖δ_first‖/‖δ_last‖ = √(Π χ_l).
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_ratio: f64,
    /// The phase, from the geometric mean of χ.
    pub phase: Phase,
}
