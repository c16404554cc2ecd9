//! Renderings of an `ExperimentReport` for people and tools: a terminal table (fits in 100
//! columns), markdown for notebooks, and CSV (one row per case × parameter, or per case ×
//! layer). Deterministic: fixed precision, stable order, no times.

use std::fmt::Write as _;

use crate::report::{ExperimentReport, fmt_sci};
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
    match &r.first_nonfinite {
        None => format!(
            "verdict: every gradient value is finite ({n_params} parameters x {cases} input case{plural})"
        ),
        Some(at) => {
            let total: usize = r
                .cases
                .iter()
                .flat_map(|c| &c.params)
                .map(|p| p.nonfinite)
                .sum();
            format!("verdict: NOT FINITE: {total} non-finite gradient values; the first in {at}")
        }
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
        let _ = writeln!(
            s,
            "  {:w$}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}  {:>6}",
            "parameter", "shape", "max", "min", "max |g|", "L2", "zero", "!fin"
        );
        for p in &case.params {
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
    }
    let _ = writeln!(s, "\n{}", verdict(r));
    s
}

/// The report as markdown (for notebooks and the lab notebook in `experiments/`).
pub fn markdown(r: &ExperimentReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n\n{}\n", r.experiment, r.description);
    let _ = writeln!(
        s,
        "- backend: {}\n- seed: {}\n- loss: {}\n",
        backend_label(r),
        r.seed,
        r.loss
    );
    for case in &r.cases {
        let _ = writeln!(
            s,
            "### Input `{}` {:?} — {}\n\nloss = {}\n",
            case.input.name,
            case.input.shape,
            case.input.distribution,
            fmt_sci(case.loss, 6)
        );
        let _ = writeln!(
            s,
            "| parameter | shape | max | min | max \\|g\\| | L2 | mean \\|g\\| | std | zero | NaN | +inf | −inf |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &case.params {
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
        let _ = writeln!(
            s,
            "\n| layer | width | ‖δ‖ | max \\|δ\\| | dead | activation mean | activation std |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        for l in &case.layers {
            let _ = writeln!(s, "| {} |", layer_cells(l).join(" | "));
        }
        let _ = writeln!(s, "\n{}\n", flow_line(r, case).replace("||", "‖"));
    }
    let _ = writeln!(s, "**{}**", verdict(r));
    s
}

/// CSV header of `csv_params`.
pub const PARAMS_HEADER: &str = "experiment,backend,seed,case,parameter,shape,max,min,max_abs,l2,mean_abs,std,zero_fraction,nan,pos_inf,neg_inf";
/// CSV header of `csv_layers`.
pub const LAYERS_HEADER: &str = "experiment,backend,seed,case,layer,width,delta_l2,delta_max_abs,delta_nonfinite,dead_fraction,activation_mean,activation_std,delta_ratio,flow";

fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// A float for CSV: its shortest round-tripping form; NaN/inf spelled as in the JSON.
pub fn csv_num(v: f32) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        fmt_sci(v, 0)
    }
}

/// One CSV row per case × parameter (no header). Names are restricted to `[A-Za-z0-9._-]` by
/// validation, so no field needs quoting.
pub fn csv_params(r: &ExperimentReport) -> String {
    let mut s = String::new();
    for c in &r.cases {
        for p in &c.params {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.experiment,
                r.backend,
                r.seed,
                c.input.name,
                p.name,
                shape(&p.shape),
                csv_num(p.max),
                csv_num(p.min),
                csv_num(p.max_abs),
                csv_num(p.l2),
                csv_num(p.mean_abs),
                csv_num(p.std),
                csv_num(p.zero_fraction),
                p.nan,
                p.pos_inf,
                p.neg_inf
            );
        }
    }
    s
}

/// One CSV row per case × layer (no header).
pub fn csv_layers(r: &ExperimentReport) -> String {
    let mut s = String::new();
    for c in &r.cases {
        for l in &c.layers {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.experiment,
                r.backend,
                r.seed,
                c.input.name,
                l.layer,
                l.width,
                csv_num(l.delta_l2),
                csv_num(l.delta_max_abs),
                l.delta_nonfinite,
                csv_num(l.dead_fraction),
                csv_num(l.activation_mean),
                csv_num(l.activation_std),
                csv_num(c.delta_ratio),
                c.flow.name()
            );
        }
    }
    s
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
