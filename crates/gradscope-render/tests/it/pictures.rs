//! Every picture of `plot`, rendered from fixed records: the schema-version-1 fixtures of the
//! `gradscope` crate and the sweep tables of the notebook's pages. With `GRADSCOPE_PLOTS_OUT`
//! set to a folder, the pictures are written there (`<name>.svg`), so that a refactoring can be
//! checked byte for byte against the pictures before it, and the pictures looked at.

use std::path::{Path, PathBuf};

use gradscope_render::plot;
use gradscope_report::{PointSummary, PointTheory, Report, Spread, StepRecord, SweepSummary};

/// The workspace root of the checkout under test: `CARGO_MANIFEST_DIR` as `cargo test` sets it
/// for the test process, where the path `env!` bakes in may be another checkout's that shares
/// the target directory (the build-time path is the fallback).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture(name: &str, file: &str) -> Report {
    let path = root()
        .join("crates/gradscope/tests/it/fixtures/v1")
        .join(name)
        .join(file);
    Report::from_json(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_sweep(name: &str) -> SweepSummary {
    match fixture(name, "summary.json") {
        Report::Sweep(s) => s,
        other => panic!("{name}: not a sweep: {other:?}"),
    }
}

/// A quartet of the table's numbers as a spread (min and max as given).
fn spread(median: f64, q1: f64, q3: f64, min: f64, max: f64) -> Spread {
    Spread {
        median,
        q1,
        q3,
        min,
        max,
    }
}

/// A notebook sweep page's table as a summary: settings, case, trials, the ratio's spread and
/// theory's ratio from its columns. The page has only the first and last layers' median ‖δ‖,
/// so `delta_l2` holds those two; its χ are not on the page, so each point's χ is theory's
/// ratio spread evenly over `depth` layers (ratio = Π√χ_l, so χ = ratio^(2/depth)), and χ* is
/// that χ: enough to draw the pictures from real measurements.
pub fn notebook_sweep(name: &str, depth_of: impl Fn(&[String]) -> usize) -> SweepSummary {
    let page = read(
        &root()
            .join("experiments/notebook")
            .join(format!("{name}.md")),
    );
    let mut points = Vec::new();
    for line in page
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| point"))
    {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(['|', ' ', '`']))
            .collect();
        // 13 cells, or 14 with the "theory holds" column after theory's.
        let d = match cells.len() {
            13 => 11,
            14 => 12,
            _ => continue,
        };
        let settings: Vec<String> = cells[1]
            .split(" model.")
            .enumerate()
            .map(|(i, s)| {
                if i == 0 {
                    s.to_string()
                } else {
                    format!("model.{s}")
                }
            })
            .collect();
        let num = |i: usize| cells[i].parse::<f64>().unwrap_or(f64::NAN);
        let theory: f64 = cells[10].parse().unwrap_or(f64::NAN);
        let depth = depth_of(&settings);
        let chi = theory.powf(2.0 / depth as f64);
        points.push(PointSummary {
            precision: Default::default(),
            point: cells[0].parse().unwrap_or(0),
            settings: settings.into(),
            case: cells[2].to_string(),
            trials: cells[3].parse().unwrap_or(0),
            nonfinite_trials: cells[4].parse().unwrap_or(0),
            dead_trials: 0,
            zero_gradient_trials: 0,
            ratio: spread(num(5), num(6), num(7), num(8), num(9)),
            delta_l2: [num(d), num(d + 1)]
                .iter()
                .map(|v| spread(*v, *v, *v, *v, *v))
                .collect(),
            weight_l2: Vec::new(),
            training: None,
            theory: theory.is_finite().then(|| PointTheory {
                range_unknown_from: None,
                delta_ratio: theory,
                chi: vec![chi; depth],
                chi_star: Some(chi),
                ratio_quartiles: None,
                applies: true,
                caveats: Vec::new(),
                leaves_range: None,
            }),
            left_range: None,
        });
    }
    assert!(!points.is_empty(), "{name}: no table");
    SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: name.to_string(),
        trials_per_point: points[0].trials,
        trials_done: points.iter().map(|p| p.trials).sum(),
        trials_expected: points.iter().map(|p| p.trials).sum(),
        partial: false,
        points,
    }
}

