//! Validation primitives shared by every file kind: findings, the
//! position-aware YAML reader, the embedded JSON Schemas and the
//! "did you mean" suggester for unknown keys, plus the pipeline that turns
//! a file into a typed value and its findings.

pub mod findings;
pub mod schema;
pub mod suggest;
pub mod yaml;

pub use findings::{Finding, Pos, Severity};

use schema::SchemaKind;
use serde::de::DeserializeOwned;
use std::path::Path;
use yaml::Document;

/// Reads a file holding exactly one YAML document.
///
/// `Ok(None)` is an empty file (no document). Read failures and syntax
/// errors come back as findings, so one broken file never stops the others.
pub fn read_document(path: &Path, shown: &str) -> Result<Option<Document>, Vec<Finding>> {
    let at = |line: usize, message: String| {
        vec![Finding::new(
            shown,
            Pos { line, column: 1 },
            "",
            Severity::Error,
            message,
        )]
    };
    let bytes = std::fs::read(path).map_err(|e| at(1, format!("cannot read file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| at(1, "file is not UTF-8 text".into()))?;
    parse_document(&text, shown)
}

/// [`read_document`] of a file's text: exactly one YAML document, `Ok(None)`
/// when there is none, syntax errors as findings about `shown`.
pub fn parse_document(text: &str, shown: &str) -> Result<Option<Document>, Vec<Finding>> {
    let mut docs = yaml::parse_documents(text)
        .map_err(|e| vec![Finding::new(shown, e.pos, "", Severity::Error, e.message)])?;
    match docs.len() {
        0 => Ok(None),
        1 => Ok(docs.pop()),
        n => Err(vec![Finding::new(
            shown,
            Pos { line: 1, column: 1 },
            "",
            Severity::Error,
            format!("file holds {n} YAML documents; put exactly one in each file"),
        )]),
    }
}

/// Schema-checks a document and, when it has no errors, deserialises it.
/// Returns the value (if valid) and every finding (warnings included).
pub fn typed<T: DeserializeOwned>(
    kind: SchemaKind,
    doc: &Document,
    shown: &str,
) -> (Option<T>, Vec<Finding>) {
    let mut findings = schema::check(kind, doc, shown);
    if findings.iter().any(Finding::is_error) {
        return (None, findings);
    }
    match serde_json::from_value::<T>(doc.value.clone()) {
        Ok(v) => (Some(v), findings),
        Err(e) => {
            // The schema accepted what the typed model rejects: a defect of
            // smo, reported rather than hidden.
            findings.push(Finding::new(
                shown,
                Pos { line: 1, column: 1 },
                "",
                Severity::Error,
                format!("smo could not read this file although it matches the schema ({e}); please report this"),
            ));
            (None, findings)
        }
    }
}
