//! The harness of the planner-and-executor tests: a fake NFVCL, the real
//! client, a store, and passes run as the daemon runs them.

use super::{FakeNfvcl, PASSWORD};
use smo::adapters::nfvcl::{Nfvcl, NfvclConfig};
use smo::provision::run::{Outcome, Polling, apply, intent, step};
use smo::provision::{Action, Guards, plan};
use smo::spec::cluster::{Flavor, NfvclProvision, Vim};
use smo::store::{ProvisionRecord, Store};
use std::collections::BTreeMap;
use std::time::Duration;

impl FakeNfvcl {
    pub(super) fn client(&self) -> Nfvcl {
        Nfvcl::new(&NfvclConfig {
            url: self.url.clone(),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    /// The password travels in the VIM registration body and nowhere else.
    pub(crate) fn assert_password_only_in_vim_registration(&self) {
        for r in self.requests() {
            let leaks = r.path.contains(PASSWORD) || r.body.contains(PASSWORD);
            assert_eq!(leaks, r.path == "/v1/topology/vim", "{r:?}");
        }
    }
}

pub(super) struct Setup {
    pub(super) fake: FakeNfvcl,
    pub(super) client: Nfvcl,
    _dir: tempfile::TempDir,
    pub(super) store: Store,
    pub(super) spec: NfvclProvision,
    /// Every outcome's error, for the password check.
    pub(super) errors: Vec<String>,
}

/// The operator's marker file present: nothing but a partial snapshot or
/// a broken file holds a step.
pub(super) fn allow() -> Guards {
    Guards {
        allow_prune: true,
        max_delete_percent: 50.0,
        ..Guards::default()
    }
}

/// The graph prune guard holds (the snapshot may be partial).
pub(super) fn snapshot_held() -> Guards {
    Guards {
        snapshot: Some("the snapshot has no graphs".into()),
        ..allow()
    }
}

pub(crate) const POLLING: Polling = Polling {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(4),
};

pub(super) fn setup(busy_for: u32) -> Setup {
    let fake = FakeNfvcl::start(busy_for);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("vim-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let store = Store::open(Store::path_in(dir.path())).unwrap();
    let spec = NfvclProvision {
        vim: Vim {
            name: "os-lab".into(),
            url: "https://keystone.example:5000/v3".into(),
            tenant: "smo".into(),
            user: "smo".into(),
            password_file: password_file.display().to_string(),
        },
        area: 3,
        mgmt_net: "dmz-internal".into(),
        cni: "flannel".into(),
        master_flavor: Flavor {
            vcpu: 4,
            memory_mb: 8192,
            storage_gb: 40,
        },
        worker_flavor: Flavor {
            vcpu: 8,
            memory_mb: 16384,
            storage_gb: 80,
        },
        workers: 2,
    };
    Setup {
        client: fake.client(),
        fake,
        _dir: dir,
        store,
        spec,
        errors: Vec::new(),
    }
}

impl Setup {
    pub(super) fn recorded(&self) -> BTreeMap<String, ProvisionRecord> {
        self.store
            .provisions()
            .unwrap()
            .into_iter()
            .map(|r| (r.cluster.clone(), r))
            .collect()
    }

    pub(super) fn desired(&self, workers: Option<u32>) -> BTreeMap<String, NfvclProvision> {
        workers
            .map(|w| {
                (
                    "edge-3".to_owned(),
                    NfvclProvision {
                        workers: w,
                        ..self.spec.clone()
                    },
                )
            })
            .into_iter()
            .collect()
    }

    /// One pass, as the daemon's: plan, commit each action's intent, run
    /// it, commit its change.
    pub(super) async fn pass(
        &mut self,
        workers: Option<u32>,
        guards: Guards,
    ) -> Vec<(Action, Outcome)> {
        self.pass_killed(workers, guards, false).await
    }

    /// [`Setup::pass`]; with `killed`, the process dies after each step,
    /// before its change is committed.
    pub(super) async fn pass_killed(
        &mut self,
        workers: Option<u32>,
        guards: Guards,
        killed: bool,
    ) -> Vec<(Action, Outcome)> {
        let desired = self.desired(workers);
        let recorded = self.recorded();
        let plan = plan(&desired, &recorded, &guards);
        let mut out = Vec::new();
        for action in plan.actions {
            if let Some(change) = intent(&action, &desired, &recorded, 1) {
                apply(&self.store, &change).unwrap();
            }
            let outcome = step(&self.client, &action, &desired, &recorded, &POLLING, 1).await;
            if let Some(change) = outcome.change.as_ref().filter(|_| !killed) {
                apply(&self.store, change).unwrap();
            }
            if let Some(e) = &outcome.error {
                self.errors.push(format!("{e} {e:?}"));
            }
            out.push((action, outcome));
        }
        out
    }

    /// Passes until nothing is left to do (at most 20).
    pub(super) async fn settle(&mut self, workers: Option<u32>) -> usize {
        for n in 0..20 {
            if self.pass(workers, allow()).await.is_empty() {
                return n;
            }
        }
        panic!("provisioning did not settle: {:?}", self.recorded());
    }

    pub(super) fn record(&self) -> ProvisionRecord {
        self.recorded()
            .remove("edge-3")
            .expect("a record of edge-3")
    }

    /// The password is in no error, no record and no request but the VIM
    /// registration.
    pub(super) fn assert_no_leak(&self) {
        self.fake.assert_password_only_in_vim_registration();
        for e in &self.errors {
            assert!(!e.contains(PASSWORD), "{e}");
        }
        let records = serde_json::to_string(&self.store.provisions().unwrap()).unwrap();
        assert!(!records.contains(PASSWORD));
    }
}

impl Setup {
    pub(super) fn fail_next_create(&self, status: u16, detail: &str) {
        self.fake
            .fail_next("/nfvcl/v2/api/blue/k8s", status, detail);
    }
}
