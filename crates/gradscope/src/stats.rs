//! Gradient statistics, computed on the host from the values Burn returned: per parameter
//! (`ParamStats`) and per layer (`LayerStats`, from δ = ∂loss/∂pre-activation and the
//! activations). Non-finite values are counted apart and never enter a norm or a mean.

use gradscope_model::{HostTensor, NamedTensor};
use gradscope_report::floats::kept;
pub use gradscope_report::{LayerStats, ParamStats};

/// Moments of the finite values of a slice, accumulated in f64, and counts of the rest: one
/// pass over the values (the sums in order, so the same f64s as one pass per quantity).
///
/// An f64 tensor's values can be too large or too small to square in f64 (|v| > 2⁵¹¹, or
/// < 2⁻⁵¹¹, where an f32's never are): those are summed scaled by a power of two, `scale`
/// (exact), and every moment is unscaled as it is read. Everywhere else `scale` is 1.
#[derive(Debug, Clone, Copy)]
struct Moments {
    scale: f64,
    n: usize,
    sum: f64,
    sum_abs: f64,
    sum_sq: f64,
    max_abs: f64,
    /// Largest and smallest value, ±inf included (NaN aside).
    hi: f64,
    lo: f64,
    zeros: usize,
    nan: usize,
    pos_inf: usize,
    neg_inf: usize,
}

impl Moments {
    /// Of an f32 tensor's values or an f64 one's (each f32 widens exactly, so the sums are the
    /// ones an f32-only pass made).
    fn of<T: Copy + Into<f64>>(values: &[T]) -> Self {
        Self::scaled(values, 1.0)
    }
    /// Of `values`, each multiplied by `1 / scale` (a power of two) as it is summed.
    fn scaled<T: Copy + Into<f64>>(values: &[T], scale: f64) -> Self {
        let inverse = 1.0 / scale;
        let mut m = Self {
            scale,
            n: 0,
            sum: 0.0,
            sum_abs: 0.0,
            sum_sq: 0.0,
            max_abs: 0.0,
            hi: f64::NEG_INFINITY,
            lo: f64::INFINITY,
            zeros: 0,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
        };
        for &v in values {
            let v: f64 = v.into() * inverse;
            if v.is_finite() {
                m.hi = m.hi.max(v);
                m.lo = m.lo.min(v);
                m.zeros += usize::from(v == 0.0);
                m.n += 1;
                m.sum += v;
                m.sum_abs += v.abs();
                m.sum_sq += v * v;
                m.max_abs = m.max_abs.max(v.abs());
            } else if v.is_nan() {
                m.nan += 1;
            } else if v > 0.0 {
                m.pos_inf += 1;
            } else {
                m.neg_inf += 1;
            }
        }
        if m.pos_inf > 0 {
            m.hi = f64::INFINITY;
        }
        if m.neg_inf > 0 {
            m.lo = f64::NEG_INFINITY;
        }
        m
    }
    /// Of `t`'s values: the f64 ones where it was read back from an f64 tensor, scaled where
    /// their squares would leave f64.
    fn of_tensor(t: &HostTensor) -> Self {
        let Some(w) = &t.wide else {
            return Self::of(&t.data);
        };
        let largest = w
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let squares_fit = largest == 0.0 || (2f64.powi(-511)..=2f64.powi(511)).contains(&largest);
        if squares_fit {
            Self::of(w)
        } else {
            // 2^⌊log2 largest⌋: the largest scaled value is in [1, 2).
            Self::scaled(w, 2f64.powi(largest.log2().floor() as i32))
        }
    }
    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64 * self.scale
        }
    }
    fn std(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            let mean = self.sum / self.n as f64;
            (self.sum_sq / self.n as f64 - mean.powi(2)).max(0.0).sqrt() * self.scale
        }
    }
    fn l2(&self) -> f64 {
        self.sum_sq.sqrt() * self.scale
    }
    fn max_abs(&self) -> f64 {
        self.max_abs * self.scale
    }
    fn mean_abs(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum_abs / self.n as f64 * self.scale
        }
    }
    /// Largest and smallest value, unscaled.
    fn extremes(&self) -> (f64, f64) {
        (self.hi * self.scale, self.lo * self.scale)
    }
}

/// The statistics of `grad`.
pub fn param_stats(grad: &NamedTensor) -> ParamStats {
    let t = &grad.tensor;
    let wide = t.wide.is_some();
    let m = Moments::of_tensor(t);
    let (nan, pos_inf, neg_inf, zeros) = (m.nan, m.pos_inf, m.neg_inf, m.zeros);
    let (max, min) = if nan > 0 {
        (f64::NAN, f64::NAN)
    } else {
        m.extremes()
    };
    ParamStats {
        name: grad.name.clone(),
        shape: t.shape.clone(),
        max,
        min,
        nonfinite: nan + pos_inf + neg_inf,
        max_abs: m.max_abs(),
        l2: kept(m.l2(), wide),
        mean_abs: kept(m.mean_abs(), wide),
        std: kept(m.std(), wide),
        zero_fraction: if t.is_empty() {
            0.0
        } else {
            zeros as f32 / t.len() as f32
        },
        nan,
        pos_inf,
        neg_inf,
        range: None,
    }
}

