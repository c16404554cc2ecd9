//! `[sweep]`: lists of values for config keys span a grid; every point is the base config with
//! those keys set (by the `--set` machinery, so validated like a file), run for `trials` seeds.
//!
//! A [`Sweep`] is a plan: the axes and every point's [`Experiment`], each validated once, at
//! load, so that a bad point is refused before anything runs and nothing validates it again.
//! The points share the arrays of the files they read (one parse of each, through `Files`).

use std::ops::Range;
use std::sync::Arc;

use toml::{Spanned, Table, Value};

use super::Experiment;
use super::inputs::Files;
use super::ints::MAX_SEED;
use super::sets::{set_in, settable, settable_keys};
use super::source::{ConfigError, Source, did_you_mean};

/// The largest grid accepted (points × trials).
pub const MAX_TRIALS_TOTAL: usize = 10_000_000;

/// The most grid points accepted. The plan keeps every point's validated experiment, about
/// 1.2 KB each for a shallow network (10⁵ points of `model.width` × `inputs.0.batch` raised
/// `gradscope validate`'s peak memory from 12 to 128 MB), so a million points hold about a
/// gigabyte; trials per point are not limited by it.
pub const MAX_POINTS: usize = 1_000_000;

/// A swept key and its values.
pub type Axis = (String, Vec<Value>);

/// A validated sweep: the plan its trials run from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Seeds per grid point: the experiment's seed, seed + 1, ..., seed + trials − 1.
    pub trials: usize,
    /// The swept keys and their values, in key order; the last axis varies fastest.
    pub axes: Vec<Axis>,
    /// The input cases' names (those of the first point); `train` for a training sweep,
    /// whose trials have one record each.
    pub cases: Vec<String>,
    /// Every point's experiment (with the base seed), validated, in grid order. Shared:
    /// cloning a sweep copies no point.
    points: Arc<[Experiment]>,
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

    /// The experiment at point `i` (with the base seed), validated at load as a file is.
    ///
    /// # Panics
    /// Where `i` is not below [`Sweep::len`].
    pub fn point(&self, i: usize) -> &Experiment {
        &self.points[i]
    }

    /// Every point's experiment, in grid order.
    pub fn points(&self) -> impl Iterator<Item = &Experiment> + '_ {
        self.points.iter()
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

/// Which of a sweep's points [`plan`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Points {
    /// Every point, kept in the plan.
    All,
    /// The axes and the grid's size only, no point: for a file checked on its own before
    /// `--set`s change it (its plan is not kept; the file with the overrides is planned in
    /// full, and the file alone too where that fails).
    None,
}

/// The plan of `src`'s `[sweep]` table, every point validated (or none, with no cases).
pub(super) fn plan(
    src: &Source,
    sweep: &Spanned<Table>,
    seed: u64,
    files: &Files,
    which: Points,
) -> Result<Sweep, ConfigError> {
    let err = |m: String| src.error(Some(sweep.span()), Some("sweep"), m);
    let (trials, axes) = axes_of(sweep.get_ref(), &err)?;
    check_last_seed(seed, trials, &err)?;
    let n_points = axes
        .iter()
        .map(|(_, v)| v.len())
        .fold(1usize, usize::saturating_mul);
    if n_points > MAX_POINTS {
        let sizes: Vec<String> = axes
            .iter()
            .map(|(key, v)| format!("{key} ({})", v.len()))
            .collect();
        return Err(err(format!(
            "the grid has {} = {n_points} points, more than the {MAX_POINTS} a sweep may have: every point is validated and kept before anything runs",
            sizes.join(" x ")
        ))
        .with_hint("sweep fewer values, or split the grid into several sweep files (each writes its own record)"));
    }
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
        points: Arc::new([]),
    };
    let count = match which {
        Points::All => n_points,
        Points::None => 0,
    };
    let mut points = Vec::with_capacity(count);
    for i in 0..count {
        points.push(build_point(&plan, i, &base, src, sweep.span(), files)?);
    }
    plan.cases = match points.first().map(|p| &p.task) {
        Some(super::Task::Train(_)) => vec!["train".to_string()],
        Some(super::Task::Probe) => points[0].inputs.iter().map(|c| c.name.clone()).collect(),
        None => Vec::new(),
    };
    plan.points = points.into();
    Ok(plan)
}

