//! In-memory object storage with a global, strictly increasing
//! resourceVersion and a bounded event history for watches.
//!
//! Invariants: every stored object's `metadata.resourceVersion` is the
//! store's version at its last write; the history holds events in
//! increasing version order; a broadcast is sent for every event while the
//! store lock is held, so a watcher that subscribes under the lock sees no
//! gap between backlog and live events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Events kept for watches that resume from an older resourceVersion.
const HISTORY: usize = 4096;

/// Identity of a stored object. `namespace` is empty for cluster-scoped kinds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjKey {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// One change, as a watch reports it.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub key: ObjKey,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<ObjKey, Value>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// Version of the newest event dropped from the history.
    floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Store {
    pub(crate) fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            floor: 0,
            tx,
        }
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or (None) in all.
    pub(crate) fn list(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<(&ObjKey, &Value)> {
        self.objects
            .iter()
            .filter(|(k, _)| {
                k.group == group
                    && k.version == version
                    && k.plural == plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .collect()
    }

    pub(crate) fn keys_in_namespace(&self, namespace: &str) -> Vec<ObjKey> {
        self.objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect()
    }

    fn record(&mut self, key: ObjKey, kind: &'static str, object: Value) {
        let ev = Arc::new(Event {
            rv: self.rv,
            key,
            kind,
            object,
        });
        if self.history.len() >= HISTORY
            && let Some(old) = self.history.pop_front()
        {
            self.floor = old.rv;
        }
        self.history.push_back(ev.clone());
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(ev);
    }

    /// Stores an object (create or replace), stamping a new resourceVersion.
    pub(crate) fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key.clone(), obj.clone());
        self.record(key, kind, obj.clone());
        obj
    }

    /// Removes an object; the returned copy carries the deletion's version.
    pub(crate) fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        self.record(key.clone(), "DELETED", obj.clone());
        Some(obj)
    }

    /// Events newer than `since`, or None when they fell out of the history.
    pub(crate) fn events_since(&self, since: u64) -> Option<Vec<Arc<Event>>> {
        if since < self.floor {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.rv > since)
                .cloned()
                .collect(),
        )
    }

    /// Forgets the event history, as an API server compacting etcd: a
    /// watch resuming from any version before now gets `410 Gone`.
    pub(crate) fn compact(&mut self) {
        // Compacted at a version newer than any a client has seen.
        self.rv += 1;
        self.history.clear();
        self.floor = self.rv;
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
