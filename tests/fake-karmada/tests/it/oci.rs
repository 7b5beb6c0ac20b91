//! The fixture chart pushed to a real OCI registry (Debian's
//! `docker-registry`, filesystem storage, loopback) and installed from it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{self, Helm};

/// A registry process, killed on drop.
struct Registry {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (the registry cannot be told to pick one itself).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

fn registry_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

fn start_registry(bin: &Path) -> Registry {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write registry config");
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry starts");
    let mut reg = Registry {
        child,
        addr,
        _dir: dir,
    };
    // Readiness poll, bounded: 300 tries of 100 ms.
    for _ in 0..300 {
        if registry_answers(addr) {
            return reg;
        }
        if let Ok(Some(status)) = reg.child.try_wait() {
            panic!("docker-registry exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = reg.child.kill();
    panic!("docker-registry did not answer on {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_installs_from_a_real_oci_registry() {
    let Some(helm_bin) = support::tool("SMO_HELM") else {
        return;
    };
    let Some(reg_bin) = support::tool("SMO_REGISTRY") else {
        return;
    };
    let registry = tokio::task::spawn_blocking(move || start_registry(&reg_bin))
        .await
        .expect("registry thread");
    let fake = support::start().await;
    let helm = Helm::new(helm_bin, &fake);
    let pkg_dir = helm.home().join("pkg");
    let chart = support::chart_dir();
    helm.run(&[
        "package",
        chart.to_str().expect("utf-8"),
        "-d",
        pkg_dir.to_str().expect("utf-8"),
    ])
    .await;
    let tgz = pkg_dir.join("web-0.1.0.tgz");
    assert!(tgz.is_file(), "helm package wrote {}", tgz.display());
    let repo = format!("oci://{}/charts", registry.addr);
    helm.run(&["push", tgz.to_str().expect("utf-8"), &repo, "--plain-http"])
        .await;

    let chart_ref = format!("{repo}/web");
    helm.run(&[
        "upgrade",
        "--install",
        "from-oci",
        &chart_ref,
        "--version",
        "0.1.0",
        "--plain-http",
        "-n",
        "oci",
        "--create-namespace",
        "--set",
        "replicas=2",
    ])
    .await;
    let d = fake
        .get_object("apps/v1", "Deployment", Some("oci"), "from-oci")
        .expect("Deployment from the OCI chart");
    assert_eq!(d["spec"]["replicas"], 2);
    let ls = helm.run(&["ls", "-n", "oci", "-o", "json"]).await;
    let ls: serde_json::Value = serde_json::from_str(&ls).expect("json");
    assert_eq!(ls[0]["chart"], "web-0.1.0");

    // Helm 3.18 installs the same artifact.
    if let Some(helm3_bin) = support::tool("SMO_HELM3") {
        let helm3 = Helm::new(helm3_bin, &fake);
        helm3
            .run(&[
                "install",
                "from-oci-3",
                &chart_ref,
                "--version",
                "0.1.0",
                "--plain-http",
                "-n",
                "oci3",
                "--create-namespace",
            ])
            .await;
        assert!(
            fake.get_object("apps/v1", "Deployment", Some("oci3"), "from-oci-3")
                .is_some()
        );
    }

    // A chart that is not in the registry fails cleanly.
    let out = helm
        .try_run(&[
            "template",
            "x",
            &format!("{repo}/absent"),
            "--version",
            "9.9.9",
            "--plain-http",
        ])
        .await;
    assert!(!out.ok, "pulling a missing chart must fail");
    drop(registry);
}
