//! Install or upgrade a service's release (also what corrects drift):
//! unlock a stuck release, `helm upgrade --install`, record the revision,
//! input hash and manifest, re-assert the scaler's replicas, and apply the
//! generated PropagationPolicy when the chart carries none (or remove ours
//! when it now does).

use super::journal::{IntentLog, Journal};
use super::owned::{OwnedSet, object_ref};
use super::{HelmOps, KarmadaOps, unlock};
use crate::adapters::karmada::Owner;
use crate::adapters::manifest;
use crate::reconcile::error::{Reason, StepError};
use crate::reconcile::propagation;
use crate::release::ReleaseInput;
use crate::store::records::{IntentEffect, OwnedObject, ServicePhase, ServiceRecord};

/// Records the manifest helm applied (as `text`) and watches what it
/// created; returns its objects. A manifest that cannot be read is kept
/// as it is, and the step fails.
pub(super) async fn record_manifest<K: KarmadaOps>(
    karmada: &K,
    release: &str,
    text: String,
    rec: &mut ServiceRecord,
) -> Result<Vec<serde_json::Value>, StepError> {
    let objects = match manifest::parse(&text) {
        Ok(o) => o,
        Err(e) => {
            rec.manifest = Some(text);
            return Err(StepError::terminal(
                Reason::Manifest,
                format!("the release manifest of {release} cannot be read: {e}"),
            ));
        }
    };
    // Recorded in smo's canonical form (the same objects): every resync
    // reads it back for the drift check.
    rec.manifest = Some(manifest::canonical(&objects));
    // What the release created is watched from now on: an out-of-band
    // change to it enqueues the graph at once.
    karmada.watch_kinds(&objects).await;
    Ok(objects)
}

/// What an install needs besides the release and its record.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub owner: &'a Owner,
    /// Generate a PropagationPolicy when the chart has none.
    pub generate_policy: bool,
    /// The scaler's replicas, re-asserted after the upgrade.
    pub replicas: Option<u32>,
}

