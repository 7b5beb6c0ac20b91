//! The plan as a Graphviz picture (`smo plan --format dot`). Pure: from the
//! plan report, the shape of each graph and the clusters to DOT text.
//!
//! Clusters are boxes; a service is drawn inside every cluster it runs on
//! (one node per cluster, so a highly available service appears twice);
//! a service without a cluster (held: its graph is infeasible, or a chart
//! that names none decides) sits in a box of its own. Connection points are
//! arrows labelled with their latency class, co-location a dashed line,
//! pins, event triggers, static placement and held services are written in
//! the node and styled. The output depends only on the inputs, in their
//! order, so the same plan always gives the same text.

use super::report::{GraphPlan, PlanReport};
use super::shape::GraphShape;
use crate::placement::LatencyClass;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A cluster box: its name and, when it cannot take work, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBox {
    pub name: String,
    /// `not ready`, `cordoned`: shown under the name, box greyed.
    pub note: Option<String>,
}

/// Shapes by `(project, graph)`.
pub type Shapes = BTreeMap<(String, String), GraphShape>;

/// Fill colours, one per graph in report order (repeating). Light enough
/// for black text; distinguishable from each other.
const FILLS: [&str; 8] = [
    "#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#e0e7ff", "#ccfbf1", "#fee2e2", "#f3e8ff",
];

/// Title of the box of services that run on no known cluster.
const NO_CLUSTER: &str = "no cluster";

/// A string as a DOT double-quoted string: quotes and backslashes escaped,
/// a line break becomes DOT's `\n`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A label of several lines, each escaped.
fn label(lines: &[String]) -> String {
    let joined: Vec<String> = lines.iter().map(|l| quote(l)).collect();
    // Each part is quoted; strip the quotes and join with DOT's newline.
    let inner: Vec<&str> = joined.iter().map(|q| &q[1..q.len() - 1]).collect();
    format!("\"{}\"", inner.join("\\n"))
}

fn class_name(c: LatencyClass) -> &'static str {
    match c {
        LatencyClass::Ultralow => "ultralow",
        LatencyClass::Low => "low",
        LatencyClass::BestEffort => "best-effort",
    }
}

fn class_colour(c: LatencyClass) -> &'static str {
    match c {
        LatencyClass::Ultralow => "#b91c1c",
        LatencyClass::Low => "#c2410c",
        LatencyClass::BestEffort => "#6b7280",
    }
}

/// One drawn node: a service on one cluster (or on none).
struct Node {
    id: String,
    cluster: Option<String>,
    lines: Vec<String>,
    style: &'static str,
    fill: &'static str,
}

fn node_id(g: &GraphPlan, service: &str, cluster: Option<&str>) -> String {
    format!(
        "{}/{}/{service}@{}",
        g.project,
        g.graph,
        cluster.unwrap_or_default()
    )
}

/// Per service, its nodes: the cluster each is on (none for a service on
/// no cluster) and the node id.
type Instances = BTreeMap<String, Vec<(Option<String>, String)>>;

