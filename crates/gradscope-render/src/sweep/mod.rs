//! A sweep's summary for people and tools: the terminal table and the notebook's markdown
//! (here), where theory holds ([`agreement`]'s cells and notes), and the CSV tables, one row
//! per trial or per point × case × layer ([`tables`]).

use std::fmt::Write as _;

use gradscope_report::floats::{fmt_sci, fmt_sci64};
use gradscope_report::{PointSummary, Spread, SweepSummary};

mod agreement;
mod tables;

pub(crate) use agreement::ranges;
pub use agreement::{
    AGREEMENT_BANDS, Agreement, health_notes, holds_cell, not_applying, predicted_median,
};
use agreement::{holds_by_depth, theory_notes};
pub use tables::{layers_csv, trials_csv};

/// Median, q1, q3, min, max for people (4 significant digits).
fn cells(s: &Spread) -> [String; 5] {
    [s.median, s.q1, s.q3, s.min, s.max].map(|v| fmt_sci64(v, 3))
}

/// Theory's ratio for people, as its f32 rounding prints (as it always has) unless that
/// rounding overflows where the f64 does not (a deep f64 point).
fn theory_ratio(v: f64) -> String {
    let narrow = v as f32;
    if narrow.is_finite() || !v.is_finite() {
        fmt_sci(narrow, 3)
    } else {
        fmt_sci64(v, 3)
    }
}

/// How many trial records a summary holds: `40 trial records, 10 per point`, or, for part of
/// a sweep, `PARTIAL: 40 of 120 trial records of the sweep, 10 per point`; `, in f64` after it
/// where every point ran in one precision other than f32 (a swept precision is in each
/// point's settings instead).
pub fn trial_counts(s: &SweepSummary) -> String {
    format!("{}{}", trial_counts_only(s), in_precision(s))
}

/// `, in f64` where every point of `s` ran in one precision other than f32, else nothing.
fn in_precision(s: &SweepSummary) -> String {
    let mut precisions = s.points.iter().map(|p| p.precision);
    let first = precisions.next();
    match first.filter(|&f| f != gradscope_report::Precision::F32 && precisions.all(|p| p == f)) {
        Some(p) => format!(", in {p}"),
        None => String::new(),
    }
}

fn trial_counts_only(s: &SweepSummary) -> String {
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
    if let Some(p) = s.points.first() {
        let keys: Vec<&str> = p.settings.keys().collect();
        let _ = writeln!(out, "settings: {}", keys.join(", "));
    }
    if s.points.iter().any(|p| p.training.is_some()) {
        training_table(&mut out, s);
        return out;
    }
    // Columns that say nothing are left out, so the table fits in 100 columns: the case with
    // one input case, the trial count where every point has all its trials (the header line
    // says how many); min and max are in the markdown, CSV and JSON.
    let (cases, trials) = optional_columns(s);
    let mut head = format!("{:>5}", "point");
    if cases {
        let _ = write!(head, "  {:<8}", "case");
    }
    if trials {
        let _ = write!(head, "  {:>6}", "trials");
    }
    let _ = writeln!(
        out,
        "{head}  {:>10}  {:>10}  {:>10}  {:>11}  {:<6}  {:>4}  settings",
        "ratio med", "q1", "q3", "theory", "holds", "!fin"
    );
    for p in &s.points {
        let mut row = format!("{:>5}", p.point);
        if cases {
            let _ = write!(row, "  {:<8}", p.case);
        }
        if trials {
            let _ = write!(row, "  {:>6}", p.trials);
        }
        let [median, q1, q3, _, _] = cells(&p.ratio);
        let _ = writeln!(
            out,
            "{row}  {median:>10}  {q1:>10}  {q3:>10}  {:>11}  {:<6}  {:>4}  {}",
            theory_cell(p),
            Agreement::of(p).map_or("-", |(a, _)| a.short()),
            p.nonfinite_trials,
            values(p)
        );
    }
    for line in theory_notes(s).into_iter().chain(health_notes(s)) {
        out.push_str(&wrap(&line, 100));
    }
    out
}

/// Whether the terminal table needs its case column (more than one input case) and its trial
/// column (some point lacks trials).
fn optional_columns(s: &SweepSummary) -> (bool, bool) {
    let cases = s
        .points
        .iter()
        .any(|p| s.points.first().is_some_and(|f| f.case != p.case));
    let trials = s.points.iter().any(|p| p.trials != s.trials_per_point);
    (cases, trials)
}

