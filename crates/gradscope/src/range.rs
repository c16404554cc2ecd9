//! Where each tensor of a pass sits in its precision's range ([`Range`]): the largest and
//! smallest magnitudes as headroom in bits, the zeros and subnormals, and the overflows born
//! in it: ±inf where the operands the value was computed from are all finite.
//!
//! Which operands a value has, per tensor (rows are examples, `[batch, width]`):
//! - z_l = a_{l−1}·W_l + b_l: row r of the layer's input, and the layer's parameters;
//! - a_l = φ(z_l): z_l at the same place;
//! - δ_L = ∂loss/∂output: the output's row r (every loss here is row-wise or elementwise);
//! - δ_l = (δ_{l+1}·W_{l+1}ᵀ) ⊙ φ'(z_l): δ_{l+1}'s row r, W_{l+1}, and z_l at the same place;
//! - ∂L/∂W_l = a_{l−1}ᵀ·δ_l, element (i, j): column i of the layer's input and column j of δ_l;
//! - ∂L/∂b_l = Σ_r δ_l: column j of δ_l.

use gradscope_model::{HostTensor, MlpWeights, NamedTensor, layer_of};
use gradscope_report::{LeavesRange, Precision, Range};

/// Round `v` to `p` (through f32, which is correctly rounded for the 16-bit types).
pub fn round_to(p: Precision, v: f64) -> f64 {
    use burn::tensor::{bf16, f16};
    match p {
        Precision::F64 => v,
        Precision::F32 => f64::from(v as f32),
        Precision::F16 => f16::from_f32(v as f32).to_f64(),
        Precision::Bf16 => bf16::from_f32(v as f32).to_f64(),
    }
}

/// The range of `t`'s values (its f64 ones where it was read back from an f64 tensor) in
/// `precision`, counting as overflow each ±inf at an index `born` accepts.
pub fn range_of_tensor(
    t: &HostTensor,
    precision: Precision,
    born: impl Fn(usize) -> bool,
) -> Range {
    match &t.wide {
        Some(w) => range_of(w, precision, born),
        None => range_of(&t.data, precision, born),
    }
}

/// The range of `values` (f32s or f64s; an f32 widens exactly) in `precision`, counting as
/// overflow each ±inf at an index `born` accepts.
pub fn range_of<T: Copy + Into<f64>>(
    values: &[T],
    precision: Precision,
    born: impl Fn(usize) -> bool,
) -> Range {
    let min_normal = precision.min_normal();
    let (mut max_abs, mut min_abs) = (0f64, None::<f64>);
    let (mut zeros, mut subnormal, mut overflow, mut nan) = (0, 0, 0, 0);
    for (i, &v) in values.iter().enumerate() {
        let v: f64 = v.into();
        let a = v.abs();
        if v.is_nan() {
            nan += 1;
            continue;
        }
        max_abs = max_abs.max(a);
        if a.is_infinite() {
            overflow += usize::from(born(i));
        } else if a == 0.0 {
            zeros += 1;
        } else {
            subnormal += usize::from(a < min_normal);
            min_abs = Some(min_abs.map_or(a, |m| m.min(a)));
        }
    }
    // A NaN leaves no largest value, unless an inf is the largest anyway.
    if nan > 0 && max_abs.is_finite() {
        max_abs = f64::NAN;
    }
    let (headroom_bits, floor_bits) = Range::bits(precision, max_abs, min_abs);
    Range {
        max_abs,
        min_abs,
        headroom_bits,
        floor_bits,
        zeros,
        subnormal,
        overflow,
        nan,
    }
}

/// Which columns of `t` (`[rows, width]`) are finite throughout.
fn finite_columns(t: &HostTensor) -> Vec<bool> {
    let width = t.shape.get(1).copied().unwrap_or(1).max(1);
    let mut finite = vec![true; width];
    for (i, v) in t.values().enumerate() {
        if !v.is_finite() {
            finite[i % width] = false;
        }
    }
    finite
}

/// The ranges of one case's pass, per layer and per gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRanges {
    /// Per layer: z_l, a_l (hidden layers only), δ_l.
    pub layers: Vec<(Range, Option<Range>, Range)>,
    /// Per gradient, in the order of the case's gradients.
    pub grads: Vec<Range>,
}

