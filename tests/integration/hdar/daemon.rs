//! The daemon end to end with graphs pulled from the HDAR: `hdaGraphRef`
//! files in the state root, the real registry, the real helm and ORAS
//! clients pushing, the fake Karmada receiving.

use super::{Entry, Registry, helm_push_dir, oras_push, started, tar_gz, tools};
use crate::daemon::{Env, env, wait_for};
use crate::support::repo;
use smo::daemon::RunOptions;
use smo::hdar::Digest;
use std::path::Path;
use std::time::Duration;

/// The registry's plain-HTTP address in `helm.insecureRegistries`: helm
/// pulls the charts from it, smo the graphs.
fn allow_plain_http(env: &Env, reg: &Registry) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let edited = text.replacen(
        "  timeout: 60s\n",
        &format!("  timeout: 60s\n  insecureRegistries: [\"{}\"]\n", reg.addr),
        1,
    );
    assert_ne!(text, edited, "the helm block of the test configuration");
    std::fs::write(&env.config, edited).unwrap();
}

fn service_chart() -> std::path::PathBuf {
    repo().join("state-example/projects/demo2/charts/service")
}

/// A service of a pulled graph, its chart `chart`.
fn service(id: &str, chart: &str) -> String {
    format!(
        "    - id: {id}\n      deployment:\n        trigger: {{auto: {{dependencies: []}}}}\n        intent:\n          compute: {{cpu: light, ram: light}}\n      artifact:\n        ociImage: {chart}\n        ociConfig: {{type: App, implementer: HELM}}\n"
    )
}

fn descriptor(id: &str, version: &str, services: &[String]) -> String {
    format!(
        "hdaGraph:\n  imVersion: 0.4.0\n  id: {id}\n  version: \"{version}\"\n  services:\n{}",
        services.concat()
    )
}

/// The service chart's files under `prefix` (an artifact's local chart).
fn chart_files(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let root = service_chart();
    let mut out = Vec::new();
    for rel in [
        "Chart.yaml",
        "values.yaml",
        "templates/_helpers.tpl",
        "templates/deployment.yaml",
        "templates/multicluster.yaml",
    ] {
        out.push((
            format!("{prefix}/{rel}"),
            std::fs::read(root.join(rel)).unwrap(),
        ));
    }
    out
}

fn write_ref(env: &Env, rel: &str, reg: &Registry, repo: &str, selector: &str) {
    let path = env.descriptor(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "hdaGraphRef:\n  oci: oci://{}/{repo}\n  {selector}\n",
            reg.addr
        ),
    )
    .unwrap();
}

/// The graph's record in the published status: (origin, last error).
fn recorded(env: &Env, project: &str, graph: &str) -> Option<(Option<String>, Option<String>)> {
    let snap = env.snapshot()?;
    let g = snap
        .graphs
        .into_iter()
        .find(|g| g.project == project && g.graph == graph)?;
    Some((g.origin, g.last_error))
}

