//! Experiment configs: reading a TOML file (`raw`, its integer keys' ranges in `ints`),
//! finding every missing key at once (`missing`), validating it into an `Experiment`, reading
//! the files it names (`inputs`, `weights`), and locating every problem (`source`).

pub mod inputs;
pub mod ints;
pub mod kinds;
pub mod memory;
mod missing;
mod npz;
pub mod raw;
pub mod sets;
mod show;
pub mod source;
pub mod sweep;
mod train;
mod validate;
pub mod weights;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gradscope_model::{HostTensor, MlpConfig};

pub use memory::{available_memory, check_memory};
pub use source::{ConfigError, Source};

use crate::backend::BackendKind;
pub use gradscope_report::Precision;

/// What an experiment does with its network.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Measure the gradients of one pass on each input case (`[[inputs]]`).
    Probe,
    /// Train (`[train]`), checking every step (boxed: it holds the data files' arrays).
    Train(Box<Train>),
}

impl Task {
    /// The training, for a training run.
    pub fn train(&self) -> Option<&Train> {
        match self {
            Self::Train(t) => Some(&**t),
            Self::Probe => None,
        }
    }
}

/// A validated experiment, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Short identifier.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// Backend named in the file, if any.
    pub backend: Option<BackendKind>,
    /// The floating-point type of every tensor (`precision`, default f32).
    pub precision: Precision,
    /// The network.
    pub model: MlpConfig,
    /// The loss.
    pub loss: Loss,
    /// The input cases, in file order.
    pub inputs: Vec<InputCase>,
    /// Weights read from a file instead of drawn from the seed.
    pub weights: Option<Arc<LoadedWeights>>,
    /// What it does with the network: measure one pass per input case, or train.
    pub task: Task,
    /// The sweep, when the file has a `[sweep]` table.
    pub sweep: Option<sweep::Sweep>,
    /// The file it was read from.
    pub path: PathBuf,
}

/// `[train]`: optimisation on fresh batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Train {
    /// Optimisation steps.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Step size.
    pub learning_rate: f64,
    /// Gradient clipping.
    pub clip: Clip,
    /// Where batches come from.
    pub data: Data,
    /// Write a checkpoint every this many steps (`train.checkpoint_every`).
    pub checkpoint_every: Option<usize>,
    /// Loss scaling (`train.loss_scale`), for training whose pass computes in 16 bits.
    pub loss_scale: LossScale,
}

/// Loss scaling (`train.loss_scale`): the gradient of the loss is multiplied by a scale
/// before the backward pass, which then runs on values large enough for a 16-bit type's
/// range, and the gradients are divided by it again (in f32) before clipping and the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossScale {
    /// No scaling: a non-finite gradient stops the run, as in any precision.
    None,
    /// `torch.amp.GradScaler`'s dynamic scale: a step whose gradients hold inf or NaN is
    /// skipped and the scale multiplied by `backoff_factor`; after `growth_interval`
    /// consecutive finite steps the scale is multiplied by `growth_factor` (when the result is
    /// finite in f32). The scale is an f32.
    Dynamic {
        /// The first scale.
        init: f64,
        /// The factor after `growth_interval` finite steps (> 1).
        growth_factor: f64,
        /// The factor after a skipped step (in (0, 1)).
        backoff_factor: f64,
        /// Consecutive finite steps before the scale grows (≥ 1).
        growth_interval: usize,
    },
    /// A fixed scale (apex's static loss scale): nothing is skipped, and a non-finite
    /// gradient stops the run.
    Static {
        /// The scale.
        scale: f64,
    },
}

impl LossScale {
    /// `GradScaler()`'s defaults: init 2¹⁶, growth 2, backoff 0.5, interval 2000.
    pub const DYNAMIC: Self = Self::Dynamic {
        init: 65536.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
    };
}

/// An optimiser, with PyTorch's update rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// b ← μ·b + g (b = g at the first step), w ← w − lr·b; plain SGD for μ = 0.
    Sgd {
        /// μ.
        momentum: f64,
    },
    /// Adam (Kingma & Ba), bias-corrected, ε added to √v̂.
    Adam {
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        epsilon: f64,
    },
}

/// Gradient clipping before the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// None.
    None,
    /// Scale every gradient by max / (‖g‖ + 10⁻⁶) when the global norm ‖g‖ over all
    /// parameters exceeds `max` (PyTorch's `clip_grad_norm_`).
    Norm {
        /// The largest global norm.
        max: f64,
    },
    /// Clamp every element to [−max, max].
    Value {
        /// The bound.
        max: f64,
    },
}

/// Where a training run's batches come from.
// One per experiment, matched in a handful of places: boxing `Files` would save a few hundred
// bytes once and cost a dereference at each match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Inputs from the first `[[inputs]]` case's distribution; targets from a teacher network
    /// (the model's architecture, Glorot-uniform kernels, zero biases) drawn from the seed's
    /// teacher stream: with `classes`, labels (the argmax of its output), else its output.
    Teacher {
        /// The number of classes (= `model.output`), for labels.
        classes: Option<usize>,
    },
    /// Rows taken in file order from files, wrapping around: step s takes rows s·batch, ...
    /// (mod N). Safetensors files give their tensors `input` and `targets` (or their only
    /// tensor), so a training dump replays its step.
    Files {
        /// The inputs file.
        inputs_path: PathBuf,
        /// The array named in it (`.safetensors`), if one was.
        inputs_array: Option<String>,
        /// `[N, model.input]`.
        inputs: Arc<HostTensor>,
        /// The targets file.
        targets_path: PathBuf,
        /// The array named in it, if one was.
        targets_array: Option<String>,
        /// `[N]` labels (classification) or `[N, model.output]` values.
        targets: Arc<HostTensor>,
    },
}

