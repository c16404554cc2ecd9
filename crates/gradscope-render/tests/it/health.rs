//! A finite training run is not a healthy one: the verdict names the layers that died or
//! stopped getting a gradient, and the step they did, in the terminal, markdown and HTML.

use gradscope_render::{html, train};
use gradscope_report::{LayerEvent, Report, TrainReport};

fn report(dead: Vec<LayerEvent>, zero: Vec<LayerEvent>, accuracy: Option<[f32; 2]>) -> TrainReport {
    TrainReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "t".into(),
        description: "d".into(),
        backend: "flex".into(),
        precision: gradscope_report::Precision::F32,
        seed: 1,
        loss: "cross_entropy".into(),
        optimizer: "sgd".into(),
        learning_rate: 0.1,
        clip: "none".into(),
        batch: 32,
        steps: 300,
        steps_run: 300,
        first_loss: 2.5,
        last_loss: 2.25,
        finite: true,
        origin: None,
        growth: None,
        accuracy,
        dead_layers: dead,
        zero_gradients: zero,
        master_precision: None,
        loss_scale: None,
    }
}

/// The record page of a training report without steps, pictures or files.
fn page_of(r: &TrainReport) -> String {
    html::page(&html::RecordPage {
        report: &Report::Train(r.clone()),
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &[],
    })
}

fn at(layer: usize, first_step: usize, at_end: bool) -> LayerEvent {
    LayerEvent {
        layer,
        first_step,
        at_end,
    }
}

#[test]
fn a_training_verdict_names_dead_layers_and_zero_gradients_with_their_first_step() {
    // The issue's run: training a with norm clipping at 1; layer 3 dies at step 30 and every
    // kernel's gradient is 0 from then on.
    let r = report(
        vec![at(3, 30, true)],
        (0..5).map(|l| at(l, 30, true)).collect(),
        Some([0.09375, 0.125]),
    );
    let v = train::verdict(&r, "->");
    assert_eq!(
        v,
        "finite for all 300 steps; loss 2.5000e+00 -> 2.2500e+00; accuracy 9.4 % -> 12.5 %; \
         DEAD (every unit 0 for the whole batch): layer 3 from step 30; ZERO GRADIENT (a \
         kernel's gradient exactly 0 everywhere): layers 0, 1, 2, 3, 4 from step 30"
    );
    assert!(train::training(&r, &[]).contains(&v));
    assert!(train::training_markdown(&r, &[], "t.svg").contains(&train::verdict(&r, "→")));
    let page = page_of(&r);
    assert!(page.contains("layer 3 from step 30"), "{page}");
    assert!(
        page.contains("<p class=\"verdict bad\">finite for all 300 steps"),
        "a dead run is not shown as fine\n{page}"
    );
}

#[test]
fn a_layer_that_revived_says_so_and_a_healthy_run_says_nothing_more() {
    let r = report(vec![at(1, 7, false), at(2, 9, true)], Vec::new(), None);
    assert!(
        train::verdict(&r, "->").ends_with(
            "; DEAD (every unit 0 for the whole batch): layer 1 from step 7 (alive again at \
             the last step); layer 2 from step 9"
        ),
        "{}",
        train::verdict(&r, "->")
    );
    let r = report(Vec::new(), Vec::new(), None);
    assert_eq!(
        train::verdict(&r, "->"),
        "finite for all 300 steps; loss 2.5000e+00 -> 2.2500e+00"
    );
}

