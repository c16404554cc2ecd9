//! The pictures' unit tests.

use super::phase::{diverging, is_grid};
use super::*;
use gradscope_report::{
    CaseReport, ExperimentReport, Flow, InputInfo, LayerStats, Phase, PointSummary, Precision,
    Spread, Theory, Thresholds,
};

fn spread(v: f64) -> Spread {
    Spread {
        median: v,
        q1: v / 2.0,
        q3: v * 2.0,
        min: v / 4.0,
        max: v * 4.0,
    }
}

fn layer(activation_mean: f64, activation_std: f64, delta_l2: f64, nonfinite: usize) -> LayerStats {
    LayerStats {
        layer: 0,
        width: 1,
        delta_l2,
        delta_max_abs: delta_l2,
        delta_nonfinite: nonfinite,
        dead_fraction: 0.0,
        activation_mean,
        activation_std,
        activation_nonfinite: 0,
        z_range: None,
        a_range: None,
        delta_range: None,
    }
}

fn case(
    name: &str,
    distribution: &str,
    layers: Vec<LayerStats>,
    chi: Option<Vec<f64>>,
) -> CaseReport {
    CaseReport {
        input: InputInfo {
            name: name.into(),
            shape: vec![1, 1],
            distribution: distribution.into(),
        },
        loss: 0.0,
        params: Vec::new(),
        layers,
        delta_ratio: f64::NAN,
        hidden_rate: f64::NAN,
        flow: Flow::Undefined,
        dead_layers: Vec::new(),
        zero_gradients: Vec::new(),
        theory: chi.map(|chi| Theory {
            range_unknown_from: None,
            q: Vec::new(),
            chi,
            delta_ratio: f64::NAN,
            phase: Some(Phase::Critical),
            q_star: None,
            chi_star: None,
            depth_scales: None,
            hidden_rate: None,
            ratio_quartiles: None,
            applies: true,
            caveats: Vec::new(),
            range: Vec::new(),
            leaves_range: None,
        }),
        leaves_range: None,
    }
}

#[test]
fn a_run_case_reads_its_report_and_marks_non_finite_deltas() {
    let report = ExperimentReport {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e".into(),
        description: String::new(),
        backend: "flex".into(),
        adapter: None,
        precision: gradscope_report::Precision::F32,
        seed: 0,
        loss: "sum".into(),
        thresholds: Thresholds::default(),
        cases: vec![
            case(
                "x",
                "normal(mean=0, std=1)",
                vec![layer(3.0, 4.0, 0.0, 2), layer(0.5, 0.0, 0.25, 0)],
                Some(vec![4.0]),
            ),
            case(
                "overflowing norm",
                "d",
                vec![layer(f64::INFINITY, 0.0, f64::INFINITY, 0)],
                None,
            ),
            case(
                "given weights",
                "file w.npy",
                vec![layer(1.0, 0.0, 1.0, 0)],
                None,
            ),
        ],
        all_finite: false,
        origin: None,
    };
    let cases = RunCase::from_report(&report);
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0].name, "x: normal(mean=0, std=1)");
    assert_eq!(cases[2].name, "given weights: file w.npy");
    // A norm that overflowed though every element is finite.
    assert_eq!(cases[1].delta_l2, vec![f64::INFINITY]);
    assert_eq!(cases[1].activation_rms, vec![f64::INFINITY]);
    // √(3² + 4²) = 5: the root mean square from the mean and the population std.
    assert_eq!(cases[0].activation_rms, vec![5.0, 0.5]);
    // A layer whose δ held a non-finite value is drawn as one, not as its finite part.
    assert_eq!(cases[0].delta_l2, vec![f64::INFINITY, 0.25]);
    // Anchored at the output layer's 0.25 and carried back by √χ = 2.
    assert_eq!(cases[0].theory(), vec![0.5, 0.25]);
    assert_eq!(cases[2].chi, None);
    assert!(cases[2].theory().is_empty());
}