/// The ranges of a pass over `weights`: `input` `[batch, d_input]`, each layer's `z`, its
/// `outputs` (a_l, then the network output), `deltas` and `grads` (named `layers.{l}.weight`
/// and `.bias`), in `precision`. `None` where the pass kept no z_l (a sweep's stack).
pub fn pass_ranges(
    precision: Precision,
    weights: &MlpWeights,
    input: &HostTensor,
    (z, outputs, deltas): (&[HostTensor], &[HostTensor], &[HostTensor]),
    grads: &[NamedTensor],
) -> Option<PassRanges> {
    let n = deltas.len();
    if z.len() != n || outputs.len() != n {
        return None;
    }
    let params_finite: Vec<bool> = weights
        .layers
        .iter()
        .map(|l| l.weight.all_finite() && l.bias.as_ref().is_none_or(HostTensor::all_finite))
        .collect();
    let params_ok = |l: usize| params_finite.get(l).copied().unwrap_or(true);
    let layer_input = |l: usize| if l == 0 { input } else { &outputs[l - 1] };
    let width = |t: &HostTensor| t.shape.get(1).copied().unwrap_or(1).max(1);
    let layers = (0..n)
        .map(|l| {
            let rows = layer_input(l).finite_rows();
            let w = width(&z[l]);
            let z_range = range_of_tensor(&z[l], precision, |i| params_ok(l) && rows[i / w]);
            let a_range = (l + 1 < n)
                .then(|| range_of_tensor(&outputs[l], precision, |i| z[l].value(i).is_finite()));
            let delta_range = if l + 1 == n {
                let rows = outputs[l].finite_rows();
                range_of_tensor(&deltas[l], precision, |i| rows[i / w])
            } else {
                let rows = deltas[l + 1].finite_rows();
                range_of_tensor(&deltas[l], precision, |i| {
                    params_ok(l + 1) && rows[i / w] && z[l].value(i).is_finite()
                })
            };
            (z_range, a_range, delta_range)
        })
        .collect();
    let grads = grads
        .iter()
        .map(|g| {
            let l = layer_of(&g.name).unwrap_or(0);
            let delta_cols = deltas.get(l).map(finite_columns).unwrap_or_default();
            let ok = |j: usize| delta_cols.get(j).copied().unwrap_or(false);
            if g.name.ends_with(".bias") {
                range_of_tensor(&g.tensor, precision, ok)
            } else {
                let input_cols = finite_columns(layer_input(l.min(n.saturating_sub(1))));
                let d_out = g.tensor.shape.get(1).copied().unwrap_or(1).max(1);
                range_of_tensor(&g.tensor, precision, |k| {
                    input_cols.get(k / d_out).copied().unwrap_or(false) && ok(k % d_out)
                })
            }
        })
        .collect();
    Some(PassRanges { layers, grads })
}

