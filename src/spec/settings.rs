//! `smo.yaml`: settings that travel with the applications (intent
//! translation, placement, scaling, prune guard, drift mode). Parsed in two
//! stages: raw (serde, schema-checked) to validated values with units.

use crate::descriptor::model::{Size, StorageSize, Strategy};
use crate::units::{parse_duration, quantity_of};
use crate::validate::findings::Finding;
use crate::validate::yaml::Document;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// What to do about drift between a release's manifest and live objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftMode {
    #[default]
    Correct,
    Warn,
}

/// Intent classes translated to resources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentTable {
    /// Cores for light, small, medium, large.
    pub cpu: [f64; 4],
    /// Bytes for light, small, medium, large.
    pub ram: [f64; 4],
    /// Bytes for small, medium, large.
    pub storage: [f64; 3],
}

impl Default for IntentTable {
    /// DESIGN.md's defaults, those of the original SMO.
    fn default() -> Self {
        const MI: f64 = 1024.0 * 1024.0;
        const GI: f64 = 1024.0 * MI;
        IntentTable {
            cpu: [0.5, 1.0, 4.0, 8.0],
            ram: [500.0 * MI, GI, 2.0 * GI, 8.0 * GI],
            storage: [10e9, 20e9, 40e9],
        }
    }
}

impl IntentTable {
    pub fn cpu(&self, s: Size) -> f64 {
        self.cpu[s as usize]
    }
    pub fn ram(&self, s: Size) -> f64 {
        self.ram[s as usize]
    }
    pub fn storage(&self, s: StorageSize) -> f64 {
        self.storage[s as usize]
    }
}

/// Weights of the placement objective's terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ObjectiveWeights {
    pub movement: f64,
    pub traffic: f64,
    pub energy: f64,
    pub cost: f64,
    pub balance: f64,
}

