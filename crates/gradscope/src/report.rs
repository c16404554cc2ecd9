//! Reports: the data a run is summarised into (`ExperimentReport`) and its renderings as a
//! table for people and JSON for programs. Output is deterministic: no times, stable order.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use crate::backend::Backend;
use crate::config::Experiment;
use crate::run::Outcome;
use crate::stats::ParamStats;

/// The report of one experiment. The JSON schema: these field names are stable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// Experiment name.
    pub experiment: String,
    /// Its one-line description.
    pub description: String,
    /// Backend name: `ndarray`, `flex` or `wgpu`.
    pub backend: String,
    /// The wgpu adapter the run used (`null` on CPU backends).
    pub adapter: Option<String>,
    /// The seed.
    pub seed: u64,
    /// Loss name.
    pub loss: String,
    /// One entry per input case.
    pub cases: Vec<CaseReport>,
    /// True when every gradient value of every case is finite.
    pub all_finite: bool,
    /// Where the first non-finite gradient value was, as `case/parameter`.
    pub first_nonfinite: Option<String>,
}

/// One input case's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// The input.
    pub input: InputInfo,
    /// The loss value.
    #[serde(serialize_with = "float")]
    pub loss: f32,
    /// Per-parameter statistics, in parameter order.
    pub params: Vec<ParamStats>,
}

/// What went into the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputInfo {
    /// Case name.
    pub name: String,
    /// `[batch, d_input]`.
    pub shape: Vec<usize>,
    /// The distribution the values were drawn from.
    pub distribution: String,
}

/// Serialise a float as a JSON number when finite, else as the string `"NaN"`, `"inf"` or
/// `"-inf"` (JSON has no non-finite numbers; `null` would hide what happened).
pub fn float<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() { s.serialize_f32(*v) } else { s.serialize_str(&fmt_float(*v)) }
}

/// A float for people: 7 significant digits in scientific notation, `NaN`, `inf`, `-inf`.
pub fn fmt_float(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Rust writes `1.5e0`; people and numpy expect `1.500000e+00`.
        let s = format!("{v:.6e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

impl ExperimentReport {
    /// Summarise `outcome` of `exp` run on `backend`.
    pub fn new(exp: &Experiment, backend: &Backend, outcome: &Outcome) -> Self {
        let mut first_nonfinite = None;
        let cases = exp
            .inputs
            .iter()
            .zip(&outcome.cases)
            .map(|(case, out)| {
                let params: Vec<ParamStats> = out.grads.iter().map(ParamStats::of).collect();
                if first_nonfinite.is_none() {
                    first_nonfinite =
                        params.iter().find(|p| p.nonfinite > 0).map(|p| format!("{}/{}", case.name, p.name));
                }
                CaseReport {
                    input: InputInfo {
                        name: case.name.clone(),
                        shape: out.input.shape.clone(),
                        distribution: case.distribution.describe(),
                    },
                    loss: out.loss,
                    params,
                }
            })
            .collect();
        Self {
            experiment: exp.name.clone(),
            description: exp.description.clone(),
            backend: backend.kind.name().to_string(),
            adapter: backend.adapter.clone(),
            seed: exp.seed,
            loss: exp.loss.name().to_string(),
            cases,
            all_finite: first_nonfinite.is_none(),
            first_nonfinite,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as a table for a terminal (fits in 100 columns for names up to 20 chars).
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "experiment  {}", self.experiment);
        let _ = writeln!(s, "            {}", self.description);
        let backend = match &self.adapter {
            Some(a) => format!("{} ({a})", self.backend),
            None => self.backend.clone(),
        };
        let _ = writeln!(s, "backend     {backend}");
        let _ = writeln!(s, "seed        {}    loss {}", self.seed, self.loss);
        let name_w = self
            .cases
            .iter()
            .flat_map(|c| c.params.iter().map(|p| p.name.len()))
            .chain(std::iter::once("parameter".len()))
            .max()
            .unwrap_or(9);
        for case in &self.cases {
            let _ = writeln!(
                s,
                "\ninput {} {:?} {}    loss {}",
                case.input.name,
                case.input.shape,
                case.input.distribution,
                fmt_float(case.loss)
            );
            let _ = writeln!(
                s,
                "  {:name_w$}  {:>11}  {:>13}  {:>13}  {:>10}",
                "parameter", "shape", "max", "min", "non-finite"
            );
            for p in &case.params {
                let flag = if p.nonfinite > 0 { "  <- not finite" } else { "" };
                let _ = writeln!(
                    s,
                    "  {:name_w$}  {:>11}  {:>13}  {:>13}  {:>10}{flag}",
                    p.name,
                    format!("{:?}", p.shape),
                    fmt_float(p.max),
                    fmt_float(p.min),
                    p.nonfinite
                );
            }
        }
        let n_params = self.cases.first().map_or(0, |c| c.params.len());
        let _ = writeln!(s);
        match &self.first_nonfinite {
            None => {
                let cases = self.cases.len();
                let plural = if cases == 1 { "" } else { "s" };
                let _ = writeln!(
                    s,
                    "verdict: every gradient value is finite ({n_params} parameters x {cases} input case{plural})"
                );
            }
            Some(at) => {
                let total: usize = self.cases.iter().flat_map(|c| &c.params).map(|p| p.nonfinite).sum();
                let _ = writeln!(s, "verdict: NOT FINITE: {total} non-finite gradient values; the first in {at}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_float;

    #[test]
    fn floats_print_with_signed_two_digit_exponents_and_named_non_finites() {
        assert_eq!(fmt_float(3.1323318), "3.132332e+00");
        assert_eq!(fmt_float(-0.00012345), "-1.234500e-04");
        assert_eq!(fmt_float(1.5e20), "1.500000e+20");
        assert_eq!(fmt_float(0.0), "0.000000e+00");
        assert_eq!(fmt_float(f32::NAN), "NaN");
        assert_eq!(fmt_float(f32::INFINITY), "inf");
        assert_eq!(fmt_float(f32::NEG_INFINITY), "-inf");
    }
}
