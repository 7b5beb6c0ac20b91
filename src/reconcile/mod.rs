//! The reconciler, one graph at a time:
//!
//! - [`queue`]: the de-duplicated, debounced work queue of graph keys;
//! - [`engine`]: observe → plan → execute → summarise for one key;
//! - [`plan`] (pure): exactly one next action per service, and every
//!   decision (triggers, drift mode, the dependency gate, removal);
//! - [`actions`]: one executor per action, behind narrow effect traits;
//! - [`facts`]: the desired graph as the planner sees it, and the live
//!   observations it asks for;
//! - [`execute`]: runs a plan through the executors;
//! - [`status`] (pure): service records, outcome and graph conditions;
//! - [`placed`]: keeping or recomputing a graph's placement;
//! - [`publish`], [`rulesync`], [`dashsync`]: alert rules and dashboards;
//! - [`remove`]: a graph that left the desired state;
//! - [`sweep`] (pure): what carries smo's labels and the store lost;
//! - [`world`]: the snapshot, clusters and requests a reconcile reads;
//! - [`batch`]: a graph's records, read once and written once;
//! - [`triggers`]: alert deliveries and trigger evaluation (pure);
//!   [`error`]: typed step failures.
//!
//! The prune guard lives in [`crate::desired::prune`]: the daemon and the
//! provisioning planner both use it.

pub mod actions;
pub mod batch;
pub mod dashsync;
pub mod engine;
pub mod error;
pub mod execute;
pub mod facts;
pub mod placed;
pub mod plan;
pub mod propagation;
pub mod publish;
pub mod queue;
pub mod remove;
pub mod room;
pub mod rulesync;
pub mod status;
pub mod sweep;
pub mod transitions;
pub mod triggers;
pub mod world;
