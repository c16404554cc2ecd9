//! `report.html`: a record as one self-contained page (inline CSS, inline SVG, a few lines of
//! script that sort tables; nothing fetched). Built from the record's own files (`report.json`
//! or `summary.json`, the pictures, `config.toml`), so `gradscope report DIR` rebuilds it for
//! any record, merged sweeps included.
//!
//! Opened with `#selftest`, the page checks itself and writes what it found into `<body>`'s
//! data attributes (the pictures' sizes, each table's row count, whether sorting a column
//! ordered it): the browser tests read them from the DOM a headless browser dumps.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3;cursor:pointer}\
td.t,th.t{text-align:left}.verdict{font-weight:bold;padding:.5em 1em;border-radius:4px}\
.ok{background:#e6f4ea}.bad{background:#fde7e9}pre{background:#f6f6f6;padding:1em;overflow:auto}\
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
  if(t){const th=t.tHead.rows[0].children[0];sortTable(th);
    const v=[...t.tBodies[0].rows].map(r=>parseFloat(r.children[0].textContent));
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

/// A JSON value as a table cell's text.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k} {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && (x.abs() >= 1e4 || (x != 0.0 && x.abs() < 1e-3)) => {
                format!("{x:.4e}")
            }
            Some(x) if n.is_f64() => format!("{x:.4}"),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
    }
}

