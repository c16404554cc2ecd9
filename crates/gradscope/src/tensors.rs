//! Tensor dumps: `--dump DIR` writes one `<case>.safetensors` per input case (input, output,
//! weights, gradients, δ per layer, with metadata); a training run's record holds its final
//! weights and optimiser state (`weights.safetensors`). `[model] weights = "file.safetensors"`
//! reads such weights back: `config::weights::read_weights`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gradscope_model::{HostTensor, MlpWeights};
use gradscope_report::names::{self, Param};
use safetensors::{Dtype, View};

use crate::config::Experiment;
use crate::run::{CaseOutcome, Outcome};

/// `tensors` and `metadata` as a safetensors file's bytes, the same bytes for the same
/// tensors and metadata in every run.
///
/// `safetensors::serialize` takes the metadata as a `HashMap` and writes it in the map's
/// order, which changes from one process to the next. The header is read back and written
/// again with its keys in order ([`sorted_header`]).
fn serialize(
    tensors: Vec<(String, HostView<'_>)>,
    metadata: HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    let bytes = safetensors::serialize(tensors, Some(metadata)).map_err(std::io::Error::other)?;
    sorted_header(bytes)
}

/// A safetensors file's bytes with its JSON header's keys in order, `__metadata__`'s
/// included. The header keeps its length (the same keys and values, reordered, in the same
/// compact form; the padding after it is spaces, as safetensors pads), so the tensors' data and
/// their offsets do not move.
fn sorted_header(mut bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let bad = |why: &str| std::io::Error::other(format!("safetensors header: {why}"));
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(bad("shorter than 8 bytes"));
    };
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| bad("too long"))?;
    let header = rest.get(..len).ok_or_else(|| bad("past the end"))?;
    let mut top: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(std::io::Error::other)?;
    if let Some(meta) = top.get_mut("__metadata__") {
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(meta.take()).map_err(std::io::Error::other)?;
        *meta = serde_json::to_value(sorted).map_err(std::io::Error::other)?;
    }
    let mut json = serde_json::to_vec(&top).map_err(std::io::Error::other)?;
    if json.len() > len {
        return Err(bad("longer once sorted"));
    }
    json.resize(len, b' ');
    bytes[8..8 + len].copy_from_slice(&json);
    Ok(bytes)
}

/// A host tensor as safetensors stores it: F64 where it was read back from an f64 tensor (an
/// f64 run's values, past f32's range included), else F32 (the weights and inputs, drawn in
/// f32, and every tensor of a run below f64).
struct HostView<'a>(&'a HostTensor);

impl View for HostView<'_> {
    fn dtype(&self) -> Dtype {
        match self.0.wide {
            Some(_) => Dtype::F64,
            None => Dtype::F32,
        }
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        match &self.0.wide {
            Some(w) => Cow::Owned(w.iter().flat_map(|v| v.to_le_bytes()).collect()),
            None => Cow::Owned(self.0.data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        }
    }
    fn data_len(&self) -> usize {
        self.0.data.len() * if self.0.wide.is_some() { 8 } else { 4 }
    }
}

/// The tensors of one case, by the names the dump uses.
pub fn case_tensors<'a>(
    weights: &'a MlpWeights,
    case: &'a CaseOutcome,
) -> Vec<(String, &'a HostTensor)> {
    let mut t: Vec<(String, &HostTensor)> = vec![
        ("input".into(), &case.input),
        ("output".into(), &case.output),
    ];
    for (i, l) in weights.layers.iter().enumerate() {
        t.push((names::param(i, Param::Weight), &l.weight));
        if let Some(b) = &l.bias {
            t.push((names::param(i, Param::Bias), b));
        }
    }
    for g in &case.grads {
        t.push((format!("grad.{}", g.name), &g.tensor));
    }
    for (i, d) in case.deltas.iter().enumerate() {
        t.push((names::delta(i), d));
    }
    t
}

