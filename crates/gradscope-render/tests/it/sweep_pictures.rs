//! Sweep pictures that tell the truth (issue #23): theory's finite-width band beside the
//! measured one only where theory applies and gives it; χ* = 1 never drawn across a
//! categorical axis; numeric axes spaced by value. The SVGs are read back as text.

use gradscope_render::plot;
use gradscope_report::SweepSummary;

use crate::pictures::{gain_init, init_depth, notebook_sweep, point, sweep, width_depth};

/// The value of attribute `name` in one SVG element's line.
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

fn num(line: &str, name: &str) -> f64 {
    attr(line, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// The segments of every χ* = 1 mark: each `<line>`, and each step of each `<polyline>`.
fn chi_star_segments(svg: &str) -> Vec<((f64, f64), (f64, f64))> {
    let mut out = Vec::new();
    for line in svg.lines().filter(|l| l.contains(r#"class="chi-star""#)) {
        if line.starts_with("<line") {
            out.push((
                (num(line, "x1"), num(line, "y1")),
                (num(line, "x2"), num(line, "y2")),
            ));
        } else {
            let pts: Vec<(f64, f64)> = attr(line, "points")
                .unwrap_or("")
                .split(' ')
                .filter_map(|p| p.split_once(','))
                .map(|(x, y)| (x.parse().unwrap_or(f64::NAN), y.parse().unwrap_or(f64::NAN)))
                .collect();
            out.extend(pts.windows(2).map(|w| (w[0], w[1])));
        }
    }
    out
}

/// The x of the label `text` among the phase diagram's value labels (font-size 11, centred).
fn label_x(svg: &str, text: &str) -> f64 {
    let line = svg
        .lines()
        .find(|l| l.contains(r#"text-anchor="middle""#) && l.ends_with(&format!(">{text}</text>")))
        .unwrap_or_else(|| panic!("no label {text}"));
    num(line, "x")
}

#[test]
fn the_predicted_band_is_drawn_iff_theory_applies_and_gives_quartiles() {
    // width-depth: three widths, each with Hanin & Nica's quartiles at all three depths.
    let s = width_depth();
    let svg = plot::ratio_svg(&s).unwrap_or_default();
    assert_eq!(svg.matches(r#"<polygon class="theory-iqr""#).count(), 3);
    assert!(svg.contains("theory IQR (finite width)"));
    assert!(!svg.contains("does not apply"));

    let mut unknown = s.clone();
    for p in &mut unknown.points {
        p.theory.iter_mut().for_each(|t| t.ratio_quartiles = None);
    }
    let svg = plot::ratio_svg(&unknown).unwrap_or_default();
    assert!(!svg.contains("theory-iqr") && !svg.contains("theory IQR"));
    assert!(
        svg.contains("mean-field theory (infinite width)"),
        "the circles stay"
    );

    let mut not_applying = s.clone();
    for p in &mut not_applying.points {
        p.theory.iter_mut().for_each(|t| t.applies = false);
    }
    let svg = plot::ratio_svg(&not_applying).unwrap_or_default();
    assert!(!svg.contains("theory-iqr") && !svg.contains("theory IQR"));
    assert!(!svg.contains("mean-field theory (infinite width)"));
    // No theory's circles (and so no key for them): the measured medians are lines.
    assert_eq!(svg.matches("<circle").count(), 0);
    assert!(svg.contains("theory does not apply at 9 of 9 points, not drawn there"));

    // Quartiles at one depth only (the last point of each width): a bar with caps, no band.
    let mut lone = s.clone();
    for p in lone
        .points
        .iter_mut()
        .filter(|p| p.settings[0] != "model.depth=64")
    {
        p.theory.iter_mut().for_each(|t| t.ratio_quartiles = None);
    }
    let svg = plot::ratio_svg(&lone).unwrap_or_default();
    assert_eq!(svg.matches(r#"<polygon class="theory-iqr""#).count(), 0);
    assert_eq!(svg.matches(r#"<path class="theory-iqr""#).count(), 3);
}

/// Every χ* = 1 segment of `svg` begins and ends in the same cell of a categorical axis whose
/// cells are `k` equal parts of `start..start + len` along coordinate `axis` (0: x, 1: y).
fn assert_within_categories(svg: &str, axis: usize, start: f64, len: f64, k: usize) -> usize {
    let cell = |v: f64| ((v - start) / (len / k as f64)).floor() as i64;
    let segments = chi_star_segments(svg);
    for (a, b) in &segments {
        let (u, v) = if axis == 0 { (a.0, b.0) } else { (a.1, b.1) };
        assert_eq!(cell(u), cell(v), "{a:?} to {b:?} crosses categories");
        assert!((0..k as i64).contains(&cell(u)), "{a:?} outside the grid");
    }
    segments.len()
}

#[test]
fn chi_star_is_never_drawn_across_a_categorical_axis() {
    // The tanh phase diagram (the notebook's table): gain numeric along x, bias_init (inline
    // tables) categorical down y, 5 rows of 340/5 px from y = 70. Before, one dashed line
    // joined the rows' crossings.
    let tanh = notebook_sweep("phase-diagram-tanh", |_| 32);
    let svg = plot::svg(&tanh);
    assert_eq!(
        assert_within_categories(&svg, 1, 70.0, 340.0, 5),
        5,
        "a tick per row"
    );
    assert!(svg.contains("bias_init (categorical)") && svg.contains("gain (spaced by value)"));

    // kernel_init categorical along x (3 columns of 560/3 px from x = 200), depth numeric:
    // χ* does not depend on depth, so it crosses 1 only between initialisers, and each cell
    // says its side instead: glorot's and he's 4 depths; lecun's theory does not apply.
    let svg = plot::svg(&init_depth());
    assert_eq!(assert_within_categories(&svg, 0, 200.0, 560.0, 3), 0);
    assert_eq!(svg.matches(r#"class="chi-star-cell""#).count(), 8);
    assert_eq!(svg.matches(">χ*&lt;1<").count(), 4);
    assert_eq!(svg.matches(r#"class="theory-na""#).count(), 4);
    assert!(svg.contains("theory does not apply at 4 of 12 points"));

    // Gain numeric down y, kernel_init categorical along x: χ* = gain²/2 crosses 1 at gain
    // √2 in each column (between gain 1 and 2), a horizontal tick within each column.
    let svg = plot::svg(&gain_init());
    assert_eq!(
        assert_within_categories(&svg, 0, 200.0, 560.0, 3),
        3,
        "a tick per column"
    );
    for (a, b) in chi_star_segments(&svg) {
        assert_eq!(a.1, b.1, "horizontal");
    }
}

/// The phase diagram of gains [0.5, 0.75, 1.0, 2.5, 3.0] along x and three categorical bias
/// initialisers down y.
fn uneven_gains() -> SweepSummary {
    let mut points = Vec::new();
    for bias in ["a", "b", "c"] {
        for gain in [0.5f64, 0.75, 1.0, 2.5, 3.0] {
            let settings = [
                format!("model.bias_init={bias}"),
                format!("model.gain={gain}"),
            ];
            points.push(point(&settings, gain, 0.1, None));
        }
    }
    sweep("uneven", points)
}

#[test]
fn numeric_axes_are_spaced_by_value() {
    // Phase diagram: the cells span 560 px from x = 200 and reach half a step beyond the
    // outer values, e₀ = 0.5 − 0.25/2 = 0.375 and e_k = 3.0 + 0.5/2 = 3.25, so value v is
    // centred at x = 200 + 560·(v − 0.375)/(3.25 − 0.375): proportional to v.
    let svg = plot::svg(&uneven_gains());
    let x = |v: f64| 200.0 + 560.0 * (v - 0.375) / (3.25 - 0.375);
    for (v, text) in [
        (0.5, "0.5"),
        (0.75, "0.75"),
        (1.0, "1"),
        (2.5, "2.5"),
        (3.0, "3"),
    ] {
        assert!((label_x(&svg, text) - x(v)).abs() < 0.06, "{text}");
    }
    // The slope between any two labels is the same: 560/2.875 px per unit of gain.
    let slope = (label_x(&svg, "3") - label_x(&svg, "0.5")) / 2.5;
    let slope_low = (label_x(&svg, "1") - label_x(&svg, "0.75")) / 0.25;
    assert!((slope - slope_low).abs() < 0.5, "{slope} {slope_low}");
    // The categorical axis keeps equal cells: three rows of 340/3 px.
    assert!(svg.contains("bias_init (categorical)"));

    // Ratio picture: depths 2..64 across the 530 px from x = 80, x = 80 + 530·(d − 2)/(64 − 2).
    let s = notebook_sweep("activation-init-depth", |settings| {
        settings
            .iter()
            .find_map(|k| k.strip_prefix("model.depth=")?.parse().ok())
            .unwrap_or(1)
    });
    let svg = plot::ratio_svg(&s).unwrap_or_default();
    for d in [2.0f64, 4.0, 8.0, 16.0, 32.0, 64.0] {
        let want = 80.0 + 530.0 * (d - 2.0) / 62.0;
        assert!(
            (label_x(&svg, &d.to_string()) - want).abs() < 0.06,
            "depth {d}"
        );
    }
    assert!(svg.contains("depth (hidden layers), spaced by value"));
}
