//! Where a training run's batches come from: the teacher network's labels or the files' rows,
//! drawn on the host from the seed's streams.

use super::*;

/// The teacher network: the model's architecture with Glorot-uniform kernels and zero biases,
/// drawn from the seed's teacher stream. Its forward pass runs on the host in f32, in one fixed
/// order of operations (no backend, no fused multiply-add), so its labels are the same on every
/// machine and backend.
pub struct Teacher {
    /// Per layer: kernel `[d_in, d_out]` row-major, bias, d_out.
    layers: Vec<(Vec<f32>, Vec<f32>, usize)>,
    activations: Vec<gradscope_model::Activation>,
}

/// The teacher of `exp`.
pub fn teacher(exp: &Experiment) -> Teacher {
    let config = MlpConfig {
        kernel_init: Initializer::GlorotUniform,
        bias_init: Initializer::Zeros,
        gain: 1.0,
        bias: true,
        ..exp.model.clone()
    };
    let w = config.draw_weights_on(TEACHER_STREAM);
    Teacher {
        layers: w
            .layers
            .into_iter()
            .map(|l| {
                let d_out = l.weight.shape[1];
                let bias = l.bias.map_or(vec![0.0; d_out], |b| b.data);
                (l.weight.data, bias, d_out)
            })
            .collect(),
        activations: w.activations,
    }
}

impl Teacher {
    /// The forward pass of `x` `[batch, d_input]`: the output `[batch, d_output]`, row-major.
    /// Each z_l is accumulated input by input; every kernel row is read once per batch.
    pub(super) fn forward(&self, x: &HostTensor) -> Vec<f32> {
        let (rows, mut d) = (x.shape[0], x.shape[1]);
        let mut a: Vec<f32> = x.data.clone();
        let mut z: Vec<f32> = Vec::new();
        let last = self.layers.len() - 1;
        for (l, (kernel, bias, d_out)) in self.layers.iter().enumerate() {
            z.clear();
            for _ in 0..rows {
                z.extend_from_slice(bias);
            }
            for (i, w_row) in kernel.chunks_exact(*d_out).enumerate() {
                for (z_r, a_r) in z.chunks_exact_mut(*d_out).zip(a.chunks_exact(d)) {
                    let ai = a_r[i];
                    if ai == 0.0 {
                        // A dead ReLU unit adds exactly 0: z starts from the bias.
                        continue;
                    }
                    for (zj, wij) in z_r.iter_mut().zip(w_row) {
                        *zj += ai * wij;
                    }
                }
            }
            if l < last {
                let act = self.activations[l];
                z.iter_mut()
                    .for_each(|v| *v = act.apply_f64(f64::from(*v)) as f32);
            }
            std::mem::swap(&mut a, &mut z);
            d = *d_out;
        }
        a
    }
}

/// The batch of `step`, drawn from the seed's batch stream.
pub fn batch(exp: &Experiment, train: &Train, teacher: Option<&Teacher>, step: usize) -> Batch {
    let b = train.batch;
    match &train.data {
        Data::Files {
            inputs, targets, ..
        } => {
            // In file order, wrapping around: step s takes rows s·b, s·b + 1, ... (mod N). A
            // dump's batch, given as both files with `batch` = its rows, is replayed exactly.
            let n = inputs.shape[0];
            let rows: Vec<usize> = (0..b).map(|i| (step * b + i) % n).collect();
            let pick = |t: &HostTensor| {
                let w = t.shape.get(1).copied().unwrap_or(1);
                let data = rows
                    .iter()
                    .flat_map(|&r| t.data[r * w..(r + 1) * w].iter().copied())
                    .collect();
                let mut shape = t.shape.clone();
                shape[0] = b;
                HostTensor::new(shape, data)
            };
            Batch {
                inputs: pick(inputs),
                targets: pick(targets),
            }
        }
        Data::Teacher { classes } => {
            let inputs = teacher_inputs(exp, b, step);
            let k = exp.model.d_output;
            let targets = match (teacher, exp.loss) {
                (Some(t), _) if classes.is_some() => {
                    let out = t.forward(&inputs);
                    let labels = out.chunks_exact(k).map(|row| argmax(row) as f32).collect();
                    HostTensor::new(vec![b], labels)
                }
                (Some(t), Loss::Mse { .. }) => HostTensor::new(vec![b, k], t.forward(&inputs)),
                _ => HostTensor::new(vec![0], Vec::new()),
            };
            Batch { inputs, targets }
        }
    }
}

/// Teacher data's inputs at `step`: `rows` × `model.input` values of the first input case's
/// distribution (N(0, 1) without `[[inputs]]`), from the seed's batch stream for that step.
pub(super) fn teacher_inputs(exp: &Experiment, rows: usize, step: usize) -> HostTensor {
    let mut rng = HostRng::new(exp.seed, batch_stream(step));
    let dist = match exp.inputs.first().map(|c| &c.source) {
        Some(InputSource::Distribution(d)) => *d,
        _ => crate::config::TEACHER_INPUTS,
    };
    crate::run::draw(dist, &mut rng, [rows, exp.model.d_input])
}

/// The index of the largest value (the first of equals; NaN never wins).
pub(super) fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}
