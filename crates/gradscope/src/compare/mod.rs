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

use gradscope_report::compare::{over_tolerance, wide};
use gradscope_report::names;
pub use gradscope_report::{BackendInfo, CompareReport, PLACES_LISTED, Place, TensorDiff};

use std::borrow::Cow;

use crate::config::{Loss, Precision};
use crate::run::Outcome;

pub mod bound;

/// The class of a value: finite, NaN, +inf or −inf.
fn class(v: f64) -> u8 {
    if v.is_nan() {
        1
    } else if v == f64::INFINITY {
        2
    } else if v == f64::NEG_INFINITY {
        3
    } else {
        0
    }
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
fn scan(shape: &[usize], reference: &[f64], other: &[f64], scale: f64) -> Scan {
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
                    reference: r as f32,
                    value: o as f32,
                    reference_f64: wide(r),
                    value_f64: wide(o),
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
        let r_abs = r.abs();
        let base = if r_abs >= 1e-2 * scale { r_abs } else { scale };
        let d = (o - r).abs() / base;
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

/// Compare `other` with `reference` (same shape) in the measure of the module docs. The values
/// are f64: an f32 or 16-bit run's widened exactly, an f64 run's as it computed them (the
/// values the report shows at a place are rounded to f32).
pub fn diff(
    case: &str,
    tensor: &str,
    backend: &str,
    shape: &[usize],
    reference: &[f64],
    other: &[f64],
    tolerance: f64,
) -> TensorDiff {
    let scale = reference
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(v.abs()));
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
        reference: r as f32,
        value: o as f32,
        reference_f64: wide(r),
        value_f64: wide(o),
        nonfinite_mismatches: mismatches,
        places,
        nonfinite_both: both,
        agree: !over_tolerance(max_rel_diff, tolerance) && mismatches == 0,
        normwise: None,
        bound: None,
        underflow: None,
    }
}

/// Values of `other`, a run in precision `p`, that underflowed: zero or subnormal in `p` (and
/// finite) where `reference`, an f64 run of the same network, has a normal nonzero value.
pub fn underflows(reference: &[f64], other: &[f64], p: Precision) -> usize {
    let tiny = p.min_normal();
    reference
        .iter()
        .zip(other)
        .filter(|&(&r, &o)| r.abs() >= f64::MIN_POSITIVE && r.is_finite() && o.abs() < tiny)
        .count()
}

/// One compared tensor: name, shape and values in f64 (exact for every precision).
type Compared64<'a> = (String, Vec<usize>, Cow<'a, [f64]>);

/// Every compared tensor of one case of `outcome`.
fn tensors_of(outcome: &Outcome, case: usize) -> Vec<Compared64<'_>> {
    let c = &outcome.cases[case];
    let mut v: Vec<Compared64<'_>> = vec![
        ("loss".into(), vec![1], Cow::Owned(vec![c.loss_f64])),
        (
            "output".into(),
            c.output.shape.clone(),
            c.output.values_f64(),
        ),
    ];
    for g in &c.grads {
        v.push((
            g.name.clone(),
            g.tensor.shape.clone(),
            g.tensor.values_f64(),
        ));
    }
    for (l, d) in c.deltas.iter().enumerate() {
        v.push((names::delta(l), d.shape.clone(), d.values_f64()));
    }
    v
}

/// Compare `runs` (the reference first) of experiment `name` with seed `seed`.
pub fn compare(
    name: &str,
    seed: u64,
    runs: &[(BackendInfo, &Outcome)],
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
                    let o = g.get(k).map_or(&[][..], |t| &t.2[..]);
                    tensors.push(diff(&c.name, tensor, &info.name, shape, r, o, tolerance));
                }
            }
        }
    }
    let max_rel_diff = tensors.iter().fold(0.0f32, |m, t| m.max(t.max_rel_diff));
    let nonfinite_mismatches = tensors.iter().map(|t| t.nonfinite_mismatches).sum();
    let nonfinite_both = tensors.iter().map(|t| t.nonfinite_both).sum();
    CompareReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: name.to_string(),
        seed,
        backends: runs.iter().map(|(b, _)| b.clone()).collect(),
        tolerance,
        agree: tensors.iter().all(|t| t.agree),
        tensors,
        max_rel_diff,
        nonfinite_mismatches,
        nonfinite_both,
        compared: gradscope_report::compare::Compared::Backends,
    }
}

/// Compare `runs` (the reference first), each a backend in a precision, of experiment `name`
/// with loss `loss`: every tensor as [`compare`] does, plus its normwise error against the
/// reference over the values finite in both, held to the bound of the two precisions
/// ([`bound`]): a tensor agrees when it is within that bound and no value is finite in one
/// run only. `Err` names what cannot be bounded.
pub fn compare_precisions(
    name: &str,
    seed: u64,
    runs: &[(BackendInfo, Precision, Outcome)],
    loss: Loss,
) -> Result<CompareReport, String> {
    let plain: Vec<(BackendInfo, &Outcome)> = runs.iter().map(|(b, _, o)| (b.clone(), o)).collect();
    let mut report = compare(name, seed, &plain, 0.0);
    // No one tolerance applies: each tensor has its bound.
    report.tolerance = f64::NAN;
    let Some(((_, p0, reference), others)) = runs.split_first() else {
        return Ok(report);
    };
    let mut at = 0;
    for (case, c) in reference.cases.iter().enumerate() {
        let errors = |p: Precision| {
            bound::plain_errors(&reference.weights, &c.input, loss, p).ok_or_else(|| {
                format!(
                    "the loss `{}` has no plain evaluation to bound it",
                    loss.name()
                )
            })
        };
        let e0 = errors(*p0)?;
        let mine: Vec<Vec<(String, f64)>> = others
            .iter()
            .map(|(_, p, _)| errors(*p))
            .collect::<Result<_, _>>()?;
        let want = tensors_of(reference, case);
        let got: Vec<_> = others.iter().map(|(_, _, o)| tensors_of(o, case)).collect();
        for (k, (_, _, r)) in want.iter().enumerate() {
            for ((e, g), (_, p, _)) in mine.iter().zip(&got).zip(others) {
                let t = &mut report.tensors[at];
                at += 1;
                let o = g.get(k).map_or(&[][..], |t| &t.2[..]);
                let normwise = bound::normwise(o, r);
                let allowed = bound::FACTOR * (e0[k].1 + e[k].1);
                t.normwise = Some(normwise as f32);
                t.bound = Some(allowed as f32);
                // Underflow is measured against f64, the reference that has the values.
                if *p0 == Precision::F64 {
                    t.underflow = Some(underflows(r, o, *p));
                }
                // Nothing finite in both (every value non-finite alike, or mismatched): the
                // mismatch count decides. A NaN bound (the plain evaluation overflowed where
                // this run did not) holds nothing within it.
                let within = normwise.is_nan() || normwise as f32 <= allowed as f32;
                t.agree = within && t.nonfinite_mismatches == 0;
            }
        }
    }
    report.agree = report.tensors.iter().all(|t| t.agree);
    report.compared = gradscope_report::compare::Compared::Precisions;
    Ok(report)
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
        let r = [0.0, f64::NAN, 1.0, f64::INFINITY, f64::NAN, 2.0];
        let o = [f64::NAN, f64::INFINITY, 1.0, f64::INFINITY, f64::NAN, 2.0];
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
        let r = vec![f64::NAN; 50];
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
