//! Running an experiment: draw the weights and inputs on the host, load them onto the backend,
//! and let Burn's autodiff compute every gradient (and δ per layer) for each input case.

use burn::tensor::Tensor;
use gradscope_model::rng::input_stream;
use gradscope_model::{
    HostRng, HostTensor, Layers, MlpStack, MlpWeights, NamedTensor, Record, split_trials,
    stack_trials,
};
use gradscope_report::names;
use rayon::prelude::*;

use crate::backend::Backend;
use crate::config::{Distribution, Experiment, InputCase, InputSource};

/// Everything one input case produced.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// The input, `[batch, d_input]`.
    pub input: HostTensor,
    /// The network's output, `[batch, d_output]`.
    pub output: HostTensor,
    /// The loss.
    pub loss: f32,
    /// The loss in f64: as an f64 run computed it, else `loss` widened (exactly).
    pub loss_f64: f64,
    /// ∂loss/∂parameter, in parameter order (`layers.0.weight`, `layers.0.bias`, ...).
    pub grads: Vec<NamedTensor>,
    /// δ_l = ∂loss/∂z_l for each layer, `[batch, d_l]`.
    pub deltas: Vec<HostTensor>,
    /// Each layer's output: a_l = φ(z_l) for hidden layers, then the network output.
    pub layer_outputs: Vec<HostTensor>,
    /// z_l, each layer's pre-activation, `[batch, d_l]`: where a non-finite value is born in
    /// the forward pass. Recorded by [`execute`]; by [`execute_stack`] only where asked (a
    /// sweep over precision), else empty.
    pub pre_activations: Vec<HostTensor>,
}

/// Everything an experiment produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The parameters the network was built from.
    pub weights: MlpWeights,
    /// One per input case, in file order.
    pub cases: Vec<CaseOutcome>,
}

/// A failure while running (not the user's input): reported with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Autodiff produced no gradient for some parameters.
    #[error("Burn's autodiff returned no gradient for {0:?}")]
    MissingGradient(Vec<String>),
    /// Training was asked of an experiment without `[train]`.
    #[error("experiment `{0}` has no [train] table to train with")]
    NotTraining(String),
    /// Trials that were to run as one stack do not share an architecture.
    #[error("cannot run these trials as one stack: {0}")]
    Stack(#[from] gradscope_model::StackError),
}

/// The input of case `index` of `exp`, drawn on the host from the experiment's seed.
pub fn draw_input(exp: &Experiment, index: usize) -> HostTensor {
    let case: &InputCase = &exp.inputs[index];
    let distribution = match &case.source {
        InputSource::Distribution(d) => *d,
        InputSource::File { data, .. } => return (**data).clone(),
    };
    let mut rng = HostRng::new(exp.seed, input_stream(index));
    draw(distribution, &mut rng, [case.batch, exp.model.d_input])
}

/// `rows × cols` values of `distribution` from `rng`, in f32: every input drawn, a plain
/// case's and a training batch's alike.
pub fn draw(distribution: Distribution, rng: &mut HostRng, [rows, cols]: [usize; 2]) -> HostTensor {
    let n = rows * cols;
    let data = match distribution {
        Distribution::Normal { mean, std } => rng.normals_f32(n, mean, std),
        Distribution::Uniform { low, high } => {
            (0..n).map(|_| rng.uniform(low, high) as f32).collect()
        }
        Distribution::Constant { value } => vec![value as f32; n],
    };
    HostTensor::new(vec![rows, cols], data)
}

/// The parameters `exp` runs with: loaded from its weights file, or drawn from its seed.
pub fn weights_of(exp: &Experiment) -> MlpWeights {
    match &exp.weights {
        Some(loaded) => loaded.weights.clone(),
        None => exp.model.draw_weights(),
    }
}

/// δ_l, the gradient of probe `l` of a traced pass, read back to the host (and taken out of
/// `grads`, see [`MlpStack::gradients`]).
fn delta<const D: usize>(
    probe: &Tensor<D>,
    l: usize,
    grads: &mut burn::tensor::Gradients,
) -> Result<HostTensor, RunError> {
    probe
        .grad_remove(grads)
        .map(HostTensor::from_tensor)
        .ok_or_else(|| RunError::MissingGradient(vec![names::delta(l)]))
}

/// Split a stacked `[T, ...]` host tensor and append trial `t`'s part to `per_trial[t]`.
fn push_split(per_trial: &mut [Vec<HostTensor>], stacked: HostTensor) {
    for (t, part) in split_trials(stacked).into_iter().enumerate() {
        per_trial[t].push(part);
    }
}

/// Run every input case of `exp` on `backend`: the stack of one network
/// ([`execute_stack`]), whose products are one network's (`gradscope_model::dense`), with
/// every z_l kept.
pub fn execute(exp: &Experiment, backend: &Backend) -> Result<Outcome, RunError> {
    let mut outcomes = execute_stack(std::slice::from_ref(exp), backend, true)?;
    // One experiment in, one outcome out.
    outcomes
        .pop()
        .ok_or(RunError::Stack(gradscope_model::StackError::Empty))
}

