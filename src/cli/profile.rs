//! `smo profile PROJECT/GRAPH/SERVICE [--config FILE] [--state DIR]
//! [--since 7d] [--step 60s] [--format text|json|svg]`.
//!
//! Reads the service's history from Prometheus (three range queries: the
//! scaler's own request-rate query, the replicas, the CPU used) and fits
//! the capacity model on the saturated samples ([`crate::scaling::profile`]).
//! It never writes the descriptor: it prints the lines to paste under
//! `deployment.intent.scaling`.
//!
//! Where things come from: Prometheus's URL and timeouts from the host
//! configuration (`prometheus`), the graph and `smo.yaml` (rate query
//! template and window) from the state root (`--state`, default the
//! configuration's `source.dir`), the replicas and CPU query templates
//! from the configuration's `grafana.queries` (the dashboards show the
//! same series), each overridable by a flag. The namespace is the project.
//!
//! Exit codes: 0 a suggestion, 1 not enough data (what is missing is
//! printed), 2 usage or runtime failure (configuration, state root,
//! unknown service, Prometheus).

use crate::adapters::prometheus::{Prometheus, Range, Series};
use crate::keys::ServiceKey;
use crate::scaling::profile::report::{self, Context, Queries, Report};
use crate::scaling::profile::{self, Criterion, Points, observations, svg};
use crate::scaling::query::{QueryVars, fill, prom_duration, rate_query};
use crate::spec::config::{self, Config, Source};
use crate::units::parse_duration;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Prometheus refuses range queries with more points per series.
const MAX_POINTS: u64 = 11_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileFormat {
    #[default]
    Text,
    Json,
    /// A scatter plot of rate against replicas with the fitted line.
    Svg,
}

#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// The service: PROJECT/GRAPH/SERVICE.
    pub service: ServiceKey,
    /// The host configuration (for `prometheus` and `source`).
    #[arg(long, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The state root holding the graph (default: the configuration's
    /// `source.dir`; required when the source is Git).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// How far back to read (a Prometheus duration).
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Resolution of the range queries (a Prometheus duration).
    #[arg(long, default_value = "60s")]
    pub step: String,
    /// A sample is saturated when CPU per replica is at least this
    /// fraction of the CPU one replica asks for.
    #[arg(long, default_value_t = 0.8)]
    pub saturation: f64,
    /// CPU cores one replica asks for (default: the service's
    /// `compute.cpu` intent as translated by `smo.yaml`).
    #[arg(long)]
    pub cpu_request: Option<f64>,
    /// Fewest saturated samples a fit is made from.
    #[arg(long, default_value_t = 10)]
    pub min_samples: usize,
    /// PromQL template of the replicas (default: `grafana.queries.replicas`).
    #[arg(long)]
    pub replicas_query: Option<String>,
    /// PromQL template of the CPU cores used by all replicas together
    /// (default: `grafana.queries.cpu`).
    #[arg(long)]
    pub cpu_query: Option<String>,
    #[arg(long, value_enum, default_value_t = ProfileFormat::Text)]
    pub format: ProfileFormat,
}

/// What the three queries are and how the history is judged.
struct Plan {
    context: Context,
    criterion: Criterion,
    range: Range,
}

pub fn run(args: &ProfileArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let fail = |message: String| {
        eprintln!("smo profile: {message}");
        Ok(2)
    };
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let prometheus = match crate::daemon::context::prometheus(&config.prometheus) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return fail(format!(
                "prometheus.url is not set in {}; profile reads the history from Prometheus",
                args.config.display()
            ));
        }
        Err(e) => return fail(e.to_string()),
    };
    let plan = match plan(args, &config) {
        Ok(p) => p,
        Err(message) => return fail(message),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let q = &plan.context.queries;
    let read = rt.block_on(async {
        let p: &Prometheus = &prometheus;
        Ok::<_, crate::adapters::prometheus::PrometheusError>((
            p.query_range(&q.rate, &plan.range).await?,
            p.query_range(&q.replicas, &plan.range).await?,
            p.query_range(&q.cpu, &plan.range).await?,
        ))
    });
    let (rate, replicas, cpu) = match read {
        Ok(series) => series,
        Err(e) => return fail(e.to_string()),
    };
    let (rate, replicas, cpu) = (points(&rate), points(&replicas), points(&cpu));
    let empty: Vec<&'static str> = [("rate", &rate), ("replicas", &replicas), ("cpu", &cpu)]
        .into_iter()
        .filter(|(_, series)| series.iter().all(Vec::is_empty))
        .map(|(name, _)| name)
        .collect();
    let found = profile::profile(
        observations(&rate, &replicas, &cpu),
        &plan.criterion,
        &empty,
    );
    let report = Report::new(plan.context, plan.criterion, &found);
    match args.format {
        ProfileFormat::Text => write!(out, "{}", report::text(&report))?,
        ProfileFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        ProfileFormat::Svg => {
            let title = match &report.fit {
                Some(f) => format!(
                    "{}: rate = {:.4} x replicas + {:.4} (R² {:.3})",
                    report.context.service, f.alpha, f.beta, f.r2
                ),
                None => report.context.service.clone(),
            };
            write!(out, "{}", svg::render(&found, &title))?;
            for m in &report.missing {
                eprintln!("smo profile: not enough data: {m}");
            }
        }
    }
    Ok(i32::from(!report.enough_data))
}

