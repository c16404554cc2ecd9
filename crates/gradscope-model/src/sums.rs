//! The few numbers the host reads of tensors it leaves on the device: Σx², max |x|, the count
//! of columns that are 0 in every row, Σ(a − b)², and where asked the values themselves, all
//! in one read ([`read`]).
//!
//! On the CPU backends (flex, ndarray) a tensor's values already sit in host memory, so the
//! sums are taken there, in place, in one pass per tensor, in f64: no tensor operation, no
//! allocation, no copy. Everywhere else (wgpu, other dtypes, a strided view) they are tensor
//! operations on the device in the tensor's type, concatenated and read back once.
//!
//! The host functions ([`squares`], [`change_squares`], [`max_abs`], [`zero_columns`]) are also
//! what a training step's host checks use on values read back ([`squares`] in a fixed order of
//! sixteen lanes, not left to right), so that on a CPU backend the sums a step reads and the
//! norms its host checks compute are the same numbers bit for bit.

// burn-ndarray is deprecated in Burn 0.22, but gradscope still offers it (see dense.rs).
#![allow(deprecated)]

use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{BackendTensor, DispatchTensor, DispatchTensorKind};
use burn::tensor::{DType, Tensor};

/// One thing to read of a tensor.
#[derive(Clone, Copy)]
pub enum Sum<'a, const D: usize> {
    /// Σx², one value.
    Squares(&'a Tensor<D>),
    /// max |x|, one value.
    MaxAbs(&'a Tensor<D>),
    /// The number of columns (last dimension) that are 0 in every row (the dimension before),
    /// counted over the leading dimensions: a layer's dead units. One value.
    ZeroColumns(&'a Tensor<D>),
    /// Σ(a − b)² of two tensors of one shape (a parameter's change), one value.
    ChangeSquares(&'a Tensor<D>, &'a Tensor<D>),
    /// Every value, in row-major order.
    Values(&'a Tensor<D>),
}

/// The lanes of [`squares`] and [`change_squares`]: value `i` is added to lane `i mod LANES`,
/// and the lanes are summed pairwise at the end.
const LANES: usize = 16;

/// The lanes' sum, pairwise: (l0 + l1) + (l2 + l3), and so on up the tree.
#[inline(always)]
fn tree(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] = lanes[2 * i] + lanes[2 * i + 1];
        }
    }
    lanes[0]
}

/// Σ f64(x)² over `x` in [`LANES`] lanes, portably: value `i` widened, squared and added to
/// lane `i mod 16`. The reference [`squares`] must match bit for bit.
fn squares_in_lanes(x: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let v = f64::from(v);
            *lane += v * v;
        }
    }
    squares_rest(lanes, rest)
}

/// The values past the last whole chunk added to their lanes, then the lanes' [`tree`].
#[inline(always)]
fn squares_rest(mut lanes: [f64; LANES], rest: &[f32]) -> f64 {
    for (lane, &v) in lanes.iter_mut().zip(rest) {
        let v = f64::from(v);
        *lane += v * v;
    }
    tree(lanes)
}

/// Σ (f64(a) − f64(b))² in [`LANES`] lanes, portably (see [`squares_in_lanes`]).
fn change_in_lanes(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for ((lane, &va), &vb) in lanes.iter_mut().zip(xa).zip(xb) {
            let d = f64::from(va) - f64::from(vb);
            *lane += d * d;
        }
    }
    change_rest(lanes, ra, rb)
}

/// [`squares_rest`] for [`change_squares`].
#[inline(always)]
fn change_rest(mut lanes: [f64; LANES], ra: &[f32], rb: &[f32]) -> f64 {
    for ((lane, &va), &vb) in lanes.iter_mut().zip(ra).zip(rb) {
        let d = f64::from(va) - f64::from(vb);
        *lane += d * d;
    }
    tree(lanes)
}

/// max |x| in [`LANES`] lanes, portably (a NaN is passed over; 0 for no values).
fn max_abs_in_lanes(x: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let a = v.abs();
            *lane = if a > *lane { a } else { *lane };
        }
    }
    max_abs_rest(lanes, rest)
}

/// [`squares_rest`] for [`max_abs`].
#[inline(always)]
fn max_abs_rest(mut lanes: [f32; LANES], rest: &[f32]) -> f32 {
    for (lane, &v) in lanes.iter_mut().zip(rest) {
        let a = v.abs();
        *lane = if a > *lane { a } else { *lane };
    }
    lanes
        .into_iter()
        .fold(0.0, |m, a| if a > m { a } else { m })
}

