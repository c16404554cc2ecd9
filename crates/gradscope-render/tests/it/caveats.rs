//! A prediction shown beside data says when it does not apply: the page lists theory's
//! caveats under the number, headed by whether the prediction describes the run at all.

use gradscope_render::{html, sweep};
use gradscope_report::{
    CaseReport, ExperimentReport, Flow, InputInfo, Phase, PointSummary, PointTheory, Report,
    Spread, SweepSummary, Theory, Thresholds,
};

fn report(applies: bool, caveats: &[&str]) -> Report {
    Report::Run(ExperimentReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e".into(),
        description: String::new(),
        backend: "flex".into(),
        adapter: None,
        precision: gradscope_report::Precision::F32,
        seed: 0,
        loss: "sum_squares".into(),
        thresholds: Thresholds::default(),
        cases: vec![CaseReport {
            input: InputInfo {
                name: "x".into(),
                shape: vec![1, 2],
                distribution: "normal(mean=0, std=1)".into(),
            },
            loss: 1.0,
            params: Vec::new(),
            layers: Vec::new(),
            delta_ratio: 1e-20,
            hidden_rate: f64::NAN,
            flow: Flow::Vanishing,
            dead_layers: Vec::new(),
            zero_gradients: Vec::new(),
            theory: Some(Theory {
                range_unknown_from: None,
                q: vec![1.0],
                chi: vec![0.5],
                delta_ratio: 0.7,
                phase: Some(Phase::Ordered),
                q_star: None,
                chi_star: None,
                depth_scales: None,
                hidden_rate: None,
                ratio_quartiles: None,
                applies,
                caveats: caveats.iter().map(|c| c.to_string()).collect(),
                range: Vec::new(),
                leaves_range: None,
            }),
            leaves_range: None,
        }],
        all_finite: true,
        origin: None,
    })
}

fn page(r: &Report) -> String {
    html::page(&html::RecordPage {
        report: r,
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &[],
    })
}

#[test]
fn caveats_stand_under_the_prediction_headed_by_whether_it_applies() {
    let p = page(&report(
        false,
        &["the kernels have mean 0.1", "finite width"],
    ));
    assert!(
        p.contains("mean-field theory does not apply here:<ul><li>the kernels have mean 0.1</li><li>finite width</li></ul>"),
        "{p}"
    );
    let p = page(&report(true, &["finite width"]));
    assert!(
        p.contains("mean-field theory's caveats here:<ul><li>finite width</li></ul>"),
        "{p}"
    );
    assert!(!p.contains("does not apply"), "{p}");
    let p = page(&report(true, &[]));
    assert!(
        !p.contains("caveats here") && !p.contains("does not apply"),
        "{p}"
    );
}

/// A sweep point whose measured median ratio is `median`, with theory predicting `predicted`.
fn point(i: usize, depth: usize, median: f64, predicted: f64, applies: bool) -> PointSummary {
    let spread = Spread {
        median,
        q1: median,
        q3: median,
        min: median,
        max: median,
    };
    PointSummary {
        precision: Default::default(),
        point: i,
        settings: vec![format!("model.depth={depth}"), "loss=\"sum\"".into()].into(),
        case: "x".into(),
        trials: 20,
        nonfinite_trials: 0,
        dead_trials: 0,
        zero_gradient_trials: 0,
        ratio: spread,
        delta_l2: vec![spread; 2],
        weight_l2: vec![spread; 2],
        training: None,
        theory: Some(PointTheory {
            range_unknown_from: None,
            delta_ratio: predicted,
            chi: vec![1.0],
            chi_star: Some(1.0),
            ratio_quartiles: None,
            applies,
            caveats: if applies {
                Vec::new()
            } else {
                vec!["the loss's gradient depends on the output".into()]
            },
            leaves_range: None,
        }),
        left_range: None,
    }
}

fn sweep(points: Vec<PointSummary>) -> SweepSummary {
    SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "grid".into(),
        trials_per_point: 20,
        trials_done: 20 * points.len(),
        trials_expected: 20 * points.len(),
        partial: false,
        points,
    }
}

