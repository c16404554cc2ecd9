//! `[sweep]`: lists of values for config keys span a grid; every point is the base config with
//! those keys set (by the `--set` machinery, so validated like a file), run for `trials` seeds.
//!
//! A [`Sweep`] is a plan: the base config and the axes. A point's [`Experiment`] is built when
//! it is asked for ([`Sweep::point`]), from the files read once for the whole sweep.
//! Loading checks every point once, so that a bad point is refused before anything runs.

use std::ops::Range;

use toml::{Spanned, Table, Value};

use super::Experiment;
use super::inputs::Files;
use super::ints::MAX_SEED;
use super::sets::{set_in, settable, settable_keys};
use super::source::{ConfigError, Source, did_you_mean};

/// The largest grid accepted (points × trials).
pub const MAX_TRIALS_TOTAL: usize = 10_000_000;

/// A swept key and its values.
pub type Axis = (String, Vec<Value>);

/// A validated sweep: the plan its points are built from.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Seeds per grid point: the experiment's seed, seed + 1, ..., seed + trials − 1.
    pub trials: usize,
    /// The swept keys and their values, in key order; the last axis varies fastest.
    pub axes: Vec<Axis>,
    /// The input cases' names (those of the first point); `train` for a training sweep,
    /// whose trials have one record each.
    pub cases: Vec<String>,
    /// The config without its `[sweep]` table.
    base: Table,
    /// The config file, for located errors.
    source: Source,
    /// The `[sweep]` table's place in the file.
    span: Range<usize>,
    /// The files the points read, each read once.
    files: Files,
}

impl PartialEq for Sweep {
    fn eq(&self, other: &Self) -> bool {
        (self.trials, &self.axes, &self.base) == (other.trials, &other.axes, &other.base)
    }
}

impl Sweep {
    /// The number of grid points.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|(_, v)| v.len()).product()
    }

    /// Whether the grid has no points (never, for a validated sweep).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `i`'s index along each axis (odometer order: the last axis varies fastest).
    fn index(&self, mut i: usize) -> Vec<usize> {
        let mut index = vec![0; self.axes.len()];
        for (a, (_, values)) in self.axes.iter().enumerate().rev() {
            index[a] = i % values.len();
            i /= values.len();
        }
        index
    }

    /// Point `i`'s settings: `(key, value as TOML)` for each axis.
    pub fn settings(&self, i: usize) -> Vec<(String, String)> {
        self.axes
            .iter()
            .zip(self.index(i))
            .map(|((key, values), v)| (key.clone(), values[v].to_string()))
            .collect()
    }

    /// Point `i`'s settings as values: `(key, value)` for each axis.
    pub fn values(&self, i: usize) -> Vec<(String, Value)> {
        self.axes
            .iter()
            .zip(self.index(i))
            .map(|((key, values), v)| (key.clone(), values[v].clone()))
            .collect()
    }

    /// Point `i`'s label: `model.depth=8 model.activation="tanh"`.
    pub fn label(&self, i: usize) -> String {
        self.settings(i)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The experiment at point `i` (with the base seed), validated as a file is.
    pub fn point(&self, i: usize) -> Result<Experiment, ConfigError> {
        let err = |m: String| self.source.error(Some(self.span.clone()), Some("sweep"), m);
        let mut table = self.base.clone();
        for ((key, values), v) in self.axes.iter().zip(self.index(i)) {
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            set_in(&mut table, &path, values[v].clone())
                .map_err(|m| err(format!("`{key}`: {m}")))?;
        }
        let text = toml::to_string(&table).map_err(|e| err(e.to_string()))?;
        let source = Source {
            path: self.source.path.clone(),
            text,
        };
        super::validate::parse(&source, &self.files).map_err(|e| {
            let key = if e.key.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", e.key)
            };
            err(format!(
                "the sweep point {} is invalid: {key}{}",
                self.label(i),
                e.message
            ))
        })
    }

    /// Every point's experiment, built one at a time.
    pub fn points(&self) -> impl Iterator<Item = Result<Experiment, ConfigError>> + '_ {
        (0..self.len()).map(|i| self.point(i))
    }

    /// The `[sweep]` table as TOML.
    pub fn to_toml(&self) -> String {
        let mut s = format!("\n[sweep]\ntrials = {}\n", self.trials);
        for (key, values) in &self.axes {
            let list: Vec<String> = values.iter().map(Value::to_string).collect();
            s.push_str(&format!("\"{key}\" = [{}]\n", list.join(", ")));
        }
        s
    }
}

