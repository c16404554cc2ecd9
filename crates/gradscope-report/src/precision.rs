//! The floating-point type a run computes in ([`Precision`]), the range each type holds, and
//! where a tensor sits in it ([`Range`]: headroom above its largest value, room below its
//! smallest, and the counts that say it left the range).
//!
//! The limits are IEEE 754's (binary16, binary32, binary64) and bfloat16's (binary32's exponent
//! with 8 significand bits), written out as exact powers of two:
//!
//! | type | max finite | smallest normal | smallest subnormal |
//! |---|---|---|---|
//! | f16 | (2 − 2⁻¹⁰)·2¹⁵ = 65504 | 2⁻¹⁴ | 2⁻²⁴ |
//! | bf16 | (2 − 2⁻⁷)·2¹²⁷ ≈ 3.3895e38 | 2⁻¹²⁶ | 2⁻¹³³ |
//! | f32 | (2 − 2⁻²³)·2¹²⁷ ≈ 3.4028e38 | 2⁻¹²⁶ | 2⁻¹⁴⁹ |
//! | f64 | (2 − 2⁻⁵²)·2¹⁰²³ | 2⁻¹⁰²² | 2⁻¹⁰⁷⁴ |

use serde::{Deserialize, Serialize};

use crate::floats::{
    de_float, de_float64, de_opt_float, de_opt_float64, float, measured, opt_float, opt_measured,
};

/// The floating-point type of a run's tensors (weights, inputs, activations, gradients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE binary64.
    F64,
    /// IEEE binary32: the default, and every record written before the key existed.
    #[default]
    F32,
    /// bfloat16: binary32's exponent range, 8 significand bits.
    Bf16,
    /// IEEE binary16.
    F16,
}

impl Precision {
    /// Every precision, widest first (the order `compare --precision` lists them in).
    pub const ALL: [Self; 4] = [Self::F64, Self::F32, Self::Bf16, Self::F16];

    /// The name configs, flags and records use: `f64`, `f32`, `bf16`, `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// Whether this is f32, the default (a record's field is then left out).
    pub fn is_f32(&self) -> bool {
        *self == Self::F32
    }

    /// The precision called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Significand bits, the implicit one included (11 for f16, 8 for bf16, 24, 53).
    pub fn significand_bits(self) -> u32 {
        match self {
            Self::F64 => 53,
            Self::F32 => 24,
            Self::Bf16 => 8,
            Self::F16 => 11,
        }
    }

    /// The largest finite value: (2 − 2^(1−p))·2^emax.
    pub fn max_finite(self) -> f64 {
        let p = self.significand_bits() as i32;
        (2.0 - 2f64.powi(1 - p)) * 2f64.powi(self.max_exponent())
    }

    /// The smallest positive normal value, 2^emin.
    pub fn min_normal(self) -> f64 {
        2f64.powi(self.min_exponent())
    }

    /// The smallest positive subnormal value, 2^(emin − p + 1).
    pub fn min_subnormal(self) -> f64 {
        2f64.powi(self.min_exponent() - self.significand_bits() as i32 + 1)
    }

    /// The unit roundoff u = 2^−p: the largest relative error of rounding to nearest.
    pub fn unit_roundoff(self) -> f64 {
        2f64.powi(-(self.significand_bits() as i32))
    }

    fn max_exponent(self) -> i32 {
        match self {
            Self::F64 => 1023,
            Self::F32 | Self::Bf16 => 127,
            Self::F16 => 15,
        }
    }

