//! `MlpStack` against `Mlp`: networks run as one stack give each network exactly what it gives
//! when run alone (the reference is the one-network path, `Mlp` with Burn's `Linear`).

use burn::tensor::{Device, Tensor};
use gradscope_model::{
    Activation, HostRng, HostTensor, Initializer, Layers, Mlp, MlpConfig, MlpStack, MlpWeights,
    NamedTensor, Record, StackError, collect_gradients, split_trials, stack_trials,
};

#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray().autodiff()
}

fn flex() -> Device {
    Device::flex().autodiff()
}

fn config(seed: u64, activation: Activation, bias: bool) -> MlpConfig {
    MlpConfig {
        d_input: 5,
        hidden: vec![7, 6, 4],
        d_output: 3,
        activations: vec![activation; 3],
        bias,
        kernel_init: Initializer::HeNormal,
        // Non-zero biases, so that a wrong bias (or bias gradient) cannot go unnoticed.
        bias_init: Initializer::Uniform {
            low: -0.5,
            high: 0.5,
        },
        gain: 1.0,
        seed,
    }
}

fn input(seed: u64, batch: usize, width: usize) -> HostTensor {
    let mut rng = HostRng::new(seed, 1);
    HostTensor::new(
        vec![batch, width],
        (0..batch * width)
            .map(|_| rng.normal(0.0, 1.0) as f32)
            .collect(),
    )
}

/// One network alone: gradients and δ per layer, loss Σ out².
fn alone(
    weights: &MlpWeights,
    x: &HostTensor,
    device: &Device,
) -> (Vec<NamedTensor>, Vec<HostTensor>) {
    let model = Mlp::from_weights(weights, device);
    let trace = model.forward(x.to_device(device), Record::ALL);
    let out = trace.output.clone();
    let mut grads = (out.clone() * out).sum().backward();
    let named = collect_gradients(&model, &mut grads).unwrap_or_else(|m| panic!("{m:?}"));
    let deltas = trace
        .delta_probes
        .iter()
        .map(|p| HostTensor::from_tensor(p.grad(&grads).unwrap_or_else(|| panic!("no δ"))))
        .collect();
    (named, deltas)
}

/// The same networks as one stack.
fn stacked(
    nets: &[MlpWeights],
    xs: &[HostTensor],
    device: &Device,
) -> (Vec<Vec<NamedTensor>>, Vec<Vec<HostTensor>>) {
    let refs: Vec<&MlpWeights> = nets.iter().collect();
    let stack = MlpStack::from_weights(&refs, device).unwrap_or_else(|e| panic!("{e}"));
    let trace = stack.forward(stack_trials(xs).to_device(device), Record::ALL);
    let out = trace.output.clone();
    let mut grads = (out.clone() * out).sum().backward();
    let named = stack
        .gradients(&mut grads)
        .unwrap_or_else(|m| panic!("{m:?}"));
    let mut deltas: Vec<Vec<HostTensor>> = nets.iter().map(|_| Vec::new()).collect();
    for p in &trace.delta_probes {
        let g = HostTensor::from_tensor(p.grad(&grads).unwrap_or_else(|| panic!("no δ")));
        for (t, d) in split_trials(g).into_iter().enumerate() {
            deltas[t].push(d);
        }
    }
    (named, deltas)
}

/// Largest |a − b| / max(|b|, 1e-30) over two tensors of one shape.
fn rel_diff(a: &HostTensor, b: &HostTensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-30))
        .fold(0.0, f32::max)
}

fn check(device: &Device, activation: Activation, bias: bool, batch: usize) -> f32 {
    let nets: Vec<MlpWeights> = (1..=4)
        .map(|s| config(s, activation, bias).draw_weights())
        .collect();
    let xs: Vec<HostTensor> = (1..=4).map(|s| input(100 + s, batch, 5)).collect();
    let (g_stack, d_stack) = stacked(&nets, &xs, device);
    let mut worst = 0.0f32;
    for t in 0..nets.len() {
        let (g, d) = alone(&nets[t], &xs[t], device);
        let names: Vec<&str> = g.iter().map(|n| n.name.as_str()).collect();
        let stack_names: Vec<&str> = g_stack[t].iter().map(|n| n.name.as_str()).collect();
        assert_eq!(stack_names, names, "parameter names and order");
        for (a, b) in g_stack[t].iter().zip(&g) {
            worst = worst.max(rel_diff(&a.tensor, &b.tensor));
        }
        assert_eq!(d_stack[t].len(), d.len());
        for (a, b) in d_stack[t].iter().zip(&d) {
            worst = worst.max(rel_diff(a, b));
        }
    }
    worst
}