/// The plan of `src`'s `[sweep]` table, every point checked.
pub(super) fn plan(
    src: &Source,
    sweep: &Spanned<Table>,
    seed: u64,
    files: &Files,
) -> Result<Sweep, ConfigError> {
    let err = |m: String| src.error(Some(sweep.span()), Some("sweep"), m);
    let (trials, axes) = axes_of(sweep.get_ref(), &err)?;
    check_last_seed(seed, trials, &err)?;
    let n_points: usize = axes.iter().map(|(_, v)| v.len()).product();
    if n_points.saturating_mul(trials) > MAX_TRIALS_TOTAL {
        return Err(err(format!(
            "{n_points} points x {trials} trials is more than {MAX_TRIALS_TOTAL} runs"
        )));
    }
    let mut base: Table = toml::from_str(&src.text).map_err(|e| err(e.message().to_string()))?;
    base.remove("sweep");
    let mut plan = Sweep {
        trials,
        axes,
        cases: Vec::new(),
        base,
        source: src.clone(),
        span: sweep.span(),
        files: files.clone(),
    };
    let first = plan.point(0)?;
    plan.cases = match first.task {
        super::Task::Train(_) => vec!["train".to_string()],
        super::Task::Probe => first.inputs.iter().map(|c| c.name.clone()).collect(),
    };
    for i in 1..plan.len() {
        plan.point(i)?;
    }
    Ok(plan)
}

/// The `[sweep]` table's `trials` (default 1) and its axes, each key checked to be settable.
fn axes_of(
    table: &Table,
    err: &dyn Fn(String) -> ConfigError,
) -> Result<(usize, Vec<Axis>), ConfigError> {
    let mut trials = 1usize;
    let mut axes = Vec::new();
    for (key, value) in table {
        if key == "trials" {
            trials = value
                .as_integer()
                .filter(|n| *n >= 1)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| err(format!("`trials` must be an integer ≥ 1, found {value}")))?;
        } else if key == "seed" {
            return Err(err(
                "`seed` cannot be swept; `trials = N` runs seeds seed, seed+1, ...".into(),
            ));
        } else if !settable(key) || key.starts_with("inputs") && value.is_table() {
            return Err(unknown_key(key, err));
        } else {
            match value {
                Value::Array(values) if !values.is_empty() => {
                    axes.push((key.clone(), values.clone()))
                }
                _ => {
                    return Err(err(format!(
                        "`{key}` needs a non-empty list of values, found {value}"
                    )));
                }
            }
        }
    }
    Ok((trials, axes))
}

/// The trials run the seeds seed, ..., seed + trials − 1; the last must be a seed a config can
/// hold, so that every trial can be run again as a plain run.
fn check_last_seed(
    seed: u64,
    trials: usize,
    err: &dyn Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    let last = u128::from(seed) + trials as u128 - 1;
    if last <= u128::from(MAX_SEED) {
        return Ok(());
    }
    let most = u128::from(MAX_SEED) + 1 - trials as u128;
    Err(err(format!(
        "`trials` = {trials} from seed {seed} runs the seeds up to {last}, past the largest seed {MAX_SEED} (2⁶³ − 1): those trials could not be run again"
    ))
    .with_hint(format!(
        "with {trials} trials the seed can be at most {most}"
    )))
}

fn unknown_key(key: &str, err: &dyn Fn(String) -> ConfigError) -> ConfigError {
    let e = err(format!("unknown key `{key}` in the sweep"));
    match did_you_mean(key, settable_keys().iter().map(String::as_str)) {
        Some(s) => e.with_hint(format!(
            "did you mean `{s}`? (quote dotted keys: \"model.depth\" = [2, 4])"
        )),
        None => e.with_hint("write dotted keys quoted, e.g. \"model.depth\" = [2, 4, 8]"),
    }
}

#[cfg(test)]
mod tests {
    /// A .npy file of `rows` × 2 f32 zeros.
    fn npy(rows: usize) -> Vec<u8> {
        let zeros = vec![0u8; rows * 2 * 4];
        super::super::inputs::tests::npy("<f4", &format!("({rows}, 2)"), &zeros)
    }

    /// The grid is built point by point, from files read once: after loading, the input file
    /// can go and every point still builds (with its data); the points come in odometer order.
    #[test]
    fn points_are_built_lazily_from_files_read_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("x.npy");
        std::fs::write(&data, npy(3)).unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().join("s.toml");
        std::fs::write(
            &config,
            "name = \"s\"\ndescription = \"d\"\nseed = 1\n[model]\ninput = 2\nhidden = [3]\n\
             output = 1\nactivation = \"relu\"\n[[inputs]]\nname = \"x\"\nfile = \"x.npy\"\n\
             [sweep]\n\"model.hidden\" = [[3], [3, 3]]\n\"model.activation\" = [\"relu\", \"tanh\", \"elu\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let exp = super::super::load(&config).unwrap_or_else(|e| panic!("{e}"));
        let sweep = exp.sweep.unwrap_or_else(|| panic!("no sweep"));
        std::fs::remove_file(&data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sweep.len(), 6);
        assert_eq!(sweep.cases, ["x"]);
        // Keys in TOML order (sorted), the last varying fastest.
        assert_eq!(
            sweep.label(3),
            "model.activation=\"tanh\" model.hidden=[3, 3]"
        );
        for (i, point) in sweep.points().enumerate() {
            let point = point.unwrap_or_else(|e| panic!("point {i}: {e}"));
            assert_eq!(
                point.model.activations[0].name(),
                ["relu", "tanh", "elu"][i / 2]
            );
            assert_eq!(
                point.model.widths().len() - 2,
                1 + i % 2,
                "depth of point {i}"
            );
        }
    }
}
