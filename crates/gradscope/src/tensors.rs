//! Tensor files: `--dump DIR` writes one `<case>.safetensors` per input case (input, output,
//! weights, gradients, δ per layer, with metadata), and `[model] weights = "file.safetensors"`
//! reads a network's weights back (Keras `[in, out]` kernel layout), from a dump or from any
//! tool that writes the same names.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gradscope_model::{HostTensor, LayerWeights, MlpConfig, MlpWeights};
use safetensors::{Dtype, SafeTensors, View};

use crate::config::Experiment;
use crate::run::{CaseOutcome, Outcome};

struct F32View<'a>(&'a HostTensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.0.data.len() * 4
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
        t.push((format!("layers.{i}.weight"), &l.weight));
        if let Some(b) = &l.bias {
            t.push((format!("layers.{i}.bias"), b));
        }
    }
    for g in &case.grads {
        t.push((format!("grad.{}", g.name), &g.tensor));
    }
    for (i, d) in case.deltas.iter().enumerate() {
        t.push((format!("delta.layers.{i}"), d));
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
    let activations: Vec<&str> = exp.model.activations.iter().map(|a| a.name()).collect();
    let mut written = Vec::new();
    for case in &outcome.cases {
        let metadata = HashMap::from([
            ("experiment".to_string(), exp.name.clone()),
            ("case".to_string(), case.name.clone()),
            ("activation".to_string(), activations.join(",")),
            ("loss".to_string(), exp.loss.name().to_string()),
            ("seed".to_string(), exp.seed.to_string()),
            ("backend".to_string(), backend.to_string()),
            ("kernel_layout".to_string(), "[in, out]".to_string()),
        ]);
        let tensors: Vec<(String, F32View)> = case_tensors(&outcome.weights, case)
            .into_iter()
            .map(|(n, t)| (n, F32View(t)))
            .collect();
        let bytes =
            safetensors::serialize(tensors, Some(metadata)).map_err(std::io::Error::other)?;
        let path = dir.join(format!("{}.safetensors", case.name));
        crate::record::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// Read the weights of the network `model` describes from a safetensors file: tensors
/// `layers.{i}.weight` `[d_in, d_out]` and, with biases, `layers.{i}.bias` `[d_out]` (F32 or
/// F64). Other tensors (a dump's gradients, say) are ignored. Errors are sentences.
pub fn read_weights(path: &Path, model: &MlpConfig) -> Result<MlpWeights, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        format!(
            "`{}` is not a valid .safetensors file ({e})",
            path.display()
        )
    })?;
    let get = |name: &str, shape: &[usize]| -> Result<HostTensor, String> {
        let view = st
            .tensor(name)
            .map_err(|_| format!("`{}` has no tensor `{name}`", path.display()))?;
        if view.shape() != shape {
            return Err(format!(
                "`{}`: tensor `{name}` has shape {:?}; the model needs {shape:?}",
                path.display(),
                view.shape()
            ));
        }
        let data = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Err(format!(
                    "`{}`: tensor `{name}` is {other:?}; expected F32 or F64",
                    path.display()
                ));
            }
        };
        Ok(HostTensor::new(shape.to_vec(), data))
    };
    let widths = model.widths();
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            Ok(LayerWeights {
                weight: get(&format!("layers.{i}.weight"), &[w[0], w[1]])?,
                bias: if model.bias {
                    Some(get(&format!("layers.{i}.bias"), &[w[1]])?)
                } else {
                    None
                },
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let n = widths.len() - 1;
    if let Some(extra) = st.names().into_iter().find(|name| {
        name.strip_prefix("layers.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i >= n)
    }) {
        return Err(format!(
            "`{}` has tensor `{extra}`, but the model has only {n} layers",
            path.display()
        ));
    }
    Ok(MlpWeights {
        layers,
        activations: model.activations.clone(),
    })
}
