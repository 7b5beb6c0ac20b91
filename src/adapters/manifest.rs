//! Kubernetes manifests as helm prints them (`helm get manifest`, `helm
//! template`): splitting the multi-document YAML into objects, naming them,
//! and finding drift between what a manifest sets and what is live.
//!
//! Pure: no I/O. The YAML reader is the crate's own
//! ([`crate::validate::yaml`], YAML 1.2 core schema, duplicate keys
//! refused), so manifests and descriptors resolve scalars the same way.
//!
//! Drift is judged only on the fields the desired object sets: the API
//! server adds defaults, status and its own metadata, and other writers
//! (controllers, the scaler) may own other fields; none of that is drift.
//!
//! Secrets never leave through status: [`redact`] gives the form of a
//! manifest that status may show — every Secret's `data` and `stringData`
//! values replaced by [`REDACTED`], and a summary with a SHA-256 digest per
//! object so that an operator still sees that a Secret changed.

use crate::adapters::karmada::ObjectRef;
use crate::validate::yaml::parse_documents;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "the manifest is not valid YAML at line {line}, column {column}: {message}; check the chart's templates (`helm template`)"
    )]
    Yaml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "document {index} of the manifest is not a Kubernetes object (a mapping with apiVersion and kind); check the chart's templates"
    )]
    NotAnObject { index: usize },
}

/// Splits a multi-document manifest into its objects, in order. Empty
/// documents (helm leaves one per template that renders to nothing, often
/// only a `# Source:` comment) are skipped; a `kind: List` document is
/// replaced by its items, and so is a List among them, so that every
/// object (a Secret in a nested List included) is seen, and redacted, as
/// itself.
pub fn parse(manifest: &str) -> Result<Vec<Value>, ManifestError> {
    if let Some(objects) = parse_canonical(manifest) {
        return Ok(objects);
    }
    let docs = parse_documents(manifest).map_err(|e| ManifestError::Yaml {
        line: e.pos.line,
        column: e.pos.column,
        message: e.message,
    })?;
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let value = doc.value;
        if value.is_null() || value.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        flatten(value, index, &mut out)?;
    }
    Ok(out)
}

/// The first line of a manifest in smo's [`canonical`] form.
const CANONICAL_HEADER: &str = "# smo: one compact JSON object per document\n";

/// The objects of a manifest (as [`parse`] returns them) written the way
/// smo records a release's manifest: still multi-document YAML, as helm's
/// own text is, but one compact JSON object per document, so that the
/// checks of every resync read it back with a JSON parser (an order of
/// magnitude faster than YAML with positions).
pub fn canonical(objects: &[Value]) -> String {
    let mut text = String::from(CANONICAL_HEADER);
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_json::to_string(o).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Whether a manifest text is in smo's [`canonical`] form.
pub fn is_canonical(manifest: &str) -> bool {
    manifest.starts_with(CANONICAL_HEADER)
}

/// A manifest in [`canonical`] form; `None` for any other text (helm's own,
/// or a canonical text that was altered), which the YAML reader takes.
/// Compact JSON has no raw line break, so documents split on `---` lines.
fn parse_canonical(manifest: &str) -> Option<Vec<Value>> {
    let body = manifest.strip_prefix(CANONICAL_HEADER)?;
    let mut out = Vec::new();
    for doc in body.split("---\n").skip(1) {
        let value: Value = serde_json::from_str(doc).ok()?;
        if !is_object(&value) || value["kind"] == "List" {
            return None;
        }
        out.push(value);
    }
    Some(out)
}

/// Pushes `value`, or the items of a List. Recursion is bounded by the
/// YAML reader's nesting limit.
fn flatten(mut value: Value, index: usize, out: &mut Vec<Value>) -> Result<(), ManifestError> {
    if !is_object(&value) {
        return Err(ManifestError::NotAnObject { index });
    }
    if value["kind"] == "List"
        && let Some(Value::Array(items)) = value.get_mut("items")
    {
        for item in std::mem::take(items) {
            flatten(item, index, out)?;
        }
    } else {
        out.push(value);
    }
    Ok(())
}

fn is_object(v: &Value) -> bool {
    v.is_object() && v["apiVersion"].is_string() && v["kind"].is_string()
}

/// Kinds that are cluster-scoped in every Kubernetes and Karmada release.
/// Only used to leave their namespace empty; the Karmada adapter ignores a
/// namespace on cluster-scoped kinds anyway (it asks discovery), so a kind
/// missing here is harmless.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "IngressClass",
    "RuntimeClass",
    "ClusterPropagationPolicy",
    "ClusterOverridePolicy",
    "Cluster",
];

