//! `smo history [PROJECT/GRAPH] [--config FILE] [--format text|json]
//! [--limit N]`: the journal, newest first — what smo did, when, at which
//! revision, and for a Git source whose commit caused it.
//!
//! Like `smo status`, it opens the store when no daemon holds it, and
//! otherwise reads the journal the daemon publishes next to it
//! (`history.json`, replaced atomically when the journal grows). Exit
//! codes: 0 listed (possibly nothing), 2 no state could be read.

use super::validate::Format;
use crate::keys::GraphKey;
use crate::spec::config;
use crate::store::records::Event;
use crate::store::snapshot;
use crate::store::{Kind, Store};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this graph's entries (`project/graph`).
    pub graph: Option<GraphKey>,
    /// The host configuration (for `stateDir`).
    #[arg(long, default_value = "/etc/smo/config.yaml")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// At most this many entries (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(args: &HistoryArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smo history: {e}");
            return Ok(2);
        }
    };
    let db = crate::daemon::context::store_path(&config);
    let opened = db.exists().then(|| Store::open(&db));
    let journal = match opened {
        Some(Ok(store)) => store.events(usize::MAX)?,
        Some(Err(e)) if !e.is_locked() => {
            eprintln!("smo history: {e}");
            return Ok(2);
        }
        // Locked by the running daemon: the journal it publishes.
        _ => match snapshot::read_history(&config.state_dir) {
            Ok(events) => events,
            Err(e) => {
                eprintln!(
                    "smo history: no journal in {}: {e}; has `smo run` started with this configuration?",
                    config.state_dir.display()
                );
                return Ok(2);
            }
        },
    };
    let shown: Vec<&Event> = journal
        .iter()
        .filter(|e| {
            args.graph
                .as_ref()
                .is_none_or(|k| e.project == k.project && e.graph == k.graph)
        })
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    match args.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = shown.iter().map(|e| as_json(e)).collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
        Format::Text => {
            for e in shown {
                writeln!(out, "{}", line(e))?;
            }
        }
    }
    Ok(0)
}

/// One entry as `--format json` shows it: the stored fields, the time in
/// RFC 3339 and the published CloudEvents type.
fn as_json(e: &Event) -> serde_json::Value {
    let mut v = serde_json::to_value(e).expect("an event serialises");
    v["time"] = json!(crate::clock::rfc3339(
        i64::try_from(e.at).unwrap_or(i64::MAX)
    ));
    v["type"] = json!(e.kind().map(Kind::cloud_type));
    v
}

/// `TIME  WHAT  KIND  MESSAGE  [revision: subject (author)]`.
fn line(e: &Event) -> String {
    let time = crate::clock::rfc3339(i64::try_from(e.at).unwrap_or(i64::MAX));
    let what = match (&e.cluster, &e.service) {
        (Some(c), _) => format!("cluster {c}"),
        (None, Some(s)) => format!("{}/{}/{s}", e.project, e.graph),
        (None, None) => format!("{}/{}", e.project, e.graph),
    };
    let cause = e.cause.as_ref().map_or_else(String::new, |c| {
        let short: String = c.revision.chars().take(14).collect();
        match &c.commit {
            Some(commit) => format!("  [{short}: {}]", commit.headline()),
            None => format!("  [{short}]"),
        }
    });
    format!("{time}  {what}  {}  {}{cause}", e.kind, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::{Cause, Commit};

    #[test]
    fn a_line_says_when_what_who() {
        let e = Event {
            seq: 3,
            at: 1_796_296_050,
            project: "shop".into(),
            graph: "web".into(),
            service: Some("front".into()),
            kind: "Upgraded".into(),
            message: "revision 2".into(),
            cluster: None,
            cause: Some(Cause {
                revision: "0123456789abcdef0123".into(),
                commit: Some(Commit {
                    author: "Ada <ada@example.org>".into(),
                    committer: "Ada <ada@example.org>".into(),
                    date: 0,
                    subject: "More memory".into(),
                }),
            }),
        };
        assert_eq!(
            line(&e),
            "2026-12-03T11:07:30Z  shop/web/front  Upgraded  revision 2  [0123456789abcd: More memory (Ada <ada@example.org>)]"
        );
        let v = as_json(&e);
        assert_eq!(v["type"], "eu.nephele.smo.service.upgraded");
        assert_eq!(v["cause"]["commit"]["author"], "Ada <ada@example.org>");
    }
}
