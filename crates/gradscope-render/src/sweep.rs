//! A sweep's summary for people and tools: the terminal table, the notebook's markdown, and the
//! CSV tables (one row per trial, or per point × case × layer).

use std::fmt::Write as _;

use gradscope_report::floats::{csv_num, fmt_sci};
use gradscope_report::{PointSummary, Spread, SweepSummary, TrialRecord};

/// Median, q1, q3, min, max for people (4 significant digits).
fn cells(s: &Spread) -> [String; 5] {
    [s.median, s.q1, s.q3, s.min, s.max].map(|v| fmt_sci(v, 3))
}

/// How closely a point's measured median ratio agrees with mean-field theory's predicted
/// median: |median / predicted − 1| at most 5 %, at most 25 %, or more. The predicted median
/// is `delta_ratio`, or, where theory knows the finite-width spread (`ratio_quartiles`
/// [q1, q3] of a log-normal ratio), that spread's median √(q1·q3), which lies below
/// `delta_ratio` by the factor e^(−S) of the README's derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Within 5 %.
    Close,
    /// Within 25 %.
    Rough,
    /// Off by more than 25 %.
    No,
    /// No finite median or prediction to compare.
    NotMeasured,
}

/// The bounds of [`Agreement::Close`] and [`Agreement::Rough`].
pub const AGREEMENT_BANDS: [f64; 2] = [0.05, 0.25];

impl Agreement {
    /// The agreement at `p`, and the factor median / predicted; `None` without theory.
    pub fn of(p: &PointSummary) -> Option<(Self, f64)> {
        let t = p.theory.as_ref()?;
        let predicted = predicted_median(p)?;
        let factor = f64::from(p.ratio.median) / predicted;
        let off = (factor - 1.0).abs();
        let a = if !factor.is_finite() || t.delta_ratio == 0.0 {
            Self::NotMeasured
        } else if off <= AGREEMENT_BANDS[0] {
            Self::Close
        } else if off <= AGREEMENT_BANDS[1] {
            Self::Rough
        } else {
            Self::No
        };
        Some((a, factor))
    }

    /// `≤ 5 %`, `≤ 25 %`, `no`, `-`.
    pub fn short(self) -> &'static str {
        match self {
            Self::Close => "≤ 5 %",
            Self::Rough => "≤ 25 %",
            Self::No => "no",
            Self::NotMeasured => "-",
        }
    }
}

/// Theory's median ratio at `p` (see [`Agreement`]); `None` without theory.
pub fn predicted_median(p: &PointSummary) -> Option<f64> {
    let t = p.theory.as_ref()?;
    Some(match t.ratio_quartiles {
        Some([q1, q3]) if q1 > 0.0 && q3 > 0.0 => (q1 * q3).sqrt(),
        _ => t.delta_ratio,
    })
}

/// The "theory holds" cell of `p`: the agreement and the factor measured / predicted, and
/// `(does not apply)` where theory itself says it does not describe the point; `-` without
/// theory.
pub fn holds_cell(p: &PointSummary) -> String {
    let Some((a, factor)) = Agreement::of(p) else {
        return "-".into();
    };
    let flagged = p.theory.as_ref().is_some_and(|t| !t.applies);
    let mut cell = match a {
        Agreement::NotMeasured => "not measured".to_string(),
        a => format!("{} (×{})", a.short(), fmt_factor(factor)),
    };
    if flagged {
        cell.push_str(" (does not apply)");
    }
    cell
}

/// A factor near 1 in 3 significant digits, a far one in scientific notation.
fn fmt_factor(f: f64) -> String {
    if (0.01..1000.0).contains(&f.abs()) {
        format!("{:.3}", f)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        fmt_sci(f as f32, 2)
    }
}

/// The distinct reasons theory gives for not describing some of the points, each with the
/// points it concerns (the first caveat of each such point).
pub fn not_applying(s: &SweepSummary) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for p in &s.points {
        let Some(t) = p.theory.as_ref().filter(|t| !t.applies) else {
            continue;
        };
        let reason = t
            .caveats
            .first()
            .cloned()
            .unwrap_or_else(|| "no reason recorded".into());
        match out.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, points)) => {
                if points.last() != Some(&p.point) {
                    points.push(p.point);
                }
            }
            None => out.push((reason, vec![p.point])),
        }
    }
    out
}

