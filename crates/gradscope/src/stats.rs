//! Per-parameter gradient statistics, computed on the host from the values Burn returned.

use gradscope_model::NamedTensor;
use serde::Serialize;

use crate::report::float;

/// Statistics of one parameter's gradient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamStats {
    /// Parameter name, e.g. `layers.0.weight`.
    pub name: String,
    /// Gradient shape (the parameter's shape).
    pub shape: Vec<usize>,
    /// Largest value; NaN when any value is NaN.
    #[serde(serialize_with = "float")]
    pub max: f32,
    /// Smallest value; NaN when any value is NaN.
    #[serde(serialize_with = "float")]
    pub min: f32,
    /// Number of NaN, +inf and −inf values.
    pub nonfinite: usize,
}

impl ParamStats {
    /// Compute the statistics of `grad`.
    pub fn of(grad: &NamedTensor) -> Self {
        let values = &grad.tensor.data;
        let nonfinite = values.iter().filter(|v| !v.is_finite()).count();
        let (max, min) = if values.iter().any(|v| v.is_nan()) {
            (f32::NAN, f32::NAN)
        } else {
            values
                .iter()
                .fold((f32::NEG_INFINITY, f32::INFINITY), |(hi, lo), &v| (hi.max(v), lo.min(v)))
        };
        Self { name: grad.name.clone(), shape: grad.tensor.shape.clone(), max, min, nonfinite }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_model::HostTensor;

    fn named(values: Vec<f32>) -> NamedTensor {
        NamedTensor { name: "p".into(), tensor: HostTensor::new(vec![values.len()], values) }
    }

    #[test]
    fn max_min_of_finite_values() {
        let s = ParamStats::of(&named(vec![0.5, -2.0, 3.25, 0.0]));
        assert_eq!((s.max, s.min, s.nonfinite), (3.25, -2.0, 0));
    }

    #[test]
    fn nan_poisons_max_and_min_and_is_counted() {
        let s = ParamStats::of(&named(vec![1.0, f32::NAN, -1.0]));
        assert!(s.max.is_nan() && s.min.is_nan());
        assert_eq!(s.nonfinite, 1);
    }

    #[test]
    fn infinities_are_extremes_and_counted() {
        let s = ParamStats::of(&named(vec![1.0, f32::INFINITY, f32::NEG_INFINITY, 2.0]));
        assert_eq!((s.max, s.min, s.nonfinite), (f32::INFINITY, f32::NEG_INFINITY, 2));
    }
}
