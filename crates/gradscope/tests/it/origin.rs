//! Where the first non-finite value was born: a hand-made case for each kind, each derived by
//! hand, detected with the right kind, layer, tensor and count on every backend.

use std::path::Path;

use burn::tensor::FloatDType;
use gradscope::backend::{self, BackendKind};
use gradscope::config;
use gradscope::origin::{Cause, Origin, OriginKind, Rows, origin};
use gradscope::run;

use crate::common::{self, npy, write_by_spec};

/// A config: input width `input`, hidden `hidden`, one output, every kernel entry `kernel`,
/// zero biases, activation `activation`, loss `loss`, one case `x` of batch 1 given by `case`.
fn config(
    input: usize,
    hidden: &str,
    kernel: f64,
    activation: &str,
    loss: &str,
    case: &str,
) -> String {
    format!(
        "name = \"origin\"\ndescription = \"d\"\nseed = 0\nloss = \"{loss}\"\n[model]\n\
         input = {input}\nhidden = {hidden}\noutput = 1\nactivation = \"{activation}\"\n\
         kernel_init = {{ kind = \"constant\", value = {kernel:e} }}\n\
         [[inputs]]\nname = \"x\"\n{case}\n"
    )
}

fn ones() -> &'static str {
    "batch = 1\ndistribution = { kind = \"constant\", value = 1.0 }"
}

/// Each case: (what, config text, files to write beside it, the expected origin).
fn cases() -> Vec<(&'static str, String, Vec<(&'static str, Vec<u8>)>, Origin)> {
    // `rows`: (rows holding a non-finite value, rows in the batch), for batch-shaped tensors.
    let at = |kind, layer, tensor: &str, count, rows: Option<(usize, usize)>| Origin {
        kind,
        step: None,
        case: "x".into(),
        layer,
        tensor: tensor.into(),
        count,
        rows: rows.map(|(affected, of)| Rows { affected, of }),
        // Every value computed here, and made non-finite, overflowed (each case below says
        // where); the input and the weights arrived so.
        cause: matches!(
            kind,
            OriginKind::Forward | OriginKind::Loss | OriginKind::Backward
        )
        .then_some(Cause::Overflow),
    };
    // The example: the network of `weights` below, its file holding one NaN in
    // layers.1.bias. The weights are checked before the pass: layer 1, one value.
    let mut weights = config(2, "[2]", 0.5, "relu", "sum_squares", ones());
    weights = weights.replacen("[model]\n", "[model]\nweights = \"w.safetensors\"\n", 1);
    let w = write_by_spec(&[
        ("layers.0.weight", vec![2, 2], vec![0.5; 4]),
        ("layers.0.bias", vec![2], vec![0.0; 2]),
        ("layers.1.weight", vec![2, 1], vec![0.5; 2]),
        ("layers.1.bias", vec![1], vec![f32::NAN]),
    ]);
    vec![
        (
            // x = [NaN, 1]: the input itself, one value.
            "input",
            config(2, "[2]", 0.5, "relu", "sum_squares", "file = \"x.npy\""),
            vec![("x.npy", npy(1, 2, &[f32::NAN, 1.0]))],
            at(OriginKind::Input, None, "input", 1, Some((1, 1))),
        ),
        (
            "weights",
            weights,
            vec![("w.safetensors", w)],
            at(OriginKind::Weights, Some(1), "layers.1.bias", 1, None),
        ),
        (
            // x = [1, 1], kernels 1e20: z_0 = 2e20 (finite), z_1 = 2·1e20·2e20 = 4e40 > f32's
            // 3.4e38 in both units of layer 1: TensorFlow's "ReluGrad input is not finite".
            "forward",
            config(2, "[2, 2]", 1e20, "relu", "sum_squares", ones()),
            vec![],
            at(OriginKind::Forward, Some(1), "z.layers.1", 2, Some((1, 1))),
        ),
        (
            // The same network on 4 rows: [1, 1] twice overflows as above; [1e-20, 1e-20]
            // twice gives z_0 = 2, z_1 = 2·1e20·2 = 4e20 (finite). 4 values in 2 of 4 rows.
            "forward, some rows",
            config(2, "[2, 2]", 1e20, "relu", "sum_squares", "file = \"x.npy\""),
            vec![(
                "x.npy",
                npy(4, 2, &[1.0, 1.0, 1e-20, 1e-20, 1.0, 1.0, 1e-20, 1e-20]),
            )],
            at(OriginKind::Forward, Some(1), "z.layers.1", 4, Some((2, 4))),
        ),
        (
            // Kernels 1e10: z_0 = 2e10, out = z_1 = 2·1e10·2e10 = 4e20 (finite), but the loss
            // out² = 1.6e41 overflows.
            "loss",
            config(2, "[2]", 1e10, "relu", "sum_squares", ones()),
            vec![],
            at(OriginKind::Loss, None, "loss", 1, Some((1, 1))),
        ),
        (
            // The same on 3 rows: [1, 1] overflows as above; [1e-10, 1e-10] gives z_0 = 2,
            // out = 2·1e10·2 = 4e10 and its own loss 1.6e21 (finite). 1 of 3 rows' loss.
            "loss, some rows",
            config(2, "[2]", 1e10, "relu", "sum_squares", "file = \"x.npy\""),
            vec![("x.npy", npy(3, 2, &[1e-10, 1e-10, 1.0, 1.0, 1e-10, 1e-10]))],
            at(OriginKind::Loss, None, "loss", 1, Some((1, 3))),
        ),
        (
            // Width 1, x = 1e-30, kernels 1e15, identity, loss = out: forward z = 1e-15, 1,
            // 1e15, 1e30 and the loss 1e30 are finite; backward δ_3 = 1, δ_2 = 1e15,
            // δ_1 = 1e30, δ_0 = 1e45 overflows: layer 0, counting back from the output.
            "backward",
            config(
                1,
                "[1, 1, 1]",
                1e15,
                "identity",
                "sum",
                "batch = 1\ndistribution = { kind = \"constant\", value = 1e-30 }",
            ),
            vec![],
            at(
                OriginKind::Backward,
                Some(0),
                "delta.layers.0",
                1,
                Some((1, 1)),
            ),
        ),
    ]
}

