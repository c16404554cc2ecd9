//! Flex's own route for a layer's three products ([`big_matmul`], [`big_x_backward`]): the
//! same gemm calls burn-flex makes, into buffers the result tensors take as they are, and ∂L/∂x
//! against a row-major copy of Wᵀ or as a column-major result (see [`super`]). A stack of `T`
//! large networks takes the same route, each trial's product on a core of its own where the
//! trials share the cores evenly ([`by_trials`]), else one trial after another on both cores;
//! burn-flex's batched product also gives each core whole trials, but ∂L/∂x a transposed view
//! of W, and copies each result once more.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::small::{small_dense, small_weight_backward, small_x_backward};
use super::{
    DenseBackend, FLEX_OWN_ROUTE_MIN, default_bias_backward, default_dense,
    default_weight_backward, default_x_backward,
};

impl DenseBackend for Flex {
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match big_matmul(&x, &weight) {
            // Burn's `linear` for a 2-D input: the product, then the bias as a [1, d_out] row.
            Some(z) if x.layout().num_dims() == 2 => {
                let row = Shape::new([1, bias.layout().num_elements()]);
                Self::float_add(z, Self::float_reshape(bias, row))
            }
            // A stack's bias is [T, 1, d_out] already: `default_dense`'s add.
            Some(z) => Self::float_add(z, bias),
            None => small_dense(&x, &weight, Some(&bias))
                .unwrap_or_else(|| default_dense::<Self>(x, weight, Some(bias))),
        }
    }

    fn dense_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        big_matmul(&x, &weight)
            .or_else(|| small_dense(&x, &weight, None))
            .unwrap_or_else(|| default_dense::<Self>(x, weight, None))
    }

    fn dense_x_backward(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        big_x_backward(&weight, &grad)
            .or_else(|| small_x_backward(&weight, &grad))
            .unwrap_or_else(|| default_x_backward::<Self>(weight, grad))
    }

    fn dense_weight_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let rank = x.layout().num_dims();
        if !(2..=3).contains(&rank) {
            return default_weight_backward::<Self>(x, grad);
        }
        big_matmul(&Self::float_swap_dims(x.clone(), rank - 2, rank - 1), &grad)
            .or_else(|| small_weight_backward(&x, &grad))
            .unwrap_or_else(|| default_weight_backward::<Self>(x, grad))
    }

    fn dense_bias_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        column_sums(&grad).unwrap_or_else(|| default_bias_backward::<Self>(grad))
    }
}

/// ∂L/∂b of one network, `[1, rows, cols]` → `[1, 1, cols]`: each column summed over the rows
/// from +0 in row order, as burn-flex's `sum_dim` over the first dimension of a contiguous
/// f32 tensor sums it (its `scatter_add_f32` kernel: the accumulator row starts at zero and
/// each row is added to it in turn), so Burn's `linear_bias_backward` bit for bit
/// (`bias_gradients_are_burns_bit_for_bit`), without its reshapes and kernel set-up. `None`
/// for anything else (a stack of several, another dtype, a view that is not contiguous).
fn column_sums(grad: &FlexTensor) -> Option<FlexTensor> {
    let l = grad.layout();
    let shape = l.shape();
    let one = shape.num_dims() == 3 && shape[0] == 1;
    if !(one && grad.dtype() == DType::F32 && l.is_contiguous()) {
        return None;
    }
    let (rows, cols) = (shape[1], shape[2]);
    let values = grad
        .storage::<f32>()
        .get(l.start_offset()..l.start_offset() + rows * cols)?;
    let mut sums = vec![0f32; cols];
    for row in values.chunks_exact(cols.max(1)) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    Some(FlexTensor::from_data(TensorData::new(
        sums,
        Shape::new([1, 1, cols]),
    )))
}

