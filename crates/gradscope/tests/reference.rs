//! The config reference: every field of the `Raw*` structs has a doc comment (its one place of
//! documentation), and the README's "Config keys" table says exactly what those comments say.

const RAW: &str = include_str!("../src/config/raw.rs");
const README: &str = include_str!("../../../README.md");

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
