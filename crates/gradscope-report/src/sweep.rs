//! A sweep's records: one `TrialRecord` per line of `trials.jsonl`, and the summary
//! `SweepSummary` (`"kind": "sweep"`) with a `PointSummary` per grid point and input case.

use serde::{Deserialize, Serialize};

use crate::Precision;
use crate::floats::{
    de_float64, de_floats64, de_opt_float64, de_opt_floats64, float64, floats64, in_its_precision,
    kept, measured, measured_all, narrow, narrow_all, narrow_opt, opt_float64, opt_floats64,
    opt_measured,
};

/// What one trial of one input case produced. (`Default`: point 0, trial 0, seed 0, case "",
/// f32, no values, nothing non-finite, for a test to fill in what it is about.)
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct TrialRecord {
    /// Grid point index.
    pub point: usize,
    /// Trial index (the seed is the experiment's seed + trial).
    pub trial: usize,
    /// The seed used.
    pub seed: u64,
    /// Input case name.
    pub case: String,
    /// The precision the trial ran in (absent: f32). Its measured values are f64s as
    /// [`crate::ExperimentReport`]'s are.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// ‖δ_l‖ per layer; NaN where δ_l holds a non-finite value (its norm is not a number;
    /// records written before this kept the norm of the finite part, 0 for an all-inf δ).
    #[serde(serialize_with = "measured_all", deserialize_with = "de_floats64")]
    pub delta_l2: Vec<f64>,
    /// ‖∂L/∂W_l‖ per layer; NaN as for `delta_l2`.
    #[serde(serialize_with = "measured_all", deserialize_with = "de_floats64")]
    pub weight_l2: Vec<f64>,
    /// ‖δ_first‖ / ‖δ_last‖.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub ratio: f64,
    /// Whether any gradient value was NaN or infinite (training: whether any step went
    /// non-finite).
    pub nonfinite: bool,
    /// Training trials: the step of the first non-finite value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_nonfinite_step: Option<u64>,
    /// Training trials: the kind of the origin (`forward`, `loss`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Training trials: the loss of the last step run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_measured",
        deserialize_with = "de_opt_float64"
    )]
    pub final_loss: Option<f64>,
    /// Whether a hidden layer was dead (every unit 0 for the whole batch; training: at some
    /// step). Absent from older records, read as false.
    #[serde(default)]
    pub dead: bool,
    /// Whether a kernel's gradient was exactly 0 everywhere (training: at some step). Absent
    /// from older records, read as false.
    #[serde(default)]
    pub zero_gradient: bool,
    /// Whether [`TrialRecord::leaves_range`] was measured: in a sweep over precision, or in a
    /// precision other than f32 (absent: false; a plain f32 sweep keeps no z_l).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub range_checked: bool,
    /// Measured, by theory's criteria and in its order: the first tensor of the pass to leave
    /// the precision's range (z_0, ..., z_L, then δ_L, ..., δ_0; above where it holds a value
    /// past the largest finite one, ±inf or NaN; below where its root mean square is under the
    /// smallest normal). Absent where none did, or where it was not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaves_range: Option<crate::LeavesRange>,
}

/// How the trials of one grid point left the precision's range, measured
/// ([`TrialRecord::leaves_range`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftRange {
    /// Trials measured.
    pub checked: usize,
    /// Trials in which some tensor left the range.
    pub left: usize,
    /// The first tensor to leave it in most of those trials (ties: the earliest, in theory's
    /// order); `null` where none left.
    pub first: Option<crate::LeavesRange>,
    /// Trials in which `first` was the first to leave.
    pub first_trials: usize,
}

impl LeftRange {
    /// The summary of `trials`' measurements; `None` where none was measured. `order` ranks a
    /// tensor's place in the pass (earlier first), for ties.
    pub fn of<'a>(
        trials: impl IntoIterator<Item = &'a TrialRecord>,
        order: impl Fn(&crate::LeavesRange) -> usize,
    ) -> Option<Self> {
        let measured: Vec<&TrialRecord> = trials.into_iter().filter(|t| t.range_checked).collect();
        if measured.is_empty() {
            return None;
        }
        let firsts: Vec<&crate::LeavesRange> = measured
            .iter()
            .filter_map(|t| t.leaves_range.as_ref())
            .collect();
        let count = |l: &crate::LeavesRange| firsts.iter().filter(|&&f| f == l).count();
        let first = firsts
            .iter()
            .copied()
            .max_by(|a, b| count(a).cmp(&count(b)).then(order(b).cmp(&order(a))))
            .cloned();
        Some(Self {
            checked: measured.len(),
            left: firsts.len(),
            first_trials: first.as_ref().map_or(0, count),
            first,
        })
    }
}

