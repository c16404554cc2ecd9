//! The named choices (activations, initialisers, input distributions, losses), each written
//! once: its name in configs, its parameters with their defaults, how it is built from a
//! table, how its parameters are read back from a value (for `gradscope show`), and the note
//! the README's reference gives it ([`reference_table`], checked against the README by a test).

use gradscope_model::{Activation, Initializer};
use toml::Spanned;

use super::raw::RawNamed;
use super::source::ConfigError;
use super::validate::Checker;
use super::{Clip, Distribution, Loss, LossScale, Optimizer};

type Result<T> = std::result::Result<T, ConfigError>;

/// A parameter of a named choice.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its key in the table.
    pub name: &'static str,
    /// Its value when not given; `None`: it must be given.
    pub default: Option<f64>,
    /// A count (a whole number), written without a fraction: `growth_interval = 2000`.
    pub whole: bool,
}

impl Param {
    /// `v` as configs and people read this parameter: a count as a whole number, anything
    /// else in Rust's shortest round-tripping form (`0.5`, `65536.0`).
    fn spell(&self, v: f64) -> String {
        if self.whole && v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v:?}")
        }
    }
}

const fn p(name: &'static str, default: f64) -> Param {
    Param {
        name,
        default: Some(default),
        whole: false,
    }
}

/// A count, with its default.
const fn count(name: &'static str, default: f64) -> Param {
    Param {
        name,
        default: Some(default),
        whole: true,
    }
}

const fn required(name: &'static str) -> Param {
    Param {
        name,
        default: None,
        whole: false,
    }
}

/// One named choice: the name beside its constructor, so no table can map a name to the
/// wrong kind.
pub struct Kind<T: 'static> {
    /// The name configs use.
    pub name: &'static str,
    /// The parameters a table may give, in the order `show` writes them.
    pub params: &'static [Param],
    /// What the README says of it beyond its parameters.
    pub note: &'static str,
    build: fn(&Args<'_>) -> Result<T>,
    /// The parameters' values (in `params` order) when a value is of this kind.
    values: fn(&T) -> Option<Vec<f64>>,
}

impl<T> Kind<T> {
    /// Build the value from its table (`v`, at `key`), defaults filled in.
    pub(super) fn build(&self, c: &Checker<'_>, v: &Spanned<RawNamed>, key: &str) -> Result<T> {
        (self.build)(&Args {
            c,
            v,
            key,
            params: self.params,
        })
    }
}

/// The kind of `value` among `kinds`, and its parameters' values.
pub fn kind_of<'k, T>(kinds: &'k [Kind<T>], value: &T) -> Option<(&'k Kind<T>, Vec<f64>)> {
    kinds.iter().find_map(|k| (k.values)(value).map(|v| (k, v)))
}

/// What a constructor reads from: the table, where it is, and the kind's parameters.
pub(super) struct Args<'a> {
    c: &'a Checker<'a>,
    v: &'a Spanned<RawNamed>,
    key: &'a str,
    params: &'static [Param],
}

impl Args<'_> {
    /// Parameter `name`: as given, else its default; a required one must be given.
    fn get(&self, name: &str) -> Result<f64> {
        let default = self
            .params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.default);
        match (self.v.get_ref().get(name), default) {
            (Some(v), _) => Ok(v),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.c.required(self.v, self.key, name)),
        }
    }

    /// `std`, which must be ≥ 0.
    fn std(&self) -> Result<f64> {
        let std = self.get("std")?;
        self.c.non_negative_std(self.v, self.key, std)
    }

    /// `low` and `high`, with low < high.
    fn bounds(&self) -> Result<(f64, f64)> {
        let (low, high) = (self.get("low")?, self.get("high")?);
        self.c.ordered_bounds(self.v, self.key, low, high)
    }
}

/// A kind without parameters.
macro_rules! plain {
    ($name:literal, $note:literal, $value:expr) => {
        Kind {
            name: $name,
            params: &[],
            note: $note,
            build: |_| Ok($value),
            values: |v| (*v == $value).then(Vec::new),
        }
    };
}

