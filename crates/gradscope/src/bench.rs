//! `gradscope bench`: the three speed workloads, timed on this machine, medians of several
//! repetitions.
//!
//! 1. `seed`: the three seed experiments end to end, process start to printed report (spawns
//!    this binary: `run configs/01… 02… 03… --no-record`).
//! 2. `throughput`: forward + backward of a width-1024, depth-16, batch-512 ReLU MLP with
//!    loss Σ out², in GFLOP/s counting 6·batch·Σ d_in·d_out, taken each way a run takes it:
//!    one network through autodiff (a plain run), 4 networks of batch 128 as one stack (a
//!    sweep), and the backward pass written out without autodiff (a training step).
//! 3. `sweep`: a 1000-trial sweep of the seed's deep network (10 → 100 → 50 → 25 → 1), one
//!    N(0,1) input [1, 10] per trial, in trials per second (trial log writes included).
//! 4. `train`: 1000 SGD steps of the seed's deep network with 10 classes (10 → 100 → 50 → 25
//!    → 10), batch 32, stable cross-entropy on a teacher's labels, in steps per second; once
//!    with the per-step statistics and once without, to say what they cost.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use gradscope_model::{
    Activation, HostTensor, Initializer, Layers, MlpConfig, MlpStack, Record, stack_trials,
};

use burn::tensor::FloatDType;
use gradscope_report::Precision;

use crate::backend::Backend;
use crate::config::{self, Source};
use crate::report::Thresholds;

/// A workload that could not be timed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `seed`: the configs directory holds no experiment.
    #[error("no configs in {}", .0.display())]
    NoConfigs(std::path::PathBuf),
    /// This binary could not be found or started.
    #[error("cannot start {}: {source}", exe.display())]
    Spawn {
        /// The binary.
        exe: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `seed`: a run of the seed experiments failed; its standard error.
    #[error("the seed experiments failed: {0}")]
    SeedRun(String),
    /// `sweep`: the built-in sweep config does not validate (a bug).
    #[error("the benchmark sweep: {0}")]
    Config(Box<crate::config::ConfigError>),
    /// `throughput`: the stacked networks do not stack (a bug).
    #[error("the stacked throughput pass: {0}")]
    Stack(#[from] gradscope_model::StackError),
    /// `sweep`: the sweep failed.
    #[error("the benchmark sweep: {0}")]
    Sweep(#[from] crate::sweep::SweepError),
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Workload 1: seconds per run of the three seed experiments, one process each time.
pub fn seed_suite(
    exe: &Path,
    configs: &Path,
    backend: &Backend,
    repeat: usize,
) -> Result<Vec<f64>, BenchError> {
    let files: Vec<String> = config::configs_in(configs)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if files.is_empty() {
        return Err(BenchError::NoConfigs(configs.to_path_buf()));
    }
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            let o = std::process::Command::new(exe)
                .arg("run")
                .args(&files)
                .args(["--no-record", "--backend", backend.kind.name()])
                .output()
                .map_err(|source| BenchError::Spawn {
                    exe: exe.to_path_buf(),
                    source,
                })?;
            if !o.status.success() {
                let stderr = String::from_utf8_lossy(&o.stderr).trim().to_string();
                return Err(BenchError::SeedRun(stderr));
            }
            Ok(t.elapsed().as_secs_f64())
        })
        .collect()
}

/// The throughput workload's network and the FLOP one forward + backward pass counts.
pub fn throughput_model(width: usize, layers: usize, batch: usize) -> (MlpConfig, f64) {
    let config = MlpConfig {
        d_input: width,
        hidden: vec![width; layers - 1],
        d_output: width,
        activations: vec![Activation::Relu; layers - 1],
        bias: true,
        kernel_init: Initializer::GlorotUniform,
        bias_init: Initializer::Zeros,
        gain: 1.0,
        seed: 0,
    };
    let flop = 6.0 * batch as f64 * (layers * width * width) as f64;
    (config, flop)
}

/// How workload 2 takes its forward + backward step: the three ways runs take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// One network (the stack of one), Burn's autodiff (a plain run's pass, without its
    /// probes).
    Plain,
    /// `T` networks as one stack, autodiff through the batched products (a sweep's pass): the
    /// batch is split among them, so the FLOP count is the same.
    Stack(usize),
    /// One network (the stack of one) on the device without autodiff, the backward pass
    /// written out (a training step's pass).
    WrittenOut,
}

