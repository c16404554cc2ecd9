//! A sweep's CSV tables are what a data frame reads as they are: a column per swept key with
//! its value, the ratio and theory as columns; read back here into typed rows by the csv
//! crate, as `pandas.read_csv` would.

use gradscope_render::sweep;
use gradscope_report::{PointSummary, PointTheory, Spread, SweepSummary, TrialRecord};
use serde::Deserialize;

fn spread(median: f64) -> Spread {
    Spread {
        median,
        q1: median / 2.0,
        q3: median * 2.0,
        min: median / 4.0,
        max: median * 4.0,
    }
}

fn summary() -> SweepSummary {
    let point = |i: usize, depth: usize, activation: &str, theory: bool| PointSummary {
        precision: Default::default(),
        point: i,
        settings: vec![
            format!("model.activation=\"{activation}\""),
            format!("model.depth={depth}"),
            "seed=3".into(),
        ]
        .into(),
        case: "x".into(),
        trials: 2,
        nonfinite_trials: 0,
        dead_trials: 0,
        zero_gradient_trials: 0,
        ratio: spread(0.5),
        delta_l2: vec![spread(1.0), spread(2.0)],
        weight_l2: vec![spread(3.0), spread(4.0)],
        training: None,
        theory: theory.then(|| PointTheory {
            range_unknown_from: None,
            delta_ratio: 0.25,
            chi: vec![0.25],
            chi_star: None,
            ratio_quartiles: None,
            applies: false,
            caveats: vec!["because".into()],
            leaves_range: None,
        }),
        left_range: None,
    };
    SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e".into(),
        trials_per_point: 2,
        trials_done: 4,
        trials_expected: 4,
        partial: false,
        points: vec![point(0, 4, "tanh", true), point(1, 8, "relu", false)],
    }
}

#[derive(Debug, Deserialize)]
struct PointRow {
    experiment: String,
    point: usize,
    #[serde(rename = "model.activation")]
    activation: String,
    #[serde(rename = "model.depth")]
    depth: u32,
    /// `seed` is swept (the table has no column of that name).
    seed: u64,
    case: String,
    ratio_median: f64,
    ratio_q3: f64,
    theory_delta_ratio: Option<f64>,
    theory_applies: Option<bool>,
    layer: usize,
    delta_median: f64,
    weight_max: f64,
    partial: bool,
}

#[test]
fn summary_csv_has_a_typed_column_per_swept_key_and_the_ratio_beside_theory() {
    let text = sweep::layers_csv(&summary(), true).expect("csv");
    let rows: Vec<PointRow> = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(rows.len(), 4, "2 points × 2 layers\n{text}");
    let r = &rows[1];
    assert_eq!((r.experiment.as_str(), r.point, r.layer), ("e", 0, 1));
    assert_eq!((r.activation.as_str(), r.depth, r.seed), ("tanh", 4, 3));
    assert_eq!(
        (r.case.as_str(), r.ratio_median, r.ratio_q3),
        ("x", 0.5, 1.0)
    );
    assert_eq!(
        (r.theory_delta_ratio, r.theory_applies),
        (Some(0.25), Some(false))
    );
    assert_eq!(
        (r.delta_median, r.weight_max, r.partial),
        (2.0, 16.0, false)
    );
    let r = &rows[2];
    assert_eq!((r.activation.as_str(), r.depth), ("relu", 8));
    assert_eq!(
        (r.theory_delta_ratio, r.theory_applies),
        (None, None),
        "no theory: empty"
    );
    let headless = sweep::layers_csv(&summary(), false).expect("csv");
    assert_eq!(headless.lines().count(), 4);
    assert_eq!(
        text.lines().skip(1).collect::<Vec<_>>(),
        headless.lines().collect::<Vec<_>>()
    );
}

