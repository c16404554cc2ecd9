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
            .iter()
            .map(|l| {
                let d_out = l.weight.shape[1];
                let bias = l.bias.as_ref().map_or(vec![0.0; d_out], |b| b.data.clone());
                (l.weight.data.clone(), bias, d_out)
            })
            .collect(),
        activations: w.activations,
    }
}

impl Teacher {
    /// The forward pass of `x` `[batch, d_input]`: the output `[batch, d_output]`, row-major.
    ///
    /// Each z_l[r][j] is its bias plus a_{l−1}[r][k]·W[k][j] added for k = 0, 1, … in turn,
    /// one f32 rounding per product and per sum. The pass runs on transposed activations,
    /// `[d][batch]`, so that the innermost loop walks the batch, in vector registers
    /// ([`LayerSums`]), with the same operations in the same order as row by row
    /// (`the_teacher_sums_as_row_by_row`).
    pub(super) fn forward(&self, x: &HostTensor) -> Vec<f32> {
        let (rows, mut d) = (x.shape[0], x.shape[1]);
        let mut a = transposed(&x.data, rows, d);
        let mut z: Vec<f32> = Vec::new();
        let last = self.layers.len() - 1;
        let arch = pulp::Arch::new();
        for (l, (kernel, bias, d_out)) in self.layers.iter().enumerate() {
            z.clear();
            for &b in bias {
                z.extend(std::iter::repeat_n(b, rows));
            }
            arch.dispatch(LayerSums {
                z: &mut z,
                a: &a,
                kernel,
                d_out: *d_out,
                rows,
            });
            if l < last {
                self.activations[l].apply_f64_to_f32s(&mut z);
            }
            std::mem::swap(&mut a, &mut z);
            d = *d_out;
        }
        transposed(&a, d, rows)
    }
}

/// One layer's sums of the teacher's pass: z[j][r] += a[k][r]·W[k][j] for each k in turn, then
/// each j, each r (`z` `[d_out][rows]`, `a` `[d_in][rows]`, `kernel` `[d_in][d_out]`).
///
/// Compiled for the widest vector instructions the CPU has (pulp's run-time dispatch:
/// AVX-512, AVX2 or SSE2), the same f32 operations on each: Rust never fuses a product and a
/// sum into one rounding. Every product is added, a zero a's too (the row-by-row pass skipped
/// them): a zero product leaves z as it was, since z is never −0 (the biases are +0 and a sum
/// is −0 only of two −0s) and the teacher's weights are finite.
struct LayerSums<'a> {
    z: &'a mut [f32],
    a: &'a [f32],
    kernel: &'a [f32],
    d_out: usize,
    rows: usize,
}

impl pulp::WithSimd for LayerSums<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, simd: S) {
        let (rows, d_out) = (self.rows, self.d_out);
        let lanes = S::F32_LANES;
        let full = rows / lanes * lanes;
        // The rows in whole vectors: tiles of up to 8 outputs × one vector of rows, whose sums
        // stay in registers across every k.
        for r0 in (0..full).step_by(lanes) {
            let mut j0 = 0;
            while j0 < d_out {
                j0 += match d_out - j0 {
                    8.. => self.tile::<S, 8>(simd, r0, j0),
                    4.. => self.tile::<S, 4>(simd, r0, j0),
                    2.. => self.tile::<S, 2>(simd, r0, j0),
                    _ => self.tile::<S, 1>(simd, r0, j0),
                };
            }
        }
        // The rows past the last whole vector, one value at a time, k in the same order.
        let Self { z, a, kernel, .. } = self;
        let d_in = a.len() / rows.max(1);
        for j in 0..d_out {
            for r in full..rows {
                let mut acc = z[j * rows + r];
                for k in 0..d_in {
                    acc += a[k * rows + r] * kernel[k * d_out + j];
                }
                z[j * rows + r] = acc;
            }
        }
    }
}

impl LayerSums<'_> {
    /// The sums of outputs `j0 .. j0 + J` over the one vector of rows from `r0`:
    /// z[j][r] += a[k][r]·W[k][j] for each k in turn, J outputs at once. Returns J.
    #[inline(always)]
    fn tile<S: pulp::Simd, const J: usize>(&mut self, simd: S, r0: usize, j0: usize) -> usize {
        let (rows, d_out) = (self.rows, self.d_out);
        let lanes = S::F32_LANES;
        let load = |v: &[f32]| -> S::f32s {
            pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(&v[..lanes]))
        };
        let z = &mut *self.z;
        let mut acc: [S::f32s; J] = std::array::from_fn(|jj| load(&z[(j0 + jj) * rows + r0..]));
        for (a_k, w_k) in self
            .a
            .chunks_exact(rows)
            .zip(self.kernel.chunks_exact(d_out))
        {
            let x = load(&a_k[r0..]);
            let w = &w_k[j0..j0 + J];
            for jj in 0..J {
                acc[jj] = simd.add_f32s(acc[jj], simd.mul_f32s(x, simd.splat_f32s(w[jj])));
            }
        }
        for (jj, acc) in acc.iter().enumerate() {
            let out = &mut z[(j0 + jj) * rows + r0..][..lanes];
            out.copy_from_slice(pulp::bytemuck::cast_slice(std::slice::from_ref(acc)));
        }
        J
    }
}