/// A point's settings as their values, in the order the `settings:` line names the keys.
fn values(p: &PointSummary) -> String {
    p.settings
        .keys()
        .map(|k| p.settings.cell(k))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` on lines of at most `width` characters, each ending in a newline.
fn wrap(text: &str, width: usize) -> String {
    crate::text::wrap(text, width)
        .into_iter()
        .map(|l| l + "\n")
        .collect()
}

/// A training sweep's rows: how many trials diverged, when (median and IQR of the first
/// non-finite step), where (counts by origin), and the final loss of the others.
fn training_table(out: &mut String, s: &SweepSummary) {
    let _ = writeln!(
        out,
        "{:>5}  {:>6}  {:>8}  {:>21}  {:<24}  {:>10}  settings",
        "point", "trials", "diverged", "first step med [IQR]", "origins", "final loss"
    );
    let health = health_notes(s);
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
            fmt_sci64(t.final_loss.median, 3),
            values(p)
        );
    }
    for line in health {
        out.push_str(&wrap(&line, 100));
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
    // A sweep over precision also says where theory puts the first tensor to leave it, beside
    // where the trials did (measured), the trials that went non-finite, and those that lost
    // their gradient to underflow (zero gradient).
    let precision_axis = s
        .points
        .first()
        .is_some_and(|p| p.settings.iter().any(|k| k.starts_with("precision=")));
    let (range_head, range_rule) = if precision_axis {
        (
            " zero-gradient trials | theory: first to leave the range | measured: first to leave it (trials) |",
            "---:|---|---|",
        )
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "| point | settings | case | trials | non-finite trials | ‖δ_first‖/‖δ_last‖ median | q1 | q3 | min | max | mean-field theory | theory holds | ‖δ_first‖ median | ‖δ_last‖ median |{range_head}"
    );
    let _ = writeln!(
        out,
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|{range_rule}"
    );
    for p in &s.points {
        let first = p.delta_l2.first().map_or(f64::NAN, |d| d.median);
        let last = p.delta_l2.last().map_or(f64::NAN, |d| d.median);
        let range_cells = match precision_axis {
            true => format!(
                " {} | {} | {} |",
                p.zero_gradient_trials,
                leaves_cell(p),
                left_cell(p)
            ),
            false => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |{}",
            p.point,
            p.settings.join(" "),
            p.case,
            p.trials,
            p.nonfinite_trials,
            cells(&p.ratio).join(" | "),
            theory_cell(p),
            holds_cell(p),
            fmt_sci64(first, 3),
            fmt_sci64(last, 3),
            range_cells
        );
    }
    let notes: Vec<String> = theory_notes(s).into_iter().chain(health_notes(s)).collect();
    if !notes.is_empty() {
        out.push('\n');
        for line in notes {
            let _ = writeln!(out, "{line}.\n");
        }
    }
    if has_depth_axis {
        out.push_str(&holds_by_depth(s));
    }
    out
}

/// Theory's first tensor to leave the point's precision: `z.layers.17 above`, `none`, in
/// parentheses where theory does not apply, or `-` without theory.
fn leaves_cell(p: &PointSummary) -> String {
    let said = match &p.theory {
        None => return "-".to_string(),
        Some(t) => match (&t.leaves_range, &t.range_unknown_from) {
            (Some(l), _) => format!("{} {}", l.tensor, l.direction),
            (None, Some(u)) => format!("unknown from {} (past theory's f64)", u.tensor),
            (None, None) => "none".to_string(),
        },
    };
    match p.theory.as_ref().is_some_and(|t| t.applies) {
        true => said,
        false => format!("({said})"),
    }
}

/// Where the point's trials left the range, measured: the most frequent first tensor with the
/// trials it was first in, and how many left at all where that is more (`z.layers.18 above
/// (12/20; 20/20 left)`); `none (0/20)`; `-` where it was not measured.
fn left_cell(p: &PointSummary) -> String {
    let Some(l) = &p.left_range else {
        return "-".to_string();
    };
    match &l.first {
        None => format!("none (0/{})", l.checked),
        Some(f) if l.left == l.first_trials => {
            format!(
                "{} {} ({}/{})",
                f.tensor, f.direction, l.first_trials, l.checked
            )
        }
        Some(f) => format!(
            "{} {} ({}/{}; {}/{} left)",
            f.tensor, f.direction, l.first_trials, l.checked, l.left, l.checked
        ),
    }
}

/// The predicted ratio of a point, in parentheses where theory does not apply there, or `-`
/// without one.
fn theory_cell(p: &PointSummary) -> String {
    match &p.theory {
        None => "-".to_string(),
        Some(t) if t.applies => theory_ratio(t.delta_ratio),
        Some(t) => format!("({})", theory_ratio(t.delta_ratio)),
    }
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
            "{} trial records, {} trials per grid point{}.\n",
            s.trials_done,
            s.trials_per_point,
            in_precision(s)
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
        // A step's quantile (a multiple of 0.25) prints as it did when spreads were f32s.
        let step = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                (v as f32).to_string()
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
            fmt_sci64(t.final_loss.median, 3)
        );
    }
    let notes = health_notes(s);
    if !notes.is_empty() {
        out.push('\n');
        for line in notes {
            let _ = writeln!(out, "{line}.\n");
        }
    }
    out
}
