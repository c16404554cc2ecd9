//! Sweep aggregation: per grid point and input case, across trials, the median, interquartile
//! range, min and max of each layer's ‖δ‖ and weight-gradient norm and of ‖δ_first‖/‖δ_last‖,
//! and the number of trials with a non-finite gradient. Deterministic: trials are sorted first,
//! so sharded-and-merged sweeps summarise exactly like unsharded ones.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::sweep::Sweep;
use crate::floats::{csv_float, de_float, de_floats, float, floats, fmt_sci};
use crate::render::csv_rows;

/// What one trial of one input case produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Grid point index.
    pub point: usize,
    /// Trial index (the seed is the experiment's seed + trial).
    pub trial: usize,
    /// The seed used.
    pub seed: u64,
    /// Input case name.
    pub case: String,
    /// ‖δ_l‖ per layer.
    #[serde(serialize_with = "floats", deserialize_with = "de_floats")]
    pub delta_l2: Vec<f32>,
    /// ‖∂L/∂W_l‖ per layer.
    #[serde(serialize_with = "floats", deserialize_with = "de_floats")]
    pub weight_l2: Vec<f32>,
    /// ‖δ_first‖ / ‖δ_last‖.
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub ratio: f32,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
}

/// Median, quartiles and range of the finite values of a sample (numpy's linear quantiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    #[serde(serialize_with = "float")]
    pub median: f32,
    /// First quartile.
    #[serde(serialize_with = "float")]
    pub q1: f32,
    /// Third quartile.
    #[serde(serialize_with = "float")]
    pub q3: f32,
    /// Minimum.
    #[serde(serialize_with = "float")]
    pub min: f32,
    /// Maximum.
    #[serde(serialize_with = "float")]
    pub max: f32,
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
    /// Median, q1, q3, min, max for people (4 significant digits).
    fn cells(&self) -> [String; 5] {
        [self.median, self.q1, self.q3, self.min, self.max].map(|v| fmt_sci(v, 3))
    }

    /// The spread of the finite values of `values` (all NaN when there is none).
    pub fn of(values: impl IntoIterator<Item = f32>) -> Self {
        let mut v: Vec<f64> = values
            .into_iter()
            .filter(|x| x.is_finite())
            .map(f64::from)
            .collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| quantile(&v, p) as f32;
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointSummary {
    /// Grid point index.
    pub point: usize,
    /// The point's settings, `key=value`.
    pub settings: Vec<String>,
    /// Input case.
    pub case: String,
    /// Trials summarised.
    pub trials: usize,
    /// Trials with a non-finite gradient value.
    pub nonfinite_trials: usize,
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
}

/// Mean-field theory at one grid point: the predicted ratio and the gain per layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointTheory {
    /// The predicted ‖δ_first‖/‖δ_last‖.
    #[serde(serialize_with = "float64")]
    pub delta_ratio: f64,
    /// χ_1, χ_2, ... (‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖²).
    pub chi: Vec<f64>,
    /// χ₁ at the hidden layers' fixed point (the phase diagram's χ* = 1 line); `null` where
    /// there is no single hidden map.
    #[serde(serialize_with = "crate::floats::opt_float_f64")]
    pub chi_star: Option<f64>,
}

fn float64<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    float(&(*v as f32), s)
}

/// Theory at point `pi` for input case `case` of `sweep`, where it applies.
fn point_theory(sweep: &Sweep, pi: usize, case: &str) -> Option<PointTheory> {
    let exp = sweep.point(pi).ok()?;
    if exp.train.is_some() || exp.weights.is_some() {
        return None;
    }
    let input = exp.inputs.iter().find(|c| c.name == case)?;
    let t = crate::theory::predict(&exp.model, &exp.loss, input);
    Some(PointTheory {
        delta_ratio: t.delta_ratio,
        chi: t.chi,
        chi_star: t.chi_star,
    })
}

