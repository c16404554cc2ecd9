//! Linear + activation stacks on Burn, built from host-generated, seeded parameters, with a
//! forward pass that can record what gradient statistics need (pre-activations, activations,
//! and probes whose gradients are δ = ∂loss/∂pre-activation).
//!
//! This crate knows layers, activations, initialisers, the forward pass and how to walk
//! parameters by name. It does no TOML, CLI or printing.

pub mod activation;
pub mod cross_entropy;
pub mod dense;
pub mod engine;
pub mod host;
pub mod init;
pub mod mlp;
pub mod params;
pub mod rng;
pub mod stack;
pub mod sums;

pub use activation::{Activation, ElementOp};
pub use engine::{Backward, ForwardTrace, Layers, Record};
pub use host::{HostTensor, Values};
pub use init::{Fans, Initializer};
pub use mlp::{LayerWeights, Mlp, MlpConfig, MlpWeights};
pub use params::{NamedTensor, collect_gradients, collect_parameters, layer_of};
pub use rng::HostRng;
pub use stack::{MlpStack, StackError, StackTrace, split_trials, stack_trials};
