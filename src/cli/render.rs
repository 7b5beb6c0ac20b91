//! `smo render --state DIR --inventory FILE --out DIR [--helm PATH]`.
//!
//! Offline: places every valid graph as `smo plan` does, computes each
//! service's Helm values, and runs `helm template` per service, writing
//! `OUT/<project>/<graph>/<service>.yaml` — exactly what `smo run` would
//! install, without touching a cluster. Every graph and service is
//! attempted; one failure does not stop the others.
//!
//! Exit codes: 0 every service rendered, 1 a graph is invalid or infeasible
//! or a chart failed to render, 2 usage or input failure.

use crate::adapters::helm::{Helm, HelmConfig};
use crate::observe::clusters::merge;
use crate::plan::plan;
use crate::plan::report::CurrentPlacement;
use crate::release::{self, Placement};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The state root to render.
    #[arg(long)]
    pub state: PathBuf,
    /// Cluster inventory (inventory.schema.json).
    #[arg(long)]
    pub inventory: PathBuf,
    /// Output directory (created; files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// The helm binary.
    #[arg(long, env = "SMO_HELM", default_value = "helm")]
    pub helm: PathBuf,
}

/// Runs the subcommand; returns the exit code. Progress goes to `out`,
/// problems to stderr.
pub fn run(args: &RenderArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let (state, inventory) = match super::inputs::load("render", &args.state, &args.inventory, None)
    {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    for f in &state.findings {
        eprintln!("{f}");
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("smo render: cannot create {}: {e}", args.out.display());
        return Ok(2);
    }
    let (facts, _) = merge(&inventory, &state.clusters);
    let report = plan(&state, &facts, &CurrentPlacement::new());
    let helm = Helm::new(HelmConfig {
        binary: args.helm.clone(),
        kubeconfig: None,
        context: None,
        timeout: Duration::from_secs(60),
        wait: false,
        extra_args: Vec::new(),
        insecure_registries: Vec::new(),
        scratch: None,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut failed = false;
    let (mut rendered, mut errors) = (0usize, 0usize);
    for gp in &report.graphs {
        // A static graph whose charts decide is rendered as it is: smo sets
        // no cluster values on it (the chart's defaults apply).
        if gp.status != "placed" && gp.status != "static" {
            eprintln!(
                "smo render: {}/{}: {}: {}",
                gp.project,
                gp.graph,
                gp.status,
                gp.error.as_deref().unwrap_or("")
            );
            failed = true;
            continue;
        }
        let Some(graph) = state
            .valid_graphs()
            .find(|g| g.project == gp.project && g.id() == gp.graph)
        else {
            continue;
        };
        let placement: Placement = gp
            .services
            .iter()
            .map(|s| (s.id.clone(), s.clusters.clone()))
            .collect();
        let inputs = match release::inputs(graph, &placement, &args.state) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("smo render: {}/{}: {e}", gp.project, gp.graph);
                failed = true;
                errors += 1;
                continue;
            }
        };
        let dir = args.out.join(&gp.project).join(&gp.graph);
        std::fs::create_dir_all(&dir)?;
        for input in &inputs {
            match rt.block_on(helm.template(&input.spec())) {
                Ok(manifest) => {
                    let file = dir.join(format!("{}.yaml", input.service));
                    write_atomically(&file, manifest.as_bytes())?;
                    writeln!(out, "{}", file.display())?;
                    rendered += 1;
                }
                Err(e) => {
                    eprintln!(
                        "smo render: {}/{}/{}: {e}",
                        gp.project, gp.graph, input.service
                    );
                    failed = true;
                    errors += 1;
                }
            }
        }
    }
    writeln!(out, "{rendered} service(s) rendered, {errors} error(s)")?;
    Ok(i32::from(failed))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