/// Median, quartiles and range of the finite values of a sample (numpy's linear quantiles),
/// measured values as [`crate::ExperimentReport`]'s are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub median: f64,
    /// First quartile.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub q1: f64,
    /// Third quartile.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub q3: f64,
    /// Minimum.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub min: f64,
    /// Maximum.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub max: f64,
}

/// Linear-interpolation quantile of sorted `v` (numpy's default), `q` in [0, 1].
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

impl Spread {
    /// The spread of the finite values of `values` (all NaN when there is none), measured in
    /// `precision`: below f64 each quantile is rounded to f32, as it always was.
    pub fn of(values: impl IntoIterator<Item = f64>, precision: Precision) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| kept(quantile(&v, p), precision == Precision::F64);
        Self {
            median: q(0.5),
            q1: q(0.25),
            q3: q(0.75),
            min: q(0.0),
            max: q(1.0),
        }
    }
}

/// The summary of one grid point and input case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct PointSummary {
    /// Grid point index.
    pub point: usize,
    /// The point's settings: JSON, an object from swept key to value; to people (through
    /// `Deref`), `key=value` as `--set` takes them.
    pub settings: crate::Settings,
    /// The precision the point ran in (absent: f32); its spreads are measured values as
    /// [`crate::ExperimentReport`]'s are.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Input case.
    pub case: String,
    /// Trials summarised.
    pub trials: usize,
    /// Trials with a non-finite gradient value.
    pub nonfinite_trials: usize,
    /// Trials with a dead hidden layer ([`TrialRecord::dead`]; 0 in older records).
    #[serde(default)]
    pub dead_trials: usize,
    /// Trials with a kernel gradient exactly 0 everywhere ([`TrialRecord::zero_gradient`]; 0
    /// in older records).
    #[serde(default)]
    pub zero_gradient_trials: usize,
    /// ‖δ_first‖ / ‖δ_last‖ across trials.
    pub ratio: Spread,
    /// ‖δ_l‖ per layer across trials.
    pub delta_l2: Vec<Spread>,
    /// ‖∂L/∂W_l‖ per layer across trials.
    pub weight_l2: Vec<Spread>,
    /// Training sweeps: how the runs ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingSpread>,
    /// What mean-field theory predicts at this point (absent for training sweeps and given
    /// weights).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theory: Option<PointTheory>,
    /// Where the trials left the precision's range, measured (absent where it was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_range: Option<LeftRange>,
}

in_its_precision!(TrialRecord, |r| {
    narrow_all(&mut r.delta_l2);
    narrow_all(&mut r.weight_l2);
    r.ratio = narrow(r.ratio);
    narrow_opt(&mut r.final_loss);
});

in_its_precision!(PointSummary, |p| {
    let training = p
        .training
        .iter_mut()
        .flat_map(|t| [&mut t.first_nonfinite_step, &mut t.final_loss]);
    for spread in std::iter::once(&mut p.ratio)
        .chain(&mut p.delta_l2)
        .chain(&mut p.weight_l2)
        .chain(training)
    {
        for v in [
            &mut spread.median,
            &mut spread.q1,
            &mut spread.q3,
            &mut spread.min,
            &mut spread.max,
        ] {
            *v = narrow(*v);
        }
    }
});

/// Mean-field theory at one grid point: the predicted ratio and the gain per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointTheory {
    /// The predicted ‖δ_first‖/‖δ_last‖.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub delta_ratio: f64,
    /// χ_1, χ_2, ... (‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖²).
    #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
    pub chi: Vec<f64>,
    /// χ₁ at the hidden layers' fixed point (the phase diagram's χ* = 1 line); `null` where
    /// there is no single hidden map (and in records of schema version 1).
    #[serde(
        default,
        serialize_with = "opt_float64",
        deserialize_with = "de_opt_float64"
    )]
    pub chi_star: Option<f64>,
    /// The predicted interquartile range [q1, q3] of the ratio across seeds (as
    /// `Theory::ratio_quartiles`); null where no result is known.
    #[serde(
        default,
        serialize_with = "opt_floats64",
        deserialize_with = "de_opt_floats64"
    )]
    pub ratio_quartiles: Option<[f64; 2]>,
    /// Whether the prediction describes this point (as `Theory::applies`; records written
    /// before it was judged read as false, with a caveat saying so).
    #[serde(default)]
    pub applies: bool,
    /// Why it does not apply, and the limits of what it says (as `Theory::caveats`).
    #[serde(default = "crate::theory::unjudged")]
    pub caveats: Vec<String>,
    /// The first tensor predicted to leave the point's precision (as
    /// `Theory::leaves_range`); absent where none is (and in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaves_range: Option<crate::LeavesRange>,
    /// Where theory's f64 arithmetic cannot follow the pass (as
    /// `Theory::range_unknown_from`); absent where it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_unknown_from: Option<crate::LeavesRange>,
}