#[cfg(not(target_arch = "x86_64"))]
fn small_dense(_: &FlexTensor, _: &FlexTensor, _: Option<&FlexTensor>) -> Option<FlexTensor> {
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn small_x_backward(_: &FlexTensor, _: &FlexTensor) -> Option<FlexTensor> {
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn small_weight_backward(_: &FlexTensor, _: &FlexTensor) -> Option<FlexTensor> {
    None
}

/// `lhs · rhs` for f32 flex tensors, 2-D (`[m, k]` · `[k, n]`) or a stack of `T ≥ 2`
/// (`[T, m, k]` · `[T, k, n]`), whose product has at least [`FLEX_OWN_ROUTE_MIN`] multiply-adds
/// per trial: the gemm call burn-flex's `matmul_2d_strided` makes (operands' strides as they
/// are), on both cores trial after trial, or a trial a core ([`by_trials`]), so the same
/// result, but into a buffer the new tensor takes as it is. burn-flex allocates its result as
/// bytes and then copies it once more to reach cubecl's alignment: a 2–4 MiB copy on one core
/// per product, 3 % of workload 2's step.
/// `None` for anything else (other dtypes or ranks, a stack of one, which [`super`] makes 2-D,
/// smaller products, a layout reaching past its data).
fn big_matmul(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    big_matmul_by(lhs, rhs, by_trials)
}

/// [`big_matmul`], a stack's trials each on a core where `by_trials(trials)` says so.
fn big_matmul_by(lhs: &FlexTensor, rhs: &FlexTensor, by_trials: ByTrials) -> Option<FlexTensor> {
    let (lhs, rhs) = (View::of(lhs)?, View::of(rhs)?);
    if lhs.trials != rhs.trials || lhs.dims[1] != rhs.dims[0] || !lhs.big_product(rhs.dims[1]) {
        return None;
    }
    let [m, n] = [lhs.dims[0], rhs.dims[1]];
    let mut out = vec![0f32; lhs.trials * m * n];
    let threads = stack_threads(lhs.trials, by_trials);
    each_trial(&mut out, m * n, threads, |t, out| {
        product_into(lhs.trial(t), rhs.trial(t), out, Order::RowMajor, threads)
    });
    Some(lhs.tensor(out, [m, n]))
}

/// ∂L/∂x = g·Wᵀ on flex's own route, one of two ways (gemm packs W's transposed view slowly
/// for a row-major result, see [`super`]), both gemm's sums in gemm's order, so the same
/// values bit for bit as Burn's product of g and the view:
///
/// - **Wᵀ copied** (the default): each trial's W copied row-major as Wᵀ into a scratch buffer
///   this thread keeps for the next layer, and multiplied by that, the product [`big_matmul`]
///   takes for g and a tensor holding the copy. Where the copy was a tensor of its own (all of
///   a stack's trials at once), it cost a fresh, zeroed buffer per layer, and, for a stack of
///   4 × 1024², 16 MiB of pages faulted in anew: 10 % of the stack's samples.
/// - **Column-major result** ([`column_major_pays`]: few rows against wide layers, as in a
///   stack's trials of batch 128): gemm writes g·Wᵀ column by column, a layout for which it
///   reads W's transposed view in W's own order, into the scratch buffer, which is then copied
///   row-major into the result: `batch × d_in` values moved instead of W's `d_in × d_out`.
///
/// `None` where W is not plain row-major f32 or g·Wᵀ is too small for the copy to pay.
fn big_x_backward(weight: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    big_x_backward_by(weight, grad, by_trials)
}

/// [`big_x_backward`], a stack's trials each on a core where `by_trials(trials)` says so.
fn big_x_backward_by(
    weight: &FlexTensor,
    grad: &FlexTensor,
    by_trials: ByTrials,
) -> Option<FlexTensor> {
    let w = weight.layout();
    let plain = w.is_contiguous() && w.start_offset() == 0;
    let (weight, grad) = (View::of(weight)?, View::of(grad)?);
    let [d_in, d_out] = weight.dims;
    // A stack of one is made 2-D by `super` before it gets here.
    let one_of_a_stack = w.num_dims() == 3 && weight.trials == 1;
    if !plain || one_of_a_stack || weight.trials != grad.trials || grad.dims[1] != d_out {
        return None;
    }
    if !grad.big_product(d_in) {
        return None;
    }
    let batch = grad.dims[0];
    let by_columns = column_major_pays(batch, d_in, d_out);
    let threads = stack_threads(grad.trials, by_trials);
    let mut out = vec![0f32; grad.trials * batch * d_in];
    // Trial t's ∂L/∂x into `out`, with this thread's scratch buffer.
    each_trial(&mut out, batch * d_in, threads, |t, out| {
        let scratch_len = if by_columns {
            batch * d_in
        } else {
            d_in * d_out
        };
        // A call that runs inside another on this thread (rayon may run another task here
        // while this one waits) finds the cell empty and uses a buffer of its own.
        let mut scratch = SCRATCH.take();
        if scratch.len() < scratch_len {
            scratch.resize(scratch_len, 0.0);
        }
        // W is plain row-major: trial t is its t-th run of d_in · d_out values.
        let weight_t = &weight.data[t * d_in * d_out..][..d_in * d_out];
        if by_columns {
            let columns = &mut scratch[..batch * d_in];
            // Wᵀ as a view: element (p, j) of Wᵀ is W's (j, p).
            let view = Trial {
                data: weight_t,
                rows: d_out,
                cols: d_in,
                strides: [1, d_out as isize],
            };
            product_into(grad.trial(t), view, columns, Order::ColumnMajor, threads);
            // The column-major `batch × d_in` result is a row-major `d_in × batch` matrix.
            transpose_into(columns, d_in, batch, out, threads);
        } else {
            let copy = &mut scratch[..d_in * d_out];
            transpose_into(weight_t, d_in, d_out, copy, threads);
            let rhs = Trial {
                data: copy,
                rows: d_out,
                cols: d_in,
                strides: [d_in as isize, 1],
            };
            product_into(grad.trial(t), rhs, out, Order::RowMajor, threads);
        }
        SCRATCH.set(scratch);
    });
    Some(grad.tensor(out, [batch, d_in]))
}

/// Where a stack of `trials` runs each trial's products: [`Threads::One`] (a trial a core)
/// where `by_trials` says so, else [`Threads::Both`] (one trial after another on all cores).
fn stack_threads(trials: usize, by_trials: ByTrials) -> Threads {
    if by_trials(trials) {
        Threads::One
    } else {
        Threads::Both
    }
}

/// `f(t, chunk)` for each trial `t` and its `len` values of `out`: the trials spread over the
/// cores, one a task, where each runs on one core (`threads` is [`Threads::One`]), else one
/// after another, each on all cores.
fn each_trial(out: &mut [f32], len: usize, threads: Threads, f: impl Fn(usize, &mut [f32]) + Sync) {
    match threads {
        Threads::One => out
            .par_chunks_exact_mut(len)
            .with_max_len(1)
            .enumerate()
            .for_each(|(t, out)| f(t, out)),
        Threads::Both => out
            .chunks_exact_mut(len)
            .enumerate()
            .for_each(|(t, out)| f(t, out)),
    }
}

/// Whether a stack of so many trials takes its products a trial a core ([`by_trials`], or
/// a test's choice).
type ByTrials = fn(usize) -> bool;

/// Whether a stack of `trials` takes its products trial by trial on a core each (one
/// single-threaded gemm call a trial, rayon spreading the trials over the cores) rather than
/// one after another on all cores: where every core gets the same number of trials, or at
/// least four, so that none waits long on the others. A trial on one core packs its operands
/// once, where gemm on both packs each thread's share of W on each, and has no barrier
/// between gemm's depth blocks: 4 trials of 128 × 1024 × 1024, 1.05–1.3× for each product on
/// gemm alone, 150 → 165 GFLOP/s in the bench's stack (benchmarks/README.md, "A stack's trials
/// each on a core"). The same values either way (gemm's sums do not depend on its threads).
fn by_trials(trials: usize) -> bool {
    let cores = rayon::current_num_threads();
    cores > 1 && trials >= cores && (trials.is_multiple_of(cores) || trials >= 4 * cores)
}

/// Whether [`big_x_backward`] takes g·Wᵀ as a column-major result (`batch` rows, W
/// `d_in × d_out`): at most an eighth as many rows as W has columns, and W at least 512 rows
/// deep. Measured on gemm alone (benchmarks/README.md, "∂L/∂x for few rows as a column-major
/// result"): 1.15–1.8× the copied Wᵀ at 64–256 rows against 512–2048-wide layers within that
/// bound, about even at 160–224 rows against 1024 (outside it), 0.74× where W has 256 rows.
fn column_major_pays(batch: usize, d_in: usize, d_out: usize) -> bool {
    batch.saturating_mul(8) <= d_out && d_in >= 512
}

thread_local! {
    /// [`big_x_backward`]'s copy of Wᵀ or column-major result, kept for the next layer: at most
    /// the largest trial's kernel on each thread (4 MiB for the 1024² layers of workload 2).
    /// Taken out while in use.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An f32 flex tensor, 2-D or a stack of `T ≥ 2` 3-D, as the slice its view reads, checked to
/// stay inside it.
struct View<'a> {
    data: &'a [f32],
    /// The number of trials: 1 for a 2-D tensor.
    trials: usize,
    /// Whether the tensor is 2-D.
    flat: bool,
    dims: [usize; 2],
    /// `[trial, row, col]`, non-negative; the trial stride is 0 for a 2-D tensor.
    strides: [isize; 3],
}

/// One trial of a [`View`]: a `rows × cols` matrix with `[row, col]` strides.
#[derive(Clone, Copy)]
struct Trial<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    strides: [isize; 2],
}

impl<'a> View<'a> {
    /// `None` for other dtypes or ranks, a 3-D stack of one (which [`super`] makes 2-D), or a
    /// layout reaching past its data.
    fn of(t: &'a FlexTensor) -> Option<Self> {
        let (trials, dims, strides) = trials(t)?;
        let flat = t.layout().num_dims() == 2;
        if t.dtype() != DType::F32 || flat != (strides[0] == 0) || (!flat && trials < 2) {
            return None;
        }
        let data = t.storage::<f32>().get(t.layout().start_offset()..)?;
        within(data.len(), [trials, dims[0], dims[1]], strides).then_some(View {
            data,
            trials,
            flat,
            dims,
            strides,
        })
    }

    /// Whether `self · [cols, n]` has at least [`FLEX_OWN_ROUTE_MIN`] multiply-adds a trial.
    fn big_product(&self, n: usize) -> bool {
        self.dims[0].saturating_mul(self.dims[1]).saturating_mul(n) >= FLEX_OWN_ROUTE_MIN
    }

    /// Trial `t` (`t < trials`; `within` keeps its values inside `data`).
    fn trial(&self, t: usize) -> Trial<'a> {
        Trial {
            data: &self.data[t * self.strides[0] as usize..],
            rows: self.dims[0],
            cols: self.dims[1],
            strides: [self.strides[1], self.strides[2]],
        }
    }

    /// A result of `[rows, cols]` a trial, as a tensor of this view's rank.
    fn tensor(&self, values: Vec<f32>, [rows, cols]: [usize; 2]) -> FlexTensor {
        let shape = if self.flat {
            Shape::new([rows, cols])
        } else {
            Shape::new([self.trials, rows, cols])
        };
        FlexTensor::from_data(TensorData::new(values, shape))
    }
}

