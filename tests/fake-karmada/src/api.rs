//! API-server semantics on top of the store: server-set metadata, status
//! and scale subresources, optimistic concurrency, patches, server-side
//! apply and managedFields. HTTP-free: `server` maps requests onto these
//! functions and their `ApiError`s onto `Status` bodies.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Map, Value, json};

use crate::kinds::KindSpec;
use crate::patch::{self, FieldSet};
use crate::store::{ObjKey, Store};
use crate::util::{base64_encode, new_uid, now_rfc3339};

/// An error the API answers with a `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }

    pub(crate) fn not_found(spec: &KindSpec, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{}.{} \"{name}\" not found", spec.plural, spec.group).replace(". \"", " \""),
        )
        .with_details(json!({"name": name, "group": spec.group, "kind": spec.plural}))
    }

    pub(crate) fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    pub(crate) fn invalid(spec: &KindSpec, name: &str, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {msg}", spec.kind),
        )
        .with_details(json!({"name": name, "group": spec.group, "kind": spec.kind}))
    }

    /// The `Status` object for this error.
    pub(crate) fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything but `status` (for kinds with a status subresource).
    Main,
    /// Only `status`.
    Status,
}

/// The patch flavours, by request content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub force: bool,
}

pub(crate) fn key(spec: &KindSpec, namespace: &str, name: &str) -> ObjKey {
    ObjKey {
        group: spec.group.clone(),
        version: spec.version.clone(),
        plural: spec.plural.clone(),
        namespace: if spec.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn md(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

fn md_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("just ensured")
}

/// Everything of an object that counts towards `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

fn namespace_exists(store: &Store, ns: &str) -> bool {
    store
        .get(&ObjKey {
            group: String::new(),
            version: "v1".into(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        })
        .is_some()
}

/// Folds Secret `stringData` into `data`, as the real API does.
fn normalize(spec: &KindSpec, obj: &mut Value) {
    if spec.group.is_empty()
        && spec.kind == "Secret"
        && let Some(m) = obj.as_object_mut()
        && let Some(Value::Object(sd)) = m.remove("stringData")
    {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default().to_string();
                d.insert(k, Value::String(base64_encode(s.as_bytes())));
            }
        }
    }
    if spec.group.is_empty() && spec.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
}

/// Fields the real API server defaults or allocates that clients rely on:
/// `spec.replicas` of workloads (helm 3's `--wait` dereferences it) and a
/// Service's `clusterIP` (helm 3's `--wait` waits for it). Applied after
/// managedFields are computed, so no manager owns them (as in Kubernetes).
fn defaults(spec: &KindSpec, old: Option<&Value>, obj: &mut Value) {
    static NEXT_IP: AtomicU32 = AtomicU32::new(1);
    let workload = spec.group == "apps"
        && matches!(
            spec.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        );
    if workload && let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        s.entry("replicas").or_insert(json!(1));
    }
    if spec.group.is_empty()
        && spec.kind == "Service"
        && let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        let ty = s.entry("type").or_insert(json!("ClusterIP")).clone();
        if ty != "ExternalName" && !s.contains_key("clusterIP") {
            let ip = old
                .and_then(|o| o.pointer("/spec/clusterIP"))
                .cloned()
                .unwrap_or_else(|| {
                    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
                    json!(format!("10.96.{}.{}", (n / 250) % 256, n % 250 + 1))
                });
            s.insert("clusterIPs".into(), json!([ip.clone()]));
            s.insert("clusterIP".into(), ip);
        }
    }
}

fn managed_entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry_set(e: &Value) -> FieldSet {
    e.get("fieldsV1")
        .map(patch::from_fields_v1)
        .unwrap_or_default()
}

/// (manager, operation) of a managedFields entry.
fn entry_id(e: &Value) -> (String, String) {
    let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (field("manager"), field("operation"))
}

fn entry_matches(e: &Value, manager: &str, op: &str, sub: Option<&str>) -> bool {
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some(op)
        && e.get("subresource").and_then(Value::as_str) == sub
}

