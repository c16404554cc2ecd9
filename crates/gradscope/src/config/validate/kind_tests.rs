use super::*;

#[derive(serde::Deserialize)]
struct One {
    v: Spanned<RawNamed>,
}

/// Each entry of `kinds` built from a table with its name (and `value = 1.0` where required).
fn built<T>(kinds: &[Kind<T>]) -> Vec<(&'static str, T)> {
    let src = Source {
        path: "t.toml".into(),
        text: String::new(),
    };
    let files = Files::default();
    let c = Checker {
        src: &src,
        files: &files,
    };
    kinds
        .iter()
        .map(|k| {
            let value = if k.params.iter().any(|p| p.name == "value") {
                ", value = 1.0"
            } else {
                ""
            };
            let text = format!("v = {{ kind = \"{}\"{value} }}", k.name);
            let one: One = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let v = k
                .build(&c, &one.v, "v")
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            (k.name, v)
        })
        .collect()
}

/// `show` reads a value's kind and parameters back through the same tables: every value
/// built from a table is found again, with the values it was built from.
#[test]
fn every_built_value_reads_back_as_its_kind_with_its_parameters() {
    fn check<T>(kinds: &[Kind<T>]) {
        for (name, v) in built(kinds) {
            let (kind, values) = super::super::kinds::kind_of(kinds, &v)
                .unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(kind.name, name);
            let given: Vec<f64> = kind
                .params
                .iter()
                .map(|p| p.default.unwrap_or(1.0))
                .collect();
            assert_eq!(values, given, "{name}");
        }
    }
    check(ACTIVATIONS);
    check(INITIALIZERS);
    check(DISTRIBUTIONS);
    check(LOSSES);
}

/// The parameter keys serde accepts in a named table are exactly those some kind takes.
#[test]
fn every_named_choice_builds_the_kind_its_name_says() {
    for (name, a) in built(ACTIVATIONS) {
        assert_eq!(a.name(), name);
    }
    for (name, i) in built(INITIALIZERS) {
        assert_eq!(i.name(), name);
    }
    for (name, l) in built(LOSSES) {
        assert_eq!(l.name(), name);
    }
    for (name, d) in built(DISTRIBUTIONS) {
        assert!(
            d.describe().starts_with(&format!("{name}(")),
            "{name}: {}",
            d.describe()
        );
    }
}