#[test]
fn a_sweep_counts_the_trials_with_a_dead_layer_in_every_form() {
    use gradscope_render::sweep;
    use gradscope_report::{PointSummary, Spread, SweepSummary};
    let spread = Spread {
        median: 1.0,
        q1: 1.0,
        q3: 1.0,
        min: 1.0,
        max: 1.0,
    };
    let point = |i: usize, dead: usize| PointSummary {
        precision: Default::default(),
        point: i,
        settings: vec![format!("model.depth={}", 2 + i)].into(),
        case: "x".into(),
        trials: 10,
        nonfinite_trials: 0,
        dead_trials: dead,
        zero_gradient_trials: 0,
        ratio: spread,
        delta_l2: vec![spread; 2],
        weight_l2: vec![spread; 2],
        training: None,
        theory: None,
        left_range: None,
    };
    let s = SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "s".into(),
        trials_per_point: 10,
        trials_done: 40,
        trials_expected: 40,
        partial: false,
        points: vec![point(0, 0), point(1, 3), point(2, 10), point(3, 0)],
    };
    let line = "13 of 40 trials with a dead hidden layer (every unit 0 for the whole batch), at points 1–2";
    assert_eq!(sweep::health_notes(&s), [line]);
    assert!(sweep::table(&s).contains(line));
    assert!(sweep::markdown(&s, "s.svg").contains(&format!("{line}.")));
    let page = html::page(&html::RecordPage {
        report: &Report::Sweep(s.clone()),
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &[],
    });
    assert!(
        page.contains(&format!("<p class=\"verdict bad\">{line}</p>")),
        "{page}"
    );
    let healthy = SweepSummary {
        points: vec![point(0, 0)],
        ..s
    };
    assert!(sweep::health_notes(&healthy).is_empty());
}

#[test]
fn the_page_lists_the_records_files_and_how_to_probe_trained_weights() {
    let r = Report::Train(report(Vec::new(), Vec::new(), None));
    let files = [
        ("config.toml".to_string(), 812),
        ("weights.safetensors".to_string(), 3 * 1024 + 410),
    ];
    let page = html::page(&html::RecordPage {
        report: &r,
        config: "",
        pictures: &[],
        steps: &[],
        dir: "/r",
        files: &files,
    });
    assert!(
        page.contains(
            "<li><a href=\"config.toml\">config.toml</a> (812 B)</li><li><a href=\"weights.safetensors\">weights.safetensors</a> (3.4 KiB)</li>"
        ),
        "{page}"
    );
    assert!(
        page.contains("weights = \"/r/weights.safetensors\""),
        "{page}"
    );
}

/// A mixed-precision run whose dynamic scale skipped steps but never collapsed: it is not
/// "finite for all steps", and every output says how many were skipped and where the first
/// skip's non-finite value was born.
#[test]
fn skipped_steps_are_named_in_every_verdict() {
    let mut r = report(Vec::new(), Vec::new(), None);
    r.precision = gradscope_report::Precision::F16;
    r.master_precision = Some(gradscope_report::Precision::F32);
    r.finite = false;
    r.loss_scale = Some(Box::new(gradscope_report::LossScaling {
        kind: "dynamic(init=65536.0)".into(),
        init: 65536.0,
        last: 8192.0,
        min: 8192.0,
        max: 65536.0,
        skipped_steps: 3,
        first_skip: Some(gradscope_report::Origin {
            kind: gradscope_report::OriginKind::Backward,
            step: Some(0),
            case: "train".into(),
            layer: Some(2),
            tensor: "grad.layers.2.weight".into(),
            count: 5,
            rows: None,
            cause: Some(gradscope_report::Cause::Overflow),
        }),
    }));
    let v = train::verdict(&r, "->");
    assert!(
        v.starts_with("ran all 300 steps, 3 of them SKIPPED for non-finite gradients"),
        "{v}"
    );
    let line = train::loss_scale_line(&r).unwrap_or_default();
    assert!(
        line.ends_with("3 of 300 steps skipped for non-finite gradients, the first in the backward pass at step 0: grad.layers.2.weight (5 values): overflow"),
        "{line}"
    );
    let md = train::training_markdown(&r, &[], "t.svg");
    assert!(
        md.contains("- precision: f16 compute, f32 master weights (mixed precision)"),
        "{md}"
    );
    assert!(
        md.contains("- loss scale: dynamic(init=65536.0): 6.5536e+04 → 8.1920e+03"),
        "{md}"
    );
    let page = page_of(&r);
    assert!(page.contains("f16 compute, f32 master weights"), "{page}");
    assert!(page.contains("3 of 300 steps skipped"), "{page}");
    assert!(
        page.contains("<p class=\"verdict bad\">ran all 300 steps, 3 of them SKIPPED"),
        "a skipping run is not shown as fine\n{page}"
    );
}
