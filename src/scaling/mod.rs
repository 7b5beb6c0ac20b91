//! Scaling engine.
