//! What `smo profile` prints: the text for a person, the JSON for a
//! program (stable camelCase field names), and the YAML to paste under
//! `deployment.intent.scaling`. Pure: strings from a [`Profile`].

use super::fit::Fit;
use super::{Criterion, Profile};
use serde::Serialize;
use std::fmt::Write;

/// The three queries, as sent to Prometheus (placeholders filled in).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queries {
    pub rate: String,
    pub replicas: String,
    pub cpu: String,
}

/// Where the history was read: the service, the window and the queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// `project/graph/service`.
    pub service: String,
    /// The `--since` duration as given.
    pub since: String,
    /// The evaluation step, in PromQL's duration form.
    pub step: String,
    /// Unix seconds.
    pub start: f64,
    pub end: f64,
    pub queries: Queries,
}

/// The machine-readable answer (`--format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(flatten)]
    pub context: Context,
    pub criterion: Criterion,
    /// Observations joined from the three queries.
    pub samples: usize,
    /// Of which saturated (the ones fitted).
    pub saturated: usize,
    /// Distinct replica counts among the saturated samples.
    pub replica_counts: Vec<u32>,
    /// The least-squares line through the saturated samples, when one is
    /// determined (also when it is not a usable suggestion).
    pub fit: Option<Fit>,
    /// Whether `fit` is the suggestion (`missing` is then empty).
    pub enough_data: bool,
    /// Why there is no suggestion, one sentence each.
    pub missing: Vec<String>,
    /// YAML to paste under `deployment.intent.scaling` (when enough data).
    pub snippet: Option<String>,
}

impl Report {
    pub fn new(context: Context, criterion: Criterion, profile: &Profile) -> Report {
        let suggestion = profile.suggestion();
        Report {
            context,
            criterion,
            samples: profile.observations.len(),
            saturated: profile.saturated.len(),
            replica_counts: profile.replica_counts.clone(),
            fit: profile.fit,
            enough_data: suggestion.is_some(),
            missing: profile.missing.iter().map(ToString::to_string).collect(),
            snippet: suggestion.map(|f| snippet(&f)),
        }
    }
}

/// Four significant digits: more than the history supports, enough to
/// paste without rounding surprises.
fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The lines to paste under `deployment.intent.scaling`.
pub fn snippet(fit: &Fit) -> String {
    format!("alpha: {}\nbeta: {}\n", round4(fit.alpha), round4(fit.beta))
}

/// The human-readable answer (`--format text`).
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let c = &r.context;
    let _ = writeln!(o, "{}: the last {} (step {})", c.service, c.since, c.step);
    let _ = writeln!(o, "  rate:     {}", c.queries.rate);
    let _ = writeln!(o, "  replicas: {}", c.queries.replicas);
    let _ = writeln!(o, "  cpu:      {}", c.queries.cpu);
    let k = &r.criterion;
    let _ = writeln!(
        o,
        "saturated: CPU per replica >= {} x {} cores = {:.3} cores",
        k.saturation,
        k.cpu_request,
        k.threshold()
    );
    let counts: Vec<String> = r.replica_counts.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        o,
        "samples: {} saturated of {} (replica counts: {})",
        r.saturated,
        r.samples,
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        }
    );
    if let Some(f) = &r.fit {
        let _ = writeln!(
            o,
            "fit: rate = {} * replicas {} {}  (R^2 {:.3}, residual RMS {:.3} req/s, max {:.3})",
            round4(f.alpha),
            if f.beta < 0.0 { '-' } else { '+' },
            round4(f.beta.abs()),
            f.r2,
            f.rmse,
            f.max_residual
        );
    }
    match &r.snippet {
        Some(s) => {
            let _ = writeln!(o, "\nsuggested, to paste under deployment.intent.scaling:");
            for line in s.lines() {
                let _ = writeln!(o, "  {line}");
            }
        }
        None => {
            let _ = writeln!(o, "\nnot enough data:");
            for m in &r.missing {
                let _ = writeln!(o, "  - {m}");
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::{Missing, Observation};
    use super::*;

    fn context() -> Context {
        Context {
            service: "shop/web/api".into(),
            since: "7d".into(),
            step: "60s".into(),
            start: 1.0,
            end: 2.0,
            queries: Queries {
                rate: "r".into(),
                replicas: "n".into(),
                cpu: "c".into(),
            },
        }
    }

    const CRITERION: Criterion = Criterion {
        saturation: 0.8,
        cpu_request: 1.0,
        min_samples: 10,
    };

    fn profile(fit: Option<Fit>, missing: Vec<Missing>) -> Profile {
        let o = Observation {
            time: 0.0,
            rate: 1.0,
            replicas: 1.0,
            cpu: 1.0,
        };
        Profile {
            observations: vec![o; 3],
            saturated: vec![0, 2],
            replica_counts: vec![1, 2],
            fit,
            missing,
        }
    }

    const FIT: Fit = Fit {
        alpha: 25.012_345,
        beta: -7.123_456,
        r2: 0.9876,
        rmse: 1.5,
        max_residual: 3.25,
    };

    #[test]
    fn the_snippet_is_yaml_the_descriptor_accepts() {
        assert_eq!(snippet(&FIT), "alpha: 25.01\nbeta: -7.123\n");
        let graph = crate::scaling::testing::graph_with_scaling(&snippet(&FIT)).unwrap();
        let service = &graph.descriptor.hda_graph.services[0];
        let scaling = service.deployment.intent.scaling.as_ref().unwrap();
        assert_eq!((scaling.alpha, scaling.beta), (25.01, Some(-7.123)));
    }

    #[test]
    fn json_field_names_are_stable() {
        let r = Report::new(context(), CRITERION, &profile(Some(FIT), vec![]));
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "service",
            "since",
            "step",
            "start",
            "end",
            "queries",
            "criterion",
            "samples",
            "saturated",
            "replicaCounts",
            "fit",
            "enoughData",
            "missing",
            "snippet",
        ] {
            assert!(v.get(key).is_some(), "no {key} in {v}");
        }
        assert_eq!(v["fit"]["alpha"], 25.012_345);
        assert_eq!(v["fit"]["maxResidual"], 3.25);
        assert_eq!(v["criterion"]["cpuRequest"], 1.0);
        assert_eq!(v["samples"], 3);
        assert_eq!(v["saturated"], 2);
        assert_eq!(v["enoughData"], true);
    }

    #[test]
    fn text_shows_the_suggestion_or_what_is_missing() {
        let ok = text(&Report::new(
            context(),
            CRITERION,
            &profile(Some(FIT), vec![]),
        ));
        assert!(
            ok.contains("samples: 2 saturated of 3 (replica counts: 1, 2)"),
            "{ok}"
        );
        assert!(ok.contains("fit: rate = 25.01 * replicas - 7.123  (R^2 0.988, residual RMS 1.500 req/s, max 3.250)"), "{ok}");
        assert!(ok.contains("  alpha: 25.01\n  beta: -7.123\n"), "{ok}");
        assert!(!ok.contains("not enough data"), "{ok}");

        let missing = Missing::NoData { query: "rate" };
        let bad = Report::new(context(), CRITERION, &profile(None, vec![missing.clone()]));
        assert!(!bad.enough_data && bad.snippet.is_none());
        let shown = text(&bad);
        assert!(
            shown.contains("not enough data:\n  - the rate query"),
            "{shown}"
        );
        assert!(!shown.contains("alpha:"), "{shown}");
    }
}
