//! `Raw*` → `Experiment`: every check that a well-typed file can still fail, each located.

use std::collections::HashSet;
use std::ops::Range;

use gradscope_model::{Activation, Initializer, MlpConfig};
use toml::Spanned;

use super::inputs::{Files, read_input};
use super::ints::{Depth, IntRange};
use super::kinds::{ACTIVATIONS, DISTRIBUTIONS, INITIALIZERS, Kind, LOSSES};
use super::raw::{RawExperiment, RawInput, RawModel, RawNamed, RawPrecision, fields_of};
use super::source::{ConfigError, Source, did_you_mean};
use super::{Distribution, Experiment, InputCase, InputSource, Loss, Precision};
use crate::backend::BackendKind;

type Result<T> = std::result::Result<T, ConfigError>;

/// The deepest stack accepted (a guard against typos such as `depth = 10000000`).
const MAX_DEPTH: i64 = Depth::MAX;

/// What the smallest experiment holds, for files that lack keys.
const MINIMAL: &str = "an experiment needs `name`, `seed`, `[model]` with `input`, `hidden` (or `depth` and `width`) and `output`, and `[[inputs]]` cases with `name`, `batch` and `distribution` (or a `[train]` table with `steps` and `learning_rate`); see configs/";

pub(super) fn parse(src: &Source, files: &Files) -> Result<Experiment> {
    parse_planning(src, files, super::sweep::Points::All)
}

