//! The registry of served resource kinds: what discovery and OpenAPI
//! advertise and what the router accepts. Invariant: a (group, version,
//! plural) triple appears at most once; registering it again replaces it.

use serde_json::{Value, json};

/// One served resource kind, e.g. `apps/v1` `Deployment` (`deployments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSpec {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    /// Version within the group, e.g. `v1alpha1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names advertised by discovery (`deploy`).
    pub short_names: Vec<String>,
    /// Whether a `status` subresource exists (main-resource writes then keep
    /// the stored status, and `/status` writes change only the status).
    pub status_subresource: bool,
    /// Whether a `scale` subresource exists (reads/writes `spec.replicas`).
    pub scale_subresource: bool,
}

impl KindSpec {
    /// A namespaced kind without subresources; adjust fields as needed.
    ///
    /// `api_version` is `group/version` or just `version` for the core group.
    pub fn namespaced(api_version: &str, kind: &str, plural: &str) -> Self {
        let (group, version) = split_api_version(api_version);
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced: true,
            short_names: Vec::new(),
            status_subresource: false,
            scale_subresource: false,
        }
    }

    /// A cluster-scoped kind without subresources.
    pub fn cluster_scoped(api_version: &str, kind: &str, plural: &str) -> Self {
        Self {
            namespaced: false,
            ..Self::namespaced(api_version, kind, plural)
        }
    }

    /// Adds short names (builder style).
    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Declares a `status` subresource (builder style).
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// Declares a `scale` subresource (builder style).
    pub fn with_scale(mut self) -> Self {
        self.scale_subresource = true;
        self
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Lower-case singular name, as discovery reports it.
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }

    /// The URL prefix of this kind's group-version (`/api/v1`, `/apis/apps/v1`).
    pub(crate) fn gv_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    pub(crate) fn discovery_entries(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        })];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scale_subresource {
            out.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The kinds served out of the box (see the crate README).
pub(crate) fn builtin() -> Vec<KindSpec> {
    let ns = KindSpec::namespaced;
    let cs = KindSpec::cluster_scoped;
    vec![
        cs("v1", "Namespace", "namespaces")
            .short(&["ns"])
            .with_status(),
        ns("v1", "Secret", "secrets"),
        ns("v1", "ConfigMap", "configmaps").short(&["cm"]),
        ns("v1", "Service", "services")
            .short(&["svc"])
            .with_status(),
        ns("v1", "ServiceAccount", "serviceaccounts").short(&["sa"]),
        ns("v1", "Pod", "pods").short(&["po"]).with_status(),
        ns("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
            .short(&["pvc"])
            .with_status(),
        ns("v1", "Event", "events").short(&["ev"]),
        ns("apps/v1", "Deployment", "deployments")
            .short(&["deploy"])
            .with_status()
            .with_scale(),
        ns("apps/v1", "StatefulSet", "statefulsets")
            .short(&["sts"])
            .with_status()
            .with_scale(),
        ns("apps/v1", "DaemonSet", "daemonsets")
            .short(&["ds"])
            .with_status(),
        ns("apps/v1", "ReplicaSet", "replicasets")
            .short(&["rs"])
            .with_status()
            .with_scale(),
        ns("batch/v1", "Job", "jobs").with_status(),
        ns("batch/v1", "CronJob", "cronjobs")
            .short(&["cj"])
            .with_status(),
        ns("networking.k8s.io/v1", "Ingress", "ingresses")
            .short(&["ing"])
            .with_status(),
        ns("rbac.authorization.k8s.io/v1", "Role", "roles"),
        ns(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "rolebindings",
        ),
        cs(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles",
        ),
        cs(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        ),
        ns(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        )
        .short(&["hpa"])
        .with_status(),
        ns("coordination.k8s.io/v1", "Lease", "leases"),
        cs("cluster.karmada.io/v1alpha1", "Cluster", "clusters").with_status(),
        ns(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            "propagationpolicies",
        )
        .short(&["pp"]),
        cs(
            "policy.karmada.io/v1alpha1",
            "ClusterPropagationPolicy",
            "clusterpropagationpolicies",
        )
        .short(&["cpp"]),
        ns(
            "policy.karmada.io/v1alpha1",
            "OverridePolicy",
            "overridepolicies",
        )
        .short(&["op"]),
        ns(
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            "prometheusrules",
        )
        .short(&["promrule"]),
        ns(
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            "servicemonitors",
        )
        .short(&["smon"]),
        ns(
            "multicluster.x-k8s.io/v1alpha1",
            "ServiceExport",
            "serviceexports",
        ),
        ns(
            "multicluster.x-k8s.io/v1alpha1",
            "ServiceImport",
            "serviceimports",
        )
        .short(&["svcim"])
        .with_status(),
    ]
}

/// The live set of kinds.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    kinds: Vec<KindSpec>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self { kinds: builtin() }
    }

    pub(crate) fn register(&mut self, spec: KindSpec) {
        self.kinds.retain(|k| {
            !(k.group == spec.group && k.version == spec.version && k.plural == spec.plural)
        });
        self.kinds.push(spec);
    }

    pub(crate) fn all(&self) -> &[KindSpec] {
        &self.kinds
    }

    pub(crate) fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&KindSpec> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<&KindSpec> {
        let (group, version) = split_api_version(api_version);
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
    }

    /// Groups in first-registration order, each with its versions.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for k in &self.kinds {
            if k.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == k.group) {
                Some((_, vs)) => {
                    if !vs.contains(&k.version) {
                        vs.push(k.version.clone());
                    }
                }
                None => out.push((k.group.clone(), vec![k.version.clone()])),
            }
        }
        out
    }

    pub(crate) fn in_group_version(&self, group: &str, version: &str) -> Vec<&KindSpec> {
        self.kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .collect()
    }
}
