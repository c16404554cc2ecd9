//! `--set key=value`: command-line overrides applied to a config's TOML before validation,
//! so an override is checked by exactly the code that checks the file.

use std::path::Path;

use toml::{Table, Value};

use super::inputs::Files;
use super::raw::{RawExperiment, RawInput, RawModel, RawTrain, fields_of};
use super::source::{ConfigError, Source, did_you_mean};
use super::sweep::Points;
use super::{Experiment, parse, read_source, validate};

/// Keys `--set` and `[sweep]` accept (`N` stands for an index), derived from the `Raw*`
/// structs: every top-level field but the tables, `model.<field>` (`activation_overrides.N`)
/// and `inputs.N.<field>`.
pub fn settable_keys() -> &'static [String] {
    static KEYS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let top = fields_of::<RawExperiment>()
            .iter()
            .filter(|k| !["model", "inputs", "train", "sweep"].contains(k))
            .map(|k| k.to_string());
        let model = fields_of::<RawModel>().iter().map(|k| match *k {
            "activation_overrides" => "model.activation_overrides.N".to_string(),
            k => format!("model.{k}"),
        });
        let inputs = fields_of::<RawInput>()
            .iter()
            .map(|k| format!("inputs.N.{k}"));
        let train = fields_of::<RawTrain>().iter().map(|k| format!("train.{k}"));
        top.chain(model).chain(inputs).chain(train).collect()
    });
    &KEYS
}

/// One parsed `--set KEY=VALUE`.
#[derive(Debug, Clone)]
struct Set {
    text: String,
    path: Vec<String>,
    value: Value,
}

/// Whether `key` (dotted, indices as numbers) is a key `--set` and `[sweep]` accept.
pub fn settable(key: &str) -> bool {
    let pattern = pattern_of(key);
    settable_keys().contains(&pattern)
}

fn pattern_of(key: &str) -> String {
    key.split('.')
        .map(|p| if p.parse::<usize>().is_ok() { "N" } else { p })
        .collect::<Vec<_>>()
        .join(".")
}

fn parse_set(file: &Path, text: &str) -> Result<Set, ConfigError> {
    let bad = |m: String| ConfigError::file(file, format!("--set {text}: {m}"));
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
    let key = key.trim().replace('[', ".").replace(']', "");
    // `sweep.trials` and `sweep.<key>`: the sweep table's keys are whole dotted keys.
    let (path, known) = match key.strip_prefix("sweep.") {
        Some(inner) => (
            vec!["sweep".to_string(), inner.to_string()],
            inner == "trials" || settable(inner),
        ),
        None => (key.split('.').map(str::to_string).collect(), settable(&key)),
    };
    let pattern = pattern_of(key.strip_prefix("sweep.").unwrap_or(&key));
    if !known {
        let mut e = bad(format!("unknown key `{key}`"));
        if let Some(s) = did_you_mean(&pattern, settable_keys().iter().map(String::as_str)) {
            e = e.with_hint(format!("did you mean `{s}`?"));
        } else {
            e = e.with_hint(format!(
                "keys that can be set: {}",
                settable_keys().join(", ")
            ));
        }
        return Err(e);
    }
    // A TOML value (number, bool, array, inline table, quoted string), else a bare string;
    // but an integer past TOML's range is not a string.
    let parsed = toml::from_str::<Table>(&format!("v = {}", value.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"));
    if parsed.is_none() && value.trim().replace('_', "").parse::<i128>().is_ok() {
        return Err(bad(format!(
            "{} is past the largest integer a config holds, 2⁶³ − 1 (9223372036854775807)",
            value.trim()
        )));
    }
    let value = parsed.unwrap_or_else(|| Value::String(value.trim().to_string()));
    Ok(Set {
        text: text.to_string(),
        path,
        value,
    })
}

/// Put `value` at `path` in `table`, creating tables on the way; an array of tables is entered
/// by the index that follows its name (`inputs.1.batch`).
pub(crate) fn set_in(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (head, rest) = path.split_first().ok_or("empty key")?;
    if rest.is_empty() {
        // `hidden` and `depth`/`width` are two ways to say one thing: one replaces the other.
        match head.as_str() {
            "hidden" => {
                table.remove("depth");
                table.remove("width");
            }
            "depth" | "width" => {
                // A uniform `hidden` list keeps its other half: depth = its length, width = its value.
                if let Some(Value::Array(hidden)) = table.remove("hidden") {
                    let uniform = hidden
                        .first()
                        .filter(|w| hidden.iter().all(|x| x == *w))
                        .cloned();
                    match (head.as_str(), uniform) {
                        ("depth", Some(width)) => {
                            table.entry("width").or_insert(width);
                        }
                        ("width", _) => {
                            table
                                .entry("depth")
                                .or_insert(Value::Integer(hidden.len() as i64));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        table.insert(head.clone(), value);
        return Ok(());
    }
    match table
        .entry(head.clone())
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => set_in(t, rest, value),
        Value::Array(items) => {
            let (index, rest) = rest.split_first().ok_or("expected an index")?;
            let i: usize = index
                .parse()
                .map_err(|_| format!("`{index}` is not an index"))?;
            let len = items.len();
            match items.get_mut(i) {
                Some(Value::Table(t)) if !rest.is_empty() => set_in(t, rest, value),
                _ => Err(format!(
                    "there is no `{head}` entry {i} (the file has {len})"
                )),
            }
        }
        _ => Err(format!("`{head}` is not a table")),
    }
}

/// Read `path`, apply the `--set` overrides in order, and validate the result.
pub fn load_with_sets(path: &Path, sets: &[String]) -> Result<Experiment, ConfigError> {
    let source = read_source(path)?;
    if sets.is_empty() {
        return parse(source);
    }
    // The file must be valid on its own, so its errors keep their own line:column. Its sweep
    // is planned in full once, with the overrides; on its own, only its grid's axes are
    // checked, and its points where the file with the overrides fails (an error the file
    // makes on its own is reported as the file's). A grid the overrides make valid runs (a
    // `--set sweep.<key>` may replace a list that held a bad value). Both parses read each file
    // once, through one `Files`.
    let files = Files::default();
    let alone = |which| validate::parse_planning(&source, &files, which).map(drop);
    alone(Points::None)?;
    let parsed: Vec<Set> = sets
        .iter()
        .map(|s| parse_set(path, s))
        .collect::<Result<_, _>>()?;
    let mut table: Table = toml::from_str(&source.text)
        .map_err(|e| ConfigError::file(path, e.message().to_string()))?;
    for set in &parsed {
        set_in(&mut table, &set.path, set.value.clone())
            .map_err(|m| ConfigError::file(path, format!("--set {}: {m}", set.text)))?;
    }
    let text = toml::to_string(&table).map_err(|e| ConfigError::file(path, e.to_string()))?;
    let overridden = Source {
        path: path.to_path_buf(),
        text,
    };
    let with_sets = validate::parse_planning(&overridden, &files, Points::All);
    if with_sets.is_err() {
        alone(Points::All)?;
    }
    with_sets.map_err(|mut e| {
        let culprit = parsed.iter().rev().find(|s| {
            let key = s.path.join(".");
            e.key.replace('[', ".").replace(']', "").starts_with(&key) || e.key.is_empty()
        });
        let set = culprit.map_or_else(|| sets.join(" --set "), |s| s.text.clone());
        e.message = format!("after --set {set}: {}", e.message);
        e.line = 0;
        e.column = 0;
        e.snippet = None;
        e
    })
}
