//! A user's own data and network as they come: integer label files, a training run's final
//! weights replayed, PyTorch state dicts; and the seeds a sweep records
//! staying seeds a config can hold. Every file is built by hand here, with the bytes NumPy and
//! PyTorch write, and every output read back with a real reader (serde_json, safetensors).

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::common::{gradscope, npy_of, record_dirs_of};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// A version-1.0 .npy file as `np.save` writes it: `descr` such as `<i8` (int64), `<i4` or
/// `|u1` (uint8, one byte, so no byte order), the shape as Python prints it, the raw data.
fn npy_raw(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
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

/// `labels` as `np.save` writes an integer array of `descr`.
fn int_labels(descr: &str, labels: &[i64]) -> Vec<u8> {
    let bytes: Vec<u8> = match descr {
        "<i8" => labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
        "<i4" => labels
            .iter()
            .flat_map(|v| (*v as i32).to_le_bytes())
            .collect(),
        "|u1" => labels.iter().map(|v| *v as u8).collect(),
        other => panic!("no writer for {other}"),
    };
    npy_raw(descr, &format!("({},)", labels.len()), &bytes)
}

/// 6 rows of 8 inputs, values spread over [-0.3, 0.3].
fn inputs_6x8() -> Vec<u8> {
    let x: Vec<f32> = (0..48).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
    npy_of("(6, 8)", &x)
}

const LABELS: [i64; 6] = [0, 1, 2, 3, 1, 0];

/// A classifier 8 → 16 → 4 trained on `data`, 3 steps of 6 rows.
fn classifier(data: &str, steps: usize, extra_train: &str) -> String {
    format!(
        "name = \"u\"\ndescription = \"d\"\nseed = 4\nloss = \"cross_entropy\"\n\
         [model]\ninput = 8\nhidden = [16]\noutput = 4\n\
         [train]\nsteps = {steps}\nbatch = 6\nlearning_rate = 0.1\n{extra_train}\ndata = {data}\n"
    )
}

const FILES: &str = "{ kind = \"files\", inputs = \"x.npy\", targets = \"y.npy\" }";

fn run_json(dir: &Path, config: &str) -> String {
    let o = gradscope(&["run", config, "--format", "json"], dir);
    assert_eq!(o.status.code(), Some(0), "{config}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Integer labels (`np.save` of int64, int32 and uint8 arrays) train exactly as the same
/// labels saved as f4 do: the same batches, so the identical report.
#[test]
fn integer_label_files_train_as_float_labels_do() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "x.npy", inputs_6x8());
    write(dir.path(), "t.toml", classifier(FILES, 3, ""));
    let floats: Vec<f32> = LABELS.iter().map(|&l| l as f32).collect();
    write(dir.path(), "y.npy", npy_of("(6,)", &floats));
    let want = run_json(dir.path(), "t.toml");
    for descr in ["<i8", "<i4", "|u1"] {
        write(dir.path(), "y.npy", int_labels(descr, &LABELS));
        assert_eq!(run_json(dir.path(), "t.toml"), want, "{descr} labels");
    }
    // Out of range and negative integer labels, and fractional float labels, are refused.
    for (labels, message) in [
        (
            int_labels("<i8", &[0, 1, 2, 3, 4, 0]),
            "`y.npy` row 4 holds the label 4; labels are the classes 0..3",
        ),
        (
            int_labels("<i4", &[0, -1, 2, 3, 1, 0]),
            "`y.npy` row 1 holds the label -1",
        ),
        (
            npy_of("(6,)", &[0.0, 1.0, 2.5, 3.0, 1.0, 0.0]),
            "`y.npy` row 2 holds the label 2.5",
        ),
    ] {
        write(dir.path(), "y.npy", labels);
        let o = gradscope(&["run", "t.toml"], dir.path());
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("t.toml:") && err.contains(message), "{err}");
    }
}

/// The tensors of a safetensors file, read with the safetensors crate, as f32.
fn tensors_of(path: &Path) -> (Vec<(String, Vec<usize>, Vec<f32>)>, Vec<(String, String)>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut meta: Vec<(String, String)> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    meta.sort();
    (out, meta)
}

