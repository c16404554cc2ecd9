//! Tests of the theory against numbers from outside it: closed forms, and independent
//! computations (scipy/numpy scripts, quoted with their output where used).

use gradscope_model::{Activation, Initializer, MlpConfig};

use super::*;
use crate::config::{Distribution, InputCase, InputSource, Loss};

/// An MLP of `depth` hidden layers of `width` whose kernels have the literature's σ_w
/// (N(0, σ_w²/n)) and biases σ_b (N(0, σ_b²)), one output.
fn mlp(a: Activation, sigma_w: f64, sigma_b: f64, width: usize, depth: usize) -> MlpConfig {
    MlpConfig {
        d_input: width,
        hidden: vec![width; depth],
        d_output: 1,
        activations: vec![a; depth],
        bias: true,
        kernel_init: Initializer::Normal {
            mean: 0.0,
            std: sigma_w / (width as f64).sqrt(),
        },
        bias_init: Initializer::Normal {
            mean: 0.0,
            std: sigma_b,
        },
        gain: 1.0,
        seed: 0,
    }
}

/// `batch` N(0, 1) examples.
fn normal_input(batch: usize) -> InputCase {
    InputCase {
        name: "x".into(),
        batch,
        source: InputSource::Distribution(Distribution::Normal {
            mean: 0.0,
            std: 1.0,
        }),
    }
}

fn theory(model: &MlpConfig) -> Theory {
    predict(model, &Loss::Sum, &normal_input(1))
}

fn chi_star(model: &MlpConfig) -> f64 {
    theory(model).chi_star.unwrap_or(f64::NAN)
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
    let he = theory(&model(Initializer::HeNormal));
    assert!(he.chi.iter().all(|c| (c - 1.0).abs() < 1e-12));
    assert_eq!(he.phase, Some(Phase::Critical));
    assert_eq!(he.chi_star, Some(1.0));
    let glorot = theory(&model(Initializer::GlorotUniform));
    assert!(glorot.chi.iter().all(|c| (c - 0.5).abs() < 1e-12));
    assert!((glorot.delta_ratio - 2f64.powf(-16.0 / 2.0)).abs() < 1e-15);
    assert_eq!(glorot.phase, Some(Phase::Ordered));
    // ξ_c = −1/ln χ* in the ordered phase: −1/ln ½ = 1/ln 2; infinite at criticality.
    let xi = glorot.depth_scales.and_then(|d| d.xi_c).unwrap_or(f64::NAN);
    assert!((xi - 1.0 / 2f64.ln()).abs() < 1e-12, "{xi}");
    assert_eq!(he.depth_scales.and_then(|d| d.xi_c), Some(f64::INFINITY));
}

/// relu: E[φ'(z)²] = P(z > 0) = ½ at every q, so χ* = σ_w²/2 whatever the bias (which moves
/// q*) and whatever the input's scale (which moves q_0), and χ* = 1 at σ_w = √2 (He).
#[test]
fn relu_chi_is_half_sigma_w_squared_at_every_q() {
    for sigma_w in [0.8, 1.2, 2f64.sqrt(), 1.6] {
        for sigma_b in [0.0, 0.3, 1.0] {
            let m = mlp(Activation::Relu, sigma_w, sigma_b, 64, 8);
            for x_std in [0.1, 1.0, 10.0] {
                let mut case = normal_input(1);
                case.source = InputSource::Distribution(Distribution::Normal {
                    mean: 0.0,
                    std: x_std,
                });
                let t = predict(&m, &Loss::Sum, &case);
                let want = sigma_w * sigma_w / 2.0;
                let got = t.chi_star.unwrap_or(f64::NAN);
                assert!((got - want).abs() < 1e-12, "σ_w {sigma_w}: χ* {got}");
                assert!(t.chi.iter().all(|c| (c - want).abs() < 1e-12));
            }
        }
    }
    assert_eq!(
        theory(&mlp(Activation::Relu, 2f64.sqrt(), 0.0, 64, 8)).phase,
        Some(Phase::Critical)
    );
    // Below He's variance q* = σ_b²/(1 − σ_w²/2) (the linear map q ↦ σ_w²q/2 + σ_b²).
    let t = theory(&mlp(Activation::Relu, 1.2, 0.5, 64, 8));
    let want = 0.25 / (1.0 - 1.44 / 2.0);
    assert!((t.q_star.unwrap_or(f64::NAN) - want).abs() < 1e-12);
    // Above it q grows without bound.
    let t = theory(&mlp(Activation::Relu, 1.6, 0.0, 64, 8));
    assert_eq!(t.q_star, Some(f64::INFINITY));
    assert_eq!(t.phase, Some(Phase::Chaotic));
}