/// Finds the service and builds its queries, window and criterion; the
/// error is the message for the user.
fn plan(args: &ProfileArgs, config: &Config) -> Result<Plan, String> {
    let since = duration("--since", &args.since)?;
    let step = duration("--step", &args.step)?;
    let points = since.as_millis() / step.as_millis().max(1);
    if points > u128::from(MAX_POINTS) {
        return Err(format!(
            "--since {} at --step {} is {points} points per series, more than Prometheus's {MAX_POINTS}; raise --step",
            args.since, args.step
        ));
    }
    if !(args.saturation.is_finite() && args.saturation > 0.0) {
        return Err("--saturation must be a positive fraction (e.g. 0.8)".into());
    }
    let root = match (&args.state, &config.source) {
        (Some(dir), _) => dir.clone(),
        (None, Source::Dir { path, .. }) => path.clone(),
        (None, Source::Git { .. }) => {
            return Err(format!(
                "the source in {} is a Git repository; pass --state with a checkout of it",
                args.config.display()
            ));
        }
    };
    let state = crate::desired::loader::load_root_with(&root, None)
        .map_err(|e| format!("cannot load the state root {}: {e}", root.display()))?;
    let key = &args.service;
    let graph = state
        .valid_graphs()
        .find(|g| g.project == key.graph.project && g.id() == key.graph.graph)
        .ok_or_else(|| {
            format!(
                "{} is not a valid graph of {}; check the name, or run `smo validate {}`",
                key.graph,
                root.display(),
                root.display()
            )
        })?;
    let index = graph
        .descriptor
        .hda_graph
        .services
        .iter()
        .position(|s| s.id.as_str() == key.service)
        .ok_or_else(|| format!("graph {} has no service {}", key.graph, key.service))?;
    let settings = &state.settings.scaling;
    let namespace = key.project();
    let vars = QueryVars::of(graph, index, namespace, settings);
    let template = |flag: &Option<String>, configured: &str| {
        fill(flag.as_deref().unwrap_or(configured), &vars)
    };
    let queries = Queries {
        rate: rate_query(graph, index, namespace, settings),
        replicas: template(&args.replicas_query, &config.grafana.queries.replicas),
        cpu: template(&args.cpu_query, &config.grafana.queries.cpu),
    };
    let cpu_request = args.cpu_request.unwrap_or(graph.resources[index].cpu_cores);
    if !(cpu_request.is_finite() && cpu_request > 0.0) {
        return Err(format!(
            "the CPU one replica asks for is {cpu_request}; pass --cpu-request CORES"
        ));
    }
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor());
    let start = end - since.as_secs_f64();
    Ok(Plan {
        context: Context {
            service: key.to_string(),
            since: args.since.clone(),
            step: prom_duration(step),
            start,
            end,
            queries,
        },
        criterion: Criterion {
            saturation: args.saturation,
            cpu_request,
            min_samples: args.min_samples,
        },
        range: Range { start, end, step },
    })
}

/// The adapter's series as the profile's plain points.
fn points(series: &[Series]) -> Vec<Points> {
    series
        .iter()
        .map(|s| s.points.iter().map(|p| (p.time, p.value)).collect())
        .collect()
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{flag} must be longer than zero")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}
