//! Descriptors as NEPHELE partners publish them, brought to the shape the
//! schema checks (information model 0.4.0), each translation with a
//! warning. Runs on the raw document before the schema, so everything
//! after it sees one model.
//!
//! - Information model 0.3.0 (NTUA's VO examples): `hdaGraphIntent` as a
//!   string becomes `hdaGraphIntent: {description: <the string>}`;
//!   `intent.network: ""` (any string) is dropped; `intent.resources:
//!   <class>` becomes `intent.compute` with that class for `cpu` and `ram`
//!   and the nearest storage class (`light` → `small`). One warning per
//!   file.
//! - Dependencies written under `intent.network.connectionPoints` join
//!   `intent.connectionPoints` (both lists merged, first occurrence kept).
//!   One warning per file naming the canonical place.
//!
//! The original SMO read these files without checks; it read neither
//! `resources` nor a string intent, so the translation only keeps their
//! meaning visible. Positions of moved values fall back to the nearest
//! field that still exists (the list they joined).

use crate::validate::findings::{Finding, Severity};
use crate::validate::yaml::Document;
use serde_json::{Map, Value};

/// The storage class for a 0.3.0 `resources` class (storage has no `light`).
fn storage_class(class: &str) -> &str {
    match class {
        "light" => "small",
        other => other,
    }
}

