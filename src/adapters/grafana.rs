//! Grafana: the two sinks of smo's dashboards.
//!
//! [`GrafanaClient`] publishes through Grafana's HTTP API (folders and
//! dashboards, `Authorization: Bearer` with a service account token);
//! [`DirSink`] writes JSON files for Grafana's file provisioning. Both are
//! idempotent: a dashboard is addressed by its uid and overwritten, a
//! removal of what is already gone succeeds. Retrying is the caller's
//! policy, guided by [`GrafanaError::is_transient`].
//!
//! Invariant: the token never leaves the `Authorization` header — [`Token`]
//! prints as `***`, errors carry the URL (without userinfo) and Grafana's
//! answer, never the request.

use super::redact;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// A Grafana service account token. `Debug` prints `***`.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    /// Reads `grafana.tokenFile`; surrounding whitespace (a final newline)
    /// is not part of the token.
    pub fn read(path: &Path) -> Result<Self, GrafanaError> {
        let text = std::fs::read_to_string(path).map_err(|source| GrafanaError::TokenFile {
            path: path.to_owned(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(GrafanaError::EmptyToken {
                path: path.to_owned(),
            });
        }
        Ok(Token(token.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    #[error(
        "grafana.url {url:?} is not a usable URL: {reason}; set it to e.g. http://127.0.0.1:3000"
    )]
    InvalidUrl { url: String, reason: String },
    #[error(
        "grafana.url is set but grafana.tokenFile is not; create a Grafana service account with the Editor role and point tokenFile at a file holding its token"
    )]
    MissingToken,
    #[error(
        "cannot read the Grafana token from {path}: {source}; check grafana.tokenFile and that smo may read it"
    )]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Grafana token file {path} is empty; put a service account token in it")]
    EmptyToken { path: PathBuf },
    #[error("cannot build the HTTP client for Grafana: {0}; check this machine's TLS setup")]
    Client(#[source] reqwest::Error),
    #[error(
        "Grafana at {url} is unreachable ({operation}): {source}; check grafana.url and that Grafana is running"
    )]
    Unreachable {
        operation: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Grafana at {url} answered HTTP {status} to {operation}: {body}{hint}", hint = status_hint(*status))]
    Status {
        operation: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "cannot read Grafana's answer to {operation} from {url}: {reason}; check that grafana.url points at Grafana itself (not a login page or a proxy)"
    )]
    Decode {
        operation: &'static str,
        url: String,
        reason: String,
    },
    #[error(
        "dashboard JSON without a usable uid ({uid:?}); dashboards must come from smo's builders"
    )]
    BadUid { uid: String },
    #[error(
        "cannot write dashboard file {path}: {source}; check grafana.dashboardsDir and its permissions"
    )]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot remove dashboard file {path}: {source}; check grafana.dashboardsDir and its permissions"
    )]
    RemoveFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dashboard file task failed: {0}")]
    Task(String),
}

impl GrafanaError {
    /// Worth retrying as is: Grafana (or the way to it) may recover.
    /// Everything else needs a change of configuration, token or rights.
    pub fn is_transient(&self) -> bool {
        match self {
            GrafanaError::Unreachable { .. } => true,
            GrafanaError::Status { status, .. } => *status >= 500 || *status == 429,
            GrafanaError::InvalidUrl { .. }
            | GrafanaError::MissingToken
            | GrafanaError::TokenFile { .. }
            | GrafanaError::EmptyToken { .. }
            | GrafanaError::Client(_)
            | GrafanaError::Decode { .. }
            | GrafanaError::BadUid { .. }
            | GrafanaError::WriteFile { .. }
            | GrafanaError::RemoveFile { .. } => false,
            GrafanaError::Task(_) => true,
        }
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => "; check the token in grafana.tokenFile (expired or revoked?)",
        403 => {
            "; the token's service account needs the Editor role (or edit rights on smo's folders)"
        }
        400 => {
            "; Grafana rejected the dashboard JSON; check grafana.datasource and grafana.queries"
        }
        404 => "; check grafana.url (including any sub-path Grafana is served from)",
        412 => "; another dashboard has the same title in that folder; rename or remove it",
        429 | 500.. => "; Grafana is overloaded or starting, smo will retry",
        _ => "",
    }
}

/// Bodies are quoted in errors; a proxy's HTML page must not flood a log.
const MAX_BODY_IN_ERROR: usize = 1024;