/// How the training runs of one grid point ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSpread {
    /// The fraction of trials that went non-finite.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub diverged_fraction: f64,
    /// The first non-finite step across the trials that went non-finite.
    pub first_nonfinite_step: Spread,
    /// Trials by the kind of their origin (`forward`, `loss`, ...).
    pub origins: std::collections::BTreeMap<String, usize>,
    /// The last step's loss across the trials that stayed finite.
    pub final_loss: Spread,
}

impl TrainingSpread {
    /// Of `trials`, when they are training trials.
    pub fn of(trials: &[&TrialRecord]) -> Option<Self> {
        if trials
            .iter()
            .all(|t| t.final_loss.is_none() && t.origin.is_none())
        {
            return None;
        }
        let diverged: Vec<&&TrialRecord> = trials.iter().filter(|t| t.origin.is_some()).collect();
        let precision = trials.first().map_or(Precision::F32, |t| t.precision);
        let mut origins = std::collections::BTreeMap::new();
        for t in &diverged {
            let kind = t.origin.clone().unwrap_or_default();
            *origins.entry(kind).or_insert(0) += 1;
        }
        Some(Self {
            diverged_fraction: diverged.len() as f64 / trials.len() as f64,
            first_nonfinite_step: Spread::of(
                diverged
                    .iter()
                    .filter_map(|t| t.first_nonfinite_step.map(|s| s as f64)),
                Precision::F32,
            ),
            origins,
            final_loss: Spread::of(
                trials
                    .iter()
                    .filter(|t| t.origin.is_none())
                    .filter_map(|t| t.final_loss),
                precision,
            ),
        })
    }

