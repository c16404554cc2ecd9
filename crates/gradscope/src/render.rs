//! Renderings of an `ExperimentReport` for people and tools: a terminal table (fits in 100
//! columns), markdown for notebooks, and CSV (one row per case × parameter, or per case ×
//! layer). Deterministic: fixed precision, stable order, no times.

use std::fmt::Write as _;

use serde::Serialize;

use crate::floats::{csv_float, fmt_sci};
use crate::report::ExperimentReport;
use crate::stats::LayerStats;

fn f4(v: f32) -> String {
    fmt_sci(v, 4)
}

fn pct(v: f32) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// `wgpu (llvmpipe ...)`, or the backend's name alone.
fn backend_label(r: &ExperimentReport) -> String {
    match &r.adapter {
        Some(a) => format!("{} ({a})", r.backend),
        None => r.backend.clone(),
    }
}

/// A layer's row: layer, width, ‖δ‖, max |δ|, dead fraction, activation mean and std.
fn layer_cells(l: &LayerStats) -> [String; 7] {
    [
        l.layer.to_string(),
        l.width.to_string(),
        f4(l.delta_l2),
        f4(l.delta_max_abs),
        pct(l.dead_fraction),
        f4(l.activation_mean),
        f4(l.activation_std),
    ]
}

/// Right-align `cells` in columns of `widths`, two spaces apart, indented by two.
fn aligned<const N: usize>(cells: [&str; N], widths: [usize; N]) -> String {
    cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("  {c:>w$}"))
        .collect()
}

const LAYER_WIDTHS: [usize; 7] = [5, 6, 11, 11, 6, 11, 11];

fn verdict(r: &ExperimentReport) -> String {
    let n_params = r.cases.first().map_or(0, |c| c.params.len());
    let cases = r.cases.len();
    let plural = if cases == 1 { "" } else { "s" };
    let total: usize = r
        .cases
        .iter()
        .flat_map(|c| &c.params)
        .map(|p| p.nonfinite)
        .sum();
    let born = r
        .origin
        .as_ref()
        .map(|o| format!("; the first non-finite value was born {}", o.describe()))
        .unwrap_or_default();
    if r.all_finite {
        format!(
            "verdict: every gradient value is finite ({n_params} parameters x {cases} input case{plural}){born}"
        )
    } else {
        format!("verdict: NOT FINITE: {total} non-finite gradient values{born}")
    }
}

fn flow_line(r: &ExperimentReport, c: &crate::report::CaseReport) -> String {
    let what = match c.flow {
        crate::report::Flow::Ok => "within".to_string(),
        crate::report::Flow::Vanishing => format!("VANISHING: below {:e}", r.thresholds.vanishing),
        crate::report::Flow::Exploding => format!("EXPLODING: above {:e}", r.thresholds.exploding),
        crate::report::Flow::Undefined => "undefined".to_string(),
    };
    let range = if c.flow == crate::report::Flow::Ok {
        format!(
            " [{:e}, {:e}]",
            r.thresholds.vanishing, r.thresholds.exploding
        )
    } else {
        String::new()
    };
    format!(
        "gradient flow ||delta_first|| / ||delta_last|| = {} ({what}{range})",
        f4(c.delta_ratio)
    )
}

/// Mean-field theory's prediction for a case, beside the measured ratio: `None` without one.
fn theory_line(c: &crate::report::CaseReport) -> Option<String> {
    let t = c.theory.as_ref()?;
    let mean_chi = if t.chi.is_empty() {
        1.0
    } else {
        (t.chi.iter().map(|x| x.ln()).sum::<f64>() / t.chi.len() as f64).exp()
    };
    let phase = serde_json::to_value(t.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "no phase".into());
    let line = format!(
        "mean-field theory predicts {}: {phase}, chi = {} per layer (geometric mean)",
        f4(t.delta_ratio as f32),
        f4(mean_chi as f32)
    );
    // The first reason it does not describe this run, on lines of its own (indented as the
    // text table indents the theory line).
    Some(match t.caveats.first().filter(|_| !t.applies) {
        Some(why) => {
            let why = wrap(&format!("it does not apply here: {why}"), 96).join("\n  ");
            format!("{line}\n  {why}")
        }
        None => line,
    })
}

/// Split `text` into lines of at most `width` characters at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().map_or(0, |l| l.chars().count());
        if last > 0 && last + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
    }
    lines
}

