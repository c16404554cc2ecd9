//! The sweep picture: ‖δ_l‖ against layer index l on a log scale, one line per grid point
//! and input case (the median across trials) with its interquartile band. Plain SVG written
//! directly, so the bytes are deterministic and no font library is needed.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

const W: f64 = 1000.0;
const MIN_H: f64 = 520.0;
const LEGEND_ROW: f64 = 11.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 390.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A legend label: the settings without the `model.` prefix and string quotes.
fn label(settings: &[String], case: &str) -> String {
    let s: Vec<String> = settings
        .iter()
        .map(|k| k.trim_start_matches("model.").replace('"', ""))
        .collect();
    format!("{} [{case}]", s.join(" "))
}

/// The plotting area: the picture's height, the layer count, the log10 range of the y axis,
/// and the area's corners (x0, x1, y0, y1) in the picture.
#[derive(Clone, Copy)]
struct Frame {
    height: f64,
    layers: usize,
    lo: f64,
    hi: f64,
    area: (f64, f64, f64, f64),
}

impl Frame {
    /// Tall enough for one legend row per line; decades covering every drawn value.
    fn of(s: &SweepSummary) -> Self {
        let height = MIN_H.max(TOP + BOTTOM + LEGEND_ROW * (s.points.len() as f64 + 1.0));
        let layers = s
            .points
            .iter()
            .map(|p| p.delta_l2.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let logs: Vec<f64> = s
            .points
            .iter()
            .flat_map(|p| p.delta_l2.iter().flat_map(|d| [d.q1, d.q3, d.median]))
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| f64::from(v).log10())
            .collect();
        let lo = logs.iter().cloned().fold(f64::INFINITY, f64::min).floor();
        let hi = logs
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil();
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        };
        Self {
            height,
            layers,
            lo,
            hi,
            area: (LEFT, W - RIGHT, TOP, height - BOTTOM),
        }
    }

    fn x(&self, l: usize) -> f64 {
        let (x0, x1, ..) = self.area;
        x0 + (x1 - x0) * l as f64 / (self.layers - 1) as f64
    }

    /// The y of a decade exponent `e`.
    fn y_log(&self, e: f64) -> f64 {
        let (.., y0, y1) = self.area;
        y0 + (y1 - y0) * (self.hi - e) / (self.hi - self.lo)
    }

    /// The y of a value; `None` for zero, negative or non-finite values (not drawable).
    fn y(&self, v: f32) -> Option<f64> {
        let v = f64::from(v);
        (v.is_finite() && v > 0.0).then(|| self.y_log(v.log10()))
    }
}

/// The picture of `s` as an SVG document.
pub fn svg(s: &SweepSummary) -> String {
    if s.points.iter().any(|p| p.training.is_some()) {
        return training_sweep_svg(s);
    }
    if is_grid(s) {
        return phase_svg(s);
    }
    if let Some(depth) = depth_axis(s) {
        return small_multiples_svg(s, depth);
    }
    let f = Frame::of(s);
    let (height, x1) = (f.height, W - RIGHT);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="25" font-size="15" text-anchor="middle">{}: ‖δ_l‖ by layer (median and interquartile range over trials)</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        esc(&s.experiment)
    );
    axes(&mut o, &f);
    if s.points.iter().any(|p| p.theory.is_some()) {
        let _ = writeln!(
            o,
            r##"<text x="{LEFT}" y="{:.1}" font-size="11" fill="#555">Solid: measured median, band: interquartile range; dashed: mean-field theory, anchored at the output layer's median.</text>"##,
            f.height - 2.0
        );
    }
    // One band and one line per point × case; a non-finite or zero value breaks them.
    for (i, p) in s.points.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        band(&mut o, &f, p, color);
        median_line(&mut o, &f, p, color);
        theory_line(&mut o, &f, p, color);
        let ly = TOP + LEGEND_ROW * i as f64;
        let label = label(&p.settings, &p.case);
        let _ = writeln!(
            o,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/>"#,
            x1 + 15.0,
            ly - 4.0,
            x1 + 35.0,
            ly - 4.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{ly:.1}" font-size="10">{}</text>"#,
            x1 + 40.0,
            esc(&label)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Axes, decade grid lines and labels.
fn axes(o: &mut String, f: &Frame) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, f.height - BOTTOM);
    let _ = writeln!(
        o,
        r##"<path d="M{x0},{y0} V{y1} H{x1}" stroke="black" fill="none"/>"##
    );
    let mut e = f.lo;
    while e <= f.hi + 1e-9 {
        let py = f.y_log(e);
        let _ = writeln!(
            o,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{}</text>"#,
            x0 - 6.0,
            py + 4.0,
            e as i64
        );
        e += ((f.hi - f.lo) / 8.0).ceil().max(1.0);
    }
    let step = (f.layers / 16).max(1);
    for l in (0..f.layers).step_by(step) {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{l}</text>"#,
            f.x(l),
            y1 + 18.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">layer index l (0 = first; the last is the output layer)</text>"#,
        (x0 + x1) / 2.0,
        f.height - 15.0
    );
    let _ = writeln!(
        o,
        r#"<text x="20" y="{:.1}" transform="rotate(-90 20 {:.1})" text-anchor="middle">‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
}

/// The interquartile band of `p`, in runs of consecutive layers where both quartiles can be
/// drawn.
fn band(o: &mut String, f: &Frame, p: &PointSummary, color: &str) {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for (l, d) in p.delta_l2.iter().enumerate() {
        match (f.y(d.q1), f.y(d.q3)) {
            (Some(bottom), Some(top)) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((f.x(l), bottom, top))),
            _ => runs.push(Vec::new()),
        }
    }
    for band in runs.iter().filter(|r| r.len() >= 2) {
        let mut d = String::new();
        for (k, (px, _, top)) in band.iter().enumerate() {
            let _ = write!(d, "{}{px:.1},{top:.1} ", if k == 0 { "M" } else { "L" });
        }
        for (px, bottom, _) in band.iter().rev() {
            let _ = write!(d, "L{px:.1},{bottom:.1} ");
        }
        let _ = writeln!(
            o,
            r#"<path d="{}Z" fill="{color}" fill-opacity="0.15" stroke="none"/>"#,
            d.trim_end()
        );
    }
}

