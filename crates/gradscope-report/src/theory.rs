//! What mean-field theory predicts for one input case, as the reports hold it (computed by
//! gradscope's `theory` module). Its values are f64 on purpose: they are computed in f64 from
//! the config, not measured from f32 tensors (see [`crate::floats`]).

use serde::{Deserialize, Serialize};

use crate::floats::{
    de_float64, de_floats64, de_opt_float64, de_opt_floats64, float64, floats64, opt_float64,
    opt_floats64,
};

/// A version-1 record's theory did not say whether it applied.
fn v1_caveats() -> Vec<String> {
    vec!["recorded by schema version 1, which did not judge whether the prediction applies".into()]
}

/// The caveat of a sweep point's theory recorded before sweeps judged whether it applies.
pub(crate) fn unjudged() -> Vec<String> {
    vec!["recorded before sweeps judged whether the prediction applies".into()]
}

/// Where the hidden layers' map sits: χ₁ at its fixed point below, at or above 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// χ* below 1 − [`CRITICAL_BAND`]: signals vanish with depth.
    Ordered,
    /// χ* within [`CRITICAL_BAND`] of 1.
    Critical,
    /// χ* above 1 + [`CRITICAL_BAND`]: signals grow with depth (chaos).
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

    /// The phase of a map whose χ₁ at the fixed point is `chi_star`; `None` if it is NaN.
    pub fn of(chi_star: f64) -> Option<Self> {
        if chi_star.is_nan() {
            None
        } else if chi_star < 1.0 - CRITICAL_BAND {
            Some(Self::Ordered)
        } else if chi_star > 1.0 + CRITICAL_BAND {
            Some(Self::Chaotic)
        } else {
            Some(Self::Critical)
        }
    }
}

/// How far from 1 χ* may be for the map to count as critical: 5 % (a gradient then changes
/// by at most a factor e over 2/ln(1.05) ≈ 41 layers).
pub const CRITICAL_BAND: f64 = 0.05;

/// Schoenholz et al.'s depth scales, in layers: q_l approaches q* as e^{−l/ξ_q}, the
/// correlation of two inputs approaches its fixed point c* as e^{−l/ξ_c}. `inf` at
/// criticality (where they diverge), `null` where the map has no finite fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DepthScales {
    /// ξ_q = −1/ln(χ* + σ_w²·E[φφ''](q*)) (Schoenholz et al. 2017, eq. 6).
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub xi_q: Option<f64>,
    /// ξ_c = −1/ln(σ_w²·E[φ'(u₁)φ'(u₂)]) at c* (eq. 9); −1/ln χ* in the ordered phase.
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub xi_c: Option<f64>,
}

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
    /// The predicted ‖δ_first‖/‖δ_last‖ = √(Π χ_l) at this depth, readout included.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_ratio: f64,
    /// The phase, from `chi_star` (null where it is).
    pub phase: Option<Phase>,
    /// The fixed point of the hidden layers' q map (`inf` where q grows without bound; null
    /// where the hidden layers do not share one map: see `caveats`).
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub q_star: Option<f64>,
    /// χ₁ of the hidden layers' map at `q_star`.
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub chi_star: Option<f64>,
    /// ξ_q and ξ_c of the hidden layers' map; null with `q_star`.
    #[serde(default)]
    pub depth_scales: Option<DepthScales>,
    /// The predicted gain per hidden layer of ‖δ‖, √χ*: the measured `hidden_rate` beside
    /// `delta_ratio` is (‖δ_1‖/‖δ_{L−1}‖)^{1/(L−2)}.
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub hidden_rate: Option<f64>,
    /// The predicted interquartile range [q1, q3] of ‖δ_first‖/‖δ_last‖ across seeds at the
    /// config's widths (relu, leaky_relu and identity, one example per batch); null where
    /// no result is known (`caveats` says why).
    #[serde(
        default,
        serialize_with = "opt_floats64",
        deserialize_with = "de_opt_floats64"
    )]
    pub ratio_quartiles: Option<[f64; 2]>,
    /// Whether the prediction describes this run at all: false for non-zero-mean weights or
    /// biases, and for a loss whose gradient depends on the output when there are 2+ outputs.
    /// (Records of schema version 1 did not judge it: read as false, with a caveat saying so.)
    #[serde(default)]
    pub applies: bool,
    /// Why it does not apply, and the limits of what it says, one sentence each.
    #[serde(default = "v1_caveats")]
    pub caveats: Vec<String>,
    /// The predicted magnitudes of each layer's z_l and δ_l entries, input side first (empty
    /// where no prediction is made: a label loss, and in older records).
    #[serde(default)]
    pub range: Vec<LayerRangePrediction>,
    /// The first tensor, in computation order (z_0 … z_L, then δ_L … δ_0), predicted to
    /// leave the run's precision: its largest entry past the largest finite value, or its
    /// typical entry below the smallest normal. `null` where none does (or no prediction).
    #[serde(default)]
    pub leaves_range: Option<LeavesRange>,
    /// In an f64 run, the first tensor (same order) whose predicted second moment is itself
    /// past f64's range (`above`: its entries past about 2⁵¹¹) or below its smallest normal:
    /// theory's f64 arithmetic cannot follow the pass from there, so it predicts nothing of it
    /// (and `leaves_range` is `null` unless that came first). Absent where it can follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_unknown_from: Option<LeavesRange>,
}