/// The report as a table for a terminal.
pub fn table(r: &ExperimentReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "experiment  {}", r.experiment);
    for line in wrap(&r.description, 100 - 12) {
        let _ = writeln!(s, "            {line}");
    }
    let _ = writeln!(s, "backend     {}", backend_label(r));
    let _ = writeln!(s, "seed        {}    loss {}", r.seed, r.loss);
    let w = r
        .cases
        .iter()
        .flat_map(|c| c.params.iter().map(|p| p.name.len()))
        .chain(std::iter::once("parameter".len()))
        .max()
        .unwrap_or(9);
    for case in &r.cases {
        let _ = writeln!(
            s,
            "\ninput {} {:?} {}    loss {}",
            case.input.name,
            case.input.shape,
            case.input.distribution,
            fmt_sci(case.loss, 6)
        );
        param_rows(&mut s, &case.params, w);
        let header = [
            "layer",
            "width",
            "||delta||",
            "max |delta|",
            "dead",
            "act mean",
            "act std",
        ];
        let _ = writeln!(s, "{}", aligned(header, LAYER_WIDTHS));
        for l in &case.layers {
            let _ = writeln!(
                s,
                "{}",
                aligned(layer_cells(l).each_ref().map(String::as_str), LAYER_WIDTHS)
            );
        }
        let _ = writeln!(s, "  {}", flow_line(r, case));
        if let Some(t) = theory_line(case) {
            let _ = writeln!(s, "  {t}");
        }
    }
    let _ = writeln!(s, "\n{}", verdict(r));
    s
}

/// A case's parameter table: a header and one row per parameter, names padded to `w`.
fn param_rows(s: &mut String, params: &[crate::stats::ParamStats], w: usize) {
    let _ = writeln!(
        s,
        "  {:w$}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}  {:>6}",
        "parameter", "shape", "max", "min", "max |g|", "L2", "zero", "!fin"
    );
    for p in params {
        let flag = if p.nonfinite > 0 {
            "  <- not finite"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {:w$}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}  {:>6}{flag}",
            p.name,
            format!("{:?}", p.shape),
            f4(p.max),
            f4(p.min),
            f4(p.max_abs),
            f4(p.l2),
            pct(p.zero_fraction),
            p.nonfinite
        );
    }
}

/// The report as markdown (for notebooks and the lab notebook in `experiments/`).
pub fn markdown(r: &ExperimentReport) -> String {
    page(r, None)
}

/// The report as a notebook page, with the picture `svg` (a path relative to the page,
/// `plot::run_svg`) under its heading.
pub fn markdown_with_picture(r: &ExperimentReport, svg: &str) -> String {
    page(r, Some(svg))
}

fn page(r: &ExperimentReport, svg: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n\n{}\n", r.experiment, r.description);
    let _ = writeln!(
        s,
        "- backend: {}\n- seed: {}\n- loss: {}\n",
        backend_label(r),
        r.seed,
        r.loss
    );
    if let Some(svg) = svg {
        let alt = "activation scale and ‖δ_l‖ by layer, with mean-field theory";
        let _ = writeln!(s, "![{alt}]({svg})\n");
    }
    for case in &r.cases {
        let _ = writeln!(
            s,
            "### Input `{}` {:?} — {}\n\nloss = {}\n",
            case.input.name,
            case.input.shape,
            case.input.distribution,
            fmt_sci(case.loss, 6)
        );
        param_table_markdown(&mut s, &case.params);
        let _ = writeln!(
            s,
            "\n| layer | width | ‖δ‖ | max \\|δ\\| | dead | activation mean | activation std |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        for l in &case.layers {
            let _ = writeln!(s, "| {} |", layer_cells(l).join(" | "));
        }
        let _ = writeln!(s, "\n{}\n", flow_line(r, case).replace("||", "‖"));
        if let Some(t) = theory_line(case) {
            let _ = writeln!(s, "{}\n", t.replace("chi", "χ"));
        }
    }
    let _ = writeln!(s, "**{}**", verdict(r));
    s
}

/// A case's parameter table in markdown.
fn param_table_markdown(s: &mut String, params: &[crate::stats::ParamStats]) {
    let _ = writeln!(
        s,
        "| parameter | shape | max | min | max \\|g\\| | L2 | mean \\|g\\| | std | zero | NaN | +inf | −inf |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in params {
        let _ = writeln!(
            s,
            "| `{}` | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            p.shape,
            f4(p.max),
            f4(p.min),
            f4(p.max_abs),
            f4(p.l2),
            f4(p.mean_abs),
            f4(p.std),
            pct(p.zero_fraction),
            p.nan,
            p.pos_inf,
            p.neg_inf
        );
    }
}

fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// `rows` as CSV: RFC 4180 quoting by the csv crate, and, when `header`, a first line of the
/// row type's field names, so the header always matches the rows.
pub fn csv_rows<R: Serialize>(
    rows: impl IntoIterator<Item = R>,
    header: bool,
) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    for row in rows {
        w.serialize(row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field is a `String`, `&str` or number: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// One CSV row of `csv_params`: a case × parameter.
#[derive(Serialize)]
struct ParamRow<'a> {
    experiment: &'a str,
    backend: &'a str,
    seed: u64,
    case: &'a str,
    parameter: &'a str,
    shape: String,
    #[serde(serialize_with = "csv_float")]
    max: f32,
    #[serde(serialize_with = "csv_float")]
    min: f32,
    #[serde(serialize_with = "csv_float")]
    max_abs: f32,
    #[serde(serialize_with = "csv_float")]
    l2: f32,
    #[serde(serialize_with = "csv_float")]
    mean_abs: f32,
    #[serde(serialize_with = "csv_float")]
    std: f32,
    #[serde(serialize_with = "csv_float")]
    zero_fraction: f32,
    nan: usize,
    pos_inf: usize,
    neg_inf: usize,
}

/// One CSV row of `csv_layers`: a case × layer.
#[derive(Serialize)]
struct LayerRow<'a> {
    experiment: &'a str,
    backend: &'a str,
    seed: u64,
    case: &'a str,
    layer: usize,
    width: usize,
    #[serde(serialize_with = "csv_float")]
    delta_l2: f32,
    #[serde(serialize_with = "csv_float")]
    delta_max_abs: f32,
    delta_nonfinite: usize,
    #[serde(serialize_with = "csv_float")]
    dead_fraction: f32,
    #[serde(serialize_with = "csv_float")]
    activation_mean: f32,
    #[serde(serialize_with = "csv_float")]
    activation_std: f32,
    #[serde(serialize_with = "csv_float")]
    delta_ratio: f32,
    flow: &'static str,
}

/// One CSV row per case × parameter, headed by the column names when `header`.
pub fn csv_params(r: &ExperimentReport, header: bool) -> Result<String, csv::Error> {
    let rows = r.cases.iter().flat_map(|c| {
        c.params.iter().map(move |p| ParamRow {
            experiment: &r.experiment,
            backend: &r.backend,
            seed: r.seed,
            case: &c.input.name,
            parameter: &p.name,
            shape: shape(&p.shape),
            max: p.max,
            min: p.min,
            max_abs: p.max_abs,
            l2: p.l2,
            mean_abs: p.mean_abs,
            std: p.std,
            zero_fraction: p.zero_fraction,
            nan: p.nan,
            pos_inf: p.pos_inf,
            neg_inf: p.neg_inf,
        })
    });
    csv_rows(rows, header)
}

/// One CSV row per case × layer, headed by the column names when `header`.
pub fn csv_layers(r: &ExperimentReport, header: bool) -> Result<String, csv::Error> {
    let rows = r.cases.iter().flat_map(|c| {
        c.layers.iter().map(move |l| LayerRow {
            experiment: &r.experiment,
            backend: &r.backend,
            seed: r.seed,
            case: &c.input.name,
            layer: l.layer,
            width: l.width,
            delta_l2: l.delta_l2,
            delta_max_abs: l.delta_max_abs,
            delta_nonfinite: l.delta_nonfinite,
            dead_fraction: l.dead_fraction,
            activation_mean: l.activation_mean,
            activation_std: l.activation_std,
            delta_ratio: c.delta_ratio,
            flow: c.flow.name(),
        })
    });
    csv_rows(rows, header)
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_at_spaces_within_the_width() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(
            wrap("averyverylongword x", 5),
            vec!["averyverylongword", "x"]
        );
        assert_eq!(wrap("", 5), vec![""]);
    }
}

