//! What a picture of the plan shows of a graph beyond where its services
//! went: the connection points with their latency class, co-location, pins
//! and event triggers, read from the descriptor. Pure.
//!
//! The rules are those of [`super::problem`], except that services a chart
//! places (static placement, no cluster named) keep their edges: the
//! picture shows the whole graph, the problem only what smo places.

use crate::descriptor::model::Qos;
use crate::desired::Graph;
use crate::placement::LatencyClass;
use std::collections::{BTreeMap, BTreeSet};

/// One connection point: `caller` calls `callee`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub caller: String,
    pub callee: String,
    /// The strictest class named for the pair (every edge is `ultralow`
    /// when the graph asks for high performance, as in the placement model).
    pub class: LatencyClass,
}

/// The parts of one graph a picture draws besides the placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphShape {
    /// Every service of the descriptor, in descriptor order.
    pub services: Vec<String>,
    /// Sorted by caller, then callee.
    pub links: Vec<Link>,
    /// Co-located pairs inside the graph, each `(a, b)` with `a < b`.
    pub co_located: BTreeSet<(String, String)>,
    /// Pinned services and the clusters they are pinned to.
    pub pins: BTreeMap<String, Vec<String>>,
    /// Services installed only when their alert fires.
    pub on_event: BTreeSet<String>,
}

fn class(q: Qos) -> LatencyClass {
    match q {
        Qos::UltraLow => LatencyClass::Ultralow,
        Qos::Low => LatencyClass::Low,
        Qos::BestEffort => LatencyClass::BestEffort,
    }
}

/// Reads the shape of a validated graph.
pub fn shape(graph: &Graph) -> GraphShape {
    let hda = &graph.descriptor.hda_graph;
    let static_placement = hda.hda_graph_intent.use_static_placement.0;
    let high_performance = hda.hda_graph_intent.high_performance.on();
    let ids: BTreeSet<&str> = hda.services.iter().map(|s| s.id.as_str()).collect();
    let mut links: BTreeMap<(String, String), LatencyClass> = BTreeMap::new();
    let mut out = GraphShape::default();
    for s in &hda.services {
        let id = s.id.to_string();
        out.services.push(id.clone());
        let intent = &s.deployment.intent;
        for cp in intent
            .connection_points
            .iter()
            .filter(|c| ids.contains(c.as_str()))
        {
            links
                .entry((id.clone(), cp.to_string()))
                .or_insert(LatencyClass::BestEffort);
        }
        for l in &intent.network.latencies {
            if let Some(t) = l.target().filter(|t| ids.contains(t)) {
                let e = links
                    .entry((id.clone(), t.to_owned()))
                    .or_insert(LatencyClass::BestEffort);
                *e = (*e).min(class(l.qos));
            }
        }
        for co in &intent.co_location {
            if co.other_graph(hda.id.as_str()).is_some() || !ids.contains(co.id()) {
                continue;
            }
            let (a, b) = (id.clone(), co.id().to_owned());
            if a != b {
                out.co_located.insert(if a < b { (a, b) } else { (b, a) });
            }
        }
        let pins = if static_placement {
            s.named_clusters()
        } else {
            intent
                .clusters
                .as_ref()
                .map(|c| c.iter().map(|n| n.to_string()).collect())
        };
        if let Some(p) = pins.filter(|p| !p.is_empty()) {
            out.pins.insert(id.clone(), p);
        }
        if s.event_trigger().is_some() {
            out.on_event.insert(id);
        }
    }
    out.links = links
        .into_iter()
        .map(|((caller, callee), c)| Link {
            caller,
            callee,
            class: if high_performance {
                LatencyClass::Ultralow
            } else {
                c
            },
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(yaml: &str) -> Graph {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("projects/p");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("g.yaml"), yaml).unwrap();
        let state = crate::desired::loader::load_root(dir.path()).unwrap();
        let g = state.valid_graphs().next().cloned();
        g.unwrap_or_else(|| panic!("invalid: {:?}", state.findings))
    }

    fn service(id: &str, intent: &str, trigger: &str) -> String {
        format!(
            "  - id: {id}
    deployment:
      trigger: {trigger}
      intent:
        compute: {{cpu: light, ram: light, storage: small, gpu: {{enabled: false}}}}
{intent}
    artifact:
      ociImage: oci://r.example/c/{id}
      ociConfig: {{type: App, implementer: HELM}}
      ociRun: {{name: HELM, version: v3}}
"
        )
    }

    fn descriptor(intent: &str, services: &[String]) -> String {
        format!(
            "hdaGraph:
  imVersion: 0.4.0
  id: g
  version: \"1\"
  designer: t
  hdaGraphIntent:
{intent}
  services:
{}",
            services.concat()
        )
    }

    const AUTO: &str = "{auto: {dependencies: []}}";
    const EVENT: &str = "{event: {condition: ANY, events: [{id: hot, source: [], condition: {promQuery: up == 0, gracePeriod: 1m, description: d}}]}}";

    #[test]
    fn links_take_the_strictest_class_and_co_location_pins_and_events_are_read() {
        let g = graph(&descriptor(
            "    useStaticPlacement: false",
            &[
                service(
                    "a",
                    "        connectionPoints: [b, c]
        network:
          latencies: [{connectionPoint: b, qos: low}, {connectionPoint: b, qos: ultralow}]
        coLocation: [c]
        clusters: [edge]",
                    AUTO,
                ),
                service("b", "", EVENT),
                service("c", "        coLocation: [a]", AUTO),
            ],
        ));
        let s = shape(&g);
        assert_eq!(s.services, ["a", "b", "c"]);
        let links: Vec<(&str, &str, LatencyClass)> = s
            .links
            .iter()
            .map(|l| (l.caller.as_str(), l.callee.as_str(), l.class))
            .collect();
        assert_eq!(
            links,
            [
                ("a", "b", LatencyClass::Ultralow),
                ("a", "c", LatencyClass::BestEffort)
            ]
        );
        // Declared on both sides, drawn once.
        assert_eq!(
            s.co_located.iter().collect::<Vec<_>>(),
            [&("a".to_owned(), "c".to_owned())]
        );
        assert_eq!(s.pins["a"], ["edge"]);
        assert_eq!(s.pins.len(), 1);
        assert_eq!(s.on_event.iter().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn high_performance_draws_every_edge_ultralow() {
        let g = graph(&descriptor(
            "    highPerformance: {enabled: true}",
            &[
                service("a", "        connectionPoints: [b]", AUTO),
                service("b", "", AUTO),
            ],
        ));
        assert_eq!(shape(&g).links[0].class, LatencyClass::Ultralow);
    }
}
