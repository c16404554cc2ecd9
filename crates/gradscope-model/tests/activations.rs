//! Each activation, as computed by Burn, against its formula written out in f64.

use burn::tensor::{Device, Tensor};
use gradscope_model::{Activation, HostTensor};

#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray()
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), enough against f32.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn formula(a: Activation, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu { slope } => {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        }
        Activation::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha * (x.exp() - 1.0)
            }
        }
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Silu => x * sigmoid(x),
        Activation::Softplus => x.exp().ln_1p(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Identity => x,
    }
}

#[test]
fn every_activation_matches_its_formula() {
    let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.125).collect();
    let dev = device();
    for a in [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Elu { alpha: 0.7 },
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
    ] {
        let x = Tensor::<1>::from_data(xs.as_slice(), &dev);
        let got = HostTensor::from_tensor(a.forward(x)).data;
        for (&x, &g) in xs.iter().zip(&got) {
            let want = formula(a, f64::from(x));
            let tol = 2e-6 * (1.0 + want.abs());
            assert!(
                (f64::from(g) - want).abs() <= tol,
                "{}({x}) = {g}, formula gives {want}",
                a.name()
            );
        }
    }
}