#[test]
fn run_svg_draws_each_case_in_both_panels_with_theory_and_the_f32_limit() {
    let case = |name: &str, delta: Vec<f64>, chi: Option<Vec<f64>>| RunCase {
        name: name.into(),
        activation_rms: vec![1.0, 10.0, 100.0],
        delta_l2: delta,
        chi,
    };
    let calm = run_svg(
        "t",
        &[
            case("a", vec![0.1, 0.2, 0.4], Some(vec![0.25, 0.25])),
            case("b", vec![0.3, 0.0, 0.5], None),
        ],
        Precision::F32,
    );
    assert!(calm.starts_with("<svg") && calm.ends_with("</svg>\n"));
    // a: one line per panel; b: one in the top panel, and in the bottom two runs
    // either side of its 0 (a gap on a log scale).
    assert_eq!(calm.matches("stroke-width=\"1.6\"").count(), 2 + 1);
    assert_eq!(
        calm.matches("<circle").count(),
        2,
        "b's lone points beside the gap"
    );
    assert_eq!(
        calm.matches("stroke-dasharray=\"6,4\"").count(),
        1 + 1,
        "a's theory and its legend"
    );
    assert!(calm.contains("input a") && calm.contains("input b"));
    assert!(!calm.contains("f32 overflows"), "nothing near 3.4e38");
    assert!(!calm.contains("l8,8"), "no non-finite marker");
    // Past f32's range: the overflow line, and a × for the non-finite layer.
    let wild = run_svg(
        "t",
        &[case(
            "a",
            vec![f64::INFINITY, 1e37, 1e30],
            Some(vec![1e16, 1e14]),
        )],
        Precision::F32,
    );
    assert!(wild.contains("f32 overflows above 3.4e38"));
    assert_eq!(wild.matches("l8,8").count(), 1);
    // The line is the run's precision's: 1e37 is far below f64's largest (1.8e308), and past
    // f16's 65504.
    let f64_values = [case("a", vec![1e300, 1e37, 1e30], None)];
    let wide = run_svg("t", &f64_values, Precision::F64);
    assert!(!wide.contains("overflows above"), "nothing near 1.8e308");
    let narrow = run_svg(
        "t",
        &[case("a", vec![1e5, 10.0, 1.0], None)],
        Precision::F16,
    );
    assert!(narrow.contains("f16 overflows above 65504"));
}

#[test]
fn svg_has_one_line_and_band_per_point_and_breaks_at_non_finite_values() {
    let point = |i: usize, values: &[f64]| PointSummary {
        precision: Default::default(),
        point: i,
        settings: vec![format!("model.depth={i}")].into(),
        case: "x".into(),
        trials: 3,
        nonfinite_trials: 0,
        dead_trials: 0,
        zero_gradient_trials: 0,
        ratio: spread(1.0),
        delta_l2: values.iter().map(|v| spread(*v)).collect(),
        weight_l2: values.iter().map(|v| spread(*v)).collect(),
        training: None,
        theory: None,
        left_range: None,
    };
    let s = SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "e<1>".into(),
        trials_per_point: 3,
        trials_done: 6,
        trials_expected: 6,
        partial: false,
        points: vec![
            point(0, &[1e-3, 1e-2, 1e-1]),
            point(1, &[1.0, f64::INFINITY, 10.0]),
        ],
    };
    let svg = svg(&s);
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    assert!(svg.contains("e&lt;1&gt;"), "text is escaped");
    // Point 0 has one band; point 1's finite layers (0 and 2) are not adjacent: no band.
    assert_eq!(svg.matches("fill-opacity=\"0.15\"").count(), 1);
    // Point 1's line restarts after the infinite value: two `M` moves in one path.
    assert!(
        svg.lines()
            .any(|l| l.contains("stroke=\"#ff7f0e\" stroke-width=\"1.8\"")
                && l.matches('M').count() == 2)
    );
    assert!(
        svg.contains(">1e-4<") || svg.contains(">1e-3<"),
        "decade labels"
    );
}