/// The whole chunks of the lane functions in AVX-512 registers: lanes 0–7 and 8–15 as two
/// vectors of f64 (one of f32 for max |x|), each lane the same f64 operations in the same
/// order as the portable loops (no fused multiply-add), so the same bits. Written out because
/// the compiler's own vectorising of the portable loops depends on how the crate is split
/// into codegen units: in the release build it came out in 2-wide registers with shuffles,
/// three times slower than this.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// Values 0–7 and 8–15 of `chunk` widened to f64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn widened(chunk: &[f32]) -> (__m512d, __m512d) {
        assert!(chunk.len() >= LANES);
        // SAFETY: 16 f32 are in bounds (asserted); the loads are unaligned loads.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_ps(chunk.as_ptr()),
                _mm256_loadu_ps(chunk.as_ptr().add(8)),
            )
        };
        (_mm512_cvtps_pd(lo), _mm512_cvtps_pd(hi))
    }

    /// The lanes as an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn lanes(lo: __m512d, hi: __m512d) -> [f64; LANES] {
        let mut out = [0f64; LANES];
        // SAFETY: `out` holds 16 f64; unaligned stores.
        unsafe {
            _mm512_storeu_pd(out.as_mut_ptr(), lo);
            _mm512_storeu_pd(out.as_mut_ptr().add(8), hi);
        }
        out
    }

    /// Only where the CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) fn squares(x: &[f32]) -> f64 {
        let (mut lo, mut hi) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            let (a, b) = widened(c);
            lo = _mm512_add_pd(lo, _mm512_mul_pd(a, a));
            hi = _mm512_add_pd(hi, _mm512_mul_pd(b, b));
        }
        super::squares_rest(lanes(lo, hi), rest)
    }

    /// Only where the CPU has AVX-512F; `a` and `b` of one length.
    #[target_feature(enable = "avx512f")]
    pub(super) fn change(a: &[f32], b: &[f32]) -> f64 {
        let (mut lo, mut hi) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (xa, xb) in ca.zip(cb) {
            let ((a0, a1), (b0, b1)) = (widened(xa), widened(xb));
            let (d0, d1) = (_mm512_sub_pd(a0, b0), _mm512_sub_pd(a1, b1));
            lo = _mm512_add_pd(lo, _mm512_mul_pd(d0, d0));
            hi = _mm512_add_pd(hi, _mm512_mul_pd(d1, d1));
        }
        super::change_rest(lanes(lo, hi), ra, rb)
    }

    /// Only where the CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) fn max_abs(x: &[f32]) -> f32 {
        let mut m = _mm512_setzero_ps();
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            // SAFETY: a chunk holds 16 f32; an unaligned load.
            let v = _mm512_abs_ps(unsafe { _mm512_loadu_ps(c.as_ptr()) });
            // MAXPS gives its first operand where it is greater, else its second (a NaN
            // included): the portable `if a > lane { a } else { lane }`.
            m = _mm512_max_ps(v, m);
        }
        let mut out = [0f32; LANES];
        // SAFETY: `out` holds 16 f32; an unaligned store.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), m) };
        super::max_abs_rest(out, rest)
    }
}

/// Whether the lane functions may use [`avx512`].
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Σx² in f64, each value widened and squared in f64, added in [`LANES`] lanes (value `i` to
/// lane `i mod 16`), the lanes summed pairwise. NaN where a value is NaN, inf where one is
/// ±inf (no f32 value's square overflows f64, nor a sum of fewer than 2^900 of them).
#[allow(unsafe_code)]
pub fn squares(x: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { avx512::squares(x) };
    }
    squares_in_lanes(x)
}

/// Σ(a − b)² in f64 over the pairs of `a` and `b` (the shorter's length), in the lanes of
/// [`squares`].
#[allow(unsafe_code)]
pub fn change_squares(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { avx512::change(a, b) };
    }
    change_in_lanes(a, b)
}

/// max |x| (NaNs passed over; 0 for no values).
#[allow(unsafe_code)]
pub fn max_abs(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { avx512::max_abs(x) };
    }
    max_abs_in_lanes(x)
}

/// The number of columns of `x` (`[.., rows, cols]`, row-major) that are 0 in every row,
/// counted over the leading dimensions.
pub fn zero_columns(x: &[f32], rows: usize, cols: usize) -> usize {
    let (rows, cols) = (rows.max(1), cols.max(1));
    // Bytes, not bools: `|=` of a comparison into bytes compiles to vector compares.
    let mut alive = vec![0u8; cols];
    x.chunks(rows * cols)
        .map(|matrix| {
            alive.fill(0);
            for row in matrix.chunks(cols) {
                for (alive, v) in alive.iter_mut().zip(row) {
                    *alive |= u8::from(*v != 0.0);
                }
            }
            alive.iter().filter(|a| **a == 0).count()
        })
        .sum()
}

