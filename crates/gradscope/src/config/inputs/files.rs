//! [`Files`]: what a config's files gave, kept for the next point of a sweep: each file's
//! bytes, each array parsed from them, and each set of weights read for a network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gradscope_model::HostTensor;

use super::FileError;

/// Files read so far, by path: each is read from disk once, and each array parsed once.
/// Clones share the caches, so a sweep's grid points, each validated once at load, share one
/// copy of every array they read (a plan may hold up to `sweep::MAX_POINTS` of them).
#[derive(Debug, Default, Clone)]
pub struct Files(Arc<Caches>);

/// The array of a file, as [`read_array`] names it: the path, the default name, the array.
pub(super) type ArrayKey = (PathBuf, &'static str, Option<String>);

#[derive(Debug, Default)]
struct Caches {
    bytes: Mutex<HashMap<PathBuf, Arc<[u8]>>>,
    arrays: Mutex<HashMap<ArrayKey, Arc<HostTensor>>>,
    weights: Mutex<
        Vec<(
            crate::config::weights::WeightsKey,
            Arc<crate::config::LoadedWeights>,
        )>,
    >,
}

/// The lock's guard; a poisoned lock still holds a whole cache (each entry is inserted whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Files {
    /// The bytes of `path`, read now or earlier.
    pub fn read(&self, path: &Path) -> Result<Arc<[u8]>, FileError> {
        let mut cache = lock(&self.0.bytes);
        if let Some(bytes) = cache.get(path) {
            return Ok(bytes.clone());
        }
        let bytes: Arc<[u8]> = std::fs::read(path)
            .map_err(|source| FileError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .into();
        cache.insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }

    /// The array `key` names, parsed now by `parse` or earlier.
    pub(super) fn array(
        &self,
        key: ArrayKey,
        parse: impl FnOnce() -> Result<HostTensor, FileError>,
    ) -> Result<Arc<HostTensor>, FileError> {
        if let Some(t) = lock(&self.0.arrays).get(&key) {
            return Ok(t.clone());
        }
        let tensor = Arc::new(parse()?);
        lock(&self.0.arrays).insert(key, tensor.clone());
        Ok(tensor)
    }

    /// The weights read before for `key`, if any.
    pub(in crate::config) fn weights(
        &self,
        key: &crate::config::weights::WeightsKey,
    ) -> Option<Arc<crate::config::LoadedWeights>> {
        let cache = lock(&self.0.weights);
        cache.iter().find(|(k, _)| k == key).map(|(_, w)| w.clone())
    }

    /// Keep `weights`, read for `key`; returns the shared copy.
    pub(in crate::config) fn keep_weights(
        &self,
        key: crate::config::weights::WeightsKey,
        weights: crate::config::LoadedWeights,
    ) -> Arc<crate::config::LoadedWeights> {
        let weights = Arc::new(weights);
        lock(&self.0.weights).push((key, weights.clone()));
        weights
    }
}