/// `0–5, 9, 12–14`.
pub(crate) fn ranges(points: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let mut j = i;
        while j + 1 < points.len() && points[j + 1] == points[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            points[i].to_string()
        } else {
            format!("{}–{}", points[i], points[j])
        });
        i = j + 1;
    }
    parts.join(", ")
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

/// The lines that say how many trials had a dead hidden layer or a kernel gradient exactly 0
/// everywhere, and at which points (none where no trial had): a finite sweep is not a
/// healthy one.
pub fn health_notes(s: &SweepSummary) -> Vec<String> {
    let mut lines = Vec::new();
    type Count = fn(&PointSummary) -> usize;
    let kinds: [(&str, Count); 2] = [
        (
            "with a dead hidden layer (every unit 0 for the whole batch)",
            |p| p.dead_trials,
        ),
        ("with a kernel gradient exactly 0 everywhere", |p| {
            p.zero_gradient_trials
        }),
    ];
    for (what, count) in kinds {
        let total: usize = s.points.iter().map(count).sum();
        if total == 0 {
            continue;
        }
        let mut points: Vec<usize> = s
            .points
            .iter()
            .filter(|p| count(p) > 0)
            .map(|p| p.point)
            .collect();
        points.dedup();
        let all: usize = s.points.iter().map(|p| p.trials).sum();
        lines.push(format!(
            "{total} of {all} trials {what}, at points {}",
            ranges(&points)
        ));
    }
    lines
}

