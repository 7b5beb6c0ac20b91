//! Adapters: one module per external system, each behind a narrow
//! interface with typed errors. No shell anywhere.

pub mod grafana;
pub mod graphviz;
pub mod helm;
pub mod karmada;
pub mod manifest;
pub mod nfvcl;
pub mod prometheus;

/// A URL without `user:password@`, for messages and logs (an HTTP
/// adapter's base URL may carry credentials).
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            // Both setters only fail for URLs that cannot have a host.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}
