//! Reading the files a config names: input data from NumPy `.npy` (f32 or f64, C order,
//! little-endian) and `.safetensors` (the tensor named `input`, or the file's only tensor; F32
//! or F64), and a network's weights from `.safetensors` (`[model] weights`).
//!
//! Files are read through [`Files`], which keeps each file's bytes after the first read: a
//! sweep's grid points are validated (and later run) from one read of each file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gradscope_model::{HostTensor, LayerWeights, MlpConfig, MlpWeights};
use safetensors::{Dtype, SafeTensors};

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
    /// Neither `.npy` nor `.safetensors`.
    #[error("expected a `.npy` or `.safetensors` file")]
    Extension,
    /// The .npy structure is broken.
    #[error("not a valid .npy file ({0})")]
    Npy(&'static str),
    /// An .npy format version other than 1, 2 and 3.
    #[error("not a valid .npy file (unknown version {0})")]
    NpyVersion(u8),
    /// An .npy file of another element type.
    #[error("holds `{0}` values; expected little-endian f4 or f8")]
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
    #[error("tensor `{name}` is {dtype}; expected F32 or F64")]
    Dtype {
        /// The tensor.
        name: String,
        /// Its type.
        dtype: String,
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
    #[error("tensor `{name}` has shape {found:?}; the model needs {needed:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape needed.
        needed: Vec<usize>,
    },
    /// A tensor of a layer the model does not have.
    #[error("has tensor `{name}`, but the model has only {layers} layers")]
    ExtraLayer {
        /// The tensor.
        name: String,
        /// The model's layers.
        layers: usize,
    },
}

impl Problem {
    /// Whether the message reads as a predicate of the file's name (joined by a space, not
    /// a colon).
    fn is_predicate(&self) -> bool {
        matches!(
            self,
            Self::WeightsFile(_) | Self::Missing(_) | Self::ExtraLayer { .. }
        )
    }

    fn at(self, path: &Path) -> FileError {
        FileError::Content {
            path: path.to_path_buf(),
            problem: self,
        }
    }
}

/// Files read so far, by path: each is read from disk once. Clones share the cache.
#[derive(Debug, Default, Clone)]
pub struct Files(Arc<Mutex<HashMap<PathBuf, Arc<[u8]>>>>);

