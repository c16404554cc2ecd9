//! gradscope: run gradient experiments described in TOML on Burn (ndarray, flex or wgpu) and
//! report per-parameter gradient statistics.
//!
//! Modules depend one way, each only on modules before it in this list (a test,
//! `reference::modules_depend_one_way`, reads the sources and holds them to it):
//!
//! 1. `floats`: how floats are spelled (people, JSON, CSV); `backend`: opening devices;
//! 2. `config`: reading, validating and overriding experiments, and the files they name;
//!    `theory`: what mean-field theory predicts from a config;
//! 3. `run`: drawing weights and inputs and letting Burn's autodiff compute every gradient;
//! 4. `stats`, `origin` (where a non-finite value was born), `train` (training runs, step by
//!    step), `report`: summarising a run; `render`: a report as table, markdown or CSV;
//!    `summary`, `plot`: sweep aggregation and the pictures; `html`: a record as one page;
//! 5. `record`: run records and notebook pages; `tensors`: tensor dumps; `compare`: how far
//!    backends disagree;
//! 6. `sweep`: running, resuming and merging sweeps; `bench`: the speed workloads;
//! 7. `cli`: flags, commands and exit codes.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod config;
pub mod floats;
pub mod html;
pub mod origin;
pub mod plot;
pub mod record;
pub mod render;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod tensors;
pub mod theory;
pub mod train;
