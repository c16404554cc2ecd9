//! The model crate on Burn's ndarray backend: parameter names and layouts, what a traced
//! forward pass records, and gradients derived by hand.

use burn::tensor::{Device, Tensor};
use gradscope_model::{
    Activation, HostTensor, Initializer, LayerWeights, Layers, Mlp, MlpConfig, MlpWeights, Record,
    collect_gradients, collect_parameters,
};

#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray().autodiff()
}

fn config() -> MlpConfig {
    MlpConfig {
        d_input: 3,
        hidden: vec![4, 2],
        d_output: 1,
        activations: vec![Activation::Relu; 2],
        bias: true,
        kernel_init: Initializer::GlorotUniform,
        bias_init: Initializer::Zeros,
        gain: 1.0,
        seed: 9,
    }
}

#[test]
fn parameters_have_stable_names_and_keras_layouts() {
    let model = config().init(&device());
    let params = collect_parameters(&model);
    let got: Vec<(String, Vec<usize>)> = params
        .iter()
        .map(|p| (p.name.clone(), p.tensor.shape.clone()))
        .collect();
    let want: Vec<(String, Vec<usize>)> = vec![
        ("layers.0.weight".into(), vec![3, 4]),
        ("layers.0.bias".into(), vec![4]),
        ("layers.1.weight".into(), vec![4, 2]),
        ("layers.1.bias".into(), vec![2]),
        ("layers.2.weight".into(), vec![2, 1]),
        ("layers.2.bias".into(), vec![1]),
    ];
    assert_eq!(got, want);
    // The device holds exactly the host draw.
    let host = config().draw_weights();
    assert_eq!(params[0].tensor, host.layers[0].weight);
    assert_eq!(params[1].tensor.data, vec![0.0; 4]);
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let a = config().draw_weights();
    assert_eq!(a, config().draw_weights());
    let b = MlpConfig {
        seed: 10,
        ..config()
    }
    .draw_weights();
    assert_ne!(a.layers[0].weight, b.layers[0].weight);
}

#[test]
fn no_bias_means_no_bias_parameter() {
    let model = MlpConfig {
        bias: false,
        ..config()
    }
    .init(&device());
    let names: Vec<String> = collect_parameters(&model)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        vec!["layers.0.weight", "layers.1.weight", "layers.2.weight"]
    );
}

#[test]
fn traced_forward_equals_plain_forward_and_records_every_layer() {
    let dev = device();
    let model = config().init(&dev);
    let x = Tensor::<2>::from_data([[0.5f32, -1.0, 2.0], [1.0, 1.0, -0.5]], &dev);
    let plain = HostTensor::from_tensor(model.forward(x.clone(), Record::OUTPUT).output);
    let trace = model.forward(x, Record::ALL);
    assert_eq!(HostTensor::from_tensor(trace.output.clone()), plain);
    let z_shapes: Vec<Vec<usize>> = trace
        .pre_activations
        .iter()
        .map(|z| z.dims().to_vec())
        .collect();
    assert_eq!(z_shapes, vec![vec![2, 4], vec![2, 2], vec![2, 1]]);
    assert_eq!(trace.activations.len(), 2);
    assert_eq!(trace.delta_probes.len(), 3);
    // Activations are relu of the pre-activations.
    let z0 = HostTensor::from_tensor(trace.pre_activations[0].clone());
    let a0 = HostTensor::from_tensor(trace.activations[0].clone());
    assert_eq!(
        a0.data,
        z0.data.iter().map(|v| v.max(0.0)).collect::<Vec<_>>()
    );
}

