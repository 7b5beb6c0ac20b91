//! A minimal OpenAPI v3 surface (`/openapi/v3` and one document per
//! group-version).
//!
//! Why this shape: helm (through kubectl's validation code) asks, for every
//! kind it sends, whether the server supports the `fieldValidation` query
//! parameter on PATCH, by looking for a PATCH operation tagged with the
//! kind's `x-kubernetes-group-version-kind` in the group-version document.
//! When the server supports it, client-side schema validation is skipped
//! and validation is left to the server. So each document lists, per kind,
//! a PATCH operation carrying that parameter, and schemas that accept any
//! object. The fake does not validate objects against schemas.

use serde_json::{Map, Value, json};

use crate::kinds::{KindSpec, Registry};

fn gv_path(spec: &KindSpec) -> String {
    spec.gv_prefix().trim_start_matches('/').to_string()
}

/// A stable content hash so clients may cache documents.
fn hash_of(v: &Value) -> String {
    format!("{:016X}", crate::util::fnv64(v.to_string().as_bytes()))
}

/// `/openapi/v3`: the index of group-version documents.
pub(crate) fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for spec in reg.all() {
        let p = gv_path(spec);
        if paths.contains_key(&p) {
            continue;
        }
        let doc = group_version(reg, &p).unwrap_or(Value::Null);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash_of(&doc))}),
        );
    }
    json!({ "paths": paths })
}

/// The document of one group-version (`api/v1`, `apis/apps/v1`).
pub(crate) fn group_version(reg: &Registry, gv: &str) -> Option<Value> {
    let kinds: Vec<&KindSpec> = reg.all().iter().filter(|k| gv_path(k) == gv).collect();
    if kinds.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for k in kinds {
        let gvk = json!({"group": k.group, "version": k.version, "kind": k.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if k.group.is_empty() { "core" } else { &k.group },
            k.version,
            k.kind
        );
        let body_ref = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": body_ref}}}});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ]);
        let base = if k.namespaced {
            format!("{}/namespaces/{{namespace}}/{}", k.gv_prefix(), k.plural)
        } else {
            format!("{}/{}", k.gv_prefix(), k.plural)
        };
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": {"x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok},
                "patch": {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok},
                "delete": {"x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            }),
        );
        paths.insert(
            base,
            json!({
                "get": {"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "post": {"x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok},
            }),
        );
        schemas.insert(
            schema_name,
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake-karmada)", "version": format!("v1.{}.0", crate::server::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
