//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! an approximation of strategic merge patch, and server-side apply with
//! per-manager field ownership.
//!
//! Approximations (documented in the README):
//! - Strategic merge merges lists of objects by a merge key when every
//!   element of both lists carries one of `name`, `containerPort`, `port`,
//!   `mountPath`, `devicePath`, `ip`, `type`, `topologyKey` (first present);
//!   other lists are replaced. Directives `$patch: delete|replace|merge` are
//!   honoured on maps and list elements; `$setElementOrder/*`,
//!   `$retainKeys` and `$deleteFromPrimitiveList/*` are dropped.
//!   A key whose values repeat within a list (Karmada's `resourceSelectors`
//!   name one object per kind) does not identify elements: such a list is
//!   replaced, as the API server does for lists without a merge key.
//! - Server-side apply treats lists of objects with a distinct `name` each
//!   as associative (keyed `k:{"name":..}`), all other lists as atomic (as
//!   for a CRD's lists without `x-kubernetes-list-type: map`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("just made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

const MERGE_KEYS: &[&str] = &[
    "name",
    "containerPort",
    "port",
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
];

fn merge_key_for(a: &[Value], b: &[Value]) -> Option<&'static str> {
    if a.is_empty() && b.is_empty() {
        return None;
    }
    MERGE_KEYS.iter().copied().find(|k| {
        a.iter()
            .chain(b.iter())
            .filter(|e| {
                e.as_object().and_then(|o| o.get("$patch")).is_none() || e.get(*k).is_some()
            })
            .all(|e| e.get(*k).is_some())
            && distinct(a, k)
            && distinct(b, k)
    })
}

/// Whether no two elements of `list` share a value of `key`.
fn distinct(list: &[Value], key: &str) -> bool {
    let mut seen = Vec::with_capacity(list.len());
    list.iter().filter_map(|e| e.get(key)).all(|v| {
        let new = !seen.contains(&v);
        seen.push(v);
        new
    })
}

/// Whether server-side apply treats `list` as a map keyed by `name`.
fn associative(list: &[Value]) -> bool {
    list.iter().all(|i| assoc_key(i).is_some()) && distinct(list, "name")
}

/// Strategic merge patch (approximation, see the module doc).
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *target = Value::Object(m);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("just made an object");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let existing = t.entry(k.clone()).or_insert(Value::Null);
        match (existing, v) {
            (Value::Array(cur), Value::Array(new)) => {
                if let Some(key) = merge_key_for(cur, new) {
                    merge_list_by_key(cur, new, key);
                } else {
                    *cur = new.clone();
                }
            }
            (slot @ Value::Object(_), Value::Object(_)) => {
                strategic_merge(slot, v);
                if slot.is_null() {
                    t.remove(k);
                }
            }
            (slot, v) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v);
                *slot = strip_directives(fresh);
            }
        }
    }
}

fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

fn merge_list_by_key(cur: &mut Vec<Value>, new: &[Value], key: &str) {
    for item in new {
        let id = item.get(key).cloned();
        let pos = cur.iter().position(|c| c.get(key) == id.as_ref());
        let directive = item.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                cur.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => strategic_merge(&mut cur[i], item),
            (None, _) => cur.push(strip_directives(item.clone())),
        }
    }
}

/// A set of owned leaf field paths, each a list of path elements in the
/// `FieldsV1` spelling (`f:spec`, `k:{"name":"web"}`).
pub(crate) type FieldSet = BTreeSet<Vec<String>>;

/// Metadata fields the server owns; never part of a manager's field set.
fn ignored(path: &[String]) -> bool {
    match path {
        [first, ..] if first == "f:apiVersion" || first == "f:kind" || first == "f:status" => true,
        [first, second, ..] if first == "f:metadata" => matches!(
            second.as_str(),
            "f:name"
                | "f:namespace"
                | "f:uid"
                | "f:resourceVersion"
                | "f:generation"
                | "f:creationTimestamp"
                | "f:managedFields"
                | "f:deletionTimestamp"
                | "f:selfLink"
        ),
        _ => false,
    }
}

fn assoc_key(item: &Value) -> Option<String> {
    let name = item.as_object()?.get("name")?;
    Some(format!("k:{}", serde_json::json!({ "name": name })))
}

