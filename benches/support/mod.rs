//! What the benchmarks share: the tool lookup, the runtime, a fake Karmada
//! with roomy clusters, and the `smo` child process's lifecycle.

use fake_karmada::{ClusterSpec, FakeKarmada, Options, ResourcePair};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `cargo bench` started us: it passes `--bench`, while `cargo
/// test --all-targets` (which builds benchmarks so they keep compiling)
/// runs them without it, and a benchmark must not run as a test.
pub fn started_by_cargo_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `SMO_HELM`, or exit 2 with a hint.
pub fn helm_or_exit(bench: &str) -> PathBuf {
    std::env::var_os("SMO_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            eprintln!("{bench} bench: SMO_HELM is not set; `source .ci/install-tools.sh` first");
            std::process::exit(2);
        })
}

/// Two workers, like the machine the figures are reported for.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fake Karmada with `n` ready clusters (`c0`…) too large to ever bind
/// placement, whose members report Deployments ready after 10 ms.
pub async fn fake(n: usize) -> FakeKarmada {
    let clusters: Vec<ClusterSpec> = (0..n)
        .map(|i| ClusterSpec {
            name: format!("c{i}"),
            ready: true,
            resources: fake_karmada::ClusterResources {
                cpu: ResourcePair::new("100000", "0"),
                memory: ResourcePair::new("100000Gi", "0"),
                gpu: None,
            },
        })
        .collect();
    FakeKarmada::start(
        Options::default()
            .clusters(clusters)
            .simulate_members(Duration::from_millis(10)),
    )
    .await
    .unwrap()
}

/// Until no request reached the fake for half a second.
pub async fn wait_idle(fake: &FakeKarmada) {
    let mut last = fake.requests().len();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = fake.requests().len();
        if now == last {
            return;
        }
        last = now;
    }
}

/// `smo run --config cfg` at `SMO_LOG=level`, with the packaged unit's
/// malloc setting, stderr to `log` (or dropped).
pub fn daemon(cfg: &Path, level: &str, log: Option<&Path>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["run", "--config"])
        .arg(cfg)
        .env("SMO_LOG", level)
        // As the packaged unit runs it (systemd/smo.service).
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::null())
        .stderr(log.map_or_else(Stdio::null, |l| std::fs::File::create(l).unwrap().into()))
        .spawn()
        .unwrap()
}

/// SIGTERM (the graceful path) and wait.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
