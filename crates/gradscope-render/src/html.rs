//! `report.html`: a record as one self-contained page (inline CSS, inline SVG, a few lines of
//! script that sort tables; nothing fetched). Built from what the record's own files hold
//! (`report.json` or `summary.json`, the pictures, `config.toml`: [`RecordPage`]), so
//! `gradscope report DIR` rebuilds it for any record, merged sweeps included.
//!
//! Opened with `#selftest`, the page checks itself and writes what it found into `<body>`'s
//! data attributes (the pictures' sizes, each table's row count, whether sorting a column
//! ordered it): the browser tests read them from the DOM a headless browser dumps.

use std::fmt::Write as _;

use gradscope_report::{
    CaseReport, CompareReport, ExperimentReport, PointSummary, Report, StepRecord, SweepSummary,
    TrainReport, TrainingSpread,
};

use crate::train::{growth_caption, growth_rows, step_headings, step_rows};

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3;cursor:pointer}\
td.t,th.t{text-align:left}.verdict{font-weight:bold;padding:.5em 1em;border-radius:4px}\
.ok{background:#e6f4ea}.bad{background:#fde7e9}tr.bad td{background:#fde7e9}.note{font-size:13px;color:#555}pre{background:#f6f6f6;padding:1em;overflow:auto}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}";

const SCRIPT: &str = r#"
function sortTable(th){
  const table=th.closest('table'),body=table.tBodies[0],i=[...th.parentNode.children].indexOf(th);
  const dir=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=dir;
  const key=r=>{const t=r.children[i].textContent.trim(),n=parseFloat(t);return isNaN(n)?t:n;};
  const rows=[...body.rows].sort((a,b)=>{const x=key(a),y=key(b);
    const c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
    return dir==='asc'?c:-c;});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
if(location.hash==='#selftest'){
  const b=document.body.dataset;
  b.svgs=[...document.querySelectorAll('figure svg')].map(s=>{const r=s.getBoundingClientRect();return Math.round(r.width)+'x'+Math.round(r.height);}).join(',');
  b.rows=[...document.querySelectorAll('table.sortable')].map(t=>t.tBodies[0].rows.length).join(',');
  const t=document.querySelector('table.sortable');
  if(t){const ths=[...t.tHead.rows[0].children],k=Math.max(0,ths.findIndex(h=>!h.classList.contains('t')));
    sortTable(ths[k]);
    const v=[...t.tBodies[0].rows].map(r=>parseFloat(r.children[k].textContent));
    b.sort=v.every((x,k)=>k===0||isNaN(x)||isNaN(v[k-1])||v[k-1]<=x)?'ok':'unsorted';}
  b.selftest='done';
}
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table cell: text, a whole number, or a float, each shown as the record's JSON would read
/// (floats: 4 decimals, scientific notation past 1e4 or below 1e-3; non-finite ones by name).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// Text, aligned left.
    Text(String),
    /// A count or an index.
    Int(u64),
    /// A measured or predicted value.
    Num(f64),
    /// A value over the finite values only of a tensor that holds non-finite ones: shown
    /// with the mark `†` (the page's note says what it means).
    FiniteOnly(f64),
    /// A number already written for people (the training tables' cells), aligned right.
    Shown(String),
    /// Nothing to show (no theory, no origin).
    Missing,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Int(n) => n.to_string(),
            Self::Num(x) if !x.is_finite() => gradscope_report::floats::fmt_sci(*x as f32, 0),
            Self::Num(x) if x.abs() >= 1e4 || (*x != 0.0 && x.abs() < 1e-3) => format!("{x:.4e}"),
            Self::Num(x) => format!("{x:.4}"),
            Self::FiniteOnly(x) => format!("{}{}", Self::Num(*x).text(), crate::text::FINITE_ONLY),
            Self::Shown(s) => s.clone(),
            Self::Missing => "–".into(),
        }
    }

    /// Whether the cell aligns right: a number, NaN and inf included (a numeric column stays
    /// one when its first value is not finite).
    fn is_number(&self) -> bool {
        match self {
            Self::Int(_) | Self::Num(_) | Self::FiniteOnly(_) | Self::Shown(_) => true,
            Self::Text(_) | Self::Missing => false,
        }
    }
}

