//! Mean-field theory next to the measurement: from the config alone, in f64, the forward
//! variance q_l of each layer's pre-activations and the backward gain χ_l of each layer, so
//! that a run can print what theory predicts beside what was measured.
//!
//! For an MLP with weights drawn iid with second moment σ²_{w,l} and biases with σ²_{b,l}
//! (Poole et al. 2016, Schoenholz et al. 2017):
//!
//! - q_0 = n_in·σ²_{w,0}·E[x²] + σ²_{b,0}, from the input's second moment;
//! - q_l = n_{l−1}·σ²_{w,l}·E_{z~N(0,q_{l−1})}[φ(z)²] + σ²_{b,l};
//! - χ_l = n_{l−1}·σ²_{w,l}·E_{z~N(0,q_{l−1})}[φ'(z)²], so that ‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖²;
//! - the predicted ‖δ_first‖/‖δ_last‖ = √(Π χ_l).
//!
//! The expectations are closed forms for relu, leaky_relu, elu and identity and Gauss–Hermite
//! quadrature (100 nodes) for the smooth activations. The theory holds for wide layers; at
//! finite width, and where the weights are not zero-mean (`constant`, a `normal` with a mean),
//! theory and measurement part (see the notebook).

use gradscope_model::{Activation, Fans, Initializer, MlpConfig};
pub use gradscope_report::{CRITICAL_BAND, Phase, Theory};

use crate::config::{Distribution, InputCase, InputSource};

/// E[w²] of a tensor drawn by `init` with `fans` and `gain`.
pub fn second_moment(init: Initializer, fans: Fans, gain: f64) -> f64 {
    let (fan_in, fan_sum) = (fans.fan_in as f64, (fans.fan_in + fans.fan_out) as f64);
    let g2 = gain * gain;
    let t = gradscope_model::init::TRUNCATED_NORMAL_STD;
    match init {
        Initializer::Zeros => 0.0,
        Initializer::Constant { value } => g2 * value * value,
        Initializer::Normal { mean, std } => mean * mean + g2 * std * std,
        Initializer::Uniform { low, high } => g2 * (low * low + low * high + high * high) / 3.0,
        Initializer::TruncatedNormal { mean, std } => mean * mean + g2 * std * std * t * t,
        Initializer::GlorotUniform | Initializer::GlorotNormal => 2.0 * g2 / fan_sum,
        Initializer::HeUniform | Initializer::HeNormal => 2.0 * g2 / fan_in,
        Initializer::LecunUniform | Initializer::LecunNormal => g2 / fan_in,
        Initializer::BurnDefault => g2 / (3.0 * fan_in),
    }
}

/// E[x²] of an input case's values.
pub fn input_second_moment(case: &InputCase) -> f64 {
    match &case.source {
        InputSource::Distribution(Distribution::Normal { mean, std }) => mean * mean + std * std,
        InputSource::Distribution(Distribution::Uniform { low, high }) => {
            (low * low + low * high + high * high) / 3.0
        }
        InputSource::Distribution(Distribution::Constant { value }) => value * value,
        InputSource::File { data, .. } => {
            let n = data.data.len().max(1) as f64;
            data.data.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n
        }
    }
}

