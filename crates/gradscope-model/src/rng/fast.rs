//! Box–Muller over a block of draws without calls into libm: a natural logarithm and a cosine
//! written as branch-free polynomials, so that the compiler can vectorise the loop.
//!
//! These are *not* the values [`super::HostRng::standard_normal`] gives: they differ from
//! glibc's `log` and `cos` in the last bits of an f64. Their relative error stays below
//! [`ERROR_BOUND`] (the tests check it against libm, with a wide margin), and the caller falls
//! back to the exact, scalar formula whenever that error could change what is kept: the f32 a
//! value rounds to, or which side of a truncation bound it lies on.

use std::f64::consts::{FRAC_2_PI, LN_2, SQRT_2, TAU};

/// A bound on the relative error of [`box_muller`]'s values against the scalar formula's.
/// The polynomials and argument reduction below are good to a few units in the last place
/// (about 1e-15); this bound leaves a margin of more than 1000.
pub const ERROR_BOUND: f64 = 1.0 / (1u64 << 40) as f64;

/// Uniform on [0, 1) from 64 random bits, as [`super::HostRng::unit`].
#[inline(always)]
pub fn unit_of(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The scalar formula: a standard normal from two 64-bit draws, with libm's `ln` and `cos`.
pub fn exact(a: u64, b: u64) -> f64 {
    let u1 = 1.0 - unit_of(a);
    let u2 = unit_of(b);
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// Flag of [`block`]: the candidate is kept (truncation does not reject it).
pub const KEEP: u8 = 1;
/// Flag of [`block`]: the fast path's verdict and f32 are certain.
pub const SURE: u8 = 2;

/// The candidates `bits[2i], bits[2i + 1]` of `normal(mean, std) as f32` (`truncated`: of
/// `truncated_normal`), as far as the fast path can settle them: `value[i]` and `flags[i]`.
/// Where [`SURE`] is set, the value and [`KEEP`] are what the scalar formula gives: the fast z
/// is within [`ERROR_BOUND`] of it, and every value within that bound rounds to the same f32
/// and lies on the same side of ±2. Elsewhere the caller must use the scalar formula.
///
/// With 512-bit vectors where the CPU has AVX-512F (eight lanes), 256-bit where it has AVX2
/// (four instead of SSE2's two; the same operations in every lane, so the same values),
/// otherwise [`block_portable`].
#[allow(unsafe_code)]
pub fn block(
    bits: &[u64],
    mean: f64,
    std: f64,
    truncated: bool,
    value: &mut [f32],
    flags: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        unsafe { block_avx512(bits, mean, std, truncated, value, flags) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { block_avx2(bits, mean, std, truncated, value, flags) };
        return;
    }
    block_portable(bits, mean, std, truncated, value, flags);
}

/// [`block_portable`] compiled with a target feature: `$name` may only be called where the
/// CPU has `$feature`.
macro_rules! block_with {
    ($name:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name(
            bits: &[u64],
            mean: f64,
            std: f64,
            truncated: bool,
            value: &mut [f32],
            flags: &mut [u8],
        ) {
            block_portable(bits, mean, std, truncated, value, flags);
        }
    };
}

block_with!(block_avx512, "avx512f");
block_with!(block_avx2, "avx2");

/// [`block`] for any CPU; inlined into [`block_avx512`] and [`block_avx2`] to be compiled
/// for their vectors there.
#[inline(always)]
pub fn block_portable(
    bits: &[u64],
    mean: f64,
    std: f64,
    truncated: bool,
    value: &mut [f32],
    flags: &mut [u8],
) {
    let candidates = value
        .iter_mut()
        .zip(flags.iter_mut())
        .zip(bits.chunks_exact(2));
    for ((value, flags), pair) in candidates {
        let z = box_muller(pair[0], pair[1]);
        let v = mean + std * z;
        // Every value the scalar formula could give lies within d of v.
        let d = ((std * z).abs() + v.abs()) * 2.0 * ERROR_BOUND + f64::MIN_POSITIVE;
        let rounds_alike = ((v - d) as f32).to_bits() == ((v + d) as f32).to_bits();
        let near_bound = truncated & ((z.abs() - 2.0).abs() <= 4.0 * ERROR_BOUND);
        let keep = !truncated | (z.abs() <= 2.0);
        *value = v as f32;
        *flags = u8::from(keep) | (u8::from(rounds_alike & !near_bound) << 1);
    }
}

/// ≈ `exact(a, b)`, within [`ERROR_BOUND`] relative.
#[inline(always)]
pub fn box_muller(a: u64, b: u64) -> f64 {
    let u1 = 1.0 - unit_of_vectorisable(a);
    let u2 = unit_of_vectorisable(b);
    (-2.0 * ln(u1)).sqrt() * cos(TAU * u2)
}

/// [`unit_of`] without an integer-to-float conversion (x86 has no packed one before
/// AVX-512): k = bits >> 11 has 53 bits, one more than a mantissa, so its top 52 bits and its
/// last bit are each put in the mantissa of 2^52 (exactly), and k = 2·top + last.
#[inline(always)]
fn unit_of_vectorisable(bits: u64) -> f64 {
    let top = small_int(bits >> 12);
    let last = small_int((bits >> 11) & 1);
    (2.0 * top + last) * (1.0 / (1u64 << 53) as f64)
}

/// `k as f64` for k < 2^52, exactly, by integer and float operations that vectorise.
#[inline(always)]
fn small_int(k: u64) -> f64 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    f64::from_bits(TWO_52.to_bits() | k) - TWO_52
}

/// ln x for x in [2^-53, 1]: x = 2^e·m with m in [√½, √2), ln m = 2·atanh(s) with
/// s = (m − 1)/(m + 1), |s| ≤ 0.172, as 2s + s·R(s²): fdlibm's `__ieee754_log` polynomial R
/// (error below 2^-58.45 on this range).
// fdlibm's constants are kept as fdlibm prints them.
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn ln(x: f64) -> f64 {
    const LG: [f64; 7] = [
        6.666_666_666_666_735_130e-01,
        3.999_999_999_940_941_908e-01,
        2.857_142_874_366_239_149e-01,
        2.222_219_843_214_978_396e-01,
        1.818_357_216_161_805_012e-01,
        1.531_383_769_920_937_332e-01,
        1.479_819_860_511_658_591e-01,
    ];
    let bits = x.to_bits();
    // The biased exponent (x is positive).
    let e = small_int(bits >> 52) - 1023.0;
    let m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    let big = m > SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = if big { e + 1.0 } else { e };
    // m − 1 is exact (Sterbenz); the division rounds once.
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let mut r = 0.0;
    for c in LG.iter().rev() {
        r = (r + c) * z;
    }
    e * LN_2 + (2.0 * s + s * r)
}

/// cos x for x in [0, 2π): x = n·π/2 + r with |r| ≤ π/4, reduced with fdlibm's three-part
/// π/2 (exact to about 1e-36, so r keeps its relative accuracy near the zeros of cos), then
/// sin r or cos r by fdlibm's kernels.
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn cos(x: f64) -> f64 {
    // fdlibm's __ieee754_rem_pio2: 33 + 33 + 53 bits of π/2.
    const PIO2_1: f64 = 1.570_796_326_734_125_614_17;
    const PIO2_2: f64 = 6.077_100_506_303_965_976_6e-11;
    const PIO2_2T: f64 = 2.022_266_248_795_950_631_54e-21;
    // Adding 1.5·2^52 rounds to the nearest integer, whose low bits are then the mantissa's.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let shifted = x * FRAC_2_PI + ROUND;
    let quadrant = shifted.to_bits() & 3;
    let n = shifted - ROUND;
    let r = ((x - n * PIO2_1) - n * PIO2_2) - n * PIO2_2T;
    // fdlibm's __kernel_sin and __kernel_cos polynomials (error below 2^-58 on |r| ≤ π/4).
    const S: [f64; 6] = [
        -1.666_666_666_666_663_243_48e-01,
        8.333_333_333_322_489_461_24e-03,
        -1.984_126_982_985_794_931_34e-04,
        2.755_731_370_707_006_767_89e-06,
        -2.505_076_025_340_686_341_95e-08,
        1.589_690_995_211_550_102_21e-10,
    ];
    const C: [f64; 6] = [
        4.166_666_666_666_660_190_37e-02,
        -1.388_888_888_887_410_957_49e-03,
        2.480_158_728_947_672_941_78e-05,
        -2.755_731_435_139_066_330_35e-07,
        2.087_572_321_298_174_827_90e-09,
        -1.135_964_755_778_819_482_65e-11,
    ];
    let r2 = r * r;
    let mut ps = 0.0;
    for c in S.iter().rev() {
        ps = ps * r2 + c;
    }
    let sin = r + r * r2 * ps;
    let mut pc = 0.0;
    for c in C.iter().rev() {
        pc = pc * r2 + c;
    }
    let cos = (1.0 - 0.5 * r2) + r2 * r2 * pc;
    let value = if quadrant & 1 == 1 { sin } else { cos };
    let negate = (quadrant == 1) | (quadrant == 2);
    f64::from_bits(value.to_bits() ^ (u64::from(negate) << 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` words of Marsaglia's xorshift64 from the state `s` (the values' source does not matter
    /// to these tests, only that they cover the range).
    fn xorshift(mut s: u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            })
            .collect()
    }

    /// Relative difference, with an absolute floor of the smallest normal f64.
    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_matches_libm_on_its_whole_range() {
        // Every binade from 2^-53 to 1, 2000 points each, both sides of √½, and the ends.
        let mut worst: f64 = 0.0;
        let mut x = 1.0 / (1u64 << 53) as f64;
        while x < 1.0 {
            for i in 0..2000 {
                let v = x * (1.0 + i as f64 / 2000.0);
                if v <= 1.0 {
                    worst = worst.max(rel(ln(v), v.ln()));
                }
            }
            x *= 2.0;
        }
        assert_eq!(ln(1.0), 0.0);
        let below_one = 1.0 - f64::EPSILON / 2.0;
        worst = worst.max(rel(ln(below_one), below_one.ln()));
        assert!(
            worst < 8.0 * f64::EPSILON,
            "ln: worst relative error {worst:e}"
        );
    }

    #[test]
    fn cos_matches_libm_near_its_zeros_and_everywhere() {
        let mut worst: f64 = 0.0;
        // A dense grid over [0, 2π)...
        for i in 0..1_000_000 {
            let x = TAU * i as f64 / 1_000_000.0;
            worst = worst.max(rel(cos(x), x.cos()));
        }
        // ...and the f64s nearest π/2 and 3π/2, where cos is about 6e-17 and the reduction
        // must keep its relative accuracy; and the quadrant boundaries π/4 + kπ/2.
        for center in [1.0, 3.0] {
            let c = (center * std::f64::consts::FRAC_PI_2).to_bits();
            // 1000 f64s on either side of it.
            for bits in c - 1000..c + 1000 {
                let v = f64::from_bits(bits);
                worst = worst.max(rel(cos(v), v.cos()));
            }
        }
        for k in 0..4 {
            let x = std::f64::consts::FRAC_PI_4 * (2 * k + 1) as f64;
            worst = worst.max(rel(cos(x), x.cos()));
        }
        assert!(
            worst < 8.0 * f64::EPSILON,
            "cos: worst relative error {worst:e}"
        );
    }

    #[test]
    fn box_muller_stays_within_its_bound_of_the_scalar_formula() {
        let bits = xorshift(0x9E37_79B9_7F4A_7C15, 2_000_000);
        let worst = bits
            .chunks_exact(2)
            .map(|p| rel(box_muller(p[0], p[1]), exact(p[0], p[1])))
            .fold(0.0, f64::max);
        // 16 ulp: far inside ERROR_BOUND (2^-40 ≈ 9.1e-13), which the callers rely on.
        assert!(
            worst < 16.0 * f64::EPSILON,
            "worst relative error {worst:e}"
        );
    }

    #[test]
    #[allow(unsafe_code)]
    fn every_code_path_gives_the_same_values_and_flags() {
        // The AVX-512 and AVX2 paths (each where the CPU has it) and the portable one run the
        // same operations in every lane.
        type Path = fn(&[u64], f64, f64, bool, &mut [f32], &mut [u8]);
        let mut paths: Vec<(&str, Path)> = vec![("block", block)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                paths.push(("avx512", |b, m, s, t, v, f| unsafe {
                    block_avx512(b, m, s, t, v, f)
                }));
            } else {
                eprintln!("no AVX-512F on this CPU: its path is not run");
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                paths.push(("avx2", |b, m, s, t, v, f| unsafe {
                    block_avx2(b, m, s, t, v, f)
                }));
            }
        }
        let bits = xorshift(0x2545_F491_4F6C_DD1D, 200_000);
        for truncated in [false, true] {
            let (mut v2, mut f2) = (vec![0.0; 100_000], vec![0; 100_000]);
            block_portable(&bits, 0.5, 0.1, truncated, &mut v2, &mut f2);
            for (name, path) in &paths {
                let (mut v1, mut f1) = (vec![0.0; 100_000], vec![0; 100_000]);
                path(&bits, 0.5, 0.1, truncated, &mut v1, &mut f1);
                let differ = v1
                    .iter()
                    .zip(&v2)
                    .filter(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(
                    differ.count(),
                    0,
                    "{name}: values differ from the portable path"
                );
                assert_eq!(f1, f2, "{name}: flags differ from the portable path");
            }
        }
    }
}
