//! Backend comparison: one experiment run on several backends from the same host-drawn weights
//! and inputs, and, per tensor (loss, output, every parameter gradient, every δ_l), how far each
//! backend lies from the first, and every place where one is finite and the other is not.
//!
//! The measure of difference is the one the backend and oracle tests use (issue 3's tolerance):
//! at an element whose reference value is at least 1 % of the tensor's largest finite magnitude
//! (its scale), |other − reference| / |reference|; at smaller elements |other − reference| /
//! scale. An f32 entry far below its tensor's scale is a sum of terms of about that scale and
//! carries their rounding error, so a plain relative error there would flag cancellation, not
//! disagreement.

use serde::Serialize;

use crate::floats::{float, fmt_sci};
use crate::run::Outcome;

/// Where a non-finite class mismatch was, at most this many per tensor are listed (all are
/// counted).
pub const PLACES_LISTED: usize = 20;

/// The class of a value: finite, NaN, +inf or −inf.
fn class(v: f32) -> u8 {
    if v.is_nan() {
        1
    } else if v == f32::INFINITY {
        2
    } else if v == f32::NEG_INFINITY {
        3
    } else {
        0
    }
}

/// One place where the reference and the other backend differ in finiteness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    /// The element's index, one per dimension.
    pub index: Vec<usize>,
    /// The reference backend's value.
    #[serde(serialize_with = "float")]
    pub reference: f32,
    /// The other backend's value.
    #[serde(serialize_with = "float")]
    pub value: f32,
}

/// How one backend's tensor differs from the reference backend's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorDiff {
    /// Input case.
    pub case: String,
    /// `loss`, `output`, a parameter's gradient (`layers.0.weight`) or `delta.layers.0`.
    pub tensor: String,
    /// The backend compared with the reference.
    pub backend: String,
    /// Largest relative difference over the elements finite on both (0 when there is none).
    #[serde(serialize_with = "float")]
    pub max_rel_diff: f32,
    /// Where that largest difference is (`null` when every element agrees exactly).
    pub at: Option<Vec<usize>>,
    /// The reference value there.
    #[serde(serialize_with = "float")]
    pub reference: f32,
    /// The other backend's value there.
    #[serde(serialize_with = "float")]
    pub value: f32,
    /// Elements finite on one backend and not on the other (or NaN on one, ±inf on the other).
    pub nonfinite_mismatches: usize,
    /// The first [`PLACES_LISTED`] of those, in index order.
    pub places: Vec<Place>,
    /// Elements non-finite on both backends alike (the same NaN or the same ±inf): agreement,
    /// but not a number either.
    pub nonfinite_both: usize,
    /// Within the tolerance and no non-finite mismatch.
    pub agree: bool,
}

/// The element index of flat position `flat` in a tensor of `shape` (row-major).
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[i] = flat % d;
            flat /= d;
        }
    }
    index
}

/// What one pass over a tensor pair finds.
struct Scan {
    /// The largest relative difference between finite pairs, and where.
    worst: Option<(f64, usize)>,
    /// Elements finite in one and not the other (or non-finite differently).
    mismatches: usize,
    /// Elements non-finite alike in both.
    both: usize,
    /// The first mismatches' places.
    places: Vec<Place>,
}

/// Compare `other` with `reference` element by element; differences are relative to the
/// element, or to `scale` where the element is under 1 % of it.
fn scan(shape: &[usize], reference: &[f32], other: &[f32], scale: f64) -> Scan {
    let mut worst: Option<(f64, usize)> = None;
    let mut mismatches = 0;
    let mut both = 0;
    let mut places = Vec::new();
    for (i, (&r, &o)) in reference.iter().zip(other).enumerate() {
        let (cr, co) = (class(r), class(o));
        if cr != co {
            mismatches += 1;
            if places.len() < PLACES_LISTED {
                places.push(Place {
                    index: unravel(i, shape),
                    reference: r,
                    value: o,
                });
            }
            continue;
        }
        if cr != 0 {
            both += 1;
            continue;
        }
        if r == o {
            continue;
        }
        let r_abs = f64::from(r).abs();
        let base = if r_abs >= 1e-2 * scale { r_abs } else { scale };
        let d = (f64::from(o) - f64::from(r)).abs() / base;
        if worst.is_none_or(|(w, _)| d > w) {
            worst = Some((d, i));
        }
    }
    Scan {
        worst,
        mismatches,
        both,
        places,
    }
}

