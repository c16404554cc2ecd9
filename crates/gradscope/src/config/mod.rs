//! Experiment configs: reading a TOML file (`raw`), validating it into an `Experiment`, and
//! locating every problem (`source`).

pub mod raw;
pub mod source;
mod validate;

use std::path::{Path, PathBuf};

use gradscope_model::MlpConfig;

pub use source::{ConfigError, Source};

use crate::backend::BackendKind;

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
    /// The network.
    pub model: MlpConfig,
    /// The loss.
    pub loss: Loss,
    /// The input cases, in file order.
    pub inputs: Vec<InputCase>,
    /// The file it was read from.
    pub path: PathBuf,
}

/// One input case: `batch` rows of width `model.d_input` drawn from `distribution`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputCase {
    /// Unique name.
    pub name: String,
    /// Number of rows.
    pub batch: usize,
    /// Where the values come from.
    pub distribution: Distribution,
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
    /// mean((output − target)²).
    Mse {
        /// The constant target.
        target: f64,
    },
}

impl Loss {
    /// The name used in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SumSquares => "sum_squares",
            Self::MeanSquares => "mean_squares",
            Self::Sum => "sum",
            Self::Mean => "mean",
            Self::Mse { .. } => "mse",
        }
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
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read the file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let source = Source { path: path.to_path_buf(), text: String::from_utf8_lossy(e.as_bytes()).into_owned() };
        let offset = e.utf8_error().valid_up_to();
        source.error(Some(offset..offset + 1), Some(""), "the file is not valid UTF-8")
    })?;
    parse(Source { path: path.to_path_buf(), text })
}

/// Validate the experiment held in `source`.
pub fn parse(source: Source) -> Result<Experiment, ConfigError> {
    validate::parse(&source)
}
