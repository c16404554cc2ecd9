//! Reports: the data a run is summarised into (`ExperimentReport`, whose JSON form is the
//! stable schema), and the verdicts. Rendering for people lives in `render`.

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::Backend;
use crate::config::Experiment;
use crate::floats::float;
use crate::origin::{Origin, origin};
use crate::run::Outcome;
use crate::stats::{LayerStats, ParamStats};

/// Where the ratio ‖δ_first‖ / ‖δ_last‖ counts as vanishing or exploding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename = "run")]
pub struct ExperimentReport {
    /// Experiment name.
    pub experiment: String,
    /// Its one-line description.
    pub description: String,
    /// Backend name: `ndarray`, `flex` or `wgpu`.
    pub backend: String,
    /// The wgpu adapter the run used (`null` on CPU backends).
    pub adapter: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// The input.
    pub input: InputInfo,
    /// The loss value.
    #[serde(serialize_with = "float")]
    pub loss: f32,
    /// Per-parameter statistics, in parameter order.
    pub params: Vec<ParamStats>,
    /// Per-layer statistics, input side first.
    pub layers: Vec<LayerStats>,
    /// ‖δ_first‖ / ‖δ_last‖: how much the backpropagated signal shrinks (< 1) or grows (> 1)
    /// from the output layer back to the first layer. NaN when undefined (‖δ_last‖ = 0).
    #[serde(serialize_with = "float")]
    pub delta_ratio: f32,
    /// The gain per hidden layer, (‖δ_1‖/‖δ_{L−1}‖)^{1/(L−2)} with δ_0 the first layer's and
    /// δ_L the output layer's: the ratio without the first layer's and the readout's gains,
    /// per layer (theory's `hidden_rate` is √χ*). NaN with fewer than three hidden layers or
    /// where a norm is 0 or not finite.
    #[serde(serialize_with = "float")]
    pub hidden_rate: f32,
    /// `ok`, `vanishing`, `exploding`, or `undefined` (ratio not finite).
    pub flow: Flow,
    /// What mean-field theory predicts from the config for this case (`null` when the weights
    /// come from a file: theory describes the initialiser, not given weights).
    pub theory: Option<crate::theory::Theory>,
}

/// The gradient-flow verdict of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputInfo {
    /// Case name.
    pub name: String,
    /// `[batch, d_input]`.
    pub shape: Vec<usize>,
    /// The distribution the values were drawn from, or the file they came from.
    pub distribution: String,
}

impl CaseReport {
    /// Summarise the outcome `out` of input case `case` of `exp`.
    fn new(
        exp: &Experiment,
        case: &crate::config::InputCase,
        out: &crate::run::CaseOutcome,
        thresholds: Thresholds,
    ) -> Self {
        // One tensor each, in parallel (a deep network's trial is otherwise one core's work).
        let params: Vec<ParamStats> = out.grads.par_iter().map(ParamStats::of).collect();
        let last = out.deltas.len().saturating_sub(1);
        let layers: Vec<LayerStats> = out
            .deltas
            .par_iter()
            .zip(&out.layer_outputs)
            .enumerate()
            .map(|(l, (d, a))| LayerStats::of(l, d, a, l < last))
            .collect();
        // A δ holding NaN or inf has no meaningful norm: the ratio is then undefined (its
        // finite part alone could read as "vanishing").
        let ratio = match (layers.first(), layers.last()) {
            (Some(f), Some(l))
                if l.delta_l2 > 0.0 && f.delta_nonfinite == 0 && l.delta_nonfinite == 0 =>
            {
                f64::from(f.delta_l2) / f64::from(l.delta_l2)
            }
            _ => f64::NAN,
        };
        let hidden_rate = hidden_rate(&layers);
        Self {
            input: InputInfo {
                name: case.name.clone(),
                shape: out.input.shape.clone(),
                distribution: case.source.describe(),
            },
            loss: out.loss,
            params,
            layers,
            delta_ratio: ratio as f32,
            hidden_rate: hidden_rate as f32,
            flow: Flow::of(ratio, thresholds),
            theory: exp
                .weights
                .is_none()
                .then(|| crate::theory::predict(&exp.model, &exp.loss, case)),
        }
    }
}

/// (‖δ_1‖/‖δ_{L−1}‖)^{1/(L−2)} over `layers` δ_0 … δ_L; NaN where undefined.
fn hidden_rate(layers: &[LayerStats]) -> f64 {
    let n = layers.len();
    if n < 4 {
        return f64::NAN;
    }
    let (a, b) = (&layers[1], &layers[n - 2]);
    if a.delta_nonfinite > 0 || b.delta_nonfinite > 0 || a.delta_l2 <= 0.0 || b.delta_l2 <= 0.0 {
        return f64::NAN;
    }
    (f64::from(a.delta_l2) / f64::from(b.delta_l2)).powf(1.0 / (n - 3) as f64)
}

impl ExperimentReport {
    /// Summarise `outcome` of `exp` run on `backend`.
    pub fn new(
        exp: &Experiment,
        backend: &Backend,
        outcome: &Outcome,
        thresholds: Thresholds,
    ) -> Self {
        let cases: Vec<CaseReport> = exp
            .inputs
            .iter()
            .zip(&outcome.cases)
            .map(|(case, out)| CaseReport::new(exp, case, out, thresholds))
            .collect();
        let all_finite = cases
            .iter()
            .all(|c| c.params.iter().all(|p| p.nonfinite == 0));
        Self {
            experiment: exp.name.clone(),
            description: exp.description.clone(),
            backend: backend.kind.name().to_string(),
            adapter: backend.adapter.clone(),
            seed: exp.seed,
            loss: exp.loss.name().to_string(),
            thresholds,
            cases,
            all_finite,
            origin: origin(outcome),
        }
    }

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

    /// δ_0 … δ_5 with ‖δ_1‖ = 8 and ‖δ_4‖ = 1: three steps, (8/1)^{1/3} = 2; the first
    /// layer's and the readout's norms do not enter; fewer than four layers, a zero or a
    /// non-finite δ give NaN.
    #[test]
    fn hidden_rate_skips_the_first_layer_and_the_readout() {
        let layer = |l: usize, d: f32| LayerStats {
            layer: l,
            width: 4,
            delta_l2: d,
            delta_max_abs: d,
            delta_nonfinite: 0,
            dead_fraction: 0.0,
            activation_mean: 0.0,
            activation_std: 1.0,
        };
        let mut layers: Vec<LayerStats> = [1e3, 8.0, 4.0, 2.0, 1.0, 1e-3]
            .iter()
            .enumerate()
            .map(|(l, &d)| layer(l, d))
            .collect();
        assert!((hidden_rate(&layers) - 2.0).abs() < 1e-12);
        assert!(hidden_rate(&layers[..3]).is_nan());
        layers[4].delta_l2 = 0.0;
        assert!(hidden_rate(&layers).is_nan());
        layers[4].delta_l2 = 1.0;
        layers[1].delta_nonfinite = 1;
        assert!(hidden_rate(&layers).is_nan());
    }
}