/// The row-major `rows × cols` matrix `m` transposed, row-major (`cols × rows`).
fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for (r, row) in m.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// A run's batches in step order, drawn ahead on a second thread where the machine has one:
/// [`batch`] is a function of the step alone, so the teacher's labels and the input draw
/// (about a seventh of a small step's time on flex) overlap the steps before them, and every
/// step gets the batch it would draw itself.
///
/// The thread sends [`AHEAD_CHUNK`] steps' batches at a time through a channel that holds one
/// chunk, so the two threads meet once per chunk, not once per step (waking a blocked
/// thread is a system call: meeting per step saved nothing, benchmarks/README.md). At most
/// three chunks exist at once (one being drawn, one sent, one being used) and a chunk holds
/// at most [`AHEAD_BYTES`] of batches; a batch past that, or a machine of one core, draws each
/// batch in the step, as without the thread.
pub(super) struct Ahead<'a> {
    rx: Option<std::sync::mpsc::Receiver<Vec<Batch>>>,
    chunk: std::vec::IntoIter<Batch>,
    draw: (&'a Experiment, &'a Train, Option<&'a Teacher>),
}

/// The most steps of batches in one chunk of [`Ahead`].
const AHEAD_CHUNK: usize = 16;
/// The most bytes of batches in one chunk of [`Ahead`].
const AHEAD_BYTES: usize = 4 << 20;

/// The steps of one chunk of [`Ahead`] for batches of `batch_bytes` (inputs and targets, f32):
/// [`AHEAD_CHUNK`], fewer where they would pass [`AHEAD_BYTES`], 0 (no thread) where one batch
/// does.
fn chunk_steps(batch_bytes: usize) -> usize {
    (AHEAD_BYTES / batch_bytes.max(1)).min(AHEAD_CHUNK)
}

