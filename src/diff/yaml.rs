//! The two sides of a diff as comparable text. Pure.
//!
//! Helm's own text depends on the chart's formatting, and `helm template`
//! prints hooks that `helm get manifest` leaves out; so both sides are
//! read into objects and printed again the same way: hooks dropped,
//! objects sorted by kind, namespace and name, keys sorted, block YAML.
//! Values are printed the same way.
//!
//! Secrets: a diff ends up in CI logs, so every Secret's `data` and
//! `stringData` values are hidden on both sides; a value that differs
//! shows as [`CHANGED`] on the desired side, so the line still appears in
//! the diff without the value.

use crate::adapters::manifest::{self, ManifestError, REDACTED};
use serde_json::Value;
use std::fmt::Write;

/// A hidden Secret value that differs from the other side's.
pub const CHANGED: &str = "<redacted, changed>";

/// A value as block YAML, keys sorted (serde_json's maps are), ending with
/// a newline. Strings are plain when YAML 1.2 reads them back as the same
/// string, a literal block when multi-line, JSON-quoted otherwise.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (k, v) in m {
        pad(out, indent);
        out.push_str(&string(k, indent, false));
        out.push(':');
        nested(out, v, indent);
    }
}

fn seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        pad(out, indent);
        out.push('-');
        match v {
            // A map in a list starts on the dash's line.
            Value::Object(m) if !m.is_empty() => {
                let mut inner = String::new();
                map(&mut inner, m, indent + 2);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            _ => nested(out, v, indent),
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, or a block
/// below, indented.
fn nested(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::String(s) => string(s, indent, true),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}

/// Words YAML 1.2's core schema reads as something other than a string.
const RESERVED: &[&str] = &[
    "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL",
];

fn string(s: &str, indent: usize, block: bool) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !RESERVED.contains(&s);
    if plain {
        return s.to_owned();
    }
    let lines_ok = !s.starts_with([' ', '\n']) && !s.contains(['\r', '\t']);
    if block && s.contains('\n') && lines_ok && !s.ends_with("\n\n") {
        let mut out = String::from(if s.ends_with('\n') { "|" } else { "|-" });
        for line in s.trim_end_matches('\n').split('\n') {
            out.push('\n');
            if !line.is_empty() {
                pad(&mut out, indent);
                out.push_str(line);
            }
        }
        return out;
    }
    serde_json::to_string(s).unwrap_or_default()
}

/// Whether an object is a helm hook (not part of the release manifest).
fn is_hook(o: &Value) -> bool {
    o["metadata"]["annotations"]["helm.sh/hook"].is_string()
}

fn identity(o: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"]),
    )
}

/// A manifest's objects (hooks dropped), sorted.
pub fn objects(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut objects: Vec<Value> = manifest::parse(text)?
        .into_iter()
        .filter(|o| !is_hook(o))
        .collect();
    objects.sort_by_key(identity);
    Ok(objects)
}

/// Objects as text, each after a `---` and a comment naming it. With
/// `other`, Secret values are hidden (see the module's note); without,
/// they are shown (for comparing, never for printing).
pub fn print(objects: &[Value], other: Option<&[Value]>, show_changes: bool) -> String {
    let mut out = String::new();
    for o in objects {
        let (kind, namespace, name) = identity(o);
        let shown = match other {
            Some(others) => {
                let twin = others.iter().find(|t| identity(t) == identity(o));
                hide(o, twin, show_changes)
            }
            None => o.clone(),
        };
        let ns = if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}/")
        };
        let _ = write!(out, "---\n# {kind} {ns}{name}\n{}", to_yaml(&shown));
    }
    out
}

/// A copy of `o` with its Secret values hidden; with `show_changes`, those
/// that differ from `twin`'s (or that `twin` lacks) read [`CHANGED`].
fn hide(o: &Value, twin: Option<&Value>, show_changes: bool) -> Value {
    let mut o = o.clone();
    if o["kind"] != "Secret" {
        return o;
    }
    for field in ["data", "stringData"] {
        let theirs = twin.map(|t| &t[field]);
        match o.get_mut(field) {
            Some(Value::Object(m)) => {
                for (k, v) in m.iter_mut() {
                    let same = theirs.is_some_and(|t| t.get(k) == Some(v));
                    let marker = if show_changes && !same {
                        CHANGED
                    } else {
                        REDACTED
                    };
                    *v = Value::String(marker.to_owned());
                }
            }
            Some(other) if !other.is_null() => *other = Value::String(REDACTED.to_owned()),
            _ => {}
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_block_yaml_that_reads_back_the_same() {
        let v = json!({
            "clustersAffinity": ["lyon-gpu"],
            "image": {"tag": "1.2", "pullPolicy": "IfNotPresent"},
            "empty": {}, "none": [], "n": 3, "on": true, "nothing": null,
            "word": "true", "num": "10", "spaced": "a b", "neg": "-x",
            "script": "line one\nline two\n", "tail": "a\nb",
            "items": [{"name": "a", "port": 80}, "x", ["nested"]],
        });
        let text = to_yaml(&v);
        let back = crate::validate::yaml::parse_documents(&text).unwrap();
        assert_eq!(back[0].value, v, "{text}");
        assert!(text.contains("clustersAffinity:\n  - lyon-gpu\n"), "{text}");
        assert!(
            text.contains("image:\n  pullPolicy: IfNotPresent\n  tag: \"1.2\"\n"),
            "{text}"
        );
        assert!(text.contains("word: \"true\"\n"), "{text}");
        assert!(
            text.contains("script: |\n  line one\n  line two\n"),
            "{text}"
        );
        assert!(text.contains("  - name: a\n    port: 80\n"), "{text}");
    }

    const LIVE: &str = "---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 1}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2, user: admin}
";

    #[test]
    fn hooks_are_dropped_and_objects_sorted_whatever_the_formatting() {
        let desired = "apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  user: admin
  password: hunter2
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {helm.sh/hook: pre-install}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
";
        let (a, b) = (objects(LIVE).unwrap(), objects(desired).unwrap());
        assert_eq!(print(&a, None, false), print(&b, None, false));
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["kind"], "Deployment");
    }

    #[test]
    fn secret_values_never_print_and_a_changed_one_still_shows() {
        let live = objects(LIVE).unwrap();
        let desired = objects(&LIVE.replace("hunter2", "s3cret")).unwrap();
        let shown_live = print(&live, Some(&desired), false);
        let shown_desired = print(&desired, Some(&live), true);
        for text in [&shown_live, &shown_desired] {
            assert!(
                !text.contains("hunter2") && !text.contains("s3cret"),
                "{text}"
            );
        }
        assert!(
            shown_desired.contains(&format!("password: \"{CHANGED}\"")),
            "{shown_desired}"
        );
        assert!(
            shown_desired.contains(&format!("user: \"{REDACTED}\"")),
            "{shown_desired}"
        );
        assert!(
            shown_live.contains(&format!("password: \"{REDACTED}\"")),
            "{shown_live}"
        );
        // Unchanged secrets print the same on both sides.
        assert_eq!(
            print(&live, Some(&live), true),
            print(&live, Some(&live), false)
        );
    }
}
