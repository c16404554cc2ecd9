//! Flex's stable cross-entropy and its gradient in one host pass over the logits, bit for bit
//! the tensor operations `gradscope::loss` defines them by, as a training step takes them:
//!
//! - value: `(log_softmax(x, 1) · onehot).sum().neg().div_scalar(b)`, where burn 0.22.1's
//!   default `log_softmax` is `x − m`, then `− ln(sum_dim(exp(x − m), 1))` with `m` the row's
//!   `max_dim`;
//! - gradient: `(softmax(x, 1) − onehot).div_scalar(b)`, where burn-flex's fused softmax
//!   takes `e = exp(x − m)`, sums a row from +0 in index order, and multiplies by `1 / sum`.
//!
//! The reductions burn-flex does with SIMD (`sum_dim` over a row, `sum` over the batch) are
//! its own kernels (`burn_flex::simd::kernels`), called on the same values, so their order is
//! burn-flex's on whatever vector width it picks at run time. Both `exp(x − m)` are one.
//!
//! Burn's ops run instead ([`cross_entropy`] gives `None`) for any tensor other than a plain
//! f32 flex tensor laid out row-major, for a batch of 4 Mi values or more (where flex's sum
//! goes parallel), a label of k or more (no column of the one-hot), a NaN or an infinity among the
//! logits (where max's and the sums' handling of them would have to be matched), and a row
//! whose max is 0 with both +0 and −0 in it (which zero a max returns is the kernel's choice;
//! `x − m` keeps it).

use burn::backend::flex::FlexTensor;
use burn::backend::flex::simd::kernels;
use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
use burn::tensor::{Shape, Tensor, TensorData};

/// Flex's sum goes parallel (another order) from this many values.
const FLEX_PARALLEL_SUM: usize = 4 * 1024 * 1024;

/// The stable cross-entropy of `output` `[b, k]` against `labels` (`b` class indices, as
/// f32), and its gradient ∂loss/∂output, computed on the host where `output` is a plain f32
/// flex tensor (see the module's text for when it is not and Burn's ops must run).
pub fn cross_entropy(output: &Tensor<2>, labels: &[f32]) -> Option<(Tensor<1>, Tensor<2>)> {
    let [b, k] = output.dims();
    if b == 0 || k == 0 || labels.len() != b || b * k >= FLEX_PARALLEL_SUM {
        return None;
    }
    // As `gradscope::loss`'s one-hot takes a label: `label as usize`.
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    if labels.iter().any(|&l| l >= k) {
        return None;
    }
    let dispatch = output.clone().into_dispatch();
    if !matches!(dispatch.autodiff, DispatchAutodiffContext::Disabled)
        || !matches!(dispatch.kind, DispatchTensorKind::Flex(_))
    {
        return None;
    }
    let x = crate::sums::host_values(&dispatch)?;
    if x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let batch = b as f32;
    let mut shifted = Vec::with_capacity(b * k);
    let mut exps = Vec::with_capacity(b * k);
    let mut gradient = Vec::with_capacity(b * k);
    for (row, &label) in x.chunks_exact(k).zip(&labels) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == 0.0
            && row.iter().any(|v| v.to_bits() == 0)
            && row.iter().any(|v| v.to_bits() == 0x8000_0000)
        {
            return None;
        }
        let mut sum = 0.0f32;
        let start = exps.len();
        for &v in row {
            let s = v - max;
            let e = s.exp();
            shifted.push(s);
            exps.push(e);
            sum += e;
        }
        let inv = 1.0f32 / sum;
        for (j, &e) in exps[start..].iter().enumerate() {
            let onehot = if j == label { 1.0 } else { 0.0 };
            gradient.push((e * inv - onehot) / batch);
        }
    }
    let mut row_sums = vec![0.0f32; b];
    kernels::sum_rows_f32(&exps, &mut row_sums, b, k);
    let picked: Vec<f32> = shifted
        .chunks_exact(k)
        .zip(&row_sums)
        .zip(&labels)
        .flat_map(|((row, s), &label)| {
            let log_sum = s.ln();
            row.iter().enumerate().map(move |(j, &v)| {
                let onehot = if j == label { 1.0 } else { 0.0 };
                (v - log_sum) * onehot
            })
        })
        .collect();
    let value = -kernels::sum_f32(&picked) / batch;
    Some((flex(vec![value], [1]), flex(gradient, [b, k])))
}

/// `values` as an f32 flex tensor of `shape`, outside autodiff.
fn flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    let t = FlexTensor::from_data(TensorData::new(values, Shape::new(shape)));
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}
