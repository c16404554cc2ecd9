//! Reading the files a config names: arrays from NumPy `.npy` (little-endian floats f4, f8 or
//! integers i1-i8, u1-u8; C order) and `.safetensors` (the array named in the config, else the
//! one the caller names by default, else the only one; F32, F64 or integer types). Integers
//! become f32 only where f32 holds them exactly (|v| ≤ 2²⁴, or any value that happens to be
//! representable). A network's weights (`[model] weights`) are read in `weights`.
//!
//! Files are read through [`Files`], which keeps each file's bytes after the first read: a
//! sweep's grid points are validated (and later run) from one read of each file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gradscope_model::HostTensor;
use safetensors::{Dtype, SafeTensors};

mod files;

pub use files::Files;

/// A file a config names could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but its contents do not fit.
    #[error("`{}`{}{problem}", path.display(), if problem.is_predicate() { " " } else { ": " })]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a file's contents. The messages continue the file's name: "`x.npy`:
/// holds `<i8` values ...", or, for [`Problem::is_predicate`], "`w.safetensors` has no ...".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Neither `.npy`, `.npz` nor `.safetensors`.
    #[error("expected a `.npy`, `.npz` or `.safetensors` file")]
    Extension,
    /// An array was named where the file holds one array only.
    #[error("is a .npy file, which holds one array; `array` names one of a .safetensors file's")]
    ArrayOfNpy,
    /// The array named is not in the file.
    #[error("has no array `{name}`; it holds {}", list(.available))]
    NoArray {
        /// The name asked for.
        name: String,
        /// The arrays the file holds.
        available: Vec<String>,
    },
    /// Several arrays, none named in the config nor by the default name.
    #[error("holds the arrays {} and none is named `{default}`; name one, e.g. {{ file = \"...\", array = \"{}\" }}", list(.available), .available.first().map_or("", String::as_str))]
    WhichArray {
        /// The name looked for by default.
        default: &'static str,
        /// The arrays the file holds.
        available: Vec<String>,
    },
    /// An integer that f32 cannot hold exactly.
    #[error(
        "holds the integer {value} (element {index}), which f32 cannot hold exactly (every integer up to 2²⁴ = 16777216 in magnitude is exact)"
    )]
    Inexact {
        /// The element's index in the flattened array.
        index: usize,
        /// Its value.
        value: i128,
    },
    /// The .npy structure is broken.
    #[error("not a valid .npy file ({0})")]
    Npy(&'static str),
    /// The .npz archive is broken or compressed.
    #[error("is not an .npz archive gradscope reads: {0}")]
    Npz(String),
    /// A member of an .npz archive is not a valid .npy array.
    #[error("member `{member}.npy`: {problem}")]
    NpzMember {
        /// The array's name.
        member: String,
        /// What is wrong with it.
        problem: Box<Problem>,
    },
    /// An .npy format version other than 1, 2 and 3.
    #[error("not a valid .npy file (unknown version {0})")]
    NpyVersion(u8),
    /// An .npy file of another element type.
    #[error(
        "holds `{0}` values; expected little-endian floats (f4, f8) or integers (i1, i2, i4, i8, u1, u2, u4, u8)"
    )]
    NpyType(String),
    /// An .npy file in Fortran order.
    #[error("is in Fortran order; save it in C order (numpy.ascontiguousarray)")]
    FortranOrder,
    /// An .npy file whose data does not match its shape.
    #[error("holds {found} data bytes; shape {shape:?} needs {needed}")]
    DataLength {
        /// Bytes present.
        found: usize,
        /// The header's shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        needed: usize,
    },
    /// The safetensors structure is broken (input files).
    #[error("not a valid .safetensors file ({0})")]
    Safetensors(String),
    /// The safetensors structure is broken (weights files).
    #[error("is not a valid .safetensors file ({0})")]
    WeightsFile(String),
    /// Several tensors and none named as asked.
    #[error("holds {count} tensors and none is named `{name}`")]
    Ambiguous {
        /// Tensors in the file.
        count: usize,
        /// The name looked for.
        name: &'static str,
    },
    /// A tensor of another element type.
    #[error("tensor `{name}` is {dtype}; expected {expected}")]
    Dtype {
        /// The tensor.
        name: String,
        /// Its type.
        dtype: String,
        /// The types accepted.
        expected: &'static str,
    },
    /// An array of the wrong rank.
    #[error("expected a {rank}-D array [{axes}], found shape {found:?}")]
    Rank {
        /// The rank needed.
        rank: usize,
        /// Its axes, named.
        axes: &'static str,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor the model needs is missing.
    #[error("has no tensor `{0}`")]
    Missing(String),
    /// A tensor has another shape than the model needs.
    #[error("tensor `{name}` has shape {found:?}; the model needs {needed:?}{what}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape needed.
        needed: Vec<usize>,
        /// Where in the model, in which layout (empty for gradscope's own).
        what: String,
    },
    /// A weights file's names fit neither layout, or both.
    #[error("{}", layout_message(.both, .found))]
    Layout {
        /// Whether both layouts' names are there (else neither).
        both: bool,
        /// Some of the names found.
        found: Vec<String>,
    },
    /// A PyTorch tensor that is not a Linear layer's.
    #[error(
        "has tensor `{0}`, which is not a Linear layer's `weight` or `bias` in nn.Sequential's naming (`0.weight`, `0.bias`, `2.weight`, ...)"
    )]
    NotLinear(String),
    /// A Keras tensor that is not a layer's `kernel` or `bias`.
    #[error(
        "has tensor `{0}`, which is not a Dense layer's `kernel` or `bias` in Keras's naming (`dense/kernel`, `dense/bias`, `dense_1/kernel`, ...)"
    )]
    NotDense(String),
    /// Keras layers of more than one base name: their order is not known.
    #[error(
        "has Keras layers `{first}...` and `{other}`: gradscope orders Keras's layers by the number in their names (`dense`, `dense_1`, ...), which needs one base name; rename them, or save the weights in gradscope's layout (`layers.{{i}}.weight`)"
    )]
    KerasOrder {
        /// The first base name.
        first: String,
        /// A layer of another.
        other: String,
    },
    /// A Keras file with another number of layers than the model.
    #[error("has {} Keras layers ({}); the model has {layers}", .found.len(), .found.join(", "))]
    KerasLayerCount {
        /// The layers found, in order.
        found: Vec<String>,
        /// The model's layers.
        layers: usize,
    },
    /// A PyTorch file with another number of Linear layers than the model.
    #[error("has Linear layers at the module indices {found:?}, {} of them; the model has {layers}", .found.len())]
    LayerCount {
        /// The module indices with a `weight`.
        found: Vec<usize>,
        /// The model's layers.
        layers: usize,
    },
    /// A bias for a model without biases.
    #[error("has tensor `{0}`, but the model has `bias = false`")]
    UnwantedBias(String),
    /// A tensor of a layer the model does not have.
    #[error("has tensor `{name}`, but the model has only {layers} layers")]
    ExtraLayer {
        /// The tensor.
        name: String,
        /// The model's layers.
        layers: usize,
    },
}

