//! A backend comparison for people: the verdict line, the terminal table, markdown and CSV.

use std::fmt::Write as _;

use gradscope_report::compare::Compared;
use gradscope_report::compare::over_tolerance;
use gradscope_report::floats::{fmt_sci, fmt_sci64};
use gradscope_report::{BackendInfo, CompareReport, TensorDiff};
use serde::Serialize;

fn backend_label(b: &BackendInfo) -> String {
    match &b.adapter {
        Some(a) => format!("{} ({a})", b.name),
        None => b.name.clone(),
    }
}

fn others(r: &CompareReport) -> &[BackendInfo] {
    r.backends.get(1..).unwrap_or_default()
}

/// The worst tensor of all: the largest difference, ties to the first.
fn worst(r: &CompareReport) -> Option<&TensorDiff> {
    r.tensors
        .iter()
        .fold(None, |w: Option<&TensorDiff>, t| match w {
            Some(w) if w.max_rel_diff >= t.max_rel_diff => Some(w),
            _ => Some(t),
        })
}

/// A tensor's normwise error over its bound (precisions compared; 0 otherwise).
fn over_bound(t: &TensorDiff) -> f64 {
    match (t.normwise, t.bound) {
        (Some(n), Some(b)) if b > 0.0 && (n / b).is_finite() => f64::from(n) / f64::from(b),
        _ => 0.0,
    }
}

/// Whether underflow was measured (precisions compared against an f64 reference).
fn measures_underflow(r: &CompareReport) -> bool {
    r.tensors.iter().any(|t| t.underflow.is_some())
}

/// The verdict's clause on underflow against f64: how many values, in how many tensors, the
/// first of them named; empty where none was measured.
fn underflow_clause(r: &CompareReport) -> String {
    if !measures_underflow(r) {
        return String::new();
    }
    let hit: Vec<&TensorDiff> = r
        .tensors
        .iter()
        .filter(|t| t.underflow.is_some_and(|u| u > 0))
        .collect();
    let total: usize = hit.iter().filter_map(|t| t.underflow).sum();
    match hit.first() {
        None => "; no value underflows where f64's is normal".into(),
        Some(t) => format!(
            "; {total} values underflow (zero or subnormal where f64's are normal) in {} tensors, first {} in {}/{}",
            hit.len(),
            t.backend,
            t.case,
            t.tensor
        ),
    }
}

/// With precisions compared: the verdict on each tensor's normwise error against its bound.
fn precision_verdict(r: &CompareReport) -> String {
    let names: Vec<&str> = r.backends.iter().map(|b| b.name.as_str()).collect();
    let reference = names.first().copied().unwrap_or("");
    // Among the tensors with a finite normwise error (the others' mismatches are counted apart).
    let worst = r
        .tensors
        .iter()
        .filter(|t| t.normwise.is_some_and(f32::is_finite))
        .fold(None, |w: Option<&TensorDiff>, t| match w {
            Some(w) if over_bound(w) >= over_bound(t) => Some(w),
            _ => Some(t),
        });
    let worst = worst
        .and_then(|w| Some((w, w.normwise?, w.bound?)))
        .map(|(w, n, b)| {
            format!(
                "normwise error {} against a bound of {}: {} vs {reference} in {}/{}",
                fmt_sci(n, 2),
                fmt_sci(b, 2),
                w.backend,
                w.case,
                w.tensor
            )
        })
        .unwrap_or_else(|| "no tensor has values finite in both runs".into());
    let mut shared = if r.nonfinite_both > 0 {
        format!(
            "; {} values are NaN or inf in every run alike",
            r.nonfinite_both
        )
    } else {
        String::new()
    };
    shared.push_str(&underflow_clause(r));
    if r.agree {
        format!(
            "verdict: {} agree within each precision's bound (closest to it: {worst}){shared}",
            names.join(", ")
        )
    } else {
        let over = r.tensors.iter().filter(|t| over_bound(t) > 1.0).count();
        format!(
            "verdict: PRECISIONS DISAGREE: {over} tensors past their bound (furthest: {worst}); {} values finite in one run and not the other{shared}",
            r.nonfinite_mismatches
        )
    }
}