#[cfg(test)]
thread_local! {
    /// How many texts this thread has validated (a file, a sweep point each), for the tests
    /// that count them.
    pub(super) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// [`parse`], validating `which` of a sweep's points.
pub(super) fn parse_planning(
    src: &Source,
    files: &Files,
    which: super::sweep::Points,
) -> Result<Experiment> {
    #[cfg(test)]
    PARSES.with(|n| n.set(n.get() + 1));
    if src.text.trim().is_empty() {
        return Err(ConfigError::file(&src.path, "the file is empty").with_hint(MINIMAL));
    }
    // Every missing key at once, where serde would stop at the first one (or where only the
    // case-level `batch` is missing); any other serde error (an unknown key, a wrong type) first.
    let raw = toml::from_str::<RawExperiment>(&src.text);
    if raw
        .as_ref()
        .err()
        .is_none_or(|e| e.message().starts_with("missing field"))
    {
        let mut missing = super::missing::missing_fields(src);
        if let Some(last) = missing.last_mut() {
            last.hint = Some(MINIMAL.to_string());
        }
        if let Some(e) = ConfigError::all(missing) {
            return Err(e);
        }
    }
    let raw = raw.map_err(|e| toml_error(src, &e))?;
    validate(src, raw, files, which)
}

/// Turn a TOML/serde error into a located `ConfigError` with a did-you-mean hint.
fn toml_error(src: &Source, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let mut err = src.error(e.span(), None, message.clone());
    if message.starts_with("missing field") {
        // The span covers the table that lacks the field: name the table, not its first key.
        let span_start = e.span().map_or(0, |s| s.start);
        err.key = if span_start == 0 {
            String::new()
        } else {
            super::source::table_path_at(&src.text, span_start)
        };
    }
    if let Some(unknown) = between(&message, "unknown field `", "`") {
        let known: &[&str] = if err.key.starts_with("model") {
            fields_of::<RawModel>()
        } else if err.key.starts_with("inputs") {
            fields_of::<RawInput>()
        } else {
            fields_of::<RawExperiment>()
        };
        if let Some(s) = did_you_mean(unknown, known.iter().copied()) {
            err = err.with_hint(format!("did you mean `{s}`?"));
        }
    }
    err
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// Checks raw config values against the source they came from (for located errors).
pub struct Checker<'a> {
    src: &'a Source,
    files: &'a Files,
}

impl Checker<'_> {
    /// The config file's directory (files it names are relative to it).
    pub(super) fn dir(&self) -> &std::path::Path {
        self.src.path.parent().unwrap_or(std::path::Path::new(""))
    }

    /// The files read so far.
    pub(super) fn files(&self) -> &Files {
        self.files
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        self.src.error(Some(span), Some(key), message)
    }

    fn width(&self, v: &Spanned<i64>, key: &str) -> Result<usize> {
        let n = *v.get_ref();
        if n < 1 {
            return Err(self.err(
                v.span(),
                key,
                format!("a width must be at least 1, found {n}"),
            ));
        }
        usize::try_from(n).map_err(|_| self.err(v.span(), key, format!("{n} is too large")))
    }

    pub(super) fn finite(&self, v: f64, span: &Range<usize>, key: &str, what: &str) -> Result<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(
                span.clone(),
                key,
                format!("{what} must be a finite number, found {v}"),
            ))
        }
    }

    /// Resolve a named choice: the kind must be one of `kinds`, and only the parameters listed
    /// for that kind may be given; then the kind's constructor builds the value.
    pub(super) fn named<T>(
        &self,
        v: &Spanned<RawNamed>,
        key: &str,
        what: &str,
        kinds: &[Kind<T>],
    ) -> Result<T> {
        let raw = v.get_ref();
        let Some(kind) = kinds.iter().find(|k| k.name == raw.kind) else {
            let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
            let mut e = self.err(
                v.span(),
                key,
                format!(
                    "unknown {what} `{}`, expected one of: {}",
                    raw.kind,
                    names.join(", ")
                ),
            );
            if let Some(s) = did_you_mean(&raw.kind, names.iter().copied()) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        };
        let allowed: Vec<&str> = kind.params.iter().map(|p| p.name).collect();
        for (p, value) in &raw.params {
            if !allowed.contains(&p.as_str()) {
                let takes = if allowed.is_empty() {
                    "no parameters".to_string()
                } else {
                    format!(
                        "only {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let mut e = self.err(
                    v.span(),
                    key,
                    format!("{what} `{}` takes {takes}, not `{p}`", raw.kind),
                );
                if let Some(s) = did_you_mean(p, allowed.iter().copied()) {
                    e = e.with_hint(format!("did you mean `{s}`?"));
                }
                return Err(e);
            }
            self.finite(*value, &v.span(), &format!("{key}.{p}"), &format!("`{p}`"))?;
        }
        kind.build(self, v, key)
    }

    pub(super) fn non_negative_std(
        &self,
        v: &Spanned<RawNamed>,
        key: &str,
        std: f64,
    ) -> Result<f64> {
        if std < 0.0 {
            return Err(self.err(
                v.span(),
                &format!("{key}.std"),
                format!("`std` must be ≥ 0, found {std}"),
            ));
        }
        Ok(std)
    }

    pub(super) fn ordered_bounds(
        &self,
        v: &Spanned<RawNamed>,
        key: &str,
        low: f64,
        high: f64,
    ) -> Result<(f64, f64)> {
        if low >= high {
            return Err(self.err(
                v.span(),
                key,
                format!("`low` must be below `high`, found low = {low}, high = {high}"),
            ));
        }
        Ok((low, high))
    }

    /// A parameter of the table at `key` that is out of its range.
    pub(super) fn bad_param(
        &self,
        v: &Spanned<RawNamed>,
        key: &str,
        message: String,
    ) -> ConfigError {
        self.err(v.span(), key, message)
    }

    /// A loss scale's `init` or `scale`: a number > 0 that is finite in f32, the type the scale
    /// is kept in.
    pub(super) fn loss_scale_value(
        &self,
        v: &Spanned<RawNamed>,
        key: &str,
        name: &str,
        value: f64,
    ) -> Result<f64> {
        let f = value as f32;
        if !(value > 0.0 && f.is_finite() && f > 0.0) {
            return Err(self.err(
                v.span(),
                key,
                format!("`{name}` must be a number > 0 and finite in f32 (the scale is an f32), found {value:?}"),
            ));
        }
        Ok(value)
    }

    pub(super) fn required(&self, v: &Spanned<RawNamed>, key: &str, param: &str) -> ConfigError {
        self.err(
            v.span(),
            key,
            format!("`{}` needs `{param}`", v.get_ref().kind),
        )
        .with_hint(format!(
            "write it as a table: {{ kind = \"{}\", {param} = ... }}",
            v.get_ref().kind
        ))
    }

    fn activation(&self, v: &Spanned<RawNamed>, key: &str) -> Result<Activation> {
        self.named(v, key, "activation", ACTIVATIONS)
    }

    fn initializer(&self, v: &Spanned<RawNamed>, key: &str) -> Result<Initializer> {
        self.named(v, key, "initialiser", INITIALIZERS)
    }

    fn distribution(&self, v: &Spanned<RawNamed>, key: &str) -> Result<Distribution> {
        self.named(v, key, "distribution", DISTRIBUTIONS)
    }

    fn loss(&self, v: &Spanned<RawNamed>) -> Result<Loss> {
        self.named(v, "loss", "loss", LOSSES)
    }

    fn model(&self, m: &Spanned<RawModel>, seed: u64) -> Result<MlpConfig> {
        let raw = m.get_ref();
        let d_input = self.width(&raw.input, "model.input")?;
        let d_output = self.width(&raw.output, "model.output")?;
        let hidden = self.hidden(m)?;
        let activations = self.activations(raw, hidden.len())?;
        let kernel_init = match &raw.kernel_init {
            Some(i) => self.initializer(i, "model.kernel_init")?,
            None => Initializer::GlorotUniform,
        };
        let bias_init = match &raw.bias_init {
            Some(i) => self.initializer(i, "model.bias_init")?,
            None => Initializer::Zeros,
        };
        let gain = match &raw.gain {
            Some(g) => self.gain(g)?,
            None => 1.0,
        };
        Ok(MlpConfig {
            d_input,
            activations,
            hidden,
            d_output,
            bias: raw.bias.as_ref().is_none_or(|b| *b.get_ref()),
            kernel_init,
            bias_init,
            gain,
            seed,
        })
    }

    /// The hidden widths: `hidden`, or `depth` layers of `width`.
    fn hidden(&self, m: &Spanned<RawModel>) -> Result<Vec<usize>> {
        let raw = m.get_ref();
        Ok(match (&raw.hidden, &raw.depth, &raw.width) {
            (Some(h), None, None) if h.get_ref().len() > MAX_DEPTH as usize => {
                return Err(self.err(
                    h.span(),
                    "model.hidden",
                    format!("at most {MAX_DEPTH} hidden layers"),
                ));
            }
            (Some(h), None, None) => h
                .get_ref()
                .iter()
                .enumerate()
                .map(|(i, w)| self.width(w, &format!("model.hidden[{i}]")))
                .collect::<Result<Vec<_>>>()?,
            (None, Some(depth), Some(width)) => {
                let d = *depth.get_ref();
                if !(0..=MAX_DEPTH).contains(&d) {
                    return Err(self.err(
                        depth.span(),
                        "model.depth",
                        format!("depth must be 0 to {MAX_DEPTH}, found {d}"),
                    ));
                }
                vec![self.width(width, "model.width")?; d as usize]
            }
            (Some(h), _, _) => {
                return Err(self.err(
                    h.span(),
                    "model.hidden",
                    "give either `hidden` or `depth` + `width`, not both",
                ));
            }
            (None, Some(d), None) => {
                return Err(self
                    .err(d.span(), "model.depth", "`depth` needs `width`")
                    .with_hint("add `width = N` (on the command line: --set model.width=N)"));
            }
            (None, None, Some(w)) => {
                return Err(self.err(w.span(), "model.width", "`width` needs `depth`"));
            }
            (None, None, None) => {
                return Err(self.err(m.span(), "model", "missing the hidden layers")
                    .with_hint("add `hidden = [100, 50]`, or `depth = 4` and `width = 256` (`hidden = []` for none)"));
            }
        })
    }

    /// One activation per hidden layer: `activation`, with `activation_overrides`.
    fn activations(&self, raw: &RawModel, layers: usize) -> Result<Vec<Activation>> {
        let activation = match &raw.activation {
            Some(a) => self.activation(a, "model.activation")?,
            None => Activation::Relu,
        };
        let mut activations = vec![activation; layers];
        for (layer, a) in raw.activation_overrides.iter().flat_map(|o| o.get_ref()) {
            let key = format!("model.activation_overrides.{layer}");
            let index = layer
                .parse::<usize>()
                .ok()
                .filter(|i| *i < layers)
                .ok_or_else(|| {
                    self.err(
                        a.span(),
                        &key,
                        format!(
                            "`{layer}` is not a hidden-layer index; expected 0 to {}",
                            layers.saturating_sub(1)
                        ),
                    )
                })?;
            activations[index] = self.activation(a, &key)?;
        }
        Ok(activations)
    }

    fn gain(&self, g: &Spanned<f64>) -> Result<f64> {
        let v = self.finite(*g.get_ref(), &g.span(), "model.gain", "`gain`")?;
        if v <= 0.0 {
            return Err(self.err(
                g.span(),
                "model.gain",
                format!("`gain` must be > 0, found {v}"),
            ));
        }
        Ok(v)
    }
}

