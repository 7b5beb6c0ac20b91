//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `ERROR`) from a resourceVersion, or from "now" with a
//! synthetic `ADDED` for every existing object when none is given (or
//! "0"), or with `sendInitialEvents=true` (then ending the initial
//! events with the `k8s.io/initial-events-end` BOOKMARK). Objects that stop matching a label selector are not turned into
//! `DELETED` events (a documented simplification).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::ApiError;
use crate::kinds::KindSpec;
use crate::server::{Body, Shared, selectors, stream_response};
use crate::store::Event;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// An event of an object: the whole object, or only its metadata for a
/// metadata-only watch (client-go's metadata informers, kube's
/// `metadata_watcher`), as the API server answers `as=PartialObjectMetadata`.
fn object_line(kind: &str, object: &Value, metadata_only: bool) -> Bytes {
    if metadata_only {
        let partial = json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": object["metadata"],
        });
        line(kind, &partial)
    } else {
        line(kind, object)
    }
}

pub(crate) fn start(
    shared: &Arc<Shared>,
    spec: &KindSpec,
    namespace: Option<&str>,
    q: &HashMap<String, String>,
    metadata_only: bool,
) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(q)?;
    let since: Option<u64> = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    // Streaming lists (client-go's WatchList, used by helm 4's kstatus
    // waiter): the current state as ADDED events, then a BOOKMARK marking
    // the end of the initial events.
    let initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let since = if initial_events { None } else { since };
    let bookmark_head = json!({"kind": spec.kind, "apiVersion": spec.api_version()});
    let group = spec.group.clone();
    let version = spec.version.clone();
    let plural = spec.plural.clone();
    let namespace = namespace.map(str::to_string);
    let matches = move |key: &crate::store::ObjKey, obj: &Value| {
        key.group == group
            && key.version == version
            && key.plural == plural
            && namespace.as_ref().is_none_or(|ns| *ns == key.namespace)
            && ls.matches(obj)
            && fs.matches(obj)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (backlog, mut live): (Vec<Bytes>, broadcast::Receiver<Arc<Event>>) = {
        let store = shared.store();
        let backlog = match since {
            Some(rv) => match store.events_since(rv) {
                Some(evs) => evs
                    .iter()
                    .filter(|e| matches(&e.key, &e.object))
                    .map(|e| object_line(e.kind, &e.object, metadata_only))
                    .collect(),
                None => vec![line(
                    "ERROR",
                    &ApiError::new(410, "Expired", format!("too old resource version: {rv}"))
                        .status(),
                )],
            },
            None => {
                let mut out: Vec<Bytes> = store
                    .list(&spec.group, &spec.version, &spec.plural, None)
                    .into_iter()
                    .filter(|(k, v)| matches(k, v))
                    .map(|(_, v)| object_line("ADDED", v, metadata_only))
                    .collect();
                if initial_events {
                    let mut bookmark = bookmark_head.clone();
                    bookmark["metadata"] = json!({
                        "resourceVersion": store.resource_version().to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    });
                    out.push(line("BOOKMARK", &bookmark));
                }
                out
            }
        };
        (backlog, store.subscribe())
    };
    let mut epoch = shared.epoch.subscribe();
    let mut closing = shared.closing.subscribe();
    tokio::spawn(async move {
        for b in backlog {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = epoch.changed() => return,
                _ = closing.changed() => return,
                _ = tx.closed() => return,
                ev = live.recv() => match ev {
                    Ok(e) => {
                        if matches(&e.key, &e.object) && tx.send(object_line(e.kind, &e.object, metadata_only)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The client must relist, as after a real 410.
                        let _ = tx.send(line("ERROR", &ApiError::new(410, "Expired", "watch fell behind; relist").status())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(stream_response(rx))
}
