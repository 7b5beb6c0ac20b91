//! HDAGs from the HDAR against a real OCI registry (Debian's
//! `docker-registry`, filesystem storage, loopback): artifacts pushed by the
//! real `helm push` and by the ORAS Python client are resolved, pulled,
//! verified, unpacked and cached; a corrupt blob, malicious archives and an
//! unreachable registry each give their typed error.

use fake_karmada::testing::tool;
use smo::hdar::{
    Digest, GraphRef, Hdar, HdarError, Limits, OciConfig, OciRegistry, auth::AuthSource,
};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

mod cli;
mod daemon;

pub(super) use fake_karmada::testing::OciRegistry as Registry;

/// The tools these tests need, or `None` (skipped, loudly, outside CI).
pub(super) struct Tools {
    pub(super) registry: PathBuf,
    pub(super) helm: PathBuf,
    pub(super) oras_py: PathBuf,
}

pub(super) fn tools() -> Option<Tools> {
    Some(Tools {
        registry: tool("SMO_REGISTRY")?,
        helm: tool("SMO_HELM")?,
        oras_py: tool("SMO_ORAS_PY")?,
    })
}

pub(super) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(super) fn hdag(id: &str, version: &str) -> String {
    format!("hdaGraph:\n  imVersion: 0.4.0\n  id: {id}\n  version: \"{version}\"\n  services: []\n")
}

/// `helm package` + `helm push` of a chart-format artifact holding
/// `hdag/hdag.yaml`, as `hdarctl` artifacts are; returns helm's digest.
pub(super) fn helm_push(
    helm: &Path,
    reg: &Registry,
    work: &Path,
    name: &str,
    version: &str,
) -> String {
    let chart = work.join(format!("src-{version}")).join(name);
    std::fs::create_dir_all(chart.join("hdag")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .unwrap();
    std::fs::write(chart.join("hdag/hdag.yaml"), hdag(name, version)).unwrap();
    helm_push_dir(helm, reg, work, &chart, "proj")
}

/// `helm package` of the chart directory `chart` and `helm push` to
/// `oci://<registry>/<dest>`; returns helm's digest.
pub(super) fn helm_push_dir(
    helm: &Path,
    reg: &Registry,
    work: &Path,
    chart: &Path,
    dest: &str,
) -> String {
    let home = work.join("helm-home");
    let helm_cmd = || {
        let mut c = Command::new(helm);
        c.env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_REGISTRY_CONFIG", home.join("registry.json"));
        c
    };
    let out_dir = tempfile::tempdir_in(work).unwrap();
    run(helm_cmd()
        .arg("package")
        .arg(chart)
        .arg("-d")
        .arg(out_dir.path()));
    let tgz = std::fs::read_dir(out_dir.path())
        .unwrap()
        .next()
        .expect("helm package wrote a file")
        .unwrap()
        .path();
    let out = run(helm_cmd()
        .arg("push")
        .arg(&tgz)
        .arg(format!("oci://{}/{dest}", reg.addr))
        .arg("--plain-http"));
    let digest = out
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("helm push printed no digest: {out}"));
    digest.to_owned()
}

