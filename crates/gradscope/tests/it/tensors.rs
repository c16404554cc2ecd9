//! Tensor files: `--dump` writes what the safetensors specification says (checked by reading
//! the bytes by hand, not with the library that wrote them), a dump loads back as weights to
//! the identical report, and hand-written weight files are read with their shapes checked.

use crate::common;

use crate::common::{gradscope, write_by_spec};

/// Parse a safetensors file by the specification: u64 little-endian header length N, N bytes of
/// JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then data
/// (offsets relative to the end of the header). Returns the header and the f32 tensors.
fn read_by_spec(
    bytes: &[u8],
) -> (
    serde_json::Value,
    std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap_or_else(|e| panic!("{e}"));
    let data = &bytes[8 + n..];
    let mut out = std::collections::BTreeMap::new();
    for (name, info) in header.as_object().into_iter().flatten() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(info["dtype"], "F32", "{name}");
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_u64())
            .map(|d| d as usize)
            .collect();
        let begin = info["data_offsets"][0].as_u64().unwrap_or(0) as usize;
        let end = info["data_offsets"][1].as_u64().unwrap_or(0) as usize;
        assert_eq!(end - begin, 4 * shape.iter().product::<usize>(), "{name}");
        let values = data[begin..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name.clone(), (shape, values));
    }
    (header, out)
}

#[test]
fn dump_holds_the_named_tensors_and_loads_back_to_the_identical_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = std::fs::read_to_string(&common::seed_configs()[2]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("s3.toml"), &cfg).unwrap_or_else(|e| panic!("{e}"));
    let first = gradscope(
        &["run", "s3.toml", "--format", "json", "--dump", "d"],
        dir.path(),
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&first.stdout).unwrap_or_else(|e| panic!("{e}"));
    for (ci, case) in ["x1", "x2", "x3"].iter().enumerate() {
        let bytes = std::fs::read(dir.path().join(format!("d/{case}.safetensors")))
            .unwrap_or_else(|e| panic!("{e}"));
        let (header, tensors) = read_by_spec(&bytes);
        let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
        names.sort();
        let mut want = vec!["input", "output"];
        let per_layer: Vec<String> = (0..4)
            .flat_map(|i| {
                [
                    format!("layers.{i}.weight"),
                    format!("layers.{i}.bias"),
                    format!("grad.layers.{i}.weight"),
                    format!("grad.layers.{i}.bias"),
                    format!("delta.layers.{i}"),
                ]
            })
            .collect();
        want.extend(per_layer.iter().map(String::as_str));
        want.sort();
        assert_eq!(names, want);
        assert_eq!(header["__metadata__"]["activation"], "relu,relu,relu");
        assert_eq!(header["__metadata__"]["loss"], "sum_squares");
        assert_eq!(header["__metadata__"]["seed"], "3");
        assert_eq!(
            tensors["layers.0.weight"].0,
            vec![10, 100],
            "Keras [in, out] layout"
        );
        // The dumped gradient is the one the report summarised.
        let g = &tensors["grad.layers.1.weight"].1;
        let max = g.iter().cloned().fold(f32::MIN, f32::max);
        let reported = report["cases"][ci]["params"][2]["max"]
            .as_f64()
            .map(|v| v as f32);
        assert_eq!(
            Some(max),
            reported,
            "the JSON holds the shortest form of the same f32"
        );
    }
    // The dump as weights: the same network, so the identical report.
    let with_weights = cfg.replace(
        "bias_init = \"zeros\"",
        "bias_init = \"zeros\"\nweights = \"d/x1.safetensors\"",
    );
    std::fs::write(dir.path().join("again.toml"), with_weights).unwrap_or_else(|e| panic!("{e}"));
    let second = gradscope(&["run", "again.toml", "--format", "json"], dir.path());
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Identical but for the mean-field prediction, which describes the initialiser and so is
    // null for given weights.
    let without_theory = |out: &[u8]| {
        let mut v: serde_json::Value =
            serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}"));
        for c in v["cases"].as_array_mut().into_iter().flatten() {
            c.as_object_mut().map(|c| c.remove("theory"));
        }
        v
    };
    let second_json: serde_json::Value =
        serde_json::from_slice(&second.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(second_json["cases"][0]["theory"].is_null());
    assert_eq!(
        without_theory(&first.stdout),
        without_theory(&second.stdout)
    );
}

const HAND: &str = "name = \"hand\"\ndescription = \"d\"\nseed = 0\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
                    weights = \"w.safetensors\"\n[[inputs]]\nname = \"ones\"\nbatch = 1\n\
                    distribution = { kind = \"constant\", value = 1.0 }\n";

#[test]
fn weights_written_by_hand_from_the_spec_give_the_hand_derived_gradients() {
    // Kernels 0.5, biases 0, input [1, 1]: loss 1, ∂L/∂W1 = 1, ∂L/∂W2 = 2 (tests/it/gradients.rs).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = write_by_spec(&[
        ("layers.0.weight", vec![2, 2], vec![0.5; 4]),
        ("layers.0.bias", vec![2], vec![0.0; 2]),
        ("layers.1.weight", vec![2, 1], vec![0.5; 2]),
        ("layers.1.bias", vec![1], vec![0.0]),
    ]);
    std::fs::write(dir.path().join("w.safetensors"), w).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("h.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "h.toml", "--format", "json"], dir.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["cases"][0]["loss"], 1.0);
    assert_eq!(v["cases"][0]["params"][0]["max"], 1.0);
    assert_eq!(v["cases"][0]["params"][2]["max"], 2.0);
}

#[test]
fn weight_files_that_do_not_fit_the_model_are_bad_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("h.toml"), HAND).unwrap_or_else(|e| panic!("{e}"));
    let mut all = String::new();
    for (name, tensors) in [
        (
            "wrong_shape",
            vec![("layers.0.weight", vec![3, 2], vec![0.5; 6])],
        ),
        (
            "missing_tensor",
            vec![("layers.0.weight", vec![2, 2], vec![0.5; 4])],
        ),
        (
            "extra_layer",
            vec![
                ("layers.0.weight", vec![2, 2], vec![0.5; 4]),
                ("layers.0.bias", vec![2], vec![0.0; 2]),
                ("layers.1.weight", vec![2, 1], vec![0.5; 2]),
                ("layers.1.bias", vec![1], vec![0.0]),
                ("layers.2.weight", vec![1, 1], vec![0.5]),
            ],
        ),
    ] {
        std::fs::write(dir.path().join("w.safetensors"), write_by_spec(&tensors))
            .unwrap_or_else(|e| panic!("{e}"));
        let o = gradscope(&["run", "h.toml"], dir.path());
        assert_eq!(o.status.code(), Some(2), "{name}");
        all.push_str(&format!(
            "--- {name}\n{}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    std::fs::write(dir.path().join("w.safetensors"), b"garbage").unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["run", "h.toml"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    all.push_str(&format!(
        "--- garbage\n{}",
        String::from_utf8_lossy(&o.stderr)
    ));
    insta::assert_snapshot!("bad_weight_files", all);
}
