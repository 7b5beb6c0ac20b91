//! Cluster provisioning against a fake NFVCL ([`fake`]): the planner and
//! the executor with the real HTTP client, and the daemon end to end.
//!
//! Assumed of nfvcl-ng's API (v2), as smo uses it: `GET
//! /nfvcl/v2/api/blue/?blue_type=k8s&detailed=true` lists the K8s
//! blueprints with their `id`, `status`, the creation request as NFVCL keeps
//! it (`create_config`) and their state, whose `vm_workers` lists the worker
//! VMs; blueprint ids are chosen by NFVCL.

pub(crate) mod daemon;
pub(crate) mod fake;
mod setup;

use std::time::Duration;

pub(crate) use fake::FakeNfvcl;
use fake::Request;
use serde_json::{Value, json};
pub(crate) use setup::POLLING;
use setup::{allow, setup, snapshot_held};
use smo::adapters::nfvcl::{Nfvcl, NfvclConfig};
use smo::provision::Action;
use smo::provision::run::{Change, apply};
use smo::store::{ProvisionRecord, ProvisionStatus, Store};

pub(crate) const PASSWORD: &str = "vim-s3cret-do-not-log";

#[tokio::test]
async fn nfvcl_create_waits_while_processing_and_records_the_ready_blueprint() {
    let mut s = setup(3);
    let first = s.pass(Some(2), allow()).await;
    assert!(matches!(first[0].0, Action::Create { .. }));
    assert_eq!(first[0].1.again_after, Some(POLLING.initial));
    let creating = s.record();
    assert_eq!(creating.status, ProvisionStatus::Creating);
    assert_eq!(creating.blueprint_id.as_deref(), Some("bp-1"));

    // Three "processing" answers, polled with a growing delay, then idle.
    let mut delays = Vec::new();
    for _ in 0..3 {
        let waited = s.pass(Some(2), allow()).await;
        assert!(matches!(waited[0].0, Action::Wait { .. }));
        delays.push(waited[0].1.again_after.unwrap());
    }
    assert_eq!(delays, [2, 4, 4].map(Duration::from_millis));
    let last = s.pass(Some(2), allow()).await;
    assert_eq!(last[0].1.again_after, None);
    let ready = s.record();
    assert_eq!(
        (
            ready.status,
            ready.blueprint_id.as_deref(),
            ready.workers,
            ready.polls
        ),
        (ProvisionStatus::Ready, Some("bp-1"), 2, 0)
    );
    assert_eq!(s.settle(Some(2)).await, 0, "nothing left to do");

    let requests = s.fake.requests();
    assert_eq!(
        requests[..2]
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [
            ("POST", "/v1/topology/vim"),
            ("POST", "/nfvcl/v2/api/blue/k8s")
        ]
    );
    let vim: Value = serde_json::from_str(&requests[0].body).unwrap();
    assert_eq!(vim["vim_type"], "openstack");
    assert_eq!(vim["vim_password"], PASSWORD, "without the file's newline");
    assert_eq!(vim["areas"], json!([3]));
    let create: Value = serde_json::from_str(&requests[1].body).unwrap();
    assert_eq!(create["cni"], "flannel");
    assert_eq!(
        create["master_flavors"],
        json!({"memory_mb": 8192, "storage_gb": 40, "vcpu_count": 4})
    );
    assert_eq!(create["areas"][0]["is_master_area"], true);
    assert_eq!(create["areas"][0]["worker_replicas"], 2);
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_scaling_adds_and_removes_workers_in_the_area() {
    let mut s = setup(1);
    s.settle(Some(2)).await;
    let before = s.fake.requests().len();

    s.settle(Some(4)).await;
    let changes = |fake: &FakeNfvcl, from: usize| -> Vec<Request> {
        fake.requests()[from..]
            .iter()
            .filter(|r| r.method != "GET")
            .cloned()
            .collect()
    };
    let up = &changes(&s.fake, before)[0];
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("POST", "/nfvcl/v2/api/blue/k8s/bp-1/add_node")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&up.body).unwrap(),
        json!({"areas": [{
            "area_id": 3, "is_master_area": false, "mgmt_net": "dmz-internal",
            "worker_replicas": 2,
            "worker_flavors": {"memory_mb": 16384, "storage_gb": 80, "vcpu_count": 8}
        }]})
    );
    assert_eq!(
        (s.record().status, s.record().workers),
        (ProvisionStatus::Ready, 4)
    );

    let before = s.fake.requests().len();
    s.settle(Some(2)).await;
    let down = &changes(&s.fake, before)[0];
    assert_eq!(
        (down.method.as_str(), down.path.as_str()),
        ("DELETE", "/nfvcl/v2/api/blue/k8s/bp-1/del_workers")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&down.body).unwrap(),
        json!({"area_id": 3, "count": 2})
    );
    assert_eq!(
        (s.record().status, s.record().workers),
        (ProvisionStatus::Ready, 2)
    );
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_delete_waits_for_the_prune_guard_then_forgets_the_record() {
    let mut s = setup(0);
    s.settle(Some(2)).await;
    let before = s.fake.requests().len();

    let held = s.pass(None, snapshot_held()).await;
    assert!(held.is_empty());
    assert_eq!(s.fake.requests().len(), before, "nothing sent while held");

    s.settle(None).await;
    let delete = &s.fake.requests()[before];
    assert_eq!(
        (delete.method.as_str(), delete.path.as_str()),
        ("DELETE", "/nfvcl/v2/api/blue/bp-1")
    );
    assert!(s.recorded().is_empty());
    assert!(s.fake.state.lock().unwrap().blueprints.is_empty());
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_delete_of_a_blueprint_nfvcl_lost_is_done() {
    let mut s = setup(0);
    s.settle(Some(2)).await;
    s.fake.state.lock().unwrap().blueprints.clear();
    s.settle(None).await;
    assert!(s.recorded().is_empty());
    assert!(s.errors.is_empty(), "{:?}", s.errors);
}

#[tokio::test]
async fn nfvcl_an_existing_vim_is_fine() {
    let mut s = setup(0);
    s.fake.state.lock().unwrap().vims.push("os-lab".into());
    s.settle(Some(2)).await;
    assert_eq!(s.record().status, ProvisionStatus::Ready);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.fake.requests()[0].path, "/v1/topology/vim");
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_server_error_on_create_is_retried_without_a_blueprint_id() {
    let mut s = setup(0);
    s.fail_next_create(500, "database unavailable");
    let first = s.pass(Some(2), allow()).await;
    let outcome = &first[0].1;
    let error = outcome.error.as_ref().unwrap();
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("database unavailable"),
        "{error}"
    );
    assert!(outcome.again_after.is_some());
    let pending = s.record();
    assert_eq!(
        (pending.status, pending.blueprint_id),
        (ProvisionStatus::Pending, None)
    );

    s.settle(Some(2)).await;
    let ready = s.record();
    assert_eq!(ready.status, ProvisionStatus::Ready);
    assert_eq!(
        ready.blueprint_id.as_deref(),
        Some("bp-1"),
        "one blueprint only"
    );
    assert_eq!(ready.detail, None);
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_bad_request_is_terminal_with_nfvcls_message() {
    let mut s = setup(0);
    s.fail_next_create(400, "area 3 is not in the topology");
    let first = s.pass(Some(2), allow()).await;
    let error = first[0].1.error.as_ref().unwrap();
    assert!(!error.is_transient());
    assert_eq!(error.status(), Some(400));
    assert_eq!(first[0].1.again_after, None);
    let failed = s.record();
    assert_eq!(failed.status, ProvisionStatus::Failed);
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap()
            .contains("area 3 is not in the topology")
    );
    // Terminal: not asked again until the provision changes…
    assert!(s.pass(Some(2), allow()).await.is_empty());
    // …and asked again once it does.
    s.settle(Some(3)).await;
    assert_eq!(s.record().status, ProvisionStatus::Ready);
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_error_status_marks_the_cluster_failed_with_the_detail() {
    let mut s = setup(1);
    s.fake.state.lock().unwrap().ends_in_error = Some("flavor m1.huge not found on os-lab".into());
    s.settle(Some(2)).await;
    let failed = s.record();
    assert_eq!(failed.status, ProvisionStatus::Failed);
    assert_eq!(
        failed.detail.as_deref(),
        Some("flavor m1.huge not found on os-lab")
    );
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_unreachable_is_transient_and_says_what_to_check() {
    let mut s = setup(0);
    // A port with nothing listening: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.client = Nfvcl::new(&NfvclConfig {
        url: format!("http://127.0.0.1:{port}"),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let first = s.pass(Some(2), allow()).await;
    let error = first[0].1.error.as_ref().unwrap();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("check nfvcl.url"), "{error}");
    assert_eq!(s.record().status, ProvisionStatus::Pending);
    s.assert_no_leak();
}

#[tokio::test]
async fn nfvcl_missing_password_file_names_the_file_not_the_password() {
    let mut s = setup(0);
    s.spec.vim.password_file = "/nonexistent/vim-password".into();
    let first = s.pass(Some(2), allow()).await;
    let error = first[0].1.error.as_ref().unwrap().to_string();
    assert!(error.contains("/nonexistent/vim-password"), "{error}");
    assert!(error.contains("passwordFile"), "{error}");
    assert!(s.fake.requests().is_empty());
}

#[tokio::test]
async fn nfvcl_a_refused_vim_registration_does_not_echo_the_password() {
    let mut s = setup(0);
    // FastAPI's 422 repeats the offending input, password included.
    s.fake.fail_next(
        "/v1/topology/vim",
        422,
        &format!("vim_url is not a URL; input: {{\"vim_password\": \"{PASSWORD}\"}}"),
    );
    let first = s.pass(Some(2), allow()).await;
    let error = first[0].1.error.as_ref().unwrap().to_string();
    assert!(error.contains("vim_url is not a URL"), "{error}");
    assert!(error.contains("***"), "{error}");
    assert_eq!(s.record().status, ProvisionStatus::Failed);
    s.assert_no_leak();
}

/// Regression: a creation whose answer was lost (NFVCL created the
/// blueprint, the answer came after the client's timeout) was retried as a
/// new creation, and NFVCL made a second cluster.
#[tokio::test]
async fn nfvcl_a_lost_creation_answer_does_not_create_a_second_blueprint() {
    let mut s = setup(1);
    s.client = Nfvcl::new(&NfvclConfig {
        url: s.fake.url.clone(),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    s.fake
        .lose_next_answer("/nfvcl/v2/api/blue/k8s", Duration::from_secs(3));
    let first = s.pass(Some(2), allow()).await;
    let error = first[0].1.error.as_ref().expect("the answer is lost");
    assert!(error.is_transient(), "{error}");
    assert_eq!(
        s.fake.state.lock().unwrap().blueprints.len(),
        1,
        "NFVCL acted"
    );

    s.settle(Some(2)).await;
    let ready = s.record();
    assert_eq!(
        (ready.status, ready.blueprint_id.as_deref(), ready.workers),
        (ProvisionStatus::Ready, Some("bp-1"), 2)
    );
    assert_eq!(
        s.fake.count("POST", "/blue/k8s"),
        1,
        "{:?}",
        s.fake.requests()
    );
    assert_eq!(s.fake.state.lock().unwrap().blueprints.len(), 1);
    s.assert_no_leak();
}

/// Regression: a kill after NFVCL created the blueprint and before smo
/// recorded its id left no record, and the restarted daemon asked NFVCL
/// for a second cluster.
#[tokio::test]
async fn nfvcl_a_kill_before_the_creation_is_recorded_does_not_create_a_second_blueprint() {
    let mut s = setup(1);
    let first = s.pass_killed(Some(2), allow(), true).await;
    assert!(matches!(first[0].0, Action::Create { .. }));
    assert!(first[0].1.error.is_none(), "{:?}", first[0].1.error);
    assert_eq!(s.fake.blueprints().len(), 1, "NFVCL acted");
    // The intent survived the kill.
    let intended = s.record();
    assert_eq!(
        (intended.status, intended.blueprint_id),
        (ProvisionStatus::Pending, None)
    );

    s.settle(Some(2)).await;
    let ready = s.record();
    assert_eq!(
        (ready.status, ready.blueprint_id.as_deref()),
        (ProvisionStatus::Ready, Some("bp-1"))
    );
    assert_eq!(s.fake.creations(), 1, "{:?}", s.fake.requests());
    assert_eq!(s.fake.blueprints().len(), 1);
    s.assert_no_leak();
}

/// Regression: adding workers whose answer was lost was asked again, and
/// NFVCL added the workers twice.
#[tokio::test]
async fn nfvcl_a_lost_add_workers_answer_does_not_add_them_twice() {
    let mut s = setup(1);
    s.settle(Some(2)).await;
    s.client = Nfvcl::new(&NfvclConfig {
        url: s.fake.url.clone(),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    s.fake.lose_next_answer("/add_node", Duration::from_secs(3));
    let first = s.pass(Some(5), allow()).await;
    assert!(matches!(first[0].0, Action::Scale { from: 2, to: 5, .. }));
    assert!(first[0].1.error.as_ref().unwrap().is_transient());
    s.settle(Some(5)).await;
    assert_eq!(
        (s.record().status, s.record().workers),
        (ProvisionStatus::Ready, 5)
    );
    assert_eq!(
        s.fake.count("POST", "/add_node"),
        1,
        "{:?}",
        s.fake.requests()
    );
    assert_eq!(s.fake.state.lock().unwrap().blueprints["bp-1"].workers, 5);
}

/// A blueprint that exists before smo asks is not smo's, however alike: a
/// first creation adopts nothing.
#[tokio::test]
async fn nfvcl_a_first_creation_adopts_no_existing_blueprint() {
    let mut s = setup(0);
    s.settle(Some(2)).await;
    // Forget the record: to smo, bp-1 is now someone else's.
    s.store
        .write(|tx| tx.delete_provision("edge-3", 1))
        .unwrap();
    s.settle(Some(2)).await;
    assert_eq!(s.record().blueprint_id.as_deref(), Some("bp-2"));
}

/// Two unclaimed blueprints made from the same request: smo picks neither
/// and creates no third, and says which ones.
#[tokio::test]
async fn nfvcl_two_candidate_blueprints_are_reported_not_guessed() {
    let mut s = setup(0);
    s.client = Nfvcl::new(&NfvclConfig {
        url: s.fake.url.clone(),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    for _ in 0..2 {
        s.fake
            .lose_next_answer("/nfvcl/v2/api/blue/k8s", Duration::from_secs(3));
        s.store
            .write(|tx| tx.delete_provision("edge-3", 1))
            .unwrap_or_default();
        // A first attempt each time (no record): NFVCL makes one each.
        s.pass(Some(2), allow()).await;
    }
    assert_eq!(s.fake.state.lock().unwrap().blueprints.len(), 2);
    let next = s.pass(Some(2), allow()).await;
    let error = next[0].1.error.as_ref().unwrap().to_string();
    assert!(error.contains("bp-1, bp-2"), "{error}");
    assert_eq!(s.record().blueprint_id, None);
    assert_eq!(s.fake.count("POST", "/blue/k8s"), 2);
}

#[test]
fn nfvcl_records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    let record = ProvisionRecord {
        cluster: "edge-3".into(),
        blueprint_id: Some("bp-1".into()),
        workers: 2,
        status: ProvisionStatus::Ready,
        spec_hash: "h".into(),
        detail: None,
        refused: None,
        polls: 0,
        updated_at: 7,
    };
    apply(&Store::open(&path).unwrap(), &Change::Put(record.clone())).unwrap();
    assert_eq!(Store::open(&path).unwrap().provisions().unwrap(), [record]);
}