/// How [`product_into`] lays out its `m × n` result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Value (i, j) at `i·n + j`.
    RowMajor,
    /// Value (i, j) at `j·m + i`.
    ColumnMajor,
}

/// Where [`product_into`]'s gemm call and [`transpose_into`] run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Threads {
    /// On every core (rayon's pool): gemm's `Parallelism::Rayon(0)`.
    Both,
    /// On the calling thread alone: gemm's `Parallelism::None`.
    One,
}

/// `out = lhs · rhs` (`lhs.rows × rhs.cols`, laid out as `order` says): one gemm call,
/// operands' strides as they are, on the cores `threads` names (row-major on all cores: the
/// call burn-flex's `matmul_2d_strided` makes). gemm's sums do not depend on
/// its threads (its depth blocks follow from the shapes alone; tested bit for bit).
#[allow(unsafe_code)]
fn product_into(lhs: Trial<'_>, rhs: Trial<'_>, out: &mut [f32], order: Order, threads: Threads) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(rhs.rows == k && out.len() == m * n, "product: shapes");
    assert!(
        within(
            lhs.data.len(),
            [1, m, k],
            [0, lhs.strides[0], lhs.strides[1]]
        ) && within(
            rhs.data.len(),
            [1, k, n],
            [0, rhs.strides[0], rhs.strides[1]]
        ),
        "product: a view past its data"
    );
    // gemm's destination strides: (column, row).
    let (dst_cs, dst_rs) = match order {
        Order::RowMajor => (1, n as isize),
        Order::ColumnMajor => (m as isize, 1),
    };
    // SAFETY: gemm reads lhs[i·ls0 + p·ls1] for i < m, p < k and rhs[p·rs0 + j·rs1] for p < k,
    // j < n, inside the two slices (checked above, non-negative strides), and writes
    // out[i·dst_rs + j·dst_cs] for i < m, j < n: out[i·n + j] or out[j·m + i], inside `out`
    // (m·n values) either way. Nothing else holds `out`, and the slices are not written while
    // gemm runs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            dst_cs,
            dst_rs,
            false,
            lhs.data.as_ptr(),
            lhs.strides[1],
            lhs.strides[0],
            rhs.data.as_ptr(),
            rhs.strides[1],
            rhs.strides[0],
            0.0,
            1.0,
            false,
            false,
            false,
            match threads {
                Threads::Both => gemm::Parallelism::Rayon(0),
                Threads::One => gemm::Parallelism::None,
            },
        );
    }
}

