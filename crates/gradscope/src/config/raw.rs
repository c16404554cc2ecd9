//! `Raw*`: the TOML shapes exactly as written, deserialised with `deny_unknown_fields` and
//! spans kept for messages. `validate` turns them into the types the program uses.
//!
//! Each field's doc comment is its reference documentation (see the README's config section).

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::ints;

/// The field names `T`'s derived `Deserialize` accepts, in declaration order, asked of serde
/// itself: a derived impl hands them to `deserialize_struct`, which this probe records. So the
/// key lists of messages and `--set` come from the structs below and cannot drift from them.
pub fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("a field-name probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("a field-name probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

/// A whole experiment file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    /// Short identifier of the experiment (ASCII letters, digits, `-`, `_`, `.`; not starting with `.` or `-`); names its records and notebook pages.
    pub name: Spanned<String>,
    /// One line saying what the experiment asks. Optional.
    pub description: Option<Spanned<String>>,
    /// Seed of every random draw (weights and inputs), 0 ≤ seed ≤ 2⁶³−1; a sweep's last trial seed, seed + trials − 1, too.
    #[serde(deserialize_with = "ints::int::<_, ints::Seed>")]
    pub seed: Spanned<i64>,
    /// Backend used when `--backend` is not given: `ndarray` (default), `flex` or `wgpu`.
    pub backend: Option<Spanned<String>>,
    /// The floating-point type every tensor is computed in: `"f32"` (default), `"f16"` or `"bf16"` (flex; wgpu where the adapter has shaderFloat16, f16 only), or `"f64"` (ndarray, flex; wgpu with shaderFloat64, once the activations' operations agree with the host's f64); `--precision` overrides it, and a sweep may list it. An f64 run keeps its statistics in f64, so a value past f32's range is shown as itself. A training run in 16 bits is mixed precision, `{ compute = "f16", master = "f32" }` (`"f16"` is short for it there): the pass computes in `compute`, the weights, the optimiser and the update stay in `master` (f32 only); training in f64 is refused with the reason.
    pub precision: Option<Spanned<RawPrecision>>,
    /// The network.
    pub model: Spanned<RawModel>,
    /// The loss whose gradients are measured; default `sum_squares` (Σ output²).
    pub loss: Option<Spanned<RawNamed>>,
    /// The input cases, each run through the same network (`[[inputs]]` tables). A training run needs none: its teacher data then draws N(0, 1) inputs.
    pub inputs: Option<Spanned<Vec<Spanned<RawInput>>>>,
    /// Train the network instead of measuring one gradient: `[train]` with `steps`,
    /// `learning_rate` and optionally `batch`, `optimizer`, `clip`, `data`.
    pub train: Option<Spanned<RawTrain>>,
    /// A sweep: `trials = N` seeds (seed, seed+1, ...) at every point of the grid spanned by
    /// lists of values for config keys, e.g. `"model.depth" = [2, 4, 8]`.
    pub sweep: Option<Spanned<toml::Table>>,
}

/// `[model]`: a stack of Linear layers with an activation after each hidden layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Input width (≥ 1).
    #[serde(deserialize_with = "ints::int::<_, ints::Width>")]
    pub input: Spanned<i64>,
    /// Hidden widths, first to last, e.g. `[100, 50, 25]`. Give either this or `depth` + `width`.
    #[serde(default, deserialize_with = "ints::opt_list::<_, ints::Width>")]
    pub hidden: Option<Spanned<Vec<Spanned<i64>>>>,
    /// Number of hidden layers, all of width `width` (shorthand for `hidden`).
    #[serde(default, deserialize_with = "ints::opt::<_, ints::Depth>")]
    pub depth: Option<Spanned<i64>>,
    /// Width of every hidden layer, with `depth`.
    #[serde(default, deserialize_with = "ints::opt::<_, ints::Width>")]
    pub width: Option<Spanned<i64>>,
    /// Output width (≥ 1).
    #[serde(deserialize_with = "ints::int::<_, ints::Width>")]
    pub output: Spanned<i64>,
    /// Activation after every hidden layer: a name (`"relu"`) or a table
    /// (`{ kind = "leaky_relu", slope = 0.01 }`). Default `relu`.
    pub activation: Option<Spanned<RawNamed>>,
    /// Per-layer exceptions to `activation`, keyed by hidden-layer index from 0:
    /// `{ 0 = "tanh", 3 = { kind = "elu", alpha = 0.5 } }`.
    pub activation_overrides: Option<Spanned<BTreeMap<String, Spanned<RawNamed>>>>,
    /// Whether the layers have biases. Default `true`.
    pub bias: Option<Spanned<bool>>,
    /// Kernel initialiser: a name or a table. Default `glorot_uniform` (Keras `Dense`).
    pub kernel_init: Option<Spanned<RawNamed>>,
    /// Bias initialiser: a name or a table. Default `zeros` (Keras `Dense`).
    pub bias_init: Option<Spanned<RawNamed>>,
    /// Gain multiplying the initialisers' bound or standard deviation. Default 1.
    pub gain: Option<Spanned<f64>>,
    /// A `.safetensors` file to take the weights from instead of drawing them, relative to the config file's directory: `"w.safetensors"` with tensors `layers.{i}.weight` `[d_in, d_out]` and `layers.{i}.bias` (a `--dump` file or a training record's `weights.safetensors` works), or `{ file = "m.safetensors", layout = "pytorch" }` for a PyTorch `nn.Sequential` state_dict (`0.weight` `[out, in]`, `0.bias`, `2.weight`, ...), or `layout = "keras"` for Keras's variable paths (`dense/kernel` `[in, out]`, `dense/bias`, `dense_1/...`). Without `layout`, the tensor names say which.
    pub weights: Option<Spanned<RawFile>>,
}