/// Statistics of layer `layer` from its δ `[batch, width]` and its output `[batch, width]`;
/// `hidden` says whether the output went through an activation.
pub fn layer_stats(
    layer: usize,
    delta: &HostTensor,
    output: &HostTensor,
    hidden: bool,
) -> LayerStats {
    let width = delta.shape.get(1).copied().unwrap_or(0);
    let batch = delta.shape.first().copied().unwrap_or(0);
    let d = Moments::of_tensor(delta);
    let a = Moments::of_tensor(output);
    let dead = if hidden && width > 0 {
        let dead_units = (0..width)
            .filter(|&j| (0..batch).all(|r| output.value(r * width + j) == 0.0))
            .count();
        dead_units as f32 / width as f32
    } else {
        0.0
    };
    LayerStats {
        layer,
        width,
        delta_l2: kept(d.l2(), delta.wide.is_some()),
        delta_max_abs: d.max_abs(),
        delta_nonfinite: d.nan + d.pos_inf + d.neg_inf,
        dead_fraction: dead,
        activation_mean: kept(a.mean(), output.wide.is_some()),
        activation_std: kept(a.std(), output.wide.is_some()),
        activation_nonfinite: a.nan + a.pos_inf + a.neg_inf,
        z_range: None,
        a_range: None,
        delta_range: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(values: Vec<f32>) -> NamedTensor {
        NamedTensor {
            name: "p".into(),
            tensor: HostTensor::new(vec![values.len()], values),
        }
    }

    /// The statistics one quantity at a time, as plainly as they are defined: an independent
    /// computation for the one-pass [`param_stats`].
    fn plain(values: &[f32]) -> (f32, f32, usize, usize, usize, usize, f64, f64, f64) {
        let nan = values.iter().filter(|v| v.is_nan()).count();
        let pos_inf = values.iter().filter(|v| **v == f32::INFINITY).count();
        let neg_inf = values.iter().filter(|v| **v == f32::NEG_INFINITY).count();
        let (max, min) = if nan > 0 {
            (f32::NAN, f32::NAN)
        } else {
            values
                .iter()
                .fold((f32::NEG_INFINITY, f32::INFINITY), |(hi, lo), &v| {
                    (hi.max(v), lo.min(v))
                })
        };
        let finite = values
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| f64::from(*v));
        // Sums from +0 (std's `sum` of f64 starts at -0).
        let sum_sq = finite.clone().fold(0.0, |a, v| a + v * v);
        let sum_abs = finite.clone().fold(0.0, |a, v| a + v.abs());
        let max_abs = finite.fold(0.0, |m: f64, v| m.max(v.abs()));
        let zeros = values.iter().filter(|v| **v == 0.0).count();
        (
            max,
            min,
            nan,
            pos_inf,
            neg_inf,
            zeros,
            sum_sq.sqrt(),
            sum_abs,
            max_abs,
        )
    }

    #[test]
    fn one_pass_statistics_equal_the_plain_definitions_bit_for_bit() {
        // Mixtures of ordinary values, ±0, ±inf, NaN and subnormals, from a fixed xorshift.
        let specials = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
            -3.5,
        ];
        let mut x = 0x853C_49E6_748F_EA9B_u64;
        for len in [0, 1, 2, 7, 100, 4096] {
            for special_share in [0, 3, 50] {
                let values: Vec<f32> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if (x % 100) < special_share {
                            specials[(x >> 8) as usize % specials.len()]
                        } else {
                            ((x >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0) as f32
                        }
                    })
                    .collect();
                let s = param_stats(&named(values.clone()));
                let (max, min, nan, pos_inf, neg_inf, zeros, l2, sum_abs, max_abs) = plain(&values);
                let n = values.iter().filter(|v| v.is_finite()).count();
                let mean_abs = if n == 0 {
                    0.0
                } else {
                    f64::from((sum_abs / n as f64) as f32)
                };
                let what = format!("len {len}, share {special_share}");
                assert_eq!(s.max.to_bits(), f64::from(max).to_bits(), "{what}");
                assert_eq!(s.min.to_bits(), f64::from(min).to_bits(), "{what}");
                assert_eq!(
                    (s.nan, s.pos_inf, s.neg_inf),
                    (nan, pos_inf, neg_inf),
                    "{what}"
                );
                assert_eq!(s.nonfinite, nan + pos_inf + neg_inf, "{what}");
                let zero_fraction = if len == 0 {
                    0.0
                } else {
                    zeros as f32 / len as f32
                };
                assert_eq!(s.zero_fraction.to_bits(), zero_fraction.to_bits(), "{what}");
                assert_eq!(s.l2.to_bits(), f64::from(l2 as f32).to_bits(), "{what}");
                assert_eq!(s.mean_abs.to_bits(), mean_abs.to_bits(), "{what}");
                assert_eq!(
                    s.max_abs.to_bits(),
                    f64::from(max_abs as f32).to_bits(),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn statistics_of_finite_values_against_hand_computation() {
        // g = [3, -4, 0, 0]: max 3, min -4, max|g| 4, ‖g‖ = √(9 + 16) = 5, mean|g| = 7/4,
        // mean = -1/4, variance = (9 + 16)/4 - 1/16 = 6.1875, zero fraction 1/2.
        let s = param_stats(&named(vec![3.0, -4.0, 0.0, 0.0]));
        assert_eq!(
            (s.max, s.min, s.max_abs, s.l2, s.mean_abs),
            (3.0, -4.0, 4.0, 5.0, 1.75)
        );
        assert!((s.std - 6.1875f64.sqrt()).abs() < 1e-6);
        assert_eq!(
            (s.zero_fraction, s.nonfinite, s.nan, s.pos_inf, s.neg_inf),
            (0.5, 0, 0, 0, 0)
        );
    }

    #[test]
    fn nan_poisons_max_and_min_and_is_counted_but_not_averaged() {
        // Finite part [1, -1]: ‖·‖ = √2, mean|·| = 1.
        let s = param_stats(&named(vec![1.0, f32::NAN, -1.0]));
        assert!(s.max.is_nan() && s.min.is_nan());
        assert_eq!((s.nonfinite, s.nan), (1, 1));
        assert_eq!(
            (s.l2, s.mean_abs, s.max_abs),
            (f64::from(2f32.sqrt()), 1.0, 1.0)
        );
    }

    #[test]
    fn infinities_are_extremes_and_counted_by_sign() {
        let s = param_stats(&named(vec![
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::INFINITY,
            2.0,
        ]));
        assert_eq!((s.max, s.min), (f64::INFINITY, f64::NEG_INFINITY));
        assert_eq!((s.nonfinite, s.pos_inf, s.neg_inf, s.nan), (3, 2, 1, 0));
        assert_eq!(s.max_abs, 2.0);
    }

    #[test]
    fn large_values_do_not_overflow_the_norm() {
        // 3e30² overflows f32 but not the f64 accumulator: ‖[3e30, 4e30]‖ = 5e30.
        let s = param_stats(&named(vec![3e30, 4e30]));
        assert!((s.l2 / 5e30 - 1.0).abs() < 1e-6, "{}", s.l2);
    }

    /// An f64 tensor's values past the range where f64 can square them: ‖[3, 4]·10³⁰⁰‖ =
    /// 5·10³⁰⁰, mean 3.5·10³⁰⁰, standard deviation 0.5·10³⁰⁰ (and the same at 10⁻³⁰⁰, whose
    /// squares would be 0), each within a few units of f64's roundoff; an f32 copy of them holds
    /// inf and 0.
    #[test]
    fn f64_values_beyond_the_squares_range_keep_their_norm() {
        for unit in [1e300, 1e-300] {
            let values = vec![3.0 * unit, 4.0 * unit];
            let t = HostTensor {
                shape: vec![2],
                data: values.iter().map(|&v| v as f32).collect(),
                wide: Some(values.clone()),
            };
            let s = param_stats(&NamedTensor {
                name: "p".into(),
                tensor: t,
            });
            let near = |got: f64, want: f64| (got - want).abs() <= 4.0 * f64::EPSILON * want;
            assert!(near(s.l2, 5.0 * unit), "{unit:e}: l2 {:e}", s.l2);
            assert!(near(s.mean_abs, 3.5 * unit), "{unit:e}: {:e}", s.mean_abs);
            // The variance is E[v²] − E[v]²: its roundoff is magnified by (mean / std)² = 49.
            let std_error = (s.std - 0.5 * unit).abs() / (0.5 * unit);
            assert!(
                std_error <= 64.0 * f64::EPSILON,
                "{unit:e}: std {:e}",
                s.std
            );
            assert_eq!(
                (s.max_abs, s.max, s.min),
                (4.0 * unit, 4.0 * unit, 3.0 * unit)
            );
            assert_eq!(s.nonfinite, 0);
        }
    }

    #[test]
    fn layer_statistics_count_dead_units_across_the_batch() {
        // Batch of 2, width 3: unit 0 is zero in both rows (dead), unit 1 only in one.
        let a = HostTensor::new(vec![2, 3], vec![0.0, 0.0, 1.0, 0.0, 2.0, 3.0]);
        let d = HostTensor::new(vec![2, 3], vec![0.0, 3.0, 0.0, 0.0, 4.0, 0.0]);
        let s = layer_stats(0, &d, &a, true);
        assert_eq!((s.width, s.delta_l2, s.delta_max_abs), (3, 5.0, 4.0));
        assert!((s.dead_fraction - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(s.activation_mean, 1.0);
        // Output layer: no activation, so nothing is "dead".
        assert_eq!(layer_stats(1, &d, &a, false).dead_fraction, 0.0);
    }
}
