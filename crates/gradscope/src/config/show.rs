//! `Experiment` → TOML with every default filled in: what `gradscope show` prints, and a file
//! `gradscope run` accepts back unchanged.

use std::fmt::Write as _;

use gradscope_model::{Activation, Initializer};

use super::kinds::{ACTIVATIONS, DISTRIBUTIONS, INITIALIZERS, Kind, LOSSES};
use super::kinds::{CLIPS, LOSS_SCALES, OPTIMIZERS};
use super::{Data, Experiment, InputSource, Precision, Train};

/// A TOML float literal (Rust's `{:?}` of a finite f64 always has a `.` or an exponent).
fn num(v: f64) -> String {
    format!("{v:?}")
}

fn quote(s: &str) -> String {
    // TOML basic strings share JSON's escapes for what can occur here.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A named choice as written in configs.
fn named<T>(kinds: &[Kind<T>], value: &T) -> String {
    super::kinds::show_named(kinds, value)
}

fn activation(a: &Activation) -> String {
    named(ACTIVATIONS, a)
}

fn initializer(i: &Initializer) -> String {
    named(INITIALIZERS, i)
}

impl Experiment {
    /// The resolved experiment as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Resolved from {} by `gradscope show`.",
            self.path.display()
        );
        let _ = writeln!(s, "name = {}", quote(&self.name));
        if !self.description.is_empty() {
            let _ = writeln!(s, "description = {}", quote(&self.description));
        }
        let _ = writeln!(s, "seed = {}", self.seed);
        if let Some(b) = self.backend {
            let _ = writeln!(s, "backend = {}", quote(b.name()));
        }
        match self.task.train() {
            // A training run in 16 bits keeps f32 master weights.
            Some(_) if self.precision != Precision::F32 => {
                let _ = writeln!(
                    s,
                    "precision = {{ compute = {}, master = \"f32\" }}",
                    quote(self.precision.name())
                );
            }
            _ => {
                let _ = writeln!(s, "precision = {}", quote(self.precision.name()));
            }
        }
        let _ = writeln!(s, "loss = {}", named(LOSSES, &self.loss));
        s.push_str(&self.model_toml());
        for case in &self.inputs {
            let _ = writeln!(s, "\n[[inputs]]");
            let _ = writeln!(s, "name = {}", quote(&case.name));
            let _ = writeln!(s, "batch = {}", case.batch);
            match &case.source {
                InputSource::Distribution(d) => {
                    let _ = writeln!(s, "distribution = {}", named(DISTRIBUTIONS, d));
                }
                InputSource::File { path, .. } => {
                    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                    let _ = writeln!(s, "file = {}", quote(&shown.to_string_lossy()));
                }
            }
        }
        if let Some(t) = self.task.train() {
            s.push_str(&train_toml(t));
        }
        if let Some(sweep) = &self.sweep {
            s.push_str(&sweep.to_toml());
        }
        s
    }
}

impl Experiment {
    /// The `[model]` table, every default written out.
    fn model_toml(&self) -> String {
        let m = &self.model;
        let mut s = String::new();
        let _ = writeln!(s, "\n[model]");
        let _ = writeln!(s, "input = {}", m.d_input);
        let hidden: Vec<String> = m.hidden.iter().map(|h| h.to_string()).collect();
        let _ = writeln!(s, "hidden = [{}]", hidden.join(", "));
        let _ = writeln!(s, "output = {}", m.d_output);
        let base = m.activations.first().copied().unwrap_or(Activation::Relu);
        let _ = writeln!(s, "activation = {}", activation(&base));
        let overrides: Vec<String> = m
            .activations
            .iter()
            .enumerate()
            .filter(|(_, a)| **a != base)
            .map(|(i, a)| format!("{i} = {}", activation(a)))
            .collect();
        if !overrides.is_empty() {
            let _ = writeln!(s, "activation_overrides = {{ {} }}", overrides.join(", "));
        }
        let _ = writeln!(s, "bias = {}", m.bias);
        let _ = writeln!(s, "kernel_init = {}", initializer(&m.kernel_init));
        let _ = writeln!(s, "bias_init = {}", initializer(&m.bias_init));
        let _ = writeln!(s, "gain = {}", num(m.gain));
        if let Some(w) = &self.weights {
            let shown = std::fs::canonicalize(&w.path).unwrap_or_else(|_| w.path.clone());
            let _ = writeln!(
                s,
                "weights = {{ file = {}, layout = {} }}",
                quote(&shown.to_string_lossy()),
                quote(w.layout.name())
            );
        }
        s
    }
}

/// A data file as configs write it: its quoted path, or `{ file = ..., array = ... }`.
fn file_ref(quoted_path: &str, array: Option<&str>) -> String {
    match array {
        Some(a) => format!("{{ file = {quoted_path}, array = {} }}", quote(a)),
        None => quoted_path.to_string(),
    }
}

/// The `[train]` table, every default written out.
fn train_toml(t: &Train) -> String {
    let shown = |p: &std::path::Path| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        quote(&p.to_string_lossy())
    };
    let data = match &t.data {
        Data::Teacher { classes: Some(k) } => format!("{{ kind = \"teacher\", classes = {k} }}"),
        Data::Teacher { classes: None } => "{ kind = \"teacher\" }".to_string(),
        Data::Files {
            inputs_path,
            inputs_array,
            targets_path,
            targets_array,
            ..
        } => format!(
            "{{ kind = \"files\", inputs = {}, targets = {} }}",
            file_ref(&shown(inputs_path), inputs_array.as_deref()),
            file_ref(&shown(targets_path), targets_array.as_deref())
        ),
    };
    let checkpoints = t
        .checkpoint_every
        .map_or(String::new(), |n| format!("checkpoint_every = {n}\n"));
    format!(
        "\n[train]\nsteps = {}\nbatch = {}\noptimizer = {}\nlearning_rate = {}\nclip = {}\nloss_scale = {}\n{checkpoints}data = {data}\n",
        t.steps,
        t.batch,
        named(OPTIMIZERS, &t.optimizer),
        num(t.learning_rate),
        named(CLIPS, &t.clip),
        named(LOSS_SCALES, &t.loss_scale),
    )
}
