//! Adapters: one module per external system, each behind a narrow
//! interface with typed errors. No shell anywhere.

pub mod grafana;
pub mod helm;
pub mod karmada;
pub mod manifest;
pub mod nfvcl;
pub mod prometheus;
