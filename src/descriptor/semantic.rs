//! Semantic checks of a descriptor that the schema cannot express:
//! references between services, dependency cycles, durations, a missing
//! trigger, chart locations and scaling bounds. Pure: the only I/O is
//! resolving a local chart path against the file system, through `root`,
//! and walking that chart's files (symlinks, cycles, size).

use super::chart_files;
use super::model::Service;
use crate::units::parse_duration;
use crate::validate::findings::{Finding, Severity};
use crate::validate::suggest::closest;
use crate::validate::yaml::Document;
use serde_json::Value;
use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Where a descriptor lives, for the checks that depend on it.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Path shown in findings (relative to the state root).
    pub file: &'a str,
    /// Directory of the descriptor on disk, for relative chart paths.
    pub dir: Option<&'a Path>,
    /// The state root on disk; local charts must stay inside it.
    pub root: Option<&'a Path>,
    /// Clusters described under `clusters/`, when a state root is known.
    pub known_clusters: Option<&'a BTreeSet<String>>,
    /// Local chart checks already made while loading this state root.
    pub charts: Option<&'a ChartMemo>,
}

/// The outcome of each local chart check of one load of a state root, by
/// descriptor directory and chart path. Within one load the tree does not
/// change, and most services of a project share a chart or two: without
/// it, a 2,000-service tree resolved and walked the same few charts 2,000
/// times per snapshot.
#[derive(Debug, Default)]
pub struct ChartMemo(std::sync::Mutex<HashMap<(PathBuf, String), Result<PathBuf, String>>>);

impl ChartMemo {
    /// Whether the chart `rel` (relative to `dir`) passes its check.
    pub fn passes(&self, root: &Path, dir: &Path, rel: &str) -> bool {
        self.check(root, dir, rel).is_ok()
    }

    fn check(&self, root: &Path, dir: &Path, rel: &str) -> Result<PathBuf, String> {
        let key = (dir.to_owned(), rel.to_owned());
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| local_chart(root, dir, rel))
            .clone()
    }
}

struct Checker<'a> {
    doc: &'a Document,
    ctx: &'a Context<'a>,
    out: Vec<Finding>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, pointer: String, message: String) {
        self.out
            .push(self.doc.finding(self.ctx.file, &pointer, severity, message));
    }
    fn error(&mut self, pointer: String, message: String) {
        self.push(Severity::Error, pointer, message);
    }
}

fn svc(i: usize) -> String {
    format!("/hdaGraph/services/{i}")
}

/// A lenient view of one service, read from the raw document so that the
/// reference checks still run when other parts of the file are invalid.
struct RawService<'v> {
    id: Option<&'v str>,
    raw: &'v Value,
    /// The service, when it is valid on its own.
    typed: Option<Service>,
}

fn strings(v: Option<&Value>) -> Vec<(usize, &str)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, x)| x.as_str().map(|s| (i, s)))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs every semantic check on a document (whatever the schema said about
/// it) and returns all findings: reference checks on the raw document, the
/// others on each service that is valid on its own.
pub fn check(doc: &Document, ctx: &Context<'_>) -> Vec<Finding> {
    let mut c = Checker {
        doc,
        ctx,
        out: Vec::new(),
    };
    let graph = doc.value.get("hdaGraph").unwrap_or(&Value::Null);
    let graph_id = graph.get("id").and_then(Value::as_str).unwrap_or_default();
    let services: Vec<RawService<'_>> = graph
        .get("services")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|raw| RawService {
                    id: raw.get("id").and_then(Value::as_str),
                    raw,
                    typed: serde_json::from_value::<Service>(raw.clone()).ok(),
                })
                .collect()
        })
        .unwrap_or_default();

    // Unique ids; later checks resolve references against the first holder.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in services.iter().enumerate() {
        let Some(id) = s.id else { continue };
        if let Some(first) = index.get(id) {
            c.error(
                format!("{}/id", svc(i)),
                format!(
                    "service id `{id}` is already used by services[{first}]; ids must be unique within a graph"
                ),
            );
        } else {
            index.insert(id, i);
        }
    }

    for (i, s) in services.iter().enumerate() {
        references(&mut c, &index, graph_id, i, s.raw);
        trigger(&mut c, i, s);
        let Some(t) = &s.typed else { continue };
        events(&mut c, i, t);
        chart(&mut c, i, t);
        scaling(&mut c, i, t);
        pins(&mut c, i, t);
    }
    cycles(&mut c, &index, &services);

    let ha = |k: &str| {
        graph
            .pointer(&format!("/hdaGraphIntent/highAvailability/{k}"))
            .and_then(Value::as_u64)
    };
    if let (Some(min), Some(max)) = (ha("minReplicasOverall"), ha("maxReplicasOverall"))
        && min > max
    {
        c.error(
            "/hdaGraph/hdaGraphIntent/highAvailability/minReplicasOverall".into(),
            format!("minReplicasOverall ({min}) is greater than maxReplicasOverall ({max})"),
        );
    }
    c.out
}

