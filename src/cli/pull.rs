//! Pulling HDAR artifacts for the offline subcommands (`smo validate`,
//! `smo plan`): into a temporary cache removed when the command ends, with
//! the registry settings of the flags or of smo's configuration file.

use crate::hdar::auth::AuthSource;
use crate::hdar::{Hdar, Limits, OciConfig, OciRegistry, Pulling};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

/// How `hdaGraphRef` files (and `oci://` arguments) reach their registry.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// smo's configuration file: its `helm.insecureRegistries` and
    /// `hdar.authFile` are used to pull HDAR artifacts.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A registry spoken to over plain HTTP (repeatable), as in
    /// `helm.insecureRegistries`.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// Registry credentials in Docker's `config.json` format.
    #[arg(long = "registry-auth", value_name = "FILE")]
    pub auth: Option<PathBuf>,
}

/// A registry client, its runtime and its temporary cache.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    hdar: Arc<Hdar<OciRegistry>>,
    _cache: tempfile::TempDir,
}

impl Session {
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Session> {
        let (mut insecure, mut auth) = (args.insecure.clone(), args.auth.clone());
        if let Some(path) = &args.config {
            let config = crate::spec::config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            insecure.extend(config.helm.insecure_registries);
            auth = auth.or(config.hdar.auth_file);
        }
        let limits = Limits::default();
        let registry = OciRegistry::new(OciConfig {
            insecure_registries: insecure,
            auth: AuthSource { file: auth },
            max_layer_bytes: limits.max_archive_bytes,
            ..OciConfig::default()
        })?;
        let cache = tempfile::tempdir().context("creating a temporary artifact cache")?;
        // A worker thread of its own: the loader blocks on fetches from
        // this (non-runtime) thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the registry client's runtime")?;
        Ok(Session {
            runtime,
            hdar: Arc::new(Hdar::new(registry, cache.path(), limits)),
            _cache: cache,
        })
    }

    /// The loader's view of this session.
    pub fn artifacts(&self) -> Pulling<OciRegistry> {
        Pulling::new(Arc::clone(&self.hdar), self.runtime.handle().clone())
    }
}

/// `oci://host[:port]/path[:tag|@sha256:…]` as the `hdaGraphRef` file that
/// names it; `None` when `arg` is not an `oci://` reference.
pub fn reference_file(arg: &str) -> Option<String> {
    let rest = arg.strip_prefix("oci://")?;
    let (repo, selector) = if let Some((repo, digest)) = rest.split_once('@') {
        (repo, format!("digest: \"{digest}\""))
    } else {
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, format!("tag: \"{tag}\"")),
            _ => (rest, "tag: latest".to_owned()),
        }
    };
    Some(format!(
        "hdaGraphRef:\n  oci: \"oci://{repo}\"\n  {selector}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::reference_file;

    #[test]
    fn oci_arguments_become_reference_files() {
        assert_eq!(
            reference_file("oci://h:5000/p/g:1.0.0").unwrap(),
            "hdaGraphRef:\n  oci: \"oci://h:5000/p/g\"\n  tag: \"1.0.0\"\n"
        );
        assert_eq!(
            reference_file("oci://h/p/g@sha256:ab").unwrap(),
            "hdaGraphRef:\n  oci: \"oci://h/p/g\"\n  digest: \"sha256:ab\"\n"
        );
        assert_eq!(
            reference_file("oci://h:5000/p/g").unwrap(),
            "hdaGraphRef:\n  oci: \"oci://h:5000/p/g\"\n  tag: latest\n"
        );
        assert!(reference_file("projects/p/g.yaml").is_none());
    }
}