/// The identity of a manifest object: apiVersion, kind, name, and its
/// namespace (`metadata.namespace`, else `default_namespace` — helm
/// installs unqualified objects into the release namespace). `None` when
/// apiVersion, kind or name is missing.
pub fn object_ref(obj: &Value, default_namespace: &str) -> Option<ObjectRef> {
    let api_version = obj["apiVersion"].as_str().filter(|s| !s.is_empty())?;
    let kind = obj["kind"].as_str().filter(|s| !s.is_empty())?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let namespace = if CLUSTER_SCOPED.contains(&kind) {
        None
    } else {
        Some(
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_namespace)
                .to_owned(),
        )
    };
    Some(ObjectRef {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        namespace,
        name: name.to_owned(),
    })
}

/// Metadata the API server sets; never drift even if a desired object
/// carries it (a manifest copied from a live object).
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Map keys under which values are resource quantities (`"500m"` and
/// `0.5` are the same CPU). Comparing numerically only there keeps
/// strings such as image tags or label values (`"1.0"` vs `"1"`) exact.
const QUANTITY_PARENTS: &[&str] = &["requests", "limits", "hard", "capacity", "overhead"];

/// JSON-pointer paths of the fields `desired` sets whose live value
/// differs, sorted. Rules:
/// - only keys present in `desired` are compared (so annotations and
///   labels added by others, defaults and `status` never count);
/// - `apiVersion`, `kind`, top-level `status` and server-set metadata are
///   ignored;
/// - a desired `null` sets nothing, so it matches whatever is live: a
///   missing key, a value the API server defaulted, a Secret's `data`
///   filled from its `stringData` (apply removes the field; reporting
///   it would correct the object again on every pass);
/// - arrays of the same length are compared element by element, otherwise
///   the array's own path is reported;
/// - numbers compare by value (`1` = `1.0`); under `requests`, `limits`,
///   `hard`, `capacity` and `overhead`, quantities compare numerically
///   (`"500m"` = `0.5`, `"1Gi"` = `"1024Mi"`);
/// - a Secret's `stringData` is compared with the base64 `data` the API
///   server keeps (it never returns `stringData`). Only paths are returned,
///   never values, so Secrets stay out of logs.
pub fn drift(desired: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) else {
        if !same_scalar(desired, live, false) {
            out.push(String::new());
        }
        return out;
    };
    for (key, dv) in d {
        let mut path = String::new();
        push_token(&mut path, key);
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => match (dv.as_object(), l.get(key).and_then(Value::as_object)) {
                (Some(dm), Some(lm)) => {
                    for (mk, mv) in dm {
                        if SERVER_METADATA.contains(&mk.as_str()) {
                            continue;
                        }
                        let mut p = path.clone();
                        push_token(&mut p, mk);
                        walk(&mut p, mk, mv, lm.get(mk), false, &mut out);
                    }
                }
                _ => walk(&mut path, key, dv, l.get(key), false, &mut out),
            },
            "stringData" if desired["kind"] == "Secret" && dv.is_object() => {
                for (sk, sv) in dv.as_object().into_iter().flatten() {
                    let encoded = sv.as_str().map(|s| Value::String(base64(s.as_bytes())));
                    let live_value = live.get("data").and_then(|m| m.get(sk));
                    let same = match (&encoded, live_value) {
                        (Some(e), Some(lv)) => e == lv,
                        (None, _) => sv.is_null(),
                        (Some(_), None) => false,
                    };
                    if !same {
                        out.push(format!("{path}/{}", escape(sk)));
                    }
                }
            }
            _ => walk(&mut path, key, dv, l.get(key), false, &mut out),
        }
    }
    out.sort();
    out
}

