//! Findings: what validation reports about a file.
//!
//! Every finding names the file (relative to the state root, `/`-separated),
//! the 1-based line and column in the YAML source, the JSON pointer of the
//! field and a message that says what to do. Findings are collected, never
//! thrown: a loader returns all of them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub pointer: String,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(
        file: &str,
        pos: Pos,
        pointer: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            pointer: pointer.into(),
            severity,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    /// `path:line:col: severity: /json/pointer: message` — the format editors
    /// and CI annotators understand.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{}:{}:{}: {}: {}: {}",
            self.file, self.line, self.column, self.severity, pointer, self.message
        )
    }
}

/// Sorts findings by file, line, column, then severity, for stable output.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            &a.file, a.line, a.column, a.severity, &a.pointer, &a.message,
        )
            .cmp(&(
                &b.file, b.line, b.column, b.severity, &b.pointer, &b.message,
            ))
    });
}

/// Escapes one JSON pointer reference token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Appends a reference token to a pointer.
pub fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_token(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_uses_editor_format() {
        let f = Finding::new(
            "projects/p/g.yaml",
            Pos { line: 3, column: 5 },
            "/hdaGraph/id",
            Severity::Error,
            "bad",
        );
        assert_eq!(
            f.to_string(),
            "projects/p/g.yaml:3:5: error: /hdaGraph/id: bad"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(child("/a", "b/c~d"), "/a/b~1c~0d");
    }
}