/// The depth in a point's settings, or `fixed`.
fn depth_or(fixed: usize) -> impl Fn(&[String]) -> usize {
    move |settings: &[String]| {
        settings
            .iter()
            .find_map(|k| k.strip_prefix("model.depth=")?.parse().ok())
            .unwrap_or(fixed)
    }
}

/// Every picture, named.
pub fn pictures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["sweep", "train-sweep"] {
        let s = fixture_sweep(name);
        out.push((format!("fixture-{name}"), plot::svg(&s)));
        if let Some(r) = plot::ratio_svg(&s) {
            out.push((format!("fixture-{name}-ratio"), r));
        }
    }
    out.push((
        "fixture-train-sweep-bars".into(),
        plot::training_sweep_svg(&fixture_sweep("train-sweep")),
    ));
    for name in ["run", "run-nonfinite"] {
        let Report::Run(r) = fixture(name, "report.json") else {
            panic!("{name}: not a run")
        };
        out.push((
            format!("fixture-{name}"),
            plot::run_svg(&r.experiment, &plot::RunCase::from_report(&r), r.precision),
        ));
    }
    let Report::Train(t) = fixture("train", "report.json") else {
        panic!("train: not a training run")
    };
    let steps: Vec<StepRecord> =
        read(&root().join("crates/gradscope/tests/it/fixtures/v1/train/steps.jsonl"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("steps.jsonl: {e}")))
            .collect();
    out.push((
        "fixture-train".into(),
        plot::training_svg(&t.experiment, &steps, t.origin.as_ref()),
    ));
    for (name, depth) in [
        ("phase-diagram-tanh", 32),
        ("phase-diagram-relu", 32),
        ("activation-init-depth", 0),
        ("seed-network-1000-seeds", 1),
    ] {
        let s = notebook_sweep(name, depth_or(depth));
        out.push((format!("notebook-{name}"), plot::svg(&s)));
        if let Some(r) = plot::ratio_svg(&s) {
            out.push((format!("notebook-{name}-ratio"), r));
        }
    }
    out.push(("synthetic-init-depth".into(), plot::svg(&init_depth())));
    out.push(("synthetic-gain-init".into(), plot::svg(&gain_init())));
    let spread = width_depth();
    out.push(("synthetic-width-depth".into(), plot::svg(&spread)));
    if let Some(r) = plot::ratio_svg(&spread) {
        out.push(("synthetic-width-depth-ratio".into(), r));
    }
    out
}

/// A grid point of `settings` whose measured ratio has median `ratio` and quartiles
/// ratio·e^(∓spread), with theory's ratio, χ (one per layer), quartiles and validity.
pub fn point(
    settings: &[String],
    ratio: f64,
    spread: f64,
    theory: Option<(f64, f64, Option<[f64; 2]>, bool)>,
) -> PointSummary {
    let r = |v: f64| v;
    PointSummary {
        precision: Default::default(),
        point: 0,
        settings: settings.to_vec().into(),
        case: "x".into(),
        trials: 20,
        nonfinite_trials: 0,
        dead_trials: 0,
        zero_gradient_trials: 0,
        ratio: Spread {
            median: r(ratio),
            q1: r(ratio * (-spread).exp()),
            q3: r(ratio * spread.exp()),
            min: r(ratio * (-3.0 * spread).exp()),
            max: r(ratio * (3.0 * spread).exp()),
        },
        delta_l2: vec![
            Spread {
                median: r(ratio),
                q1: r(ratio),
                q3: r(ratio),
                min: r(ratio),
                max: r(ratio),
            },
            Spread {
                median: 1.0,
                q1: 1.0,
                q3: 1.0,
                min: 1.0,
                max: 1.0,
            },
        ],
        weight_l2: Vec::new(),
        training: None,
        theory: theory.map(|(delta_ratio, chi, ratio_quartiles, applies)| PointTheory {
            range_unknown_from: None,
            delta_ratio,
            chi: vec![chi],
            chi_star: Some(chi),
            ratio_quartiles,
            applies,
            caveats: if applies {
                Vec::new()
            } else {
                vec!["made up: does not apply".into()]
            },
            leaves_range: None,
        }),
        left_range: None,
    }
}