/// Workload 2: seconds per forward + backward step taken as `pass` (after one warm-up step).
pub fn throughput(
    backend: &Backend,
    (width, layers, batch): (usize, usize, usize),
    (pass, precision): (Pass, Precision),
    repeat: usize,
) -> Result<(Vec<f64>, f64), BenchError> {
    let (config, flop) = throughput_model(width, layers, batch);
    let dtype = crate::backend::dtype(precision);
    let input = |rows: usize| {
        HostTensor::new(
            vec![rows, width],
            (0..rows * width)
                .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                .collect(),
        )
    };
    // Reading one gradient's sum back waits for the device to finish the step.
    let step: Box<dyn Fn() -> f32> = match pass {
        // A plain run is the stack of one network (`run::execute`).
        Pass::Plain | Pass::Stack(_) => {
            let trials = match pass {
                Pass::Stack(trials) => trials,
                _ => 1,
            };
            let nets: Vec<_> = (0..trials as u64)
                .map(|seed| {
                    MlpConfig {
                        seed,
                        ..config.clone()
                    }
                    .draw_weights()
                })
                .collect();
            let refs: Vec<_> = nets.iter().collect();
            let stack = MlpStack::from_weights_as(&refs, &backend.device, dtype)?;
            let xs: Vec<HostTensor> = (0..trials).map(|_| input(batch / trials)).collect();
            let x = stack_trials(&xs);
            Box::new(move || {
                let out = stack
                    .forward(x.to_device_as::<3>(&backend.device, dtype), Record::OUTPUT)
                    .output;
                let grads = (out.clone() * out).sum().backward();
                let g = stack.weights[0].grad(&grads);
                let g = g.map(|g| g.cast(FloatDType::F32).sum());
                g.map(|g| HostTensor::from_tensor(g).data[0]).unwrap_or(0.0)
            })
        }
        Pass::WrittenOut => {
            let weights = config.draw_weights();
            let model = MlpStack::from_weights_as(&[&weights], &backend.plain, dtype)?;
            let x = stack_trials(&[input(batch)]);
            Box::new(move || {
                let trace = model.forward(x.to_device_as::<3>(&backend.plain, dtype), Record::PASS);
                let delta = trace.output.clone().mul_scalar(2.0);
                let b = model.backward(&trace, delta);
                // The sum in f32: a 16-bit sum of 1024² gradients could overflow.
                HostTensor::from_tensor(b.weights[0].clone().cast(FloatDType::F32).sum()).data[0]
            })
        }
    };
    step();
    let times = (0..repeat)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(step());
            t.elapsed().as_secs_f64()
        })
        .collect();
    Ok((times, flop))
}

const SWEEP: &str = r#"name = "bench-sweep"
description = "Workload 3: the seed's deep network over 1000 seeds"
seed = 1
[model]
input = 10
hidden = [100, 50, 25]
output = 1
[[inputs]]
name = "x"
batch = 1
distribution = "normal"
[sweep]
trials = 1000
"model.activation" = ["relu"]
"#;

/// Workload 3: seconds for the 1000-trial sweep (records go to a temporary directory).
pub fn sweep(
    backend: &Backend,
    repeat: usize,
    (stack, precision): (Option<usize>, Precision),
) -> Result<Vec<f64>, BenchError> {
    let text = SWEEP.replacen(
        "seed = 1\n",
        &format!("seed = 1\nprecision = \"{precision}\"\n"),
        1,
    );
    let exp = config::parse(Source {
        path: "bench-sweep.toml".into(),
        text,
    })
    .map_err(|e| BenchError::Config(Box::new(e)))?;
    let Some(spec) = exp.sweep.clone() else {
        unreachable!("SWEEP has a [sweep] table")
    };
    (0..repeat)
        .map(|i| {
            let out =
                std::env::temp_dir().join(format!("gradscope-bench-{}-{i}", std::process::id()));
            let opts = crate::sweep::SweepOptions {
                out: &out,
                resume: None,
                shard: None,
                thresholds: Thresholds::default(),
                stack,
            };
            let t = Instant::now();
            let r = crate::sweep::run_sweep(&exp, &spec, backend, &opts, &mut std::io::sink());
            let dt = t.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(&out);
            Ok(r.map(|_| dt)?)
        })
        .collect()
}

/// Workload 4's experiment.
const TRAIN: &str = r#"
name = "bench-train"
description = "1000 SGD steps of the seed's deep network, 10 classes, batch 32"
seed = 1
loss = "cross_entropy"
[model]
input = 10
hidden = [100, 50, 25]
output = 10
activation = "relu"
[[inputs]]
name = "x"
batch = 1
distribution = "normal"
[train]
steps = 1000
batch = 32
optimizer = "sgd"
learning_rate = 0.01
data = { kind = "teacher", classes = 10 }
"#;

