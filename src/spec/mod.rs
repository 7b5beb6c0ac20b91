//! The files around the descriptors: `smo.yaml` settings, cluster
//! metadata, the offline inventory and the daemon's host configuration.

pub mod cluster;
pub mod config;
pub mod inventory;
pub mod settings;
