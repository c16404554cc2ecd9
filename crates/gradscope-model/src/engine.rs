//! The one network engine: a network is a sequence of dense layers with an activation after
//! every hidden one, run as a stack of `T ≥ 1` networks ([`MlpStack`](crate::MlpStack), tensors
//! `[T, batch, d]`). Every run kind takes it: a plain run, `compare` and a training step are the
//! stack of one, a sweep's trials a stack of many, and `bench` times both. A stack of one takes
//! the 2-D layer's products on its tensors without the trial dimension ([`crate::dense`]), so it
//! is one network bit for bit and keeps flex's fast products. [`Mlp`](crate::Mlp), one network
//! of Burn `Linear` modules at rank 2, is what the tests hold the stack against.
//!
//! Each holder gives the layer's three products ([`Layers::dense`], [`Layers::dense_x_backward`],
//! [`Layers::dense_weight_backward`]); this module owns what is built from them, once:
//! - the forward pass ([`Layers::forward`]), recording what the run asks for ([`Record`]);
//! - the backward pass written out ([`Layers::backward`]): δ_L given, then
//!   δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ'(z_{l−1}) ([`Activation::backward`]), ∂L/∂W_l = a_{l−1}ᵀ·δ_l and
//!   ∂L/∂b_l = Σ_batch δ_l.
//!
//! The other backward strategy is Burn's autodiff through the same forward: on an autodiff
//! device [`Layers::dense`] is a tracked operation whose backward calls the same two products
//! ([`crate::dense`]). Plain runs, sweeps and `compare` take autodiff (δ_l through zero probes),
//! training and `compare --check-backward` the written-out pass; the f64 oracle checks both.

use burn::tensor::Tensor;

use crate::activation::Activation;

/// What a forward pass keeps besides its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Each z_l.
    pub pre_activations: bool,
    /// Each hidden layer's a_l = φ(z_l) (and the input): what [`Layers::backward`] reads.
    pub activations: bool,
    /// A zero leaf added to each z_l, whose autodiff gradient is δ_l.
    pub probes: bool,
}

impl Record {
    /// The output only (a benchmark's pass).
    pub const OUTPUT: Self = Self {
        pre_activations: false,
        activations: false,
        probes: false,
    };
    /// z_l and a_l, no probes: what the written-out backward pass needs.
    pub const PASS: Self = Self {
        pre_activations: true,
        activations: true,
        probes: false,
    };
    /// Everything: z_l, a_l and the δ probes (a plain run's autodiff pass).
    pub const ALL: Self = Self {
        pre_activations: true,
        activations: true,
        probes: true,
    };
}

/// What one forward pass recorded, per layer `l` (0-based, output layer last). `D` is 2 for an
/// [`Mlp`](crate::Mlp) (`[batch, d]` tensors) and 3 for an [`MlpStack`](crate::MlpStack)
/// (`[T, batch, d]`).
#[derive(Debug, Clone)]
pub struct ForwardTrace<const D: usize = 2> {
    /// The network's input.
    pub input: Tensor<D>,
    /// The network's output, `[batch, d_output]`.
    pub output: Tensor<D>,
    /// z_l = a_{l-1}·W_l + b_l, `[batch, d_l]`; the last one equals `output`. Empty unless
    /// [`Record::pre_activations`].
    pub pre_activations: Vec<Tensor<D>>,
    /// a_l = φ(z_l) for each hidden layer. Empty unless [`Record::activations`].
    pub activations: Vec<Tensor<D>>,
    /// Zero leaves added to each z_l; their gradients are δ_l = ∂loss/∂z_l. Empty unless
    /// [`Record::probes`].
    pub delta_probes: Vec<Tensor<D>>,
}

/// What the written-out backward pass gives, per layer (input layer first).
#[derive(Debug, Clone)]
pub struct Backward<const D: usize = 2> {
    /// δ_l = ∂loss/∂z_l, shaped as z_l.
    pub deltas: Vec<Tensor<D>>,
    /// ∂loss/∂W_l, shaped as W_l (`[d_in, d_out]`, or `[T, d_in, d_out]`).
    pub weights: Vec<Tensor<D>>,
    /// ∂loss/∂b_l where layer `l` has a bias: `[1, d_out]` (or `[T, 1, d_out]`), δ_l summed
    /// over the batch.
    pub biases: Vec<Option<Tensor<D>>>,
}

/// A network as the engine sees it: its layers' products, at rank `D`.
pub trait Layers<const D: usize> {
    /// The number of dense layers (hidden layers + the output layer).
    fn depth(&self) -> usize;

    /// The activation after each hidden layer.
    fn activations(&self) -> &[Activation];

