//! YAML documents with source positions.
//!
//! Descriptors are parsed once, from `saphyr-parser`'s event stream, into a
//! `serde_json::Value` plus a map from JSON pointer to source position. The
//! value feeds both the JSON Schema validator and the typed model (through
//! `serde_json::from_value`), so the schema and the model always see the same
//! document, and every finding can name the line of the field it is about.
//!
//! Scalars resolve by the YAML 1.2 core schema (`True`, `TRUE` and `true` are
//! booleans; `yes`/`no` are strings). Quoted scalars and `!!str` are always
//! strings. Duplicate keys are an error, never a silent overwrite. Merge keys
//! (`<<`, a YAML 1.1 feature) are not expanded.

use super::findings::{Finding, Pos, Severity, child};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// One YAML document: its value and where each node came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    nodes: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    collections: HashSet<String>,
}

/// A YAML syntax error at a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Document {
    /// Where a finding about `pointer` is shown: the node itself for a
    /// scalar, the key that introduces it for a map or list (a block map
    /// starts on the line after its key), and for a missing field, the same
    /// for its nearest ancestor.
    pub fn position(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.nodes.get(p) {
                if self.collections.contains(p)
                    && let Some(key) = self.keys.get(p)
                {
                    return *key;
                }
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// A finding about the field at `pointer` of this document.
    pub fn finding(
        &self,
        file: &str,
        pointer: &str,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(file, self.position(pointer), pointer, severity, message)
    }

    /// An error about the field at `pointer` of this document.
    pub fn error(&self, file: &str, pointer: &str, message: impl Into<String>) -> Finding {
        self.finding(file, pointer, Severity::Error, message)
    }

    /// Position of the key that introduces `pointer` (falls back to the node).
    pub fn key_position(&self, pointer: &str) -> Pos {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.position(pointer))
    }
}

/// Parses every document of a YAML stream.
pub fn parse_documents(src: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder {
        end: end_of(src),
        ..Builder::default()
    };
    for event in Parser::new_from_str(src) {
        let (event, span) = event.map_err(|e| YamlError {
            pos: builder.within(Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            }),
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.docs)
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// The position just after the last character of `src`, counting line
/// breaks as YAML does (`\n`, `\r\n`, a lone `\r`).
fn end_of(src: &str) -> Pos {
    let bytes = src.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    let last_line = src.rsplit(['\n', '\r']).next().unwrap_or_default();
    Pos {
        line: breaks + 1,
        column: last_line.chars().count() + 1,
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        pointer: String,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        pointer: String,
        key: Option<String>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
    nodes: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    collections: HashSet<String>,
    docs: Vec<Document>,
    /// Where the input ends (see [`Builder::within`]).
    end: Pos,
}

impl Builder {
    /// `pos`, or the end of the input when `pos` lies past it: at the end
    /// of a stream saphyr forces a line break, as libyaml does, so an
    /// error (or an implicit null) at the end of a file without a final
    /// newline would name a line the file does not have.
    fn within(&self, pos: Pos) -> Pos {
        if pos.line > self.end.line {
            self.end
        } else {
            pos
        }
    }

    /// Pointer of the node about to be added, or `None` when the next node
    /// is a mapping key.
    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, pointer, .. }) => {
                Some(child(pointer, &items.len().to_string()))
            }
            Some(Frame::Map {
                key: Some(k),
                pointer,
                ..
            }) => Some(child(pointer, k)),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = self.within(pos_of(&span));
        match event {
            Event::DocumentStart(_) => {
                self.root = None;
                self.nodes.clear();
                self.keys.clear();
                self.collections.clear();
                self.anchors.clear();
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Value::Null);
                self.docs.push(Document {
                    value,
                    nodes: std::mem::take(&mut self.nodes),
                    keys: std::mem::take(&mut self.keys),
                    collections: std::mem::take(&mut self.collections),
                });
            }
            Event::Scalar(text, style, anchor, tag) => match self.next_pointer() {
                None => self.key(text.into_owned(), pos)?,
                Some(pointer) => {
                    let value = resolve_scalar(&text, style, tag.as_deref());
                    self.nodes.insert(pointer, pos);
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.insert(value);
                }
            },
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().ok_or(YamlError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                match self.next_pointer() {
                    None => match value {
                        Value::String(s) => self.key(s, pos)?,
                        _ => return Err(complex_key(pos)),
                    },
                    Some(pointer) => {
                        self.nodes.insert(pointer, pos);
                        self.insert(value);
                    }
                }
            }
            Event::SequenceStart(anchor, _) => {
                let pointer = self.next_pointer().ok_or_else(|| complex_key(pos))?;
                self.nodes.insert(pointer.clone(), pos);
                self.collections.insert(pointer.clone());
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    pointer,
                });
            }
            Event::MappingStart(anchor, _) => {
                let pointer = self.next_pointer().ok_or_else(|| complex_key(pos))?;
                self.nodes.insert(pointer.clone(), pos);
                self.collections.insert(pointer.clone());
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    anchor,
                    pointer,
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return Ok(()),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.insert(value);
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn key(&mut self, key: String, pos: Pos) -> Result<(), YamlError> {
        if let Some(Frame::Map {
            map,
            pointer,
            key: slot,
            ..
        }) = self.stack.last_mut()
        {
            if map.contains_key(&key) {
                return Err(YamlError {
                    pos,
                    message: format!("duplicate key `{key}`: remove one of them"),
                });
            }
            self.keys.insert(child(pointer, &key), pos);
            *slot = Some(key);
        }
        Ok(())
    }

    fn insert(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                }
            }
        }
    }
}