/// Activations, in the order error messages list them.
pub const ACTIVATIONS: &[Kind<Activation>] = &[
    plain!("relu", "", Activation::Relu),
    Kind {
        name: "leaky_relu",
        params: &[p("slope", 0.01)],
        note: "",
        build: |a| {
            Ok(Activation::LeakyRelu {
                slope: a.get("slope")?,
            })
        },
        values: |v| match v {
            Activation::LeakyRelu { slope } => Some(vec![*slope]),
            _ => None,
        },
    },
    Kind {
        name: "elu",
        params: &[p("alpha", 1.0)],
        note: "",
        build: |a| {
            Ok(Activation::Elu {
                alpha: a.get("alpha")?,
            })
        },
        values: |v| match v {
            Activation::Elu { alpha } => Some(vec![*alpha]),
            _ => None,
        },
    },
    plain!("gelu", "exact, erf", Activation::Gelu),
    plain!("silu", "", Activation::Silu),
    plain!("softplus", "", Activation::Softplus),
    plain!("sigmoid", "", Activation::Sigmoid),
    plain!("tanh", "", Activation::Tanh),
    plain!("identity", "", Activation::Identity),
];

/// Initialisers; `normal`, `uniform` and `truncated_normal` default to Keras's RandomNormal,
/// RandomUniform and TruncatedNormal.
pub const INITIALIZERS: &[Kind<Initializer>] = &[
    plain!("zeros", "", Initializer::Zeros),
    Kind {
        name: "constant",
        params: &[required("value")],
        note: "",
        build: |a| {
            Ok(Initializer::Constant {
                value: a.get("value")?,
            })
        },
        values: |v| match v {
            Initializer::Constant { value } => Some(vec![*value]),
            _ => None,
        },
    },
    Kind {
        name: "normal",
        params: &[p("mean", 0.0), p("std", 0.05)],
        note: "",
        build: |a| {
            Ok(Initializer::Normal {
                mean: a.get("mean")?,
                std: a.std()?,
            })
        },
        values: |v| match v {
            Initializer::Normal { mean, std } => Some(vec![*mean, *std]),
            _ => None,
        },
    },
    Kind {
        name: "uniform",
        params: &[p("low", -0.05), p("high", 0.05)],
        note: "",
        build: |a| {
            let (low, high) = a.bounds()?;
            Ok(Initializer::Uniform { low, high })
        },
        values: |v| match v {
            Initializer::Uniform { low, high } => Some(vec![*low, *high]),
            _ => None,
        },
    },
    Kind {
        name: "truncated_normal",
        params: &[p("mean", 0.0), p("std", 0.05)],
        note: "cut at ±2 std",
        build: |a| {
            let (mean, std) = (a.get("mean")?, a.std()?);
            Ok(Initializer::TruncatedNormal { mean, std })
        },
        values: |v| match v {
            Initializer::TruncatedNormal { mean, std } => Some(vec![*mean, *std]),
            _ => None,
        },
    },
    plain!(
        "glorot_uniform",
        "U(±√(6/(fan_in+fan_out)))",
        Initializer::GlorotUniform
    ),
    plain!(
        "glorot_normal",
        "truncated normal, std √(2/(fan_in+fan_out))/0.87962566 as in Keras",
        Initializer::GlorotNormal
    ),
    plain!("he_uniform", "U(±√(6/fan_in))", Initializer::HeUniform),
    plain!(
        "he_normal",
        "truncated normal, std √(2/fan_in)/0.87962566",
        Initializer::HeNormal
    ),
    plain!(
        "lecun_uniform",
        "U(±√(3/fan_in))",
        Initializer::LecunUniform
    ),
    plain!(
        "lecun_normal",
        "truncated normal, std √(1/fan_in)/0.87962566",
        Initializer::LecunNormal
    ),
    plain!(
        "burn_default",
        "Burn's `LinearConfig` default, U(±√(1/fan_in)) for kernel and bias",
        Initializer::BurnDefault
    ),
];

/// Input distributions.
pub const DISTRIBUTIONS: &[Kind<Distribution>] = &[
    Kind {
        name: "normal",
        params: &[p("mean", 0.0), p("std", 1.0)],
        note: "",
        build: |a| {
            Ok(Distribution::Normal {
                mean: a.get("mean")?,
                std: a.std()?,
            })
        },
        values: |v| match v {
            Distribution::Normal { mean, std } => Some(vec![*mean, *std]),
            _ => None,
        },
    },
    Kind {
        name: "uniform",
        params: &[p("low", 0.0), p("high", 1.0)],
        note: "",
        build: |a| {
            let (low, high) = a.bounds()?;
            Ok(Distribution::Uniform { low, high })
        },
        values: |v| match v {
            Distribution::Uniform { low, high } => Some(vec![*low, *high]),
            _ => None,
        },
    },
    Kind {
        name: "constant",
        params: &[required("value")],
        note: "",
        build: |a| {
            Ok(Distribution::Constant {
                value: a.get("value")?,
            })
        },
        values: |v| match v {
            Distribution::Constant { value } => Some(vec![*value]),
            _ => None,
        },
    },
];