fn collect(v: &Value, prefix: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(format!("f:{k}"));
                if !ignored(prefix) {
                    collect(child, prefix, out);
                }
                prefix.pop();
            }
        }
        Value::Array(a) if !a.is_empty() && associative(a) => {
            for item in a {
                prefix.push(assoc_key(item).expect("checked above"));
                out.insert(prefix.clone());
                collect_children(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn collect_children(item: &Value, prefix: &mut Vec<String>, out: &mut FieldSet) {
    if let Value::Object(m) = item {
        for (k, child) in m {
            prefix.push(format!("f:{k}"));
            collect(child, prefix, out);
            prefix.pop();
        }
    }
}

/// The leaf fields an object (or applied configuration) sets.
pub(crate) fn field_set(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, &mut Vec::new(), &mut out);
    out
}

/// Looks a field path up in an object.
pub(crate) fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for el in path {
        if let Some(k) = el.strip_prefix("f:") {
            cur = cur.as_object()?.get(k)?;
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            let name = key.get("name")?;
            cur = cur
                .as_array()?
                .iter()
                .find(|i| i.get("name") == Some(name))?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Removes a field path from an object; returns whether it was present.
pub(crate) fn remove(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for el in parents {
        let next = if let Some(k) = el.strip_prefix("f:") {
            cur.as_object_mut().and_then(|o| o.get_mut(k))
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Option<Value> = serde_json::from_str(k).ok();
            let name = key.as_ref().and_then(|k| k.get("name")).cloned();
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| i.get("name") == name.as_ref()))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(k) = last.strip_prefix("f:") {
        cur.as_object_mut().and_then(|o| o.remove(k)).is_some()
    } else if let Some(k) = last.strip_prefix("k:") {
        let key: Option<Value> = serde_json::from_str(k).ok();
        let name = key.as_ref().and_then(|k| k.get("name")).cloned();
        match cur.as_array_mut() {
            Some(a) => {
                let before = a.len();
                a.retain(|i| i.get("name") != name.as_ref());
                a.len() != before
            }
            None => false,
        }
    } else {
        false
    }
}

/// Merges an applied configuration into the live object: maps merge
/// recursively, lists of distinctly named objects merge by name, other
/// lists and scalars are replaced.
pub(crate) fn apply_merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(slot) => apply_merge(slot, v),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if associative(a) && associative(l) => {
            for item in a {
                match l.iter_mut().find(|i| i.get("name") == item.get("name")) {
                    Some(slot) => apply_merge(slot, item),
                    None => l.push(item.clone()),
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Renders a field set as a `FieldsV1` JSON tree.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for el in path {
            let entry = cur
                .entry(el.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            cur = entry.as_object_mut().expect("only objects are inserted");
        }
        if path.last().is_some_and(|l| l.starts_with("k:")) {
            cur.insert(".".to_string(), Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

/// Parses a `FieldsV1` JSON tree back into leaf paths.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        let children: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != ".").collect();
        if (children.is_empty() || m.contains_key(".")) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (k, child) in children {
            prefix.push(k.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_nulls_and_replaces_lists() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "l": [3]}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        strategic_merge(
            &mut t,
            &json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b", "image": "b:2"}, {"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})
        );
    }

    #[test]
    fn lists_whose_names_repeat_are_replaced_whole() {
        // A PropagationPolicy selects one object per kind, all of one name.
        let selectors = json!([
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            {"apiVersion": "v1", "kind": "Service", "name": "web"},
            {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport", "name": "web"}]);
        let applied = json!({"spec": {"resourceSelectors": selectors}});
        let mut live = applied.clone();
        apply_merge(&mut live, &applied);
        assert_eq!(live, applied, "server-side apply of the same object");
        let mut live = applied.clone();
        strategic_merge(&mut live, &applied);
        assert_eq!(live, applied, "strategic merge of the same object");
        let set = field_set(&applied);
        assert!(
            set.contains(&vec!["f:spec".into(), "f:resourceSelectors".into()]),
            "an atomic list is owned whole: {set:?}"
        );
        // Distinct names still merge by name.
        let mut live = json!({"c": [{"name": "a", "x": 1}, {"name": "b", "x": 1}]});
        apply_merge(&mut live, &json!({"c": [{"name": "b", "x": 2}]}));
        assert_eq!(
            live,
            json!({"c": [{"name": "a", "x": 1}, {"name": "b", "x": 2}]})
        );
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let obj = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "replicas": 2}});
        let set = field_set(&obj);
        assert!(set.contains(&vec!["f:metadata".into(), "f:labels".into(), "f:a".into()]));
        assert!(
            !set.iter()
                .any(|p| p.last().unwrap() == "f:name" && p.len() == 2)
        );
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }
}
