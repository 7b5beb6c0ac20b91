//! Helpers shared by the test suites that drive the fake with real tools.

use std::io::Write;
use std::path::PathBuf;

/// Path of an external tool named by an environment variable
/// (`SMO_HELM`, `SMO_HELM3`, `SMO_REGISTRY`). In CI (`CI=true`) a missing
/// tool fails the test; elsewhere the test is skipped with a loud message.
pub fn tool(var: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if found.is_some() {
        return found;
    }
    let hint = format!(
        "{var} is not set or does not name a file; `source .ci/install-tools.sh` installs helm and the registry and exports it"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{hint} (CI=true: tests needing it must not be skipped)");
    }
    // Written past the test harness's output capture, so it shows.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPING TEST: {hint} !!!!!!!!\n"
    );
    None
}

/// Copies a directory tree (test fixtures such as a state root).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Whether a request is helm reading its release storage: the Secrets of
/// one namespace, which every helm command reads, asked for by helm (its
/// user agent is `Helm/<version>`). smo's own client reads the same
/// Secrets (a release's labels, the sweep), which is not a helm call.
pub fn is_helm_storage(r: &crate::LoggedRequest) -> bool {
    is_helm(r) && r.path.contains("/namespaces/") && r.path.contains("/secrets")
}

/// Whether helm made a request (any: discovery, storage, objects).
pub fn is_helm(r: &crate::LoggedRequest) -> bool {
    r.user_agent.starts_with("Helm/")
}

/// A real OCI registry (Debian's `docker-registry`, filesystem storage, on
/// a free loopback port) for the tests that push and pull artifacts;
/// killed on drop.
pub struct OciRegistry {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OciRegistry {
    /// Starts `bin` (the `SMO_REGISTRY` tool) and waits until `/v2/`
    /// answers: at most 300 tries of 100 ms.
    pub fn start(bin: &std::path::Path) -> OciRegistry {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("temp dir");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
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
        let mut reg = OciRegistry { child, addr, dir };
        for _ in 0..300 {
            if answers(addr) {
                return reg;
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited early: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = reg.child.kill();
        panic!("docker-registry did not answer on {addr}");
    }

    /// Where the registry keeps a blob (filesystem driver layout), for
    /// tests that corrupt one.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// A free loopback port (bound, read and released: the registry cannot be
/// told to pick one itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// Whether a registry answers `GET /v2/` with 200 on `addr`.
fn answers(addr: std::net::SocketAddr) -> bool {
    use std::io::Read;
    use std::time::Duration;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
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
