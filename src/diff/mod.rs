//! `smo diff`: what a desired state would change. The verdicts are pure
//! ([`compare`]): the desired releases (rendered by the CLI with helm) and
//! what is observed (the live Karmada, or the store in `--offline` mode,
//! read by [`observe`]) in, one verdict per service and the owned objects
//! to create or prune out.
//!
//! The rules follow the daemon's, on the evidence a diff has:
//! - a service whose release is absent is installed; present with other
//!   values or another manifest (live), or another input hash (offline,
//!   the store keeps the hash of the values, not the values), upgraded;
//! - a release no valid descriptor asks for is uninstalled (its service
//!   left the descriptor, or its graph did, or its graph is suspended);
//! - deleting needs positive evidence: the releases of a graph whose file
//!   is present but invalid are held, and so are those of every graph of
//!   a project with a file that declares no readable graph (it may be
//!   theirs); a graph that cannot be placed keeps running where it is;
//! - an event-triggered service that is not installed waits for its alert.

pub mod desired;
pub mod lines;
pub mod observe;
pub mod text;
pub mod yaml;

use crate::adapters::karmada::ObjectRef;
use crate::keys::{GraphKey, ServiceKey};
use crate::store::records::OwnedObject;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the desired state asks of one service.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    /// Installed with these values, which render to this manifest.
    Run(Rendered),
    /// Left as it is: its graph cannot be placed, or its chart did not
    /// render (the reason).
    Hold(String),
    /// Not installed: its graph is suspended.
    Suspended,
}

/// A service's release as the desired state renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub values: Value,
    pub manifest: String,
    /// The release inputs' hash (what the store records).
    pub hash: String,
    /// Installed only when its alert fires.
    pub on_event: bool,
    /// The PropagationPolicy smo generates for it, if it needs one.
    pub policy: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub key: ServiceKey,
    pub namespace: String,
    pub want: Want,
}

/// The desired side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub services: Vec<DesiredService>,
    /// Graphs declared by a valid descriptor.
    pub declared: BTreeSet<GraphKey>,
    /// Graphs whose file is present but invalid, with why.
    pub held_graphs: BTreeMap<GraphKey, String>,
    /// Projects with a file that names no graph (unreadable), with why.
    pub held_projects: BTreeMap<String, String>,
}

/// Where the observed side comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The Karmada API server: helm's release records.
    Live,
    /// The daemon's store: what it recorded.
    Offline,
}

/// An installed release of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub key: ServiceKey,
    pub namespace: String,
    /// The values it was installed with (live only).
    pub values: Option<Value>,
    /// Its manifest (`helm get manifest`, or the one the store recorded).
    pub manifest: Option<String>,
    /// The input hash the store recorded (offline only).
    pub hash: Option<String>,
}

/// The observed side.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub mode: Mode,
    pub releases: Vec<Installed>,
    /// smo-owned objects that are compared (generated PropagationPolicies).
    pub objects: Vec<(GraphKey, ObjectRef)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Install,
    Upgrade,
    Uninstall,
    None,
}

/// One service's verdict and what changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDiff {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub namespace: String,
    pub verdict: Verdict,
    /// Why, when the verdict needs a reason (held, waiting, removed…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Unified diff of the values (YAML), observed → desired; `None` when
    /// they are the same or were not compared.
    pub values_diff: Option<String>,
    /// Whether values were compared (offline mode cannot: the store keeps
    /// only their hash).
    pub values_compared: bool,
    /// Unified diff of the manifest (objects normalised, Secret values
    /// hidden), observed → desired.
    pub manifest_diff: Option<String>,
    pub manifest_compared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectAction {
    Create,
    Prune,
}

/// An smo-owned object to create or prune (in JSON, the action beside the
/// object's fields).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    pub action: ObjectAction,
    #[serde(flatten)]
    pub object: OwnedObject,
}

