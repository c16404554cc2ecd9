//! How floats are spelled, in one place: for people (`1.500000e+00`), in JSON (numbers, with
//! `"NaN"`, `"inf"` and `"-inf"` as strings) and in CSV (shortest round-tripping form). Every
//! output that writes a float uses these, so a non-finite value reads the same everywhere.

use serde::{Deserialize, Serializer};

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

/// A float for CSV: its shortest round-tripping form; NaN/inf spelled as in the JSON.
pub fn csv_num(v: f32) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        fmt_sci(v, 0)
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

/// [`float`] for an f64, keeping its digits (theory's values are computed in f64).
pub fn float_f64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_str(&fmt_sci(*v as f32, 0))
    }
}

/// [`float_f64`] for each of `v`.
pub fn floats_f64<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        seq.serialize_element(&F64(*x))?
    }
    seq.end()
}

/// [`float_f64`], or `null` for `None`.
pub fn opt_float_f64<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => float_f64(x, s),
        None => s.serialize_none(),
    }
}

/// [`floats_f64`], or `null` for `None`.
pub fn opt_floats_f64<S: Serializer, const N: usize>(
    v: &Option<[f64; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => floats_f64(x, s),
        None => s.serialize_none(),
    }
}

/// An f64 that serialises as [`float_f64`] does.
struct F64(f64);

impl serde::Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        float_f64(&self.0, s)
    }
}

/// A float as JSON holds it: a number, or `"NaN"`, `"inf"`, `"-inf"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f32),
    Text(String),
}

fn to_f32(v: NumOrText) -> f32 {
    match v {
        NumOrText::Num(x) => x,
        NumOrText::Text(t) => match t.as_str() {
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            _ => f32::NAN,
        },
    }
}

/// Read a float written by [`float`] back.
pub fn de_float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    NumOrText::deserialize(d).map(to_f32)
}

/// Read floats written by [`floats`] back.
pub fn de_floats<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    Vec::<NumOrText>::deserialize(d).map(|v| v.into_iter().map(to_f32).collect())
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
        #[derive(serde::Serialize)]
        struct Row64 {
            #[serde(serialize_with = "floats_f64")]
            v: Vec<f64>,
            #[serde(serialize_with = "opt_float_f64")]
            x: Option<f64>,
            #[serde(serialize_with = "opt_floats_f64")]
            y: Option<[f64; 2]>,
        }
        let text = serde_json::to_string(&Row64 {
            v: vec![0.1, f64::NAN, f64::NEG_INFINITY],
            x: Some(f64::INFINITY),
            y: None,
        })
        .unwrap_or_default();
        // 0.1 keeps its f64 digits (as f32 it would be 0.10000000149011612).
        assert_eq!(text, r#"{"v":[0.1,"NaN","-inf"],"x":"inf","y":null}"#);
        assert_eq!(
            [1.5, 1e-7, f32::NAN, f32::NEG_INFINITY].map(csv_num),
            ["1.5", "1e-7", "NaN", "-inf"]
        );
    }
}