fn write_case(dir: &Path, text: &str, files: &[(&str, Vec<u8>)]) {
    std::fs::write(dir.join("c.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn each_kind_of_origin_is_found_where_it_was_born_on_every_backend() {
    let mut kinds = vec![BackendKind::Ndarray, BackendKind::Flex];
    if common::wgpu_or_skip("each_kind_of_origin_is_found_where_it_was_born_on_every_backend")
        .is_some()
    {
        kinds.push(BackendKind::Wgpu);
    }
    for (what, text, files, want) in cases() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_case(dir.path(), &text, &files);
        let exp =
            config::load(&dir.path().join("c.toml")).unwrap_or_else(|e| panic!("{what}: {e}"));
        for &kind in &kinds {
            let b = backend::open(kind, None).unwrap_or_else(|e| panic!("{e}"));
            let outcome = run::execute(&exp, &b).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                origin(
                    &outcome,
                    exp.loss,
                    &|c| gradscope::loss::per_row(
                        exp.loss,
                        &c.output,
                        &gradscope::loss::no_targets(),
                        &b.plain,
                        FloatDType::F32,
                    ),
                    exp.precision,
                ),
                Some(want.clone()),
                "{what} on {}",
                kind.name()
            );
        }
    }
}

#[test]
fn the_cli_reports_the_origin_in_json_and_words() {
    let (_, text, files, want) = cases().swap_remove(1);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_case(dir.path(), &text, &files);
    let o = common::gradscope(&["run", "c.toml", "--format", "json"], dir.path());
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["origin"], serde_json::to_value(&want).unwrap_or_default());
    assert_eq!(
        v["origin"],
        serde_json::json!({"kind": "weights", "step": null, "case": "x", "layer": 1,
                           "tensor": "layers.1.bias", "count": 1, "rows": null,
                           "cause": null})
    );
    let o = common::gradscope(&["run", "c.toml"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("born in the weights, before the pass: layers.1.bias (1 value)"),
        "{out}"
    );
}

