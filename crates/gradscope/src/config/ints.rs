//! The integer keys of a config and their ranges, each written once: what serde says a value
//! of the wrong type should have been ("expected an integer from 0 to 2⁶³ − 1"), and the
//! bounds validation checks. TOML's integers are 64-bit signed, so a range ends at i64::MAX at
//! most.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use toml::Spanned;

/// The values an integer key takes.
pub trait IntRange {
    /// The smallest value.
    const MIN: i64;
    /// The largest value.
    const MAX: i64;
}

/// The range in words: "an integer ≥ 1", "an integer from 1 to 10000".
pub fn expecting<R: IntRange>() -> String {
    match (R::MIN, R::MAX) {
        (0, i64::MAX) => "an integer from 0 to 2⁶³ − 1 (9223372036854775807)".to_string(),
        (min, i64::MAX) => format!("an integer ≥ {min}"),
        (min, max) => format!("an integer from {min} to {max}"),
    }
}

macro_rules! range {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl IntRange for $name {
            const MIN: i64 = $min;
            const MAX: i64 = $max;
        }
    };
}

range!(
    /// `seed`: a sweep's trial seeds (seed, seed + 1, ...) must stay in it too, so that every
    /// trial can be run again as a plain run.
    Seed,
    0,
    i64::MAX
);
range!(
    /// `model.input`, `model.output`, `model.width` and the `model.hidden` widths.
    Width,
    1,
    i64::MAX
);
range!(
    /// `model.depth`: the deepest stack accepted (a guard against typos such as
    /// `depth = 10000000`).
    Depth,
    0,
    10_000
);
range!(
    /// `inputs[].batch`.
    Rows,
    1,
    i64::MAX
);
range!(
    /// `train.steps` (the upper bound guards against typos).
    Steps,
    1,
    100_000_000
);
range!(
    /// `train.batch`.
    TrainBatch,
    1,
    1 << 24
);
range!(
    /// `train.data.classes`.
    Classes,
    2,
    i64::MAX
);

/// The largest seed, as the unsigned type runs use.
pub const MAX_SEED: u64 = Seed::MAX as u64;

/// Any TOML integer; a value of another type (or past i64) is refused with `R`'s range.
struct Int<R>(i64, PhantomData<R>);

impl<'de, R: IntRange> Deserialize<'de> for Int<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<R: IntRange> Visitor<'_> for V<R> {
            type Value = Int<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&expecting::<R>())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<R>, E> {
                Ok(Int(v, PhantomData))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<R>, E> {
                i64::try_from(v)
                    .map(|v| Int(v, PhantomData))
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int<R>, E> {
                let text = format!("integer `{v}`");
                Err(E::invalid_value(Unexpected::Other(&text), &self))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int<R>, E> {
                let text = format!("integer `{v}`");
                Err(E::invalid_value(Unexpected::Other(&text), &self))
            }
        }
        d.deserialize_i64(V(PhantomData))
    }
}

/// An integer key with its span (`deserialize_with`).
pub fn int<'de, D: Deserializer<'de>, R: IntRange>(d: D) -> Result<Spanned<i64>, D::Error> {
    let v = Spanned::<Int<R>>::deserialize(d)?;
    Ok(Spanned::new(v.span(), v.into_inner().0))
}

/// An optional integer key with its span (`default, deserialize_with`).
pub fn opt<'de, D: Deserializer<'de>, R: IntRange>(d: D) -> Result<Option<Spanned<i64>>, D::Error> {
    int::<D, R>(d).map(Some)
}

/// An optional integer key without a span (`default, deserialize_with`).
pub fn opt_plain<'de, D: Deserializer<'de>, R: IntRange>(d: D) -> Result<Option<i64>, D::Error> {
    Int::<R>::deserialize(d).map(|v| Some(v.0))
}

/// An optional list of integers, the list and each value with its span.
#[allow(clippy::type_complexity)]
pub fn opt_list<'de, D: Deserializer<'de>, R: IntRange>(
    d: D,
) -> Result<Option<Spanned<Vec<Spanned<i64>>>>, D::Error> {
    let list = Spanned::<Vec<Spanned<Int<R>>>>::deserialize(d)?;
    let span = list.span();
    let values = list
        .into_inner()
        .into_iter()
        .map(|v| Spanned::new(v.span(), v.into_inner().0))
        .collect();
    Ok(Some(Spanned::new(span, values)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct One {
        #[serde(deserialize_with = "int::<_, Seed>")]
        seed: Spanned<i64>,
    }

    fn message(text: &str) -> String {
        match toml::from_str::<One>(text) {
            Ok(v) => format!("ok {}", v.seed.get_ref()),
            Err(e) => e.message().trim().to_string(),
        }
    }

    #[test]
    fn a_value_of_another_type_is_refused_with_the_range() {
        assert_eq!(
            message("seed = \"x\""),
            "invalid type: string \"x\", expected an integer from 0 to 2⁶³ − 1 (9223372036854775807)"
        );
        assert_eq!(
            message("seed = 1.5"),
            "invalid type: floating point `1.5`, expected an integer from 0 to 2⁶³ − 1 (9223372036854775807)"
        );
        // 2⁶³ is one past i64::MAX: toml reads it as a u64.
        assert_eq!(
            message("seed = 9223372036854775808"),
            "invalid value: integer `9223372036854775808`, expected an integer from 0 to 2⁶³ − 1 (9223372036854775807)"
        );
        assert_eq!(
            message("seed = 9223372036854775807"),
            "ok 9223372036854775807"
        );
        assert_eq!(message("seed = -4"), "ok -4", "the range is validation's");
    }

    #[test]
    fn ranges_read_as_words() {
        assert_eq!(expecting::<Width>(), "an integer ≥ 1");
        assert_eq!(expecting::<Depth>(), "an integer from 0 to 10000");
        assert_eq!(expecting::<Steps>(), "an integer from 1 to 100000000");
        // 2⁶³ − 1 = 9223372036854775807 (i64::MAX).
        assert_eq!(MAX_SEED, 9_223_372_036_854_775_807);
    }
}