/// Why `name` cannot be used as one plain file-name component, or `None` when it can.
/// Experiment and case names become record directories, notebook pages and dump files, so a
/// name must stay inside the directory it is joined to: ASCII letters, digits, `-`, `_` and `.`
/// only, and not `.` or `..` (they leave it), nor starting with `.` (a hidden file, which
/// `.partial-*` record directories also use) or `-` (read as a flag by tools given the path).
pub fn unsafe_file_name(name: &str) -> Option<String> {
    let why = |s: &str| Some(s.to_string());
    if name.is_empty() {
        why("it is empty")
    } else if name == "." || name == ".." {
        why("`.` and `..` name directories, not files")
    } else if name.starts_with('.') {
        why("a name starting with `.` is a hidden file")
    } else if name.starts_with('-') {
        why("a name starting with `-` reads as a flag in shell commands")
    } else {
        name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || "-_.".contains(*ch))).map(|ch| format!(
            "{ch:?} is not allowed: only ASCII letters (a-z, A-Z), digits, `-`, `_` and `.` are"
        ))
    }
}

fn validate(
    src: &Source,
    raw: RawExperiment,
    files: &Files,
    which: super::sweep::Points,
) -> Result<Experiment> {
    let c = Checker { src, files };
    let name = c.name(&raw.name)?;
    let description = c.description(raw.description.as_ref())?;
    let seed = *raw.seed.get_ref();
    let seed = u64::try_from(seed).map_err(|_| {
        c.err(
            raw.seed.span(),
            "seed",
            format!("the seed must be ≥ 0, found {seed}"),
        )
    })?;
    let backend = raw.backend.as_ref().map(|b| c.backend(b)).transpose()?;
    let precision = match &raw.precision {
        Some(p) => c.precision(p, raw.train.is_some())?,
        None => Precision::F32,
    };
    let model = c.model(&raw.model, seed)?;
    let loss = match &raw.loss {
        Some(l) => c.loss(l)?,
        None => Loss::SumSquares,
    };
    let inputs = match &raw.inputs {
        Some(inputs) => c.inputs(inputs, &model, train_rows(&raw))?,
        // A training run's teacher draws N(0, 1) inputs (`train::teacher_inputs`).
        None if raw.train.is_some() => Vec::new(),
        None => {
            return Err(ConfigError::file(&src.path, "missing `[[inputs]]`").with_hint(MINIMAL));
        }
    };
    let weights = c.weights(&raw.model, &model)?;
    let task = match &raw.train {
        Some(t) => super::Task::Train(Box::new(c.train(t, &model, &loss, &inputs)?)),
        None => super::Task::Probe,
    };
    if task == super::Task::Probe && loss.needs_labels() {
        let span = raw.loss.as_ref().map_or(0..0, Spanned::span);
        return Err(c.err(
            span,
            "loss",
            format!(
                "the loss `{}` compares the output with class labels, which come with training: add a [train] table",
                loss.name()
            ),
        ));
    }
    let sweep = match &raw.sweep {
        Some(table) => Some(super::sweep::plan(src, table, seed, files, which)?),
        None => None,
    };
    Ok(Experiment {
        name,
        description,
        seed,
        backend,
        precision,
        model,
        loss,
        inputs,
        weights,
        task,
        sweep,
        path: src.path.clone(),
    })
}

/// The rows a training run draws a step (`train.batch`, default 32): what a case without
/// `batch` gets in a training run, which draws its batches itself. `None` outside training.
fn train_rows(raw: &RawExperiment) -> Option<usize> {
    let t = raw.train.as_ref()?.get_ref();
    let rows = t
        .batch
        .as_ref()
        .map_or(super::train::DEFAULT_BATCH as i64, |b| *b.get_ref());
    Some(rows.clamp(1, super::ints::TrainBatch::MAX) as usize)
}

mod cases;

#[cfg(test)]
mod kind_tests;
