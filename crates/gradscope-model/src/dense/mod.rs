//! The dense layer z = x·W + b as a Burn backend extension, so that flex can run a layer's
//! three products the fast way.
//!
//! Burn's own `linear` computes ∂L/∂x as `g.matmul(W.transpose())`. On flex that hands gemm a
//! right operand in column-major order (a transposed view of W), the one layout gemm packs
//! slowly: about 150 GFLOP/s against 200 for the forward product x·W on the 2-core machine of
//! benchmarks/README.md. Here flex first copies Wᵀ row-major (both cores, under a millisecond
//! for 1024 × 1024) and multiplies by that: the forward product's layout. For few rows against
//! wide layers (a stack's trials of batch 128) it has gemm write g·Wᵀ column-major instead, a
//! layout for which gemm reads the view in W's own order, and copies that smaller result
//! row-major (`flex.rs`, `column_major_pays`). And flex's three products (x·W, g·Wᵀ, xᵀ·g)
//! call gemm directly, as burn-flex does, but into a buffer the result tensor takes as it is,
//! where burn-flex copies each result once more (`flex.rs`). The same products, and on every
//! shape `flex_products_are_burns_bit_for_bit` and the stack's test try (odd sizes included,
//! both ways of ∂L/∂x) the same sums in the same order: Burn's results bit for bit. A shape where
//! gemm picked other kernels for the two layouts would differ in summation order only.
//!
//! Below [`FLEX_OWN_ROUTE_MIN`], one network's products on flex are written out in AVX-512
//! where the CPU has it and gemm sums them as one chain per value (`small.rs`: the seed
//! network's layers, a training step's products): Burn's bits without gemm's set-up.
//! Every other backend, and flex's other small products, run Burn's own `linear`,
//! `linear_x_backward`, `linear_weight_backward` and `linear_bias_backward` unchanged; the
//! autodiff wrapper below is Burn's (burn-autodiff 0.22.1, `ModuleOps::linear`) with those
//! calls routed through this trait.

// burn-ndarray is deprecated in Burn 0.22, but gradscope still offers it (backend.rs), and an
// extension must name every backend it can be called on.
#![allow(deprecated)]

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Cube, NdArray, backend_extension};
use burn::tensor::{Shape, Tensor};

/// Flex takes its own route for a layer's products when batch·d_in·d_out is at least this:
/// flex's own threshold for a parallel matmul (192³). Below it the copy would not pay, and gemm's
/// small-matrix kernels (one row: a matrix-vector product) sum in another order on the two
/// layouts: the seed network's 1 × 10 × 100 product differs from Burn's in 9 of 10 values.
pub const FLEX_OWN_ROUTE_MIN: usize = 192 * 192 * 192;

/// The dense layer on every backend gradscope runs: z = x·W (+ b), for one network (`x`
/// `[batch, d_in]`, `W` `[d_in, d_out]`, `b` `[d_out]`) or a stack of `T` (`x`
/// `[T, batch, d_in]`, `W` `[T, d_in, d_out]`, each trial's own kernel, `b` `[T, 1, d_out]`),
/// told apart by the kernel's rank.
#[backend_extension(Flex, NdArray, Cube, Autodiff)]
pub trait DenseBackend: Backend {
    /// z = x·W + b.
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        default_dense::<Self>(x, weight, Some(bias))
    }

    /// z = x·W, for layers without a bias.
    fn dense_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        default_dense::<Self>(x, weight, None)
    }

    /// ∂L/∂x = g·Wᵀ for z = x·W, given `grad` = ∂L/∂z.
    fn dense_x_backward(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        default_x_backward::<Self>(weight, grad)
    }

    /// ∂L/∂W = xᵀ·g for z = x·W, given `grad` = ∂L/∂z.
    fn dense_weight_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        default_weight_backward::<Self>(x, grad)
    }

    /// ∂L/∂b: `grad` summed over the batch (`[d_out]`, or `[T, 1, d_out]` for a stack).
    fn dense_bias_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        default_bias_backward::<Self>(grad)
    }
}

/// Burn's ∂L/∂b ([`DenseBackend::dense_bias_backward`]): `linear_bias_backward` for one network
/// (a stack of one reshaped around it), the sum over the batch dimension for a stack.
fn default_bias_backward<B: DenseBackend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    match grad.rank() {
        3 if one_network::<B>(&grad) => {
            let d_out = grad.shape()[2];
            let b = B::linear_bias_backward(without_trials::<B>(grad));
            B::float_reshape(b, Shape::new([1, 1, d_out]))
        }
        3 => B::float_sum_dim(grad, 1),
        _ => B::linear_bias_backward(grad),
    }
}

/// Whether `t` is a stack of one network: `[1, rows, cols]`.
///
/// A plain run is the stack of one. Its products are the 2-D layer's (Burn's `linear`, and
/// flex's own route on large layers) on its tensors without the trial dimension, so it gives
/// what one network gives bit for bit, at the speed of one network (`a_stack_of_one_is_one
/// network_bit_for_bit`); a reshape of a contiguous tensor moves no data.
fn one_network<B: Backend>(t: &FloatTensor<B>) -> bool {
    let shape = t.shape();
    shape.num_dims() == 3 && shape[0] == 1
}

/// `[1, rows, cols]` → `[rows, cols]`.
fn without_trials<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let shape = t.shape();
    B::float_reshape(t, Shape::new([shape[1], shape[2]]))
}

