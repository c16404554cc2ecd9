//! The optimisers (PyTorch's SGD with momentum and Adam) and the clippings, as tensor
//! operations on the backend in f32, in the order `torch.optim` (single-tensor, not fused)
//! performs them. Parameters and state stay on the device between steps.

use burn::tensor::{Device, Tensor};
use gradscope_report::names;

use super::*;

/// A network's parameters on the device, in collection order (`layers.0.weight`,
/// `layers.0.bias`, ...), as the engine's stack of one holds them: each kernel
/// `[1, d_in, d_out]`, each bias `[1, 1, d_out]` (the shape of the engine's bias gradient).
pub(super) type Params = Vec<Tensor<3>>;

/// The parameters of `w` on `device`, in collection order.
pub(super) fn params_of(w: &MlpWeights, device: &Device) -> Params {
    w.layers
        .iter()
        .flat_map(|l| {
            let bias = l.bias.as_ref().map(|b| as_param(b).to_device::<3>(device));
            std::iter::once(as_param(&l.weight).to_device::<3>(device)).chain(bias)
        })
        .collect()
}

/// `params` (collection order) read back to the host, as weights of `arch`'s architecture
/// (which of its layers have a bias, and its activations).
pub(super) fn host_weights(arch: &MlpWeights, params: &Params) -> MlpWeights {
    // [1, d_in, d_out] → [d_in, d_out] and [1, 1, d_out] → [1, d_out].
    let mut params = params.iter().map(|p| {
        let mut t = HostTensor::from_tensor(p.clone());
        t.shape.remove(0);
        t
    });
    let mut next = || {
        params
            .next()
            .unwrap_or_else(|| HostTensor::new(vec![0], Vec::new()))
    };
    MlpWeights {
        layers: arch
            .layers
            .iter()
            .map(|l| {
                let weight = next();
                let bias = l.bias.as_ref().map(|_| {
                    // [1, d_out] → [d_out], the shape of a Linear bias.
                    let mut b = next();
                    b.shape.remove(0);
                    b
                });
                gradscope_model::LayerWeights { weight, bias }
            })
            .collect(),
        activations: arch.activations.clone(),
    }
}

/// Optimiser state on the device: one buffer (SGD momentum) or two (Adam) per parameter, in
/// collection order and shaped as [`Params`]; `None` where PyTorch has none yet (SGD's
/// momentum buffer before the first step).
#[derive(Clone)]
pub(super) struct OptimizerState {
    pub(super) first: Vec<Option<Tensor<3>>>,
    pub(super) second: Vec<Option<Tensor<3>>>,
    pub(super) steps: i32,
}

/// The parameter names in collection order.
fn param_names(w: &MlpWeights) -> Vec<String> {
    w.layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            let bias = l.bias.as_ref().map(|_| names::param(i, names::Param::Bias));
            std::iter::once(names::param(i, names::Param::Weight)).chain(bias)
        })
        .collect()
}

/// The state's buffers with their PyTorch names (none for plain SGD, which keeps none).
fn buffer_names(train: &Train) -> &'static [&'static str] {
    match train.optimizer {
        Optimizer::Sgd { momentum: 0.0 } => &[],
        Optimizer::Sgd { .. } => &["momentum_buffer"],
        Optimizer::Adam { .. } => &["exp_avg", "exp_avg_sq"],
    }
}

impl OptimizerState {
    /// The state as named host tensors shaped as the parameters `w` (see
    /// [`TrainOutcome::optimizer`]); a buffer PyTorch has not made yet is written as zeros.
    pub(super) fn tensors(&self, train: &Train, w: &MlpWeights) -> Vec<NamedTensor> {
        let shapes: Vec<Vec<usize>> = w
            .layers
            .iter()
            .flat_map(|l| std::iter::once(&l.weight).chain(l.bias.as_ref()))
            .map(|t| t.shape.clone())
            .collect();
        let names = param_names(w);
        buffer_names(train)
            .iter()
            .zip([&self.first, &self.second])
            .flat_map(|(prefix, buffers)| {
                names
                    .iter()
                    .zip(&shapes)
                    .zip(buffers)
                    .map(move |((name, shape), b)| {
                        let data = match b {
                            Some(b) => HostTensor::from_tensor(b.clone()).data,
                            None => vec![0.0; shape.iter().product()],
                        };
                        NamedTensor {
                            name: format!("{prefix}.{name}"),
                            tensor: HostTensor::new(shape.clone(), data),
                        }
                    })
            })
            .collect()
    }

