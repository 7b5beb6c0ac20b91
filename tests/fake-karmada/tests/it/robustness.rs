//! Malformed client input gets a `Status` answer and the server keeps
//! serving (no panics in request handling or in member simulation).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fake_karmada::{FakeKarmada, Options};

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Also guards that the fake serves from its own runtime: this test runs on
/// a current-thread runtime and blocks it with synchronous I/O.
#[tokio::test]
async fn malformed_requests_get_status_answers() {
    let fake = FakeKarmada::start(Options::default().simulate_members(Duration::from_millis(1)))
        .await
        .expect("fake starts");
    let addr = fake.addr();
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let cases: Vec<(&str, String, &str, &[u8], u16)> = vec![
        ("POST", deploys.into(), "application/json", b"[1,2]", 400),
        ("POST", deploys.into(), "application/json", b"{", 400),
        (
            "POST",
            deploys.into(),
            "application/json",
            br#"{"metadata":"x"}"#,
            422,
        ),
        (
            "POST",
            deploys.into(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\xff\xff",
            415,
        ),
        (
            "POST",
            deploys.into(),
            "application/json",
            br#"{"metadata":{"name":"odd"},"spec":"x"}"#,
            201,
        ),
        (
            "PATCH",
            format!("{deploys}/odd"),
            "application/merge-patch+json",
            b"5",
            400,
        ),
        (
            "PATCH",
            format!("{deploys}/odd"),
            "application/json-patch+json",
            b"{}",
            400,
        ),
        (
            "PATCH",
            format!("{deploys}/odd"),
            "application/apply-patch+yaml",
            b": : :",
            400,
        ),
        (
            "PATCH",
            format!("{deploys}/odd/scale"),
            "application/merge-patch+json",
            br#"{"spec":{"replicas":2}}"#,
            200,
        ),
        (
            "PATCH",
            format!("{deploys}/odd/scale"),
            "application/merge-patch+json",
            br#"{"spec":{"replicas":-1}}"#,
            422,
        ),
        (
            "POST",
            deploys.into(),
            "application/json",
            br#"{"metadata":{"name":"weird"},"spec":{"replicas":1,"template":"x","selector":[]}}"#,
            201,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b".into(),
            "",
            b"",
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?fieldSelector=spec.x%3D1".into(),
            "",
            b"",
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc".into(),
            "",
            b"",
            400,
        ),
        ("DELETE", "/apis/nope/v1/things/x".into(), "", b"", 404),
        ("GET", "/api/v1/a/b/c/d/e".into(), "", b"", 404),
    ];
    for (method, path, ct, body, want) in cases {
        let (method, path, ct, body) = (
            method.to_string(),
            path.clone(),
            ct.to_string(),
            body.to_vec(),
        );
        let shown = format!("{method} {path} {}", String::from_utf8_lossy(&body));
        let (status, text) =
            tokio::task::spawn_blocking(move || raw(addr, &method, &path, &ct, &body))
                .await
                .expect("request thread");
        assert_eq!(status, want, "{shown} answered {text}");
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{shown}: no Status ({e}): {text}"));
            assert_eq!(v["kind"], "Status", "{shown}");
            assert_eq!(v["code"], want, "{shown}");
        }
    }
    // Let member simulation chew on the odd Deployments, then check the
    // server still answers.
    std::thread::sleep(Duration::from_millis(50));
    let (status, _) = raw(addr, "GET", "/version", "", b"");
    assert_eq!(status, 200);
    let odd = fake
        .get_object("apps/v1", "Deployment", Some("default"), "odd")
        .expect("stored");
    assert_eq!(
        odd["spec"]["replicas"], 2,
        "scale replaced the non-object spec"
    );
}