    /// Whether layer `l` has a bias.
    fn has_bias(&self, l: usize) -> bool;

    /// z = x·W_l + b_l.
    fn dense(&self, l: usize, x: Tensor<D>) -> Tensor<D>;

    /// ∂L/∂x = g·W_lᵀ, given `grad` = ∂L/∂z of layer `l`.
    fn dense_x_backward(&self, l: usize, grad: Tensor<D>) -> Tensor<D>;

    /// ∂L/∂W_l = xᵀ·g, given layer `l`'s input `x` and `grad` = ∂L/∂z.
    fn dense_weight_backward(&self, l: usize, x: Tensor<D>, grad: Tensor<D>) -> Tensor<D>;

    /// The forward pass on `input`, recording what `record` asks for.
    ///
    /// Probes: a zero leaf requiring grad is added to each pre-activation so that its gradient
    /// after `backward` is δ_l (Burn cannot `require_grad` an intermediate tensor, burn
    /// #1802).
    ///
    /// # Panics
    /// Panics if there are fewer activations than hidden layers (a programming error).
    fn forward(&self, input: Tensor<D>, record: Record) -> ForwardTrace<D> {
        forward_with(input, self.depth(), self.activations(), record, |l, x| {
            self.dense(l, x)
        })
    }

    /// The backward pass written out, from `delta` = ∂loss/∂output, over a forward `trace`
    /// that recorded z_l and a_l ([`Record::PASS`]).
    ///
    /// # Panics
    /// Panics if `trace` lacks them (a programming error).
    fn backward(&self, trace: &ForwardTrace<D>, mut delta: Tensor<D>) -> Backward<D> {
        let n = self.depth();
        assert!(
            trace.pre_activations.len() == n && trace.activations.len() + 1 == n,
            "the written-out backward pass needs every z_l and a_l (Record::PASS)"
        );
        let mut deltas = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        let mut biases = Vec::with_capacity(n);
        for l in (0..n).rev() {
            let x = if l == 0 {
                trace.input.clone()
            } else {
                trace.activations[l - 1].clone()
            };
            weights.push(self.dense_weight_backward(l, x, delta.clone()));
            // Burn's `linear_bias_backward`: the sum over the batch (keeping the dimension).
            biases.push(
                self.has_bias(l)
                    .then(|| crate::dense::dense_bias_backward(delta.clone())),
            );
            if l == 0 {
                deltas.push(delta);
                break;
            }
            let back = self.dense_x_backward(l, delta.clone());
            deltas.push(delta);
            delta = self.activations()[l - 1].backward(trace.pre_activations[l - 1].clone(), back);
        }
        deltas.reverse();
        weights.reverse();
        biases.reverse();
        Backward {
            deltas,
            weights,
            biases,
        }
    }
}

/// The forward pass of `layers` layers on `input`, `dense(l, a)` giving z_l from the previous
/// layer's output, with `activations[l]` after every layer but the last ([`Layers::forward`];
/// a test drives it with Burn's own `Linear` to hold [`crate::dense`] against it).
///
/// # Panics
/// Panics if there are fewer activations than hidden layers (a programming error).
pub fn forward_with<const D: usize>(
    input: Tensor<D>,
    layers: usize,
    activations: &[Activation],
    record: Record,
    mut dense: impl FnMut(usize, Tensor<D>) -> Tensor<D>,
) -> ForwardTrace<D> {
    let last = layers - 1;
    assert!(
        activations.len() >= last,
        "{layers} layers need {last} activations, got {}",
        activations.len()
    );
    let mut trace = ForwardTrace {
        input: input.clone(),
        output: input.clone(),
        pre_activations: Vec::with_capacity(if record.pre_activations { layers } else { 0 }),
        activations: Vec::with_capacity(if record.activations { last } else { 0 }),
        delta_probes: Vec::new(),
    };
    let mut x = input;
    // Each hidden layer's activation, then none after the output layer.
    let after = activations.iter().take(last).map(Some).chain([None]);
    for (l, activation) in after.enumerate() {
        let mut z = dense(l, x);
        if record.probes {
            // z's own type: a probe of the default f32 would promote a 16-bit pass.
            let probe = z.zeros_like().require_grad();
            z = z + probe.clone();
            trace.delta_probes.push(probe);
        }
        if record.pre_activations {
            trace.pre_activations.push(z.clone());
        }
        x = match activation {
            Some(activation) => {
                let a = activation.forward(z);
                if record.activations {
                    trace.activations.push(a.clone());
                }
                a
            }
            None => z,
        };
    }
    trace.output = x;
    trace
}
