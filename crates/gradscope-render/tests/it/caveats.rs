//! A prediction shown beside data says when it does not apply: the page lists theory's
//! caveats under the number, headed by whether the prediction describes the run at all.

use gradscope_render::html;
use gradscope_report::{
    CaseReport, ExperimentReport, Flow, InputInfo, Phase, Report, Theory, Thresholds,
};

fn report(applies: bool, caveats: &[&str]) -> Report {
    Report::Run(ExperimentReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e".into(),
        description: String::new(),
        backend: "flex".into(),
        adapter: None,
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
            hidden_rate: f32::NAN,
            flow: Flow::Vanishing,
            dead_layers: Vec::new(),
            zero_gradients: Vec::new(),
            theory: Some(Theory {
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
            }),
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
