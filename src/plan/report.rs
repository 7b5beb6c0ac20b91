//! The plan report: its JSON shape (an interface scripts rely on), its text
//! rendering, and reading a previous report back as the current placement
//! (`smo plan --current`).

use crate::placement::{ObjectiveBreakdown, ServicePlacement, SolveStats, Term};
use crate::validate::findings::Finding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphPlan {
    pub project: String,
    pub graph: String,
    pub strategy: String,
    /// `placed`, `infeasible` or `invalid`.
    pub status: String,
    #[serde(default)]
    pub services: Vec<ServicePlacement>,
    /// The objective broken down by term (absent without a placement).
    pub objective: Option<ObjectiveBreakdown>,
    pub solve: Option<SolveStats>,
    /// Why the graph has no placement (infeasible or invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    pub graphs: Vec<GraphPlan>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// Current placement by `(project, graph)` then service: what `--current`
/// provides to measure movement against.
pub type CurrentPlacement = BTreeMap<(String, String), BTreeMap<String, Vec<String>>>;

/// Reads a previous report as the current placement.
pub fn current_from_json(text: &str) -> Result<CurrentPlacement, serde_json::Error> {
    #[derive(Deserialize)]
    struct Loose {
        graphs: Vec<LooseGraph>,
    }
    #[derive(Deserialize)]
    struct LooseGraph {
        project: String,
        graph: String,
        #[serde(default)]
        services: Vec<LooseService>,
    }
    #[derive(Deserialize)]
    struct LooseService {
        id: String,
        #[serde(default)]
        clusters: Vec<String>,
    }
    let loose: Loose = serde_json::from_str(text)?;
    Ok(loose
        .graphs
        .into_iter()
        .map(|g| {
            let services = g.services.into_iter().map(|s| (s.id, s.clusters)).collect();
            ((g.project, g.graph), services)
        })
        .collect())
}

fn cores(c: f64) -> String {
    if (c - c.round()).abs() < 1e-9 {
        format!("{c:.0}")
    } else {
        format!("{c:.2}").trim_end_matches('0').to_owned()
    }
}

fn mebibytes(b: f64) -> String {
    let mi = b / (1024.0 * 1024.0);
    if mi >= 1024.0 && (mi / 1024.0 - (mi / 1024.0).round()).abs() < 1e-9 {
        format!("{:.0}Gi", mi / 1024.0)
    } else {
        format!("{mi:.0}Mi")
    }
}

/// Renders the report as text: per graph a table, the objective breakdown
/// and solve statistics, then findings.
pub fn render_text(report: &PlanReport) -> String {
    let mut out = String::new();
    for g in &report.graphs {
        let _ = writeln!(
            out,
            "{}/{} ({}): {}",
            g.project, g.graph, g.strategy, g.status
        );
        if let Some(e) = &g.error {
            let _ = writeln!(out, "  {e}");
        }
        for w in &g.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        if !g.services.is_empty() {
            let rows: Vec<[String; 7]> = g
                .services
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        if s.clusters.is_empty() {
                            "-".into()
                        } else {
                            s.clusters.join(",")
                        },
                        s.replicas.to_string(),
                        cores(s.cpu),
                        #[allow(clippy::cast_precision_loss)]
                        mebibytes(s.memory_bytes as f64),
                        if s.gpu { "yes".into() } else { "-".into() },
                        s.reason.clone(),
                    ]
                })
                .collect();
            let header = [
                "SERVICE", "CLUSTERS", "REPLICAS", "CPU", "MEMORY", "GPU", "REASON",
            ];
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (w, cell) in widths.iter_mut().zip(r.iter()) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let mut l = String::from("  ");
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        l.push_str(c);
                    } else {
                        let _ = write!(l, "{c:<width$}  ", width = widths[i]);
                    }
                }
                l.trim_end().to_owned()
            };
            let _ = writeln!(out, "{}", line(header.to_vec()));
            for r in &rows {
                let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
            }
            for s in &g.services {
                for r in &s.rejected {
                    let _ = writeln!(out, "    {} not on {}: {}", s.id, r.cluster, r.reason);
                }
            }
        }
        if let Some(o) = &g.objective {
            let term = |name: &str, t: &Term| {
                format!("{name} {:.4} (raw {:.4} × {})", t.weighted, t.raw, t.weight)
            };
            let _ = writeln!(
                out,
                "  objective {:.4} = {}; {}; {}; {}; {}",
                o.total,
                term("movement", &o.movement),
                term("traffic", &o.traffic),
                term("energy", &o.energy),
                term("cost", &o.cost),
                term("balance", &o.balance)
            );
        }
        if let Some(s) = &g.solve {
            let gap = s
                .gap
                .map_or_else(|| "-".to_owned(), |g| format!("{:.2}%", g * 100.0));
            let _ = writeln!(
                out,
                "  solve: {} in {} ms (build {} ms, solve {} ms), gap {gap}",
                s.status, s.millis, s.build_millis, s.solve_millis
            );
        }
    }
    for f in &report.findings {
        let _ = writeln!(out, "{f}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{Rejection, SolveStatus};

    fn report() -> PlanReport {
        let term = |raw: f64, weight: f64| Term {
            raw,
            weight,
            weighted: raw * weight,
        };
        PlanReport {
            graphs: vec![GraphPlan {
                project: "p".into(),
                graph: "g".into(),
                strategy: "milp".into(),
                status: "placed".into(),
                services: vec![ServicePlacement {
                    id: "a".into(),
                    clusters: vec!["c1".into(), "c2".into()],
                    replicas: 1,
                    cpu: 0.5,
                    memory_bytes: 1024 * 1024 * 1024,
                    gpu: false,
                    reason: "lowest carbon among eligible clusters".into(),
                    rejected: vec![Rejection {
                        cluster: "c3".into(),
                        reason: "not ready".into(),
                        delta: None,
                    }],
                }],
                objective: Some(ObjectiveBreakdown {
                    total: 1.5,
                    movement: term(1.0, 1.0),
                    traffic: term(0.0, 0.5),
                    energy: term(250.0, 0.002),
                    cost: term(0.0, 10.0),
                    balance: term(0.0, 1.0),
                }),
                solve: Some(SolveStats {
                    status: SolveStatus::Optimal,
                    millis: 3,
                    build_millis: 1,
                    solve_millis: 2,
                    gap: Some(0.0),
                }),
                error: None,
                warnings: vec![],
            }],
            findings: vec![],
        }
    }

    #[test]
    fn text_rendering_is_a_stable_table() {
        let text = render_text(&report());
        let expected = "\
p/g (milp): placed
  SERVICE  CLUSTERS  REPLICAS  CPU  MEMORY  GPU  REASON
  a        c1,c2     1         0.5  1Gi     -    lowest carbon among eligible clusters
    a not on c3: not ready
  objective 1.5000 = movement 1.0000 (raw 1.0000 × 1); traffic 0.0000 (raw 0.0000 × 0.5); energy 0.5000 (raw 250.0000 × 0.002); cost 0.0000 (raw 0.0000 × 10); balance 0.0000 (raw 0.0000 × 1)
  solve: optimal in 3 ms (build 1 ms, solve 2 ms), gap 0.00%
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_report_reads_back_as_the_current_placement() {
        let json = serde_json::to_string(&report()).unwrap();
        let current = current_from_json(&json).unwrap();
        assert_eq!(
            current[&("p".to_owned(), "g".to_owned())]["a"],
            vec!["c1", "c2"]
        );
    }
}
