//! `gradscope compare`: the same experiments on several backends, from the same host-drawn
//! weights and inputs; every flag is checked and every backend opened before anything runs.

use std::io::Write;
use std::path::PathBuf;

use crate::backend::{self, Backend, BackendKind};
use crate::compare::{self, BackendInfo};
use crate::config::{self, Experiment};
use crate::run;

use super::settings;
use super::{CommandError, CommandResult, ExitStatus, Format};

/// `gradscope compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Experiment files (TOML), or directories of them; plain experiments, not sweeps.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Backends to compare, the reference first: comma-separated or repeated [default:
    /// ndarray,flex,wgpu; with --precision, flex].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub backend: Vec<BackendKind>,
    /// Precisions to compare, the reference first, e.g. `f64,f32,bf16,f16`: every backend in
    /// every precision (backend × precision, the first backend's first precision the
    /// reference), each tensor's normwise error held to the bound of its precision and the
    /// reference's; past it, or where a value is finite in one run only, exit 4. Against an f64
    /// reference each tensor also counts its underflows.
    #[arg(long, value_delimiter = ',', value_name = "P")]
    pub precision: Vec<String>,
    /// wgpu adapter: default, cpu, discrete:N, integrated:N or virtual:N.
    #[arg(long, value_name = "SELECTOR")]
    pub device: Option<String>,
    /// Largest relative difference allowed (below 1 % of a tensor's largest value, relative to
    /// that largest value); past it, or where a value is finite on one backend only, exit 4.
    #[arg(
        long,
        value_name = "REL",
        default_value_t = 1e-4,
        allow_negative_numbers = true
    )]
    pub tolerance: f64,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Override a config key, e.g. `--set model.activation=gelu` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run even when the memory estimate exceeds the memory available.
    #[arg(long)]
    pub allow_large: bool,
    /// Compare the two backward passes instead of the backends: on each backend, Burn's
    /// autodiff (the reference) against the backward pass written out (δ_l, then each
    /// gradient, as training runs it); exit 4 past `--tolerance`. One backend is enough.
    #[arg(long)]
    pub check_backward: bool,
}

/// The checked plan: experiments, opened backends, and the precisions compared (empty: the
/// backends in each experiment's own precision).
struct Plan {
    experiments: Vec<Experiment>,
    backends: Vec<Backend>,
    precisions: Vec<config::Precision>,
}

/// `--precision`'s list, checked: known names, none twice.
fn precisions(args: &CompareArgs) -> Result<Vec<config::Precision>, Vec<String>> {
    let mut list = Vec::new();
    for name in &args.precision {
        let p = config::Precision::parse(name.trim()).ok_or_else(|| {
            vec![format!(
                "--precision {name}: unknown precision, expected one of: f64, f32, bf16, f16"
            )]
        })?;
        if list.contains(&p) {
            return Err(vec![format!("--precision names {p} twice")]);
        }
        list.push(p);
    }
    if args.check_backward && !list.is_empty() {
        return Err(vec![
            "--check-backward compares the backward passes in the file's precision; leave out --precision".into(),
        ]);
    }
    Ok(list)
}

