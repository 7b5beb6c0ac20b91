//! The HDAG descriptor: typed model, small validated value types, and the
//! semantic checks that run after the schema accepted a document, and the
//! walk of a local chart's files that both validation and release
//! resolution use to keep helm inside the chart, and the translation of
//! published descriptor shapes (`compat`) that runs before all of them.

pub mod chart_files;
pub mod compat;
pub mod model;
pub mod semantic;
pub mod types;

pub use model::Descriptor;
