//! YAML documents with source positions.
//!
//! Descriptors are parsed once, from `saphyr-parser`'s event stream, into a
//! `serde_json::Value` plus the source position of each node. The
//! value feeds both the JSON Schema validator and the typed model (through
//! `serde_json::from_value`), so the schema and the model always see the same
//! document, and every finding can name the line of the field it is about.
//!
//! Scalars resolve by the YAML 1.2 core schema (`True`, `TRUE` and `true` are
//! booleans; `yes`/`no` are strings). Quoted scalars and `!!str` are always
//! strings. Duplicate keys are an error, never a silent overwrite. Merge keys
//! (`<<`, a YAML 1.1 feature) are not expanded.

use super::findings::{Finding, Pos, Severity};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// One YAML document: its value and where each node came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// The positions, shaped like `value` (`None` for an empty document).
    /// A tree rather than a map from pointer to position: a map holds one
    /// pointer per node, and pointers grow with depth and key length, so
    /// its size would be quadratic in the input.
    root: Option<Node>,
}

/// Where one node came from, and its children's positions.
#[derive(Debug, Clone)]
struct Node {
    pos: Pos,
    /// The key that introduces this node, for a mapping's value.
    key: Option<Pos>,
    children: Children,
}

/// A collection's children; an alias is a leaf (its contents have no
/// position of their own), as is a scalar.
#[derive(Debug, Clone)]
enum Children {
    Leaf,
    Seq(Vec<Node>),
    Map(HashMap<String, Node>),
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
        match self.deepest(pointer) {
            Some((node, _)) => match (&node.children, node.key) {
                (Children::Seq(_) | Children::Map(_), Some(key)) => key,
                _ => node.pos,
            },
            None => Pos { line: 1, column: 1 },
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
        match self.deepest(pointer) {
            Some((node, true)) => node.key.unwrap_or(node.pos),
            _ => self.position(pointer),
        }
    }

    /// The node at `pointer`, or its nearest ancestor that exists; `true`
    /// when it is the node itself.
    fn deepest(&self, pointer: &str) -> Option<(&Node, bool)> {
        let mut node = self.root.as_ref()?;
        if pointer.is_empty() {
            return Some((node, true));
        }
        let tokens = pointer.strip_prefix('/')?;
        for token in tokens.split('/') {
            let next = match &node.children {
                Children::Seq(items) => token
                    .parse::<usize>()
                    .ok()
                    .filter(|i| i.to_string() == token)
                    .and_then(|i| items.get(i)),
                Children::Map(entries) => entries.get(&unescape_token(token)),
                Children::Leaf => None,
            };
            match next {
                Some(n) => node = n,
                None => return Some((node, false)),
            }
        }
        Some((node, true))
    }
}

/// Reverses [`super::findings::escape_token`].
fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// How deeply collections may nest. Kubernetes objects stay far below
/// (the deepest CRD schemas nest about 40 levels); without a bound, a
/// small file of `- - - …` would build a value that every recursive
/// consumer (the schema validator, serde, drift, even dropping it)
/// walks until the stack overflows. serde_json's default, which the
/// webhook parser uses, is the same.
pub const MAX_DEPTH: usize = 128;

/// How much aliases may copy into one document, in nodes plus bytes of
/// text. An alias is a copy of its anchor's value, so a few lines of
/// anchors that each alias the previous one several times ("billion
/// laughs") would expand to more memory than any machine has; real files
/// copy a few blocks of settings, far below this.
pub const MAX_ALIAS_EXPANSION: usize = 1 << 20;

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

/// A collection being built.
struct Frame {
    /// `Value::Array` or `Value::Object`.
    value: Value,
    node: Node,
    anchor: usize,
    /// For a mapping: the key read, waiting for its value.
    key: Option<(String, Pos)>,
    /// Nodes plus bytes of text so far (see [`MAX_ALIAS_EXPANSION`]).
    weight: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Each anchor's value and weight.
    anchors: HashMap<usize, (Value, usize)>,
    root: Option<(Value, Node)>,
    /// Weight copied by aliases in this document.
    expanded: usize,
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