/// Write `<dir>/<case>.safetensors` for every case (each written to a temporary name, then
/// renamed). Returns the files written.
pub fn dump(
    dir: &Path,
    exp: &Experiment,
    backend: &str,
    outcome: &Outcome,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for case in &outcome.cases {
        let metadata = HashMap::from([
            ("experiment".to_string(), exp.name.clone()),
            ("case".to_string(), case.name.clone()),
            ("activation".to_string(), activations(exp)),
            ("loss".to_string(), exp.loss.name().to_string()),
            ("seed".to_string(), exp.seed.to_string()),
            ("backend".to_string(), backend.to_string()),
            // The values are stored as f32, which holds every f16 and bf16 value exactly.
            ("precision".to_string(), exp.precision.name().to_string()),
            ("kernel_layout".to_string(), "[in, out]".to_string()),
        ]);
        let tensors: Vec<(String, HostView)> = case_tensors(&outcome.weights, case)
            .into_iter()
            .map(|(n, t)| (n, HostView(t)))
            .collect();
        let bytes = serialize(tensors, metadata)?;
        let path = dir.join(format!("{}.safetensors", case.name));
        crate::record::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The optimiser as the config writes it (`adam(beta1=0.9, ...)`), as the dumps' metadata
/// names it; empty outside training.
fn optimizer(exp: &Experiment) -> String {
    exp.task.train().map_or_else(String::new, |t| {
        crate::config::kinds::describe_named(crate::config::kinds::OPTIMIZERS, &t.optimizer)
    })
}

/// The hidden layers' activations, comma-separated, as the dumps' metadata names them.
fn activations(exp: &Experiment) -> String {
    let names: Vec<&str> = exp.model.activations.iter().map(|a| a.name()).collect();
    names.join(",")
}

/// The name of a training run's final weights, in its record and its dump.
pub const TRAINED_WEIGHTS: &str = "weights.safetensors";

/// Write a training run's final weights to `path`: `layers.{i}.weight` `[d_in, d_out]` and
/// `layers.{i}.bias` (what `[model] weights =` reads), the optimiser's state as further tensors
/// (`momentum_buffer.layers.{i}.weight`, `exp_avg...`, `exp_avg_sq...`: `TrainOutcome::optimizer`)
/// and metadata: the steps run, the optimiser steps taken, whether every step was finite.
pub fn write_trained_weights(
    path: &Path,
    exp: &Experiment,
    backend: &str,
    outcome: &crate::train::TrainOutcome,
) -> std::io::Result<()> {
    let state = crate::train::Checkpoint {
        steps: outcome.steps.len(),
        weights: &outcome.weights,
        optimizer: outcome.optimizer.clone(),
        optimizer_steps: outcome.optimizer_steps,
    };
    write_state(path, exp, backend, &state, outcome.origin.is_none())
}

/// Write checkpoint `c` of a training run to `path`, as [`write_trained_weights`] writes the
/// final weights (every step before it was finite).
pub fn write_checkpoint(
    path: &Path,
    exp: &Experiment,
    backend: &str,
    c: &crate::train::Checkpoint<'_>,
) -> std::io::Result<()> {
    write_state(path, exp, backend, c, true)
}

/// Weights and optimiser state as a safetensors file, with the run's metadata.
fn write_state(
    path: &Path,
    exp: &Experiment,
    backend: &str,
    c: &crate::train::Checkpoint<'_>,
    finite: bool,
) -> std::io::Result<()> {
    let optimizer = optimizer(exp);
    let metadata = HashMap::from([
        ("experiment".to_string(), exp.name.clone()),
        ("seed".to_string(), exp.seed.to_string()),
        ("loss".to_string(), exp.loss.name().to_string()),
        ("steps_run".to_string(), c.steps.to_string()),
        ("optimizer_steps".to_string(), c.optimizer_steps.to_string()),
        ("optimizer".to_string(), optimizer),
        ("finite".to_string(), finite.to_string()),
        ("kernel_layout".to_string(), "[in, out]".to_string()),
        ("activation".to_string(), activations(exp)),
        ("backend".to_string(), backend.to_string()),
    ]);
    let mut tensors: Vec<(String, HostView)> = Vec::new();
    for (i, l) in c.weights.layers.iter().enumerate() {
        tensors.push((names::param(i, Param::Weight), HostView(&l.weight)));
        if let Some(b) = &l.bias {
            tensors.push((names::param(i, Param::Bias), HostView(b)));
        }
    }
    for t in &c.optimizer {
        tensors.push((t.name.clone(), HostView(&t.tensor)));
    }
    let bytes = serialize(tensors, metadata)?;
    crate::record::write_atomic(path, &bytes)
}

/// A training run's dump: `<dir>/step-<N>.safetensors` for the last finite step and the
/// failing one, each with the weights and the optimiser's state before the step (load them
/// with `[model] weights =` to replay it exactly: training starts from that state), the batch
/// (`input`, `targets`), z (`z.layers.i`), δ and the gradients; and the final weights,
/// [`TRAINED_WEIGHTS`] (the only file of a run that stayed finite).
pub fn write_training_dump(
    dir: &Path,
    exp: &Experiment,
    backend: &str,
    outcome: &crate::train::TrainOutcome,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let optimizer = optimizer(exp);
    let mut written = Vec::new();
    for st in &outcome.dumps {
        let metadata = HashMap::from([
            ("experiment".to_string(), exp.name.clone()),
            ("step".to_string(), st.step.to_string()),
            ("loss".to_string(), exp.loss.name().to_string()),
            ("seed".to_string(), exp.seed.to_string()),
            ("kernel_layout".to_string(), "[in, out]".to_string()),
            ("optimizer".to_string(), optimizer.clone()),
            (
                "optimizer_steps".to_string(),
                st.optimizer_steps.to_string(),
            ),
            ("activation".to_string(), activations(exp)),
            ("backend".to_string(), backend.to_string()),
        ]);
        let mut tensors: Vec<(String, HostView)> = case_tensors(&st.weights, &st.pass)
            .into_iter()
            .map(|(n, t)| (n, HostView(t)))
            .collect();
        for (i, z) in st.pass.pre_activations.iter().enumerate() {
            tensors.push((names::pass_tensor("z", i), HostView(z)));
        }
        if !st.batch.targets.data.is_empty() {
            tensors.push(("targets".into(), HostView(&st.batch.targets)));
        }
        for t in &st.optimizer {
            tensors.push((t.name.clone(), HostView(&t.tensor)));
        }
        let bytes = serialize(tensors, metadata)?;
        let path = dir.join(format!("step-{}.safetensors", st.step));
        crate::record::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    let path = dir.join(TRAINED_WEIGHTS);
    write_trained_weights(&path, exp, backend, outcome)?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same tensors and metadata, the metadata's map built in two orders.
    fn file(order: &[usize]) -> Vec<u8> {
        let pairs = [
            ("seed", "1"),
            ("loss", "sum_squares"),
            ("backend", "flex"),
            ("case", "x"),
        ];
        let metadata: HashMap<String, String> = order
            .iter()
            .map(|&i| (pairs[i].0.to_string(), pairs[i].1.to_string()))
            .collect();
        let (w, b) = (
            HostTensor::new(vec![2, 3], vec![1.0, -2.0, 0.5, 3.0, -0.25, 8.0]),
            HostTensor::new(vec![3], vec![0.0, 1.0, -1.0]),
        );
        let tensors = vec![
            ("layers.0.weight".to_string(), HostView(&w)),
            ("layers.0.bias".to_string(), HostView(&b)),
        ];
        serialize(tensors, metadata).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_same_tensors_and_metadata_give_the_same_bytes() {
        let first = file(&[0, 1, 2, 3]);
        for order in [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            assert_eq!(
                file(&order),
                first,
                "metadata inserted in the order {order:?}"
            );
        }
        // Still a safetensors file: the same metadata and tensors read back.
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&first).unwrap_or_else(|e| panic!("{e}"));
        let m = meta.metadata().clone().unwrap_or_default();
        assert_eq!(m.get("loss").map(String::as_str), Some("sum_squares"));
        assert_eq!(m.len(), 4);
        let st = safetensors::SafeTensors::deserialize(&first).unwrap_or_else(|e| panic!("{e}"));
        let w = st
            .tensor("layers.0.weight")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.shape(), [2, 3]);
        let values: Vec<f32> = w
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(values, [1.0, -2.0, 0.5, 3.0, -0.25, 8.0]);
        // The header's metadata is written in key order.
        let len = u64::from_le_bytes(first[..8].try_into().unwrap_or_default()) as usize;
        let header = String::from_utf8_lossy(&first[8..8 + len]).into_owned();
        let at = |k: &str| header.find(&format!("\"{k}\"")).unwrap_or(usize::MAX);
        assert!(at("backend") < at("case") && at("case") < at("loss") && at("loss") < at("seed"));
    }
}
