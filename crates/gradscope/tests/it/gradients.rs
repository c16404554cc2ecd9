//! Burn's gradients, proven right: an independent f64 oracle (checked itself by central finite
//! differences) must agree with what Burn's autodiff computes for every seed config, on both
//! CPU backends, and hand-derived cases must come out exactly.

use crate::common;

use crate::common::oracle::{self, forward_loss, layers_of};
use crate::common::{EVERY_ACTIVATION, activation_experiment, seed_configs};
use gradscope::backend::{self, BackendKind};
use gradscope::config::{self, Experiment, Loss, Source};
use gradscope::run::{self, draw_input};

fn load(path: &std::path::Path) -> Experiment {
    config::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn there_are_three_seed_configs() {
    assert!(seed_configs().len() >= 3, "configs/: {:?}", seed_configs());
}

#[test]
fn oracle_agrees_with_central_finite_differences() {
    // Central differences in f64 with h = 1e-6: truncation error O(h²) and rounding error
    // O(eps·|loss|/h) ≈ 1e-10·|loss|, far below the 1e-6 tolerance.
    // The seed configs and every activation's network (gelu's exact derivative included).
    let h = 1e-6;
    let experiments = seed_configs()
        .into_iter()
        .map(|p| (p.display().to_string(), load(&p)))
        .chain(EVERY_ACTIVATION.map(|a| (a.to_string(), activation_experiment(a))));
    for (path, exp) in experiments {
        let weights = exp.model.draw_weights();
        for (ci, _) in exp.inputs.iter().enumerate() {
            let x = draw_input(&exp, ci);
            let xs: Vec<f64> = x.data.iter().map(|&v| f64::from(v)).collect();
            let batch = x.shape[0];
            let want = oracle::oracle(&weights, &x, exp.loss);
            // Each loss evaluation is off by about eps·|loss| (f64); the difference quotient
            // divides two of them by 2h: 10 × 2·eps·|loss|/(2h) covers that with margin.
            let rounding = 10.0 * 2.0 * f64::EPSILON * want.loss.abs() / (2.0 * h);
            let base = layers_of(&weights);
            for l in 0..base.len() {
                let n_w = base[l].0.len();
                // Every 7th kernel entry and every bias entry.
                for k in (0..n_w)
                    .step_by(7)
                    .map(|i| (0, i))
                    .chain((0..base[l].1.len()).map(|i| (1, i)))
                {
                    let bump = |delta: f64| {
                        let mut layers = base.clone();
                        if k.0 == 0 {
                            layers[l].0[k.1] += delta
                        } else {
                            layers[l].1[k.1] += delta
                        }
                        forward_loss(&layers, &weights.activations, &xs, batch, exp.loss)
                    };
                    let fd = (bump(h) - bump(-h)) / (2.0 * h);
                    let an = if k.0 == 0 {
                        want.grads[l].0[k.1]
                    } else {
                        want.grads[l].1[k.1]
                    };
                    assert!(
                        (fd - an).abs() <= 1e-6 * (1.0 + an.abs()) + rounding,
                        "{path}: layer {l} {} [{}]: finite difference {fd:e} vs oracle {an:e}",
                        if k.0 == 0 { "weight" } else { "bias" },
                        k.1
                    );
                }
            }
        }
    }
}

/// Compare a Burn run of `exp` on `kind` with the oracle: loss, every gradient and every δ
/// within 1e-5 relative (see `close`).
fn check_against_oracle(exp: &Experiment, kind: BackendKind) {
    let backend = backend::open(kind, None).unwrap_or_else(|e| panic!("{e}"));
    common::check_against_oracle(exp, &backend, 1e-5);
}

#[test]
fn ndarray_gradients_match_the_oracle_on_every_seed_config() {
    for path in seed_configs() {
        check_against_oracle(&load(&path), BackendKind::Ndarray);
    }
}

#[test]
fn flex_gradients_match_the_oracle_on_every_seed_config() {
    for path in seed_configs() {
        check_against_oracle(&load(&path), BackendKind::Flex);
    }
}

/// Issue 11's bound, "within a few f32 roundings": per tensor, Burn's normwise relative error
/// against the f64 oracle is at most this many times that of a plain f32 evaluation of the same
/// network, credited with at least 8 ulps (`common::check_within_f32_rounding`). Burn and the
/// plain evaluation sum in different orders (blocked matrix kernels against a loop), so their
/// errors differ by small factors either way: measured at most 1.43 on ndarray and flex and
/// 2.71 on wgpu (lavapipe) with the 8-ulp credit (printed by the tests). So the bound is about
/// 2e-6; Burn's own gelu backward was off by 6e-4 to 1e-3, 300 times more.
///
/// The element-wise check made on the same run (1e-4 relative where |value| ≥ 1 % of the
/// tensor's scale, as `check_against_oracle`) catches a single wrong element; its worst case is
/// set by cancellation in weight gradients (sums over the batch), measured at most 3.5e-5 on
/// ndarray and flex and 8.4e-5 on wgpu.
pub const F32_FACTOR: f64 = 4.0;

/// Every activation, on each CPU backend, on a depth-8 network with a batch of 5 and non-zero
/// biases: every parameter gradient and every δ_l agree with the f64 oracle within a few f32
/// roundings (wgpu: tests/it/wgpu.rs).
fn every_activation_matches_the_oracle_on(kind: BackendKind) {
    let backend = backend::open(kind, None).unwrap_or_else(|e| panic!("{e}"));
    for activation in EVERY_ACTIVATION {
        let exp = activation_experiment(activation);
        let (worst, ratio) = common::check_within_f32_rounding(&exp, &backend, F32_FACTOR, 1e-4);
        eprintln!(
            "{} {activation}: worst error {worst:.2e}; at most {ratio:.2} x a plain f32 evaluation's",
            kind.name()
        );
    }
}

#[test]
fn every_activation_matches_the_oracle_on_ndarray() {
    every_activation_matches_the_oracle_on(BackendKind::Ndarray);
}

#[test]
fn every_activation_matches_the_oracle_on_flex() {
    every_activation_matches_the_oracle_on(BackendKind::Flex);
}

#[test]
fn other_activations_and_losses_match_the_oracle() {
    for (activation, loss) in [
        ("\"tanh\"", "\"mean_squares\""),
        ("\"sigmoid\"", "\"sum\""),
        (
            "{ kind = \"leaky_relu\", slope = 0.1 }",
            "{ kind = \"mse\", target = 0.5 }",
        ),
        ("{ kind = \"elu\", alpha = 0.7 }", "\"mean\""),
        ("\"softplus\"", "\"sum_squares\""),
        ("\"silu\"", "\"sum_squares\""),
    ] {
        let text = format!(
            "name = \"t\"\ndescription = \"d\"\nseed = 5\nloss = {loss}\n[model]\ninput = 6\nhidden = [8, 7]\noutput = 3\n\
             activation = {activation}\nbias_init = {{ kind = \"normal\", std = 0.1 }}\n\
             [[inputs]]\nname = \"x\"\nbatch = 4\ndistribution = \"normal\"\n"
        );
        let exp = config::parse(Source {
            path: "inline.toml".into(),
            text,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        check_against_oracle(&exp, BackendKind::Ndarray);
    }
}

fn hand_config(bias: f64) -> Experiment {
    let text = format!(
        "name = \"hand\"\ndescription = \"d\"\nseed = 0\n[model]\ninput = 2\nhidden = [2]\noutput = 1\n\
         kernel_init = {{ kind = \"constant\", value = 0.5 }}\nbias_init = {{ kind = \"constant\", value = {bias:?} }}\n\
         [[inputs]]\nname = \"ones\"\nbatch = 1\ndistribution = {{ kind = \"constant\", value = 1.0 }}\n"
    );
    config::parse(Source {
        path: "hand.toml".into(),
        text,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn hand_derived_gradients_with_constant_weights() {
    // 2 -> 2 (relu) -> 1, every kernel entry 0.5, biases 0, input x = [1, 1], loss = out²:
    //   z1 = [0.5 + 0.5, 0.5 + 0.5] = [1, 1], a1 = [1, 1], out = 0.5·1 + 0.5·1 = 1, loss = 1
    //   ∂L/∂out = 2·out = 2          -> ∂L/∂W2 = a1ᵀ·2 = [[2], [2]], ∂L/∂b2 = [2]
    //   δ1 = 2·W2ᵀ ⊙ relu'(z1) = [1, 1] -> ∂L/∂W1 = xᵀ·δ1 = [[1, 1], [1, 1]], ∂L/∂b1 = [1, 1]
    let exp = hand_config(0.0);
    let backend = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    let out = run::execute(&exp, &backend).unwrap_or_else(|e| panic!("{e}"));
    let case = &out.cases[0];
    assert_eq!(case.loss, 1.0);
    let got: Vec<(&str, &[f32])> = case
        .grads
        .iter()
        .map(|g| (g.name.as_str(), g.tensor.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("layers.0.weight", &[1.0f32, 1.0, 1.0, 1.0][..]),
            ("layers.0.bias", &[1.0, 1.0][..]),
            ("layers.1.weight", &[2.0, 2.0][..]),
            ("layers.1.bias", &[2.0][..]),
        ]
    );
    assert_eq!(case.deltas[0].data, vec![1.0, 1.0]);
    assert_eq!(case.deltas[1].data, vec![2.0]);
}

#[test]
fn hand_derived_dead_relu_layer_passes_no_gradient() {
    // Same network with every bias -1.5:
    //   z1 = [1 - 1.5, 1 - 1.5] = [-0.5, -0.5], a1 = relu(z1) = [0, 0] (both units dead)
    //   out = 0.5·0 + 0.5·0 - 1.5 = -1.5, loss = 2.25, ∂L/∂out = -3
    //   ∂L/∂W2 = a1ᵀ·(-3) = [[0], [0]], ∂L/∂b2 = [-3]
    //   δ1 = -3·0.5·relu'(-0.5) = [0, 0] -> ∂L/∂W1 = 0, ∂L/∂b1 = 0
    let exp = hand_config(-1.5);
    let backend = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    let out = run::execute(&exp, &backend).unwrap_or_else(|e| panic!("{e}"));
    let case = &out.cases[0];
    assert_eq!(case.loss, 2.25);
    let data: Vec<Vec<f32>> = case.grads.iter().map(|g| g.tensor.data.clone()).collect();
    assert_eq!(
        data,
        vec![vec![0.0; 4], vec![0.0; 2], vec![0.0; 2], vec![-3.0]]
    );
}

#[test]
fn the_seed_configs_mirror_the_seed_scripts() {
    // Shapes from shared/seed-relu-gradients.md: example 1 Dense(10) -> Dense(1) on [1, 10];
    // examples 2 and 3 Dense(100) -> Dense(50) -> Dense(25) -> Dense(1); example 3 has inputs
    // [1, 10] normal, [1, 10] uniform(-1, 1) and [3, 10] normal. Keras Dense: glorot_uniform, zeros.
    use gradscope::config::Distribution::{Normal, Uniform};
    use gradscope::config::InputSource::Distribution as Drawn;
    use gradscope_model::Initializer;
    let exps: Vec<Experiment> = seed_configs().iter().take(3).map(|p| load(p)).collect();
    let widths: Vec<Vec<usize>> = exps.iter().map(|e| e.model.widths()).collect();
    assert_eq!(
        widths,
        vec![
            vec![10, 10, 1],
            vec![10, 100, 50, 25, 1],
            vec![10, 100, 50, 25, 1]
        ]
    );
    for e in &exps {
        assert_eq!(e.model.kernel_init, Initializer::GlorotUniform);
        assert_eq!(e.model.bias_init, Initializer::Zeros);
        assert_eq!(e.loss, Loss::SumSquares);
        assert!(e.description.contains("seed example"), "{}", e.description);
    }
    let inputs: Vec<(usize, _)> = exps[2]
        .inputs
        .iter()
        .map(|c| (c.batch, c.source.clone()))
        .collect();
    assert_eq!(
        inputs,
        vec![
            (
                1,
                Drawn(Normal {
                    mean: 0.0,
                    std: 1.0
                })
            ),
            (
                1,
                Drawn(Uniform {
                    low: -1.0,
                    high: 1.0
                })
            ),
            (
                3,
                Drawn(Normal {
                    mean: 0.0,
                    std: 1.0
                })
            ),
        ]
    );
}

/// A network wide enough for flex's own dense route (gradscope-model's dense.rs takes it when
/// batch·d_in·d_out ≥ 192³: here 128·256·256 = 8.4 M per layer): every parameter gradient and
/// every δ_l against the f64 oracle within a few f32 roundings, on every backend. dense.rs's
/// own tests hold that route to Burn's bit for bit; this holds both to the f64 oracle.
#[test]
fn a_network_wide_enough_for_flex_s_dense_route_matches_the_oracle() {
    let (batch, width) = (128, 256);
    assert!(batch * width * width >= gradscope_model::dense::FLEX_OWN_ROUTE_MIN);
    let exp = config::parse(Source {
        path: "wide.toml".into(),
        text: format!(
            "name = \"wide\"\ndescription = \"d\"\nseed = 5\nloss = \"sum_squares\"\n\
             [model]\ninput = {width}\ndepth = 3\nwidth = {width}\noutput = {width}\n\
             activation = \"tanh\"\nkernel_init = \"glorot_uniform\"\n\
             bias_init = {{ kind = \"normal\", std = 0.2 }}\n\
             [[inputs]]\nname = \"x\"\nbatch = {batch}\ndistribution = \"normal\"\n"
        ),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    for backend in common::every_backend("a_network_wide_enough_for_flex_s_dense_route") {
        let (worst, ratio) = common::check_within_f32_rounding(&exp, &backend, F32_FACTOR, 1e-4);
        eprintln!(
            "{}: worst error {worst:.2e}; at most {ratio:.2} x a plain f32 evaluation's",
            backend.kind.name()
        );
    }
}

/// elu with a large positive pre-activation: 1 → 1 (elu) → 1, kernels 100, biases 0, x = 1,
/// loss = out². By hand: z0 = 100 (> 88.7, where e^z overflows f32), a0 = 100, out = 1e4,
/// loss = 1e8; ∂L/∂out = 2e4 = ∂L/∂W1 / a0 → ∂L/∂W1 = 2e6; δ0 = 2e4·100·elu'(100) = 2e6 =
/// ∂L/∂W0 (x = 1). Burn's own elu evaluates e^100 = inf in the branch it discards and
/// autodiff returned NaN here; on every backend, autodiff and the written-out pass alike.
#[test]
fn elu_with_large_positive_inputs_has_finite_exact_gradients() {
    let text = "name = \"elu\"\nseed = 0\n[model]\ninput = 1\nhidden = [1]\noutput = 1\n\
                activation = \"elu\"\nkernel_init = { kind = \"constant\", value = 100.0 }\n\
                [[inputs]]\nname = \"one\"\nbatch = 1\n\
                distribution = { kind = \"constant\", value = 1.0 }\n";
    let exp = config::parse(Source {
        path: "elu.toml".into(),
        text: text.into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    for b in common::every_backend("elu_with_large_positive_inputs_has_finite_exact_gradients") {
        for (how, out) in [
            ("autodiff", run::execute(&exp, &b)),
            ("manual", gradscope::train::manual_outcome(&exp, &b)),
        ] {
            let out = out.unwrap_or_else(|e| panic!("{e}"));
            let case = &out.cases[0];
            assert_eq!(case.loss, 1e8, "{} {how}", b.kind.name());
            let g: Vec<(&str, f32)> = case
                .grads
                .iter()
                .map(|g| (g.name.as_str(), g.tensor.data[0]))
                .collect();
            assert_eq!(
                g,
                [
                    ("layers.0.weight", 2e6),
                    ("layers.0.bias", 2e6),
                    ("layers.1.weight", 2e6),
                    ("layers.1.bias", 2e4)
                ],
                "{} {how}",
                b.kind.name()
            );
            assert_eq!(case.deltas[0].data, [2e6], "{} {how}", b.kind.name());
        }
    }
}

/// The model crate names its parameters structurally (Burn's module visitor over an `Mlp`'s
/// `layers` and each `Linear`'s `weight`/`bias`; the stack repeats the spelling): they are
/// the names the schema crate writes once (`gradscope_report::names`), in layer order, for a
/// plain run and for a stack of trials alike.
#[test]
fn the_models_parameter_names_are_the_schemas() {
    use gradscope_report::names::{self, Param};
    let b = backend::open(BackendKind::Ndarray, None).unwrap_or_else(|e| panic!("{e}"));
    let exp = load(&seed_configs()[1]);
    let depth = exp.model.hidden.len() + 1;
    let want: Vec<String> = (0..depth)
        .flat_map(|l| {
            let bias = exp.model.bias.then(|| names::param(l, Param::Bias));
            std::iter::once(names::param(l, Param::Weight)).chain(bias)
        })
        .collect();
    assert!(want.len() >= 4, "{want:?}");
    let plain = run::execute(&exp, &b).unwrap_or_else(|e| panic!("{e}"));
    let stacked = run::execute_stack(&[exp.clone(), exp.clone()], &b, false)
        .unwrap_or_else(|e| panic!("{e}"));
    for outcome in std::iter::once(&plain).chain(&stacked) {
        for case in &outcome.cases {
            let got: Vec<&str> = case.grads.iter().map(|g| g.name.as_str()).collect();
            assert_eq!(got, want, "case {}", case.name);
        }
    }
}
