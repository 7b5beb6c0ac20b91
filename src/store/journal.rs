//! The journals' records: the event journal (what smo did, with the
//! revision that caused it) and the history of reconcile runs. Both are
//! bounded tables under growing sequence numbers, assigned by the store.

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::provenance::Cause;

/// One entry of the event journal. `seq` is assigned by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
    pub project: String,
    pub graph: String,
    pub service: Option<String>,
    /// The journal name of a [`Kind`](super::Kind).
    pub kind: String,
    pub message: String,
    /// The cluster an entry about a cluster concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The desired-state revision in force (and its commit) when smo
    /// acted; `None` for entries older than the field, and for what no
    /// revision caused (a cluster turning NotReady).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl Event {
    /// The entry's kind; `None` for a name no version of smo wrote.
    pub fn kind(&self) -> Option<Kind> {
        Kind::of_journal(&self.kind, self.service.is_some())
    }
}

/// An event to append; the store gives it the next sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub at: u64,
    pub project: String,
    pub graph: String,
    pub service: Option<String>,
    pub kind: Kind,
    pub message: String,
    pub cluster: Option<String>,
    pub cause: Option<Cause>,
}

impl NewEvent {
    /// An entry about a graph (or one of its services).
    pub fn graph(
        at: u64,
        key: (&str, &str),
        service: Option<&str>,
        kind: Kind,
        message: impl Into<String>,
    ) -> NewEvent {
        NewEvent {
            at,
            project: key.0.to_owned(),
            graph: key.1.to_owned(),
            service: service.map(str::to_owned),
            kind,
            message: message.into(),
            cluster: None,
            cause: None,
        }
    }

    /// An entry about a cluster.
    pub fn cluster(at: u64, cluster: &str, kind: Kind, message: impl Into<String>) -> NewEvent {
        NewEvent {
            at,
            project: String::new(),
            graph: String::new(),
            service: None,
            kind,
            message: message.into(),
            cluster: Some(cluster.to_owned()),
            cause: None,
        }
    }

    #[must_use]
    pub fn caused_by(mut self, cause: Option<Cause>) -> NewEvent {
        self.cause = cause;
        self
    }

    pub(crate) fn with_seq(self, seq: u64) -> Event {
        Event {
            seq,
            at: self.at,
            project: self.project,
            graph: self.graph,
            service: self.service,
            kind: self.kind.journal().to_owned(),
            message: self.message,
            cluster: self.cluster,
            cause: self.cause,
        }
    }
}

/// One reconcile run over the whole desired state. `seq` is assigned by
/// the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub seq: u64,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds.
    pub finished_at: u64,
    pub revision: Option<String>,
    pub graphs_reconciled: u32,
    pub errors: u32,
}

/// A run to append; the store gives it the next sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub started_at: u64,
    pub finished_at: u64,
    pub revision: Option<String>,
    pub graphs_reconciled: u32,
    pub errors: u32,
}

impl NewRun {
    pub(crate) fn with_seq(self, seq: u64) -> RunRecord {
        RunRecord {
            seq,
            started_at: self.started_at,
            finished_at: self.finished_at,
            revision: self.revision,
            graphs_reconciled: self.graphs_reconciled,
            errors: self.errors,
        }
    }
}
