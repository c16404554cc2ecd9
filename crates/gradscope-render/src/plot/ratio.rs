//! A depth sweep's ratio picture: ‖δ_first‖/‖δ_last‖ against depth.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::axis::LogAxes;
use super::layers::{depth_axis, not_applying};
use super::svg::{compact, footnote, legend_row, not_applying_note, open_svg};
use super::{LEFT, MUTED, RIGHT, TOP, W};

/// A depth sweep's summary picture: the median ‖δ_first‖/‖δ_last‖ against depth (spaced by
/// value), one line per combination of the other axes with its measured interquartile band;
/// theory's prediction as open circles and its finite-width interquartile range hatched,
/// where theory applies (a footnote counts the points where it does not); `None` for a sweep
/// without a depth axis.
pub fn ratio_svg(s: &SweepSummary) -> Option<String> {
    let depth = depth_axis(s)?;
    let depth_of = |p: &PointSummary| -> f64 {
        p.settings[depth]
            .split_once('=')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let mut depths: Vec<f64> = s
        .points
        .iter()
        .map(depth_of)
        .filter(|d| d.is_finite())
        .collect();
    depths.sort_by(f64::total_cmp);
    depths.dedup();
    let series = series_across(s, depth);
    let mut panel = ratio_panel(s, depths.len());
    // More series than fit beside the panel: the legend goes below it, in two columns, and
    // the panel takes the width; past the palette, lines are told apart by their dashes.
    let below = series.len() > LEGEND_BESIDE;
    if below {
        panel.x1 = W - 40.0;
    }
    let xs: Vec<f64> = depths
        .iter()
        .map(|d| depth_x(&panel, &depths, *d))
        .collect();
    let legend_rows = if below { series.len().div_ceil(2) } else { 0 };
    let legend_top = TOP + 500.0;
    let key_top = if below {
        legend_top + 15.0 * legend_rows as f64 + 12.0
    } else {
        panel.y0 + 16.0 * series.len() as f64 + 22.0
    };
    let not_applying = not_applying(s);
    let note_lines: Vec<String> = match not_applying.is_empty() {
        true => Vec::new(),
        false => crate::text::wrap(&not_applying_note(&not_applying, s.points.len()), 150),
    };
    let bottom = if below {
        key_top + 3.0 * 16.0
    } else {
        TOP + 540.0 - 14.0
    };
    let height = (bottom + 14.0 * note_lines.len() as f64 + 14.0).max(TOP + 540.0);
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!("{}: ‖δ_first‖/‖δ_last‖ against depth", s.experiment),
    );
    ratio_axes(&mut o, &panel, &depths, &xs);
    let (mut circles, mut predicted) = (0, 0);
    for (k, (name, points)) in series.iter().enumerate() {
        let color = MUTED[k % MUTED.len()];
        let dash = DASHES[(k / MUTED.len()) % DASHES.len()];
        let at = |p: &&PointSummary| depths.iter().position(|d| *d == depth_of(p));
        let mut med = vec![f64::NAN; depths.len()];
        let mut quartiles = vec![(f64::NAN, f64::NAN); depths.len()];
        let mut theory_quartiles = vec![(f64::NAN, f64::NAN); depths.len()];
        let mut theory = Vec::new();
        for p in points {
            let Some(i) = at(p) else { continue };
            med[i] = p.ratio.median;
            quartiles[i] = (p.ratio.q1, p.ratio.q3);
            match &p.theory {
                Some(t) if t.applies => {
                    if let Some([q1, q3]) = t.ratio_quartiles {
                        theory_quartiles[i] = (q1, q3);
                    }
                    if let Some(y) = panel.y(t.delta_ratio) {
                        theory.push((xs[i], y));
                    }
                }
                Some(_) | None => {}
            }
        }
        predicted += predicted_band(&mut o, &panel, &xs, &theory_quartiles, k, color);
        ratio_band(&mut o, &panel, &xs, &quartiles, color);
        let line: Vec<(f64, f64)> = xs.iter().copied().zip(med).collect();
        if !dash.is_empty() {
            let _ = writeln!(o, r#"<g stroke-dasharray="{dash}">"#);
        }
        panel.line_at(&mut o, &line, color);
        if !dash.is_empty() {
            o.push_str("</g>\n");
        }
        for (x, y) in &theory {
            let _ = writeln!(
                o,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="none" stroke="{color}" stroke-width="1.5"/>"#
            );
        }
        circles += theory.len();
        if below {
            let (col, row) = (k % 2, k / 2);
            legend_item(
                &mut o,
                (LEFT + 460.0 * col as f64, legend_top + 15.0 * row as f64),
                (color, dash),
                name,
            );
        } else {
            legend_row(&mut o, panel.y0 + 16.0 * k as f64 + 6.0, color, name);
        }
    }
    let key_x = if below { LEFT } else { W - RIGHT + 15.0 };
    ratio_key(&mut o, (key_x, key_top), predicted > 0, circles > 0);
    for (i, line) in note_lines.iter().enumerate() {
        footnote(&mut o, bottom + 14.0 * i as f64, line);
    }
    o.push_str("</svg>\n");
    Some(o)
}

/// The series that fit in a legend beside the panel.
const LEGEND_BESIDE: usize = 20;

/// Dash patterns, one per pass through the palette.
const DASHES: [&str; 4] = ["", "7,3", "2,2", "9,3,2,3"];

/// One legend entry of the legend below the panel: a swatch of the series' line at `(x, y)`
/// and its name (smaller, to fit two columns).
fn legend_item(o: &mut String, (x, y): (f64, f64), (color, dash): (&str, &str), label: &str) {
    let dash = if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    };
    let _ = writeln!(
        o,
        r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2.5"{dash}/>"#,
        x + 22.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
        x + 27.0,
        y + 3.5,
        super::svg::esc(label)
    );
}

