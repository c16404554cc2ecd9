//! The hidden layers' map q ↦ σ_w²·E[φ(z)²] + σ_b² (σ_w² here the literature's, n·E[w²]), its
//! fixed point q*, χ₁ = σ_w²·E[φ'(z)²] at q*, and Schoenholz et al.'s depth scales ξ_q and ξ_c
//! (the latter from the correlation map's fixed point c*, by 2-D Gauss–Hermite quadrature).

use std::sync::LazyLock;

use gradscope_model::{Activation, MlpConfig};

use super::LayerVariance;
use super::moments::{
    Nodes, derivative, derivative_moment_limit, gauss_hermite, moments_at, phi_phi2,
};

/// How many layers of the map are iterated at most while looking for q*.
pub const MAX_ITERATIONS: usize = 10_000;

/// One hidden-to-hidden layer, shared by every such layer of the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HiddenMap {
    /// φ.
    pub activation: Activation,
    /// σ_w² = n·E[w²].
    pub sw2: f64,
    /// σ_b² = E[b²].
    pub sb2: f64,
}

/// What follows from the fixed point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedPoint {
    /// q* (`inf` where q grows without bound).
    pub q_star: f64,
    /// χ₁ at q* (at q → ∞ its limit).
    pub chi_star: f64,
    /// ξ_q, where q* is finite.
    pub xi_q: Option<f64>,
    /// ξ_c, where it could be computed.
    pub xi_c: Option<f64>,
    /// Whether the iteration settled (always true for the closed forms).
    pub converged: bool,
}

/// Two values equal to a relative 1e-9 (σ_w² of layers that differ only in rounding).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl HiddenMap {
    /// The map of `model`'s hidden-to-hidden layers, or why there is no single one.
    pub(super) fn of(model: &MlpConfig, layers: &[LayerVariance]) -> Result<Self, String> {
        let d = model.hidden.len();
        if d < 2 {
            return Err(format!(
                "{d} hidden layer{}: no hidden-to-hidden layer, so no fixed point, phase or \
                 depth scales",
                if d == 1 { "" } else { "s" }
            ));
        }
        let first = Self {
            activation: model.activations[0],
            sw2: layers[1].n * layers[1].sw,
            sb2: layers[1].sb,
        };
        let uniform = model.activations.iter().all(|a| *a == first.activation)
            && layers[1..d]
                .iter()
                .all(|v| same(v.n * v.sw, first.sw2) && same(v.sb, first.sb2));
        if uniform {
            Ok(first)
        } else {
            Err(
                "the hidden layers differ in activation, n·σ_w² or σ_b²: no single map, so \
                 no fixed point, phase or depth scales (the per-layer chi still apply)"
                    .into(),
            )
        }
    }

    fn next_q(&self, q: f64) -> f64 {
        self.sw2 * moments_at(Nodes::Fine, self.activation, q).0 + self.sb2
    }

    fn chi(&self, q: f64) -> f64 {
        if q.is_infinite() {
            self.sw2 * derivative_moment_limit(self.activation)
        } else {
            self.sw2 * moments_at(Nodes::Fine, self.activation, q).1
        }
    }
}

/// E[φ(z)²]/q for the positively homogeneous activations (q ↦ a·q + σ_b² exactly).
fn homogeneous(a: Activation) -> Option<f64> {
    match a {
        Activation::Relu => Some(0.5),
        Activation::LeakyRelu { slope } => Some((1.0 + slope * slope) / 2.0),
        Activation::Identity => Some(1.0),
        _ => None,
    }
}

/// q* and whether it was reached, iterating from `q0` (the network's first-layer q, so that
/// where two fixed points compete the one the network approaches is taken).
fn q_star(map: &HiddenMap, q0: f64) -> (f64, bool) {
    if let Some(c) = homogeneous(map.activation) {
        let a = map.sw2 * c;
        return if a < 1.0 - 1e-12 {
            (map.sb2 / (1.0 - a), true)
        } else if a <= 1.0 + 1e-12 && map.sb2 == 0.0 {
            // Every q is a fixed point: the network keeps the one it starts at.
            (q0, true)
        } else {
            (f64::INFINITY, true)
        };
    }
    // q = 0 is a fixed point when σ_b = 0 and φ(0) = 0, attracting while σ_w²·φ'(0)² ≤ 1
    // (near 0 the map is σ_w²φ'(0)²·q + O(q²)): a falling q this close to 0 goes there. At
    // equality q decays like 1/l, too slowly to settle by iterating.
    let zero_attracts = map.sb2 == 0.0
        && map.activation.apply_f64(0.0) == 0.0
        && map.sw2 * derivative(map.activation, 0.0).powi(2) <= 1.0 + 1e-12;
    let mut q = q0;
    for _ in 0..MAX_ITERATIONS {
        let next = map.next_q(q);
        if next.is_nan() || next > 1e150 {
            return (f64::INFINITY, true);
        }
        if next < 1e-300 || (zero_attracts && next < q && next < 1e-3) {
            return (0.0, true);
        }
        if next == q || (next - q).abs() <= 1e-14 * q {
            return (next, true);
        }
        q = next;
    }
    (q, false)
}