fn complex_key(pos: Pos) -> YamlError {
    YamlError {
        pos,
        message: "mapping keys must be plain scalars".into(),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if style != ScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str" || t.handle == "!") {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = resolve_int(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

fn resolve_int(text: &str) -> Option<Number> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Number::from);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(Number::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    unsigned
        .parse::<i64>()
        .map(Number::from)
        .ok()
        .or_else(|| unsigned.parse::<u64>().ok().map(Number::from))
}

/// The core schema's float pattern; Rust's parser alone would also take
/// `inf` and `NaN`, which YAML spells `.inf` and `.nan` (and JSON cannot hold).
fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = mantissa.bytes().any(|b| b.is_ascii_digit())
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && mantissa.bytes().filter(|&b| b == b'.').count() <= 1;
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(src: &str) -> Document {
        let mut docs = parse_documents(src).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let d = one(
            "a: True\nb: 'True'\nc: 0.4.0\nd: 1.5\ne: 42\nf: ~\ng: yes\nh: -3\ni: .inf\nj: 1e3\nk:\n",
        );
        assert_eq!(
            d.value,
            json!({"a": true, "b": "True", "c": "0.4.0", "d": 1.5, "e": 42, "f": null,
                   "g": "yes", "h": -3, "i": ".inf", "j": 1000.0, "k": null})
        );
    }

    #[test]
    fn records_positions_of_nodes_and_keys() {
        let d = one("top:\n  list:\n    - x\n    - name: y\n      v: 2\n");
        assert_eq!(
            d.position("/top/list/1/v"),
            Pos {
                line: 5,
                column: 10
            }
        );
        assert_eq!(d.key_position("/top/list/1/v"), Pos { line: 5, column: 7 });
        assert_eq!(d.position("/top/list/0"), Pos { line: 3, column: 7 });
        // Missing fields fall back to the nearest ancestor.
        assert_eq!(
            d.position("/top/list/1/missing"),
            Pos { line: 4, column: 7 }
        );
        // A block collection is shown at its key.
        assert_eq!(d.position("/top/list"), Pos { line: 2, column: 3 });
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let d = one("base: &b {x: 1}\ncopy: *b\n");
        assert_eq!(d.value["copy"], json!({"x": 1}));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(err.message.starts_with("YAML syntax error"));
    }

    #[test]
    fn an_error_at_the_end_of_a_file_without_final_newline_names_its_last_line() {
        // Found by fuzzing (`cluster`): saphyr reported line 2 of a
        // one-line file.
        let err = parse_documents("clusr{et: [name: x").unwrap_err();
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                column: 19
            }
        );
        let err = parse_documents("a: 1\r\nb: [x").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 6 });
        // With a final newline the end is the (empty) line after it.
        let err = parse_documents("a: [x\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        // An implicit null at the very end belongs to its key's line.
        assert_eq!(one("a: 1\nb:").position("/b").line, 2);
    }

    #[test]
    fn keys_with_slashes_are_escaped_in_pointers() {
        let d = one("m:\n  nvidia.com/gpu: 1\n");
        assert_eq!(d.position("/m/nvidia.com~1gpu").line, 2);
    }

    #[test]
    fn multiple_documents_are_returned() {
        assert_eq!(parse_documents("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert_eq!(parse_documents("# only a comment\n").unwrap().len(), 0);
    }
}
