//! Registry credentials from a file in Docker's `config.json` format:
//!
//! ```json
//! {"auths": {"hdar.example.org:5000": {"auth": "<base64 user:password>"},
//!            "other.example.org": {"username": "u", "password": "p"},
//!            "tokens.example.org": {"registrytoken": "<bearer token>"}}}
//! ```
//!
//! Keys are matched on `host[:port]`; Docker's URL-style keys
//! (`https://host/v1/`) are reduced to that. `registrytoken` and
//! `identitytoken` are sent as a bearer token as they are (no OAuth
//! refresh-token exchange). The file is read at every lookup so a rotated
//! secret is picked up without a restart. Credentials never appear in
//! `Debug` output, logs or errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::Anonymous => "Anonymous",
            Credentials::Basic { .. } => "Basic(<redacted>)",
            Credentials::Bearer(_) => "Bearer(<redacted>)",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {file}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} is not a Docker config.json: {reason}")]
    Parse { file: PathBuf, reason: String },
    #[error("{file}: the entry for {registry} has an `auth` that is not base64 of user:password")]
    BadAuth { file: PathBuf, registry: String },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// Where credentials come from: nowhere, or a config.json file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSource {
    pub file: Option<PathBuf>,
}

impl AuthSource {
    /// The credentials for `registry` (`host[:port]`); anonymous when
    /// there is no file or no entry for it.
    pub fn credentials(&self, registry: &str) -> Result<Credentials, AuthError> {
        let Some(file) = &self.file else {
            return Ok(Credentials::Anonymous);
        };
        let text = std::fs::read_to_string(file).map_err(|source| AuthError::Read {
            file: file.clone(),
            source,
        })?;
        credentials_in(&text, file, registry)
    }
}

fn credentials_in(text: &str, file: &Path, registry: &str) -> Result<Credentials, AuthError> {
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| AuthError::Parse {
        file: file.to_owned(),
        // serde_json's messages may quote the offending value, which may be
        // a secret: only the kind and position are shown.
        reason: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })?;
    let Some(entry) = config
        .auths
        .iter()
        .find(|(key, _)| registry_key(key) == registry)
        .map(|(_, v)| v)
    else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(token) = entry
        .registrytoken
        .as_ref()
        .or(entry.identitytoken.as_ref())
        && !token.is_empty()
    {
        return Ok(Credentials::Bearer(token.clone()));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || AuthError::BadAuth {
            file: file.to_owned(),
            registry: registry.to_owned(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    Ok(Credentials::Anonymous)
}

/// `https://host:5000/v1/` → `host:5000`.
fn registry_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str, registry: &str) -> Result<Credentials, AuthError> {
        credentials_in(json, Path::new("config.json"), registry)
    }

    #[test]
    fn the_docker_config_forms_are_read() {
        let json = r#"{"auths": {
            "a.example:5000": {"auth": "dXNlcjpwYXNzOndpdGg6Y29sb25z"},
            "https://b.example/v1/": {"username": "u", "password": "p"},
            "c.example": {"identitytoken": "tok"},
            "d.example": {"auth": "", "registrytoken": "rt"}
        }, "credsStore": "desktop"}"#;
        assert_eq!(
            creds(json, "a.example:5000").unwrap(),
            Credentials::Basic {
                username: "user".into(),
                password: "pass:with:colons".into()
            }
        );
        assert!(matches!(
            creds(json, "b.example").unwrap(),
            Credentials::Basic { .. }
        ));
        assert_eq!(
            creds(json, "c.example").unwrap(),
            Credentials::Bearer("tok".into())
        );
        assert_eq!(
            creds(json, "d.example").unwrap(),
            Credentials::Bearer("rt".into())
        );
        assert_eq!(
            creds(json, "a.example").unwrap(),
            Credentials::Anonymous,
            "port matters"
        );
        assert_eq!(creds(json, "e.example").unwrap(), Credentials::Anonymous);
    }

    #[test]
    fn errors_and_debug_never_show_a_secret() {
        let err = creds(r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#, "h").unwrap_err();
        assert!(matches!(err, AuthError::BadAuth { .. }));
        for bad in [
            r#"{"auths": {"h": {"auth": "s3cr3t" "#,
            r#"{"auths": "s3cr3t"}"#,
        ] {
            let err = creds(bad, "h").unwrap_err();
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
        let c = Credentials::Basic {
            username: "u".into(),
            password: "s3cr3t".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Credentials::Bearer("s3cr3t".into())).contains("s3cr3t"));
    }

    #[test]
    fn no_file_means_anonymous() {
        assert_eq!(
            AuthSource::default().credentials("h").unwrap(),
            Credentials::Anonymous
        );
        let missing = AuthSource {
            file: Some(PathBuf::from("/nonexistent/config.json")),
        };
        assert!(matches!(
            missing.credentials("h"),
            Err(AuthError::Read { .. })
        ));
    }
}
