//! Mixed-precision training (`precision = { compute = "f16", master = "f32" }`) with loss
//! scaling (`train.loss_scale`): what the scale buys, GradScaler's skips and back-offs as the
//! records show them, a collapse as its own origin, and every output naming both types.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{gradscope, read_text, record_dirs_of, wgpu_or_skip};

/// A network whose f16 gradients underflow: kernels N(0, 0.001²) make the output ≈ 1e-5, so
/// mean(out²)'s gradient is ≈ 2·1e-5/(32·4) ≈ 2e-7 and the kernels' gradients ≈ 1e-8, below
/// f16's smallest subnormal (2⁻²⁴ ≈ 6e-8): they round to 0. × 65536 lifts them into f16's
/// range.
const TINY: &str = r#"name = "tiny"
seed = 3
precision = "PRECISION"
loss = "mean_squares"
[model]
input = 16
hidden = [16]
output = 4
kernel_init = { kind = "normal", std = 0.001 }
[train]
steps = 3
batch = 32
learning_rate = 0.1
loss_scale = LOSS_SCALE
data = { kind = "teacher" }
"#;

fn tiny(precision: &str, loss_scale: &str) -> String {
    TINY.replace("PRECISION", precision)
        .replace("LOSS_SCALE", loss_scale)
}