    /// Whether the next node is a mapping key.
    fn expects_key(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|f| f.value.is_object() && f.key.is_none())
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = self.within(pos_of(&span));
        match event {
            Event::DocumentStart(_) => {
                self.root = None;
                self.anchors.clear();
                self.expanded = 0;
            }
            Event::DocumentEnd => {
                let (value, root) = match self.root.take() {
                    Some((value, node)) => (value, Some(node)),
                    None => (Value::Null, None),
                };
                self.docs.push(Document { value, root });
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.expects_key() {
                    return self.key(text.into_owned(), pos);
                }
                let value = resolve_scalar(&text, style, tag.as_deref());
                let weight = 1 + text.len();
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), weight));
                }
                self.insert(value, leaf(pos), weight);
            }
            Event::Alias(id) => {
                let (value, weight) = self.anchors.get(&id).cloned().ok_or(YamlError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                if self.expects_key() {
                    return match value {
                        Value::String(s) => self.key(s, pos),
                        _ => Err(complex_key(pos)),
                    };
                }
                self.expanded = self.expanded.saturating_add(weight);
                if self.expanded > MAX_ALIAS_EXPANSION {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "aliases copy more than {MAX_ALIAS_EXPANSION} nodes and bytes into this document; write the repeated content out, or alias less of it"
                        ),
                    });
                }
                self.insert(value, leaf(pos), weight);
            }
            Event::SequenceStart(anchor, _) => {
                self.open(
                    pos,
                    anchor,
                    Value::Array(Vec::new()),
                    Children::Seq(Vec::new()),
                )?;
            }
            Event::MappingStart(anchor, _) => {
                self.open(
                    pos,
                    anchor,
                    Value::Object(Map::new()),
                    Children::Map(HashMap::new()),
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                if frame.anchor > 0 {
                    self.anchors
                        .insert(frame.anchor, (frame.value.clone(), frame.weight));
                }
                self.insert(frame.value, frame.node, frame.weight);
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(
        &mut self,
        pos: Pos,
        anchor: usize,
        value: Value,
        children: Children,
    ) -> Result<(), YamlError> {
        if self.expects_key() {
            return Err(complex_key(pos));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                pos,
                message: format!(
                    "collections nest more than {MAX_DEPTH} levels deep here; no smo file or Kubernetes object needs that many"
                ),
            });
        }
        self.stack.push(Frame {
            value,
            node: Node {
                pos,
                key: None,
                children,
            },
            anchor,
            key: None,
            weight: 1,
        });
        Ok(())
    }

    fn key(&mut self, key: String, pos: Pos) -> Result<(), YamlError> {
        if let Some(frame) = self.stack.last_mut() {
            if frame.value.get(&key).is_some() {
                return Err(YamlError {
                    pos,
                    message: format!("duplicate key `{key}`: remove one of them"),
                });
            }
            frame.weight = frame.weight.saturating_add(1 + key.len());
            frame.key = Some((key, pos));
        }
        Ok(())
    }

    fn insert(&mut self, value: Value, mut node: Node, weight: usize) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some((value, node));
            return;
        };
        frame.weight = frame.weight.saturating_add(weight);
        match (&mut frame.value, &mut frame.node.children) {
            (Value::Array(items), Children::Seq(nodes)) => {
                items.push(value);
                nodes.push(node);
            }
            (Value::Object(map), Children::Map(nodes)) => {
                if let Some((k, key_pos)) = frame.key.take() {
                    node.key = Some(key_pos);
                    nodes.insert(k.clone(), node);
                    map.insert(k, value);
                }
            }
            _ => {}
        }
    }
}

fn leaf(pos: Pos) -> Node {
    Node {
        pos,
        key: None,
        children: Children::Leaf,
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
    fn aliases_that_copy_exponentially_are_refused() {
        // Nine levels of nine aliases (600 bytes) copied 9^9 strings until
        // the process ran out of memory.
        let mut src = String::from("a0: &a0 [xxxxxxxx, xxxxxxxx, xxxxxxxx]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse_documents(&src).unwrap_err();
        assert!(err.message.contains("aliases copy more than"), "{err}");
        assert!(err.pos.line > 1, "names the alias that crossed the limit");
        // Copying a block a few times is what anchors are for.
        let d = one("base: &b {cpu: small, ram: large}\na: *b\nb: *b\nc: [*b, *b]\n");
        assert_eq!(d.value["c"][1]["ram"], "large");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        // `- - - …` nests a sequence per two bytes; unbounded, a small file
        // overflowed the stack of whatever walked the value.
        let deep = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        let err = parse_documents(&deep).unwrap_err();
        assert!(err.message.contains("nest more than 128 levels"), "{err}");
        let flow = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_documents(&flow).is_err());
        let ok = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        assert!(parse_documents(&ok).is_ok());
    }

    #[test]
    fn positions_stay_linear_in_the_input() {
        // Positions were kept per JSON pointer, and a long (explicit) key
        // above many nodes repeated itself in each of their pointers:
        // quadratic memory and time.
        let key = "k".repeat(64 * 1024);
        let src = format!("? {key}\n:\n{}", "  - x\n".repeat(10_000));
        let d = one(&src);
        assert_eq!(d.value[&key].as_array().map(Vec::len), Some(10_000));
        assert_eq!(d.position(&format!("/{key}/9999")).line, 10_002);
        assert_eq!(
            d.position(&format!("/{key}/10000")).line,
            1,
            "shown at its key"
        );
    }

    #[test]
    fn positions_resolve_escaped_and_numeric_tokens_exactly() {
        let d = one("a~b:\n  c/d: [x, y]\n");
        assert_eq!(
            d.position("/a~0b/c~1d/1"),
            Pos {
                line: 2,
                column: 12
            }
        );
        // Array indexes have no leading zeros (RFC 6901).
        assert_eq!(d.position("/a~0b/c~1d/01"), d.position("/a~0b/c~1d"));
        assert_eq!(d.key_position("/a~0b/c~1d"), Pos { line: 2, column: 3 });
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