/// `pulled` version `version` as `hdarctl` packages it (a chart-format
/// tarball holding `hdag/hdag.yaml`), pushed with the real `helm push`:
/// `front` from the registry's chart, `back` and every service of `more`
/// from the chart the artifact carries.
fn push_graph(helm: &Path, reg: &Registry, work: &Path, version: &str, more: &[&str]) -> String {
    let dir = work.join(format!("graph-{version}/pulled"));
    std::fs::create_dir_all(dir.join("hdag")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: pulled\nversion: {version}\n"),
    )
    .unwrap();
    for (rel, bytes) in chart_files("hdag/web") {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let mut services = vec![
        service("front", &format!("oci://{}/charts/service:0.1.0", reg.addr)),
        service("back", "web"),
    ];
    services.extend(more.iter().map(|id| service(id, "web")));
    std::fs::write(
        dir.join("hdag/hdag.yaml"),
        descriptor("pulled", version, &services),
    )
    .unwrap();
    helm_push_dir(helm, reg, work, &dir, "proj")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_pushed_graph_is_deployed_follows_its_range_and_is_held_when_the_registry_goes() {
    let Some(t) = tools() else { return };
    let Some(env) = env("hdar:\n  interval: 1s\n").await else {
        return;
    };
    let reg = started(t.registry.clone()).await;
    allow_plain_http(&env, &reg);
    let work = tempfile::tempdir().unwrap();
    helm_push_dir(&t.helm, &reg, work.path(), &service_chart(), "charts");
    let first = push_graph(&t.helm, &reg, work.path(), "1.0.0", &[]);
    // Outside the range: never picked.
    push_graph(&t.helm, &reg, work.path(), "2.0.0", &["outside"]);
    write_ref(
        &env,
        "projects/hdar/pulled.yaml",
        &reg,
        "proj/pulled",
        "semver: \">=1.0 <2\"",
    );
    let addr = reg.addr;
    let pinned = |digest: &str| format!("oci://{addr}/proj/pulled@{digest}");

    let daemon = env.start(RunOptions::default());
    let env = &env;
    let deployed = |names: &'static [&'static str]| {
        move || {
            let r = env.releases("hdar");
            (r.keys().map(String::as_str).eq(names.iter().copied())
                && r.values().all(|(_, s)| s == "deployed"))
            .then_some(r)
        }
    };
    wait_for(
        Duration::from_secs(90),
        "front and back deployed from 1.0.0",
        deployed(&["back", "front"]),
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the 1.0.0 digest in status",
        || (recorded(env, "hdar", "pulled")?.0? == pinned(&first)).then_some(()),
    )
    .await;

    // A newer version inside the range is picked up on the interval.
    let newer = push_graph(&t.helm, &reg, work.path(), "1.1.0", &["extra"]);
    let releases = wait_for(
        Duration::from_secs(90),
        "extra deployed from 1.1.0",
        deployed(&["back", "extra", "front"]),
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the 1.1.0 digest in status",
        || (recorded(env, "hdar", "pulled")?.0? == pinned(&newer)).then_some(()),
    )
    .await;
    assert!(!releases.contains_key("outside"), "{releases:?}");

    // The registry goes away: the graph is held with the reason, its
    // releases untouched.
    let before = env.releases("hdar");
    drop(reg);
    let error = wait_for(
        Duration::from_secs(60),
        "the pull failure in status",
        || {
            recorded(env, "hdar", "pulled")?
                .1
                .filter(|e| e.contains(&addr.to_string()))
        },
    )
    .await;
    assert!(error.contains("resolving"), "{error}");
    assert_eq!(env.releases("hdar"), before);
    assert_eq!(
        recorded(env, "hdar", "pulled").and_then(|r| r.0),
        Some(pinned(&newer)),
        "the last good digest stays recorded"
    );
    daemon.stop().await;
}

/// A generic ORAS artifact: the descriptor and its chart under `hdag/`.
fn oras_graph(version: &str) -> Vec<u8> {
    let text = descriptor(
        "oras-graph",
        version,
        &[service("alpha", "web"), service("beta", "web")],
    );
    let files = chart_files("hdag/web");
    let mut entries = vec![Entry::File("hdag/hdag.yaml", text.as_bytes())];
    entries.extend(files.iter().map(|(n, b)| Entry::File(n, b)));
    tar_gz(&entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oras_pushed_graph_is_deployed_and_a_bad_artifact_never_replaces_it() {
    let Some(t) = tools() else { return };
    let Some(env) = env("").await else { return };
    let reg = started(t.registry.clone()).await;
    allow_plain_http(&env, &reg);
    let work = tempfile::tempdir().unwrap();
    let target = "proj/oras-graph:1.0";
    oras_push(&t.oras_py, &reg, work.path(), target, &oras_graph("1.0"));
    write_ref(
        &env,
        "projects/oras/graph.yaml",
        &reg,
        "proj/oras-graph",
        "tag: \"1.0\"",
    );

    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    let before = env.releases("oras");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["alpha", "beta"],
        "{before:?}"
    );
    let store = env.store();
    let record = store.graph("oras/oras-graph").unwrap().unwrap();
    drop(store);
    let good = record.origin.expect("the digest is recorded");
    assert!(
        good.starts_with(&format!("oci://{}/proj/oras-graph@sha256:", reg.addr)),
        "{good}"
    );

    let big = vec![0u8; 6 << 20];
    let escape: [(&str, Vec<Entry<'_>>, &str); 4] = [
        (
            "absolute path",
            vec![Entry::File("/tmp/smo-escape.yaml", b"x")],
            "absolute path",
        ),
        (
            "parent directory",
            vec![Entry::File("hdag/../../escape.yaml", b"x")],
            "climbs out",
        ),
        (
            "symlink escape",
            vec![Entry::Symlink("hdag/link", "../../../etc")],
            "symbolic link",
        ),
        (
            "oversized file",
            vec![Entry::File("hdag/big.bin", &big)],
            "larger than",
        ),
    ];
    for (what, entries, reason) in escape {
        // The tag moves to the bad artifact.
        oras_push(&t.oras_py, &reg, work.path(), target, &tar_gz(&entries));
        let report = env.once().await;
        assert!(!report.converged, "{what}: {report:?}");
        let store = env.store();
        let record = store.graph("oras/oras-graph").unwrap().unwrap();
        drop(store);
        let error = record.last_error.unwrap_or_default();
        assert!(error.contains(reason), "{what}: {error}");
        assert_eq!(record.origin.as_deref(), Some(good.as_str()), "{what}");
        assert_eq!(env.releases("oras"), before, "{what}");
    }

    // A corrupt copy in the registry: the digest does not match.
    let archive = oras_graph("1.1");
    oras_push(&t.oras_py, &reg, work.path(), target, &archive);
    let blob = reg.blob_file(Digest::of(&archive).as_str());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let report = env.once().await;
    assert!(!report.converged, "{report:?}");
    let store = env.store();
    let record = store.graph("oras/oras-graph").unwrap().unwrap();
    drop(store);
    let error = record.last_error.unwrap_or_default();
    assert!(error.contains("expected sha256:"), "{error}");
    assert_eq!(env.releases("oras"), before);
}