/// The median line of `p`, lifted over values that cannot be drawn.
fn median_line(o: &mut String, f: &Frame, p: &PointSummary, color: &str) {
    let mut d = String::new();
    let mut pen_up = true;
    for (l, spread) in p.delta_l2.iter().enumerate() {
        match f.y(spread.median) {
            Some(py) => {
                let _ = write!(
                    d,
                    "{}{:.1},{py:.1} ",
                    if pen_up { "M" } else { "L" },
                    f.x(l)
                );
                pen_up = false;
            }
            None => pen_up = true,
        }
    }
    if !d.is_empty() {
        let _ = writeln!(
            o,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
            d.trim_end()
        );
    }
}

/// Mean-field theory's ‖δ_l‖ for each of `layers` layers, anchored at `last`, the output
/// layer's measured value, and carried back by √χ per layer; `None` unless there is one χ per
/// layer but the last.
fn theory_deltas(chi: &[f64], last: f64, layers: usize) -> Option<Vec<f64>> {
    if chi.len() + 1 != layers {
        return None;
    }
    let mut values = vec![last; layers];
    for l in (0..chi.len()).rev() {
        values[l] = values[l + 1] * chi[l].sqrt();
    }
    Some(values)
}

/// Mean-field theory's ‖δ_l‖ for a point, dashed: anchored at the measured median of the
/// output layer and carried back by √χ per layer.
fn theory_line(o: &mut String, f: &Frame, p: &PointSummary, color: &str) {
    let (Some(t), Some(last)) = (&p.theory, p.delta_l2.last()) else {
        return;
    };
    let Some(values) = theory_deltas(&t.chi, f64::from(last.median), p.delta_l2.len()) else {
        return;
    };
    // Points beyond the y range (theory below f32's underflow, say) are left out.
    let (.., y0, y1) = f.area;
    let d: Vec<String> = values
        .iter()
        .enumerate()
        .filter_map(|(l, v)| f.y(*v as f32).map(|y| (f.x(l), y)))
        .filter(|(_, y)| (y0..=y1).contains(y))
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    if d.len() >= 2 {
        let _ = writeln!(
            o,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.2" stroke-dasharray="6,4"/>"#,
            d.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_report::{
        CaseReport, ExperimentReport, Flow, InputInfo, LayerStats, Phase, PointSummary, Spread,
        Theory, Thresholds,
    };

    fn spread(v: f32) -> Spread {
        Spread {
            median: v,
            q1: v / 2.0,
            q3: v * 2.0,
            min: v / 4.0,
            max: v * 4.0,
        }
    }

    fn layer(
        activation_mean: f32,
        activation_std: f32,
        delta_l2: f32,
        nonfinite: usize,
    ) -> LayerStats {
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
            delta_ratio: f32::NAN,
            hidden_rate: f32::NAN,
            flow: Flow::Undefined,
            dead_layers: Vec::new(),
            zero_gradients: Vec::new(),
            theory: chi.map(|chi| Theory {
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
            }),
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
                    vec![layer(f32::INFINITY, 0.0, f32::INFINITY, 0)],
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
        );
        assert!(wild.contains("f32 overflows above 3.4e38"));
        assert_eq!(wild.matches("l8,8").count(), 1);
    }

    #[test]
    fn svg_has_one_line_and_band_per_point_and_breaks_at_non_finite_values() {
        let point = |i: usize, values: &[f32]| PointSummary {
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
                point(1, &[1.0, f32::INFINITY, 10.0]),
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
        let point = |i: usize, bias: &str, gain: f64, ratio: f32, chi: f64| PointSummary {
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
                delta_ratio: chi.sqrt(),
                chi: vec![chi],
                chi_star: Some(chi),
                ratio_quartiles: None,
                applies: true,
                caveats: Vec::new(),
            }),
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
        // ln 0.5 = −0.69 and ln 2 = 0.69: the crossing is halfway between the gain-1 and
        // gain-2 cells, at x = 200 + (560/3)·(2 − 0.5 + 0.5) in every row.
        let x = 200.0 + 560.0 / 3.0 * 2.0;
        assert_eq!(svg.matches(&format!("{x:.1},")).count(), 3, "{svg}");
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
                            delta_ratio: 0.5,
                            chi: vec![0.9; depth],
                            chi_star: Some(0.9),
                            ratio_quartiles: None,
                            applies: true,
                            caveats: Vec::new(),
                        }),
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
            12,
            "theory at every point"
        );
        let mut flat = s.clone();
        flat.points.iter_mut().for_each(|p| p.settings.truncate(1));
        assert!(ratio_svg(&flat).is_none());
    }
}

/// Viridis, sampled: a sequential, colour-blind-safe scale for the layers of a network. It
/// stops short of viridis's last yellows, which are too light to read on white.
const SEQUENTIAL: &[&str] = &[
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
    "#a8db34",
];

/// One log-y panel of a training picture: series of (step, value) drawn against the step.
struct Panel {
    top: f64,
    height: f64,
    steps: usize,
    lo: f64,
    hi: f64,
}

