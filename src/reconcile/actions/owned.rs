//! The objects smo owns outside any chart (a generated
//! PropagationPolicy, a PrometheusRule, …): the working set of one
//! reconcile, and pruning what is no longer wanted.

use super::KarmadaOps;
use crate::adapters::karmada::ObjectRef;
use crate::reconcile::error::StepError;
use crate::store::records::OwnedObject;

/// The owned objects of a graph as this reconcile leaves them: `objects`
/// is the inventory to record, `deleted` what was removed from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnedSet {
    pub objects: Vec<OwnedObject>,
    pub deleted: Vec<OwnedObject>,
}

impl OwnedSet {
    pub fn new(objects: Vec<OwnedObject>) -> Self {
        OwnedSet {
            objects,
            deleted: Vec::new(),
        }
    }

    /// Records an object smo applied (once).
    pub fn record(&mut self, o: OwnedObject) {
        if !self.objects.contains(&o) {
            self.objects.push(o);
        }
    }

    /// Deletes every object matching `unwanted` from Karmada and the
    /// inventory; one that cannot be deleted stays recorded (the next
    /// reconcile tries again) and the worst failure is returned.
    pub async fn prune<K: KarmadaOps>(
        &mut self,
        karmada: &K,
        unwanted: impl Fn(&OwnedObject) -> bool,
    ) -> Result<(), StepError> {
        let (drop, keep): (Vec<OwnedObject>, Vec<OwnedObject>) = std::mem::take(&mut self.objects)
            .into_iter()
            .partition(|o| unwanted(o));
        self.objects = keep;
        let mut worst = None;
        for o in drop {
            match karmada.delete(&object_ref(&o)).await {
                Ok(()) => self.deleted.push(o),
                Err(e) => {
                    worst = Some(StepError::worse(worst.take(), e.into()));
                    self.objects.push(o);
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }
}

pub fn object_ref(o: &OwnedObject) -> ObjectRef {
    ObjectRef {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::actions::fakes::FakeKarmada;

    fn policy(name: &str) -> OwnedObject {
        OwnedObject {
            project: "p".into(),
            graph: "g".into(),
            api_version: "policy.karmada.io/v1alpha1".into(),
            kind: "PropagationPolicy".into(),
            namespace: Some("p".into()),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn prune_keeps_what_it_could_not_delete() {
        let k = FakeKarmada::default();
        let mut set = OwnedSet::new(vec![policy("a"), policy("b"), policy("c")]);
        k.fail_next("delete", true);
        let e = set.prune(&k, |o| o.name != "c").await.unwrap_err();
        assert!(e.transient);
        // The first delete failed: a stays recorded, b went.
        assert_eq!(set.deleted, [policy("b")]);
        let names: Vec<&str> = set.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
        set.prune(&k, |o| o.name == "a").await.unwrap();
        assert_eq!(set.objects, [policy("c")]);
    }
}
