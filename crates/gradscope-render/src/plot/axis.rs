//! The one plotting area of every line picture: `n` evenly spaced x positions (layers, steps,
//! depths) across `x0..x1`, and a log10 y axis over whole decades `lo..hi` down `y0..y1`;
//! with the series drawn in it (lines broken where a value cannot be drawn, dashed theory,
//! f32's limit) and its decade grid.

use std::fmt::Write as _;

use super::svg::esc;
use super::{LEFT, RIGHT, W};

/// A plotting area with a log y axis: its corners, the count of x positions and the log10
/// range of y.
#[derive(Clone, Copy)]
pub(super) struct LogAxes {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
    pub n: usize,
    pub lo: f64,
    pub hi: f64,
}

/// The whole decades `(floor(min), ceil(max))` around log10 values; infinite where there are
/// none.
fn decades(logs: impl Iterator<Item = f64>) -> (f64, f64) {
    let logs: Vec<f64> = logs.collect();
    let lo = logs.iter().copied().fold(f64::INFINITY, f64::min).floor();
    let hi = logs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil();
    (lo, hi)
}

impl LogAxes {
    /// A sweep frame at `area` (x0, x1, y0, y1) over `n` layers: decades covering the
    /// drawable `values`, or 1e-1..1e1 where they do not span one.
    pub fn frame(
        (x0, x1, y0, y1): (f64, f64, f64, f64),
        n: usize,
        values: impl Iterator<Item = f64>,
    ) -> Self {
        let (lo, hi) = decades(values.filter(|v| v.is_finite() && *v > 0.0).map(f64::log10));
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        };
        Self {
            x0,
            x1,
            y0,
            y1,
            n: n.max(2),
            lo,
            hi,
        }
    }

    /// A panel across the picture's plotting width, `height` tall from `top`, over `steps`
    /// x positions: decades covering the drawable `values`, one more either side where they
    /// all lie on one decade.
    pub fn panel(top: f64, height: f64, steps: usize, values: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = decades(values.filter(|v| v.is_finite() && *v > 0.0).map(f64::log10));
        let (lo, hi) = match (lo.is_finite() && hi.is_finite(), hi > lo) {
            (true, true) => (lo, hi),
            (true, false) => (lo - 1.0, hi + 1.0),
            _ => (-1.0, 1.0),
        };
        Self {
            x0: LEFT,
            x1: W - RIGHT,
            y0: top,
            y1: top + height,
            n: steps.max(2),
            lo,
            hi,
        }
    }

    /// The same axes over another area.
    pub fn at(self, (x0, x1, y0, y1): (f64, f64, f64, f64)) -> Self {
        Self {
            x0,
            x1,
            y0,
            y1,
            ..self
        }
    }

    /// The x of position `i` of `n`.
    pub fn x(&self, i: usize) -> f64 {
        self.x0 + (self.x1 - self.x0) * i as f64 / (self.n - 1) as f64
    }

    /// The y of a decade exponent `e`.
    pub fn y_log(&self, e: f64) -> f64 {
        self.y0 + (self.y1 - self.y0) * (self.hi - e) / (self.hi - self.lo)
    }

    /// The y of a value; `None` for zero, negative or non-finite values (not drawable).
    pub fn y(&self, v: f64) -> Option<f64> {
        (v.is_finite() && v > 0.0).then(|| self.y_log(v.log10()))
    }

    /// The whole decades at which grid lines go, every `ceil(span / lines)` decades from the
    /// bottom, each with its y.
    pub fn decade_lines(&self, lines: f64) -> Vec<(i64, f64)> {
        let every = ((self.hi - self.lo) / lines).ceil().max(1.0);
        let mut out = Vec::new();
        let mut e = self.lo;
        while e <= self.hi + 1e-9 {
            out.push((e as i64, self.y_log(e)));
            e += every;
        }
        out
    }

    /// Grid lines across the area and `1eN` labels left of it at about `lines` whole decades.
    pub fn decade_grid(&self, o: &mut String, lines: f64) {
        let (x0, x1) = (self.x0, self.x1);
        for (e, py) in self.decade_lines(lines) {
            let _ = writeln!(
                o,
                r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/>"##
            );
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{e}</text>"#,
                x0 - 6.0,
                py + 4.0,
            );
        }
    }

    /// The left and bottom axis lines.
    pub fn corner(&self, o: &mut String) {
        let (x0, x1, y0, y1) = (self.x0, self.x1, self.y0, self.y1);
        let _ = writeln!(
            o,
            r##"<path d="M{x0},{y0} V{y1} H{x1}" stroke="black" fill="none"/>"##
        );
    }

    /// Axes, decade grid, ticks at every `nice_step` position and the y label.
    pub fn axes(&self, o: &mut String, ylabel: &str) {
        self.corner(o);
        self.decade_grid(o, 6.0);
        let tick = nice_step(self.n);
        for s in (0..self.n).step_by(tick) {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{s}</text>"#,
                self.x(s),
                self.y1 + 16.0
            );
        }
        self.y_label(o, ylabel);
    }

    /// The y axis's label, turned upright beside the panel.
    pub fn y_label(&self, o: &mut String, text: &str) {
        let mid = self.y0 + (self.y1 - self.y0) / 2.0;
        let _ = writeln!(
            o,
            r#"<text x="18" y="{mid:.1}" transform="rotate(-90 18 {mid:.1})" text-anchor="middle">{}</text>"#,
            esc(text)
        );
    }

    /// The x axis's label, `dy` below the panel.
    pub fn x_label(&self, o: &mut String, text: &str, dy: f64) {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (self.x0 + self.x1) / 2.0,
            self.y1 + dy,
            esc(text)
        );
    }

    /// A polyline through the drawable points of `values` (one per position), broken where a
    /// value cannot be drawn; a lone point a dot; a non-finite value a cross at the top edge.
    pub fn line(&self, o: &mut String, values: &[f64], color: &str) {
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .map(|(s, v)| (self.x(s), *v))
            .collect();
        self.line_at(o, &points, color);
    }

    /// [`LogAxes::line`] through (x, value) points placed by the caller.
    pub fn line_at(&self, o: &mut String, points: &[(f64, f64)], color: &str) {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, v) in points {
            match self.y(v) {
                Some(y) => runs.last_mut().into_iter().for_each(|r| r.push((x, y))),
                None => runs.push(Vec::new()),
            }
            if !v.is_finite() {
                // A non-finite value: a cross at the top edge, in the series' colour.
                let y = self.y0;
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

    /// Where the panel reaches the largest finite value of `precision`, the run's, a red
    /// dotted line there: values past it overflow to infinity.
    pub fn overflow_limit(&self, o: &mut String, precision: gradscope_report::Precision) {
        let max = precision.max_finite();
        let Some(y) = self.y(max) else {
            return;
        };
        if !(self.y0..=self.y1).contains(&y) {
            return;
        }
        let _ = writeln!(
            o,
            r##"<line x1="{}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d62728" stroke-width="1" stroke-dasharray="2,3"/>"##,
            self.x0, self.x1
        );
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#d62728" text-anchor="end">{precision} overflows above {}</text>"##,
            self.x1 - 4.0,
            y - 4.0,
            if max < 1e6 {
                format!("{max}")
            } else {
                gradscope_report::floats::fmt_sci64(max, 1).replace("e+", "e")
            }
        );
    }

    /// A dashed polyline through the values (one per position) that lie inside the area.
    pub fn dashed(&self, o: &mut String, values: &[f64], color: &str) {
        let inside = self.y0..=self.y1;
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
pub(super) fn nice_step(steps: usize) -> usize {
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

/// The values of an axis as numbers, in order, if every one of them parses as a finite f64;
/// `None` for a categorical axis (an initialiser, an inline table).
pub(super) fn numbers<S: AsRef<str>>(values: &[S]) -> Option<Vec<f64>> {
    values
        .iter()
        .map(|v| {
            v.as_ref()
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
        })
        .collect()
}

/// A heatmap's axis: one cell per value along `start..start + len`. A numeric axis (at least
/// two distinct values, ascending) is spaced by value: the value v lies at
/// `start + len·(v − e₀)/(e_k − e₀)`, each cell reaching halfway to its neighbours' values and
/// the outer cells as far out again, e₀ = v₀ − (v₁ − v₀)/2 and e_k = v_last + (v_last −
/// v_prev)/2. A categorical axis has equal cells, in the sweep's order.
pub(super) struct CellAxis {
    start: f64,
    len: f64,
    k: usize,
    values: Option<Vec<f64>>,
}

impl CellAxis {
    /// The axis of `labels` (the values as written), numeric where all parse and ascend.
    pub fn new<S: AsRef<str>>(start: f64, len: f64, labels: &[S]) -> Self {
        let values = numbers(labels).filter(|v| v.len() >= 2 && v.windows(2).all(|w| w[0] < w[1]));
        Self {
            start,
            len,
            k: labels.len().max(1),
            values,
        }
    }

    /// Whether the axis is spaced by value.
    pub fn numeric(&self) -> bool {
        self.values.is_some()
    }

    /// The value of cell `j` on a numeric axis.
    pub fn value(&self, j: usize) -> Option<f64> {
        self.values.as_ref().and_then(|v| v.get(j).copied())
    }

    /// The edges of the axis in value, e₀ and e_k.
    fn span(v: &[f64]) -> (f64, f64) {
        let n = v.len();
        (
            v[0] - (v[1] - v[0]) / 2.0,
            v[n - 1] + (v[n - 1] - v[n - 2]) / 2.0,
        )
    }

    /// The position of value `x` on a numeric axis (`None` on a categorical one).
    pub fn at(&self, x: f64) -> Option<f64> {
        let v = self.values.as_ref()?;
        let (e0, ek) = Self::span(v);
        Some(self.start + self.len * (x - e0) / (ek - e0))
    }

    /// Where cell `j` begins and ends.
    pub fn edges(&self, j: usize) -> (f64, f64) {
        match &self.values {
            Some(v) => {
                let lo = if j == 0 {
                    Self::span(v).0
                } else {
                    (v[j - 1] + v[j]) / 2.0
                };
                let hi = if j + 1 == v.len() {
                    Self::span(v).1
                } else {
                    (v[j] + v[j + 1]) / 2.0
                };
                (self.at(lo).unwrap_or(0.0), self.at(hi).unwrap_or(0.0))
            }
            None => {
                let w = self.len / self.k as f64;
                (self.start + w * j as f64, self.start + w * (j + 1) as f64)
            }
        }
    }

    /// The middle of cell `j`: its value's position on a numeric axis.
    pub fn center(&self, j: usize) -> f64 {
        match self.value(j).and_then(|v| self.at(v)) {
            Some(x) => x,
            None => {
                let (a, b) = self.edges(j);
                (a + b) / 2.0
            }
        }
    }

    /// The far end of the axis.
    pub fn end(&self) -> f64 {
        self.start + self.len
    }
}