/// One hidden unit: x = [2], W1 = [[3]], b1 = [-1], relu, W2 = [[0.5]], b2 = [0.25].
///   z1 = 2·3 - 1 = 5, a1 = 5, out = 0.5·5 + 0.25 = 2.75, loss = out² = 7.5625
///   δ2 = 2·out = 5.5; ∂L/∂W2 = a1·δ2 = 27.5; ∂L/∂b2 = 5.5
///   δ1 = δ2·W2·relu'(5) = 2.75; ∂L/∂W1 = x·δ1 = 5.5; ∂L/∂b1 = 2.75
fn hand_derived_network() -> MlpWeights {
    MlpWeights {
        layers: vec![
            LayerWeights {
                weight: HostTensor::new(vec![1, 1], vec![3.0]),
                bias: Some(HostTensor::new(vec![1], vec![-1.0])),
            },
            LayerWeights {
                weight: HostTensor::new(vec![1, 1], vec![0.5]),
                bias: Some(HostTensor::new(vec![1], vec![0.25])),
            },
        ]
        .into(),
        activations: vec![Activation::Relu],
    }
}

#[test]
fn hand_derived_gradients_and_deltas() {
    let weights = hand_derived_network();
    let dev = device();
    let model = Mlp::from_weights(&weights, &dev);
    let trace = model.forward(Tensor::<2>::from_data([[2.0f32]], &dev), Record::ALL);
    let out = trace.output.clone();
    let loss = (out.clone() * out).sum();
    let mut grads = loss.backward();
    let g: Vec<(String, Vec<f32>)> = collect_gradients(&model, &mut grads)
        .unwrap_or_else(|missing| panic!("no gradient for {missing:?}"))
        .into_iter()
        .map(|n| (n.name, n.tensor.data))
        .collect();
    assert_eq!(
        g,
        vec![
            ("layers.0.weight".to_string(), vec![5.5]),
            ("layers.0.bias".to_string(), vec![2.75]),
            ("layers.1.weight".to_string(), vec![27.5]),
            ("layers.1.bias".to_string(), vec![5.5]),
        ]
    );
    let deltas: Vec<Vec<f32>> = trace
        .delta_probes
        .iter()
        .map(|p| {
            p.grad(&grads)
                .map(|t| HostTensor::from_tensor(t).data)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(deltas, vec![vec![2.75], vec![5.5]]);
}

/// The engine's written-out backward pass on a device without autodiff gives the hand-derived
/// values of [`hand_derived_network`]: δ_L = ∂(out²)/∂out = 2·2.75 = 5.5.
#[test]
#[allow(deprecated)]
fn the_written_out_backward_gives_the_hand_derived_values() {
    let dev = Device::ndarray();
    let model = Mlp::from_weights(&hand_derived_network(), &dev);
    let trace = model.forward(Tensor::<2>::from_data([[2.0f32]], &dev), Record::PASS);
    assert!(trace.delta_probes.is_empty(), "PASS records no probes");
    let delta = trace.output.clone().mul_scalar(2.0);
    let b = model.backward(&trace, delta);
    let host = |t: &Tensor<2>| HostTensor::from_tensor(t.clone()).data;
    assert_eq!(
        b.deltas.iter().map(host).collect::<Vec<_>>(),
        vec![vec![2.75], vec![5.5]]
    );
    assert_eq!(
        b.weights.iter().map(host).collect::<Vec<_>>(),
        vec![vec![5.5], vec![27.5]]
    );
    let biases: Vec<Vec<f32>> = b.biases.iter().flatten().map(host).collect();
    assert_eq!(biases, vec![vec![2.75], vec![5.5]]);
    assert_eq!(b.biases[0].as_ref().map(|t| t.dims()), Some([1, 1]));
}

/// A forward pass keeps only what it is asked to.
#[test]
fn a_forward_records_what_it_is_asked_for() {
    let dev = device();
    let model = config().init(&dev);
    let x = || Tensor::<2>::from_data([[0.5f32, -1.0, 2.0]], &dev);
    let out = model.forward(x(), Record::OUTPUT);
    assert!(out.pre_activations.is_empty() && out.activations.is_empty());
    assert!(out.delta_probes.is_empty());
    let pass = model.forward(x(), Record::PASS);
    assert_eq!((pass.pre_activations.len(), pass.activations.len()), (3, 2));
    assert_eq!(
        HostTensor::from_tensor(out.output),
        HostTensor::from_tensor(pass.output)
    );
}
