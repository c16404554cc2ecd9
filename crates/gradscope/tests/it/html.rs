//! report.html in a real browser (Debian's chromium, headless): each page loads with no
//! console error, every picture renders at a non-zero size, every table has as many rows as
//! the JSON has entries, and sorting a column orders it (the page's `#selftest` writes what it
//! found into `<body>`'s data attributes, read back from the DOM the browser dumps). Skips with
//! a printed reason where no chromium exists, except in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, gradscope, read_text};

fn browser_or_skip(test: &str) -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let present = found.is_some();
    common::part_or_skip(
        test,
        present,
        ".ci/run installs chromium",
        "no chromium here (apt-get install chromium)",
    );
    found
}

/// What the page's self-test wrote, and the browser's log.
struct Loaded {
    body: String,
    log: String,
    /// The whole document as chromium left it.
    dom: String,
}

impl Loaded {
    fn attr(&self, name: &str) -> String {
        let key = format!("data-{name}=\"");
        self.body
            .split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(String::new(), |(v, _)| v.to_string())
    }
}

fn load(browser: &str, page: &Path) -> Loaded {
    let url = format!("file://{}#selftest", page.display());
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("{browser}: {e}"));
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let body = dom
        .split_once("<body")
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(String::new(), |(b, _)| b.to_string());
    Loaded {
        body,
        log: String::from_utf8_lossy(&o.stderr).into_owned(),
        dom,
    }
}

/// The page loaded cleanly: the self-test ran, no console error, every picture non-zero,
/// sorting ordered the first table; returns the tables' row counts.
fn check_page(browser: &str, page: &Path, pictures: usize) -> Vec<usize> {
    let loaded = load(browser, page);
    let at = page.display();
    assert_eq!(
        loaded.attr("selftest"),
        "done",
        "{at}: the self-test did not run: {}",
        loaded.body
    );
    for bad in ["Uncaught", "ERROR:CONSOLE", "CONSOLE(0)] \"Error"] {
        assert!(
            !loaded.log.contains(bad),
            "{at}: console error: {}",
            loaded.log
        );
    }
    let sizes: Vec<String> = loaded
        .attr("svgs")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(sizes.len(), pictures, "{at}: pictures {sizes:?}");
    for size in &sizes {
        let (w, h) = size.split_once('x').unwrap_or(("0", "0"));
        assert!(
            w.parse::<u32>().unwrap_or(0) > 0 && h.parse::<u32>().unwrap_or(0) > 0,
            "{at}: picture {size}"
        );
    }
    assert_eq!(loaded.attr("sort"), "ok", "{at}: sorting the first column");
    loaded
        .attr("rows")
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn only_record(base: &Path, name: &str) -> PathBuf {
    let dirs = common::record_dirs_of(base, name);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn reports_load_in_a_real_browser_with_their_pictures_and_sortable_tables() {
    let Some(browser) = browser_or_skip("html reports") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let configs = common::configs_dir();
    let run = |config: &str, extra: &[&str]| {
        let path = configs.join(config).to_string_lossy().into_owned();
        let mut args = vec!["run", path.as_str(), "--out", "rec"];
        args.extend(extra);
        let o = gradscope(&args, d);
        assert!(
            matches!(o.status.code(), Some(0 | 3)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // The seed sweep: one row per point and case, and its picture.
    run("sweeps/11-sweep-seed-network-1000-seeds.toml", &[]);
    let sweep = only_record(&d.join("rec"), "seed-network-1000-seeds");
    let json: serde_json::Value = serde_json::from_str(&read_text(&sweep.join("summary.json")))
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = check_page(browser, &sweep.join("report.html"), 1);
    assert_eq!(rows, vec![json["points"].as_array().map_or(0, Vec::len)]);
    // In chromium's DOM: the column saying where theory holds, and the record's files linked.
    let dom = load(browser, &sweep.join("report.html")).dom;
    assert!(dom.contains(">theory holds</th>"), "{dom}");
    for file in ["summary.csv", "trials.jsonl", "meta.json"] {
        assert!(
            dom.contains(&format!("<a href=\"{file}\">{file}</a>")),
            "{file}: {dom}"
        );
    }
    // A plain run: per case, a row per parameter, one per layer, and one per layer of the
    // range table (each layer's z_range recorded); its picture.
    run("03-seed-inputs.toml", &[]);
    let plain = only_record(&d.join("rec"), "seed-example-3");
    let json: serde_json::Value = serde_json::from_str(&read_text(&plain.join("report.json")))
        .unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<usize> = json["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| {
            let layers = c["layers"].as_array();
            let ranged = layers
                .into_iter()
                .flatten()
                .filter(|l| !l["z_range"].is_null())
                .count();
            [
                c["params"].as_array().map_or(0, Vec::len),
                layers.map_or(0, Vec::len),
                ranged,
            ]
        })
        .collect();
    assert_eq!(check_page(browser, &plain.join("report.html"), 1), want);
    // A training run that fails: its picture and summary row.
    run("training/a-naive-cross-entropy-high-lr.toml", &[]);
    let train = only_record(&d.join("rec"), "train-a-naive-ce-high-lr");
    // Its tables: the summary row; the per-step table and the failing layer's growth, each
    // of the two steps run (it fails at step 1: steps.jsonl has two lines).
    let steps = std::fs::read_to_string(train.join("steps.jsonl")).unwrap_or_default();
    assert_eq!(steps.lines().count(), 2);
    assert_eq!(
        check_page(browser, &train.join("report.html"), 1),
        vec![1, 2, 2]
    );
    // The trained weights are listed, with how to probe them, in the DOM chromium built.
    let dom = load(browser, &train.join("report.html")).dom;
    assert!(
        dom.contains("<a href=\"weights.safetensors\">weights.safetensors</a>")
            && dom.contains("Probe the trained weights"),
        "{dom}"
    );
}

/// `gradscope report DIR` rebuilds a record's page byte for byte, merged sweeps included, and
/// refuses a directory that is not a record (exit 2).
#[test]
fn report_rebuilds_the_page_of_any_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let config = common::configs_dir().join("sweeps/11-sweep-seed-network-1000-seeds.toml");
    let config = config.to_string_lossy();
    for shard in ["1/2", "2/2"] {
        let o = gradscope(&["run", &config, "--out", "shards", "--shard", shard], d);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let shards: Vec<String> = common::record_dirs_of(&d.join("shards"), "seed-network-1000-seeds")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["merge", "--out", "merged"];
    args.extend(shards.iter().map(String::as_str));
    assert_eq!(gradscope(&args, d).status.code(), Some(0));
    let merged = only_record(&d.join("merged"), "seed-network-1000-seeds");
    let page = merged.join("report.html");
    let before = read_text(&page);
    assert!(before.contains("<svg") && before.contains("3000 trial records"));
    std::fs::remove_file(&page).unwrap_or_else(|e| panic!("{e}"));
    let o = gradscope(&["report", &merged.to_string_lossy()], d);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read_text(&page), before);
    let o = gradscope(&["report", &d.to_string_lossy()], d);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a record directory"));
}