impl Panel {
    fn new(top: f64, height: f64, steps: usize, values: impl Iterator<Item = f64>) -> Self {
        let logs: Vec<f64> = values
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(f64::log10)
            .collect();
        let lo = logs.iter().copied().fold(f64::INFINITY, f64::min).floor();
        let hi = logs
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil();
        let (lo, hi) = match (lo.is_finite() && hi.is_finite(), hi > lo) {
            (true, true) => (lo, hi),
            (true, false) => (lo - 1.0, hi + 1.0),
            _ => (-1.0, 1.0),
        };
        Self {
            top,
            height,
            steps: steps.max(2),
            lo,
            hi,
        }
    }

    fn x(&self, step: usize) -> f64 {
        LEFT + (W - LEFT - RIGHT) * step as f64 / (self.steps - 1) as f64
    }

    fn y(&self, v: f64) -> Option<f64> {
        (v.is_finite() && v > 0.0)
            .then(|| self.top + self.height * (self.hi - v.log10()) / (self.hi - self.lo))
    }

    /// Grid lines and `1eN` labels at whole decades, about `lines` of them across the panel.
    fn decade_grid(&self, o: &mut String, lines: f64) {
        let (x0, x1, y1) = (LEFT, W - RIGHT, self.top + self.height);
        let every = ((self.hi - self.lo) / lines).ceil().max(1.0);
        let mut e = self.lo;
        while e <= self.hi + 1e-9 {
            let py = self.y(10f64.powf(e)).unwrap_or(y1);
            let _ = writeln!(
                o,
                r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/>"##
            );
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{}</text>"#,
                x0 - 6.0,
                py + 4.0,
                e as i64
            );
            e += every;
        }
    }

    /// Axes, decade grid, step ticks and the y label.
    fn axes(&self, o: &mut String, ylabel: &str) {
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, self.top, self.top + self.height);
        let _ = writeln!(
            o,
            r##"<path d="M{x0},{y0} V{y1} H{x1}" stroke="black" fill="none"/>"##
        );
        self.decade_grid(o, 6.0);
        let tick = nice_step(self.steps);
        for s in (0..self.steps).step_by(tick) {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{s}</text>"#,
                self.x(s),
                y1 + 16.0
            );
        }
        self.y_label(o, ylabel);
    }

    /// The y axis's label, turned upright beside the panel.
    fn y_label(&self, o: &mut String, text: &str) {
        let mid = self.top + self.height / 2.0;
        let _ = writeln!(
            o,
            r#"<text x="18" y="{mid:.1}" transform="rotate(-90 18 {mid:.1})" text-anchor="middle">{}</text>"#,
            esc(text)
        );
    }

    /// A polyline through the drawable points of `values` (one per step), broken where a
    /// value cannot be drawn.
    fn line(&self, o: &mut String, values: &[f64], color: &str) {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (s, v) in values.iter().enumerate() {
            match self.y(*v) {
                Some(y) => runs
                    .last_mut()
                    .into_iter()
                    .for_each(|r| r.push((self.x(s), y))),
                None => runs.push(Vec::new()),
            }
            if !v.is_finite() {
                // A non-finite value: a cross at the top edge, in the series' colour.
                let (x, y) = (self.x(s), self.top);
                let _ = writeln!(
                    o,
                    r#"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="{color}" stroke-width="2"/>"#,
                    x - 4.0,
                    y - 4.0
                );
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            if run.len() == 1 {
                let (x, y) = run[0];
                let _ = writeln!(
                    o,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{color}"/>"#
                );
            } else {
                let _ = writeln!(
                    o,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.6"/>"#,
                    pts.join(" ")
                );
            }
        }
    }

    /// The x axis's label, `dy` below the panel.
    fn x_label(&self, o: &mut String, text: &str, dy: f64) {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (LEFT + W - RIGHT) / 2.0,
            self.top + self.height + dy,
            esc(text)
        );
    }

    /// Where the panel reaches f32's largest value, a red dotted line there: values past it
    /// overflow to infinity.
    fn f32_limit(&self, o: &mut String) {
        let Some(y) = self.y(f64::from(f32::MAX)) else {
            return;
        };
        if !(self.top..=self.top + self.height).contains(&y) {
            return;
        }
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d62728" stroke-width="1" stroke-dasharray="2,3"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#d62728" text-anchor="end">f32 overflows above 3.4e38</text>"##,
            W - RIGHT - 4.0,
            y - 4.0
        );
    }

    /// A dashed polyline through the values (one per step) that lie inside the panel.
    fn dashed(&self, o: &mut String, values: &[f64], color: &str) {
        let inside = self.top..=self.top + self.height;
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(s, v)| self.y(*v).map(|y| (self.x(s), y)))
            .filter(|(_, y)| inside.contains(y))
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        if pts.len() >= 2 {
            let _ = writeln!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.2" stroke-dasharray="6,4"/>"#,
                pts.join(" ")
            );
        }
    }
}

/// A step between ticks giving at most about 10 ticks: 1, 2, 5, 10, 20, 50, ...
fn nice_step(steps: usize) -> usize {
    let mut unit = 1;
    loop {
        for m in [1, 2, 5] {
            if steps / (unit * m) <= 10 {
                return unit * m;
            }
        }
        unit *= 10;
    }
}

/// The start of a picture: the document, a white ground and the title.
fn open_svg(o: &mut String, height: f64, title: &str) {
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="28" font-size="15" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
}

