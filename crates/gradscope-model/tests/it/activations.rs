//! Each activation, as computed by Burn, against its formula written out in f64: the forward
//! values, and the derivative autodiff takes of them, on both CPU backends (the whole network on
//! every backend, wgpu included, is checked against the oracle in the gradscope crate's tests).

use burn::tensor::{Device, Tensor, activation};
use gradscope_model::activation::gelu_exact;
use gradscope_model::{Activation, HostTensor};

#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray()
}

/// The CPU backends, as autodiff devices.
#[allow(deprecated)]
fn cpu_devices() -> [(&'static str, Device); 2] {
    [
        ("ndarray", Device::ndarray().autodiff()),
        ("flex", Device::flex().autodiff()),
    ]
}

/// Every activation, those with a parameter at a non-default value too. The `match` is
/// exhaustive, so a new variant cannot be left out of these tests.
pub(crate) fn every_activation() -> Vec<Activation> {
    let all = vec![
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.01 },
        Activation::LeakyRelu { slope: 0.2 },
        Activation::Elu { alpha: 1.0 },
        Activation::Elu { alpha: 0.5 },
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
    ];
    for a in &all {
        match a {
            Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Gelu
            | Activation::Silu
            | Activation::Softplus
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Identity => {}
        }
    }
    all
}

/// φ'(x) in f64. At a kink (x = 0 for relu, leaky_relu and elu) the left derivative, the
/// convention of Burn and TensorFlow; the test grid avoids 0 for those anyway.
fn derivative(a: Activation, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Relu => f64::from(u8::from(x > 0.0)),
        Activation::LeakyRelu { slope } => {
            if x > 0.0 {
                1.0
            } else {
                slope
            }
        }
        Activation::Elu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha * x.exp()
            }
        }
        // Φ(x) + x·φ(x).
        Activation::Gelu => {
            0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
                + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        Activation::Silu => sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))),
        Activation::Softplus => sigmoid(x),
        Activation::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
        Activation::Tanh => 1.0 - x.tanh().powi(2),
        Activation::Identity => 1.0,
    }
}

/// The derivative autodiff takes of `f` at each of `xs`, on `device`.
fn autodiff_derivative(
    f: impl Fn(Tensor<1>) -> Tensor<1>,
    xs: &[f32],
    device: &Device,
) -> Vec<f32> {
    let x = Tensor::<1>::from_data(xs, device).require_grad();
    let grads = f(x.clone()).sum().backward();
    let g = x
        .grad(&grads)
        .unwrap_or_else(|| panic!("no gradient for x"));
    HostTensor::from_tensor(g).data
}

/// x from -6 to 6 in steps of 1/16, 0 left out (relu's kink), plus 1/3-offset points.
fn grid() -> Vec<f32> {
    (-96..=96)
        .filter(|&i| i != 0)
        .map(|i| i as f32 / 16.0)
        .chain((-18..18).map(|i| i as f32 / 3.0 + 1.0 / 7.0))
        .collect()
}

#[test]
fn every_activations_derivative_is_exact_on_both_cpu_backends() {
    // Bound: the derivatives are compositions of a handful of f32 operations (exp, erf, tanh,
    // a division), each within a few ulps (u = 6e-8) of exact: 5e-7 absolute on values of order
    // 1 is about 8 ulps. The tanh approximation's derivative that Burn's default gelu_backward
    // computes is off by up to 8.7e-4 (next test), three orders of magnitude above it.
    let xs = grid();
    for (backend, device) in cpu_devices() {
        for a in every_activation() {
            let got = autodiff_derivative(|x| a.forward(x), &xs, &device);
            assert_exact_derivative(backend, a, &xs, &got);
        }
    }
}

/// `got[i]` is φ'(xs[i]) within the bound above.
fn assert_exact_derivative(backend: &str, a: Activation, xs: &[f32], got: &[f32]) {
    for (&x, &g) in xs.iter().zip(got) {
        let want = derivative(a, f64::from(x));
        assert!(
            (f64::from(g) - want).abs() <= 5e-7 * (1.0 + want.abs()),
            "{backend}: {}'({x}) = {g}, exactly {want}",
            a.name()
        );
    }
}