fn make_entry(
    spec: &KindSpec,
    manager: &str,
    op: &str,
    sub: Option<&str>,
    set: &FieldSet,
) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": op,
        "apiVersion": spec.api_version(),
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": patch::to_fields_v1(set),
    });
    if let Some(s) = sub {
        e["subresource"] = json!(s);
    }
    e
}

fn scope_sub(scope: Scope) -> Option<&'static str> {
    match scope {
        Scope::Main => None,
        Scope::Status => Some("status"),
    }
}

/// Records an Update-style write: the manager takes the fields that
/// changed; other managers lose them; paths gone from the object are
/// dropped from every set.
fn update_managed_fields(
    spec: &KindSpec,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
) {
    let new_set = patch::field_set(new);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| match old {
            Some(o) => patch::lookup(o, p) != patch::lookup(new, p),
            None => true,
        })
        .cloned()
        .collect();
    let sub = scope_sub(scope);
    let entries = old.map(managed_entries).unwrap_or_default();
    let mut out = Vec::new();
    let mut found = false;
    for e in entries {
        let set = entry_set(&e);
        if entry_matches(&e, manager, "Update", sub) {
            found = true;
            let mut mine = set.clone();
            mine.retain(|p| new_set.contains(p));
            mine.extend(changed.iter().cloned());
            if mine == set {
                out.push(e);
            } else if !mine.is_empty() {
                out.push(make_entry(spec, manager, "Update", sub, &mine));
            }
            continue;
        }
        let kept: FieldSet = set
            .iter()
            .filter(|p| !changed.contains(*p) && new_set.contains(*p))
            .cloned()
            .collect();
        if kept == set {
            out.push(e);
        } else if !kept.is_empty() {
            let mut e = e;
            e["fieldsV1"] = patch::to_fields_v1(&kept);
            out.push(e);
        }
    }
    if !found && !changed.is_empty() {
        out.push(make_entry(spec, manager, "Update", sub, &changed));
    }
    md_mut(new).insert("managedFields".into(), Value::Array(out));
}

/// Finishes a write: keeps server-owned metadata, honours the scope,
/// bumps generation, records managedFields and stores the object.
#[allow(clippy::too_many_arguments)] // one call shape for create, update, patch and apply
fn commit(
    store: &mut Store,
    spec: &KindSpec,
    k: ObjKey,
    old: Option<&Value>,
    mut new: Value,
    scope: Scope,
    opts: &WriteOpts,
    apply_fields: Option<Vec<Value>>,
) -> Result<Value, ApiError> {
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the resulting object must be a JSON object",
        ));
    }
    if new
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    new["apiVersion"] = json!(spec.api_version());
    new["kind"] = json!(spec.kind);
    normalize(spec, &mut new);
    if let Some(old) = old {
        match scope {
            Scope::Main if spec.status_subresource => match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            },
            Scope::Main => {}
            Scope::Status => {
                let status = new.get("status").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        let m = md_mut(&mut new);
        for f in ["uid", "creationTimestamp", "namespace", "name"] {
            match old.pointer(&format!("/metadata/{f}")) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let changed = spec_part(old) != spec_part(&new);
        let generation = if changed { generation + 1 } else { generation };
        let m = md_mut(&mut new);
        m.insert("generation".into(), json!(generation));
        m.insert(
            "resourceVersion".into(),
            old.pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
    } else {
        if spec.status_subresource
            && spec.kind != "Namespace"
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        let m = md_mut(&mut new);
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        if spec.namespaced {
            m.insert("namespace".into(), json!(k.namespace));
        } else {
            m.remove("namespace");
        }
    }
    match apply_fields {
        Some(entries) => {
            md_mut(&mut new).insert("managedFields".into(), Value::Array(entries));
        }
        None => update_managed_fields(spec, old, &mut new, &opts.manager, scope),
    }
    defaults(spec, old, &mut new);
    if let Some(old) = old
        && *old == new
    {
        // A no-op write does not bump the resourceVersion (as the real API).
        return Ok(new);
    }
    if opts.dry_run {
        return Ok(new);
    }
    Ok(store.put(k, new))
}

/// `POST` to a collection.
pub(crate) fn create(
    store: &mut Store,
    spec: &KindSpec,
    namespace: &str,
    mut obj: Value,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let mut name = md(&obj, "name").unwrap_or_default();
    if name.is_empty()
        && let Some(prefix) = md(&obj, "generateName")
    {
        let suffix: String = new_uid()
            .chars()
            .rev()
            .filter(char::is_ascii_alphanumeric)
            .take(5)
            .collect();
        name = format!("{prefix}{suffix}");
        md_mut(&mut obj).insert("name".into(), json!(name));
    }
    if name.is_empty() {
        return Err(ApiError::invalid(spec, "", "metadata.name: Required value"));
    }
    if let Some(body_ns) = md(&obj, "namespace")
        && spec.namespaced
        && !body_ns.is_empty()
        && body_ns != namespace
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({namespace})"
        )));
    }
    if spec.namespaced && !namespace_exists(store, namespace) {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"})));
    }
    let k = key(spec, namespace, &name);
    if store.get(&k).is_some() {
        return Err(ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(spec)),
        )
        .with_details(json!({"name": name, "group": spec.group, "kind": spec.plural})));
    }
    commit(store, spec, k, None, obj, Scope::Main, opts, None)
}

