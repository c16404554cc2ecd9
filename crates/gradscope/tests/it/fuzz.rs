//! The config parser never panics: not on arbitrary bytes, not on arbitrary valid-looking
//! TOML built from the schema's keys with edge-case values. And whatever it accepts, `show`
//! writes back as a config that parses to the same experiment.

use gradscope::config::{self, Source};
use proptest::prelude::*;

fn parse(text: String) -> Result<config::Experiment, config::ConfigError> {
    config::parse(Source {
        path: "fuzz.toml".into(),
        text,
    })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("0.5".to_string()),
        Just("true".to_string()),
        Just("\"relu\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"é\\u0000\"".to_string()),
        Just("[]".to_string()),
        Just("[1, 0, 3]".to_string()),
        Just("[\"a\"]".to_string()),
        Just("{ kind = \"normal\", std = -1.0 }".to_string()),
        Just("{ kind = \"uniform\", low = 2.0, high = 1.0 }".to_string()),
        Just("{ kind = \"leaky_relu\", slope = nan }".to_string()),
        Just("{ kind = \"constant\" }".to_string()),
        Just("{ 0 = \"tanh\", 99 = \"relu\" }".to_string()),
        (1u32..5000).prop_map(|n| n.to_string()),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

const TOP: &[&str] = &["name", "description", "seed", "backend", "loss", "bogus"];
const MODEL: &[&str] = &[
    "input",
    "hidden",
    "depth",
    "width",
    "output",
    "activation",
    "activation_overrides",
    "bias",
    "kernel_init",
    "bias_init",
    "gain",
    "bogus",
];
const INPUT: &[&str] = &["name", "batch", "distribution", "file", "bogus"];

fn table(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(keys), value()), 0..8).prop_map(|kv| {
        let mut seen = std::collections::HashSet::new();
        kv.into_iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect::<String>()
    })
}

fn document() -> impl Strategy<Value = String> {
    (
        table(TOP),
        table(MODEL),
        proptest::collection::vec(table(INPUT), 0..3),
    )
        .prop_map(|(top, model, inputs)| {
            let mut doc = format!("{top}[model]\n{model}");
            for i in inputs {
                doc.push_str(&format!("[[inputs]]\n{i}"));
            }
            doc
        })
}

/// A document that is valid except for the values drawn.
fn nearly_valid() -> impl Strategy<Value = String> {
    let precision = prop_oneof![
        Just("f32"),
        Just("bf16"),
        Just("f16"),
        Just("f64"),
        Just("fp8")
    ];
    (value(), value(), value(), value(), precision).prop_map(|(width, act, batch, dist, p)| {
        format!(
            "name = \"f\"\ndescription = \"d\"\nseed = 3\nprecision = \"{p}\"\n[model]\ninput = 3\nhidden = [{width}]\noutput = 1\n\
             activation = {act}\n[[inputs]]\nname = \"x\"\nbatch = {batch}\ndistribution = {dist}\n"
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn arbitrary_schema_shaped_toml_never_panics(doc in document()) {
        let _ = parse(doc);
    }

    #[test]
    fn accepted_configs_show_back_to_the_same_experiment(doc in nearly_valid()) {
        if let Ok(exp) = parse(doc) {
            let _ = exp.memory_estimate();
            let again = parse(exp.to_toml()).map_err(|e| TestCaseError::fail(format!("{e}\n{}", exp.to_toml())))?;
            prop_assert_eq!(again, exp);
        }
    }
}
