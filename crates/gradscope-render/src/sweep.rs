//! A sweep's summary for people and tools: the terminal table, the notebook's markdown, and the
//! CSV tables (one row per trial, or per point × case × layer).

use std::fmt::Write as _;

use gradscope_report::floats::{csv_float, fmt_sci};
use gradscope_report::{PointSummary, Spread, SweepSummary, TrialRecord};
use serde::Serialize;

use crate::text::csv_rows;

/// Median, q1, q3, min, max for people (4 significant digits).
fn cells(s: &Spread) -> [String; 5] {
    [s.median, s.q1, s.q3, s.min, s.max].map(|v| fmt_sci(v, 3))
}

/// How many trial records a summary holds: `40 trial records, 10 per point`, or, for part of
/// a sweep, `PARTIAL: 40 of 120 trial records of the sweep, 10 per point`.
pub fn trial_counts(s: &SweepSummary) -> String {
    if s.partial {
        format!(
            "PARTIAL: {} of {} trial records of the sweep, {} per point",
            s.trials_done, s.trials_expected, s.trials_per_point
        )
    } else {
        format!(
            "{} trial records, {} per point",
            s.trials_done, s.trials_per_point
        )
    }
}

/// The summary as a table for a terminal.
pub fn table(s: &SweepSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "sweep {}: {}", s.experiment, trial_counts(s));
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
        let ratio: String = cells(&p.ratio)
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
            cells(&p.ratio).join(" | "),
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
    if s.partial {
        let _ = writeln!(out, "**{}.**\n", trial_counts(s));
    } else {
        let _ = writeln!(
            out,
            "{} trial records, {} trials per grid point.\n",
            s.trials_done, s.trials_per_point
        );
    }
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
    /// Whether the summary covers only part of the sweep (last, so that the columns before
    /// it keep their places).
    partial: bool,
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
                partial: s.partial,
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
