//! A training run for people: the terminal report, the notebook's markdown, and the per-step
//! and growth rows the HTML page shares with them.

use std::fmt::Write as _;

use gradscope_report::floats::fmt_sci64;
use gradscope_report::{Growth, LayerStep, StepRecord, TrainReport};

/// A training run for a terminal: the setting, a table of steps (about 10, evenly spaced,
/// and the last), and the verdict: "finite for all N steps", or where the first non-finite
/// value was born and how the layer grew before it.
pub fn training(r: &TrainReport, steps: &[StepRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "experiment  {}", r.experiment);
    let _ = writeln!(s, "backend     {}", r.backend);
    let _ = writeln!(s, "precision   {}", precision(r));
    let _ = writeln!(
        s,
        "training    {} steps of {}, learning rate {}, batch {}, clip {}, loss {}, seed {}",
        r.steps, r.optimizer, r.learning_rate, r.batch, r.clip, r.loss, r.seed
    );
    if let Some(line) = loss_scale_line(r) {
        let _ = writeln!(s, "loss scale  {line}");
    }
    let scaled = r.loss_scale.is_some();
    let _ = write!(
        s,
        "\n  {:>7}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
        "step", "loss", "|grad|", "max |z|", "||delta_0||", "max update"
    );
    let _ = writeln!(s, "{}", if scaled { "  loss scale" } else { "" });
    for st in sampled(steps) {
        let _ = write!(
            s,
            "  {:>7}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
            st.step,
            sci(st.loss.into()),
            sci(st.grad_norm),
            sci(max_z(st)),
            sci(st.layers.first().map_or(f64::NAN, |l| l.delta_l2)),
            max_update(st)
        );
        let _ = writeln!(
            s,
            "{}",
            if scaled {
                format!("  {}", scale_cell(st))
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(s, "\n{}", verdict(r, "->"));
    let Some(_) = &r.origin else {
        return s;
    };
    if let Some(g) = &r.growth {
        let _ = writeln!(
            s,
            "growth of layer {} before it (max |z|, ||delta||):",
            g.layer
        );
        for ((step, z), d) in g.steps.iter().zip(&g.z_max_abs).zip(&g.delta_l2) {
            let _ = writeln!(s, "  step {step:>7}  {:>11}  {:>11}", sci(*z), sci(*d));
        }
        let _ = writeln!(s, "  max |z| growth: {}", growth_factor(g, "x"));
    }
    s
}

/// The run's verdict in one line: finite for all its steps (with the loss, and the accuracy
/// of a classification, from the first step to the last, `arrow` between them) or where the
/// first non-finite value was born; then, finite or not, which layers died or stopped
/// getting a gradient, and from which step: a finite run is not a healthy one.
pub fn verdict(r: &TrainReport, arrow: &str) -> String {
    let skipped = r.loss_scale.as_ref().map_or(0, |l| l.skipped_steps);
    let mut s = match &r.origin {
        None if skipped > 0 => format!(
            "ran all {} steps, {skipped} of them SKIPPED for non-finite gradients (the loss scale backed off); loss {} {arrow} {}",
            r.steps_run,
            sci(r.first_loss.into()),
            sci(r.last_loss.into())
        ),
        None => format!(
            "finite for all {} steps; loss {} {arrow} {}",
            r.steps_run,
            sci(r.first_loss.into()),
            sci(r.last_loss.into())
        ),
        Some(o) => format!("NOT FINITE: {}", o.describe()),
    };
    if let Some([a, b]) = r.accuracy {
        let _ = write!(s, "; accuracy {} {arrow} {}", pct(a), pct(b));
    }
    s.push_str(&health(r));
    s
}

/// The precision for people: `f16`, or `f16 compute, f32 master weights (mixed precision)`.
pub fn precision(r: &TrainReport) -> String {
    match r.master_precision {
        Some(m) => format!(
            "{} compute, {m} master weights (mixed precision)",
            r.precision
        ),
        None => r.precision.to_string(),
    }
}

/// The loss scale's course in one line: `dynamic(...): 65536 → 0.5 (min 0.5, max 65536); 17 of
/// 200 steps skipped for non-finite gradients, the first: in the forward pass at step 3: ...`.
pub fn loss_scale_line(r: &TrainReport) -> Option<String> {
    let l = r.loss_scale.as_ref()?;
    let mut s = format!(
        "{}: {} -> {} (min {}, max {})",
        l.kind,
        sci(l.init.into()),
        sci(l.last.into()),
        sci(l.min.into()),
        sci(l.max.into())
    );
    match &l.first_skip {
        Some(o) => {
            let _ = write!(
                s,
                "; {} of {} steps skipped for non-finite gradients, the first {}",
                l.skipped_steps,
                r.steps_run,
                o.describe()
            );
        }
        None => s.push_str("; no step skipped"),
    }
    Some(s)
}

/// A step's loss scale cell: the scale, and `skipped` where the step was.
fn scale_cell(st: &StepRecord) -> String {
    match (st.loss_scale, st.skipped) {
        (Some(v), Some(true)) => format!("{} skipped", sci(v.into())),
        (Some(v), _) => sci(v.into()),
        (None, _) => NOT_COMPUTED.into(),
    }
}

/// `62.5 %`.
fn pct(x: f32) -> String {
    if x.is_finite() {
        format!("{:.1} %", 100.0 * x)
    } else {
        fmt_sci64(x.into(), 0)
    }
}

/// `; DEAD (every unit 0 for the whole batch): layer 3 from step 30; ZERO GRADIENT (a
/// kernel's gradient exactly 0 everywhere): layers 0, 1, 2, 3, 4 from step 30`, or nothing.
pub fn health(r: &TrainReport) -> String {
    let mut out = String::new();
    let groups = [
        (
            "DEAD (every unit 0 for the whole batch)",
            &r.dead_layers,
            "alive again at the last step",
        ),
        (
            "ZERO GRADIENT (a kernel's gradient exactly 0 everywhere)",
            &r.zero_gradients,
            "nonzero again at the last step",
        ),
    ];
    for (what, events, revived) in groups {
        if events.is_empty() {
            continue;
        }
        // Layers that turned so at one step and stayed so are listed together.
        let mut parts: Vec<(Vec<usize>, usize, bool)> = Vec::new();
        for e in events.iter() {
            match parts
                .iter_mut()
                .find(|(_, step, end)| *step == e.first_step && *end == e.at_end)
            {
                Some((layers, _, _)) => layers.push(e.layer),
                None => parts.push((vec![e.layer], e.first_step, e.at_end)),
            }
        }
        let parts: Vec<String> = parts
            .iter()
            .map(|(layers, step, end)| {
                let names: Vec<String> = layers.iter().map(usize::to_string).collect();
                let plural = if layers.len() == 1 { "" } else { "s" };
                let back = if *end {
                    String::new()
                } else {
                    format!(" ({revived})")
                };
                format!("layer{plural} {} from step {step}{back}", names.join(", "))
            })
            .collect();
        let _ = write!(out, "; {what}: {}", parts.join("; "));
    }
    out
}

/// The steps a report shows: about ten, evenly spaced, and the last.
fn sampled(steps: &[StepRecord]) -> impl Iterator<Item = &StepRecord> {
    let every = steps.len().div_ceil(10).max(1);
    let last = steps.len().saturating_sub(1);
    steps
        .iter()
        .enumerate()
        .filter(move |(i, _)| i % every == 0 || *i == last)
        .map(|(_, st)| st)
}

/// The largest max |z_l| of a step over its layers.
fn max_z(st: &StepRecord) -> f64 {
    st.layers.iter().map(|l| l.z_max_abs).fold(0.0, f64::max)
}

/// The largest update ratio of a step over its layers, for people: `–` at a step that made
/// no update (nothing was computed), NaN where one ratio is NaN.
fn max_update(st: &StepRecord) -> String {
    let ratios: Option<Vec<f64>> = st.layers.iter().map(|l| l.update_ratio).collect();
    match ratios {
        Some(r) if !r.is_empty() => {
            let nan = r.iter().any(|x| x.is_nan());
            sci(if nan {
                f64::NAN
            } else {
                r.into_iter().fold(0.0, f64::max)
            })
        }
        _ => NOT_COMPUTED.into(),
    }
}

/// What a table shows where a value was not computed.
const NOT_COMPUTED: &str = "–";

/// An f64 in the report's scientific style (4 significant digits; inf and nan spelled; a
/// value past f32's range stays the number it is).
fn sci(v: f64) -> String {
    fmt_sci64(v, 4)
}

/// The growth factor of max |z| per step, for people: not computed where fewer than two
/// finite values precede the failure (a one-step run, or values already infinite).
fn growth_factor(g: &Growth, times: &str) -> String {
    if g.z_factor_per_step.is_finite() {
        format!("{times}{} per step", sci(g.z_factor_per_step))
    } else {
        "not computed (fewer than two finite values of max |z| before the failure)".into()
    }
}

/// A training run as markdown, with its picture `svg` (a path relative to the page).
pub fn training_markdown(r: &TrainReport, steps: &[StepRecord], svg: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n", r.experiment);
    let _ = writeln!(s, "{}\n", r.description);
    let _ = writeln!(s, "- backend: {}", r.backend);
    let _ = writeln!(s, "- precision: {}", precision(r));
    let _ = writeln!(s, "- seed: {}", r.seed);
    let _ = writeln!(
        s,
        "- training: {} steps of {}, learning rate {}, batch {}, clip {}, loss {}\n",
        r.steps, r.optimizer, r.learning_rate, r.batch, r.clip, r.loss
    );
    if let Some(line) = loss_scale_line(r) {
        // The line's list ends the one above: back over its blank line.
        s.pop();
        let _ = writeln!(s, "- loss scale: {}\n", line.replace("->", "→"));
    }
    let _ = writeln!(s, "Verdict: {}\n", verdict(r, "→"));
    let _ = writeln!(s, "![loss and ‖δ_l‖ per step]({svg})\n");
    let headings: Vec<String> = step_headings(steps)
        .iter()
        .map(|h| h.replace('|', "\\|"))
        .collect();
    let _ = writeln!(s, "| {} |", headings.join(" | "));
    let _ = writeln!(s, "|{}", "---:|".repeat(headings.len()));
    for row in step_rows(steps) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    if let Some(g) = &r.growth {
        growth_markdown(&mut s, g);
    }
    s
}

/// The growth of the failing layer before the failure, as a markdown table.
fn growth_markdown(s: &mut String, g: &Growth) {
    let _ = writeln!(s, "\n{}:\n", growth_caption(g));
    let _ = writeln!(s, "| step | max \\|z\\| | ‖δ‖ |\n|---:|---:|---:|");
    for row in growth_rows(g) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
}

/// The columns of the per-step table of `steps` (markdown and HTML): [`STEP_HEADINGS`], and
/// `loss scale` where the steps were scaled.
pub fn step_headings(steps: &[StepRecord]) -> Vec<&'static str> {
    let mut h = STEP_HEADINGS.to_vec();
    if scaled(steps) {
        h.push("loss scale");
    }
    h
}

/// Whether the steps carry a loss scale.
fn scaled(steps: &[StepRecord]) -> bool {
    steps.first().is_some_and(|s| s.loss_scale.is_some())
}

/// The columns of the per-step table every run has.
pub const STEP_HEADINGS: [&str; 8] = [
    "step",
    "loss",
    "‖g‖",
    "‖g‖ clipped",
    "max |z|",
    "‖δ_0‖",
    "‖δ_last‖",
    "max update ratio",
];

/// The per-step table's rows: about ten steps, evenly spaced, and the last; a column per
/// [`step_headings`].
pub fn step_rows(steps: &[StepRecord]) -> Vec<Vec<String>> {
    let d = |l: Option<&LayerStep>| sci(l.map_or(f64::NAN, |l| l.delta_l2));
    let scaled = scaled(steps);
    sampled(steps)
        .map(|st| {
            let mut row = vec![
                st.step.to_string(),
                sci(st.loss.into()),
                sci(st.grad_norm),
                sci(st.grad_norm_clipped),
                sci(max_z(st)),
                d(st.layers.first()),
                d(st.layers.last()),
                max_update(st),
            ];
            if scaled {
                row.push(scale_cell(st));
            }
            row
        })
        .collect()
}

/// `Layer L before the failure (max |z| growth: ×F per step)`.
pub fn growth_caption(g: &Growth) -> String {
    format!(
        "Layer {} before the failure (max |z| growth: {})",
        g.layer,
        growth_factor(g, "×")
    )
}

/// The growth table's rows: step, max |z|, ‖δ‖.
pub fn growth_rows(g: &Growth) -> Vec<[String; 3]> {
    g.steps
        .iter()
        .zip(&g.z_max_abs)
        .zip(&g.delta_l2)
        .map(|((step, z), d)| [step.to_string(), sci(*z), sci(*d)])
        .collect()
}