fn plan(args: &CompareArgs) -> Result<Plan, Vec<String>> {
    let precisions = precisions(args)?;
    let kinds = backend_kinds(args, precisions.len())?;
    // The memory is checked below, for all the runs a report holds at once.
    let loaded = settings::load_each(&args.files, false, &args.sets, None).map_err(|e| vec![e])?;
    let available = settings::available_memory(args.allow_large);
    let mut errors = Vec::new();
    let mut experiments = Vec::new();
    for (file, result) in loaded {
        match result {
            Ok(e) if e.sweep.is_some() => errors.push(format!(
                "{}: this file is a sweep; compare runs one experiment on each backend (copy one grid point into a plain file)",
                file.display()
            )),
            // A training run is many passes whose weights each step changes: comparing its
            // first pass alone would read as comparing the run.
            Ok(e) if e.task.train().is_some() => errors.push(format!(
                "{}: this file is a training run ([train]); compare measures one gradient on each backend\nhint: run it with --backend B on each backend and compare the records' steps.jsonl, or drop [train] to compare its first pass",
                file.display()
            )),
            Ok(e) if e.precision != config::Precision::F32 && args.precision.is_empty() => {
                errors.push(format!(
                    "{}: precision `{}`: compare's --tolerance is an f32 bound\nhint: compare it with its precision's own bound: --precision f32,{}",
                    file.display(),
                    e.precision,
                    e.precision
                ))
            }
            Ok(e) => {
                let runs = run_precisions(&e, kinds.len(), &precisions);
                match check_runs_memory(&e, &runs, available) {
                    Ok(()) => experiments.push(e),
                    Err(m) => errors.push(m),
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let backends = open_backends(kinds, args.device.as_deref())?;
    // Every pair runs: each backend must have each precision; f64 is trusted where the
    // element-wise operations each network needs are accurate in f64 on the device.
    let mut refused = Vec::new();
    for b in &backends {
        for r in settings::refused_precisions(b, &precisions) {
            refused.push(format!(
                "--precision {} on {}: {}",
                r.precision,
                b.kind.name(),
                r.reason
            ));
        }
    }
    if precisions.contains(&config::Precision::F64) {
        for b in &backends {
            for e in &experiments {
                if let Err(err) = settings::check_f64(b, &e.model.activations) {
                    refused.push(format!(
                        "{}: --precision f64 on {}: {err}",
                        e.path.display(),
                        b.kind.name()
                    ));
                }
            }
        }
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    Ok(Plan {
        experiments,
        backends,
        precisions,
    })
}

/// The precision of each run one report of `exp` holds: every backend (`backends` of them)
/// in each precision compared, or in the file's own.
fn run_precisions(
    exp: &Experiment,
    backends: usize,
    precisions: &[config::Precision],
) -> Vec<config::Precision> {
    let each = if precisions.is_empty() {
        vec![exp.precision]
    } else {
        precisions.to_vec()
    };
    (0..backends).flat_map(|_| each.iter().copied()).collect()
}

/// An upper estimate of the bytes comparing `runs` (their precisions) of `exp` needs: the
/// widest run's own estimate ([`Experiment::memory_estimate`], one run is on the device at a
/// time), every run's outcome kept on the host until the report is built (per input case the
/// input, output, z_l, a_l and δ_l, and the weights and their gradients, at 4 bytes a value,
/// 12 in f64 with its f32 copy), and while a case is compared, each run's compared values
/// (loss, output, gradients, δ_l) widened to f64 (8 bytes; an f64 run's are read in place).
fn compare_estimate(exp: &Experiment, runs: &[config::Precision]) -> u128 {
    use config::Precision::F64;
    let (params, units) = exp.sizes();
    let (d_in, d_out) = (exp.model.d_input as u128, exp.model.d_output as u128);
    let batches = exp.inputs.iter().map(|c| c.batch as u128);
    let per_case: u128 = batches
        .clone()
        .map(|b| b * (3 * units + d_in + d_out))
        .sum();
    let largest = batches.max().unwrap_or(0);
    let widest = runs
        .iter()
        .map(|&p| {
            let mut e = exp.clone();
            e.precision = p;
            e.memory_estimate()
        })
        .max()
        .unwrap_or(0);
    let host = |p: config::Precision| if p == F64 { 12 } else { 4 } * (2 * params + per_case);
    let widened = 8 * (1 + largest * (d_out + units) + params);
    let narrow = runs.iter().filter(|p| **p != F64).count() as u128;
    widest + runs.iter().map(|&p| host(p)).sum::<u128>() + narrow * widened
}

/// [`compare_estimate`] against the memory `available` (`None`: not checked).
fn check_runs_memory(
    exp: &Experiment,
    runs: &[config::Precision],
    available: Option<u128>,
) -> Result<(), String> {
    let need = compare_estimate(exp, runs);
    match available {
        Some(have) if need > have => {
            let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
            Err(format!(
                "{}: comparing its {} runs needs about {:.1} GiB (one run on the device, every run's tensors kept on the host until they are compared), more than the {:.1} GiB available\nhint: compare fewer backends or precisions at once, make the network or batch smaller, or pass --allow-large to run it anyway",
                exp.path.display(),
                runs.len(),
                gib(need),
                gib(have)
            ))
        }
        _ => Ok(()),
    }
}

/// The backends to compare, checked: distinct, at least two runs (backends × `precisions`),
/// and wgpu among them with `--device`; and a usable `--tolerance`.
fn backend_kinds(args: &CompareArgs, precisions: usize) -> Result<Vec<BackendKind>, Vec<String>> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        return Err(vec![format!(
            "--tolerance {}: need a finite number ≥ 0",
            args.tolerance
        )]);
    }
    let mut kinds: Vec<BackendKind> = Vec::new();
    let default = match precisions {
        0 => &[BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu][..],
        _ => &[BackendKind::Flex][..],
    };
    let asked = if args.backend.is_empty() {
        default
    } else {
        &args.backend[..]
    };
    for &k in asked {
        if kinds.contains(&k) {
            return Err(vec![format!("--backend names {} twice", k.name())]);
        }
        kinds.push(k);
    }
    if args.device.is_some() && !kinds.contains(&BackendKind::Wgpu) {
        return Err(vec![
            "--device selects a wgpu adapter; no backend compared is wgpu".into(),
        ]);
    }
    if kinds.len() * precisions.max(1) < 2 && !args.check_backward {
        return Err(vec![
            "compare needs at least two backends, the reference first: e.g. --backend ndarray,flex (or two precisions: --precision f32,f16)"
                .into(),
        ]);
    }
    Ok(kinds)
}

/// Open each backend (wgpu on `device`, if given).
fn open_backends(
    kinds: Vec<BackendKind>,
    device: Option<&str>,
) -> Result<Vec<crate::backend::Backend>, Vec<String>> {
    let mut backends = Vec::new();
    for k in kinds {
        let selector = (k == BackendKind::Wgpu).then_some(device).flatten();
        match backend::open(k, selector) {
            Ok(b) => backends.push(b),
            Err(e) => {
                // The backend's own hint names `run`'s flag; compare needs two backends.
                let m = e.to_string().replace(
                    "or use --backend ndarray",
                    "or compare the CPU backends only: --backend ndarray,flex",
                );
                return Err(vec![m]);
            }
        }
    }
    Ok(backends)
}

/// Run `compare`; returns the exit code.
pub fn run(args: &CompareArgs, out: &mut dyn Write) -> CommandResult {
    let plan = plan(args).map_err(|messages| CommandError {
        status: ExitStatus::BadInput,
        messages,
    })?;
    let mut code = ExitStatus::Ok;
    // One report per experiment (per experiment and backend with --check-backward), each run,
    // printed and dropped before the next runs.
    let mut i = 0;
    for exp in &plan.experiments {
        for runs in run_sets(args, exp, &plan.backends, &plan.precisions) {
            let status = print_report(args, exp, &runs?, &plan.precisions, i, out)?;
            if status == ExitStatus::Failure {
                // Standard output is gone: nothing more can be said.
                return Ok(status);
            }
            code = code.max(status);
            i += 1;
        }
    }
    Ok(code)
}

/// The runs one report compares, the reference first, each with its precision.
type Runs = Vec<(BackendInfo, config::Precision, run::Outcome)>;

/// The runs of `exp` to compare, the reference first, one set per report: the backends, or
/// with --check-backward, for each backend its autodiff pass and its written-out one. Lazy:
/// a set runs when it is asked for.
fn run_sets<'a>(
    args: &'a CompareArgs,
    exp: &'a Experiment,
    backends: &'a [Backend],
    precisions: &'a [config::Precision],
) -> Box<dyn Iterator<Item = Result<Runs, CommandError>> + 'a> {
    let info = |b: &Backend, how: &str| BackendInfo {
        name: format!("{}{how}", b.kind.name()),
        adapter: b.adapter.clone(),
    };
    let failed = move |b: &Backend, e: &dyn std::fmt::Display| {
        CommandError::failure(format!("{} on {}: {e}", exp.path.display(), b.kind.name()))
    };
    if args.check_backward {
        Box::new(backends.iter().map(move |b| {
            let autodiff = run::execute(exp, b).map_err(|e| failed(b, &e))?;
            let manual = crate::train::manual_outcome(exp, b).map_err(|e| failed(b, &e))?;
            Ok(vec![
                (info(b, " autodiff"), exp.precision, autodiff),
                (info(b, " manual"), exp.precision, manual),
            ])
        }))
    } else if !precisions.is_empty() {
        // Backend × precision, backend-major: the same host-drawn network in each.
        Box::new(std::iter::once_with(move || {
            let mut runs = Vec::new();
            for b in backends {
                for &p in precisions {
                    let mut e = exp.clone();
                    e.precision = p;
                    let outcome = run::execute(&e, b).map_err(|err| failed(b, &err))?;
                    runs.push((info(b, &format!(" {p}")), p, outcome));
                }
            }
            Ok(runs)
        }))
    } else {
        Box::new(std::iter::once_with(move || {
            backends
                .iter()
                .map(|b| {
                    Ok((
                        info(b, ""),
                        exp.precision,
                        run::execute(exp, b).map_err(|e| failed(b, &e))?,
                    ))
                })
                .collect()
        }))
    }
}

/// Compare `runs` of `exp` and print the report, the `i`-th of the command; its status.
fn print_report(
    args: &CompareArgs,
    exp: &Experiment,
    runs: &Runs,
    precisions: &[config::Precision],
    i: usize,
    out: &mut dyn Write,
) -> CommandResult {
    let mut report = if precisions.is_empty() {
        let plain: Vec<(BackendInfo, &run::Outcome)> =
            runs.iter().map(|(b, _, o)| (b.clone(), o)).collect();
        compare::compare(&exp.name, exp.seed, &plain, args.tolerance)
    } else {
        compare::compare_precisions(&exp.name, exp.seed, runs, exp.loss).map_err(|e| {
            CommandError::bad_input(format!("{}: --precision: {e}", exp.path.display()))
        })?
    };
    if args.check_backward {
        report.compared = gradscope_report::compare::Compared::BackwardPasses;
    }
    let sep = if i > 0 { "\n" } else { "" };
    let text = match args.format {
        Format::Table => Ok(format!(
            "{sep}{}",
            gradscope_render::compare::table(&report)
        )),
        Format::Markdown => Ok(format!(
            "{sep}{}",
            gradscope_render::compare::markdown(&report)
        )),
        Format::Json => Ok(format!(
            "{}\n",
            serde_json::to_string(&report).unwrap_or_default()
        )),
        Format::Csv => gradscope_render::compare::csv(&report, i == 0),
    };
    let written = match text {
        Ok(t) => out.write_all(t.as_bytes()).and_then(|()| out.flush()),
        Err(e) => {
            return Err(CommandError::failure(format!("cannot write CSV: {e}")));
        }
    };
    if written.is_err() {
        return Ok(ExitStatus::Failure);
    }
    Ok(if report.agree {
        ExitStatus::Ok
    } else {
        ExitStatus::Disagree
    })
}

#[cfg(test)]
mod tests {
    use super::{check_runs_memory, compare_estimate, run_precisions};
    use crate::config::{self, Precision, Source};

    /// input 2, hidden [3], output 1, with biases: 2·3 + 3 + 3·1 + 1 = 13 parameters and
    /// 3 + 1 = 4 units; cases of batch 5 and 2.
    fn small() -> crate::config::Experiment {
        let text = "name = \"m\"\ndescription = \"d\"\nseed = 1\n[model]\ninput = 2\nhidden = [3]\n\
                    output = 1\nactivation = \"relu\"\n[[inputs]]\nname = \"a\"\nbatch = 5\n\
                    distribution = \"normal\"\n[[inputs]]\nname = \"b\"\nbatch = 2\n\
                    distribution = \"normal\"\n";
        config::parse(Source {
            path: "m.toml".into(),
            text: text.into(),
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The estimate worked out by hand for 2 backends × (f64, f32): one run's own estimate
    /// in f64 (12 · (4·13 + 6·5·4 + 2·5·2) = 2304), four outcomes on the host (per case
    /// batch · (3·4 + 2 + 1): 5·15 + 2·15 = 105 values, plus 2·13: 131 values, 12 bytes each
    /// in f64 and 4 in f32: 2·1572 + 2·524 = 4192), and the two f32 runs' compared values
    /// widened to f64 (8 · (1 + 5·(1 + 4) + 13) = 312 each): 2304 + 4192 + 624 = 7120.
    #[test]
    fn the_compare_estimate_counts_every_run_it_holds() {
        let exp = small();
        let runs = run_precisions(&exp, 2, &[Precision::F64, Precision::F32]);
        assert_eq!(
            runs,
            [
                Precision::F64,
                Precision::F32,
                Precision::F64,
                Precision::F32
            ]
        );
        assert_eq!(compare_estimate(&exp, &runs), 7120);
        // In the file's own precision (f32), 3 backends: 768 + 3·524 + 3·312.
        let own = run_precisions(&exp, 3, &[]);
        assert_eq!(compare_estimate(&exp, &own), 768 + 3 * 524 + 3 * 312);
        // Room for one run but not for all four is refused, naming the runs.
        let one_run = {
            let mut e = exp.clone();
            e.precision = Precision::F64;
            e.memory_estimate()
        };
        assert_eq!(one_run, 2304);
        let refused = check_runs_memory(&exp, &runs, Some(one_run))
            .err()
            .unwrap_or_else(|| panic!("4 runs fit in one run's memory"));
        assert!(refused.contains("comparing its 4 runs"), "{refused}");
        assert!(check_runs_memory(&exp, &runs, Some(7120)).is_ok());
        assert!(
            check_runs_memory(&exp, &runs, None).is_ok(),
            "--allow-large"
        );
    }
}