/// How the training runs of one grid point ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingSpread {
    /// The fraction of trials that went non-finite.
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
    fn of(trials: &[&TrialRecord]) -> Option<Self> {
        if trials
            .iter()
            .all(|t| t.final_loss.is_none() && t.origin.is_none())
        {
            return None;
        }
        let diverged: Vec<&&TrialRecord> = trials.iter().filter(|t| t.origin.is_some()).collect();
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
                    .filter_map(|t| t.first_nonfinite_step.map(|s| s as f32)),
            ),
            origins,
            final_loss: Spread::of(
                trials
                    .iter()
                    .filter(|t| t.origin.is_none())
                    .filter_map(|t| t.final_loss.map(|l| l as f32)),
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename = "sweep")]
pub struct SweepSummary {
    /// Experiment name.
    pub experiment: String,
    /// Trials per point asked for.
    pub trials_per_point: usize,
    /// Trials summarised in all (fewer than points × trials for an unfinished or sharded run).
    pub trials_done: usize,
    /// One entry per point × case, in grid order.
    pub points: Vec<PointSummary>,
}

/// Summarise `records` (in any order) of `sweep`.
pub fn summarise(experiment: &str, sweep: &Sweep, records: &[TrialRecord]) -> SweepSummary {
    let mut sorted = records.to_vec();
    let cases = &sweep.cases;
    let case_index = |c: &str| cases.iter().position(|x| x == c).unwrap_or(usize::MAX);
    sorted.sort_by(|a, b| {
        (a.point, case_index(&a.case), a.trial).cmp(&(b.point, case_index(&b.case), b.trial))
    });
    let mut points = Vec::new();
    for pi in 0..sweep.len() {
        for case in cases {
            let trials: Vec<&TrialRecord> = sorted
                .iter()
                .filter(|r| r.point == pi && &r.case == case)
                .collect();
            if trials.is_empty() {
                continue;
            }
            let layers = trials.iter().map(|t| t.delta_l2.len()).max().unwrap_or(0);
            let per_layer = |f: &dyn Fn(&TrialRecord) -> &Vec<f32>| {
                (0..layers)
                    .map(|l| Spread::of(trials.iter().filter_map(|t| f(t).get(l).copied())))
                    .collect()
            };
            points.push(PointSummary {
                point: pi,
                settings: sweep
                    .settings(pi)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                case: case.clone(),
                trials: trials.len(),
                nonfinite_trials: trials.iter().filter(|t| t.nonfinite).count(),
                ratio: Spread::of(trials.iter().map(|t| t.ratio)),
                delta_l2: per_layer(&|t| &t.delta_l2),
                weight_l2: per_layer(&|t| &t.weight_l2),
                training: TrainingSpread::of(&trials),
                theory: point_theory(sweep, pi, case),
            });
        }
    }
    SweepSummary {
        experiment: experiment.to_string(),
        trials_per_point: sweep.trials,
        trials_done: records.len(),
        points,
    }
}

/// The summary as a table for a terminal.
pub fn table(s: &SweepSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sweep {}: {} trial records, {} per point",
        s.experiment, s.trials_done, s.trials_per_point
    );
    if s.points.iter().any(|p| p.training.is_some()) {
        training_table(&mut out, s);
        return out;
    }
    let _ = writeln!(
        out,
        "{:>5}  {:<8}  {:>6}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  settings",
        "point", "case", "trials", "ratio med", "q1", "q3", "min", "max", "theory", "!fin"
    );
    for p in &s.points {
        let ratio: String = p
            .ratio
            .cells()
            .iter()
            .map(|c| format!("  {c:>10}"))
            .collect();
        let _ = writeln!(
            out,
            "{:>5}  {:<8}  {:>6}{ratio}  {:>10}  {:>6}  {}",
            p.point,
            p.case,
            p.trials,
            theory_cell(p),
            p.nonfinite_trials,
            p.settings.join(" ")
        );
    }
    out
}

