//! `smo plan --state DIR --inventory FILE [--current FILE] [--format text|json|dot|svg]`.
//!
//! Offline: loads and validates the state root, merges the inventory with
//! `clusters/*.yaml`, places every valid graph and prints why each service
//! went where it went (a service that static placement leaves to its chart
//! shows `static (chart decides)`, with the clusters its local chart's
//! values name). Exit codes: 0 every graph placed (or static), 1 a graph is
//! invalid or infeasible, 2 usage or input failure (unreadable state root,
//! inventory or `--current`, or `--format svg` without Graphviz).

use crate::adapters::graphviz;
use crate::desired::DesiredState;
use crate::observe::clusters::merge;
use crate::plan::dot::{self, ClusterBox, Shapes};
use crate::plan::report::{CurrentPlacement, PlanReport, current_from_json, render_text};
use crate::plan::{CHART_DECIDES, GraphModel, plan_with_models, shape};
use crate::validate::findings::{self, Finding, Pos, Severity};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The state root to plan.
    #[arg(long)]
    pub state: PathBuf,
    /// Cluster inventory (inventory.schema.json).
    #[arg(long)]
    pub inventory: PathBuf,
    /// A previous `smo plan --format json` output: the current placement
    /// that movement is measured against.
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// Output format: the table, JSON, or a picture (Graphviz DOT, or SVG
    /// drawn by Graphviz's `dot`).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Graphviz's `dot`, for `--format svg`.
    #[arg(long, env = "SMO_DOT", default_value = "dot")]
    pub dot: PathBuf,
    /// Also write each placed graph's exact MILP, as the fleet solved it,
    /// to DIR/<project>.<graph>.mps (free MPS, for any MILP solver).
    #[arg(long, value_name = "DIR")]
    pub export_mps: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

/// `smo plan`'s output formats (`text` and `json` are those of the other
/// subcommands; the pictures are the plan's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
    Dot,
    Svg,
}

/// How long `dot` may take: the pictures are a few dozen nodes, drawn in
/// well under a second; a minute means it is stuck.
const DOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the subcommand; returns the exit code.
pub fn run(args: &PlanArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    // Kept until the plan is printed: charts inside pulled artifacts are
    // read from its cache.
    let session = super::pull::Session::new(&args.registry)?;
    let artifacts = session.artifacts();
    let (state, inventory) =
        match super::inputs::load("plan", &args.state, &args.inventory, Some(&artifacts)) {
            Ok(loaded) => loaded,
            Err(code) => return Ok(code),
        };
    let current: CurrentPlacement = match &args.current {
        None => CurrentPlacement::new(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(current_from_json(&t)?))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("smo plan: cannot read --current {}: {e}", path.display());
                return Ok(2);
            }
        },
    };
    let (facts, notes) = merge(&inventory, &state.clusters);
    let (mut report, models) = plan_with_models(&state, &facts, &current);
    // A graph its charts place (status `static`) has no model to export.
    let models: Vec<GraphModel> = models
        .into_iter()
        .filter(|m| {
            report
                .graphs
                .iter()
                .any(|g| g.status == "placed" && m.graph == format!("{}/{}", g.project, g.graph))
        })
        .collect();
    if let Some(dir) = &args.export_mps
        && let Err(e) = export(dir, &models)
    {
        eprintln!("smo plan: --export-mps {}: {e}", dir.display());
        return Ok(2);
    }
    chart_clusters(&mut report, &state, &args.state);
    let inventory_file = args.inventory.display().to_string();
    report.findings.extend(notes.into_iter().map(|n| {
        Finding::new(
            &inventory_file,
            Pos { line: 1, column: 1 },
            "",
            Severity::Warning,
            format!("cluster `{}`: {}", n.cluster, n.message),
        )
    }));
    findings::sort(&mut report.findings);
    match args.format {
        PlanFormat::Text => write!(out, "{}", render_text(&report))?,
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        PlanFormat::Dot => write!(out, "{}", picture(&report, &state, &facts))?,
        PlanFormat::Svg => {
            let text = picture(&report, &state, &facts);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match rt.block_on(graphviz::svg(&args.dot, &text, DOT_TIMEOUT)) {
                Ok(svg) => write!(out, "{svg}")?,
                Err(e) if e.is_missing() => {
                    eprintln!(
                        "smo plan: --format svg needs Graphviz's `dot`, and `{}` was not found; install Graphviz (Debian: apt-get install graphviz), point --dot (or SMO_DOT) at it, or use --format dot and draw the picture elsewhere",
                        args.dot.display()
                    );
                    return Ok(2);
                }
                Err(e) => {
                    eprintln!("smo plan: {e}");
                    return Ok(2);
                }
            }
        }
    }
    let failed = report
        .graphs
        .iter()
        .any(|g| !matches!(g.status.as_str(), "placed" | "static"));
    Ok(i32::from(failed))
}

/// Writes one MPS file per placed graph.
fn export(dir: &Path, models: &[GraphModel]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for m in models {
        let text =
            crate::placement::export_mps_on(&m.model.problem, &m.options, Some(&m.model.capacity))?;
        let path = dir.join(format!("{}.mps", m.graph.replace('/', ".")));
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The plan as DOT: every cluster of the inventory as a box (in name
/// order), the graphs' shapes from their descriptors.
fn picture(
    report: &PlanReport,
    state: &DesiredState,
    facts: &[crate::observe::clusters::ClusterFacts],
) -> String {
    let shapes: Shapes = state
        .valid_graphs()
        .map(|g| ((g.project.clone(), g.id().to_owned()), shape::shape(g)))
        .collect();
    let mut boxes: Vec<ClusterBox> = facts
        .iter()
        .map(|f| ClusterBox {
            name: f.name.clone(),
            note: if !f.ready {
                Some("not ready".into())
            } else if !f.schedulable {
                Some("cordoned".into())
            } else {
                None
            },
        })
        .collect();
    boxes.sort_by(|a, b| a.name.cmp(&b.name));
    dot::render(report, &shapes, &boxes)
}

/// Fills in, for each service its chart places, the clusters the local
/// chart's own values name (nothing for a chart in a registry).
fn chart_clusters(report: &mut PlanReport, state: &DesiredState, root: &Path) {
    for plan in &mut report.graphs {
        let Some(graph) = state
            .valid_graphs()
            .find(|g| g.project == plan.project && g.id() == plan.graph)
        else {
            continue;
        };
        for placed in plan
            .services
            .iter_mut()
            .filter(|s| s.reason == CHART_DECIDES)
        {
            let service = graph
                .descriptor
                .hda_graph
                .services
                .iter()
                .find(|s| s.id.as_str() == placed.id);
            let (base, file) = graph.chart_base(root);
            if let Some(clusters) =
                service.and_then(|s| crate::release::chart::default_clusters(base, file, s))
            {
                placed.clusters = clusters;
            }
        }
    }
}
