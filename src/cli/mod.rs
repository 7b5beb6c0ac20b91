//! Command-line glue: one module per subcommand.
pub mod bench;