/// A training run's picture: the loss (top) and ‖δ_l‖ of every layer (bottom) against the
/// step, log y axes, and the step of the first non-finite value marked in both panels.
pub fn training_svg(
    title: &str,
    steps: &[gradscope_report::StepRecord],
    origin: Option<&gradscope_report::Origin>,
) -> String {
    let (height, panel_h) = (640.0, 210.0);
    let n = steps.len();
    let layers = steps.first().map_or(0, |s| s.layers.len());
    let loss: Vec<f64> = steps.iter().map(|s| f64::from(s.loss)).collect();
    let delta: Vec<Vec<f64>> = (0..layers)
        .map(|l| steps.iter().map(|s| s.layers[l].delta_l2).collect())
        .collect();
    let top = Panel::new(TOP + 10.0, panel_h, n, loss.iter().copied());
    let bottom = Panel::new(
        TOP + panel_h + 90.0,
        panel_h,
        n,
        delta.iter().flatten().copied(),
    );
    let mut o = String::new();
    open_svg(&mut o, height, &format!("{title}: loss and ‖δ_l‖ per step"));
    top.axes(&mut o, "loss (log scale)");
    bottom.axes(&mut o, "‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)");
    top.line(&mut o, &loss, "#000000");
    for (l, d) in delta.iter().enumerate() {
        let color = SEQUENTIAL[(l * (SEQUENTIAL.len() - 1)) / layers.saturating_sub(1).max(1)];
        bottom.line(&mut o, d, color);
        let last = if l + 1 == layers { " (output)" } else { "" };
        legend_row(
            &mut o,
            bottom.top + 14.0 * l as f64 + 6.0,
            color,
            &format!("layer {l}{last}"),
        );
    }
    bottom.x_label(&mut o, "step", 38.0);
    footnote(
        &mut o,
        bottom.top + panel_h + 62.0,
        "Gaps: values of 0 (every unit of a layer dead), which a log scale cannot show; × at the top: a non-finite value.",
    );
    if let Some(origin) = origin {
        failure_marker(&mut o, &[&top, &bottom], origin);
    }
    o.push_str("</svg>\n");
    o
}

/// One input case of a plain run as its picture draws it: per layer (output layer last), the
/// activations' root mean square √(mean² + std²) and ‖δ_l‖, `inf` where the layer's δ held a
/// non-finite value; mean-field theory's χ_l where it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCase {
    /// The input case: its name, and where its values came from.
    pub name: String,
    /// √(mean² + std²) of each layer's activations (the output layer: the output).
    pub activation_rms: Vec<f64>,
    /// ‖δ_l‖ per layer; `inf` where δ_l held a non-finite value.
    pub delta_l2: Vec<f64>,
    /// χ_1, χ_2, ...: ‖δ_{l−1}‖² ≈ χ_l·‖δ_l‖².
    pub chi: Option<Vec<f64>>,
}

impl RunCase {
    /// The cases of a plain run's report.
    pub fn from_report(report: &gradscope_report::ExperimentReport) -> Vec<RunCase> {
        report
            .cases
            .iter()
            .map(|case| RunCase {
                name: format!("{}: {}", case.input.name, case.input.distribution),
                activation_rms: case
                    .layers
                    .iter()
                    .map(|l| f64::from(l.activation_mean).hypot(f64::from(l.activation_std)))
                    .collect(),
                delta_l2: case
                    .layers
                    .iter()
                    .map(|l| {
                        if l.delta_nonfinite > 0 {
                            f64::INFINITY
                        } else {
                            f64::from(l.delta_l2)
                        }
                    })
                    .collect(),
                chi: case.theory.as_ref().map(|t| t.chi.clone()),
            })
            .collect()
    }

    /// Theory's ‖δ_l‖, anchored at the measured output layer's and carried back by √χ per
    /// layer; empty where theory does not apply or the anchor is not drawable.
    fn theory(&self) -> Vec<f64> {
        let (Some(chi), Some(&last)) = (&self.chi, self.delta_l2.last()) else {
            return Vec::new();
        };
        if !(last.is_finite() && last > 0.0) {
            return Vec::new();
        }
        theory_deltas(chi, last, self.delta_l2.len()).unwrap_or_default()
    }
}

/// A plain run's picture: the activations' scale (top) and ‖δ_l‖ (bottom) against the layer,
/// log y axes, one colour per input case, mean-field theory dashed beside ‖δ_l‖.
pub fn run_svg(title: &str, cases: &[RunCase]) -> String {
    let (panel_h, gap) = (210.0, 90.0);
    let height = TOP + 10.0 + 2.0 * panel_h + gap + 80.0;
    let layers = cases.iter().map(|c| c.delta_l2.len()).max().unwrap_or(0);
    let theory: Vec<Vec<f64>> = cases.iter().map(RunCase::theory).collect();
    let rms = cases.iter().flat_map(|c| c.activation_rms.iter().copied());
    let top = Panel::new(TOP + 10.0, panel_h, layers, rms);
    let deltas = cases.iter().flat_map(|c| c.delta_l2.iter().copied());
    let bottom = Panel::new(
        TOP + 10.0 + panel_h + gap,
        panel_h,
        layers,
        deltas.chain(theory.iter().flatten().copied()),
    );
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!("{title}: activations and ‖δ_l‖ by layer"),
    );
    top.axes(&mut o, "activation rms (log scale)");
    bottom.axes(&mut o, "‖δ_l‖ = ‖∂loss/∂z_l‖ (log scale)");
    for (i, (case, theory)) in cases.iter().zip(&theory).enumerate() {
        let color = COLORS[i % COLORS.len()];
        top.line(&mut o, &case.activation_rms, color);
        bottom.line(&mut o, &case.delta_l2, color);
        bottom.dashed(&mut o, theory, color);
        legend_row(
            &mut o,
            top.top + 14.0 * i as f64 + 6.0,
            color,
            &format!("input {}", case.name),
        );
    }
    if theory.iter().any(|t| !t.is_empty()) {
        legend_row(&mut o, bottom.top + 6.0, "#000000", "solid: measured");
        let _ = writeln!(
            o,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000000" stroke-width="1.2" stroke-dasharray="6,4"/>"##,
            W - RIGHT + 15.0,
            bottom.top + 20.0,
            W - RIGHT + 35.0,
            bottom.top + 20.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">dashed: mean-field theory, anchored at the output layer</text>"#,
            W - RIGHT + 40.0,
            bottom.top + 24.0
        );
    }
    for panel in [&top, &bottom] {
        panel.f32_limit(&mut o);
        panel.x_label(
            &mut o,
            "layer index l (0 = first; the last is the output layer)",
            34.0,
        );
    }
    footnote(
        &mut o,
        height - 12.0,
        "Gaps: values of 0, which a log scale cannot show (a layer whose every unit is dead has δ = 0); × at the top: a layer holding a non-finite value.",
    );
    o.push_str("</svg>\n");
    o
}

