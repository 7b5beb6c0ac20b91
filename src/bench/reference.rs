//! The best known answers to the placement benchmark instances
//! (`benches/placement-reference.json`), so that `smo bench placement`
//! can print how far its answer is from them (`ref_gap=`).
//!
//! Each entry names the instance (size, seed, model) and carries a
//! fingerprint of it (SHA-256 of the problem and weights as JSON): when the
//! generator or the weights change, the entry no longer matches and the
//! bench prints `ref_gap=stale` instead of comparing with another instance.

use serde::Deserialize;

use crate::placement::{PlacementOptions, PlacementProblem};

/// The committed reference table, built into the binary.
const TABLE: &str = include_str!("../../benches/placement-reference.json");

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Entry {
    pub services: usize,
    pub clusters: usize,
    pub seed: u64,
    pub model: String,
    pub fingerprint: String,
    /// Best objective known (smo's objective, tie-break costs removed).
    pub objective: f64,
    /// Best proven lower bound known.
    pub bound: Option<f64>,
    /// How the objective and bound were obtained.
    pub source: String,
}

#[derive(Debug, Deserialize)]
struct Table {
    instances: Vec<Entry>,
}

/// Fingerprint of an instance as the model sees it.
pub fn fingerprint(p: &PlacementProblem, opts: &PlacementOptions) -> String {
    let v = serde_json::json!({ "problem": p, "weights": opts.weights,
        "low_latency_ms": opts.low_latency_ms });
    crate::digest::json_sha256(&v)
}

fn entries() -> Vec<Entry> {
    // The table is checked by a unit test; a broken one only loses ref_gap.
    serde_json::from_str::<Table>(TABLE).map_or_else(|_| Vec::new(), |t| t.instances)
}

/// What to print after `ref_gap=`: the relative distance of `objective`
/// to the best known one (negative: smo found a better answer, update the
/// table), `stale` when the instance changed, `-` when none is known.
pub fn ref_gap(n: usize, m: usize, seed: u64, model: &str, fp: &str, objective: f64) -> String {
    let found = entries()
        .into_iter()
        .find(|e| e.services == n && e.clusters == m && e.seed == seed && e.model == model);
    match found {
        None => "-".into(),
        Some(e) if e.fingerprint != fp => "stale".into(),
        Some(e) => format!(
            "{:.4}",
            (objective - e.objective) / e.objective.abs().max(1e-9)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::placement_instance;

    #[test]
    fn the_committed_table_parses_and_matches_todays_generator() {
        let t: Table = serde_json::from_str(TABLE).expect("benches/placement-reference.json");
        assert!(!t.instances.is_empty());
        for e in &t.instances {
            let mut opts = PlacementOptions::default();
            let mut p = placement_instance(e.services, e.clusters, e.seed);
            if e.model == "smo" {
                p = crate::bench::smo_model(p, &mut opts);
            }
            assert_eq!(
                fingerprint(&p, &opts),
                e.fingerprint,
                "{}×{} seed {}: the instance changed; re-run benches/placement-reference.py",
                e.services,
                e.clusters,
                e.seed
            );
            if let Some(b) = e.bound {
                assert!(b <= e.objective + 1e-6 * e.objective.abs().max(1.0));
            }
        }
    }

    #[test]
    fn ref_gap_compares_only_the_same_instance() {
        let e = &entries()[0];
        let fp = e.fingerprint.clone();
        let g = ref_gap(
            e.services,
            e.clusters,
            e.seed,
            &e.model,
            &fp,
            e.objective * 1.02,
        );
        assert_eq!(g, "0.0200");
        assert_eq!(
            ref_gap(e.services, e.clusters, e.seed, &e.model, "other", 1.0),
            "stale"
        );
        assert_eq!(ref_gap(7, 3, 99, "full", &fp, 1.0), "-");
    }
}
