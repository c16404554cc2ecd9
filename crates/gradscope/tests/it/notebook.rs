//! The lab notebook cannot go stale: every page in experiments/notebook/ that says how it was
//! made is made again with the current code, and its text and numbers must match. A number
//! may differ by one unit in its last printed digit: the f32 sums below it need not be the same
//! bit for bit on every CPU (flex's and gemm's kernels are picked at run time by the vector
//! instructions there), and a value within an ulp of a rounding boundary prints either way. The
//! same code printed precision-relu-f16.md's point 39 minimum as 4.429e-01 in CI and as
//! 4.430e-01 (0.44295004) on a 2-core AVX2 EPYC.

use crate::common;

use std::path::Path;
use std::process::Command;

/// Split a page's text into words and numbers: (text with numbers replaced by `#`, each number
/// with the unit of its last printed digit: 1e-4 for `4.429e-01`, 0.01 for `3.25`).
fn split_numbers(text: &str) -> (String, Vec<(f64, f64)>) {
    let mut shape = String::new();
    let mut numbers = Vec::new();
    for token in text.split_inclusive(|c: char| {
        c.is_whitespace() || c == '|' || c == '(' || c == ')' || c == ','
    }) {
        let (word, sep) = token.split_at(
            token
                .trim_end_matches(|c: char| c.is_whitespace() || "|(),".contains(c))
                .len(),
        );
        match word.parse::<f64>() {
            Ok(v) if word.contains(['.', 'e']) => {
                numbers.push((v, last_digit(word)));
                shape.push('#');
            }
            _ => shape.push_str(word),
        }
        shape.push_str(sep);
    }
    (shape, numbers)
}

/// The unit of a printed number's last digit: `d.ddde±x` has 10^(x − 3), `d.dd` has 10^−2.
fn last_digit(word: &str) -> f64 {
    let (mantissa, exponent) = match word.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (word, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    10f64.powi(exponent - decimals)
}

/// The same text, and the same numbers to a relative 1e-4 or one unit of the last printed
/// digit, whichever is wider (the module's comment says why).
fn assert_same(what: &str, committed: &str, fresh: &str) {
    let (shape_a, nums_a) = split_numbers(committed);
    let (shape_b, nums_b) = split_numbers(fresh);
    assert_eq!(
        shape_a, shape_b,
        "{what}: the page's text changed; regenerate it"
    );
    assert_eq!(nums_a.len(), nums_b.len());
    for ((a, unit_a), (b, unit_b)) in nums_a.iter().zip(&nums_b) {
        let unit = unit_a.max(*unit_b) * (1.0 + 1e-9);
        let ok = (a == b) || (a - b).abs() <= (1e-4 * a.abs().max(b.abs())).max(unit);
        assert!(
            ok,
            "{what}: {a} became {b}; regenerate the page with the command at its top"
        );
    }
}

#[test]
fn a_number_may_move_by_its_last_printed_digit_and_no_more() {
    assert_eq!(last_digit("4.429e-01"), 1e-4);
    assert_eq!(last_digit("3.25"), 1e-2);
    assert_eq!(last_digit("1.000e+00"), 1e-3);
    assert_same("t", "min 4.429e-01 |", "min 4.430e-01 |");
    assert_same("t", "x 3.25", "x 3.26");
    for (a, b) in [
        ("4.429e-01", "4.431e-01"),
        ("3.25", "3.27"),
        ("1.0e5", "1.2e5"),
    ] {
        let r = std::panic::catch_unwind(|| assert_same("t", a, b));
        assert!(r.is_err(), "{a} against {b} passed");
    }
}

/// Pages too slow to make again whole on every test run (20 seeds per point), and the `--set`s
/// that make a subset of their grid points again: each row made is compared with the committed row of the same
/// settings. The training sweep's two rows at learning rate 0.5 without clipping are its
/// costliest and its answer (the naive loss: every trial non-finite; the stable loss: a few).
const SUBSETS: &[(&str, &[&str])] = &[
    (
        "sweep-training-lr-loss-clip.md",
        &[
            "--set",
            "sweep.train.learning_rate=[0.5]",
            "--set",
            "sweep.train.clip=[\"none\"]",
        ],
    ),
    // 20 seeds per point: the shallow points, every activation and initialiser.
    (
        "activation-init-depth.md",
        &["--set", "sweep.model.depth=[2, 4]"],
    ),
    // 200 seeds per point: the shallowest depth at every width.
    ("relu-he-spread.md", &["--set", "sweep.model.depth=[16]"]),
    // The shallow end of the validity grid: every loss, activation, initialiser and output
    // width at depth 4.
    ("theory-validity.md", &["--set", "sweep.model.depth=[4]"]),
    // The cells on either side of relu's edge, and tanh's, at every bias scale.
    (
        "phase-diagram-relu.md",
        &["--set", "sweep.model.gain=[1.25, 1.5]"],
    ),
    (
        "phase-diagram-tanh.md",
        &["--set", "sweep.model.gain=[1.25]"],
    ),
];

/// The table rows of a sweep page by their settings cell, without the point index (which a
/// subset numbers anew). Rows that start with a point index only: the grid of where theory
/// holds, by depth, has a column per depth, fewer in a subset.
fn rows_by_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            cells
                .first()?
                .trim_start_matches("| ")
                .parse::<usize>()
                .ok()?;
            let settings = cells.get(1)?.to_string();
            Some((settings, cells[2..].join(" | ")))
        })
        .collect()
}

