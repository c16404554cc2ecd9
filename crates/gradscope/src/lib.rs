//! gradscope: run gradient experiments described in TOML on Burn (ndarray, flex or wgpu) and
//! report per-parameter gradient statistics.
//!
//! `config` reads and validates experiments, `backend` opens devices, `run` computes the
//! gradients with Burn's autodiff, `stats` and `report` summarise them, `compare` measures how
//! far backends disagree, `cli` ties it together.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod config;
pub mod plot;
pub mod record;
pub mod render;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod tensors;
