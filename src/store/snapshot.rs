//! The status snapshot: what `smo status` shows, published as a file.
//!
//! redb lets one process open the store, so `smo status` cannot read it
//! while the daemon runs. The daemon therefore publishes a
//! [`StatusSnapshot`] to `{state_dir}/`[`FILE`] after every reconcile
//! ([`Store::status_snapshot`], then [`publish`]). `smo status` first tries
//! to open the store itself; when that fails because the daemon holds it
//! ([`StoreError::is_locked`], redb's `DatabaseAlreadyOpen`), it reads the
//! snapshot instead ([`read`]) and shows its `generated_at`.
//!
//! The file is replaced atomically (temporary file in the same directory,
//! fsync, rename, fsync of the directory): a reader sees the previous
//! snapshot or the new one, never a partial file. It is created with mode
//! 0600, like the store: error messages may name internal hosts.
//!
//! Secrets never reach the snapshot. The store keeps each release's full
//! manifest (drift detection needs it); the snapshot carries it redacted
//! ([`manifest::redact`]: Secret `data`/`stringData` values hidden) and
//! lists the release's objects with a digest each in
//! [`StatusSnapshot::release_objects`]. A manifest that cannot be parsed
//! cannot be redacted and is withheld whole.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::adapters::manifest::{self, ObjectSummary};

use super::access::{all, meta, newest, open_read};
use super::records::{ClusterRecord, Event, GraphRecord, RunRecord, ScaleRecord, ServiceRecord};
use super::{Store, StoreError, tables};

/// The snapshot's file name inside the state directory.
pub const FILE: &str = "status.json";

/// The journal's file name inside the state directory (see
/// [`publish_history`]).
pub const HISTORY_FILE: &str = "history.json";

/// Events in a snapshot: what fits on a screen, newest first.
pub const EVENTS: usize = 50;
/// Runs in a snapshot: enough to see whether reconciles keep failing.
pub const RUNS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSnapshot {
    /// Unix seconds.
    pub generated_at: u64,
    pub source_revision: Option<String>,
    pub graphs: Vec<GraphRecord>,
    pub services: Vec<ServiceRecord>,
    pub clusters: Vec<ClusterRecord>,
    /// Newest first.
    pub runs: Vec<RunRecord>,
    /// Newest first.
    pub events: Vec<Event>,
    /// Daemon-wide remarks that are not records (prune guard engaged,
    /// source unreachable, …).
    pub notes: Vec<String>,
    /// The scaler's last decision per service.
    #[serde(default)]
    pub scales: Vec<ScaleRecord>,
    /// Clusters provisioned through NFVCL.
    #[serde(default)]
    pub provisions: Vec<super::records::ProvisionRecord>,
    /// The objects of every installed release, one entry per service with
    /// a recorded manifest (`services[].manifest` is redacted).
    #[serde(default)]
    pub release_objects: Vec<ReleaseObjects>,
    /// The leader election as the running daemon sees it (`ha.enabled`);
    /// added by `smo status` from `leader.json`, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<crate::ha::View>,
}

/// The objects a service's release applied, as status shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseObjects {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub objects: Vec<ObjectSummary>,
}

/// The text that replaces a manifest that cannot be redacted (a YAML
/// comment, so the field still reads as an empty manifest).
pub const WITHHELD: &str =
    "# Withheld by smo: this manifest cannot be parsed, so its Secrets cannot be redacted.\n";

/// One service's manifest replaced by its redacted form, and the summary of
/// its objects (`None` without a manifest, or when it is withheld).
pub(super) fn redact_one(svc: &mut ServiceRecord) -> Option<ReleaseObjects> {
    let text = svc.manifest.as_ref()?;
    match manifest::redact(text, &svc.namespace) {
        Ok(r) => {
            svc.manifest = Some(r.manifest);
            Some(ReleaseObjects {
                project: svc.project.clone(),
                graph: svc.graph.clone(),
                service: svc.service.clone(),
                objects: r.objects,
            })
        }
        Err(_) => {
            svc.manifest = Some(WITHHELD.to_owned());
            None
        }
    }
}

impl Store {
    /// A snapshot of the whole store, read in one transaction so that it
    /// is consistent, with manifests redacted.
    pub fn status_snapshot(&self, notes: Vec<String>) -> Result<StatusSnapshot, StoreError> {
        let generated_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let mut snapshot = self.read(|txn| {
            Ok(StatusSnapshot {
                generated_at,
                source_revision: meta(&open_read(txn, tables::META)?, tables::SOURCE_REVISION)?,
                graphs: all(&open_read(txn, tables::GRAPHS)?, tables::GRAPHS)?,
                services: all(&open_read(txn, tables::SERVICES)?, tables::SERVICES)?,
                clusters: all(&open_read(txn, tables::CLUSTERS)?, tables::CLUSTERS)?,
                runs: newest(&open_read(txn, tables::RUNS)?, tables::RUNS, RUNS)?,
                events: newest(&open_read(txn, tables::EVENTS)?, tables::EVENTS, EVENTS)?,
                notes,
                scales: all(&open_read(txn, tables::SCALES)?, tables::SCALES)?,
                provisions: all(&open_read(txn, tables::PROVISIONS)?, tables::PROVISIONS)?,
                release_objects: Vec::new(),
                ha: None,
            })
        })?;
        snapshot.release_objects = snapshot
            .services
            .iter_mut()
            .filter_map(redact_one)
            .collect();
        Ok(snapshot)
    }
}