/// Losses.
pub const LOSSES: &[Kind<Loss>] = &[
    plain!("sum_squares", "Σ out², the seed's", Loss::SumSquares),
    plain!("mean_squares", "mean(out²)", Loss::MeanSquares),
    plain!("sum", "Σ out", Loss::Sum),
    plain!("mean", "mean(out)", Loss::Mean),
    Kind {
        name: "mse",
        params: &[p("target", 0.0)],
        note: "mean((out − target)²)",
        build: |a| {
            Ok(Loss::Mse {
                target: a.get("target")?,
            })
        },
        values: |v| match v {
            Loss::Mse { target } => Some(vec![*target]),
            _ => None,
        },
    },
    plain!(
        "cross_entropy",
        "mean of −log_softmax(out)[label], stable; training with labels",
        Loss::CrossEntropy
    ),
    plain!(
        "cross_entropy_naive",
        "−mean Σ onehot·log(softmax(out)), as classic tutorials wrote it: log(0) = −inf",
        Loss::CrossEntropyNaive
    ),
];

/// Optimisers (`train.optimizer`), with PyTorch's update rules.
pub const OPTIMIZERS: &[Kind<Optimizer>] = &[
    Kind {
        name: "sgd",
        params: &[p("momentum", 0.0)],
        note: "b ← μb + g, w ← w − lr·b",
        build: |a| {
            Ok(Optimizer::Sgd {
                momentum: a.get("momentum")?,
            })
        },
        values: |v| match v {
            Optimizer::Sgd { momentum } => Some(vec![*momentum]),
            _ => None,
        },
    },
    Kind {
        name: "adam",
        params: &[p("beta1", 0.9), p("beta2", 0.999), p("epsilon", 1e-8)],
        note: "bias-corrected, ε added to √v̂",
        build: |a| {
            Ok(Optimizer::Adam {
                beta1: a.get("beta1")?,
                beta2: a.get("beta2")?,
                epsilon: a.get("epsilon")?,
            })
        },
        values: |v| match v {
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => Some(vec![*beta1, *beta2, *epsilon]),
            _ => None,
        },
    },
];

/// Gradient clipping (`train.clip`).
pub const CLIPS: &[Kind<Clip>] = &[
    plain!("none", "", Clip::None),
    Kind {
        name: "norm",
        params: &[required("max")],
        note: "global norm over all parameters, as PyTorch's `clip_grad_norm_`",
        build: |a| Ok(Clip::Norm { max: a.get("max")? }),
        values: |v| match v {
            Clip::Norm { max } => Some(vec![*max]),
            _ => None,
        },
    },
    Kind {
        name: "value",
        params: &[required("max")],
        note: "each element clamped to [−max, max]",
        build: |a| Ok(Clip::Value { max: a.get("max")? }),
        values: |v| match v {
            Clip::Value { max } => Some(vec![*max]),
            _ => None,
        },
    },
];