/// The single record of experiment `name` under `base`, and its `weights.safetensors`.
fn trained_weights(base: &Path, name: &str) -> std::path::PathBuf {
    let records = record_dirs_of(base, name);
    assert_eq!(records.len(), 1, "{records:?}");
    records[0].join("weights.safetensors")
}

/// Every training record holds its final weights: training 3 steps, then 1 more from the
/// record's `weights.safetensors`, ends bit for bit where 4 steps from the start end. With
/// plain SGD (no state) and a file of exactly one batch (every step takes the same 6 rows),
/// the fourth step depends on nothing but the weights, so only the true final weights give
/// the same result. The same file then runs a plain gradient measurement: one command.
#[test]
fn a_training_records_final_weights_replay_and_measure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "x.npy", inputs_6x8());
    write(dir.path(), "y.npy", int_labels("<i8", &LABELS));
    let train = |config: &str, out: &str| {
        let o = gradscope(&["run", config, "--out", out], dir.path());
        assert_eq!(o.status.code(), Some(0), "{config}: {}", text(&o.stderr));
        trained_weights(&dir.path().join(out), "u")
    };
    write(dir.path(), "three.toml", classifier(FILES, 3, ""));
    write(dir.path(), "four.toml", classifier(FILES, 4, ""));
    let after_three = train("three.toml", "r3");
    let w3 = after_three.to_string_lossy().into_owned();
    let more = classifier(FILES, 1, "").replace(
        "output = 4\n",
        &format!("output = 4\nweights = {}\n", serde_json::json!(w3)),
    );
    write(dir.path(), "more.toml", more);
    let (three, meta) = tensors_of(&after_three);
    let (four, _) = tensors_of(&train("four.toml", "r4"));
    let (three_and_one, _) = tensors_of(&train("more.toml", "r31"));
    let names: Vec<&str> = four.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "layers.0.bias",
            "layers.0.weight",
            "layers.1.bias",
            "layers.1.weight"
        ],
        "plain SGD keeps no state"
    );
    assert_eq!(three_and_one, four, "3 steps + 1 from the file = 4 steps");
    assert_ne!(three, four, "a step changes the weights");
    assert!(
        meta.contains(&("optimizer_steps".into(), "3".into()))
            && meta.contains(&("finite".into(), "true".into())),
        "{meta:?}"
    );
    // "Are the gradients still finite after training?": the model measured with these weights.
    let plain = "name = \"after\"\nseed = 0\n[model]\ninput = 8\nhidden = [16]\noutput = 4\n\
                 [[inputs]]\nname = \"x\"\nbatch = 4\ndistribution = \"normal\"\n";
    write(dir.path(), "after.toml", plain);
    let set = format!("model.weights={}", serde_json::json!(w3));
    let o = gradscope(
        &["run", "after.toml", "--set", &set, "--format", "json"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["all_finite"], true);
    assert!(
        report["cases"][0]["theory"].is_null(),
        "weights from a file"
    );
}

