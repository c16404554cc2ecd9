//! The Gaussian moments mean-field theory needs: the second moments of the initialisers and
//! the input, and E[φ(z)²], E[φ'(z)²], E[φ(z)φ''(z)] for z ~ N(0, q): closed forms for relu,
//! leaky_relu, elu and identity, 100-node Gauss–Hermite quadrature for the smooth activations.

use gradscope_model::{Activation, Fans, Initializer};

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
pub(super) fn phi_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// e^{x²/2}·Φ(−x) (x ≥ 0): directly below x = 36, where both factors are representable (and
/// the values are those of the direct formula), else by the asymptotic series
/// (1 − 1/x² + 3/x⁴ − 15/x⁶)/(x√(2π)), whose next term is below 4e-11 there. The direct
/// product overflows to inf·0 = NaN from x ≈ 37.7 (elu at q > 355).
fn scaled_tail(x: f64) -> f64 {
    if x < 36.0 {
        (x * x / 2.0).exp() * phi_cdf(-x)
    } else {
        let r = 1.0 / (x * x);
        (1.0 - r + 3.0 * r * r - 15.0 * r * r * r) / (x * (2.0 * std::f64::consts::PI).sqrt())
    }
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

/// How many Gauss–Hermite nodes an expectation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nodes {
    /// 100, for the per-layer recursion (kept, so that `q` and `chi` keep their digits).
    Layer,
    /// For the fixed point: the trapezoidal rule in the standard normal variable on
    /// [−12, 12] with step h = min(¼, ¼/√q) (at most 20 001 nodes). It is exponentially
    /// accurate for analytic integrands: the nearest singularity of the activations here is
    /// tanh's pole at √q·z = ±iπ/2, which bounds the error by about e^{−π²/(h√q)} ≤ e^{−4π²}
    /// ≈ 7e-18. 100 Gauss–Hermite nodes are not enough there: tanh's E[sech⁴] at q = 2.12 is
    /// off by 9.5e-7 (against scipy's adaptive quad, experiments/theory-checks/gh_check.py).
    Fine,
}

/// E_{z~N(0,q)}[f(z)] by Gauss–Hermite quadrature on `nodes`.
pub(super) fn gaussian_expectation_at(nodes: Nodes, q: f64, f: impl Fn(f64) -> f64) -> f64 {
    static LAYER: std::sync::LazyLock<Vec<(f64, f64)>> =
        std::sync::LazyLock::new(|| gauss_hermite(100));
    match nodes {
        Nodes::Layer => {
            let s = (2.0 * q).sqrt();
            LAYER.iter().map(|(x, w)| w * f(s * x)).sum::<f64>() / std::f64::consts::PI.sqrt()
        }
        Nodes::Fine => trapezoid(q, f),
    }
}

/// [`Nodes::Fine`]'s rule: Σ h·N(z_i)·f(√q·z_i) over z_i = i·h in [−12, 12].
fn trapezoid(q: f64, f: impl Fn(f64) -> f64) -> f64 {
    let sq = q.sqrt();
    let h = (0.25f64).min(0.25 / sq).max(12.0 / 10_000.0);
    let n = (12.0 / h).ceil() as i32;
    let norm = h / (2.0 * std::f64::consts::PI).sqrt();
    (-n..=n)
        .map(|i| {
            let z = f64::from(i) * h;
            (-0.5 * z * z).exp() * f(sq * z)
        })
        .sum::<f64>()
        * norm
}

/// (E[φ(z)²], E[φ'(z)²]) for z ~ N(0, q), on the per-layer nodes.
pub fn moments(a: Activation, q: f64) -> (f64, f64) {
    moments_at(Nodes::Layer, a, q)
}