/// What theory predicts of one layer's entries: the typical one (the root mean square) and
/// the largest of the batch's (≈ √(2·m·ln(2N)) for N Gaussian entries of second moment m).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerRangePrediction {
    /// The layer, from 0.
    pub layer: usize,
    /// √q_l.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub z_rms: f64,
    /// √(2·q_l·ln(2N)), N = batch × width.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub z_max: f64,
    /// The root mean square of δ_l's entries.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_rms: f64,
    /// The largest of δ_l's entries, as for z.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_max: f64,
}

/// Where a signal is predicted to leave the precision's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavesRange {
    /// The layer, from 0.
    pub layer: usize,
    /// `z.layers.{l}` or `delta.layers.{l}`.
    pub tensor: String,
    /// `above` (overflow) or `below` (into the subnormals, then 0).
    pub direction: String,
}

impl LeavesRange {
    /// The first tensor of a pass over `layers` layers to leave a range, in the order the
    /// pass computes them: z_0, ..., z_{L−1}, then δ_{L−1}, ..., δ_0. `z(l)` and `delta(l)` say
    /// whether that tensor leaves it, and which way (`"above"` or `"below"`). Theory's
    /// prediction and the measurement both take their first tensor so.
    pub fn first_in_pass(
        layers: usize,
        z: impl Fn(usize) -> Option<&'static str>,
        delta: impl Fn(usize) -> Option<&'static str>,
    ) -> Option<Self> {
        let at = |l: usize, tensor: &str, direction: &str| Self {
            layer: l,
            tensor: crate::names::pass_tensor(tensor, l),
            direction: direction.into(),
        };
        (0..layers)
            .find_map(|l| z(l).map(|d| at(l, "z", d)))
            .or_else(|| {
                (0..layers)
                    .rev()
                    .find_map(|l| delta(l).map(|d| at(l, "delta", d)))
            })
    }

    /// Where this tensor comes in [`Self::first_in_pass`]'s order in a pass over `layers`
    /// layers: z_0 is 0, z_{L−1} is L − 1, δ_{L−1} is L, δ_0 is 2L − 1.
    pub fn pass_index(&self, layers: usize) -> usize {
        if self.tensor.starts_with("z.") {
            self.layer
        } else {
            layers + layers.saturating_sub(1).saturating_sub(self.layer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order of a pass over 3 layers, by hand: z_0, z_1, z_2, then δ_2, δ_1, δ_0; and the
    /// first tensor found in it.
    #[test]
    fn a_pass_is_the_forward_then_the_backward_from_the_output() {
        let l = |tensor: &str, layer: usize| LeavesRange {
            layer,
            tensor: format!("{tensor}.layers.{layer}"),
            direction: "above".into(),
        };
        let order: Vec<usize> = [l("z", 0), l("z", 2), l("delta", 2), l("delta", 0)]
            .iter()
            .map(|x| x.pass_index(3))
            .collect();
        assert_eq!(order, [0, 2, 3, 5]);
        let first = LeavesRange::first_in_pass(3, |_| None, |d| (d < 2).then_some("below"));
        assert_eq!(first.map(|f| f.tensor), Some("delta.layers.1".into()));
    }
}
