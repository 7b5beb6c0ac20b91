//! Prometheus alert rules for event-triggered services.
//!
//! Every event of every event-triggered service that is waiting for its
//! trigger becomes one alerting rule: `alert` = the event id, `expr` = its
//! `promQuery`, `for` = its `gracePeriod`, labels naming the service
//! (`smo_project`, `smo_graph`, `smo_service`, `smo_event`, plus a
//! configurable `severity`) so that Alertmanager's webhook finds its way
//! back, annotations from the description. One rule group per graph.
//!
//! [`group`] and [`validate`] are pure; [`render_file`] and
//! [`prometheus_rule`] shape the group for the two sinks (a rules file in a
//! directory Prometheus loads, or a `PrometheusRule` object for the
//! Prometheus Operator); [`dir`] writes files atomically.

pub mod dir;

use crate::descriptor::model::{EventTrigger, HdaGraph};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

// The labels every rule carries, which the webhook reads back.
use crate::webhook::{LABEL_EVENT, LABEL_GRAPH, LABEL_PROJECT, LABEL_SERVICE};

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The rules of one graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// What a rule group is built from: one graph and the services of it whose
/// trigger is armed (waiting to fire).
pub fn group<'a>(
    project: &str,
    graph: &HdaGraph,
    armed: impl IntoIterator<Item = (&'a str, &'a EventTrigger)>,
    severity: &str,
) -> Group {
    let mut rules = Vec::new();
    for (service, trigger) in armed {
        for event in &trigger.events {
            let mut labels = BTreeMap::from([
                (LABEL_PROJECT.to_owned(), project.to_owned()),
                (LABEL_GRAPH.to_owned(), graph.id.to_string()),
                (LABEL_SERVICE.to_owned(), service.to_owned()),
                (LABEL_EVENT.to_owned(), event.id.to_string()),
            ]);
            if !severity.is_empty() {
                labels.insert("severity".into(), severity.to_owned());
            }
            let mut annotations = BTreeMap::new();
            if let Some(d) = event
                .condition
                .description
                .as_deref()
                .filter(|d| !d.is_empty())
            {
                annotations.insert("description".into(), d.to_owned());
            }
            annotations.insert(
                "summary".into(),
                format!(
                    "deploys {service} of {project}/{} when it fires",
                    graph.id.as_str()
                ),
            );
            rules.push(Rule {
                alert: event.id.to_string(),
                expr: event.condition.prom_query.trim().to_owned(),
                for_: event.condition.grace_period.clone(),
                labels,
                annotations,
            });
        }
    }
    Group {
        name: format!("smo/{project}/{}", graph.id.as_str()),
        rules,
    }
}

/// A rule Prometheus would refuse, with the rule and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert rule {alert}: {reason}")]
pub struct InvalidRule {
    pub alert: String,
    pub reason: String,
}

/// Rejects what Prometheus' rule loader rejects and can be checked without
/// a PromQL parser: empty names or expressions, label and annotation names
/// outside `[a-zA-Z_][a-zA-Z0-9_]*`, a `for` that is not a Prometheus
/// duration, unbalanced brackets or quotes in the expression. (Full PromQL
/// parsing is left to `promtool` when configured, and to Prometheus' reload,
/// whose refusal restores the previous file.)
pub fn validate(group: &Group) -> Result<(), InvalidRule> {
    for r in &group.rules {
        let bad = |reason: String| InvalidRule {
            alert: r.alert.clone(),
            reason,
        };
        if r.alert.trim().is_empty() {
            return Err(bad("the alert name is empty".into()));
        }
        if r.expr.trim().is_empty() {
            return Err(bad("promQuery is empty".into()));
        }
        if let Err(e) = crate::units::parse_duration(&r.for_) {
            return Err(bad(format!("gracePeriod: {e}")));
        }
        for name in r.labels.keys().chain(r.annotations.keys()) {
            if !is_label_name(name) {
                return Err(bad(format!("`{name}` is not a valid label name")));
            }
        }
        balanced(&r.expr).map_err(|e| bad(format!("promQuery: {e}")))?;
    }
    Ok(())
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Brackets balance and strings are closed (PromQL strings: `"…"`, `'…'`
/// with backslash escapes, and raw `` `…` ``).
fn balanced(expr: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!("unterminated string starting with {c}"));
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("unexpected `{c}`"));
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    match stack.pop() {
        Some(c) => Err(format!("unclosed `{c}`")),
        None => Ok(()),
    }
}

/// The rules file of one graph (YAML; every scalar is a double-quoted JSON
/// string, which YAML reads unchanged, so no value can break the layout).
pub fn render_file(group: &Group) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out =
        String::from("# Generated by smo; do not edit: it is rewritten on every change.\n");
    out.push_str("groups:\n");
    out.push_str(&format!("  - name: {}\n    rules:\n", q(&group.name)));
    for r in &group.rules {
        out.push_str(&format!("      - alert: {}\n", q(&r.alert)));
        out.push_str(&format!("        expr: {}\n", q(&r.expr)));
        out.push_str(&format!("        for: {}\n", q(&r.for_)));
        for (key, map) in [("labels", &r.labels), ("annotations", &r.annotations)] {
            if map.is_empty() {
                continue;
            }
            out.push_str(&format!("        {key}:\n"));
            for (k, v) in map {
                out.push_str(&format!("          {}: {}\n", q(k), q(v)));
            }
        }
    }
    out
}