/// The experiment at point `i` of `plan`: the file's table `base` (without `[sweep]`) with
/// the point's values set, validated as a file is; errors are placed at the `[sweep]` table.
fn build_point(
    plan: &Sweep,
    i: usize,
    base: &Table,
    src: &Source,
    span: Range<usize>,
    files: &Files,
) -> Result<Experiment, ConfigError> {
    let err = |m: String| src.error(Some(span.clone()), Some("sweep"), m);
    let mut table = base.clone();
    for ((key, values), v) in plan.axes.iter().zip(plan.index(i)) {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set_in(&mut table, &path, values[v].clone()).map_err(|m| err(format!("`{key}`: {m}")))?;
    }
    let text = toml::to_string(&table).map_err(|e| err(e.to_string()))?;
    let source = Source {
        path: src.path.clone(),
        text,
    };
    super::validate::parse(&source, files).map_err(|e| {
        let key = if e.key.is_empty() {
            String::new()
        } else {
            format!("`{}`: ", e.key)
        };
        err(format!(
            "the sweep point {} is invalid: {key}{}",
            plan.label(i),
            e.message
        ))
    })
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

    /// A sweep file of 6 points in `dir`, with `extra` appended to its `[sweep]` table.
    fn six_points(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
        let config = dir.join("s.toml");
        std::fs::write(
            &config,
            format!(
                "name = \"s\"\ndescription = \"d\"\nseed = 1\n[model]\ninput = 2\nhidden = [3]\n\
                 output = 1\nactivation = \"relu\"\n[[inputs]]\nname = \"x\"\nbatch = 2\n\
                 distribution = \"normal\"\n[sweep]\n\"model.hidden\" = [[3], [3, 3]]\n\
                 \"model.activation\" = [\"relu\", \"tanh\", \"elu\"]\n{extra}"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        config
    }

    fn parses() -> usize {
        super::super::validate::PARSES.with(std::cell::Cell::get)
    }

    /// Each point is validated once: loading a 6-point sweep validates the file and each
    /// point, 7 texts. With `--set`s, the file on its own (1, its grid's axes checked), then
    /// the file with the overrides and its 6 points (7): 8, where checking the file alone in
    /// full as well took 14.
    #[test]
    fn each_point_is_validated_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = six_points(dir.path(), "");
        let before = parses();
        let exp = super::super::load(&config).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parses() - before, 1 + 6);
        let before = parses();
        let set = super::super::sets::load_with_sets(&config, &["seed=2".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parses() - before, 1 + 7);
        assert_eq!(set.seed, 2);
        let sweep = set.sweep.unwrap_or_else(|| panic!("no sweep"));
        assert!(
            sweep.points().all(|p| p.seed == 2),
            "the points carry the --set"
        );
        assert_eq!(exp.sweep.map(|s| s.len()), Some(sweep.len()));
    }

    /// A point the file makes invalid on its own is reported as the file's, located in it,
    /// even with `--set`s that do not touch it; one the overrides make invalid names them;
    /// a bad list the overrides replace does not count.
    #[test]
    fn a_bad_point_is_reported_as_the_files_or_the_overrides() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = six_points(dir.path(), "\"model.gain\" = [1.0, -1.0]\n");
        let sets = ["seed=2".to_string()];
        let e = super::super::sets::load_with_sets(&config, &sets)
            .err()
            .unwrap_or_else(|| panic!("a negative gain was accepted"));
        assert!(e.line > 0, "located in the file: {e}");
        assert!(!e.message.contains("after --set"), "{e}");
        assert!(e.message.contains("model.gain=-1.0"), "{e}");
        let config = six_points(dir.path(), "");
        let sets = ["sweep.model.gain=[1.0, -1.0]".to_string()];
        let e = super::super::sets::load_with_sets(&config, &sets)
            .err()
            .unwrap_or_else(|| panic!("a negative gain was accepted"));
        assert!(e.message.contains("after --set"), "{e}");
        assert!(e.message.contains("model.gain=-1.0"), "{e}");
        // A list the overrides replace is not held against the file, wherever its bad value.
        let config = six_points(dir.path(), "\"model.gain\" = [-1.0, 1.0]\n");
        let sets = ["sweep.model.gain=[1.0, 2.0]".to_string()];
        let exp = super::super::sets::load_with_sets(&config, &sets)
            .unwrap_or_else(|e| panic!("the overridden grid is valid: {e}"));
        assert_eq!(exp.sweep.map(|s| s.len()), Some(12));
    }

    /// A grid past [`super::MAX_POINTS`] is refused before any point is validated, naming its
    /// size; one past [`super::MAX_TRIALS_TOTAL`] runs likewise.
    #[test]
    fn grids_past_the_limits_are_refused_before_validation() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let list = |n: usize| {
            let v: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            format!("[{}]", v.join(", "))
        };
        // With the file's 3 × 2: 6 006 000 points.
        let extra = format!(
            "\"model.input\" = {}\n\"inputs.0.batch\" = {}\n",
            list(1001),
            list(1000)
        );
        let config = six_points(dir.path(), &extra);
        let before = parses();
        let e = super::super::load(&config)
            .err()
            .unwrap_or_else(|| panic!("a grid of 1001000 points was accepted"));
        assert_eq!(parses() - before, 1, "no point was validated");
        assert!(
            e.message.contains(
                "inputs.0.batch (1000) x model.activation (3) x model.hidden (2) x model.input (1001) = 6006000 points"
            ),
            "{e}"
        );
        let config = six_points(dir.path(), "trials = 1666667\n");
        let e = super::super::load(&config)
            .err()
            .unwrap_or_else(|| panic!("10000002 runs were accepted"));
        assert!(e.message.contains("6 points x 1666667 trials"), "{e}");
    }

    /// Every point is validated at load and kept, from files read once: after loading, the
    /// input file can go and every point holds its data, one copy shared by all six; the
    /// points come in odometer order.
    #[test]
    fn points_are_kept_in_the_plan_sharing_the_files_they_read() {
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
            assert_eq!(
                point.model.activations[0].name(),
                ["relu", "tanh", "elu"][i / 2]
            );
            assert_eq!(
                point.model.widths().len() - 2,
                1 + i % 2,
                "depth of point {i}"
            );
            let data = |p: &super::Experiment| match &p.inputs[0].source {
                super::super::InputSource::File { data, .. } => data.clone(),
                other => panic!("point {i}: {other:?}"),
            };
            assert_eq!(data(point).shape, [3, 2]);
            assert!(
                std::sync::Arc::ptr_eq(&data(point), &data(sweep.point(0))),
                "point {i} shares point 0's array"
            );
        }
    }
}
