//! The loss scale of a training run (`train.loss_scale`): a pure state machine, with
//! `torch.amp.GradScaler`'s rules for the dynamic scale.
//!
//! The scale is an f32, as GradScaler keeps it (a float32 tensor). Its update is ATen's
//! `_amp_update_scale_` as the CPU kernel computes it: the f32 scale times the f64 factor,
//! rounded to f32. A step whose gradients hold inf or NaN backs the scale off and resets the
//! growth tracker; a finite step counts, and the `growth_interval`-th in a row grows the scale
//! (kept only when the grown scale is finite in f32) and resets the tracker. The gradients are
//! unscaled by `inv_scale`, the scale's reciprocal computed in f64 and rounded to f32, as
//! `GradScaler.unscale_` computes it (`self._scale.double().reciprocal().float()`).

use crate::config::LossScale;

/// Below this the scale has collapsed: 2⁻²⁴, f16's smallest subnormal.
pub const COLLAPSED_BELOW: f32 = 1.0 / 16_777_216.0;

/// A run's loss scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    kind: LossScale,
    scale: f32,
    /// Finite steps in a row since the scale last changed (GradScaler's `_growth_tracker`).
    growth_tracker: usize,
    /// Skipped steps in a row.
    skips_in_a_row: usize,
}

impl Scaler {
    /// The scaler of `kind`; `None` without scaling.
    pub fn new(kind: LossScale) -> Option<Self> {
        let scale = match kind {
            LossScale::None => return None,
            LossScale::Dynamic { init, .. } => init as f32,
            LossScale::Static { scale } => scale as f32,
        };
        Some(Self {
            kind,
            scale,
            growth_tracker: 0,
            skips_in_a_row: 0,
        })
    }

    /// The scale the next step multiplies the loss's gradient by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// What the gradients are multiplied by to unscale them: 1/scale in f64, rounded to f32.
    pub fn inv_scale(&self) -> f32 {
        (1.0 / f64::from(self.scale)) as f32
    }

    /// Whether a step with non-finite gradients is skipped (the dynamic scale) rather than
    /// ending the run.
    pub fn skips(&self) -> bool {
        matches!(self.kind, LossScale::Dynamic { .. })
    }

    /// After a step: `found_inf` when its gradients held inf or NaN (the step was skipped).
    /// A static scale does not change.
    pub fn update(&mut self, found_inf: bool) {
        let LossScale::Dynamic {
            growth_factor,
            backoff_factor,
            growth_interval,
            ..
        } = self.kind
        else {
            return;
        };
        if found_inf {
            self.scale = (f64::from(self.scale) * backoff_factor) as f32;
            self.growth_tracker = 0;
            self.skips_in_a_row += 1;
            return;
        }
        self.skips_in_a_row = 0;
        let successful = self.growth_tracker + 1;
        if successful == growth_interval {
            let grown = (f64::from(self.scale) * growth_factor) as f32;
            if grown.is_finite() {
                self.scale = grown;
            }
            self.growth_tracker = 0;
        } else {
            self.growth_tracker = successful;
        }
    }

    /// Skipped steps in a row, up to now.
    pub fn skips_in_a_row(&self) -> usize {
        self.skips_in_a_row
    }