impl<'a> Ahead<'a> {
    /// The batches of the run's steps `0..train.steps`, their thread spawned in `scope`.
    pub(super) fn new<'s>(
        scope: &'s std::thread::Scope<'s, '_>,
        exp: &'a Experiment,
        train: &'a Train,
        teacher: Option<&'a Teacher>,
    ) -> Self
    where
        'a: 's,
    {
        let row_bytes = 4 * (exp.model.d_input + exp.model.d_output);
        let per_chunk = chunk_steps(train.batch.saturating_mul(row_bytes));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let rx = (per_chunk > 0 && cores > 1 && train.steps > 1).then(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Batch>>(1);
            let steps = train.steps;
            scope.spawn(move || {
                for first in (0..steps).step_by(per_chunk) {
                    let chunk = (first..steps.min(first + per_chunk))
                        .map(|s| batch(exp, train, teacher, s))
                        .collect();
                    // The run ended early (a non-finite value): no more batches are wanted.
                    if tx.send(chunk).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        Self {
            rx,
            chunk: Vec::new().into_iter(),
            draw: (exp, train, teacher),
        }
    }

    /// The batch of `step`, the step after the one asked for before (0 first).
    pub(super) fn next(&mut self, step: usize) -> Batch {
        let (exp, train, teacher) = self.draw;
        let Some(rx) = &self.rx else {
            return batch(exp, train, teacher, step);
        };
        if let Some(b) = self.chunk.next() {
            return b;
        }
        match rx.recv() {
            Ok(chunk) => {
                self.chunk = chunk.into_iter();
                self.chunk
                    .next()
                    .unwrap_or_else(|| batch(exp, train, teacher, step))
            }
            // The thread ended (it panicked: the scope passes its panic on): draw here.
            Err(_) => batch(exp, train, teacher, step),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};
    use gradscope_model::Activation;

    /// A teacher run of `steps` steps (the seed network's shape, batch 32).
    fn teacher_run(steps: usize) -> Experiment {
        let text = format!(
            "name = \"ahead\"\nseed = 5\nloss = \"cross_entropy\"\n[model]\ninput = 10\n\
             hidden = [100, 50, 25]\noutput = 10\nactivation = \"relu\"\n[train]\n\
             steps = {steps}\nbatch = 32\noptimizer = \"sgd\"\nlearning_rate = 0.01\n\
             data = {{ kind = \"teacher\", classes = 10 }}\n"
        );
        parse(Source {
            path: "ahead.toml".into(),
            text,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The batches drawn ahead are the batches each step draws itself, in order, across chunk
    /// boundaries (40 steps: two whole chunks of 16 and a short one), and a run that stops
    /// early (a non-finite value) ends the drawing thread instead of waiting on it.
    #[test]
    fn batches_drawn_ahead_are_each_steps_own() {
        let exp = teacher_run(40);
        let Some(train) = exp.task.train() else {
            panic!("a training config")
        };
        let t = teacher(&exp);
        assert_eq!(chunk_steps(32 * 4 * 20), AHEAD_CHUNK);
        std::thread::scope(|scope| {
            let mut ahead = Ahead::new(scope, &exp, train, Some(&t));
            if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
                assert!(ahead.rx.is_some(), "a thread on a machine of two cores");
            }
            for step in 0..train.steps {
                assert_eq!(
                    ahead.next(step),
                    batch(&exp, train, Some(&t), step),
                    "{step}"
                );
            }
        });
        std::thread::scope(|scope| {
            let mut ahead = Ahead::new(scope, &exp, train, Some(&t));
            for step in 0..5 {
                assert_eq!(
                    ahead.next(step),
                    batch(&exp, train, Some(&t), step),
                    "{step}"
                );
            }
        });
    }

    /// A chunk holds at most AHEAD_BYTES of batches: fewer steps of large batches, none (each
    /// batch drawn in its step) where one batch is larger.
    #[test]
    fn chunks_are_bounded_in_bytes() {
        assert_eq!(chunk_steps(AHEAD_BYTES / 3), 3);
        assert_eq!(chunk_steps(AHEAD_BYTES), 1);
        assert_eq!(chunk_steps(AHEAD_BYTES + 1), 0);
        assert_eq!(chunk_steps(0), AHEAD_CHUNK);
    }

    /// The teacher's pass as it was written before, row by row: for each input k, each row's
    /// z_r += a_r[k]·W[k] (skipped where a_r[k] = 0), each z_r starting from the bias.
    fn row_by_row(t: &Teacher, x: &HostTensor) -> Vec<f32> {
        let (rows, mut d) = (x.shape[0], x.shape[1]);
        let mut a: Vec<f32> = x.data.clone();
        let mut z: Vec<f32> = Vec::new();
        let last = t.layers.len() - 1;
        for (l, (kernel, bias, d_out)) in t.layers.iter().enumerate() {
            z.clear();
            for _ in 0..rows {
                z.extend_from_slice(bias);
            }
            for (i, w_row) in kernel.chunks_exact(*d_out).enumerate() {
                for (z_r, a_r) in z.chunks_exact_mut(*d_out).zip(a.chunks_exact(d)) {
                    let ai = a_r[i];
                    if ai == 0.0 {
                        continue;
                    }
                    for (zj, wij) in z_r.iter_mut().zip(w_row) {
                        *zj += ai * wij;
                    }
                }
            }
            if l < last {
                let act = t.activations[l];
                z.iter_mut()
                    .for_each(|v| *v = act.apply_f64(f64::from(*v)) as f32);
            }
            std::mem::swap(&mut a, &mut z);
            d = *d_out;
        }
        a
    }

    /// The transposed pass is the row-by-row pass bit for bit: on the seed network's shape and
    /// odd ones, relu (dead units, so skipped zeros) and tanh, with inputs holding exact zeros,
    /// and nonzero biases (the teacher's are zero; here drawn, so that the start matters).
    #[test]
    fn the_teacher_sums_as_row_by_row() {
        let mut rng = HostRng::new(5, 0);
        for (widths, rows, act) in [
            (vec![10, 100, 50, 25, 10], 32, Activation::Relu),
            (vec![7, 13, 3], 5, Activation::Tanh),
            (vec![3, 1, 4], 1, Activation::Relu),
            (vec![9, 19, 11], 37, Activation::Relu),
        ] {
            let layers = widths
                .windows(2)
                .map(|w| {
                    let kernel = rng.normals_f32(w[0] * w[1], 0.0, 1.0);
                    (kernel, rng.normals_f32(w[1], 0.0, 0.5), w[1])
                })
                .collect();
            let t = Teacher {
                layers,
                activations: vec![act; widths.len() - 2],
            };
            let mut data = rng.normals_f32(rows * widths[0], 0.0, 1.0);
            for v in data.iter_mut().step_by(3) {
                *v = 0.0;
            }
            let x = HostTensor::new(vec![rows, widths[0]], data);
            let ours: Vec<u32> = t.forward(&x).iter().map(|v| v.to_bits()).collect();
            let theirs: Vec<u32> = row_by_row(&t, &x).iter().map(|v| v.to_bits()).collect();
            assert_eq!(ours.len(), rows * widths[widths.len() - 1]);
            assert!(ours == theirs, "{widths:?} x {rows}: the outputs differ");
        }
    }
}
