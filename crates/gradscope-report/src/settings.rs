//! A sweep grid point's settings: each swept key with its value, in the sweep's axis order.
//!
//! JSON writes them as an object from key to value (`{"model.depth": 8, "model.activation":
//! "tanh"}`); people read them as `--set` takes them (`model.depth=8
//! model.activation="tanh"`), which is what the type dereferences to; a CSV cell holds the
//! value alone (`8`, `tanh`). Records written before schema version 2's object read as a
//! list of `key=value` strings.

use std::ops::Deref;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;
use toml::Value as Toml;

/// The settings of one grid point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// `(key, value)` in axis order.
    pairs: Vec<(String, Toml)>,
    /// `key=value`, the value as TOML.
    labels: Vec<String>,
}

impl Settings {
    /// From the swept keys and their values, in axis order.
    pub fn new(pairs: Vec<(String, Toml)>) -> Self {
        let labels = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Self { pairs, labels }
    }

    /// The swept keys, in axis order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The value of `key`, if it is swept.
    pub fn value(&self, key: &str) -> Option<&Toml> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Keeps the first `n` settings.
    pub fn truncate(&mut self, n: usize) {
        self.pairs.truncate(n);
        self.labels.truncate(n);
    }

    /// `(key, value)` in axis order.
    pub fn pairs(&self) -> &[(String, Toml)] {
        &self.pairs
    }

    /// The value of `key` as a CSV cell: a string without quotes, a number or boolean as
    /// written, an array or table as TOML; empty where `key` is not swept.
    pub fn cell(&self, key: &str) -> String {
        match self.value(key) {
            None => String::new(),
            Some(Toml::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    }
}

impl Deref for Settings {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.labels
    }
}

impl From<Vec<String>> for Settings {
    /// From `key=value` labels (the value as TOML; one that does not parse is kept as a
    /// string).
    fn from(labels: Vec<String>) -> Self {
        Self::new(labels.iter().map(|l| parse_label(l)).collect())
    }
}

/// `model.depth=8` as `("model.depth", 8)`.
fn parse_label(label: &str) -> (String, Toml) {
    let (key, value) = label.split_once('=').unwrap_or((label, ""));
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    (
        key.to_string(),
        parsed.unwrap_or_else(|| Toml::String(value.to_string())),
    )
}

/// A TOML value as JSON (a datetime, which sweeps do not take, as its text).
pub fn toml_to_json(v: &Toml) -> Json {
    match v {
        Toml::String(s) => Json::String(s.clone()),
        Toml::Integer(i) => Json::from(*i),
        Toml::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Json::String(f.to_string()), Json::Number)
        }
        Toml::Boolean(b) => Json::Bool(*b),
        Toml::Datetime(d) => Json::String(d.to_string()),
        Toml::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        Toml::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// A JSON value as TOML; `None` for null, which TOML has not.
fn json_to_toml(v: &Json) -> Option<Toml> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => Toml::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Toml::Integer(i),
            None => Toml::Float(n.as_f64()?),
        },
        Json::String(s) => Toml::String(s.clone()),
        Json::Array(a) => Toml::Array(a.iter().map(json_to_toml).collect::<Option<_>>()?),
        Json::Object(o) => Toml::Table(
            o.iter()
                .map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

impl Serialize for Settings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.pairs.len()))?;
        for (k, v) in &self.pairs {
            map.serialize_entry(k, &toml_to_json(v))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Settings;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object from swept key to value (or a list of `key=value`)")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Settings, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Json>()? {
                    let v = json_to_toml(&v).ok_or_else(|| {
                        de::Error::custom(format!("setting `{k}` has a null value"))
                    })?;
                    pairs.push((k, v));
                }
                Ok(Settings::new(pairs))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Settings, A::Error> {
                let mut labels = Vec::new();
                while let Some(l) = s.next_element::<String>()? {
                    labels.push(l);
                }
                Ok(Settings::from(labels))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Settings {
        let table: toml::Table =
            toml::from_str("loss = { kind = \"mse\", target = 1.0 }\n").expect("toml");
        Settings::new(vec![
            ("model.depth".into(), Toml::Integer(8)),
            ("model.activation".into(), Toml::String("tanh".into())),
            ("model.gain".into(), Toml::Float(1.5)),
            ("loss".into(), table["loss"].clone()),
        ])
    }

    #[test]
    fn settings_are_a_json_object_in_axis_order_and_read_back() {
        let s = sample();
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"model.depth":8,"model.activation":"tanh","model.gain":1.5,"loss":{"kind":"mse","target":1.0}}"#
        );
        let back: Settings = serde_json::from_str(&json).expect("read");
        assert_eq!(back, s);
    }

    #[test]
    fn people_read_them_as_set_takes_them_and_csv_cells_hold_the_values() {
        let s = sample();
        assert_eq!(
            s.join(" "),
            "model.depth=8 model.activation=\"tanh\" model.gain=1.5 loss={ kind = \"mse\", target = 1.0 }"
        );
        assert_eq!(s.cell("model.depth"), "8");
        assert_eq!(s.cell("model.activation"), "tanh");
        assert_eq!(s.cell("loss"), "{ kind = \"mse\", target = 1.0 }");
        assert_eq!(s.cell("model.width"), "");
    }

    #[test]
    fn version_1_lists_of_labels_read_as_the_same_settings() {
        let old = r#"["model.depth=8","model.activation=\"tanh\"","model.gain=1.5","loss={ kind = \"mse\", target = 1.0 }"]"#;
        let back: Settings = serde_json::from_str(old).expect("read");
        assert_eq!(back, sample());
    }
}
