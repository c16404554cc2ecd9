//! ‖δ_l‖ against the layer index l on a log scale: one line per grid point and input case
//! (the median across trials) with its interquartile band, or, for a depth sweep, small
//! multiples with one line per depth.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::axis::{LogAxes, nice_step};
use super::svg::{compact, esc, footnote, label, not_applying_note, open_svg};
use super::{BOTTOM, COLORS, LEFT, LEGEND_ROW, MIN_H, RIGHT, SEQUENTIAL, TOP, W};

/// The frame of a sweep's ‖δ_l‖ picture: tall enough for one legend row per line, decades
/// covering every drawn quartile and median; and the picture's height.
fn frame(s: &SweepSummary) -> (f64, LogAxes) {
    let height = MIN_H.max(TOP + BOTTOM + LEGEND_ROW * (s.points.len() as f64 + 1.0));
    let layers = s.points.iter().map(|p| p.delta_l2.len()).max().unwrap_or(1);
    let values = s
        .points
        .iter()
        .flat_map(|p| p.delta_l2.iter().flat_map(|d| [d.q1, d.q3, d.median]));
    let area = (LEFT, W - RIGHT, TOP, height - BOTTOM);
    (height, LogAxes::frame(area, layers, values))
}

/// ‖δ_l‖ by layer, one line and band per point × case, each with its legend row.
pub(super) fn points_svg(s: &SweepSummary) -> String {
    let (frame_height, f) = frame(s);
    let na = not_applying(s);
    let height = frame_height + if na.is_empty() { 0.0 } else { 14.0 };
    let x1 = W - RIGHT;
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
    axes(&mut o, &f, frame_height);
    if s.points.iter().any(|p| p.theory.is_some()) {
        let _ = writeln!(
            o,
            r##"<text x="{LEFT}" y="{:.1}" font-size="11" fill="#555">Solid: measured median, band: interquartile range; dashed: mean-field theory, anchored at the output layer's median.</text>"##,
            frame_height - 2.0
        );
    }
    if !na.is_empty() {
        footnote(
            &mut o,
            height - 2.0,
            &not_applying_note(&na, s.points.len()),
        );
    }
    // One band and one line per point × case; a non-finite or zero value breaks them.
    for (i, p) in s.points.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        band(&mut o, &f, p, color);
        median_line(&mut o, &f, p, color);
        theory_line(&mut o, &f, p, color);
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
fn axes(o: &mut String, f: &LogAxes, height: f64) {
    let (x0, x1, y0, y1) = (f.x0, f.x1, f.y0, f.y1);
    f.corner(o);
    f.decade_grid(o, 8.0);
    let step = (f.n / 16).max(1);
    for l in (0..f.n).step_by(step) {
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
        height - 15.0
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
fn band(o: &mut String, f: &LogAxes, p: &PointSummary, color: &str) {
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
fn median_line(o: &mut String, f: &LogAxes, p: &PointSummary, color: &str) {
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

/// Mean-field theory's ‖δ_l‖ for each of `layers` layers, anchored at `last`, the output
/// layer's measured value, and carried back by √χ per layer; `None` unless there is one χ per
/// layer but the last.
pub(super) fn theory_deltas(chi: &[f64], last: f64, layers: usize) -> Option<Vec<f64>> {
    if chi.len() + 1 != layers {
        return None;
    }
    let mut values = vec![last; layers];
    for l in (0..chi.len()).rev() {
        values[l] = values[l + 1] * chi[l].sqrt();
    }
    Some(values)
}

/// The points of `s` whose theory does not apply.
pub(super) fn not_applying(s: &SweepSummary) -> Vec<&PointSummary> {
    s.points
        .iter()
        .filter(|p| p.theory.as_ref().is_some_and(|t| !t.applies))
        .collect()
}

/// Mean-field theory's ‖δ_l‖ for a point where it applies, dashed: anchored at the measured median of the
/// output layer and carried back by √χ per layer.
fn theory_line(o: &mut String, f: &LogAxes, p: &PointSummary, color: &str) {
    let (Some(t), Some(last)) = (&p.theory, p.delta_l2.last()) else {
        return;
    };
    if !t.applies {
        // Not drawn as if it applied: the picture's footnote counts these points.
        return;
    }
    let Some(values) = theory_deltas(&t.chi, last.median, p.delta_l2.len()) else {
        return;
    };
    // Values beyond f32's range (theory below its underflow, say) and points beyond the y
    // range are left out.
    let values: Vec<f64> = values.iter().map(|v| f64::from(*v as f32)).collect();
    f.dashed(o, &values, color);
}

/// What the range markers mean, under the small multiples (two lines).
const RANGE_NOTE: [&str; 2] = [
    "▲ / ▼ at layer l, in a depth's colour: theory's first tensor to leave the precision, above its largest finite value / below its",
    "smallest normal (hollow: theory does not apply); ● the tensor measured first to leave it in most trials (hollow: under half left).",
];

/// The tensor measured first to leave the point's precision in most of its trials, as a dot
/// at its layer, just inside theory's triangle: near the panel's top for above, its bottom
/// for below; filled where at least half the trials left the range, hollow where fewer did.
fn measured_marker(o: &mut String, f: &LogAxes, p: &PointSummary, color: &str, taken: &mut Taken) {
    let Some(left) = &p.left_range else {
        return;
    };
    let Some(first) = &left.first else {
        return;
    };
    let x = marker_x(f, taken, first.layer, &first.direction);
    let y = match first.direction.as_str() {
        "above" => f.y0 + 17.0,
        _ => f.y1 - 17.0,
    };
    let fill = if 2 * left.left >= left.checked {
        color
    } else {
        "none"
    };
    let _ = writeln!(
        o,
        r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{color}" stroke-width="1.5"><title>{}</title></circle>"#,
        esc(&format!(
            "measured: {} left the range {} first in {} of {} trials ({} left)",
            first.tensor, first.direction, left.first_trials, left.checked, left.left
        ))
    );
}

/// Theory's first tensor to leave the point's precision, as a triangle at its layer: at the
/// panel's top pointing up (above the range) or at its bottom pointing down (below it),
/// filled where theory applies to the point, hollow where it does not.
/// Markers already drawn in a panel at each (layer, direction): a second one at the same place
/// (two depths predicting the same layer) is drawn beside the first, not over it.
type Taken = std::collections::HashMap<(usize, bool), usize>;

/// The x of a marker at `layer` and `direction`, moved 11 px right per marker already there.
fn marker_x(f: &LogAxes, taken: &mut Taken, layer: usize, direction: &str) -> f64 {
    let n = taken.entry((layer, direction == "above")).or_insert(0);
    let x = f.x(layer) + 11.0 * *n as f64;
    *n += 1;
    x
}

fn range_marker(o: &mut String, f: &LogAxes, p: &PointSummary, color: &str, taken: &mut Taken) {
    let Some(t) = &p.theory else {
        return;
    };
    let Some(leaves) = &t.leaves_range else {
        return;
    };
    let x = marker_x(f, taken, leaves.layer, &leaves.direction);
    let (tip, base) = match leaves.direction.as_str() {
        "above" => (f.y0 + 2.0, f.y0 + 11.0),
        _ => (f.y1 - 2.0, f.y1 - 11.0),
    };
    let fill = if t.applies { color } else { "none" };
    let _ = writeln!(
        o,
        r#"<path d="M{x:.1},{tip:.1} L{:.1},{base:.1} L{:.1},{base:.1} Z" fill="{fill}" stroke="{color}" stroke-width="1.5"><title>{}</title></path>"#,
        x - 5.0,
        x + 5.0,
        esc(&format!(
            "theory: {} leaves the range {}",
            leaves.tensor, leaves.direction
        ))
    );
}

/// The index of the `model.depth` axis of a sweep with at least one other axis, one case.
pub(super) fn depth_axis(s: &SweepSummary) -> Option<usize> {
    let first = s.points.first()?;
    let at = first
        .settings
        .iter()
        .position(|k| k.starts_with("model.depth="))?;
    (first.settings.len() >= 2 && s.points.windows(2).all(|w| w[0].case == w[1].case)).then_some(at)
}

/// A depth sweep as small multiples: one panel per combination of the other axes (e.g.
/// activation × initialiser), one line per depth on viridis (no colour repeats within a
/// panel), the interquartile band, theory dashed, and shared log axes.
pub(super) fn small_multiples_svg(s: &SweepSummary, depth: usize) -> String {
    let others = |p: &PointSummary| -> String {
        p.settings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != depth)
            .map(|(_, k)| compact(k))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut panels: Vec<String> = Vec::new();
    let mut depths: Vec<String> = Vec::new();
    for p in &s.points {
        if !panels.contains(&others(p)) {
            panels.push(others(p));
        }
        if !depths.contains(&p.settings[depth]) {
            depths.push(p.settings[depth].clone());
        }
    }
    let (left, gap) = (80.0, 40.0);
    // A square-ish grid, but no narrower than MIN_PANEL, so that a panel's title can be read.
    let fit = ((W - left - 20.0 + gap) / (MIN_PANEL + gap))
        .floor()
        .max(1.0) as usize;
    let cols = ((panels.len() as f64).sqrt().ceil().max(1.0) as usize).min(fit);
    let rows = panels.len().div_ceil(cols);
    let pw = (W - left - 20.0 - gap * (cols as f64 - 1.0)) / cols as f64;
    let ph = 210.0;
    // Titles too wide for a panel take a line per setting: room above each row for them.
    let title_lines = panels
        .iter()
        .map(|t| title_lines(t, pw).len())
        .max()
        .unwrap_or(1);
    let extra = 11.0 * (title_lines - 1) as f64;
    let top = 90.0 + extra;
    let pitch = ph + 60.0 + extra;
    let height = top + rows as f64 * pitch + 50.0 - extra;
    let (_, shared) = frame(s);
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!(
            "{}: ‖δ_l‖ by layer, median over trials (band: IQR; dashed: mean-field theory)",
            s.experiment
        ),
    );
    depth_legend(&mut o, &depths, left);
    for (n, name) in panels.iter().enumerate() {
        let (c, r) = (n % cols, n / cols);
        let (x0, y0) = (left + c as f64 * (pw + gap), top + r as f64 * pitch);
        let f = shared.at((x0, x0 + pw, y0, y0 + ph));
        panel_frame(&mut o, &f, name, c == 0, r + 1 == rows);
        let (mut triangles, mut dots) = (Taken::new(), Taken::new());
        for p in s.points.iter().filter(|p| others(p) == *name) {
            let k = depths
                .iter()
                .position(|d| *d == p.settings[depth])
                .unwrap_or(0);
            let color = depth_colour(k, depths.len());
            band(&mut o, &f, p, color);
            median_line(&mut o, &f, p, color);
            theory_line(&mut o, &f, p, color);
            range_marker(&mut o, &f, p, color, &mut triangles);
            measured_marker(&mut o, &f, p, color, &mut dots);
        }
    }
    let na = not_applying(s);
    if !na.is_empty() {
        footnote(
            &mut o,
            height - 16.0,
            &not_applying_note(&na, s.points.len()),
        );
    }
    if s.points.iter().any(|p| {
        p.theory.as_ref().is_some_and(|t| t.leaves_range.is_some())
            || p.left_range.as_ref().is_some_and(|l| l.first.is_some())
    }) {
        footnote(&mut o, height - 44.0, RANGE_NOTE[0]);
        footnote(&mut o, height - 30.0, RANGE_NOTE[1]);
    }
    o.push_str("</svg>\n");
    o
}

/// A panel's title as it is drawn over `width` pixels: one line where it fits (about 6.6 px a
/// character at 12 px), else a line per setting (at 10 px, about 5.6 px a character), each
/// cut with … where even that does not fit.
fn title_lines(title: &str, width: f64) -> Vec<String> {
    if title.chars().count() as f64 * 6.6 <= width {
        return vec![title.to_string()];
    }
    let room = (width / 5.6).floor().max(4.0) as usize;
    title
        .split("  ")
        .map(|line| match line.chars().count() > room {
            true => line.chars().take(room - 1).chain(['…']).collect(),
            false => line.to_string(),
        })
        .collect()
}

/// The narrowest a small multiple's panel is drawn, in pixels.
const MIN_PANEL: f64 = 170.0;

/// The colour of the `k`-th of `n` depths: spread over the whole viridis scale.
fn depth_colour(k: usize, n: usize) -> &'static str {
    SEQUENTIAL[(k * (SEQUENTIAL.len() - 1)) / n.saturating_sub(1).max(1)]
}

/// The small multiples' legend: one coloured dash and label per depth, in a row from `left`.
fn depth_legend(o: &mut String, depths: &[String], left: f64) {
    for (k, d) in depths.iter().enumerate() {
        let color = depth_colour(k, depths.len());
        let x = left + 105.0 * k as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{x:.1}" y1="52" x2="{:.1}" y2="52" stroke="{color}" stroke-width="3"/>"#,
            x + 20.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="56" font-size="11">{}</text>"#,
            x + 25.0,
            esc(&compact(d))
        );
    }
}

/// One panel's box, decade grid and title; decade labels on the first column and layer ticks
/// on the last row.
fn panel_frame(o: &mut String, f: &LogAxes, title: &str, y_labels: bool, x_labels: bool) {
    let (x0, x1, y0, y1) = (f.x0, f.x1, f.y0, f.y1);
    let _ = writeln!(
        o,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        y1 - y0
    );
    let lines = title_lines(title, x1 - x0);
    let size = if lines.len() == 1 { 12 } else { 10 };
    for (i, text) in lines.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="{size}">{}</text>"#,
            (x0 + x1) / 2.0,
            y0 - 6.0 - 11.0 * (lines.len() - 1 - i) as f64,
            esc(text)
        );
    }
    for (e, py) in f.decade_lines(6.0) {
        let _ = writeln!(
            o,
            r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="#eee"/>"##
        );
        if y_labels {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">1e{e}</text>"#,
                x0 - 4.0,
                py + 3.0,
            );
        }
    }
    if x_labels {
        let tick = nice_step(f.n);
        for l in (0..f.n).step_by(tick) {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{l}</text>"#,
                f.x(l),
                y1 + 13.0
            );
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">layer l</text>"#,
            (x0 + x1) / 2.0,
            y1 + 27.0
        );
    }
}
