//! A training run's picture: the loss and every layer's ‖δ_l‖ against the step.

use std::fmt::Write as _;

use super::axis::LogAxes;
use super::svg::{esc, footnote, legend_row, open_svg};
use super::{RIGHT, SEQUENTIAL, TOP, W};

/// A training run's picture: the loss (top) and ‖δ_l‖ of every layer (bottom) against the
/// step, log y axes, and the step of the first non-finite value marked in both panels.
pub fn training_svg(
    title: &str,
    steps: &[gradscope_report::StepRecord],
    origin: Option<&gradscope_report::Origin>,
) -> String {
    let (height, panel_h) = (640.0, 210.0);
    let n = steps.len();
    let layers = steps.first().map_or(0, |s| s.layers.len());
    let loss: Vec<f64> = steps.iter().map(|s| f64::from(s.loss)).collect();
    let delta: Vec<Vec<f64>> = (0..layers)
        .map(|l| steps.iter().map(|s| s.layers[l].delta_l2).collect())
        .collect();
    let top = LogAxes::panel(TOP + 10.0, panel_h, n, loss.iter().copied());
    let bottom = LogAxes::panel(
        TOP + panel_h + 90.0,
        panel_h,
        n,
        delta.iter().flatten().copied(),
    );
    let mut o = String::new();
    open_svg(&mut o, height, &format!("{title}: loss and ‖δ_l‖ per step"));
    top.axes(&mut o, "loss (log scale)");
    bottom.axes(&mut o, "‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)");
    top.line(&mut o, &loss, "#000000");
    for (l, d) in delta.iter().enumerate() {
        let color = SEQUENTIAL[(l * (SEQUENTIAL.len() - 1)) / layers.saturating_sub(1).max(1)];
        bottom.line(&mut o, d, color);
        let last = if l + 1 == layers { " (output)" } else { "" };
        legend_row(
            &mut o,
            bottom.y0 + 14.0 * l as f64 + 6.0,
            color,
            &format!("layer {l}{last}"),
        );
    }
    bottom.x_label(&mut o, "step", 38.0);
    footnote(
        &mut o,
        bottom.y0 + panel_h + 62.0,
        "Gaps: values of 0 (every unit of a layer dead), which a log scale cannot show; × at the top: a non-finite value.",
    );
    if let Some(origin) = origin {
        failure_marker(&mut o, &[&top, &bottom], origin);
    }
    o.push_str("</svg>\n");
    o
}

/// The failing step: a dashed red line across `panels`, and what was born there.
fn failure_marker(o: &mut String, panels: &[&LogAxes], origin: &gradscope_report::Origin) {
    let step = origin.step.unwrap_or(0) as usize;
    for p in panels {
        let x = p.x(step);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5,4"/>"##,
            p.y0, p.y1
        );
    }
    let top = panels.first().map_or(TOP, |p| p.y0);
    let lines = [
        format!("first non-finite value: {}", origin.kind.name()),
        format!("step {step}, {}", origin.tensor),
    ];
    for (i, text) in lines.iter().enumerate() {
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" fill="#d62728" font-size="12">{}</text>"##,
            W - RIGHT + 15.0,
            top + 20.0 + 16.0 * i as f64,
            esc(text)
        );
    }
}