/// tanh without bias: q* = 0 for σ_w ≤ 1 (tanh² < z²), where χ* = σ_w²·tanh'(0)² = σ_w², so
/// the edge of chaos is σ_w = 1 exactly (Poole et al. 2016; Schoenholz et al. 2017, Fig. 1).
/// Above it, χ* and q* against an independent computation
/// (experiments/theory-checks/tanh_critical.py: scipy.integrate.quad for the expectations,
/// fixed-point iteration to 1e-15), which printed
/// `sigma_w=1.1: chi_1=1.0101893643 q*=0.1127498859`, `1.5: 1.1393232250, 0.7933540426`,
/// `2.0: 1.3626733375, 2.1214735682`. None of it depends on depth.
#[test]
fn tanh_without_bias_is_critical_at_sigma_w_one_at_every_depth() {
    for depth in [4, 32, 200] {
        let at = |sw| theory(&mlp(Activation::Tanh, sw, 0.0, 128, depth));
        let critical = at(1.0);
        // n·(1/√n)² = 1 up to one rounding.
        let c = critical.chi_star.unwrap_or(f64::NAN);
        assert!((c - 1.0).abs() < 1e-12, "depth {depth}: χ* {c}");
        assert_eq!(critical.q_star, Some(0.0));
        assert_eq!(critical.phase, Some(Phase::Critical));
        // Both depth scales diverge at the edge (Schoenholz et al. 2017): q decays like 1/l.
        let scales = critical.depth_scales;
        assert_eq!(scales.and_then(|d| d.xi_c), Some(f64::INFINITY));
        assert_eq!(scales.and_then(|d| d.xi_q), Some(f64::INFINITY));
        let below = at(0.9);
        assert!((below.chi_star.unwrap_or(f64::NAN) - 0.81).abs() < 1e-12);
        assert_eq!(below.phase, Some(Phase::Ordered));
        for (sw, chi, q) in [
            (1.1, 1.0101893643, 0.1127498859),
            (1.5, 1.1393232250, 0.7933540426),
            (2.0, 1.3626733375, 2.1214735682),
        ] {
            let t = at(sw);
            let (c, qs) = (t.chi_star.unwrap_or(f64::NAN), t.q_star.unwrap_or(f64::NAN));
            assert!(
                (c - chi).abs() < 1e-8 && (qs - q).abs() < 1e-8,
                "σ_w {sw}: {c} {qs}"
            );
            assert!(c > 1.0, "σ_w {sw}: χ* {c} is above 1 past the edge");
        }
        // χ* = 1.0102 at σ_w = 1.1 lies within the 5 % band; 1.139 at 1.5 is chaotic.
        assert_eq!(at(1.1).phase, Some(Phase::Critical));
        assert_eq!(at(1.5).phase, Some(Phase::Chaotic));
    }
}