/// −1/ln(r): the depth scale of a contraction by r per layer (`inf` at r ≥ 1 − 1e-12, where
/// rounding alone separates r from 1 and the scale would exceed 10¹² layers).
fn scale(r: f64) -> f64 {
    if r >= 1.0 - 1e-12 {
        f64::INFINITY
    } else {
        -1.0 / r.max(0.0).ln()
    }
}

/// The fixed point of `map` approached from `q0`, and what follows from it.
pub fn solve(map: &HiddenMap, q0: f64) -> FixedPoint {
    let (q, converged) = q_star(map, q0);
    let chi_star = map.chi(q);
    // Scales at a q that has not settled would describe no fixed point.
    let xi_q = (converged && q.is_finite()).then(|| {
        let slope = match homogeneous(map.activation) {
            Some(c) => map.sw2 * c,
            None => chi_star + map.sw2 * phi_phi2(map.activation, q),
        };
        scale(slope)
    });
    // χ* = 1 up to rounding (n·(1/n) can come out 1 + 2e-16) is critical: ξ_c = ∞.
    let xi_c = if !converged {
        None
    } else if chi_star <= 1.0 + 1e-12 {
        // Ordered (or critical): c* = 1, and the correlation map's slope there is χ₁.
        Some(scale(chi_star))
    } else if q.is_finite() && q > 0.0 {
        correlation_gain(map, q).map(scale)
    } else {
        None
    };
    FixedPoint {
        q_star: q,
        chi_star,
        xi_q,
        xi_c,
        converged,
    }
}

/// E[f(u₁)·g(u₂)] for (u₁, u₂) centred Gaussian with variances q and correlation c, by 64×64
/// Gauss–Hermite quadrature.
fn pair_expectation(q: f64, c: f64, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> f64 {
    static NODES: LazyLock<Vec<(f64, f64)>> = LazyLock::new(|| gauss_hermite(64));
    let (s, r) = ((2.0 * q).sqrt(), (1.0 - c * c).max(0.0).sqrt());
    let mut sum = 0.0;
    for &(x1, w1) in NODES.iter() {
        let fx = f(s * x1);
        let inner: f64 = NODES
            .iter()
            .map(|&(x2, w2)| w2 * g(s * (c * x1 + r * x2)))
            .sum();
        sum += w1 * fx * inner;
    }
    sum / std::f64::consts::PI
}

/// σ_w²·E[φ'(u₁)φ'(u₂)] at the stable fixed point c* < 1 of the correlation map
/// c ↦ (σ_w²·E[φ(u₁)φ(u₂)] + σ_b²)/q* (chaotic phase); `None` if c* is too close to 1 to
/// resolve. The map is normalised by its own value at c = 1, so that it fixes 1 exactly.
fn correlation_gain(map: &HiddenMap, q: f64) -> Option<f64> {
    let a = map.activation;
    let k = |c: f64| map.sw2 * pair_expectation(q, c, |u| a.apply_f64(u), |u| a.apply_f64(u));
    let norm = k(1.0) + map.sb2;
    let excess = |c: f64| (k(c) + map.sb2) / norm - c;
    let c_star = if excess(0.0) <= 1e-12 {
        0.0
    } else {
        // Find a c below 1 where the map falls below the diagonal, then bisect.
        let (mut lo, mut hi) = (0.0, f64::NAN);
        for i in 1..=20 {
            let c = 1.0 - 0.5 * 10f64.powf(-(i as f64) / 2.0);
            if excess(c) < 0.0 {
                hi = c;
                break;
            }
            lo = c;
        }
        if hi.is_nan() {
            return None;
        }
        for _ in 0..48 {
            let mid = 0.5 * (lo + hi);
            if excess(mid) < 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let d = |u: f64| derivative(a, u);
    Some(map.sw2 * pair_expectation(q, c_star, d, d))
}
