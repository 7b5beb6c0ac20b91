//! The daemon provisioning clusters through the fake NFVCL: create,
//! scale, delete, and holds.

use super::{FakeNfvcl, PASSWORD, POLLING};
use smo::provision::HELD_PREFIX;
use smo::store::{ProvisionRecord, ProvisionStatus};
use std::time::Duration;

/// The cluster file of edge-3 with `workers` workers.
pub(crate) fn cluster_file(password_file: &std::path::Path, workers: u32) -> String {
    format!(
        "cluster:\n  name: edge-3\n  provision:\n    nfvcl:\n      vim: {{name: os-lab, url: \"https://keystone.example:5000/v3\", tenant: smo, user: smo, passwordFile: {}}}\n      area: 3\n      mgmtNet: dmz-internal\n      masterFlavor: {{vcpu: 4, memoryMb: 8192, storageGb: 40}}\n      workerFlavor: {{vcpu: 8, memoryMb: 16384, storageGb: 80}}\n      workers: {workers}\n",
        password_file.display()
    )
}

/// The provision record of edge-3 in the daemon's status, when `f` holds.
pub(crate) fn edge3(
    env: &crate::daemon::Env,
    f: impl Fn(&ProvisionRecord) -> bool,
) -> Option<ProvisionRecord> {
    let snap = env.snapshot()?;
    snap.provisions
        .iter()
        .find(|r| r.cluster == "edge-3")
        .filter(|r| f(r))
        .cloned()
}

fn held(r: &ProvisionRecord, reason: &str) -> bool {
    r.detail
        .as_deref()
        .is_some_and(|d| d.starts_with(HELD_PREFIX) && d.contains(reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_creates_scales_and_deletes_a_provisioned_cluster() {
    let fake = FakeNfvcl::start(2);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("vim-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let Some(env) =
        crate::daemon::env(&format!("nfvcl:\n  url: {}\n  timeout: 5s\n", fake.url)).await
    else {
        return;
    };
    let path = env.descriptor("clusters/edge-3.yaml");
    std::fs::write(&path, cluster_file(&password_file, 2)).unwrap();
    let opts = smo::daemon::RunOptions {
        provision_polling: POLLING,
        ..smo::daemon::RunOptions::default()
    };
    let daemon = env.start(opts);

    let ready = crate::daemon::wait_for(Duration::from_secs(60), "edge-3 ready", || {
        edge3(&env, |r| r.status == ProvisionStatus::Ready)
    })
    .await;
    assert_eq!(ready.workers, 2);
    assert_eq!(fake.count("POST", "/blue/k8s"), 1);

    // Four workers: added in place, not a new cluster.
    std::fs::write(&path, cluster_file(&password_file, 4)).unwrap();
    crate::daemon::wait_for(Duration::from_secs(60), "edge-3 with 4 workers", || {
        edge3(&env, |r| {
            r.status == ProvisionStatus::Ready && r.workers == 4
        })
    })
    .await;
    assert_eq!(fake.count("POST", "/add_node"), 1, "{:?}", fake.requests());
    assert_eq!(fake.count("POST", "/blue/k8s"), 1);

    // The file removed: deleting the only provisioned cluster is held by
    // the prune guard, said in the record and an event…
    std::fs::remove_file(&path).unwrap();
    crate::daemon::wait_for(
        Duration::from_secs(60),
        "edge-3's deletion held, with an event and a note",
        || {
            edge3(&env, |r| held(r, "deletion held"))?;
            let snap = env.snapshot()?;
            let event = snap
                .events
                .iter()
                .any(|e| e.kind == "ClusterHeld" && e.message.contains("edge-3"));
            let note = snap
                .notes
                .iter()
                .any(|n| n.contains("edge-3: deletion held"));
            (event && note).then_some(())
        },
    )
    .await;
    assert_eq!(fake.count("DELETE", "/blue/bp-1"), 0);
    // …until the operator's marker allows it (a visible change makes the
    // new snapshot that the marker alone, hidden, does not).
    std::fs::write(env.descriptor(".smo-allow-prune"), "").unwrap();
    std::fs::write(env.descriptor("clusters/NOTES.md"), "edge-3 retired\n").unwrap();
    crate::daemon::wait_for(Duration::from_secs(60), "edge-3 deleted", || {
        let snap = env.snapshot()?;
        snap.provisions.is_empty().then_some(())
    })
    .await;
    assert!(
        fake.requests().iter().any(|r| r.method == "DELETE"
            && r.path.ends_with(&format!(
                "/blue/{}",
                ready.blueprint_id.clone().unwrap_or_default()
            ))),
        "{:?}",
        fake.requests()
    );
    fake.assert_password_only_in_vim_registration();
    daemon.stop().await;
}

/// Regression: a cluster file that failed to load (a typo, an empty file
/// from a non-atomic save) dropped the cluster, and the daemon deleted its
/// NFVCL blueprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_holds_a_provisioned_cluster_whose_file_is_broken() {
    let fake = FakeNfvcl::start(0);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("vim-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let Some(env) =
        crate::daemon::env(&format!("nfvcl:\n  url: {}\n  timeout: 5s\n", fake.url)).await
    else {
        return;
    };
    // The marker is there: only the broken file may hold the cluster.
    std::fs::write(env.descriptor(".smo-allow-prune"), "").unwrap();
    let path = env.descriptor("clusters/edge-3.yaml");
    std::fs::write(&path, cluster_file(&password_file, 2)).unwrap();
    let opts = smo::daemon::RunOptions {
        provision_polling: POLLING,
        ..smo::daemon::RunOptions::default()
    };
    let daemon = env.start(opts);
    crate::daemon::wait_for(Duration::from_secs(60), "edge-3 ready", || {
        edge3(&env, |r| r.status == ProvisionStatus::Ready)
    })
    .await;

    let broken = [
        // A typo'd key, with a worker count that must not be applied.
        cluster_file(&password_file, 5).replace("workers: 5", "wrokers: 5"),
        // Emptied by a non-atomic save.
        String::new(),
        "cluster: [name: edge-3\n".to_owned(),
    ];
    for (n, text) in broken.iter().enumerate() {
        std::fs::write(&path, text).unwrap();
        let r = crate::daemon::wait_for(
            Duration::from_secs(60),
            &format!("edge-3 held, with a note ({n})"),
            || {
                let r = edge3(&env, |r| held(r, "does not load"))?;
                env.snapshot()?
                    .notes
                    .iter()
                    .any(|n| n.contains("edge-3: its cluster file exists but does not load"))
                    .then_some(r)
            },
        )
        .await;
        assert_eq!((r.status, r.workers), (ProvisionStatus::Ready, 2));
        assert!(
            fake.requests().iter().all(|r| r.method != "DELETE"),
            "{:?}",
            fake.requests()
        );
        assert_eq!(fake.count("POST", "/add_node"), 0);
        assert_eq!(fake.state.lock().unwrap().blueprints.len(), 1);
        // The next broken content must show its own hold: clear the mark.
        if n + 1 < broken.len() {
            std::fs::write(&path, cluster_file(&password_file, 2)).unwrap();
            crate::daemon::wait_for(Duration::from_secs(60), "the hold ends", || {
                edge3(&env, |r| r.detail.is_none())
            })
            .await;
        }
    }
    daemon.stop().await;
}
