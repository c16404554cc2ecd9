//! The spread of ‖δ_first‖/‖δ_last‖ across seeds at finite width, for the activations whose
//! derivative is 1 or a constant slope (relu, leaky_relu, identity), after Hanin & Nica 2018.
//!
//! Going back one layer, δ_{l−1} = D_{l−1}·W_l·δ_l: with one example, W_l·δ_l has n = n_{l−1}
//! iid N(0, σ²_w‖δ_l‖²) entries and D_{l−1} multiplies each by ε ∈ {1, a} (a the slope below 0)
//! with probability ½ each, independently of them. So ‖δ_{l−1}‖²/‖δ_l‖² = χ_l·A/(n·m),
//! A = Σ_i ε_i²·g_i², g_i ~ N(0, 1), m = E[ε²g²] = (1 + a²)/2, and by the delta method
//! ln(A/(n·m)) has mean −κ/(2n) and variance κ/n with κ = Var(ε²g²)/m²
//! = (6·(1 + a⁴) − (1 + a²)²)/(1 + a²)²: 5 for relu (Hanin & Nica's 5·Σ1/n), 2 for identity
//! (the χ²_n of a Gaussian matrix). The layers are independent, so by the central limit
//! theorem ln ratio ~ N(ln(delta_ratio) − S, S) with S = Σ_hidden κ/(4·n): the quartiles are
//! delta_ratio·e^{−S ∓ 0.6745·√S}.

use gradscope_model::{Activation, MlpConfig};

/// The standard normal's upper quartile, Φ⁻¹(0.75).
const Z_QUARTILE: f64 = 0.674_489_750_196_081_7;

/// The narrowest hidden layer the delta method is trusted for.
const MIN_WIDTH: usize = 16;

/// κ of an activation: the variance of ln of one layer's squared gain is κ/n; `None` where no
/// finite-width result is known.
pub fn kappa(a: Activation) -> Option<f64> {
    let slope = match a {
        Activation::Relu => 0.0,
        Activation::LeakyRelu { slope } => slope,
        Activation::Identity => 1.0,
        _ => return None,
    };
    let (a2, a4) = (slope * slope, slope.powi(4));
    Some((6.0 * (1.0 + a4) - (1.0 + a2).powi(2)) / (1.0 + a2).powi(2))
}

/// [q1, q3] of the ratio across seeds for `model` with `batch` examples, whose mean-field
/// ratio is `delta_ratio`; or why none is known.
pub fn ratio_quartiles(
    model: &MlpConfig,
    batch: usize,
    delta_ratio: f64,
) -> Result<[f64; 2], String> {
    if batch != 1 {
        return Err(format!(
            "ratio_quartiles is derived for one example (Hanin & Nica); with a batch of \
             {batch} the examples' masks average and no result is known"
        ));
    }
    let mut s = 0.0;
    for (a, &n) in model.activations.iter().zip(&model.hidden) {
        let Some(k) = kappa(*a) else {
            return Err(format!(
                "ratio_quartiles: no finite-width result is known for {} (only relu, \
                 leaky_relu and identity)",
                a.name()
            ));
        };
        if n < MIN_WIDTH {
            return Err(format!(
                "ratio_quartiles: a hidden layer of {n} units is too narrow for the \
                 large-width result (at least {MIN_WIDTH})"
            ));
        }
        s += k / (4.0 * n as f64);
    }
    let centre = delta_ratio.ln() - s;
    Ok([
        (centre - Z_QUARTILE * s.sqrt()).exp(),
        (centre + Z_QUARTILE * s.sqrt()).exp(),
    ])
}
