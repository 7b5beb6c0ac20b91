//! The daemon's metrics registry, rendered in the Prometheus text format.
//!
//! A deliberately tiny registry: the set of families is closed (one
//! [`Family`] variant each, described by one static table), so a typo in a
//! metric name cannot create a new series and the whole exposition is known
//! at compile time. Invariants:
//! - every family's `# HELP` and `# TYPE` lines are rendered even before its
//!   first sample, so scrapers and dashboards see all families at once;
//! - series are kept in ordered maps, so the output is stable byte for byte;
//! - misuse (wrong label count, a counter decremented, a sample of the wrong
//!   type) is a programming error: it trips a `debug_assert` in tests and is
//!   ignored in release builds — metrics must never take the daemon down.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// Every metric the daemon exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    ReconcileDuration,
    Reconciles,
    ReconcileErrors,
    HelmCalls,
    Graphs,
    Services,
    SourceRevision,
    SourceLastSync,
    SolverDuration,
    WebhookRequests,
    WebhookAlerts,
    ScalingDecisions,
    BuildInfo,
    EventsSent,
    EventsOutbox,
    EventsOverflow,
    Leader,
    LeaderTransitions,
}

impl Family {
    /// All families, in rendering order (the order of [`SPECS`]).
    pub const ALL: [Family; 18] = [
        Family::ReconcileDuration,
        Family::Reconciles,
        Family::ReconcileErrors,
        Family::HelmCalls,
        Family::Graphs,
        Family::Services,
        Family::SourceRevision,
        Family::SourceLastSync,
        Family::SolverDuration,
        Family::WebhookRequests,
        Family::WebhookAlerts,
        Family::ScalingDecisions,
        Family::BuildInfo,
        Family::EventsSent,
        Family::EventsOutbox,
        Family::EventsOverflow,
        Family::Leader,
        Family::LeaderTransitions,
    ];

