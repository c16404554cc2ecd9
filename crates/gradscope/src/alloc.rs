//! The binary's allocator ([`SizeRouted`]): small blocks from mimalloc, large ones from the
//! system's allocator (glibc on Linux, with the thresholds `main` sets through `mallopt`).
//!
//! A training step of a small network is some 150 tensor operations, each allocating a few
//! small blocks (the result, its shape, Burn's handles, gemm's packing buffers): glibc's
//! malloc and free were about 15 % of a flex step's samples, much of it in
//! `malloc_consolidate`, which glibc runs at every request of 1 KiB or more while freed small
//! chunks wait in its fastbins. mimalloc serves them from per-thread free lists. But mimalloc
//! for every block made the notebook's sweep, whose tensors are megabytes, slower (8.0 → 8.6
//! s) and its peak memory 10 % higher, so blocks over [`SMALL`] bytes stay with the system's
//! allocator. Figures: benchmarks/README.md, "The allocator of small blocks".

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// The largest block, in bytes, that [`SizeRouted`] takes from mimalloc.
pub const SMALL: usize = 64 << 10;

/// A global allocator that gives a block of at most [`SMALL`] bytes from mimalloc and any
/// larger one from [`System`]. Which allocator holds a block follows from its size alone, which
/// every call of [`GlobalAlloc`] is given, so each block goes back to the allocator it came
/// from; a `realloc` across [`SMALL`] moves the block from one to the other.
#[derive(Debug, Default, Clone, Copy)]
pub struct SizeRouted;

fn small(size: usize) -> bool {
    size <= SMALL
}

// SAFETY (for the impl): every method forwards its arguments, under the same contract, to the
// allocator that the block's size names, which for a block given back is the allocator it
// came from, since its layout is the one it was allocated with (`GlobalAlloc`'s contract).
// A `realloc` between the two allocates the new block first, copies the smaller of the two
// sizes, and frees the old block only once the new one exists, as `GlobalAlloc::realloc`'s
// default does.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for SizeRouted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract (non-zero size) is forwarded unchanged.
        unsafe {
            if small(layout.size()) {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if small(layout.size()) {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, so from the one its size names.
        unsafe {
            if small(layout.size()) {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (small(layout.size()), small(new_size)) {
            // SAFETY: `ptr` came from mimalloc with `layout`; the caller's contract on
            // `new_size` is forwarded.
            (true, true) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            // SAFETY: as above, with the system's allocator.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees that `new_size`, rounded up to the alignment,
                // does not overflow `isize`, so this layout is valid and non-zero.
                let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a valid, non-zero layout.
                let moved = unsafe { self.alloc(new) };
                if !moved.is_null() {
                    // SAFETY: both blocks hold at least the smaller size and are distinct
                    // allocations; `ptr` is then freed with the layout it was allocated with.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A block of `size` bytes aligned to `align`, filled with a pattern of `seed`.
    fn filled(size: usize, align: usize, seed: u8) -> (*mut u8, Layout) {
        let layout = Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: a valid non-zero layout.
        let p = unsafe { SizeRouted.alloc(layout) };
        assert!(!p.is_null(), "{size} bytes");
        assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
        for i in 0..size {
            // SAFETY: inside the block.
            unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
        }
        (p, layout)
    }

    fn holds(p: *const u8, size: usize, seed: u8) -> bool {
        // SAFETY: the caller passes a live block of at least `size` bytes.
        (0..size).all(|i| unsafe { p.add(i).read() } == seed.wrapping_add(i as u8))
    }

    proptest! {
        /// Whichever side of [`SMALL`] a block starts and ends on, a realloc keeps the bytes
        /// both sizes hold and the alignment asked for, and every block is given back to the
        /// allocator it came from (a mismatch would corrupt one allocator's heap: glibc aborts
        /// on a pointer it did not hand out).
        #[test]
        fn a_realloc_across_the_boundary_keeps_its_bytes(
            sizes in proptest::collection::vec(
                prop_oneof![1usize..256, SMALL - 64..SMALL + 64, SMALL..4 * SMALL],
                1..8,
            ),
            align_log in 0u32..13,
            seed: u8,
        ) {
            let align = 1usize << align_log;
            let (mut p, mut layout) = filled(sizes[0], align, seed);
            for &size in &sizes[1..] {
                // SAFETY: `p` is live with `layout`; `size` is non-zero and small.
                p = unsafe { SizeRouted.realloc(p, layout, size) };
                prop_assert!(!p.is_null());
                prop_assert_eq!(p as usize % align, 0);
                prop_assert!(holds(p, layout.size().min(size), seed));
                layout = Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("{e}"));
                for i in 0..size {
                    // SAFETY: inside the block.
                    unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
                }
            }
            // SAFETY: `p` is live with `layout`.
            unsafe { SizeRouted.dealloc(p, layout) };
        }
    }

    /// A zeroed block is zero on both sides of [`SMALL`] (glibc and mimalloc each hand out
    /// memory freed before, so a block that skipped the zeroing would show the old bytes).
    #[test]
    fn zeroed_blocks_are_zero_on_both_sides() {
        for size in [8, 4096, SMALL, SMALL + 1, 3 * SMALL] {
            // Dirty a block of the size first, so that the zeroed one may reuse its memory.
            let (p, layout) = filled(size, 8, 0xa5);
            // SAFETY: live with `layout`.
            unsafe { SizeRouted.dealloc(p, layout) };
            // SAFETY: a valid non-zero layout.
            let z = unsafe { SizeRouted.alloc_zeroed(layout) };
            assert!(!z.is_null());
            // SAFETY: inside the block.
            assert!((0..size).all(|i| unsafe { z.add(i).read() } == 0), "{size}");
            // SAFETY: live with `layout`.
            unsafe { SizeRouted.dealloc(z, layout) };
        }
    }
}
