//! The sweep picture: ‖δ_l‖ against layer index l on a log scale, one line per grid point
//! and input case (the median across trials) with its interquartile band. Plain SVG written
//! directly, so the bytes are deterministic and no font library is needed.

use std::fmt::Write as _;

use crate::summary::SweepSummary;

const W: f64 = 1000.0;
const MIN_H: f64 = 520.0;
const LEGEND_ROW: f64 = 11.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 390.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A legend label: the settings without the `model.` prefix and string quotes.
fn label(settings: &[String], case: &str) -> String {
    let s: Vec<String> = settings
        .iter()
        .map(|k| k.trim_start_matches("model.").replace('"', ""))
        .collect();
    format!("{} [{case}]", s.join(" "))
}

/// The plotting area: its height, the layer count and the log10 range of the y axis.
struct Frame {
    height: f64,
    layers: usize,
    lo: f64,
    hi: f64,
}

impl Frame {
    /// Tall enough for one legend row per line; decades covering every drawn value.
    fn of(s: &SweepSummary) -> Self {
        let height = MIN_H.max(TOP + BOTTOM + LEGEND_ROW * (s.points.len() as f64 + 1.0));
        let layers = s
            .points
            .iter()
            .map(|p| p.delta_l2.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let logs: Vec<f64> = s
            .points
            .iter()
            .flat_map(|p| p.delta_l2.iter().flat_map(|d| [d.q1, d.q3, d.median]))
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| f64::from(v).log10())
            .collect();
        let lo = logs.iter().cloned().fold(f64::INFINITY, f64::min).floor();
        let hi = logs
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil();
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        };
        Self {
            height,
            layers,
            lo,
            hi,
        }
    }

    fn x(&self, l: usize) -> f64 {
        LEFT + (W - LEFT - RIGHT) * l as f64 / (self.layers - 1) as f64
    }

    /// The y of a decade exponent `e`.
    fn y_log(&self, e: f64) -> f64 {
        TOP + (self.height - TOP - BOTTOM) * (self.hi - e) / (self.hi - self.lo)
    }

    /// The y of a value; `None` for zero, negative or non-finite values (not drawable).
    fn y(&self, v: f32) -> Option<f64> {
        let v = f64::from(v);
        (v.is_finite() && v > 0.0).then(|| self.y_log(v.log10()))
    }
}

/// The picture of `s` as an SVG document.
pub fn svg(s: &SweepSummary) -> String {
    let f = Frame::of(s);
    let (height, x1) = (f.height, W - RIGHT);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="25" font-size="15" text-anchor="middle">{}: ‖δ_l‖ by layer (median and interquartile range over trials)</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        esc(&s.experiment)
    );
    axes(&mut o, &f);
    // One band and one line per point × case; a non-finite or zero value breaks them.
    for (i, p) in s.points.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        band(&mut o, &f, p, color);
        median_line(&mut o, &f, p, color);
        let ly = TOP + LEGEND_ROW * i as f64;
        let label = label(&p.settings, &p.case);
        let _ = writeln!(
            o,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/>"#,
            x1 + 15.0,
            ly - 4.0,
            x1 + 35.0,
            ly - 4.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{ly:.1}" font-size="10">{}</text>"#,
            x1 + 40.0,
            esc(&label)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Axes, decade grid lines and labels.
fn axes(o: &mut String, f: &Frame) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, f.height - BOTTOM);
    let _ = writeln!(
        o,
        r##"<path d="M{x0},{y0} V{y1} H{x1}" stroke="black" fill="none"/>"##
    );
    let mut e = f.lo;
    while e <= f.hi + 1e-9 {
        let py = f.y_log(e);
        let _ = writeln!(
            o,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{}</text>"#,
            x0 - 6.0,
            py + 4.0,
            e as i64
        );
        e += ((f.hi - f.lo) / 8.0).ceil().max(1.0);
    }
    let step = (f.layers / 16).max(1);
    for l in (0..f.layers).step_by(step) {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{l}</text>"#,
            f.x(l),
            y1 + 18.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">layer index l (0 = first; the last is the output layer)</text>"#,
        (x0 + x1) / 2.0,
        f.height - 15.0
    );
    let _ = writeln!(
        o,
        r#"<text x="20" y="{:.1}" transform="rotate(-90 20 {:.1})" text-anchor="middle">‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
}

