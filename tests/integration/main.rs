//! smo's integration tests, compiled into one binary (linking is the slow
//! part of a build on small machines).

mod agreement;
mod cli;
mod conditional;
mod crash;
mod daemon;
mod daemon_faults;
mod diff;
mod events;
mod examples;
mod fault_matrix;
mod fixtures;
mod grafana;
mod ha;
mod hdar;
mod karmada;
mod loader;
mod nfvcl;
mod ops;
mod plan;
mod plan_picture;
mod profile;
mod prom;
mod published;
mod render;
mod room;
mod safety;
mod sources;
mod store;
mod support;
mod tooling;
mod watches;
mod webhook;