/// (E[φ(z)²], E[φ'(z)²]) for z ~ N(0, q); the smooth activations' by quadrature on `nodes`.
pub fn moments_at(nodes: Nodes, a: Activation, q: f64) -> (f64, f64) {
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
            let neg = scaled_tail(2.0 * sq) - 2.0 * scaled_tail(sq) + 0.5;
            (
                q / 2.0 + alpha * alpha * neg,
                0.5 + alpha * alpha * scaled_tail(2.0 * sq),
            )
        }
        smooth => (
            gaussian_expectation_at(nodes, q, |z| smooth.apply_f64(z).powi(2)),
            gaussian_expectation_at(nodes, q, |z| derivative(smooth, z).powi(2)),
        ),
    }
}

/// φ'(z) in f64 ([`Activation::derivative_f64`]).
pub fn derivative(a: Activation, z: f64) -> f64 {
    a.derivative_f64(z)
}

/// E[φ(z)·φ''(z)] for z ~ N(0, q): with E[φ'(z)²] it is the slope of the q map,
/// d/dq E[φ(√q·x)²] = E[φ'² + φφ''] (Gaussian integration by parts).
pub fn phi_phi2(a: Activation, q: f64) -> f64 {
    let sq = q.sqrt();
    match a {
        Activation::Relu | Activation::LeakyRelu { .. } | Activation::Identity => 0.0,
        // z < 0: α(e^z − 1)·αe^z, with E[e^{az}; z < 0] = e^{a²q/2}·Φ(−a√q).
        Activation::Elu { alpha } => alpha * alpha * (scaled_tail(2.0 * sq) - scaled_tail(sq)),
        smooth => gaussian_expectation_at(Nodes::Fine, q, |z| {
            smooth.apply_f64(z) * smooth.second_derivative_f64(z)
        }),
    }
}

/// lim_{q→∞} E[φ'(z)²]: the gain per unit of σ_w² once pre-activations are large (the
/// relu-like activations' ½; 0 for the saturating ones).
pub fn derivative_moment_limit(a: Activation) -> f64 {
    match a {
        Activation::Relu
        | Activation::Elu { .. }
        | Activation::Gelu
        | Activation::Silu
        | Activation::Softplus => 0.5,
        Activation::LeakyRelu { slope } => (1.0 + slope * slope) / 2.0,
        Activation::Identity => 1.0,
        Activation::Sigmoid | Activation::Tanh => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quadrature is exact for polynomials up to degree 2n − 1: E[z²] = q, E[z⁴] = 3q²,
    /// E[z⁶] = 15q³ (the normal's moments).
    #[test]
    fn gauss_hermite_integrates_the_normal_moments() {
        for (nodes, q) in [0.1, 1.0, 7.5]
            .into_iter()
            .flat_map(|q| [(Nodes::Layer, q), (Nodes::Fine, q)])
        {
            let m = |k: i32| gaussian_expectation_at(nodes, q, |z| z.powi(k));
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
            let relu_gh = gaussian_expectation_at(Nodes::Layer, q, |z| z.max(0.0).powi(2));
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

    /// The scaled tail is continuous where it changes formula (the series' next term, 105/x⁸,
    /// is 4e-11 at 36), and elu's moments stay finite at large q (the direct product gave NaN
    /// from q ≈ 355): E[φ'²] → ½ and E[φ²]/q → ½ as q → ∞.
    #[test]
    fn elu_moments_stay_finite_at_large_q() {
        let r = 1.0 / (36.0f64 * 36.0);
        let series = (1.0 - r + 3.0 * r * r - 15.0 * r * r * r)
            / (36.0 * (2.0 * std::f64::consts::PI).sqrt());
        let direct = scaled_tail(36.0 - 1e-9);
        assert!(
            (direct - series).abs() < 1e-9 * series,
            "{direct} vs {series}"
        );
        for q in [400.0, 1e4, 1e8] {
            let (e2, d2) = moments(Activation::Elu { alpha: 1.0 }, q);
            assert!(
                (d2 - 0.5).abs() < 1e-2 && (e2 / q - 0.5).abs() < 1e-2,
                "q {q}: {e2} {d2}"
            );
            assert!(phi_phi2(Activation::Elu { alpha: 1.0 }, q).is_finite());
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
                    (d2, &|z: f64| derivative(a, z).powi(2)),
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
}
