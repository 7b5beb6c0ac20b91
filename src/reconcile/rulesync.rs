//! Keeps a graph's alert rules where Prometheus finds them: a rules file
//! (then `POST /-/reload`) or a `PrometheusRule` object on Karmada (then the
//! Prometheus Operator's ruleSelector picks it up). The reconciler computes
//! the rule group; this module only makes the sink match it.

use super::actions::owned::object_ref;
use crate::adapters::karmada::{Karmada, KarmadaError, Owner};
use crate::adapters::prometheus::{Prometheus, PrometheusError};
use crate::rules::dir::{Change, DirError, DirSink};
use crate::rules::{self, Group};
use crate::spec::config::{Config, RuleSink};
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
}

impl RuleSync {
    pub fn new(sink: Sink, severity: String, prometheus: Option<Prometheus>) -> RuleSync {
        RuleSync {
            sink,
            severity,
            prometheus,
            applied: Arc::default(),
        }
    }

    pub fn none() -> RuleSync {
        RuleSync::new(Sink::None, String::new(), None)
    }

    pub fn from_config(config: &Config, prometheus: Option<Prometheus>) -> RuleSync {
        let sink = match &config.prometheus.rules {
            RuleSink::None => Sink::None,
            RuleSink::Dir(dir) => Sink::Dir(DirSink {
                dir: dir.clone(),
                promtool: config.prometheus.promtool.clone(),
            }),
            RuleSink::PrometheusRule { namespace, labels } => Sink::Object {
                namespace: namespace.clone(),
                labels: labels.clone(),
            },
        };
        RuleSync::new(sink, config.prometheus.severity.clone(), prometheus)
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
        let graph = format!("{}/{}", owner.project, owner.graph);
        match &self.sink {
            Sink::None => Ok(None),
            Sink::Dir(sink) => {
                let (s, g, p) = (sink.clone(), group.clone(), owner.clone());
                let change = tokio::task::spawn_blocking(move || s.sync(&p.project, &p.graph, &g))
                    .await
                    .map_err(|e| RuleError::Join(e.to_string()))??;
                if change == Change::Unchanged {
                    return Ok(None);
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
                    let Some(pos) = owned.iter().position(is_ours) else {
                        return Ok(None);
                    };
                    let o = owned.remove(pos);
                    if let Err(e) = karmada.delete(&object_ref(&o)).await {
                        owned.push(o);
                        return Err(e.into());
                    }
                    deleted.push(o);
                    self.applied().remove(&name);
                    return Ok(Some(format!("PrometheusRule {namespace}/{name} deleted")));
                }
                rules::validate(group).map_err(DirError::from)?;
                let object =
                    rules::prometheus_rule(&owner.project, &owner.graph, group, namespace, labels);
                let hash = crate::digest::canonical_json(&object);
                if owned.iter().any(is_ours) && self.applied().get(&name) == Some(&hash) {
                    return Ok(None);
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
                Ok(Some(format!(
                    "{} alert rule(s) in PrometheusRule {namespace}/{name}",
                    group.rules.len()
                )))
            }
        }
    }

    /// Removes the rules file of a graph that left the desired state (a
    /// `PrometheusRule` object is pruned with the graph's owned objects).
    pub async fn remove(&self, project: &str, graph: &str) -> Result<(), RuleError> {
        let Sink::Dir(sink) = &self.sink else {
            return Ok(());
        };
        let (s, p, g) = (sink.clone(), project.to_owned(), graph.to_owned());
        let removed = tokio::task::spawn_blocking(move || s.remove(&p, &g))
            .await
            .map_err(|e| RuleError::Join(e.to_string()))??;
        if removed && let Some(prom) = &self.prometheus {
            prom.reload().await.map_err(|source| RuleError::Reload {
                graph: format!("{project}/{graph}"),
                source,
            })?;
        }
        Ok(())
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
            Ok(()) => Ok(()),
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
                } else if let Err(r) = prom.reload().await {
                    tracing::warn!(error = %r, graph = %graph, "reload after restoring the rules failed");
                }
                Err(RuleError::Refused {
                    graph: graph.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl crate::retry::Transient for RuleError {
    fn is_transient(&self) -> bool {
        RuleError::is_transient(self)
    }
}
