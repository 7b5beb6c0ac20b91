//! Keeps a graph's Grafana dashboards (one for the graph, one per service)
//! published while the graph exists, and deletes them when it goes (the
//! original SMO never removed them). Two sinks, usable together: the
//! Grafana HTTP API (`grafana.url` + `grafana.tokenFile`) and JSON files
//! for Grafana's file provisioning (`grafana.dashboardsDir`).
//!
//! Dashboards are built from names and configuration only, so an
//! unchanged graph publishes nothing: the hash of what was last published
//! per uid is kept in memory (a restart publishes once more, which
//! Grafana's `overwrite` makes harmless).

use crate::adapters::grafana::{DirSink, GrafanaClient, GrafanaError};
use crate::dashboards::{self, DashboardConfig};
use crate::locks::MutexExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct DashboardSync {
    cfg: DashboardConfig,
    client: Option<GrafanaClient>,
    sink: Option<DirSink>,
    published: Arc<Mutex<HashMap<String, String>>>,
}

impl DashboardSync {
    /// Dashboards built with `cfg`, published to either sink or both
    /// (neither: the sync does nothing).
    pub fn new(
        cfg: DashboardConfig,
        client: Option<GrafanaClient>,
        sink: Option<DirSink>,
    ) -> DashboardSync {
        DashboardSync {
            cfg,
            client,
            sink,
            published: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.client.is_some() || self.sink.is_some()
    }

    /// Publishes the graph's dashboards; returns uid → URL (or file) of
    /// every dashboard the graph has now. `recorded` is what the store
    /// knows, so that a dashboard it lists is not published again.
    pub async fn publish_graph(
        &self,
        project: &str,
        graph: &str,
        services: &[String],
        recorded: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, GrafanaError> {
        let mut wanted = vec![dashboards::graph_dashboard(
            project, graph, services, &self.cfg,
        )];
        wanted.extend(
            services
                .iter()
                .map(|s| dashboards::service_dashboard(project, graph, s, &self.cfg)),
        );
        let mut out = BTreeMap::new();
        let mut folder: Option<String> = None;
        for d in wanted {
            let uid = d["uid"].as_str().unwrap_or_default().to_owned();
            let hash = crate::digest::canonical_json(&d);
            if let Some(url) = recorded.get(&uid)
                && self.published().get(&uid) == Some(&hash)
            {
                out.insert(uid, url.clone());
                continue;
            }
            let mut url = String::new();
            if let Some(sink) = &self.sink {
                let (s, p, dd) = (sink.clone(), project.to_owned(), d.clone());
                let path = tokio::task::spawn_blocking(move || s.write(&p, &dd))
                    .await
                    .map_err(|e| GrafanaError::Task(e.to_string()))??;
                url = path.display().to_string();
            }
            if let Some(client) = &self.client {
                let f = match &folder {
                    Some(f) => f.clone(),
                    None => {
                        let f = client
                            .ensure_folder(
                                &dashboards::folder_uid(project),
                                &dashboards::folder_title(project, &self.cfg),
                            )
                            .await?;
                        folder = Some(f.clone());
                        f
                    }
                };
                url = client.publish(&d, &f).await?;
            }
            self.published().insert(uid.clone(), hash);
            out.insert(uid, url);
        }
        Ok(out)
    }

    /// Deletes dashboards by uid (already gone is fine).
    pub async fn delete(&self, project: &str, uids: &[String]) -> Result<(), GrafanaError> {
        for uid in uids {
            if let Some(client) = &self.client {
                client.delete(uid).await?;
            }
            if let Some(sink) = &self.sink {
                let (s, p, u) = (sink.clone(), project.to_owned(), uid.clone());
                tokio::task::spawn_blocking(move || s.remove(&p, &u))
                    .await
                    .map_err(|e| GrafanaError::Task(e.to_string()))??;
            }
            self.published().remove(uid);
        }
        Ok(())
    }

    /// Publishes one dashboard per cluster into the clusters' folder.
    pub async fn publish_clusters(&self, clusters: &[String]) -> Result<(), GrafanaError> {
        let wanted: Vec<Value> = clusters
            .iter()
            .map(|c| dashboards::cluster_dashboard(c, &self.cfg))
            .collect();
        if let Some(client) = &self.client {
            let folder = client
                .ensure_folder(
                    dashboards::CLUSTERS_FOLDER_UID,
                    &dashboards::clusters_folder_title(&self.cfg),
                )
                .await?;
            for d in &wanted {
                client.publish(d, &folder).await?;
            }
        }
        if let Some(sink) = &self.sink {
            for d in wanted {
                let s = sink.clone();
                tokio::task::spawn_blocking(move || s.write("clusters", &d))
                    .await
                    .map_err(|e| GrafanaError::Task(e.to_string()))??;
            }
        }
        Ok(())
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.published.lock_or_recover()
    }
}
