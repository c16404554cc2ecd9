//! gradscope-model's integration tests, as one test binary with a module per area (each test
//! binary links Burn again).

mod activations;
mod mlp;
mod precision;
mod stack;