/// The interquartile band of `p`, in runs of consecutive layers where both quartiles can be
/// drawn.
fn band(o: &mut String, f: &Frame, p: &crate::summary::PointSummary, color: &str) {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for (l, d) in p.delta_l2.iter().enumerate() {
        match (f.y(d.q1), f.y(d.q3)) {
            (Some(bottom), Some(top)) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((f.x(l), bottom, top))),
            _ => runs.push(Vec::new()),
        }
    }
    for band in runs.iter().filter(|r| r.len() >= 2) {
        let mut d = String::new();
        for (k, (px, _, top)) in band.iter().enumerate() {
            let _ = write!(d, "{}{px:.1},{top:.1} ", if k == 0 { "M" } else { "L" });
        }
        for (px, bottom, _) in band.iter().rev() {
            let _ = write!(d, "L{px:.1},{bottom:.1} ");
        }
        let _ = writeln!(
            o,
            r#"<path d="{}Z" fill="{color}" fill-opacity="0.15" stroke="none"/>"#,
            d.trim_end()
        );
    }
}

/// The median line of `p`, lifted over values that cannot be drawn.
fn median_line(o: &mut String, f: &Frame, p: &crate::summary::PointSummary, color: &str) {
    let mut d = String::new();
    let mut pen_up = true;
    for (l, spread) in p.delta_l2.iter().enumerate() {
        match f.y(spread.median) {
            Some(py) => {
                let _ = write!(
                    d,
                    "{}{:.1},{py:.1} ",
                    if pen_up { "M" } else { "L" },
                    f.x(l)
                );
                pen_up = false;
            }
            None => pen_up = true,
        }
    }
    if !d.is_empty() {
        let _ = writeln!(
            o,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
            d.trim_end()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{PointSummary, Spread};

    fn spread(v: f32) -> Spread {
        Spread {
            median: v,
            q1: v / 2.0,
            q3: v * 2.0,
            min: v / 4.0,
            max: v * 4.0,
        }
    }

    #[test]
    fn svg_has_one_line_and_band_per_point_and_breaks_at_non_finite_values() {
        let point = |i: usize, values: &[f32]| PointSummary {
            point: i,
            settings: vec![format!("model.depth={i}")],
            case: "x".into(),
            trials: 3,
            nonfinite_trials: 0,
            ratio: spread(1.0),
            delta_l2: values.iter().map(|v| spread(*v)).collect(),
            weight_l2: values.iter().map(|v| spread(*v)).collect(),
            training: None,
        };
        let s = SweepSummary {
            experiment: "e<1>".into(),
            trials_per_point: 3,
            trials_done: 6,
            points: vec![
                point(0, &[1e-3, 1e-2, 1e-1]),
                point(1, &[1.0, f32::INFINITY, 10.0]),
            ],
        };
        let svg = svg(&s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("e&lt;1&gt;"), "text is escaped");
        // Point 0 has one band; point 1's finite layers (0 and 2) are not adjacent: no band.
        assert_eq!(svg.matches("fill-opacity=\"0.15\"").count(), 1);
        // Point 1's line restarts after the infinite value: two `M` moves in one path.
        assert!(
            svg.lines()
                .any(|l| l.contains("stroke=\"#ff7f0e\" stroke-width=\"1.8\"")
                    && l.matches('M').count() == 2)
        );
        assert!(
            svg.contains(">1e-4<") || svg.contains(">1e-3<"),
            "decade labels"
        );
    }
}
