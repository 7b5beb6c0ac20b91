//! smo — the Synergetic Meta-Orchestrator as a declarative reconciliation daemon.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod placement;
pub mod scaling;
