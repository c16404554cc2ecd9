//! gradscope: run gradient experiments described in TOML on Burn (ndarray, flex or wgpu) and
//! report per-parameter gradient statistics.
//!
//! The record schema (the typed reports and their float policy) is the crate
//! `gradscope-report`, and every renderer (tables, markdown, CSV, SVG, HTML) is
//! `gradscope-render`: neither depends on Burn. This crate runs the experiments and assembles
//! what goes into a record.
//!
//! Modules depend one way, each only on modules before it in this list (a test,
//! `reference::modules_depend_one_way`, reads the sources, test modules cut out by their
//! braces, and holds them to it):
//!
//! 1. `alloc`: the binary's allocator (small blocks from mimalloc, large ones from the
//!    system's); `backend`: opening devices;
//! 2. `config`: reading, validating and overriding experiments, and the files they name;
//!    `loss`: every loss, its value and its gradient, defined once; `theory`: what
//!    mean-field theory predicts from a config;
//! 3. `run`: drawing weights and inputs and letting Burn's autodiff compute every gradient;
//! 4. `stats`, `range` (where each tensor sits in its precision's range), `origin` (where a non-finite value was born), `train` (training runs, step by
//!    step), `report`: a run summarised into the schema; `summary`: sweep aggregation;
//! 5. `record`: run records and notebook pages (files only, no rendering); `page`: a record's
//!    `report.html` from its files; `tensors`: tensor dumps; `compare`: how far backends
//!    disagree;
//! 6. `sweep`: running, resuming and merging sweeps; `bench`: the speed workloads;
//! 7. `cli`: flags, commands and exit codes.

pub mod alloc;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod config;
pub mod loss;
pub mod origin;
pub mod page;
pub mod range;
pub mod record;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod tensors;
pub mod theory;
pub mod train;
