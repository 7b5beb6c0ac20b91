//! The configuration file as written (serde's view, before validation):
//! every field optional where the file may leave it out. [`super`] turns
//! it into the validated [`super::Config`].

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Raw {
    pub(super) source: RawSource,
    pub(super) state_dir: Option<String>,
    #[serde(default)]
    pub(super) karmada: RawKarmada,
    #[serde(default)]
    pub(super) helm: RawHelm,
    #[serde(default)]
    pub(super) hdar: RawHdar,
    #[serde(default)]
    pub(super) prometheus: RawPrometheus,
    #[serde(default)]
    pub(super) grafana: RawGrafana,
    pub(super) nfvcl: Option<RawNfvcl>,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) intervals: RawIntervals,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) events: super::events::RawEvents,
    #[serde(default)]
    pub(super) ha: super::ha::RawHa,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawSource {
    pub(super) dir: Option<String>,
    pub(super) debounce: Option<String>,
    pub(super) git: Option<RawGit>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawGit {
    pub(super) url: String,
    #[serde(rename = "ref", default)]
    pub(super) reference: RawRef,
    pub(super) path: Option<String>,
    pub(super) interval: Option<String>,
    #[serde(default)]
    pub(super) auth: RawAuth,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRef {
    pub(super) branch: Option<String>,
    pub(super) tag: Option<String>,
    pub(super) commit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawAuth {
    pub(super) token_file: Option<String>,
    pub(super) username: Option<String>,
    pub(super) ssh_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawKarmada {
    pub(super) kubeconfig: Option<String>,
    pub(super) context: Option<String>,
    pub(super) gpu_resource: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHdar {
    pub(super) auth_file: Option<String>,
    pub(super) interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHelm {
    pub(super) binary: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) wait: Option<bool>,
    #[serde(default)]
    pub(super) extra_args: Vec<String>,
    #[serde(default)]
    pub(super) insecure_registries: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawPrometheus {
    pub(super) url: Option<String>,
    pub(super) rules_dir: Option<String>,
    pub(super) prometheus_rule: Option<RawPrometheusRule>,
    pub(super) severity: Option<String>,
    pub(super) promtool: Option<String>,
    pub(super) query_timeout: Option<String>,
    pub(super) query_retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawPrometheusRule {
    pub(super) namespace: String,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawGrafana {
    pub(super) url: Option<String>,
    pub(super) token_file: Option<String>,
    pub(super) folder: Option<String>,
    pub(super) dashboards_dir: Option<String>,
    pub(super) datasource: Option<String>,
    pub(super) window: Option<String>,
    #[serde(default)]
    pub(super) queries: RawGrafanaQueries,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawGrafanaQueries {
    pub(super) request_rate: Option<String>,
    pub(super) cpu: Option<String>,
    pub(super) memory: Option<String>,
    pub(super) replicas: Option<String>,
    pub(super) cluster_capacity: Option<String>,
    pub(super) cluster_allocated: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawNfvcl {
    pub(super) url: String,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHttp {
    pub(super) listen: Option<String>,
    pub(super) token_file: Option<String>,
    pub(super) auth: Option<HttpAuth>,
    pub(super) max_body_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawIntervals {
    pub(super) resync: Option<String>,
    pub(super) scaling: Option<String>,
    pub(super) inventory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawLog {
    pub(super) format: Option<LogFormat>,
    pub(super) level: Option<String>,
}
