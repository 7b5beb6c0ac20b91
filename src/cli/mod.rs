//! Command-line glue: one module per subcommand. Each `run` returns the
//! process exit code (0 ok, 1 findings, 2 usage or runtime failure).

pub mod app;
pub mod bench;
pub mod diff;
pub mod docs;
pub mod history;
mod inputs;
pub mod plan;
pub mod profile;
pub mod pull;
pub mod render;
pub mod run;
pub mod status;
pub mod validate;