/// Per-request timeout when the caller has no opinion: Grafana answers
/// these small requests in milliseconds; ten seconds is an outage.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Grafana's HTTP API, for the dashboards smo owns.
#[derive(Clone)]
pub struct GrafanaClient {
    http: reqwest::Client,
    /// Without a trailing slash: endpoint paths are appended.
    base: String,
    /// `base` without userinfo, for messages and logs.
    redacted: String,
    token: Token,
}

impl std::fmt::Debug for GrafanaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaClient")
            .field("url", &self.redacted)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The answer of `POST /api/dashboards/db` that smo uses.
#[derive(serde::Deserialize)]
struct Published {
    url: String,
}

#[derive(serde::Deserialize)]
struct Folder {
    uid: String,
    title: String,
}

impl GrafanaClient {
    pub fn new(url: &str, token: Token, timeout: Duration) -> Result<Self, GrafanaError> {
        let base = url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| GrafanaError::InvalidUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(GrafanaError::InvalidUrl {
                url: redact(url),
                reason: format!("scheme {:?} is neither http nor https", parsed.scheme()),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(GrafanaError::Client)?;
        let redacted = redact(&base);
        Ok(GrafanaClient {
            http,
            base,
            redacted,
            token,
        })
    }

    /// The folder with uid `uid` (see [`crate::dashboards::folder_uid`]),
    /// created with `title` when missing; returns its uid. A folder an
    /// operator already made with that title is used as it is.
    pub async fn ensure_folder(&self, uid: &str, title: &str) -> Result<String, GrafanaError> {
        const LIST: &str = "listing folders";
        let response = self
            .request(reqwest::Method::GET, "/api/folders")
            .query(&[("limit", "1000")])
            .send()
            .await
            .map_err(|e| self.transport_error(LIST, e))?;
        let folders: Vec<Folder> = self.json(LIST, response).await?;
        if let Some(found) = folders
            .iter()
            .find(|f| f.uid == uid)
            .or_else(|| folders.iter().find(|f| f.title == title))
        {
            return Ok(found.uid.clone());
        }
        const CREATE: &str = "creating a folder";
        let response = self
            .request(reqwest::Method::POST, "/api/folders")
            .json(&json!({"uid": uid, "title": title}))
            .send()
            .await
            .map_err(|e| self.transport_error(CREATE, e))?;
        let created: Folder = self.json(CREATE, response).await?;
        Ok(created.uid)
    }

    /// Creates or replaces `dashboard` (matched by its uid) in the folder;
    /// returns the dashboard's address.
    pub async fn publish(
        &self,
        dashboard: &Value,
        folder_uid: &str,
    ) -> Result<String, GrafanaError> {
        const PUBLISH: &str = "publishing a dashboard";
        let response = self
            .request(reqwest::Method::POST, "/api/dashboards/db")
            .json(&json!({
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "overwrite": true,
                "message": "smo",
            }))
            .send()
            .await
            .map_err(|e| self.transport_error(PUBLISH, e))?;
        let published: Published = self.json(PUBLISH, response).await?;
        Ok(self.address(&published.url))
    }

    /// Deletes the dashboard; `Ok(false)` when it was already gone.
    pub async fn delete(&self, uid: &str) -> Result<bool, GrafanaError> {
        const DELETE: &str = "deleting a dashboard";
        let path = format!("/api/dashboards/uid/{uid}");
        let response = self
            .request(reqwest::Method::DELETE, &path)
            .send()
            .await
            .map_err(|e| self.transport_error(DELETE, e))?;
        match response.status().as_u16() {
            404 => Ok(false),
            200..=299 => Ok(true),
            status => Err(self.status_error(DELETE, status, response).await),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token.0)
    }

    /// Grafana answers a path (`/d/UID/slug`, with its sub-path when it
    /// has one); an absolute URL is kept as it is.
    fn address(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            return url.to_owned();
        }
        match reqwest::Url::parse(&self.redacted).and_then(|base| base.join(url)) {
            Ok(joined) => joined.to_string(),
            Err(_) => format!("{}{url}", self.redacted),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        response: reqwest::Response,
    ) -> Result<T, GrafanaError> {
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(self.status_error(operation, status, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(operation, e))?;
        serde_json::from_slice(&body).map_err(|e| GrafanaError::Decode {
            operation,
            url: self.redacted.clone(),
            reason: e.to_string(),
        })
    }

    async fn status_error(
        &self,
        operation: &'static str,
        status: u16,
        response: reqwest::Response,
    ) -> GrafanaError {
        let body = response.text().await.unwrap_or_default();
        let body = body.trim();
        let body = match body.char_indices().nth(MAX_BODY_IN_ERROR) {
            Some((cut, _)) => format!("{}…", &body[..cut]),
            None => body.to_owned(),
        };
        GrafanaError::Status {
            operation,
            url: self.redacted.clone(),
            status,
            body,
        }
    }

    fn transport_error(&self, operation: &'static str, error: reqwest::Error) -> GrafanaError {
        // The URL is ours to print (redacted); reqwest's copy may hold
        // credentials.
        GrafanaError::Unreachable {
            operation,
            url: self.redacted.clone(),
            source: error.without_url(),
        }
    }
}

/// Dashboards as files, `DIR/PROJECT/UID.json`, for a Grafana dashboard
/// provider of type `file` (with `foldersFromFilesStructure: true` each
/// project becomes a folder). Blocking file I/O: call from
/// `spawn_blocking` or accept a few small writes on a worker.
#[derive(Debug, Clone)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSink { dir: dir.into() }
    }

    /// Where the dashboard with this uid lives.
    pub fn path(&self, project: &str, uid: &str) -> PathBuf {
        self.dir.join(project).join(format!("{uid}.json"))
    }

    /// Writes the dashboard atomically (a temporary file in the same
    /// directory, renamed over the old one): Grafana never reads half a
    /// file. Returns the file's path.
    pub fn write(&self, project: &str, dashboard: &Value) -> Result<PathBuf, GrafanaError> {
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        check_name(uid)?;
        check_name(project)?;
        let path = self.path(project, uid);
        let folder = self.dir.join(project);
        let write_error = |source| GrafanaError::WriteFile {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&folder).map_err(write_error)?;
        let mut file = tempfile::NamedTempFile::new_in(&folder).map_err(write_error)?;
        let text = serde_json::to_vec_pretty(dashboard).map_err(|e| write_error(e.into()))?;
        file.write_all(&text).map_err(write_error)?;
        file.as_file().sync_all().map_err(write_error)?;
        file.persist(&path).map_err(|e| write_error(e.error))?;
        Ok(path)
    }

    /// Removes the dashboard's file; `Ok(false)` when it was already gone.
    pub fn remove(&self, project: &str, uid: &str) -> Result<bool, GrafanaError> {
        check_name(uid)?;
        check_name(project)?;
        let path = self.path(project, uid);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(GrafanaError::RemoveFile { path, source }),
        }
    }
}