/// The whole diff (`smo diff --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub mode: Mode,
    /// Whether anything would change (the exit code: 1 if so).
    pub changes: bool,
    pub services: Vec<ServiceDiff>,
    pub objects: Vec<ObjectChange>,
}

const OBSERVED: &str = "observed";
const DESIRED: &str = "desired";

fn values_text(v: &Value) -> String {
    yaml::to_yaml(v)
}

/// Manifest texts to show (Secret values hidden), observed and desired,
/// and whether they differ in substance.
fn manifests(observed: &str, desired: &str) -> (String, String, bool) {
    match (yaml::objects(observed), yaml::objects(desired)) {
        (Ok(o), Ok(d)) => {
            let differ = yaml::print(&o, None, false) != yaml::print(&d, None, false);
            (
                yaml::print(&o, Some(&d), false),
                yaml::print(&d, Some(&o), true),
                differ,
            )
        }
        // Unreadable: cannot be redacted, so it is not shown; compared
        // as text.
        (o, d) => {
            let say = |r: Result<Vec<Value>, _>| match r {
                Ok(objects) => yaml::print(&objects, Some(&[]), false),
                Err(e) => format!("# manifest not shown: it cannot be read ({e})\n"),
            };
            let differ = observed != desired;
            (say(o), say(d), differ)
        }
    }
}

fn diff_of(
    key: &ServiceKey,
    namespace: &str,
    verdict: Verdict,
    note: Option<String>,
) -> ServiceDiff {
    ServiceDiff {
        project: key.graph.project.clone(),
        graph: key.graph.graph.clone(),
        service: key.service.clone(),
        namespace: namespace.to_owned(),
        verdict,
        note,
        values_diff: None,
        values_compared: false,
        manifest_diff: None,
        manifest_compared: false,
    }
}

/// One desired, running service against what is installed.
fn running(key: &ServiceKey, ns: &str, r: &Rendered, live: Option<&Installed>) -> ServiceDiff {
    let Some(live) = live else {
        if r.on_event {
            return diff_of(
                key,
                ns,
                Verdict::None,
                Some("waits for its trigger: installed when its alert fires".into()),
            );
        }
        let mut d = diff_of(key, ns, Verdict::Install, None);
        d.values_diff = lines::unified("", &values_text(&r.values), OBSERVED, DESIRED);
        d.values_compared = true;
        let (_, shown, _) = manifests("", &r.manifest);
        d.manifest_diff = lines::unified("", &shown, OBSERVED, DESIRED);
        d.manifest_compared = true;
        return d;
    };
    let mut changed = false;
    let mut d = diff_of(key, ns, Verdict::None, None);
    if let Some(values) = &live.values {
        // helm prints no values as `null`.
        let values = if values.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            values.clone()
        };
        changed |= values != r.values;
        d.values_diff = lines::unified(
            &values_text(&values),
            &values_text(&r.values),
            OBSERVED,
            DESIRED,
        );
        d.values_compared = true;
    }
    if let Some(manifest) = &live.manifest {
        let (old, new, differ) = manifests(manifest, &r.manifest);
        d.manifest_diff = if differ {
            lines::unified(&old, &new, OBSERVED, DESIRED)
        } else {
            None
        };
        d.manifest_compared = true;
        // Offline, the hash decides: a manifest may differ for reasons
        // the daemon does not act on (a newer helm's formatting).
        if live.hash.is_none() {
            changed |= differ;
        }
    }
    if let Some(hash) = &live.hash {
        changed |= *hash != r.hash;
        if !d.values_compared {
            d.note =
                Some("values not shown: the store keeps a hash of them, not the values".into());
        }
    }
    if changed {
        d.verdict = Verdict::Upgrade;
    } else {
        // Same inputs: nothing to show.
        d.values_diff = None;
        d.manifest_diff = None;
        d.note = None;
    }
    d
}