/// Pushes `tar_gz` with the ORAS Python client as a generic artifact (one
/// `application/vnd.oci.image.layer.v1.tar+gzip` layer).
pub(super) fn oras_push(oras_py: &Path, reg: &Registry, work: &Path, target: &str, tar_gz: &[u8]) {
    let dir = work.join(format!("oras-{}", target.replace(['/', ':'], "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let file = "artifact.tar.gz";
    std::fs::write(dir.join(file), tar_gz).unwrap();
    let script = "import sys, oras.client\n\
                  c = oras.client.OrasClient(insecure=True)\n\
                  c.push(target=sys.argv[1], files=[sys.argv[2] + ':application/vnd.oci.image.layer.v1.tar+gzip'])\n";
    run(Command::new(oras_py)
        .current_dir(&dir)
        .arg("-c")
        .arg(script)
        .arg(format!("{}/{target}", reg.addr))
        .arg(file));
}

/// A tar.gz with entries written raw (names unchecked), so that malicious
/// archives can be built too.
pub(super) enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

pub(super) fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let mut link = "";
        let (name, data): (&str, &[u8]) = match *e {
            Entry::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                (n, d)
            }
            Entry::Symlink(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                link = target;
                (n, &[])
            }
        };
        let old = h.as_old_mut();
        old.name.fill(0);
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname.fill(0);
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn hdar(reg: &Registry, state: &Path, limits: Limits) -> Hdar<OciRegistry> {
    let registry = OciRegistry::new(OciConfig {
        insecure_registries: vec![reg.addr.to_string()],
        ..OciConfig::default()
    })
    .expect("client");
    Hdar::new(registry, state, limits)
}

fn reference(addr: impl std::fmt::Display, repo: &str, selector: &str, value: &str) -> GraphRef {
    let v = serde_json::json!({"hdaGraphRef": {"oci": format!("oci://{addr}/{repo}"), selector: value}});
    GraphRef::from_value(&v).expect("valid reference")
}

pub(super) async fn started(bin: PathBuf) -> Registry {
    tokio::task::spawn_blocking(move || Registry::start(&bin))
        .await
        .expect("registry thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_pushed_artifact_is_fetched_verified_and_reused_after_a_restart() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pushed = helm_push(&t.helm, &reg, work.path(), "graph-a", "1.0.0");

    let r = reference(reg.addr, "proj/graph-a", "tag", "1.0.0");
    let f = hdar(&reg, state.path(), Limits::default())
        .fetch(&r)
        .await
        .expect("fetch");
    assert_eq!(f.digest.as_str(), pushed, "the digest helm reported");
    assert_eq!(f.tag.as_deref(), Some("1.0.0"));
    assert!(f.pulled);
    assert_eq!(f.descriptor, f.dir.join("graph-a/hdag/hdag.yaml"));
    assert!(f.dir.join("graph-a/Chart.yaml").is_file());
    assert!(f.dir.starts_with(state.path().join("hdar")));

    // A restart: a new client and facade over the same state dir.
    let again = hdar(&reg, state.path(), Limits::default())
        .fetch(&r)
        .await
        .expect("fetch after restart");
    assert!(!again.pulled, "an unchanged digest is not downloaded again");
    assert_eq!(again.descriptor, f.descriptor);

    // Pinned by digest, the same artifact.
    let pinned = reference(reg.addr, "proj/graph-a", "digest", &pushed);
    assert_eq!(
        hdar(&reg, state.path(), Limits::default())
            .fetch(&pinned)
            .await
            .unwrap()
            .digest,
        f.digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oras_pushed_artifact_is_fetched() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let text = hdag("graph-b", "2.0.0");
    let archive = tar_gz(&[
        Entry::File("hdag/hdag.yaml", text.as_bytes()),
        Entry::File(
            "charts/web/Chart.yaml",
            b"apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
    ]);
    oras_push(
        &t.oras_py,
        &reg,
        work.path(),
        "proj/graph-b:2.0.0",
        &archive,
    );

    let f = hdar(&reg, state.path(), Limits::default())
        .fetch(&reference(reg.addr, "proj/graph-b", "semver", "^2"))
        .await
        .expect("fetch");
    assert_eq!(f.tag.as_deref(), Some("2.0.0"));
    assert_eq!(f.descriptor, f.dir.join("hdag/hdag.yaml"));
    assert_eq!(std::fs::read_to_string(&f.descriptor).unwrap(), text);
    assert!(
        f.dir.join("charts/web/Chart.yaml").is_file(),
        "charts travel with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tag_inside_the_semver_range_is_picked_up_and_the_old_digest_collected() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let h = hdar(&reg, state.path(), Limits::default());
    let r = reference(reg.addr, "proj/graph-c", "semver", ">=1.0 <2");

    helm_push(&t.helm, &reg, work.path(), "graph-c", "1.0.0");
    let first = h.fetch(&r).await.expect("first fetch");
    assert_eq!(first.tag.as_deref(), Some("1.0.0"));

    helm_push(&t.helm, &reg, work.path(), "graph-c", "1.1.0");
    helm_push(&t.helm, &reg, work.path(), "graph-c", "2.0.0");
    let second = h.fetch(&r).await.expect("second fetch");
    assert_eq!(
        second.tag.as_deref(),
        Some("1.1.0"),
        "2.0.0 is outside the range"
    );
    assert_ne!(second.digest, first.digest);
    assert!(
        std::fs::read_to_string(&second.descriptor)
            .unwrap()
            .contains("1.1.0")
    );

    let report = h
        .gc(&BTreeSet::from([second.digest.clone()]))
        .await
        .unwrap();
    assert_eq!(report.removed, vec![first.digest.clone()]);
    assert!(!first.dir.exists());
    assert!(second.descriptor.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_corrupted_in_the_registry_is_a_digest_mismatch() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let archive = tar_gz(&[Entry::File(
        "hdag.yaml",
        hdag("graph-d", "1.0.0").as_bytes(),
    )]);
    oras_push(
        &t.oras_py,
        &reg,
        work.path(),
        "proj/graph-d:1.0.0",
        &archive,
    );

    // Same length, one bit flipped: the registry serves it as it is.
    let blob = reg.blob_file(Digest::of(&archive).as_str());
    let mut bytes = std::fs::read(&blob).expect("the layer blob is on disk");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();

    let err = hdar(&reg, state.path(), Limits::default())
        .fetch(&reference(reg.addr, "proj/graph-d", "tag", "1.0.0"))
        .await
        .expect_err("a corrupt layer must be refused");
    assert_eq!(err.kind(), "digest_mismatch", "{err:?}");
    assert!(matches!(err, HdarError::Fetch { .. }), "{err:?}");
    assert!(
        !state.path().join("hdar").exists()
            || std::fs::read_dir(state.path().join("hdar"))
                .unwrap()
                .next()
                .is_none(),
        "nothing is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_archives_are_refused_with_typed_errors() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ok = hdag("graph-e", "1.0.0");
    let big = vec![b'#'; 4096];
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "absolute",
            tar_gz(&[Entry::File("/tmp/evil.yaml", ok.as_bytes())]),
            "unsafe_path",
        ),
        (
            "parent",
            tar_gz(&[Entry::File("../evil.yaml", ok.as_bytes())]),
            "unsafe_path",
        ),
        (
            "symlink",
            tar_gz(&[
                Entry::Symlink("d", "/etc"),
                Entry::File("d/evil.yaml", ok.as_bytes()),
            ]),
            "unsafe_entry",
        ),
        (
            "oversized",
            tar_gz(&[
                Entry::File("hdag.yaml", ok.as_bytes()),
                Entry::File("big.bin", &big),
            ]),
            "too_large",
        ),
    ];
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let h = hdar(&reg, state.path(), limits);
    for (name, archive, kind) in cases {
        oras_push(
            &t.oras_py,
            &reg,
            work.path(),
            &format!("proj/{name}:1.0.0"),
            &archive,
        );
        let err = h
            .fetch(&reference(
                reg.addr,
                &format!("proj/{name}"),
                "tag",
                "1.0.0",
            ))
            .await
            .expect_err(name);
        assert_eq!(err.kind(), kind, "{name}: {err:?}");
        assert!(
            !err.is_transient(),
            "{name}: refused until the artifact changes"
        );
    }
    assert!(!state.path().join("evil.yaml").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_or_a_missing_tag_is_a_clear_typed_error() {
    // A port nobody listens on: bound, then released.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let registry = OciRegistry::new(OciConfig {
        insecure_registries: vec![addr.to_string()],
        auth: AuthSource::default(),
        ..OciConfig::default()
    })
    .unwrap();
    let h = Hdar::new(registry, state.path(), Limits::default());
    for (selector, value) in [
        ("tag", "1.0.0".to_owned()),
        ("semver", "^1".to_owned()),
        ("digest", format!("sha256:{}", "0".repeat(64))),
    ] {
        let err = h
            .fetch(&reference(addr, "proj/g", selector, &value))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.kind(), "unreachable", "{selector}: {err:?}");
        assert!(err.is_transient());
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(
            chain.contains(&addr.to_string()),
            "names the registry: {chain}"
        );
    }

    let Some(t) = tools() else { return };
    let reg = started(t.registry).await;
    let err = hdar(&reg, state.path(), Limits::default())
        .fetch(&reference(reg.addr, "proj/absent", "tag", "9.9.9"))
        .await
        .expect_err("no such tag");
    assert_eq!(err.kind(), "not_found", "{err:?}");
}