    fn min_exponent(self) -> i32 {
        match self {
            Self::F64 => -1022,
            Self::F32 | Self::Bf16 => -126,
            Self::F16 => -14,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one tensor's values sit in its precision's range. Counted over every value; the
/// magnitudes over the non-NaN ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// The largest |x|: `inf` where any value is ±inf, else `NaN` where any value is NaN.
    #[serde(serialize_with = "measured", deserialize_with = "de_float64")]
    pub max_abs: f64,
    /// The smallest nonzero finite |x|; `null` where there is none.
    #[serde(serialize_with = "opt_measured", deserialize_with = "de_opt_float64")]
    pub min_abs: Option<f64>,
    /// log2(max finite / max |x|): how many doublings the largest value can take before it
    /// overflows. `inf` for a tensor of zeros, `-inf` where a value is already ±inf, `NaN`
    /// where a value is NaN and none is ±inf (the tensor has no largest value).
    #[serde(serialize_with = "float", deserialize_with = "de_float")]
    pub headroom_bits: f32,
    /// log2(min |x| / smallest normal): how many halvings the smallest nonzero value can take
    /// before it turns subnormal (negative: it already is). `null` with no nonzero finite
    /// value. Over the finite values only where the tensor holds others (`nan`, `overflow`
    /// or an inherited inf: `headroom_bits` is then not finite).
    #[serde(serialize_with = "opt_float", deserialize_with = "de_opt_float")]
    pub floor_bits: Option<f32>,
    /// Values exactly ±0.
    pub zeros: usize,
    /// Nonzero values below the smallest normal (they keep fewer significand bits).
    pub subnormal: usize,
    /// Values ±inf where the operands they were computed from are finite: born here.
    pub overflow: usize,
    /// NaN values.
    pub nan: usize,
}

impl Range {
    /// The headroom and floor of magnitudes `max_abs` and `min_abs` in `precision`
    /// (definitions at the fields).
    pub fn bits(precision: Precision, max_abs: f64, min_abs: Option<f64>) -> (f32, Option<f32>) {
        let headroom = if max_abs.is_nan() {
            f32::NAN
        } else if max_abs == 0.0 {
            f32::INFINITY
        } else {
            log2_ratio(precision.max_finite(), max_abs) as f32
        };
        let floor = min_abs.map(|m| log2_ratio(m, precision.min_normal()) as f32);
        (headroom, floor)
    }

    /// Round the magnitudes to f32, as a run below f64 measured them (reading a record back).
    pub(crate) fn narrow(&mut self) {
        self.max_abs = crate::floats::narrow(self.max_abs);
        crate::floats::narrow_opt(&mut self.min_abs);
    }
}

/// log2(a / b) of positive `a` and `b`, also where the quotient leaves f64 (an f64 tensor's
/// headroom: f64's largest over 1e-300 is past f64's range): the difference of the logs there,
/// the log of the quotient where it is a normal f64 (every precision below f64, as always).
pub fn log2_ratio(a: f64, b: f64) -> f64 {
    let q = a / b;
    if q.is_normal() {
        q.log2()
    } else {
        a.log2() - b.log2()
    }
}

/// What made the first non-finite value, in IEEE 754's words (its exceptions, 7.2–7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A computation on finite values gave ±inf: its exact result was past the largest finite
    /// value. (A NaN beside such an inf in the same tensor followed from it, ∞ − ∞ in a sum.)
    Overflow,
    /// A NaN from finite operands with no inf beside it: 0·∞, ∞ − ∞ or 0/0 inside the
    /// operation.
    Invalid,
    /// ±inf from an exact operation on a zero: log(0) or x/0.
    DivideByZero,
}

impl Cause {
    /// The cause's name, as JSON writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Overflow => "overflow",
            Self::Invalid => "invalid",
            Self::DivideByZero => "divide_by_zero",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_the_ieee_and_bfloat16_constants() {
        // IEEE 754-2019 table 3.5 (binary16/32/64); bfloat16 is binary32 with 8 significand
        // bits; f32's and f64's are Rust's own constants.
        assert_eq!(Precision::F16.max_finite(), 65504.0);
        assert_eq!(Precision::F16.min_normal(), 6.103515625e-05);
        assert_eq!(Precision::F16.min_subnormal(), 5.960464477539063e-08);
        assert_eq!(Precision::Bf16.max_finite(), 3.3895313892515355e38);
        assert_eq!(Precision::Bf16.min_subnormal(), 2f64.powi(-133));
        assert_eq!(Precision::F32.max_finite(), f64::from(f32::MAX));
        assert_eq!(Precision::F32.min_normal(), f64::from(f32::MIN_POSITIVE));
        assert_eq!(Precision::F32.min_subnormal(), f64::from(f32::from_bits(1)));
        assert_eq!(Precision::F64.max_finite(), f64::MAX);
        assert_eq!(Precision::F64.min_normal(), f64::MIN_POSITIVE);
        assert_eq!(Precision::F64.min_subnormal(), f64::from_bits(1));
    }

    #[test]
    fn names_round_trip_and_json_uses_them() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).expect("a unit variant serialises"),
                format!("\"{}\"", p.name())
            );
        }
        assert_eq!(Precision::parse("fp16"), None);
        assert_eq!(Precision::default(), Precision::F32);
    }

    #[test]
    fn headroom_and_floor_in_bits() {
        // 65504 / 2047 = 32 exactly: 5 bits of headroom; 2⁻¹⁰ / 2⁻¹⁴ = 2⁴.
        let (h, f) = Range::bits(Precision::F16, 2047.0, Some(2f64.powi(-10)));
        assert_eq!((h, f), (5.0, Some(4.0)));
        // A subnormal minimum is below the floor: 2⁻²⁴ / 2⁻¹⁴ = 2⁻¹⁰.
        assert_eq!(
            Range::bits(Precision::F16, 1.0, Some(2f64.powi(-24))).1,
            Some(-10.0)
        );
        // Zeros only: unbounded headroom, no floor. An inf: none left.
        assert_eq!(
            Range::bits(Precision::F16, 0.0, None),
            (f32::INFINITY, None)
        );
        assert_eq!(
            Range::bits(Precision::F16, f64::INFINITY, None).0,
            f32::NEG_INFINITY
        );
        assert!(Range::bits(Precision::F16, f64::NAN, None).0.is_nan());
        // In f64, max finite / 2⁻¹⁰⁰⁰ and 2¹⁰⁰⁰ / smallest normal overflow an f64 quotient:
        // log2((2 − 2⁻⁵²)·2¹⁰²³) + 1000 = 2024 − 3.2e-16, and 1000 + 1022 = 2022.
        let (h, f) = Range::bits(Precision::F64, 2f64.powi(-1000), Some(2f64.powi(1000)));
        assert_eq!((h, f), (2024.0, Some(2022.0)));
    }
}
