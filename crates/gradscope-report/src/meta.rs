//! `meta.json`: what a record was made with and where (versions, backend, seed, time, host,
//! command line).

use serde::{Deserialize, Serialize};

use crate::floats::{de_float64, float64};

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The schema's version ([`crate::SCHEMA_VERSION`]; 1 when absent).
    #[serde(default = "crate::version_1")]
    pub schema_version: u32,
    /// gradscope's version.
    pub gradscope_version: String,
    /// Burn's version.
    pub burn_version: String,
    /// Backend name.
    pub backend: String,
    /// wgpu adapter, if any.
    pub adapter: Option<String>,
    /// The seed.
    pub seed: u64,
    /// When the run started, UTC, ISO 8601.
    pub started_utc: String,
    /// Wall time of the run in seconds.
    #[serde(serialize_with = "float64", deserialize_with = "de_float64")]
    pub wall_time_s: f64,
    /// The machine's host name.
    pub host: String,
    /// The config file the experiment came from.
    pub config_path: String,
    /// The command line.
    pub command: Vec<String>,
    /// Every file the experiment read (weights, inputs, training data), with its sha256, so
    /// that a record says exactly what it was made from (absent from version-1 records).
    #[serde(default)]
    pub files: Vec<FileDigest>,
    /// A merged sweep's records: each one merged, with its shard and its own `meta.json`
    /// (absent for other records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedPart>,
}

/// One record a merged sweep was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedPart {
    /// The record's directory, as given to `merge`.
    pub path: String,
    /// `shard 2/3`, or `the whole sweep`.
    pub part: String,
    /// Its `meta.json` (`null` where it had none, as records before version 2 of sweeps).
    pub meta: Option<Box<Meta>>,
}

/// A file an experiment read, and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// What the file was: `weights`, `inputs.<case>`, `train.data.inputs`, `train.data.targets`.
    pub role: String,
    /// The file, absolute.
    pub path: String,
    /// Its sha256, lower-case hex (`sha256sum`'s).
    pub sha256: String,
}