#[test]
fn a_stack_gives_each_network_its_own_gradients() {
    // The stack does the same f32 arithmetic per network (the same matmul per trial, the same
    // element-wise ops), so on ndarray the results are identical; flex's kernels may block a
    // batched matmul differently, which moves the last bits only: 1e-5 is ~100 f32 ulps.
    for (device, name, tol) in [(ndarray(), "ndarray", 0.0), (flex(), "flex", 1e-5)] {
        for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            for bias in [true, false] {
                for batch in [1, 3] {
                    let worst = check(&device, activation, bias, batch);
                    assert!(
                        worst <= tol,
                        "{name} {activation:?} bias={bias} batch={batch}: relative difference {worst}"
                    );
                }
            }
        }
    }
}

#[test]
fn networks_of_different_shapes_do_not_stack() {
    let a = config(1, Activation::Relu, true).draw_weights();
    let mut b_config = config(2, Activation::Relu, true);
    b_config.hidden = vec![7, 6, 5];
    let b = b_config.draw_weights();
    let c = config(3, Activation::Tanh, true).draw_weights();
    let d = config(4, Activation::Relu, false).draw_weights();
    let dev = ndarray();
    for (other, index) in [(&b, 1), (&c, 1), (&d, 1)] {
        let err = MlpStack::from_weights(&[&a, other], &dev).err();
        assert_eq!(err, Some(StackError::Architecture { index }));
    }
    let err = MlpStack::from_weights(&[], &dev).err();
    assert_eq!(err, Some(StackError::Empty));
}

#[test]
fn split_undoes_stack() {
    let parts: Vec<HostTensor> = (0..3)
        .map(|t| HostTensor::new(vec![2, 2], (0..4).map(|i| (10 * t + i) as f32).collect()))
        .collect();
    let stacked = stack_trials(&parts);
    assert_eq!(stacked.shape, vec![3, 2, 2]);
    assert_eq!(stacked.data[4..8], [10.0, 11.0, 12.0, 13.0]);
    assert_eq!(split_trials(stacked), parts);
    // A stacked output read back from a device splits the same way.
    let dev = ndarray();
    let t: Tensor<3> = stack_trials(&parts).to_device(&dev);
    assert_eq!(split_trials(HostTensor::from_tensor(t)), parts);
}

/// The engine's written-out backward pass on a stack (rank 3: batched products, the bias
/// gradient summed over each trial's batch) against Burn's autodiff of the same stack, per
/// trial and tensor: every δ_l and every parameter gradient, normwise (‖a − b‖ / ‖b‖). The two
/// take the same products and, for relu (a mask) and tanh (1 − tanh², tanh recomputed bit for
/// bit), the same φ' operations as autodiff: measured identical on both backends, so held to
/// 0. gelu's φ' is its formula, autodiff's goes through erf: measured 1.3e-7 to 1.9e-7, held
/// to 1e-6, ~8 f32 ulps of the norm (an elementwise bound would judge values near 0 by their
/// rounding).
#[test]
#[allow(deprecated)]
fn the_written_out_backward_of_a_stack_is_autodiffs() {
    for (plain, name) in [(Device::ndarray(), "ndarray"), (Device::flex(), "flex")] {
        for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            for bias in [true, false] {
                let nets: Vec<MlpWeights> = (1..=3)
                    .map(|s| config(s, activation, bias).draw_weights())
                    .collect();
                let xs: Vec<HostTensor> = (1..=3).map(|s| input(100 + s, 4, 5)).collect();
                let (g_auto, d_auto) = stacked(&nets, &xs, &plain.clone().autodiff());
                let refs: Vec<&MlpWeights> = nets.iter().collect();
                let stack = MlpStack::from_weights(&refs, &plain).unwrap_or_else(|e| panic!("{e}"));
                let trace = stack.forward(stack_trials(&xs).to_device(&plain), Record::PASS);
                // loss = Σ out², so δ_L = 2·out.
                let b = stack.backward(&trace, trace.output.clone().mul_scalar(2.0));
                let split = |t: &Tensor<3>| split_trials(HostTensor::from_tensor(t.clone()));
                let mut worst = 0.0f64;
                for (l, d) in b.deltas.iter().enumerate() {
                    for (t, part) in split(d).iter().enumerate() {
                        worst = worst.max(norm_diff(part, &d_auto[t][l]));
                    }
                }
                // Parameter order: layers.{l}.weight, then layers.{l}.bias.
                let manual: Vec<&Tensor<3>> = b
                    .weights
                    .iter()
                    .zip(&b.biases)
                    .flat_map(|(w, b)| std::iter::once(w).chain(b.as_ref()))
                    .collect();
                assert_eq!(manual.len(), g_auto[0].len(), "{name}: gradient count");
                for (k, g) in manual.iter().enumerate() {
                    for (t, mut part) in split(g).into_iter().enumerate() {
                        if part.shape.len() == 2
                            && part.shape[0] == 1
                            && g_auto[t][k].tensor.shape.len() == 1
                        {
                            part.shape.remove(0);
                        }
                        worst = worst.max(norm_diff(&part, &g_auto[t][k].tensor));
                    }
                }
                eprintln!("{name} {activation:?} bias={bias}: {worst:.1e}");
                assert!(
                    worst
                        <= if activation == Activation::Gelu {
                            1e-6
                        } else {
                            0.0
                        },
                    "{name} {activation:?} bias={bias}: normwise difference {worst}"
                );
            }
        }
    }
}