/// A 2-D or 3-D tensor as `(trials, [rows, cols], [trial, row, col] strides)`: a 2-D one is
/// one trial with trial stride 0.
fn trials(t: &FlexTensor) -> Option<(usize, [usize; 2], [isize; 3])> {
    let (shape, s) = (t.layout().shape(), t.layout().strides());
    match shape.num_dims() {
        2 => Some((1, [shape[0], shape[1]], [0, s[0], s[1]])),
        3 => Some((shape[0], [shape[1], shape[2]], [s[0], s[1], s[2]])),
        _ => None,
    }
}

/// Whether a `[trials, rows, cols]` view with non-negative `strides` over `len` elements stays
/// inside them.
fn within(len: usize, dims: [usize; 3], strides: [isize; 3]) -> bool {
    let mut last = Some(0usize);
    for (d, s) in dims.iter().zip(strides) {
        let step = usize::try_from(s)
            .ok()
            .and_then(|s| d.saturating_sub(1).checked_mul(s));
        last = last.zip(step).and_then(|(a, b)| a.checked_add(b));
    }
    dims.iter().all(|&d| d > 0) && last.is_some_and(|last| last < len)
}

/// [`transpose_into`] a new buffer (the tests').
#[cfg(test)]
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0f32; rows * cols];
    transpose_into(src, rows, cols, &mut dst, Threads::Both);
    dst
}

