//! 16-bit tensors on flex (and wgpu where the adapter has shaderFloat16): the host's rounding at
//! the edges of f16's range, every activation and the elementwise operations the engine uses bit
//! for bit against the f32 operation rounded to nearest even (what flex's 16-bit kernels are:
//! compute in f32, round once), and the matrix product within a bound of an
//! f32-accumulate-then-round reference.

use burn::tensor::{Device, FloatDType, Tensor, bf16, f16};
use gradscope_model::{Activation, HostTensor};

use crate::activations::every_activation;

/// Round `v` to `dtype` and back to f32 (correctly: `from_f32`), the reference rounding.
fn round(v: f32, dtype: FloatDType) -> f32 {
    match dtype {
        FloatDType::F16 => f16::from_f32(v).to_f32(),
        FloatDType::BF16 => bf16::from_f32(v).to_f32(),
        _ => v,
    }
}

/// `n` values spread over many binades, both signs, zeros and the edges of f16's range
/// included, each already representable in `dtype`.
fn values(n: usize, dtype: FloatDType) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n)
        .map(|i| {
            // A fixed, deterministic spread: magnitudes 2⁻¹⁶ to 2¹⁵, mantissas varying.
            let e = (i % 32) as i32 - 16;
            let m = 1.0 + ((i * 2654435761) % 1024) as f32 / 1024.0;
            let s = if i % 3 == 0 { -1.0 } else { 1.0 };
            round(s * m * 2f32.powi(e), dtype)
        })
        .collect();
    v.extend([
        0.0,
        -0.0,
        1.0,
        -1.0,
        65504.0,
        -65504.0,
        6.1035156e-5,
        5.9604645e-8,
    ]);
    v.into_iter().map(|x| round(x, dtype)).collect()
}

/// An elementwise operation of one or two tensors (the second ignored by unary ones).
type Binary = fn(Tensor<1>, Tensor<1>) -> Tensor<1>;

fn read(t: Tensor<1>) -> Vec<f32> {
    HostTensor::from_tensor(t).data
}

/// The bit patterns of `v`, NaNs made one pattern (an f32 NaN's payload is not the point).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| {
            if x.is_nan() {
                f32::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}

/// The edges, from IEEE 754's binary16 (max finite 65504 = (2 − 2⁻¹⁰)·2¹⁵; halfway to the next
/// binade step, 65520, rounds to inf; 2⁻²⁵ is half the smallest subnormal 2⁻²⁴ and ties to
/// even, 0), as the host rounds them onto the device and reads them back.
#[test]
#[allow(deprecated)]
fn f16_edges_round_as_ieee_says_through_the_device() {
    let host = HostTensor::new(
        vec![6],
        vec![
            65504.0,
            65519.0,
            65520.0,
            2f32.powi(-25),
            2f32.powi(-24),
            1.0 + 2f32.powi(-11),
        ],
    );
    let t: Tensor<1> = host.to_device_as(&Device::flex(), FloatDType::F16);
    assert_eq!(t.dtype(), burn::tensor::DType::F16);
    let back = read(t);
    // 65519 rounds down to 65504; 1 + 2⁻¹¹ is a tie between 1 and 1 + 2⁻¹⁰: even, 1.
    assert_eq!(
        back,
        [65504.0, 65504.0, f32::INFINITY, 0.0, 2f32.powi(-24), 1.0]
    );
    // bf16 keeps f32's range: 65520 is finite there (bf16 spacing at 2¹⁵ is 2⁸: 65536).
    let t: Tensor<1> = host.to_device_as(&Device::flex(), FloatDType::BF16);
    assert_eq!(read(t)[2], 65536.0);
}

/// The 16-bit devices of this machine: flex always; wgpu's default adapter where it has
/// shaderFloat16 (lavapipe does; where wgpu cannot open one the test says so and skips it).
#[allow(deprecated)]
fn devices(dtype: FloatDType) -> Vec<(&'static str, Device)> {
    let mut all = vec![("flex", Device::flex())];
    if dtype == FloatDType::F16 {
        let wgpu = std::panic::catch_unwind(|| Device::wgpu_options().init().ok())
            .ok()
            .flatten();
        match wgpu {
            Some(d) if d.supports_dtype(FloatDType::F16) => all.push(("wgpu", d)),
            Some(_) => eprintln!("skipping wgpu f16: this adapter has no shaderFloat16"),
            None if std::env::var_os("CI").is_some() => panic!("CI: no wgpu adapter"),
            None => eprintln!("skipping wgpu f16: no wgpu adapter"),
        }
    }
    all
}

