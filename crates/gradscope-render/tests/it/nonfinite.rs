//! A tensor holding NaN or inf is never shown as an ordinary number: its norm reads
//! `non-finite`, statistics over its finite values carry `†` and the note under the table says
//! so, in the terminal table, markdown, HTML and CSV alike. (The issue's case: relu-explodes-f32
//! printed ‖δ‖ 0.0000e+00 for layers holding 32 NaN values.)

use gradscope_render::{html, text};
use gradscope_report::{
    CaseReport, ExperimentReport, Flow, InputInfo, LayerStats, ParamStats, Report, Thresholds,
};

fn layer(layer: usize, delta_l2: f64, delta_nonfinite: usize) -> LayerStats {
    LayerStats {
        layer,
        width: 32,
        delta_l2,
        delta_max_abs: delta_l2,
        delta_nonfinite,
        dead_fraction: 0.0,
        activation_mean: 1.0,
        activation_std: 2.0,
        activation_nonfinite: 0,
        z_range: None,
        a_range: None,
        delta_range: None,
    }
}

fn param(name: &str, nonfinite: usize) -> ParamStats {
    ParamStats {
        name: name.into(),
        shape: vec![32, 32],
        max: f64::NAN,
        min: f64::NAN,
        nonfinite,
        max_abs: 0.0,
        l2: 0.0,
        mean_abs: 0.0,
        std: 0.0,
        zero_fraction: 0.0,
        nan: nonfinite,
        pos_inf: 0,
        neg_inf: 0,
        range: None,
    }
}

/// Layer 0's δ holds 32 NaN values and no finite nonzero one: its finite part's norm is 0.
fn report() -> ExperimentReport {
    ExperimentReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e".into(),
        description: "d".into(),
        backend: "ndarray".into(),
        adapter: None,
        precision: gradscope_report::Precision::F32,
        seed: 1,
        loss: "sum_squares".into(),
        thresholds: Thresholds::default(),
        cases: vec![CaseReport {
            input: InputInfo {
                name: "x".into(),
                shape: vec![1, 32],
                distribution: "normal(mean=0, std=1)".into(),
            },
            loss: f64::INFINITY,
            params: vec![param("layers.0.weight", 1024), param("layers.1.weight", 0)],
            layers: vec![layer(0, 0.0, 32), layer(1, 1.5, 0)],
            delta_ratio: f64::NAN,
            hidden_rate: f64::NAN,
            flow: Flow::Undefined,
            dead_layers: Vec::new(),
            zero_gradients: Vec::new(),
            theory: None,
            leaves_range: None,
        }],
        all_finite: false,
        origin: Some(gradscope_report::Origin {
            kind: gradscope_report::OriginKind::Loss,
            step: None,
            case: "x".into(),
            layer: None,
            tensor: "loss".into(),
            count: 1,
            rows: None,
            cause: None,
        }),
    }
}

#[test]
fn the_terminal_table_names_a_non_finite_norm_and_marks_finite_only_values() {
    let t = text::table(&report());
    let row0 = t
        .lines()
        .find(|l| l.trim_start().starts_with("0 ") && l.contains("32"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(row0.contains("non-finite"), "{row0}");
    assert!(
        !row0.contains("0.0000e+00 "),
        "the finite part's 0 is not shown as the norm: {row0}"
    );
    // max |δ| over the finite values, marked; the count in its own column.
    assert!(
        row0.contains("0.0000e+00†") && row0.contains("  32"),
        "{row0}"
    );
    let row1 = t
        .lines()
        .find(|l| l.trim_start().starts_with("1 ") && l.contains("1.5000e+00"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(!row1.contains('†'), "a finite layer is not marked: {row1}");
    assert!(t.contains("† over the finite values only"), "{t}");
    // The tables fit in 100 columns (the verdict is one line, however long: README).
    let w = t
        .lines()
        .filter(|l| !l.starts_with("verdict:"))
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    assert!(w <= 100, "{w} columns:\n{t}");
}

#[test]
fn a_gradient_holding_nan_has_no_norm_in_the_parameter_table() {
    let t = text::table(&report());
    let row = t
        .lines()
        .find(|l| l.contains("layers.0.weight"))
        .unwrap_or_else(|| panic!("{t}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    // parameter, shape, max, min, max |g|, L2, zero, !fin, the arrow.
    assert_eq!(
        cells[3..],
        [
            "NaN",
            "NaN",
            "0.0000e+00†",
            "non-finite",
            "0.0%",
            "1024",
            "<-"
        ],
        "{row}"
    );
}

#[test]
fn markdown_marks_the_same_cells() {
    let m = text::markdown(&report());
    assert!(
        m.contains("| 0 | 32 | non-finite | 0.0000e+00† | 32 |"),
        "{m}"
    );
    assert!(
        m.contains("| 1 | 32 | 1.5000e+00 | 1.5000e+00 | 0 |"),
        "{m}"
    );
    assert!(m.contains("† over the finite values only"), "{m}");
}

#[test]
fn the_html_page_highlights_non_finite_rows_and_marks_their_values() {
    let report = Report::Run(report());
    let page = html::page(&html::RecordPage {
        report: &report,
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &[],
    });
    assert!(
        page.contains(
            "<tr class=\"bad\"><td>0</td><td>32</td><td>non-finite</td><td>0.0000†</td><td>32</td>"
        ),
        "{page}"
    );
    // The parameter table starts with the name; the L2 norm of a gradient holding NaN is
    // not a number, and its max |g| over the finite values is marked.
    assert!(
        page.contains(
            "<tr class=\"bad\"><td class=\"t\">layers.0.weight</td><td>non-finite</td><td>NaN</td><td>NaN</td><td>0.0000†</td>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<tr><td class=\"t\">layers.1.weight</td>"),
        "{page}"
    );
    assert!(page.contains("† over the finite values only"), "{page}");
    // The verdict in words, as the terminal says it (it read "first born in loss (loss)").
    assert!(
        page.contains("NOT FINITE: 1024 non-finite gradient values; the first non-finite value was born in the loss of case x"),
        "{page}"
    );
}

#[test]
fn csv_rows_say_which_statistics_are_over_finite_values_only() {
    #[derive(serde::Deserialize)]
    struct LayerRow {
        layer: usize,
        delta_l2: f64,
        delta_nonfinite: usize,
        delta_finite_only: bool,
    }
    let csv = text::csv_layers(&report(), true).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<LayerRow> = csv::Reader::from_reader(csv.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {csv}"));
    assert_eq!(rows.len(), 2);
    assert!(rows[0].delta_finite_only && rows[0].delta_nonfinite == 32 && rows[0].layer == 0);
    assert!(!rows[1].delta_finite_only && rows[1].delta_l2 == 1.5);

    #[derive(serde::Deserialize)]
    struct ParamRow {
        parameter: String,
        finite_only: bool,
    }
    let csv = text::csv_params(&report(), true).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<ParamRow> = csv::Reader::from_reader(csv.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {csv}"));
    assert_eq!(
        rows.iter()
            .map(|r| (r.parameter.as_str(), r.finite_only))
            .collect::<Vec<_>>(),
        [("layers.0.weight", true), ("layers.1.weight", false)]
    );
}
