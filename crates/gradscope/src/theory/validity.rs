//! When mean-field theory does not describe a run, and the limits of what it says, as one
//! sentence each for the report's `caveats`.

use gradscope_model::{Initializer, MlpConfig};

use crate::config::Loss;

/// E[w] of a tensor drawn by `init` with `gain` (the gain scales a constant and a uniform's
/// bounds, a normal's std only: as `second_moment` has it).
pub fn mean(init: Initializer, gain: f64) -> f64 {
    match init {
        Initializer::Constant { value } => gain * value,
        Initializer::Normal { mean, .. } | Initializer::TruncatedNormal { mean, .. } => mean,
        Initializer::Uniform { low, high } => gain * (low + high) / 2.0,
        Initializer::Zeros
        | Initializer::GlorotUniform
        | Initializer::GlorotNormal
        | Initializer::HeUniform
        | Initializer::HeNormal
        | Initializer::LecunUniform
        | Initializer::LecunNormal
        | Initializer::BurnDefault => 0.0,
    }
}

/// Why the prediction does not describe a run of `model` on `loss` (empty: it does).
pub fn caveats(model: &MlpConfig, loss: &Loss) -> Vec<String> {
    let mut out = Vec::new();
    let parts = [
        ("kernels", model.kernel_init, true),
        ("biases", model.bias_init, model.bias),
    ];
    for (what, init, used) in parts {
        let m = mean(init, model.gain);
        if used && m != 0.0 {
            out.push(format!(
                "the {what} are drawn with mean {m} (not 0): mean-field theory assumes \
                 zero-mean weights and biases, so its q, chi and ratio do not describe this \
                 network"
            ));
        }
    }
    let gradient = match loss {
        Loss::SumSquares | Loss::MeanSquares => Some("2·z_L".to_string()),
        Loss::Mse { target } => Some(format!("2·(z_L − {target})")),
        Loss::Sum | Loss::Mean | Loss::CrossEntropy | Loss::CrossEntropyNaive => None,
    };
    if let (Some(g), true) = (gradient, model.d_output > 1) {
        out.push(format!(
            "the loss's gradient δ_L ∝ {g} depends on the output, and with {} outputs it is \
             correlated with the backward pass: the independence the χ recursion assumes \
             fails, and the measured ratio can be several times delta_ratio (with one output it \
             cancels; loss sum or mean has a constant δ_L)",
            model.d_output
        ));
    }
    out
}

/// Σ 1/n over the hidden layers above which the finite-width caveat is given.
const WIDE: f64 = 0.1;

/// The finite-width caveat for hidden layers of `widths`, if they are not wide for their depth.
pub fn finite_width(widths: &[usize]) -> Option<String> {
    let sum: f64 = widths.iter().map(|&n| 1.0 / n as f64).sum();
    (sum > WIDE).then(|| {
        format!(
            "finite width: Σ 1/n over the hidden layers is {sum:.3}; delta_ratio is the \
             infinite-width value, and one network's ratio varies across seeds by more as this \
             grows (Hanin & Nica 2018; ratio_quartiles where known)"
        )
    })
}
