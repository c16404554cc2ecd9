//! A two-axis grid's phase diagram: the measured ratio per cell and theory's χ* = 1.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::svg::{compact, esc, open_svg};

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
/// χ₁ at the hidden layers' fixed point, whatever the depth) drawn over it where χ* crosses 1
/// between neighbouring cells.
pub fn phase_svg(s: &SweepSummary) -> String {
    let value_of = |p: &PointSummary, i: usize| compact(&p.settings[i]);
    let (xs, ys) = (axis_values(s, 1), axis_values(s, 0));
    let (left, top, cell_w, cell_h) = (
        200.0,
        70.0,
        560.0 / xs.len() as f64,
        340.0 / ys.len() as f64,
    );
    let height = top + cell_h * ys.len() as f64 + 130.0;
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!(
            "{}: measured ‖δ_first‖/‖δ_last‖ (median) and theory's χ = 1",
            s.experiment
        ),
    );
    let span = s
        .points
        .iter()
        .map(|p| f64::from(p.ratio.median).log10().abs())
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        .ceil();
    // ln χ* per cell, for the χ* = 1 curve.
    let mut log_chi = vec![vec![f64::NAN; xs.len()]; ys.len()];
    for p in &s.points {
        let (Some(i), Some(j)) = (
            ys.iter().position(|y| *y == value_of(p, 0)),
            xs.iter().position(|x| *x == value_of(p, 1)),
        ) else {
            continue;
        };
        let (x, y) = (left + cell_w * j as f64, top + cell_h * i as f64);
        let log_ratio = f64::from(p.ratio.median).log10();
        let fill = if log_ratio.is_finite() {
            diverging(log_ratio, span)
        } else {
            "#bbbbbb".to_string()
        };
        let _ = writeln!(
            o,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="{fill}" stroke="#fff"/>"##
        );
        if let Some(t) = &p.theory {
            log_chi[i][j] = t.chi_star.map_or(f64::NAN, f64::ln);
        }
    }
    chi_curve(&mut o, &log_chi, (left, top, cell_w, cell_h));
    phase_axes(&mut o, &xs, &ys, (left, top, cell_w, cell_h), s);
    phase_legend(&mut o, span, top + cell_h * ys.len() as f64 + 70.0);
    o.push_str("</svg>\n");
    o
}

/// The values of axis `i` in order of first appearance, as the phase diagram labels them.
fn axis_values(s: &SweepSummary, i: usize) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for p in &s.points {
        let v = compact(&p.settings[i]);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    values
}

/// Theory's χ* = 1: in each row, the point between neighbouring cells where ln χ* changes
/// sign (linear interpolation), joined from row to row.
fn chi_curve(
    o: &mut String,
    log_chi: &[Vec<f64>],
    (left, top, cell_w, cell_h): (f64, f64, f64, f64),
) {
    let mut points = Vec::new();
    for (i, row) in log_chi.iter().enumerate() {
        for j in 1..row.len() {
            let (a, b) = (row[j - 1], row[j]);
            if a.is_finite() && b.is_finite() && (a < 0.0) != (b < 0.0) {
                let t = a / (a - b);
                let x = left + cell_w * (j as f64 - 0.5 + t);
                points.push(format!("{x:.1},{:.1}", top + cell_h * (i as f64 + 0.5)));
                break;
            }
        }
    }
    if !points.is_empty() {
        let _ = writeln!(
            o,
            r##"<polyline points="{}" fill="none" stroke="#000" stroke-width="2.5" stroke-dasharray="8,5"/>"##,
            points.join(" ")
        );
    }
}

/// The axes of a phase diagram: value labels, axis names, and the case.
fn phase_axes(
    o: &mut String,
    xs: &[String],
    ys: &[String],
    (left, top, cell_w, cell_h): (f64, f64, f64, f64),
    s: &SweepSummary,
) {
    let bottom = top + cell_h * ys.len() as f64;
    let value = |v: &str| {
        v.split_once('=')
            .map_or(v.to_string(), |(_, v)| v.to_string())
    };
    for (j, x) in xs.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            left + cell_w * (j as f64 + 0.5),
            bottom + 16.0,
            esc(&value(x))
        );
    }
    for (i, y) in ys.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            left - 6.0,
            top + cell_h * (i as f64 + 0.5) + 4.0,
            esc(&value(y))
        );
    }
    let key = |v: &str| {
        v.split_once('=')
            .map_or(String::new(), |(k, _)| k.to_string())
    };
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + cell_w * xs.len() as f64 / 2.0,
        bottom + 36.0,
        esc(&key(&xs[0]))
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        40.0,
        top + cell_h * ys.len() as f64 / 2.0,
        40.0,
        top + cell_h * ys.len() as f64 / 2.0,
        esc(&key(&ys[0]))
    );
    let case = s.points.first().map_or("", |p| p.case.as_str());
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555">input case {}; grey: no finite median; dashed: mean-field theory's edge of chaos, χ* = 1 (χ₁ at the hidden layers' fixed point)</text>"##,
        left,
        bottom + 56.0,
        esc(case)
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
