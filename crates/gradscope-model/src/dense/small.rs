//! Flex's small products (below [`FLEX_OWN_ROUTE_MIN`](super::FLEX_OWN_ROUTE_MIN)) written
//! out in AVX-512: the sums gemm 0.19 makes for them, without its set-up.
//!
//! A training step of a small network (the seed's 10-100-50-25-10, batch 32) is eleven such
//! products, and gemm spent more time preparing them than multiplying: 1.3 µs a call for the
//! 8 000 multiply-adds of the 25 → 10 layer, whose arithmetic takes about 0.2 µs (its packing
//! buffers, the operands packed, its dispatch). Here each product is register tiles of
//! up to 6 rows × 64 columns, summed over the depth straight from the operands.
//!
//! The same sums: for these shapes gemm 0.19 computes each value as one chain of fused
//! multiply-adds from +0 in depth order (`gemm_basic_generic`: m, n ≥ 2 and m·n > 256 leave
//! its `horizontal`, `gemv` and `gevv` paths to other shapes, 3 ≤ k ≤ 512 puts the whole depth
//! in one block, `kc` ≥ min(k, 512), and its result is written with α = 0, β = 1), and so does
//! every lane here; a bias is then added to each value, one more rounding, as Burn's `linear`
//! adds it after the product. `small_products_are_burns_bit_for_bit` holds every product of a
//! layer against Burn's on shapes at and around these edges, with signed zeros, infinities and
//! NaN. Anything else (no AVX-512, other shapes, a layout this does not read) is `None`, and
//! the caller takes Burn's own product.

use std::arch::x86_64::*;

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};

/// A matrix operand: `data[i·rs + j·cs]` is element (i, j).
#[derive(Debug, Clone, Copy)]
pub(super) struct Matrix<'a> {
    pub(super) data: &'a [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl Matrix<'_> {
    /// Whether every element lies inside `data`.
    pub(super) fn fits(&self) -> bool {
        let last = (self.rows.checked_sub(1)).and_then(|r| r.checked_mul(self.rs));
        let last = last.zip(
            self.cols
                .checked_sub(1)
                .and_then(|c| c.checked_mul(self.cs)),
        );
        last.and_then(|(a, b)| a.checked_add(b))
            .is_some_and(|l| l < self.data.len())
    }
}

/// Whether gemm 0.19 sums an `m × k · k × n` product as one FMA chain per value (above), so
/// that [`product`] gives its bits.
pub(super) fn chained(m: usize, k: usize, n: usize) -> bool {
    m >= 2 && n >= 2 && m.saturating_mul(n) > 256 && (3..=512).contains(&k)
}

/// Whether this CPU runs [`product`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `a · b` (`m × k` times `k × n`), plus `bias[j]` on every row's value j where given, as a
/// row-major `m × n` buffer: `None` where the shape is not [`chained`], the CPU lacks AVX-512,
/// `b`'s columns are not adjacent (`cs` 1) or an operand reaches past its data.
#[allow(unsafe_code)]
pub(super) fn product(a: Matrix<'_>, b: Matrix<'_>, bias: Option<&[f32]>) -> Option<Vec<f32>> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let shapes = b.rows == k && bias.is_none_or(|bias| bias.len() == n);
    if !(shapes && chained(m, k, n) && b.cs == 1 && a.fits() && b.fits() && available()) {
        return None;
    }
    let mut c = vec![0f32; m * n];
    // SAFETY: AVX-512F is present (checked above); every element the tiles read lies inside
    // `a.data` and `b.data` (`fits`, and the tiles read rows < m, depths < k, columns < n:
    // the last vector of a row is masked to the columns left), and they write c[i·n + j] for
    // i < m, j < n only, inside `c` (m·n values).
    unsafe { tiles(a, b, bias, &mut c) };
    Some(c)
}

/// A 2-D f32 flex tensor as a [`Matrix`] (non-negative strides); `None` otherwise.
fn matrix(t: &FlexTensor) -> Option<Matrix<'_>> {
    let l = t.layout();
    let (shape, s) = (l.shape(), l.strides());
    if t.dtype() != DType::F32 || shape.num_dims() != 2 {
        return None;
    }
    Some(Matrix {
        data: t.storage::<f32>().get(l.start_offset()..)?,
        rows: shape[0],
        cols: shape[1],
        rs: usize::try_from(s[0]).ok()?,
        cs: usize::try_from(s[1]).ok()?,
    })
}

/// A row-major `[rows, cols]` flex tensor of `values`.
fn flex_2d(values: Vec<f32>, rows: usize, cols: usize) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, Shape::new([rows, cols])))
}