/// One hand-made case per cause a pass can have, in the precision it happens in, each with
/// the layer, tensor and count derived by hand, on every backend that computes in it.
#[test]
fn each_cause_is_named_where_it_happened() {
    let forward = |layer, tensor: &str, count, cause| Origin {
        kind: OriginKind::Forward,
        step: None,
        case: "x".into(),
        layer: Some(layer),
        tensor: tensor.into(),
        count,
        rows: Some(Rows { affected: 1, of: 1 }),
        cause: Some(cause),
    };
    let in_precision = |text: String, p: &str| {
        text.replacen("seed = 0\n", &format!("seed = 0\nprecision = \"{p}\"\n"), 1)
    };
    let cases = [
        (
            // f16, x = [1, 1], kernels 200 (exact in f16): z_0 = 2·200 = 400, z_1 = 2·200·400
            // = 160000 > 65504 in both units: overflow in z.layers.1, 2 values.
            "f16",
            in_precision(
                config(2, "[2, 2]", 200.0, "relu", "sum_squares", ones()),
                "f16",
            ),
            vec![],
            forward(1, "z.layers.1", 2, Cause::Overflow),
        ),
        (
            // f16, x = [−1, −1], kernels 20000: z_0 = −40000 (finite), a_0 = 2·z_0 = −80000
            // < −65504 in both units: the activation overflowed where its input did not.
            "f16",
            in_precision(
                config(
                    2,
                    "[2, 2]",
                    20000.0,
                    "{ kind = \"leaky_relu\", slope = 2.0 }",
                    "sum_squares",
                    "batch = 1\ndistribution = { kind = \"constant\", value = -1.0 }",
                ),
                "f16",
            )
            .replace("activation = \"{", "activation = {")
            .replace("}\"\nkernel", "}\nkernel"),
            vec![],
            forward(0, "a.layers.0", 2, Cause::Overflow),
        ),
        (
            // bf16, x = [1, 1], one hidden layer, kernels 3e9 (bf16 rounds them to 3003121664,
            // bits 0x4F33 << 16): z_0 ≈ 6.0e9, out ≈ 3.6e19 (finite), but out² ≈ 1.3e39 is
            // past bf16's 3.3895e38: the loss overflows.
            "bf16",
            in_precision(config(2, "[2]", 3e9, "relu", "sum_squares", ones()), "bf16"),
            vec![],
            Origin {
                kind: OriginKind::Loss,
                layer: None,
                ..forward(0, "loss", 1, Cause::Overflow)
            },
        ),
        (
            // f16, kernels 70000: finite in f32, past 65504 + 16 (half a unit of f16's last
            // binade, 32), so each of layer 0's 4 rounds to inf before the pass: the weights,
            // by their rounding, not z.layers.0 that holds the inf.
            "f16",
            in_precision(
                config(2, "[2, 2]", 70000.0, "relu", "sum_squares", ones()),
                "f16",
            ),
            vec![],
            Origin {
                kind: OriginKind::Weights,
                case: "x".into(),
                rows: None,
                ..forward(0, "layers.0.weight", 4, Cause::Overflow)
            },
        ),
        (
            // f16, kernels 0.5, x = [70000, 70000]: the input's 2 values round to inf.
            "f16",
            in_precision(
                config(
                    2,
                    "[2, 2]",
                    0.5,
                    "relu",
                    "sum_squares",
                    "batch = 1\ndistribution = { kind = \"constant\", value = 70000.0 }",
                ),
                "f16",
            ),
            vec![],
            Origin {
                kind: OriginKind::Input,
                layer: None,
                ..forward(0, "input", 2, Cause::Overflow)
            },
        ),
        (
            // bf16, kernels 3.4e38: finite in f32 (whose largest is 3.4028e38), past bf16's
            // 3.3895e38 by more than half its last unit (2¹²⁰/2 ≈ 6.6e35): inf, 4 values.
            "bf16",
            in_precision(
                config(2, "[2, 2]", 3.4e38, "relu", "sum_squares", ones()),
                "bf16",
            ),
            vec![],
            Origin {
                kind: OriginKind::Weights,
                rows: None,
                ..forward(0, "layers.0.weight", 4, Cause::Overflow)
            },
        ),
        (
            // f32, x = [1e30, −1e30], kernels 1e20: each unit of z_0 sums the products 1e50
            // and −1e50. Where each product is rounded first (flex, wgpu), they are +inf and
            // −inf, and inf − inf = NaN with no inf left: invalid. ndarray's matrixmultiply
            // fuses the second multiply-add, fma(−1e30, 1e20, +inf) = +inf (the exact product
            // is finite): overflow. Both units, on each backend.
            "f32",
            config(
                2,
                "[2]",
                1e20,
                "identity",
                "sum_squares",
                "file = \"x.npy\"",
            ),
            vec![("x.npy", npy(1, 2, &[1e30, -1e30]))],
            forward(0, "z.layers.0", 2, Cause::Invalid),
        ),
    ];
    for (precision, text, files, want) in cases {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_case(dir.path(), &text, &files);
        let exp = config::load(&dir.path().join("c.toml")).unwrap_or_else(|e| panic!("{e}"));
        for kind in [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu] {
            if kind == BackendKind::Wgpu && common::wgpu_or_skip("each_cause_is_named").is_none() {
                continue;
            }
            let b = backend::open(kind, None).unwrap_or_else(|e| panic!("{e}"));
            if b.check_precision(exp.precision).is_err() {
                // ndarray has no 16-bit types, wgpu no bf16: refused before running (tested
                // in cli.rs).
                assert!(
                    precision != "f32" && kind != BackendKind::Flex,
                    "{precision} on flex"
                );
                continue;
            }
            let outcome = run::execute(&exp, &b).unwrap_or_else(|e| panic!("{e}"));
            let dtype = gradscope::backend::dtype(exp.precision);
            let got = origin(
                &outcome,
                exp.loss,
                &|c| {
                    let none = gradscope::loss::no_targets();
                    gradscope::loss::per_row(exp.loss, &c.output, &none, &b.plain, dtype)
                },
                exp.precision,
            );
            let fused = precision == "f32" && kind == BackendKind::Ndarray;
            let want = Origin {
                cause: if fused {
                    Some(Cause::Overflow)
                } else {
                    want.cause
                },
                ..want.clone()
            };
            assert_eq!(got, Some(want), "{precision} on {}", kind.name());
        }
    }
}
