//! How floats are spelled, in one place: for people (`1.500000e+00`), in JSON (numbers, with
//! `"NaN"`, `"inf"` and `"-inf"` as strings) and in CSV (shortest round-tripping form). Every
//! output that writes a float uses these, so a non-finite value reads the same everywhere.
//!
//! The policy, written once:
//! - a value measured from f32 tensors (a statistic, a loss, a ratio) is an `f32` and is
//!   written in its shortest round-tripping f32 form ([`float`], [`floats`]);
//! - a value gradscope computes in f64 on purpose (mean-field theory from the config, norms
//!   accumulated in f64 over a training step's tensors, a wall time) is an `f64` and is written
//!   in its shortest round-tripping f64 form ([`float64`], [`floats64`]), so no digit is made
//!   up and none is dropped;
//! - a non-finite value of either is the string `"NaN"`, `"inf"` or `"-inf"`, never `null`.
//!
//! Readers take either back; they also read `null` as NaN, which is how records of schema
//! version 1 (before this policy) wrote some non-finite f64 values.
//!
//! A value measured from a run's tensors (a statistic, a norm, a loss) is held as an `f64` and
//! written by [`measured`]: in its shortest f32 form where it is an f32 (every run below f64:
//! the same bytes as before f64 runs existed), in its shortest f64 form where it is not, and
//! always in its f64 form inside a record of an f64 run ([`wide_values`]). Reading it back
//! gives the f64 the JSON number parses to; a record whose precision is not f64 then rounds
//! each such value to f32 ([`narrow`]), which is the f32 it was written from.

use std::cell::Cell;

use serde::{Deserialize, Serializer};

thread_local! {
    /// Whether the record being written holds an f64 run's values ([`wide_values`]).
    static WIDE: Cell<bool> = const { Cell::new(false) };
}

/// While the guard lives, [`measured`] writes every value in its f64 form on this thread (an
/// f64 run's record: an f64 that happens to equal an f32 must not be spelled as that f32's
/// shorter form, which reads back as another f64). Records set it themselves when they are
/// written; nothing else needs to.
#[must_use]
pub struct WideValues {
    before: bool,
}

/// Write measured values in f64 form (`wide`) or by their value (not `wide`) until the guard
/// is dropped; guards nest.
pub fn wide_values(wide: bool) -> WideValues {
    WideValues {
        before: WIDE.with(|w| w.replace(wide)),
    }
}

impl Drop for WideValues {
    fn drop(&mut self) {
        WIDE.with(|w| w.set(self.before));
    }
}

/// `Serialize` and `Deserialize` for a record type derived with `#[serde(remote = "Self")]`
/// that has a `precision` field: in an f64 record its measured values are written in their f64
/// form ([`wide_values`]); in any other they are read back rounded to f32 by `$narrow`
/// (`fn(&mut Self)`, which applies [`narrow`] to each).
macro_rules! in_its_precision {
    ($t:ty, $narrow:expr) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let _wide = $crate::floats::wide_values(self.precision == $crate::Precision::F64);
                <$t>::serialize(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let mut r = <$t>::deserialize(d)?;
                if r.precision != $crate::Precision::F64 {
                    let narrow: fn(&mut $t) = $narrow;
                    narrow(&mut r);
                }
                Ok(r)
            }
        }
    };
}
pub(crate) use in_its_precision;

/// A measured value of a run below f64, as it was computed: `v` rounded to f32 (NaN and ±inf
/// stay themselves). Reading a record back applies it to every measured value.
pub fn narrow(v: f64) -> f64 {
    f64::from(v as f32)
}

/// A value computed in f64 as a record keeps it: itself in an f64 run (`wide`), else
/// [`narrow`]ed to the f32 type the run's values have.
pub fn kept(v: f64, wide: bool) -> f64 {
    if wide { v } else { narrow(v) }
}

/// [`narrow`] on an optional value.
pub fn narrow_opt(v: &mut Option<f64>) {
    if let Some(x) = v {
        *x = narrow(*x);
    }
}

/// [`narrow`] on each of `v`.
pub fn narrow_all(v: &mut [f64]) {
    for x in v {
        *x = narrow(*x);
    }
}

/// Serialise a measured value (see the module's policy): the string `"NaN"`, `"inf"` or
/// `"-inf"` where it is not finite; its shortest f32 form where it is an f32 and the record is
/// not an f64 run's; else its shortest f64 form.
pub fn measured<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && (WIDE.with(Cell::get) || f64::from(*v as f32) != *v) {
        float64(v, s)
    } else {
        float(&(*v as f32), s)
    }
}

/// Serialise measured values as [`measured`] does each.
pub fn measured_all<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct One(f64);
    impl serde::Serialize for One {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            measured(&self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        seq.serialize_element(&One(*x))?;
    }
    seq.end()
}

/// Serialise an optional measured value as [`measured`] does (`null` only for `None`).
pub fn opt_measured<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => measured(x, s),
        None => s.serialize_none(),
    }
}

/// Serialise a float as a JSON number when finite, else as the string `"NaN"`, `"inf"` or
/// `"-inf"` (JSON has no non-finite numbers; `null` would hide what happened).
pub fn float<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f32(*v)
    } else {
        s.serialize_str(&fmt_float(*v))
    }
}

