//! The systemd notification protocol (`Type=notify`), without libsystemd:
//! datagrams to `$NOTIFY_SOCKET` — `READY=1` once the store is open and the
//! first snapshot loaded, `STATUS=…` with the last revision, `WATCHDOG=1`
//! from the daemon's main loop (a loop that stops turning stops the pings,
//! and systemd restarts the service after `WatchdogSec`), `STOPPING=1` when
//! a stop begins.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op. A failed
//! send is logged at debug level and otherwise ignored: the notifications
//! are advisory and must never stop the daemon.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Notifier {
    target: Option<Arc<(UnixDatagram, SocketAddr)>>,
    watchdog: Option<Duration>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("active", &self.target.is_some())
            .field("watchdog", &self.watchdog)
            .finish()
    }
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) and
    /// `WATCHDOG_USEC` (honoured when `WATCHDOG_PID` is unset or ours).
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
            let s = s.to_string_lossy().into_owned();
            let addr = if let Some(name) = s.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                SocketAddr::from_pathname(&s).ok()?
            };
            let socket = UnixDatagram::unbound().ok()?;
            Some(Arc::new((socket, addr)))
        });
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && ours)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half the configured timeout, as
    /// sd_watchdog_enabled(3) recommends.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, state: &str) {
        if let Some(t) = &self.target
            && let Err(e) = t.0.send_to_addr(state.as_bytes(), &t.1)
        {
            tracing::debug!(error = %e, "systemd notification not sent");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: finishing running reconciles");
    }
}

/// A status is one line: a newline would start another assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_and_statuses_stay_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some(Arc::new((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            ))),
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(5)));
        n.ready("revision abc\nINJECTED=1");
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "READY=1\nSTATUS=revision abc INJECTED=1"
        );
        n.watchdog();
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn outside_systemd_nothing_is_sent_and_no_watchdog_runs() {
        let n = Notifier::default();
        assert_eq!(n.watchdog_every(), None);
        n.ready("x");
        n.stopping();
    }
}