/// z = x·W (+ b) for one network's small layer ([`product`]); `None` where [`product`]
/// does not take it.
pub(super) fn small_dense(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> Option<FlexTensor> {
    let (a, b) = (matrix(x)?, matrix(weight)?);
    let bias = match bias {
        None => None,
        Some(t) => {
            let l = t.layout();
            let n = l.num_elements();
            let plain = t.dtype() == DType::F32 && l.is_contiguous();
            Some(plain.then(|| {
                t.storage::<f32>()
                    .get(l.start_offset()..l.start_offset() + n)
            })??)
        }
    };
    product(a, b, bias).map(|z| flex_2d(z, a.rows, b.cols))
}

/// ∂L/∂x = g·Wᵀ for one network's small layer: Wᵀ copied row-major (fewer than
/// FLEX_OWN_ROUTE_MIN / batch values), then [`product`].
pub(super) fn small_x_backward(weight: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    let (w, g) = (matrix(weight)?, matrix(grad)?);
    let (d_in, d_out) = (w.rows, w.cols);
    if !(g.cols == d_out && chained(g.rows, d_out, d_in) && available()) {
        return None;
    }
    if !w.fits() {
        return None;
    }
    let mut wt = vec![0f32; d_in * d_out];
    for (p, row) in wt.chunks_exact_mut(d_in).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = w.data[j * w.rs + p * w.cs];
        }
    }
    let b = Matrix {
        data: &wt,
        rows: d_out,
        cols: d_in,
        rs: d_in,
        cs: 1,
    };
    product(g, b, None).map(|dx| flex_2d(dx, g.rows, d_in))
}

/// ∂L/∂W = xᵀ·g for one network's small layer ([`product`] reads xᵀ through x's
/// strides).
pub(super) fn small_weight_backward(x: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    let (x, g) = (matrix(x)?, matrix(grad)?);
    let xt = Matrix {
        rows: x.cols,
        cols: x.rows,
        rs: x.cs,
        cs: x.rs,
        ..x
    };
    product(xt, g, None).map(|dw| flex_2d(dw, xt.rows, g.cols))
}

/// Rows per tile: 6 rows × 4 vectors is 24 accumulators, with the 4 vectors of `b`'s row and
/// the broadcast of `a`'s value, 29 of the 32 vector registers.
const ROWS: usize = 6;
/// Lanes of one f32 vector.
const LANES: usize = 16;

#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
unsafe fn tiles(a: Matrix<'_>, b: Matrix<'_>, bias: Option<&[f32]>, c: &mut [f32]) {
    let (m, n) = (a.rows, b.cols);
    let mut j0 = 0;
    while j0 < n {
        let width = (n - j0).min(4 * LANES);
        let vectors = width.div_ceil(LANES);
        let mut i0 = 0;
        while i0 < m {
            let rows = (m - i0).min(ROWS);
            let at = Tile {
                a,
                b,
                bias,
                i0,
                j0,
                width,
            };
            // SAFETY: as `product`'s: rows i0..i0 + rows < m, columns j0..j0 + width ≤ n.
            unsafe {
                match (rows, vectors) {
                    (6, 4) => at.run::<6, 4>(c),
                    (6, 3) => at.run::<6, 3>(c),
                    (6, 2) => at.run::<6, 2>(c),
                    (6, _) => at.run::<6, 1>(c),
                    (5, 4) => at.run::<5, 4>(c),
                    (5, 3) => at.run::<5, 3>(c),
                    (5, 2) => at.run::<5, 2>(c),
                    (5, _) => at.run::<5, 1>(c),
                    (4, 4) => at.run::<4, 4>(c),
                    (4, 3) => at.run::<4, 3>(c),
                    (4, 2) => at.run::<4, 2>(c),
                    (4, _) => at.run::<4, 1>(c),
                    (3, 4) => at.run::<3, 4>(c),
                    (3, 3) => at.run::<3, 3>(c),
                    (3, 2) => at.run::<3, 2>(c),
                    (3, _) => at.run::<3, 1>(c),
                    (2, 4) => at.run::<2, 4>(c),
                    (2, 3) => at.run::<2, 3>(c),
                    (2, 2) => at.run::<2, 2>(c),
                    (2, _) => at.run::<2, 1>(c),
                    (_, 4) => at.run::<1, 4>(c),
                    (_, 3) => at.run::<1, 3>(c),
                    (_, 2) => at.run::<1, 2>(c),
                    (_, _) => at.run::<1, 1>(c),
                }
            }
            i0 += rows;
        }
        j0 += width;
    }
}

/// One tile of the product: rows `i0..i0 + R`, columns `j0..j0 + width` (`width` in
/// `(16·(V − 1), 16·V]`).
struct Tile<'a> {
    a: Matrix<'a>,
    b: Matrix<'a>,
    bias: Option<&'a [f32]>,
    i0: usize,
    j0: usize,
    width: usize,
}