impl Data {
    /// Whether the targets are class labels.
    pub fn labels(&self) -> bool {
        match self {
            Self::Teacher { classes } => classes.is_some(),
            Self::Files { targets, .. } => targets.shape.len() == 1,
        }
    }
}

/// Weights read from a file (`[model] weights`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedWeights {
    /// The file, resolved against the config's directory.
    pub path: PathBuf,
    /// How the file names and lays out its tensors.
    pub layout: weights::WeightsLayout,
    /// Its weights, shape-checked against the model.
    pub weights: gradscope_model::MlpWeights,
    /// An optimiser's state saved beside them (a training record's `weights.safetensors`, a
    /// training dump): `momentum_buffer.<param>`, `exp_avg.<param>`, `exp_avg_sq.<param>`,
    /// each shaped as its parameter; empty when the file has none. Training starts from it.
    pub optimizer: Vec<gradscope_model::NamedTensor>,
    /// The optimiser steps taken before that state (the file's `optimizer_steps` metadata:
    /// Adam's bias correction counts them); 0 when the file does not say.
    pub optimizer_steps: u64,
}

/// One input case: `batch` rows of width `model.d_input`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputCase {
    /// Unique name.
    pub name: String,
    /// Number of rows.
    pub batch: usize,
    /// Where the values come from.
    pub source: InputSource,
}

/// Where an input case's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// Drawn from the experiment's seed.
    Distribution(Distribution),
    /// Read from a file (already loaded and shape-checked).
    File {
        /// The file, resolved against the config's directory.
        path: PathBuf,
        /// Its values, `[batch, d_input]`.
        data: Arc<HostTensor>,
    },
}

impl InputSource {
    /// A short description, e.g. `normal(mean=0, std=1)` or `file(x.npy)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Distribution(d) => d.describe(),
            Self::File { path, .. } => format!("file({})", path.display()),
        }
    }
}

/// An input distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// N(mean, std²).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// U(low, high).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Every value the same.
    Constant {
        /// The value.
        value: f64,
    },
}

/// The inputs teacher data draws when a training config has no `[[inputs]]`: N(0, 1).
pub const TEACHER_INPUTS: Distribution = Distribution::Normal {
    mean: 0.0,
    std: 1.0,
};

/// The scalar whose gradients are measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Σ output² (the seed's `reduce_sum(output**2)`).
    SumSquares,
    /// mean(output²).
    MeanSquares,
    /// Σ output.
    Sum,
    /// mean(output).
    Mean,
    /// mean((output − target)²); in training, the data's targets.
    Mse {
        /// The constant target (plain runs).
        target: f64,
    },
    /// mean over the batch of −log_softmax(output)[label], computed stably (log-sum-exp
    /// with the maximum subtracted). Training with labels only.
    CrossEntropy,
    /// −mean over the batch of Σ_k onehot_k · log(softmax(output)_k), as classic tutorials
    /// wrote it: log(0) = −inf once a probability underflows, and 0·(−inf) = NaN. Training
    /// with labels only.
    CrossEntropyNaive,
}

impl Loss {
    /// The name used in configs.
    pub fn name(&self) -> &'static str {
        kinds::kind_of(kinds::LOSSES, self).map_or("?", |(k, _)| k.name)
    }

    /// Whether the loss compares the output with class labels.
    pub fn needs_labels(&self) -> bool {
        matches!(self, Self::CrossEntropy | Self::CrossEntropyNaive)
    }
}

impl Distribution {
    /// A short description, e.g. `normal(mean=0, std=1)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Normal { mean, std } => format!("normal(mean={mean}, std={std})"),
            Self::Uniform { low, high } => format!("uniform(low={low}, high={high})"),
            Self::Constant { value } => format!("constant({value})"),
        }
    }
}

/// Read and validate the experiment at `path`.
pub fn load(path: &Path) -> Result<Experiment, ConfigError> {
    parse(read_source(path)?)
}

/// Read `path` as UTF-8 text.
pub fn read_source(path: &Path) -> Result<Source, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read the file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let source = Source {
            path: path.to_path_buf(),
            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let offset = e.utf8_error().valid_up_to();
        source.error(
            Some(offset..offset + 1),
            Some(""),
            "the file is not valid UTF-8",
        )
    })?;
    Ok(Source {
        path: path.to_path_buf(),
        text,
    })
}

/// Validate the experiment held in `source`.
pub fn parse(source: Source) -> Result<Experiment, ConfigError> {
    validate::parse(&source, &inputs::Files::default())
}

impl Experiment {
    /// Whether a sweep of this experiment lists `precision` among its axes.
    pub fn sweeps_precision(&self) -> bool {
        self.sweep
            .as_ref()
            .is_some_and(|s| s.axes.iter().any(|(key, _)| key == "precision"))
    }

    /// Every precision this experiment runs in: its own, then each other one a sweep lists.
    pub fn precisions(&self) -> Vec<Precision> {
        let mut all = vec![self.precision];
        let swept = self.sweep.iter().flat_map(|s| &s.axes);
        for (_, values) in swept.filter(|(k, _)| k == "precision") {
            for v in values {
                if let Some(p) = v.as_str().and_then(Precision::parse)
                    && !all.contains(&p)
                {
                    all.push(p);
                }
            }
        }
        all
    }
}

/// Every `*.toml` directly in `dir`, sorted by name.
pub fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

/// Every `*.toml` directly in `dir`, sorted; none when it cannot be listed (for `bench` and
/// tests; `run`, `validate` and `list` report that as an error).
pub fn configs_in(dir: &Path) -> Vec<PathBuf> {
    toml_files(dir).unwrap_or_default()
}