/// One line saying whether the backends agree, and where they differ most.
pub fn verdict(r: &CompareReport) -> String {
    if r.compared == Compared::Precisions {
        return precision_verdict(r);
    }
    let names: Vec<&str> = r.backends.iter().map(|b| b.name.as_str()).collect();
    let reference = names.first().copied().unwrap_or("");
    let worst = worst(r)
        .filter(|w| w.max_rel_diff > 0.0)
        .map(|w| format!("{} vs {reference} in {}/{}", w.backend, w.case, w.tensor))
        .unwrap_or_else(|| "every compared value identical".into());
    // The words for what was compared: backends, or one backend's two backward passes.
    let (alike, who, where_one) = match r.compared {
        Compared::Backends => (
            "on every backend alike",
            "BACKENDS",
            "on one backend and not on the other",
        ),
        Compared::BackwardPasses | Compared::Precisions => (
            "in both backward passes alike",
            "BACKWARD PASSES",
            "in one backward pass and not the other",
        ),
    };
    let shared = if r.nonfinite_both > 0 {
        format!("; {} values are NaN or inf {alike}", r.nonfinite_both)
    } else {
        String::new()
    };
    if r.agree {
        format!(
            "verdict: {} agree within {:e} (largest relative difference {}: {worst}){shared}",
            names.join(", "),
            r.tolerance,
            fmt_sci(r.max_rel_diff, 2)
        )
    } else {
        let over = r
            .tensors
            .iter()
            .filter(|t| over_tolerance(t.max_rel_diff, r.tolerance))
            .count();
        format!(
            "verdict: {who} DISAGREE: {over} tensors differ by more than {:e} (largest {}: {worst}); {} values finite {where_one}{shared}",
            r.tolerance,
            fmt_sci(r.max_rel_diff, 2),
            r.nonfinite_mismatches
        )
    }
}

/// Rows of the people's table: per case × tensor, each other backend's difference.
fn rows(r: &CompareReport) -> Vec<(String, String, Vec<&TensorDiff>)> {
    let n = others(r).len().max(1);
    r.tensors
        .chunks(n)
        .map(|c| (c[0].case.clone(), c[0].tensor.clone(), c.iter().collect()))
        .collect()
}

/// The mismatch places, one line each.
fn place_lines(r: &CompareReport) -> Vec<String> {
    let mut lines = Vec::new();
    for t in r.tensors.iter().filter(|t| t.nonfinite_mismatches > 0) {
        let listed: Vec<String> = t
            .places
            .iter()
            .map(|p| {
                format!(
                    "{:?}: {} {}, {} {}",
                    p.index,
                    r.backends[0].name,
                    fmt_sci64(p.reference_exact(), 4),
                    t.backend,
                    fmt_sci64(p.value_exact(), 4)
                )
            })
            .collect();
        let more = t.nonfinite_mismatches - t.places.len();
        let more = if more > 0 {
            format!("; {more} more")
        } else {
            String::new()
        };
        lines.push(format!(
            "{}/{} on {}: {} not finite on one side: {}{more}",
            t.case,
            t.tensor,
            t.backend,
            t.nonfinite_mismatches,
            listed.join("; ")
        ));
    }
    lines
}

fn cell(t: &TensorDiff) -> String {
    let mut c = match (t.normwise, t.bound) {
        (Some(n), Some(b)) => format!("{} / {}", fmt_sci(n, 2), fmt_sci(b, 2)),
        _ => fmt_sci(t.max_rel_diff, 2),
    };
    if t.nonfinite_both > 0 {
        c.push('*');
    }
    if t.nonfinite_mismatches > 0 {
        c.push_str(&format!(" !{}", t.nonfinite_mismatches));
    }
    if let Some(u) = t.underflow.filter(|&u| u > 0) {
        c.push_str(&format!(" u{u}"));
    }
    if !t.agree {
        c.push_str(" <-");
    }
    c
}

