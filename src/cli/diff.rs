//! `smo diff --state DIR [--offline] [--inventory FILE] [--format text|json]`.
//!
//! What the desired state in DIR would change: against the live Karmada
//! (helm's release records and smo's PropagationPolicies, read with the
//! configuration's kubeconfig), or with `--offline` against the daemon's
//! store. The desired side is placed as the daemon places it and each
//! service's chart rendered with `helm template`. The verdicts are
//! [`crate::diff::compare`]'s.
//!
//! Exit codes, as `kubectl diff`: 0 nothing would change, 1 something
//! would, 2 usage or runtime failure (a chart that does not render
//! included: the diff would be incomplete).

use crate::adapters::helm::Helm;
use crate::diff::desired::{Running, from_values, placement, skeleton};
use crate::diff::{self, DesiredService, Observed, Rendered, Want, observe};
use crate::keys::GraphKey;
use crate::observe::clusters::{ClusterFacts, merge};
use crate::reconcile::placed::{placement_inputs_hash, placement_revision};
use crate::reconcile::propagation;
use crate::release::Placement;
use crate::spec::config::{self, Config};
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Where the host configuration is, unless `--config` says.
const DEFAULT_CONFIG: &str = "/etc/smo/config.yaml";

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The desired state root (a checkout of the merge request, say).
    #[arg(long)]
    pub state: PathBuf,
    /// Compare with the daemon's store (`stateDir`) instead of the live
    /// Karmada. Needs `--inventory`, and the daemon stopped (redb admits
    /// one process).
    #[arg(long)]
    pub offline: bool,
    /// Cluster inventory (inventory.schema.json); default: Karmada's
    /// clusters, as the daemon reads them.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::validate::Format::Text)]
    pub format: super::validate::Format,
    /// Colour the text: `auto` on a terminal unless `NO_COLOR` is set.
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    pub color: Colour,
    /// The helm binary (default: `helm.binary` of the configuration).
    #[arg(long)]
    pub helm: Option<PathBuf>,
    /// `--config FILE` (default /etc/smo/config.yaml) gives the kubeconfig,
    /// helm settings, `stateDir` and registry settings.
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Colour {
    Auto,
    Always,
    Never,
}