fn qualified(spec: &KindSpec) -> String {
    if spec.group.is_empty() {
        spec.plural.clone()
    } else {
        format!("{}.{}", spec.plural, spec.group)
    }
}

fn check_name(spec: &KindSpec, obj: &Value, name: &str) -> Result<(), ApiError> {
    match md(obj, "name") {
        Some(n) if n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => {
            let _ = spec;
            Ok(())
        }
    }
}

/// `PUT` of an object (or its status).
pub(crate) fn update(
    store: &mut Store,
    spec: &KindSpec,
    namespace: &str,
    name: &str,
    obj: Value,
    scope: Scope,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_name(spec, &obj, name)?;
    let k = key(spec, namespace, name);
    let Some(old) = store.get(&k).cloned() else {
        return Err(ApiError::not_found(spec, name));
    };
    if let Some(rv) = md(&obj, "resourceVersion").filter(|r| !r.is_empty())
        && Some(rv) != md(&old, "resourceVersion")
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(spec)
            ),
        )
        .with_details(json!({"name": name, "group": spec.group, "kind": spec.plural})));
    }
    commit(store, spec, k, Some(&old), obj, scope, opts, None)
}

fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("apply patch body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("apply patch body is not valid YAML: {e}")))
}

/// Applies a non-apply patch document to a copy of `current`.
pub(crate) fn patched(current: &Value, kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    let mut target = current.clone();
    match kind {
        PatchKind::Merge | PatchKind::Strategic => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?;
            if kind == PatchKind::Merge {
                patch::merge_patch(&mut target, &p);
            } else {
                patch::strategic_merge(&mut target, &p);
            }
        }
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut target, &p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
        }
        PatchKind::Apply => return Err(ApiError::bad_request("apply is not a plain patch")),
    }
    Ok(target)
}

/// `PATCH` of an object (or its status), including server-side apply.
#[allow(clippy::too_many_arguments)]
pub(crate) fn patch_object(
    store: &mut Store,
    spec: &KindSpec,
    namespace: &str,
    name: &str,
    kind: PatchKind,
    body: &[u8],
    scope: Scope,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let k = key(spec, namespace, name);
    let current = store.get(&k).cloned();
    if kind == PatchKind::Apply {
        return apply(store, spec, k, current, body, scope, opts);
    }
    let Some(current) = current else {
        return Err(ApiError::not_found(spec, name));
    };
    let new = patched(&current, kind, body)?;
    check_name(spec, &new, name)?;
    commit(store, spec, k, Some(&current), new, scope, opts, None)
}

fn path_string(p: &[String]) -> String {
    p.iter()
        .map(|el| {
            el.strip_prefix("f:")
                .map(|f| format!(".{f}"))
                .unwrap_or_else(|| format!("[{}]", el.trim_start_matches("k:")))
        })
        .collect()
}

