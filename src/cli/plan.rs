//! `smo plan --state DIR --inventory FILE [--current FILE] [--format text|json]`.
//!
//! Offline: loads and validates the state root, merges the inventory with
//! `clusters/*.yaml`, places every valid graph and prints why each service
//! went where it went (a service that static placement leaves to its chart
//! shows `static (chart decides)`, with the clusters its local chart's
//! values name). Exit codes: 0 every graph placed (or static), 1 a graph is
//! invalid or infeasible, 2 usage or input failure (unreadable state root,
//! inventory or `--current`).

use super::validate::Format;
use crate::desired::DesiredState;
use crate::observe::clusters::merge;
use crate::plan::report::{CurrentPlacement, PlanReport, current_from_json, render_text};
use crate::plan::{CHART_DECIDES, GraphModel, plan_with_models};
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write each placed graph's exact MILP, as the fleet solved it,
    /// to DIR/<project>.<graph>.mps (free MPS, for any MILP solver).
    #[arg(long, value_name = "DIR")]
    pub export_mps: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

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
        Format::Text => write!(out, "{}", render_text(&report))?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
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