/// The x of depth `d`: spaced by value, x = x0 + (x1 − x0)·(d − d_min)/(d_max − d_min); the
/// middle for a single depth.
fn depth_x(panel: &LogAxes, depths: &[f64], d: f64) -> f64 {
    let (lo, hi) = (depths[0], depths[depths.len() - 1]);
    if hi > lo {
        panel.x0 + (panel.x1 - panel.x0) * (d - lo) / (hi - lo)
    } else {
        (panel.x0 + panel.x1) / 2.0
    }
}

/// The key below the series: what the band, the hatching and the circles are.
fn ratio_key(o: &mut String, (x, y): (f64, f64), predicted: bool, circles: bool) {
    let mut row = y;
    let _ = writeln!(
        o,
        r##"<rect x="{x:.1}" y="{:.1}" width="20" height="10" fill="#555" fill-opacity="0.25"/>"##,
        row - 5.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" font-size="11">measured IQR (band) and median (line)</text>"#,
        x + 25.0,
        row + 4.0
    );
    if predicted {
        row += 16.0;
        let _ = writeln!(o, "{}", hatch("key", "#555"));
        let _ = writeln!(
            o,
            r##"<rect x="{x:.1}" y="{:.1}" width="20" height="10" fill="url(#hatch-key)" stroke="#555" stroke-width="0.8"/>"##,
            row - 5.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">theory IQR (finite width)</text>"#,
            x + 25.0,
            row + 4.0
        );
    }
    if circles {
        row += 16.0;
        let _ = writeln!(
            o,
            r##"<circle cx="{:.1}" cy="{row:.1}" r="4" fill="none" stroke="#555" stroke-width="1.5"/>"##,
            x + 10.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">mean-field theory (infinite width)</text>"#,
            x + 25.0,
            row + 4.0
        );
    }
}

/// A hatching pattern in `color`, `url(#hatch-{id})`.
fn hatch(id: &str, color: &str) -> String {
    format!(
        r#"<defs><pattern id="hatch-{id}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="{color}" stroke-width="1.2" stroke-opacity="0.7"/></pattern></defs>"#
    )
}