/// The nodes of one graph, and for each service the ids of its nodes.
fn nodes_of(
    g: &GraphPlan,
    shape: Option<&GraphShape>,
    fill: &'static str,
) -> (Vec<Node>, Instances) {
    let mut nodes = Vec::new();
    let mut ids = Instances::new();
    let held = !matches!(g.status.as_str(), "placed" | "static");
    let mut services: Vec<&str> = g.services.iter().map(|s| s.id.as_str()).collect();
    // Services the report does not list (its graph could not be placed).
    if let Some(sh) = shape {
        for s in &sh.services {
            if !services.contains(&s.as_str()) {
                services.push(s);
            }
        }
    }
    if services.is_empty() && held {
        // An invalid graph: nothing is known of its services.
        let id = node_id(g, "", None);
        ids.entry(String::new())
            .or_default()
            .push((None, id.clone()));
        nodes.push(Node {
            id,
            cluster: None,
            lines: vec![
                format!("{}/{}", g.project, g.graph),
                format!("held: {}", g.status),
            ],
            style: "rounded,filled,bold",
            fill,
        });
    }
    for service in services {
        let placed = g.services.iter().find(|s| s.id == service);
        let chart_decides = placed.is_some_and(|p| p.reason == super::CHART_DECIDES);
        let mut lines = vec![service.to_owned(), format!("{}/{}", g.project, g.graph)];
        let mut marks = Vec::new();
        if let Some(p) = placed {
            if p.replicas > 1 {
                marks.push(format!("×{}", p.replicas));
            }
            if p.gpu {
                marks.push("GPU".to_owned());
            }
        }
        if let Some(pins) = shape.and_then(|s| s.pins.get(service)) {
            marks.push(format!("pinned: {}", pins.join(",")));
        }
        if chart_decides {
            marks.push("static (chart decides)".to_owned());
        }
        if shape.is_some_and(|s| s.on_event.contains(service)) {
            marks.push("on event".to_owned());
        }
        if held && !chart_decides {
            marks.push(format!("held: {}", g.status));
        }
        if !marks.is_empty() {
            lines.push(marks.join(" · "));
        }
        let style = if held && !chart_decides {
            "rounded,filled,bold"
        } else if chart_decides {
            "rounded,filled,dashed"
        } else if shape.is_some_and(|s| s.on_event.contains(service)) {
            "rounded,filled,dotted"
        } else {
            "rounded,filled"
        };
        let clusters: Vec<Option<String>> = match placed {
            Some(p) if !p.clusters.is_empty() => p.clusters.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        for cluster in clusters {
            let id = node_id(g, service, cluster.as_deref());
            ids.entry(service.to_owned())
                .or_default()
                .push((cluster.clone(), id.clone()));
            nodes.push(Node {
                id,
                cluster,
                lines: lines.clone(),
                style,
                fill,
            });
        }
    }
    (nodes, ids)
}

/// Renders the picture.
pub fn render(report: &PlanReport, shapes: &Shapes, clusters: &[ClusterBox]) -> String {
    let mut nodes: Vec<Node> = Vec::new();
    let mut edges: Vec<String> = Vec::new();
    for (i, g) in report.graphs.iter().enumerate() {
        let fill = FILLS[i % FILLS.len()];
        let shape = shapes.get(&(g.project.clone(), g.graph.clone()));
        let (mut graph_nodes, ids) = nodes_of(g, shape, fill);
        nodes.append(&mut graph_nodes);
        let Some(shape) = shape else { continue };
        let none = Vec::new();
        let of = |s: &str| ids.get(s).unwrap_or(&none);
        for link in &shape.links {
            let colour = class_colour(link.class);
            for (cluster, from) in of(&link.caller) {
                // The instance on the caller's cluster when there is one:
                // that is the one it calls.
                let callee = of(&link.callee);
                let local: Vec<_> = callee.iter().filter(|(c, _)| c == cluster).collect();
                let targets = if local.is_empty() {
                    callee.iter().collect()
                } else {
                    local
                };
                for (_, to) in targets {
                    edges.push(format!(
                        "  {} -> {} [label={}, color=\"{colour}\", fontcolor=\"{colour}\"];",
                        quote(from),
                        quote(to),
                        quote(class_name(link.class))
                    ));
                }
            }
        }
        for (a, b) in &shape.co_located {
            let (a, b) = (of(a), of(b));
            let mut pairs: Vec<(&String, &String)> = a
                .iter()
                .flat_map(|(ca, ia)| {
                    b.iter()
                        .filter(move |(cb, _)| cb == ca)
                        .map(move |(_, ib)| (ia, ib))
                })
                .collect();
            if pairs.is_empty() {
                pairs.extend(a.first().zip(b.first()).map(|(x, y)| (&x.1, &y.1)));
            }
            for (x, y) in pairs {
                edges.push(format!(
                    "  {} -> {} [label=\"co-located\", style=dashed, dir=none, color=\"#2563eb\", fontcolor=\"#2563eb\"];",
                    quote(x),
                    quote(y)
                ));
            }
        }
    }

    let mut boxes: Vec<(Option<&str>, Option<&str>)> = clusters
        .iter()
        .map(|c| (Some(c.name.as_str()), c.note.as_deref()))
        .collect();
    let mut unknown: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.cluster.as_deref())
        .filter(|c| !clusters.iter().any(|b| b.name == *c))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    boxes.extend(
        unknown
            .into_iter()
            .map(|c| (Some(c), Some("not in the inventory"))),
    );
    if nodes.iter().any(|n| n.cluster.is_none()) {
        boxes.push((None, None));
    }

    let mut out = String::from(
        "digraph plan {\n  rankdir=LR;\n  newrank=true;\n  fontname=\"Helvetica\";\n  node [shape=box, fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    for (i, (name, note)) in boxes.iter().enumerate() {
        let title = match (name, note) {
            (Some(n), Some(why)) => vec![(*n).to_owned(), format!("({why})")],
            (Some(n), None) => vec![(*n).to_owned()],
            (None, _) => vec![NO_CLUSTER.to_owned()],
        };
        let _ = writeln!(out, "  subgraph cluster_{i} {{");
        let _ = writeln!(out, "    label={};", label(&title));
        let colour = if note.is_some() || name.is_none() {
            "#9ca3af"
        } else {
            "#374151"
        };
        let style = if name.is_none() { "dashed" } else { "rounded" };
        let _ = writeln!(out, "    style=\"{style}\"; color=\"{colour}\";");
        let members = nodes.iter().filter(|n| n.cluster.as_deref() == *name);
        let mut empty = true;
        for n in members {
            empty = false;
            let _ = writeln!(
                out,
                "    {} [label={}, style=\"{}\", fillcolor=\"{}\"];",
                quote(&n.id),
                label(&n.lines),
                n.style,
                n.fill
            );
        }
        if empty {
            // An empty subgraph is not drawn; keep the cluster visible.
            let _ = writeln!(
                out,
                "    {} [label=\"\", shape=point, style=invis];",
                quote(&format!("@{}", name.unwrap_or_default()))
            );
        }
        out.push_str("  }\n");
    }
    for e in edges {
        out.push_str(&e);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ServicePlacement;
    use crate::plan::shape::Link;

    fn service(id: &str, clusters: &[&str], reason: &str) -> ServicePlacement {
        ServicePlacement {
            id: id.into(),
            clusters: clusters.iter().map(|c| (*c).to_owned()).collect(),
            replicas: 1,
            cpu: 1.0,
            memory_bytes: 1 << 30,
            gpu: false,
            reason: reason.into(),
            rejected: vec![],
        }
    }

    fn graph(name: &str, status: &str, services: Vec<ServicePlacement>) -> GraphPlan {
        GraphPlan {
            project: "p".into(),
            graph: name.into(),
            strategy: "milp".into(),
            status: status.into(),
            services,
            objective: None,
            solve: None,
            error: None,
            warnings: vec![],
        }
    }

    fn boxes(names: &[&str]) -> Vec<ClusterBox> {
        names
            .iter()
            .map(|n| ClusterBox {
                name: (*n).to_owned(),
                note: None,
            })
            .collect()
    }

    fn link(caller: &str, callee: &str, class: LatencyClass) -> Link {
        Link {
            caller: caller.into(),
            callee: callee.into(),
            class,
        }
    }

    #[test]
    fn quotes_and_line_breaks_in_names_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(label(&["x\"y".into(), "z".into()]), r#""x\"y\nz""#);
    }

    #[test]
    fn services_sit_in_their_clusters_and_edges_carry_the_latency_class() {
        let report = PlanReport {
            graphs: vec![graph(
                "g",
                "placed",
                vec![
                    service("web", &["edge", "core"], "ha"),
                    service("db", &["core"], "cheapest"),
                ],
            )],
            findings: vec![],
        };
        let mut shapes = Shapes::new();
        let mut shape = GraphShape {
            services: vec!["web".into(), "db".into()],
            links: vec![link("web", "db", LatencyClass::Low)],
            ..GraphShape::default()
        };
        shape.pins.insert("db".into(), vec!["core".into()]);
        shapes.insert(("p".into(), "g".into()), shape);
        let dot = render(&report, &shapes, &boxes(&["core", "edge", "idle"]));
        // web on both clusters, db only on core, the idle cluster still drawn.
        let core = dot.split("subgraph cluster_0").nth(1).unwrap();
        let core = &core[..core.find("  }").unwrap()];
        assert!(core.contains("label=\"core\""), "{dot}");
        assert!(core.contains("\"p/g/web@core\""), "{dot}");
        assert!(
            core.contains("\"p/g/db@core\" [label=\"db\\np/g\\npinned: core\""),
            "{dot}"
        );
        assert!(!core.contains("@edge"), "{dot}");
        assert!(
            dot.contains("subgraph cluster_2 {\n    label=\"idle\";"),
            "{dot}"
        );
        // Each web instance calls the db: the local one from core, the only
        // one from edge.
        assert!(
            dot.contains("\"p/g/web@core\" -> \"p/g/db@core\" [label=\"low\""),
            "{dot}"
        );
        assert!(
            dot.contains("\"p/g/web@edge\" -> \"p/g/db@core\" [label=\"low\""),
            "{dot}"
        );
        assert_eq!(dot.matches(" -> ").count(), 2, "{dot}");
        assert!(!dot.contains(NO_CLUSTER), "{dot}");
    }

    #[test]
    fn held_static_event_and_co_located_services_are_marked() {
        let report = PlanReport {
            graphs: vec![
                graph(
                    "s",
                    "static",
                    vec![service("ui", &[], crate::plan::CHART_DECIDES)],
                ),
                graph("h", "infeasible", vec![]),
                graph("bad", "invalid", vec![]),
                graph(
                    "e",
                    "placed",
                    vec![service("a", &["c"], "x"), service("b", &["c"], "x")],
                ),
            ],
            findings: vec![],
        };
        let mut shapes = Shapes::new();
        shapes.insert(
            ("p".into(), "h".into()),
            GraphShape {
                services: vec!["big".into()],
                ..GraphShape::default()
            },
        );
        let mut e = GraphShape {
            services: vec!["a".into(), "b".into()],
            ..GraphShape::default()
        };
        e.co_located.insert(("a".into(), "b".into()));
        e.on_event.insert("b".into());
        shapes.insert(("p".into(), "e".into()), e);
        let dot = render(&report, &shapes, &boxes(&["c"]));
        assert!(dot.contains("label=\"no cluster\""), "{dot}");
        assert!(
            dot.contains("\"p/s/ui@\" [label=\"ui\\np/s\\nstatic (chart decides)\", style=\"rounded,filled,dashed\""),
            "{dot}"
        );
        assert!(
            dot.contains("\"p/h/big@\" [label=\"big\\np/h\\nheld: infeasible\", style=\"rounded,filled,bold\""),
            "{dot}"
        );
        assert!(dot.contains("[label=\"p/bad\\nheld: invalid\""), "{dot}");
        assert!(
            dot.contains(
                "\"p/e/b@c\" [label=\"b\\np/e\\non event\", style=\"rounded,filled,dotted\""
            ),
            "{dot}"
        );
        assert!(
            dot.contains(
                "\"p/e/a@c\" -> \"p/e/b@c\" [label=\"co-located\", style=dashed, dir=none"
            ),
            "{dot}"
        );
    }

    #[test]
    fn a_cluster_only_the_placement_names_is_drawn_and_flagged() {
        let report = PlanReport {
            graphs: vec![graph("g", "placed", vec![service("a", &["ghost"], "x")])],
            findings: vec![],
        };
        let dot = render(&report, &Shapes::new(), &boxes(&[]));
        assert!(
            dot.contains("label=\"ghost\\n(not in the inventory)\""),
            "{dot}"
        );
    }

    #[test]
    fn the_same_plan_gives_the_same_text() {
        let report = PlanReport {
            graphs: vec![graph(
                "g",
                "placed",
                vec![service("a", &["c2", "c1"], "x"), service("b", &["c1"], "x")],
            )],
            findings: vec![],
        };
        let mut shapes = Shapes::new();
        shapes.insert(
            ("p".into(), "g".into()),
            GraphShape {
                services: vec!["a".into(), "b".into()],
                links: vec![link("a", "b", LatencyClass::Ultralow)],
                ..GraphShape::default()
            },
        );
        let first = render(&report, &shapes, &boxes(&["c1", "c2"]));
        for _ in 0..5 {
            assert_eq!(render(&report, &shapes, &boxes(&["c1", "c2"])), first);
        }
        assert!(first.starts_with("digraph plan {\n") && first.ends_with("}\n"));
    }
}
