//! Where mean-field theory holds at a sweep's points: the agreement of the measured median
//! with theory's, the reasons it does not apply, the counts of unhealthy trials, and the
//! grid of the agreement by depth.

use std::fmt::Write as _;

use gradscope_report::floats::fmt_sci;
use gradscope_report::{PointSummary, SweepSummary};

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
        let factor = p.ratio.median / predicted;
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
    // Measured where a sweep keeps z_l (over precision): the trials whose z_l or δ_l left it.
    let measured: Vec<(&PointSummary, &gradscope_report::LeftRange)> = s
        .points
        .iter()
        .filter_map(|p| p.left_range.as_ref().map(|l| (p, l)))
        .collect();
    if !measured.is_empty() {
        let left: usize = measured.iter().map(|(_, l)| l.left).sum();
        let checked: usize = measured.iter().map(|(_, l)| l.checked).sum();
        let mut points: Vec<usize> = measured
            .iter()
            .filter(|(_, l)| l.left > 0)
            .map(|(p, _)| p.point)
            .collect();
        points.dedup();
        lines.push(match left {
            0 => format!(
                "no trial of {checked} measured left its precision's range (every z_l and δ_l within it)"
            ),
            _ => format!(
                "{left} of {checked} trials measured left their precision's range (a z_l or δ_l non-finite, or its root mean square under the smallest normal), at points {}; each point's first tensor to leave it: left_range in summary.json",
                ranges(&points)
            ),
        });
    }
    lines
}

/// The lines under a table with theory: what "holds" means, and why theory in parentheses
/// does not apply at its points.
pub(super) fn theory_notes(s: &SweepSummary) -> Vec<String> {
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

/// Where theory holds, as a grid: a row per combination of the other settings (and case),
/// a column per depth, each cell the agreement and the factor measured / predicted. Empty
/// without theory.
pub(super) fn holds_by_depth(s: &SweepSummary) -> String {
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
