//! `[sweep]`: lists of values for config keys span a grid; every point is the base config with
//! those keys set (by the `--set` machinery, so validated like a file), run for `trials` seeds.

use toml::{Spanned, Table, Value};

use super::sets::{set_in, settable, settable_keys};
use super::source::{ConfigError, Source, did_you_mean};
use super::{Experiment, parse};

/// The largest grid accepted (points × trials).
pub const MAX_TRIALS_TOTAL: usize = 10_000_000;

/// A validated sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Seeds per grid point: the experiment's seed, seed + 1, ..., seed + trials − 1.
    pub trials: usize,
    /// The swept keys and their values, in key order.
    pub axes: Vec<(String, Vec<Value>)>,
    /// Every grid point, the last axis varying fastest.
    pub points: Vec<SweepPoint>,
}

/// One grid point: its settings and the experiment they make (with the base seed).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// `(key, value as TOML)` for each axis.
    pub settings: Vec<(String, String)>,
    /// The experiment at this point.
    pub experiment: Experiment,
}

impl SweepPoint {
    /// `model.depth=8 model.activation="tanh"`.
    pub fn label(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub(super) fn expand(src: &Source, sweep: &Spanned<Table>) -> Result<Sweep, ConfigError> {
    let err = |m: String| src.error(Some(sweep.span()), Some("sweep"), m);
    let (trials, axes) = axes_of(sweep.get_ref(), &err)?;
    let n_points: usize = axes.iter().map(|(_, v)| v.len()).product();
    if n_points.saturating_mul(trials) > MAX_TRIALS_TOTAL {
        return Err(err(format!(
            "{n_points} points x {trials} trials is more than {MAX_TRIALS_TOTAL} runs"
        )));
    }
    let mut base: Table = toml::from_str(&src.text).map_err(|e| err(e.message().to_string()))?;
    base.remove("sweep");
    let mut points = Vec::with_capacity(n_points);
    let mut index = vec![0usize; axes.len()];
    for _ in 0..n_points {
        points.push(point(src, &base, &axes, &index, &err)?);
        // Odometer: the last axis varies fastest.
        for a in (0..axes.len()).rev() {
            index[a] += 1;
            if index[a] < axes[a].1.len() {
                break;
            }
            index[a] = 0;
        }
    }
    Ok(Sweep {
        trials,
        axes,
        points,
    })
}

/// A swept key and its values.
type Axis = (String, Vec<Value>);

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
            let mut e = err(format!("unknown key `{key}` in the sweep"));
            if let Some(s) = did_you_mean(key, settable_keys().iter().map(String::as_str)) {
                e = e.with_hint(format!(
                    "did you mean `{s}`? (quote dotted keys: \"model.depth\" = [2, 4])"
                ));
            } else {
                e = e.with_hint("write dotted keys quoted, e.g. \"model.depth\" = [2, 4, 8]");
            }
            return Err(e);
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

/// The grid point with value `index[a]` of each axis `a`: the base config with those values
/// set, validated as a file is.
fn point(
    src: &Source,
    base: &Table,
    axes: &[Axis],
    index: &[usize],
    err: &dyn Fn(String) -> ConfigError,
) -> Result<SweepPoint, ConfigError> {
    let mut table = base.clone();
    let mut settings = Vec::new();
    for (a, (key, values)) in axes.iter().enumerate() {
        let value = values[index[a]].clone();
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set_in(&mut table, &path, value.clone()).map_err(|m| err(format!("`{key}`: {m}")))?;
        settings.push((key.clone(), value.to_string()));
    }
    let label = settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let text = toml::to_string(&table).map_err(|e| err(e.to_string()))?;
    let experiment = parse(Source {
        path: src.path.clone(),
        text,
    })
    .map_err(|e| {
        let key = if e.key.is_empty() {
            String::new()
        } else {
            format!("`{}`: ", e.key)
        };
        err(format!(
            "the sweep point {label} is invalid: {key}{}",
            e.message
        ))
    })?;
    Ok(SweepPoint {
        settings,
        experiment,
    })
}

impl Sweep {
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