/// `[train]`: optimisation steps on fresh batches, each step checked for non-finite values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    /// Optimisation steps (≥ 1).
    #[serde(deserialize_with = "ints::int::<_, ints::Steps>")]
    pub steps: Spanned<i64>,
    /// Examples per step (≥ 1). Default 32.
    #[serde(default, deserialize_with = "ints::opt::<_, ints::TrainBatch>")]
    pub batch: Option<Spanned<i64>>,
    /// `"sgd"` or `{ kind = "sgd", momentum = 0.9 }` (PyTorch's SGD), or `"adam"` or
    /// `{ kind = "adam", beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 }`. Default `sgd`.
    pub optimizer: Option<Spanned<RawNamed>>,
    /// Step size (finite, > 0).
    pub learning_rate: Spanned<f64>,
    /// `"none"` (default), `{ kind = "norm", max = 1.0 }` (the global norm of all gradients,
    /// as PyTorch's `clip_grad_norm_`) or `{ kind = "value", max = 1.0 }` (each element).
    pub clip: Option<Spanned<RawNamed>>,
    /// `{ kind = "teacher", classes = 10 }` (labels: the argmax of a teacher network;
    /// without `classes`, its outputs as regression targets) or `{ kind = "files", inputs =
    /// "x.npy", targets = "y.npy" }` (targets `[N]` labels or `[N, output]` values). Default
    /// `teacher` with `classes = model.output` for the cross-entropy losses.
    pub data: Option<Spanned<RawData>>,
    /// Write the weights and the optimiser's state every this many steps (≥ 1) into the run record's `checkpoints/step-{N}.safetensors` (N the steps done), each loadable with `[model] weights =` to go on from there. Default: none.
    #[serde(default, deserialize_with = "ints::opt::<_, ints::Steps>")]
    pub checkpoint_every: Option<Spanned<i64>>,
    /// `"none"` (default), `"dynamic"` or `{ kind = "dynamic", init = 65536.0, growth_factor = 2.0, backoff_factor = 0.5, growth_interval = 2000 }` (`torch.amp.GradScaler`: a step with an inf or NaN gradient is skipped and the scale backs off; the run stops when the scale collapses below 2⁻²⁴ or `growth_interval` steps in a row are skipped), or `{ kind = "static", scale = 1024.0 }`: the loss's gradient is multiplied by the scale before the backward pass, and the gradients divided by it in f32 before clipping and the update.
    pub loss_scale: Option<Spanned<RawNamed>>,
}

/// `train.data`: where the batches come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `teacher` or `files`.
    pub kind: String,
    /// `teacher`: the number of classes (= `model.output`).
    #[serde(default, deserialize_with = "ints::opt_plain::<_, ints::Classes>")]
    pub classes: Option<i64>,
    /// `files`: the inputs file, `[N, model.input]`: `.npy`, or `.npz` (`np.savez`, uncompressed) or `.safetensors` (the array named as in `{ file = "d.safetensors", array = "x" }`, else `input`, else the only one); batches take its rows in order, wrapping around.
    pub inputs: Option<RawFile>,
    /// `files`: the targets file, `[N]` labels (integers or whole floats) or `[N, model.output]` values: `.npy`, or `.npz` or `.safetensors` (the array named with `array`, else `targets`, else the only one); a training dump serves as both files.
    pub targets: Option<RawFile>,
}