/// `key` is the map key this node sits under (empty for array items);
/// `quantity` says the node is a value of a quantity map. `path` is the
/// node's pointer, one buffer for the whole walk (a resync compares
/// thousands of objects; only a difference allocates).
fn walk(
    path: &mut String,
    key: &str,
    desired: &Value,
    live: Option<&Value>,
    quantity: bool,
    out: &mut Vec<String>,
) {
    if desired.is_null() {
        return;
    }
    let Some(live) = live else {
        out.push(path.clone());
        return;
    };
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            let children_are_quantities = QUANTITY_PARENTS.contains(&key);
            for (k, dv) in d {
                let len = path.len();
                push_token(path, k);
                walk(path, k, dv, l.get(k), children_are_quantities, out);
                path.truncate(len);
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                let len = path.len();
                {
                    use std::fmt::Write as _;
                    let _ = write!(path, "/{i}");
                }
                walk(path, "", dv, Some(lv), false, out);
                path.truncate(len);
            }
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
            out.push(path.clone());
        }
        (d, l) => {
            if !same_scalar(d, l, quantity) {
                out.push(path.clone());
            }
        }
    }
}

fn same_scalar(d: &Value, l: &Value, quantity: bool) -> bool {
    if d == l {
        return true;
    }
    if let (Some(a), Some(b)) = (d.as_f64(), l.as_f64()) {
        return a == b;
    }
    if quantity && let (Ok(a), Ok(b)) = (crate::units::quantity_of(d), crate::units::quantity_of(l))
    {
        // Quantities are decimal: compare with a relative tolerance so that
        // "0.1" and "100m" agree despite binary floating point.
        return (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    }
    false
}

/// One JSON-pointer reference token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Appends `/` and `key` as a JSON-pointer reference token (RFC 6901).
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// Standard base64 with padding, as the API server stores Secret `data`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What a Secret's `data` and `stringData` values become in [`redact`].
pub const REDACTED: &str = "<redacted>";

/// One object of a release manifest, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSummary {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `sha256:<hex>` of the whole object as rendered (Secret values
    /// included): it changes whenever the object does. It is a digest of
    /// the object, not of a single value, so that a short password cannot
    /// be looked up in a table of digests.
    pub digest: String,
}

/// A manifest made fit for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The objects again as multi-document YAML (one JSON document per
    /// object, which YAML reads unchanged; [`parse`] reads it back), with
    /// every Secret's `data` and `stringData` values replaced by
    /// [`REDACTED`]. Keys stay: drift paths name them.
    pub manifest: String,
    /// One summary per object, in manifest order.
    pub objects: Vec<ObjectSummary>,
}

/// The status form of `manifest` (objects without a name or kind are
/// kept, unsummarised). A manifest that cannot be parsed cannot be
/// redacted: the error tells the caller to withhold it whole.
pub fn redact(manifest: &str, default_namespace: &str) -> Result<Redacted, ManifestError> {
    let objects = parse(manifest)?;
    let mut text = String::from(
        "# Redacted for status by smo: Secret data and stringData values are hidden.\n",
    );
    let mut summaries = Vec::new();
    for mut object in objects {
        if let Some(r) = object_ref(&object, default_namespace) {
            let canonical = serde_json::to_vec(&object).unwrap_or_default();
            let digest: String = Sha256::digest(&canonical)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            summaries.push(ObjectSummary {
                api_version: r.api_version,
                kind: r.kind,
                name: r.name,
                namespace: r.namespace,
                digest: format!("sha256:{digest}"),
            });
        }
        hide_secret_values(&mut object);
        text.push_str("---\n");
        text.push_str(&serde_json::to_string_pretty(&object).unwrap_or_default());
        text.push('\n');
    }
    Ok(Redacted {
        manifest: text,
        objects: summaries,
    })
}

