//! Who may post alerts: the bearer token ([`Secret`], [`Auth`]), reading
//! it from the request's `Authorization` header and comparing it in
//! constant time.

use super::HttpError;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// A bearer token. Its `Debug` hides it, so it cannot leak through a
/// `{:?}` of a configuration.
#[derive(Clone)]
pub struct Secret(pub(super) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    /// A token given directly (an environment variable, a test).
    pub fn new(token: String) -> Result<Secret, HttpError> {
        Secret::check(token, || "the given value".to_owned())
    }

    /// Reads a token file (a mounted Kubernetes secret, typically with a
    /// trailing newline, which is trimmed).
    pub fn read(path: &Path) -> Result<Secret, HttpError> {
        let origin = || format!("file {}", path.display());
        let bytes = std::fs::read(path).map_err(|source| HttpError::ReadSecret {
            path: path.to_owned(),
            source,
        })?;
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(HttpError::InvalidSecret {
                origin: origin(),
                problem: "is not UTF-8",
            });
        };
        let token = text.trim_end_matches(['\n', '\r']).to_owned();
        Secret::check(token, origin)
    }

    /// A token must survive the trip through an HTTP header unchanged.
    fn check(token: String, origin: impl FnOnce() -> String) -> Result<Secret, HttpError> {
        let problem = if token.is_empty() {
            "is empty"
        } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "contains whitespace or control characters"
        } else {
            return Ok(Secret(token));
        };
        Err(HttpError::InvalidSecret {
            origin: origin(),
            problem,
        })
    }
}

/// Who may post alerts.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Anyone who can reach the port (a trusted network, tests).
    None,
    /// `Authorization: Bearer <token>`, as Alertmanager's
    /// `http_config.authorization` sends it.
    Bearer(Secret),
}

/// The token of the first `Authorization` header, if its scheme is
/// `Bearer` (case-insensitive, RFC 7235).
pub(super) fn bearer_token(headers: &[tiny_http::Header]) -> Option<&str> {
    let value = headers
        .iter()
        .find(|h| h.field.equiv("Authorization"))?
        .value
        .as_str();
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(super) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares every byte whatever the first difference; `black_box` keeps
/// the optimiser from turning the fold into an early exit.
pub(super) fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_parsing() {
        let header = |v: &str| vec![tiny_http::Header::from_bytes("Authorization", v).unwrap()];
        assert_eq!(bearer_token(&header("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&header("BEARER  abc ")), Some("abc"));
        assert_eq!(bearer_token(&header("Basic abc")), None);
        assert_eq!(bearer_token(&header("Bearer")), None);
        assert_eq!(bearer_token(&header("Bearer  ")), None);
        assert_eq!(bearer_token(&[]), None);
    }

    #[test]
    fn constant_time_eq_compares_whole_digests() {
        let a = digest(b"a");
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn secret_is_read_trimmed_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\r\n").unwrap();
        let secret = Secret::read(&path).unwrap();
        assert_eq!(secret.0, "abc");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Auth::Bearer(secret)), "Bearer(***)");

        std::fs::write(&path, "\n").unwrap();
        let e = Secret::read(&path).unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        std::fs::write(&path, "two words\n").unwrap();
        let e = Secret::read(&path).unwrap_err().to_string();
        assert!(e.contains("whitespace") && !e.contains("two words"), "{e}");
        let e = Secret::read(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, HttpError::ReadSecret { .. }));
    }
}