/// A grey note at the foot of a picture.
fn footnote(o: &mut String, y: f64, text: &str) {
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="{y:.1}" font-size="11" fill="#555">{}</text>"##,
        esc(text)
    );
}

/// A legend row right of the plot: a short line in `color` and its label.
fn legend_row(o: &mut String, y: f64, color: &str, label: &str) {
    let x1 = W - RIGHT;
    let _ = writeln!(
        o,
        r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="3"/>"#,
        x1 + 15.0,
        x1 + 35.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
        x1 + 40.0,
        y + 4.0,
        esc(label)
    );
}

/// The failing step: a dashed red line across `panels`, and what was born there.
fn failure_marker(o: &mut String, panels: &[&Panel], origin: &gradscope_report::Origin) {
    let step = origin.step.unwrap_or(0) as usize;
    for p in panels {
        let x = p.x(step);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5,4"/>"##,
            p.top,
            p.top + p.height
        );
    }
    let top = panels.first().map_or(TOP, |p| p.top);
    let lines = [
        format!("first non-finite value: {}", origin.kind.name()),
        format!("step {step}, {}", origin.tensor),
    ];
    for (i, text) in lines.iter().enumerate() {
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" fill="#d62728" font-size="12">{}</text>"##,
            W - RIGHT + 15.0,
            top + 20.0 + 16.0 * i as f64,
            esc(text)
        );
    }
}

/// The colours of the origin kinds in a training sweep's picture (Okabe–Ito, colour-blind
/// safe).
const ORIGIN_COLORS: [(&str, &str); 6] = [
    ("input", "#7f7f7f"),
    ("weights", "#8c564b"),
    ("forward", "#d55e00"),
    ("loss", "#0072b2"),
    ("backward", "#cc79a7"),
    ("update", "#009e73"),
];

/// A training sweep's picture: one bar per grid point, the fraction of its trials that went
/// non-finite, split by the origin's kind, with the median first non-finite step.
pub fn training_sweep_svg(s: &SweepSummary) -> String {
    let (left, bar_w, row) = (430.0, 360.0, 26.0);
    let rows = s.points.len() as f64;
    let mut o = String::new();
    open_svg(
        &mut o,
        TOP + 40.0 + row * rows + 70.0,
        &format!(
            "{}: trials that went non-finite, by where the first non-finite value was born",
            s.experiment
        ),
    );
    let y0 = TOP + 20.0;
    for f in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = left + bar_w * f;
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            y0 + row * rows
        );
        let _ = writeln!(
            o,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.0} %</text>"#,
            y0 + row * rows + 16.0,
            100.0 * f
        );
    }
    for (i, p) in s.points.iter().enumerate() {
        sweep_bar(&mut o, p, (left, bar_w), y0 + row * i as f64, row);
    }
    let ly = y0 + row * rows + 42.0;
    for (k, (kind, color)) in ORIGIN_COLORS.iter().enumerate() {
        let x = left + 95.0 * k as f64 - 240.0;
        let _ = writeln!(
            o,
            r#"<rect x="{x:.1}" y="{:.1}" width="14" height="12" fill="{color}"/>"#,
            ly - 10.0
        );
        let _ = writeln!(o, r#"<text x="{:.1}" y="{ly:.1}">{kind}</text>"#, x + 19.0);
    }
    o.push_str("</svg>\n");
    o
}

/// One grid point's row: its settings, its bar split by origin kind, and its counts.
fn sweep_bar(o: &mut String, p: &PointSummary, (left, bar_w): (f64, f64), y: f64, row: f64) {
    let Some(t) = &p.training else { return };
    let label: Vec<String> = p.settings.iter().map(|k| compact(k)).collect();
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
        left - 8.0,
        y + row / 2.0 + 4.0,
        esc(&label.join("  "))
    );
    let mut x = left;
    for (kind, color) in ORIGIN_COLORS {
        let n = t.origins.get(kind).copied().unwrap_or(0);
        let w = bar_w * n as f64 / p.trials.max(1) as f64;
        if w > 0.0 {
            let _ = writeln!(
                o,
                r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{color}"/>"#,
                y + 4.0,
                row - 8.0
            );
        }
        x += w;
    }
    let note = if p.nonfinite_trials == 0 {
        format!("0 of {}", p.trials)
    } else {
        format!(
            "{} of {}, median step {}",
            p.nonfinite_trials, p.trials, t.first_nonfinite_step.median
        )
    };
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
        left + bar_w + 8.0,
        y + row / 2.0 + 4.0,
        esc(&note)
    );
}

/// A setting for a legend: no `model.`/`train.` prefix, no quotes, and an inline table
/// `{ kind = "norm", max = 1.0 }` written `norm(max=1.0)`.
fn compact(setting: &str) -> String {
    let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
    let key = key
        .trim_start_matches("model.")
        .trim_start_matches("train.");
    let value = value.replace('"', "");
    let value = match value
        .trim()
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
    {
        Some(inner) => {
            let mut kind = String::new();
            let mut params = Vec::new();
            for part in inner.split(',') {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                match k.trim() {
                    "kind" => kind = v.trim().to_string(),
                    k => params.push(format!("{k}={}", v.trim())),
                }
            }
            format!("{kind}({})", params.join(","))
        }
        None => value,
    };
    format!("{key}={value}")
}