/// The transpose of the row-major `rows × cols` matrix `src`, written row-major (`cols × rows`)
/// into `dst` (`rows · cols` values): each trial of a stack straight into the one buffer its
/// tensor takes, and one network's with no copy after it.
///
/// One task per strip of 8 destination rows (8 source columns), walked in 8 × 8 tiles: each
/// tile reads 8 values of 8 source rows into registers and writes them out as 8 runs of 8.
/// Strips of 8 because destination rows 4 KiB apart (1024 floats) share cache sets: 16 of them
/// at once wrote 4× slower. Tiles, against writing every source row's 8 values straight out:
/// 0.6–0.8 ms against 1.1–1.6 ms for a 1024 × 1024 matrix not in cache (2 threads).
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], threads: Threads) {
    const S: usize = 8;
    if rows == 0 || cols == 0 {
        return;
    }
    let strip = |(strip, out): (usize, &mut [f32])| {
        let j0 = strip * S;
        let mut outs: Vec<&mut [f32]> = out.chunks_exact_mut(rows).collect();
        let width = outs.len();
        for (block, tile_rows) in src.chunks(cols * S).enumerate() {
            let height = tile_rows.len() / cols;
            let mut tile = [[0f32; S]; S];
            for (ii, row) in tile_rows.chunks_exact(cols).enumerate() {
                if width == S {
                    let v = &row[j0..j0 + S];
                    for jj in 0..S {
                        tile[jj][ii] = v[jj];
                    }
                } else {
                    for (jj, v) in row[j0..j0 + width].iter().enumerate() {
                        tile[jj][ii] = *v;
                    }
                }
            }
            let i0 = block * S;
            for (o, t) in outs.iter_mut().zip(&tile) {
                o[i0..i0 + height].copy_from_slice(&t[..height]);
            }
        }
    };
    match threads {
        Threads::Both => dst.par_chunks_mut(rows * S).enumerate().for_each(strip),
        Threads::One => dst.chunks_mut(rows * S).enumerate().for_each(strip),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use burn::backend::ops::ModuleOps;

    use super::*;
    use crate::HostRng;

    pub(in crate::dense) fn bits(t: FlexTensor) -> Vec<u32> {
        let v: Vec<f32> = t.into_data().to_vec().unwrap_or_default();
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// `n` normals from `seed` as a flex tensor of `shape`.
    fn tensor<const N: usize>(n: usize, seed: u64, shape: [usize; N]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(normals(n, seed), shape))
    }

    /// Our product and Burn's, bit for bit.
    pub(in crate::dense) fn same(ours: FlexTensor, burns: FlexTensor, what: &str) {
        let (ours, burns) = (bits(ours), bits(burns));
        assert_eq!(ours.len(), burns.len(), "{what}: sizes");
        let differ = ours.iter().zip(&burns).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{what}: {differ} values differ from Burn's");
    }

    pub(in crate::dense) fn normals(n: usize, seed: u64) -> Vec<f32> {
        HostRng::new(seed, 0).normals_f32(n, 0.0, 1.0)
    }

    #[test]
    fn transpose_moves_every_element_once() {
        // Odd widths leave a last strip narrower than 8; 1-row and 1-column matrices too.
        for (rows, cols) in [(1, 1), (1, 9), (9, 1), (3, 8), (8, 3), (17, 33), (64, 130)] {
            let src: Vec<f32> = (0..rows * cols).map(|k| k as f32).collect();
            let t = transpose(&src, rows, cols);
            let mut alone = vec![0f32; rows * cols];
            transpose_into(&src, rows, cols, &mut alone, Threads::One);
            assert_eq!(alone, t, "{rows}x{cols} on one thread");
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        t[j * rows + i],
                        src[i * cols + j],
                        "{rows}x{cols} at {i},{j}"
                    );
                }
            }
        }
        assert!(transpose(&[], 0, 5).is_empty());
    }

    /// A layer's products on flex (`Flex::dense` with and without the bias, ∂L/∂x, ∂L/∂W) and
    /// Burn's (`linear`, `linear_x_backward`, `linear_weight_backward`) bit for bit, given its
    /// input, kernel, bias and the gradient ∂L/∂z (`at` names the case).
    pub(in crate::dense) fn layer_is_burns(
        x: &dyn Fn() -> FlexTensor,
        w: &dyn Fn() -> FlexTensor,
        bias: &dyn Fn() -> FlexTensor,
        g: &dyn Fn() -> FlexTensor,
        at: &str,
    ) {
        let linear = <Flex as ModuleOps<Flex>>::linear;
        same(
            Flex::dense(x(), w(), bias()),
            linear(x(), w(), Some(bias())),
            &format!("{at}: x·W + b"),
        );
        same(
            Flex::dense_no_bias(x(), w()),
            linear(x(), w(), None),
            &format!("{at}: x·W"),
        );
        same(
            Flex::dense_x_backward(w(), g()),
            <Flex as ModuleOps<Flex>>::linear_x_backward(w(), g()),
            &format!("{at}: ∂L/∂x"),
        );
        same(
            Flex::dense_weight_backward(x(), g()),
            <Flex as ModuleOps<Flex>>::linear_weight_backward(x(), g()),
            &format!("{at}: ∂L/∂W"),
        );
    }

    /// ∂L/∂b of one network on flex ([`column_sums`]) against Burn's `linear_bias_backward`,
    /// bit for bit: odd widths and batches, ±0 (a column of −0s sums to +0 from +0), ±inf,
    /// NaN and a subnormal; and a stack of several, or a transposed view, takes Burn's.
    #[test]
    fn bias_gradients_are_burns_bit_for_bit() {
        for (rows, cols) in [
            (32, 100),
            (32, 50),
            (32, 25),
            (32, 10),
            (1, 7),
            (33, 17),
            (5, 1),
        ] {
            let mut v = normals(rows * cols, 9);
            for (i, x) in [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40]
                .into_iter()
                .enumerate()
            {
                let at = (i * 7919) % v.len();
                v[at] = x;
            }
            // The first column all −0.
            for r in 0..rows {
                v[r * cols] = -0.0;
            }
            let g = || FlexTensor::from_data(TensorData::new(v.clone(), [1, rows, cols]));
            let at = format!("[1, {rows}, {cols}]");
            assert!(column_sums(&g()).is_some(), "{at}: the written-out sums");
            same(
                Flex::dense_bias_backward(g()),
                default_bias_backward::<Flex>(g()),
                &at,
            );
        }
        let stack = tensor(2 * 4 * 3, 1, [2, 4, 3]);
        assert!(column_sums(&stack).is_none());
        let view = Flex::float_swap_dims(tensor(12, 1, [1, 4, 3]), 1, 2);
        assert!(column_sums(&view).is_none());
    }

    /// The three products of a layer on flex's own route against Burn's, at sizes where
    /// flex takes its own: the forward z = x·W + b, ∂L/∂x and ∂L/∂W.
    #[test]
    fn flex_products_are_burns_bit_for_bit() {
        // (batch, d_in, d_out), all at or above FLEX_OWN_ROUTE_MIN, odd sizes included; ∂L/∂x
        // against the copy of Wᵀ in the first four, as a column-major result in the last two.
        let shapes = [
            (512, 1024, 1024),
            (256, 256, 512),
            (100, 300, 257),
            (64, 512, 300),
            (64, 512, 512),
            (37, 600, 333),
        ];
        let by_columns: Vec<bool> = shapes
            .iter()
            .map(|&(b, d_in, d_out)| column_major_pays(b, d_in, d_out))
            .collect();
        assert_eq!(by_columns, [false, false, false, false, true, true]);
        for (b, d_in, d_out) in shapes {
            assert!(b * d_in * d_out >= FLEX_OWN_ROUTE_MIN);
            let x = || tensor(b * d_in, 3, [b, d_in]);
            let w = || tensor(d_in * d_out, 1, [d_in, d_out]);
            let bias = || FlexTensor::from_data(TensorData::new(normals(d_out, 4), [d_out]));
            let g = || tensor(b * d_out, 2, [b, d_out]);
            let at = format!("{b}x{d_in}x{d_out}");
            assert!(big_matmul(&x(), &w()).is_some(), "{at}: flex's own route");
            assert!(
                big_x_backward(&w(), &g()).is_some(),
                "{at}: flex's own ∂L/∂x"
            );
            layer_is_burns(&x, &w, &bias, &g, &at);
        }
        // Below the threshold, Burn's own route.
        let (w, g) = (tensor(100, 1, [10, 10]), tensor(10, 2, [1, 10]));
        assert!(big_x_backward(&w, &g).is_none() && big_matmul(&g, &w).is_none());
    }

    /// A stack of large networks on flex's own route (trial after trial) against Burn's batched
    /// product and add (`default_*`, what the stack ran before), and each trial against the
    /// same trial run alone as one network.
    #[test]
    fn a_stack_on_flexs_own_route_is_burns_batched_product_bit_for_bit() {
        // (trials, batch, d_in, d_out): the bench's stack of 4 (128 × 1024 × 1024 a trial),
        // and odd sizes, each at or above FLEX_OWN_ROUTE_MIN per trial; ∂L/∂x as a
        // column-major result in the first and the last, against the copies of Wᵀ between.
        let shapes = [
            (4, 128, 1024, 1024),
            (2, 100, 300, 257),
            (3, 64, 512, 300),
            (3, 37, 600, 333),
        ];
        let by_columns: Vec<bool> = shapes
            .iter()
            .map(|&(_, b, d_in, d_out)| column_major_pays(b, d_in, d_out))
            .collect();
        assert_eq!(by_columns, [true, false, false, true]);
        for (t, b, d_in, d_out) in shapes {
            assert!(b * d_in * d_out >= FLEX_OWN_ROUTE_MIN);
            let x = || tensor(t * b * d_in, 3, [t, b, d_in]);
            let w = || tensor(t * d_in * d_out, 1, [t, d_in, d_out]);
            let bias = || tensor(t * d_out, 4, [t, 1, d_out]);
            let g = || tensor(t * b * d_out, 2, [t, b, d_out]);
            let at = format!("{t} x {b}x{d_in}x{d_out}");
            assert!(big_matmul(&x(), &w()).is_some(), "{at}: flex's own route");
            assert!(
                big_x_backward(&w(), &g()).is_some(),
                "{at}: flex's own ∂L/∂x"
            );
            same(
                Flex::dense(x(), w(), bias()),
                default_dense::<Flex>(x(), w(), Some(bias())),
                &format!("{at}: x·W + b"),
            );
            same(
                Flex::dense_no_bias(x(), w()),
                default_dense::<Flex>(x(), w(), None),
                &format!("{at}: x·W"),
            );
            same(
                Flex::dense_x_backward(w(), g()),
                default_x_backward::<Flex>(w(), g()),
                &format!("{at}: ∂L/∂x"),
            );
            same(
                Flex::dense_weight_backward(x(), g()),
                default_weight_backward::<Flex>(x(), g()),
                &format!("{at}: ∂L/∂W"),
            );
            // The last trial alone, as one network on the 2-D route.
            let last = |v: FlexTensor, [r, c]: [usize; 2]| {
                let v: Vec<f32> = v.into_data().to_vec().unwrap_or_default();
                let v = v[(t - 1) * r * c..].to_vec();
                FlexTensor::from_data(TensorData::new(v, [r, c]))
            };
            let alone = Flex::dense_x_backward(last(w(), [d_in, d_out]), last(g(), [b, d_out]));
            let stacked = last(Flex::dense_x_backward(w(), g()), [b, d_in]);
            same(
                stacked,
                alone,
                &format!("{at}: the last trial's ∂L/∂x alone"),
            );
        }
        // Trials of different counts, and a stack below the threshold, take Burn's route.
        let (x, w) = (
            tensor(2 * 8 * 8, 1, [2, 8, 8]),
            tensor(3 * 8 * 8, 2, [3, 8, 8]),
        );
        assert!(big_matmul(&x, &w).is_none());
        let (x, w) = (
            tensor(2 * 8 * 8, 1, [2, 8, 8]),
            tensor(2 * 8 * 8, 2, [2, 8, 8]),
        );
        assert!(big_matmul(&x, &w).is_none() && big_x_backward(&w, &x).is_none());
    }

    /// A stack's products a trial a core ([`by_trials`]) and one trial after another on both
    /// cores, bit for bit: the forward product, ∂L/∂W (through a transposed view of x) and
    /// ∂L/∂x both ways (a column-major result for the bench's 128 rows, the copy of Wᵀ for
    /// 100), an odd count of trials included.
    #[test]
    fn a_stacks_trials_on_a_core_each_are_its_trials_in_turn_bit_for_bit() {
        for (t, b, d_in, d_out) in [(4, 128, 1024, 1024), (3, 100, 300, 257)] {
            let x = tensor(t * b * d_in, 3, [t, b, d_in]);
            let w = tensor(t * d_in * d_out, 1, [t, d_in, d_out]);
            let g = tensor(t * b * d_out, 2, [t, b, d_out]);
            let x_t = Flex::float_swap_dims(x.clone(), 1, 2);
            let at = format!("{t} x {b}x{d_in}x{d_out}");
            let (each, turn): (ByTrials, ByTrials) = (|_| true, |_| false);
            for (what, by) in [("x·W", [&x, &w]), ("∂L/∂W", [&x_t, &g])] {
                let on_each = big_matmul_by(by[0], by[1], each).expect("flex's own route");
                let in_turn = big_matmul_by(by[0], by[1], turn).expect("flex's own route");
                same(on_each, in_turn, &format!("{at}: {what}"));
            }
            let on_each = big_x_backward_by(&w, &g, each).expect("flex's own route");
            let in_turn = big_x_backward_by(&w, &g, turn).expect("flex's own route");
            same(on_each, in_turn, &format!("{at}: ∂L/∂x"));
        }
    }

    #[test]
    fn within_keeps_a_view_inside_its_data() {
        // A 3 x 4 row-major matrix over 12 values, and its transposed view.
        assert!(within(12, [1, 3, 4], [0, 4, 1]));
        assert!(within(12, [1, 4, 3], [0, 1, 4]));
        // Two such matrices over 24 values, and the second one short by a value.
        assert!(within(24, [2, 3, 4], [12, 4, 1]));
        assert!(!within(23, [2, 3, 4], [12, 4, 1]));
        // One value short, a negative stride, an empty shape.
        assert!(!within(11, [1, 3, 4], [0, 4, 1]));
        assert!(!within(12, [1, 3, 4], [0, -4, 1]));
        assert!(!within(12, [1, 0, 4], [0, 4, 1]));
        // A stride whose product overflows.
        assert!(!within(12, [1, 3, 4], [0, isize::MAX, 1]));
    }
}