/// Runs `toml` (written to `d/name.toml`) with `args`, into the record directory `d/rec`;
/// the exit code, the report (JSON) and the steps (steps.jsonl).
fn run(d: &Path, file: &str, toml: &str, args: &[&str]) -> (Option<i32>, Value, Vec<Value>) {
    std::fs::write(d.join(file), toml).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(d.join("rec"));
    let mut all = vec!["run", file, "--out", "rec", "--format", "json"];
    all.extend(args);
    let o = gradscope(&all, d);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{file}: {e}: {out}{}", String::from_utf8_lossy(&o.stderr)));
    let name = report["experiment"].as_str().unwrap_or("").to_string();
    let record: PathBuf = record_dirs_of(&d.join("rec"), &name)
        .pop()
        .unwrap_or_else(|| panic!("{file}: no record"));
    let steps = read_text(&record.join("steps.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (o.status.code(), report, steps)
}

fn grad_l2(step: &Value, layer: usize) -> f64 {
    step["layers"][layer]["grad_l2"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// f16 without a scale: every kernel's gradient is exactly 0 (reported as ZERO GRADIENT,
/// finite). With a static scale of 65536 the unscaled gradients are f32's to within f16's
/// rounding: δ_0's scaled entries (≈ 2e-5) are f16 subnormals, spaced 2⁻²⁴ ≈ 6e-8, so each is
/// off by up to ≈ 1.5e-3 of itself; 2e-2 of the norm bounds that with room. A dynamic scale
/// that skips nothing is the static one at the same scale, to the bit.
fn check_scaling_lifts_the_underflow(backend: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let flags = ["--backend", backend];
    let (code, f32r, f32s) = run(d, "a.toml", &tiny("f32", "\"none\""), &flags);
    assert_eq!(code, Some(0), "{f32r}");
    let (code, none, none_s) = run(d, "b.toml", &tiny("f16", "\"none\""), &flags);
    assert_eq!(code, Some(0), "{none}");
    let (code, fixed, fixed_s) = run(
        d,
        "c.toml",
        &tiny("f16", "{ kind = \"static\", scale = 65536.0 }"),
        &flags,
    );
    assert_eq!(code, Some(0), "{fixed}");
    let (_, dynamic, dynamic_s) = run(d, "e.toml", &tiny("f16", "\"dynamic\""), &flags);
    for l in 0..2 {
        assert!(
            grad_l2(&f32s[0], l) > 1e-8,
            "{backend}: f32's gradient is not 0"
        );
        assert_eq!(
            grad_l2(&none_s[0], l),
            0.0,
            "{backend}: f16 underflows to 0"
        );
        for (a, b) in fixed_s.iter().zip(&f32s) {
            let rel = (grad_l2(a, l) - grad_l2(b, l)).abs() / grad_l2(b, l);
            assert!(rel < 2e-2, "{backend}: layer {l}: {rel:e} from f32");
        }
    }
    assert_eq!(none["zero_gradients"][0]["layer"], 0, "{none}");
    assert_eq!(f32r["zero_gradients"], Value::Array(Vec::new()));
    assert_eq!(fixed["zero_gradients"], Value::Array(Vec::new()), "{fixed}");
    // Both name both types; f32's record has neither field.
    for r in [&none, &fixed] {
        assert_eq!(r["precision"], "f16");
        assert_eq!(r["master_precision"], "f32");
    }
    assert!(f32r.get("master_precision").is_none() && f32r.get("loss_scale").is_none());
    assert!(f32s[0].get("loss_scale").is_none() && f32s[0].get("skipped").is_none());
    assert!(none_s[0].get("loss_scale").is_none(), "no scale, no field");
    assert_eq!(fixed_s[0]["loss_scale"], 65536.0);
    assert!(
        fixed_s[0].get("skipped").is_none(),
        "a static scale skips nothing"
    );
    assert_eq!(fixed["loss_scale"]["skipped_steps"], 0);
    assert_eq!(dynamic["loss_scale"]["skipped_steps"], 0, "{dynamic}");
    for (a, b) in dynamic_s.iter().zip(&fixed_s) {
        assert_eq!(a["skipped"], false);
        let mut a = a.clone();
        a.as_object_mut().map(|o| o.remove("skipped"));
        assert_eq!(
            &a, b,
            "{backend}: an unskipping dynamic scale is the static one"
        );
    }
}

#[test]
fn a_loss_scale_keeps_f16_gradients_from_underflowing_to_zero() {
    check_scaling_lifts_the_underflow("flex");
}

#[test]
fn a_loss_scale_keeps_f16_gradients_from_underflowing_on_wgpu() {
    let test = "a_loss_scale_keeps_f16_gradients_from_underflowing_on_wgpu";
    let Some(b) = wgpu_or_skip(test) else {
        return;
    };
    if b.check_precision(gradscope::config::Precision::F16)
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI's lavapipe has shaderFloat16"
        );
        eprintln!("skipping {test}: this wgpu adapter has no f16");
        return;
    }
    check_scaling_lifts_the_underflow("wgpu");
}

/// configs/training/b (stable cross-entropy, SGD at 0.5) in f16 with a dynamic scale whose
/// interval is 3: the records follow GradScaler's rules step by step. Each step's recorded
/// scale is the one before halved after a skipped step, doubled after 3 unskipped steps in a
/// row, else kept (an independent recursion here); a step is skipped exactly where its
/// gradients hold a non-finite value; the optimiser steps are the unskipped ones; the first
/// skip's origin is the first skipped step's; and the run ends where 3 steps in a row were
/// skipped (the collapse), with exit 3 and the `loss_scale` origin.
#[test]
fn a_dynamic_scale_skips_backs_off_grows_and_collapses_as_grad_scaler_does() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let b = read_text(
        &crate::common::configs_dir().join("training/b-stable-cross-entropy-high-lr.toml"),
    );
    let toml = b
        .replace("seed = 1\n", "seed = 1\nprecision = { compute = \"f16\", master = \"f32\" }\n")
        .replace(
            "clip = \"none\"\n",
            "clip = \"none\"\nloss_scale = { kind = \"dynamic\", init = 1024.0, growth_interval = 3 }\n",
        );
    assert_ne!(toml, b, "the config was changed");
    let (code, report, steps) = run(d, "b.toml", &toml, &["--backend", "flex"]);
    assert_eq!(code, Some(3), "{report}");
    let skipped: Vec<bool> = steps
        .iter()
        .map(|s| s["skipped"].as_bool().unwrap_or_else(|| panic!("{s}")))
        .collect();
    assert!(skipped.iter().any(|s| *s) && skipped.iter().any(|s| !*s));
    let (mut scale, mut tracker) = (1024.0f64, 0);
    let mut grew = false;
    for (s, &skip) in steps.iter().zip(&skipped) {
        assert_eq!(s["loss_scale"].as_f64(), Some(scale), "step {}", s["step"]);
        let bad: u64 = (0..3)
            .map(|l| s["layers"][l]["grad_nonfinite"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            skip,
            bad > 0,
            "step {}: skipped ⇔ a non-finite gradient",
            s["step"]
        );
        if skip {
            scale *= 0.5;
            tracker = 0;
        } else if tracker + 1 == 3 {
            scale *= 2.0;
            tracker = 0;
            grew = true;
        } else {
            tracker += 1;
        }
    }
    assert!(grew, "the scale grew at least once: {skipped:?}");
    let tail = skipped.iter().rev().take_while(|s| **s).count();
    assert_eq!(
        tail, 3,
        "the run ends at the third skip in a row: {skipped:?}"
    );
    let origin = &report["origin"];
    assert_eq!(origin["kind"], "loss_scale");
    assert_eq!(origin["step"].as_u64(), Some(steps.len() as u64 - 1));
    assert_eq!(origin["count"], 3);
    let ls = &report["loss_scale"];
    let n_skipped = skipped.iter().filter(|s| **s).count();
    assert_eq!(ls["skipped_steps"].as_u64(), Some(n_skipped as u64));
    assert_eq!(ls["init"], 1024.0);
    assert_eq!(ls["final"].as_f64(), Some(scale));
    let first = skipped.iter().position(|s| *s).unwrap_or(usize::MAX);
    assert_eq!(
        ls["first_skip"]["step"].as_u64(),
        Some(first as u64),
        "{ls}"
    );
    assert_eq!(report["finite"], false);
    assert_eq!(report["master_precision"], "f32");
    // The text report says it in words.
    let o = gradscope(&["run", "b.toml", "--out", "rec2", "--backend", "flex"], d);
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "precision   f16 compute, f32 master weights (mixed precision)",
        "loss scale  dynamic(init=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)",
        &format!(
            "{n_skipped} of {} steps skipped for non-finite gradients, the first in the",
            steps.len()
        ),
        "skipped",
        "NOT FINITE: in the loss scale at step",
        "it collapsed after 3 skipped steps in a row",
    ] {
        assert!(text.contains(want), "no `{want}` in\n{text}");
    }
    // The picture has the scale's panel and a tick per skipped step.
    let svg = std::fs::read_dir(d.join("rec2/train-b-stable-ce-high-lr"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("train.svg"))
        .find(|p| p.exists())
        .map(|p| read_text(&p))
        .unwrap_or_else(|| panic!("no train.svg"));
    assert!(svg.contains("loss scale (log scale)"), "{svg}");
    assert!(svg.contains(&format!("a skipped step ({n_skipped} steps)")));
}

/// `show` writes mixed precision as the table and every loss scale's parameters, and the shown
/// file runs back to the same report.
#[test]
fn show_writes_mixed_precision_and_the_loss_scale_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::write(d.join("t.toml"), tiny("f16", "\"dynamic\"")).unwrap_or_else(|e| panic!("{e}"));
    let shown = gradscope(&["show", "t.toml"], d);
    let toml = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert_eq!(shown.status.code(), Some(0), "{toml}");
    for want in [
        "precision = { compute = \"f16\", master = \"f32\" }",
        "loss_scale = { kind = \"dynamic\", init = 65536.0, growth_factor = 2.0, backoff_factor = 0.5, growth_interval = 2000 }",
    ] {
        assert!(toml.contains(want), "no `{want}` in {toml}");
    }
    let (_, original, _) = run(
        d,
        "t.toml",
        &tiny("f16", "\"dynamic\""),
        &["--backend", "flex"],
    );
    let (_, back, _) = run(d, "shown.toml", &toml, &["--backend", "flex"]);
    assert_eq!(original, back);
}

/// The master weights are f32 and the pass computes in f16: a master kernel past 65519 (which
/// rounds to inf in f16) is the weights' overflow at the step it is cast, named as such
/// (`weights`, `layers.0.weight`, its 16·16 = 256 values, `overflow`), not as the first z_l
/// that holds the inf; exit 3. In bf16 (largest 3.39e38) the same kernels compute.
#[test]
fn a_master_weight_past_f16s_range_is_the_weights_overflow_when_cast() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let big = |compute: &str| {
        tiny("X", "\"none\"")
            .replace(
                "precision = \"X\"",
                &format!("precision = {{ compute = \"{compute}\", master = \"f32\" }}"),
            )
            .replace(
                "{ kind = \"normal\", std = 0.001 }",
                "{ kind = \"constant\", value = 70000.0 }",
            )
    };
    let (code, report, _) = run(d, "big.toml", &big("f16"), &["--backend", "flex"]);
    assert_eq!(code, Some(3), "{report}");
    let o = &report["origin"];
    assert_eq!(o["kind"], "weights", "{o}");
    assert_eq!(o["tensor"], "layers.0.weight", "{o}");
    assert_eq!(o["count"], 256, "{o}");
    assert_eq!(o["step"], 0, "{o}");
    assert_eq!(o["cause"], "overflow", "{o}");
    let (_, report, _) = run(d, "big16b.toml", &big("bf16"), &["--backend", "flex"]);
    assert_ne!(report["origin"]["kind"], "weights", "{report}");
}