fn uninstall(live: &Installed, why: &str) -> ServiceDiff {
    let mut d = diff_of(
        &live.key,
        &live.namespace,
        Verdict::Uninstall,
        Some(why.into()),
    );
    if let Some(values) = &live.values {
        d.values_diff = lines::unified(&values_text(values), "", OBSERVED, DESIRED);
        d.values_compared = true;
    }
    if let Some(m) = &live.manifest {
        let (shown, _, _) = manifests(m, "");
        d.manifest_diff = lines::unified(&shown, "", OBSERVED, DESIRED);
        d.manifest_compared = true;
    }
    d
}

/// Why nothing of `graph` may be removed, if so.
fn held(desired: &Desired, graph: &GraphKey) -> Option<String> {
    if let Some(why) = desired.held_graphs.get(graph) {
        return Some(format!("held: {why}"));
    }
    if desired.declared.contains(graph) {
        return None;
    }
    desired
        .held_projects
        .get(&graph.project)
        .map(|why| format!("held: {why}"))
}

/// The verdicts.
pub fn compare(desired: &Desired, observed: &Observed) -> Report {
    let live: BTreeMap<&ServiceKey, &Installed> =
        observed.releases.iter().map(|r| (&r.key, r)).collect();
    let mut services = Vec::new();
    // Graphs whose objects stay as they are (held, or a service held).
    let mut keep: BTreeSet<GraphKey> = BTreeSet::new();
    let mut wanted: BTreeSet<(GraphKey, ObjectRef)> = BTreeSet::new();
    let mut seen: BTreeSet<&ServiceKey> = BTreeSet::new();
    for s in &desired.services {
        seen.insert(&s.key);
        let installed = live.get(&s.key).copied();
        let d = match &s.want {
            Want::Run(r) => {
                if let Some(p) = &r.policy
                    && (installed.is_some() || !r.on_event)
                {
                    wanted.insert((s.key.graph.clone(), p.clone()));
                }
                running(&s.key, &s.namespace, r, installed)
            }
            Want::Hold(why) => {
                keep.insert(s.key.graph.clone());
                diff_of(
                    &s.key,
                    &s.namespace,
                    Verdict::None,
                    Some(format!("held: {why}")),
                )
            }
            Want::Suspended => match installed {
                Some(i) => uninstall(i, "its graph is suspended"),
                None => diff_of(
                    &s.key,
                    &s.namespace,
                    Verdict::None,
                    Some("suspended".into()),
                ),
            },
        };
        services.push(d);
    }
    for r in observed.releases.iter().filter(|r| !seen.contains(&r.key)) {
        if let Some(why) = held(desired, &r.key.graph) {
            keep.insert(r.key.graph.clone());
            services.push(diff_of(&r.key, &r.namespace, Verdict::None, Some(why)));
        } else if desired.declared.contains(&r.key.graph) {
            services.push(uninstall(r, "the service left its descriptor"));
        } else {
            services.push(uninstall(r, "no descriptor declares its graph"));
        }
    }
    services.sort_by(|a, b| {
        (&a.project, &a.graph, &a.service).cmp(&(&b.project, &b.graph, &b.service))
    });
    let present: BTreeSet<(GraphKey, ObjectRef)> = observed.objects.iter().cloned().collect();
    let change = |action, (g, o): &(GraphKey, ObjectRef)| ObjectChange {
        action,
        object: OwnedObject {
            project: g.project.clone(),
            graph: g.graph.clone(),
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        },
    };
    let mut objects: Vec<ObjectChange> = wanted
        .difference(&present)
        .map(|x| change(ObjectAction::Create, x))
        .chain(
            present
                .difference(&wanted)
                .filter(|(g, _)| !keep.contains(g) && held(desired, g).is_none())
                .map(|x| change(ObjectAction::Prune, x)),
        )
        .collect();
    objects.sort();
    let changes = !objects.is_empty() || services.iter().any(|s| s.verdict != Verdict::None);
    Report {
        mode: observed.mode,
        changes,
        services,
        objects,
    }
}

#[cfg(test)]
mod tests;
