//! A two-axis grid's phase diagram: the measured ratio per cell and theory's χ* = 1.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::axis::{CellAxis, numbers};
use super::svg::{compact, esc, not_applying_note, open_svg};

/// Whether `s` is a two-axis grid (each axis with at least 3 values, one input case, not
/// training): drawn as a phase diagram.
pub(super) fn is_grid(s: &SweepSummary) -> bool {
    let distinct = |i: usize| {
        let mut v: Vec<&String> = s.points.iter().filter_map(|p| p.settings.get(i)).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v.len()
    };
    s.points
        .iter()
        .all(|p| p.settings.len() == 2 && p.training.is_none())
        && s.points.windows(2).all(|w| w[0].case == w[1].case)
        && distinct(0) >= 3
        && distinct(1) >= 3
}

/// A diverging, colour-blind-safe scale (blue: vanishing, white: 1, red: exploding) for a
/// log10 ratio clamped to ±`span` decades.
pub(super) fn diverging(log_ratio: f64, span: f64) -> String {
    let t = (log_ratio / span).clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        // white → #2166ac
        let u = -t;
        (
            255.0 - u * (255.0 - 33.0),
            255.0 - u * (255.0 - 102.0),
            255.0 - u * (255.0 - 172.0),
        )
    } else {
        // white → #b2182b
        (
            255.0 - t * (255.0 - 178.0),
            255.0 - t * (255.0 - 24.0),
            255.0 - t * (255.0 - 43.0),
        )
    };
    format!("#{:02x}{:02x}{:02x}", r as u8, g as u8, b as u8)
}

/// A two-axis sweep as a phase diagram: one cell per grid point coloured by the measured
/// log10 of the median ‖δ_first‖/‖δ_last‖, and mean-field theory's χ* = 1 (the edge of chaos:
/// χ₁ at the hidden layers' fixed point, whatever the depth) where χ* crosses 1. A numeric
/// axis is spaced by value; χ* = 1 is interpolated only along a numeric axis, and where it
/// can be drawn along none, each cell is marked with theory's side of 1. Points where theory
/// does not apply take no part, and a footnote says how many.
pub fn phase_svg(s: &SweepSummary) -> String {
    let value_of = |p: &PointSummary, i: usize| compact(&p.settings[i]);
    let (xs, ys) = (axis_values(s, 1), axis_values(s, 0));
    let (left, top) = (200.0, 70.0);
    let xa = CellAxis::new(left, 560.0, &values(&xs));
    let ya = CellAxis::new(top, 340.0, &values(&ys));
    let bottom = ya.end();
    let span = s
        .points
        .iter()
        .map(|p| p.ratio.median.log10().abs())
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        .ceil();
    // ln χ* per cell where theory applies, for the χ* = 1 marks.
    let mut log_chi = vec![vec![f64::NAN; xs.len()]; ys.len()];
    let mut cells = String::new();
    let mut not_applying: Vec<&PointSummary> = Vec::new();
    for p in &s.points {
        let (Some(i), Some(j)) = (
            ys.iter().position(|y| *y == value_of(p, 0)),
            xs.iter().position(|x| *x == value_of(p, 1)),
        ) else {
            continue;
        };
        let ((x0, x1), (y0, y1)) = (xa.edges(j), ya.edges(i));
        let log_ratio = p.ratio.median.log10();
        let fill = if log_ratio.is_finite() {
            diverging(log_ratio, span)
        } else {
            "#bbbbbb".to_string()
        };
        let _ = writeln!(
            cells,
            r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="#fff"/>"##,
            x1 - x0,
            y1 - y0
        );
        match &p.theory {
            Some(t) if t.applies => log_chi[i][j] = t.chi_star.map_or(f64::NAN, f64::ln),
            Some(_) => {
                not_applying.push(p);
                let _ = writeln!(
                    cells,
                    r##"<text class="theory-na" x="{:.1}" y="{:.1}" font-size="10" fill="#555">theory n/a</text>"##,
                    x0 + 4.0,
                    y0 + 13.0
                );
            }
            None => {}
        }
    }
    let drawn = chi_marks(&mut cells, &log_chi, &xa, &ya);
    let mut notes = vec![
        format!(
            "input case {}; grey: no finite median; theory: mean-field theory's edge of chaos, χ* = 1 (χ₁ at the hidden layers' fixed point)",
            s.points.first().map_or("", |p| p.case.as_str())
        ),
        drawn.note(&key(&xs[0]), &key(&ys[0])),
    ];
    if !not_applying.is_empty() {
        notes.push(format!(
            "theory n/a: {}",
            not_applying_note(&not_applying, s.points.len())
        ));
    }
    notes.retain(|n| !n.is_empty());
    let extra = 14.0 * (notes.len() as f64 - 1.0);
    let height = bottom + 130.0 + extra;
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!(
            "{}: measured ‖δ_first‖/‖δ_last‖ (median) and theory's χ = 1",
            s.experiment
        ),
    );
    o.push_str(&cells);
    phase_axes(&mut o, (&xs, &xa), (&ys, &ya));
    for (k, n) in notes.iter().enumerate() {
        let _ = writeln!(
            o,
            r##"<text x="{left:.1}" y="{:.1}" font-size="11" fill="#555">{}</text>"##,
            bottom + 56.0 + 14.0 * k as f64,
            esc(n)
        );
    }
    phase_legend(&mut o, span, bottom + 70.0 + extra);
    o.push_str("</svg>\n");
    o
}

