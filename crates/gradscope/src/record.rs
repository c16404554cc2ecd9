//! Run records: `<out>/<experiment>/<UTC time>-<backend>/` holding the resolved config, the
//! report as JSON and markdown, and `meta.json`. A record is written into a hidden
//! `.partial-*` directory first and renamed into place when complete, so a crash or a kill
//! never leaves a half-written record (at worst a `.partial-*` directory, which is no record).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use gradscope_report::Meta;

use gradscope_report::FileDigest;

use crate::backend::Backend;
use crate::config::{Data, Experiment, InputSource};

/// The Burn version gradscope is built against (pinned in the workspace `Cargo.toml`).
pub const BURN_VERSION: &str = "0.22.1";

/// Environment variable for tests: abort the process after writing this many record files.
pub const FAULT_ENV: &str = "GRADSCOPE_FAULT_AFTER_RECORD_FILES";

/// Describe a run of `exp` on `backend` that started at `started` and took `wall`; the files
/// it read are hashed here (an unreadable one is named with the reason in place of a digest).
pub fn meta(exp: &Experiment, backend: &Backend, started: SystemTime, wall: Duration) -> Meta {
    let on = (backend.kind.name().to_string(), backend.adapter.clone());
    meta_of(exp, on, (started, wall), Vec::new())
}

/// The meta of a record of `exp` made on `(backend, adapter)`, in `(started, wall)`, from the
/// records `merged_from` (none but for a merge).
fn meta_of(
    exp: &Experiment,
    (backend, adapter): (String, Option<String>),
    (started, wall): (SystemTime, Duration),
    merged_from: Vec<gradscope_report::MergedPart>,
) -> Meta {
    Meta {
        schema_version: gradscope_report::SCHEMA_VERSION,
        gradscope_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        backend,
        adapter,
        seed: exp.seed,
        started_utc: utc(started, true),
        wall_time_s: wall.as_secs_f64(),
        host: host_name(),
        config_path: exp.path.display().to_string(),
        command: std::env::args().collect(),
        files: input_files(exp)
            .into_iter()
            .map(|(role, path)| digest(role, &path))
            .collect(),
        merged_from,
    }
}

/// Describe a merge of the sweep records `parts` (directory, part name) of `exp`, started at
/// `started` and taking `wall`: the backend and adapter the parts agree on (`mixed: …` where
/// they do not), the merge's own host and command, and each part with its own `meta.json`.
pub fn merged_meta(
    exp: &Experiment,
    parts: &[(PathBuf, String)],
    started: SystemTime,
    wall: Duration,
) -> Meta {
    let merged_from: Vec<gradscope_report::MergedPart> = parts
        .iter()
        .map(|(dir, part)| gradscope_report::MergedPart {
            path: dir.display().to_string(),
            part: part.clone(),
            meta: std::fs::read_to_string(dir.join("meta.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Meta>(&t).ok())
                .map(Box::new),
        })
        .collect();
    let agreed = |f: &dyn Fn(&Meta) -> Option<String>| -> Option<String> {
        let mut seen: Vec<String> = Vec::new();
        for m in merged_from.iter().filter_map(|p| p.meta.as_deref()) {
            if let Some(v) = f(m).filter(|v| !seen.contains(v)) {
                seen.push(v);
            }
        }
        match seen.len() {
            0 => None,
            1 => seen.pop(),
            _ => Some(format!("mixed: {}", seen.join(", "))),
        }
    };
    let on = (
        agreed(&|m| Some(m.backend.clone())).unwrap_or_else(|| "unknown".into()),
        agreed(&|m| m.adapter.clone()),
    );
    meta_of(exp, on, (started, wall), merged_from)
}

/// `meta` as the record's `meta.json` text.
pub fn meta_json(
    exp: &Experiment,
    backend: &Backend,
    started: SystemTime,
    wall: Duration,
) -> String {
    let meta = meta(exp, backend, started, wall);
    format!(
        "{}\n",
        serde_json::to_string_pretty(&meta).unwrap_or_default()
    )
}

/// Every file `exp` read: (role, path).
fn input_files(exp: &Experiment) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    if let Some(w) = &exp.weights {
        files.push(("weights".to_string(), w.path.clone()));
    }
    for case in &exp.inputs {
        if let InputSource::File { path, .. } = &case.source {
            files.push((format!("inputs.{}", case.name), path.clone()));
        }
    }
    if let Some(Data::Files {
        inputs_path,
        targets_path,
        ..
    }) = exp.task.train().map(|t| &t.data)
    {
        files.push(("train.data.inputs".to_string(), inputs_path.clone()));
        files.push(("train.data.targets".to_string(), targets_path.clone()));
    }
    files
}

/// The sha256 of the file at `path`, hex; the reason in its place where it cannot be read.
fn digest(role: String, path: &Path) -> FileDigest {
    use sha2::Digest as _;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let sha256 = match std::fs::read(path) {
        Ok(bytes) => sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        Err(e) => format!("unreadable: {e}"),
    };
    FileDigest {
        role,
        path: absolute.display().to_string(),
        sha256,
    }
}

fn host_name() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    }
}