fn fail(message: impl std::fmt::Display) -> anyhow::Result<i32> {
    eprintln!("smo diff: {message}");
    Ok(2)
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut registry = args.registry.clone();
    let config_path = registry
        .config
        .get_or_insert_with(|| PathBuf::from(DEFAULT_CONFIG))
        .clone();
    let mut config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(helm) = &args.helm {
        config.helm.binary = helm.clone();
    }
    let session = super::pull::Session::new(&registry)?;
    let artifacts = session.artifacts();
    let state = match crate::desired::loader::load_root_with(&args.state, Some(&artifacts)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    for f in &state.findings {
        eprintln!("{f}");
    }
    if !state.settings_valid {
        return fail(
            "smo.yaml has errors: the daemon does not act on this state; see `smo validate`",
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let helm = Helm::new(crate::daemon::context::helm_config(&config));

    // The observed side, where each graph runs now, and the inventory.
    let (observed, running, inventory) = if args.offline {
        let Some(path) = &args.inventory else {
            return fail("--offline needs --inventory: the store keeps no cluster capacities");
        };
        let inventory = match crate::spec::inventory::load(path) {
            Ok(i) => i,
            Err(found) => {
                for f in found {
                    eprintln!("{f}");
                }
                return fail(format!("the inventory {} is invalid", path.display()));
            }
        };
        match offline(&config, &state) {
            Ok((o, r)) => (o, r, inventory),
            Err(message) => return fail(message),
        }
    } else {
        let read = rt.block_on(async {
            let karmada = crate::daemon::context::karmada(&config.karmada)
                .await
                .map_err(|e| format!("{e}"))?;
            let observed = observe::live(&helm, &karmada)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
            let inventory = match &args.inventory {
                Some(path) => crate::spec::inventory::load(path).map_err(|found| {
                    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
                    format!(
                        "the inventory {} is invalid:\n{}",
                        path.display(),
                        lines.join("\n")
                    )
                })?,
                None => karmada
                    .inventory(&config.karmada.gpu_resource)
                    .await
                    .map_err(|e| format!("cannot read Karmada's clusters: {e}"))?,
            };
            Ok::<_, String>((observed, inventory))
        });
        match read {
            Ok((o, inventory)) => {
                let running = live_running(&o);
                (o, running, inventory)
            }
            Err(message) => return fail(message),
        }
    };
    let (facts, _) = merge(&inventory, &state.clusters);

    let (desired, errors) = rt.block_on(desired(&state, &facts, &running, &helm, args));
    for e in &errors {
        eprintln!("smo diff: {e}");
    }
    let report = diff::compare(&desired, &observed);
    match args.format {
        super::validate::Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        super::validate::Format::Text => {
            let colour = match args.color {
                Colour::Always => true,
                Colour::Never => false,
                Colour::Auto => {
                    std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            write!(out, "{}", diff::text::render(&report, colour))?;
        }
    }
    Ok(if !errors.is_empty() {
        2
    } else {
        i32::from(report.changes)
    })
}

/// What the store recorded, and each graph's recorded placement (with
/// whether its inputs are still those it was made for).
fn offline(
    config: &Config,
    state: &crate::desired::DesiredState,
) -> Result<(Observed, BTreeMap<GraphKey, Running>), String> {
    let path = crate::daemon::context::store_path(config);
    if !path.exists() {
        return Err(format!(
            "no store at {}; has `smo run` started with this configuration?",
            path.display()
        ));
    }
    let store = Store::open(&path).map_err(|e| {
        if e.is_locked() {
            format!(
                "the daemon holds the store {}: compare with the live Karmada (without --offline), or stop it",
                path.display()
            )
        } else {
            format!("{e}")
        }
    })?;
    let observed = observe::offline(&store).map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
    let mut running = BTreeMap::new();
    for rec in store.graphs().map_err(|e| e.to_string())? {
        let key = GraphKey::new(&rec.project, &rec.graph);
        let unchanged = state
            .valid_graphs()
            .find(|g| g.project == rec.project && g.id() == rec.graph)
            .map(|g| {
                rec.placement_inputs_hash.as_deref() == Some(&placement_inputs_hash(g))
                    && rec.placement_revision == placement_revision(g)
            });
        running.insert(
            key,
            Running {
                placement: rec.placement,
                inputs_unchanged: Some(unchanged.unwrap_or(false)),
            },
        );
    }
    Ok((observed, running))
}

/// Where live graphs run, from their releases' `clustersAffinity`.
fn live_running(observed: &Observed) -> BTreeMap<GraphKey, Running> {
    let mut by_graph: BTreeMap<GraphKey, Vec<(&str, &serde_json::Value)>> = BTreeMap::new();
    for r in &observed.releases {
        if let Some(v) = &r.values {
            by_graph
                .entry(r.key.graph.clone())
                .or_default()
                .push((r.key.service.as_str(), v));
        }
    }
    by_graph
        .into_iter()
        .map(|(k, list)| {
            let running = Running {
                placement: from_values(list.into_iter()),
                inputs_unchanged: None,
            };
            (k, running)
        })
        .collect()
}

/// Where every valid graph would run, as the daemon decides it: each graph
/// alone first; then, in name order, room made for each graph that does
/// not fit by moving flexible graphs (see `reconcile::room`), whose new
/// placements replace their own.
fn placements(
    state: &crate::desired::DesiredState,
    facts: &[ClusterFacts],
    running: &BTreeMap<GraphKey, Running>,
) -> BTreeMap<GraphKey, Result<Placement, String>> {
    let graphs: BTreeMap<GraphKey, &crate::desired::Graph> = state
        .valid_graphs()
        .filter(|g| !g.descriptor.hda_graph.suspend)
        .map(|g| (GraphKey::new(&g.project, g.id()), g))
        .collect();
    let mut out: BTreeMap<GraphKey, Result<Placement, String>> = graphs
        .iter()
        .map(|(k, g)| {
            (
                k.clone(),
                placement(g, facts, &state.settings, running.get(k)),
            )
        })
        .collect();
    let failed: Vec<GraphKey> = out
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(k, _)| k.clone())
        .collect();
    for key in failed {
        let others: Vec<(crate::desired::Graph, Placement)> = graphs
            .iter()
            .filter(|(k, _)| **k != key)
            .filter_map(|(k, g)| {
                let held = &running.get(k)?.placement;
                (!held.is_empty()).then(|| ((*g).clone(), held.clone()))
            })
            .collect();
        let current = running
            .get(&key)
            .map(|r| r.placement.clone())
            .unwrap_or_default();
        let room = crate::reconcile::room::room_among(
            graphs[&key],
            &current,
            &others,
            facts,
            &state.settings,
            0,
        );
        if let crate::reconcile::room::Room::Made { placement, moves } = room {
            out.insert(key, Ok(placement));
            for m in moves {
                out.insert(GraphKey::new(&m.project, &m.graph), Ok(m.placement));
            }
        }
    }
    out
}

/// The desired side: every service of every valid graph, placed and
/// rendered; the errors met (charts that do not render).
async fn desired(
    state: &crate::desired::DesiredState,
    facts: &[ClusterFacts],
    running: &BTreeMap<GraphKey, Running>,
    helm: &Helm,
    args: &DiffArgs,
) -> (diff::Desired, Vec<String>) {
    let mut d = skeleton(state);
    let mut errors = Vec::new();
    let mut placements = placements(state, facts, running);
    for g in state.valid_graphs() {
        let key = GraphKey::new(&g.project, g.id());
        let services = &g.descriptor.hda_graph.services;
        let each = |want: &dyn Fn() -> Want| -> Vec<DesiredService> {
            services
                .iter()
                .map(|s| DesiredService {
                    key: key.service(s.id.as_str()),
                    namespace: g.project.clone(),
                    want: want(),
                })
                .collect()
        };
        if g.descriptor.hda_graph.suspend {
            d.services.extend(each(&|| Want::Suspended));
            continue;
        }
        let placed = match placements
            .remove(&key)
            .unwrap_or_else(|| Ok(Placement::new()))
        {
            Ok(p) => p,
            Err(e) => {
                let why = format!("its graph cannot be placed ({e}); it keeps running where it is");
                d.services.extend(each(&|| Want::Hold(why.clone())));
                continue;
            }
        };
        let inputs = match crate::release::inputs(g, &placed, &args.state) {
            Ok(i) => i,
            Err(e) => {
                errors.push(format!("{key}: {e}"));
                let why = format!("its chart cannot be read: {e}");
                d.services.extend(each(&|| Want::Hold(why.clone())));
                continue;
            }
        };
        for (input, s) in inputs.into_iter().zip(services) {
            let service_key = key.service(input.service.as_str());
            let want = match helm.template(&input.spec()).await {
                Ok(manifest) => {
                    let clusters = placed.get(&input.service).cloned().unwrap_or_default();
                    let policy = wants_policy(
                        state.settings.generate_propagation_policy,
                        &clusters,
                        &manifest,
                    )
                    .then(|| crate::adapters::karmada::ObjectRef {
                        api_version: propagation::API_VERSION.into(),
                        kind: observe::POLICY_KIND.into(),
                        namespace: Some(input.namespace.clone()),
                        name: input.release.clone(),
                    });
                    Want::Run(Rendered {
                        values: input.values,
                        manifest,
                        hash: input.hash,
                        on_event: s.event_trigger().is_some(),
                        policy,
                    })
                }
                Err(e) => {
                    errors.push(format!("{service_key}: {e}"));
                    Want::Hold(format!("its chart does not render: {e}"))
                }
            };
            d.services.push(DesiredService {
                key: service_key,
                namespace: input.namespace,
                want,
            });
        }
    }
    (d, errors)
}

/// Whether smo generates a PropagationPolicy for a release (as the
/// install action decides): generation on, clusters of smo's, and no
/// policy in the chart's manifest.
fn wants_policy(generate: bool, clusters: &[String], manifest: &str) -> bool {
    generate
        && !clusters.is_empty()
        && !crate::adapters::manifest::parse(manifest).is_ok_and(|objects| {
            objects.iter().any(|o| {
                matches!(
                    o["kind"].as_str(),
                    Some("PropagationPolicy" | "ClusterPropagationPolicy")
                )
            })
        })
}