/// A float for people: 7 significant digits in scientific notation, `NaN`, `inf`, `-inf`.
pub fn fmt_float(v: f32) -> String {
    fmt_sci(v, 6)
}

/// A float in scientific notation with `digits` after the point and a signed two-digit
/// exponent (`1.500000e+00`), or `NaN`, `inf`, `-inf`.
pub fn fmt_sci(v: f32, digits: usize) -> String {
    // An f32 widened to f64 is the same number, so its decimal expansion is the same.
    fmt_sci64(f64::from(v), digits)
}

/// [`fmt_sci`] of an f64: a value past f32's range stays the number it is (`3.5e+40`), not
/// `inf`.
pub fn fmt_sci64(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Rust writes `1.5e0`; people and numpy expect `1.500000e+00`.
        let s = format!("{v:.digits$e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

/// A measured value for CSV, as [`measured`] writes it in JSON: below f64 the f32's shortest
/// form, in f64 the f64's; NaN/inf spelled as in the JSON.
pub fn csv_measured(v: f64, precision: crate::Precision) -> String {
    if precision == crate::Precision::F64 {
        csv_num64(v)
    } else {
        csv_num(v as f32)
    }
}

/// A CSV cell of a measured value in its run's precision, spelled by [`csv_measured`].
#[derive(Debug, Clone, Copy)]
pub struct CsvMeasured(pub f64, pub crate::Precision);

impl serde::Serialize for CsvMeasured {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&csv_measured(self.0, self.1))
    }
}

/// A float for CSV: its shortest round-tripping form; NaN/inf spelled as in the JSON.
pub fn csv_num(v: f32) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        fmt_sci(v, 0)
    }
}

/// An f64 for CSV: its shortest round-tripping f64 form; NaN/inf spelled as in the JSON.
pub fn csv_num64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        nonfinite_name(v).into()
    }
}

/// Serialise a float field of a CSV row as [`csv_num`] spells it.
pub fn csv_float<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&csv_num(*v))
}

/// Serialise floats as [`float`] does each.
pub fn floats<S: serde::Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        if x.is_finite() {
            seq.serialize_element(x)?
        } else {
            seq.serialize_element(&fmt_sci(*x, 0))?
        }
    }
    seq.end()
}

/// The name JSON gives a non-finite value: `NaN`, `inf` or `-inf`.
fn nonfinite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// Serialise an f64 as a JSON number (its shortest round-tripping f64 form) when finite, else
/// as the string `"NaN"`, `"inf"` or `"-inf"`.
pub fn float64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_str(nonfinite_name(*v))
    }
}

/// Serialise f64s as [`float64`] does each.
pub fn floats64<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        if x.is_finite() {
            seq.serialize_element(x)?
        } else {
            seq.serialize_element(nonfinite_name(*x))?
        }
    }
    seq.end()
}

/// Serialise an optional f32 as [`float`] does (`null` only for `None`).
pub fn opt_float<S: Serializer>(v: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => float(x, s),
        None => s.serialize_none(),
    }
}

/// Serialise an optional f64 as [`float64`] does (`null` only for `None`).
pub fn opt_float64<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => float64(x, s),
        None => s.serialize_none(),
    }
}

/// Serialise an optional fixed-size array of f64 as [`floats64`] does (`null` for `None`).
pub fn opt_floats64<S: Serializer, const N: usize>(
    v: &Option<[f64; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => floats64(x, s),
        None => s.serialize_none(),
    }
}

/// Serialise an optional f32 array as [`floats`] does (`null` only for `None`).
pub fn opt_floats<S: Serializer, const N: usize>(
    v: &Option<[f32; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => floats(x, s),
        None => s.serialize_none(),
    }
}

/// NaN, the serde default of a measured value a version-1 record did not have.
pub fn nan64() -> f64 {
    f64::NAN
}

/// A float as JSON holds it: a number, `"NaN"`, `"inf"`, `"-inf"`, or (schema version 1's
/// spelling of a non-finite f64) `null`.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
    Null(()),
}

fn to_f64(v: NumOrText) -> f64 {
    match v {
        NumOrText::Num(x) => x,
        NumOrText::Text(t) => match t.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => f64::NAN,
        },
        NumOrText::Null(()) => f64::NAN,
    }
}

/// Read a float written by [`float`] back. (A JSON number written from an f32 is its shortest
/// form, which reads back as an f64 and rounds to the same f32.)
pub fn de_float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    NumOrText::deserialize(d).map(|v| to_f64(v) as f32)
}

/// Read floats written by [`floats`] back.
pub fn de_floats<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    Vec::<NumOrText>::deserialize(d).map(|v| v.into_iter().map(|x| to_f64(x) as f32).collect())
}

/// Read an f64 written by [`float64`] back.
pub fn de_float64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    NumOrText::deserialize(d).map(to_f64)
}

/// Read f64s written by [`floats64`] back.
pub fn de_floats64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Vec::<NumOrText>::deserialize(d).map(|v| v.into_iter().map(to_f64).collect())
}