impl Files {
    /// The bytes of `path`, read now or earlier.
    pub fn read(&self, path: &Path) -> Result<Arc<[u8]>, FileError> {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
}

/// Read an array of any rank from a `.npy` or `.safetensors` file (there the tensor named
/// `name`, or the file's only tensor) through `files`.
pub fn read_array(path: &Path, name: &'static str, files: &Files) -> Result<HostTensor, FileError> {
    let bytes = files.read(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "npy" => read_npy(&bytes),
        "safetensors" => read_safetensors(&bytes, name),
        _ => Err(Problem::Extension),
    }
    .map_err(|p| p.at(path))
}

/// Read a 2-D input tensor from `path` through `files`.
pub fn read_input(path: &Path, files: &Files) -> Result<HostTensor, FileError> {
    let tensor = read_array(path, "input", files)?;
    if tensor.shape.len() != 2 {
        return Err(Problem::Rank {
            rank: 2,
            axes: "batch, input",
            found: tensor.shape,
        }
        .at(path));
    }
    Ok(tensor)
}

/// Read the weights of the network `model` describes from a safetensors file: tensors
/// `layers.{i}.weight` `[d_in, d_out]` and, with biases, `layers.{i}.bias` `[d_out]` (F32 or
/// F64), read through `files`. Other tensors (a dump's gradients, say) are ignored.
pub fn read_weights(
    path: &Path,
    model: &MlpConfig,
    files: &Files,
) -> Result<MlpWeights, FileError> {
    let bytes = files.read(path)?;
    weights_of(&bytes, model).map_err(|p| p.at(path))
}

fn weights_of(bytes: &[u8], model: &MlpConfig) -> Result<MlpWeights, Problem> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Problem::WeightsFile(e.to_string()))?;
    let get = |name: &str, shape: &[usize]| -> Result<HostTensor, Problem> {
        let view = st
            .tensor(name)
            .map_err(|_| Problem::Missing(name.to_string()))?;
        if view.shape() != shape {
            return Err(Problem::Shape {
                name: name.to_string(),
                found: view.shape().to_vec(),
                needed: shape.to_vec(),
            });
        }
        Ok(HostTensor::new(shape.to_vec(), floats_of(name, &view)?))
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
        .collect::<Result<Vec<_>, Problem>>()?;
    let n = widths.len() - 1;
    if let Some(extra) = st.names().into_iter().find(|name| {
        name.strip_prefix("layers.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i >= n)
    }) {
        return Err(Problem::ExtraLayer {
            name: extra.to_string(),
            layers: n,
        });
    }
    Ok(MlpWeights {
        layers,
        activations: model.activations.clone(),
    })
}

/// A safetensors view's F32 or F64 values as f32.
fn floats_of(name: &str, view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f32>, Problem> {
    match view.dtype() {
        Dtype::F32 => Ok(values(view.data(), 4)),
        Dtype::F64 => Ok(values(view.data(), 8)),
        other => Err(Problem::Dtype {
            name: name.to_string(),
            dtype: format!("{other:?}"),
        }),
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
    let float_bytes = match descr {
        Some("<f4") => 4,
        Some("<f8") => 8,
        Some(other) => return Err(Problem::NpyType(other.to_string())),
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
    let n: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    if data.len() != n * float_bytes {
        return Err(Problem::DataLength {
            found: data.len(),
            shape,
            needed: n * float_bytes,
        });
    }
    Ok(HostTensor::new(shape, values(data, float_bytes)))
}

fn read_safetensors(bytes: &[u8], wanted: &'static str) -> Result<HostTensor, Problem> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Problem::Safetensors(e.to_string()))?;
    let names = st.names();
    let name = if names.iter().any(|n| *n == wanted) {
        wanted.to_string()
    } else if names.len() == 1 {
        names[0].to_string()
    } else {
        return Err(Problem::Ambiguous {
            count: names.len(),
            name: wanted,
        });
    };
    let view = st
        .tensor(&name)
        .map_err(|e| Problem::Safetensors(e.to_string()))?;
    Ok(HostTensor::new(
        view.shape().to_vec(),
        floats_of(&name, &view)?,
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A .npy file built byte by byte from NumPy's format description (version 1.0).
    pub(in crate::config) fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn npy_f32_and_f64_read_back() {
        let f32s: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = read_npy(&npy("<f4", "(2, 3)", &f32s)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.shape, t.data),
            (vec![2, 3], vec![1.5, -2.0, 0.25, 4.0, 5.0, 6.0])
        );
        let f64s: Vec<u8> = [0.5f64, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = read_npy(&npy("<f8", "(1, 2)", &f64s)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.shape, t.data), (vec![1, 2], vec![0.5, 1.0]));
    }

    #[test]
    fn npy_problems_are_named() {
        assert_eq!(read_npy(b"hello"), Err(Problem::Npy("no NUMPY magic")));
        assert_eq!(
            read_npy(&npy("<i8", "(1, 1)", &[0; 8])),
            Err(Problem::NpyType("<i8".into()))
        );
        assert_eq!(
            read_npy(&npy("<f4", "(2, 3)", &[0; 8])),
            Err(Problem::DataLength {
                found: 8,
                shape: vec![2, 3],
                needed: 24
            })
        );
    }

    #[test]
    fn safetensors_written_by_hand_from_the_spec_reads_back() {
        // Format: u64 little-endian header size N, N bytes of JSON header, then the data.
        let header = r#"{"input":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&3.0f32.to_le_bytes());
        bytes.extend_from_slice(&(-1.0f32).to_le_bytes());
        let t = read_safetensors(&bytes, "input").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.shape, t.data), (vec![1, 2], vec![3.0, -1.0]));
    }
}
