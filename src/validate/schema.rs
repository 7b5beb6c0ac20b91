//! The embedded JSON Schemas (files in `schemas/`) and their use.
//!
//! The schemas are the single source of truth for structure. They are
//! compiled once, without any remote reference resolution. Besides the
//! validator's errors this module reports unknown keys as warnings: an object
//! schema that declares `properties` and no `additionalProperties` is closed
//! for this check, and an unknown key there gets a "did you mean" hint. The
//! custom keyword `errorMessage` in a subschema replaces the validator's
//! generic message for errors raised by that subschema.

use super::findings::{Finding, Severity, child};
use super::suggest::closest;
use super::yaml::Document;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::sync::LazyLock;

/// The kinds of file smo reads, one schema each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Hdag,
    /// A descriptor file that references an HDAR artifact (`hdaGraphRef`).
    HdagRef,
    Cluster,
    Settings,
    Inventory,
    Config,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 6] = [
        SchemaKind::Hdag,
        SchemaKind::HdagRef,
        SchemaKind::Cluster,
        SchemaKind::Settings,
        SchemaKind::Inventory,
        SchemaKind::Config,
    ];

    /// The schema's file name in `schemas/`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Hdag => "hdag.schema.json",
            SchemaKind::HdagRef => "hdag-ref.schema.json",
            SchemaKind::Cluster => "cluster.schema.json",
            SchemaKind::Settings => "settings.schema.json",
            SchemaKind::Inventory => "inventory.schema.json",
            SchemaKind::Config => "config.schema.json",
        }
    }

    /// The schema text embedded in the binary.
    pub fn source(self) -> &'static str {
        match self {
            SchemaKind::Hdag => include_str!("../../schemas/hdag.schema.json"),
            SchemaKind::HdagRef => include_str!("../../schemas/hdag-ref.schema.json"),
            SchemaKind::Cluster => include_str!("../../schemas/cluster.schema.json"),
            SchemaKind::Settings => include_str!("../../schemas/settings.schema.json"),
            SchemaKind::Inventory => include_str!("../../schemas/inventory.schema.json"),
            SchemaKind::Config => include_str!("../../schemas/config.schema.json"),
        }
    }
}

struct Compiled {
    raw: Value,
    validator: jsonschema::Validator,
}

/// Compiled once per process; immutable afterwards.
static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    SchemaKind::ALL
        .iter()
        .map(|kind| {
            // The schemas are part of the binary; a broken one is a build
            // defect caught by this crate's tests, not a runtime condition.
            let raw: Value = serde_json::from_str(kind.source())
                .unwrap_or_else(|e| panic!("embedded {} is not JSON: {e}", kind.file_name()));
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&raw)
                .unwrap_or_else(|e| panic!("embedded {} does not compile: {e}", kind.file_name()));
            Compiled { raw, validator }
        })
        .collect()
});

fn compiled(kind: SchemaKind) -> &'static Compiled {
    let index = SchemaKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default();
    &COMPILED[index]
}

/// True when `value` satisfies the schema (unknown keys do not matter).
pub fn is_valid(kind: SchemaKind, value: &Value) -> bool {
    compiled(kind).validator.is_valid(value)
}

/// Validates a document: schema errors, then unknown-key warnings.
pub fn check(kind: SchemaKind, doc: &Document, file: &str) -> Vec<Finding> {
    let schema = compiled(kind);
    let mut out = Vec::new();
    for err in schema.validator.iter_errors(&doc.value) {
        let at = err.instance_path().as_str().to_owned();
        let node = schema_node(&schema.raw, err.schema_path().as_str());
        let (pointer, message) = match err.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                (child(&at, name), format!("missing required field `{name}`"))
            }
            kind => {
                let custom = node
                    .and_then(|n| n.get("errorMessage"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let message = custom.unwrap_or_else(|| match kind {
                    ValidationErrorKind::Type { .. } => format!(
                        "expected {}, found {}",
                        expected_types(node),
                        type_name(err.instance())
                    ),
                    ValidationErrorKind::Enum { options } => format!(
                        "must be one of {} (found {})",
                        list(options),
                        err.instance()
                    ),
                    ValidationErrorKind::Minimum { limit } => {
                        format!("must be at least {limit} (found {})", err.instance())
                    }
                    ValidationErrorKind::ExclusiveMinimum { limit } => {
                        format!("must be greater than {limit} (found {})", err.instance())
                    }
                    ValidationErrorKind::Maximum { limit } => {
                        format!("must be at most {limit} (found {})", err.instance())
                    }
                    ValidationErrorKind::UniqueItems => {
                        "lists the same entry twice; remove the duplicate".to_owned()
                    }
                    _ => err.to_string(),
                });
                (at.clone(), message)
            }
        };
        out.push(Finding::new(
            file,
            doc.position(&at),
            pointer,
            Severity::Error,
            message,
        ));
    }
    unknown_keys(
        &schema.raw,
        &schema.raw,
        &doc.value,
        "",
        doc,
        file,
        &mut out,
    );
    // One custom message can answer several failed keywords of one node
    // (`trigger: null` is both not an object and neither of `oneOf`).
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    out
}

