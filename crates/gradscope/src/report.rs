//! Reports: a plain run's outcome summarised into the schema's `ExperimentReport`
//! (`gradscope_report::run`), with its statistics, verdicts and theory. Rendering for people
//! lives in `gradscope-render`.

use rayon::prelude::*;

pub use gradscope_report::{CaseReport, ExperimentReport, Flow, InputInfo, Thresholds};
use gradscope_report::{LayerStats, ParamStats};

use crate::backend::Backend;
use crate::config::Experiment;
use crate::origin::origin;
use crate::range::pass_ranges;
use crate::run::Outcome;
use crate::stats::{layer_stats, param_stats};

/// Summarise the outcome `out` of input case `case` of `exp`.
fn case_report(
    exp: &Experiment,
    case: &crate::config::InputCase,
    out: &crate::run::CaseOutcome,
    weights: &gradscope_model::MlpWeights,
    (thresholds, with_theory): (Thresholds, bool),
) -> CaseReport {
    // One tensor each, in parallel (a deep network's trial is otherwise one core's work).
    let mut params: Vec<ParamStats> = out.grads.par_iter().map(param_stats).collect();
    let last = out.deltas.len().saturating_sub(1);
    let mut layers: Vec<LayerStats> = out
        .deltas
        .par_iter()
        .zip(&out.layer_outputs)
        .enumerate()
        .map(|(l, (d, a))| layer_stats(l, d, a, l < last))
        .collect();
    let tensors = (
        &out.pre_activations[..],
        &out.layer_outputs[..],
        &out.deltas[..],
    );
    if let Some(ranges) = pass_ranges(exp.precision, weights, &out.input, tensors, &out.grads) {
        for (layer, (z, a, d)) in layers.iter_mut().zip(ranges.layers) {
            (layer.z_range, layer.a_range, layer.delta_range) = (Some(z), a, Some(d));
        }
        for (p, r) in params.iter_mut().zip(ranges.grads) {
            p.range = Some(r);
        }
    }
    // A δ holding NaN or inf has no meaningful norm: the ratio is then undefined (its
    // finite part alone could read as "vanishing").
    let ratio = match (layers.first(), layers.last()) {
        (Some(f), Some(l))
            if l.delta_l2 > 0.0 && f.delta_nonfinite == 0 && l.delta_nonfinite == 0 =>
        {
            f.delta_l2 / l.delta_l2
        }
        _ => f64::NAN,
    };
    let dead_layers = layers
        .iter()
        .filter(|l| l.layer < last && l.width > 0 && l.dead_fraction == 1.0)
        .map(|l| l.layer)
        .collect();
    let zero_gradients = params
        .iter()
        .filter(|p| p.nonfinite == 0 && p.zero_fraction == 1.0)
        .map(|p| p.name.clone())
        .collect();
    let hidden_rate = hidden_rate(&layers);
    // A ratio as the record keeps it: in f64 in an f64 run, else rounded to f32.
    let wide = exp.precision == crate::config::Precision::F64;
    let kept = |v: f64| gradscope_report::floats::kept(v, wide);
    CaseReport {
        input: InputInfo {
            name: case.name.clone(),
            shape: out.input.shape.clone(),
            distribution: case.source.describe(),
        },
        loss: out.loss_f64,
        params,
        layers,
        delta_ratio: kept(ratio),
        hidden_rate: kept(hidden_rate),
        flow: Flow::of(ratio, thresholds),
        dead_layers,
        zero_gradients,
        theory: (with_theory && exp.weights.is_none()).then(|| {
            let mut t = crate::theory::predict(&exp.model, &exp.loss, case);
            let p = crate::theory::predict_range(&exp.model, &exp.loss, case, exp.precision, &t);
            (t.range, t.leaves_range, t.range_unknown_from) =
                (p.range, p.leaves_range, p.unknown_from);
            t
        }),
        leaves_range: crate::range::first_to_leave(
            &out.pre_activations,
            &out.deltas,
            exp.precision,
        ),
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
    (a.delta_l2 / b.delta_l2).powf(1.0 / (n - 3) as f64)
}

/// The case reports of `outcome` without theory: what a sweep's trial records take (a
/// sweep predicts once per grid point, in its summary, not once per trial).
pub fn cases_without_theory(
    exp: &Experiment,
    outcome: &Outcome,
    thresholds: Thresholds,
) -> Vec<CaseReport> {
    exp.inputs
        .iter()
        .zip(&outcome.cases)
        .map(|(case, out)| case_report(exp, case, out, &outcome.weights, (thresholds, false)))
        .collect()
}

/// Summarise `outcome` of `exp` run on `backend`.
pub fn build(
    exp: &Experiment,
    backend: &Backend,
    outcome: &Outcome,
    thresholds: Thresholds,
) -> ExperimentReport {
    let cases: Vec<CaseReport> = exp
        .inputs
        .iter()
        .zip(&outcome.cases)
        .map(|(case, out)| case_report(exp, case, out, &outcome.weights, (thresholds, true)))
        .collect();
    let all_finite = cases
        .iter()
        .all(|c| c.params.iter().all(|p| p.nonfinite == 0));
    ExperimentReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: exp.name.clone(),
        description: exp.description.clone(),
        backend: backend.kind.name().to_string(),
        adapter: backend.adapter.clone(),
        precision: exp.precision,
        seed: exp.seed,
        loss: exp.loss.name().to_string(),
        thresholds,
        cases,
        all_finite,
        origin: origin(
            outcome,
            exp.loss,
            &|c| {
                crate::loss::per_row(
                    exp.loss,
                    &c.output,
                    &crate::loss::no_targets(),
                    &backend.plain,
                    crate::backend::dtype(exp.precision),
                )
            },
            exp.precision,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// δ_0 … δ_5 with ‖δ_1‖ = 8 and ‖δ_4‖ = 1: three steps, (8/1)^{1/3} = 2; the first
    /// layer's and the readout's norms do not enter; fewer than four layers, a zero or a
    /// non-finite δ give NaN.
    #[test]
    fn hidden_rate_skips_the_first_layer_and_the_readout() {
        let layer = |l: usize, d: f64| LayerStats {
            layer: l,
            width: 4,
            delta_l2: d,
            delta_max_abs: d,
            delta_nonfinite: 0,
            dead_fraction: 0.0,
            activation_mean: 0.0,
            activation_std: 1.0,
            activation_nonfinite: 0,
            z_range: None,
            a_range: None,
            delta_range: None,
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