/// The index of the `model.depth` axis of a sweep with at least one other axis, one case.
fn depth_axis(s: &SweepSummary) -> Option<usize> {
    let first = s.points.first()?;
    let at = first
        .settings
        .iter()
        .position(|k| k.starts_with("model.depth="))?;
    (first.settings.len() >= 2 && s.points.windows(2).all(|w| w[0].case == w[1].case)).then_some(at)
}

/// A depth sweep as small multiples: one panel per combination of the other axes (e.g.
/// activation × initialiser), one line per depth on viridis (no colour repeats within a
/// panel), the interquartile band, theory dashed, and shared log axes.
fn small_multiples_svg(s: &SweepSummary, depth: usize) -> String {
    let others = |p: &PointSummary| -> String {
        p.settings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != depth)
            .map(|(_, k)| compact(k))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut panels: Vec<String> = Vec::new();
    let mut depths: Vec<String> = Vec::new();
    for p in &s.points {
        if !panels.contains(&others(p)) {
            panels.push(others(p));
        }
        if !depths.contains(&p.settings[depth]) {
            depths.push(p.settings[depth].clone());
        }
    }
    let cols = (panels.len() as f64).sqrt().ceil().max(1.0) as usize;
    let rows = panels.len().div_ceil(cols);
    let (left, top, gap) = (80.0, 90.0, 40.0);
    let pw = (W - left - 20.0 - gap * (cols as f64 - 1.0)) / cols as f64;
    let ph = 210.0;
    let height = top + rows as f64 * (ph + 60.0) + 50.0;
    let shared = Frame::of(s);
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!(
            "{}: ‖δ_l‖ by layer, median over trials (band: IQR; dashed: mean-field theory)",
            s.experiment
        ),
    );
    depth_legend(&mut o, &depths, left);
    for (n, name) in panels.iter().enumerate() {
        let (c, r) = (n % cols, n / cols);
        let (x0, y0) = (left + c as f64 * (pw + gap), top + r as f64 * (ph + 60.0));
        let f = Frame {
            area: (x0, x0 + pw, y0, y0 + ph),
            ..shared
        };
        panel_frame(&mut o, &f, name, c == 0, r + 1 == rows);
        for p in s.points.iter().filter(|p| others(p) == *name) {
            let k = depths
                .iter()
                .position(|d| *d == p.settings[depth])
                .unwrap_or(0);
            let color = depth_colour(k, depths.len());
            band(&mut o, &f, p, color);
            median_line(&mut o, &f, p, color);
            theory_line(&mut o, &f, p, color);
        }
    }
    o.push_str("</svg>\n");
    o
}

/// The colour of the `k`-th of `n` depths: spread over the whole viridis scale.
fn depth_colour(k: usize, n: usize) -> &'static str {
    SEQUENTIAL[(k * (SEQUENTIAL.len() - 1)) / n.saturating_sub(1).max(1)]
}

/// The small multiples' legend: one coloured dash and label per depth, in a row from `left`.
fn depth_legend(o: &mut String, depths: &[String], left: f64) {
    for (k, d) in depths.iter().enumerate() {
        let color = depth_colour(k, depths.len());
        let x = left + 105.0 * k as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{x:.1}" y1="52" x2="{:.1}" y2="52" stroke="{color}" stroke-width="3"/>"#,
            x + 20.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="56" font-size="11">{}</text>"#,
            x + 25.0,
            esc(&compact(d))
        );
    }
}

/// One panel's box, decade grid and title; decade labels on the first column and layer ticks
/// on the last row.
fn panel_frame(o: &mut String, f: &Frame, title: &str, y_labels: bool, x_labels: bool) {
    let (x0, x1, y0, y1) = f.area;
    let _ = writeln!(
        o,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
        (x0 + x1) / 2.0,
        y0 - 8.0,
        esc(title)
    );
    let step = ((f.hi - f.lo) / 6.0).ceil().max(1.0);
    let mut e = f.lo;
    while e <= f.hi + 1e-9 {
        let py = f.y_log(e);
        let _ = writeln!(
            o,
            r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="#eee"/>"##
        );
        if y_labels {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">1e{}</text>"#,
                x0 - 4.0,
                py + 3.0,
                e as i64
            );
        }
        e += step;
    }
    if x_labels {
        let tick = nice_step(f.layers);
        for l in (0..f.layers).step_by(tick) {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{l}</text>"#,
                f.x(l),
                y1 + 13.0
            );
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">layer l</text>"#,
            (x0 + x1) / 2.0,
            y1 + 27.0
        );
    }
}

/// Whether `s` is a two-axis grid (each axis with at least 3 values, one input case, not
/// training): drawn as a phase diagram.
fn is_grid(s: &SweepSummary) -> bool {
    let distinct = |i: usize| {
        let mut v: Vec<&String> = s.points.iter().filter_map(|p| p.settings.get(i)).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v.len()
    };
    s.points
        .iter()
        .all(|p| p.settings.len() == 2 && p.training.is_none())
        && s.points.windows(2).all(|w| w[0].case == w[1].case)
        && distinct(0) >= 3
        && distinct(1) >= 3
}

/// A diverging, colour-blind-safe scale (blue: vanishing, white: 1, red: exploding) for a
/// log10 ratio clamped to ±`span` decades.
fn diverging(log_ratio: f64, span: f64) -> String {
    let t = (log_ratio / span).clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        // white → #2166ac
        let u = -t;
        (
            255.0 - u * (255.0 - 33.0),
            255.0 - u * (255.0 - 102.0),
            255.0 - u * (255.0 - 172.0),
        )
    } else {
        // white → #b2182b
        (
            255.0 - t * (255.0 - 178.0),
            255.0 - t * (255.0 - 24.0),
            255.0 - t * (255.0 - 43.0),
        )
    };
    format!("#{:02x}{:02x}{:02x}", r as u8, g as u8, b as u8)
}