/// Every single-operation activation and the elementwise primitives the engine's activations
/// are built of, on flex in f16 and bf16, against the same operation on the same
/// (16-bit-exact) values in f32, rounded once: bit for bit, infinities and zeros' signs
/// included. (The composite activations, elu, gelu, silu and softplus, round after each of
/// their steps instead: see the next test.)
#[test]
#[allow(deprecated)]
fn flex_16_bit_elementwise_is_the_f32_operation_rounded_once() {
    let flex = Device::flex();
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        let x = values(512, dtype);
        let y: Vec<f32> = x.iter().rev().copied().collect();
        let on =
            |v: &[f32], dt| HostTensor::new(vec![v.len()], v.to_vec()).to_device_as::<1>(&flex, dt);
        let rounded = |t: Tensor<1>| {
            read(t)
                .into_iter()
                .map(|v| round(v, dtype))
                .collect::<Vec<_>>()
        };
        let single = every_activation().into_iter().filter(|a| {
            !matches!(
                a,
                Activation::Elu { .. } | Activation::Gelu | Activation::Silu | Activation::Softplus
            )
        });
        for a in single {
            let want = rounded(a.forward(on(&x, FloatDType::F32)));
            let got = read(a.forward(on(&x, dtype)));
            assert_eq!(bits(&got), bits(&want), "{} in {dtype:?}", a.name());
        }
        let ops: [(&str, Binary); 9] = [
            ("x + y", |a, b| a + b),
            ("x·y", |a, b| a * b),
            ("x / y", |a, b| a / b),
            ("x·2", |a, _| a.mul_scalar(2.0)),
            ("x − 1", |a, _| a.sub_scalar(1.0)),
            ("exp", |a, _| a.exp()),
            ("log |x|", |a, _| a.abs().log()),
            ("erf", |a, _| a.erf()),
            ("sqrt |x|", |a, _| a.abs().sqrt()),
        ];
        for (name, op) in ops {
            let want = rounded(op(on(&x, FloatDType::F32), on(&y, FloatDType::F32)));
            let got = read(op(on(&x, dtype), on(&y, dtype)));
            assert_eq!(bits(&got), bits(&want), "{name} in {dtype:?}");
        }
    }
}

/// A composite activation rounds after each step, so it is not its f32 value rounded once.
/// elu(x) = α·(eˣ − 1) at x = −2⁻¹²: e^(−2⁻¹²) = 1 − 2⁻¹² + … rounds in f16 (spacing 2⁻¹¹
/// below 1) to 1, and 1 − 1 = 0, where f32 gives −2.4411e−4 (expm1 would keep it). A user
/// reading a 16-bit elu's zeros near 0⁻ should know they are this cancellation.
#[test]
#[allow(deprecated)]
fn a_16_bit_elu_cancels_to_zero_just_below_zero() {
    let flex = Device::flex();
    let x = -(2f32.powi(-12));
    let elu = Activation::Elu { alpha: 1.0 };
    let at =
        |dt| read(elu.forward(HostTensor::new(vec![1], vec![x]).to_device_as::<1>(&flex, dt)))[0];
    assert_eq!(at(FloatDType::F16), 0.0);
    // In f32 the cancellation costs the rounding of eˣ only, 2⁻²⁴ at most (1 − eˣ is exact,
    // Sterbenz): within that of expm1.
    let f32_value = at(FloatDType::F32);
    let err = (f64::from(f32_value) - f64::from(x).exp_m1()).abs();
    assert!(f32_value < 0.0 && err <= 2f64.powi(-24), "{f32_value}");
}

/// x·W in f16 and bf16 on flex (and f16 on wgpu) against the product of the same values in f32
/// (exact products, f32 sums) rounded once. flex's bf16 goes through f32, so it must agree to
/// the rounding of the f32 sum, 1 unit in the last place of bf16 at most (the f32 sums of the
/// two may differ in order). gemm-f16 accumulates in f32 within blocks of at least 512 along k,
/// so at k = 64 also 1 unit; wgpu accumulates in f16 itself: each of the k additions rounds to
/// f16, a relative error up to k·u = 64·2⁻¹¹ = 1/32 of Σ|x||w| (Higham's bound γ_k).
#[test]
fn a_16_bit_matrix_product_is_within_its_bound_of_the_f32_product_rounded() {
    let (m, k, n) = (8, 64, 16);
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        let x: Vec<f32> = values(m * k, dtype)[..m * k]
            .iter()
            .map(|v| round(v.clamp(-4.0, 4.0), dtype))
            .collect();
        let w: Vec<f32> = values(k * n + 7, dtype)[7..7 + k * n]
            .iter()
            .map(|v| round(v.clamp(-2.0, 2.0) * 0.125, dtype))
            .collect();
        // The reference on the host: f64 sums of exact products (no rounding), then the
        // precision's rounding via f32 (24 ≥ 2·11 + 2 bits, so f64 → f32 → f16 is correct).
        let mut exact = vec![0f64; m * n];
        let mut abs = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let t = f64::from(x[i * k + p]) * f64::from(w[p * n + j]);
                    exact[i * n + j] += t;
                    abs[i * n + j] += t.abs();
                }
            }
        }
        for (name, device) in devices(dtype) {
            let xt: Tensor<2> = HostTensor::new(vec![m, k], x.clone()).to_device_as(&device, dtype);
            let wt: Tensor<2> = HostTensor::new(vec![k, n], w.clone()).to_device_as(&device, dtype);
            let got = HostTensor::from_tensor(xt.matmul(wt)).data;
            let u = 2f64.powi(-(if dtype == FloatDType::F16 { 11 } else { 8 }));
            for (idx, (&g, (&e, &a))) in got.iter().zip(exact.iter().zip(&abs)).enumerate() {
                let r = f64::from(round(e as f32, dtype));
                let bound = if name == "wgpu" {
                    k as f64 * u * a + r.abs() * u
                } else {
                    // One unit in the last place at |r| (2u relative), and the f32 sums' own
                    // difference, k·2⁻²⁴ of Σ|x||w|.
                    2.0 * u * r.abs().max(2f64.powi(-24)) + k as f64 * 2f64.powi(-24) * a
                };
                assert!(
                    (f64::from(g) - r).abs() <= bound,
                    "{name} {dtype:?} [{idx}]: {g} against {r} (bound {bound:e})"
                );
            }
        }
    }
}
