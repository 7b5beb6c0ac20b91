//! Shared helpers: locating external tools, running helm, kube clients.

use std::path::{Path, PathBuf};
use std::process::Command;

use fake_karmada::{ClusterSpec, FakeKarmada, Options, ResourcePair};

/// The fixture chart (Deployment, Service, PropagationPolicy, ServiceExport).
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chart")
}

pub use fake_karmada::testing::tool;

/// Two member clusters, one with a GPU.
pub fn clusters() -> Vec<ClusterSpec> {
    let spec = |name: &str, ready, gpu: Option<ResourcePair>| ClusterSpec {
        name: name.into(),
        ready,
        resources: fake_karmada::ClusterResources {
            cpu: ResourcePair::new("8", "2500m"),
            memory: ResourcePair::new("32Gi", "4Gi"),
            gpu,
        },
    };
    vec![
        spec("brussels-edge", true, Some(ResourcePair::new("1", "0"))),
        spec("ghent-core", false, None),
    ]
}

pub async fn start() -> FakeKarmada {
    FakeKarmada::start(Options::default().clusters(clusters()))
        .await
        .expect("fake starts")
}

pub async fn client(fake: &FakeKarmada) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::read_from(fake.kubeconfig_path()).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(cfg).expect("client builds")
}

/// Runs helm against the fake with private cache/config/data directories.
pub struct Helm {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub ok: bool,
}

impl Helm {
    pub fn new(bin: PathBuf, fake: &FakeKarmada) -> Self {
        Self {
            bin,
            kubeconfig: fake.kubeconfig_path().to_path_buf(),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs helm on a blocking thread (the fake serves on the runtime).
    pub async fn try_run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT");
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("helm thread")
            .expect("helm runs");
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ok: out.status.success(),
        }
    }

    /// Runs helm and fails the test (with its output) unless it succeeds.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args).await;
        assert!(
            out.ok,
            "helm {} failed:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }
}