/// A sortable table of `rows` (JSON objects) with the given columns (key, heading).
fn table(s: &mut String, rows: &[&Value], columns: &[(&str, &str)]) {
    // Text columns align left, numbers right: by the first row's value.
    let text = |key: &str| {
        rows.first()
            .is_some_and(|r| !key.split('.').fold(*r, |v, k| &v[k]).is_number())
    };
    s.push_str("<table class=\"sortable\"><thead><tr>");
    for (key, heading) in columns {
        let class = if text(key) { " class=\"t\"" } else { "" };
        let _ = write!(s, "<th{class}>{}</th>", esc(heading));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for (key, _) in columns {
            let v = key.split('.').fold(*row, |v, k| &v[k]);
            let class = if text(key) { " class=\"t\"" } else { "" };
            let _ = write!(s, "<td{class}>{}</td>", esc(&cell(v)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
}

/// The page of the record in `dir`, from its files.
pub fn for_record(dir: &Path) -> std::io::Result<String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let json = |name: &str| -> std::io::Result<Value> {
        serde_json::from_str(&read(name)?).map_err(std::io::Error::other)
    };
    let config = read("config.toml").unwrap_or_default();
    let mut pictures = String::new();
    let (data, body) = if dir.join("summary.json").exists() {
        let v = json("summary.json")?;
        let body = sweep_body(&v);
        (v, body)
    } else {
        let v = json("report.json")?;
        let body = match v["kind"].as_str() {
            Some("train") => train_body(&v),
            _ => {
                // A plain run's picture is drawn from report.json, so that `gradscope
                // report` gives it to records written before there was one.
                let title = v["experiment"].as_str().unwrap_or("");
                let svg = crate::plot::run_svg(title, &crate::plot::RunCase::from_report(&v));
                let _ = writeln!(
                    pictures,
                    "<figure>{svg}<figcaption>activations and ‖δ_l‖ by layer</figcaption></figure>"
                );
                run_body(&v)
            }
        };
        (v, body)
    };
    for name in ["sweep.svg", "sweep-ratio.svg", "train.svg"] {
        if let Ok(svg) = read(name) {
            let svg = svg.trim_start_matches("<?xml version=\"1.0\"?>");
            let _ = write!(
                pictures,
                "<figure>{svg}<figcaption>{name}</figcaption></figure>\n"
            );
        }
    }
    let title = data["experiment"].as_str().unwrap_or("gradscope record");
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let shown = absolute.display();
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\n<body>\n<h1>{t}</h1>\n{body}<h2>Pictures</h2>\n{pictures}<h2>Resolved config</h2>\n<pre>{c}</pre>\n<h2>Commands</h2>\n<p>Run it again: <code>gradscope run {d}/config.toml</code><br>Rebuild this page: <code>gradscope report {d}</code></p>\n<script>{SCRIPT}</script>\n</body></html>\n",
        t = esc(title),
        c = esc(&config),
        d = esc(&shown.to_string()),
    ))
}

fn verdict(s: &mut String, ok: bool, text: &str) {
    let class = if ok { "ok" } else { "bad" };
    let _ = writeln!(s, "<p class=\"verdict {class}\">{}</p>", esc(text));
}

/// A plain run: the verdict, and per case the ratio beside theory, the parameters and layers.
fn run_body(v: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<p>{}</p>", esc(v["description"].as_str().unwrap_or("")));
    let _ = writeln!(
        s,
        "<p>backend {}, seed {}, loss {}</p>",
        esc(&cell(&v["backend"])),
        cell(&v["seed"]),
        esc(&cell(&v["loss"]))
    );
    let ok = v["all_finite"].as_bool().unwrap_or(false);
    let text = match &v["origin"] {
        Value::Null => "every gradient value is finite".to_string(),
        o => format!(
            "NOT FINITE: first born in {} ({})",
            cell(&o["kind"]),
            cell(&o["tensor"])
        ),
    };
    verdict(&mut s, ok, &text);
    for case in v["cases"].as_array().into_iter().flatten() {
        run_case(&mut s, case);
    }
    s
}

/// One input case of a plain run: its ratio beside theory, its parameter and layer tables.
fn run_case(s: &mut String, case: &Value) {
    let _ = writeln!(s, "<h2>Input {}</h2>", esc(&cell(&case["input"]["name"])));
    let theory = &case["theory"];
    let _ = writeln!(
        s,
        "<p>‖δ_first‖/‖δ_last‖ measured {} ({}); mean-field theory {} ({})</p>",
        cell(&case["delta_ratio"]),
        cell(&case["flow"]),
        cell(&theory["delta_ratio"]),
        cell(&theory["phase"])
    );
    let params: Vec<&Value> = case["params"].as_array().into_iter().flatten().collect();
    table(
        s,
        &params,
        &[
            ("l2", "L2"),
            ("name", "parameter"),
            ("max", "max"),
            ("min", "min"),
            ("max_abs", "max |g|"),
            ("zero_fraction", "zero"),
            ("nonfinite", "non-finite"),
        ],
    );
    let layers: Vec<&Value> = case["layers"].as_array().into_iter().flatten().collect();
    table(
        s,
        &layers,
        &[
            ("layer", "layer"),
            ("width", "width"),
            ("delta_l2", "‖δ‖"),
            ("delta_max_abs", "max |δ|"),
            ("dead_fraction", "dead"),
            ("activation_mean", "activation mean"),
            ("activation_std", "activation std"),
        ],
    );
}

/// A sweep: how many trials, and per point the ratio's spread beside theory (or, training, how
/// the runs ended).
fn sweep_body(v: &Value) -> String {
    let mut s = String::new();
    let points: Vec<&Value> = v["points"].as_array().into_iter().flatten().collect();
    let bad: u64 = points
        .iter()
        .filter_map(|p| p["nonfinite_trials"].as_u64())
        .sum();
    let _ = writeln!(
        s,
        "<p>{} trial records, {} trials per grid point.</p>",
        cell(&v["trials_done"]),
        cell(&v["trials_per_point"])
    );
    verdict(
        &mut s,
        bad == 0,
        &format!("{bad} trials with a non-finite value"),
    );
    s.push_str("<h2>Grid points</h2>\n");
    if points.iter().any(|p| !p["training"].is_null()) {
        table(
            &mut s,
            &points,
            &[
                ("point", "point"),
                ("settings", "settings"),
                ("trials", "trials"),
                ("training.diverged_fraction", "diverged"),
                (
                    "training.first_nonfinite_step.median",
                    "first non-finite step",
                ),
                ("training.origins", "origins"),
                ("training.final_loss.median", "final loss"),
            ],
        );
    } else {
        table(
            &mut s,
            &points,
            &[
                ("point", "point"),
                ("settings", "settings"),
                ("case", "case"),
                ("trials", "trials"),
                ("nonfinite_trials", "non-finite"),
                ("ratio.median", "ratio median"),
                ("ratio.q1", "q1"),
                ("ratio.q3", "q3"),
                ("theory.delta_ratio", "theory"),
            ],
        );
    }
    s
}

/// A training run: the verdict and the summary.
fn train_body(v: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<p>{}</p>", esc(v["description"].as_str().unwrap_or("")));
    let text = match &v["origin"] {
        Value::Null => format!("finite for all {} steps", cell(&v["steps_run"])),
        o => format!(
            "NOT FINITE at step {}: born in {} ({})",
            cell(&o["step"]),
            cell(&o["kind"]),
            cell(&o["tensor"])
        ),
    };
    verdict(&mut s, v["finite"].as_bool().unwrap_or(false), &text);
    let rows = [v];
    table(
        &mut s,
        &rows,
        &[
            ("steps_run", "steps run"),
            ("optimizer", "optimiser"),
            ("learning_rate", "learning rate"),
            ("batch", "batch"),
            ("clip", "clip"),
            ("first_loss", "first loss"),
            ("last_loss", "last loss"),
        ],
    );
    s
}

/// Write `dir/report.html` from the record's files.
pub fn write(dir: &Path) -> std::io::Result<()> {
    let page = for_record(dir)?;
    let tmp = dir.join(".report.html.tmp");
    std::fs::write(&tmp, page)?;
    std::fs::rename(tmp, dir.join("report.html"))
}
