//! `report.html` of a record: its files read back into the schema's types (`report.json` or
//! `summary.json`, `config.toml`, the pictures) and rendered by `gradscope_render::html`. The
//! commands call this once a record is in place; `gradscope report DIR` calls it for any
//! record, older ones included.

use std::path::Path;

use gradscope_render::html::{PICTURES, RecordPage, page};
use gradscope_report::{Report, StepRecord};

/// The report a record directory holds: `summary.json` for a sweep, else `report.json`.
pub fn read_report(dir: &Path) -> std::io::Result<Report> {
    let name = if dir.join("summary.json").exists() {
        "summary.json"
    } else {
        "report.json"
    };
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)?;
    Report::from_json(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// A training record's `steps.jsonl`, one step a line (none where the file is missing).
pub fn read_steps(dir: &Path) -> std::io::Result<Vec<StepRecord>> {
    let path = dir.join("steps.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                let at = format!("{}:{}: {e}", path.display(), i + 1);
                std::io::Error::new(std::io::ErrorKind::InvalidData, at)
            })
        })
        .collect()
}

/// The record's files, sorted by name, with their sizes: those in `dir` and, one level down,
/// those of its folders (`dumps/…`). The page itself is left out.
fn record_files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let list = |d: &Path| -> Vec<std::fs::DirEntry> {
        std::fs::read_dir(d)
            .map(|r| r.filter_map(Result::ok).collect())
            .unwrap_or_default()
    };
    for e in list(dir) {
        let name = e.file_name().to_string_lossy().into_owned();
        match e.metadata() {
            Ok(m) if m.is_dir() => {
                for f in list(&e.path()) {
                    let Ok(m) = f.metadata() else { continue };
                    if m.is_file() {
                        let inner = f.file_name().to_string_lossy().into_owned();
                        out.push((format!("{name}/{inner}"), m.len()));
                    }
                }
            }
            Ok(m) if name != "report.html" => out.push((name, m.len())),
            _ => {}
        }
    }
    out.sort();
    out
}

/// The page of the record in `dir`, from its files.
pub fn for_record(dir: &Path) -> std::io::Result<String> {
    let report = read_report(dir)?;
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
    let pictures: Vec<(String, String)> = PICTURES
        .iter()
        .filter_map(|name| {
            let svg = std::fs::read_to_string(dir.join(name)).ok()?;
            Some((name.to_string(), svg))
        })
        .collect();
    let steps = match &report {
        Report::Train(_) => read_steps(dir)?,
        _ => Vec::new(),
    };
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(page(&RecordPage {
        report: &report,
        config: &config,
        pictures: &pictures,
        steps: &steps,
        dir: &absolute.display().to_string(),
        files: &record_files(dir),
    }))
}

/// Write `dir/report.html` from the record's files (whole or not at all).
pub fn write(dir: &Path) -> std::io::Result<()> {
    let page = for_record(dir)?;
    crate::record::write_atomic(&dir.join("report.html"), page.as_bytes())
}