/// A training sweep's rows: how many trials diverged, when (median and IQR of the first
/// non-finite step), where (counts by origin), and the final loss of the others.
fn training_table(out: &mut String, s: &SweepSummary) {
    let _ = writeln!(
        out,
        "{:>5}  {:>6}  {:>8}  {:>21}  {:<24}  {:>10}  settings",
        "point", "trials", "diverged", "first step med [IQR]", "origins", "final loss"
    );
    for p in &s.points {
        let Some(t) = &p.training else { continue };
        let f = &t.first_nonfinite_step;
        let step = if f.median.is_nan() {
            "-".to_string()
        } else {
            format!("{} [{}, {}]", f.median, f.q1, f.q3)
        };
        let _ = writeln!(
            out,
            "{:>5}  {:>6}  {:>7.0}%  {:>21}  {:<24}  {:>10}  {}",
            p.point,
            p.trials,
            100.0 * t.diverged_fraction,
            step,
            t.origins_text(),
            fmt_sci(t.final_loss.median, 3),
            p.settings.join(" ")
        );
    }
}

/// The summary as markdown, with the picture `svg` (a path relative to the page) embedded.
pub fn markdown(s: &SweepSummary, svg: &str) -> String {
    if s.points.iter().any(|p| p.training.is_some()) {
        return training_markdown(s, svg);
    }
    let mut out = markdown_head(
        s,
        "sweep",
        "‖δ_l‖ by layer: median and interquartile range over trials",
        svg,
    );
    // A depth sweep also has the ratio against depth (plot::ratio_svg), beside the picture.
    let has_depth_axis = s.points.first().is_some_and(|p| {
        p.settings.len() >= 2 && p.settings.iter().any(|k| k.starts_with("model.depth="))
    });
    if has_depth_axis {
        let ratio = svg.strip_suffix(".svg").unwrap_or(svg);
        let _ = writeln!(
            out,
            "![‖δ_first‖/‖δ_last‖ against depth: median, interquartile range, theory]({ratio}-ratio.svg)\n"
        );
    }
    let _ = writeln!(
        out,
        "| point | settings | case | trials | non-finite trials | ‖δ_first‖/‖δ_last‖ median | q1 | q3 | min | max | mean-field theory | ‖δ_first‖ median | ‖δ_last‖ median |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in &s.points {
        let first = p.delta_l2.first().map_or(f32::NAN, |d| d.median);
        let last = p.delta_l2.last().map_or(f32::NAN, |d| d.median);
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            p.point,
            p.settings.join(" "),
            p.case,
            p.trials,
            p.nonfinite_trials,
            p.ratio.cells().join(" | "),
            theory_cell(p),
            fmt_sci(first, 3),
            fmt_sci(last, 3)
        );
    }
    out
}

/// The predicted ratio of a point, or `-` without one.
fn theory_cell(p: &PointSummary) -> String {
    p.theory
        .as_ref()
        .map_or("-".to_string(), |t| fmt_sci(t.delta_ratio as f32, 3))
}

/// A sweep page's heading, its counts and its picture.
fn markdown_head(s: &SweepSummary, kind: &str, alt: &str, svg: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {} ({kind})\n", s.experiment);
    let _ = writeln!(
        out,
        "{} trial records, {} trials per grid point.\n",
        s.trials_done, s.trials_per_point
    );
    let _ = writeln!(out, "![{alt}]({svg})\n");
    out
}

/// A training sweep as markdown: per point, the fraction of trials that went non-finite,
/// when, where, and the final loss of the others.
fn training_markdown(s: &SweepSummary, svg: &str) -> String {
    let mut out = markdown_head(
        s,
        "training sweep",
        "trials that went non-finite, per grid point",
        svg,
    );
    let _ = writeln!(
        out,
        "| point | settings | trials | non-finite | first non-finite step: median | q1 | q3 | origins | final loss (finite runs): median |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---|---:|");
    for p in &s.points {
        let Some(t) = &p.training else { continue };
        let f = &t.first_nonfinite_step;
        let step = |v: f32| {
            if v.is_nan() {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} ({:.0} %) | {} | {} | {} | {} | {} |",
            p.point,
            p.settings.join(" "),
            p.trials,
            p.nonfinite_trials,
            100.0 * t.diverged_fraction,
            step(f.median),
            step(f.q1),
            step(f.q3),
            t.origins_text(),
            fmt_sci(t.final_loss.median, 3)
        );
    }
    out
}