/// Workload 4: seconds for 1000 steps, with the per-step statistics (`stats`) or without,
/// in `precision`: f32, or mixed precision (the pass in 16 bits, f32 master weights) with
/// GradScaler's dynamic loss scale, as a mixed-precision run is trained.
pub fn train(
    backend: &Backend,
    repeat: usize,
    stats: bool,
    precision: Precision,
) -> Result<Vec<f64>, BenchError> {
    let text = match precision {
        Precision::F32 => TRAIN.to_string(),
        p => TRAIN
            .replace("seed = 1\n", &format!("seed = 1\nprecision = \"{p}\"\n"))
            .replace("[train]\n", "[train]\nloss_scale = \"dynamic\"\n"),
    };
    let exp = config::parse(Source {
        path: "bench-train.toml".into(),
        text,
    })
    .map_err(|e| BenchError::Config(Box::new(e)))?;
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            crate::train::train_with(&exp, backend, stats, &mut |_| {})
                .map_err(|e| BenchError::Sweep(crate::sweep::SweepError::Run(e)))?;
            Ok(t.elapsed().as_secs_f64())
        })
        .collect()
}

/// Workload 4's line: steps per second with the per-step statistics, and what they cost (runs
/// with and without them alternated, so that both see the same machine state).
fn train_line(
    backend: &Backend,
    repeat: usize,
    precision: Precision,
    out: &mut dyn Write,
) -> Result<(), BenchError> {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        with.extend(train(backend, 1, true, precision)?);
        without.extend(train(backend, 1, false, precision)?);
    }
    let (w, wo) = (median(&mut with), median(&mut without));
    let _ = writeln!(
        out,
        "train       {:>10.1} steps/s  1000 SGD steps, 10-100-50-25-10, batch 32 ({:.3} ms/step; without per-step statistics {:.3} ms: they cost {:.1} % of a step)",
        1000.0 / w,
        w,
        wo,
        100.0 * (w - wo) / w
    );
    Ok(())
}

/// Run the workloads named in `which` and print one line each.
pub fn run(
    which: &[String],
    (backend, precision): (&Backend, Precision),
    repeat: usize,
    configs: &Path,
    stack: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Spawn {
        exe: "gradscope".into(),
        source,
    })?;
    let _ = writeln!(
        out,
        "backend {}  precision {precision}  repeat {repeat}  (medians)",
        backend.kind.name()
    );
    let all = which.is_empty() || which.iter().any(|w| w == "all");
    let wants = |w: &str| all || which.iter().any(|x| x == w);
    if wants("seed") {
        let mut t = seed_suite(&exe, configs, backend, repeat)?;
        let _ = writeln!(
            out,
            "seed        {:>10.1} ms  three seed experiments, process start to report",
            1e3 * median(&mut t)
        );
    }
    if wants("throughput") {
        let passes = [
            ("throughput", Pass::Plain, "one network, autodiff"),
            (
                "throughput-stack",
                Pass::Stack(4),
                "stack of 4 x batch 128, autodiff",
            ),
            (
                "throughput-train",
                Pass::WrittenOut,
                "one network, backward written out",
            ),
        ];
        for (name, pass, how) in passes {
            let (mut t, flop) = throughput(backend, (1024, 16, 512), (pass, precision), repeat)?;
            let m = median(&mut t);
            let _ = writeln!(
                out,
                "{name:<16} {:>6.1} GFLOP/s  1024 x 16 x 512: {how} ({:.0} ms/step)",
                flop / m / 1e9,
                1e3 * m
            );
        }
    }
    if wants("sweep") {
        let mut t = sweep(backend, repeat, (stack, precision))?;
        let m = median(&mut t);
        let _ = writeln!(
            out,
            "sweep       {:>10.1} trials/s  1000 trials of the seed's deep network ({:.3} ms/trial)",
            1000.0 / m,
            m
        );
    }
    if wants("train") {
        train_line(backend, repeat, precision, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn throughput_flop_count_is_six_batch_sum_of_products() {
        // 6 · 512 · 16 · 1024² = 51 539 607 552 (issue 7's count).
        let (config, flop) = throughput_model(1024, 16, 512);
        assert_eq!(flop, 51_539_607_552.0);
        assert_eq!(config.widths().len(), 17, "16 Linear layers");
    }
}
