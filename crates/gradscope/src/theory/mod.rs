//! Mean-field theory next to the measurement: from the config alone, in f64, the forward
//! variance q_l of each layer's pre-activations and the backward gain χ_l of each layer, the
//! fixed point of the hidden layers' map with its phase and depth scales, the finite-width
//! spread where one is known, and whether any of it applies to the run.
//!
//! For an MLP with weights drawn iid with second moment σ²_{w,l} and biases with σ²_{b,l}
//! (Poole et al. 2016, Schoenholz et al. 2017):
//!
//! - q_0 = n_in·σ²_{w,0}·E[x²] + σ²_{b,0}, from the input's second moment;
//! - q_l = n_{l−1}·σ²_{w,l}·E_{z~N(0,q_{l−1})}[φ(z)²] + σ²_{b,l};
//! - χ_l = n_{l−1}·σ²_{w,l}·E_{z~N(0,q_{l−1})}[φ'(z)²], so that ‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖²;
//! - the predicted ‖δ_first‖/‖δ_last‖ = √(Π χ_l).
//!
//! The phase is the literature's: from χ₁ at the fixed point q* of the hidden layers' map
//! (`fixed_point`), whatever the depth. `validity` says when the prediction does not describe
//! the run (non-zero-mean weights, a loss whose gradient depends on the output); `spread` gives
//! the interquartile range across seeds at finite width (Hanin & Nica 2018).

mod fixed_point;
mod moments;
mod range;
mod spread;
mod validity;

pub use fixed_point::HiddenMap;
pub use moments::{gauss_hermite, input_second_moment, moments, second_moment};
pub use range::{RangePrediction, predict_range};

use gradscope_model::{Fans, Initializer, MlpConfig};
pub use gradscope_report::{CRITICAL_BAND, DepthScales, Phase, Theory};

use crate::config::{InputCase, Loss};

/// One layer's parameters as theory sees them: its fan-in n and the second moments of its
/// kernel and bias.
#[derive(Debug, Clone, Copy)]
struct LayerVariance {
    n: f64,
    sw: f64,
    sb: f64,
}

/// Each layer's (n, σ²_w, σ²_b), input side first.
fn layer_variances(model: &MlpConfig) -> Vec<LayerVariance> {
    model
        .widths()
        .windows(2)
        .map(|w| {
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
            LayerVariance {
                n: w[0] as f64,
                sw,
                sb,
            }
        })
        .collect()
}

/// The finite-depth recursion: q_l for every layer and χ_l for every layer but the first.
fn finite_depth(model: &MlpConfig, layers: &[LayerVariance], x2: f64) -> (Vec<f64>, Vec<f64>) {
    let mut q = Vec::with_capacity(layers.len());
    let mut chi = Vec::with_capacity(layers.len().saturating_sub(1));
    for (l, v) in layers.iter().enumerate() {
        let ql = match l {
            0 => v.n * v.sw * x2 + v.sb,
            _ => {
                let (phi2, dphi2) = moments(model.activations[l - 1], q[l - 1]);
                chi.push(v.n * v.sw * dphi2);
                v.n * v.sw * phi2 + v.sb
            }
        };
        q.push(ql);
    }
    (q, chi)
}

/// The mean-field prediction for input case `case` of a network `model` trained on `loss`.
pub fn predict(model: &MlpConfig, loss: &Loss, case: &InputCase) -> Theory {
    let layers = layer_variances(model);
    let (q, chi) = finite_depth(model, &layers, input_second_moment(case));
    let delta_ratio = (0.5 * chi.iter().map(|c| c.ln()).sum::<f64>()).exp();
    let mut caveats = validity::caveats(model, loss);
    let applies = caveats.is_empty();
    let fixed = match HiddenMap::of(model, &layers) {
        Ok(map) => Some(fixed_point::solve(&map, q.first().copied().unwrap_or(0.0))),
        Err(why) => {
            caveats.push(why);
            None
        }
    };
    if let Some(f) = fixed.as_ref().filter(|f| !f.converged) {
        caveats.push(format!(
            "q did not settle within {} layers of the hidden map (last q {:e}); q_star and \
             what follows from it are that last value's",
            fixed_point::MAX_ITERATIONS,
            f.q_star
        ));
    }
    caveats.extend(validity::finite_width(&model.hidden));
    let ratio_quartiles = match applies {
        true => spread::ratio_quartiles(model, case.batch, delta_ratio)
            .map_err(|why| caveats.push(why))
            .ok(),
        false => None,
    };
    Theory {
        q,
        chi,
        delta_ratio,
        phase: fixed.as_ref().and_then(|f| Phase::of(f.chi_star)),
        q_star: fixed.as_ref().map(|f| f.q_star),
        chi_star: fixed.as_ref().map(|f| f.chi_star),
        depth_scales: fixed.as_ref().map(|f| DepthScales {
            xi_q: f.xi_q,
            xi_c: f.xi_c,
        }),
        hidden_rate: fixed.as_ref().map(|f| f.chi_star.sqrt()),
        ratio_quartiles,
        applies,
        caveats,
        range: Vec::new(),
        leaves_range: None,
        range_unknown_from: None,
    }
}

#[cfg(test)]
mod tests;
