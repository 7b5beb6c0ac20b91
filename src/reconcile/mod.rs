//! The reconciler: a de-duplicated work queue of graph keys, the pure
//! per-service decision, and the engine that acts on one graph.

pub mod dashsync;
pub mod decide;
pub mod engine;

pub mod propagation;
pub mod queue;
pub mod rulesync;
pub mod triggers;