/// The comparison as a table for a terminal.
pub fn table(r: &CompareReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "experiment  {}", r.experiment);
    let _ = writeln!(s, "seed        {}", r.seed);
    if let Some(r) = r.backends.first() {
        let _ = writeln!(s, "reference   {}", backend_label(r));
    }
    for b in others(r) {
        let _ = writeln!(s, "compared    {}", backend_label(b));
    }
    let reference = r.backends.first().map_or("", |b| b.name.as_str());
    if r.compared == Compared::Precisions {
        let _ = writeln!(
            s,
            "\nnormwise error from {reference} per tensor / the bound of the two precisions (<- past it;\n!N: N values finite on one side only; *: some values NaN or inf on both sides, not compared{})",
            if measures_underflow(r) {
                ";\nuN: N values zero or subnormal in that precision where f64's are normal"
            } else {
                ""
            }
        );
    } else {
        let _ = writeln!(
            s,
            "\nlargest relative difference from {reference} per tensor (<- over {:e}; !N: N values finite on one\nside only; *: some values NaN or inf on both sides, not compared)",
            r.tolerance
        );
    }
    let rows = rows(r);
    let w0 = rows.iter().map(|r| r.0.len()).chain([4]).max().unwrap_or(4);
    let w1 = rows.iter().map(|r| r.1.len()).chain([6]).max().unwrap_or(6);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.2.iter().map(|t| cell(t)).collect())
        .collect();
    let widths: Vec<usize> = others(r)
        .iter()
        .enumerate()
        .map(|(i, b)| {
            cells
                .iter()
                .filter_map(|c| c.get(i).map(String::len))
                .chain([b.name.len(), 9])
                .max()
                .unwrap_or(9)
        })
        .collect();
    let mut head = format!("  {:w0$}  {:w1$}", "case", "tensor");
    for (b, w) in others(r).iter().zip(&widths) {
        head.push_str(&format!("  {:<w$}", b.name));
    }
    let _ = writeln!(s, "{}", head.trim_end());
    for (r, c) in rows.iter().zip(&cells) {
        let mut line = format!("  {:w0$}  {:w1$}", r.0, r.1);
        for (cell, w) in c.iter().zip(&widths) {
            line.push_str(&format!("  {cell:<w$}"));
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
    let places = place_lines(r);
    if !places.is_empty() {
        let _ = writeln!(s);
        for p in places {
            let _ = writeln!(s, "{p}");
        }
    }
    let _ = writeln!(s, "\n{}", verdict(r));
    s
}

/// The comparison as markdown.
pub fn markdown(r: &CompareReport) -> String {
    let mut s = String::new();
    let labels: Vec<String> = r.backends.iter().map(backend_label).collect();
    let (what, measure) = match r.compared {
        Compared::Precisions => (
            "precisions",
            format!(
                "each cell: normwise error / the bound of the two precisions (plain evaluations rounded to each){}",
                if measures_underflow(r) {
                    "; `uN`: N values zero or subnormal in that precision where f64's are normal"
                } else {
                    ""
                }
            ),
        ),
        _ => (
            "backends",
            format!("tolerance: {:e} (largest relative difference)", r.tolerance),
        ),
    };
    let _ = writeln!(s, "## {}: {what} compared\n", r.experiment);
    let _ = writeln!(
        s,
        "- seed: {}\n- reference: {}\n- compared: {}\n- {measure}\n\
         - `!N`: N values finite on one backend only; `*`: some values NaN or inf on both, not compared\n",
        r.seed,
        labels.first().cloned().unwrap_or_default(),
        labels.get(1..).unwrap_or_default().join(", "),
    );
    let mut head = "| case | tensor |".to_string();
    let mut rule = "|---|---|".to_string();
    for b in others(r) {
        head.push_str(&format!(" {} |", b.name));
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (case, tensor, ts) in rows(r) {
        let cells: Vec<String> = ts
            .iter()
            .map(|t| cell(t).replace("<-", "**over**"))
            .collect();
        let _ = writeln!(s, "| {case} | `{tensor}` | {} |", cells.join(" | "));
    }
    let places = place_lines(r);
    if !places.is_empty() {
        let _ = writeln!(s);
        for p in places {
            let _ = writeln!(s, "- {p}");
        }
    }
    let _ = writeln!(s, "\n**{}**", verdict(r));
    s
}

/// One CSV row per case × tensor × compared backend, headed by the column names when
/// `header`.
pub fn csv(r: &CompareReport, header: bool) -> Result<String, csv::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        experiment: &'a str,
        seed: u64,
        case: &'a str,
        tensor: &'a str,
        reference_backend: &'a str,
        backend: &'a str,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        max_rel_diff: f32,
        at: String,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        reference: f32,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        value: f32,
        nonfinite_mismatches: usize,
        nonfinite_both: usize,
        agree: bool,
    }
    let reference = r.backends.first().map_or("", |b| b.name.as_str());
    if r.compared == Compared::Precisions {
        return precision_csv(r, header);
    }
    let rows = r.tensors.iter().map(|t| Row {
        experiment: &r.experiment,
        seed: r.seed,
        case: &t.case,
        tensor: &t.tensor,
        reference_backend: reference,
        backend: &t.backend,
        max_rel_diff: t.max_rel_diff,
        at: t
            .at
            .as_ref()
            .map(|i| {
                i.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            })
            .unwrap_or_default(),
        reference: t.reference,
        value: t.value,
        nonfinite_mismatches: t.nonfinite_mismatches,
        nonfinite_both: t.nonfinite_both,
        agree: t.agree,
    });
    crate::text::csv_rows(rows, header)
}

/// [`csv`] with precisions compared: a row per case × tensor × compared run, with its
/// normwise error and bound.
fn precision_csv(r: &CompareReport, header: bool) -> Result<String, csv::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        experiment: &'a str,
        seed: u64,
        case: &'a str,
        tensor: &'a str,
        reference_run: &'a str,
        run: &'a str,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        normwise: f32,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        bound: f32,
        #[serde(serialize_with = "gradscope_report::floats::csv_float")]
        max_rel_diff: f32,
        nonfinite_mismatches: usize,
        nonfinite_both: usize,
        /// Empty where not measured (the reference is not f64).
        underflow: Option<usize>,
        agree: bool,
    }
    let reference = r.backends.first().map_or("", |b| b.name.as_str());
    let rows = r.tensors.iter().map(|t| Row {
        experiment: &r.experiment,
        seed: r.seed,
        case: &t.case,
        tensor: &t.tensor,
        reference_run: reference,
        run: &t.backend,
        normwise: t.normwise.unwrap_or(f32::NAN),
        bound: t.bound.unwrap_or(f32::NAN),
        max_rel_diff: t.max_rel_diff,
        nonfinite_mismatches: t.nonfinite_mismatches,
        nonfinite_both: t.nonfinite_both,
        underflow: t.underflow,
        agree: t.agree,
    });
    crate::text::csv_rows(rows, header)
}
