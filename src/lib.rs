//! smo — the Synergetic Meta-Orchestrator as a declarative reconciliation
//! daemon for Hyper Distributed Application Graphs on Karmada.
//!
//! Map of the modules:
//! - [`keys`], [`digest`], [`retry`], [`clock`], [`locks`], [`provenance`]:
//!   identities and helpers every layer uses (they import nothing of smo's);
//! - [`adapters`]: one module per external system (helm, …), no shell;
//! - [`validate`]: findings, the position-aware YAML reader, the embedded
//!   JSON Schemas (`schemas/`), unknown-key suggestions;
//! - [`descriptor`]: the HDAG descriptor's typed model and semantic checks;
//! - [`spec`]: the other files — `smo.yaml` settings, cluster metadata, the
//!   offline inventory, the daemon's host configuration;
//! - [`desired`]: loading a state root into validated graphs, with intent
//!   translation;
//! - [`observe`]: the observed clusters (inventory merged with metadata);
//! - [`units`]: Kubernetes quantities and Prometheus durations;
//! - [`placement`], [`scaling`]: the MILP engines (pure); [`scaling`] also
//!   builds the rate queries and fits its capacity model from history
//!   (`smo profile`);
//! - [`provision`]: clusters created through NFVCL (pure planner, executor);
//! - [`plan`]: desired state + observed clusters → placement problems and
//!   the plan report;
//! - [`release`]: per-service release inputs (chart, values smo sets, the
//!   input hash that decides whether helm runs);
//! - [`diff`]: what a desired state would change against Karmada or the
//!   store (`smo diff`): pure verdicts, line diffs, the observing reads;
//! - [`source`]: desired-state sources (a watched directory, a Git repository);
//! - [`hdar`]: descriptors referenced from the HDAR (an OCI registry):
//!   resolution, verified pulls, safe unpacking, the digest cache;
//! - [`reconcile`]: the work queue, the per-service decision, the engine
//!   that reconciles one graph;
//! - [`store`]: the redb state store, its migrations, the status snapshot;
//! - [`daemon`]: source, inventory, timers and workers around the engine;
//! - [`http`]: the tiny_http endpoint (Alertmanager webhook, health,
//!   readiness, metrics) on its own threads;
//! - [`webhook`]: Alertmanager payloads and how alerts become triggers;
//! - [`rules`]: Prometheus alert rules for event-triggered services;
//! - [`dashboards`]: the Grafana dashboards smo owns (pure builders);
//! - [`metrics`]: the daemon's Prometheus metrics registry;
//! - [`events`]: journal entries published as CloudEvents to the configured
//!   sinks from the store's outbox, at least once;
//! - [`bench`]: deterministic instance generators for benchmarks;
//! - [`cli`]: the command line (`cli::app`) and one module per subcommand.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod dashboards;
pub mod descriptor;
pub mod desired;
pub mod diff;
pub mod digest;
pub mod events;
pub mod ha;
pub mod hdar;
pub mod http;
pub mod keys;
pub mod locks;
pub mod metrics;
pub mod observe;
pub mod placement;
pub mod plan;
pub mod provenance;
pub mod provision;
pub mod reconcile;
pub mod release;
pub mod retry;
pub mod rules;
pub mod scaling;
pub mod source;
pub mod spec;
pub mod store;
pub mod units;
pub mod validate;
pub mod webhook;
