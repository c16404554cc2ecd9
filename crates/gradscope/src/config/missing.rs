//! Every required key a file lacks, found in one pass before serde reads it (serde stops at
//! the first): each named with its table and place, so a user adds them all at once.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::source::{ConfigError, Source};

/// A required key and what it holds, as the message says it.
type Required = (&'static str, &'static str);

/// The keys every experiment file needs.
pub const TOP: &[Required] = &[
    (
        "name",
        "the experiment's name, e.g. name = \"my-experiment\"",
    ),
    (
        "seed",
        "the seed of every random draw, an integer from 0 to 2⁶³ − 1",
    ),
    ("model", "the network, a [model] table"),
];
/// The keys `[model]` needs (the hidden layers are `hidden`, or `depth` and `width`).
pub const MODEL: &[Required] = &[
    ("input", "the input width, an integer ≥ 1"),
    ("output", "the output width, an integer ≥ 1"),
];
/// The keys each `[[inputs]]` case needs.
pub const INPUT: &[Required] = &[("name", "the case's name, unique in the file")];
/// The keys `[train]` needs.
pub const TRAIN: &[Required] = &[
    ("steps", "the number of optimisation steps, an integer ≥ 1"),
    ("learning_rate", "the step size, a number > 0"),
];

fn get<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
}

/// The missing keys of `src`, in file order of their tables; none when the text is not TOML
/// (serde then says what is wrong) or lacks nothing.
pub(super) fn missing_fields(src: &Source) -> Vec<ConfigError> {
    let Ok(root) = DeTable::parse(&src.text) else {
        return Vec::new();
    };
    let root = root.get_ref();
    let mut errors = Vec::new();
    let missing = |key: &str, what: &str| format!("missing `{key}`: {what}");
    for (key, what) in TOP {
        if get(root, key).is_none() {
            errors.push(ConfigError::file(&src.path, missing(key, what)));
        }
    }
    let training = get(root, "train").is_some();
    match get(root, "inputs") {
        None if !training => errors.push(ConfigError::file(
            &src.path,
            missing(
                "[[inputs]]",
                "a run measures the gradient of at least one input case (a [train] table trains instead)",
            ),
        )),
        Some(inputs) => {
            for (i, case) in inputs.get_ref().as_array().into_iter().flatten().enumerate() {
                let key = format!("inputs[{i}]");
                errors.extend(table_missing(src, case, &key, INPUT));
                errors.extend(missing_rows(src, case, &key, training));
            }
        }
        None => {}
    }
    for (table, required) in [("model", MODEL), ("train", TRAIN)] {
        if let Some(t) = get(root, table) {
            errors.extend(table_missing(src, t, table, required));
        }
    }
    errors.sort_by_key(|e| (e.line > 0, e.line));
    errors
}

/// The keys of `required` that table `t` (at `key`) lacks; none when `t` is not a table.
fn table_missing(
    src: &Source,
    t: &Spanned<DeValue<'_>>,
    key: &str,
    required: &[Required],
) -> Vec<ConfigError> {
    let Some(table) = t.get_ref().as_table() else {
        return Vec::new();
    };
    required
        .iter()
        .filter(|(k, _)| get(table, k).is_none())
        .map(|(k, what)| src.error(Some(t.span()), Some(key), format!("missing `{k}`: {what}")))
        .collect()
}

/// A case drawn from a distribution without `batch`, in a plain run (training draws
/// `train.batch` rows a step, and a file's rows are its own).
fn missing_rows(
    src: &Source,
    case: &Spanned<DeValue<'_>>,
    key: &str,
    training: bool,
) -> Option<ConfigError> {
    let table = case.get_ref().as_table()?;
    let drawn = get(table, "file").is_none() && get(table, "distribution").is_some();
    (drawn && !training && get(table, "batch").is_none()).then(|| {
        src.error(
            Some(case.span()),
            Some(key),
            "missing `batch`: the number of rows to draw, an integer ≥ 1",
        )
    })
}
