//! A network's weights from a `.safetensors` file (`[model] weights`), in one of two layouts:
//! gradscope's own (`layers.{i}.weight` `[d_in, d_out]`, Keras's kernel layout, and
//! `layers.{i}.bias`: what `--dump` and a training record's `weights.safetensors` hold) or
//! PyTorch's `nn.Sequential` state_dict (`{k}.weight` `[out, in]` and `{k}.bias`, where k
//! counts every module, so the activations' indices are skipped: 0, 2, 4, ...) or Keras's
//! (`dense/kernel` `[in, out]` and `dense/bias`, `dense_1/...`: Keras 3's variable paths, as
//! `{w.path: w.numpy() for w in model.weights}` gives them, optionally under a model's prefix
//! such as `sequential/`, or Keras 2's `dense/kernel:0`). Every shape is checked against the
//! model; PyTorch's kernels are transposed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gradscope_model::{HostTensor, LayerWeights, MlpConfig, MlpWeights};
use safetensors::SafeTensors;
use toml::Spanned;

use gradscope_report::names::{self, Param};

use super::inputs::{FileError, Files, Problem, floats_of};
use super::raw::RawModel;
use super::source::{ConfigError, did_you_mean};
use super::validate::Checker;

/// How a weights file names and lays out its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsLayout {
    /// `layers.{i}.weight` `[d_in, d_out]`, `layers.{i}.bias`.
    Gradscope,
    /// `{k}.weight` `[out, in]`, `{k}.bias`: a PyTorch `nn.Sequential` state_dict.
    Pytorch,
    /// `[prefix/]{name}[_{n}]/kernel[:0]` `[in, out]` and `.../bias`: Keras's Dense layers,
    /// ordered by their name's number (`dense` is 0, `dense_1` is 1, ...).
    Keras,
}

impl WeightsLayout {
    /// Every layout with its name in configs.
    pub const ALL: [(Self, &'static str); 3] = [
        (Self::Gradscope, "gradscope"),
        (Self::Pytorch, "pytorch"),
        (Self::Keras, "keras"),
    ];

    /// The layout named `name` in a config.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(l, _)| *l)
    }

    /// The name configs use.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(l, _)| *l == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Read the weights of the network `model` describes from the safetensors file `path` (F32 or
/// F64 tensors), in `layout`, or in the layout its names say, through `files`. Returns the
/// layout read.
pub fn read_weights(
    path: &Path,
    model: &MlpConfig,
    layout: Option<WeightsLayout>,
    files: &Files,
) -> Result<(MlpWeights, WeightsLayout), FileError> {
    let bytes = files.read(path)?;
    weights_of(&bytes, model, layout).map_err(|p| p.at(path))
}

fn weights_of(
    bytes: &[u8],
    model: &MlpConfig,
    layout: Option<WeightsLayout>,
) -> Result<(MlpWeights, WeightsLayout), Problem> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Problem::WeightsFile(e.to_string()))?;
    let layout = match layout {
        Some(l) => l,
        None => layout_of(&st)?,
    };
    let layers = match layout {
        WeightsLayout::Gradscope => gradscope_layers(&st, model)?,
        WeightsLayout::Pytorch => pytorch_layers(&st, model)?,
        WeightsLayout::Keras => keras_layers(&st, model)?,
    };
    let weights = MlpWeights {
        layers: layers.into(),
        activations: model.activations.clone(),
    };
    Ok((weights, layout))
}

/// What a config's weights are read for: the file, the layout it names (if any) and the
/// network they must fit. Sweep points that agree on all three share one read of the weights.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WeightsKey {
    pub(super) path: PathBuf,
    pub(super) layout: Option<WeightsLayout>,
    pub(super) model: MlpConfig,
}

/// PyTorch's `k.weight` / `k.bias` name: (k, "weight" or "bias").
fn torch_name(name: &str) -> Option<(usize, &str)> {
    let (k, suffix) = name.split_once('.')?;
    Some((k.parse().ok()?, suffix))
}

