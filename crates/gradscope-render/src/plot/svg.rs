//! The pieces every picture shares: escaping, the document's start, legend rows, footnotes
//! and the short names of settings.

use std::fmt::Write as _;

use gradscope_report::PointSummary;

use super::{LEFT, RIGHT, W};

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A legend label: the settings without the `model.` prefix and string quotes.
pub(super) fn label(settings: &[String], case: &str) -> String {
    let s: Vec<String> = settings
        .iter()
        .map(|k| k.trim_start_matches("model.").replace('"', ""))
        .collect();
    format!("{} [{case}]", s.join(" "))
}

/// A setting for a legend: no `model.`/`train.` prefix, no quotes, and an inline table
/// `{ kind = "norm", max = 1.0 }` written `norm(max=1.0)`.
pub(super) fn compact(setting: &str) -> String {
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

/// The start of a picture: the document, a white ground and the title.
pub(super) fn open_svg(o: &mut String, height: f64, title: &str) {
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

/// A grey note at the foot of a picture.
pub(super) fn footnote(o: &mut String, y: f64, text: &str) {
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="{y:.1}" font-size="11" fill="#555">{}</text>"##,
        esc(text)
    );
}

/// A legend row right of the plot: a short line in `color` and its label.
pub(super) fn legend_row(o: &mut String, y: f64, color: &str, label: &str) {
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

/// The footnote on the points whose theory does not apply: how many, and why (the first
/// caveat of the first of them).
pub(super) fn not_applying_note(points: &[&PointSummary], of: usize) -> String {
    let why = points
        .iter()
        .find_map(|p| p.theory.as_ref()?.caveats.first().cloned())
        .unwrap_or_default();
    let why: String = if why.chars().count() > 90 {
        format!("{}…", why.chars().take(89).collect::<String>())
    } else {
        why
    };
    let lead = format!(
        "theory does not apply at {} of {of} points, not drawn there",
        points.len()
    );
    if why.is_empty() {
        format!("{lead}.")
    } else {
        format!("{lead}: {why}")
    }
}