/// Theory's finite-width interquartile range of series `k`, hatched in its colour and
/// outlined, in runs of depths where both quartiles are known; a lone depth a bar with caps.
/// Returns how many it drew.
fn predicted_band(
    o: &mut String,
    panel: &LogAxes,
    xs: &[f64],
    quartiles: &[(f64, f64)],
    k: usize,
    color: &str,
) -> usize {
    let runs = runs(panel, xs, quartiles);
    if runs.is_empty() {
        return 0;
    }
    let _ = writeln!(o, "{}", hatch(&k.to_string(), color));
    for run in &runs {
        if let [(x, bottom, top)] = run.as_slice() {
            let _ = writeln!(
                o,
                r#"<path class="theory-iqr" d="M{:.1},{top:.1} H{:.1} M{x:.1},{top:.1} V{bottom:.1} M{:.1},{bottom:.1} H{:.1}" stroke="{color}" stroke-width="1.2" fill="none"/>"#,
                x - 5.0,
                x + 5.0,
                x - 5.0,
                x + 5.0
            );
            continue;
        }
        let _ = writeln!(
            o,
            r#"<polygon class="theory-iqr" points="{}" fill="url(#hatch-{k})" stroke="{color}" stroke-width="0.8" stroke-opacity="0.8"/>"#,
            outline(run)
        );
    }
    runs.len()
}

/// The (x, y of q1, y of q3) of each depth, in runs of depths where both can be drawn.
fn runs(panel: &LogAxes, xs: &[f64], quartiles: &[(f64, f64)]) -> Vec<Vec<(f64, f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for (x, (q1, q3)) in xs.iter().zip(quartiles) {
        match (panel.y(*q1), panel.y(*q3)) {
            (Some(bottom), Some(top)) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((*x, bottom, top))),
            _ => runs.push(Vec::new()),
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// A band's polygon: along the tops, back along the bottoms.
fn outline(run: &[(f64, f64, f64)]) -> String {
    let top = run.iter().map(|(x, _, t)| format!("{x:.1},{t:.1}"));
    let bottom = run.iter().rev().map(|(x, b, _)| format!("{x:.1},{b:.1}"));
    top.chain(bottom).collect::<Vec<_>>().join(" ")
}

/// The measured interquartile band of one series (q1, q3 per depth), in runs of depths where
/// both quartiles can be drawn.
fn ratio_band(o: &mut String, panel: &LogAxes, xs: &[f64], quartiles: &[(f64, f64)], color: &str) {
    for run in runs(panel, xs, quartiles).iter().filter(|r| r.len() >= 2) {
        let _ = writeln!(
            o,
            r#"<polygon points="{}" fill="{color}" fill-opacity="0.15" stroke="none"/>"#,
            outline(run)
        );
    }
}

/// The ratio picture's panel: its log axis spans every measured quartile and median, and
/// theory's ratio and quartiles where theory applies.
fn ratio_panel(s: &SweepSummary, depths: usize) -> LogAxes {
    let measured = s
        .points
        .iter()
        .flat_map(|p| [p.ratio.q1, p.ratio.q3, p.ratio.median]);
    let theory = s
        .points
        .iter()
        .filter_map(|p| p.theory.as_ref().filter(|t| t.applies))
        .flat_map(|t| {
            let [q1, q3] = t.ratio_quartiles.unwrap_or([f64::NAN; 2]);
            [t.delta_ratio, q1, q3]
        });
    LogAxes::panel(TOP + 20.0, 420.0, depths, measured.chain(theory))
}

/// The points of `s` grouped by their settings other than axis `depth`, each group named by
/// those settings, in order of first appearance: the lines of [`ratio_svg`].
fn series_across(s: &SweepSummary, depth: usize) -> Vec<(String, Vec<&PointSummary>)> {
    let mut series: Vec<(String, Vec<&PointSummary>)> = Vec::new();
    for p in &s.points {
        let name: Vec<String> = p
            .settings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != depth)
            .map(|(_, k)| compact(k))
            .collect();
        let name = name.join(" ");
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(p),
            None => series.push((name, vec![p])),
        }
    }
    series
}

/// Axes of the ratio picture: the log y grid and label, and the depths on x at `xs`.
fn ratio_axes(o: &mut String, panel: &LogAxes, depths: &[f64], xs: &[f64]) {
    panel.corner(o);
    panel.decade_grid(o, 8.0);
    for (d, x) in depths.iter().zip(xs) {
        let _ = writeln!(
            o,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{d}</text>"#,
            panel.y1 + 16.0
        );
    }
    panel.x_label(o, "depth (hidden layers), spaced by value", 36.0);
    panel.y_label(o, "‖δ_first‖ / ‖δ_last‖ (log scale)");
}