/// The values of axis `i`: in order of first appearance, or ascending where every one is a
/// number.
fn axis_values(s: &SweepSummary, i: usize) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for p in &s.points {
        let v = compact(&p.settings[i]);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    if let Some(n) = numbers(&self::values(&values)) {
        let mut order: Vec<(f64, String)> = n.into_iter().zip(values).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        values = order.into_iter().map(|(_, v)| v).collect();
    }
    values
}

/// The value part of each `key=value`.
fn values(settings: &[String]) -> Vec<String> {
    settings.iter().map(|v| value(v)).collect()
}

fn value(v: &str) -> String {
    v.split_once('=')
        .map_or(v.to_string(), |(_, v)| v.to_string())
}

fn key(v: &str) -> String {
    v.split_once('=')
        .map_or(String::new(), |(k, _)| k.to_string())
}

/// How theory's χ* = 1 was drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drawn {
    /// A curve through both numeric axes.
    Contour,
    /// Ticks along the numeric x axis, one per crossing in a row (y categorical).
    AlongX,
    /// Ticks along the numeric y axis, one per crossing in a column (x categorical).
    AlongY,
    /// Each cell marked with theory's side of 1: no crossing along a numeric axis.
    PerCell,
    /// Nothing: no theory, or every cell on one side of 1 (or on it); which, in words.
    Nothing(&'static str),
}

impl Drawn {
    /// The footnote on where the line is and is not.
    fn note(self, x: &str, y: &str) -> String {
        match self {
            Drawn::Contour => {
                format!("dashed: χ* = 1, interpolated in {x} and {y}, both spaced by value")
            }
            Drawn::AlongX => format!(
                "dashed: χ* = 1, interpolated along {x} within each row; {y} is categorical, so rows are not joined"
            ),
            Drawn::AlongY => format!(
                "dashed: χ* = 1, interpolated along {y} within each column; {x} is categorical, so columns are not joined"
            ),
            Drawn::PerCell => "χ* = 1 not drawn: it crosses no numeric axis; each cell says theory's side (χ*<1 ordered, χ*>1 chaotic)".into(),
            Drawn::Nothing(why) => format!("χ* = 1 not drawn: {why}"),
        }
    }
}

/// Where ln χ* changes sign between neighbours of `row`: (index of the second, fraction of
/// the way from the first).
fn crossings(row: &[f64]) -> Vec<(usize, f64)> {
    (1..row.len())
        .filter_map(|j| {
            let (a, b) = (row[j - 1], row[j]);
            (a.is_finite() && b.is_finite() && (a < 0.0) != (b < 0.0)).then(|| (j, a / (a - b)))
        })
        .collect()
}

/// The position of a crossing between cells `j − 1` and `j` of a numeric axis, a fraction `t`
/// of the way in value (ln χ* interpolated linearly in the value).
fn between(axis: &CellAxis, j: usize, t: f64) -> Option<f64> {
    let (a, b) = (axis.value(j - 1)?, axis.value(j)?);
    axis.at(a + t * (b - a))
}

