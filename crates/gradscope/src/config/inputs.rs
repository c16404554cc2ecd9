//! Reading the files a config names: input data from NumPy `.npy` (f32 or f64, C order,
//! little-endian) and `.safetensors` (the tensor named `input`, or the file's only tensor; F32
//! or F64), and a network's weights from `.safetensors` (`[model] weights`).

use std::path::Path;

use gradscope_model::{HostTensor, LayerWeights, MlpConfig, MlpWeights};
use safetensors::{Dtype, SafeTensors};

/// Read a 2-D input tensor from `path`. Errors are sentences about the file.
pub fn read_input_file(path: &Path) -> Result<HostTensor, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tensor = match ext {
        "npy" => read_npy(&bytes),
        "safetensors" => read_safetensors(&bytes),
        _ => Err("expected a `.npy` or `.safetensors` file".to_string()),
    }
    .map_err(|e| format!("`{}`: {e}", path.display()))?;
    if tensor.shape.len() != 2 {
        return Err(format!(
            "`{}`: expected a 2-D array [batch, input], found shape {:?}",
            path.display(),
            tensor.shape
        ));
    }
    Ok(tensor)
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
            Dtype::F32 => values(view.data(), 4),
            Dtype::F64 => values(view.data(), 8),
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
fn read_npy(bytes: &[u8]) -> Result<HostTensor, String> {
    let malformed = |what: &str| format!("not a valid .npy file ({what})");
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(malformed("no NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(malformed(&format!("unknown version {v}"))),
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
        Some(other) => {
            return Err(format!(
                "holds `{other}` values; expected little-endian f4 or f8"
            ));
        }
        None => return Err(malformed("no descr")),
    };
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err("is in Fortran order; save it in C order (numpy.ascontiguousarray)".into());
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
        return Err(format!(
            "holds {} data bytes; shape {shape:?} needs {}",
            data.len(),
            n * float_bytes
        ));
    }
    Ok(HostTensor::new(shape, values(data, float_bytes)))
}

fn read_safetensors(bytes: &[u8]) -> Result<HostTensor, String> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid .safetensors file ({e})"))?;
    let names = st.names();
    let name = if names.iter().any(|n| *n == "input") {
        "input".to_string()
    } else if names.len() == 1 {
        names[0].to_string()
    } else {
        return Err(format!(
            "holds {} tensors and none is named `input`",
            names.len()
        ));
    };
    let view = st.tensor(&name).map_err(|e| e.to_string())?;
    let float_bytes = match view.dtype() {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
        other => return Err(format!("tensor `{name}` is {other:?}; expected F32 or F64")),
    };
    Ok(HostTensor::new(
        view.shape().to_vec(),
        values(view.data(), float_bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .npy file built byte by byte from NumPy's format description (version 1.0).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
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
        assert!(read_npy(b"hello").is_err_and(|e| e.contains("magic")));
        assert!(read_npy(&npy("<i8", "(1, 1)", &[0; 8])).is_err_and(|e| e.contains("<i8")));
        assert!(read_npy(&npy("<f4", "(2, 3)", &[0; 8])).is_err_and(|e| e.contains("data bytes")));
    }

    #[test]
    fn safetensors_written_by_hand_from_the_spec_reads_back() {
        // Format: u64 little-endian header size N, N bytes of JSON header, then the data.
        let header = r#"{"input":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&3.0f32.to_le_bytes());
        bytes.extend_from_slice(&(-1.0f32).to_le_bytes());
        let t = read_safetensors(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.shape, t.data), (vec![1, 2], vec![3.0, -1.0]));
    }
}