fn hide_secret_values(object: &mut Value) {
    if object["kind"] != "Secret" {
        return;
    }
    for field in ["data", "stringData"] {
        match object.get_mut(field) {
            Some(Value::Object(map)) => {
                for value in map.values_mut() {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
            // Not a map (the API server would refuse it): hide it whole.
            Some(other) if !other.is_null() => *other = Value::String(REDACTED.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HELM_OUTPUT: &str = "---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
---
# Source: web/templates/empty.yaml
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: other
spec:
  replicas: 2
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: reader}
";

    #[test]
    fn parse_splits_documents_and_skips_empty_ones() {
        let objs = parse(HELM_OUTPUT).expect("parses");
        let kinds: Vec<_> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Service", "Deployment", "ConfigMap", "ClusterRole"]);
        assert_eq!(objs[1]["spec"]["replicas"], 2);
        assert_eq!(parse("").expect("empty"), Vec::<Value>::new());
        assert_eq!(
            parse("---\n# Source: x\n---\n").expect("only comments"),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn the_canonical_form_reads_back_as_the_same_objects_and_is_still_yaml() {
        let objects = parse(HELM_OUTPUT).unwrap();
        let text = canonical(&objects);
        assert!(is_canonical(&text));
        assert!(parse_canonical(&text).is_some(), "the JSON path reads it");
        assert_eq!(parse(&text).unwrap(), objects);
        // Any YAML reader (helm, kubectl, an operator) reads it too.
        let docs = parse_documents(&text).unwrap();
        let yaml: Vec<Value> = docs.into_iter().map(|d| d.value).collect();
        assert_eq!(yaml, objects);
        // Nothing: a header alone.
        assert_eq!(parse(&canonical(&[])).unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn an_altered_canonical_text_is_read_as_yaml_or_refused() {
        let objects = parse(HELM_OUTPUT).unwrap();
        // Edited by hand into YAML that is not JSON: the YAML reader.
        let edited = canonical(&objects).replacen("---\n{", "---\nextra: 1\n---\n{", 1);
        assert!(parse_canonical(&edited).is_none());
        assert!(parse(&edited).is_err(), "a document that is not an object");
        let not_object = format!("{CANONICAL_HEADER}---\n[1, 2]\n");
        assert!(parse_canonical(&not_object).is_none());
        assert!(matches!(
            parse(&not_object),
            Err(ManifestError::NotAnObject { .. })
        ));
    }

    #[test]
    fn parse_refuses_what_is_not_an_object() {
        let cases = [
            ("- a\n- b\n", Some(ManifestError::NotAnObject { index: 0 })),
            (
                "apiVersion: v1\nkind: A\n---\nfoo: bar\n",
                Some(ManifestError::NotAnObject { index: 1 }),
            ),
            (
                "kind: List\napiVersion: v1\nitems: [3]\n",
                Some(ManifestError::NotAnObject { index: 0 }),
            ),
            ("a: [\n", None),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            match want {
                Some(w) => assert_eq!(err, w, "{text}"),
                None => assert!(matches!(err, ManifestError::Yaml { .. }), "{text}: {err}"),
            }
        }
    }

    #[test]
    fn object_refs_take_the_default_namespace_unless_cluster_scoped() {
        let objs = parse(HELM_OUTPUT).expect("parses");
        let refs: Vec<_> = objs
            .iter()
            .map(|o| object_ref(o, "proj").expect("complete"))
            .map(|r| (r.kind, r.namespace, r.name))
            .collect();
        assert_eq!(
            refs,
            [
                ("Service".into(), Some("proj".into()), "web".into()),
                ("Deployment".into(), Some("other".into()), "web".into()),
                ("ConfigMap".into(), Some("proj".into()), "a".into()),
                ("ClusterRole".into(), None, "reader".into()),
            ]
        );
        for incomplete in [
            json!({"kind": "A", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "A", "metadata": {}}),
            json!({"apiVersion": "v1", "kind": "A", "metadata": {"name": ""}}),
        ] {
            assert_eq!(object_ref(&incomplete, "p"), None, "{incomplete}");
        }
    }

    #[test]
    fn drift_compares_only_what_the_desired_object_sets() {
        let desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a/b": "1"}},
            "spec": {
                "replicas": 2,
                "template": {"spec": {"containers": [{
                    "name": "c", "image": "img:1.0",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 1}},
                    "ports": [{"containerPort": 80}],
                }]}},
            },
        });
        let in_sync = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "resourceVersion": "9",
                "labels": {"app": "web", "helm.sh/chart": "web-1"},
                "annotations": {"a/b": "1", "deployment.kubernetes.io/revision": "3"}},
            "spec": {
                "replicas": 2, "revisionHistoryLimit": 10,
                "template": {"spec": {"containers": [{
                    "name": "c", "image": "img:1.0", "imagePullPolicy": "IfNotPresent",
                    "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {"cpu": "1000m"}},
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                }]}},
            },
            "status": {"replicas": 2},
        });
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = in_sync.clone();
            f(&mut v);
            v
        };
        let c = "/spec/template/spec/containers";
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("in sync", in_sync.clone(), vec![]),
            (
                "replicas changed",
                edit(&|v| v["spec"]["replicas"] = json!(5)),
                vec!["/spec/replicas".into()],
            ),
            (
                "label changed, escaped key",
                edit(&|v| {
                    v["metadata"]["labels"]["app"] = json!("x");
                    v["metadata"]["annotations"]["a/b"] = json!("2");
                }),
                vec![
                    "/metadata/annotations/a~1b".into(),
                    "/metadata/labels/app".into(),
                ],
            ),
            (
                "label removed",
                edit(&|v| v["metadata"]["labels"] = json!({})),
                vec!["/metadata/labels/app".into()],
            ),
            (
                "quantity really changed",
                edit(&|v| {
                    v["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] =
                        json!("600m")
                }),
                vec![format!("{c}/0/resources/requests/cpu")],
            ),
            (
                "image changed",
                edit(&|v| v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:1")),
                vec![format!("{c}/0/image")],
            ),
            (
                "array length changed",
                edit(&|v| {
                    v["spec"]["template"]["spec"]["containers"][0]["ports"] =
                        json!([{"containerPort": 80}, {"containerPort": 81}])
                }),
                vec![format!("{c}/0/ports")],
            ),
            (
                "type changed",
                edit(&|v| v["spec"]["template"]["spec"] = json!("x")),
                vec!["/spec/template/spec".into()],
            ),
            (
                "status and server metadata ignored",
                edit(&|v| {
                    v["status"] = json!({"replicas": 0});
                    v["metadata"]["resourceVersion"] = json!("10");
                }),
                vec![],
            ),
        ];
        for (name, live, want) in cases {
            assert_eq!(drift(&desired, &live), want, "{name}");
        }
    }

    #[test]
    fn drift_edge_cases() {
        // A null in the desired object means "absent".
        let d = json!({"spec": {"a": null, "b": 1}});
        assert_eq!(
            drift(&d, &json!({"spec": {"b": 1.0}})),
            Vec::<String>::new()
        );
        assert_eq!(drift(&d, &json!({"spec": {}})), ["/spec/b"]);
        // Numeric look-alike strings outside quantity fields stay exact.
        let d = json!({"metadata": {"labels": {"v": "1.0"}}});
        assert_eq!(
            drift(&d, &json!({"metadata": {"labels": {"v": "1"}}})),
            ["/metadata/labels/v"]
        );
        // Secrets: stringData is compared with the stored base64 data.
        let d = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": "hello"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "aGVsbG8="}});
        assert_eq!(drift(&d, &live), Vec::<String>::new());
        let live = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "aGVsbG9v"}});
        assert_eq!(drift(&d, &live), ["/stringData/k"]);
    }

    #[test]
    fn a_desired_null_never_drifts() {
        // Found by fuzzing (`manifest`): a Secret rendered with `data:
        // null` next to its `stringData` drifted from itself as the API
        // server stores it (`data` filled from `stringData`), so drift
        // correction would have re-applied it on every pass.
        let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                       "data": null, "stringData": {"k": "hello", "gone": null}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                          "data": {"k": "aGVsbG8=", "gone": "eA=="}});
        assert_eq!(drift(&d, &live), Vec::<String>::new());
        // The same for a field the API server defaults.
        let d = json!({"spec": {"replicas": null, "paused": false}});
        let live = json!({"spec": {"replicas": 1, "paused": true}});
        assert_eq!(drift(&d, &live), ["/spec/paused"]);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    const WITH_SECRET: &str = "---
