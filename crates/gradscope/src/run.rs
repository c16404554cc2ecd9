//! Running an experiment: draw the weights and inputs on the host, load them onto the backend,
//! and let Burn's autodiff compute every gradient (and δ per layer) for each input case.

use burn::tensor::Tensor;
use gradscope_model::rng::input_stream;
use gradscope_model::{HostRng, HostTensor, Mlp, MlpWeights, NamedTensor, collect_gradients};

use crate::backend::Backend;
use crate::config::{Distribution, Experiment, InputCase, InputSource, Loss};

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
    /// ∂loss/∂parameter, in parameter order (`layers.0.weight`, `layers.0.bias`, ...).
    pub grads: Vec<NamedTensor>,
    /// δ_l = ∂loss/∂z_l for each layer, `[batch, d_l]`.
    pub deltas: Vec<HostTensor>,
    /// Each layer's output: a_l = φ(z_l) for hidden layers, then the network output.
    pub layer_outputs: Vec<HostTensor>,
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
}

/// The input of case `index` of `exp`, drawn on the host from the experiment's seed.
pub fn draw_input(exp: &Experiment, index: usize) -> HostTensor {
    let case: &InputCase = &exp.inputs[index];
    let distribution = match &case.source {
        InputSource::Distribution(d) => *d,
        InputSource::File { data, .. } => return data.clone(),
    };
    let mut rng = HostRng::new(exp.seed, input_stream(index));
    let n = case.batch * exp.model.d_input;
    let data = (0..n)
        .map(|_| match distribution {
            Distribution::Normal { mean, std } => rng.normal(mean, std) as f32,
            Distribution::Uniform { low, high } => rng.uniform(low, high) as f32,
            Distribution::Constant { value } => value as f32,
        })
        .collect();
    HostTensor::new(vec![case.batch, exp.model.d_input], data)
}

/// The loss of `output` as a one-element tensor.
pub fn loss_of(loss: Loss, output: Tensor<2>) -> Tensor<1> {
    match loss {
        // x·x rather than powf(x, 2): a power of a negative base is NaN on some GPU drivers.
        Loss::SumSquares => (output.clone() * output).sum(),
        Loss::MeanSquares => (output.clone() * output).mean(),
        Loss::Sum => output.sum(),
        Loss::Mean => output.mean(),
        Loss::Mse { target } => {
            let diff = output.sub_scalar(target);
            (diff.clone() * diff).mean()
        }
    }
}

/// Run every input case of `exp` on `backend`.
pub fn execute(exp: &Experiment, backend: &Backend) -> Result<Outcome, RunError> {
    let weights = match &exp.weights {
        Some(loaded) => loaded.weights.clone(),
        None => exp.model.draw_weights(),
    };
    let model = Mlp::from_weights(&weights, &backend.device);
    let cases = (0..exp.inputs.len())
        .map(|i| run_case(exp, &model, backend, i))
        .collect::<Result<_, _>>()?;
    Ok(Outcome { weights, cases })
}

fn run_case(
    exp: &Experiment,
    model: &Mlp,
    backend: &Backend,
    index: usize,
) -> Result<CaseOutcome, RunError> {
    let input = draw_input(exp, index);
    let x: Tensor<2> = input.to_device(&backend.device);
    let trace = model.forward_traced(x, true);
    let loss = loss_of(exp.loss, trace.output.clone());
    let grads = loss.backward();
    let named = collect_gradients(model, &grads).map_err(RunError::MissingGradient)?;
    let deltas = trace
        .delta_probes
        .iter()
        .enumerate()
        .map(|(l, probe)| {
            probe
                .grad(&grads)
                .map(HostTensor::from_tensor)
                .ok_or_else(|| RunError::MissingGradient(vec![format!("delta.layers.{l}")]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let loss_value = HostTensor::from_tensor(loss).data[0];
    let output = HostTensor::from_tensor(trace.output.detach());
    let mut layer_outputs: Vec<HostTensor> = trace
        .activations
        .into_iter()
        .map(|a| HostTensor::from_tensor(a.detach()))
        .collect();
    layer_outputs.push(output.clone());
    Ok(CaseOutcome {
        name: exp.inputs[index].name.clone(),
        input,
        output,
        loss: loss_value,
        grads: named,
        deltas,
        layer_outputs,
    })
}
