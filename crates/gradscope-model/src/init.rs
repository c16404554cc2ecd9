//! `Initializer`: how a parameter's values are drawn, on the host, from a `HostRng`.
//!
//! Fans follow Keras: a kernel of shape `[fan_in, fan_out]` has those fans; a 1-D tensor
//! (a bias) of length n has fan_in = fan_out = n. `BurnDefault` is the exception: like Burn's
//! `LinearConfig`, it uses the layer's fan_in for the bias as well.

use crate::rng::HostRng;

/// The fans a variance-scaling initialiser uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fans {
    /// Number of inputs feeding each unit.
    pub fan_in: usize,
    /// Number of units each input feeds.
    pub fan_out: usize,
}

/// A parameter initialiser. In every formula `g` is the optional gain (default 1), which
/// scales the bound or standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Initializer {
    /// Every value 0.
    Zeros,
    /// Every value `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// N(mean, std²).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// U(low, high).
    Uniform {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// N(mean, std²) truncated to mean ± 2·std by rejection (TensorFlow's definition).
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation before truncation.
        std: f64,
    },
    /// Keras `glorot_uniform`: U(±g·√(6 / (fan_in + fan_out))).
    GlorotUniform,
    /// Keras `glorot_normal`: truncated normal, std g·√(2 / (fan_in + fan_out)) / 0.87962566.
    GlorotNormal,
    /// Keras `he_uniform`: U(±g·√(6 / fan_in)).
    HeUniform,
    /// Keras `he_normal`: truncated normal, std g·√(2 / fan_in) / 0.87962566.
    HeNormal,
    /// Keras `lecun_uniform`: U(±g·√(3 / fan_in)).
    LecunUniform,
    /// Keras `lecun_normal`: truncated normal, std g·√(1 / fan_in) / 0.87962566.
    LecunNormal,
    /// Burn's `LinearConfig` default, KaimingUniform with gain 1/√3: U(±g·√(1 / fan_in)),
    /// fan_in of the layer for kernel and bias alike.
    BurnDefault,
}

