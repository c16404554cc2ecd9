//! A plain run's report (`"kind": "run"`): per input case, per-parameter gradient statistics,
//! per-layer δ and activation statistics, the gradient-flow verdict and what theory predicts.

use serde::{Deserialize, Serialize};

use crate::floats::{de_float, de_float64, float, measured, narrow};
use crate::origin::Origin;

/// Where the ratio ‖δ_first‖ / ‖δ_last‖ counts as vanishing or exploding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Below this ratio the gradient signal is called vanishing (default 1e-3).
    pub vanishing: f64,
    /// Above this ratio it is called exploding (default 1e3).
    pub exploding: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            vanishing: 1e-3,
            exploding: 1e3,
        }
    }
}

/// The report of one experiment. The JSON schema: these field names are stable. Its JSON form
/// starts with `"kind": "run"`, which tells it from a sweep's summary (`"kind": "sweep"`).
///
/// Its measured values are f64s: an f64 run's as computed, every other run's the f32 it
/// computed, widened (see [`crate::floats`] for how each is written and read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "run", remote = "Self")]
pub struct ExperimentReport {
    /// The schema's version ([`crate::SCHEMA_VERSION`]; 1 when absent).
    #[serde(default = "crate::version_1")]
    pub schema_version: u32,
    /// Experiment name.
    pub experiment: String,
    /// Its one-line description.
    pub description: String,
    /// Backend name: `ndarray`, `flex` or `wgpu`.
    pub backend: String,
    /// The wgpu adapter the run used (`null` on CPU backends).
    pub adapter: Option<String>,
    /// The floating-point type every tensor was computed in (`f32` in older records).
    #[serde(default)]
    pub precision: crate::Precision,
    /// The seed.
    pub seed: u64,
    /// Loss name.
    pub loss: String,
    /// The thresholds the gradient-flow verdicts used.
    pub thresholds: Thresholds,
    /// One entry per input case.
    pub cases: Vec<CaseReport>,
    /// True when every gradient value of every case is finite.
    pub all_finite: bool,
    /// Where the first non-finite value (input, weight, pre-activation, loss, δ or gradient)
    /// was born, in computation order; `null` when every value is finite.
    pub origin: Option<Origin>,
}

/// One input case's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The input.
    pub input: InputInfo,
    /// The loss value.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub loss: f64,
    /// Per-parameter statistics, in parameter order.
    pub params: Vec<ParamStats>,
    /// Per-layer statistics, input side first.
    pub layers: Vec<LayerStats>,
    /// ‖δ_first‖ / ‖δ_last‖: how much the backpropagated signal shrinks (< 1) or grows (> 1)
    /// from the output layer back to the first layer. NaN when undefined (‖δ_last‖ = 0).
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub delta_ratio: f64,
    /// The gain per hidden layer, (‖δ_1‖/‖δ_{L−1}‖)^{1/(L−2)} with δ_0 the first layer's and
    /// δ_L the output layer's: the ratio without the first layer's and the readout's gains,
    /// per layer (theory's `hidden_rate` is √χ*). NaN with fewer than three hidden layers or
    /// where a norm is 0 or not finite (and in records of schema version 1).
    #[serde(
        default = "crate::floats::nan64",
        serialize_with = "measured",
        deserialize_with = "de_float64"
    )]
    pub hidden_rate: f64,
    /// `ok`, `vanishing`, `exploding`, or `undefined` (ratio not finite).
    pub flow: Flow,
    /// Hidden layers whose every unit is dead: activation exactly 0 for every example of the
    /// batch (absent from version-1 records, read as none).
    #[serde(default)]
    pub dead_layers: Vec<usize>,
    /// Parameters whose gradient is exactly 0 everywhere: finite, but they learn nothing from
    /// this batch (absent from version-1 records, read as none).
    #[serde(default)]
    pub zero_gradients: Vec<String>,
    /// What mean-field theory predicts from the config for this case (`null` when the weights
    /// come from a file: theory describes the initialiser, not given weights).
    pub theory: Option<crate::theory::Theory>,
    /// Measured, by theory's criteria and in its order (as a sweep's trials measure it): the
    /// first of z_0 … z_L, then δ_L … δ_0, to leave the run's precision, above (a non-finite
    /// value) or below (its root mean square under the smallest normal). Absent where none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaves_range: Option<crate::LeavesRange>,
}

/// The gradient-flow verdict of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Within the thresholds.
    Ok,
    /// Below the vanishing threshold.
    Vanishing,
    /// Above the exploding threshold.
    Exploding,
    /// The ratio is not a finite number.
    Undefined,
}

impl Flow {
    /// The verdict's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Vanishing => "vanishing",
            Self::Exploding => "exploding",
            Self::Undefined => "undefined",
        }
    }

    /// The verdict for `ratio` under `t`.
    pub fn of(ratio: f64, t: Thresholds) -> Self {
        if !ratio.is_finite() {
            Self::Undefined
        } else if ratio < t.vanishing {
            Self::Vanishing
        } else if ratio > t.exploding {
            Self::Exploding
        } else {
            Self::Ok
        }
    }
}