/// Server-side apply (see `patch` for the list model).
fn apply(
    store: &mut Store,
    spec: &KindSpec,
    k: ObjKey,
    current: Option<Value>,
    body: &[u8],
    scope: Scope,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let mut applied = parse_apply_body(body)?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("apply patch body must be an object"));
    }
    if opts.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH with apply requires the fieldManager parameter",
        ));
    }
    check_name(spec, &applied, &k.name)?;
    if scope == Scope::Status {
        // Only the status part of an applied configuration counts here.
        applied = json!({"status": applied.get("status").cloned().unwrap_or(json!({}))});
    } else if spec.status_subresource
        && let Some(m) = applied.as_object_mut()
    {
        m.remove("status");
    }
    let sub = scope_sub(scope);
    let applied_set = patch::field_set(&applied);
    let Some(current) = current else {
        // Apply creates the object.
        let mut obj = applied.clone();
        md_mut(&mut obj).insert("name".into(), json!(k.name));
        if spec.namespaced && !namespace_exists(store, &k.namespace) {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{}\" not found", k.namespace),
            ));
        }
        let entries = vec![make_entry(spec, &opts.manager, "Apply", sub, &applied_set)];
        return commit(store, spec, k, None, obj, Scope::Main, opts, Some(entries));
    };
    let entries = managed_entries(&current);
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for e in &entries {
        let mgr = e.get("manager").and_then(Value::as_str).unwrap_or("");
        if mgr == opts.manager {
            continue;
        }
        for p in entry_set(e).intersection(&applied_set) {
            if p.last().is_some_and(|l| l.starts_with("k:")) {
                continue;
            }
            if patch::lookup(&current, p) != patch::lookup(&applied, p) {
                conflicts.push((mgr.to_string(), path_string(p)));
            }
        }
    }
    if !conflicts.is_empty() && !opts.force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": f}))
            .collect();
        let list: Vec<String> = conflicts
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {} conflict(s): {}",
                conflicts.len(),
                list.join("; ")
            ),
        )
        .with_details(
            json!({"name": k.name, "group": spec.group, "kind": spec.plural, "causes": causes}),
        ));
    }
    let previous: FieldSet = entries
        .iter()
        .filter(|e| entry_matches(e, &opts.manager, "Apply", sub))
        .map(entry_set)
        .next()
        .unwrap_or_default();
    let mut new = current.clone();
    // Fields this manager applied before, no longer applies, and nobody
    // else owns are removed.
    let others: FieldSet = entries
        .iter()
        .filter(|e| !entry_matches(e, &opts.manager, "Apply", sub))
        .flat_map(entry_set)
        .collect();
    let stale: Vec<_> = previous.difference(&applied_set).collect();
    for p in stale.into_iter().rev() {
        if !others.contains(p) {
            patch::remove(&mut new, p);
        }
    }
    patch::apply_merge(&mut new, &applied);
    let conflicting: FieldSet = if opts.force {
        applied_set
            .iter()
            .filter(|p| patch::lookup(&current, p) != patch::lookup(&applied, p))
            .cloned()
            .collect()
    } else {
        FieldSet::new()
    };
    let mut out = Vec::new();
    for e in entries {
        if entry_matches(&e, &opts.manager, "Apply", sub) {
            continue;
        }
        let set: FieldSet = entry_set(&e)
            .into_iter()
            .filter(|p| !conflicting.contains(p))
            .collect();
        if !set.is_empty() {
            let mut e = e;
            e["fieldsV1"] = patch::to_fields_v1(&set);
            out.push(e);
        }
    }
    let mine = make_entry(spec, &opts.manager, "Apply", sub, &applied_set);
    // Keep the entry's time stable when nothing changed, so a repeated
    // apply is a true no-op.
    let prev_entry = managed_entries(&current)
        .into_iter()
        .find(|e| entry_matches(e, &opts.manager, "Apply", sub));
    match prev_entry {
        Some(p) if entry_set(&p) == applied_set => out.push(p),
        _ => out.push(mine),
    }
    // Leave the order of entries as it was, for stable no-op detection.
    let order: Vec<(String, String)> = managed_entries(&current).iter().map(entry_id).collect();
    out.sort_by_key(|e| {
        let id = entry_id(e);
        order.iter().position(|o| *o == id).unwrap_or(usize::MAX)
    });
    commit(store, spec, k, Some(&current), new, scope, opts, Some(out))
}