/// Keras's `[prefix/]layer/kernel[:0]` name: (layer, "kernel" or "bias").
fn keras_name(name: &str) -> Option<(&str, &str)> {
    let name = name.strip_suffix(":0").unwrap_or(name);
    let (path, var) = name.rsplit_once('/')?;
    let layer = path.rsplit('/').next()?;
    matches!(var, "kernel" | "bias").then_some((layer, var))
}

/// A Keras layer name's place: `dense` 0, `dense_3` 3 (with its base name).
fn keras_index(layer: &str) -> (&str, usize) {
    match layer.rsplit_once('_') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (base, n.parse().unwrap_or(usize::MAX))
        }
        _ => (layer, 0),
    }
}

/// The layout a file's names say: gradscope's has `layers.0.weight`, PyTorch's `{k}.weight`,
/// Keras's `.../kernel`.
fn layout_of(st: &SafeTensors<'_>) -> Result<WeightsLayout, Problem> {
    let names = st.names();
    let ours = names.iter().any(|n| n.starts_with("layers."));
    let torch = names
        .iter()
        .any(|n| torch_name(n).is_some_and(|(_, s)| s == "weight"));
    let keras = names
        .iter()
        .any(|n| keras_name(n).is_some_and(|(_, v)| v == "kernel"));
    match (ours, torch, keras) {
        (true, false, false) => Ok(WeightsLayout::Gradscope),
        (false, true, false) => Ok(WeightsLayout::Pytorch),
        (false, false, true) => Ok(WeightsLayout::Keras),
        (a, b, c) => {
            let both = usize::from(a) + usize::from(b) + usize::from(c) > 1;
            let mut found: Vec<String> = names.iter().take(6).map(|n| n.to_string()).collect();
            found.sort();
            Err(Problem::Layout { both, found })
        }
    }
}

/// A tensor of `st` of exactly `shape`, as f32.
fn tensor(
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    needed: &str,
) -> Result<HostTensor, Problem> {
    let view = st
        .tensor(name)
        .map_err(|_| Problem::Missing(name.to_string()))?;
    if view.shape() != shape {
        return Err(Problem::Shape {
            name: name.to_string(),
            found: view.shape().to_vec(),
            needed: shape.to_vec(),
            what: needed.to_string(),
        });
    }
    Ok(HostTensor::new(shape.to_vec(), floats_of(name, &view)?))
}