fn regenerate(page: &Path, root: &Path, scratch: &Path) -> Option<String> {
    let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{e}"));
    let command = text
        .lines()
        .find_map(|l| l.strip_prefix("Regenerate: `")?.strip_suffix('`'))?;
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(|a| a.trim_matches('\'').to_string())
        .collect();
    let at = args
        .iter()
        .position(|a| a == "--notebook")
        .unwrap_or_else(|| panic!("{command}: no --notebook"));
    args[at + 1] = scratch.join("notebook").to_string_lossy().into_owned();
    args.extend([
        "--out".to_string(),
        scratch.join("runs").to_string_lossy().into_owned(),
    ]);
    let name = page.file_name().unwrap_or_default().to_string_lossy();
    if let Some((_, extra)) = SUBSETS.iter().find(|(p, _)| *p == name) {
        args.extend(extra.iter().map(|a| a.to_string()));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_gradscope"))
        .args(&args)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{command}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let name = page.file_name().unwrap_or_default();
    Some(
        std::fs::read_to_string(scratch.join("notebook").join(name))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn every_notebook_page_regenerates_to_the_same_numbers() {
    let root = common::configs_dir().join("..");
    let dir = root.join("experiments/notebook");
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut checked = 0;
    for page in common_pages(&dir) {
        let Some(fresh) = regenerate(&page, &root, scratch.path()) else {
            continue;
        };
        let committed = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{e}"));
        let name = page.file_name().unwrap_or_default().to_string_lossy();
        if SUBSETS.iter().any(|(p, _)| *p == name) {
            let all = rows_by_settings(&committed);
            let made = rows_by_settings(&fresh);
            assert!(
                made.len() >= 2,
                "{name}: the subset made {} rows",
                made.len()
            );
            for (settings, cells) in made {
                let Some((_, want)) = all.iter().find(|(s, _)| *s == settings) else {
                    panic!("{name}: no committed row {settings}");
                };
                assert_same(&format!("{name}: row {settings}"), want, &cells);
            }
            checked += 1;
            continue;
        }
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("Regenerate:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_same(
            &page.display().to_string(),
            &strip(&committed),
            &strip(&fresh),
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected the notebook's generated pages, found {checked}"
    );
}

fn common_pages(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    v.sort();
    v
}