/// One row of `trials_csv`: a trial × case × layer.
#[derive(Serialize)]
struct TrialRow<'a> {
    point: usize,
    trial: usize,
    seed: u64,
    case: &'a str,
    layer: usize,
    #[serde(serialize_with = "csv_float")]
    delta_l2: f32,
    #[serde(serialize_with = "csv_float")]
    weight_l2: f32,
    #[serde(serialize_with = "csv_float")]
    ratio: f32,
    nonfinite: bool,
}

/// Every trial as CSV, one row per trial × case × layer, with a header (long format: grid
/// points of different depths have different layer counts).
pub fn trials_csv(records: &[TrialRecord]) -> Result<String, csv::Error> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| (a.point, a.trial, &a.case).cmp(&(b.point, b.trial, &b.case)));
    let rows = sorted.iter().flat_map(|r| {
        r.delta_l2
            .iter()
            .enumerate()
            .map(move |(layer, &d)| TrialRow {
                point: r.point,
                trial: r.trial,
                seed: r.seed,
                case: &r.case,
                layer,
                delta_l2: d,
                weight_l2: r.weight_l2.get(layer).copied().unwrap_or(f32::NAN),
                ratio: r.ratio,
                nonfinite: r.nonfinite,
            })
    });
    csv_rows(rows, true)
}

/// One row of `layers_csv`: a point × case × layer, with the spreads across trials.
#[derive(Serialize)]
struct PointLayerRow<'a> {
    experiment: &'a str,
    point: usize,
    /// The point's settings, `key=value` separated by spaces (quoted by the csv writer).
    settings: String,
    case: &'a str,
    trials: usize,
    nonfinite_trials: usize,
    layer: usize,
    #[serde(serialize_with = "csv_float")]
    delta_median: f32,
    #[serde(serialize_with = "csv_float")]
    delta_q1: f32,
    #[serde(serialize_with = "csv_float")]
    delta_q3: f32,
    #[serde(serialize_with = "csv_float")]
    delta_min: f32,
    #[serde(serialize_with = "csv_float")]
    delta_max: f32,
    #[serde(serialize_with = "csv_float")]
    weight_median: f32,
    #[serde(serialize_with = "csv_float")]
    weight_q1: f32,
    #[serde(serialize_with = "csv_float")]
    weight_q3: f32,
    #[serde(serialize_with = "csv_float")]
    weight_min: f32,
    #[serde(serialize_with = "csv_float")]
    weight_max: f32,
}

/// One CSV row per point × case × layer, headed by the column names when `header`.
pub fn layers_csv(s: &SweepSummary, header: bool) -> Result<String, csv::Error> {
    let rows = s.points.iter().flat_map(|p| {
        p.delta_l2
            .iter()
            .zip(&p.weight_l2)
            .enumerate()
            .map(move |(layer, (d, w))| PointLayerRow {
                experiment: &s.experiment,
                point: p.point,
                settings: p.settings.join(" "),
                case: &p.case,
                trials: p.trials,
                nonfinite_trials: p.nonfinite_trials,
                layer,
                delta_median: d.median,
                delta_q1: d.q1,
                delta_q3: d.q3,
                delta_min: d.min,
                delta_max: d.max,
                weight_median: w.median,
                weight_q1: w.q1,
                weight_q3: w.q3,
                weight_min: w.min,
                weight_max: w.max,
            })
    });
    csv_rows(rows, header)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = Spread::of([3.0, f32::NAN, 1.0, f32::INFINITY, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!(Spread::of([f32::NAN]).median.is_nan());
    }

    #[test]
    fn trial_records_round_trip_through_json_with_non_finite_values() {
        let r = TrialRecord {
            point: 1,
            trial: 2,
            seed: 9,
            case: "x".into(),
            delta_l2: vec![1.5, f32::INFINITY],
            weight_l2: vec![f32::NAN, 0.25],
            ratio: f32::NEG_INFINITY,
            nonfinite: true,
            first_nonfinite_step: None,
            origin: None,
            final_loss: None,
        };
        let line = serde_json::to_string(&r).unwrap_or_default();
        let back: TrialRecord =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(back.delta_l2, r.delta_l2);
        assert!(back.weight_l2[0].is_nan() && back.weight_l2[1] == 0.25);
        assert_eq!(
            (back.ratio, back.point, back.trial),
            (f32::NEG_INFINITY, 1, 2)
        );
    }
}
