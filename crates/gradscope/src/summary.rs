//! Sweep aggregation: per grid point and input case, across trials, the median, interquartile
//! range, min and max of each layer's ‖δ‖ and weight-gradient norm and of ‖δ_first‖/‖δ_last‖,
//! and the number of trials with a non-finite gradient. Deterministic: trials are sorted first,
//! so sharded-and-merged sweeps summarise exactly like unsharded ones.

pub use gradscope_report::{
    PointSummary, PointTheory, Spread, SweepSummary, TrainingSpread, TrialRecord,
};

use crate::config::sweep::Sweep;

/// Theory for input case `case` of the point experiment `exp`, where it applies.
fn point_theory(exp: &crate::config::Experiment, case: &str) -> Option<PointTheory> {
    if exp.task.train().is_some() || exp.weights.is_some() {
        return None;
    }
    let input = exp.inputs.iter().find(|c| c.name == case)?;
    let t = crate::theory::predict(&exp.model, &exp.loss, input);
    let p = crate::theory::predict_range(&exp.model, &exp.loss, input, exp.precision, &t);
    Some(PointTheory {
        leaves_range: p.leaves_range,
        range_unknown_from: p.unknown_from,
        delta_ratio: t.delta_ratio,
        chi: t.chi,
        chi_star: t.chi_star,
        ratio_quartiles: t.ratio_quartiles,
        applies: t.applies,
        caveats: t.caveats,
    })
}

/// Summarise `records` (in any order) of `sweep`.
pub fn summarise(experiment: &str, sweep: &Sweep, records: &[TrialRecord]) -> SweepSummary {
    let mut sorted = records.to_vec();
    let cases = &sweep.cases;
    let case_index = |c: &str| cases.iter().position(|x| x == c).unwrap_or(usize::MAX);
    sorted.sort_by(|a, b| {
        (a.point, case_index(&a.case), a.trial).cmp(&(b.point, case_index(&b.case), b.trial))
    });
    let expected = sweep.len() * sweep.trials * cases.len();
    // One pass over the records (linear in their number): sorted, each (point, case) is one
    // run of consecutive records.
    let mut points = Vec::new();
    for trials in sorted.chunk_by(|a, b| a.point == b.point && a.case == b.case) {
        let trials: Vec<&TrialRecord> = trials.iter().collect();
        let (pi, case) = (trials[0].point, &trials[0].case);
        if pi >= sweep.len() || !cases.contains(case) {
            continue;
        }
        let layers = trials.iter().map(|t| t.delta_l2.len()).max().unwrap_or(0);
        let precision = trials[0].precision;
        let per_layer = |f: &dyn Fn(&TrialRecord) -> &Vec<f64>| {
            (0..layers)
                .map(|l| {
                    let values = trials.iter().filter_map(|t| f(t).get(l).copied());
                    Spread::of(values, precision)
                })
                .collect()
        };
        points.push(PointSummary {
            point: pi,
            settings: gradscope_report::Settings::new(sweep.values(pi)),
            precision,
            case: case.clone(),
            trials: trials.len(),
            nonfinite_trials: trials.iter().filter(|t| t.nonfinite).count(),
            dead_trials: trials.iter().filter(|t| t.dead).count(),
            zero_gradient_trials: trials.iter().filter(|t| t.zero_gradient).count(),
            ratio: Spread::of(trials.iter().map(|t| t.ratio), precision),
            delta_l2: per_layer(&|t| &t.delta_l2),
            weight_l2: per_layer(&|t| &t.weight_l2),
            training: TrainingSpread::of(&trials),
            theory: point_theory(sweep.point(pi), case),
            left_range: gradscope_report::LeftRange::of(trials.iter().copied(), |l| {
                l.pass_index(layers)
            }),
        });
    }
    SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: experiment.to_string(),
        trials_per_point: sweep.trials,
        trials_done: records.len(),
        trials_expected: expected,
        partial: records.len() < expected,
        points,
    }
}