# Source: db/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: db-creds
stringData:
  password: hunter2-do-not-leak
data:
  token: aHVudGVyMi1kby1ub3QtbGVhaw==
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: listed, namespace: other}
  data: c2VjcmV0LWluLWEtbGlzdA==
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {mode: fast}
";

    #[test]
    fn redacting_hides_every_secret_value_and_keeps_everything_else() {
        let r = redact(WITH_SECRET, "ns").unwrap();
        for secret in [
            "hunter2-do-not-leak",
            "aHVudGVyMi1kby1ub3QtbGVhaw",
            "c2VjcmV0LWluLWEtbGlzdA",
        ] {
            assert!(!r.manifest.contains(secret), "{secret} in {}", r.manifest);
        }
        let objects = parse(&r.manifest).unwrap();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["stringData"], json!({"password": REDACTED}));
        assert_eq!(objects[0]["data"], json!({"token": REDACTED}));
        assert_eq!(objects[1]["data"], json!(REDACTED));
        // Not a Secret: untouched.
        assert_eq!(objects[2]["data"], json!({"mode": "fast"}));
        let names: Vec<_> = r
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.namespace.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("Secret", "db-creds", Some("ns")),
                ("Secret", "listed", Some("other")),
                ("ConfigMap", "settings", Some("ns"))
            ]
        );
        assert!(
            r.objects
                .iter()
                .all(|o| o.digest.starts_with("sha256:") && o.digest.len() == 71)
        );
    }

    #[test]
    fn a_secret_digest_changes_with_its_value_and_hides_it() {
        let a = redact(WITH_SECRET, "ns").unwrap();
        let b = redact(&WITH_SECRET.replace("hunter2-do-not-leak", "hunter3"), "ns").unwrap();
        assert_ne!(a.objects[0].digest, b.objects[0].digest);
        assert_eq!(a.objects[2].digest, b.objects[2].digest);
        assert_eq!(a.manifest, b.manifest);
        let plain: String = Sha256::digest(b"hunter2-do-not-leak")
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert!(!a.objects[0].digest.contains(&plain));
    }

    #[test]
    fn a_secret_in_a_list_in_a_list_is_redacted() {
        // Found with the `manifest` fuzz target's invariants: only the
        // outer List was replaced by its items, so the inner List went to
        // status whole, Secret values included.
        let nested = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: inner}
    stringData: {password: hunter2-do-not-leak}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
";
        let objects = parse(nested).unwrap();
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Secret", "ConfigMap"]);
        let r = redact(nested, "ns").unwrap();
        assert!(!r.manifest.contains("hunter2"), "{}", r.manifest);
        assert_eq!(r.objects[0].name, "inner");
        assert_eq!(parse(&r.manifest).unwrap().len(), 2, "reads back");
    }

    #[test]
    fn an_unparseable_manifest_is_not_redacted() {
        assert!(redact("kind: Secret\nstringData: [unclosed\n", "ns").is_err());
    }
}
