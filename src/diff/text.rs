//! `smo diff`'s text: a line per service with its verdict, the values and
//! manifest diffs under each change, the owned objects, a summary line.
//! Colour (ANSI) only when asked: the CLI asks on a terminal without
//! `NO_COLOR`. Pure.

use super::{ObjectAction, Report, ServiceDiff, Verdict};
use std::fmt::Write;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Install => "install",
        Verdict::Upgrade => "upgrade",
        Verdict::Uninstall => "uninstall",
        Verdict::None => "none",
    }
}

/// A diff's lines, indented, coloured by their first character.
fn diff_block(out: &mut String, title: &str, diff: &str, colour: bool) {
    let _ = writeln!(out, "  {title}:");
    for line in diff.lines() {
        let paint = match line.as_bytes().first() {
            _ if !colour => None,
            Some(b'+') if !line.starts_with("+++") => Some(GREEN),
            Some(b'-') if !line.starts_with("---") => Some(RED),
            Some(b'@') => Some(CYAN),
            Some(b'+' | b'-') => Some(BOLD),
            _ => None,
        };
        match paint {
            Some(p) => {
                let _ = writeln!(out, "    {p}{line}{RESET}");
            }
            None => {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
}

fn service(out: &mut String, s: &ServiceDiff, colour: bool) {
    let name = verdict_name(s.verdict);
    let shown = if colour && s.verdict != Verdict::None {
        format!("{BOLD}{name}{RESET}")
    } else {
        name.to_owned()
    };
    let _ = write!(out, "{}/{}/{}: {shown}", s.project, s.graph, s.service);
    if let Some(n) = &s.note {
        let _ = write!(out, " ({n})");
    }
    out.push('\n');
    if let Some(d) = &s.values_diff {
        diff_block(out, "values", d, colour);
    }
    if let Some(d) = &s.manifest_diff {
        diff_block(out, "manifest", d, colour);
    }
}

/// The report as text.
pub fn render(r: &Report, colour: bool) -> String {
    let mut out = String::new();
    for s in &r.services {
        service(&mut out, s, colour);
    }
    for change in &r.objects {
        let o = &change.object;
        let action = match change.action {
            ObjectAction::Create => "create",
            ObjectAction::Prune => "prune",
        };
        let ns = o
            .namespace
            .as_deref()
            .map_or(String::new(), |n| format!("{n}/"));
        let _ = writeln!(
            out,
            "{}/{}: {action} {} {ns}{}",
            o.project, o.graph, o.kind, o.name
        );
    }
    let count = |v: Verdict| r.services.iter().filter(|s| s.verdict == v).count();
    let objects = |a: ObjectAction| r.objects.iter().filter(|o| o.action == a).count();
    let _ = writeln!(
        out,
        "{} install, {} upgrade, {} uninstall, {} unchanged; {} object(s) to create, {} to prune ({})",
        count(Verdict::Install),
        count(Verdict::Upgrade),
        count(Verdict::Uninstall),
        count(Verdict::None),
        objects(ObjectAction::Create),
        objects(ObjectAction::Prune),
        match r.mode {
            super::Mode::Live => "against the live Karmada",
            super::Mode::Offline => "against the store",
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Mode, ObjectChange};

    fn report() -> Report {
        Report {
            mode: Mode::Live,
            changes: true,
            services: vec![ServiceDiff {
                project: "p".into(),
                graph: "g".into(),
                service: "a".into(),
                namespace: "p".into(),
                verdict: Verdict::Upgrade,
                note: None,
                values_diff: Some(
                    "--- observed\n+++ desired\n@@ -1,1 +1,1 @@\n-x: 1\n+x: 2\n".into(),
                ),
                values_compared: true,
                manifest_diff: None,
                manifest_compared: true,
            }],
            objects: vec![ObjectChange {
                action: ObjectAction::Prune,
                object: crate::store::records::OwnedObject {
                    project: "p".into(),
                    graph: "g".into(),
                    api_version: "policy.karmada.io/v1alpha1".into(),
                    kind: "PropagationPolicy".into(),
                    namespace: Some("p".into()),
                    name: "b".into(),
                },
            }],
        }
    }

    #[test]
    fn plain_text_has_no_escape_codes() {
        let t = render(&report(), false);
        assert_eq!(
            t,
            "p/g/a: upgrade
  values:
    --- observed
    +++ desired
    @@ -1,1 +1,1 @@
    -x: 1
    +x: 2
p/g: prune PropagationPolicy p/b
0 install, 1 upgrade, 0 uninstall, 0 unchanged; 0 object(s) to create, 1 to prune (against the live Karmada)
"
        );
    }

    #[test]
    fn colour_paints_added_and_removed_lines() {
        let t = render(&report(), true);
        assert!(t.contains(&format!("    {RED}-x: 1{RESET}\n")), "{t}");
        assert!(t.contains(&format!("    {GREEN}+x: 2{RESET}\n")), "{t}");
        assert!(t.contains(&format!("p/g/a: {BOLD}upgrade{RESET}")), "{t}");
        assert!(!t.contains(&format!("{RED}---")), "{t}");
    }
}