/// `` `x`, `y` `` for messages.
fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn layout_message(both: &bool, found: &[String]) -> String {
    if *both {
        "holds tensors named in more than one layout (`layers.{i}.weight`, gradscope's; `{k}.weight`, PyTorch's; `dense/kernel`, Keras's); say which: weights = { file = \"...\", layout = \"gradscope\" }, layout = \"pytorch\" or layout = \"keras\"".to_string()
    } else {
        format!(
            "has neither gradscope's tensors (`layers.0.weight`, ...), a PyTorch nn.Sequential's (`0.weight`, ...) nor Keras's (`dense/kernel`, ...); it holds {}",
            list(found)
        )
    }
}

impl Problem {
    /// Whether the message reads as a predicate of the file's name (joined by a space, not
    /// a colon).
    fn is_predicate(&self) -> bool {
        matches!(
            self,
            Self::WeightsFile(_)
                | Self::Missing(_)
                | Self::ExtraLayer { .. }
                | Self::ArrayOfNpy
                | Self::Npz(_)
                | Self::NoArray { .. }
                | Self::WhichArray { .. }
                | Self::Inexact { .. }
                | Self::Layout { .. }
                | Self::NotLinear(_)
                | Self::NotDense(_)
                | Self::KerasOrder { .. }
                | Self::KerasLayerCount { .. }
                | Self::LayerCount { .. }
                | Self::UnwantedBias(_)
        )
    }

