//! What a successor takes over from its predecessor besides the Lease:
//! the clusters it provisioned through NFVCL, and the placements in force.

use super::*;

/// NFVCL's creation is not idempotent: a leader killed after it asked for
/// a cluster leaves a successor that must continue with that blueprint,
/// not ask for a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_continues_the_clusters_its_predecessor_provisioned() {
    let nfvcl = crate::nfvcl::FakeNfvcl::start(3);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("vim-password");
    std::fs::write(&password_file, "vim-secret\n").unwrap();
    let extra = format!(
        "{}nfvcl:\n  url: {}\n  timeout: 5s\n",
        ha_block("host-a"),
        nfvcl.url
    );
    let Some(env) = env(&extra).await else {
        return;
    };
    std::fs::write(
        env.descriptor("clusters/edge-3.yaml"),
        crate::nfvcl::daemon::cluster_file(&password_file, 2),
    )
    .unwrap();
    let (a, b) = hosts(&env);
    let smo_a = a.spawn();
    wait_for(Duration::from_secs(60), "a leads", || {
        (a.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    let smo_b = b.spawn();
    wait_for(Duration::from_secs(60), "a asked NFVCL for edge-3", || {
        (nfvcl.count("POST", "/blue/k8s") == 1).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(30), "b stands by", || {
        (b.role() == Some(Role::Standby)).then_some(())
    })
    .await;
    signal(&smo_a, "KILL");
    drop(smo_a);
    let ready = wait_for(Duration::from_secs(120), "b finds edge-3 ready", || {
        let snap = smo::store::snapshot::read(&b.var).ok()?;
        snap.provisions
            .into_iter()
            .find(|r| r.cluster == "edge-3" && r.status == smo::store::ProvisionStatus::Ready)
    })
    .await;
    assert_eq!(b.role(), Some(Role::Leader));
    assert_eq!(
        nfvcl.count("POST", "/blue/k8s"),
        1,
        "the successor asked for a second cluster:\n{}",
        b.log()
    );
    assert_eq!(nfvcl.blueprints().len(), 1);
    assert!(ready.blueprint_id.is_some());
    drop(smo_b);
}
/// A successor keeps the placements in force: the flexible graph of the
/// fleet test sits on the edge; then the edge fills up and the core frees,
/// so a fresh placement would move it. The leader keeps it where it runs
/// (its inputs did not change); killed, its successor keeps it there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_keeps_the_placements_in_force() {
    let Some(env) = crate::room::flexible_graph_alone_with(&ha_only("host-a")).await else {
        return;
    };
    let (a, b) = hosts(&env);
    let smo_a = a.spawn();
    wait_for(Duration::from_secs(90), "flex deployed on the edge", || {
        crate::room::placed_on(&env, "flex").filter(|_| crate::room::deployed(&env, "flex"))
    })
    .await;
    assert_eq!(
        crate::room::placed_on(&env, "flex").unwrap(),
        ["brussels-edge"]
    );
    let smo_b = b.spawn();
    wait_for(Duration::from_secs(30), "b stands by", || {
        (b.role() == Some(Role::Standby)).then_some(())
    })
    .await;
    // Placements are shared every round: wait for one past b's start.
    tokio::time::sleep(RETRY * 3).await;
    env.fake
        .set_cluster_resources("brussels-edge", &crate::room::cpus(6, 6))
        .unwrap();
    env.fake
        .set_cluster_resources("athens-core", &crate::room::cpus(6, 0))
        .unwrap();

    signal(&smo_a, "KILL");
    drop(smo_a);
    let placed = wait_for(Duration::from_secs(90), "b placed a-flex", || {
        let snap = smo::store::snapshot::read(&b.var).ok()?;
        let g = snap.graphs.iter().find(|g| g.graph == "a-flex")?;
        (b.role() == Some(Role::Leader) && g.last_applied_revision.is_some())
            .then(|| g.placement.clone())
    })
    .await;
    assert_eq!(placed["flex"], ["brussels-edge"], "{}", b.log());
    assert_eq!(
        crate::room::placed_on(&env, "flex").unwrap(),
        ["brussels-edge"]
    );
    assert!(b.log().contains("adopted the placements"), "{}", b.log());
    drop(smo_b);
}