/// The derivative written out from tensor operations (`Activation::derivative`, for a backward
/// pass without autodiff) against the same f64 formula and bound, on both CPU backends.
#[test]
fn every_written_out_derivative_is_exact_on_both_cpu_backends() {
    let xs = grid();
    for (backend, device) in cpu_devices() {
        for a in every_activation() {
            let x = Tensor::<1>::from_data(xs.as_slice(), &device);
            let got = HostTensor::from_tensor(a.derivative(x)).data;
            assert_exact_derivative(backend, a, &xs, &got);
        }
    }
}

#[test]
fn gelu_forward_is_burns_own_on_ndarray() {
    // gelu_exact performs burn-backend's default gelu forward operation by operation, which is
    // what ndarray uses: the values must be bit-identical, so only the backward changed.
    let xs = grid();
    let dev = device();
    let ours = HostTensor::from_tensor(gelu_exact(Tensor::<1>::from_data(xs.as_slice(), &dev)));
    let burns = HostTensor::from_tensor(activation::gelu(Tensor::<1>::from_data(
        xs.as_slice(),
        &dev,
    )));
    assert_eq!(ours.data, burns.data);
}

/// Upstream: Burn 0.22.1's default `gelu_backward` (burn-backend, src/backend/ops/activation.rs)
/// is the derivative of gelu's tanh approximation while the forward is exact. This test shows
/// the seam on ndarray, so that the day Burn fixes it, it fails and `gelu_exact` can go.
#[test]
fn burns_own_gelu_backward_on_ndarray_is_the_tanh_approximation() {
    // d/dx of 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³):
    //   0.5·(1 + tanh u) + 0.5·x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²).
    let tanh_approx = |x: f64| {
        let k = (2.0 / std::f64::consts::PI).sqrt();
        let t = (k * (x + 0.044715 * x.powi(3))).tanh();
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
    };
    let xs = grid();
    let (_, device) = &cpu_devices()[0];
    let got = autodiff_derivative(activation::gelu, &xs, device);
    let mut gap = 0.0f64;
    for (&x, &g) in xs.iter().zip(&got) {
        let x64 = f64::from(x);
        assert!(
            (f64::from(g) - tanh_approx(x64)).abs() <= 1e-5,
            "Burn's gelu backward at {x}: {g}, tanh approximation's derivative {}",
            tanh_approx(x64)
        );
        gap = gap.max((f64::from(g) - derivative(Activation::Gelu, x64)).abs());
    }
    assert!(
        gap > 5e-4,
        "Burn's own gelu backward is now within {gap:e} of the exact derivative: fixed upstream?"
    );
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
        Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
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
    for a in every_activation() {
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

/// Upstream: Burn 0.22.1's `activation::elu` (burn-tensor, src/tensor/activation/base.rs)
/// evaluates α·(eˣ − 1) on every element before keeping x where x > 0, so at x = 100 (e¹⁰⁰
/// overflows f32) autodiff carries 0·∞ = NaN back from the discarded branch, where the
/// derivative is 1. gradscope's `activation::elu` evaluates eˣ on min(x, 0): its derivative is
/// 1 there and its forward is Burn's, bit for bit, on the grid and at 100. The day Burn caps
/// the branch, the first assertion fails and the workaround can go.
#[test]
fn burns_own_elu_backward_is_nan_past_exp_overflow() {
    let (_, device) = &cpu_devices()[0];
    let burns = autodiff_derivative(|x| activation::elu(x, 1.0), &[100.0, 1.0, -1.0], device);
    assert!(
        burns[0].is_nan(),
        "Burn's elu backward at 100: {}",
        burns[0]
    );
    let ours = autodiff_derivative(
        |x| gradscope_model::activation::elu(x, 1.0),
        &[100.0, 1.0, -1.0],
        device,
    );
    // 1 where x > 0; e^−1 = 0.36787944 for x = −1 (α = 1).
    assert_eq!(ours[..2], [1.0, 1.0]);
    assert!(
        (f64::from(ours[2]) - (-1f64).exp()).abs() < 1e-7,
        "{}",
        ours[2]
    );
    let mut xs = grid();
    xs.push(100.0);
    let dev = device.clone();
    let a = HostTensor::from_tensor(gradscope_model::activation::elu(
        Tensor::<1>::from_data(xs.as_slice(), &dev),
        1.0,
    ));
    let b = HostTensor::from_tensor(activation::elu(
        Tensor::<1>::from_data(xs.as_slice(), &dev),
        1.0,
    ));
    assert_eq!(a.data, b.data, "the forward is Burn's, bit for bit");
}

/// The f64 forms the theory and the teacher use (`apply_f64`, `derivative_f64`,
/// `second_derivative_f64`) against this file's own formulas, and φ'' against a central
/// difference of the test's φ' (step 1e-5: truncation error ~1e-10·|φ''''|, rounding
/// ~1e-16/1e-5 = 1e-11, so 1e-7 is far above both and far below any wrong formula).
#[test]
fn the_f64_forms_match_the_formulas() {
    for a in every_activation() {
        for x in grid() {
            let x = f64::from(x);
            let (value, slope) = (formula(a, x), derivative(a, x));
            assert!(
                (a.apply_f64(x) - value).abs() <= 1e-14 * (1.0 + value.abs()),
                "{}({x}): apply_f64 {} against {value}",
                a.name(),
                a.apply_f64(x)
            );
            assert!(
                (a.derivative_f64(x) - slope).abs() <= 1e-14 * (1.0 + slope.abs()),
                "{}'({x}): derivative_f64 {} against {slope}",
                a.name(),
                a.derivative_f64(x)
            );
            let h = 1e-5;
            let curvature = (derivative(a, x + h) - derivative(a, x - h)) / (2.0 * h);
            assert!(
                (a.second_derivative_f64(x) - curvature).abs() <= 1e-7 * (1.0 + curvature.abs()),
                "{}''({x}): second_derivative_f64 {} against the difference {curvature}",
                a.name(),
                a.second_derivative_f64(x)
            );
        }
    }
}

/// The slice form the teacher takes (`apply_f64_to_f32s`, the match outside the loop) gives
/// each value `apply_f64(f64::from(v)) as f32` bit for bit, on the grid and on the values
/// where the forms could part: ±0, ±inf, NaN, the smallest subnormal and f32's extremes;
/// on 37 values, so that a vector loop's remainder is covered too.
#[test]
fn the_slice_form_is_the_value_form_bit_for_bit() {
    let specials = [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MAX,
        f32::MIN,
    ];
    let values: Vec<f32> = grid().into_iter().chain(specials).collect();
    for a in every_activation() {
        for part in [&values[..], &values[..37]] {
            let mut got = part.to_vec();
            a.apply_f64_to_f32s(&mut got);
            for (&x, g) in part.iter().zip(&got) {
                let want = a.apply_f64(f64::from(x)) as f32;
                assert_eq!(g.to_bits(), want.to_bits(), "{}({x})", a.name());
            }
        }
    }
}

/// relu's written-out backward (`Activation::backward`: Burn's `relu_backward` on flex, one
/// pass over host memory on ndarray) against its rule computed here value by value, bit for
/// bit: +0 where x ≤ 0 (−0 included), the gradient where x > 0 or x is NaN, so an infinite or
/// NaN gradient meets a dead unit as +0. On both CPU backends (plain devices, as a training
/// step runs), row-major and through a transposed view (ndarray's own path then).
#[test]
#[allow(deprecated)]
fn relus_written_out_backward_is_the_mask_rule_bit_for_bit() {
    let specials = [
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,
        -1e-45,
    ];
    let mut xs = specials.to_vec();
    xs.extend(grid());
    xs.truncate(xs.len() / 4 * 4);
    let n = xs.len();
    let gs: Vec<f32> = (0..n)
        .map(|i| match i % 5 {
            0 => f32::INFINITY,
            1 => f32::NAN,
            2 => -0.0,
            _ => (i as f32 - 100.0) / 7.0,
        })
        .collect();
    let rule = |x: f32, g: f32| if x <= 0.0 { 0.0f32 } else { g };
    for (backend, device) in [("ndarray", Device::ndarray()), ("flex", Device::flex())] {
        let x = Tensor::<1>::from_data(xs.as_slice(), &device).reshape([n / 4, 4]);
        let g = Tensor::<1>::from_data(gs.as_slice(), &device).reshape([n / 4, 4]);
        for transposed in [false, true] {
            let (xt, gt) = if transposed {
                (x.clone().transpose(), g.clone().transpose())
            } else {
                (x.clone(), g.clone())
            };
            let want: Vec<u32> = HostTensor::from_tensor(xt.clone())
                .data
                .iter()
                .zip(&HostTensor::from_tensor(gt.clone()).data)
                .map(|(&x, &g)| rule(x, g).to_bits())
                .collect();
            let got: Vec<u32> = HostTensor::from_tensor(Activation::Relu.backward(xt, gt))
                .data
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(want.len(), n);
            assert!(
                got == want,
                "{backend}, transposed {transposed}: relu's backward differs"
            );
        }
    }
}