    pub(super) fn at(self, path: &Path) -> FileError {
        FileError::Content {
            path: path.to_path_buf(),
            problem: self,
        }
    }
}

/// Read an array of any rank from a `.npy` or `.safetensors` file through `files`: in a
/// safetensors file the array named `array`, else the one named `default`, else its only one.
pub fn read_array(
    path: &Path,
    default: &'static str,
    array: Option<&str>,
    files: &Files,
) -> Result<Arc<HostTensor>, FileError> {
    let key = (path.to_path_buf(), default, array.map(str::to_string));
    files.array(key, || {
        let bytes = files.read(path)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "npy" if array.is_some() => Err(Problem::ArrayOfNpy),
            "npy" => read_npy(&bytes),
            "npz" => read_npz(&bytes, default, array),
            "safetensors" => read_safetensors(&bytes, default, array),
            _ => Err(Problem::Extension),
        }
        .map_err(|p| p.at(path))
    })
}

/// Read a 2-D input tensor from `path` through `files`.
pub fn read_input(path: &Path, files: &Files) -> Result<Arc<HostTensor>, FileError> {
    let tensor = read_array(path, "input", None, files)?;
    if tensor.shape.len() != 2 {
        return Err(Problem::Rank {
            rank: 2,
            axes: "batch, input",
            found: tensor.shape.clone(),
        }
        .at(path));
    }
    Ok(tensor)
}

