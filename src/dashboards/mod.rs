//! Grafana dashboards smo owns: one per graph, one per service, one per
//! cluster.
//!
//! Pure builders from names and a [`DashboardConfig`] to Grafana's
//! dashboard JSON model; publishing is the adapter's job
//! ([`crate::adapters::grafana`]). Invariants: the same inputs give the same
//! JSON (so publishing again is a no-op apart from Grafana's version), every
//! uid is derived from the dashboard's identity and fits Grafana's 40
//! characters, and every PromQL expression comes from the configured
//! templates.
//!
//! The module owns its configuration and its defaults; the daemon's
//! `grafana` section is translated into it by `daemon::context`.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the dashboards look like: folder titles, datasource, queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardConfig {
    /// Prefix of the title of the per-project folders (`None`: `smo`).
    pub folder: Option<String>,
    /// uid of the Prometheus datasource every panel queries.
    pub datasource: String,
    /// Substituted for `{window}` in the queries.
    pub window: String,
    pub queries: Queries,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            folder: None,
            datasource: "prometheus".into(),
            // Grafana's own variable: at least four scrape intervals, so a
            // rate never has fewer than two samples whatever the zoom.
            window: "$__rate_interval".into(),
            queries: Queries::default(),
        }
    }
}

/// PromQL templates of the dashboard panels. Placeholders: `{namespace}`
/// (the project), `{service}` (a service id, or `$service` in a graph
/// dashboard), `{cluster}`, `{window}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queries {
    pub request_rate: String,
    pub cpu: String,
    pub memory: String,
    pub replicas: String,
    pub cluster_capacity: String,
    pub cluster_allocated: String,
}

impl Default for Queries {
    /// The request rate is the original SMO's query (its example services
    /// export Flask counters); the others are cAdvisor and
    /// kube-state-metrics series, which every Prometheus stack on
    /// Kubernetes scrapes, with a `cluster` label added per member cluster.
    fn default() -> Self {
        Queries {
            request_rate: r#"sum(rate(flask_http_request_total{service="{service}"}[{window}])) by (service)"#.into(),
            cpu: r#"sum(rate(container_cpu_usage_seconds_total{namespace="{namespace}",pod=~"{service}-.*"}[{window}]))"#.into(),
            memory: r#"sum(container_memory_working_set_bytes{namespace="{namespace}",pod=~"{service}-.*"})"#.into(),
            replicas: r#"kube_deployment_status_replicas{namespace="{namespace}",deployment="{service}"}"#.into(),
            cluster_capacity: r#"sum(kube_node_status_allocatable{cluster="{cluster}",resource="cpu"})"#.into(),
            cluster_allocated: r#"sum(kube_pod_container_resource_requests{cluster="{cluster}",resource="cpu"})"#.into(),
        }
    }
}

/// Grafana's dashboard model version the JSON follows (Grafana 10.4/11).
pub const SCHEMA_VERSION: u32 = 39;

/// Grafana refuses uids longer than this.
pub const MAX_UID_LEN: usize = 40;

/// Panels are laid out two per row on Grafana's 24-column grid.
const PANEL_WIDTH: u32 = 12;
const PANEL_HEIGHT: u32 = 8;

/// `smo-` and 16 hex digits of a SHA-256 over the identity: 20 characters,
/// collisions negligible for any number of graphs one Grafana shows.
fn hashed_uid(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let hex = crate::digest::hex(&digest[..8]);
    format!("smo-{hex}")
}

/// uid of a graph's dashboard.
pub fn graph_uid(project: &str, graph: &str) -> String {
    hashed_uid(&format!("graph/{project}/{graph}"))
}

/// uid of a service's dashboard.
pub fn service_uid(project: &str, graph: &str, service: &str) -> String {
    hashed_uid(&format!("service/{project}/{graph}/{service}"))
}

/// uid of a cluster's dashboard.
pub fn cluster_uid(cluster: &str) -> String {
    hashed_uid(&format!("cluster/{cluster}"))
}

/// uid of a project's folder: `smo-PROJECT`, readable in Grafana's URLs,
/// or hashed when the project's name would pass Grafana's limit.
pub fn folder_uid(project: &str) -> String {
    let readable = format!("smo-{project}");
    if readable.len() <= MAX_UID_LEN {
        readable
    } else {
        hashed_uid(&format!("folder/{project}"))
    }
}

/// uid of the folder of the cluster dashboards. A project is a DNS label
/// and cannot start with `-`, so no project's [`folder_uid`] is this one.
pub const CLUSTERS_FOLDER_UID: &str = "smo--clusters";

/// Title of the folder of the cluster dashboards: `PREFIX clusters`.
pub fn clusters_folder_title(cfg: &DashboardConfig) -> String {
    format!("{} clusters", cfg.folder.as_deref().unwrap_or("smo"))
}