/// gradscope's layout. Other tensors (a dump's gradients, a record's optimiser state) are
/// ignored, but not those of layers the model lacks.
fn gradscope_layers(st: &SafeTensors<'_>, model: &MlpConfig) -> Result<Vec<LayerWeights>, Problem> {
    let widths = model.widths();
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            Ok(LayerWeights {
                weight: tensor(st, &names::param(i, Param::Weight), &[w[0], w[1]], "")?,
                bias: match model.bias {
                    true => Some(tensor(st, &names::param(i, Param::Bias), &[w[1]], "")?),
                    false => None,
                },
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let n = widths.len() - 1;
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|name| gradscope_model::layer_of(name).is_some_and(|i| i >= n))
    {
        return Err(Problem::ExtraLayer {
            name: extra.to_string(),
            layers: n,
        });
    }
    Ok(layers)
}

/// PyTorch's layout: the i-th smallest module index k with a `k.weight` is layer i; every
/// tensor must be a Linear layer's `weight` or `bias`, so that nothing in the file is silently
/// left out (a BatchNorm's `running_mean`, a prefixed `net.0.weight`).
fn pytorch_layers(st: &SafeTensors<'_>, model: &MlpConfig) -> Result<Vec<LayerWeights>, Problem> {
    let mut modules: BTreeMap<usize, (bool, bool)> = BTreeMap::new();
    for name in st.names() {
        match torch_name(name) {
            Some((k, "weight")) => modules.entry(k).or_default().0 = true,
            Some((k, "bias")) => modules.entry(k).or_default().1 = true,
            _ => return Err(Problem::NotLinear(name.to_string())),
        }
    }
    if let Some((k, _)) = modules.iter().find(|(_, (w, _))| !w) {
        return Err(Problem::Missing(format!("{k}.weight")));
    }
    let widths = model.widths();
    let n = widths.len() - 1;
    if modules.len() != n {
        return Err(Problem::LayerCount {
            found: modules.keys().copied().collect(),
            layers: n,
        });
    }
    modules
        .iter()
        .zip(widths.windows(2))
        .enumerate()
        .map(|(i, ((k, (_, has_bias)), w))| {
            let what = format!(" (layer {i}, in PyTorch's [out, in])");
            let kernel = tensor(st, &format!("{k}.weight"), &[w[1], w[0]], &what)?;
            let bias = match (model.bias, has_bias) {
                (true, _) => Some(tensor(
                    st,
                    &format!("{k}.bias"),
                    &[w[1]],
                    &format!(" (layer {i})"),
                )?),
                (false, true) => return Err(Problem::UnwantedBias(format!("{k}.bias"))),
                (false, false) => None,
            };
            Ok(LayerWeights {
                weight: transpose(&kernel),
                bias,
            })
        })
        .collect()
}

/// Keras's layout: a Dense layer per `kernel`, ordered by the number in its name (`dense`,
/// `dense_1`, ...: Keras numbers the layers of one kind in the order they were made), kernels
/// `[in, out]` as gradscope's. Every tensor must be a `kernel` or `bias`, all of one base
/// name, so that nothing is silently left out or put in the wrong place.
fn keras_layers(st: &SafeTensors<'_>, model: &MlpConfig) -> Result<Vec<LayerWeights>, Problem> {
    // layer name → (kernel tensor name, bias tensor name)
    let mut layers: BTreeMap<(usize, String), (Option<String>, Option<String>)> = BTreeMap::new();
    let mut base: Option<String> = None;
    // In name order, so that a refusal names the same tensors every time.
    let mut names = st.names();
    names.sort();
    for name in names {
        let Some((layer, var)) = keras_name(name) else {
            return Err(Problem::NotDense(name.to_string()));
        };
        let (b, index) = keras_index(layer);
        match &base {
            Some(first) if first != b => {
                return Err(Problem::KerasOrder {
                    first: first.clone(),
                    other: layer.to_string(),
                });
            }
            _ => base = Some(b.to_string()),
        }
        let entry = layers.entry((index, layer.to_string())).or_default();
        match var {
            "kernel" => entry.0 = Some(name.to_string()),
            _ => entry.1 = Some(name.to_string()),
        }
    }
    let widths = model.widths();
    let n = widths.len() - 1;
    if layers.len() != n {
        return Err(Problem::KerasLayerCount {
            found: layers.keys().map(|(_, l)| l.clone()).collect(),
            layers: n,
        });
    }
    layers
        .iter()
        .zip(widths.windows(2))
        .enumerate()
        .map(|(i, (((_, layer), (kernel, bias)), w))| {
            let kernel = kernel
                .as_ref()
                .ok_or_else(|| Problem::Missing(format!("{layer}/kernel")))?;
            let what = format!(" (layer {i}, in Keras's [in, out])");
            let weight = tensor(st, kernel, &[w[0], w[1]], &what)?;
            let bias = match (model.bias, bias) {
                (true, Some(b)) => Some(tensor(st, b, &[w[1]], &format!(" (layer {i})"))?),
                (true, None) => return Err(Problem::Missing(format!("{layer}/bias"))),
                (false, Some(b)) => return Err(Problem::UnwantedBias(b.clone())),
                (false, None) => None,
            };
            Ok(LayerWeights { weight, bias })
        })
        .collect()
}

/// The prefixes of an optimiser's state tensors (PyTorch's names for its state).
pub const OPTIMIZER_STATE: [&str; 3] = ["momentum_buffer", "exp_avg", "exp_avg_sq"];

/// The optimiser state saved in gradscope's layout beside `weights` in the file at `path`:
/// every `{prefix}.layers.{i}.{weight,bias}` tensor of [`OPTIMIZER_STATE`], shape-checked
/// against its parameter, and the file's `optimizer_steps` metadata.
fn optimizer_state(
    path: &Path,
    weights: &MlpWeights,
    files: &Files,
) -> Result<(Vec<gradscope_model::NamedTensor>, u64), FileError> {
    let bytes = files.read(path)?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Problem::WeightsFile(e.to_string()).at(path))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Problem::WeightsFile(e.to_string()).at(path))?;
    let mut out = Vec::new();
    for prefix in OPTIMIZER_STATE {
        for (i, l) in weights.layers.iter().enumerate() {
            let params = std::iter::once((Param::Weight, &l.weight))
                .chain(l.bias.as_ref().map(|b| (Param::Bias, b)));
            for (which, p) in params {
                let name = format!("{prefix}.{}", names::param(i, which));
                if st.names().iter().any(|n| **n == name) {
                    let t = tensor(
                        &st,
                        &name,
                        &p.shape,
                        " (an optimiser state, shaped as its parameter)",
                    )
                    .map_err(|e| e.at(path))?;
                    out.push(gradscope_model::NamedTensor { name, tensor: t });
                }
            }
        }
    }
    let steps = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("optimizer_steps"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((out, steps))
}

