//! A depth sweep's ratio picture: ‖δ_first‖/‖δ_last‖ against depth.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::axis::LogAxes;
use super::layers::depth_axis;
use super::svg::{compact, legend_row, open_svg};
use super::{MUTED, TOP};

/// A depth sweep's summary picture: the median ‖δ_first‖/‖δ_last‖ against depth, one line per
/// combination of the other axes with its interquartile band, and theory's prediction as
/// open circles; `None` for a sweep without a depth axis.
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
    let panel = ratio_panel(s, depths.len());
    let mut o = String::new();
    open_svg(
        &mut o,
        TOP + 540.0,
        &format!(
            "{}: ‖δ_first‖/‖δ_last‖ against depth (median, IQR band; ○ mean-field theory)",
            s.experiment
        ),
    );
    ratio_axes(&mut o, &panel, &depths);
    for (k, (name, points)) in series.iter().enumerate() {
        let color = MUTED[k % MUTED.len()];
        let at = |p: &&PointSummary| depths.iter().position(|d| *d == depth_of(p));
        let mut med = vec![f64::NAN; depths.len()];
        let mut quartiles = vec![(f64::NAN, f64::NAN); depths.len()];
        for p in points {
            if let Some(i) = at(p) {
                med[i] = f64::from(p.ratio.median);
                quartiles[i] = (f64::from(p.ratio.q1), f64::from(p.ratio.q3));
                if let Some(y) = p.theory.as_ref().and_then(|t| panel.y(t.delta_ratio)) {
                    let _ = writeln!(
                        o,
                        r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                        panel.x(i)
                    );
                }
            }
        }
        ratio_band(&mut o, &panel, &quartiles, color);
        panel.line(&mut o, &med, color);
        legend_row(&mut o, panel.y0 + 16.0 * k as f64 + 6.0, color, name);
    }
    o.push_str("</svg>\n");
    Some(o)
}

/// The ratio picture's panel: its log axis spans every quartile, median and theory's ratio.
fn ratio_panel(s: &SweepSummary, depths: usize) -> LogAxes {
    let logs = s
        .points
        .iter()
        .flat_map(|p| [p.ratio.q1, p.ratio.q3, p.ratio.median])
        .map(f64::from)
        .chain(
            s.points
                .iter()
                .filter_map(|p| p.theory.as_ref().map(|t| t.delta_ratio)),
        )
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::log10);
    LogAxes::panel(TOP + 20.0, 420.0, depths, logs.map(|e| 10f64.powf(e)))
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

/// The interquartile band of one series (q1, q3 per depth), in runs of depths where both
/// quartiles can be drawn.
fn ratio_band(o: &mut String, panel: &LogAxes, quartiles: &[(f64, f64)], color: &str) {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for (i, (q1, q3)) in quartiles.iter().enumerate() {
        match (panel.y(*q1), panel.y(*q3)) {
            (Some(bottom), Some(top)) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((panel.x(i), bottom, top))),
            _ => runs.push(Vec::new()),
        }
    }
    for run in runs.iter().filter(|r| r.len() >= 2) {
        let top: Vec<String> = run
            .iter()
            .map(|(x, _, t)| format!("{x:.1},{t:.1}"))
            .collect();
        let bottom: Vec<String> = run
            .iter()
            .rev()
            .map(|(x, b, _)| format!("{x:.1},{b:.1}"))
            .collect();
        let _ = writeln!(
            o,
            r#"<polygon points="{} {}" fill="{color}" fill-opacity="0.15" stroke="none"/>"#,
            top.join(" "),
            bottom.join(" ")
        );
    }
}

/// Axes of the ratio picture: the log y grid and label, and the depths on x.
fn ratio_axes(o: &mut String, panel: &LogAxes, depths: &[f64]) {
    panel.corner(o);
    panel.decade_grid(o, 8.0);
    for (i, d) in depths.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{d}</text>"#,
            panel.x(i),
            panel.y1 + 16.0
        );
    }
    panel.x_label(o, "depth (hidden layers)", 36.0);
    panel.y_label(o, "‖δ_first‖ / ‖δ_last‖ (log scale)");
}