/// A safetensors view's F32 or F64 values as f32.
pub(super) fn floats_of(
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<Vec<f32>, Problem> {
    match view.dtype() {
        Dtype::F32 => Ok(values(view.data(), 4)),
        Dtype::F64 => Ok(values(view.data(), 8)),
        other => Err(Problem::Dtype {
            name: name.to_string(),
            dtype: format!("{other:?}"),
            expected: "F32 or F64",
        }),
    }
}

/// A safetensors view's float or integer values as f32 (data arrays: labels may be integers).
fn numbers_of(name: &str, view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f32>, Problem> {
    let int = |bytes, signed| integers(view.data(), bytes, signed);
    match view.dtype() {
        Dtype::I8 => int(1, true),
        Dtype::U8 => int(1, false),
        Dtype::I16 => int(2, true),
        Dtype::U16 => int(2, false),
        Dtype::I32 => int(4, true),
        Dtype::U32 => int(4, false),
        Dtype::I64 => int(8, true),
        Dtype::U64 => int(8, false),
        Dtype::F32 | Dtype::F64 => floats_of(name, view),
        other => Err(Problem::Dtype {
            name: name.to_string(),
            dtype: format!("{other:?}"),
            expected: "F32, F64 or an integer type (I8-I64, U8-U64)",
        }),
    }
}

/// Little-endian integers of `bytes` bytes each as f32, refused where f32 cannot hold one
/// exactly.
fn integers(raw: &[u8], bytes: usize, signed: bool) -> Result<Vec<f32>, Problem> {
    raw.chunks_exact(bytes)
        .enumerate()
        .map(|(index, c)| {
            let mut le = [0u8; 16];
            le[..bytes].copy_from_slice(c);
            if signed && c[bytes - 1] & 0x80 != 0 {
                le[bytes..].fill(0xff);
            }
            let value = i128::from_le_bytes(le);
            let v = value as f32;
            // f32 → i128 is exact for every finite f32, so this holds only for exact values.
            if v as i128 == value {
                Ok(v)
            } else {
                Err(Problem::Inexact { index, value })
            }
        })
        .collect()
}

/// The element type of a .npy `descr`: little-endian floats and integers (`|` for one byte,
/// which has no order).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Elem {
    /// f32 (4) or f64 (8).
    Float(usize),
    /// An integer of this many bytes, signed or not.
    Int(usize, bool),
}

impl Elem {
    fn parse(descr: &str) -> Option<Self> {
        let (order, kind, size) = (descr.get(..1)?, descr.get(1..2)?, descr.get(2..)?);
        let size: usize = size.parse().ok()?;
        match (order, kind, size) {
            ("<", "f", 4 | 8) => Some(Self::Float(size)),
            ("<" | "|", "i" | "u", 1) | ("<", "i" | "u", 2 | 4 | 8) => {
                Some(Self::Int(size, kind == "i"))
            }
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Self::Float(n) | Self::Int(n, _) => n,
        }
    }

    fn decode(self, raw: &[u8]) -> Result<Vec<f32>, Problem> {
        match self {
            Self::Float(n) => Ok(values(raw, n)),
            Self::Int(n, signed) => integers(raw, n, signed),
        }
    }
}

/// Little-endian f32 (`float_bytes` 4) or f64 (8) values as f32.
fn values(raw: &[u8], float_bytes: usize) -> Vec<f32> {
    match float_bytes {
        4 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    }
}

/// NumPy's format: magic `\x93NUMPY`, version (2 bytes), header length (u16 in v1, u32 in v2
/// and v3), a Python dict literal header, then the data.
fn read_npy(bytes: &[u8]) -> Result<HostTensor, Problem> {
    let malformed = Problem::Npy;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(malformed("no NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(Problem::NpyVersion(v)),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| malformed("truncated header"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next());
    let elem = match descr {
        Some(d) => Elem::parse(d).ok_or_else(|| Problem::NpyType(d.to_string()))?,
        None => return Err(malformed("no descr")),
    };
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(Problem::FortranOrder);
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| malformed("no shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| malformed("bad shape")))
        .collect::<Result<Vec<_>, _>>()?;
    let n = shape
        .iter()
        .try_fold(elem.size(), |n, d| n.checked_mul(*d))
        .ok_or_else(|| malformed("shape too large"))?;
    let data = &bytes[start + header_len..];
    if data.len() != n {
        return Err(Problem::DataLength {
            found: data.len(),
            shape,
            needed: n,
        });
    }
    Ok(HostTensor::new(shape, elem.decode(data)?))
}

/// Which of `names` to read: `array` if given (it must be there), else `default`, else the
/// only one.
fn choose(
    mut names: Vec<String>,
    default: &'static str,
    array: Option<&str>,
) -> Result<String, Problem> {
    names.sort();
    match array {
        Some(a) if names.iter().any(|n| n == a) => Ok(a.to_string()),
        Some(a) => Err(Problem::NoArray {
            name: a.to_string(),
            available: names,
        }),
        None if names.iter().any(|n| n == default) => Ok(default.to_string()),
        None if names.len() == 1 => Ok(names.remove(0)),
        None => Err(Problem::WhichArray {
            default,
            available: names,
        }),
    }
}

/// The array of an `.npz` archive named `array`, else the one named `default`, else its only
/// one (`np.savez`'s positional arrays are `arr_0`, `arr_1`, ...).
fn read_npz(
    bytes: &[u8],
    default: &'static str,
    array: Option<&str>,
) -> Result<HostTensor, Problem> {
    let members = super::npz::members(bytes).map_err(Problem::Npz)?;
    let names = members.iter().map(|(n, _)| n.clone()).collect();
    let name = match (choose(names, default, array), array) {
        (Err(Problem::WhichArray { available, .. }), None) => {
            return Err(Problem::WhichArray { default, available });
        }
        (chosen, _) => chosen?,
    };
    let data = members
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or_default();
    read_npy(data).map_err(|p| Problem::NpzMember {
        member: name,
        problem: Box::new(p),
    })
}

fn read_safetensors(
    bytes: &[u8],
    default: &'static str,
    array: Option<&str>,
) -> Result<HostTensor, Problem> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Problem::Safetensors(e.to_string()))?;
    let names = st.names().into_iter().map(str::to_string).collect();
    let name = match (choose(names, default, array), array) {
        (Err(Problem::WhichArray { available, .. }), None) => {
            return Err(Problem::Ambiguous {
                count: available.len(),
                name: default,
            });
        }
        (chosen, _) => chosen?,
    };
    let view = st
        .tensor(&name)
        .map_err(|e| Problem::Safetensors(e.to_string()))?;
    Ok(HostTensor::new(
        view.shape().to_vec(),
        numbers_of(&name, &view)?,
    ))
}

#[cfg(test)]
pub(super) mod tests;