/// `DELETE` of one object; deleting a namespace deletes its contents.
pub(crate) fn delete(
    store: &mut Store,
    spec: &KindSpec,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let k = key(spec, namespace, name);
    let Some(obj) = store.get(&k).cloned() else {
        return Err(ApiError::not_found(spec, name));
    };
    if dry_run {
        return Ok(obj);
    }
    if spec.group.is_empty() && spec.kind == "Namespace" {
        for inner in store.keys_in_namespace(name) {
            store.remove(&inner);
        }
    }
    Ok(store.remove(&k).unwrap_or(obj))
}

/// The `autoscaling/v1` `Scale` view of an object with `spec.replicas`.
pub(crate) fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Writes a new `Scale` (already patched or sent whole) back to the object.
pub(crate) fn write_scale(
    store: &mut Store,
    spec: &KindSpec,
    namespace: &str,
    name: &str,
    scale: &Value,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let k = key(spec, namespace, name);
    let Some(current) = store.get(&k).cloned() else {
        return Err(ApiError::not_found(spec, name));
    };
    let Some(replicas) = scale.pointer("/spec/replicas").and_then(Value::as_i64) else {
        return Err(ApiError::invalid(
            spec,
            name,
            "spec.replicas: Required value",
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(spec, name, "spec.replicas: must be >= 0"));
    }
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        && Some(rv.to_string()) != md(&current, "resourceVersion")
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(spec)
            ),
        ));
    }
    let mut new = current.clone();
    if !new.get("spec").is_some_and(Value::is_object) {
        new["spec"] = json!({});
    }
    new["spec"]["replicas"] = json!(replicas);
    let stored = commit(store, spec, k, Some(&current), new, Scope::Main, opts, None)?;
    Ok(scale_of(&stored))
}