impl Tile<'_> {
    /// The tile's values into `c` (row-major, `n` columns): R × V accumulators from +0, each
    /// `fma(a[i][p], b[p][j], acc)` for p = 0, 1, …, k − 1 in turn, then `+ bias[j]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    unsafe fn run<const R: usize, const V: usize>(&self, c: &mut [f32]) {
        let Self {
            a,
            b,
            bias,
            i0,
            j0,
            width,
        } = *self;
        let (k, n) = (a.cols, b.cols);
        // The last vector's lanes that are columns (all 16 but at the right edge).
        let tail = width - LANES * (V - 1);
        let mask: __mmask16 = if tail >= LANES {
            0xffff
        } else {
            (1u16 << tail) - 1
        };
        let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..k {
            // SAFETY (loads): row p < k of `b`, columns j0.. inside the tile's width (the last
            // vector masked to it), all inside `b.data` (`fits`); `a`'s (i0 + r, p) for
            // r < R, inside `a.data`.
            let row = unsafe { bp.add(p * b.rs + j0) };
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = unsafe {
                    if v + 1 == V {
                        _mm512_maskz_loadu_ps(mask, row.add(v * LANES))
                    } else {
                        _mm512_loadu_ps(row.add(v * LANES))
                    }
                };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(unsafe { *ap.add((i0 + r) * a.rs + p * a.cs) });
                for (acc, bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(x, *bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let out = c[(i0 + r) * n + j0..].as_mut_ptr();
            for (v, acc) in acc.iter().enumerate() {
                let m = if v + 1 == V { mask } else { 0xffff };
                let mut value = *acc;
                if let Some(bias) = bias {
                    // SAFETY: bias has n values (checked by `product`); columns masked.
                    let b = unsafe { _mm512_maskz_loadu_ps(m, bias.as_ptr().add(j0 + v * LANES)) };
                    value = _mm512_add_ps(value, b);
                }
                // SAFETY: row i0 + r < m of `c`, columns j0 + v·16.. masked to the tile.
                unsafe { _mm512_mask_storeu_ps(out.add(v * LANES), m, value) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::FLEX_OWN_ROUTE_MIN;
    use super::super::flex::tests::{layer_is_burns, normals};
    use super::*;

    /// `n` normals from `seed` with the values floating point treats apart among them: ±0,
    /// ±inf, NaN, a subnormal, and (where `zero_row` is given) that many leading values all −0
    /// (a dead unit's row or column: its sums are signed zeros).
    fn specials(n: usize, seed: u64, zero_row: usize) -> Vec<f32> {
        let mut v = normals(n, seed);
        let odd = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40];
        for (i, x) in odd.into_iter().enumerate() {
            let at = (seed as usize * 7919 + i * 104_729) % n;
            v[at] = x;
        }
        v[..zero_row.min(n)].fill(-0.0);
        v
    }

    /// The three products of a small layer ([`small`], below FLEX_OWN_ROUTE_MIN) against
    /// Burn's, bit for bit: the seed network's four layers at batch 32 (a training step), and
    /// shapes at and around the edges of [`chained`] (m or n = 2, m·n = 257, k = 3 and
    /// 512) and of the tiles (6 rows, 16-lane vectors, 64 columns), on normal values and on
    /// values holding ±0, ±inf, NaN, a subnormal and an all −0 row.
    #[test]
    fn small_products_are_burns_bit_for_bit() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512, so flex takes Burn's small products");
            return;
        }
        let mut taken = 0;
        for (b, d_in, d_out) in [
            (32, 10, 100),
            (32, 100, 50),
            (32, 50, 25),
            (32, 25, 10),
            (2, 3, 129),
            (257, 3, 2),
            (13, 512, 20),
            (7, 17, 64),
            (6, 65, 63),
            (19, 33, 16),
            (1, 40, 40),
            (32, 2, 40),
            (40, 16, 513),
        ] {
            for zero_row in [0, d_in] {
                let v = |n, seed| specials(n, seed, zero_row);
                let x = || FlexTensor::from_data(TensorData::new(v(b * d_in, 3), [b, d_in]));
                let w =
                    || FlexTensor::from_data(TensorData::new(v(d_in * d_out, 1), [d_in, d_out]));
                let bias = || FlexTensor::from_data(TensorData::new(v(d_out, 4), [d_out]));
                let g = || FlexTensor::from_data(TensorData::new(v(b * d_out, 2), [b, d_out]));
                let at = format!("{b}x{d_in}x{d_out}, leading −0s {zero_row}");
                assert!(b * d_in * d_out < FLEX_OWN_ROUTE_MIN, "{at}");
                // (forward, ∂L/∂x, ∂L/∂W): whether each is a chained product.
                let routes = [
                    chained(b, d_in, d_out),
                    chained(b, d_out, d_in),
                    chained(d_in, b, d_out),
                ];
                assert_eq!(
                    small_dense(&x(), &w(), Some(&bias())).is_some(),
                    routes[0],
                    "{at}"
                );
                assert_eq!(small_x_backward(&w(), &g()).is_some(), routes[1], "{at}");
                assert_eq!(
                    small_weight_backward(&x(), &g()).is_some(),
                    routes[2],
                    "{at}"
                );
                taken += routes.iter().filter(|r| **r).count();
                layer_is_burns(&x, &w, &bias, &g, &at);
            }
        }
        assert!(taken >= 40, "the small route ran {taken} times");
    }
}