    fn spec(self) -> &'static Spec {
        &SPECS[self as usize]
    }

    /// The metric name, e.g. `smo_reconciles_total`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The label names, in the order `labels` arguments must follow.
    pub fn label_names(self) -> &'static [&'static str] {
        self.spec().labels
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Spec {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    /// Upper bounds, ascending, without `+Inf`; empty unless a histogram.
    buckets: &'static [f64],
}

/// Reconciles take from milliseconds (nothing to do) to minutes (helm
/// waiting for a rollout, whose default timeout is 5 minutes).
const RECONCILE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// MILP solves: a millisecond for a trivial instance up to the solver's
/// time limit (tens of seconds).
const SOLVER_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

/// Indexed by `Family as usize`; `specs_follow_the_enum` checks the order.
const SPECS: [Spec; 18] = [
    Spec {
        name: "smo_reconcile_duration_seconds",
        help: "Time taken by one reconcile of a graph.",
        kind: Kind::Histogram,
        labels: &["outcome"],
        buckets: RECONCILE_BUCKETS,
    },
    Spec {
        name: "smo_reconciles_total",
        help: "Reconciles of a graph, by outcome.",
        kind: Kind::Counter,
        labels: &["outcome"],
        buckets: &[],
    },
    Spec {
        name: "smo_reconcile_errors_total",
        help: "Failed reconciles, by reason.",
        kind: Kind::Counter,
        labels: &["reason"],
        buckets: &[],
    },
    Spec {
        name: "smo_helm_calls_total",
        help: "Calls of the helm binary, by verb and outcome.",
        kind: Kind::Counter,
        labels: &["verb", "outcome"],
        buckets: &[],
    },
    Spec {
        name: "smo_graphs",
        help: "Graphs known to the daemon, by condition.",
        kind: Kind::Gauge,
        labels: &["condition"],
        buckets: &[],
    },
    Spec {
        name: "smo_services",
        help: "Services known to the daemon, by phase.",
        kind: Kind::Gauge,
        labels: &["phase"],
        buckets: &[],
    },
    Spec {
        name: "smo_source_revision_info",
        help: "The desired-state revision last read from the source (value always 1).",
        kind: Kind::Gauge,
        labels: &["revision"],
        buckets: &[],
    },
    Spec {
        name: "smo_source_last_sync_timestamp_seconds",
        help: "Unix time of the last successful read of the desired-state source.",
        kind: Kind::Gauge,
        labels: &[],
        buckets: &[],
    },
    Spec {
        name: "smo_solver_duration_seconds",
        help: "Time taken by one MILP solve, by model.",
        kind: Kind::Histogram,
        labels: &["model"],
        buckets: SOLVER_BUCKETS,
    },
    Spec {
        name: "smo_webhook_requests_total",
        help: "Requests to the Alertmanager webhook endpoint, by outcome.",
        kind: Kind::Counter,
        labels: &["outcome"],
        buckets: &[],
    },
    Spec {
        name: "smo_webhook_alerts_total",
        help: "Alerts received through the webhook, by outcome.",
        kind: Kind::Counter,
        labels: &["outcome"],
        buckets: &[],
    },
    Spec {
        name: "smo_scaling_decisions_total",
        help: "Decisions of the scaling engine, by decision.",
        kind: Kind::Counter,
        labels: &["decision"],
        buckets: &[],
    },
    Spec {
        name: "smo_build_info",
        help: "The running smo build (value always 1).",
        kind: Kind::Gauge,
        labels: &["version"],
        buckets: &[],
    },
    Spec {
        name: "smo_events_sent_total",
        help: "Events handed to a sink, by sink and outcome (delivered, refused: a 4xx the receiver will not take; retried: a failed attempt).",
        kind: Kind::Counter,
        labels: &["sink", "outcome"],
        buckets: &[],
    },
    Spec {
        name: "smo_events_outbox",
        help: "Events in the outbox waiting for at least one sink.",
        kind: Kind::Gauge,
        labels: &[],
        buckets: &[],
    },
    Spec {
        name: "smo_events_outbox_dropped_total",
        help: "Undelivered events dropped because the outbox was full (events.outboxSize), counted across restarts.",
        kind: Kind::Counter,
        labels: &[],
        buckets: &[],
    },
    Spec {
        name: "smo_leader",
        help: "1 while this instance acts (the leader, or the only instance), 0 on standby.",
        kind: Kind::Gauge,
        labels: &[],
        buckets: &[],
    },
    Spec {
        name: "smo_leader_transitions_total",
        help: "Changes of this instance's role in the leader election, by the role taken.",
        kind: Kind::Counter,
        labels: &["to"],
        buckets: &[],
    },
];

/// Why a sample was refused: always a bug in the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Misuse {
    #[error("{family} takes {expected} label values, got {got}")]
    LabelCount {
        family: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{family} is a {kind}; this operation does not apply to it")]
    WrongKind {
        family: &'static str,
        kind: &'static str,
    },
    #[error("{family} is a counter; it cannot decrease (got {value})")]
    CounterDecrease { family: &'static str, value: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Series {
    Value(f64),
    Histogram {
        /// Non-cumulative counts per bucket of the spec; made cumulative
        /// when rendered. The `+Inf` bucket is `count`.
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

type Families = BTreeMap<Family, BTreeMap<Vec<String>, Series>>;

/// The registry. Cheap to update (one short critical section per sample);
/// share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    families: Mutex<Families>,
}

impl Default for Metrics {
    /// Same as [`Metrics::new`]: a registry always carries its build info.
    fn default() -> Self {
        Metrics::new()
    }
}

enum Op {
    Add(f64),
    Set(f64),
    Observe(f64),
}

impl Metrics {
    /// An empty registry, except `smo_build_info{version=…} 1`.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            families: Mutex::new(BTreeMap::new()),
        };
        metrics.set(Family::BuildInfo, &[env!("CARGO_PKG_VERSION")], 1.0);
        metrics
    }

    /// Adds 1 to a counter (or a gauge).
    pub fn inc(&self, f: Family, labels: &[&str]) {
        self.add(f, labels, 1.0);
    }

    /// Adds `v` to a counter (`v >= 0`) or a gauge.
    pub fn add(&self, f: Family, labels: &[&str], v: f64) {
        let result = self.record(f, labels, Op::Add(v));
        debug_assert!(result.is_ok(), "metrics misuse: {result:?}");
    }

    /// Sets a gauge.
    pub fn set(&self, f: Family, labels: &[&str], v: f64) {
        let result = self.record(f, labels, Op::Set(v));
        debug_assert!(result.is_ok(), "metrics misuse: {result:?}");
    }

    /// Drops every series of a family, e.g. before re-setting the graphs
    /// by condition, so a condition no graph has any more disappears
    /// instead of keeping its last value.
    pub fn clear(&self, f: Family) {
        self.lock().remove(&f);
    }

    /// Records one observation in a histogram. NaN is ignored: it would
    /// turn `_sum` into NaN forever.
    pub fn observe(&self, f: Family, labels: &[&str], v: f64) {
        let result = self.record(f, labels, Op::Observe(v));
        debug_assert!(result.is_ok(), "metrics misuse: {result:?}");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Families> {
        // A panic elsewhere while holding the lock leaves the maps
        // consistent (every update is a single assignment), so poisoning
        // is not a reason to lose metrics or to panic here.
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one sample, or refuses it without touching the registry.
    fn record(&self, f: Family, labels: &[&str], op: Op) -> Result<(), Misuse> {
        let spec = f.spec();
        if labels.len() != spec.labels.len() {
            return Err(Misuse::LabelCount {
                family: spec.name,
                expected: spec.labels.len(),
                got: labels.len(),
            });
        }
        let wrong_kind = Misuse::WrongKind {
            family: spec.name,
            kind: spec.kind.as_str(),
        };
        match (&op, spec.kind) {
            (Op::Add(_), Kind::Histogram)
            | (Op::Set(_), Kind::Counter | Kind::Histogram)
            | (Op::Observe(_), Kind::Counter | Kind::Gauge) => return Err(wrong_kind),
            (Op::Add(v), Kind::Counter) if v.is_nan() || *v < 0.0 => {
                return Err(Misuse::CounterDecrease {
                    family: spec.name,
                    value: v.to_string(),
                });
            }
            (Op::Observe(v), _) if v.is_nan() => return Ok(()),
            _ => {}
        }
        let key: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        let mut families = self.lock();
        let series = families.entry(f).or_default();
        match op {
            Op::Add(v) => match series.entry(key).or_insert(Series::Value(0.0)) {
                Series::Value(x) => *x += v,
                Series::Histogram { .. } => unreachable!("kind checked above"),
            },
            Op::Set(v) => {
                series.insert(key, Series::Value(v));
            }
            Op::Observe(v) => {
                let entry = series.entry(key).or_insert_with(|| Series::Histogram {
                    buckets: vec![0; spec.buckets.len()],
                    sum: 0.0,
                    count: 0,
                });
                if let Series::Histogram {
                    buckets,
                    sum,
                    count,
                } = entry
                {
                    // The first bucket whose bound is >= v; none means +Inf only.
                    if let Some(i) = spec.buckets.iter().position(|le| v <= *le) {
                        buckets[i] += 1;
                    }
                    *sum += v;
                    *count += 1;
                }
            }
        }
        Ok(())
    }

    /// The text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let families = self.lock();
        let mut out = String::with_capacity(4096);
        for f in Family::ALL {
            let spec = f.spec();
            let _ = writeln!(out, "# HELP {} {}", spec.name, escape_help(spec.help));
            let _ = writeln!(out, "# TYPE {} {}", spec.name, spec.kind.as_str());
            let Some(series) = families.get(&f) else {
                continue;
            };
            for (values, s) in series {
                match s {
                    Series::Value(v) => {
                        let labels = label_set(spec.labels, values, None);
                        let _ = writeln!(out, "{}{labels} {}", spec.name, number(*v));
                    }
                    Series::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        let mut cumulative = 0;
                        for (le, n) in spec.buckets.iter().zip(buckets) {
                            cumulative += n;
                            let labels = label_set(spec.labels, values, Some(&number(*le)));
                            let _ = writeln!(out, "{}_bucket{labels} {cumulative}", spec.name);
                        }
                        let labels = label_set(spec.labels, values, Some("+Inf"));
                        let _ = writeln!(out, "{}_bucket{labels} {count}", spec.name);
                        let labels = label_set(spec.labels, values, None);
                        let _ = writeln!(out, "{}_sum{labels} {}", spec.name, number(*sum));
                        let _ = writeln!(out, "{}_count{labels} {count}", spec.name);
                    }
                }
            }
        }
        out
    }
}

/// `{a="x",le="0.5"}`, or nothing when there are no labels at all.
fn label_set(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label_value(v)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Prometheus spells infinities `+Inf`/`-Inf` and not-a-number `NaN`;
/// Rust's `Display` gives the shortest round-tripping decimal otherwise
/// (`1`, `0.25`, `1700000000`), which the format accepts.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines (not comments) of one family.
    fn samples(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn specs_follow_the_enum() {
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
        }
        let mut names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SPECS.len(), "duplicate metric name");
        for s in &SPECS {
            assert_eq!(
                s.kind == Kind::Histogram,
                !s.buckets.is_empty(),
                "{}",
                s.name
            );
            assert!(s.buckets.windows(2).all(|w| w[0] < w[1]), "{}", s.name);
            if s.kind == Kind::Counter {
                assert!(s.name.ends_with("_total"), "{}", s.name);
            }
        }
    }

    #[test]
    fn every_family_has_help_and_type_without_samples() {
        let text = Metrics::new().render();
        for f in Family::ALL {
            let spec = f.spec();
            assert!(
                text.contains(&format!("# HELP {} ", spec.name)),
                "{}",
                spec.name
            );
            assert!(
                text.contains(&format!("# TYPE {} {}\n", spec.name, spec.kind.as_str())),
                "{}",
                spec.name
            );
        }
        assert_eq!(
            samples(&text, "smo_"),
            vec![format!(
                "smo_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )]
        );
    }

    #[test]
    fn counter_renders_sorted_series() {
        let m = Metrics::new();
        m.inc(Family::HelmCalls, &["upgrade", "ok"]);
        m.inc(Family::HelmCalls, &["install", "ok"]);
        m.add(Family::HelmCalls, &["upgrade", "ok"], 2.0);
        assert_eq!(
            samples(&m.render(), "smo_helm_calls_total"),
            vec![
                "smo_helm_calls_total{verb=\"install\",outcome=\"ok\"} 1",
                "smo_helm_calls_total{verb=\"upgrade\",outcome=\"ok\"} 3",
            ]
        );
    }

    #[test]
    fn gauge_set_clear_and_no_labels() {
        let m = Metrics::new();
        m.set(Family::Graphs, &["Ready"], 3.0);
        m.set(Family::Graphs, &["Failed"], 1.0);
        m.set(Family::Graphs, &["Ready"], 2.0);
        assert_eq!(
            samples(&m.render(), "smo_graphs"),
            vec![
                "smo_graphs{condition=\"Failed\"} 1",
                "smo_graphs{condition=\"Ready\"} 2"
            ]
        );
        m.clear(Family::Graphs);
        let text = m.render();
        assert!(samples(&text, "smo_graphs").is_empty());
        assert!(text.contains("# TYPE smo_graphs gauge\n"));

        m.set(Family::SourceLastSync, &[], 1_700_000_000.5);
        assert_eq!(
            samples(&m.render(), "smo_source_last_sync"),
            vec!["smo_source_last_sync_timestamp_seconds 1700000000.5"]
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        for v in [0.0005, 0.003, 0.003, 2.0, 100.0] {
            m.observe(Family::SolverDuration, &["placement"], v);
        }
        m.observe(Family::SolverDuration, &["placement"], f64::NAN);
        let lines = samples(&m.render(), "smo_solver_duration_seconds");
        let expected: Vec<String> = [
            ("0.001", 1),
            ("0.005", 3),
            ("0.01", 3),
            ("0.05", 3),
            ("0.1", 3),
            ("0.5", 3),
            ("1", 3),
            ("5", 4),
            ("10", 4),
            ("30", 4),
            ("+Inf", 5),
        ]
        .iter()
        .map(|(le, n)| {
            format!("smo_solver_duration_seconds_bucket{{model=\"placement\",le=\"{le}\"}} {n}")
        })
        .chain([
            format!(
                "smo_solver_duration_seconds_sum{{model=\"placement\"}} {}",
                0.0005 + 0.003 + 0.003 + 2.0 + 100.0
            ),
            "smo_solver_duration_seconds_count{model=\"placement\"} 5".to_owned(),
        ])
        .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_value_on_a_bucket_bound_counts_in_that_bucket() {
        let m = Metrics::new();
        m.observe(Family::ReconcileDuration, &["ok"], 0.25);
        let text = m.render();
        assert!(
            text.contains("smo_reconcile_duration_seconds_bucket{outcome=\"ok\",le=\"0.1\"} 0\n")
        );
        assert!(
            text.contains("smo_reconcile_duration_seconds_bucket{outcome=\"ok\",le=\"0.25\"} 1\n")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.set(Family::SourceRevision, &["a\\b\"c\nd"], 1.0);
        assert_eq!(
            samples(&m.render(), "smo_source_revision_info"),
            vec!["smo_source_revision_info{revision=\"a\\\\b\\\"c\\nd\"} 1"]
        );
    }

    #[test]
    fn special_numbers_use_prometheus_spelling() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(300.0), "300");
    }

    /// The public methods `debug_assert` on misuse; `record` is the path
    /// release builds take, which must leave the registry untouched.
    #[test]
    fn misuse_is_refused_and_output_stays_valid() {
        let m = Metrics::new();
        let before = m.render();
        assert!(matches!(
            m.record(Family::HelmCalls, &["upgrade"], Op::Add(1.0)),
            Err(Misuse::LabelCount {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            m.record(Family::Reconciles, &["ok"], Op::Add(-1.0)),
            Err(Misuse::CounterDecrease { .. })
        ));
        assert!(matches!(
            m.record(Family::Reconciles, &["ok"], Op::Set(1.0)),
            Err(Misuse::WrongKind { .. })
        ));
        assert!(matches!(
            m.record(Family::Graphs, &["Ready"], Op::Observe(1.0)),
            Err(Misuse::WrongKind { .. })
        ));
        assert!(matches!(
            m.record(Family::SolverDuration, &["x"], Op::Add(1.0)),
            Err(Misuse::WrongKind { .. })
        ));
        assert_eq!(m.render(), before);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "metrics misuse")]
    fn wrong_label_count_trips_debug_assert() {
        Metrics::new().inc(Family::Reconciles, &[]);
    }

    #[test]
    fn metrics_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Metrics>();
    }
}