/// Compare `other` with `reference` (same shape) in the measure of the module docs.
pub fn diff(
    case: &str,
    tensor: &str,
    backend: &str,
    shape: &[usize],
    reference: &[f32],
    other: &[f32],
    tolerance: f64,
) -> TensorDiff {
    let scale = reference
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    // Where the whole reference is zero, any other value is a difference: measure it against
    // the smallest normal f32.
    let scale = scale.max(f64::from(f32::MIN_POSITIVE));
    let Scan {
        worst,
        mismatches,
        both,
        places,
    } = scan(shape, reference, other, scale);
    // As reported (f32), and as judged: the verdict counts what the report shows.
    let max_rel_diff = worst.map_or(0.0, |(d, _)| d) as f32;
    let (at, r, o) = match worst {
        Some((_, i)) => (Some(unravel(i, shape)), reference[i], other[i]),
        None => (None, 0.0, 0.0),
    };
    TensorDiff {
        case: case.to_string(),
        tensor: tensor.to_string(),
        backend: backend.to_string(),
        max_rel_diff,
        at,
        reference: r,
        value: o,
        nonfinite_mismatches: mismatches,
        places,
        nonfinite_both: both,
        agree: !over_tolerance(max_rel_diff, tolerance) && mismatches == 0,
    }
}

/// Whether a reported largest difference is past the tolerance.
fn over_tolerance(max_rel_diff: f32, tolerance: f64) -> bool {
    f64::from(max_rel_diff) > tolerance
}

/// A backend taking part, with the wgpu adapter it ran on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    /// `ndarray`, `flex` or `wgpu`.
    pub name: String,
    /// The wgpu adapter (`null` on CPU backends).
    pub adapter: Option<String>,
}

/// The comparison of one experiment across backends. JSON: `"kind": "compare"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename = "compare")]
pub struct CompareReport {
    /// Experiment name.
    pub experiment: String,
    /// Its seed.
    pub seed: u64,
    /// The backends, the reference first.
    pub backends: Vec<BackendInfo>,
    /// The largest relative difference allowed.
    pub tolerance: f64,
    /// Per case, tensor and non-reference backend.
    pub tensors: Vec<TensorDiff>,
    /// The largest relative difference of all.
    #[serde(serialize_with = "float")]
    pub max_rel_diff: f32,
    /// Non-finite mismatches in all.
    pub nonfinite_mismatches: usize,
    /// Values non-finite on every backend alike, in all.
    pub nonfinite_both: usize,
    /// Every tensor agrees.
    pub agree: bool,
}

/// Every compared tensor of one case of `outcome`: (name, shape, values).
fn tensors_of(outcome: &Outcome, case: usize) -> Vec<(String, Vec<usize>, &[f32])> {
    let c = &outcome.cases[case];
    let mut v: Vec<(String, Vec<usize>, &[f32])> = vec![
        ("loss".into(), vec![1], std::slice::from_ref(&c.loss)),
        ("output".into(), c.output.shape.clone(), &c.output.data),
    ];
    for g in &c.grads {
        v.push((g.name.clone(), g.tensor.shape.clone(), &g.tensor.data));
    }
    for (l, d) in c.deltas.iter().enumerate() {
        v.push((format!("delta.layers.{l}"), d.shape.clone(), &d.data));
    }
    v
}

/// Compare `runs` (the reference first) of experiment `name` with seed `seed`.
pub fn compare(
    name: &str,
    seed: u64,
    runs: &[(BackendInfo, Outcome)],
    tolerance: f64,
) -> CompareReport {
    let mut tensors = Vec::new();
    if let Some(((_, reference), others)) = runs.split_first() {
        // Ordered case, tensor, backend: the rows of the people's table are runs of
        // `others.len()` entries.
        for (case, c) in reference.cases.iter().enumerate() {
            let want = tensors_of(reference, case);
            let got: Vec<_> = others.iter().map(|(_, o)| tensors_of(o, case)).collect();
            for (k, (tensor, shape, r)) in want.iter().enumerate() {
                for ((info, _), g) in others.iter().zip(&got) {
                    let o = g.get(k).map_or(&[][..], |t| t.2);
                    tensors.push(diff(&c.name, tensor, &info.name, shape, r, o, tolerance));
                }
            }
        }
    }
    let max_rel_diff = tensors.iter().fold(0.0f32, |m, t| m.max(t.max_rel_diff));
    let nonfinite_mismatches = tensors.iter().map(|t| t.nonfinite_mismatches).sum();
    let nonfinite_both = tensors.iter().map(|t| t.nonfinite_both).sum();
    CompareReport {
        experiment: name.to_string(),
        seed,
        backends: runs.iter().map(|(b, _)| b.clone()).collect(),
        tolerance,
        agree: tensors.iter().all(|t| t.agree),
        tensors,
        max_rel_diff,
        nonfinite_mismatches,
        nonfinite_both,
    }
}

impl CompareReport {
    fn backend_label(b: &BackendInfo) -> String {
        match &b.adapter {
            Some(a) => format!("{} ({a})", b.name),
            None => b.name.clone(),
        }
    }

    fn others(&self) -> &[BackendInfo] {
        self.backends.get(1..).unwrap_or_default()
    }

