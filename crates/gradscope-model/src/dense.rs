//! The dense layer z = x·W + b as a Burn backend extension, so that flex can take the input
//! gradient ∂L/∂x = g·Wᵀ the fast way round.
//!
//! Burn's own `linear` computes ∂L/∂x as `g.matmul(W.transpose())`. On flex that hands gemm a
//! right operand in column-major order (a transposed view of W), the one layout gemm packs
//! slowly: about 150 GFLOP/s against 200 for the forward product x·W on the 2-core machine of
//! benchmarks/README.md. Here flex first copies Wᵀ row-major (both cores, a few tenths of a
//! millisecond for 1024 × 1024) and multiplies by that: the forward product's layout. The same
//! products, and on every shape `dense_x_backward_is_burns_bit_for_bit` tries (odd sizes
//! included) the same sums in the same order: Burn's result bit for bit. A shape where gemm
//! picked other kernels for the two layouts would differ in summation order only.
//!
//! Every other backend, and flex below [`FLEX_TRANSPOSED_MIN`], runs Burn's own `linear`,
//! `linear_x_backward`, `linear_weight_backward` and `linear_bias_backward` unchanged; the
//! autodiff wrapper below is Burn's (burn-autodiff 0.22.1, `ModuleOps::linear`) with the one
//! call swapped.

// burn-ndarray is deprecated in Burn 0.22, but gradscope still offers it (backend.rs), and an
// extension must name every backend it can be called on.
#![allow(deprecated)]

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Cube, Flex, NdArray, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

/// Flex takes the transposed route for ∂L/∂x when batch·d_in·d_out is at least this: flex's
/// own threshold for a parallel matmul (192³). Below it the copy would not pay, and gemm's
/// small-matrix kernels (one row: a matrix-vector product) sum in another order on the two
/// layouts: the seed network's 1 × 10 × 100 product differs from Burn's in 9 of 10 values.
pub const FLEX_TRANSPOSED_MIN: usize = 192 * 192 * 192;

/// The dense layer on every backend gradscope runs: z = x·W (+ b).
#[backend_extension(Flex, NdArray, Cube, Autodiff)]
pub trait DenseBackend: Backend {
    /// z = x·W + b: `x` `[batch, d_in]`, `weight` `[d_in, d_out]`, `bias` `[d_out]`.
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, weight, Some(bias))
    }

    /// z = x·W, for layers without a bias.
    fn dense_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear(x, weight, None)
    }

    /// ∂L/∂x = g·Wᵀ for z = x·W, given `grad` = ∂L/∂z `[batch, d_out]`.
    fn dense_x_backward(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_x_backward(weight, grad)
    }
}

impl DenseBackend for NdArray {}
impl DenseBackend for Cube {}

impl DenseBackend for Flex {
    fn dense_x_backward(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        match transposed_copy(&weight, &grad) {
            Some(weight_t) => Self::float_matmul(grad, weight_t),
            None => Self::linear_x_backward(weight, grad),
        }
    }
}

/// Wᵀ as a row-major flex tensor, where g·Wᵀ is large enough for the copy to pay and W is a
/// plain row-major f32 matrix; `None` otherwise.
fn transposed_copy(weight: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    let (w, g) = (weight.layout(), grad.layout());
    let (ws, gs) = (w.shape(), g.shape());
    let plain = weight.dtype() == DType::F32 && w.is_contiguous() && w.start_offset() == 0;
    if !plain || ws.num_dims() != 2 || gs.num_dims() != 2 {
        return None;
    }
    let (rows, cols) = (ws[0], ws[1]);
    if gs[0].saturating_mul(rows).saturating_mul(cols) < FLEX_TRANSPOSED_MIN {
        return None;
    }
    let src = weight.storage::<f32>().get(..rows * cols)?;
    let data = TensorData::new(transpose(src, rows, cols), [cols, rows]);
    Some(FlexTensor::from_data(data))
}

/// The transpose of the row-major `rows × cols` matrix `src`, row-major (`cols × rows`).
/// Destination rows are filled in strips of 8, one strip a task: each reads 8 consecutive
/// values of every source row and writes 8 destination rows (wider strips write more rows
/// 4 KiB apart at once than the cache keeps apart, and were 4× slower at 1024 × 1024).
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const STRIP: usize = 8;
    let mut dst = vec![0f32; rows * cols];
    if rows == 0 || cols == 0 {
        return dst;
    }
    dst.par_chunks_mut(rows * STRIP)
        .enumerate()
        .for_each(|(strip, out)| {
            let j0 = strip * STRIP;
            let width = out.len() / rows;
            for (i, row) in src.chunks_exact(cols).enumerate() {
                for (jj, v) in row[j0..j0 + width].iter().enumerate() {
                    out[jj * rows + i] = *v;
                }
            }
        });
    dst
}