/// With an optimiser that keeps state, training continues from the state saved beside the
/// weights: 3 steps, then 1 more from the record's `weights.safetensors`, ends bit for bit
/// where 4 steps end, for SGD with momentum and for Adam (whose bias correction needs the
/// step count the file's metadata carries). Every step takes the same 6 rows, so only the
/// true weights and state give the same fourth step; from zero state it differs.
#[test]
fn training_continues_from_the_saved_optimiser_state_exactly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "x.npy", inputs_6x8());
    write(dir.path(), "y.npy", int_labels("<i8", &LABELS));
    let train = |config: &str, out: &str| {
        let o = gradscope(&["run", config, "--out", out], dir.path());
        assert_eq!(o.status.code(), Some(0), "{config}: {}", text(&o.stderr));
        trained_weights(&dir.path().join(out), "u")
    };
    for (name, optimizer) in [
        ("momentum", "optimizer = { kind = \"sgd\", momentum = 0.9 }"),
        ("adam", "optimizer = { kind = \"adam\" }"),
    ] {
        write(dir.path(), "three.toml", classifier(FILES, 3, optimizer));
        write(dir.path(), "four.toml", classifier(FILES, 4, optimizer));
        let after_three = train("three.toml", &format!("{name}3"));
        let w3 = serde_json::json!(after_three.to_string_lossy());
        let more = classifier(FILES, 1, optimizer)
            .replace("output = 4\n", &format!("output = 4\nweights = {w3}\n"));
        write(dir.path(), "more.toml", more);
        let (four, _) = tensors_of(&train("four.toml", &format!("{name}4")));
        let (three_and_one, meta) = tensors_of(&train("more.toml", &format!("{name}31")));
        assert!(four.len() > 4, "{name}: the state is saved: {four:?}");
        assert_eq!(
            three_and_one, four,
            "{name}: 3 steps + 1 from the file = 4 steps"
        );
        assert!(
            meta.contains(&("optimizer_steps".into(), "4".into())),
            "{name}: the step count goes on: {meta:?}"
        );
        // Without the state (the weights alone, in a file of their own) the fourth step
        // differs: the test can fail.
        let (three, _) = tensors_of(&after_three);
        let weights_only: Vec<(&str, Vec<usize>, Vec<f32>)> = three
            .iter()
            .filter(|t| t.0.starts_with("layers."))
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect();
        write(
            dir.path(),
            "w.safetensors",
            crate::common::write_by_spec(&weights_only),
        );
        let bare = classifier(FILES, 1, optimizer)
            .replace("output = 4\n", "output = 4\nweights = \"w.safetensors\"\n");
        write(dir.path(), "bare.toml", bare);
        let (from_zero, _) = tensors_of(&train("bare.toml", &format!("{name}0")));
        let layers = |t: &[(String, Vec<usize>, Vec<f32>)]| -> Vec<(String, Vec<usize>, Vec<f32>)> {
            t.iter()
                .filter(|t| t.0.starts_with("layers."))
                .cloned()
                .collect()
        };
        assert_ne!(
            layers(&from_zero),
            layers(&four),
            "{name}: the state matters"
        );
    }
}