/// A two-axis grid is drawn as a phase diagram: one cell per point, coloured from the
/// measured median (blue below 1, red above), and theory's χ* = 1 where ln χ* changes
/// sign between neighbouring cells (here between gain 1 and gain 2 of each row).
#[test]
fn two_axis_grids_are_phase_diagrams_with_the_chi_curve() {
    let point = |i: usize, bias: &str, gain: f64, ratio: f64, chi: f64| PointSummary {
        precision: Default::default(),
        point: i,
        settings: vec![
            format!("model.bias_init={bias}"),
            format!("model.gain={gain}"),
        ]
        .into(),
        case: "x".into(),
        trials: 3,
        nonfinite_trials: 0,
        dead_trials: 0,
        zero_gradient_trials: 0,
        ratio: spread(ratio),
        delta_l2: vec![spread(1.0), spread(1.0)],
        weight_l2: vec![spread(1.0), spread(1.0)],
        training: None,
        theory: Some(gradscope_report::PointTheory {
            range_unknown_from: None,
            delta_ratio: chi.sqrt(),
            chi: vec![chi],
            chi_star: Some(chi),
            ratio_quartiles: None,
            applies: true,
            caveats: Vec::new(),
            leaves_range: None,
        }),
        left_range: None,
    };
    let mut points = Vec::new();
    for (b, bias) in ["a", "b", "c"].iter().enumerate() {
        for (g, (gain, ratio, chi)) in [(0.5, 1e-3, 0.25), (1.0, 0.5, 0.5), (2.0, 1e3, 2.0)]
            .into_iter()
            .enumerate()
        {
            points.push(point(3 * b + g, bias, gain, ratio, chi));
        }
    }
    let s = SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "grid".into(),
        trials_per_point: 3,
        trials_done: 27,
        trials_expected: 27,
        partial: false,
        points,
    };
    assert!(is_grid(&s));
    let svg = svg(&s);
    // 9 cells, and the legend's 56 colour steps.
    assert_eq!(svg.matches("<rect x=").count(), 9 + 56);
    assert!(svg.contains(&diverging(-3.0, 3.0)) && svg.contains(&diverging(3.0, 3.0)));
    // ln 0.5 = −0.69 and ln 2 = 0.69: the crossing is halfway in value between gain 1 and
    // gain 2, at 1.5. Gain is numeric, spaced by value over 560 px from x = 200, its cells
    // reaching half a step beyond 0.5 and 2.0: x = 200 + 560·(1.5 − 0.25)/(2.5 − 0.25). The
    // bias axis is categorical: one tick per row (3), not a line joining the rows.
    let x = 200.0 + 560.0 * (1.5 - 0.25) / (2.5 - 0.25);
    assert_eq!(
        svg.matches(&format!(r#"class="chi-star" x1="{x:.1}""#))
            .count(),
        3,
        "{svg}"
    );
    assert!(!svg.contains("<polyline class=\"chi-star\""));
}

/// A depth sweep: one panel per (activation, initialiser), one colour per depth and no
/// colour twice in a panel, theory dashed; and the ratio picture, which a sweep without a
/// depth axis does not get.
#[test]
fn depth_sweeps_are_small_multiples_with_a_ratio_picture() {
    let mut points = Vec::new();
    for act in ["relu", "tanh"] {
        for init in ["he_normal", "glorot_uniform"] {
            for depth in [2, 4, 8] {
                points.push(PointSummary {
                    precision: Default::default(),
                    point: points.len(),
                    settings: vec![
                        format!("model.activation={act}"),
                        format!("model.depth={depth}"),
                        format!("model.kernel_init={init}"),
                    ]
                    .into(),
                    case: "x".into(),
                    trials: 3,
                    nonfinite_trials: 0,
                    dead_trials: 0,
                    zero_gradient_trials: 0,
                    ratio: spread(0.5),
                    delta_l2: vec![spread(0.5); depth + 1],
                    weight_l2: vec![spread(1.0); depth + 1],
                    training: None,
                    theory: Some(gradscope_report::PointTheory {
                        range_unknown_from: None,
                        delta_ratio: 0.5,
                        chi: vec![0.9; depth],
                        chi_star: Some(0.9),
                        ratio_quartiles: None,
                        applies: true,
                        caveats: Vec::new(),
                        leaves_range: None,
                    }),
                    left_range: None,
                });
            }
        }
    }
    let s = SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: "depths".into(),
        trials_per_point: 3,
        trials_done: 36,
        trials_expected: 36,
        partial: false,
        points,
    };
    let svg = svg(&s);
    // Four panels, each titled by its activation and initialiser.
    assert_eq!(svg.matches(r##"fill="none" stroke="#999""##).count(), 4);
    assert!(svg.contains(">activation=tanh  kernel_init=glorot_uniform<"));
    // Three depths: three colours, each used once per panel for the median line.
    for k in [0, 4, 8] {
        let solid = format!(r#"stroke="{}" stroke-width="1.8""#, SEQUENTIAL[k]);
        assert_eq!(svg.matches(&solid).count(), 4, "{}", SEQUENTIAL[k]);
    }
    assert_eq!(
        svg.matches("stroke-dasharray=\"6,4\"").count(),
        12,
        "theory per point"
    );
    let ratio = ratio_svg(&s).unwrap_or_else(|| panic!("no ratio picture"));
    assert_eq!(
        ratio.matches("<circle").count(),
        12 + 1,
        "theory at every point, and the key's circle"
    );
    let mut flat = s.clone();
    flat.points.iter_mut().for_each(|p| p.settings.truncate(1));
    assert!(ratio_svg(&flat).is_none());
    // Theory's first tensor out of range: a filled triangle at its layer where theory
    // applies, a hollow one where it does not, and the note saying so; none without one.
    assert!(!svg.contains("leaves the range"));
    let mut marked = s.clone();
    let leaves = |layer: usize, direction: &str| gradscope_report::LeavesRange {
        layer,
        tensor: format!("z.layers.{layer}"),
        direction: direction.into(),
    };
    for (i, (l, d, applies)) in [(3, "above", true), (1, "below", false)]
        .into_iter()
        .enumerate()
    {
        let t = marked.points[i]
            .theory
            .as_mut()
            .unwrap_or_else(|| panic!("theory"));
        t.leaves_range = Some(leaves(l, d));
        t.applies = applies;
    }
    let svg = super::svg(&marked);
    assert_eq!(svg.matches("leaves the range").count(), 2, "{svg}");
    // Point 0 is depth 2, the first of three depths; point 1 depth 4, the middle one.
    let (first, middle) = (SEQUENTIAL[0], SEQUENTIAL[(SEQUENTIAL.len() - 1) / 2]);
    let filled = format!(
        r#"fill="{first}" stroke="{first}" stroke-width="1.5"><title>theory: z.layers.3 leaves the range above</title>"#
    );
    let hollow = format!(
        r#"fill="none" stroke="{middle}" stroke-width="1.5"><title>theory: z.layers.1 leaves the range below</title>"#
    );
    assert!(svg.contains(&filled), "{svg}");
    assert!(svg.contains(&hollow), "{svg}");
    assert!(svg.contains("theory's first tensor to leave the precision"));
    // Measured: a dot at the tensor most trials left first, filled where at least half the
    // trials left (point 0: 3 of 4), hollow where fewer did (point 1: 1 of 4), none where no
    // trial left (point 2), and just inside the triangle's edge (top for above).
    assert!(!svg.contains("<circle"), "nothing measured yet: {svg}");
    for (i, (l, d, left)) in [(2, "above", 3), (1, "below", 1)].into_iter().enumerate() {
        marked.points[i].left_range = Some(gradscope_report::LeftRange {
            checked: 4,
            left,
            first: Some(leaves(l, d)),
            first_trials: 1,
        });
    }
    marked.points[2].left_range = Some(gradscope_report::LeftRange {
        checked: 4,
        left: 0,
        first: None,
        first_trials: 0,
    });
    let svg = super::svg(&marked);
    assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
    let dot = |fill: &str, stroke: &str, what: &str| {
        format!(
            r#"fill="{fill}" stroke="{stroke}" stroke-width="1.5"><title>measured: {what}</title></circle>"#
        )
    };
    assert!(
        svg.contains(&dot(
            first,
            first,
            "z.layers.2 left the range above first in 1 of 4 trials (3 left)"
        )),
        "{svg}"
    );
    assert!(
        svg.contains(&dot(
            "none",
            middle,
            "z.layers.1 left the range below first in 1 of 4 trials (1 left)"
        )),
        "{svg}"
    );
    assert!(svg.contains("● the tensor measured first to leave it in most trials"));
    // Two depths of one panel predicting the same layer: the second triangle 11 px to the
    // right of the first, not over it.
    let mut same = marked.clone();
    for i in [0, 1] {
        if let Some(t) = same.points[i].theory.as_mut() {
            t.leaves_range = Some(leaves(3, "above"));
        }
    }
    let svg = super::svg(&same);
    let tips: Vec<f64> = svg
        .lines()
        .filter(|l| l.contains("theory: z.layers.3 leaves the range above"))
        .filter_map(|l| l.split("d=\"M").nth(1)?.split(',').next()?.parse().ok())
        .collect();
    assert_eq!(tips.len(), 2, "{svg}");
    assert!((tips[1] - tips[0] - 11.0).abs() < 0.2, "{tips:?}");
}