/// A training run for a terminal: the setting, a table of steps (about 10, evenly spaced,
/// and the last), and the verdict: "finite for all N steps", or where the first non-finite
/// value was born and how the layer grew before it.
pub fn training(r: &crate::train::TrainReport, steps: &[crate::train::StepRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "experiment  {}", r.experiment);
    let _ = writeln!(s, "backend     {}", r.backend);
    let _ = writeln!(
        s,
        "training    {} steps of {}, learning rate {}, batch {}, clip {}, loss {}, seed {}",
        r.steps, r.optimizer, r.learning_rate, r.batch, r.clip, r.loss, r.seed
    );
    let _ = writeln!(
        s,
        "\n  {:>7}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
        "step", "loss", "|grad|", "max |z|", "||delta_0||", "max update"
    );
    for st in sampled(steps) {
        let _ = writeln!(
            s,
            "  {:>7}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
            st.step,
            sci(st.loss),
            sci(st.grad_norm),
            sci(max_z(st)),
            sci(st.layers.first().map_or(f64::NAN, |l| l.delta_l2)),
            sci(max_update(st))
        );
    }
    let Some(o) = &r.origin else {
        let _ = writeln!(
            s,
            "\nfinite for all {} steps; loss {} -> {}",
            r.steps_run,
            sci(r.first_loss),
            sci(r.last_loss)
        );
        return s;
    };
    let _ = writeln!(s, "\nNOT FINITE: {}", o.describe());
    if let Some(g) = &r.growth {
        let _ = writeln!(
            s,
            "growth of layer {} before it (max |z|, ||delta||):",
            g.layer
        );
        for ((step, z), d) in g.steps.iter().zip(&g.z_max_abs).zip(&g.delta_l2) {
            let _ = writeln!(s, "  step {step:>7}  {:>11}  {:>11}", sci(*z), sci(*d));
        }
        let _ = writeln!(
            s,
            "  max |z| grew by x{} per step",
            sci(g.z_factor_per_step)
        );
    }
    s
}

/// The steps a report shows: about ten, evenly spaced, and the last.
fn sampled(steps: &[crate::train::StepRecord]) -> impl Iterator<Item = &crate::train::StepRecord> {
    let every = steps.len().div_ceil(10).max(1);
    let last = steps.len().saturating_sub(1);
    steps
        .iter()
        .enumerate()
        .filter(move |(i, _)| i % every == 0 || *i == last)
        .map(|(_, st)| st)
}

/// The largest max |z_l| of a step over its layers.
fn max_z(st: &crate::train::StepRecord) -> f64 {
    st.layers.iter().map(|l| l.z_max_abs).fold(0.0, f64::max)
}

/// The largest update ratio of a step over its layers.
fn max_update(st: &crate::train::StepRecord) -> f64 {
    st.layers.iter().map(|l| l.update_ratio).fold(0.0, f64::max)
}

/// An f64 in the report's scientific style (4 significant digits; inf and nan spelled).
fn sci(v: f64) -> String {
    fmt_sci(v as f32, 4)
}

/// A training run as markdown, with its picture `svg` (a path relative to the page).
pub fn training_markdown(
    r: &crate::train::TrainReport,
    steps: &[crate::train::StepRecord],
    svg: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n", r.experiment);
    let _ = writeln!(s, "{}\n", r.description);
    let _ = writeln!(s, "- backend: {}", r.backend);
    let _ = writeln!(s, "- seed: {}", r.seed);
    let _ = writeln!(
        s,
        "- training: {} steps of {}, learning rate {}, batch {}, clip {}, loss {}\n",
        r.steps, r.optimizer, r.learning_rate, r.batch, r.clip, r.loss
    );
    let verdict = match &r.origin {
        None => format!(
            "**finite for all {} steps**; loss {} → {}",
            r.steps_run,
            sci(r.first_loss),
            sci(r.last_loss)
        ),
        Some(o) => format!("**NOT FINITE**: {}", o.describe()),
    };
    let _ = writeln!(s, "Verdict: {verdict}\n");
    let _ = writeln!(s, "![loss and ‖δ_l‖ per step]({svg})\n");
    let _ = writeln!(
        s,
        "| step | loss | ‖g‖ | ‖g‖ clipped | max \\|z\\| | ‖δ_0‖ | ‖δ_last‖ | max update ratio |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for st in sampled(steps) {
        let d = |l: Option<&crate::train::LayerStep>| sci(l.map_or(f64::NAN, |l| l.delta_l2));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            st.step,
            sci(st.loss),
            sci(st.grad_norm),
            sci(st.grad_norm_clipped),
            sci(max_z(st)),
            d(st.layers.first()),
            d(st.layers.last()),
            sci(max_update(st))
        );
    }
    if let Some(g) = &r.growth {
        growth_markdown(&mut s, g);
    }
    s
}

/// The growth of the failing layer before the failure, as a markdown table.
fn growth_markdown(s: &mut String, g: &crate::train::Growth) {
    let _ = writeln!(
        s,
        "\nLayer {} before the failure (max |z| grew by ×{} per step):\n",
        g.layer,
        sci(g.z_factor_per_step)
    );
    let _ = writeln!(s, "| step | max \\|z\\| | ‖δ‖ |\n|---:|---:|---:|");
    for ((step, z), d) in g.steps.iter().zip(&g.z_max_abs).zip(&g.delta_l2) {
        let _ = writeln!(s, "| {step} | {} | {} |", sci(*z), sci(*d));
    }
}