/// SGD with momentum: after one step the momentum buffer is that step's gradient (PyTorch's
/// buffer starts as the first gradient), and the final weights are w0 − lr·g, element by
/// element in f32 as the update on the device does; a finite run's `--dump` holds these final
/// weights and says so.
#[test]
fn the_optimiser_state_is_saved_beside_the_final_weights() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "x.npy", inputs_6x8());
    write(dir.path(), "y.npy", int_labels("|u1", &LABELS));
    let config = classifier(FILES, 1, "optimizer = { kind = \"sgd\", momentum = 0.9 }");
    write(dir.path(), "m.toml", &config);
    let o = gradscope(&["run", "m.toml", "--out", "r", "--dump", "d"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("note: tensors written to d: weights.safetensors"),
        "{}",
        text(&o.stderr)
    );
    let (dumped, _) = tensors_of(&dir.path().join("d/weights.safetensors"));
    let (saved, meta) = tensors_of(&trained_weights(&dir.path().join("r"), "u"));
    assert_eq!(dumped, saved, "the dump and the record hold the same file");
    assert!(
        meta.contains(&("optimizer_steps".into(), "1".into())),
        "{meta:?}"
    );
    // As a plain run's dump does, the file names the activations and the backend.
    assert!(
        meta.contains(&("activation".into(), "relu".into()))
            && meta.iter().any(|(k, v)| k == "backend" && !v.is_empty()),
        "{meta:?}"
    );
    let get = |name: &str| {
        saved.iter().find(|t| t.0 == name).unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                saved.iter().map(|t| &t.0).collect::<Vec<_>>()
            )
        })
    };
    let exp = gradscope::config::load(&dir.path().join("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    let w0 = exp.model.draw_weights();
    let record = &record_dirs_of(&dir.path().join("r"), "u")[0];
    let steps =
        std::fs::read_to_string(record.join("steps.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    let step0: serde_json::Value =
        serde_json::from_str(steps.lines().next().unwrap_or("")).unwrap_or_else(|e| panic!("{e}"));
    for l in 0..2 {
        let (_, shape, g) = get(&format!("momentum_buffer.layers.{l}.weight"));
        let (_, _, w1) = get(&format!("layers.{l}.weight"));
        assert_eq!(shape, &w0.layers[l].weight.shape);
        // The step on the device in f32, as torch.optim.SGD takes it: lr·g rounded, then
        // w0 − that rounded.
        let want: Vec<f32> = w0.layers[l]
            .weight
            .data
            .iter()
            .zip(g)
            .map(|(&w, &g)| w - 0.1f32 * g)
            .collect();
        assert_eq!(w1, &want, "layer {l}: w1 = w0 − lr·g");
        // ‖g‖ as steps.jsonl records the kernel's gradient norm: a sum of n squares in f32 on
        // the device, within n·2⁻²⁴ (relative) of the exact sum (the bound of any order of
        // summation), so its square root within half that.
        let norm = g
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let recorded = step0["layers"][l]["grad_l2"].as_f64().unwrap_or(f64::NAN);
        let bound = g.len() as f64 * 2f64.powi(-24) / 2.0;
        assert!(
            (norm - recorded).abs() <= bound * recorded,
            "layer {l}: buffer norm {norm}, steps.jsonl {recorded}"
        );
        assert!(norm > 0.0);
        get(&format!("momentum_buffer.layers.{l}.bias"));
    }
}

/// A PyTorch `nn.Sequential(Linear(2, 2), ReLU(), Linear(2, 1))` state dict, saved with
/// safetensors: `0.weight` `[out, in]`, `0.bias`, `2.weight`, `2.bias` (ReLU, module 1, has
/// none). The kernels are square and asymmetric, so a missing transpose changes the numbers.
fn torch_state(extra: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
        ("0.weight".into(), vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]),
        ("0.bias".into(), vec![2], vec![0.0, -10.0]),
        ("2.weight".into(), vec![1, 2], vec![2.0, 5.0]),
        ("2.bias".into(), vec![1], vec![1.0]),
    ];
    tensors.extend(
        extra
            .iter()
            .map(|(n, s, v)| (n.to_string(), s.clone(), v.clone())),
    );
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                .unwrap_or_else(|e| panic!("{e}"));
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap_or_else(|e| panic!("{e}"))
}

const TORCH_MODEL: &str = "name = \"pt\"\nseed = 0\n[model]\ninput = 2\nhidden = [2]\noutput = 1\nWEIGHTS\n\
                           [[inputs]]\nname = \"ones\"\nbatch = 1\n\
                           distribution = { kind = \"constant\", value = 1.0 }\n";

/// Derived by hand, x = [1, 1]: z0 = W0·x + b0 = [1+2, 3+4] + [0, −10] = [3, −3], a0 = relu =
/// [3, 0]; out = 2·3 + 5·0 + 1 = 7; loss Σout² = 49. ∂L/∂out = 14 = ∂L/∂b2; ∂L/∂W2 = a0·14 =
/// [42, 0]; δ0 = 14·[2, 5] ⊙ relu'(z0) = [28, 0] = ∂L/∂b0; ∂L/∂W0 = x ⊗ δ0, columns [28, 0].
/// Without the transpose z0 would be [4, −4] and the loss 81.
#[test]
fn a_pytorch_state_dict_is_read_transposed_by_its_names() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "m.safetensors", torch_state(&[]));
    let mut reports = Vec::new();
    for weights in [
        "weights = \"m.safetensors\"",
        "weights = { file = \"m.safetensors\", layout = \"pytorch\" }",
    ] {
        write(
            dir.path(),
            "pt.toml",
            TORCH_MODEL.replace("WEIGHTS", weights),
        );
        let v: serde_json::Value = serde_json::from_str(&run_json(dir.path(), "pt.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let case = &v["cases"][0];
        assert_eq!(case["loss"], 49.0, "{weights}");
        let p = &case["params"];
        let stat = |i: usize, k: &str| p[i][k].as_f64().unwrap_or(f64::NAN);
        assert_eq!(
            p[0]["shape"],
            serde_json::json!([2, 2]),
            "gradscope's [in, out]"
        );
        assert_eq!((stat(0, "max"), stat(0, "min")), (28.0, 0.0), "∂L/∂W0");
        assert_eq!((stat(1, "max"), stat(1, "min")), (28.0, 0.0), "∂L/∂b0");
        assert_eq!((stat(2, "max"), stat(2, "min")), (42.0, 0.0), "∂L/∂W2");
        assert_eq!(stat(3, "max"), 14.0, "∂L/∂b2");
        reports.push(v);
    }
    assert_eq!(reports[0], reports[1], "the names say the layout");

    let mut all = String::new();
    let gradscope_named =
        crate::common::write_by_spec(&[("layers.0.weight", vec![2, 2], vec![0.0; 4])]);
    for (name, file, weights) in [
        (
            "batchnorm",
            torch_state(&[("1.running_mean", vec![2], vec![0.0; 2])]),
            "\"m.safetensors\"",
        ),
        (
            "prefixed",
            torch_state(&[("net.0.weight", vec![2, 2], vec![0.0; 4])]),
            "{ file = \"m.safetensors\", layout = \"pytorch\" }",
        ),
        (
            "three_layers",
            torch_state(&[("4.weight", vec![1, 1], vec![1.0])]),
            "\"m.safetensors\"",
        ),
        ("wrong_shape", torch_state(&[]), "\"m.safetensors\""),
        (
            "both_layouts",
            torch_state(&[("layers.0.weight", vec![2, 2], vec![0.0; 4])]),
            "\"m.safetensors\"",
        ),
        (
            "unknown_layout",
            torch_state(&[]),
            "{ file = \"m.safetensors\", layout = \"pytroch\" }",
        ),
        (
            "wrong_layout",
            gradscope_named,
            "{ file = \"m.safetensors\", layout = \"pytorch\" }",
        ),
    ] {
        write(dir.path(), "m.safetensors", file);
        let mut config = TORCH_MODEL.replace("WEIGHTS", &format!("weights = {weights}"));
        if name == "wrong_shape" {
            // A 2 → 3 hidden layer needs 0.weight [3, 2]; the file's [2, 2] does not fit.
            config = config.replace("hidden = [2]", "hidden = [3]");
        }
        write(dir.path(), "bad.toml", config);
        let o = gradscope(&["run", "bad.toml"], dir.path());
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
        all.push_str(&format!("--- {name}\n{}", text(&o.stderr)));
    }
    insta::assert_snapshot!("bad_pytorch_files", all);
}

/// The network of `a_pytorch_state_dict_is_read_transposed_by_its_names` in Keras's naming
/// (Keras 3's `Variable.path`, `{w.path: w.numpy() for w in model.weights}`): kernels are
/// `[in, out]`, so 0.weight [[1, 2], [3, 4]] ([out, in]) is `dense/kernel` [[1, 3], [2, 4]].
/// The loss is the same hand-derived 49. Layers are ordered by the number in their name:
/// `dense_9` before `dense_10` (in text order `dense_10` would come first and not fit).
#[test]
fn keras_weights_are_read_by_their_layer_numbers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (first, second, suffix) in [
        ("sequential/dense", "sequential/dense_1", ""),
        ("dense_9", "dense_10", ""),
        ("dense", "dense_1", ":0"),
    ] {
        let file = crate::common::write_by_spec(&[
            (
                &format!("{first}/kernel{suffix}"),
                vec![2, 2],
                vec![1.0, 3.0, 2.0, 4.0],
            ),
            (&format!("{first}/bias{suffix}"), vec![2], vec![0.0, -10.0]),
            (
                &format!("{second}/kernel{suffix}"),
                vec![2, 1],
                vec![2.0, 5.0],
            ),
            (&format!("{second}/bias{suffix}"), vec![1], vec![1.0]),
        ]);
        write(dir.path(), "k.safetensors", file);
        for weights in [
            "weights = \"k.safetensors\"",
            "weights = { file = \"k.safetensors\", layout = \"keras\" }",
        ] {
            write(
                dir.path(),
                "k.toml",
                TORCH_MODEL.replace("WEIGHTS", weights),
            );
            let v: serde_json::Value = serde_json::from_str(&run_json(dir.path(), "k.toml"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v["cases"][0]["loss"], 49.0, "{first}, {second}: {weights}");
        }
    }
    // Layers of two base names have no known order; a tensor that is no kernel or bias is
    // not silently dropped.
    let mut all = String::new();
    for (name, specs) in [
        (
            "two_bases",
            vec![
                ("dense/kernel", vec![2, 2]),
                ("dense/bias", vec![2]),
                ("output/kernel", vec![2, 1]),
                ("output/bias", vec![1]),
            ],
        ),
        (
            "not_dense",
            vec![
                ("dense/kernel", vec![2, 2]),
                ("dense/bias", vec![2]),
                ("dense_1/kernel", vec![2, 1]),
                ("dense_1/bias", vec![1]),
                ("batch_normalization/gamma", vec![2]),
            ],
        ),
    ] {
        let specs: Vec<(&str, Vec<usize>, Vec<f32>)> = specs
            .into_iter()
            .map(|(n, s)| {
                let len = s.iter().product();
                (n, s, vec![0.5; len])
            })
            .collect();
        write(
            dir.path(),
            "k.safetensors",
            crate::common::write_by_spec(&specs),
        );
        write(
            dir.path(),
            "k.toml",
            TORCH_MODEL.replace(
                "WEIGHTS",
                "weights = { file = \"k.safetensors\", layout = \"keras\" }",
            ),
        );
        let o = gradscope(&["run", "k.toml"], dir.path());
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
        all.push_str(&format!("--- {name}\n{}", text(&o.stderr)));
    }
    assert!(
        all.contains("has Keras layers `dense...` and `output`"),
        "{all}"
    );
    assert!(
        all.contains("has tensor `batch_normalization/gamma`, which is not a Dense layer's"),
        "{all}"
    );
}

/// A sweep's trials run the seeds seed, ..., seed + trials − 1, and each must be a seed a
/// config holds (0 to 2⁶³ − 1), so that any trial can be run again: refused at validation
/// when the last is past it, accepted when it is the largest.
#[test]
fn a_sweeps_last_seed_is_a_seed_a_config_can_hold() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sweep = "name = \"s\"\nseed = 1\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
                 [[inputs]]\nname = \"x\"\nbatch = 1\ndistribution = \"normal\"\n\
                 [sweep]\ntrials = 5\n\"model.activation\" = [\"relu\"]\n";
    write(dir.path(), "s.toml", sweep);
    // 2⁶³ − 1 = 9223372036854775807; 5 trials from 9223372036854775803 end there exactly.
    let o = gradscope(
        &["validate", "s.toml", "--set", "seed=9223372036854775803"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut all = String::new();
    for args in [
        &["validate", "s.toml", "--set", "seed=9223372036854775807"][..],
        &[
            "run",
            "s.toml",
            "--set",
            "seed=9223372036854775804",
            "--out",
            "r",
        ][..],
        &["validate", "s.toml", "--set", "seed=9223372036854775808"][..],
    ] {
        let o = gradscope(args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        all.push_str(&format!("--- {}\n{}", args.join(" "), text(&o.stderr)));
    }
    assert!(!dir.path().join("r").exists(), "nothing ran");
    // The largest seed runs as a plain run (what a trial of the accepted sweep records).
    write(
        dir.path(),
        "p.toml",
        sweep.split("[sweep]").next().unwrap_or(""),
    );
    let o = gradscope(
        &["run", "p.toml", "--set", "seed=9223372036854775807"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("bad_seeds", all);
}

/// An `.npz` archive written by numpy's `np.savez` (fixtures/npz/xy.npz: x = (arange(12) −
/// 5.5)/4 as 4 × 3 f4, y = [0, 2, 1, 2] as i8) trains exactly as the same arrays in a
/// safetensors file do; `np.savez_compressed`'s archive is refused, exit 2, saying why.
#[test]
fn npz_archives_from_numpy_train_as_their_arrays_do() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fixtures = crate::common::configs_dir().join("../crates/gradscope/tests/it/fixtures/npz");
    for name in ["xy.npz", "xy-compressed.npz"] {
        let bytes = std::fs::read(fixtures.join(name)).unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), name, bytes);
    }
    let x: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 4.0).collect();
    write(
        dir.path(),
        "xy.safetensors",
        crate::common::write_by_spec(&[
            ("x", vec![4, 3], x),
            ("y", vec![4], vec![0.0, 2.0, 1.0, 2.0]),
        ]),
    );
    let config = |file: &str| {
        format!(
            "name = \"z\"\nseed = 2\nloss = \"cross_entropy\"\n[model]\ninput = 3\nhidden = [4]\noutput = 3\n\
             [train]\nsteps = 3\nbatch = 4\nlearning_rate = 0.1\n\
             data = {{ kind = \"files\", inputs = {{ file = \"{file}\", array = \"x\" }}, targets = {{ file = \"{file}\", array = \"y\" }} }}\n"
        )
    };
    let strip = |s: String| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}"));
        v["description"] = serde_json::Value::Null;
        v
    };
    write(dir.path(), "npz.toml", config("xy.npz"));
    write(dir.path(), "st.toml", config("xy.safetensors"));
    let a = strip(run_json(dir.path(), "npz.toml"));
    let b = strip(run_json(dir.path(), "st.toml"));
    assert_eq!(a, b, "the same arrays, the same run");
    write(dir.path(), "bad.toml", config("xy-compressed.npz"));
    let o = gradscope(&["run", "bad.toml"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("member `x.npy` is compressed"),
        "{}",
        text(&o.stderr)
    );
}

