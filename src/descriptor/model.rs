//! Typed model of the NEPHELE HDAG descriptor (information model 0.4.0)
//! with smo's documented extensions. Field names follow the descriptor
//! (`camelCase`). Unknown keys are ignored here: the schema module reports
//! them as warnings. `schemas/hdag.schema.json` is the source of truth; a
//! test checks that this model accepts exactly what the schema accepts.

use super::types::{
    DnsLabel, Enabled, Flag, NonEmpty, Positive, VersionText, non_empty_objects, non_negative,
    object, object_opt, objects, present,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(deserialize_with = "object")]
    pub hda_graph: HdaGraph,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HdaGraph {
    pub im_version: VersionText,
    pub id: DnsLabel,
    #[serde(default, deserialize_with = "present")]
    pub version: Option<VersionText>,
    #[serde(default, deserialize_with = "present")]
    pub designer: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<String>,
    /// smo extension: uninstall everything but keep the record.
    #[serde(default)]
    pub suspend: bool,
    #[serde(default, deserialize_with = "object")]
    pub hda_graph_intent: GraphIntent,
    #[serde(deserialize_with = "non_empty_objects")]
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphIntent {
    #[serde(default)]
    pub use_static_placement: Flag,
    /// The intent in words (information model 0.3.0 wrote it as text).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub security: Enabled,
    #[serde(default, deserialize_with = "object")]
    pub high_availability: HighAvailability,
    #[serde(default, deserialize_with = "object")]
    pub high_performance: Enabled,
    #[serde(default, deserialize_with = "object")]
    pub energy_efficiency: Enabled,
    /// smo extension.
    #[serde(default, deserialize_with = "object_opt")]
    pub placement: Option<PlacementIntent>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HighAvailability {
    #[serde(default)]
    pub enabled: Flag,
    #[serde(default, deserialize_with = "present")]
    pub min_replicas_overall: Option<Positive>,
    #[serde(default, deserialize_with = "present")]
    pub max_replicas_overall: Option<Positive>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    #[serde(rename = "milp")]
    Milp,
    #[serde(rename = "first-fit")]
    FirstFit,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementIntent {
    #[serde(default, deserialize_with = "present")]
    pub strategy: Option<Strategy>,
    #[serde(default, deserialize_with = "object")]
    pub weights: Weights,
    #[serde(default, deserialize_with = "present")]
    pub revision: Option<Revision>,
}

/// `placement.revision`: text or integer; changing it forces re-placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Revision {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Revision::Text(s)),
            // JSON Schema's `integer` includes 3.0.
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Revision::Int(i)),
                None => {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        #[allow(clippy::cast_possible_truncation)]
                        Ok(Revision::Int(f as i64))
                    } else {
                        Err(serde::de::Error::custom(
                            "revision must be text or an integer",
                        ))
                    }
                }
            },
            _ => Err(serde::de::Error::custom(
                "revision must be text or an integer",
            )),
        }
    }
}

/// Objective weights; absent ones fall back to the settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    #[serde(default, deserialize_with = "non_negative")]
    pub movement: Option<f64>,
    #[serde(default, deserialize_with = "non_negative")]
    pub traffic: Option<f64>,
    #[serde(default, deserialize_with = "non_negative")]
    pub energy: Option<f64>,
    #[serde(default, deserialize_with = "non_negative")]
    pub cost: Option<f64>,
    #[serde(default, deserialize_with = "non_negative")]
    pub balance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: DnsLabel,
    #[serde(deserialize_with = "object")]
    pub deployment: Deployment,
    #[serde(deserialize_with = "object")]
    pub artifact: Artifact,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Absent means: deploy at once, no dependencies.
    #[serde(default, deserialize_with = "object_opt")]
    pub trigger: Option<Trigger>,
    #[serde(default, deserialize_with = "object")]
    pub intent: Intent,
}

/// Exactly one of `auto` or `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawTrigger")]
pub enum Trigger {
    Auto(AutoTrigger),
    Event(EventTrigger),
}