/// A UTC timestamp to the second: `2026-11-29T12:45:01Z` (`iso`) or `20261129T124501Z` (for
/// paths). A time before 1970 (a wrong clock) reads as 1970-01-01.
pub fn utc(t: SystemTime, iso: bool) -> String {
    let format = if iso {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y%m%dT%H%M%SZ"
    };
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime(format)
        .to_string()
}

fn write_file(dir: &Path, name: &str, contents: &str, written: &mut usize) -> std::io::Result<()> {
    let mut f = std::fs::File::create(dir.join(name))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    *written += 1;
    if let Some(n) = std::env::var(FAULT_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        && *written >= n
    {
        std::process::abort();
    }
    Ok(())
}

/// Write `contents` to `path` so that a reader sees the old file or the whole new one, never a
/// part: written to a hidden `.<name>.partial` beside it, synced, then renamed into place.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Write a notebook page `dir/<experiment>.md` (and `dir/<experiment>.svg` for a sweep)
/// headed by the command that regenerates it; returns the page's path.
pub fn write_notebook_page(
    dir: &Path,
    experiment: &str,
    command: &str,
    body: &str,
    svg: Option<&str>,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    if let Some(svg) = svg {
        write_atomic(&dir.join(format!("{experiment}.svg")), svg.as_bytes())?;
    }
    let page = dir.join(format!("{experiment}.md"));
    let text =
        format!("<!-- Written by gradscope; do not edit. -->\n\nRegenerate: `{command}`\n\n{body}");
    write_atomic(&page, text.as_bytes())?;
    Ok(page)
}

/// `parent/stem`, or `parent/stem-2`, `-3`, ... if taken: two runs in the same second get
/// their own directories rather than overwriting each other.
pub fn unused_dir(parent: &Path, stem: &str) -> PathBuf {
    let mut dir = parent.join(stem);
    let mut k = 2;
    while dir.exists() {
        dir = parent.join(format!("{stem}-{k}"));
        k += 1;
    }
    dir
}

/// Remove the `.partial-*-<pid>` directories in `parent` left by writers that were killed:
/// those whose process no longer runs. Where process ids cannot be checked (no `/proc`),
/// nothing is removed. Returns how many were removed.
pub fn remove_abandoned_partials(parent: &Path) -> usize {
    let proc_fs = Path::new("/proc/self");
    if !proc_fs.exists() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(".partial-")
                .and_then(|rest| rest.rsplit('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count()
}

/// Write the record of one run of `exp` on `backend` under `out`: `config.toml`, then `files`
/// (name, contents) in order, whole or not at all; returns the record's directory.
pub fn write(
    out: &Path,
    exp: &Experiment,
    backend: &str,
    files: &[(&str, String)],
    started: SystemTime,
) -> std::io::Result<PathBuf> {
    let parent = out.join(&exp.name);
    std::fs::create_dir_all(&parent)?;
    remove_abandoned_partials(&parent);
    let stem = format!("{}-{backend}", utc(started, false));
    let partial = parent.join(format!(".partial-{stem}-{}", std::process::id()));
    std::fs::create_dir_all(&partial)?;
    let result = (|| {
        let mut n = 0;
        write_file(&partial, "config.toml", &exp.to_toml(), &mut n)?;
        for (name, contents) in files {
            write_file(&partial, name, contents, &mut n)?;
        }
        let target = unused_dir(&parent, &stem);
        std::fs::rename(&partial, &target)?;
        Ok(target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// A training run's record, written as it runs: `config.toml` first, then one line of
/// `steps.jsonl` per finished step (flushed, so a killed run keeps its finished steps), then
/// `report.json` and `report.md` at the end.
pub struct StepLog {
    dir: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    lines: usize,
}

/// Steps between syncs of `steps.jsonl` (a killed process loses nothing flushed; a sync bounds
/// what a machine crash loses, as a sweep's sync per stack of trials does).
const STEPS_PER_SYNC: usize = 100;

impl StepLog {
    /// Create `<out>/<name>/<stamp>-<backend>-train[-N]/` with the config in it.
    pub fn create(
        out: &Path,
        exp: &Experiment,
        stamp: &str,
        backend: &str,
    ) -> std::io::Result<Self> {
        let parent = out.join(&exp.name);
        std::fs::create_dir_all(&parent)?;
        let dir = unused_dir(&parent, &format!("{stamp}-{backend}-train"));
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("steps.jsonl"))?;
        Ok(Self {
            dir,
            file: std::io::BufWriter::new(file),
            lines: 0,
        })
    }

    /// Append one step's line.
    pub fn append(&mut self, step: &gradscope_report::StepRecord) -> std::io::Result<()> {
        use std::io::Write as _;
        let line = serde_json::to_string(step).map_err(std::io::Error::other)?;
        writeln!(self.file, "{line}")?;
        self.file.flush()?;
        self.lines += 1;
        if self.lines.is_multiple_of(STEPS_PER_SYNC) {
            self.file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// The record's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Close `steps.jsonl` and write the summary `files` (name, contents), each whole;
    /// returns the record's directory.
    pub fn finish(mut self, files: &[(&str, String)]) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        for (name, contents) in files {
            write_atomic(&self.dir.join(name), contents.as_bytes())?;
        }
        Ok(self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn abandoned_partials_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // No process has id 4294967295 (Linux's pid_max is at most 2^22); this process lives.
        let dead = dir
            .path()
            .join(".partial-20260101T000000Z-ndarray-4294967295");
        let live = dir.path().join(format!(
            ".partial-20260101T000000Z-ndarray-{}",
            std::process::id()
        ));
        let record = dir.path().join("20260101T000000Z-ndarray");
        for d in [&dead, &live, &record] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(remove_abandoned_partials(dir.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists(), "a running writer's directory is kept");
        assert!(record.exists(), "records are never touched");
    }

    #[test]
    fn utc_formats_known_instants() {
        // 1_700_000_000 s after the epoch is 2023-11-14 22:13:20 UTC (`date -u -d @1700000000`).
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc(t, true), "2023-11-14T22:13:20Z");
        assert_eq!(utc(t, false), "20231114T221320Z");
        // A leap day: 951_782_400 s is 2000-02-29 00:00:00 UTC.
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400), true),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(utc(UNIX_EPOCH, true), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn write_atomic_replaces_the_file_whole_and_leaves_no_partial() {
        let dir = std::env::temp_dir().join(format!("gradscope-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("a.json");
        for contents in ["first", "second, longer"] {
            write_atomic(&path, contents.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), contents);
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["a.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn burn_version_matches_the_workspace_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        assert!(
            manifest.contains(&format!("version = \"={BURN_VERSION}\"")),
            "update BURN_VERSION"
        );
    }
}
