//! gradscope's integration tests, as one test binary with a module per area: every test binary
//! links Burn (with wgpu) again, so one binary instead of ten saves that many links in CI.
//! wgpu tests share the process's device (Burn registers a runtime per adapter once).

// Test tables are tuples spelled where they are written (what, config, files, expected): a
// named type for each would be read once and say less than the tuple beside its rows.
#![allow(clippy::type_complexity)]

mod common;

mod cli;
mod fuzz;
mod gradients;
mod html;
mod language;
mod mixed;
mod notebook;
mod origin;
mod precision;
mod records;
mod reference;
mod sweeps;
mod tensors;
mod theory;
mod training;
mod user_data;
mod wgpu;
mod wide;
