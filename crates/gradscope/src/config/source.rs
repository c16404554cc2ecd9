//! Where a config came from and how to point into it: byte offsets to line:column, the
//! dotted key path at an offset, and `ConfigError`, the located bad-input error.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A config file's path and text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path as the user gave it.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// A located problem in a config file: its [`ConfigProblem`], boxed, so that a `Result` whose
/// error it is stays small (clippy's `result_large_err`); its fields read through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<ConfigProblem>);

impl std::ops::Deref for ConfigError {
    type Target = ConfigProblem;
    fn deref(&self) -> &ConfigProblem {
        &self.0
    }
}

impl std::ops::DerefMut for ConfigError {
    fn deref_mut(&mut self) -> &mut ConfigProblem {
        &mut self.0
    }
}

impl From<ConfigProblem> for ConfigError {
    fn from(p: ConfigProblem) -> Self {
        Self(Box::new(p))
    }
}

/// What a [`ConfigError`] says: where, which key, what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 when the error has no position (an unreadable file).
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Dotted key path, e.g. `model.hidden[1]`; empty when unknown.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending source line, when there is one.
    pub snippet: Option<String>,
    /// A suggestion, printed as `hint: ...`.
    pub hint: Option<String>,
    /// Further problems of the same file found in the same pass (every missing key at once),
    /// each printed after this one as its own `error:` entry.
    pub also: Vec<ConfigError>,
}

impl ConfigError {
    /// An error about the whole file (no position).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::from(ConfigProblem {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: message.into(),
            snippet: None,
            hint: None,
            also: Vec::new(),
        })
    }

    /// The first of `errors` with the others attached (`also`); `None` when there are none.
    pub fn all(errors: Vec<ConfigError>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.also.extend(errors);
        Some(first)
    }

    /// Attach a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": ")?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(snippet) = &self.snippet {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                "",
                self.line,
                snippet,
                "",
                "^",
                col = self.column
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        for other in &self.also {
            write!(f, "\nerror: {other}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Source {
    /// 1-based (line, column in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The text of 1-based line `line`.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text
            .split('\n')
            .nth(line.checked_sub(1)?)
            .map(|l| l.trim_end_matches('\r'))
    }

    /// An error located at `span`, with an explicit key path (or the one found at the span).
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column, snippet) = match &span {
            Some(span) => {
                let (line, column) = self.position(span.start);
                (line, column, self.line_text(line).map(str::to_string))
            }
            None => (0, 0, None),
        };
        let key = match key {
            Some(k) => k.to_string(),
            None => span
                .map(|s| key_path_at(&self.text, s.start))
                .unwrap_or_default(),
        };
        ConfigError::from(ConfigProblem {
            path: self.path.clone(),
            line,
            column,
            key,
            message: message.into(),
            snippet,
            hint: None,
            also: Vec::new(),
        })
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key path of the line holding byte `offset`: the last table header before it
/// (`[model]`, or `[[inputs]]` counted as `inputs[k]`) joined with the key on that line.
/// A heuristic for messages, not a TOML parser: it reads headers and `key =` at line starts.
pub fn key_path_at(text: &str, offset: usize) -> String {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut header = String::new();
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let this_line = text[line_start..line_end].trim();
    // A header line counts as the table it opens.
    let upto = if this_line.starts_with('[') {
        line_end
    } else {
        line_start
    };
    for line in text[..upto].lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let k = match array_counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    array_counts.push((name.clone(), 0));
                    0
                }
            };
            header = format!("{name}[{k}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            header = name.trim().to_string();
        }
    }
    let key = if this_line.starts_with('[') {
        ""
    } else {
        this_line
            .split('=')
            .next()
            .filter(|_| this_line.contains('='))
            .unwrap_or("")
            .trim()
    };
    match (header.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
    }
}

/// The table path (header only, without the key) of the line holding byte `offset`.
pub fn table_path_at(text: &str, offset: usize) -> String {
    let path = key_path_at(text, offset);
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    if text[line_start..].trim_start().starts_with('[') {
        path
    } else {
        path.rsplit_once('.')
            .map(|(table, _)| table.to_string())
            .unwrap_or_default()
    }
}

/// The closest of `candidates` to `word` by edit distance, if close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        // Optimal string alignment: insertions, deletions, substitutions and transpositions of
        // neighbours each cost 1 (so `rleu` is one edit from `relu`).
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "name = \"x\"\n[model]\ninput = 10\n[[inputs]]\nname = \"a\"\n[[inputs]]\nbatch = 0\n";

    #[test]
    fn key_path_follows_headers_and_array_tables() {
        let at = |needle: &str| key_path_at(DOC, DOC.find(needle).unwrap_or(0));
        assert_eq!(at("name = \"x\""), "name");
        assert_eq!(at("input = 10"), "model.input");
        assert_eq!(at("name = \"a\""), "inputs[0].name");
        assert_eq!(at("batch = 0"), "inputs[1].batch");
    }

    #[test]
    fn position_is_one_based_lines_and_char_columns() {
        let src = Source {
            path: "f.toml".into(),
            text: "a = 1\nbé = 2\n".into(),
        };
        assert_eq!(src.position(0), (1, 1));
        // 'b' at byte 6, 'é' is two bytes, so '=' of line 2 is byte 10, character column 4.
        assert_eq!(src.position(10), (2, 4));
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let names = ["relu", "tanh", "sigmoid", "leaky_relu"];
        assert_eq!(did_you_mean("rleu", names), Some("relu"));
        assert_eq!(did_you_mean("sigmod", names), Some("sigmoid"));
        assert_eq!(did_you_mean("banana", names), None);
    }
}