pub async fn run<H: HelmOps, K: KarmadaOps, L: IntentLog>(
    helm: &H,
    karmada: &K,
    journal: &mut Journal<'_, L>,
    input: &ReleaseInput,
    rec: &mut ServiceRecord,
    cx: Context<'_>,
    owned: &mut OwnedSet,
) -> Result<(), StepError> {
    unlock::run(helm, karmada, &input.release, &input.namespace).await?;
    journal
        .begin(IntentEffect::Release {
            service: rec.service.clone(),
            release: input.release.clone(),
            namespace: input.namespace.clone(),
        })
        .await?;
    let mut labels = cx.owner.labels();
    labels.insert(
        crate::adapters::karmada::INPUTS_LABEL.to_owned(),
        crate::adapters::karmada::inputs_label(&input.hash),
    );
    let mut spec = input.spec();
    spec.labels = &labels;
    let status = helm.upgrade_install(&spec).await?;
    tracing::info!(release = %input.release, revision = status.revision, "release applied");
    let text = helm.get_manifest(&input.release, &input.namespace).await?;
    rec.release_revision = Some(status.revision);
    rec.input_hash = Some(input.hash.clone());
    rec.drifted.clear();
    rec.phase = ServicePhase::Deployed;

    let objects = record_manifest(karmada, &input.release, text, rec).await?;
    // The scaler's replicas win over the chart's: re-asserted after
    // every upgrade, through the scale subresource and its own field
    // manager, so helm never silently reverts them.
    if let Some(n) = cx.replicas {
        for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
            if let Some(name) = o["metadata"]["name"].as_str() {
                karmada
                    .scale(&input.namespace, "Deployment", name, n)
                    .await?;
            }
        }
    }
    let has_policy = objects.iter().any(|o| {
        matches!(
            o["kind"].as_str(),
            Some("PropagationPolicy" | "ClusterPropagationPolicy")
        )
    });
    let ours = |o: &OwnedObject| o.kind == "PropagationPolicy" && o.name == input.release;
    // A service static placement leaves to its chart has no clusters of
    // ours to send it to: the chart decides, with or without a policy.
    if cx.generate_policy && !has_policy && !rec.clusters.is_empty() {
        let policy = propagation::policy(&input.release, &input.namespace, &rec.clusters, &objects);
        let object = OwnedObject {
            project: cx.owner.project.clone(),
            graph: cx.owner.graph.clone(),
            api_version: propagation::API_VERSION.into(),
            kind: "PropagationPolicy".into(),
            namespace: Some(input.namespace.clone()),
            name: input.release.clone(),
        };
        journal
            .begin(IntentEffect::Object {
                object: object.clone(),
            })
            .await?;
        karmada.apply(&policy, cx.owner).await?;
        owned.record(object);
    } else if let Some(pos) = owned.objects.iter().position(ours) {
        // The chart brings its own policy now: ours must go.
        let o = owned.objects.remove(pos);
        if let Err(e) = karmada.delete(&object_ref(&o)).await {
            owned.objects.push(o);
            return Err(e.into());
        }
        owned.deleted.push(o);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::reconcile::actions::fakes::{FakeHelm, FakeKarmada, FakeLog};
    use crate::release::chart::ChartRef;

    pub(crate) fn record() -> ServiceRecord {
        let mut r = ServiceRecord::new("p", "g", "web", 0);
        r.clusters = vec!["c1".into()];
        r
    }

    pub(crate) fn input() -> ReleaseInput {
        ReleaseInput {
            service: "web".into(),
            release: "web".into(),
            namespace: "p".into(),
            chart: ChartRef {
                chart: "oci://r/c".into(),
                version: None,
                digest: None,
            },
            values: serde_json::json!({}),
            hash: "h1".into(),
        }
    }

    const MANIFEST: &str = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n";

    fn owner() -> Owner {
        Owner {
            project: "p".into(),
            graph: "g".into(),
        }
    }

    /// One service's install against in-memory helm, Karmada and intent log.
    struct Rig {
        helm: FakeHelm,
        k: FakeKarmada,
        log: FakeLog,
        rec: ServiceRecord,
        owned: OwnedSet,
        owner: Owner,
    }

    impl Rig {
        fn new() -> Self {
            Rig {
                helm: FakeHelm::default(),
                k: FakeKarmada::default(),
                log: FakeLog::default(),
                rec: record(),
                owned: OwnedSet::default(),
                owner: owner(),
            }
        }

        async fn install(
            &mut self,
            generate_policy: bool,
            replicas: Option<u32>,
        ) -> Result<(), StepError> {
            let cx = Context {
                owner: &self.owner,
                generate_policy,
                replicas,
            };
            let mut journal = Journal::new(&self.log, "p", "g", 1);
            run(
                &self.helm,
                &self.k,
                &mut journal,
                &input(),
                &mut self.rec,
                cx,
                &mut self.owned,
            )
            .await
        }
    }

    #[tokio::test]
    async fn install_records_the_release_and_applies_a_policy_once() {
        let mut r = Rig::new();
        *r.helm.manifest.lock().unwrap() = MANIFEST.into();
        r.install(true, Some(3)).await.unwrap();
        assert_eq!(r.rec.release_revision, Some(1));
        assert_eq!(r.rec.input_hash.as_deref(), Some("h1"));
        assert_eq!(r.rec.phase, ServicePhase::Deployed);
        // Recorded in canonical form: the same objects as helm's text.
        let recorded = r.rec.manifest.as_deref().unwrap();
        assert!(manifest::is_canonical(recorded), "{recorded}");
        assert_eq!(
            manifest::parse(recorded).unwrap(),
            manifest::parse(MANIFEST).unwrap()
        );
        assert_eq!(r.owned.objects.len(), 1);
        assert!(
            r.k.calls().contains(&"scale Deployment web 3".to_owned()),
            "{:?}",
            r.k.calls()
        );
        r.install(true, Some(3)).await.unwrap();
        assert_eq!(
            (r.rec.release_revision, r.owned.objects.len()),
            (Some(2), 1)
        );
        // The release and the policy were each announced before they
        // were made.
        let kinds: Vec<String> = r.log.intents().iter().map(|i| i.key()).collect();
        assert_eq!(kinds[0], "p/g/release/web");
        assert!(kinds[1].starts_with("p/g/object/"), "{kinds:?}");
    }

    #[tokio::test]
    async fn no_release_is_touched_when_the_intent_cannot_be_committed() {
        let mut r = Rig::new();
        r.log.fail_next();
        let e = r.install(true, None).await.unwrap_err();
        assert!(e.transient, "{e:?}");
        assert!(
            !r.helm.calls().iter().any(|c| c.starts_with("upgrade")),
            "{:?}",
            r.helm.calls()
        );
    }

    #[tokio::test]
    async fn a_failed_upgrade_leaves_the_record_as_it_was() {
        let mut r = Rig::new();
        r.helm.fail_next("upgrade", true);
        let e = r.install(true, None).await.unwrap_err();
        assert!(e.transient && e.reason == Reason::Helm, "{e:?}");
        assert_eq!(
            (r.rec.release_revision, r.rec.input_hash.clone()),
            (None, None)
        );
        // The intent was committed before helm ran: a kill here would
        // leave it for the next start to resolve.
        assert_eq!(r.log.intents().len(), 1);
        r.helm.fail_next("upgrade", false);
        let e = r.install(true, None).await.unwrap_err();
        assert!(!e.transient);
        assert!(r.owned.objects.is_empty());
    }

    #[tokio::test]
    async fn a_stuck_release_is_unlocked_before_the_upgrade() {
        let mut r = Rig::new();
        r.helm.set_release(
            "web",
            "p",
            2,
            "pending-upgrade",
            &[(1, "deployed"), (2, "pending-upgrade")],
        );
        r.k.set_release_labels("web", "p", 2, "pending-upgrade");
        r.install(false, None).await.unwrap();
        let calls = r.helm.calls();
        let rollback = calls
            .iter()
            .position(|c| c == "rollback web 1")
            .expect("rolled back");
        let upgrade = calls.iter().position(|c| c == "upgrade web").unwrap();
        assert!(rollback < upgrade, "{calls:?}");
    }
}