    /// Whether the dynamic scale has collapsed: below 2⁻²⁴, or `growth_interval` steps in a
    /// row skipped. Training cannot recover from either: the run stops there.
    pub fn collapsed(&self) -> bool {
        match self.kind {
            LossScale::Dynamic {
                growth_interval, ..
            } => self.scale < COLLAPSED_BELOW || self.skips_in_a_row >= growth_interval,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(init: f64, growth: f64, backoff: f64, interval: usize) -> LossScale {
        LossScale::Dynamic {
            init,
            growth_factor: growth,
            backoff_factor: backoff,
            growth_interval: interval,
        }
    }

    /// GradScaler's `update`, written from its documentation and ATen's kernel in the terms
    /// torch uses (a tracker of unskipped steps compared with the interval), independently of
    /// [`Scaler`]'s code: `(scale, tracker)` after each step.
    fn torch_reference(
        init: f32,
        growth: f64,
        backoff: f64,
        interval: usize,
        found_inf: &[bool],
    ) -> Vec<(f32, usize)> {
        let (mut scale, mut tracker) = (init, 0usize);
        found_inf
            .iter()
            .map(|&inf| {
                if inf {
                    scale = (scale as f64 * backoff) as f32;
                    tracker = 0;
                } else if tracker + 1 == interval {
                    let s = (scale as f64 * growth) as f32;
                    if s.is_finite() {
                        scale = s;
                    }
                    tracker = 0;
                } else {
                    tracker += 1;
                }
                (scale, tracker)
            })
            .collect()
    }

    /// A small xorshift, so the sequences are reproducible without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn the_dynamic_scale_follows_grad_scaler_over_random_sequences() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..500 {
            let interval = 1 + (xorshift(&mut rng) % 7) as usize;
            // Skip probabilities from 0 to 1 in tenths, so long finite runs (growth) and long
            // skipped runs (collapse) both occur.
            let p_inf = (case % 11) as f64 / 10.0;
            let (growth, backoff) = match case % 3 {
                0 => (2.0, 0.5),
                1 => (1.5, 0.25),
                _ => (3.0, 0.9),
            };
            // Large inits reach f32's overflow guard when growing.
            let init = if case % 5 == 0 { 3.0e38 } else { 65536.0 };
            let n = 1 + (xorshift(&mut rng) % 200) as usize;
            let found: Vec<bool> = (0..n)
                .map(|_| (xorshift(&mut rng) % 1000) as f64 / 1000.0 < p_inf)
                .collect();
            let want = torch_reference(init as f32, growth, backoff, interval, &found);
            let mut s = Scaler::new(dynamic(init, growth, backoff, interval))
                .unwrap_or_else(|| panic!("a scale"));
            let mut in_a_row = 0;
            for (i, (&inf, &(scale, tracker))) in found.iter().zip(&want).enumerate() {
                s.update(inf);
                in_a_row = if inf { in_a_row + 1 } else { 0 };
                assert_eq!(
                    s.scale().to_bits(),
                    scale.to_bits(),
                    "case {case}, step {i}"
                );
                assert_eq!(s.growth_tracker, tracker, "case {case}, step {i}");
                assert_eq!(s.skips_in_a_row(), in_a_row, "case {case}, step {i}");
                assert_eq!(
                    s.collapsed(),
                    scale < 2f32.powi(-24) || in_a_row >= interval,
                    "case {case}, step {i}"
                );
            }
        }
    }

    #[test]
    fn the_defaults_back_off_halving_and_grow_after_the_interval() {
        // GradScaler's documented defaults: 2¹⁶, ×0.5 per skip, ×2 after 2000 finite steps.
        let mut s = Scaler::new(LossScale::DYNAMIC).unwrap_or_else(|| panic!("a scale"));
        assert_eq!(s.scale(), 65536.0);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale(), 16384.0);
        for _ in 0..1999 {
            s.update(false);
        }
        assert_eq!(s.scale(), 16384.0);
        s.update(false);
        assert_eq!(s.scale(), 32768.0);
        // 2¹⁶ halved 40 times is 2⁻²⁴, not below it; the 41st skip collapses it.
        let mut s = Scaler::new(LossScale::DYNAMIC).unwrap_or_else(|| panic!("a scale"));
        for _ in 0..40 {
            s.update(true);
        }
        assert_eq!(s.scale(), 2f32.powi(-24));
        assert!(!s.collapsed());
        s.update(true);
        assert!(s.collapsed());
    }

    #[test]
    fn the_inverse_scale_is_the_f64_reciprocal_rounded() {
        // GradScaler.unscale_: `self._scale.double().reciprocal().float()`; 1/3 rounds to
        // 0x3eaaaaab, and a power of two inverts exactly.
        let s = Scaler::new(LossScale::Static { scale: 3.0 }).unwrap_or_else(|| panic!("a scale"));
        assert_eq!(s.inv_scale().to_bits(), 0x3eaa_aaab);
        let s =
            Scaler::new(LossScale::Static { scale: 1024.0 }).unwrap_or_else(|| panic!("a scale"));
        assert_eq!(s.inv_scale(), 2f32.powi(-10));
        let mut s =
            Scaler::new(LossScale::Static { scale: 1024.0 }).unwrap_or_else(|| panic!("a scale"));
        s.update(true);
        assert_eq!(s.scale(), 1024.0, "a static scale never moves");
        assert!(!s.skips() && !s.collapsed());
        assert!(Scaler::new(LossScale::None).is_none());
    }
}
