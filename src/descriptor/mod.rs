//! The HDAG descriptor: typed model, small validated value types, and the
//! semantic checks that run after the schema accepted a document.

pub mod model;
pub mod semantic;
pub mod types;

pub use model::Descriptor;