/// Run `exps`, experiments that differ only in their seeds (the trials of one sweep point), as
/// one stack of networks: each input case is one forward and one backward pass over all of
/// them ([`MlpStack`]); a plain run is the stack of one ([`execute`]). Gives the same outcome
/// to each experiment as it gets alone, in order, with z_l kept only where `keep_z` asks (a
/// sweep over precision measures where each trial leaves the range; others keep only whether
/// anything was non-finite).
pub fn execute_stack(
    exps: &[Experiment],
    backend: &Backend,
    keep_z: bool,
) -> Result<Vec<Outcome>, RunError> {
    // Trials draw their weights independently: in parallel.
    let weights: Vec<MlpWeights> = exps.par_iter().map(weights_of).collect();
    let Some(first) = exps.first() else {
        return Ok(Vec::new());
    };
    let mut stack = load_stack(&weights, first, backend)?;
    execute_loaded(exps, weights, &mut stack, backend, keep_z)
}

/// `weights` (one network per trial, all of one architecture) stacked on `backend`'s device in
/// `exp`'s precision, for [`execute_loaded`].
pub fn load_stack(
    weights: &[MlpWeights],
    exp: &Experiment,
    backend: &Backend,
) -> Result<MlpStack, RunError> {
    let refs: Vec<&MlpWeights> = weights.iter().collect();
    let dtype = crate::backend::dtype(exp.precision);
    Ok(MlpStack::from_weights_as(&refs, &backend.device, dtype)?)
}

/// [`execute_stack`] on networks already drawn and loaded: `stack` holds `weights` (one per
/// experiment, in order) in the experiments' precision, and runs with their activations.
/// A sweep loads one stack for the points that differ only in their activations.
///
/// # Panics
/// Panics if `stack` does not hold one network per experiment (a programming error).
pub fn execute_loaded(
    exps: &[Experiment],
    weights: Vec<MlpWeights>,
    stack: &mut MlpStack,
    backend: &Backend,
    keep_z: bool,
) -> Result<Vec<Outcome>, RunError> {
    assert!(
        stack.trials == exps.len() && weights.len() == exps.len(),
        "execute_loaded: {} networks on the device, {} drawn, for {} experiments",
        stack.trials,
        weights.len(),
        exps.len()
    );
    let Some(first) = exps.first() else {
        return Ok(Vec::new());
    };
    let dtype = crate::backend::dtype(first.precision);
    if let Some(w) = weights.first() {
        stack.activations.clone_from(&w.activations);
    }
    let mut cases: Vec<Vec<CaseOutcome>> = exps.iter().map(|_| Vec::new()).collect();
    for index in 0..first.inputs.len() {
        let inputs: Vec<HostTensor> = exps.iter().map(|exp| draw_input(exp, index)).collect();
        let x: Tensor<3> = stack_trials(&inputs).to_device_as(&backend.device, dtype);
        let record = Record {
            pre_activations: keep_z,
            ..Record::ALL
        };
        let trace = stack.forward(x, record);
        let losses = crate::loss::per_trial(first.loss, trace.output.clone());
        let mut grads = losses.clone().sum().backward();
        let named = stack
            .gradients(&mut grads)
            .map_err(RunError::MissingGradient)?;
        let mut deltas: Vec<Vec<HostTensor>> = exps.iter().map(|_| Vec::new()).collect();
        for (l, probe) in trace.delta_probes.iter().enumerate() {
            push_split(&mut deltas, delta(probe, l, &mut grads)?);
        }
        let loss_values = HostTensor::from_tensor(losses);
        let loss_values = loss_values
            .data
            .iter()
            .zip(loss_values.values_f64().iter())
            .map(|(&l, &w)| (l, w))
            .collect::<Vec<_>>();
        let outputs = split_trials(HostTensor::from_tensor(trace.output.detach()));
        let mut layer_outputs: Vec<Vec<HostTensor>> = exps.iter().map(|_| Vec::new()).collect();
        for a in trace.activations {
            push_split(&mut layer_outputs, HostTensor::from_tensor(a.detach()));
        }
        let mut pre_activations: Vec<Vec<HostTensor>> = exps.iter().map(|_| Vec::new()).collect();
        for z in trace.pre_activations {
            push_split(&mut pre_activations, HostTensor::from_tensor(z.detach()));
        }
        let per_trial = inputs
            .into_iter()
            .zip(outputs)
            .zip(named)
            .zip(deltas)
            .zip(layer_outputs)
            .zip(loss_values);
        let mut pre_activations = pre_activations.into_iter();
        for (t, (((((input, output), grads), deltas), mut layer_outputs), (loss, loss_f64))) in
            per_trial.enumerate()
        {
            layer_outputs.push(output.clone());
            cases[t].push(CaseOutcome {
                name: exps[t].inputs[index].name.clone(),
                input,
                output,
                loss,
                loss_f64,
                grads,
                deltas,
                layer_outputs,
                pre_activations: pre_activations.next().unwrap_or_default(),
            });
        }
    }
    Ok(weights
        .into_iter()
        .zip(cases)
        .map(|(weights, cases)| Outcome { weights, cases })
        .collect())
}