/// A two-axis sweep as a phase diagram: one cell per grid point coloured by the measured
/// log10 of the median ‖δ_first‖/‖δ_last‖, and mean-field theory's χ* = 1 (the edge of chaos:
/// χ₁ at the hidden layers' fixed point, whatever the depth) drawn over it where χ* crosses 1
/// between neighbouring cells.
pub fn phase_svg(s: &SweepSummary) -> String {
    let value_of = |p: &PointSummary, i: usize| compact(&p.settings[i]);
    let (xs, ys) = (axis_values(s, 1), axis_values(s, 0));
    let (left, top, cell_w, cell_h) = (
        200.0,
        70.0,
        560.0 / xs.len() as f64,
        340.0 / ys.len() as f64,
    );
    let height = top + cell_h * ys.len() as f64 + 130.0;
    let mut o = String::new();
    open_svg(
        &mut o,
        height,
        &format!(
            "{}: measured ‖δ_first‖/‖δ_last‖ (median) and theory's χ = 1",
            s.experiment
        ),
    );
    let span = s
        .points
        .iter()
        .map(|p| f64::from(p.ratio.median).log10().abs())
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        .ceil();
    // ln χ* per cell, for the χ* = 1 curve.
    let mut log_chi = vec![vec![f64::NAN; xs.len()]; ys.len()];
    for p in &s.points {
        let (Some(i), Some(j)) = (
            ys.iter().position(|y| *y == value_of(p, 0)),
            xs.iter().position(|x| *x == value_of(p, 1)),
        ) else {
            continue;
        };
        let (x, y) = (left + cell_w * j as f64, top + cell_h * i as f64);
        let log_ratio = f64::from(p.ratio.median).log10();
        let fill = if log_ratio.is_finite() {
            diverging(log_ratio, span)
        } else {
            "#bbbbbb".to_string()
        };
        let _ = writeln!(
            o,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="{fill}" stroke="#fff"/>"##
        );
        if let Some(t) = &p.theory {
            log_chi[i][j] = t.chi_star.map_or(f64::NAN, f64::ln);
        }
    }
    chi_curve(&mut o, &log_chi, (left, top, cell_w, cell_h));
    phase_axes(&mut o, &xs, &ys, (left, top, cell_w, cell_h), s);
    phase_legend(&mut o, span, top + cell_h * ys.len() as f64 + 70.0);
    o.push_str("</svg>\n");
    o
}

/// The values of axis `i` in order of first appearance, as the phase diagram labels them.
fn axis_values(s: &SweepSummary, i: usize) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for p in &s.points {
        let v = compact(&p.settings[i]);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    values
}

/// Theory's χ* = 1: in each row, the point between neighbouring cells where ln χ* changes
/// sign (linear interpolation), joined from row to row.
fn chi_curve(
    o: &mut String,
    log_chi: &[Vec<f64>],
    (left, top, cell_w, cell_h): (f64, f64, f64, f64),
) {
    let mut points = Vec::new();
    for (i, row) in log_chi.iter().enumerate() {
        for j in 1..row.len() {
            let (a, b) = (row[j - 1], row[j]);
            if a.is_finite() && b.is_finite() && (a < 0.0) != (b < 0.0) {
                let t = a / (a - b);
                let x = left + cell_w * (j as f64 - 0.5 + t);
                points.push(format!("{x:.1},{:.1}", top + cell_h * (i as f64 + 0.5)));
                break;
            }
        }
    }
    if !points.is_empty() {
        let _ = writeln!(
            o,
            r##"<polyline points="{}" fill="none" stroke="#000" stroke-width="2.5" stroke-dasharray="8,5"/>"##,
            points.join(" ")
        );
    }
}

/// The axes of a phase diagram: value labels, axis names, and the case.
fn phase_axes(
    o: &mut String,
    xs: &[String],
    ys: &[String],
    (left, top, cell_w, cell_h): (f64, f64, f64, f64),
    s: &SweepSummary,
) {
    let bottom = top + cell_h * ys.len() as f64;
    let value = |v: &str| {
        v.split_once('=')
            .map_or(v.to_string(), |(_, v)| v.to_string())
    };
    for (j, x) in xs.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            left + cell_w * (j as f64 + 0.5),
            bottom + 16.0,
            esc(&value(x))
        );
    }
    for (i, y) in ys.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            left - 6.0,
            top + cell_h * (i as f64 + 0.5) + 4.0,
            esc(&value(y))
        );
    }
    let key = |v: &str| {
        v.split_once('=')
            .map_or(String::new(), |(k, _)| k.to_string())
    };
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + cell_w * xs.len() as f64 / 2.0,
        bottom + 36.0,
        esc(&key(&xs[0]))
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        40.0,
        top + cell_h * ys.len() as f64 / 2.0,
        40.0,
        top + cell_h * ys.len() as f64 / 2.0,
        esc(&key(&ys[0]))
    );
    let case = s.points.first().map_or("", |p| p.case.as_str());
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555">input case {}; grey: no finite median; dashed: mean-field theory's edge of chaos, χ* = 1 (χ₁ at the hidden layers' fixed point)</text>"##,
        left,
        bottom + 56.0,
        esc(case)
    );
}