/// Title of a project's folder: `PREFIX PROJECT` (prefix `grafana.folder`,
/// default `smo`).
pub fn folder_title(project: &str, cfg: &DashboardConfig) -> String {
    format!("{} {project}", cfg.folder.as_deref().unwrap_or("smo"))
}

/// Values of the placeholders of one expression.
#[derive(Default)]
struct Vars<'a> {
    namespace: &'a str,
    service: &'a str,
    cluster: &'a str,
    window: &'a str,
}

/// Replaces `{namespace}`, `{service}`, `{cluster}` and `{window}` in one
/// pass, so a substituted value is never itself expanded; PromQL's own
/// braces (`metric{label="…"}`) are left alone.
fn expand(template: &str, vars: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let value = [
            ("{namespace}", vars.namespace),
            ("{service}", vars.service),
            ("{cluster}", vars.cluster),
            ("{window}", vars.window),
        ]
        .into_iter()
        .find(|(name, _)| tail.starts_with(name));
        match value {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn datasource(cfg: &DashboardConfig) -> Value {
    json!({"type": "prometheus", "uid": cfg.datasource})
}

/// One time-series panel per (title, unit, expression), two per row.
fn panels(cfg: &DashboardConfig, specs: &[(&str, &str, String)]) -> Vec<Value> {
    specs
        .iter()
        .zip(0u32..)
        .map(|((title, unit, expr), i)| {
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {
                    "x": (i % 2) * PANEL_WIDTH,
                    "y": (i / 2) * PANEL_HEIGHT,
                    "w": PANEL_WIDTH,
                    "h": PANEL_HEIGHT,
                },
                "datasource": datasource(cfg),
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{
                    "refId": "A",
                    "expr": expr,
                    "datasource": datasource(cfg),
                }],
            })
        })
        .collect()
}

fn service_panels(cfg: &DashboardConfig, namespace: &str, service: &str) -> Vec<Value> {
    let vars = Vars {
        namespace,
        service,
        window: &cfg.window,
        ..Vars::default()
    };
    let q = &cfg.queries;
    panels(
        cfg,
        &[
            ("Request rate", "reqps", expand(&q.request_rate, &vars)),
            ("CPU", "cores", expand(&q.cpu, &vars)),
            ("Memory", "bytes", expand(&q.memory, &vars)),
            ("Replicas", "short", expand(&q.replicas, &vars)),
        ],
    )
}

fn dashboard(
    uid: String,
    title: String,
    tags: Vec<String>,
    panels: Vec<Value>,
    templating: Vec<Value>,
) -> Value {
    json!({
        // No numeric id: Grafana matches the dashboard by uid.
        "id": null,
        "uid": uid,
        "title": title,
        "tags": tags,
        "schemaVersion": SCHEMA_VERSION,
        "editable": false,
        // What an operator looks at after a deployment or an alert.
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "panels": panels,
        "templating": {"list": templating},
    })
}

/// A graph's dashboard: a `service` variable over the graph's services and
/// the service panels for `$service`.
pub fn graph_dashboard(
    project: &str,
    graph: &str,
    services: &[String],
    cfg: &DashboardConfig,
) -> Value {
    let options: Vec<Value> = services
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"text": s, "value": s, "selected": i == 0}))
        .collect();
    let current = services
        .first()
        .map_or_else(|| json!({}), |s| json!({"text": s, "value": s}));
    let variable = json!({
        "name": "service",
        "label": "Service",
        "type": "custom",
        // Grafana's custom variables take a comma-separated list; service
        // ids are DNS labels, so no escaping is needed.
        "query": services.join(","),
        "options": options,
        "current": current,
        "multi": false,
        "includeAll": false,
    });
    dashboard(
        graph_uid(project, graph),
        format!("{project} / {graph}"),
        vec![
            "smo".into(),
            format!("project:{project}"),
            format!("graph:{graph}"),
        ],
        service_panels(cfg, project, "$service"),
        vec![variable],
    )
}

/// One service's dashboard.
pub fn service_dashboard(
    project: &str,
    graph: &str,
    service: &str,
    cfg: &DashboardConfig,
) -> Value {
    dashboard(
        service_uid(project, graph, service),
        format!("{project} / {graph} / {service}"),
        vec![
            "smo".into(),
            format!("project:{project}"),
            format!("graph:{graph}"),
            format!("service:{service}"),
        ],
        service_panels(cfg, project, service),
        Vec::new(),
    )
}