/// Writes `dir/status.json` atomically.
pub fn publish(dir: &Path, snapshot: &StatusSnapshot) -> Result<(), StoreError> {
    write_atomically(dir, FILE, snapshot)
}

/// Writes the whole journal, newest first, to `dir/history.json`
/// atomically: what `smo history` reads while the daemon holds the store.
pub fn publish_history(dir: &Path, events: &[Event]) -> Result<(), StoreError> {
    write_atomically(dir, HISTORY_FILE, events)
}

/// Reads `dir/history.json`.
pub fn read_history(dir: &Path) -> Result<Vec<Event>, StoreError> {
    read_json(&dir.join(HISTORY_FILE))
}

fn write_atomically<T: Serialize + ?Sized>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::PublishSnapshot {
        path: dir.join(name),
        source: e.into(),
    })?;
    write_bytes(dir, name, &bytes)
}

/// Writes `dir/name` atomically: a reader sees the old file or the new.
/// Replaces `dir/name` atomically and durably (for the daemon's other
/// published files).
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    write_bytes(dir, name, bytes)
}

pub(super) fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let failed = |source: std::io::Error| StoreError::PublishSnapshot {
        path: path.clone(),
        source,
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(&path).map_err(|e| failed(e.error))?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)?;
    Ok(())
}

/// Reads `dir/status.json`.
pub fn read(dir: &Path) -> Result<StatusSnapshot, StoreError> {
    read_json(&dir.join(FILE))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = std::fs::read(path).map_err(|source| StoreError::ReadSnapshot {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::DecodeSnapshot {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(notes: &[&str]) -> StatusSnapshot {
        StatusSnapshot {
            generated_at: 7,
            source_revision: Some("abc".into()),
            scales: Vec::new(),
            provisions: Vec::new(),
            release_objects: Vec::new(),
            ha: None,
            graphs: Vec::new(),
            services: Vec::new(),
            clusters: vec![ClusterRecord {
                name: "edge-1".into(),
                ready: true,
                since: 3,
                cpu_free: 1.5,
                memory_free: 2.0e9,
                gpu_free: 0.0,
            }],
            runs: Vec::new(),
            events: Vec::new(),
            notes: notes.iter().map(|note| (*note).to_owned()).collect(),
        }
    }

    #[test]
    fn publish_replaces_the_snapshot_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), &snapshot(&["first"])).unwrap();
        let second = snapshot(&["prune guard engaged"]);
        publish(dir.path(), &second).unwrap();
        assert_eq!(read(dir.path()).unwrap(), second);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE]);
    }

    #[test]
    fn reading_a_missing_snapshot_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::ReadSnapshot { .. }));
        assert!(err.to_string().contains("status.json"), "{err}");
    }

    fn service(manifest: &str) -> ServiceRecord {
        ServiceRecord {
            project: "p".into(),
            graph: "g".into(),
            service: "db".into(),
            namespace: "p".into(),
            release: "db".into(),
            release_revision: Some(1),
            input_hash: None,
            phase: super::super::records::ServicePhase::Deployed,
            clusters: Vec::new(),
            replicas: std::collections::BTreeMap::new(),
            trigger: super::super::records::TriggerState::default(),
            blocked_by: None,
            last_error: None,
            updated_at: 1,
            manifest: Some(manifest.into()),
            drifted: Vec::new(),
        }
    }

    #[test]
    fn the_snapshot_of_a_store_shows_secrets_only_as_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Store::path_in(dir.path())).unwrap();
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2-do-not-leak\n";
        store.write(|tx| tx.put_service(&service(text))).unwrap();
        // Broken manifests are withheld whole.
        let mut broken = service("kind: Secret\nstringData: {password: hunter2-do-not-leak\n");
        broken.service = "broken".into();
        store.write(|tx| tx.put_service(&broken)).unwrap();
        let snap = store.status_snapshot(Vec::new()).unwrap();
        let json = serde_json::to_string(&snap).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("password"), "keys stay: {json}");
        assert_eq!(snap.release_objects.len(), 1, "{json}");
        let creds = &snap.release_objects[0].objects[0];
        assert_eq!(
            (creds.kind.as_str(), creds.name.as_str()),
            ("Secret", "creds")
        );
        assert!(creds.digest.starts_with("sha256:"), "{creds:?}");
        let withheld = snap
            .services
            .iter()
            .find(|s| s.service == "broken")
            .unwrap();
        assert_eq!(withheld.manifest.as_deref(), Some(WITHHELD));
        // The store itself keeps the full manifest for drift detection.
        drop(snap);
        let kept = store.services_of("p", "g").unwrap();
        assert!(kept.iter().any(|s| s.manifest.as_deref() == Some(text)));
    }
}