/// The colour scale: log10 of the ratio from −span to +span decades.
fn phase_legend(o: &mut String, span: f64, y: f64) {
    let (x0, w) = (200.0, 560.0);
    for k in 0..56 {
        let t = -1.0 + 2.0 * (k as f64 + 0.5) / 56.0;
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="12" fill="{}"/>"#,
            x0 + w * k as f64 / 56.0,
            w / 56.0 + 0.5,
            diverging(t * span, span)
        );
    }
    for (t, label) in [
        (0.0, format!("1e-{span}")),
        (0.5, "1".to_string()),
        (1.0, format!("1e{span}")),
    ] {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text>"#,
            x0 + w * t,
            y + 26.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">measured ‖δ_first‖/‖δ_last‖ (blue: vanishing, red: exploding)</text>"#,
        x0 + w / 2.0,
        y + 42.0
    );
}

/// Paul Tol's "muted" scheme: nine colours distinguishable with every common colour-vision
/// deficiency.
const MUTED: &[&str] = &[
    "#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677", "#882255",
    "#aa4499",
];

/// A depth sweep's summary picture: the median ‖δ_first‖/‖δ_last‖ against depth, one line per
/// combination of the other axes with its interquartile band, and theory's prediction as
/// open circles; `None` for a sweep without a depth axis.
pub fn ratio_svg(s: &SweepSummary) -> Option<String> {
    let depth = depth_axis(s)?;
    let depth_of = |p: &PointSummary| -> f64 {
        p.settings[depth]
            .split_once('=')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let mut depths: Vec<f64> = s
        .points
        .iter()
        .map(depth_of)
        .filter(|d| d.is_finite())
        .collect();
    depths.sort_by(f64::total_cmp);
    depths.dedup();
    let series = series_across(s, depth);
    let panel = ratio_panel(s, depths.len());
    let mut o = String::new();
    open_svg(
        &mut o,
        TOP + 540.0,
        &format!(
            "{}: ‖δ_first‖/‖δ_last‖ against depth (median, IQR band; ○ mean-field theory)",
            s.experiment
        ),
    );
    ratio_axes(&mut o, &panel, &depths);
    for (k, (name, points)) in series.iter().enumerate() {
        let color = MUTED[k % MUTED.len()];
        let at = |p: &&PointSummary| depths.iter().position(|d| *d == depth_of(p));
        let mut med = vec![f64::NAN; depths.len()];
        let mut quartiles = vec![(f64::NAN, f64::NAN); depths.len()];
        for p in points {
            if let Some(i) = at(p) {
                med[i] = f64::from(p.ratio.median);
                quartiles[i] = (f64::from(p.ratio.q1), f64::from(p.ratio.q3));
                if let Some(y) = p.theory.as_ref().and_then(|t| panel.y(t.delta_ratio)) {
                    let _ = writeln!(
                        o,
                        r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                        panel.x(i)
                    );
                }
            }
        }
        ratio_band(&mut o, &panel, &quartiles, color);
        panel.line(&mut o, &med, color);
        legend_row(&mut o, panel.top + 16.0 * k as f64 + 6.0, color, name);
    }
    o.push_str("</svg>\n");
    Some(o)
}

/// The ratio picture's panel: its log axis spans every quartile, median and theory's ratio.
fn ratio_panel(s: &SweepSummary, depths: usize) -> Panel {
    let logs = s
        .points
        .iter()
        .flat_map(|p| [p.ratio.q1, p.ratio.q3, p.ratio.median])
        .map(f64::from)
        .chain(
            s.points
                .iter()
                .filter_map(|p| p.theory.as_ref().map(|t| t.delta_ratio)),
        )
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::log10);
    Panel::new(TOP + 20.0, 420.0, depths, logs.map(|e| 10f64.powf(e)))
}

/// The points of `s` grouped by their settings other than axis `depth`, each group named by
/// those settings, in order of first appearance: the lines of [`ratio_svg`].
fn series_across(s: &SweepSummary, depth: usize) -> Vec<(String, Vec<&PointSummary>)> {
    let mut series: Vec<(String, Vec<&PointSummary>)> = Vec::new();
    for p in &s.points {
        let name: Vec<String> = p
            .settings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != depth)
            .map(|(_, k)| compact(k))
            .collect();
        let name = name.join(" ");
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(p),
            None => series.push((name, vec![p])),
        }
    }
    series
}

/// The interquartile band of one series (q1, q3 per depth), in runs of depths where both
/// quartiles can be drawn.
fn ratio_band(o: &mut String, panel: &Panel, quartiles: &[(f64, f64)], color: &str) {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new()];
    for (i, (q1, q3)) in quartiles.iter().enumerate() {
        match (panel.y(*q1), panel.y(*q3)) {
            (Some(bottom), Some(top)) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((panel.x(i), bottom, top))),
            _ => runs.push(Vec::new()),
        }
    }
    for run in runs.iter().filter(|r| r.len() >= 2) {
        let top: Vec<String> = run
            .iter()
            .map(|(x, _, t)| format!("{x:.1},{t:.1}"))
            .collect();
        let bottom: Vec<String> = run
            .iter()
            .rev()
            .map(|(x, b, _)| format!("{x:.1},{b:.1}"))
            .collect();
        let _ = writeln!(
            o,
            r#"<polygon points="{} {}" fill="{color}" fill-opacity="0.15" stroke="none"/>"#,
            top.join(" "),
            bottom.join(" ")
        );
    }
}

/// Axes of the ratio picture: the log y grid and label, and the depths on x.
fn ratio_axes(o: &mut String, panel: &Panel, depths: &[f64]) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, panel.top, panel.top + panel.height);
    let _ = writeln!(
        o,
        r##"<path d="M{x0},{y0} V{y1} H{x1}" stroke="black" fill="none"/>"##
    );
    panel.decade_grid(o, 8.0);
    for (i, d) in depths.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{d}</text>"#,
            panel.x(i),
            y1 + 16.0
        );
    }
    panel.x_label(o, "depth (hidden layers)", 36.0);
    panel.y_label(o, "‖δ_first‖ / ‖δ_last‖ (log scale)");
}