#[derive(Deserialize)]
struct RawTrigger {
    #[serde(default, deserialize_with = "object_opt")]
    auto: Option<AutoTrigger>,
    #[serde(default, deserialize_with = "object_opt")]
    event: Option<EventTrigger>,
}

impl TryFrom<RawTrigger> for Trigger {
    type Error = &'static str;
    fn try_from(raw: RawTrigger) -> Result<Self, Self::Error> {
        match (raw.auto, raw.event) {
            (Some(a), None) => Ok(Trigger::Auto(a)),
            (None, Some(e)) => Ok(Trigger::Event(e)),
            _ => Err("set exactly one of `auto` or `event`"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoTrigger {
    #[serde(default)]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventCondition {
    #[default]
    #[serde(rename = "ANY")]
    Any,
    #[serde(rename = "ALL")]
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTrigger {
    #[serde(default)]
    pub condition: EventCondition,
    #[serde(deserialize_with = "non_empty_objects")]
    pub events: Vec<Event>,
    /// smo extension: uninstall again when the alert resolves.
    #[serde(default)]
    pub undeploy_on_resolve: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: NonEmpty,
    #[serde(default, deserialize_with = "objects")]
    pub source: Vec<EventSource>,
    #[serde(deserialize_with = "object")]
    pub condition: EventRule,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    #[serde(default, deserialize_with = "present")]
    pub service_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub metric_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRule {
    pub prom_query: String,
    pub grace_period: String,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    #[serde(default, deserialize_with = "object")]
    pub compute: Compute,
    #[serde(default, deserialize_with = "object")]
    pub network: Network,
    #[serde(default)]
    pub connection_points: Vec<String>,
    #[serde(default)]
    pub co_location: Vec<CoLocation>,
    #[serde(default)]
    pub metrics: Vec<Value>,
    /// smo extension: pin to these clusters.
    #[serde(default, deserialize_with = "unique_names")]
    pub clusters: Option<Vec<NonEmpty>>,
    /// smo extension: capacity model for the scaler.
    #[serde(default, deserialize_with = "object_opt")]
    pub scaling: Option<Scaling>,
}

fn unique_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<NonEmpty>>, D::Error> {
    let list = Vec::<NonEmpty>::deserialize(d)?;
    let mut seen = std::collections::BTreeSet::new();
    if !list.iter().all(|n| seen.insert(n.as_str())) {
        return Err(serde::de::Error::custom("cluster names must be unique"));
    }
    Ok(Some(list))
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    #[default]
    Light,
    Small,
    Medium,
    Large,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StorageSize {
    #[default]
    Small,
    Medium,
    Large,
}

/// Absent sizes default to the smallest class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    #[serde(default)]
    pub cpu: Size,
    #[serde(default)]
    pub ram: Size,
    #[serde(default)]
    pub storage: StorageSize,
    #[serde(default, deserialize_with = "object")]
    pub gpu: Enabled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default, deserialize_with = "objects")]
    pub latencies: Vec<Latency>,
    #[serde(default, deserialize_with = "object")]
    pub device_proximity: Enabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Qos {
    #[serde(rename = "ultralow")]
    UltraLow,
    #[serde(rename = "low")]
    Low,
    #[serde(rename = "best-effort")]
    BestEffort,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// The empty string means "no connection point".
    #[serde(default, deserialize_with = "present")]
    pub connection_point: Option<String>,
    pub qos: Qos,
}

impl Latency {
    pub fn target(&self) -> Option<&str> {
        self.connection_point.as_deref().filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CoLocation {
    Id(String),
    Grounded {
        id: String,
        #[serde(rename = "groundedGraphId", skip_serializing_if = "Option::is_none")]
        grounded_graph_id: Option<String>,
    },
}

impl<'de> Deserialize<'de> for CoLocation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Grounded {
            id: String,
            #[serde(default, rename = "groundedGraphId", deserialize_with = "present")]
            grounded_graph_id: Option<String>,
        }
        match Value::deserialize(d)? {
            Value::String(id) => Ok(CoLocation::Id(id)),
            v @ Value::Object(_) => {
                let g = Grounded::deserialize(v).map_err(serde::de::Error::custom)?;
                Ok(CoLocation::Grounded {
                    id: g.id,
                    grounded_graph_id: g.grounded_graph_id,
                })
            }
            _ => Err(serde::de::Error::custom(
                "expected a service id or a map {id, groundedGraphId}",
            )),
        }
    }
}

impl CoLocation {
    pub fn id(&self) -> &str {
        match self {
            CoLocation::Id(id) | CoLocation::Grounded { id, .. } => id,
        }
    }

    /// The graph the referenced service belongs to, when it is another one.
    pub fn other_graph<'a>(&'a self, own: &str) -> Option<&'a str> {
        match self {
            CoLocation::Grounded {
                grounded_graph_id: Some(g),
                ..
            } if g != own => Some(g),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    #[serde(default, deserialize_with = "present")]
    pub min_replicas: Option<Positive>,
    #[serde(default, deserialize_with = "present")]
    pub max_replicas: Option<Positive>,
    #[serde(deserialize_with = "positive_number")]
    pub alpha: f64,
    #[serde(default, deserialize_with = "present")]
    pub beta: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    pub query: Option<NonEmpty>,
}

fn positive_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let x = f64::deserialize(d)?;
    if x > 0.0 {
        Ok(x)
    } else {
        Err(serde::de::Error::custom("must be greater than 0"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub oci_image: NonEmpty,
    #[serde(default, deserialize_with = "object")]
    pub oci_config: OciConfig,
    #[serde(default, deserialize_with = "object")]
    pub oci_run: OciRun,
    #[serde(default)]
    pub values_overwrite: Map<String, Value>,
    /// smo extension: chart version.
    #[serde(default, deserialize_with = "present")]
    pub version: Option<String>,
    /// smo extension: take over an existing release smo did not install.
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArtifactType {
    #[default]
    App,
    #[serde(rename = "VO")]
    Vo,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Implementer {
    #[default]
    #[serde(rename = "HELM")]
    Helm,
    #[serde(rename = "WOT")]
    Wot,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciConfig {
    #[serde(default, rename = "type")]
    pub kind: ArtifactType,
    #[serde(default)]
    pub implementer: Implementer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunName {
    #[default]
    #[serde(rename = "HELM")]
    Helm,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciRun {
    #[serde(default)]
    pub name: RunName,
    #[serde(default, deserialize_with = "present")]
    pub version: Option<String>,
}

impl HdaGraph {
    /// Whether `service` is left to its chart: `useStaticPlacement` and no
    /// clusters named (neither pins nor `clustersAffinity`). smo computes no
    /// placement for it and sets no cluster values, as the original SMO did.
    pub fn chart_decides(&self, service: &Service) -> bool {
        self.hda_graph_intent.use_static_placement.0 && service.named_clusters().is_none()
    }
}

impl Service {
    pub fn dependencies(&self) -> &[String] {
        match &self.deployment.trigger {
            Some(Trigger::Auto(a)) => &a.dependencies,
            _ => &[],
        }
    }

    pub fn event_trigger(&self) -> Option<&EventTrigger> {
        match &self.deployment.trigger {
            Some(Trigger::Event(e)) => Some(e),
            _ => None,
        }
    }

    /// Where the chart's values carry the cluster list: under
    /// `voChartOverwrite` for WOT implementers, at the top otherwise.
    pub fn values_scope(&self) -> Option<&Map<String, Value>> {
        match self.artifact.oci_config.implementer {
            Implementer::Wot => self
                .artifact
                .values_overwrite
                .get("voChartOverwrite")
                .and_then(Value::as_object),
            Implementer::Helm => Some(&self.artifact.values_overwrite),
        }
    }

    /// Clusters named by the descriptor: our pin, or the chart values'
    /// `clustersAffinity` (how static placement was written for the original).
    pub fn named_clusters(&self) -> Option<Vec<String>> {
        if let Some(pins) = &self.deployment.intent.clusters {
            return Some(pins.iter().map(|p| p.to_string()).collect());
        }
        let affinity = self
            .values_scope()?
            .get("clustersAffinity")?
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect::<Vec<_>>();
        (!affinity.is_empty()).then_some(affinity)
    }
}