/// Standard deviation of a standard normal truncated to ±2, which Keras divides by so that
/// the truncated draw keeps the intended variance.
pub const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// Draw `n` values for a tensor with the given fans.
    pub fn sample(&self, n: usize, fans: Fans, gain: f64, rng: &mut HostRng) -> Vec<f32> {
        let fan_in = fans.fan_in as f64;
        let fan_avg_2 = (fans.fan_in + fans.fan_out) as f64;
        // Scales are computed once per tensor, not per value (the same f64 either way).
        let mut uniform = |bound: f64| -> Vec<f32> {
            // rng.uniform(-bound, bound), value by value.
            rng.units_f32(n, |u| (-bound + (bound + bound) * u) as f32)
        };
        match *self {
            Self::Zeros => vec![0.0; n],
            Self::Constant { value } => vec![(gain * value) as f32; n],
            Self::Normal { mean, std } => rng.normals_f32(n, mean, gain * std),
            Self::Uniform { low, high } => {
                rng.units_f32(n, |u| (gain * (low + (high - low) * u)) as f32)
            }
            Self::TruncatedNormal { mean, std } => rng.truncated_normals_f32(n, mean, gain * std),
            Self::GlorotUniform => uniform(gain * (6.0 / fan_avg_2).sqrt()),
            Self::HeUniform => uniform(gain * (6.0 / fan_in).sqrt()),
            Self::LecunUniform => uniform(gain * (3.0 / fan_in).sqrt()),
            Self::BurnDefault => uniform(gain * (1.0 / fan_in).sqrt()),
            Self::GlorotNormal | Self::HeNormal | Self::LecunNormal => {
                let variance = match *self {
                    Self::GlorotNormal => 2.0 / fan_avg_2,
                    Self::HeNormal => 2.0 / fan_in,
                    _ => 1.0 / fan_in,
                };
                rng.truncated_normals_f32(n, 0.0, gain * variance.sqrt() / TRUNCATED_NORMAL_STD)
            }
        }
    }

    /// The name used in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Zeros => "zeros",
            Self::Constant { .. } => "constant",
            Self::Normal { .. } => "normal",
            Self::Uniform { .. } => "uniform",
            Self::TruncatedNormal { .. } => "truncated_normal",
            Self::GlorotUniform => "glorot_uniform",
            Self::GlorotNormal => "glorot_normal",
            Self::HeUniform => "he_uniform",
            Self::HeNormal => "he_normal",
            Self::LecunUniform => "lecun_uniform",
            Self::LecunNormal => "lecun_normal",
            Self::BurnDefault => "burn_default",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(init: Initializer, fans: Fans) -> Vec<f64> {
        let mut rng = HostRng::new(11, 0);
        init.sample(100_000, fans, 1.0, &mut rng)
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn std_of(xs: &[f64]) -> f64 {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    #[test]
    fn glorot_uniform_bound_is_keras_limit() {
        // Keras: limit = sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 110) for a 10 x 100 kernel.
        let fans = Fans {
            fan_in: 10,
            fan_out: 100,
        };
        let limit = (6.0f64 / 110.0).sqrt();
        let xs = draw(Initializer::GlorotUniform, fans);
        let max = xs.iter().cloned().fold(f64::MIN, f64::max);
        let min = xs.iter().cloned().fold(f64::MAX, f64::min);
        assert!(max < limit && max > 0.99 * limit, "max {max} vs {limit}");
        assert!(min >= -limit && min < -0.99 * limit, "min {min} vs {limit}");
        // The std of U(-l, l) is l / sqrt(3).
        let s = std_of(&xs);
        assert!((s / (limit / 3f64.sqrt()) - 1.0).abs() < 0.01, "std {s}");
    }

    #[test]
    fn he_normal_is_truncated_with_keras_std() {
        // Keras he_normal: truncated normal whose *final* std is sqrt(2 / fan_in).
        let fans = Fans {
            fan_in: 50,
            fan_out: 25,
        };
        let target = (2.0f64 / 50.0).sqrt();
        let xs = draw(Initializer::HeNormal, fans);
        let s = std_of(&xs);
        assert!((s / target - 1.0).abs() < 0.01, "std {s} vs {target}");
        let bound = 2.0 * target / TRUNCATED_NORMAL_STD;
        assert!(xs.iter().all(|x| x.abs() <= bound + 1e-6));
    }

    #[test]
    fn burn_default_bound_is_sqrt_one_over_fan_in() {
        // KaimingUniform: bound = gain * sqrt(3 / fan_in) with gain = 1/sqrt(3) -> sqrt(1/fan_in).
        let fans = Fans {
            fan_in: 16,
            fan_out: 4,
        };
        let xs = draw(Initializer::BurnDefault, fans);
        let max = xs.iter().cloned().fold(f64::MIN, f64::max);
        assert!(max < 0.25 && max > 0.2495, "{max}");
    }

    fn mean_of(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    /// The random initialisers with their expected std and bound on |x − mean| for fans
    /// (fi, fo), from their formulas.
    #[rustfmt::skip]
    fn formula_cases(fi: f64, fo: f64) -> [(Initializer, f64, f64); 10] {
        let t = TRUNCATED_NORMAL_STD;
        let glorot = (6.0 / (fi + fo)).sqrt();
        // (initialiser, expected std, bound on |x - mean|); a uniform's std is its bound / √3.
        [
            (Initializer::GlorotUniform, glorot / 3f64.sqrt(), glorot),
            (Initializer::GlorotNormal, (2.0 / (fi + fo)).sqrt(), 2.0 * (2.0 / (fi + fo)).sqrt() / t),
            (Initializer::HeUniform, (6.0 / fi).sqrt() / 3f64.sqrt(), (6.0 / fi).sqrt()),
            (Initializer::HeNormal, (2.0 / fi).sqrt(), 2.0 * (2.0 / fi).sqrt() / t),
            (Initializer::LecunUniform, (3.0 / fi).sqrt() / 3f64.sqrt(), (3.0 / fi).sqrt()),
            (Initializer::LecunNormal, (1.0 / fi).sqrt(), 2.0 * (1.0 / fi).sqrt() / t),
            (Initializer::BurnDefault, (1.0 / fi).sqrt() / 3f64.sqrt(), (1.0 / fi).sqrt()),
            // Std of N truncated at ±2σ is σ·0.8796 (the constant Keras divides by).
            (Initializer::TruncatedNormal { mean: 0.5, std: 0.2 }, 0.2 * t, 0.4),
            (Initializer::Normal { mean: -1.0, std: 0.3 }, 0.3, f64::INFINITY),
            (Initializer::Uniform { low: -0.2, high: 0.6 }, 0.8 / 12f64.sqrt(), 0.4),
        ]
    }

    /// Each random initialiser's sample std (100 000 draws, so ±1 % is about 4 standard
    /// errors) and bounds against its formula, for a 64 x 32 kernel.
    #[test]
    fn random_initialisers_follow_their_formulas() {
        let fans = Fans {
            fan_in: 64,
            fan_out: 32,
        };
        let cases = formula_cases(64.0, 32.0);
        for (init, std, bound) in cases {
            let xs = draw(init, fans);
            let expected_mean = match init {
                Initializer::TruncatedNormal { mean, .. } | Initializer::Normal { mean, .. } => {
                    mean
                }
                Initializer::Uniform { low, high } => (low + high) / 2.0,
                _ => 0.0,
            };
            let m = mean_of(&xs);
            let s = std_of(&xs);
            assert!(
                (m - expected_mean).abs() < 0.02 * std,
                "{}: mean {m} vs {expected_mean}",
                init.name()
            );
            assert!(
                (s / std - 1.0).abs() < 0.01,
                "{}: std {s} vs {std}",
                init.name()
            );
            assert!(
                xs.iter()
                    .all(|x| (x - expected_mean).abs() <= bound * (1.0 + 1e-6)),
                "{}: out of bounds",
                init.name()
            );
        }
    }

    #[test]
    fn gain_scales_the_spread() {
        let fans = Fans {
            fan_in: 10,
            fan_out: 10,
        };
        let mut rng = HostRng::new(4, 0);
        let xs: Vec<f64> = Initializer::HeNormal
            .sample(50_000, fans, 2.0, &mut rng)
            .into_iter()
            .map(f64::from)
            .collect();
        let want = 2.0 * (2.0f64 / 10.0).sqrt();
        assert!((std_of(&xs) / want - 1.0).abs() < 0.015, "{}", std_of(&xs));
    }

    #[test]
    fn deterministic_initialisers_are_exact() {
        let fans = Fans {
            fan_in: 3,
            fan_out: 3,
        };
        let mut rng = HostRng::new(0, 0);
        assert_eq!(
            Initializer::Zeros.sample(4, fans, 1.0, &mut rng),
            vec![0.0; 4]
        );
        let c = Initializer::Constant { value: 0.5 }.sample(3, fans, 2.0, &mut rng);
        assert_eq!(c, vec![1.0; 3]);
    }
}