/// The lines under a table with theory: what "holds" means, and why theory in parentheses
/// does not apply at its points.
fn theory_notes(s: &SweepSummary) -> Vec<String> {
    if s.points.iter().all(|p| p.theory.is_none()) {
        return Vec::new();
    }
    let finite_width = s.points.iter().any(|p| {
        p.theory
            .as_ref()
            .is_some_and(|t| t.ratio_quartiles.is_some())
    });
    let against = if finite_width {
        "median (delta_ratio, or where theory gives the finite-width quartiles, their median \
         √(q1·q3))"
    } else {
        "delta_ratio"
    };
    let mut lines = vec![format!(
        "holds: the measured median ratio within {:.0} % or {:.0} % of mean-field theory's \
         {against}, or not (no); theory in parentheses does not apply at that point, and is \
         shown for comparison only",
        100.0 * AGREEMENT_BANDS[0],
        100.0 * AGREEMENT_BANDS[1]
    )];
    for (reason, points) in not_applying(s) {
        lines.push(format!(
            "theory does not apply at points {}: {reason}",
            ranges(&points)
        ));
    }
    lines
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
            fmt_sci(t.final_loss.median, 3),
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
    let _ = writeln!(
        out,
        "| point | settings | case | trials | non-finite trials | ‖δ_first‖/‖δ_last‖ median | q1 | q3 | min | max | mean-field theory | theory holds | ‖δ_first‖ median | ‖δ_last‖ median |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for p in &s.points {
        let first = p.delta_l2.first().map_or(f32::NAN, |d| d.median);
        let last = p.delta_l2.last().map_or(f32::NAN, |d| d.median);
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.point,
            p.settings.join(" "),
            p.case,
            p.trials,
            p.nonfinite_trials,
            cells(&p.ratio).join(" | "),
            theory_cell(p),
            holds_cell(p),
            fmt_sci(first, 3),
            fmt_sci(last, 3)
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

/// Where theory holds, as a grid: a row per combination of the other settings (and case),
/// a column per depth, each cell the agreement and the factor measured / predicted. Empty
/// without theory.
fn holds_by_depth(s: &SweepSummary) -> String {
    if s.points.iter().all(|p| p.theory.is_none()) {
        return String::new();
    }
    let depth_of = |p: &PointSummary| {
        p.settings
            .iter()
            .find_map(|k| k.strip_prefix("model.depth="))
            .unwrap_or("?")
            .to_string()
    };
    let rest_of = |p: &PointSummary| {
        let rest: Vec<&str> = p
            .settings
            .iter()
            .filter(|k| !k.starts_with("model.depth="))
            .map(String::as_str)
            .collect();
        format!("`{}` {}", rest.join(" "), p.case)
    };
    let mut depths: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for p in &s.points {
        let (d, r) = (depth_of(p), rest_of(p));
        if !depths.contains(&d) {
            depths.push(d.clone());
        }
        let cell = holds_cell(p);
        match rows.iter_mut().find(|(k, _)| *k == r) {
            Some((_, cells)) => cells.push((d, cell)),
            None => rows.push((r, vec![(d, cell)])),
        }
    }
    depths.sort_by(|a, b| {
        let n = |x: &str| x.parse::<f64>().unwrap_or(f64::INFINITY);
        n(a).total_cmp(&n(b))
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Where mean-field theory holds\n\nThe measured median ‖δ_first‖/‖δ_last‖ against \
         theory's median (delta_ratio, or √(q1·q3) of its finite-width quartiles where it \
         gives them), by depth: within {:.0} %, within {:.0} %, or not (no), with the factor \
         measured / predicted.\n",
        100.0 * AGREEMENT_BANDS[0],
        100.0 * AGREEMENT_BANDS[1]
    );
    let _ = writeln!(
        out,
        "| settings, case | {} |",
        depths
            .iter()
            .map(|d| format!("depth {d}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(depths.len()));
    for (r, cells) in &rows {
        let line: Vec<&str> = depths
            .iter()
            .map(|d| {
                cells
                    .iter()
                    .find(|(x, _)| x == d)
                    .map_or("", |(_, c)| c.as_str())
            })
            .collect();
        let _ = writeln!(out, "| {r} | {} |", line.join(" | "));
    }
    out
}

/// The predicted ratio of a point, in parentheses where theory does not apply there, or `-`
/// without one.
fn theory_cell(p: &PointSummary) -> String {
    match &p.theory {
        None => "-".to_string(),
        Some(t) if t.applies => fmt_sci(t.delta_ratio as f32, 3),
        Some(t) => format!("({})", fmt_sci(t.delta_ratio as f32, 3)),
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
    let notes = health_notes(s);
    if !notes.is_empty() {
        out.push('\n');
        for line in notes {
            let _ = writeln!(out, "{line}.\n");
        }
    }
    out
}

/// The swept keys of `s` as CSV column names, in axis order: the key itself, or `set.KEY`
/// where it would take the name of one of `fixed`'s columns.
fn setting_columns(s: &SweepSummary, fixed: &[&str]) -> Vec<(String, String)> {
    let keys: Vec<String> = s
        .points
        .first()
        .map(|p| p.settings.keys().map(str::to_string).collect())
        .unwrap_or_default();
    keys.into_iter()
        .map(|k| {
            let column = if fixed.contains(&k.as_str()) {
                format!("set.{k}")
            } else {
                k.clone()
            };
            (k, column)
        })
        .collect()
}

/// Rows of strings as CSV, headed by `header` when given.
fn csv_table(
    header: Option<Vec<String>>,
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if let Some(h) = header {
        w.write_record(&h)?;
    }
    for row in rows {
        w.write_record(&row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field is a `String`: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An f64 in its shortest form (`NaN`, `inf`, `-inf` where not finite), as JSON has it.
fn csv_num64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        gradscope_report::floats::fmt_sci64(v, 0)
    }
}

/// The columns of `trials_csv` after the swept keys.
const TRIAL_COLUMNS: &[&str] = &[
    "trial",
    "seed",
    "case",
    "layer",
    "delta_l2",
    "weight_l2",
    "ratio",
    "nonfinite",
    "dead",
    "zero_gradient",
];

/// Every trial as CSV, one row per trial × case × layer, with a header (long format: grid
/// points of different depths have different layer counts): the point, a column per swept
/// key holding its value (the settings from `s`), then `TRIAL_COLUMNS`.
pub fn trials_csv(s: &SweepSummary, records: &[TrialRecord]) -> Result<String, csv::Error> {
    let mut fixed = vec!["point"];
    fixed.extend_from_slice(TRIAL_COLUMNS);
    let keys = setting_columns(s, &fixed);
    let mut header = vec!["point".to_string()];
    header.extend(keys.iter().map(|(_, c)| c.clone()));
    header.extend(TRIAL_COLUMNS.iter().map(|c| c.to_string()));
    let settings = |point: usize| -> Vec<String> {
        let p = s.points.iter().find(|p| p.point == point);
        keys.iter()
            .map(|(k, _)| p.map_or(String::new(), |p| p.settings.cell(k)))
            .collect()
    };
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| (a.point, a.trial, &a.case).cmp(&(b.point, b.trial, &b.case)));
    let rows = sorted.iter().flat_map(|r| {
        let values = settings(r.point);
        r.delta_l2.iter().enumerate().map(move |(layer, &d)| {
            let mut row = vec![r.point.to_string()];
            row.extend(values.iter().cloned());
            row.extend([
                r.trial.to_string(),
                r.seed.to_string(),
                r.case.clone(),
                layer.to_string(),
                csv_num(d),
                csv_num(r.weight_l2.get(layer).copied().unwrap_or(f32::NAN)),
                csv_num(r.ratio),
                r.nonfinite.to_string(),
                r.dead.to_string(),
                r.zero_gradient.to_string(),
            ]);
            row
        })
    });
    csv_table(Some(header), rows)
}

/// The columns of `layers_csv` after the swept keys (and `partial`, last).
const POINT_COLUMNS: &[&str] = &[
    "case",
    "trials",
    "nonfinite_trials",
    "dead_trials",
    "zero_gradient_trials",
    "ratio_median",
    "ratio_q1",
    "ratio_q3",
    "theory_delta_ratio",
    "theory_applies",
    "layer",
    "delta_median",
    "delta_q1",
    "delta_q3",
    "delta_min",
    "delta_max",
    "weight_median",
    "weight_q1",
    "weight_q3",
    "weight_min",
    "weight_max",
];

/// One CSV row per point × case × layer, headed by the column names when `header`: the
/// experiment, the point, a column per swept key holding its value, then `POINT_COLUMNS`
/// (the ratio's spread and theory's prediction repeat on each layer's row; theory's cells
/// are empty where there is none), and `partial`.
pub fn layers_csv(s: &SweepSummary, header: bool) -> Result<String, csv::Error> {
    let mut fixed = vec!["experiment", "point", "partial"];
    fixed.extend_from_slice(POINT_COLUMNS);
    let keys = setting_columns(s, &fixed);
    let head = header.then(|| {
        let mut h = vec!["experiment".to_string(), "point".to_string()];
        h.extend(keys.iter().map(|(_, c)| c.clone()));
        h.extend(POINT_COLUMNS.iter().map(|c| c.to_string()));
        h.push("partial".into());
        h
    });
    let rows = s.points.iter().flat_map(|p| {
        let keys = &keys;
        p.delta_l2
            .iter()
            .zip(&p.weight_l2)
            .enumerate()
            .map(move |(layer, (d, w))| {
                let mut row = vec![s.experiment.clone(), p.point.to_string()];
                row.extend(keys.iter().map(|(k, _)| p.settings.cell(k)));
                row.extend([
                    p.case.clone(),
                    p.trials.to_string(),
                    p.nonfinite_trials.to_string(),
                    p.dead_trials.to_string(),
                    p.zero_gradient_trials.to_string(),
                    csv_num(p.ratio.median),
                    csv_num(p.ratio.q1),
                    csv_num(p.ratio.q3),
                    p.theory
                        .as_ref()
                        .map_or(String::new(), |t| csv_num64(t.delta_ratio)),
                    p.theory
                        .as_ref()
                        .map_or(String::new(), |t| t.applies.to_string()),
                    layer.to_string(),
                ]);
                for x in [d, w] {
                    row.extend([x.median, x.q1, x.q3, x.min, x.max].map(csv_num));
                }
                row.push(s.partial.to_string());
                row
            })
    });
    csv_table(head, rows)
}
