//! The PromQL a service's scaling reads: its request-rate query (the
//! descriptor's `scaling.query`, or the configured template) with the
//! placeholders filled in. One function for the scaling loop and for
//! `smo profile`, so that the profile fits exactly the rate the scaler
//! later compares against `alpha·replicas + beta`.
//!
//! Placeholders: `{service}`, `{window}`, `{namespace}`, `{project}`,
//! `{graph}`. Values are DNS-1123 labels (checked by validation) and a
//! Prometheus duration, so no escaping is needed.

use crate::desired::Graph;
use crate::spec::settings::ScalingSettings;
use std::time::Duration;

/// What a query template's placeholders are replaced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryVars<'a> {
    pub service: &'a str,
    /// Where the release lives (the project, in practice).
    pub namespace: &'a str,
    pub project: &'a str,
    pub graph: &'a str,
    /// The rate window, already in Prometheus's duration form.
    pub window: String,
}

impl<'a> QueryVars<'a> {
    /// The variables of service `index` of `graph`, released in
    /// `namespace`, with the configured rate window.
    pub fn of(
        graph: &'a Graph,
        index: usize,
        namespace: &'a str,
        settings: &ScalingSettings,
    ) -> Self {
        QueryVars {
            service: graph.descriptor.hda_graph.services[index].id.as_str(),
            namespace,
            project: &graph.project,
            graph: graph.id(),
            window: prom_duration(settings.rate_window),
        }
    }
}

/// `template` with every placeholder filled in.
pub fn fill(template: &str, vars: &QueryVars<'_>) -> String {
    template
        .replace("{service}", vars.service)
        .replace("{window}", &vars.window)
        .replace("{namespace}", vars.namespace)
        .replace("{project}", vars.project)
        .replace("{graph}", vars.graph)
}

/// The request-rate query of service `index` of `graph`: its own
/// `scaling.query`, or the configured template.
pub fn rate_query(
    graph: &Graph,
    index: usize,
    namespace: &str,
    settings: &ScalingSettings,
) -> String {
    let s = &graph.descriptor.hda_graph.services[index];
    let template = s
        .deployment
        .intent
        .scaling
        .as_ref()
        .and_then(|sc| sc.query.as_ref())
        .map_or(settings.query.as_str(), |q| q.as_str());
    fill(template, &QueryVars::of(graph, index, namespace, settings))
}

/// A duration the way PromQL reads it (whole seconds when it can).
pub fn prom_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_the_way_prometheus_reads_them() {
        assert_eq!(prom_duration(Duration::from_secs(60)), "60s");
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let vars = QueryVars {
            service: "api",
            namespace: "ns",
            project: "shop",
            graph: "web",
            window: "2m".into(),
        };
        assert_eq!(
            fill(
                "x{service=\"{service}\",ns=\"{namespace}\",p=\"{project}\",g=\"{graph}\"}[{window}]",
                &vars
            ),
            "x{service=\"api\",ns=\"ns\",p=\"shop\",g=\"web\"}[2m]"
        );
    }

    fn graph(scaling: &str) -> Graph {
        crate::scaling::testing::graph_with_scaling(scaling).expect("a valid graph")
    }

    #[test]
    fn the_descriptor_query_wins_over_the_configured_template() {
        let settings = ScalingSettings::default();
        let own = graph("alpha: 10\nquery: own{s=\"{service}\",w=\"{window}\"}");
        assert_eq!(
            rate_query(&own, 0, "shop", &settings),
            "own{s=\"api\",w=\"60s\"}"
        );
        let default = graph("");
        assert_eq!(
            rate_query(&default, 0, "shop", &settings),
            r#"sum(rate(flask_http_request_total{service="api"}[60s])) by (service)"#
        );
    }
}
