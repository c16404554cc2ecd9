//! A case's range table: per layer, how many bits of headroom z_l, a_l, δ_l and ∂L/∂W_l keep
//! below the precision's largest finite value, the lowest floor (bits above the smallest
//! normal) among them, and the subnormals and overflows counted in them.

use gradscope_report::floats::fmt_sci64;
use gradscope_report::{CaseReport, Precision, Range};

use crate::text::FINITE_ONLY;

/// The precision with its limits: `f16 (max finite 6.5504e+04, smallest normal 6.1035e-05)`.
pub fn precision_label(p: Precision) -> String {
    format!(
        "{p} (max finite {}, smallest normal {})",
        fmt_sci64(p.max_finite(), 4),
        fmt_sci64(p.min_normal(), 4)
    )
}

/// Bits for people: one decimal, `inf` (no magnitude: zeros only), `-inf` (a value is ±inf),
/// `-` (not recorded).
fn bits(v: Option<f32>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v == f32::INFINITY => "inf".into(),
        Some(v) if v == f32::NEG_INFINITY => "-inf".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) => format!("{v:.1}"),
    }
}

/// The table's column names.
pub const HEADER: [&str; 10] = [
    "layer",
    "z room",
    "theory",
    "a room",
    "delta room",
    "theory",
    "grad W room",
    "floor",
    "subnormal",
    "overflow",
];

/// The column of [`HEADER`] that counts overflows (an inf from finite operands): a row with
/// any is marked in the HTML table.
pub const OVERFLOW_COLUMN: usize = 9;

/// Whether a row of [`rows`] counts an overflow.
pub fn overflows(row: &[String; 10]) -> bool {
    row[OVERFLOW_COLUMN] != "0"
}

/// The explanation under the table.
pub const NOTE: &str = "room: bits of headroom, log2(max finite / max |x|) (-inf: holds inf; NaN: holds NaN), theory's from its predicted largest entry (README, Precision); floor: the lowest log2(min |x| > 0 / smallest normal) of the layer's tensors (below 0: subnormal; † over the finite values only); subnormal, overflow (an inf from finite operands): counts over them";

/// One row per layer, `None` where the case recorded no ranges (a sweep's trials, older
/// records).
pub fn rows(case: &CaseReport, precision: Precision) -> Option<Vec<[String; 10]>> {
    // Theory's headroom: log2(max finite / predicted largest entry).
    let predicted = |l: usize, pick: fn(&gradscope_report::LayerRangePrediction) -> f64| {
        let r = case.theory.as_ref()?.range.get(l)?;
        Some(gradscope_report::precision::log2_ratio(precision.max_finite(), pick(r)) as f32)
    };
    let grad = |l: usize, which: gradscope_report::names::Param| {
        let name = gradscope_report::names::param(l, which);
        case.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.range)
    };
    let grad_w = |l: usize| grad(l, gradscope_report::names::Param::Weight);
    let grad_b = |l: usize| grad(l, gradscope_report::names::Param::Bias);
    case.layers
        .iter()
        .map(|l| {
            let z = l.z_range?;
            let d = l.delta_range?;
            let tensors: Vec<Range> = [
                Some(z),
                l.a_range,
                Some(d),
                grad_w(l.layer),
                grad_b(l.layer),
            ]
            .into_iter()
            .flatten()
            .collect();
            let floor = tensors
                .iter()
                .filter_map(|r| r.floor_bits)
                .min_by(f32::total_cmp);
            // Over the finite values only where a tensor holds others.
            let partial = tensors
                .iter()
                .any(|r| r.headroom_bits.is_nan() || r.headroom_bits == f32::NEG_INFINITY);
            let floor = match bits(floor) {
                f if partial && f != "-" => format!("{f}{FINITE_ONLY}"),
                f => f,
            };
            Some([
                l.layer.to_string(),
                bits(Some(z.headroom_bits)),
                bits(predicted(l.layer, |r| r.z_max)),
                bits(l.a_range.map(|a| a.headroom_bits)),
                bits(Some(d.headroom_bits)),
                bits(predicted(l.layer, |r| r.delta_max)),
                bits(grad_w(l.layer).map(|g| g.headroom_bits)),
                floor,
                tensors
                    .iter()
                    .map(|r| r.subnormal)
                    .sum::<usize>()
                    .to_string(),
                tensors
                    .iter()
                    .map(|r| r.overflow)
                    .sum::<usize>()
                    .to_string(),
            ])
        })
        .collect()
}

/// What was measured of the range, in one line, where a tensor left it: the first, by
/// theory's criteria and in its order (`None` where every z_l and δ_l stayed within it: the
/// headroom columns say so).
pub fn measured_line(case: &CaseReport, precision: Precision) -> Option<String> {
    let l = case.leaves_range.as_ref()?;
    let how = match l.direction.as_str() {
        "above" => "it holds a value past the largest finite one",
        _ => "its root mean square is below the smallest normal",
    };
    Some(format!(
        "measured: {} is the first to leave {precision} {} ({how})",
        l.tensor, l.direction
    ))
}

/// What theory predicts of the range, in one line: the first tensor to leave the precision,
/// or that none does; said in parentheses with "where theory applies" when it does not.
pub fn theory_line(case: &CaseReport, precision: Precision) -> Option<String> {
    let t = case.theory.as_ref().filter(|t| !t.range.is_empty())?;
    let said = match &t.leaves_range {
        Some(l) => {
            let how = match l.direction.as_str() {
                "above" => "its largest entry past the largest finite value",
                _ => "its typical entry below the smallest normal",
            };
            format!(
                "mean-field theory predicts {} leaves {precision} {} ({how})",
                l.tensor, l.direction
            )
        }
        None => match &t.range_unknown_from {
            Some(u) => format!(
                "mean-field theory cannot follow the pass from {} on: its predicted second moment is {} f64's own range there (it predicts nothing of where {precision} is left)",
                u.tensor,
                if u.direction == "above" {
                    "past"
                } else {
                    "below"
                }
            ),
            None => {
                format!("mean-field theory predicts every z_l and δ_l stays within {precision}")
            }
        },
    };
    Some(if t.applies {
        said
    } else {
        format!("({said}; theory does not apply to this run)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overflow_column_is_the_one_headed_so() {
        assert_eq!(HEADER[OVERFLOW_COLUMN], "overflow");
        let mut row: [String; 10] = Default::default();
        row[OVERFLOW_COLUMN] = "0".into();
        assert!(!overflows(&row));
        row[OVERFLOW_COLUMN] = "3".into();
        assert!(overflows(&row));
    }

    #[test]
    fn bits_read_as_numbers_or_what_they_mean() {
        assert_eq!(bits(Some(12.34)), "12.3");
        assert_eq!(bits(Some(-0.04)), "-0.0");
        assert_eq!(bits(Some(f32::INFINITY)), "inf");
        assert_eq!(bits(Some(f32::NEG_INFINITY)), "-inf");
        assert_eq!(bits(None), "-");
        assert_eq!(bits(Some(f32::NAN)), "NaN");
        assert_eq!(
            precision_label(Precision::F16),
            "f16 (max finite 6.5504e+04, smallest normal 6.1035e-05)"
        );
    }
}