fn reference(
    c: &mut Checker<'_>,
    index: &BTreeMap<&str, usize>,
    pointer: String,
    what: &str,
    id: &str,
) {
    if index.contains_key(id) {
        return;
    }
    let hint = match closest(id, index.keys().copied()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => format!(
            "; services of this graph: {}",
            index.keys().copied().collect::<Vec<_>>().join(", ")
        ),
    };
    c.error(
        pointer,
        format!("{what} `{id}` is not a service of this graph{hint}"),
    );
}

fn references(
    c: &mut Checker<'_>,
    index: &BTreeMap<&str, usize>,
    graph: &str,
    i: usize,
    raw: &Value,
) {
    let base = format!("{}/deployment/intent", svc(i));
    let intent = raw.pointer("/deployment/intent");
    let at = |p: &str| intent.and_then(|v| v.pointer(p));
    for (j, cp) in strings(at("/connectionPoints")) {
        reference(
            c,
            index,
            format!("{base}/connectionPoints/{j}"),
            "connection point",
            cp,
        );
    }
    if let Some(latencies) = at("/network/latencies").and_then(Value::as_array) {
        for (j, l) in latencies.iter().enumerate() {
            if let Some(target) = l
                .get("connectionPoint")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                reference(
                    c,
                    index,
                    format!("{base}/network/latencies/{j}/connectionPoint"),
                    "latency connection point",
                    target,
                );
            }
        }
    }
    if let Some(list) = at("/coLocation").and_then(Value::as_array) {
        for (j, co) in list.iter().enumerate() {
            let (id, pointer) = match co {
                Value::String(id) => (id.as_str(), format!("{base}/coLocation/{j}")),
                Value::Object(m) => {
                    let other = m
                        .get("groundedGraphId")
                        .and_then(Value::as_str)
                        .is_some_and(|g| g != graph);
                    match m.get("id").and_then(Value::as_str) {
                        Some(id) if !other => (id, format!("{base}/coLocation/{j}/id")),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            reference(c, index, pointer, "co-located service", id);
        }
    }
    let trig = format!("{}/deployment/trigger", svc(i));
    for (j, d) in strings(raw.pointer("/deployment/trigger/auto/dependencies")) {
        reference(
            c,
            index,
            format!("{trig}/auto/dependencies/{j}"),
            "dependency",
            d,
        );
    }
    if let Some(events) = raw
        .pointer("/deployment/trigger/event/events")
        .and_then(Value::as_array)
    {
        for (k, ev) in events.iter().enumerate() {
            let Some(sources) = ev.get("source").and_then(Value::as_array) else {
                continue;
            };
            for (m, src) in sources.iter().enumerate() {
                if let Some(id) = src.get("serviceId").and_then(Value::as_str)
                    && !index.contains_key(id)
                {
                    // Informative only: published descriptors name the VO
                    // itself here, and only `promQuery` decides (as in the
                    // original SMO, which never read `source`).
                    c.push(
                        Severity::Warning,
                        format!("{trig}/event/events/{k}/source/{m}/serviceId"),
                        format!(
                            "event source `{id}` is not a service of this graph (services: {}); \
                             `source` is informative, the event fires on its promQuery alone",
                            index.keys().copied().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// A service without `deployment.trigger` deploys at once with no
/// dependencies, as in the original SMO; said aloud, because a trigger block
/// lost in an edit would otherwise deploy an event-triggered service at once.
fn trigger(c: &mut Checker<'_>, i: usize, s: &RawService<'_>) {
    let deployment = s.raw.get("deployment");
    if deployment.is_some_and(Value::is_object)
        && deployment.and_then(|d| d.get("trigger")).is_none()
    {
        c.push(
            Severity::Warning,
            format!("{}/deployment", svc(i)),
            format!(
                "service `{}` has no deployment.trigger: it is deployed at once with no dependencies \
                 (as `trigger: {{auto: {{}}}}`); write the trigger to say so, or `event` to wait for an alert",
                s.id.unwrap_or("?")
            ),
        );
    }
}

fn events(c: &mut Checker<'_>, i: usize, s: &Service) {
    let Some(e) = s.event_trigger() else { return };
    let mut seen = BTreeSet::new();
    for (k, ev) in e.events.iter().enumerate() {
        let base = format!("{}/deployment/trigger/event/events/{k}", svc(i));
        if !seen.insert(ev.id.as_str()) {
            c.error(
                format!("{base}/id"),
                format!("event id `{}` is used twice in this service; event ids name alert rules and must be unique", ev.id.as_str()),
            );
        }
        if ev.condition.prom_query.trim().is_empty() {
            c.error(
                format!("{base}/condition/promQuery"),
                "promQuery is empty: write the PromQL expression whose alert deploys this service"
                    .into(),
            );
        }
        if let Err(err) = parse_duration(&ev.condition.grace_period) {
            c.error(
                format!("{base}/condition/gracePeriod"),
                format!(
                    "gracePeriod {err}; Prometheus units are ms, s, m, h, d, w, y, largest first"
                ),
            );
        }
    }
}

fn scaling(c: &mut Checker<'_>, i: usize, s: &Service) {
    let Some(sc) = &s.deployment.intent.scaling else {
        return;
    };
    if let (Some(min), Some(max)) = (sc.min_replicas, sc.max_replicas)
        && min > max
    {
        c.error(
            format!("{}/deployment/intent/scaling/minReplicas", svc(i)),
            format!(
                "minReplicas ({}) is greater than maxReplicas ({}); need 1 ≤ minReplicas ≤ maxReplicas",
                min.0, max.0
            ),
        );
    }
}

fn pins(c: &mut Checker<'_>, i: usize, s: &Service) {
    let (Some(known), Some(pins)) = (c.ctx.known_clusters, &s.deployment.intent.clusters) else {
        return;
    };
    for (j, p) in pins.iter().enumerate() {
        if !known.contains(p.as_str()) {
            c.push(
                Severity::Warning,
                format!("{}/deployment/intent/clusters/{j}", svc(i)),
                format!(
                    "cluster `{}` is not described under clusters/; the live inventory decides whether it exists",
                    p.as_str()
                ),
            );
        }
    }
}

/// Dependency cycles, each reported once at the edge that starts it from
/// its first service in descriptor order.
fn cycles(c: &mut Checker<'_>, index: &BTreeMap<&str, usize>, services: &[RawService<'_>]) {
    let deps: Vec<Vec<(usize, &str)>> = services
        .iter()
        .map(|s| strings(s.raw.pointer("/deployment/trigger/auto/dependencies")))
        .collect();
    let edges: Vec<Vec<usize>> = deps
        .iter()
        .map(|d| {
            d.iter()
                .filter_map(|(_, id)| index.get(id).copied())
                .collect()
        })
        .collect();
    let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in 0..services.len() {
        // Depth-first search for a path back to `start` through services
        // that come later in descriptor order (so each cycle is found from
        // its first member only).
        let mut stack = vec![(start, 0usize)];
        let mut path = vec![start];
        let mut visited = BTreeSet::new();
        while let Some((node, next)) = stack.pop() {
            if next < edges[node].len() {
                stack.push((node, next + 1));
                let to = edges[node][next];
                if to == start {
                    let mut key = path.clone();
                    key.sort_unstable();
                    if reported.insert(key) {
                        report_cycle(c, services, &deps, &path);
                    }
                } else if to > start && visited.insert(to) {
                    stack.push((to, 0));
                    path.push(to);
                }
            } else {
                path.pop();
            }
        }
    }
}

fn report_cycle(
    c: &mut Checker<'_>,
    services: &[RawService<'_>],
    deps: &[Vec<(usize, &str)>],
    path: &[usize],
) {
    let first = path[0];
    let second = *path.get(1).unwrap_or(&first);
    let name = |k: usize| services[k].id.unwrap_or_default();
    let j = deps[first]
        .iter()
        .find(|(_, d)| *d == name(second))
        .map_or(0, |(j, _)| *j);
    let names: Vec<&str> = path
        .iter()
        .chain(std::iter::once(&first))
        .map(|&k| name(k))
        .collect();
    c.error(
        format!("{}/deployment/trigger/auto/dependencies/{j}", svc(first)),
        format!(
            "dependency cycle: {}; remove one of these dependencies",
            names.join(" → ")
        ),
    );
}

/// `oci://host[:port]/path[:tag]` or a chart path relative to the file.
fn chart(c: &mut Checker<'_>, i: usize, s: &Service) {
    let pointer = format!("{}/artifact/ociImage", svc(i));
    let image = s.artifact.oci_image.as_str();
    if let Some(rest) = image.strip_prefix("oci://") {
        if let Err(why) = check_oci(rest) {
            c.error(
                pointer,
                format!("`{image}` is not an OCI chart reference ({why}); write oci://host[:port]/path/chart[:version]"),
            );
        }
        return;
    }
    if image.contains("://") {
        c.error(
            pointer,
            format!("`{image}`: only oci:// references or chart paths relative to this file are supported"),
        );
        return;
    }
    if Path::new(image).is_absolute() {
        c.error(
            pointer,
            format!("`{image}` is an absolute path; write a chart path relative to this file, inside the state root"),
        );
        return;
    }
    match (c.ctx.dir, c.ctx.root) {
        (Some(dir), Some(root)) => {
            let checked = match c.ctx.charts {
                Some(memo) => memo.check(root, dir, image),
                None => local_chart(root, dir, image),
            };
            if let Err(message) = checked {
                c.error(pointer, message);
            }
        }
        _ => {
            if lexically_escapes(image) {
                c.error(
                    pointer,
                    format!("chart path `{image}` leaves the state root"),
                );
            }
        }
    }
}

fn check_oci(rest: &str) -> Result<(), &'static str> {
    let (host_port, path) = rest.split_once('/').ok_or("no repository path")?;
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
    {
        return Err("bad host");
    }
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return Err("bad port");
    }
    let (repo, tag) = match path.rsplit_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (path, None),
    };
    let repo_ok = !repo.is_empty()
        && repo.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        });
    if !repo_ok {
        return Err("bad repository path");
    }
    if let Some(t) = tag
        && (t.is_empty()
            || !t
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-+".contains(ch)))
    {
        return Err("bad version tag");
    }
    Ok(())
}

fn lexically_escapes(rel: &str) -> bool {
    let mut depth: i64 = 0;
    for comp in Path::new(rel).components() {
        match comp {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Resolves `..` and symlinks; the chart must exist inside the root, and
/// so must everything helm reads from it (see [`chart_files`]).
fn local_chart(root: &Path, dir: &Path, rel: &str) -> Result<PathBuf, String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve the state root: {e}"))?;
    let target = dir.join(rel);
    let resolved = target
        .canonicalize()
        .map_err(|_| format!("chart `{rel}` not found relative to this file"))?;
    if !resolved.starts_with(&root) {
        return Err(format!(
            "chart path `{rel}` resolves outside the state root (through `..` or a symlink); keep charts inside the repository"
        ));
    }
    if resolved.is_dir() && !resolved.join("Chart.yaml").is_file() {
        return Err(format!(
            "`{rel}` is a directory without Chart.yaml; point at a Helm chart"
        ));
    }
    // helm follows symlinks inside the chart and `.Files.Get` publishes
    // what they point at: every file helm would read must be the chart's.
    if resolved.is_dir() {
        chart_files::files(&root, &resolved).map_err(|e| format!("chart `{rel}`: {e}"))?;
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references() {
        assert!(check_oci("127.0.0.1:5000/charts/app:1.0.0").is_ok());
        assert!(check_oci("registry.example/brussels/image-detection").is_ok());
        assert!(check_oci("host:99999/x").is_err());
        assert!(check_oci("host").is_err());
        assert!(check_oci("host/Upper").is_err());
        assert!(check_oci("host/x:").is_err());
    }

    #[test]
    fn lexical_escapes() {
        assert!(lexically_escapes("../../x"));
        assert!(!lexically_escapes("charts/../charts/x"));
    }
}
