//! The lab notebook cannot go stale: every page in experiments/notebook/ that says how it was
//! made is made again with the current code, and its text and numbers must match (numbers to
//! a relative 1e-4, since they are printed rounded).

use crate::common;

use std::path::Path;
use std::process::Command;

/// Split a page's text into words and numbers: (text with numbers replaced by `#`, numbers).
fn split_numbers(text: &str) -> (String, Vec<f64>) {
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
                numbers.push(v);
                shape.push('#');
            }
            _ => shape.push_str(word),
        }
        shape.push_str(sep);
    }
    (shape, numbers)
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
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("Regenerate:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (shape_a, nums_a) = split_numbers(&strip(&committed));
        let (shape_b, nums_b) = split_numbers(&strip(&fresh));
        assert_eq!(
            shape_a,
            shape_b,
            "{}: the page's text changed; regenerate it",
            page.display()
        );
        assert_eq!(nums_a.len(), nums_b.len());
        for (a, b) in nums_a.iter().zip(&nums_b) {
            let ok = (a == b) || (a - b).abs() <= 1e-4 * a.abs().max(b.abs());
            assert!(
                ok,
                "{}: {a} became {b}; regenerate the page with the command at its top",
                page.display()
            );
        }
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