/// The subschema that raised an error: the keyword location minus its last
/// segment (the keyword itself), following `$ref`s on the way.
fn schema_node<'a>(root: &'a Value, keyword_location: &str) -> Option<&'a Value> {
    let mut segments: Vec<String> = keyword_location
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    segments.pop();
    let mut node = root;
    for seg in segments {
        node = if seg == "$ref" {
            resolve_ref(root, node)?
        } else {
            match node {
                Value::Object(m) => m.get(&seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            }
        };
    }
    Some(node)
}

fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    let target = node.get("$ref")?.as_str()?.strip_prefix('#')?;
    root.pointer(target)
}

/// Follows `$ref` chains to the subschema that holds keywords.
fn deref<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match resolve_ref(root, node) {
            Some(next) => node = next,
            None => break,
        }
    }
    node
}

fn expected_types(node: Option<&Value>) -> String {
    match node.and_then(|n| n.get("type")) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "another type".into(),
    }
}

fn type_name(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn list(options: &Value) -> String {
    match options {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Declared properties of an object subschema (merging `anyOf`/`oneOf`
/// branches), or `None` when the object is open.
fn declared_properties<'a>(
    root: &'a Value,
    schema: &'a Value,
) -> Option<Vec<(&'a str, &'a Value)>> {
    let schema = deref(root, schema);
    if schema.get("additionalProperties").is_some() {
        return None;
    }
    let mut props: Vec<(&str, &Value)> = Vec::new();
    if let Some(Value::Object(m)) = schema.get("properties") {
        props.extend(m.iter().map(|(k, v)| (k.as_str(), v)));
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator) {
            for branch in branches {
                if let Some(Value::Object(m)) = deref(root, branch).get("properties") {
                    props.extend(m.iter().map(|(k, v)| (k.as_str(), v)));
                }
            }
        }
    }
    (!props.is_empty()).then_some(props)
}

fn items_schema<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    deref(root, schema).get("items")
}

fn unknown_keys(
    root: &Value,
    schema: &Value,
    value: &Value,
    pointer: &str,
    doc: &Document,
    file: &str,
    out: &mut Vec<Finding>,
) {
    match value {
        Value::Object(map) => {
            let schema = deref(root, schema);
            if let Some(props) = declared_properties(root, schema) {
                for (key, v) in map {
                    let at = child(pointer, key);
                    match props.iter().find(|(k, _)| *k == key) {
                        Some((_, sub)) => unknown_keys(root, sub, v, &at, doc, file, out),
                        None => {
                            let known = props.iter().map(|(k, _)| *k);
                            let message = match closest(key, known) {
                                Some(s) => {
                                    format!("unknown key `{key}` is ignored; did you mean `{s}`?")
                                }
                                None => format!(
                                    "unknown key `{key}` is ignored; known keys here: {}",
                                    props.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                                ),
                            };
                            out.push(Finding::new(
                                file,
                                doc.key_position(&at),
                                at,
                                Severity::Warning,
                                message,
                            ));
                        }
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (key, v) in map {
                    unknown_keys(root, sub, v, &child(pointer, key), doc, file, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = items_schema(root, schema) {
                for (i, v) in items.iter().enumerate() {
                    unknown_keys(
                        root,
                        sub,
                        v,
                        &child(pointer, &i.to_string()),
                        doc,
                        file,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::yaml::parse_documents;

    #[test]
    fn every_embedded_schema_compiles() {
        for kind in SchemaKind::ALL {
            // Touching the validator compiles it (and panics if broken).
            let _ = is_valid(kind, &Value::Null);
        }
    }

    #[test]
    fn unknown_keys_are_warnings_with_suggestions() {
        let doc = parse_documents("cluster:\n  name: a\n  carbonIntensty: 3\n")
            .unwrap()
            .remove(0);
        let f = check(SchemaKind::Cluster, &doc, "clusters/a.yaml");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].pointer, "/cluster/carbonIntensty");
        assert_eq!(f[0].line, 3);
        assert!(f[0].message.contains("did you mean `carbonIntensity`"));
    }

    #[test]
    fn custom_error_messages_replace_generic_ones() {
        let doc = parse_documents("cluster:\n  name: Bad_Name\n")
            .unwrap()
            .remove(0);
        let f = check(SchemaKind::Cluster, &doc, "c.yaml");
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("Karmada cluster name"),
            "{}",
            f[0].message
        );
        assert_eq!((f[0].line, f[0].column), (2, 9));
    }

    #[test]
    fn a_message_is_reported_once_however_many_keywords_fail() {
        let text = "hdaGraph:\n  imVersion: 0.4.0\n  id: g\n  services:\n    - id: s\n      deployment:\n        trigger:\n      artifact: {ociImage: oci://r/c, ociConfig: {type: App, implementer: HELM}}\n";
        let doc = parse_documents(text).unwrap().remove(0);
        let f: Vec<_> = check(SchemaKind::Hdag, &doc, "g.yaml")
            .into_iter()
            .filter(|f| f.message.contains("exactly one of"))
            .collect();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].line, 7, "{f:?}");
    }

    #[test]
    fn open_maps_are_not_checked_for_unknown_keys() {
        let doc = parse_documents("cluster:\n  name: a\n  latencyMs: {b: 3, c: 4}\n")
            .unwrap()
            .remove(0);
        assert!(check(SchemaKind::Cluster, &doc, "c.yaml").is_empty());
    }
}
