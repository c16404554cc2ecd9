//! A training run's picture: the loss and every layer's ‖δ_l‖ against the step, and with
//! loss scaling the scale and the skipped steps.

use std::fmt::Write as _;

use super::axis::LogAxes;
use super::svg::{esc, footnote, legend_row, open_svg};
use super::{RIGHT, SEQUENTIAL, TOP, W};

/// A training run's picture: the loss (top) and ‖δ_l‖ of every layer (below) against the
/// step, log y axes, and the step of the first non-finite value marked in every panel. With
/// loss scaling, a third panel draws the scale each step used, each skipped step a red tick.
pub fn training_svg(
    title: &str,
    steps: &[gradscope_report::StepRecord],
    origin: Option<&gradscope_report::Origin>,
) -> String {
    let scales: Vec<f64> = steps
        .iter()
        .filter_map(|s| s.loss_scale.map(f64::from))
        .collect();
    let scaled = scales.len() == steps.len() && !scales.is_empty();
    let (height, panel_h) = (if scaled { 940.0 } else { 640.0 }, 210.0);
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
    let mut panels = vec![&top, &bottom];
    let scale_panel = scaled.then(|| {
        LogAxes::panel(
            TOP + 2.0 * panel_h + 170.0,
            panel_h,
            n,
            scales.iter().copied(),
        )
    });
    if let Some(p) = &scale_panel {
        p.axes(&mut o, "loss scale (log scale)");
        p.line(&mut o, &scales, "#1f77b4");
        let skipped: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.skipped == Some(true))
            .map(|(i, _)| i)
            .collect();
        for &i in &skipped {
            let x = p.x(i);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5"/>"##,
                p.y0,
                p.y0 + 8.0
            );
        }
        // The last step's scale, written at the line's end: a log axis's decades alone do not
        // say it.
        if let (Some(&last), Some(y)) = (scales.last(), scales.last().and_then(|&v| p.y(v))) {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" fill="#1f77b4" font-size="12" text-anchor="end">{}</text>"##,
                p.x(n.saturating_sub(1)) - 4.0,
                y - 6.0,
                esc(&format!(
                    "step {}: {}",
                    steps.last().map_or(0, |s| s.step),
                    gradscope_report::floats::fmt_sci64(last, 4)
                ))
            );
        }
        legend_row(&mut o, p.y0 + 6.0, "#1f77b4", "the scale the step used");
        let ticks = match skipped.len() {
            0 => "no step skipped".to_string(),
            1 => "tick: a skipped step (1 step)".to_string(),
            k => format!("tick: a skipped step ({k} steps)"),
        };
        legend_row(&mut o, p.y0 + 20.0, "#d62728", &ticks);
        p.x_label(&mut o, "step", 38.0);
        panels.push(p);
    }
    let last = panels.last().map_or(bottom.y0, |p| p.y0);
    footnote(
        &mut o,
        last + panel_h + 62.0,
        "Gaps: values of 0 (every unit of a layer dead), which a log scale cannot show; × at the top: a non-finite value.",
    );
    if let Some(origin) = origin {
        failure_marker(&mut o, &panels, origin);
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
    let lines = match origin.kind {
        gradscope_report::OriginKind::LossScale => [
            "the loss scale collapsed".to_string(),
            format!("step {step}, {} skipped in a row", origin.count),
        ],
        _ => [
            format!("first non-finite value: {}", origin.kind.name()),
            format!("step {step}, {}", origin.tensor),
        ],
    };
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