/// `[rows, cols]` → `[1, rows, cols]`.
fn as_one_trial<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let shape = t.shape();
    B::float_reshape(t, Shape::new([1, shape[0], shape[1]]))
}

/// Burn's own products: `linear` and its backward for one network; for a stack, the batched
/// product and the bias added as Burn's `matmul` and `add` compute them (so the same values as
/// `x.matmul(W) + b` through autodiff). A stack of one takes the backend's 2-D layer
/// ([`one_network`]).
fn default_dense<B: DenseBackend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    match weight.rank() {
        3 if one_network::<B>(&weight) => {
            let (x, weight) = (without_trials::<B>(x), without_trials::<B>(weight));
            as_one_trial::<B>(match bias {
                Some(b) => {
                    let d_out = b.shape()[2];
                    B::dense(x, weight, B::float_reshape(b, Shape::new([d_out])))
                }
                None => B::dense_no_bias(x, weight),
            })
        }
        3 => {
            let z = B::float_matmul(x, weight);
            match bias {
                Some(b) => B::float_add(z, b),
                None => z,
            }
        }
        _ => B::linear(x, weight, bias),
    }
}

fn default_x_backward<B: DenseBackend>(
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    match weight.rank() {
        3 if one_network::<B>(&weight) => as_one_trial::<B>(B::dense_x_backward(
            without_trials::<B>(weight),
            without_trials::<B>(grad),
        )),
        3 => B::float_matmul(grad, B::float_swap_dims(weight, 1, 2)),
        _ => B::linear_x_backward(weight, grad),
    }
}

fn default_weight_backward<B: DenseBackend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    match x.rank() {
        3 if one_network::<B>(&x) => as_one_trial::<B>(B::dense_weight_backward(
            without_trials::<B>(x),
            without_trials::<B>(grad),
        )),
        3 => B::float_matmul(B::float_swap_dims(x, 1, 2), grad),
        _ => B::linear_weight_backward(x, grad),
    }
}

mod flex;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod small;

impl DenseBackend for NdArray {}
impl DenseBackend for Cube {}

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
        grads.register::<B>(node.id, B::dense_weight_backward(x, grad.clone()));
    }
    grad
}

impl<B: Backend + DenseBackend> Backward<B, 3> for DenseWithBias {
    type State = DenseState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let bias = ops.parents[2].clone();
        let grad = dense_backward::<B, 3>(ops, grads, ck);
        if let Some(node) = bias {
            grads.register::<B>(node.id, B::dense_bias_backward(grad));
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

/// z = x·W + b on any device, differentiable where the device is: one network (`x`
/// `[batch, d_in]`, `weight` `[d_in, d_out]`, `bias` `[d_out]`) or a stack of `T` (`x`
/// `[T, batch, d_in]`, `weight` `[T, d_in, d_out]`, each trial's own kernel, `bias`
/// `[T, 1, d_out]`).
pub fn dense<const D: usize, const E: usize>(
    x: Tensor<D>,
    weight: Tensor<D>,
    bias: Option<Tensor<E>>,
) -> Tensor<D> {
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

/// ∂L/∂x = g·Wᵀ for [`dense`], given `grad` = ∂L/∂z; for one network flex multiplies by a
/// row-major copy of Wᵀ on large layers.
pub fn dense_x_backward<const D: usize>(weight: Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as DenseBackend>::dense_x_backward(
        weight.into_dispatch(),
        grad.into_dispatch(),
    ))
}

/// ∂L/∂W = xᵀ·g for [`dense`], given its input `x` and `grad` = ∂L/∂z.
pub fn dense_weight_backward<const D: usize>(x: Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as DenseBackend>::dense_weight_backward(
        x.into_dispatch(),
        grad.into_dispatch(),
    ))
}

/// ∂L/∂b for [`dense`], given `grad` = ∂L/∂z: `grad` summed over the batch, keeping the
/// dimension (`[1, d_out]`, or `[T, 1, d_out]` for a stack), the sum Burn's
/// `linear_bias_backward` takes (a stack of one as one network, [`one_network`]).
pub fn dense_bias_backward<const D: usize>(grad: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    match D {
        3 => Tensor::from_dispatch(<Dispatch as DenseBackend>::dense_bias_backward(
            grad.into_dispatch(),
        )),
        // `linear_bias_backward`'s sum, before it drops the summed dimension.
        _ => grad.sum_dim(D - 2),
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::Linear;
    use burn::tensor::Device;

    use super::*;
    use crate::{Activation, HostRng, Initializer, Mlp, MlpConfig, collect_gradients};

    fn normals(n: usize, seed: u64) -> Vec<f32> {
        HostRng::new(seed, 0).normals_f32(n, 0.0, 1.0)
    }

    /// Every gradient of a network wide enough for flex's route (batch · width² above the
    /// threshold) through `dense`, against the same network through Burn's `Linear::forward`:
    /// the parameters' gradients and every δ_l, bit for bit, on flex and on ndarray.
    #[test]
    #[allow(deprecated)]
    fn an_mlp_through_dense_has_burns_gradients_bit_for_bit() {
        let (batch, width) = (128, 256);
        assert!(batch * width * width >= FLEX_OWN_ROUTE_MIN);
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
                let trace = crate::engine::forward_with(
                    input.to_device::<2>(&device),
                    mlp.layers.len(),
                    &mlp.activations,
                    crate::Record::ALL,
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