/// The standard normal CDF.
fn phi_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Gauss–Hermite nodes and weights (physicists' weight e^{−x²}), `n` of them, by Newton's
/// method on the normalised Hermite recurrence (Numerical Recipes' `gauher`).
pub fn gauss_hermite(n: usize) -> Vec<(f64, f64)> {
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let mut out = vec![(0.0, 0.0); n];
    let m = n.div_ceil(2);
    let mut z = 0.0;
    for i in 0..m {
        z = match i {
            0 => (2.0 * n as f64 + 1.0).sqrt() - 1.85575 * (2.0 * n as f64 + 1.0).powf(-0.16667),
            1 => z - 1.14 * (n as f64).powf(0.426) / z,
            2 => 1.86 * z - 0.86 * out[0].0,
            3 => 1.91 * z - 0.91 * out[1].0,
            _ => 2.0 * z - out[i - 2].0,
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (pim4, 0.0);
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = z * (2.0 / (j as f64 + 1.0)).sqrt() * p2
                    - (j as f64 / (j as f64 + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * n as f64).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 3e-14 {
                break;
            }
        }
        let w = 2.0 / (pp * pp);
        out[i] = (z, w);
        out[n - 1 - i] = (-z, w);
    }
    out
}

/// E_{z~N(0,q)}[f(z)] by 100-node Gauss–Hermite quadrature.
fn gaussian_expectation(q: f64, f: impl Fn(f64) -> f64) -> f64 {
    static NODES: std::sync::LazyLock<Vec<(f64, f64)>> =
        std::sync::LazyLock::new(|| gauss_hermite(100));
    let s = (2.0 * q).sqrt();
    NODES.iter().map(|(x, w)| w * f(s * x)).sum::<f64>() / std::f64::consts::PI.sqrt()
}

/// (E[φ(z)²], E[φ'(z)²]) for z ~ N(0, q).
pub fn moments(a: Activation, q: f64) -> (f64, f64) {
    let sq = q.sqrt();
    match a {
        // Half the mass on each side: E[z²; z > 0] = q/2, P(z > 0) = 1/2.
        Activation::Relu => (q / 2.0, 0.5),
        Activation::LeakyRelu { slope } => {
            ((1.0 + slope * slope) * q / 2.0, (1.0 + slope * slope) / 2.0)
        }
        Activation::Identity => (q, 1.0),
        // z < 0: E[e^{az}; z < 0] = e^{a²q/2}·Φ(−a√q).
        Activation::Elu { alpha } => {
            let neg =
                (2.0 * q).exp() * phi_cdf(-2.0 * sq) - 2.0 * (q / 2.0).exp() * phi_cdf(-sq) + 0.5;
            (
                q / 2.0 + alpha * alpha * neg,
                0.5 + alpha * alpha * (2.0 * q).exp() * phi_cdf(-2.0 * sq),
            )
        }
        smooth => (
            gaussian_expectation(q, |z| smooth.apply_f64(z).powi(2)),
            gaussian_expectation(q, |z| smooth_derivative(smooth, z).powi(2)),
        ),
    }
}

/// φ'(z) of the smooth activations, in f64.
fn smooth_derivative(a: Activation, z: f64) -> f64 {
    let s = 1.0 / (1.0 + (-z).exp());
    match a {
        Activation::Gelu => {
            phi_cdf(z) + z * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        Activation::Silu => s * (1.0 + z * (1.0 - s)),
        Activation::Softplus => s,
        Activation::Sigmoid => s * (1.0 - s),
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        Activation::Relu
        | Activation::LeakyRelu { .. }
        | Activation::Elu { .. }
        | Activation::Identity => {
            unreachable!("closed forms are used for {}", a.name())
        }
    }
}

/// The mean-field prediction for `model` on an input of second moment `x2`.
pub fn predict(model: &MlpConfig, x2: f64) -> Theory {
    let widths = model.widths();
    let mut q = Vec::with_capacity(widths.len() - 1);
    let mut chi = Vec::with_capacity(widths.len().saturating_sub(2));
    for (l, w) in widths.windows(2).enumerate() {
        let fans = Fans {
            fan_in: w[0],
            fan_out: w[1],
        };
        let sw = second_moment(model.kernel_init, fans, model.gain);
        let bias_fans = match model.bias_init {
            Initializer::BurnDefault => fans,
            _ => Fans {
                fan_in: w[1],
                fan_out: w[1],
            },
        };
        let sb = if model.bias {
            second_moment(model.bias_init, bias_fans, model.gain)
        } else {
            0.0
        };
        let n = w[0] as f64;
        let ql = match l {
            0 => n * sw * x2 + sb,
            _ => {
                let (phi2, dphi2) = moments(model.activations[l - 1], q[l - 1]);
                chi.push(n * sw * dphi2);
                n * sw * phi2 + sb
            }
        };
        q.push(ql);
    }
    let log_sum: f64 = chi.iter().map(|c| c.ln()).sum();
    let delta_ratio = (0.5 * log_sum).exp();
    let mean = if chi.is_empty() {
        1.0
    } else {
        (log_sum / chi.len() as f64).exp()
    };
    let phase = if mean < 1.0 - CRITICAL_BAND {
        Phase::Ordered
    } else if mean > 1.0 + CRITICAL_BAND {
        Phase::Chaotic
    } else {
        Phase::Critical
    };
    Theory {
        q,
        chi,
        delta_ratio,
        phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quadrature is exact for polynomials up to degree 2n − 1: E[z²] = q, E[z⁴] = 3q²,
    /// E[z⁶] = 15q³ (the normal's moments).
    #[test]
    fn gauss_hermite_integrates_the_normal_moments() {
        for q in [0.1, 1.0, 7.5] {
            let m = |k: i32| gaussian_expectation(q, |z| z.powi(k));
            assert!((m(0) - 1.0).abs() < 1e-13, "mass {}", m(0));
            assert!((m(2) - q).abs() < 1e-12 * q, "E[z²] {}", m(2));
            assert!((m(4) - 3.0 * q * q).abs() < 1e-12 * q * q);
            assert!((m(6) - 15.0 * q.powi(3)).abs() < 1e-11 * q.powi(3));
        }
    }

    /// ∫_{−12√q}^{0} f(z)·N(z; 0, q) dz by composite Simpson with 20 000 intervals (error far
    /// below 1e-10 for these smooth integrands): an independent check of the closed forms.
    fn negative_half(q: f64, f: impl Fn(f64) -> f64) -> f64 {
        let (a, n) = (-12.0 * q.sqrt(), 20_000);
        let h = -a / n as f64;
        let g =
            |z: f64| f(z) * (-z * z / (2.0 * q)).exp() / (2.0 * std::f64::consts::PI * q).sqrt();
        let inner: f64 = (1..n)
            .map(|i| g(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
            .sum();
        h / 3.0 * (g(a) + inner + g(0.0))
    }

    /// The closed forms against independent integrals: relu's E[φ²] = q/2 and E[φ'²] = ½ by
    /// Simpson on the half-line (by symmetry), elu's negative branch likewise; and the
    /// 100-node quadrature of relu, whose kink at 0 it resolves only to about 1e-3.
    #[test]
    fn closed_forms_agree_with_independent_integrals() {
        for q in [0.25, 1.0, 4.0] {
            let relu2 = negative_half(q, |z| z * z);
            assert!(
                (relu2 - q / 2.0).abs() < 1e-10 * q,
                "{relu2} vs {}",
                q / 2.0
            );
            assert!((negative_half(q, |_| 1.0) - 0.5).abs() < 1e-10);
            let relu_gh = gaussian_expectation(q, |z| z.max(0.0).powi(2));
            assert!(
                (relu_gh - q / 2.0).abs() < 2e-3 * q,
                "{relu_gh} vs {}",
                q / 2.0
            );
            let (e2, d2) = moments(Activation::Elu { alpha: 0.7 }, q);
            let neg2 = negative_half(q, |z| (0.7 * z.exp_m1()).powi(2));
            let negd = negative_half(q, |z| (0.7 * z.exp()).powi(2));
            assert!(
                (e2 - (q / 2.0 + neg2)).abs() < 1e-9,
                "elu E[φ²] {e2} vs {}",
                q / 2.0 + neg2
            );
            assert!(
                (d2 - (0.5 + negd)).abs() < 1e-9,
                "elu E[φ'²] {d2} vs {}",
                0.5 + negd
            );
        }
    }

    /// tanh and gelu against a 10⁶-sample Monte Carlo (the seeded host generator): within
    /// 5 standard errors of the sample mean.
    #[test]
    fn smooth_activations_agree_with_monte_carlo() {
        let mut rng = gradscope_model::HostRng::new(7, 3);
        let zs: Vec<f64> = (0..1_000_000).map(|_| rng.standard_normal()).collect();
        for a in [Activation::Tanh, Activation::Gelu] {
            for q in [0.5, 2.0] {
                let (e2, d2) = moments(a, q);
                for (want, f) in [
                    (
                        e2,
                        &(|z: f64| a.apply_f64(z).powi(2)) as &dyn Fn(f64) -> f64,
                    ),
                    (d2, &|z: f64| smooth_derivative(a, z).powi(2)),
                ] {
                    let v: Vec<f64> = zs.iter().map(|z| f(z * q.sqrt())).collect();
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
                    let se = (var / v.len() as f64).sqrt();
                    assert!(
                        (mean - want).abs() < 5.0 * se,
                        "{} q={q}: quadrature {want}, Monte Carlo {mean} ± {se}",
                        a.name()
                    );
                }
            }
        }
    }

    /// relu with He's variance is critical: χ = n·(2/n)·½ = 1 exactly; with Glorot on equal
    /// widths χ = ½ per layer, so over 17 layers (16 gains) the ratio is √(2^−16) = 2^−8.
    #[test]
    fn relu_he_is_critical_and_relu_glorot_halves() {
        let model = |init| MlpConfig {
            d_input: 256,
            hidden: vec![256; 16],
            d_output: 256,
            activations: vec![Activation::Relu; 16],
            bias: true,
            kernel_init: init,
            bias_init: Initializer::Zeros,
            gain: 1.0,
            seed: 0,
        };
        let he = predict(&model(Initializer::HeNormal), 1.0);
        assert!(he.chi.iter().all(|c| (c - 1.0).abs() < 1e-12));
        assert_eq!(he.phase, Phase::Critical);
        let glorot = predict(&model(Initializer::GlorotUniform), 1.0);
        assert!(glorot.chi.iter().all(|c| (c - 0.5).abs() < 1e-12));
        assert!((glorot.delta_ratio - 2f64.powf(-16.0 / 2.0)).abs() < 1e-15);
        assert_eq!(glorot.phase, Phase::Ordered);
    }
}
