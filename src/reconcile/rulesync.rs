//! Keeps a graph's alert rules where Prometheus finds them: a rules file
//! (then `POST /-/reload`) or a `PrometheusRule` object on Karmada (then the
//! Prometheus Operator's ruleSelector picks it up). The reconciler computes
//! the rule group; this module only makes the sink match it.
//!
//! Names: `smo-PROJECT.GRAPH` ([`rules::object_name`]). The graph's object
//! under the former, ambiguous name (`smo-PROJECT-GRAPH`) is found among the
//! graph's own recorded owned objects — positive evidence that smo created
//! it for this graph — and deleted once the new one is applied; the rules
//! directory does the same with its files ([`DirSink`]).
//!
//! Reloads: a changed rules file owes Prometheus a reload until Prometheus
//! acknowledges one. The debt is a marker file in the rules directory
//! ([`crate::rules::dir::RELOAD_PENDING`]), written before the change, so a
//! failed or interrupted reload is retried by the next sync of any graph
//! (whose own file may be unchanged), also after a restart. Directory syncs
//! run one at a time, so that one sync never clears the debt another one
//! just incurred.

use super::actions::owned::object_ref;
use crate::adapters::karmada::{Karmada, KarmadaError, Owner};
use crate::adapters::prometheus::{Prometheus, PrometheusError};
use crate::keys::GraphKey;
use crate::locks::MutexExt;
use crate::rules::dir::{Change, DirError, DirSink};
use crate::rules::{self, Group};
use crate::store::records::OwnedObject;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub enum Sink {
    /// No sink configured: event-triggered services wait for alerts that
    /// an operator's own rules must produce.
    None,
    Dir(DirSink),
    Object {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error("Prometheus refused the new rules of {graph} and keeps the previous ones: {message}")]
    Refused { graph: String, message: String },
    #[error("rules of {graph} written, but Prometheus was not reloaded: {source}")]
    Reload {
        graph: String,
        #[source]
        source: PrometheusError,
    },
    #[error(transparent)]
    Karmada(#[from] KarmadaError),
    #[error("rules task failed: {0}")]
    Join(String),
}

impl RuleError {
    pub fn is_transient(&self) -> bool {
        match self {
            RuleError::Dir(DirError::Write { .. } | DirError::Remove { .. }) => true,
            RuleError::Dir(_) | RuleError::Refused { .. } => false,
            RuleError::Reload { source, .. } => source.is_transient(),
            RuleError::Karmada(e) => e.is_transient(),
            RuleError::Join(_) => true,
        }
    }
}

#[derive(Clone)]
pub struct RuleSync {
    pub sink: Sink,
    pub severity: String,
    /// Reloaded after a rules file changed (when configured).
    pub prometheus: Option<Prometheus>,
    /// Object sink: name → hash of the object last applied, so an
    /// unchanged group costs no API call.
    applied: Arc<Mutex<HashMap<String, String>>>,
    /// Held from a rules-directory change until its reload is settled.
    dir_lock: Arc<tokio::sync::Mutex<()>>,
}

impl RuleSync {
    pub fn new(sink: Sink, severity: String, prometheus: Option<Prometheus>) -> RuleSync {
        RuleSync {
            sink,
            severity,
            prometheus,
            applied: Arc::default(),
            dir_lock: Arc::default(),
        }
    }

    pub fn none() -> RuleSync {
        RuleSync::new(Sink::None, String::new(), None)
    }

    /// Makes the sink hold `group` for the graph of `owner` (nothing when
    /// the group is empty). Returns a description of what changed.
    pub async fn sync(
        &self,
        karmada: &Karmada,
        owner: &Owner,
        group: &Group,
        owned: &mut Vec<OwnedObject>,
        deleted: &mut Vec<OwnedObject>,
    ) -> Result<Option<String>, RuleError> {
        let graph = GraphKey::new(&owner.project, &owner.graph).to_string();
        match &self.sink {
            Sink::None => Ok(None),
            Sink::Dir(sink) => {
                let _one_at_a_time = self.dir_lock.lock().await;
                let reloads = self.prometheus.is_some();
                let (s, g, p) = (sink.clone(), group.clone(), owner.clone());
                let (change, pending) = tokio::task::spawn_blocking(move || {
                    let change = s.sync_marking(&p.project, &p.graph, &g, reloads)?;
                    Ok::<_, DirError>((change, s.reload_pending()))
                })
                .await
                .map_err(|e| RuleError::Join(e.to_string()))??;
                if change == Change::Unchanged {
                    if !(reloads && pending) {
                        return Ok(None);
                    }
                    self.reload_owed(sink, &graph).await?;
                    return Ok(Some(
                        "Prometheus reloaded (an earlier reload was not acknowledged)".into(),
                    ));
                }
                self.reload_or_restore(sink, owner, &graph, change).await?;
                Ok(Some(format!(
                    "{} alert rule(s) in {}",
                    group.rules.len(),
                    sink.file(&owner.project, &owner.graph).display()
                )))
            }
            Sink::Object { namespace, labels } => {
                let name = rules::object_name(&owner.project, &owner.graph);
                let is_ours = |o: &OwnedObject| {
                    o.kind == rules::PROMETHEUS_RULE_KIND
                        && o.name == name
                        && o.namespace.as_deref() == Some(namespace.as_str())
                };
                if group.rules.is_empty() {
                    let mut gone = Vec::new();
                    if let Some(pos) = owned.iter().position(is_ours) {
                        let o = owned.remove(pos);
                        if let Err(e) = karmada.delete(&object_ref(&o)).await {
                            owned.push(o);
                            return Err(e.into());
                        }
                        gone.push(format!("PrometheusRule {namespace}/{name} deleted"));
                        deleted.push(o);
                        self.applied().remove(&name);
                    }
                    gone.extend(self.delete_legacy(karmada, owner, owned, deleted).await?);
                    return Ok((!gone.is_empty()).then(|| gone.join("; ")));
                }
                rules::validate(group).map_err(DirError::from)?;
                let object =
                    rules::prometheus_rule(&owner.project, &owner.graph, group, namespace, labels);
                let hash = crate::digest::canonical_json(&object);
                if owned.iter().any(is_ours) && self.applied().get(&name) == Some(&hash) {
                    // Applied; an old-named object still recorded goes now.
                    let gone = self.delete_legacy(karmada, owner, owned, deleted).await?;
                    return Ok((!gone.is_empty()).then(|| gone.join("; ")));
                }
                karmada.apply(&object, owner).await?;
                self.applied().insert(name.clone(), hash);
                if !owned.iter().any(is_ours) {
                    owned.push(OwnedObject {
                        project: owner.project.clone(),
                        graph: owner.graph.clone(),
                        api_version: rules::PROMETHEUS_RULE_API.into(),
                        kind: rules::PROMETHEUS_RULE_KIND.into(),
                        namespace: Some(namespace.clone()),
                        name: name.clone(),
                    });
                }
                // The new object is in place before the old one goes, so the
                // graph's rules are never absent.
                let mut what = vec![format!(
                    "{} alert rule(s) in PrometheusRule {namespace}/{name}",
                    group.rules.len()
                )];
                what.extend(self.delete_legacy(karmada, owner, owned, deleted).await?);
                Ok(Some(what.join("; ")))
            }
        }
    }

    /// Deletes the graph's `PrometheusRule` recorded under the legacy name
    /// (in any namespace: it is this graph's own record), moving its record
    /// from `owned` to `deleted`.
    async fn delete_legacy(
        &self,
        karmada: &Karmada,
        owner: &Owner,
        owned: &mut Vec<OwnedObject>,
        deleted: &mut Vec<OwnedObject>,
    ) -> Result<Vec<String>, RuleError> {
        let legacy = rules::legacy_object_name(&owner.project, &owner.graph);
        let mut done = Vec::new();
        while let Some(pos) = owned.iter().position(|o| {
            o.kind == rules::PROMETHEUS_RULE_KIND
                && o.name == legacy
                && o.project == owner.project
                && o.graph == owner.graph
        }) {
            let o = owned.remove(pos);
            if let Err(e) = karmada.delete(&object_ref(&o)).await {
                owned.push(o);
                return Err(e.into());
            }
            done.push(format!(
                "PrometheusRule {}/{} (former name) deleted",
                o.namespace.as_deref().unwrap_or_default(),
                o.name
            ));
            self.applied().remove(&o.name);
            deleted.push(o);
        }
        Ok(done)
    }

    /// Removes the rules file of a graph that left the desired state (a
    /// `PrometheusRule` object is pruned with the graph's owned objects).
    pub async fn remove(&self, project: &str, graph: &str) -> Result<(), RuleError> {
        let Sink::Dir(sink) = &self.sink else {
            return Ok(());
        };
        let _one_at_a_time = self.dir_lock.lock().await;
        let reloads = self.prometheus.is_some();
        let (s, p, g) = (sink.clone(), project.to_owned(), graph.to_owned());
        let pending = tokio::task::spawn_blocking(move || {
            s.remove(&p, &g, reloads)?;
            Ok::<_, DirError>(s.reload_pending())
        })
        .await
        .map_err(|e| RuleError::Join(e.to_string()))??;
        if reloads && pending {
            self.reload_owed(sink, &GraphKey::new(project, graph).to_string())
                .await?;
        }
        Ok(())
    }

    /// Reloads Prometheus for a debt recorded earlier, and clears it once
    /// Prometheus acknowledged.
    async fn reload_owed(&self, sink: &DirSink, graph: &str) -> Result<(), RuleError> {
        let Some(prom) = &self.prometheus else {
            return Ok(());
        };
        prom.reload().await.map_err(|source| RuleError::Reload {
            graph: graph.to_owned(),
            source,
        })?;
        clear_debt(sink).await
    }

    async fn reload_or_restore(
        &self,
        sink: &DirSink,
        owner: &Owner,
        graph: &str,
        change: Change,
    ) -> Result<(), RuleError> {
        let Some(prom) = &self.prometheus else {
            return Ok(());
        };
        match prom.reload().await {
            Ok(()) => clear_debt(sink).await,
            Err(e) if e.is_transient() => Err(RuleError::Reload {
                graph: graph.to_owned(),
                source: e,
            }),
            Err(e) => {
                // Prometheus keeps running with its previous rules while the
                // new file sits on disk; put the old file back so that its
                // next restart does not fail on ours.
                let (s, p) = (sink.clone(), owner.clone());
                let restored =
                    tokio::task::spawn_blocking(move || s.restore(&p.project, &p.graph, &change))
                        .await
                        .map_err(|e| RuleError::Join(e.to_string()))?;
                if let Err(r) = restored {
                    tracing::error!(error = %r, graph = %graph, "could not restore the previous rules file");
                } else {
                    match prom.reload().await {
                        Ok(()) => clear_debt(sink).await?,
                        Err(r) => {
                            tracing::warn!(error = %r, graph = %graph, "reload after restoring the rules failed");
                        }
                    }
                }
                Err(RuleError::Refused {
                    graph: graph.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.applied.lock_or_recover()
    }
}

/// Prometheus acknowledged a reload: the marker goes.
async fn clear_debt(sink: &DirSink) -> Result<(), RuleError> {
    let s = sink.clone();
    tokio::task::spawn_blocking(move || s.clear_reload_pending())
        .await
        .map_err(|e| RuleError::Join(e.to_string()))?
        .map_err(RuleError::from)
}

impl crate::retry::Transient for RuleError {
    fn is_transient(&self) -> bool {
        RuleError::is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::prometheus::PrometheusConfig;
    use crate::rules::Rule;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A Prometheus stand-in that answers `POST /-/reload` with the next
    /// status of `answers` (the last one repeats), counting the calls.
    async fn prometheus(answers: Vec<u16>) -> (Prometheus, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let status = answers[n.min(answers.len() - 1)];
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        let prom = Prometheus::new(PrometheusConfig {
            url,
            timeout: std::time::Duration::from_secs(5),
            retries: 0,
        })
        .unwrap();
        (prom, calls)
    }

    /// Never contacted: the directory sink does not use Karmada.
    async fn karmada(dir: &std::path::Path) -> Karmada {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: \"http://127.0.0.1:1\"}\n  name: c\ncontexts:\n- context: {cluster: c, user: u}\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user: {token: x}\n",
        )
        .unwrap();
        Karmada::connect(Some(&path), None).await.unwrap()
    }

    fn group() -> Group {
        Group {
            name: "smo/p/g".into(),
            rules: vec![Rule {
                alert: "ev".into(),
                expr: "vector(1)".into(),
                for_: "0s".into(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            }],
        }
    }

    /// Regression: a reload that failed after the file was written was never
    /// retried — the next sync found the file unchanged and returned.
    #[tokio::test]
    async fn a_failed_reload_is_retried_until_prometheus_acknowledges_it() {
        let tmp = tempfile::tempdir().unwrap();
        let karmada = karmada(tmp.path()).await;
        let (prom, calls) = prometheus(vec![503, 200]).await;
        let sink = DirSink {
            dir: tmp.path().join("rules"),
            promtool: None,
        };
        let owner = Owner {
            project: "p".into(),
            graph: "g".into(),
        };
        let (mut owned, mut deleted) = (Vec::new(), Vec::new());
        let first = RuleSync::new(Sink::Dir(sink.clone()), String::new(), Some(prom.clone()));
        let err = first
            .sync(&karmada, &owner, &group(), &mut owned, &mut deleted)
            .await
            .unwrap_err();
        assert!(matches!(err, RuleError::Reload { .. }), "{err}");
        assert!(sink.file("p", "g").exists());
        assert!(sink.reload_pending());

        // A restarted daemon (a new RuleSync) finds the file unchanged and
        // still reloads.
        let restarted = RuleSync::new(Sink::Dir(sink.clone()), String::new(), Some(prom));
        let done = restarted
            .sync(&karmada, &owner, &group(), &mut owned, &mut deleted)
            .await
            .unwrap();
        assert!(done.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(!sink.reload_pending());

        // Acknowledged: an unchanged file costs no reload any more.
        let again = restarted
            .sync(&karmada, &owner, &group(), &mut owned, &mut deleted)
            .await
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
