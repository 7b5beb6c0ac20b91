//! Placement engine.