/// One member cluster's dashboard: CPU capacity and what is allocated.
pub fn cluster_dashboard(cluster: &str, cfg: &DashboardConfig) -> Value {
    let vars = Vars {
        cluster,
        window: &cfg.window,
        ..Vars::default()
    };
    let q = &cfg.queries;
    dashboard(
        cluster_uid(cluster),
        format!("cluster {cluster}"),
        vec!["smo".into(), format!("cluster:{cluster}")],
        panels(
            cfg,
            &[
                ("Capacity", "short", expand(&q.cluster_capacity, &vars)),
                ("Allocated", "short", expand(&q.cluster_allocated, &vars)),
            ],
        ),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn all_dashboards(cfg: &DashboardConfig) -> Vec<Value> {
        vec![
            graph_dashboard("shop", "web", &services(&["front", "db"]), cfg),
            service_dashboard("shop", "web", "front", cfg),
            cluster_dashboard("edge-1", cfg),
        ]
    }

    #[test]
    fn uids_are_deterministic_distinct_and_short() {
        assert_eq!(graph_uid("p", "g"), graph_uid("p", "g"));
        let uids = [
            graph_uid("p", "g"),
            graph_uid("p", "h"),
            graph_uid("q", "g"),
            service_uid("p", "g", "s"),
            cluster_uid("g"),
        ];
        let distinct: std::collections::BTreeSet<_> = uids.iter().collect();
        assert_eq!(distinct.len(), uids.len());
        let long = "x".repeat(63);
        for uid in uids
            .iter()
            .chain([&graph_uid(&long, &long), &service_uid(&long, &long, &long)])
        {
            assert!(uid.starts_with("smo-") && uid.len() <= MAX_UID_LEN, "{uid}");
        }
        assert_eq!(graph_uid("p", "g").len(), 20);
        assert_eq!(folder_uid("shop"), "smo-shop");
        assert!(folder_uid(&long).len() <= MAX_UID_LEN);
        assert_ne!(folder_uid("clusters"), CLUSTERS_FOLDER_UID);
        assert_eq!(
            graph_dashboard("p", "g", &[], &DashboardConfig::default())["uid"],
            graph_uid("p", "g")
        );
    }

    #[test]
    fn every_panel_has_the_datasource_and_a_target() {
        let cfg = DashboardConfig {
            datasource: "prom-eu".into(),
            ..DashboardConfig::default()
        };
        for d in all_dashboards(&cfg) {
            assert_eq!(d["schemaVersion"], SCHEMA_VERSION);
            assert_eq!(d["tags"][0], "smo");
            let panels = d["panels"].as_array().expect("panels");
            assert!(!panels.is_empty());
            let mut ids = std::collections::BTreeSet::new();
            for p in panels {
                assert!(ids.insert(p["id"].as_u64().expect("id")));
                assert_eq!(p["type"], "timeseries");
                assert_eq!(
                    p["datasource"],
                    json!({"type": "prometheus", "uid": "prom-eu"})
                );
                assert!(p["gridPos"]["w"].as_u64().is_some());
                let targets = p["targets"].as_array().expect("targets");
                assert_eq!(targets.len(), 1);
                assert_eq!(targets[0]["datasource"]["uid"], "prom-eu");
                assert!(!targets[0]["expr"].as_str().expect("expr").is_empty());
            }
        }
    }

    #[test]
    fn the_service_variable_lists_the_graph_services_and_panels_use_it() {
        let d = graph_dashboard(
            "shop",
            "web",
            &services(&["front", "db"]),
            &DashboardConfig::default(),
        );
        let var = &d["templating"]["list"][0];
        assert_eq!(var["name"], "service");
        assert_eq!(var["query"], "front,db");
        let listed: Vec<&str> = var["options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|o| o["value"].as_str().expect("value"))
            .collect();
        assert_eq!(listed, ["front", "db"]);
        assert_eq!(var["current"]["value"], "front");
        for p in d["panels"].as_array().expect("panels") {
            assert!(
                p["targets"][0]["expr"]
                    .as_str()
                    .expect("expr")
                    .contains("$service")
            );
        }
    }

    #[test]
    fn queries_come_from_the_configuration() {
        let mut cfg = DashboardConfig {
            window: "2m".into(),
            ..DashboardConfig::default()
        };
        cfg.queries.request_rate = r#"my_rate{ns="{namespace}",svc="{service}"}[{window}]"#.into();
        cfg.queries.cluster_capacity = r#"my_capacity{c="{cluster}"}"#.into();
        let d = service_dashboard("shop", "web", "front", &cfg);
        assert_eq!(
            d["panels"][0]["targets"][0]["expr"],
            r#"my_rate{ns="shop",svc="front"}[2m]"#
        );
        let c = cluster_dashboard("edge-1", &cfg);
        assert_eq!(
            c["panels"][0]["targets"][0]["expr"],
            r#"my_capacity{c="edge-1"}"#
        );
        // The defaults: the original SMO's request rate, Grafana's window.
        let d = service_dashboard("shop", "web", "front", &DashboardConfig::default());
        assert_eq!(
            d["panels"][0]["targets"][0]["expr"],
            r#"sum(rate(flask_http_request_total{service="front"}[$__rate_interval])) by (service)"#
        );
    }

    #[test]
    fn expansion_is_one_pass_and_keeps_promql_braces() {
        let vars = Vars {
            namespace: "{service}",
            service: "s",
            ..Vars::default()
        };
        assert_eq!(
            expand("a{b=\"{namespace}\"} {x} {", &vars),
            "a{b=\"{service}\"} {x} {"
        );
    }
}