/// API version and kind of the Prometheus Operator's rule object.
pub const PROMETHEUS_RULE_API: &str = "monitoring.coreos.com/v1";
pub const PROMETHEUS_RULE_KIND: &str = "PrometheusRule";

/// Name of the `PrometheusRule` object of one graph (one per graph, never
/// a shared object edited in place).
/// `PROJECT.GRAPH`: the part of a file or object name that names one graph.
/// Both are DNS-1123 labels (no dot), so the dot cannot occur inside either
/// and the pair is recovered unambiguously; the result (at most 127
/// characters) is a valid DNS-1123 subdomain, as object names must be.
pub fn graph_part(project: &str, graph: &str) -> String {
    format!("{project}.{graph}")
}

/// The `PrometheusRule` object of a graph: `smo-PROJECT.GRAPH`.
pub fn object_name(project: &str, graph: &str) -> String {
    format!("smo-{}", graph_part(project, graph))
}

/// The name objects had before [`object_name`]: `(a-b, c)` and `(a, b-c)`
/// both gave `smo-a-b-c`. Only used to find the graph's own old object
/// among its recorded owned objects, and delete it.
pub fn legacy_object_name(project: &str, graph: &str) -> String {
    format!("smo-{project}-{graph}")
}

/// The `PrometheusRule` object of one graph, for server-side apply.
pub fn prometheus_rule(
    project: &str,
    graph: &str,
    group: &Group,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Value {
    json!({
        "apiVersion": PROMETHEUS_RULE_API,
        "kind": PROMETHEUS_RULE_KIND,
        "metadata": {
            "name": object_name(project, graph),
            "namespace": namespace,
            "labels": labels,
        },
        "spec": { "groups": [group] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(alert: &str, expr: &str, for_: &str) -> Group {
        Group {
            name: "smo/p/g".into(),
            rules: vec![Rule {
                alert: alert.into(),
                expr: expr.into(),
                for_: for_.into(),
                labels: BTreeMap::from([("smo_event".into(), alert.into())]),
                annotations: BTreeMap::new(),
            }],
        }
    }

    /// Regression: `(a-b, c)` and `(a, b-c)` both had `smo-a-b-c`.
    #[test]
    fn object_names_do_not_collide_between_graphs() {
        assert_ne!(object_name("a-b", "c"), object_name("a", "b-c"));
        assert_eq!(object_name("a-b", "c"), "smo-a-b.c");
        assert_eq!(legacy_object_name("a-b", "c"), "smo-a-b-c");
        let longest = object_name(&"p".repeat(63), &"g".repeat(63));
        assert!(longest.len() <= 253, "{longest}");
    }

    #[test]
    fn valid_rules_pass() {
        for expr in [
            "vector(1)",
            r#"sum(rate(http_requests_total{job="a", path=~"/x[0-9]+"}[5m])) > 10"#,
            "up == 0 # a comment with ( unbalanced",
            r#"label_replace(up, "a", "$1", "b", "(.*)")"#,
        ] {
            assert_eq!(validate(&rule("ev", expr, "30s")), Ok(()), "{expr}");
        }
    }

    #[test]
    fn what_prometheus_would_refuse_is_refused() {
        for (alert, expr, for_, needle) in [
            ("", "up", "1m", "alert name is empty"),
            ("ev", "  ", "1m", "promQuery is empty"),
            ("ev", "sum(rate(x[5m])", "1m", "unclosed `(`"),
            ("ev", "sum(x))", "1m", "unexpected `)`"),
            ("ev", r#"x{a="b}"#, "1m", "unterminated string"),
            ("ev", "up", "5 minutes", "gracePeriod"),
        ] {
            let e = validate(&rule(alert, expr, for_)).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
        let mut g = rule("ev", "up", "1m");
        g.rules[0].labels.insert("bad-name".into(), "x".into());
        assert!(validate(&g).unwrap_err().reason.contains("bad-name"));
    }

    #[test]
    fn the_file_quotes_every_scalar() {
        let mut g = rule("ev: \"x\"\nnext", "up{a=\"b\"}", "1m");
        g.rules[0]
            .annotations
            .insert("description".into(), "multi\nline: yes".into());
        let text = render_file(&g);
        assert!(text.contains(r#"- alert: "ev: \"x\"\nnext""#), "{text}");
        assert!(text.contains(r#"expr: "up{a=\"b\"}""#), "{text}");
        assert!(
            text.contains(r#""description": "multi\nline: yes""#),
            "{text}"
        );
        // One line per scalar: nothing in the values broke the layout.
        assert_eq!(text.lines().count(), 11, "{text}");
    }
}
