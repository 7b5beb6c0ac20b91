//! One sink: delivers one event and says what became of it.

use crate::spec::config::{Sink, SinkAuth, SinkTarget};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The header that carries the HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Smo-Signature";

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver took it (2xx; the line was written).
    Delivered,
    /// The receiver will never take it (a 4xx other than 408 and 429):
    /// dropped with a warning, the sink moves on.
    Refused(String),
    /// Try again later (408, 429, 5xx, a timeout, no connection, a secret
    /// file that cannot be read, a file that cannot be written).
    Retry(String),
}

/// Where one sink's events go.
pub trait Deliver: Send + Sync {
    fn deliver(&self, body: &[u8]) -> impl Future<Output = Delivery> + Send;
}

/// The verdict on an HTTP status, as Alertmanager judges its receivers.
pub fn classify(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Delivered,
        408 | 429 => Delivery::Retry(format!("the receiver answered {status}")),
        400..=499 => Delivery::Refused(format!("the receiver answered {status}")),
        _ => Delivery::Retry(format!("the receiver answered {status}")),
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A sink built from its configuration.
#[derive(Debug, Clone)]
pub enum AnySink {
    Http(HttpSink),
    File(FileSink),
}

impl AnySink {
    pub fn new(sink: &Sink) -> AnySink {
        match &sink.target {
            SinkTarget::Http { url, timeout, auth } => {
                AnySink::Http(HttpSink::new(url, *timeout, auth))
            }
            SinkTarget::File { path } => AnySink::File(FileSink { path: path.clone() }),
        }
    }
}

impl Deliver for AnySink {
    async fn deliver(&self, body: &[u8]) -> Delivery {
        match self {
            AnySink::Http(s) => s.deliver(body).await,
            AnySink::File(s) => s.deliver(body).await,
        }
    }
}

/// POSTs structured CloudEvents.
#[derive(Debug, Clone)]
pub struct HttpSink {
    url: String,
    auth: SinkAuth,
    client: reqwest::Client,
}

impl HttpSink {
    pub fn new(url: &str, timeout: Duration, auth: &SinkAuth) -> HttpSink {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        HttpSink {
            url: url.to_owned(),
            auth: auth.clone(),
            client,
        }
    }
}

/// A secret file's content, trimmed; the error names the file, never the
/// content.
fn secret(path: &Path) -> Result<String, Delivery> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Delivery::Retry(format!("cannot read {}: {e}", path.display())))
}

impl Deliver for HttpSink {
    async fn deliver(&self, body: &[u8]) -> Delivery {
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, super::CONTENT_TYPE);
        match &self.auth {
            SinkAuth::None => {}
            SinkAuth::Bearer { token_file } => match secret(token_file) {
                Ok(token) => req = req.bearer_auth(token),
                Err(d) => return d,
            },
            SinkAuth::Hmac { secret_file } => match secret(secret_file) {
                Ok(key) => {
                    let mac = crate::digest::hex(&hmac_sha256(key.as_bytes(), body));
                    req = req.header(SIGNATURE_HEADER, format!("sha256={mac}"));
                }
                Err(d) => return d,
            },
        }
        match req.body(body.to_vec()).send().await {
            Ok(resp) => classify(resp.status().as_u16()),
            // No URL in the message: it may carry a token in its query.
            Err(e) if e.is_timeout() => Delivery::Retry("the receiver timed out".into()),
            Err(e) if e.is_connect() => Delivery::Retry("cannot connect to the receiver".into()),
            Err(e) => Delivery::Retry(format!("request failed: {}", e.without_url())),
        }
    }
}

/// Appends one event per line.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

impl Deliver for FileSink {
    async fn deliver(&self, body: &[u8]) -> Delivery {
        let (path, mut line) = (self.path.clone(), body.to_vec());
        line.push(b'\n');
        let written = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write of the whole line: readers never see half of it.
            f.write_all(&line)?;
            f.sync_data()
        })
        .await;
        match written {
            Ok(Ok(())) => Delivery::Delivered,
            Ok(Err(e)) => Delivery::Retry(format!("cannot append to {}: {e}", self.path.display())),
            Err(e) => Delivery::Retry(format!("write task failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_as_alertmanager_judges_them() {
        assert_eq!(classify(200), Delivery::Delivered);
        assert_eq!(classify(204), Delivery::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(matches!(classify(s), Delivery::Retry(_)), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413] {
            assert!(matches!(classify(s), Delivery::Refused(_)), "{s}");
        }
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::digest::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            crate::digest::hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// A receiver answering `statuses` in turn; returns its URL and the
    /// Authorization headers it saw.
    fn receiver(statuses: Vec<u16>) -> (String, std::sync::mpsc::Receiver<Option<String>>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/e", server.server_addr().to_ip().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok(req) = server.recv() else { return };
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_owned());
                let _ = tx.send(auth);
                let _ = req.respond(tiny_http::Response::empty(status));
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn an_http_sink_delivers_retries_and_refuses_as_the_receiver_answers() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let (url, seen) = receiver(vec![204, 503, 429, 400]);
        let auth = SinkAuth::Bearer { token_file: token };
        let sink = HttpSink::new(&url, Duration::from_secs(5), &auth);
        assert_eq!(sink.deliver(b"{}").await, Delivery::Delivered);
        assert!(matches!(sink.deliver(b"{}").await, Delivery::Retry(_)));
        assert!(matches!(sink.deliver(b"{}").await, Delivery::Retry(_)));
        assert!(matches!(sink.deliver(b"{}").await, Delivery::Refused(_)));
        assert_eq!(seen.recv().unwrap().as_deref(), Some("Bearer s3cret"));
        // A token file that cannot be read: retried, and the message names
        // the file, never a token.
        let gone = SinkAuth::Bearer {
            token_file: dir.path().join("missing"),
        };
        let sink = HttpSink::new(&url, Duration::from_secs(5), &gone);
        match sink.deliver(b"{}").await {
            Delivery::Retry(why) => assert!(why.contains("missing"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out_and_is_retried() {
        // Never accepted: the connection completes in the backlog and the
        // request is never read.
        let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/e", stalled.local_addr().unwrap());
        let sink = HttpSink::new(&url, Duration::from_millis(300), &SinkAuth::None);
        assert_eq!(
            sink.deliver(b"{}").await,
            Delivery::Retry("the receiver timed out".into())
        );
        // Nobody listening at all.
        drop(stalled);
        assert!(matches!(sink.deliver(b"{}").await, Delivery::Retry(_)));
    }

    #[tokio::test]
    async fn a_file_sink_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink {
            path: dir.path().join("events.jsonl"),
        };
        assert_eq!(sink.deliver(b"{\"a\":1}").await, Delivery::Delivered);
        assert_eq!(sink.deliver(b"{\"b\":2}").await, Delivery::Delivered);
        let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
        let missing = FileSink {
            path: dir.path().join("no/such/dir/events.jsonl"),
        };
        assert!(matches!(missing.deliver(b"{}").await, Delivery::Retry(_)));
    }
}
