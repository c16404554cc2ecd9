//! A sweep's CSV tables: every trial (`trials.csv`) and every point × case × layer
//! (`summary.csv`, what `--format csv` prints), with a column per swept key.

use gradscope_report::floats::{csv_measured, csv_num64};
use gradscope_report::{PointSummary, SweepSummary, TrialRecord};

/// The swept keys of `s` as CSV column names, in axis order: the key itself, or `set.KEY`
/// where it would take the name of one of `fixed`'s columns.
fn setting_columns(s: &SweepSummary, fixed: &[&str]) -> Vec<(String, String)> {
    let mut keys: Vec<String> = s
        .points
        .first()
        .map(|p| p.settings.keys().map(str::to_string).collect())
        .unwrap_or_default();
    // A sweep in a precision other than f32 that does not sweep it names it as a column too,
    // as a swept `precision` would be.
    let below_or_above_f32 = s.points.iter().any(|p| !p.precision.is_f32());
    if below_or_above_f32 && !keys.iter().any(|k| k == "precision") {
        keys.push("precision".into());
    }
    keys.into_iter()
        .map(|k| {
            let column = if fixed.contains(&k.as_str()) {
                format!("set.{k}")
            } else {
                k.clone()
            };
            (k, column)
        })
        .collect()
}

/// Point `p`'s cell in the column of key `k`: its swept value, or (the column
/// [`setting_columns`] adds) its precision.
fn setting_cell(p: &PointSummary, k: &str) -> String {
    if k == "precision" && !p.settings.keys().any(|x| x == k) {
        p.precision.name().to_string()
    } else {
        p.settings.cell(k)
    }
}

/// Rows of strings as CSV, headed by `header` when given.
fn csv_table(
    header: Option<Vec<String>>,
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if let Some(h) = header {
        w.write_record(&h)?;
    }
    for row in rows {
        w.write_record(&row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field is a `String`: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The columns of `trials_csv` after the swept keys.
const TRIAL_COLUMNS: &[&str] = &[
    "trial",
    "seed",
    "case",
    "layer",
    "delta_l2",
    "weight_l2",
    "ratio",
    "nonfinite",
    "dead",
    "zero_gradient",
];

/// Every trial as CSV, one row per trial × case × layer, with a header (long format: grid
/// points of different depths have different layer counts): the point, a column per swept
/// key holding its value (the settings from `s`), then `TRIAL_COLUMNS`.
pub fn trials_csv(s: &SweepSummary, records: &[TrialRecord]) -> Result<String, csv::Error> {
    let mut fixed = vec!["point"];
    fixed.extend_from_slice(TRIAL_COLUMNS);
    let keys = setting_columns(s, &fixed);
    let mut header = vec!["point".to_string()];
    header.extend(keys.iter().map(|(_, c)| c.clone()));
    header.extend(TRIAL_COLUMNS.iter().map(|c| c.to_string()));
    let settings = |point: usize| -> Vec<String> {
        let p = s.points.iter().find(|p| p.point == point);
        keys.iter()
            .map(|(k, _)| p.map_or(String::new(), |p| setting_cell(p, k)))
            .collect()
    };
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| (a.point, a.trial, &a.case).cmp(&(b.point, b.trial, &b.case)));
    let rows = sorted.iter().flat_map(|r| {
        let values = settings(r.point);
        r.delta_l2.iter().enumerate().map(move |(layer, &d)| {
            let mut row = vec![r.point.to_string()];
            row.extend(values.iter().cloned());
            row.extend([
                r.trial.to_string(),
                r.seed.to_string(),
                r.case.clone(),
                layer.to_string(),
                csv_measured(d, r.precision),
                csv_measured(
                    r.weight_l2.get(layer).copied().unwrap_or(f64::NAN),
                    r.precision,
                ),
                csv_measured(r.ratio, r.precision),
                r.nonfinite.to_string(),
                r.dead.to_string(),
                r.zero_gradient.to_string(),
            ]);
            row
        })
    });
    csv_table(Some(header), rows)
}

/// The columns of `layers_csv` after the swept keys (and `partial`, last).
const POINT_COLUMNS: &[&str] = &[
    "case",
    "trials",
    "nonfinite_trials",
    "dead_trials",
    "zero_gradient_trials",
    "ratio_median",
    "ratio_q1",
    "ratio_q3",
    "theory_delta_ratio",
    "theory_applies",
    "layer",
    "delta_median",
    "delta_q1",
    "delta_q3",
    "delta_min",
    "delta_max",
    "weight_median",
    "weight_q1",
    "weight_q3",
    "weight_min",
    "weight_max",
];

/// One CSV row per point × case × layer, headed by the column names when `header`: the
/// experiment, the point, a column per swept key holding its value, then `POINT_COLUMNS`
/// (the ratio's spread and theory's prediction repeat on each layer's row; theory's cells
/// are empty where there is none), and `partial`.
pub fn layers_csv(s: &SweepSummary, header: bool) -> Result<String, csv::Error> {
    let mut fixed = vec!["experiment", "point", "partial"];
    fixed.extend_from_slice(POINT_COLUMNS);
    let keys = setting_columns(s, &fixed);
    let head = header.then(|| {
        let mut h = vec!["experiment".to_string(), "point".to_string()];
        h.extend(keys.iter().map(|(_, c)| c.clone()));
        h.extend(POINT_COLUMNS.iter().map(|c| c.to_string()));
        h.push("partial".into());
        h
    });
    let rows = s.points.iter().flat_map(|p| {
        let keys = &keys;
        p.delta_l2
            .iter()
            .zip(&p.weight_l2)
            .enumerate()
            .map(move |(layer, (d, w))| {
                let mut row = vec![s.experiment.clone(), p.point.to_string()];
                row.extend(keys.iter().map(|(k, _)| setting_cell(p, k)));
                row.extend([
                    p.case.clone(),
                    p.trials.to_string(),
                    p.nonfinite_trials.to_string(),
                    p.dead_trials.to_string(),
                    p.zero_gradient_trials.to_string(),
                    csv_measured(p.ratio.median, p.precision),
                    csv_measured(p.ratio.q1, p.precision),
                    csv_measured(p.ratio.q3, p.precision),
                    p.theory
                        .as_ref()
                        .map_or(String::new(), |t| csv_num64(t.delta_ratio)),
                    p.theory
                        .as_ref()
                        .map_or(String::new(), |t| t.applies.to_string()),
                    layer.to_string(),
                ]);
                for x in [d, w] {
                    row.extend(
                        [x.median, x.q1, x.q3, x.min, x.max].map(|v| csv_measured(v, p.precision)),
                    );
                }
                row.push(s.partial.to_string());
                row
            })
    });
    csv_table(head, rows)
}