#[derive(Debug, Deserialize)]
struct TrialRow {
    point: usize,
    #[serde(rename = "model.activation")]
    activation: String,
    #[serde(rename = "model.depth")]
    depth: u32,
    /// The swept `seed`, prefixed: the table's own `seed` is the trial's.
    #[serde(rename = "set.seed")]
    base_seed: u64,
    trial: usize,
    seed: u64,
    layer: usize,
    delta_l2: f64,
    ratio: f64,
    nonfinite: bool,
}

#[test]
fn trials_csv_names_each_trials_settings() {
    let record = |point: usize, trial: usize| TrialRecord {
        point,
        trial,
        seed: 10 + trial as u64,
        case: "x".into(),
        delta_l2: vec![1.0, f64::NAN],
        weight_l2: vec![2.0, 3.0],
        ratio: f64::NAN,
        nonfinite: true,
        ..TrialRecord::default()
    };
    let text = sweep::trials_csv(&summary(), &[record(1, 0), record(0, 1)]).expect("csv");
    let rows: Vec<TrialRow> = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!(
        (rows[0].point, rows[0].activation.as_str(), rows[0].depth),
        (0, "tanh", 4)
    );
    assert_eq!((rows[0].trial, rows[0].seed, rows[0].layer), (1, 11, 0));
    assert_eq!(rows[0].base_seed, 3);
    assert_eq!(
        (rows[2].point, rows[2].activation.as_str(), rows[2].depth),
        (1, "relu", 8)
    );
    assert!(rows[1].delta_l2.is_nan() && rows[1].ratio.is_nan() && rows[1].nonfinite);
    assert_eq!(rows[0].delta_l2, 1.0);
}

/// The README promises tables of at most 100 columns: a sweep over three keys (the
/// notebook's activation × initialiser × depth grid, its longest values) fits, with the keys
/// named once above the rows and each row holding the values.
#[test]
fn the_terminal_sweep_table_fits_in_100_columns() {
    let mut s = summary();
    for p in &mut s.points {
        p.settings = vec![
            "model.activation=\"sigmoid\"".to_string(),
            "model.depth=64".to_string(),
            "model.kernel_init=\"glorot_uniform\"".to_string(),
        ]
        .into();
    }
    let t = sweep::table(&s);
    assert!(
        t.contains("settings: model.activation, model.depth, model.kernel_init\n"),
        "{t}"
    );
    for line in t.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        t.lines()
            .any(|l| l.ends_with("  sigmoid 64 glorot_uniform")),
        "{t}"
    );
}

/// A sweep run in one precision other than f32 says so beside its trial counts, in the
/// terminal table, the markdown and the page alike; an f32 sweep, and one whose points differ
/// in precision (each point's settings name it), say nothing more.
#[test]
fn a_sweep_in_one_precision_names_it_beside_its_counts() {
    use gradscope_report::Precision;
    let mut s = summary();
    assert!(
        !sweep::trial_counts(&s).contains(" in "),
        "{}",
        sweep::trial_counts(&s)
    );
    for p in &mut s.points {
        p.precision = Precision::F64;
    }
    let counts = sweep::trial_counts(&s);
    assert!(counts.ends_with(", in f64"), "{counts}");
    assert!(sweep::table(&s).contains(&counts));
    let md = sweep::markdown(&s, "sweep.svg");
    assert!(md.contains("trials per grid point, in f64."), "{md}");
    // Its CSV tables have a `precision` column after the swept keys, as a swept precision
    // would; an f32 sweep's have none.
    let layers = sweep::layers_csv(&s, true).unwrap_or_else(|e| panic!("{e}"));
    let head = layers.lines().next().unwrap_or("");
    assert!(head.contains(",seed,precision,case,"), "{head}");
    assert!(
        layers.lines().skip(1).all(|l| l.contains(",f64,x,")),
        "{layers}"
    );
    let plain = sweep::layers_csv(&summary(), true).unwrap_or_else(|e| panic!("{e}"));
    assert!(!plain.contains("precision"), "{plain}");
    s.points[0].precision = Precision::F32;
    assert!(!sweep::trial_counts(&s).contains(" in "));
}
