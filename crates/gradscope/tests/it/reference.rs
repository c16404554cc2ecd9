//! The config reference: every field of the `Raw*` structs has a doc comment (its one place of
//! documentation), and the README's "Config keys" table says exactly what those comments say.

const RAW: &str = include_str!("../../src/config/raw.rs");
const README: &str = include_str!("../../../../README.md");

/// (key, doc) for every `pub` field of the Raw structs that make up the file.
fn documented_fields() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut prefix: Option<&str> = None;
    let mut doc: Vec<String> = Vec::new();
    for line in RAW.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("pub struct ") {
            prefix = match name.split_whitespace().next().unwrap_or("") {
                "RawExperiment" => Some(""),
                "RawModel" => Some("model."),
                "RawInput" => Some("inputs[]."),
                "RawTrain" => Some("train."),
                "RawData" => Some("train.data."),
                _ => None,
            };
            doc.clear();
        } else if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if let (Some(p), Some(field)) = (
            prefix,
            t.strip_prefix("pub ").and_then(|f| f.split(':').next()),
        ) {
            out.push((format!("{p}{field}"), doc.join(" ")));
            doc.clear();
        } else if !t.starts_with("#[") {
            doc.clear();
        }
    }
    out
}

fn expected_table() -> String {
    let mut s = String::from("| key | meaning |\n|---|---|\n");
    for (key, doc) in documented_fields() {
        s.push_str(&format!("| `{key}` | {} |\n", doc.replace('|', "\\|")));
    }
    s
}

#[test]
fn every_config_field_has_a_doc_comment() {
    let fields = documented_fields();
    assert!(fields.len() >= 18, "{fields:?}");
    for (key, doc) in &fields {
        assert!(
            !doc.is_empty(),
            "`{key}` has no doc comment in src/config/raw.rs"
        );
    }
}

#[test]
fn the_readme_config_keys_table_matches_the_doc_comments() {
    let table = expected_table();
    assert!(
        README.contains(&table),
        "README.md's config keys table is out of date; replace it with:\n\n{table}"
    );
}

/// The modules of `src/` in the order lib.rs documents: each may use only those before it.
const MODULE_ORDER: [&str; 20] = [
    "alloc", "backend", "config", "loss", "theory", "run", "stats", "range", "origin", "train",
    "report", "summary", "record", "page", "tensors", "compare", "sweep", "bench", "cli", "main",
];

/// `text` without its `#[cfg(test)]` items: each is cut from the attribute to the brace that
/// closes the item's first brace, so code after a test module still counts. Braces inside
/// string and character literals and comments are skipped.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        rest = match item_end(item) {
            Some(end) => &item[end..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The byte just past the brace closing the first `{` of `item`.
fn item_end(item: &str) -> Option<usize> {
    let b = item.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i += item[i..].find('\n').unwrap_or(item.len() - i);
            }
            b'"' => {
                // A raw string's hashes, if any, sit just before the quote (r#"..."#).
                let hashes = item[..i].bytes().rev().take_while(|&c| c == b'#').count();
                let raw = item[..i - hashes].ends_with('r');
                let close = format!("\"{}", "#".repeat(hashes));
                let mut j = i + 1;
                while j < b.len() {
                    if !raw && b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if b[j..].starts_with(close.as_bytes()) {
                        break;
                    }
                    j += 1;
                }
                i = j + close.len() - 1;
            }
            // A character literal ('{', '\''), not a lifetime ('a).
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 3 + item.get(i + 3..).and_then(|t| t.find('\'')).unwrap_or(0);
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn test_modules_are_cut_by_their_braces_and_code_after_them_counts() {
    let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    fn f() { let s = \"}\"; let c = '}'; let r = r#\"}\"#; }\n    // }\n    use crate::z;\n}\nfn g() { crate::b::h() }\n";
    let kept = without_tests(text);
    assert!(
        kept.contains("crate::a") && kept.contains("crate::b"),
        "{kept}"
    );
    assert!(!kept.contains("crate::z"), "{kept}");
}

/// The crates that hold the schema and the renderers build without Burn: their manifests name
/// neither Burn nor the model crate (the compiler then holds every use of them to that).
#[test]
fn the_schema_and_render_crates_do_not_depend_on_burn() {
    for manifest in [
        include_str!("../../../gradscope-report/Cargo.toml"),
        include_str!("../../../gradscope-render/Cargo.toml"),
    ] {
        let deps: Vec<&str> = manifest
            .lines()
            .skip_while(|l| l.trim() != "[dependencies]")
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| l.split(['.', '=', ' ']).next())
            .filter(|d| !d.is_empty() && !d.starts_with('#'))
            .collect();
        assert!(!deps.is_empty(), "read no dependencies from:\n{manifest}");
        for d in deps {
            assert!(
                !["burn", "gradscope-model", "gradscope"].contains(&d),
                "depends on {d}:\n{manifest}"
            );
        }
    }
}

/// The README's named-choices table is the one generated from the kind tables (names,
/// parameters, defaults and notes written once, in `config::kinds`).
#[test]
fn the_readme_named_choices_table_is_generated_from_the_kind_tables() {
    let table = gradscope::config::kinds::reference_table();
    assert!(
        README.contains(&table),
        "README.md's named choices table is out of date; replace it with:\n\n{table}"
    );
}

/// Every `crate::name` a source file uses outside its tests, for each top-level module.
fn module_uses() -> Vec<(String, Vec<String>)> {
    let src = crate::common::manifest_dir().join("src");
    let mut files = vec![];
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut out = vec![];
    for p in files {
        let rel = p
            .strip_prefix(&src)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        let module = rel.split(['/', '.']).next().unwrap_or("").to_string();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let code = without_tests(&text);
        let code = code.as_str();
        let mut used: Vec<String> = code
            .split("crate::")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect()
            })
            .filter(|m: &String| !m.is_empty() && *m != module)
            .collect();
        // main.rs is the binary: it uses the library as `gradscope::`.
        if module == "main" {
            used = code
                .split("gradscope::")
                .skip(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect()
                })
                .collect();
        }
        used.sort();
        used.dedup();
        out.push((module, used));
    }
    out
}

#[test]
fn modules_depend_one_way() {
    let uses = module_uses();
    assert!(uses.len() > 15, "read too few source files: {uses:?}");
    for (module, used) in uses {
        if module == "lib" {
            continue;
        }
        let at = MODULE_ORDER
            .iter()
            .position(|m| *m == module)
            .unwrap_or_else(|| panic!("src/{module}: not in MODULE_ORDER (nor lib.rs's list)"));
        for u in used {
            let dep = MODULE_ORDER.iter().position(|m| *m == u);
            assert!(
                dep.is_some_and(|d| d < at),
                "src/{module} uses crate::{u}, which does not come before it: an import cycle or a layering break"
            );
        }
    }
}