/// uids and project names become path components: letters, digits, `-`
/// and `_` only, so nothing can climb out of the directory.
fn check_name(name: &str) -> Result<(), GrafanaError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(GrafanaError::BadUid {
            uid: name.to_owned(),
        })
    }
}

impl crate::retry::Transient for GrafanaError {
    fn is_transient(&self) -> bool {
        GrafanaError::is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let token = Token::new("glsa_secret");
        assert_eq!(format!("{token:?}"), "***");
        let client = GrafanaClient::new("http://u:p@127.0.0.1:3000/", token, DEFAULT_TIMEOUT)
            .expect("client");
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("glsa_secret") && !shown.contains("u:p@"),
            "{shown}"
        );
    }

    #[test]
    fn transient_errors_are_5xx_and_429_only() {
        let status = |status| GrafanaError::Status {
            operation: "x",
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(
            status(500).is_transient() && status(503).is_transient() && status(429).is_transient()
        );
        assert!(
            !status(400).is_transient()
                && !status(401).is_transient()
                && !status(403).is_transient()
        );
        assert!(!GrafanaError::MissingToken.is_transient());
    }

    #[test]
    fn addresses_join_the_base() {
        let client = GrafanaClient::new("http://g:3000/grafana", Token::new("t"), DEFAULT_TIMEOUT)
            .expect("client");
        assert_eq!(
            client.address("/grafana/d/smo-1/x"),
            "http://g:3000/grafana/d/smo-1/x"
        );
        assert_eq!(client.address("https://other/d/1"), "https://other/d/1");
    }

    #[test]
    fn dir_sink_refuses_names_that_leave_the_directory() {
        let sink = DirSink::new("unused");
        assert!(matches!(
            sink.remove("..", "x"),
            Err(GrafanaError::BadUid { .. })
        ));
        assert!(matches!(
            sink.write("p", &json!({"uid": "../x"})),
            Err(GrafanaError::BadUid { .. })
        ));
    }
}
