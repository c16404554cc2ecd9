//! `[train]` → [`Train`]: every check a training table can fail, each located.

use gradscope_model::MlpConfig;
use toml::Spanned;

use super::inputs::read_array;
use super::ints::{IntRange, Steps, TrainBatch};
use super::kinds::{CLIPS, LOSS_SCALES, OPTIMIZERS};
use super::raw::{RawData, RawTrain};
use super::source::ConfigError;
use super::validate::Checker;
use super::{Clip, Data, InputCase, InputSource, Loss, LossScale, Optimizer, Train};

type Result<T> = std::result::Result<T, ConfigError>;

/// `train.batch` when not given.
pub(super) const DEFAULT_BATCH: usize = 32;

impl Checker<'_> {
    /// The `[train]` table, checked against the model, the loss and the input cases.
    pub(super) fn train(
        &self,
        raw: &Spanned<RawTrain>,
        model: &MlpConfig,
        loss: &Loss,
        inputs: &[InputCase],
    ) -> Result<Train> {
        let t = raw.get_ref();
        let steps = self.count::<Steps>(&t.steps, "train.steps", "steps")?;
        let batch = match &t.batch {
            Some(b) => self.count::<TrainBatch>(b, "train.batch", "the batch")?,
            None => DEFAULT_BATCH,
        };
        let lr = *t.learning_rate.get_ref();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(self.err(
                t.learning_rate.span(),
                "train.learning_rate",
                format!("the learning rate must be a finite number > 0, found {lr}"),
            ));
        }
        let optimizer = match &t.optimizer {
            Some(o) => self.optimizer(o)?,
            None => Optimizer::Sgd { momentum: 0.0 },
        };
        let clip = match &t.clip {
            Some(c) => self.clip(c)?,
            None => Clip::None,
        };
        let data = self.data(raw, model, loss, inputs)?;
        let checkpoint_every = match &t.checkpoint_every {
            Some(n) => {
                Some(self.count::<Steps>(n, "train.checkpoint_every", "the checkpoint interval")?)
            }
            None => None,
        };
        let loss_scale = match &t.loss_scale {
            Some(v) => self.named(v, "train.loss_scale", "loss scaling", LOSS_SCALES)?,
            None => LossScale::None,
        };
        Ok(Train {
            loss_scale,
            steps,
            batch,
            optimizer,
            learning_rate: lr,
            clip,
            data,
            checkpoint_every,
        })
    }

    fn count<R: IntRange>(&self, v: &Spanned<i64>, key: &str, what: &str) -> Result<usize> {
        let n = *v.get_ref();
        if !(R::MIN..=R::MAX).contains(&n) {
            return Err(self.err(
                v.span(),
                key,
                format!(
                    "{what} must be between {} and {}, found {n}",
                    R::MIN,
                    R::MAX
                ),
            ));
        }
        Ok(n as usize)
    }

    fn optimizer(&self, v: &Spanned<crate::config::raw::RawNamed>) -> Result<Optimizer> {
        let o = self.named(v, "train.optimizer", "optimiser", OPTIMIZERS)?;
        let unit = |x: f64| (0.0..1.0).contains(&x);
        let bad = match o {
            Optimizer::Sgd { momentum } if !unit(momentum) => {
                Some(format!("`momentum` must be in [0, 1), found {momentum}"))
            }
            Optimizer::Adam { beta1, beta2, .. } if !unit(beta1) || !unit(beta2) => Some(format!(
                "`beta1` and `beta2` must be in [0, 1), found {beta1} and {beta2}"
            )),
            Optimizer::Adam { epsilon, .. } if epsilon <= 0.0 => {
                Some(format!("`epsilon` must be > 0, found {epsilon}"))
            }
            _ => None,
        };
        match bad {
            Some(m) => Err(self.err(v.span(), "train.optimizer", m)),
            None => Ok(o),
        }
    }

    fn clip(&self, v: &Spanned<crate::config::raw::RawNamed>) -> Result<Clip> {
        let c = self.named(v, "train.clip", "clipping", CLIPS)?;
        match c {
            Clip::Norm { max } | Clip::Value { max } if max <= 0.0 => Err(self.err(
                v.span(),
                "train.clip",
                format!("`max` must be > 0, found {max}"),
            )),
            c => Ok(c),
        }
    }

    /// `train.data`, and whether the loss fits it (labels for the cross-entropy losses).
    fn data(
        &self,
        raw: &Spanned<RawTrain>,
        model: &MlpConfig,
        loss: &Loss,
        inputs: &[InputCase],
    ) -> Result<Data> {
        let span = raw
            .get_ref()
            .data
            .as_ref()
            .map_or(raw.span(), Spanned::span);
        let err = |m: String| self.err(span.clone(), "train.data", m);
        let default = RawData {
            kind: "teacher".into(),
            classes: loss.needs_labels().then_some(model.d_output as i64),
            inputs: None,
            targets: None,
        };
        let d = raw
            .get_ref()
            .data
            .as_ref()
            .map_or(&default, Spanned::get_ref);
        let data = match d.kind.as_str() {
            "teacher" => self.teacher(d, model, inputs, &err)?,
            "files" => self.data_files(d, model, &err)?,
            other => {
                return Err(err(format!(
                    "unknown data kind `{other}`, expected one of: teacher, files"
                )));
            }
        };
        match (loss.needs_labels(), data.labels()) {
            (true, false) => Err(err(format!(
                "the loss `{}` needs class labels: data = {{ kind = \"teacher\", classes = {} }} or a labels file",
                loss.name(),
                model.d_output
            ))),
            (false, true) => Err(err(format!(
                "class labels need the loss `cross_entropy` or `cross_entropy_naive`, not `{}`",
                loss.name()
            ))),
            _ => Ok(data),
        }
    }

    fn teacher(
        &self,
        d: &RawData,
        model: &MlpConfig,
        inputs: &[InputCase],
        err: &dyn Fn(String) -> ConfigError,
    ) -> Result<Data> {
        if d.inputs.is_some() || d.targets.is_some() {
            return Err(err(
                "`inputs` and `targets` belong to data of kind `files`".into()
            ));
        }
        // Without [[inputs]], the teacher draws N(0, 1) inputs.
        if matches!(
            inputs.first().map(|c| &c.source),
            Some(InputSource::File { .. })
        ) {
            return Err(err("teacher data draws its inputs from the first [[inputs]] case's distribution; that case reads a file (use data = { kind = \"files\", ... })".into()));
        }
        let classes = match d.classes {
            None => None,
            Some(k) if k == model.d_output as i64 && k >= 2 => Some(k as usize),
            Some(k) => {
                return Err(err(format!(
                    "`classes` must equal model.output ({}) and be at least 2, found {k}",
                    model.d_output
                )));
            }
        };
        Ok(Data::Teacher { classes })
    }

    fn data_files(
        &self,
        d: &RawData,
        model: &MlpConfig,
        err: &dyn Fn(String) -> ConfigError,
    ) -> Result<Data> {
        if d.classes.is_some() {
            return Err(err(
                "`classes` belongs to teacher data; a labels file has model.output classes".into(),
            ));
        }
        let (Some(x), Some(y)) = (&d.inputs, &d.targets) else {
            return Err(err(
                "data of kind `files` needs `inputs` and `targets`".into()
            ));
        };
        if x.layout.is_some() || y.layout.is_some() {
            return Err(err(
                "`layout` belongs to `model.weights`; a data file names its `array`".into(),
            ));
        }
        let dir = self.dir();
        let (inputs_path, targets_path) = (dir.join(&x.file), dir.join(&y.file));
        let read = |p: &std::path::Path, name, array: &Option<String>| {
            read_array(p, name, array.as_deref(), self.files()).map_err(|e| err(e.to_string()))
        };
        let (inputs, targets) = (
            read(&inputs_path, "input", &x.array)?,
            read(&targets_path, "targets", &y.array)?,
        );
        let (inputs_array, targets_array) = (x.array.clone(), y.array.clone());
        let (x, y) = (&x.file, &y.file);
        if inputs.shape.len() != 2 || inputs.shape[1] != model.d_input || inputs.shape[0] == 0 {
            return Err(err(format!(
                "`{x}` has shape {:?}; the inputs need [N, {}] with N ≥ 1",
                inputs.shape, model.d_input
            )));
        }
        let n = inputs.shape[0];
        let labels = targets.shape == [n];
        if !labels && targets.shape != [n, model.d_output] {
            return Err(err(format!(
                "`{y}` has shape {:?}; the targets need [{n}] (labels) or [{n}, {}] (values)",
                targets.shape, model.d_output
            )));
        }
        if labels {
            let classes = model.d_output;
            if let Some((row, v)) = targets
                .data
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.fract() == 0.0 && **v >= 0.0 && (**v as usize) < classes))
            {
                return Err(err(format!(
                    "`{y}` row {row} holds the label {v}; labels are the classes 0..{} (model.output = {classes})",
                    classes - 1
                )));
            }
        }
        Ok(Data::Files {
            inputs_path,
            inputs_array,
            inputs,
            targets_path,
            targets_array,
            targets,
        })
    }
}