/// Theory's χ* = 1, only along numeric axes: with both numeric, a curve through each row's
/// crossing (along x), joined from row to row; with one numeric, a tick across each cell
/// pair where it crosses along that axis, confined to its row (column) of the categorical
/// one; with none, or no crossing along a numeric axis, each cell's side of 1.
fn chi_marks(o: &mut String, log_chi: &[Vec<f64>], xa: &CellAxis, ya: &CellAxis) -> Drawn {
    const STYLE: &str = r##"fill="none" stroke="#000" stroke-width="2.5" stroke-dasharray="8,5""##;
    let rows: Vec<Vec<(usize, f64)>> = log_chi.iter().map(|r| crossings(r)).collect();
    let columns: Vec<Vec<(usize, f64)>> = (0..log_chi.first().map_or(0, Vec::len))
        .map(|j| crossings(&log_chi.iter().map(|r| r[j]).collect::<Vec<_>>()))
        .collect();
    let tick = |o: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64)| {
        let _ = writeln!(
            o,
            r#"<line class="chi-star" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {STYLE}/>"#
        );
    };
    if xa.numeric() && rows.iter().any(|r| !r.is_empty()) {
        if ya.numeric() && rows.iter().all(|r| r.len() <= 1) {
            // One crossing per row: a curve, broken at rows without one; a lone row's
            // crossing a tick across its row.
            let mut runs: Vec<Vec<(f64, usize)>> = vec![Vec::new()];
            for (i, r) in rows.iter().enumerate() {
                match r.first().and_then(|&(j, t)| between(xa, j, t)) {
                    Some(x) => runs.last_mut().into_iter().for_each(|run| run.push((x, i))),
                    None => runs.push(Vec::new()),
                }
            }
            for run in &runs {
                match run.as_slice() {
                    [] => {}
                    [(x, i)] => {
                        let (y0, y1) = ya.edges(*i);
                        tick(o, (*x, y0 + 6.0), (*x, y1 - 6.0));
                    }
                    _ => {
                        let pts: Vec<String> = run
                            .iter()
                            .map(|(x, i)| format!("{x:.1},{:.1}", ya.center(*i)))
                            .collect();
                        let _ = writeln!(
                            o,
                            r#"<polyline class="chi-star" points="{}" {STYLE}/>"#,
                            pts.join(" ")
                        );
                    }
                }
            }
            return Drawn::Contour;
        }
        for (i, r) in rows.iter().enumerate() {
            let (y0, y1) = ya.edges(i);
            for x in r.iter().filter_map(|&(j, t)| between(xa, j, t)) {
                tick(o, (x, y0 + 6.0), (x, y1 - 6.0));
            }
        }
        return Drawn::AlongX;
    }
    if ya.numeric() && columns.iter().any(|c| !c.is_empty()) {
        for (j, c) in columns.iter().enumerate() {
            let (x0, x1) = xa.edges(j);
            for y in c.iter().filter_map(|&(i, t)| between(ya, i, t)) {
                tick(o, (x0 + 6.0, y), (x1 - 6.0, y));
            }
        }
        return Drawn::AlongY;
    }
    let finite: Vec<f64> = log_chi
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let on_one = |v: &f64| v.abs() < 1e-9;
    if finite.is_empty() {
        return Drawn::Nothing("no point has theory's χ*");
    }
    if finite.iter().all(on_one) {
        return Drawn::Nothing("theory's χ* is 1 (critical) at every point");
    }
    if finite.iter().all(|v| *v < 0.0) {
        return Drawn::Nothing("theory's χ* is below 1 (ordered) at every point");
    }
    if finite.iter().all(|v| *v >= 0.0) {
        return Drawn::Nothing("theory's χ* is 1 or above (chaotic) at every point");
    }
    for (i, row) in log_chi.iter().enumerate() {
        for (j, v) in row.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let ((x0, _), (y0, _)) = (xa.edges(j), ya.edges(i));
            let side = if *v < 0.0 { "χ*&lt;1" } else { "χ*&gt;1" };
            let _ = writeln!(
                o,
                r#"<text class="chi-star-cell" x="{:.1}" y="{:.1}" font-size="10">{side}</text>"#,
                x0 + 4.0,
                y0 + 13.0
            );
        }
    }
    Drawn::PerCell
}

/// The axes of a phase diagram: value labels and axis names, a numeric axis's "spaced by
/// value", a categorical one's "categorical".
fn phase_axes(o: &mut String, (xs, xa): (&[String], &CellAxis), (ys, ya): (&[String], &CellAxis)) {
    let (left, bottom) = (xa.edges(0).0, ya.end());
    for (j, x) in xs.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            xa.center(j),
            bottom + 16.0,
            esc(&value(x))
        );
    }
    for (i, y) in ys.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            left - 6.0,
            ya.center(i) + 4.0,
            esc(&value(y))
        );
    }
    let name = |k: &str, axis: &CellAxis| {
        if axis.numeric() {
            format!("{k} (spaced by value)")
        } else {
            format!("{k} (categorical)")
        }
    };
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + xa.end()) / 2.0,
        bottom + 36.0,
        esc(&name(&key(&xs[0]), xa))
    );
    let mid = (ya.edges(0).0 + bottom) / 2.0;
    let _ = writeln!(
        o,
        r#"<text x="40.0" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 40.0 {mid:.1})">{}</text>"#,
        esc(&name(&key(&ys[0]), ya))
    );
}

/// The colour scale: log10 of the ratio from −span to +span decades.
fn phase_legend(o: &mut String, span: f64, y: f64) {
    let (x0, w) = (200.0, 560.0);
    for k in 0..56 {
        let t = -1.0 + 2.0 * (k as f64 + 0.5) / 56.0;
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="12" fill="{}"/>"#,
            x0 + w * k as f64 / 56.0,
            w / 56.0 + 0.5,
            diverging(t * span, span)
        );
    }
    for (t, label) in [
        (0.0, format!("1e-{span}")),
        (0.5, "1".to_string()),
        (1.0, format!("1e{span}")),
    ] {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text>"#,
            x0 + w * t,
            y + 26.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">measured ‖δ_first‖/‖δ_last‖ (blue: vanishing, red: exploding)</text>"#,
        x0 + w / 2.0,
        y + 42.0
    );
}