    /// The state a run starts from: the one saved beside `loaded` weights where the file
    /// holds one (a record's `weights.safetensors`, a dump: the run then continues or replays
    /// exactly), else none and no steps taken.
    pub(super) fn start(
        train: &Train,
        w: &MlpWeights,
        loaded: Option<&crate::config::LoadedWeights>,
        device: &Device,
    ) -> Self {
        let names = param_names(w);
        let n = names.len();
        let mut state = Self {
            first: vec![None; n],
            second: vec![None; n],
            steps: 0,
        };
        let Some(loaded) = loaded.filter(|l| !l.optimizer.is_empty()) else {
            return state;
        };
        let mut loaded_any = false;
        for (prefix, buffers) in buffer_names(train)
            .iter()
            .zip([&mut state.first, &mut state.second])
        {
            for (name, b) in names.iter().zip(buffers.iter_mut()) {
                let full = format!("{prefix}.{name}");
                if let Some(t) = loaded.optimizer.iter().find(|t| t.name == full) {
                    *b = Some(as_param(&t.tensor).to_device(device));
                    loaded_any = true;
                }
            }
        }
        if loaded_any {
            state.steps = i32::try_from(loaded.optimizer_steps).unwrap_or(i32::MAX);
        }
        state
    }

    /// One step of `train`'s optimiser: the new parameters from `params` and `grads` (both in
    /// collection order), as `torch.optim` computes them in f32. The scalars (learning rate,
    /// bias corrections) are computed in f64 and applied as the tensor's type, as PyTorch
    /// applies its Python floats.
    pub(super) fn step(&mut self, train: &Train, params: &Params, grads: &[Tensor<3>]) -> Params {
        self.steps += 1;
        let lr = train.learning_rate;
        let t = self.steps;
        params
            .iter()
            .zip(grads)
            .enumerate()
            .map(|(i, (p, g))| {
                let (p, g) = (p.clone(), g.clone());
                match train.optimizer {
                    Optimizer::Sgd { momentum } => {
                        let direction = if momentum == 0.0 {
                            g
                        } else {
                            // torch: the buffer starts as a copy of the first gradient, then
                            // buf.mul_(momentum).add_(grad).
                            let b = match self.first[i].take() {
                                None => g,
                                Some(b) => b.mul_scalar(momentum).add(g),
                            };
                            self.first[i] = Some(b.clone());
                            b
                        };
                        p.sub(direction.mul_scalar(lr))
                    }
                    Optimizer::Adam {
                        beta1,
                        beta2,
                        epsilon,
                    } => {
                        let zeros = || g.zeros_like();
                        let m = self.first[i].take().unwrap_or_else(zeros);
                        let v = self.second[i].take().unwrap_or_else(zeros);
                        // exp_avg.lerp_(grad, 1 − β1); exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2).
                        let m = m.clone().add(g.clone().sub(m).mul_scalar(1.0 - beta1));
                        let v = v
                            .mul_scalar(beta2)
                            .add(g.clone().mul(g).mul_scalar(1.0 - beta2));
                        let c1 = 1.0 - beta1.powi(t);
                        let c2 = 1.0 - beta2.powi(t);
                        // denom = (exp_avg_sq.sqrt() / √c2).add_(ε);
                        // param.addcdiv_(exp_avg, denom, value = −lr / c1).
                        let denom = v.clone().sqrt().div_scalar(c2.sqrt()).add_scalar(epsilon);
                        let p = p.sub(m.clone().div(denom).mul_scalar(lr / c1));
                        self.first[i] = Some(m);
                        self.second[i] = Some(v);
                        p
                    }
                }
            })
            .collect()
    }
}

/// A host tensor shaped as [`Params`] holds it: a kernel `[d_in, d_out]` as
/// `[1, d_in, d_out]`, a bias `[d]` as `[1, 1, d]`.
pub(super) fn as_param(t: &HostTensor) -> HostTensor {
    let shape = match t.shape.as_slice() {
        [d] => vec![1, 1, *d],
        inner => std::iter::once(1).chain(inner.iter().copied()).collect(),
    };
    HostTensor::new(shape, t.data.clone())
}

/// The gradients after `clip`, given their global L2 `norm`: PyTorch's `clip_grad_norm_`
/// scales them by max / (norm + 1e-6) where that is below 1; `clip_grad_value_` clamps each
/// value to [−max, max].
pub(super) fn clip(grads: &[Tensor<3>], clip: Clip, norm: f64) -> Vec<Tensor<3>> {
    match clip {
        Clip::None => grads.to_vec(),
        Clip::Norm { max } => {
            let coef = (max / (norm + 1e-6)).min(1.0);
            if coef < 1.0 {
                grads.iter().map(|g| g.clone().mul_scalar(coef)).collect()
            } else {
                grads.to_vec()
            }
        }
        Clip::Value { max } => grads.iter().map(|g| g.clone().clamp(-max, max)).collect(),
    }
}