fn num(x: impl Into<f64>) -> Cell {
    Cell::Num(x.into())
}

fn int(n: usize) -> Cell {
    Cell::Int(n as u64)
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

/// `x`, marked as over the finite values only when `partial`.
fn partial(x: impl Into<f64>, partial: bool) -> Cell {
    if partial {
        Cell::FiniteOnly(x.into())
    } else {
        num(x)
    }
}

/// One table row; `bad` rows (a tensor holding non-finite values) are highlighted.
struct Row {
    cells: Vec<Cell>,
    bad: bool,
}

impl From<Vec<Cell>> for Row {
    fn from(cells: Vec<Cell>) -> Self {
        Self { cells, bad: false }
    }
}

/// A sortable table with the given headings.
fn table(s: &mut String, headings: &[&str], rows: &[Row]) {
    // Text columns align left, numbers right: by the first row's value.
    let left: Vec<bool> = (0..headings.len())
        .map(|k| {
            rows.first()
                .and_then(|r| r.cells.get(k))
                .is_some_and(|c| !c.is_number())
        })
        .collect();
    let class = |k: usize| if left[k] { " class=\"t\"" } else { "" };
    s.push_str("<table class=\"sortable\"><thead><tr>");
    for (k, heading) in headings.iter().enumerate() {
        let _ = write!(s, "<th{}>{}</th>", class(k), esc(heading));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str(if row.bad {
            "<tr class=\"bad\">"
        } else {
            "<tr>"
        });
        for (k, c) in row.cells.iter().enumerate() {
            let _ = write!(s, "<td{}>{}</td>", class(k), esc(&c.text()));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
}

/// A record as the page shows it: its report, its resolved config, the pictures its directory
/// holds (file name, SVG text), and the directory as the page names it.
#[derive(Debug, Clone, Copy)]
pub struct RecordPage<'a> {
    /// `report.json` or `summary.json`.
    pub report: &'a Report,
    /// `config.toml` (empty when the record has none).
    pub config: &'a str,
    /// `sweep.svg`, `sweep-ratio.svg`, `train.svg`, in that order, where present.
    pub pictures: &'a [(String, String)],
    /// A training run's `steps.jsonl` (empty for other records).
    pub steps: &'a [StepRecord],
    /// The record's directory, absolute.
    pub dir: &'a str,
    /// The record's files (name relative to `dir`, size in bytes), listed with links.
    pub files: &'a [(String, u64)],
}

/// The picture files a page shows, in the order it shows them.
pub const PICTURES: [&str; 3] = ["sweep.svg", "sweep-ratio.svg", "train.svg"];

/// The page of a record.
pub fn page(p: &RecordPage) -> String {
    let mut pictures = String::new();
    let (title, body) = match p.report {
        Report::Sweep(v) => (v.experiment.as_str(), sweep_body(v)),
        Report::Train(v) => (v.experiment.as_str(), train_body(v, p.steps)),
        Report::Compare(v) => (v.experiment.as_str(), compare_body(v)),
        Report::Run(v) => {
            // A plain run's picture is drawn from its report, so that `gradscope report`
            // gives it to records written before there was one.
            let svg = crate::plot::run_svg(
                &v.experiment,
                &crate::plot::RunCase::from_report(v),
                v.precision,
            );
            let _ = writeln!(
                pictures,
                "<figure>{svg}<figcaption>activations and ‖δ_l‖ by layer</figcaption></figure>"
            );
            (v.experiment.as_str(), run_body(v))
        }
    };
    for (name, svg) in p.pictures {
        let svg = svg.trim_start_matches("<?xml version=\"1.0\"?>");
        let _ = writeln!(
            pictures,
            "<figure>{svg}<figcaption>{name}</figcaption></figure>"
        );
    }
    let mut files = String::new();
    if !p.files.is_empty() {
        files.push_str("<h2>Files</h2>\n<ul>");
        for (name, size) in p.files {
            let _ = write!(
                files,
                "<li><a href=\"{n}\">{n}</a> ({})</li>",
                bytes(*size),
                n = esc(name)
            );
        }
        files.push_str("</ul>\n");
    }
    let mut commands = format!(
        "Run it again: <code>gradscope run {d}/config.toml</code><br>Rebuild this page: \
         <code>gradscope report {d}</code>",
        d = esc(p.dir)
    );
    if p.files.iter().any(|(n, _)| n == "weights.safetensors") {
        let _ = write!(
            commands,
            "<br>Probe the trained weights: <code>weights = \"{}/weights.safetensors\"</code> \
             under <code>[model]</code> of a config without <code>[train]</code>",
            esc(p.dir)
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\n<body>\n<h1>{t}</h1>\n{body}<h2>Pictures</h2>\n{pictures}{files}<h2>Resolved config</h2>\n<pre>{c}</pre>\n<h2>Commands</h2>\n<p>{commands}</p>\n<script>{SCRIPT}</script>\n</body></html>\n",
        t = esc(title),
        c = esc(p.config),
    )
}

/// `812 B`, `3.4 KiB`, `12.0 MiB`.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

fn verdict(s: &mut String, ok: bool, text: &str) {
    let class = if ok { "ok" } else { "bad" };
    let _ = writeln!(s, "<p class=\"verdict {class}\">{}</p>", esc(text));
}

/// A plain run: the verdict, and per case the ratio beside theory, the parameters and layers.
fn run_body(v: &ExperimentReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<p>{}</p>", esc(&v.description));
    let _ = writeln!(
        s,
        "<p>backend {}, precision {}, seed {}, loss {}</p>",
        esc(&v.backend),
        esc(&crate::range::precision_label(v.precision)),
        v.seed,
        esc(&v.loss)
    );
    // The terminal's verdict, word for word.
    let said = crate::text::verdict(v);
    let text = said.trim_start_matches("verdict: ");
    let healthy = v
        .cases
        .iter()
        .all(|c| c.dead_layers.is_empty() && c.zero_gradients.is_empty());
    verdict(&mut s, v.all_finite && healthy, text);
    for case in &v.cases {
        run_case(&mut s, case, v.precision);
    }
    s
}

/// One input case of a plain run: its ratio beside theory, its parameter and layer tables.
fn run_case(s: &mut String, case: &CaseReport, precision: gradscope_report::Precision) {
    let _ = writeln!(s, "<h2>Input {}</h2>", esc(&case.input.name));
    let theory = case.theory.as_ref();
    let _ = writeln!(
        s,
        "<p>‖δ_first‖/‖δ_last‖ measured {} ({}); mean-field theory {} ({})</p>",
        num(case.delta_ratio).text(),
        case.flow.name(),
        theory
            .map_or(Cell::Missing, |t| Cell::Num(t.delta_ratio))
            .text(),
        theory
            .map_or(Cell::Missing, |t| text(
                t.phase.map_or("no phase", |p| p.name())
            ))
            .text()
    );
    // Beside the number: whether it describes this run, and its limits, one sentence each.
    if let Some(t) = theory.filter(|t| !t.caveats.is_empty()) {
        let head = if t.applies {
            "mean-field theory's caveats here:"
        } else {
            "mean-field theory does not apply here:"
        };
        let _ = write!(s, "<div class=\"note\">{head}<ul>");
        for why in &t.caveats {
            let _ = write!(s, "<li>{}</li>", esc(why));
        }
        s.push_str("</ul></div>\n");
    }
    let params: Vec<Row> = case
        .params
        .iter()
        .map(|p| {
            let bad = p.nonfinite > 0;
            Row {
                cells: vec![
                    text(&p.name),
                    if bad {
                        Cell::Shown("non-finite".into())
                    } else {
                        num(p.l2)
                    },
                    num(p.max),
                    num(p.min),
                    partial(p.max_abs, bad),
                    num(p.zero_fraction),
                    int(p.nonfinite),
                ],
                bad,
            }
        })
        .collect();
    table(
        s,
        &[
            "parameter",
            "L2",
            "max",
            "min",
            "max |g|",
            "zero",
            "non-finite",
        ],
        &params,
    );
    let layers: Vec<Row> = case
        .layers
        .iter()
        .map(|l| {
            let (bad, act) = (l.delta_nonfinite > 0, l.activation_nonfinite > 0);
            Row {
                cells: vec![
                    int(l.layer),
                    int(l.width),
                    if bad {
                        Cell::Shown("non-finite".into())
                    } else {
                        num(l.delta_l2)
                    },
                    partial(l.delta_max_abs, bad),
                    int(l.delta_nonfinite),
                    num(l.dead_fraction),
                    partial(l.activation_mean, act),
                    partial(l.activation_std, act),
                ],
                bad: bad || act,
            }
        })
        .collect();
    table(
        s,
        &[
            "layer",
            "width",
            "‖δ‖",
            "max |δ|",
            "non-finite δ",
            "dead",
            "activation mean",
            "activation std",
        ],
        &layers,
    );
    if crate::text::case_partial(case) {
        let _ = writeln!(
            s,
            "<p class=\"note\">{}</p>",
            esc(crate::text::FINITE_ONLY_NOTE)
        );
    }
    // The same range table as the terminal's and the markdown's, cell for cell.
    if let Some(rows) = crate::range::rows(case, precision) {
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|r| {
                let bad = crate::range::overflows(&r);
                let cells = r.into_iter().map(Cell::Shown).collect();
                Row { cells, bad }
            })
            .collect();
        let _ = writeln!(s, "<p>Range in {}:</p>", precision);
        table(s, &crate::range::HEADER, &rows);
        if let Some(m) = crate::range::measured_line(case, precision) {
            let _ = writeln!(s, "<p>{}</p>", esc(&m));
        }
        if let Some(t) = crate::range::theory_line(case, precision) {
            let _ = writeln!(s, "<p>{}</p>", esc(&t));
        }
        let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(crate::range::NOTE));
    }
}

/// A sweep: how many trials, and per point the ratio's spread beside theory (or, training, how
/// the runs ended).
fn sweep_body(v: &SweepSummary) -> String {
    let mut s = String::new();
    let bad: usize = v.points.iter().map(|p| p.nonfinite_trials).sum();
    let _ = writeln!(
        s,
        "<p>{} trial records, {} trials per grid point.</p>",
        v.trials_done, v.trials_per_point
    );
    if v.partial {
        verdict(&mut s, false, &crate::sweep::trial_counts(v));
    }
    verdict(
        &mut s,
        bad == 0,
        &format!("{bad} trials with a non-finite value"),
    );
    for line in crate::sweep::health_notes(v) {
        verdict(&mut s, false, &line);
    }
    s.push_str("<h2>Grid points</h2>\n");
    let settings = |p: &PointSummary| text(&p.settings.join(", "));
    if v.points.iter().any(|p| p.training.is_some()) {
        let rows: Vec<Row> = v
            .points
            .iter()
            .map(|p| {
                let t = p.training.as_ref();
                vec![
                    int(p.point),
                    settings(p),
                    int(p.trials),
                    t.map_or(Cell::Missing, |t| Cell::Num(t.diverged_fraction)),
                    t.map_or(Cell::Missing, |t| num(t.first_nonfinite_step.median)),
                    t.map_or(Cell::Missing, |t| text(&origins(t))),
                    t.map_or(Cell::Missing, |t| num(t.final_loss.median)),
                ]
                .into()
            })
            .collect();
        table(
            &mut s,
            &[
                "point",
                "settings",
                "trials",
                "diverged",
                "first non-finite step",
                "origins",
                "final loss",
            ],
            &rows,
        );
    } else {
        let rows: Vec<Row> = v
            .points
            .iter()
            .map(|p| {
                vec![
                    int(p.point),
                    settings(p),
                    text(&p.case),
                    int(p.trials),
                    int(p.nonfinite_trials),
                    num(p.ratio.median),
                    num(p.ratio.q1),
                    num(p.ratio.q3),
                    p.theory
                        .as_ref()
                        .map_or(Cell::Missing, |t| Cell::Num(t.delta_ratio)),
                    text(&crate::sweep::holds_cell(p)),
                ]
                .into()
            })
            .collect();
        table(
            &mut s,
            &[
                "point",
                "settings",
                "case",
                "trials",
                "non-finite",
                "ratio median",
                "q1",
                "q3",
                "theory",
                "theory holds",
            ],
            &rows,
        );
        let reasons = crate::sweep::not_applying(v);
        if !reasons.is_empty() {
            s.push_str("<p>mean-field theory does not apply at some points:</p><ul>");
            for (reason, points) in reasons {
                let _ = write!(
                    s,
                    "<li>points {}: {}</li>",
                    esc(&crate::sweep::ranges(&points)),
                    esc(&reason)
                );
            }
            s.push_str("</ul>\n");
        }
    }
    s
}

/// A training sweep's origins as the page lists them: `forward 3, loss 12`, as the table
/// and markdown say them (`TrainingSpread::origins_text`), but empty for none.
fn origins(t: &TrainingSpread) -> String {
    if t.origins.is_empty() {
        String::new()
    } else {
        t.origins_text()
    }
}

/// A training run: the verdict, the summary, the per-step table and, after a failure, how the
/// failing layer grew (the text report's tables).
fn train_body(v: &TrainReport, steps: &[StepRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<p>{}</p>", esc(&v.description));
    let healthy = v.dead_layers.is_empty() && v.zero_gradients.is_empty();
    verdict(&mut s, v.finite && healthy, &crate::train::verdict(v, "→"));
    let _ = writeln!(s, "<p>precision {}</p>", esc(&crate::train::precision(v)));
    if let Some(line) = crate::train::loss_scale_line(v) {
        let _ = writeln!(s, "<p>loss scale {}</p>", esc(&line.replace("->", "→")));
    }
    let row = vec![
        int(v.steps_run),
        self::text(&v.optimizer),
        Cell::Num(v.learning_rate),
        int(v.batch),
        self::text(&v.clip),
        num(v.first_loss),
        num(v.last_loss),
    ];
    table(
        &mut s,
        &[
            "steps run",
            "optimiser",
            "learning rate",
            "batch",
            "clip",
            "first loss",
            "last loss",
        ],
        &[row.into()],
    );
    s.push_str("<h2>Steps</h2>\n");
    let shown = |row: &[String]| -> Row {
        row.iter()
            .map(|c| Cell::Shown(c.clone()))
            .collect::<Vec<_>>()
            .into()
    };
    let rows: Vec<Row> = step_rows(steps).iter().map(|r| shown(r)).collect();
    table(&mut s, &step_headings(steps), &rows);
    if let Some(g) = &v.growth {
        let _ = writeln!(s, "<h2>{}</h2>", esc(&growth_caption(g)));
        let rows: Vec<Row> = growth_rows(g).iter().map(|r| shown(r)).collect();
        table(&mut s, &["step", "max |z|", "‖δ‖"], &rows);
    }
    s
}

/// A backend comparison: its verdict and the terminal table's text.
fn compare_body(v: &CompareReport) -> String {
    let mut s = String::new();
    verdict(&mut s, v.agree, &crate::compare::verdict(v));
    let _ = writeln!(s, "<pre>{}</pre>", esc(&crate::compare::table(v)));
    s
}