#[test]
fn a_sweep_says_where_theory_holds_and_where_it_does_not_apply() {
    // The bands are |median / predicted − 1| ≤ 0.05 and ≤ 0.25. 1.04/1 and 0.8/1 fall in
    // them; 0.468 against 0.150 is the issue's measured tanh, sum_squares, 128 outputs,
    // depth 32 point (×3.12).
    let s = sweep(vec![
        point(0, 4, 1.04, 1.0, true),
        point(1, 16, 0.8, 1.0, true),
        point(2, 32, 0.468, 0.150, false),
        point(3, 64, f64::NAN, 1.0, true),
    ]);
    let cells: Vec<String> = s.points.iter().map(sweep::holds_cell).collect();
    assert_eq!(
        cells,
        [
            "≤ 5 % (×1.04)",
            "≤ 25 % (×0.8)",
            "no (×3.12) (does not apply)",
            "not measured"
        ]
    );
    let t = sweep::table(&s);
    assert!(
        t.contains("(1.500e-01)"),
        "theory that does not apply is in parentheses\n{t}"
    );
    assert!(
        t.contains("theory does not apply at points 2: the loss's gradient depends on the output"),
        "{t}"
    );
    let md = sweep::markdown(&s, "grid.svg");
    assert!(md.contains("### Where mean-field theory holds"), "{md}");
    assert!(
        md.contains("| `loss=\"sum\"` x | ≤ 5 % (×1.04) | ≤ 25 % (×0.8) | no (×3.12) (does not apply) | not measured |"),
        "{md}"
    );
    let page = html::page(&html::RecordPage {
        report: &Report::Sweep(s.clone()),
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &[],
    });
    assert!(
        page.contains("<li>points 2: the loss&#39;s gradient depends on the output</li>")
            || page.contains("<li>points 2: the loss's gradient depends on the output</li>"),
        "{page}"
    );
}

#[test]
fn point_ranges_are_written_compactly() {
    let mut pts = Vec::new();
    for (i, applies) in [false, false, false, true, false].into_iter().enumerate() {
        pts.push(point(i, 4 * (i + 1), 1.0, 1.0, applies));
    }
    let reasons = sweep::not_applying(&sweep(pts));
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].1, [0, 1, 2, 4]);
    let t = sweep::table(&sweep(
        (0..5)
            .map(|i| point(i, 4 * (i + 1), 1.0, 1.0, i == 3))
            .collect(),
    ));
    assert!(t.contains("theory does not apply at points 0–2, 4:"), "{t}");
}

#[test]
fn where_theory_gives_the_finite_width_spread_it_holds_against_that_spreads_median() {
    // configs/sweeps/15-relu-he-spread.toml, width 64, depth 64: delta_ratio 1, measured
    // median 0.2606; theory's quartiles [q1, q3] = e^(−S ∓ 0.6745·√S) with S = Σ κ/(4n) over
    // the 64 hidden layers, κ = 5 (the README's derivation): S = 64·5/(4·64) = 1.25, so
    // √(q1·q3) = e^(−S) = 0.2865 and 0.2606/0.2865 = 0.910.
    let s_sum = 64.0 * 5.0 / (4.0 * 64.0);
    let spread = (0.6745f64 * f64::sqrt(s_sum)).exp();
    let mut p = point(0, 64, 0.2606, 1.0, true);
    if let Some(t) = p.theory.as_mut() {
        t.ratio_quartiles = Some([(-s_sum).exp() / spread, (-s_sum).exp() * spread]);
    }
    assert_eq!(sweep::holds_cell(&p), "≤ 25 % (×0.91)");
    let median = sweep::predicted_median(&p).unwrap_or(f64::NAN);
    assert!((median - (-s_sum).exp()).abs() < 1e-12, "{median}");
    // Without quartiles the same median is compared with delta_ratio itself.
    let q = point(0, 64, 0.2606, 1.0, true);
    assert_eq!(sweep::holds_cell(&q), "no (×0.261)");
}