    /// `loss 12, forward 3`.
    pub fn origins_text(&self) -> String {
        if self.origins.is_empty() {
            return "-".into();
        }
        self.origins
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The summary of a sweep. Its JSON form starts with `"kind": "sweep"`, which tells it from
/// a plain run's report (`"kind": "run"`) in one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "sweep")]
pub struct SweepSummary {
    /// The schema's version ([`crate::SCHEMA_VERSION`]; 1 when absent).
    #[serde(default = "crate::version_1")]
    pub schema_version: u32,
    /// Experiment name.
    pub experiment: String,
    /// Trials per point asked for.
    pub trials_per_point: usize,
    /// Trials summarised in all (fewer than points × trials for an unfinished or sharded run).
    pub trials_done: usize,
    /// Trial records of the whole sweep: points × trials per point × input cases (0 in
    /// records of schema version 1, which did not say).
    #[serde(default)]
    pub trials_expected: usize,
    /// Whether the summary covers only part of the sweep (a shard's own record, or `merge
    /// --allow-partial` of an incomplete set of shards): every output says so.
    #[serde(default)]
    pub partial: bool,
    /// One entry per point × case, in grid order.
    pub points: Vec<PointSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most frequent first tensor, ties to the earliest in the pass; trials not measured
    /// are left out, and none measured is `None`.
    #[test]
    fn left_range_counts_the_most_frequent_first_tensor() {
        let leaves = |tensor: &str| crate::LeavesRange {
            layer: 0,
            tensor: tensor.into(),
            direction: "above".into(),
        };
        let trial = |checked: bool, first: Option<&str>| TrialRecord {
            case: "x".into(),
            precision: Precision::F16,
            ratio: 1.0,
            range_checked: checked,
            leaves_range: first.map(leaves),
            ..TrialRecord::default()
        };
        let order = |l: &crate::LeavesRange| l.tensor.len();
        let trials = [
            trial(true, Some("z.l.3")),
            trial(true, Some("z.l.22")),
            trial(true, None),
            trial(false, Some("z.l.22")),
        ];
        let l = LeftRange::of(&trials, order).unwrap_or_else(|| panic!("measured"));
        assert_eq!((l.checked, l.left, l.first_trials), (3, 2, 1));
        assert_eq!(
            l.first,
            Some(leaves("z.l.3")),
            "a tie goes to the earlier tensor"
        );
        let more = [
            trial(true, Some("z.l.3")),
            trial(true, Some("z.l.22")),
            trial(true, Some("z.l.22")),
        ];
        let l = LeftRange::of(&more, order).unwrap_or_else(|| panic!("measured"));
        assert_eq!((l.first, l.first_trials), (Some(leaves("z.l.22")), 2));
        assert_eq!(LeftRange::of(&trials[3..], order), None);
        let none = [trial(true, None)];
        let l = LeftRange::of(&none, order).unwrap_or_else(|| panic!("measured"));
        assert_eq!(
            (l.checked, l.left, l.first.clone(), l.first_trials),
            (1, 0, None, 0)
        );
    }

    #[test]
    fn quantiles_match_numpy_linear_interpolation() {
        // numpy.quantile([1, 2, 3, 4], [0, .25, .5, .75, 1]) = [1, 1.75, 2.5, 3.25, 4]
        let v = [1.0, 2.0, 3.0, 4.0];
        let got: Vec<f64> = [0.0, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|q| quantile(&v, *q))
            .collect();
        assert_eq!(got, vec![1.0, 1.75, 2.5, 3.25, 4.0]);
    }

    #[test]
    fn spreads_skip_non_finite_values() {
        let s = Spread::of([3.0, f64::NAN, 1.0, f64::INFINITY, 2.0], Precision::F32);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!(Spread::of([f64::NAN], Precision::F32).median.is_nan());
        // numpy.quantile([0, 0.1, 1], 0.25) = 0.05 in f64; below f64 it is rounded to f32.
        let tenth = [0.0, 0.1, 1.0];
        assert_eq!(Spread::of(tenth, Precision::F64).q1, 0.05);
        assert_eq!(Spread::of(tenth, Precision::F32).q1, f64::from(0.05f32));
    }

    #[test]
    fn trial_records_round_trip_through_json_with_non_finite_values() {
        let r = TrialRecord {
            point: 1,
            trial: 2,
            seed: 9,
            case: "x".into(),
            precision: Precision::F32,
            delta_l2: vec![1.5, f64::INFINITY],
            weight_l2: vec![f64::NAN, 0.25],
            ratio: f64::NEG_INFINITY,
            nonfinite: true,
            first_nonfinite_step: None,
            origin: None,
            final_loss: None,
            dead: true,
            zero_gradient: false,
            range_checked: false,
            leaves_range: None,
        };
        let line = serde_json::to_string(&r).unwrap_or_default();
        let back: TrialRecord =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(back.delta_l2, r.delta_l2);
        assert!(back.weight_l2[0].is_nan() && back.weight_l2[1] == 0.25);
        assert_eq!(
            (back.ratio, back.point, back.trial),
            (f64::NEG_INFINITY, 1, 2)
        );
        assert!(back.dead && !back.zero_gradient);
    }

    #[test]
    fn measured_values_keep_their_width_through_json() {
        let third = f64::from(1f32 / 3.0);
        let f32_trial = |precision, values: Vec<f64>| TrialRecord {
            seed: 1,
            case: "x".into(),
            precision,
            ratio: values[0],
            delta_l2: values,
            ..TrialRecord::default()
        };
        // Below f64, a value is the f32 computed: written as that f32's shortest form (the
        // bytes an f32 field wrote) with no precision field, and read back as the same f32.
        let r = f32_trial(Precision::F32, vec![third, 1.5]);
        let line = serde_json::to_string(&r).unwrap_or_default();
        assert!(line.contains(r#""delta_l2":[0.33333334,1.5],"#), "{line}");
        assert!(!line.contains("precision"), "{line}");
        let back: TrialRecord = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
        // In f64, each keeps every digit: 1/3 in f64, 0.1 in f64, the f32 nearest 0.1 (an f64
        // that equals an f32 and must not be spelled as the shorter `0.1`), and 1e300, past
        // f32's range.
        let values = vec![1.0 / 3.0, 0.1, f64::from(0.1f32), 1e300];
        let r = f32_trial(Precision::F64, values.clone());
        let line = serde_json::to_string(&r).unwrap_or_default();
        assert!(
            line.contains(
                r#""precision":"f64","delta_l2":[0.3333333333333333,0.1,0.10000000149011612,1e+300]"#
            ),
            "{line}"
        );
        let back: TrialRecord = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.delta_l2, values);
        assert_eq!(back.ratio.to_bits(), (1.0f64 / 3.0).to_bits());
    }
}
