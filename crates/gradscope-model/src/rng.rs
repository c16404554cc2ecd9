//! `HostRng`: the seeded, portable random source every parameter and input is drawn from.
//!
//! Values are drawn on the host and then loaded onto the device, so one config and seed give
//! bit-identical weights and inputs on every backend (Burn's per-backend RNGs promise no such
//! thing). The generator is ChaCha8 with one stream per purpose; the float conversions are
//! written out here so they do not depend on another crate's choices.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Stream reserved for model parameters.
pub const PARAMETER_STREAM: u64 = 0;

/// Stream for the `index`-th input case (counting from 0).
pub fn input_stream(index: usize) -> u64 {
    1 + index as u64
}

/// Stream of a training run's teacher network.
pub const TEACHER_STREAM: u64 = 1 << 40;

/// Stream of a training run's batch at `step` (counting from 0).
pub fn batch_stream(step: usize) -> u64 {
    (1 << 41) + step as u64
}

/// A seeded, portable random number generator.
#[derive(Debug, Clone)]
pub struct HostRng {
    inner: ChaCha8Rng,
}

impl HostRng {
    /// The generator for `seed` on `stream`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        Self { inner }
    }

    /// Uniform on [0, 1), 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Standard normal by the Box–Muller transform (one value per two uniforms).
    pub fn standard_normal(&mut self) -> f64 {
        // 1 - unit() lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Normal with the given mean and standard deviation.
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        mean + std * self.standard_normal()
    }

    /// Normal truncated to two standard deviations around the mean, by rejection (Keras's
    /// and TensorFlow's `truncated_normal`).
    pub fn truncated_normal(&mut self, mean: f64, std: f64) -> f64 {
        loop {
            let z = self.standard_normal();
            if z.abs() <= 2.0 {
                return mean + std * z;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_repeat_and_streams_differ() {
        let draw = |seed, stream| {
            let mut r = HostRng::new(seed, stream);
            (0..8).map(|_| r.unit()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
    }

    #[test]
    fn standard_normal_moments() {
        // Sample mean and variance of n = 200_000 draws: standard errors are 1/sqrt(n) ≈ 0.0022
        // for the mean and sqrt(2/n) ≈ 0.0032 for the variance; 5 standard errors allowed.
        let mut r = HostRng::new(1, 0);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.standard_normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.011, "mean {mean}");
        assert!((var - 1.0).abs() < 0.016, "variance {var}");
    }

    #[test]
    fn truncated_normal_stays_within_two_std() {
        let mut r = HostRng::new(3, 0);
        for _ in 0..50_000 {
            let x = r.truncated_normal(1.0, 0.5);
            assert!((0.0..=2.0).contains(&x), "{x}");
        }
    }
}
