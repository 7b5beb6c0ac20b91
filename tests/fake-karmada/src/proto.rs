//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) into the JSON form the store
//! keeps. The envelope is the 4-byte magic `k8s\0` followed by a
//! `runtime.Unknown` whose `raw` field holds the typed object.
//!
//! Only the kinds a client is known to send as protobuf are converted
//! (Secret, ConfigMap, Namespace: what helm's typed clients write); others
//! are refused with 415 so the gap is visible rather than silent.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::util::{base64_encode, rfc3339_from_unix};

const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtoError {
    #[error("protobuf body does not start with the k8s magic prefix")]
    NoMagic,
    #[error("malformed protobuf envelope or object: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("protobuf bodies of kind {0:?} are not supported by the fake; send JSON")]
    UnsupportedKind(String),
}

/// Decodes a protobuf request body into a JSON object.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let payload = body.strip_prefix(MAGIC).ok_or(ProtoError::NoMagic)?;
    let unknown = Unknown::decode(payload)?;
    let tm = unknown.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let mut obj = match kind.as_str() {
        "Secret" => secret(core::Secret::decode(raw.as_slice())?),
        "ConfigMap" => config_map(core::ConfigMap::decode(raw.as_slice())?),
        "Namespace" => namespace(core::Namespace::decode(raw.as_slice())?),
        other => return Err(ProtoError::UnsupportedKind(other.to_string())),
    };
    let m = obj.as_object_mut().expect("converters build objects");
    m.insert("apiVersion".into(), Value::String(api_version));
    m.insert("kind".into(), Value::String(kind));
    Ok(obj)
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: Option<String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        m.insert(k.into(), Value::String(v));
    }
}

fn put_map(m: &mut Map<String, Value>, k: &str, v: BTreeMap<String, String>) {
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

fn time(t: Option<meta::Time>) -> Option<String> {
    t.and_then(|t| t.seconds).map(rfc3339_from_unix)
}

fn object_meta(md: Option<meta::ObjectMeta>) -> Value {
    let md = md.unwrap_or_default();
    let mut m = Map::new();
    put_str(&mut m, "name", md.name);
    put_str(&mut m, "generateName", md.generate_name);
    put_str(&mut m, "namespace", md.namespace);
    put_str(&mut m, "uid", md.uid);
    put_str(&mut m, "resourceVersion", md.resource_version);
    if let Some(g) = md.generation.filter(|g| *g != 0) {
        m.insert("generation".into(), json!(g));
    }
    put_str(&mut m, "creationTimestamp", time(md.creation_timestamp));
    put_map(&mut m, "labels", md.labels);
    put_map(&mut m, "annotations", md.annotations);
    if !md.finalizers.is_empty() {
        m.insert("finalizers".into(), json!(md.finalizers));
    }
    if !md.owner_references.is_empty() {
        let refs: Vec<Value> = md
            .owner_references
            .into_iter()
            .map(|r| {
                json!({
                    "apiVersion": r.api_version.unwrap_or_default(),
                    "kind": r.kind.unwrap_or_default(),
                    "name": r.name.unwrap_or_default(),
                    "uid": r.uid.unwrap_or_default(),
                    "controller": r.controller.unwrap_or(false),
                    "blockOwnerDeletion": r.block_owner_deletion.unwrap_or(false),
                })
            })
            .collect();
        m.insert("ownerReferences".into(), Value::Array(refs));
    }
    Value::Object(m)
}

fn secret(s: core::Secret) -> Value {
    let mut m = Map::new();
    m.insert("metadata".into(), object_meta(s.metadata));
    if !s.data.is_empty() {
        let data: Map<String, Value> = s
            .data
            .into_iter()
            .map(|(k, v)| (k, Value::String(base64_encode(&v))))
            .collect();
        m.insert("data".into(), Value::Object(data));
    }
    put_map(&mut m, "stringData", s.string_data);
    put_str(&mut m, "type", s.r#type);
    if let Some(i) = s.immutable {
        m.insert("immutable".into(), json!(i));
    }
    Value::Object(m)
}

fn config_map(c: core::ConfigMap) -> Value {
    let mut m = Map::new();
    m.insert("metadata".into(), object_meta(c.metadata));
    put_map(&mut m, "data", c.data);
    if !c.binary_data.is_empty() {
        let data: Map<String, Value> = c
            .binary_data
            .into_iter()
            .map(|(k, v)| (k, Value::String(base64_encode(&v))))
            .collect();
        m.insert("binaryData".into(), Value::Object(data));
    }
    if let Some(i) = c.immutable {
        m.insert("immutable".into(), json!(i));
    }
    Value::Object(m)
}

fn namespace(n: core::Namespace) -> Value {
    let mut m = Map::new();
    m.insert("metadata".into(), object_meta(n.metadata));
    if let Some(spec) = n.spec.filter(|s| !s.finalizers.is_empty()) {
        m.insert("spec".into(), json!({ "finalizers": spec.finalizers }));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_secret_envelope() {
        let secret = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("sh.helm.release.v1.web.v1".into()),
                labels: [("owner".to_string(), "helm".to_string())].into(),
                ..Default::default()
            }),
            data: [("release".to_string(), b"hi".to_vec())].into(),
            r#type: Some("helm.sh/release.v1".into()),
            ..Default::default()
        };
        let env = Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
            }),
            raw: Some(secret.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(env.encode_to_vec());
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "aGk=");
        assert_eq!(v["type"], "helm.sh/release.v1");
        assert!(matches!(decode(b"nope"), Err(ProtoError::NoMagic)));
    }
}