    /// The worst tensor of all: the largest difference, ties to the first.
    fn worst(&self) -> Option<&TensorDiff> {
        self.tensors
            .iter()
            .fold(None, |w: Option<&TensorDiff>, t| match w {
                Some(w) if w.max_rel_diff >= t.max_rel_diff => Some(w),
                _ => Some(t),
            })
    }

    /// One line saying whether the backends agree, and where they differ most.
    pub fn verdict(&self) -> String {
        let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        let reference = names.first().copied().unwrap_or("");
        let worst = self
            .worst()
            .filter(|w| w.max_rel_diff > 0.0)
            .map(|w| format!("{} vs {reference} in {}/{}", w.backend, w.case, w.tensor))
            .unwrap_or_else(|| "every compared value identical".into());
        let shared = if self.nonfinite_both > 0 {
            format!(
                "; {} values are NaN or inf on every backend alike",
                self.nonfinite_both
            )
        } else {
            String::new()
        };
        if self.agree {
            format!(
                "verdict: {} agree within {:e} (largest relative difference {}: {worst}){shared}",
                names.join(", "),
                self.tolerance,
                fmt_sci(self.max_rel_diff, 2)
            )
        } else {
            let over = self
                .tensors
                .iter()
                .filter(|t| over_tolerance(t.max_rel_diff, self.tolerance))
                .count();
            format!(
                "verdict: BACKENDS DISAGREE: {over} tensors differ by more than {:e} (largest {}: {worst}); {} values finite on one backend and not on the other{shared}",
                self.tolerance,
                fmt_sci(self.max_rel_diff, 2),
                self.nonfinite_mismatches
            )
        }
    }

    /// Rows of the people's table: per case × tensor, each other backend's difference.
    fn rows(&self) -> Vec<(String, String, Vec<&TensorDiff>)> {
        let n = self.others().len().max(1);
        self.tensors
            .chunks(n)
            .map(|c| (c[0].case.clone(), c[0].tensor.clone(), c.iter().collect()))
            .collect()
    }