/// ‖a − b‖₂ / ‖b‖₂ over two tensors of one shape (0 when both are 0).
fn norm_diff(a: &HostTensor, b: &HostTensor) -> f64 {
    assert_eq!(a.shape, b.shape);
    let diff: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum();
    let norm: f64 = b.data.iter().map(|y| f64::from(*y).powi(2)).sum();
    if diff == 0.0 {
        0.0
    } else {
        (diff / norm).sqrt()
    }
}

/// The bits of a host tensor, for bit-for-bit comparisons.
fn bits(t: &HostTensor) -> Vec<u32> {
    t.data.iter().map(|x| x.to_bits()).collect()
}

/// A stack of one network is that network bit for bit: a plain run is the stack of one, and
/// its tensors without the trial dimension take the 2-D layer's own products (Burn's `linear`,
/// and flex's own route on large layers). Held on both backends, on the seed-sized network and
/// on one wide enough for flex's route (128 · 256² ≥ 192³), for the forward output, autodiff's
/// gradients and δ_l, and the written-out backward pass (δ_l, kernels, biases).
#[test]
#[allow(deprecated)]
fn a_stack_of_one_is_one_network_bit_for_bit() {
    let wide = |seed: u64| MlpConfig {
        d_input: 256,
        hidden: vec![256; 2],
        d_output: 256,
        activations: vec![Activation::Tanh; 2],
        ..config(seed, Activation::Tanh, true)
    };
    let cases = [
        (config(1, Activation::Relu, true), 3),
        (config(2, Activation::Gelu, false), 1),
        (wide(3), 128),
    ];
    const { assert!(128 * 256 * 256 >= gradscope_model::dense::FLEX_OWN_ROUTE_MIN) };
    for (plain, name) in [(Device::ndarray(), "ndarray"), (Device::flex(), "flex")] {
        for (cfg, batch) in &cases {
            let at = format!("{name} {}x{}", batch, cfg.d_input);
            let w = cfg.draw_weights();
            let x = input(9, *batch, cfg.d_input);
            // Autodiff: gradients and δ_l.
            let auto = plain.clone().autodiff();
            let (g1, d1) = alone(&w, &x, &auto);
            let (gs, ds) = stacked(std::slice::from_ref(&w), std::slice::from_ref(&x), &auto);
            for (a, b) in gs[0].iter().zip(&g1) {
                assert_eq!(a.name, b.name, "{at}");
                assert_eq!(a.tensor.shape, b.tensor.shape, "{at} {}", a.name);
                assert!(
                    bits(&a.tensor) == bits(&b.tensor),
                    "{at}: {} differs",
                    a.name
                );
            }
            for (l, (a, b)) in ds[0].iter().zip(&d1).enumerate() {
                assert!(bits(a) == bits(b), "{at}: δ_{l} differs");
            }
            // The written-out pass on the plain device.
            let model = Mlp::from_weights(&w, &plain);
            let one = model.forward(x.to_device(&plain), Record::PASS);
            let b1 = model.backward(&one, one.output.clone().mul_scalar(2.0));
            let stack = MlpStack::from_weights(&[&w], &plain).unwrap_or_else(|e| panic!("{e}"));
            let st = stack.forward(
                stack_trials(std::slice::from_ref(&x)).to_device(&plain),
                Record::PASS,
            );
            let bs = stack.backward(&st, st.output.clone().mul_scalar(2.0));
            let host2 = |t: &Tensor<2>| bits(&HostTensor::from_tensor(t.clone()));
            let host3 = |t: &Tensor<3>| bits(&HostTensor::from_tensor(t.clone()));
            assert!(
                host3(&st.output) == host2(&one.output),
                "{at}: output differs"
            );
            for (l, (a, b)) in bs.deltas.iter().zip(&b1.deltas).enumerate() {
                assert!(host3(a) == host2(b), "{at}: written-out δ_{l} differs");
            }
            for (l, (a, b)) in bs.weights.iter().zip(&b1.weights).enumerate() {
                assert!(host3(a) == host2(b), "{at}: written-out ∂W_{l} differs");
            }
            for (l, (a, b)) in bs.biases.iter().zip(&b1.biases).enumerate() {
                assert_eq!(a.is_some(), b.is_some(), "{at}: bias {l}");
                if let (Some(a), Some(b)) = (a, b) {
                    assert_eq!(a.dims(), [1, 1, b.dims()[1]], "{at}: ∂b_{l}'s shape");
                    assert!(host3(a) == host2(b), "{at}: written-out ∂b_{l} differs");
                }
            }
        }
    }
}
