//! A training sweep's picture: one bar per grid point, split by where its trials' first
//! non-finite value was born.

use std::fmt::Write as _;

use gradscope_report::{PointSummary, SweepSummary};

use super::TOP;
use super::svg::{compact, esc, open_svg};

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