#[derive(Debug)]
struct DenseWithBias;

#[derive(Debug)]
struct DenseNoBias;

/// The tensors a dense backward step reads: x (for ∂L/∂W) and W (for ∂L/∂x), each kept only
/// where the other one needs a gradient.
type DenseState = (Option<NodeId>, Option<NodeId>);

/// ∂L/∂x and ∂L/∂W for the tracked parents; `grad` is ∂L/∂z.
fn dense_backward<B: Backend + DenseBackend, const N: usize>(
    ops: Ops<DenseState, N>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) -> FloatTensor<B> {
    let grad = grads.consume::<B>(&ops.node);
    let (x_state, weight_state) = ops.state;
    let x = x_state.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
    let weight = weight_state.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
    if let (Some(node), Some(weight)) = (&ops.parents[0], weight) {
        grads.register::<B>(node.id, B::dense_x_backward(weight, grad.clone()));
    }
    if let (Some(node), Some(x)) = (&ops.parents[1], x) {
        grads.register::<B>(node.id, B::linear_weight_backward(x, grad.clone()));
    }
    grad
}

impl<B: Backend + DenseBackend> Backward<B, 3> for DenseWithBias {
    type State = DenseState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let bias = ops.parents[2].clone();
        let grad = dense_backward::<B, 3>(ops, grads, ck);
        if let Some(node) = bias {
            grads.register::<B>(node.id, B::linear_bias_backward(grad));
        }
    }
}

impl<B: Backend + DenseBackend> Backward<B, 2> for DenseNoBias {
    type State = DenseState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        dense_backward::<B, 2>(ops, grads, ck);
    }
}

impl<B: Backend + DenseBackend, C: CheckpointStrategy> DenseBackend for Autodiff<B, C> {
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
        match DenseWithBias
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                // x is only needed for the weight gradient, and W only for x's.
                let x_state = weight_tracked.then(|| prep.checkpoint(&x));
                let weight_state = x_tracked.then(|| prep.checkpoint(&weight));
                let z = B::dense(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish((x_state, weight_state), z)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn dense_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
        match DenseNoBias
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = weight_tracked.then(|| prep.checkpoint(&x));
                let weight_state = x_tracked.then(|| prep.checkpoint(&weight));
                let z = B::dense_no_bias(x.into_primitive(), weight.into_primitive());
                prep.finish((x_state, weight_state), z)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense_no_bias(
                x.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }
}

/// z = x·W + b on any device, differentiable where the device is: `x` `[batch, d_in]`,
/// `weight` `[d_in, d_out]`, `bias` `[d_out]`.
pub fn dense(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    use burn::backend::Dispatch;
    let z = match bias {
        Some(b) => <Dispatch as DenseBackend>::dense(
            x.into_dispatch(),
            weight.into_dispatch(),
            b.into_dispatch(),
        ),
        None => {
            <Dispatch as DenseBackend>::dense_no_bias(x.into_dispatch(), weight.into_dispatch())
        }
    };
    Tensor::from_dispatch(z)
}

#[cfg(test)]
mod tests {
    use burn::backend::ops::ModuleOps;
    use burn::nn::Linear;
    use burn::tensor::Device;

    use super::*;
    use crate::{Activation, HostRng, Initializer, Mlp, MlpConfig, collect_gradients};

