//! Integration tests of the fake API server, driven by the real `helm`
//! binaries, a real OCI registry and kube-rs. One test binary (linking is
//! the slow part on small machines); each module is one area.

mod support;

mod binary;
mod faults;
mod helm;
mod kube_client;
mod lease;
mod metadata;
mod oci;
mod robustness;
