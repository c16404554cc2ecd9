//! gradscope's pictures, as plain SVG written directly, so the bytes are deterministic and no
//! font library is needed: a sweep's ‖δ_l‖ by layer (one picture per point, or small multiples
//! over a depth axis), its phase diagram over a two-axis grid, its ratio against depth, a
//! training sweep's bars, and one run's or one training run's panels.

mod axis;
mod layers;
mod phase;
mod ratio;
mod run;
mod svg;
#[cfg(test)]
mod tests;
mod training;
mod training_sweep;

use gradscope_report::SweepSummary;

pub use phase::phase_svg;
pub use ratio::ratio_svg;
pub use run::{RunCase, run_svg};
pub use training::training_svg;
pub use training_sweep::training_sweep_svg;

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

/// Viridis, sampled: a sequential, colour-blind-safe scale for the layers of a network. It
/// stops short of viridis's last yellows, which are too light to read on white.
const SEQUENTIAL: &[&str] = &[
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
    "#a8db34",
];

/// Paul Tol's "muted" scheme: nine colours distinguishable with every common colour-vision
/// deficiency.
const MUTED: &[&str] = &[
    "#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677", "#882255",
    "#aa4499",
];

/// The picture of `s` as an SVG document: a training sweep's bars, a two-axis grid's phase
/// diagram, a depth sweep's small multiples, or else ‖δ_l‖ by layer with one line per point.
pub fn svg(s: &SweepSummary) -> String {
    if s.points.iter().any(|p| p.training.is_some()) {
        return training_sweep_svg(s);
    }
    if phase::is_grid(s) {
        return phase_svg(s);
    }
    if let Some(depth) = layers::depth_axis(s) {
        return layers::small_multiples_svg(s, depth);
    }
    layers::points_svg(s)
}
