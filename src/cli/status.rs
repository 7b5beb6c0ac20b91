//! `smo status [--config FILE] [--format text|json]`.
//!
//! redb admits one process: while the daemon runs, the database is locked
//! and `smo status` reads the status snapshot the daemon publishes next to
//! it after every reconcile (`status.json`, replaced atomically). When no
//! daemon runs, it opens the database itself. Exit codes: 0 every graph
//! Ready, 1 some graph is not, 2 no state could be read.

use super::validate::Format;
use crate::spec::config;
use crate::store::Store;
use crate::store::records::ConditionKind;
use crate::store::snapshot::{self, StatusSnapshot};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The host configuration (for `stateDir`).
    #[arg(long, default_value = "/etc/smo/config.yaml")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smo status: {e}");
            return Ok(2);
        }
    };
    let dir = &config.state_dir;
    let db = crate::daemon::context::store_path(&config);
    let opened = if db.exists() {
        Some(Store::open(&db))
    } else {
        None
    };
    let mut daemon_runs = true;
    let mut snap: StatusSnapshot = match opened {
        Some(Ok(store)) => {
            daemon_runs = false;
            store.status_snapshot(Vec::new())?
        }
        Some(Err(e)) if !e.is_locked() => {
            eprintln!("smo status: {e}");
            return Ok(2);
        }
        // Locked by the running daemon: the snapshot it publishes.
        _ => match snapshot::read(dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "smo status: no state in {}: {e}; has `smo run` started with this configuration?",
                    dir.display()
                );
                return Ok(2);
            }
        },
    };
    if config.ha.enabled && daemon_runs {
        snap.ha = crate::daemon::role::read_view(dir);
    }
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &snap)?;
            writeln!(out)?;
        }
        Format::Text => write!(out, "{}", render_text(&snap))?,
    }
    let all_ready = snap.graphs.iter().all(|g| {
        g.conditions
            .iter()
            .any(|c| c.kind == ConditionKind::Ready && c.status)
    });
    Ok(i32::from(!all_ready))
}

fn render_text(s: &StatusSnapshot) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "revision {}",
        s.source_revision.as_deref().unwrap_or("(none yet)")
    );
    if let Some(v) = &s.ha {
        let _ = writeln!(o, "{}", role_line(v));
    }
    for n in &s.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for g in &s.graphs {
        let ready = g.conditions.iter().find(|c| c.kind == ConditionKind::Ready);
        let _ = writeln!(
            o,
            "{}/{}: {} ({}){}",
            g.project,
            g.graph,
            if ready.is_some_and(|c| c.status) {
                "Ready"
            } else {
                "NotReady"
            },
            ready.map_or("", |c| c.reason.as_str()),
            g.last_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if let Some(origin) = &g.origin {
            let _ = writeln!(o, "  from {origin}");
        }
        if let Some(change) = &g.last_change {
            let short: String = change.cause.revision.chars().take(14).collect();
            let by = change
                .cause
                .commit
                .as_ref()
                .map(|c| format!(": {}", c.headline()))
                .unwrap_or_default();
            let _ = writeln!(o, "  changed at {short}{by} in {}", change.file);
        }
        for c in g
            .conditions
            .iter()
            .filter(|c| c.status && c.kind != ConditionKind::Ready)
        {
            let _ = writeln!(o, "  {:?}: {}", c.kind, c.message);
        }
        for svc in s
            .services
            .iter()
            .filter(|x| x.project == g.project && x.graph == g.graph)
        {
            let _ = writeln!(
                o,
                "  {:<24} {:<20} clusters={} revision={}{}",
                svc.service,
                format!("{:?}", svc.phase),
                svc.clusters.join(","),
                svc.release_revision.map_or("-".into(), |r| r.to_string()),
                svc.last_error
                    .as_ref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            );
            let t = &svc.trigger;
            if let (Some(at), Some(alert)) = (t.fired_at, &t.alert) {
                let _ = writeln!(o, "    Triggered by alert {alert} at {at}");
            } else if !t.pending.is_empty() {
                let _ = writeln!(o, "    WaitingForTrigger: {}", t.pending.join(", "));
            }
            if let Some(sc) = s.scales.iter().find(|r| {
                r.project == svc.project && r.graph == svc.graph && r.service == svc.service
            }) {
                let _ = writeln!(
                    o,
                    "    replicas={} rate={}{}",
                    sc.replicas,
                    sc.rate.map_or("-".into(), |r| format!("{r:.2}/s")),
                    sc.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    for c in &s.clusters {
        let _ = writeln!(
            o,
            "cluster {}: {} cpu_free={:.2}",
            c.name,
            if c.ready { "Ready" } else { "NotReady" },
            c.cpu_free
        );
    }
    o
}

/// The election in one line: this instance's role, the holder and when its
/// claim ends.
fn role_line(v: &crate::ha::View) -> String {
    let until = v
        .lease_expires
        .as_deref()
        .map(|t| format!(" until {t}"))
        .unwrap_or_default();
    match v.role {
        crate::ha::Role::Leader => {
            format!("role leader ({}, lease {}{until})", v.identity, v.lease)
        }
        crate::ha::Role::Standby => format!(
            "role standby ({}, lease {} held by {}{until})",
            v.identity,
            v.lease,
            v.leader.as_deref().unwrap_or("nobody")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_line_names_the_holder_and_the_expiry() {
        let mut v = crate::ha::View {
            role: crate::ha::Role::Standby,
            identity: "host-b".into(),
            lease: "kube-system/smo-leader".into(),
            leader: Some("host-a".into()),
            lease_expires: Some("2026-12-04T09:00:15Z".into()),
            transitions: 0,
        };
        assert_eq!(
            role_line(&v),
            "role standby (host-b, lease kube-system/smo-leader held by host-a until 2026-12-04T09:00:15Z)"
        );
        v.role = crate::ha::Role::Leader;
        v.leader = Some("host-b".into());
        assert_eq!(
            role_line(&v),
            "role leader (host-b, lease kube-system/smo-leader until 2026-12-04T09:00:15Z)"
        );
    }
}
