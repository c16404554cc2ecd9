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
    use gradscope_model::Activation;

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