/// tanh with bias: the σ_w where χ* crosses 1, found here by bisection on `predict`, against
/// the independent computation (experiments/theory-checks/tanh_critical.py, brentq to 1e-13),
/// which printed
/// `sigma_b=0.05: critical sigma_w=1.1225390048`, `0.1: 1.1934007250`, `0.3: 1.3955839752`,
/// `0.5: 1.5496739125`, `1.0: 1.8555891011`. (Schoenholz et al. 2017, Fig. 1, draw the same
/// curve in (σ_w², σ_b²): σ_w² = 2.40 at σ_b² = 0.25.)
#[test]
fn tanh_edge_of_chaos_with_bias_matches_an_independent_computation() {
    for (sb, want) in [
        (0.05, 1.1225390048),
        (0.1, 1.1934007250),
        (0.3, 1.3955839752),
        (0.5, 1.5496739125),
        (1.0, 1.8555891011),
    ] {
        let (mut lo, mut hi) = (1.0, 4.0);
        // 36 halvings: 3·2^−36 = 4e-11, far inside the tolerance.
        for _ in 0..36 {
            let mid = 0.5 * (lo + hi);
            if chi_star(&mlp(Activation::Tanh, mid, sb, 128, 32)) < 1.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let got = 0.5 * (lo + hi);
        assert!(
            (got - want).abs() < 1e-7,
            "σ_b {sb}: edge at σ_w {got}, want {want}"
        );
    }
}

/// ξ_c near the edge (tanh, σ_b = 0.3, edge σ_w = 1.3955839752). Ordered side: c* = 1 and
/// ξ_c = −1/ln χ* exactly (Schoenholz et al. 2017, eq. 9 with c* = 1). Chaotic side: an
/// expansion of the correlation map about c = 1 (f(1 − ε) = 1 − χ*ε + bε², so c* = 1 −
/// (χ* − 1)/b and f'(c*) = 2 − χ*) gives ξ_c ≈ 1/(χ* − 1) to first order; and against the
/// independent computation experiments/theory-checks/xi_c.py (numpy's 150-node hermgauss,
/// brentq for c*),
/// which printed at σ_w = 1.01·edge `chi1=1.0083915190 c*=0.9645746905 xi_c=122.657576` and
/// at 1.05·edge `chi1=1.0411744343 c*=0.8363185076 xi_c=27.789672`.
#[test]
fn xi_c_follows_its_closed_forms_near_the_edge() {
    let edge = 1.3955839752;
    let below = theory(&mlp(Activation::Tanh, 0.99 * edge, 0.3, 128, 32));
    let chi = below.chi_star.unwrap_or(f64::NAN);
    let xi = below.depth_scales.and_then(|d| d.xi_c).unwrap_or(f64::NAN);
    assert!(
        (xi + 1.0 / chi.ln()).abs() < 1e-9 * xi,
        "{xi} vs {}",
        -1.0 / chi.ln()
    );
    assert!(
        (xi - 117.415837).abs() < 1e-3,
        "scipy: 117.415837; got {xi}"
    );
    for (factor, want) in [(1.01, 122.657576), (1.05, 27.789672)] {
        let t = theory(&mlp(Activation::Tanh, factor * edge, 0.3, 128, 32));
        let chi = t.chi_star.unwrap_or(f64::NAN);
        let xi = t.depth_scales.and_then(|d| d.xi_c).unwrap_or(f64::NAN);
        assert!(
            (xi - want).abs() < 2e-3 * want,
            "{factor}: ξ_c {xi}, numpy {want}"
        );
        if factor < 1.02 {
            let near = 1.0 / (chi - 1.0);
            assert!(
                (xi - near).abs() < 0.05 * near,
                "ξ_c {xi} vs 1/(χ*−1) {near}"
            );
        }
    }
}

/// ξ_q is −1/ln of the q map's slope at q*; the slope χ* + σ_w²E[φφ''] against a central
/// difference of the map itself (tanh, sigmoid, gelu, elu, with bias).
#[test]
fn xi_q_is_the_q_maps_slope_at_the_fixed_point() {
    for a in [
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Elu { alpha: 1.0 },
    ] {
        let m = mlp(a, 1.2, 0.4, 128, 32);
        let t = theory(&m);
        let (sw2, sb2, q) = (1.44, 0.16, t.q_star.unwrap_or(f64::NAN));
        let map = |q: f64| sw2 * moments::moments_at(moments::Nodes::Fine, a, q).0 + sb2;
        assert!((map(q) - q).abs() < 1e-12 * q, "{}: q* {q}", a.name());
        let h = 1e-5 * q;
        let slope = (map(q + h) - map(q - h)) / (2.0 * h);
        let xi = t.depth_scales.and_then(|d| d.xi_q).unwrap_or(f64::NAN);
        assert!(
            (xi + 1.0 / slope.ln()).abs() < 1e-5 * xi,
            "{}: ξ_q {xi} vs {}",
            a.name(),
            -1.0 / slope.ln()
        );
    }
}

/// Non-zero-mean kernels or biases: theory does not apply (issue #23: uniform [0, 0.2]
/// kernels measured a ratio of 0 while theory printed 1.13, critical).
#[test]
fn non_zero_mean_weights_are_flagged() {
    let mut m = mlp(Activation::Tanh, 1.0, 0.0, 128, 8);
    // Zero-mean: it applies (the one caveat: no finite-width spread is known for tanh).
    let t = theory(&m);
    assert!(
        t.applies && !t.caveats.iter().any(|c| c.contains("mean")),
        "{:?}",
        t.caveats
    );
    m.kernel_init = Initializer::Uniform {
        low: 0.0,
        high: 0.2,
    };
    let t = theory(&m);
    assert!(!t.applies && t.caveats[0].contains("kernels are drawn with mean 0.1"));
    assert_eq!(t.ratio_quartiles, None);
    m.kernel_init = Initializer::Uniform {
        low: -0.2,
        high: 0.2,
    };
    m.bias_init = Initializer::Constant { value: 0.1 };
    let t = theory(&m);
    assert!(!t.applies && t.caveats[0].contains("biases are drawn with mean 0.1"));
    m.bias = false;
    assert!(
        theory(&m).applies,
        "no bias, so its initialiser is not used"
    );
}

/// A loss whose gradient depends on the output, with several outputs: flagged; with one output
/// or a constant gradient (sum, mean): not.
#[test]
fn output_dependent_losses_are_flagged_with_several_outputs() {
    let mut m = mlp(Activation::Tanh, 1.0, 0.0, 128, 8);
    let case = normal_input(1);
    for (outputs, loss, applies) in [
        (128, Loss::SumSquares, false),
        (128, Loss::MeanSquares, false),
        (128, Loss::Mse { target: 1.0 }, false),
        (128, Loss::Sum, true),
        (128, Loss::Mean, true),
        (1, Loss::SumSquares, true),
        (1, Loss::Mse { target: 1.0 }, true),
    ] {
        m.d_output = outputs;
        let t = predict(&m, &loss, &case);
        assert_eq!(t.applies, applies, "{outputs} outputs, {}", loss.name());
        assert_eq!(
            t.caveats
                .iter()
                .any(|c| c.contains("depends on the output")),
            !applies
        );
    }
}

/// No single hidden map (one hidden layer; widths that change σ_w² under Glorot): the
/// fixed-point fields are null and a caveat says why; the per-layer χ remain.
#[test]
fn no_fixed_point_without_one_hidden_map() {
    let one = mlp(Activation::Tanh, 1.0, 0.0, 64, 1);
    let t = theory(&one);
    assert_eq!((t.q_star, t.phase, t.depth_scales), (None, None, None));
    assert!(t.caveats.iter().any(|c| c.contains("1 hidden layer")));
    let mut funnel = mlp(Activation::Relu, 1.0, 0.0, 64, 3);
    funnel.kernel_init = Initializer::GlorotNormal;
    funnel.hidden = vec![100, 80, 20];
    let t = theory(&funnel);
    assert_eq!(t.chi_star, None);
    assert_eq!(t.chi.len(), 3);
    assert!(t.caveats.iter().any(|c| c.contains("no single map")));
    // The seed's 100 → 50 → 25 under Glorot: n·2/(n + n/2) = 4/3 at both hidden layers, so
    // there is one map, with χ* = (4/3)/2.
    funnel.hidden = vec![100, 50, 25];
    let chi = chi_star(&funnel);
    assert!((chi - 2.0 / 3.0).abs() < 1e-12, "{chi}");
}

/// κ against a Monte Carlo of one unit's ε²g² (10⁶ samples of the seeded host generator):
/// relu's 5 is Hanin & Nica's constant, identity's 2 the variance 2/n of χ²_n/n; leaky_relu
/// (slope 0.3) has no published constant, so the sample is the check.
#[test]
fn kappa_matches_a_monte_carlo_of_one_unit() {
    assert_eq!(spread::kappa(Activation::Relu), Some(5.0));
    assert_eq!(spread::kappa(Activation::Identity), Some(2.0));
    assert_eq!(spread::kappa(Activation::Tanh), None);
    let mut rng = gradscope_model::HostRng::new(11, 5);
    let slope: f64 = 0.3;
    let xs: Vec<f64> = (0..1_000_000)
        .map(|i| {
            let g = rng.standard_normal();
            let e2 = if i % 2 == 0 { 1.0 } else { slope * slope };
            e2 * g * g
        })
        .collect();
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    let got = spread::kappa(Activation::LeakyRelu { slope }).unwrap_or(f64::NAN);
    // The sample κ's relative error is about √(E[x⁴]/Var²/n) ≈ 0.5 % here; allow 2 %.
    assert!(
        (var / (mean * mean) - got).abs() < 0.02 * got,
        "{got} vs {}",
        var / mean / mean
    );
}

/// The quartiles: relu He, width 128, depth 32, one example: S = 32·5/(4·128) = 0.3125,
/// so [e^{−S − 0.6745√S}, e^{−S + 0.6745√S}] = [0.5018, 1.0667]. A batch of 2, or tanh: none.
#[test]
fn ratio_quartiles_where_a_result_is_known() {
    let m = mlp(Activation::Relu, 2f64.sqrt(), 0.0, 128, 32);
    let t = theory(&m);
    let [q1, q3] = t.ratio_quartiles.unwrap_or([f64::NAN; 2]);
    assert!(
        (q1 - 0.50180).abs() < 1e-4 && (q3 - 1.06670).abs() < 1e-4,
        "{q1} {q3}"
    );
    let t = predict(&m, &Loss::Sum, &normal_input(2));
    assert_eq!(t.ratio_quartiles, None);
    assert!(t.caveats.iter().any(|c| c.contains("batch of 2")));
    assert_eq!(
        theory(&mlp(Activation::Tanh, 1.0, 0.0, 128, 32)).ratio_quartiles,
        None
    );
}
