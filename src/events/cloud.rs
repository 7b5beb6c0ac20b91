//! A journal entry as a CloudEvent 1.0 in structured JSON mode.
//!
//! - `id`: `<store id>-<journal seq>`, the same on every delivery of the
//!   same entry, unique across stores (the store id is random).
//! - `source`: `smo://<host>/<project>/<graph>`, or
//!   `smo://<host>/clusters` for an entry about a cluster.
//! - `subject`: the service, or the cluster; absent for the graph itself.
//! - `type`: from the journal's [`Kind`] vocabulary.
//! - `data`: the entry (project, graph, service, cluster, journal kind,
//!   message, sequence number) and the revision in force with its commit.

use crate::store::Kind;
use crate::store::records::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The media type of a structured CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The type of a journal entry whose kind no version of smo wrote.
const UNKNOWN_TYPE: &str = "eu.nephele.smo.journal.unknown";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub time: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// The event of journal entry `e`, published by `host` from the store
    /// `store_id`.
    pub fn of(e: &Event, host: &str, store_id: &str) -> CloudEvent {
        let kind = e.kind();
        let ty = kind.map_or(UNKNOWN_TYPE, Kind::cloud_type).to_owned();
        let about_cluster = kind.is_some_and(Kind::is_cluster) || e.cluster.is_some();
        let source = if about_cluster {
            format!("smo://{host}/clusters")
        } else {
            format!("smo://{host}/{}/{}", e.project, e.graph)
        };
        let subject = if about_cluster {
            e.cluster.clone()
        } else {
            e.service.clone()
        };
        let cause = e.cause.as_ref();
        CloudEvent {
            specversion: "1.0".into(),
            id: format!("{store_id}-{}", e.seq),
            source,
            ty,
            subject,
            time: crate::clock::rfc3339(i64::try_from(e.at).unwrap_or(i64::MAX)),
            datacontenttype: "application/json".into(),
            data: json!({
                "seq": e.seq,
                "project": non_empty(&e.project),
                "graph": non_empty(&e.graph),
                "service": e.service,
                "cluster": e.cluster,
                "kind": e.kind,
                "message": e.message,
                "revision": cause.map(|c| c.revision.clone()),
                "commit": cause.and_then(|c| c.commit.clone()),
            }),
        }
    }

    /// The body sent to a receiver (one line, no trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a CloudEvent serialises")
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::{Cause, Commit};

    fn entry(kind: &str, service: Option<&str>, cluster: Option<&str>) -> Event {
        Event {
            seq: 42,
            at: 1_796_296_050,
            project: if cluster.is_some() { "" } else { "shop" }.into(),
            graph: if cluster.is_some() { "" } else { "web" }.into(),
            service: service.map(str::to_owned),
            kind: kind.into(),
            message: "revision 3".into(),
            cluster: cluster.map(str::to_owned),
            cause: Some(Cause {
                revision: "abc123".into(),
                commit: Some(Commit {
                    author: "Ada <ada@example.org>".into(),
                    committer: "Ada <ada@example.org>".into(),
                    date: 1_796_296_000,
                    subject: "Scale the front end".into(),
                }),
            }),
        }
    }

    #[test]
    fn a_service_entry_becomes_a_structured_cloudevent() {
        let ce = CloudEvent::of(&entry("Installed", Some("front"), None), "mgmt-1", "s1");
        let v: serde_json::Value = serde_json::from_slice(&ce.to_bytes()).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "s1-42");
        assert_eq!(v["source"], "smo://mgmt-1/shop/web");
        assert_eq!(v["type"], "eu.nephele.smo.service.installed");
        assert_eq!(v["subject"], "front");
        assert_eq!(v["time"], "2026-12-03T11:07:30Z");
        assert_eq!(v["data"]["revision"], "abc123");
        assert_eq!(v["data"]["commit"]["author"], "Ada <ada@example.org>");
        assert_eq!(v["data"]["kind"], "Installed");
    }

    #[test]
    fn graph_and_cluster_entries_have_their_own_source_and_subject() {
        let graph = CloudEvent::of(&entry("Removed", None, None), "h", "s");
        assert_eq!(graph.ty, "eu.nephele.smo.graph.removed");
        assert_eq!(graph.subject, None);
        let service = CloudEvent::of(&entry("Removed", Some("a"), None), "h", "s");
        assert_eq!(service.ty, "eu.nephele.smo.service.uninstalled");
        let cluster = CloudEvent::of(&entry("ClusterNotReady", None, Some("edge-1")), "h", "s");
        assert_eq!(cluster.ty, "eu.nephele.smo.cluster.not_ready");
        assert_eq!(cluster.source, "smo://h/clusters");
        assert_eq!(cluster.subject.as_deref(), Some("edge-1"));
        assert!(cluster.data["project"].is_null());
        let unknown = CloudEvent::of(&entry("Mystery", None, None), "h", "s");
        assert_eq!(unknown.ty, UNKNOWN_TYPE);
    }

    #[test]
    fn the_id_is_the_same_for_every_delivery_of_an_entry() {
        let e = entry("Upgraded", Some("front"), None);
        assert_eq!(
            CloudEvent::of(&e, "h", "s").id,
            CloudEvent::of(&e, "h", "s").id
        );
    }
}