/// `train.checkpoint_every = 2` over 4 steps of Adam writes `checkpoints/step-2` and
/// `step-4` into the record: step 4's weights and state are the final ones, and 2 more steps
/// from step 2's file end bit for bit where the 4 steps did (every step takes the same 6
/// rows, so only the true weights and state at step 2 give that).
#[test]
fn checkpoints_hold_the_weights_and_state_to_go_on_from() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "x.npy", inputs_6x8());
    write(dir.path(), "y.npy", int_labels("<i8", &LABELS));
    let adam = "optimizer = { kind = \"adam\" }";
    write(
        dir.path(),
        "four.toml",
        classifier(FILES, 4, &format!("{adam}\ncheckpoint_every = 2")),
    );
    let o = gradscope(&["run", "four.toml", "--out", "r"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let record = &record_dirs_of(&dir.path().join("r"), "u")[0];
    let mut names: Vec<String> = std::fs::read_dir(record.join("checkpoints"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["step-2.safetensors", "step-4.safetensors"]);
    let (last, meta) = tensors_of(&record.join("checkpoints/step-4.safetensors"));
    let (fin, _) = tensors_of(&record.join("weights.safetensors"));
    assert_eq!(last, fin, "the last checkpoint is the final state");
    assert!(meta.contains(&("steps_run".into(), "4".into())), "{meta:?}");
    let step2 = record.join("checkpoints/step-2.safetensors");
    let more = classifier(FILES, 2, adam).replace(
        "output = 4\n",
        &format!(
            "output = 4\nweights = {}\n",
            serde_json::json!(step2.to_string_lossy())
        ),
    );
    write(dir.path(), "more.toml", more);
    let o = gradscope(&["run", "more.toml", "--out", "r2"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (two_and_two, _) = tensors_of(&trained_weights(&dir.path().join("r2"), "u"));
    assert_eq!(
        two_and_two, fin,
        "2 steps + 2 from the checkpoint = 4 steps"
    );
    // The record's resolved config keeps the key, so that running it again checkpoints too.
    let config = std::fs::read_to_string(record.join("config.toml")).unwrap_or_default();
    assert!(config.contains("\ncheckpoint_every = 2\n"), "{config}");
    // The page lists them, with the final weights.
    let page = std::fs::read_to_string(record.join("report.html")).unwrap_or_default();
    assert!(
        page.contains("checkpoints/step-2.safetensors") && page.contains(">weights.safetensors<"),
        "{page}"
    );
}