impl Checker<'_> {
    /// `[model] weights`: a weights file (relative to the config's directory) that fits `model`.
    pub(super) fn weights(
        &self,
        raw: &Spanned<RawModel>,
        model: &MlpConfig,
    ) -> Result<Option<Arc<super::LoadedWeights>>, ConfigError> {
        let Some(w) = &raw.get_ref().weights else {
            return Ok(None);
        };
        let (raw, key) = (w.get_ref(), "model.weights");
        if raw.array.is_some() {
            let m = "`array` names an array of a data file; a weights file's tensors are named by its `layout`";
            return Err(self.err(w.span(), key, m));
        }
        let layout = match &raw.layout {
            None => None,
            Some(name) => Some(WeightsLayout::parse(name).ok_or_else(|| {
                let names: Vec<&str> = WeightsLayout::ALL.iter().map(|(_, n)| *n).collect();
                let m = format!(
                    "unknown layout `{name}`, expected one of: {}",
                    names.join(", ")
                );
                let e = self.err(w.span(), key, m);
                match did_you_mean(name, names.iter().copied()) {
                    Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                    None => e,
                }
            })?),
        };
        let path = self.dir().join(&raw.file);
        let cache_key = WeightsKey {
            path: path.clone(),
            layout,
            model: model.clone(),
        };
        if let Some(loaded) = self.files().weights(&cache_key) {
            return Ok(Some(loaded));
        }
        let (weights, layout) = read_weights(&path, model, layout, self.files())
            .map_err(|e| self.err(w.span(), key, e.to_string()))?;
        let (optimizer, optimizer_steps) = match layout {
            WeightsLayout::Gradscope => optimizer_state(&path, &weights, self.files())
                .map_err(|e| self.err(w.span(), key, e.to_string()))?,
            _ => (Vec::new(), 0),
        };
        let loaded = super::LoadedWeights {
            path,
            layout,
            weights,
            optimizer,
            optimizer_steps,
        };
        Ok(Some(self.files().keep_weights(cache_key, loaded)))
    }
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose(t: &HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            data[c * rows + r] = t.data[r * cols + c];
        }
    }
    HostTensor::new(vec![cols, rows], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        // [[1, 2, 3], [4, 5, 6]] transposed is [[1, 4], [2, 5], [3, 6]].
        let t = HostTensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let u = transpose(&t);
        assert_eq!(
            (u.shape, u.data),
            (vec![3, 2], vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0])
        );
    }

    #[test]
    fn layout_names_read_back() {
        for (layout, name) in WeightsLayout::ALL {
            assert_eq!(WeightsLayout::parse(name), Some(layout));
            assert_eq!(layout.name(), name);
        }
        assert_eq!(WeightsLayout::parse("tensorflow"), None);
    }
}