/// What [`read`] gives for `parts`, in order: one value per part, the values of a
/// [`Sum::Values`].
///
/// One read: on flex and ndarray, for f32 tensors laid out row-major, the host functions
/// above on the values in place; otherwise each part a tensor operation in the tensor's type
/// (Σx² and Σ(a − b)² as `square().sum()`, max |x| as `abs().max()`, the zero columns as
/// `abs().max_dim(D − 2).equal_elem(0)` counted), concatenated and read back in one go.
pub fn read<const D: usize>(parts: &[Sum<'_, D>]) -> Vec<f64> {
    host_read(parts).unwrap_or_else(|| device_read(parts))
}

/// [`read`] as tensor operations on the device, one read back: what every backend gives,
/// and what [`read`] gives where the values are not in host memory.
pub fn device_read<const D: usize>(parts: &[Sum<'_, D>]) -> Vec<f64> {
    let pieces: Vec<Tensor<1>> = parts
        .iter()
        .map(|p| match *p {
            Sum::Squares(t) => t.clone().square().sum(),
            Sum::MaxAbs(t) => t.clone().abs().max(),
            Sum::ZeroColumns(t) => t
                .clone()
                .abs()
                .max_dim(D.saturating_sub(2))
                .equal_elem(0.0)
                .float()
                .sum(),
            Sum::ChangeSquares(a, b) => a.clone().sub(b.clone()).square().sum(),
            Sum::Values(t) => t.clone().flatten::<1>(0, D - 1),
        })
        .collect();
    if pieces.is_empty() {
        return Vec::new();
    }
    let values = Tensor::cat(pieces, 0).into_data();
    values
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap_or_default()
}

/// A tensor's values where they sit in host memory: an f32 flex or ndarray tensor laid out
/// row-major.
pub(crate) fn host_values(t: &DispatchTensor) -> Option<&[f32]> {
    match &t.kind {
        DispatchTensorKind::Flex(BackendTensor::Float(f)) => {
            let layout = f.layout();
            if f.dtype() != DType::F32 || !layout.is_contiguous() {
                return None;
            }
            let start = layout.start_offset();
            f.storage::<f32>()
                .get(start..start.checked_add(layout.num_elements())?)
        }
        DispatchTensorKind::NdArray(BackendTensor::Float(NdArrayTensor::F32(s))) => {
            // A view of `s`'s own buffer, which lives as long as `s`.
            s.view().to_slice()
        }
        _ => None,
    }
}

/// [`read`] on the host, where every tensor's values are in host memory ([`host_values`]).
fn host_read<const D: usize>(parts: &[Sum<'_, D>]) -> Option<Vec<f64>> {
    let held: Vec<[Option<DispatchTensor>; 2]> = parts
        .iter()
        .map(|p| {
            let own = |t: &Tensor<D>| Some(t.clone().into_dispatch());
            match *p {
                Sum::Squares(t) | Sum::MaxAbs(t) | Sum::ZeroColumns(t) | Sum::Values(t) => {
                    [own(t), None]
                }
                Sum::ChangeSquares(a, b) => [own(a), own(b)],
            }
        })
        .collect();
    let mut out = Vec::with_capacity(parts.len());
    for (p, [a, b]) in parts.iter().zip(&held) {
        let a = host_values(a.as_ref()?)?;
        match *p {
            Sum::Squares(_) => out.push(squares(a)),
            Sum::MaxAbs(_) => out.push(f64::from(max_abs(a))),
            Sum::ZeroColumns(t) => {
                let dims = t.dims();
                let cols = dims[D - 1];
                let rows = if D >= 2 { dims[D - 2] } else { 1 };
                out.push(zero_columns(a, rows, cols) as f64);
            }
            Sum::ChangeSquares(..) => {
                let b = host_values(b.as_ref()?)?;
                if a.len() != b.len() {
                    return None;
                }
                out.push(change_squares(a, b));
            }
            Sum::Values(_) => out.extend(a.iter().map(|&v| f64::from(v))),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostRng;
    use burn::tensor::{Device, TensorData};

    /// The portable forms against the dispatched ones (AVX-512 where the CPU has it): the
    /// lanes fix the order, so every path gives the same bits, with −0, ±inf and NaN among
    /// the values too.
    #[test]
    fn every_code_path_gives_the_same_sums() {
        #[cfg(target_arch = "x86_64")]
        if !has_avx512() {
            eprintln!("no AVX-512 on this CPU: the portable sums are checked against themselves");
        }
        let mut rng = HostRng::new(11, 0);
        for (n, special) in [0, 1, 15, 16, 17, 100, 3200, 7501]
            .into_iter()
            .flat_map(|n| [(n, false), (n, true)])
        {
            let mut a = rng.normals_f32(n, 0.0, 3.0);
            let b = rng.normals_f32(n, 0.0, 3.0);
            if special {
                for (v, s) in a
                    .iter_mut()
                    .step_by(7)
                    .zip([-0.0, f32::NAN, f32::INFINITY, -1e38])
                {
                    *v = s;
                }
            }
            assert_eq!(squares(&a).to_bits(), squares_in_lanes(&a).to_bits(), "{n}");
            assert_eq!(
                change_squares(&a, &b).to_bits(),
                change_in_lanes(&a, &b).to_bits(),
                "{n}"
            );
            assert_eq!(max_abs(&a).to_bits(), max_abs_in_lanes(&a).to_bits(), "{n}");
        }
    }

    /// Against independent computations: left-to-right f64 sums (to 1e-14 relative: f64
    /// rounding over at most 7501 terms, each ≤ 2^-53 relative), exact where every partial
    /// sum is an integer, the maximum by `f32::max`, the zero columns counted by hand.
    #[test]
    fn the_sums_are_the_sums() {
        let mut rng = HostRng::new(12, 0);
        let a = rng.normals_f32(7501, 0.0, 3.0);
        let b = rng.normals_f32(7501, 0.0, 3.0);
        let naive: f64 = a.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        assert!((squares(&a) - naive).abs() <= 1e-14 * naive);
        let naive: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        assert!((change_squares(&a, &b) - naive).abs() <= 1e-14 * naive);
        // 1² + 2² + … + 100² = 100·101·201/6.
        let ints: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(squares(&ints), 338_350.0);
        let max = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(max_abs(&a), max);
        assert_eq!(max_abs(&[]), 0.0);
        // Rows [0, 1, 0], [0, 2, 0], then [3, 0, 0], [0, 0, 0]: two zero columns in the
        // first matrix, two in the second.
        let x = [0., 1., 0., 0., 2., 0., 3., 0., 0., 0., 0., 0.];
        assert_eq!(zero_columns(&x, 2, 3), 4);
        // A -0 is zero and a NaN is not (`v != 0.0`): rows [-0, NaN, 0] leave columns 0 and 2.
        assert_eq!(zero_columns(&[-0.0, f32::NAN, 0.0], 1, 3), 2);
        // A NaN or an inf among the values makes the sum NaN or inf.
        let mut bad = a.clone();
        bad[40] = f32::INFINITY;
        assert_eq!(squares(&bad), f64::INFINITY);
        bad[41] = f32::NAN;
        assert!(squares(&bad).is_nan());
    }

    fn tensor(device: &Device, values: &[f32], shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    /// On flex and ndarray the read is taken in place, and gives the host functions' values on
    /// the tensors' data bit for bit; the device's tensor operations (f32 sums) give the same
    /// to f32 rounding (1e-5 relative), the same maxima, counts and values exactly. A strided
    /// view (a transpose) is read on the device and still gives its sums.
    #[test]
    fn a_read_in_place_is_the_host_functions_and_the_devices_sums() {
        let mut rng = HostRng::new(13, 0);
        let (r, c) = (32, 50);
        let mut z = rng.normals_f32(r * c, 0.0, 2.0);
        // Columns 3 and 7 dead, as a relu layer's would be.
        for row in z.chunks_mut(c) {
            row[3] = 0.0;
            row[7] = 0.0;
        }
        let w = rng.normals_f32(r * c, 0.0, 0.1);
        for device in [Device::flex(), Device::ndarray()] {
            let (tz, tw) = (
                tensor(&device, &z, [1, r, c]),
                tensor(&device, &w, [1, r, c]),
            );
            let tt = tz.clone().swap_dims(1, 2);
            let parts = [
                Sum::Squares(&tz),
                Sum::MaxAbs(&tz),
                Sum::ZeroColumns(&tz),
                Sum::ChangeSquares(&tz, &tw),
                Sum::Values(&tw),
                Sum::Squares(&tt),
            ];
            let host = host_read(&parts[..5]).expect("flex and ndarray read f32 in place");
            let mut want = vec![
                squares(&z),
                f64::from(max_abs(&z)),
                2.0,
                change_squares(&z, &w),
            ];
            want.extend(w.iter().map(|&v| f64::from(v)));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&host) == bits(&want), "{device:?}: {:?}", &host[..4]);
            assert!(bits(&read(&parts[..5])) == bits(&want), "{device:?}");
            // One strided tensor sends the whole read to the device.
            assert!(
                host_read(&parts).is_none(),
                "{device:?}: a transpose is strided"
            );
            let all = read(&parts);
            assert!(bits(&all) == bits(&device_read(&parts)), "{device:?}");
            assert_eq!(all.len(), want.len() + 1);
            want.push(squares(&z));
            for (i, (d, h)) in all.iter().zip(&want).enumerate() {
                let exact = i == 1 || i == 2 || (4..4 + r * c).contains(&i);
                match exact {
                    true => assert_eq!(d, h, "{device:?}: part {i}"),
                    false => assert!((d - h).abs() <= 1e-5 * h.abs(), "{device:?}: {d} {h}"),
                }
            }
        }
    }
}
