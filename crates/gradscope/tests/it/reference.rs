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
    "floats", "backend", "config", "theory", "run", "stats", "origin", "train", "report", "render",
    "summary", "plot", "html", "record", "tensors", "compare", "sweep", "bench", "cli", "main",
];

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
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
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
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
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
