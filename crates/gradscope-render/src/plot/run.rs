//! A plain run's picture: the activations' scale and ‖δ_l‖ against the layer, per input case.

use std::fmt::Write as _;

use super::axis::LogAxes;
use super::layers::theory_deltas;
use super::svg::{footnote, legend_row, open_svg};
use super::{COLORS, RIGHT, TOP, W};

/// One input case of a plain run as its picture draws it: per layer (output layer last), the
/// activations' root mean square √(mean² + std²) and ‖δ_l‖, `inf` where the layer's δ held a
/// non-finite value; mean-field theory's χ_l where it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCase {
    /// The input case: its name, and where its values came from.
    pub name: String,
    /// √(mean² + std²) of each layer's activations (the output layer: the output).
    pub activation_rms: Vec<f64>,
    /// ‖δ_l‖ per layer; `inf` where δ_l held a non-finite value.
    pub delta_l2: Vec<f64>,
    /// χ_1, χ_2, ...: ‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖².
    pub chi: Option<Vec<f64>>,
}

impl RunCase {
    /// The cases of a plain run's report.
    pub fn from_report(report: &gradscope_report::ExperimentReport) -> Vec<RunCase> {
        report
            .cases
            .iter()
            .map(|case| RunCase {
                name: format!("{}: {}", case.input.name, case.input.distribution),
                activation_rms: case
                    .layers
                    .iter()
                    .map(|l| l.activation_mean.hypot(l.activation_std))
                    .collect(),
                delta_l2: case
                    .layers
                    .iter()
                    .map(|l| {
                        if l.delta_nonfinite > 0 {
                            f64::INFINITY
                        } else {
                            l.delta_l2
                        }
                    })
                    .collect(),
                chi: case.theory.as_ref().map(|t| t.chi.clone()),
            })
            .collect()
    }

    /// Theory's ‖δ_l‖, anchored at the measured output layer's and carried back by √χ per
    /// layer; empty where theory does not apply or the anchor is not drawable.
    pub(super) fn theory(&self) -> Vec<f64> {
        let (Some(chi), Some(&last)) = (&self.chi, self.delta_l2.last()) else {
            return Vec::new();
        };
        if !(last.is_finite() && last > 0.0) {
            return Vec::new();
        }
        theory_deltas(chi, last, self.delta_l2.len()).unwrap_or_default()
    }
}

/// A plain run's picture: the activations' scale (top) and ‖δ_l‖ (bottom) against the layer,
/// log y axes, one colour per input case, mean-field theory dashed beside ‖δ_l‖.
pub fn run_svg(title: &str, cases: &[RunCase], precision: gradscope_report::Precision) -> String {
    let (panel_h, gap) = (210.0, 90.0);
    let height = TOP + 10.0 + 2.0 * panel_h + gap + 80.0;
    let layers = cases.iter().map(|c| c.delta_l2.len()).max().unwrap_or(0);
    let theory: Vec<Vec<f64>> = cases.iter().map(RunCase::theory).collect();
    let rms = cases.iter().flat_map(|c| c.activation_rms.iter().copied());
    let top = LogAxes::panel(TOP + 10.0, panel_h, layers, rms);
    let deltas = cases.iter().flat_map(|c| c.delta_l2.iter().copied());
    let bottom = LogAxes::panel(
        TOP + 10.0 + panel_h + gap,
        panel_h,
        layers,
        deltas.chain(theory.iter().flatten().copied()),
    );
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!("{title}: activations and ‖δ_l‖ by layer"),
    );
    top.axes(&mut o, "activation rms (log scale)");
    bottom.axes(&mut o, "‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)");
    for (i, (case, theory)) in cases.iter().zip(&theory).enumerate() {
        let color = COLORS[i % COLORS.len()];
        top.line(&mut o, &case.activation_rms, color);
        bottom.line(&mut o, &case.delta_l2, color);
        bottom.dashed(&mut o, theory, color);
        legend_row(
            &mut o,
            top.y0 + 14.0 * i as f64 + 6.0,
            color,
            &format!("input {}", case.name),
        );
    }
    if theory.iter().any(|t| !t.is_empty()) {
        legend_row(&mut o, bottom.y0 + 6.0, "#000000", "solid: measured");
        let _ = writeln!(
            o,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000000" stroke-width="1.2" stroke-dasharray="6,4"/>"##,
            W - RIGHT + 15.0,
            bottom.y0 + 20.0,
            W - RIGHT + 35.0,
            bottom.y0 + 20.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">dashed: mean-field theory, anchored at the output layer</text>"#,
            W - RIGHT + 40.0,
            bottom.y0 + 24.0
        );
    }
    for panel in [&top, &bottom] {
        panel.overflow_limit(&mut o, precision);
        panel.x_label(
            &mut o,
            "layer index l (0 = first; the last is the output layer)",
            34.0,
        );
    }
    footnote(
        &mut o,
        height - 12.0,
        "Gaps: values of 0, which a log scale cannot show (a layer whose every unit is dead has δ = 0); × at the top: a layer holding a non-finite value.",
    );
    o.push_str("</svg>\n");
    o
}