/// Translates `doc` in place; returns the warnings about it.
pub fn normalise(doc: &mut Document, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut older: Vec<String> = Vec::new();
    let mut moved_points: Option<String> = None;
    let im_old = doc
        .value
        .pointer("/hdaGraph/imVersion")
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .is_some_and(|v| v.starts_with("0.3"));

    let Some(graph) = doc.value.get_mut("hdaGraph").and_then(Value::as_object_mut) else {
        return out;
    };
    if let Some(Value::String(text)) = graph.get("hdaGraphIntent") {
        let mut intent = Map::new();
        intent.insert("description".into(), Value::String(text.clone()));
        graph.insert("hdaGraphIntent".into(), Value::Object(intent));
        older.push("`hdaGraphIntent` as text became `hdaGraphIntent.description`".into());
    }
    let services = graph
        .get_mut("services")
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut().enumerate().collect::<Vec<_>>())
        .unwrap_or_default();
    for (i, service) in services {
        let Some(intent) = service
            .pointer_mut("/deployment/intent")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if matches!(intent.get("network"), Some(Value::String(_))) {
            intent.remove("network");
            older.push(format!(
                "services[{i}]: `intent.network` as text was dropped"
            ));
        }
        if let Some(Value::String(class)) = intent.get("resources").cloned() {
            intent.remove("resources");
            if intent.contains_key("compute") {
                older.push(format!(
                    "services[{i}]: `intent.resources: {class}` was dropped in favour of `intent.compute`"
                ));
            } else {
                let compute = serde_json::json!({
                    "cpu": class,
                    "ram": class,
                    "storage": storage_class(&class),
                });
                intent.insert("compute".into(), compute);
                older.push(format!(
                    "services[{i}]: `intent.resources: {class}` became `intent.compute` (cpu {class}, ram {class}, storage {})",
                    storage_class(&class)
                ));
            }
        }
        let from_network = intent
            .get("network")
            .and_then(|n| n.get("connectionPoints"))
            .is_some_and(Value::is_array)
            && intent.get("connectionPoints").is_none_or(Value::is_array);
        if from_network {
            let points = intent
                .get_mut("network")
                .and_then(Value::as_object_mut)
                .and_then(|n| n.remove("connectionPoints"))
                .unwrap_or_default();
            let list = intent
                .entry("connectionPoints")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let (Value::Array(into), Value::Array(extra)) = (list, points) {
                for p in extra {
                    if !into.contains(&p) {
                        into.push(p);
                    }
                }
            }
            moved_points.get_or_insert_with(|| {
                format!("/hdaGraph/services/{i}/deployment/intent/network/connectionPoints")
            });
        }
    }

    if let Some(pointer) = moved_points {
        out.push(doc.finding(
            file,
            &pointer,
            Severity::Warning,
            "connection points under `intent.network.connectionPoints` are read as `intent.connectionPoints` (merged with it); the canonical place is `intent.connectionPoints`",
        ));
    }
    if !older.is_empty() {
        let what = if im_old {
            "this descriptor uses the older information model 0.3.0"
        } else {
            "this descriptor uses shapes of the older information model 0.3.0"
        };
        out.push(doc.finding(
            file,
            "/hdaGraph/imVersion",
            Severity::Warning,
            format!("{what}; read as 0.4.0: {}", older.join("; ")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_document;

    fn normalised(text: &str) -> (Value, Vec<Finding>) {
        let mut doc = parse_document(text, "f.yaml").unwrap().unwrap();
        let found = normalise(&mut doc, "f.yaml");
        (doc.value, found)
    }

    /// The 0.3.0 translation table: each older shape and what it becomes.
    #[test]
    fn the_older_information_model_is_translated_field_by_field() {
        let cases: &[(&str, &str, Value)] = &[
            (
                "hdaGraphIntent: \"Low latency\"",
                "/hdaGraph/hdaGraphIntent",
                serde_json::json!({"description": "Low latency"}),
            ),
            (
                "services: [{id: a, deployment: {intent: {network: \"\"}}}]",
                "/hdaGraph/services/0/deployment/intent",
                serde_json::json!({}),
            ),
            (
                "services: [{id: a, deployment: {intent: {resources: small}}}]",
                "/hdaGraph/services/0/deployment/intent/compute",
                serde_json::json!({"cpu": "small", "ram": "small", "storage": "small"}),
            ),
            (
                "services: [{id: a, deployment: {intent: {resources: light}}}]",
                "/hdaGraph/services/0/deployment/intent/compute",
                serde_json::json!({"cpu": "light", "ram": "light", "storage": "small"}),
            ),
            (
                "services: [{id: a, deployment: {intent: {resources: large}}}]",
                "/hdaGraph/services/0/deployment/intent/compute",
                serde_json::json!({"cpu": "large", "ram": "large", "storage": "large"}),
            ),
            (
                "services: [{id: a, deployment: {intent: {resources: large, compute: {cpu: light}}}}]",
                "/hdaGraph/services/0/deployment/intent",
                serde_json::json!({"compute": {"cpu": "light"}}),
            ),
        ];
        for (body, pointer, want) in cases {
            let text = format!("hdaGraph:\n  imVersion: 0.3.0\n  {body}\n");
            let (value, found) = normalised(&text);
            assert_eq!(value.pointer(pointer), Some(want), "{body}");
            assert_eq!(found.len(), 1, "{body}: {found:?}");
            assert_eq!(found[0].severity, Severity::Warning);
            assert!(
                found[0].message.contains("older information model 0.3.0"),
                "{}",
                found[0].message
            );
        }
    }

    #[test]
    fn a_current_descriptor_is_left_alone() {
        let text = "hdaGraph:\n  imVersion: 0.4.0\n  hdaGraphIntent: {useStaticPlacement: true}\n  services: [{id: a, deployment: {intent: {connectionPoints: [b], network: {latencies: []}}}}]\n";
        let before = parse_document(text, "f").unwrap().unwrap().value;
        let (after, found) = normalised(text);
        assert_eq!(after, before);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn network_connection_points_join_the_canonical_list_with_one_warning() {
        let text = "hdaGraph:\n  services:\n  - id: a\n    deployment:\n      intent:\n        connectionPoints: [b]\n        network:\n          connectionPoints: [b, c]\n  - id: b\n    deployment:\n      intent:\n        network: {connectionPoints: [a]}\n";
        let (value, found) = normalised(text);
        assert_eq!(
            value.pointer("/hdaGraph/services/0/deployment/intent/connectionPoints"),
            Some(&serde_json::json!(["b", "c"]))
        );
        assert_eq!(
            value.pointer("/hdaGraph/services/1/deployment/intent/connectionPoints"),
            Some(&serde_json::json!(["a"]))
        );
        assert_eq!(
            value.pointer("/hdaGraph/services/0/deployment/intent/network"),
            Some(&serde_json::json!({}))
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 8, "{:?}", found[0]);
        assert!(
            found[0]
                .message
                .contains("canonical place is `intent.connectionPoints`")
        );
    }

    #[test]
    fn a_network_list_that_is_not_a_list_is_left_for_the_schema() {
        let text = "hdaGraph:\n  services: [{id: a, deployment: {intent: {network: {connectionPoints: b}}}}]\n";
        let (value, found) = normalised(text);
        assert_eq!(
            value.pointer("/hdaGraph/services/0/deployment/intent/network/connectionPoints"),
            Some(&serde_json::json!("b"))
        );
        assert!(found.is_empty());
    }
}