/// What went into the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    /// Case name.
    pub name: String,
    /// `[batch, d_input]`.
    pub shape: Vec<usize>,
    /// The distribution the values were drawn from, or the file they came from.
    pub distribution: String,
}

/// Statistics of one parameter's gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamStats {
    /// Parameter name, e.g. `layers.0.weight`.
    pub name: String,
    /// Gradient shape (the parameter's shape).
    pub shape: Vec<usize>,
    /// Largest value; NaN when any value is NaN.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub max: f64,
    /// Smallest value; NaN when any value is NaN.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub min: f64,
    /// Number of NaN, +inf and −inf values.
    pub nonfinite: usize,
    /// Largest |g| over the finite values.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub max_abs: f64,
    /// L2 norm √Σg² over the finite values (accumulated in f64).
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub l2: f64,
    /// Mean |g| over the finite values.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub mean_abs: f64,
    /// Population standard deviation over the finite values.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub std: f64,
    /// Fraction of all values that are exactly 0.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub zero_fraction: f32,
    /// Number of NaN values.
    pub nan: usize,
    /// Number of +inf values.
    pub pos_inf: usize,
    /// Number of −inf values.
    pub neg_inf: usize,
    /// Where the gradient sits in the run's precision (`null` in older records).
    #[serde(default)]
    pub range: Option<crate::Range>,
}

/// Statistics of one layer `l`: δ_l = ∂loss/∂z_l and, for hidden layers, a_l = φ(z_l).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Layer index from 0 (the output layer is last).
    pub layer: usize,
    /// Units in the layer.
    pub width: usize,
    /// ‖δ_l‖₂ over the finite values of the batch (where `delta_nonfinite` > 0 the norm of the
    /// whole tensor is not a number; renderers never show this as one).
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub delta_l2: f64,
    /// max |δ_l| over the finite values.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub delta_max_abs: f64,
    /// Non-finite values in δ_l.
    pub delta_nonfinite: usize,
    /// Fraction of units whose activation is 0 for every example of the batch (hidden layers;
    /// 0 for the output layer, which has no activation).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub dead_fraction: f32,
    /// Mean of the layer's output (a_l for hidden layers, the network output for the last).
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub activation_mean: f64,
    /// Standard deviation of the layer's output.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub activation_std: f64,
    /// Non-finite values in the layer's output (the mean and std are over the finite ones).
    /// Absent from records of schema version 1, read as 0.
    #[serde(default)]
    pub activation_nonfinite: usize,
    /// Where z_l sits in the run's precision (`null` in older records).
    #[serde(default)]
    pub z_range: Option<crate::Range>,
    /// Where a_l = φ(z_l) sits (hidden layers; `null` for the output layer and in older
    /// records).
    #[serde(default)]
    pub a_range: Option<crate::Range>,
    /// Where δ_l sits (`null` in older records).
    #[serde(default)]
    pub delta_range: Option<crate::Range>,
}

crate::floats::in_its_precision!(ExperimentReport, |r| {
    r.cases.iter_mut().for_each(CaseReport::narrow)
});

impl CaseReport {
    /// Round every measured value to f32: what a run below f64 computed (see
    /// [`crate::floats::narrow`]).
    fn narrow(&mut self) {
        for v in [&mut self.loss, &mut self.delta_ratio, &mut self.hidden_rate] {
            *v = narrow(*v);
        }
        for p in &mut self.params {
            for v in [
                &mut p.max,
                &mut p.min,
                &mut p.max_abs,
                &mut p.l2,
                &mut p.mean_abs,
                &mut p.std,
            ] {
                *v = narrow(*v);
            }
            if let Some(r) = &mut p.range {
                r.narrow();
            }
        }
        for l in &mut self.layers {
            for v in [
                &mut l.delta_l2,
                &mut l.delta_max_abs,
                &mut l.activation_mean,
                &mut l.activation_std,
            ] {
                *v = narrow(*v);
            }
            for r in [&mut l.z_range, &mut l.a_range, &mut l.delta_range]
                .into_iter()
                .flatten()
            {
                r.narrow();
            }
        }
    }
}

impl ExperimentReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_verdicts_follow_the_thresholds() {
        let t = Thresholds::default();
        assert_eq!(Flow::of(1.0, t), Flow::Ok);
        assert_eq!(Flow::of(1e-3, t), Flow::Ok);
        assert_eq!(Flow::of(9.9e-4, t), Flow::Vanishing);
        assert_eq!(Flow::of(1.01e3, t), Flow::Exploding);
        assert_eq!(Flow::of(f64::NAN, t), Flow::Undefined);
        assert_eq!(Flow::of(f64::INFINITY, t), Flow::Undefined);
    }
}