    fn bits(t: FlexTensor) -> Vec<u32> {
        let v: Vec<f32> = t.into_data().to_vec().unwrap_or_default();
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn normals(n: usize, seed: u64) -> Vec<f32> {
        HostRng::new(seed, 0).normals_f32(n, 0.0, 1.0)
    }

    #[test]
    fn transpose_moves_every_element_once() {
        // Odd widths leave a last strip narrower than 8; 1-row and 1-column matrices too.
        for (rows, cols) in [(1, 1), (1, 9), (9, 1), (3, 8), (8, 3), (17, 33), (64, 130)] {
            let src: Vec<f32> = (0..rows * cols).map(|k| k as f32).collect();
            let t = transpose(&src, rows, cols);
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

    #[test]
    fn dense_x_backward_is_burns_bit_for_bit() {
        // (batch, d_in, d_out), all at or above FLEX_TRANSPOSED_MIN, odd sizes included.
        for (b, d_in, d_out) in [
            (512, 1024, 1024),
            (256, 256, 512),
            (100, 300, 257),
            (64, 512, 300),
        ] {
            assert!(b * d_in * d_out >= FLEX_TRANSPOSED_MIN);
            let w =
                || FlexTensor::from_data(TensorData::new(normals(d_in * d_out, 1), [d_in, d_out]));
            let g = || FlexTensor::from_data(TensorData::new(normals(b * d_out, 2), [b, d_out]));
            assert!(
                transposed_copy(&w(), &g()).is_some(),
                "{b}x{d_in}x{d_out}: the fast route"
            );
            let ours = bits(Flex::dense_x_backward(w(), g()));
            let burns = bits(<Flex as ModuleOps<Flex>>::linear_x_backward(w(), g()));
            assert_eq!(ours.len(), b * d_in);
            let differ = ours.iter().zip(&burns).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ, 0,
                "{b}x{d_in}x{d_out}: {differ} values differ from Burn's"
            );
        }
        // Below the threshold, Burn's own route.
        let w = FlexTensor::from_data(TensorData::new(normals(100, 1), [10, 10]));
        let g = FlexTensor::from_data(TensorData::new(normals(10, 2), [1, 10]));
        assert!(transposed_copy(&w, &g).is_none());
    }

    /// Every gradient of a network wide enough for flex's route (batch · width² above the
    /// threshold) through `dense`, against the same network through Burn's `Linear::forward`:
    /// the parameters' gradients and every δ_l, bit for bit, on flex and on ndarray.
    #[test]
    #[allow(deprecated)]
    fn an_mlp_through_dense_has_burns_gradients_bit_for_bit() {
        let (batch, width) = (128, 256);
        assert!(batch * width * width >= FLEX_TRANSPOSED_MIN);
        let config = MlpConfig {
            d_input: width,
            hidden: vec![width; 3],
            d_output: width,
            activations: vec![Activation::Tanh; 3],
            bias: true,
            kernel_init: Initializer::GlorotUniform,
            bias_init: Initializer::GlorotUniform,
            gain: 1.0,
            seed: 7,
        };
        let weights = config.draw_weights();
        let input = crate::HostTensor::new(vec![batch, width], normals(batch * width, 3));
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            let grads_of = |burns: bool| -> Vec<Vec<u32>> {
                let mlp = Mlp::from_weights(&weights, &device);
                let linear = |l: usize, x: Tensor<2>| -> Tensor<2> {
                    let layer: &Linear = &mlp.layers[l];
                    if burns {
                        layer.forward(x)
                    } else {
                        dense(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
                    }
                };
                let trace = crate::ForwardTrace::record(
                    input.to_device::<2>(&device),
                    mlp.layers.len(),
                    &mlp.activations,
                    true,
                    linear,
                );
                let loss = (trace.output.clone() * trace.output.clone()).sum();
                let mut grads = loss.backward();
                let mut out: Vec<Vec<u32>> = trace
                    .delta_probes
                    .iter()
                    .map(|p| {
                        let g = p.grad(&grads).map(crate::HostTensor::from_tensor);
                        g.map(|g| g.data.iter().map(|x| x.to_bits()).collect())
                            .unwrap_or_default()
                    })
                    .collect();
                let params = collect_gradients(&mlp, &mut grads).unwrap_or_default();
                out.extend(
                    params
                        .iter()
                        .map(|p| p.tensor.data.iter().map(|x| x.to_bits()).collect()),
                );
                out
            };
            let (ours, burns) = (grads_of(false), grads_of(true));
            assert_eq!(ours.len(), 4 + 8, "4 δ_l and 8 parameters");
            for (k, (a, b)) in ours.iter().zip(&burns).enumerate() {
                assert!(!a.is_empty(), "{device:?}: gradient {k} missing");
                assert_eq!(a.len(), b.len(), "{device:?}: gradient {k}'s size");
                let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert_eq!(
                    differ, 0,
                    "{device:?}: {differ} values of gradient {k} differ from Burn's"
                );
            }
        }
    }
}
