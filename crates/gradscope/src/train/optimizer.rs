//! The optimisers (PyTorch's SGD with momentum and Adam) and the clippings, on the host in
//! f64, stored as f32.

use super::*;

/// Optimiser state: one buffer (SGD momentum) or two (Adam) per parameter tensor.
#[derive(Clone)]
pub(super) struct OptimizerState {
    pub(super) first: Vec<Vec<f32>>,
    pub(super) second: Vec<Vec<f32>>,
    pub(super) steps: i32,
}

/// Parameters in collection order (`layers.0.weight`, `layers.0.bias`, ...), mutable.
pub(super) fn params_mut(w: &mut MlpWeights) -> Vec<&mut HostTensor> {
    w.layers
        .iter_mut()
        .flat_map(|l| std::iter::once(&mut l.weight).chain(l.bias.as_mut()))
        .collect()
}

/// The global L2 norm of `grads`.
pub(super) fn global_norm(grads: &[NamedTensor]) -> f64 {
    grads
        .iter()
        .flat_map(|g| &g.tensor.data)
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// Clip `grads` in place; returns the global norm after clipping.
pub fn clip(grads: &mut [NamedTensor], clip: Clip) -> f64 {
    match clip {
        Clip::None => {}
        Clip::Norm { max } => {
            let norm = global_norm(grads);
            // PyTorch's clip_grad_norm_: coefficient max / (norm + 1e-6), clamped to 1.
            let coef = (max / (norm + 1e-6)).min(1.0);
            if coef < 1.0 {
                for v in grads.iter_mut().flat_map(|g| g.tensor.data.iter_mut()) {
                    *v = (f64::from(*v) * coef) as f32;
                }
            }
        }
        Clip::Value { max } => {
            let m = max as f32;
            for v in grads.iter_mut().flat_map(|g| g.tensor.data.iter_mut()) {
                *v = v.clamp(-m, m);
            }
        }
    }
    global_norm(grads)
}

impl OptimizerState {
    /// The state as named tensors shaped as the parameters `w` (see [`TrainOutcome::optimizer`]);
    /// none for plain SGD, which keeps none.
    pub(super) fn tensors(&self, train: &Train, w: &MlpWeights) -> Vec<NamedTensor> {
        let buffers: Vec<(&str, &Vec<Vec<f32>>)> = match train.optimizer {
            Optimizer::Sgd { momentum: 0.0 } => Vec::new(),
            Optimizer::Sgd { .. } => vec![("momentum_buffer", &self.first)],
            Optimizer::Adam { .. } => vec![("exp_avg", &self.first), ("exp_avg_sq", &self.second)],
        };
        let params: Vec<(String, &HostTensor)> = w
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let bias = l.bias.as_ref().map(|b| (format!("layers.{i}.bias"), b));
                std::iter::once((format!("layers.{i}.weight"), &l.weight)).chain(bias)
            })
            .collect();
        buffers
            .iter()
            .flat_map(|(prefix, values)| {
                params
                    .iter()
                    .zip(values.iter())
                    .map(move |((name, p), v)| NamedTensor {
                        name: format!("{prefix}.{name}"),
                        tensor: HostTensor::new(p.shape.clone(), v.clone()),
                    })
            })
            .collect()
    }

    /// The state a run starts from: the one saved beside `loaded` weights where the file
    /// holds one (a record's `weights.safetensors`, a dump: the run then continues or replays
    /// exactly), else zero buffers and no steps taken.
    pub(super) fn start(
        train: &Train,
        w: &MlpWeights,
        loaded: Option<&crate::config::LoadedWeights>,
    ) -> Self {
        let mut state = Self::new(w);
        let Some(loaded) = loaded.filter(|l| !l.optimizer.is_empty()) else {
            return state;
        };
        let names: Vec<String> = w
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let bias = l.bias.as_ref().map(|_| format!("layers.{i}.bias"));
                std::iter::once(format!("layers.{i}.weight")).chain(bias)
            })
            .collect();
        let buffers: Vec<(&str, &mut Vec<Vec<f32>>)> = match train.optimizer {
            Optimizer::Sgd { momentum: 0.0 } => Vec::new(),
            Optimizer::Sgd { .. } => vec![("momentum_buffer", &mut state.first)],
            Optimizer::Adam { .. } => vec![
                ("exp_avg", &mut state.first),
                ("exp_avg_sq", &mut state.second),
            ],
        };
        let mut loaded_any = false;
        for (prefix, values) in buffers {
            for (name, v) in names.iter().zip(values.iter_mut()) {
                let full = format!("{prefix}.{name}");
                if let Some(t) = loaded.optimizer.iter().find(|t| t.name == full) {
                    v.clone_from(&t.tensor.data);
                    loaded_any = true;
                }
            }
        }
        if loaded_any {
            state.steps = i32::try_from(loaded.optimizer_steps).unwrap_or(i32::MAX);
        }
        state
    }

    pub(super) fn new(w: &MlpWeights) -> Self {
        let zeros: Vec<Vec<f32>> = w
            .layers
            .iter()
            .flat_map(|l| std::iter::once(&l.weight).chain(l.bias.as_ref()))
            .map(|t| vec![0.0; t.data.len()])
            .collect();
        Self {
            first: zeros.clone(),
            second: zeros,
            steps: 0,
        }
    }

    /// One step of `train`'s optimiser on `w` with `grads` (in parameter order).
    pub(super) fn step(&mut self, train: &Train, w: &mut MlpWeights, grads: &[NamedTensor]) {
        self.steps += 1;
        let lr = train.learning_rate;
        let t = self.steps;
        for (i, p) in params_mut(w).into_iter().enumerate() {
            let g = &grads[i].tensor.data;
            let (m, v) = (&mut self.first[i], &mut self.second[i]);
            for j in 0..p.data.len() {
                let gj = f64::from(g[j]);
                let wj = f64::from(p.data[j]);
                p.data[j] = match train.optimizer {
                    Optimizer::Sgd { momentum } => {
                        // PyTorch: the buffer starts as the first gradient.
                        let b = if t == 1 {
                            gj
                        } else {
                            momentum * f64::from(m[j]) + gj
                        };
                        m[j] = b as f32;
                        wj - lr * b
                    }
                    Optimizer::Adam {
                        beta1,
                        beta2,
                        epsilon,
                    } => {
                        let mj = beta1 * f64::from(m[j]) + (1.0 - beta1) * gj;
                        let vj = beta2 * f64::from(v[j]) + (1.0 - beta2) * gj * gj;
                        m[j] = mj as f32;
                        v[j] = vj as f32;
                        let c1 = 1.0 - beta1.powi(t);
                        let c2 = 1.0 - beta2.powi(t);
                        let denom = f64::from(v[j]).sqrt() / c2.sqrt() + epsilon;
                        wj - (lr / c1) * f64::from(m[j]) / denom
                    }
                } as f32;
            }
        }
    }
}

/// Clip the pass's gradients and, with `apply`, take the optimiser's step; returns the global
/// gradient norm before and after clipping.
pub(super) fn update(
    train: &Train,
    state: &mut OptimizerState,
    weights: &mut MlpWeights,
    pass: &CaseOutcome,
    apply: bool,
) -> (f64, f64) {
    let norm = global_norm(&pass.grads);
    // Clipping works on a copy; without it the pass's gradients are used as they are.
    let mut clipped_grads = None;
    let clipped = match train.clip {
        Clip::None => norm,
        c => clip(clipped_grads.insert(pass.grads.clone()), c),
    };
    if apply {
        state.step(
            train,
            weights,
            clipped_grads.as_deref().unwrap_or(&pass.grads),
        );
    }
    (norm, clipped)
}