/// Out-of-band write (test controls, member simulation): no managedFields
/// change, status kept as given.
pub(crate) fn put_raw(
    store: &mut Store,
    spec: &KindSpec,
    mut obj: Value,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("an object must be a JSON object"));
    }
    let name = md(&obj, "name").unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid(spec, "", "metadata.name: Required value"));
    }
    let namespace = md(&obj, "namespace").unwrap_or_default();
    if spec.namespaced && namespace.is_empty() {
        return Err(ApiError::invalid(
            spec,
            &name,
            "metadata.namespace: Required value",
        ));
    }
    let k = key(spec, &namespace, &name);
    obj["apiVersion"] = json!(spec.api_version());
    obj["kind"] = json!(spec.kind);
    let old = store.get(&k).cloned();
    let m = md_mut(&mut obj);
    match &old {
        Some(old) => {
            for f in ["uid", "creationTimestamp"] {
                if let Some(v) = old.pointer(&format!("/metadata/{f}")) {
                    m.entry(f).or_insert(v.clone());
                }
            }
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = if spec_part(old) != spec_part(&obj) {
                generation + 1
            } else {
                generation
            };
            md_mut(&mut obj).insert("generation".into(), json!(generation));
        }
        None => {
            m.entry("uid").or_insert_with(|| json!(new_uid()));
            m.entry("creationTimestamp")
                .or_insert_with(|| json!(now_rfc3339()));
            m.entry("generation").or_insert(json!(1));
        }
    }
    if !spec.namespaced
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("namespace");
    }
    Ok(store.put(k, obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KindSpec {
        KindSpec::namespaced("v1", "ConfigMap", "configmaps")
    }

    fn store_with_ns() -> Store {
        let mut store = Store::new();
        let ns = KindSpec::cluster_scoped("v1", "Namespace", "namespaces");
        put_raw(&mut store, &ns, json!({"metadata": {"name": "d"}})).unwrap();
        store
    }

    fn opts(manager: &str) -> WriteOpts {
        WriteOpts {
            manager: manager.into(),
            ..Default::default()
        }
    }

    #[test]
    fn patches_of_every_kind_apply() {
        let cur = json!({"data": {"a": "1", "b": "2"}, "list": [{"name": "x", "v": 1}]});
        let p = patched(
            &cur,
            PatchKind::Json,
            br#"[{"op":"replace","path":"/data/a","value":"9"},{"op":"remove","path":"/data/b"}]"#,
        )
        .unwrap();
        assert_eq!(p["data"], json!({"a": "9"}));
        let p = patched(&cur, PatchKind::Merge, br#"{"data":{"b":null}}"#).unwrap();
        assert_eq!(p["data"], json!({"a": "1"}));
        let p = patched(
            &cur,
            PatchKind::Strategic,
            br#"{"list":[{"name":"y","v":2}]}"#,
        )
        .unwrap();
        assert_eq!(p["list"].as_array().map(Vec::len), Some(2));
        let p = patched(
            &cur,
            PatchKind::Strategic,
            br#"{"data":{"$patch":"replace","c":"3"}}"#,
        )
        .unwrap();
        assert_eq!(p["data"], json!({"c": "3"}));
        let e = patched(
            &cur,
            PatchKind::Json,
            br#"[{"op":"remove","path":"/nope"}]"#,
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(patched(&cur, PatchKind::Merge, b"{").unwrap_err().code, 400);
    }

    #[test]
    fn generation_moves_only_with_the_spec_and_noops_keep_the_version() {
        let mut store = store_with_ns();
        let s = spec();
        let c = create(
            &mut store,
            &s,
            "d",
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            &opts("m"),
        )
        .unwrap();
        assert_eq!(c["metadata"]["generation"], 1);
        let rv = c["metadata"]["resourceVersion"].clone();
        let same = patch_object(
            &mut store,
            &s,
            "d",
            "c",
            PatchKind::Merge,
            br#"{"data":{"a":"1"}}"#,
            Scope::Main,
            &opts("m"),
        )
        .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"], rv,
            "no-op write keeps the version"
        );
        let labels = patch_object(
            &mut store,
            &s,
            "d",
            "c",
            PatchKind::Merge,
            br#"{"metadata":{"labels":{"x":"y"}}}"#,
            Scope::Main,
            &opts("m"),
        )
        .unwrap();
        assert_eq!(
            labels["metadata"]["generation"], 1,
            "metadata changes keep the generation"
        );
        assert_ne!(labels["metadata"]["resourceVersion"], rv);
        let data = patch_object(
            &mut store,
            &s,
            "d",
            "c",
            PatchKind::Merge,
            br#"{"data":{"a":"2"}}"#,
            Scope::Main,
            &opts("m"),
        )
        .unwrap();
        assert_eq!(data["metadata"]["generation"], 2);
    }

    #[test]
    fn status_subresource_separates_writes() {
        let mut store = store_with_ns();
        let s = KindSpec::namespaced("apps/v1", "Deployment", "deployments").with_status();
        let c = create(
            &mut store,
            &s,
            "d",
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 2}, "status": {"x": 1}}),
            &opts("m"),
        )
        .unwrap();
        assert!(c.get("status").is_none(), "status dropped on create");
        let st = patch_object(
            &mut store,
            &s,
            "d",
            "w",
            PatchKind::Merge,
            br#"{"spec":{"replicas":9},"status":{"readyReplicas":2}}"#,
            Scope::Status,
            &opts("m"),
        )
        .unwrap();
        assert_eq!(st["status"]["readyReplicas"], 2);
        assert_eq!(st["spec"]["replicas"], 2, "a status write leaves the spec");
        let main = patch_object(
            &mut store,
            &s,
            "d",
            "w",
            PatchKind::Merge,
            br#"{"status":{"readyReplicas":0}}"#,
            Scope::Main,
            &opts("m"),
        )
        .unwrap();
        assert_eq!(
            main["status"]["readyReplicas"], 2,
            "a main write leaves the status"
        );
    }

    #[test]
    fn namespace_deletion_takes_its_contents() {
        let mut store = store_with_ns();
        create(
            &mut store,
            &spec(),
            "d",
            json!({"metadata": {"name": "c"}}),
            &opts("m"),
        )
        .unwrap();
        let ns = KindSpec::cluster_scoped("v1", "Namespace", "namespaces");
        delete(&mut store, &ns, "", "d", false).unwrap();
        assert!(store.get(&key(&spec(), "d", "c")).is_none());
        assert_eq!(
            delete(&mut store, &ns, "", "d", false).unwrap_err().code,
            404
        );
    }
}