/// `[[inputs]]`: one input case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// Name of the case, unique in the file (ASCII letters, digits, `-`, `_`, `.`; not starting with `.` or `-`); names its dump file.
    pub name: Spanned<String>,
    /// Number of rows (≥ 1); the input has shape `[batch, model.input]`. Optional with `file`
    /// (then it must match the file's first dimension) and in training runs (which draw
    /// `train.batch` rows a step).
    #[serde(default, deserialize_with = "ints::opt::<_, ints::Rows>")]
    pub batch: Option<Spanned<i64>>,
    /// Where the values come from: `"normal"` (N(0,1)), or a table such as
    /// `{ kind = "uniform", low = -1.0, high = 1.0 }` or `{ kind = "constant", value = 1.0 }`.
    /// Give either this or `file`.
    pub distribution: Option<Spanned<RawNamed>>,
    /// A `.npy` file (f32 or f64, C order), an `.npz` archive (`np.savez`: its array `input`,
    /// or its only one) or a `.safetensors` file (its tensor `input`, or its only tensor) of
    /// shape `[batch, model.input]`; relative to the config file's directory.
    pub file: Option<Spanned<String>>,
}

/// A file a config names: `"path"`, or a table `{ file = "path", ... }` that also names the
/// array to read from it (`array`, data files) or the layout of its weights (`layout`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawFile {
    /// The path, relative to the config's directory.
    pub file: String,
    /// The array (tensor) of a `.safetensors` file.
    pub array: Option<String>,
    /// The weights' layout: `gradscope` or `pytorch`.
    pub layout: Option<String>,
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = RawFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path (string) or a table with `file`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawFile, E> {
                Ok(RawFile {
                    file: s.to_string(),
                    ..RawFile::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
                let (mut file, mut array, mut layout) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "file" => &mut file,
                        "array" => &mut array,
                        "layout" => &mut layout,
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["file", "array", "layout"],
                            ));
                        }
                    };
                    *slot = Some(map.next_value::<String>()?);
                }
                Ok(RawFile {
                    file: file.ok_or_else(|| de::Error::missing_field("file"))?,
                    array,
                    layout,
                })
            }
        }
        deserializer.deserialize_any(FileVisitor)
    }
}

/// `precision`: a type's name (`"f16"`), or a table `{ compute = "f16", master = "f32" }`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawPrecision {
    /// The type the pass computes in (the name, or the table's `compute`).
    pub compute: String,
    /// The table's `master`; `None` for a name, or a table without it.
    pub master: Option<String>,
    /// Whether it was written as a table.
    pub table: bool,
}

impl<'de> Deserialize<'de> for RawPrecision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PrecisionVisitor;
        impl<'de> Visitor<'de> for PrecisionVisitor {
            type Value = RawPrecision;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a type's name (string) or a table with `compute` and `master`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawPrecision, E> {
                Ok(RawPrecision {
                    compute: s.to_string(),
                    ..RawPrecision::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPrecision, A::Error> {
                let (mut compute, mut master) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "compute" => &mut compute,
                        "master" => &mut master,
                        other => {
                            return Err(de::Error::unknown_field(other, &["compute", "master"]));
                        }
                    };
                    *slot = Some(map.next_value::<String>()?);
                }
                Ok(RawPrecision {
                    compute: compute.ok_or_else(|| de::Error::missing_field("compute"))?,
                    master,
                    table: true,
                })
            }
        }
        deserializer.deserialize_any(PrecisionVisitor)
    }
}

/// Something chosen by name, with optional parameters: written either as a bare string
/// (`"relu"`) or as a table with a `kind` key and the parameters that kind takes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawNamed {
    /// The name.
    pub kind: String,
    /// The parameters given (name, value), in file order.
    pub params: Vec<(String, f64)>,
}

impl<'de> Deserialize<'de> for RawNamed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamedVisitor;
        impl<'de> Visitor<'de> for NamedVisitor {
            type Value = RawNamed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name (string) or a table with `kind`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawNamed, E> {
                Ok(RawNamed {
                    kind: s.to_string(),
                    params: Vec::new(),
                })
            }
            // Every key but `kind` is taken as a parameter, whatever its name: whether the
            // kind takes it is `Checker::named`'s question, which can then say which ones
            // that kind takes (serde's unknown-field list would name every kind's).
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNamed, A::Error> {
                let mut kind = None;
                let mut params = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "kind" {
                        kind = Some(map.next_value::<String>()?);
                    } else {
                        params.push((key, map.next_value::<f64>()?));
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                Ok(RawNamed { kind, params })
            }
        }
        deserializer.deserialize_any(NamedVisitor)
    }
}

impl RawNamed {
    /// The value of parameter `name`, if given.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_reports_each_structs_fields_in_declaration_order() {
        assert_eq!(
            fields_of::<RawInput>(),
            ["name", "batch", "distribution", "file"]
        );
        assert_eq!(
            fields_of::<RawExperiment>(),
            [
                "name",
                "description",
                "seed",
                "backend",
                "precision",
                "model",
                "loss",
                "inputs",
                "train",
                "sweep"
            ]
        );
        assert_eq!(fields_of::<RawModel>().len(), 12);
        assert_eq!(
            fields_of::<RawTrain>(),
            [
                "steps",
                "batch",
                "optimizer",
                "learning_rate",
                "clip",
                "data",
                "checkpoint_every",
                "loss_scale"
            ]
        );
    }
}