/// Measured, by the criteria and in the order of theory's prediction
/// (`theory::range::predict_range`): the first of z_0, ..., z_L, then δ_L, ..., δ_0 of one pass
/// to leave `precision`'s range: above where it holds a value past the largest finite one
/// (±inf, or NaN, which only a non-finite value makes in a pass from finite inputs), below
/// where its root mean square (over all its values) is under the smallest normal. `None` where
/// none does, or where the pass kept no z_l.
pub fn first_to_leave(
    pre_activations: &[HostTensor],
    deltas: &[HostTensor],
    precision: Precision,
) -> Option<LeavesRange> {
    if pre_activations.is_empty() {
        return None;
    }
    let min = precision.min_normal();
    let leaves = |t: &HostTensor| {
        if !t.all_finite() {
            return Some("above");
        }
        let mean_square = t.values().map(|v| v * v).sum::<f64>() / t.len().max(1) as f64;
        (mean_square.sqrt() < min).then_some("below")
    };
    // A pass has a z_l and a δ_l per layer.
    LeavesRange::first_in_pass(
        pre_activations.len(),
        |l| leaves(&pre_activations[l]),
        |l| deltas.get(l).and_then(&leaves),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Theory's order and criteria, by hand: the forward pass is looked at before any δ, a
    /// non-finite value is `above`, a root mean square under f16's 2⁻¹⁴ is `below` (however
    /// small its largest entry), and the δ are looked at from the output back.
    #[test]
    fn the_first_tensor_to_leave_the_range_by_hand() {
        let t = |v: &[f32]| HostTensor::new(vec![1, v.len()], v.to_vec());
        let fine = t(&[1.0, -2.0]);
        let tiny = t(&[1e-5, 1e-4]); // rms 7.1e-5 > 6.1e-5: in range
        let tinier = t(&[1e-5, 8e-5]); // rms 5.7e-5 < 6.1e-5: below
        let inf = t(&[1.0, f32::INFINITY]);
        let nan = t(&[f32::NAN, 1.0]);
        let at = |v: Option<LeavesRange>| v.map(|l| format!("{} {}", l.tensor, l.direction));
        let f16 = Precision::F16;
        let zs = [fine.clone(), tiny.clone(), fine.clone()];
        assert_eq!(
            at(first_to_leave(
                &zs,
                &[fine.clone(), fine.clone(), fine.clone()],
                f16
            )),
            None
        );
        let zs2 = [fine.clone(), tinier.clone(), inf.clone()];
        assert_eq!(
            at(first_to_leave(
                &zs2,
                &[inf.clone(), inf.clone(), inf.clone()],
                f16
            )),
            Some("z.layers.1 below".into()),
            "z before δ, and z_1 before z_2"
        );
        let ds = [inf.clone(), nan.clone(), fine.clone()];
        assert_eq!(
            at(first_to_leave(&zs, &ds, f16)),
            Some("delta.layers.1 above".into()),
            "δ from the output back: δ_2 fine, δ_1 NaN"
        );
        // In f32 the same tiny values are in range; the pass kept no z: nothing measured.
        assert_eq!(
            at(first_to_leave(
                &zs2[..2],
                std::slice::from_ref(&fine),
                Precision::F32
            )),
            None
        );
        assert_eq!(at(first_to_leave(&[], &ds, f16)), None);
    }

    /// f16 values by hand: 65504 is the largest finite (headroom log2(65504/65504) = 0);
    /// 2⁻¹⁵ is subnormal (below 2⁻¹⁴: floor −1); one inf counted as overflow where its
    /// operands were finite, not where they were not.
    #[test]
    fn a_tensor_in_f16_by_hand() {
        let v = [65504.0, -2f32.powi(-15), 0.0, f32::INFINITY, f32::NAN];
        let r = range_of(&v, Precision::F16, |_| true);
        assert_eq!(r.max_abs, f64::INFINITY);
        assert_eq!(r.headroom_bits, f32::NEG_INFINITY);
        assert_eq!(
            (r.min_abs, r.floor_bits),
            (Some(2f64.powi(-15)), Some(-1.0))
        );
        assert_eq!((r.zeros, r.subnormal, r.overflow, r.nan), (1, 1, 1, 1));
        // NaN and no inf: no largest value, no headroom to speak of.
        let r = range_of(&[1.0, f32::NAN], Precision::F16, |_| true);
        assert!(r.max_abs.is_nan() && r.headroom_bits.is_nan());
        assert_eq!(r.floor_bits, Some(14.0));
        assert_eq!(range_of(&v, Precision::F16, |_| false).overflow, 0);
        let finite = range_of(&v[..3], Precision::F16, |_| true);
        assert_eq!(finite.headroom_bits, 0.0);
        // The same values in f32: 2⁻¹⁵ is normal there, 65504 has log2(f32::MAX/65504) ≈ 112
        // bits above it.
        let r = range_of(&v[..3], Precision::F32, |_| true);
        assert_eq!(r.subnormal, 0);
        assert!((f64::from(r.headroom_bits) - (f64::from(f32::MAX) / 65504.0).log2()).abs() < 1e-5);
    }

    /// A 2-row batch through one hidden layer of width 2 whose second row overflowed in z_0:
    /// z_0's inf is born there (its input row is finite), a_0's copy of it is not (z was
    /// already inf), and the output layer's z_1 inf in row 1 is not born (its input row holds
    /// the inf) while row 0's would be.
    #[test]
    fn overflow_is_counted_where_it_was_born_only() {
        let t = |rows: usize, data: Vec<f32>| HostTensor::new(vec![rows, data.len() / rows], data);
        let inf = f32::INFINITY;
        let input = t(2, vec![1.0, 2.0, 3.0, 4.0]);
        let z0 = t(2, vec![1.0, 1.0, inf, 1.0]);
        let a0 = t(2, vec![1.0, 1.0, inf, 1.0]);
        let z1 = t(2, vec![5.0, inf]);
        let d1 = t(2, vec![10.0, inf]);
        let d0 = t(2, vec![1.0, 1.0, f32::NAN, inf]);
        let layer = |d_in, d_out| gradscope_model::LayerWeights {
            weight: HostTensor::new(vec![d_in, d_out], vec![1.0; d_in * d_out]),
            bias: None,
        };
        let weights = MlpWeights {
            layers: vec![layer(2, 2), layer(2, 1)].into(),
            activations: vec![gradscope_model::Activation::Relu],
        };
        let grad = NamedTensor {
            name: "layers.1.weight".into(),
            tensor: HostTensor::new(vec![2, 1], vec![inf, 3.0]),
        };
        let r = pass_ranges(
            Precision::F16,
            &weights,
            &input,
            (&[z0, z1.clone()], &[a0, z1], &[d0, d1]),
            &[grad],
        )
        .unwrap_or_else(|| panic!("z was recorded"));
        let (z0, a0, d0) = &r.layers[0];
        assert_eq!(
            (z0.overflow, a0.map(|a| a.overflow), d0.overflow),
            (1, Some(0), 0)
        );
        let (z1, a1, d1) = &r.layers[1];
        assert_eq!((z1.overflow, a1.is_none(), d1.overflow), (0, true, 0));
        // ∂L/∂W_1[0] = a_0[:, 0]ᵀ·δ_1: a_0's column 0 holds the inf, so not born there.
        assert_eq!(r.grads[0].overflow, 0);
    }
}