/// Read an optional f32 written by [`opt_float`] back (`null` is `None`).
pub fn de_opt_float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    Option::<NumOrText>::deserialize(d).map(|v| v.map(|x| to_f64(x) as f32))
}

/// Read an optional array written by [`opt_floats`] back (`null` is `None`).
pub fn de_opt_floats<'de, D: serde::Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<Option<[f32; N]>, D::Error> {
    de_opt_floats64::<D, N>(d).map(|v| v.map(|a| a.map(|x| x as f32)))
}

/// Read an optional array written by [`opt_floats64`] back (`null` is `None`).
pub fn de_opt_floats64<'de, D: serde::Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<Option<[f64; N]>, D::Error> {
    let v = Option::<Vec<NumOrText>>::deserialize(d)?;
    v.map(|v| {
        let n = v.len();
        let arr: Vec<f64> = v.into_iter().map(to_f64).collect();
        arr.try_into()
            .map_err(|_| serde::de::Error::invalid_length(n, &"an array of quartiles"))
    })
    .transpose()
}

/// Read an optional f64 written by [`opt_float64`] back (`null` is `None`).
pub fn de_opt_float64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<NumOrText>::deserialize(d).map(|v| v.map(to_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_with_signed_two_digit_exponents_and_named_non_finites() {
        assert_eq!(fmt_float(3.1323318), "3.132332e+00");
        assert_eq!(fmt_float(-0.00012345), "-1.234500e-04");
        assert_eq!(fmt_float(1.5e20), "1.500000e+20");
        assert_eq!(fmt_float(0.0), "0.000000e+00");
        assert_eq!(fmt_sci(123.456, 3), "1.235e+02");
        assert_eq!(fmt_float(f32::NAN), "NaN");
        assert_eq!(fmt_float(f32::INFINITY), "inf");
        assert_eq!(fmt_float(f32::NEG_INFINITY), "-inf");
        // Past f32's largest finite value (3.4028235e38) an f64 stays finite.
        assert_eq!(fmt_sci64(3.5e40, 3), "3.500e+40");
        assert_eq!(fmt_sci64(1e-310, 1), "1.0e-310");
    }

    #[test]
    fn json_floats_round_trip_with_non_finite_values() {
        #[derive(serde::Serialize, Deserialize)]
        struct Row {
            #[serde(serialize_with = "floats", deserialize_with = "de_floats")]
            v: Vec<f32>,
            #[serde(serialize_with = "float", deserialize_with = "de_float")]
            x: f32,
        }
        let text = serde_json::to_string(&Row {
            v: vec![1.5, f32::NAN, f32::INFINITY],
            x: f32::NEG_INFINITY,
        })
        .unwrap_or_default();
        assert_eq!(text, r#"{"v":[1.5,"NaN","inf"],"x":"-inf"}"#);
        let back: Row = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.v[0] == 1.5 && back.v[1].is_nan() && back.v[2] == f32::INFINITY);
        assert_eq!(back.x, f32::NEG_INFINITY);
        assert_eq!(
            [1.5, 1e-7, f32::NAN, f32::NEG_INFINITY].map(csv_num),
            ["1.5", "1e-7", "NaN", "-inf"]
        );
    }

    #[test]
    fn f64_values_keep_every_digit_and_name_non_finites() {
        #[derive(serde::Serialize, Deserialize)]
        struct Row {
            #[serde(serialize_with = "floats64", deserialize_with = "de_floats64")]
            v: Vec<f64>,
            #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
            x: f64,
        }
        // 0.1 + 0.2 is 0.30000000000000004 in f64 (17 significant digits, its shortest form).
        let text = serde_json::to_string(&Row {
            v: vec![0.1 + 0.2, f64::INFINITY],
            x: f64::NAN,
        })
        .unwrap_or_default();
        assert_eq!(text, r#"{"v":[0.30000000000000004,"inf"],"x":"NaN"}"#);
        let back: Row = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.v[0], 0.1 + 0.2);
        assert!(back.v[1] == f64::INFINITY && back.x.is_nan());
    }

    #[test]
    fn schema_version_1_nulls_read_back_as_nan() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(deserialize_with = "de_float64")]
            x: f64,
            #[serde(deserialize_with = "de_float")]
            y: f32,
        }
        let back: Row =
            serde_json::from_str(r#"{"x":null,"y":null}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.x.is_nan() && back.y.is_nan());
    }

    #[test]
    fn f32_numbers_read_back_as_the_same_f32() {
        // The shortest form of an f32 parses to the nearest f64, which rounds back to that f32
        // (the shortest form is chosen so that it does): every f32 of a spread of magnitudes.
        for bits in (0..u32::MAX).step_by(9_999_991) {
            let v = f32::from_bits(bits);
            if !v.is_finite() {
                continue;
            }
            #[derive(serde::Serialize, Deserialize)]
            struct Row {
                #[serde(serialize_with = "float", deserialize_with = "de_float")]
                x: f32,
            }
            let text = serde_json::to_string(&Row { x: v }).unwrap_or_default();
            let back: Row = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.x.to_bits(), v.to_bits(), "{text}");
        }
    }
}