    /// The mismatch places, one line each.
    fn place_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for t in self.tensors.iter().filter(|t| t.nonfinite_mismatches > 0) {
            let listed: Vec<String> = t
                .places
                .iter()
                .map(|p| {
                    format!(
                        "{:?}: {} {}, {} {}",
                        p.index,
                        self.backends[0].name,
                        fmt_sci(p.reference, 4),
                        t.backend,
                        fmt_sci(p.value, 4)
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

    fn cell(&self, t: &TensorDiff) -> String {
        let mut c = fmt_sci(t.max_rel_diff, 2);
        if t.nonfinite_both > 0 {
            c.push('*');
        }
        if t.nonfinite_mismatches > 0 {
            c.push_str(&format!(" !{}", t.nonfinite_mismatches));
        }
        if !t.agree {
            c.push_str(" <-");
        }
        c
    }

    /// The comparison as a table for a terminal.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "experiment  {}", self.experiment);
        let _ = writeln!(s, "seed        {}", self.seed);
        if let Some(r) = self.backends.first() {
            let _ = writeln!(s, "reference   {}", Self::backend_label(r));
        }
        for b in self.others() {
            let _ = writeln!(s, "compared    {}", Self::backend_label(b));
        }
        let _ = writeln!(
            s,
            "\nlargest relative difference from {} per tensor (<- over {:e}; !N: N values finite on one\nside only; *: some values NaN or inf on both sides, not compared)",
            self.backends.first().map_or("", |b| b.name.as_str()),
            self.tolerance
        );
        let rows = self.rows();
        let w0 = rows.iter().map(|r| r.0.len()).chain([4]).max().unwrap_or(4);
        let w1 = rows.iter().map(|r| r.1.len()).chain([6]).max().unwrap_or(6);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.2.iter().map(|t| self.cell(t)).collect())
            .collect();
        let widths: Vec<usize> = self
            .others()
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
        for (b, w) in self.others().iter().zip(&widths) {
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
        let places = self.place_lines();
        if !places.is_empty() {
            let _ = writeln!(s);
            for p in places {
                let _ = writeln!(s, "{p}");
            }
        }
        let _ = writeln!(s, "\n{}", self.verdict());
        s
    }

    /// The comparison as markdown.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "## {}: backends compared\n", self.experiment);
        let labels: Vec<String> = self.backends.iter().map(Self::backend_label).collect();
        let _ = writeln!(
            s,
            "- seed: {}\n- reference: {}\n- compared: {}\n- tolerance: {:e} (largest relative difference)\n\
             - `!N`: N values finite on one backend only; `*`: some values NaN or inf on both, not compared\n",
            self.seed,
            labels.first().cloned().unwrap_or_default(),
            labels.get(1..).unwrap_or_default().join(", "),
            self.tolerance
        );
        let mut head = "| case | tensor |".to_string();
        let mut rule = "|---|---|".to_string();
        for b in self.others() {
            head.push_str(&format!(" {} |", b.name));
            rule.push_str("---:|");
        }
        let _ = writeln!(s, "{head}\n{rule}");
        for (case, tensor, ts) in self.rows() {
            let cells: Vec<String> = ts
                .iter()
                .map(|t| self.cell(t).replace("<-", "**over**"))
                .collect();
            let _ = writeln!(s, "| {case} | `{tensor}` | {} |", cells.join(" | "));
        }
        let places = self.place_lines();
        if !places.is_empty() {
            let _ = writeln!(s);
            for p in places {
                let _ = writeln!(s, "- {p}");
            }
        }
        let _ = writeln!(s, "\n**{}**", self.verdict());
        s
    }

    /// One CSV row per case × tensor × compared backend, headed by the column names when
    /// `header`.
    pub fn csv(&self, header: bool) -> Result<String, csv::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            experiment: &'a str,
            seed: u64,
            case: &'a str,
            tensor: &'a str,
            reference_backend: &'a str,
            backend: &'a str,
            #[serde(serialize_with = "crate::floats::csv_float")]
            max_rel_diff: f32,
            at: String,
            #[serde(serialize_with = "crate::floats::csv_float")]
            reference: f32,
            #[serde(serialize_with = "crate::floats::csv_float")]
            value: f32,
            nonfinite_mismatches: usize,
            nonfinite_both: usize,
            agree: bool,
        }
        let reference = self.backends.first().map_or("", |b| b.name.as_str());
        let rows = self.tensors.iter().map(|t| Row {
            experiment: &self.experiment,
            seed: self.seed,
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
        crate::render::csv_rows(rows, header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_difference_is_taken_against_the_scale_near_zero() {
        // Scale 10: 1 % of it is 0.1. Element 0: |10.001 − 10| / 10 = 1e-4. Element 1:
        // reference 1e-3 is below 0.1, so |0.021 − 1e-3| / 10 = 2e-3.
        let d = diff("x", "t", "b", &[2], &[10.0, 1e-3], &[10.001, 0.021], 1e-3);
        assert!((d.max_rel_diff - 2e-3).abs() < 1e-7, "{}", d.max_rel_diff);
        assert_eq!(d.at, Some(vec![1]));
        assert!(!d.agree);
        // Element 1 at 0.5 (above 1 % of the scale) is measured against itself: 2e-3 / 0.5.
        let d = diff("x", "t", "b", &[2], &[10.0, 0.5], &[10.0, 0.501], 1e-3);
        assert!((d.max_rel_diff - 2e-3).abs() < 1e-6, "{}", d.max_rel_diff);
        let d = diff("x", "t", "b", &[1], &[10.0], &[10.001], 1e-3);
        assert!((d.max_rel_diff - 1e-4).abs() < 1e-7, "{}", d.max_rel_diff);
        assert!(d.agree);
    }

    #[test]
    fn every_finite_non_finite_mismatch_is_counted_and_located() {
        // relu(NaN): 0 on one backend, NaN on another; NaN against inf is a mismatch too; the
        // same non-finite value on both is agreement.
        let r = [0.0, f32::NAN, 1.0, f32::INFINITY, f32::NAN, 2.0];
        let o = [f32::NAN, f32::INFINITY, 1.0, f32::INFINITY, f32::NAN, 2.0];
        let d = diff("x", "t", "b", &[2, 3], &r, &o, 1e-4);
        assert_eq!(d.nonfinite_mismatches, 2);
        assert_eq!(
            d.nonfinite_both, 2,
            "the inf and the NaN at indices 3 and 4"
        );
        assert_eq!(
            d.places.iter().map(|p| p.index.clone()).collect::<Vec<_>>(),
            vec![vec![0, 0], vec![0, 1]]
        );
        assert_eq!(d.max_rel_diff, 0.0);
        assert_eq!(d.at, None);
        assert!(!d.agree);
    }

    #[test]
    fn places_are_capped_but_all_counted() {
        let r = vec![f32::NAN; 50];
        let o = vec![0.0; 50];
        let d = diff("x", "t", "b", &[50], &r, &o, 1e-4);
        assert_eq!(d.nonfinite_mismatches, 50);
        assert_eq!(d.places.len(), PLACES_LISTED);
    }

    #[test]
    fn an_all_zero_reference_still_flags_a_difference() {
        let d = diff("x", "t", "b", &[2], &[0.0, 0.0], &[0.0, 1e-3], 1e-4);
        assert!(d.max_rel_diff > 1.0 && !d.agree);
    }

    #[test]
    fn unravel_is_row_major() {
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(0, &[1]), vec![0]);
    }
}