/// Loss scaling (`train.loss_scale`), as `torch.amp.GradScaler` (dynamic) and apex (static).
pub const LOSS_SCALES: &[Kind<LossScale>] = &[
    plain!("none", "", LossScale::None),
    Kind {
        name: "dynamic",
        params: &[
            p("init", 65536.0),
            p("growth_factor", 2.0),
            p("backoff_factor", 0.5),
            count("growth_interval", 2000.0),
        ],
        note: "`torch.amp.GradScaler`: a step with an inf/NaN gradient is skipped and the scale × backoff; after `growth_interval` finite steps in a row, × growth",
        build: |a| {
            let (init, growth_factor) = (a.get("init")?, a.get("growth_factor")?);
            let (backoff_factor, interval) = (a.get("backoff_factor")?, a.get("growth_interval")?);
            a.c.loss_scale_value(a.v, a.key, "init", init)?;
            if !(growth_factor.is_finite() && growth_factor > 1.0) {
                return Err(a.c.bad_param(
                    a.v,
                    a.key,
                    format!("`growth_factor` must be a finite number > 1, found {growth_factor}"),
                ));
            }
            if !(backoff_factor > 0.0 && backoff_factor < 1.0) {
                return Err(a.c.bad_param(
                    a.v,
                    a.key,
                    format!("`backoff_factor` must be in (0, 1), found {backoff_factor}"),
                ));
            }
            if !(interval.fract() == 0.0 && (1.0..=2_147_483_647.0).contains(&interval)) {
                return Err(a.c.bad_param(a.v, a.key, format!("`growth_interval` must be a whole number of steps between 1 and 2147483647, found {interval}")));
            }
            Ok(LossScale::Dynamic {
                init,
                growth_factor,
                backoff_factor,
                growth_interval: interval as usize,
            })
        },
        values: |v| match v {
            LossScale::Dynamic {
                init,
                growth_factor,
                backoff_factor,
                growth_interval,
            } => Some(vec![
                *init,
                *growth_factor,
                *backoff_factor,
                *growth_interval as f64,
            ]),
            _ => None,
        },
    },
    Kind {
        name: "static",
        params: &[required("scale")],
        note: "a fixed scale; nothing is skipped",
        build: |a| {
            let scale = a.get("scale")?;
            a.c.loss_scale_value(a.v, a.key, "scale", scale)?;
            Ok(LossScale::Static { scale })
        },
        values: |v| match v {
            LossScale::Static { scale } => Some(vec![*scale]),
            _ => None,
        },
    },
];

/// One choice as the README lists it: `` `normal` (`mean` 0, `std` 0.05) ``, then its note.
fn choice<T>(k: &Kind<T>) -> String {
    let mut s = format!("`{}`", k.name);
    let params: Vec<String> = k
        .params
        .iter()
        .map(|p| match p.default {
            Some(d) => format!("`{}` {}", p.name, p.spell(d)),
            None => format!("`{}` required", p.name),
        })
        .collect();
    if !params.is_empty() {
        s.push_str(&format!(" ({})", params.join(", ")));
    }
    if !k.note.is_empty() {
        s.push_str(&format!(": {}", k.note));
    }
    s
}

fn row<T>(keys: &str, kinds: &[Kind<T>]) -> String {
    let choices: Vec<String> = kinds.iter().map(choice).collect();
    format!("| {keys} | {} |\n", choices.join("; "))
}

/// The README's table of named choices (markdown), generated from the tables above.
pub fn reference_table() -> String {
    let mut s = String::from("| key | choices (parameters and defaults): notes |\n|---|---|\n");
    s.push_str(&row("`model.activation`", ACTIVATIONS));
    s.push_str(&row("`model.kernel_init`, `model.bias_init`", INITIALIZERS));
    s.push_str(&row("`inputs.distribution`", DISTRIBUTIONS));
    s.push_str(&row("`loss`", LOSSES));
    s.push_str(&row("`train.optimizer`", OPTIMIZERS));
    s.push_str(&row("`train.clip`", CLIPS));
    s.push_str(&row("`train.loss_scale`", LOSS_SCALES));
    s
}

/// A value as configs write it: its bare name, or an inline table with `kind` and its
/// parameters in the order the kind lists them.
pub fn show_named<T>(kinds: &[Kind<T>], value: &T) -> String {
    let Some((kind, values)) = kind_of(kinds, value) else {
        unreachable!("every value has a kind in its table (tested)")
    };
    let quote = |s: &str| format!("\"{s}\"");
    if kind.params.is_empty() {
        return quote(kind.name);
    }
    let params: Vec<String> = kind
        .params
        .iter()
        .zip(values)
        .map(|(p, v)| format!("{} = {}", p.name, p.spell(v)))
        .collect();
    format!("{{ kind = {}, {} }}", quote(kind.name), params.join(", "))
}

/// A value for people: `sgd(momentum=0.9)`, `none`.
pub fn describe_named<T>(kinds: &[Kind<T>], value: &T) -> String {
    let Some((kind, values)) = kind_of(kinds, value) else {
        unreachable!("every value has a kind in its table (tested)")
    };
    if kind.params.is_empty() {
        return kind.name.to_string();
    }
    let params: Vec<String> = kind
        .params
        .iter()
        .zip(values)
        .map(|(p, v)| format!("{}={}", p.name, p.spell(v)))
        .collect();
    format!("{}({})", kind.name, params.join(", "))
}