pub fn sweep(name: &str, mut points: Vec<PointSummary>) -> SweepSummary {
    points.iter_mut().enumerate().for_each(|(i, p)| p.point = i);
    SweepSummary {
        schema_version: gradscope_report::SCHEMA_VERSION,
        experiment: name.into(),
        trials_per_point: 20,
        trials_done: 20 * points.len(),
        trials_expected: 20 * points.len(),
        partial: false,
        points,
    }
}

/// Depths 2 to 16 (unevenly spaced) × three kernel initialisers, a categorical axis. The χ
/// are made up: 1/2 for glorot and lecun, 2 for he, so that χ* = 1 falls between glorot and
/// he; lecun's theory is marked as not applying, to draw that case.
pub fn init_depth() -> SweepSummary {
    let mut points = Vec::new();
    for depth in [2usize, 4, 8, 16] {
        for (init, chi, applies) in [
            ("glorot_uniform", 0.5f64, true),
            ("he_normal", 2.0, true),
            ("lecun_normal", 0.5, false),
        ] {
            let settings = [
                format!("model.depth={depth}"),
                format!("model.kernel_init=\"{init}\""),
            ];
            let ratio = chi.powf(depth as f64 / 2.0);
            points.push(point(
                &settings,
                ratio * 1.1,
                0.2,
                Some((ratio, chi, None, applies)),
            ));
        }
    }
    sweep("init-depth", points)
}

/// Gain 0.5, 1, 2 (numeric, down y) × three kernel initialisers (categorical, along x), with
/// a made-up χ* = gain²/2 that crosses 1 at gain √2 in every column, and ratio χ^8.
pub fn gain_init() -> SweepSummary {
    let mut points = Vec::new();
    for gain in [0.5f64, 1.0, 2.0] {
        for init in ["glorot_uniform", "he_normal", "lecun_normal"] {
            let chi = gain * gain / 2.0;
            let settings = [
                format!("model.gain={gain}"),
                format!("model.kernel_init={init}"),
            ];
            let ratio = chi.powf(8.0);
            points.push(point(&settings, ratio, 0.2, Some((ratio, chi, None, true))));
        }
    }
    sweep("gain-init", points)
}

/// relu with He kernels (critical: theory's ratio is 1) at widths 64 to 256 × depths 16 to 64,
/// as configs/sweeps/15-relu-he-spread.toml: Hanin & Nica's ln ratio is close to Gaussian with
/// variance 5L/(4n), so its quartiles are e^(±0.674·σ); the measured spread is made 1.2 times
/// that.
pub fn width_depth() -> SweepSummary {
    let mut points = Vec::new();
    for depth in [16usize, 32, 64] {
        for width in [64usize, 128, 256] {
            let sigma = (5.0 * depth as f64 / (4.0 * width as f64)).sqrt();
            let q = 0.674 * sigma;
            let settings = [
                format!("model.depth={depth}"),
                format!("model.width={width}"),
            ];
            points.push(point(
                &settings,
                (-0.5 * sigma * sigma).exp(),
                1.2 * q,
                Some((1.0, 1.0, Some([(-q).exp(), q.exp()]), true)),
            ));
        }
    }
    sweep("width-depth", points)
}

#[test]
fn every_picture_renders_and_is_written_where_asked() {
    let pictures = pictures();
    assert!(pictures.len() >= 16, "{}", pictures.len());
    for (name, svg) in &pictures {
        assert!(
            svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
            "{name}"
        );
    }
    if let Some(dir) = std::env::var_os("GRADSCOPE_PLOTS_OUT") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (name, svg) in &pictures {
            let path = dir.join(format!("{name}.svg"));
            std::fs::write(&path, svg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
