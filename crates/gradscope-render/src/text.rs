//! Renderings of an `ExperimentReport` for people and tools: a terminal table (fits in 100
//! columns), markdown for notebooks, and CSV (one row per case × parameter, or per case ×
//! layer). Deterministic: fixed precision, stable order, no times.

use std::fmt::Write as _;

use serde::Serialize;

use gradscope_report::ExperimentReport;
use gradscope_report::LayerStats;
use gradscope_report::floats::{CsvMeasured, csv_float, fmt_sci64};

fn f4(v: impl Into<f64>) -> String {
    fmt_sci64(v.into(), 4)
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

/// The mark of a statistic taken over the finite values of a tensor that holds non-finite
/// ones, and the note a table that shows one ends with.
pub const FINITE_ONLY: &str = "†";

/// The note under a table with a [`FINITE_ONLY`] mark.
pub const FINITE_ONLY_NOTE: &str = "† over the finite values only: the tensor holds non-finite values (!fin); a norm of such a tensor is not a number";

/// `v` for people, marked [`FINITE_ONLY`] when `partial`.
pub fn finite_only(v: impl Into<f64>, partial: bool) -> String {
    if partial {
        format!("{}{FINITE_ONLY}", f4(v))
    } else {
        f4(v)
    }
}

/// ‖δ_l‖ for people: `non-finite` where δ_l holds a non-finite value (its norm is then NaN or
/// inf; the finite part alone could read as "vanishing"), else the norm.
pub fn delta_norm(l: &LayerStats) -> String {
    if l.delta_nonfinite > 0 {
        "non-finite".into()
    } else {
        f4(l.delta_l2)
    }
}

/// A gradient's L2 norm for people: `non-finite` where it holds NaN or inf, as for δ.
pub fn param_norm(p: &gradscope_report::ParamStats) -> String {
    if p.nonfinite > 0 {
        "non-finite".into()
    } else {
        f4(p.l2)
    }
}

/// Whether a layer row holds a statistic over the finite values only.
pub fn layer_partial(l: &LayerStats) -> bool {
    l.delta_nonfinite > 0 || l.activation_nonfinite > 0
}

/// A layer's row: layer, width, ‖δ‖, max |δ|, non-finite δ values, dead fraction, activation
/// mean and std.
fn layer_cells(l: &LayerStats) -> [String; 8] {
    let act = l.activation_nonfinite > 0;
    [
        l.layer.to_string(),
        l.width.to_string(),
        delta_norm(l),
        finite_only(l.delta_max_abs, l.delta_nonfinite > 0),
        l.delta_nonfinite.to_string(),
        pct(l.dead_fraction),
        finite_only(l.activation_mean, act),
        finite_only(l.activation_std, act),
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

const LAYER_WIDTHS: [usize; 8] = [5, 6, 11, 12, 6, 6, 12, 12];
const RANGE_WIDTHS: [usize; 10] = [5, 6, 6, 6, 10, 6, 11, 6, 9, 8];

/// The run's verdict in one line: finite or not, where the first non-finite value was born,
/// and, finite or not, what is dead: a finite gradient is not a healthy one.
pub fn verdict(r: &ExperimentReport) -> String {
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
    let health = health(r);
    if r.all_finite {
        format!(
            "verdict: every gradient value is finite ({n_params} parameters x {cases} input case{plural}){born}{health}"
        )
    } else {
        format!("verdict: NOT FINITE: {total} non-finite gradient values{born}{health}")
    }
}

/// `; DEAD: layer 3 (case x); ZERO GRADIENT: layers.3.weight, layers.3.bias (case x)`, or
/// nothing when every hidden layer has a live unit and every gradient a nonzero value.
pub fn health(r: &ExperimentReport) -> String {
    let mut out = String::new();
    let per_case = |items: &dyn Fn(&gradscope_report::CaseReport) -> Vec<String>| {
        r.cases
            .iter()
            .filter_map(|c| {
                let v = items(c);
                (!v.is_empty()).then(|| format!("{} (case {})", v.join(", "), c.input.name))
            })
            .collect::<Vec<_>>()
    };
    let dead = per_case(&|c| c.dead_layers.iter().map(|l| format!("layer {l}")).collect());
    if !dead.is_empty() {
        out.push_str(&format!(
            "; DEAD (every unit 0 for the whole batch): {}",
            dead.join("; ")
        ));
    }
    let zero = per_case(&|c| c.zero_gradients.clone());
    if !zero.is_empty() {
        out.push_str(&format!(
            "; ZERO GRADIENT (exactly 0 everywhere): {}",
            zero.join("; ")
        ));
    }
    out
}

fn flow_line(r: &ExperimentReport, c: &gradscope_report::CaseReport) -> String {
    let what = match c.flow {
        gradscope_report::Flow::Ok => "within".to_string(),
        gradscope_report::Flow::Vanishing => {
            format!("VANISHING: below {:e}", r.thresholds.vanishing)
        }
        gradscope_report::Flow::Exploding => {
            format!("EXPLODING: above {:e}", r.thresholds.exploding)
        }
        gradscope_report::Flow::Undefined => "undefined".to_string(),
    };
    let range = if c.flow == gradscope_report::Flow::Ok {
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
fn theory_line(c: &gradscope_report::CaseReport) -> Option<String> {
    let t = c.theory.as_ref()?;
    let mean_chi = if t.chi.is_empty() {
        1.0
    } else {
        (t.chi.iter().map(|x| x.ln()).sum::<f64>() / t.chi.len() as f64).exp()
    };
    let phase = t.phase.map_or("no phase", |p| p.name());
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
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
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
    let _ = writeln!(
        s,
        "precision   {}",
        crate::range::precision_label(r.precision)
    );
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
            fmt_sci64(case.loss, 6)
        );
        param_rows(&mut s, &case.params, w);
        let header = [
            "layer",
            "width",
            "||delta||",
            "max |delta|",
            "!fin",
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
        if case_partial(case) {
            for line in wrap(FINITE_ONLY_NOTE, 96) {
                let _ = writeln!(s, "  {line}");
            }
        }
        if let Some(rows) = crate::range::rows(case, r.precision) {
            let _ = writeln!(s, "  range in {}", r.precision);
            let _ = writeln!(s, "{}", aligned(crate::range::HEADER, RANGE_WIDTHS));
            for row in &rows {
                let _ = writeln!(
                    s,
                    "{}",
                    aligned(row.each_ref().map(String::as_str), RANGE_WIDTHS)
                );
            }
            if let Some(m) = crate::range::measured_line(case, r.precision) {
                for line in wrap(&m.replace("δ", "delta"), 96) {
                    let _ = writeln!(s, "  {line}");
                }
            }
            if let Some(t) = crate::range::theory_line(case, r.precision) {
                for line in wrap(&t.replace("δ", "delta"), 96) {
                    let _ = writeln!(s, "  {line}");
                }
            }
            for line in wrap(crate::range::NOTE, 96) {
                let _ = writeln!(s, "  {line}");
            }
        }
        let _ = writeln!(s, "  {}", flow_line(r, case));
        if let Some(t) = theory_line(case) {
            let _ = writeln!(s, "  {t}");
        }
    }
    // One line, however long, so that `grep verdict` finds all of it.
    let _ = writeln!(s, "\n{}", verdict(r));
    s
}

/// A case's parameter table: a header and one row per parameter, names padded to `w`.
fn param_rows(s: &mut String, params: &[gradscope_report::ParamStats], w: usize) {
    let _ = writeln!(
        s,
        "  {:w$}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}  {:>6}",
        "parameter", "shape", "max", "min", "max |g|", "L2", "zero", "!fin"
    );
    for p in params {
        // The !fin column counts them; the arrow keeps the row within 100 columns.
        let flag = if p.nonfinite > 0 { " <-" } else { "" };
        let _ = writeln!(
            s,
            "  {:w$}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}  {:>6}{flag}",
            p.name,
            format!("{:?}", p.shape),
            f4(p.max),
            f4(p.min),
            finite_only(p.max_abs, p.nonfinite > 0),
            param_norm(p),
            pct(p.zero_fraction),
            p.nonfinite
        );
    }
}

/// Whether a case's tables show a statistic over the finite values only.
pub fn case_partial(c: &gradscope_report::CaseReport) -> bool {
    c.params.iter().any(|p| p.nonfinite > 0) || c.layers.iter().any(layer_partial)
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
        "- backend: {}\n- precision: {}\n- seed: {}\n- loss: {}\n",
        backend_label(r),
        crate::range::precision_label(r.precision),
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
            fmt_sci64(case.loss, 6)
        );
        param_table_markdown(&mut s, &case.params);
        let _ = writeln!(
            s,
            "\n| layer | width | ‖δ‖ | max \\|δ\\| | non-finite δ | dead | activation mean | activation std |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in &case.layers {
            let _ = writeln!(s, "| {} |", layer_cells(l).join(" | "));
        }
        if case_partial(case) {
            let _ = writeln!(s, "\n{FINITE_ONLY_NOTE}");
        }
        if let Some(rows) = crate::range::rows(case, r.precision) {
            let _ = writeln!(s, "\nRange in {}:\n", r.precision);
            let _ = writeln!(
                s,
                "| layer | z room | theory | a room | δ room | theory | ∂W room | floor | subnormal | overflow |"
            );
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for row in &rows {
                let _ = writeln!(s, "| {} |", row.join(" | "));
            }
            if let Some(m) = crate::range::measured_line(case, r.precision) {
                let _ = writeln!(s, "\n{m}");
            }
            if let Some(t) = crate::range::theory_line(case, r.precision) {
                let _ = writeln!(s, "\n{t}");
            }
            let _ = writeln!(s, "\n{}", crate::range::NOTE);
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
fn param_table_markdown(s: &mut String, params: &[gradscope_report::ParamStats]) {
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
            finite_only(p.max_abs, p.nonfinite > 0),
            param_norm(p),
            finite_only(p.mean_abs, p.nonfinite > 0),
            finite_only(p.std, p.nonfinite > 0),
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
    precision: &'static str,
    seed: u64,
    case: &'a str,
    parameter: &'a str,
    shape: String,
    max: CsvMeasured,
    min: CsvMeasured,
    max_abs: CsvMeasured,
    l2: CsvMeasured,
    mean_abs: CsvMeasured,
    std: CsvMeasured,
    #[serde(serialize_with = "csv_float")]
    zero_fraction: f32,
    nan: usize,
    pos_inf: usize,
    neg_inf: usize,
    /// Whether max_abs, l2, mean_abs and std are over the finite values only (the gradient
    /// holds NaN or inf).
    finite_only: bool,
}

/// One CSV row of `csv_layers`: a case × layer.
#[derive(Serialize)]
struct LayerRow<'a> {
    experiment: &'a str,
    backend: &'a str,
    precision: &'static str,
    seed: u64,
    case: &'a str,
    layer: usize,
    width: usize,
    delta_l2: CsvMeasured,
    delta_max_abs: CsvMeasured,
    delta_nonfinite: usize,
    /// Whether delta_l2 and delta_max_abs are over the finite values only.
    delta_finite_only: bool,
    #[serde(serialize_with = "csv_float")]
    dead_fraction: f32,
    activation_mean: CsvMeasured,
    activation_std: CsvMeasured,
    activation_nonfinite: usize,
    delta_ratio: CsvMeasured,
    flow: &'static str,
}

/// One CSV row per case × parameter, headed by the column names when `header`.
pub fn csv_params(r: &ExperimentReport, header: bool) -> Result<String, csv::Error> {
    let rows = r.cases.iter().flat_map(|c| {
        c.params.iter().map(move |p| ParamRow {
            experiment: &r.experiment,
            backend: &r.backend,
            precision: r.precision.name(),
            seed: r.seed,
            case: &c.input.name,
            parameter: &p.name,
            shape: shape(&p.shape),
            max: CsvMeasured(p.max, r.precision),
            min: CsvMeasured(p.min, r.precision),
            max_abs: CsvMeasured(p.max_abs, r.precision),
            l2: CsvMeasured(p.l2, r.precision),
            mean_abs: CsvMeasured(p.mean_abs, r.precision),
            std: CsvMeasured(p.std, r.precision),
            zero_fraction: p.zero_fraction,
            nan: p.nan,
            pos_inf: p.pos_inf,
            neg_inf: p.neg_inf,
            finite_only: p.nonfinite > 0,
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
            precision: r.precision.name(),
            seed: r.seed,
            case: &c.input.name,
            layer: l.layer,
            width: l.width,
            delta_l2: CsvMeasured(l.delta_l2, r.precision),
            delta_max_abs: CsvMeasured(l.delta_max_abs, r.precision),
            delta_nonfinite: l.delta_nonfinite,
            delta_finite_only: l.delta_nonfinite > 0,
            dead_fraction: l.dead_fraction,
            activation_mean: CsvMeasured(l.activation_mean, r.precision),
            activation_std: CsvMeasured(l.activation_std, r.precision),
            activation_nonfinite: l.activation_nonfinite,
            delta_ratio: CsvMeasured(c.delta_ratio, r.precision),
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
