//! The `events` block: where smo publishes its CloudEvents (see
//! [`crate::events`]). Tokens and HMAC secrets stay in their files; only
//! the paths are configuration.

use super::Stage;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The default bound of the outbox: a day of a busy fleet's events, a few
/// MiB on disk.
const OUTBOX_SIZE: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::spec) struct RawEvents {
    source: Option<String>,
    outbox_size: Option<usize>,
    #[serde(default)]
    sinks: Vec<RawSink>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSink {
    name: String,
    url: Option<String>,
    file: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    token_file: Option<String>,
    hmac_secret_file: Option<String>,
    timeout: Option<String>,
}

/// The validated `events` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Events {
    /// The host part of every event's `source`.
    pub source: String,
    /// Undelivered events kept; only used while `sinks` is not empty.
    pub outbox_size: usize,
    pub sinks: Vec<Sink>,
}

/// One receiver of events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sink {
    pub name: String,
    /// Type prefixes taken; empty: every type.
    pub types: Vec<String>,
    pub target: SinkTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SinkTarget {
    Http {
        url: String,
        timeout: Duration,
        auth: SinkAuth,
    },
    /// JSON lines appended to a file.
    File { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SinkAuth {
    None,
    Bearer { token_file: PathBuf },
    Hmac { secret_file: PathBuf },
}

/// This machine's host name (`localhost` when it cannot be read).
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Stage<'_> {
    pub(super) fn events(&mut self, raw: RawEvents) -> Events {
        let mut sinks: Vec<Sink> = Vec::new();
        for (i, s) in raw.sinks.into_iter().enumerate() {
            let at = format!("/events/sinks/{i}");
            if sinks.iter().any(|o| o.name == s.name) {
                self.error(
                    &format!("{at}/name"),
                    format!("a second sink is named `{}`: names must be unique", s.name),
                );
                continue;
            }
            let target = match (s.url, s.file) {
                (Some(url), None) => {
                    let auth = match (s.token_file, s.hmac_secret_file) {
                        (Some(_), Some(_)) => {
                            self.error(
                                &at,
                                "set one of `tokenFile` or `hmacSecretFile`, not both".into(),
                            );
                            SinkAuth::None
                        }
                        (Some(f), None) => SinkAuth::Bearer {
                            token_file: self.path(&f),
                        },
                        (None, Some(f)) => SinkAuth::Hmac {
                            secret_file: self.path(&f),
                        },
                        (None, None) => SinkAuth::None,
                    };
                    SinkTarget::Http {
                        url,
                        // Receivers answer in milliseconds; 10 s covers a
                        // loaded one without holding the queue for long.
                        timeout: self.duration(
                            s.timeout.as_deref(),
                            &format!("{at}/timeout"),
                            Duration::from_secs(10),
                        ),
                        auth,
                    }
                }
                (None, Some(file)) => {
                    if s.token_file.is_some() || s.hmac_secret_file.is_some() {
                        self.error(
                            &at,
                            "a file sink takes no `tokenFile` or `hmacSecretFile`".into(),
                        );
                    }
                    SinkTarget::File {
                        path: self.path(&file),
                    }
                }
                // The schema's oneOf refused these already.
                _ => continue,
            };
            sinks.push(Sink {
                name: s.name,
                types: s.types,
                target,
            });
        }
        Events {
            source: raw.source.unwrap_or_else(hostname),
            outbox_size: raw.outbox_size.unwrap_or(OUTBOX_SIZE),
            sinks,
        }
    }
}