impl Default for ObjectiveWeights {
    /// The placement engine's defaults (`placement::Weights` documents each
    /// term's unit): one source of truth.
    fn default() -> Self {
        let w = crate::placement::Weights::default();
        ObjectiveWeights {
            movement: w.movement,
            traffic: w.traffic,
            energy: w.energy,
            cost: w.cost,
            balance: w.balance,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementSettings {
    pub strategy: Strategy,
    pub weights: ObjectiveWeights,
    pub time_limit: Duration,
    pub mip_gap: f64,
    /// Neighbour threshold of the `low` latency class (`ultralow` is fixed
    /// by the information model: below 10 ms).
    pub low_latency_ms: f64,
    /// How long a cluster may be NotReady before its services move.
    pub failover_grace: Duration,
}

impl Default for PlacementSettings {
    fn default() -> Self {
        PlacementSettings {
            strategy: Strategy::Milp,
            weights: ObjectiveWeights::default(),
            time_limit: Duration::from_secs(10),
            mip_gap: 0.01,
            low_latency_ms: crate::placement::PlacementOptions::default().low_latency_ms,
            failover_grace: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingSettings {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub stabilization_window: Duration,
    pub rate_window: Duration,
    pub query: String,
    pub cpu_weight: f64,
    pub change_weight: f64,
}

/// The original SMO's request-rate query, with its labels as placeholders.
pub const DEFAULT_RATE_QUERY: &str =
    r#"sum(rate(flask_http_request_total{service="{service}"}[{window}])) by (service)"#;

impl Default for ScalingSettings {
    fn default() -> Self {
        ScalingSettings {
            min_replicas: 1,
            max_replicas: 3,
            stabilization_window: Duration::from_secs(300),
            rate_window: Duration::from_secs(60),
            query: DEFAULT_RATE_QUERY.to_owned(),
            // The original SMO's weights.
            cpu_weight: 0.4,
            change_weight: 0.4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub intents: IntentTable,
    pub placement: PlacementSettings,
    pub scaling: ScalingSettings,
    /// Largest share of graphs one snapshot may remove at once.
    pub prune_max_delete_percent: f64,
    pub drift: DriftMode,
    pub generate_propagation_policy: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            intents: IntentTable::default(),
            placement: PlacementSettings::default(),
            scaling: ScalingSettings::default(),
            prune_max_delete_percent: 50.0,
            drift: DriftMode::Correct,
            generate_propagation_policy: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSettings {
    #[serde(default)]
    intents: RawIntents,
    #[serde(default)]
    placement: RawPlacement,
    #[serde(default)]
    scaling: RawScaling,
    #[serde(default)]
    prune: RawPrune,
    #[serde(default)]
    drift: Option<DriftMode>,
    #[serde(default)]
    propagation_policy: RawPropagation,
}

#[derive(Debug, Default, Deserialize)]
struct RawIntents {
    #[serde(default)]
    cpu: RawClasses,
    #[serde(default)]
    ram: RawClasses,
    #[serde(default)]
    storage: RawClasses,
}

#[derive(Debug, Default, Deserialize)]
struct RawClasses {
    light: Option<Value>,
    small: Option<Value>,
    medium: Option<Value>,
    large: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlacement {
    strategy: Option<Strategy>,
    #[serde(default)]
    weights: crate::descriptor::model::Weights,
    time_limit: Option<String>,
    mip_gap: Option<f64>,
    low_latency_ms: Option<f64>,
    failover_grace_period: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawScaling {
    min_replicas: Option<u32>,
    max_replicas: Option<u32>,
    stabilization_window: Option<String>,
    rate_window: Option<String>,
    query: Option<String>,
    cpu_weight: Option<f64>,
    change_weight: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPrune {
    max_delete_percent: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawPropagation {
    generate: Option<bool>,
}

/// Applies objective weights given per graph (or in smo.yaml) over a base.
pub fn merge_weights(
    base: ObjectiveWeights,
    w: &crate::descriptor::model::Weights,
) -> ObjectiveWeights {
    ObjectiveWeights {
        movement: w.movement.unwrap_or(base.movement),
        traffic: w.traffic.unwrap_or(base.traffic),
        energy: w.energy.unwrap_or(base.energy),
        cost: w.cost.unwrap_or(base.cost),
        balance: w.balance.unwrap_or(base.balance),
    }
}

/// Cross-field rules, checked on the raw document so that they are
/// reported even when other fields have schema errors.
pub fn cross_checks(doc: &Document, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let num = |p: &str| doc.value.pointer(p).and_then(Value::as_f64);
    let defaults = Settings::default();
    let min = num("/scaling/minReplicas").unwrap_or(f64::from(defaults.scaling.min_replicas));
    let max = num("/scaling/maxReplicas").unwrap_or(f64::from(defaults.scaling.max_replicas));
    if min > max {
        let at = if num("/scaling/minReplicas").is_some() {
            "/scaling/minReplicas"
        } else {
            "/scaling/maxReplicas"
        };
        out.push(doc.error(file, at, format!(
            "minReplicas ({min}) is greater than maxReplicas ({max}); need minReplicas ≤ maxReplicas"
        )));
    }
    out
}

impl RawSettings {
    /// Second stage: units and cross-field rules. Findings point into `doc`.
    pub fn validate(self, doc: &Document, file: &str) -> (Settings, Vec<Finding>) {
        let mut out = Vec::new();
        let mut s = Settings::default();
        let mut error =
            |pointer: &str, message: String| out.push(doc.error(file, pointer, message));
        let mut classes = |raw: &RawClasses, kind: &str, into: &mut [f64]| {
            let named = [&raw.light, &raw.small, &raw.medium, &raw.large];
            let names = ["light", "small", "medium", "large"];
            // Storage has no `light` class.
            let offset = 4 - into.len();
            for (k, slot) in into.iter_mut().enumerate() {
                if let Some(v) = named[k + offset] {
                    match quantity_of(v) {
                        Ok(q) => *slot = q,
                        Err(e) => error(
                            &format!("/intents/{kind}/{}", names[k + offset]),
                            e.to_string(),
                        ),
                    }
                }
            }
        };
        classes(&self.intents.cpu, "cpu", &mut s.intents.cpu);
        classes(&self.intents.ram, "ram", &mut s.intents.ram);
        classes(&self.intents.storage, "storage", &mut s.intents.storage);

        let p = &mut s.placement;
        if let Some(v) = self.placement.strategy {
            p.strategy = v;
        }
        p.weights = merge_weights(p.weights, &self.placement.weights);
        if let Some(v) = self.placement.mip_gap {
            p.mip_gap = v;
        }
        if let Some(v) = self.placement.low_latency_ms {
            p.low_latency_ms = v;
        }
        let mut duration = |text: &Option<String>, pointer: &str, slot: &mut Duration| {
            if let Some(t) = text {
                match parse_duration(t) {
                    Ok(d) => *slot = d,
                    Err(e) => error(pointer, e.to_string()),
                }
            }
        };
        duration(
            &self.placement.time_limit,
            "/placement/timeLimit",
            &mut p.time_limit,
        );
        duration(
            &self.placement.failover_grace_period,
            "/placement/failoverGracePeriod",
            &mut p.failover_grace,
        );
        let sc = &mut s.scaling;
        duration(
            &self.scaling.stabilization_window,
            "/scaling/stabilizationWindow",
            &mut sc.stabilization_window,
        );
        duration(
            &self.scaling.rate_window,
            "/scaling/rateWindow",
            &mut sc.rate_window,
        );
        if let Some(v) = self.scaling.min_replicas {
            sc.min_replicas = v;
        }
        if let Some(v) = self.scaling.max_replicas {
            sc.max_replicas = v;
        }
        if let Some(v) = self.scaling.query {
            sc.query = v;
        }
        if let Some(v) = self.scaling.cpu_weight {
            sc.cpu_weight = v;
        }
        if let Some(v) = self.scaling.change_weight {
            sc.change_weight = v;
        }
        if let Some(v) = self.prune.max_delete_percent {
            s.prune_max_delete_percent = v;
        }
        if let Some(v) = self.drift {
            s.drift = v;
        }
        if let Some(v) = self.propagation_policy.generate {
            s.generate_propagation_policy = v;
        }
        (s, out)
    }
}
