//! Cluster provisioning against a fake NFVCL: the planner and the executor
//! with the real HTTP client, the fake on tiny_http with an in-memory
//! blueprint store, a configurable number of "processing" answers before a
//! blueprint is idle (or in error), and injected failures: an error
//! answer, or a request carried out whose answer comes too late (a lost
//! answer).
//!
//! Assumed of nfvcl-ng's API (v2), as smo uses it: `GET
//! /nfvcl/v2/api/blue/?blue_type=k8s&detailed=true` lists the K8s
//! blueprints with their `id`, `status`, the creation request as NFVCL keeps
//! it (`create_config`) and their state, whose `vm_workers` lists the worker
//! VMs; blueprint ids are chosen by NFVCL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use smo::adapters::nfvcl::{Nfvcl, NfvclConfig};
use smo::provision::run::{Change, Outcome, Polling, apply, step};
use smo::provision::{Action, Guards, HELD_PREFIX, plan};
use smo::spec::cluster::{Flavor, NfvclProvision, Vim};
use smo::store::{ProvisionRecord, ProvisionStatus, Store};

const PASSWORD: &str = "vim-s3cret-do-not-log";

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: String,
}

struct Blueprint {
    /// "processing" answers left before the final status.
    busy_left: u32,
    /// The creation request, as NFVCL keeps it.
    create_config: Value,
    workers: u32,
}

struct Fault {
    path_contains: String,
    kind: FaultKind,
}

enum FaultKind {
    /// Answer with this status and detail, doing nothing.
    Answer { status: u16, detail: String },
    /// Carry the request out, then answer only after this delay (past the
    /// client's timeout: the answer is lost).
    ActThenStall(Duration),
}

#[derive(Default)]
struct State {
    blueprints: BTreeMap<String, Blueprint>,
    vims: Vec<String>,
    next_id: u32,
    /// "processing" answers after every creation or scaling.
    busy_for: u32,
    /// Final status: `None` idle, `Some(detail)` error.
    ends_in_error: Option<String>,
    faults: Vec<Fault>,
    requests: Vec<Request>,
}

struct FakeNfvcl {
    url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNfvcl {
    fn start(busy_for: u32) -> FakeNfvcl {
        let state = Arc::new(Mutex::new(State {
            busy_for,
            ..State::default()
        }));
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake"));
        let url = format!(
            "http://{}",
            server.server_addr().to_ip().expect("an IP listener")
        );
        let thread = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let recorded = Request {
                        method: request.method().to_string(),
                        path: request.url().to_owned(),
                        body,
                    };
                    let (status, answer, stall) = handle(&mut state.lock().unwrap(), &recorded);
                    state.lock().unwrap().requests.push(recorded);
                    let response = tiny_http::Response::from_string(answer.to_string())
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        );
                    match stall {
                        // Late, on its own thread: the fake keeps serving.
                        Some(after) => drop(std::thread::spawn(move || {
                            std::thread::sleep(after);
                            let _ = request.respond(response);
                        })),
                        None => drop(request.respond(response)),
                    }
                }
            })
        };
        FakeNfvcl {
            url,
            state,
            server,
            thread: Some(thread),
        }
    }

    /// The next request whose path contains `path_contains` fails.
    fn fail_next(&self, path_contains: &str, status: u16, detail: &str) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            kind: FaultKind::Answer {
                status,
                detail: detail.into(),
            },
        });
    }

    /// The next request whose path contains `path_contains` is carried out
    /// but answered only after `after`.
    fn lose_next_answer(&self, path_contains: &str, after: Duration) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            kind: FaultKind::ActThenStall(after),
        });
    }

    fn count(&self, method: &str, path_ends_with: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_ends_with))
            .count()
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    fn client(&self) -> Nfvcl {
        Nfvcl::new(&NfvclConfig {
            url: self.url.clone(),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    /// The password travels in the VIM registration body and nowhere else.
    fn assert_password_only_in_vim_registration(&self) {
        for r in self.requests() {
            let leaks = r.path.contains(PASSWORD) || r.body.contains(PASSWORD);
            assert_eq!(leaks, r.path == "/v1/topology/vim", "{r:?}");
        }
    }
}

impl Drop for FakeNfvcl {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(state: &mut State, r: &Request) -> (u16, Value, Option<Duration>) {
    let mut stall = None;
    if let Some(i) = state
        .faults
        .iter()
        .position(|f| r.path.contains(&f.path_contains))
    {
        match state.faults.remove(i).kind {
            FaultKind::Answer { status, detail } => {
                return (status, json!({ "detail": detail }), None);
            }
            FaultKind::ActThenStall(after) => stall = Some(after),
        }
    }
    let (status, answer) = act(state, r);
    (status, answer, stall)
}

fn act(state: &mut State, r: &Request) -> (u16, Value) {
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let busy_for = state.busy_for;
    let body = || serde_json::from_str::<Value>(&r.body).unwrap();
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "topology", "vim"]) => {
            let name = body()["name"].as_str().unwrap().to_owned();
            if state.vims.contains(&name) {
                return (
                    409,
                    json!({ "detail": format!("VIM {name} already exists") }),
                );
            }
            state.vims.push(name);
            (201, json!({}))
        }
        ("POST", ["nfvcl", "v2", "api", "blue", "k8s"]) => {
            state.next_id += 1;
            let id = format!("bp-{}", state.next_id);
            let create_config = body();
            let workers = create_config["areas"][0]["worker_replicas"]
                .as_u64()
                .unwrap() as u32;
            state.blueprints.insert(
                id.clone(),
                Blueprint {
                    busy_left: busy_for,
                    create_config,
                    workers,
                },
            );
            (202, json!({ "id": id, "status": "processing" }))
        }
        ("POST", ["nfvcl", "v2", "api", "blue", "k8s", id, "add_node"]) => {
            let add = body()["areas"][0]["worker_replicas"].as_u64().unwrap() as u32;
            match state.blueprints.get_mut(*id) {
                Some(bp) => {
                    bp.busy_left = busy_for;
                    bp.workers += add;
                    (202, json!({ "id": id }))
                }
                None => (404, json!({ "detail": "no such blueprint" })),
            }
        }
        ("DELETE", ["nfvcl", "v2", "api", "blue", "k8s", id, "del_workers"]) => {
            let remove = body()["count"].as_u64().unwrap() as u32;
            match state.blueprints.get_mut(*id) {
                Some(bp) => {
                    bp.busy_left = busy_for;
                    bp.workers = bp.workers.saturating_sub(remove);
                    (202, json!({ "id": id }))
                }
                None => (404, json!({ "detail": "no such blueprint" })),
            }
        }
        ("GET", ["nfvcl", "v2", "api", "blue", ""]) => {
            assert!(query.contains("blue_type=k8s"), "{query}");
            assert!(query.contains("detailed=true"), "{query}");
            let ends_in_error = state.ends_in_error.is_some();
            // A listing reads every blueprint's status: it counts as a poll.
            let list: Vec<Value> = state
                .blueprints
                .iter_mut()
                .map(|(id, bp)| {
                    let status = match (bp.busy_left, ends_in_error) {
                        (1.., _) => "processing",
                        (0, true) => "error",
                        (0, false) => "idle",
                    };
                    bp.busy_left = bp.busy_left.saturating_sub(1);
                    let vm_workers: Vec<Value> = (0..bp.workers)
                        .map(|i| json!({ "name": format!("{id}-worker-{i}") }))
                        .collect();
                    json!({
                        "id": id,
                        "type": "k8s",
                        "status": status,
                        "create_config": bp.create_config,
                        "state": { "vm_workers": vm_workers },
                    })
                })
                .collect();
            (200, Value::Array(list))
        }
        ("GET", ["nfvcl", "v2", "api", "blue", id]) => {
            let ends_in_error = state.ends_in_error.clone();
            match state.blueprints.get_mut(*id) {
                Some(bp) if bp.busy_left > 0 => {
                    bp.busy_left -= 1;
                    (200, json!({ "id": id, "status": "processing" }))
                }
                Some(_) => match ends_in_error {
                    Some(detail) => (
                        200,
                        json!({ "id": id, "status": "error", "detail": detail }),
                    ),
                    None => (200, json!({ "id": id, "status": "idle" })),
                },
                None => (404, json!({ "detail": "no such blueprint" })),
            }
        }
        ("DELETE", ["nfvcl", "v2", "api", "blue", id]) => match state.blueprints.remove(*id) {
            Some(_) => (202, json!({ "id": id })),
            None => (404, json!({ "detail": "no such blueprint" })),
        },
        _ => (404, json!({ "detail": "not found" })),
    }
}

struct Setup {
    fake: FakeNfvcl,
    client: Nfvcl,
    _dir: tempfile::TempDir,
    store: Store,
    spec: NfvclProvision,
    /// Every outcome's error, for the password check.
    errors: Vec<String>,
}

/// The operator's marker file present: nothing but a partial snapshot or
/// a broken file holds a step.
fn allow() -> Guards {
    Guards {
        allow_prune: true,
        max_delete_percent: 50.0,
        ..Guards::default()
    }
}

/// The graph prune guard holds (the snapshot may be partial).
fn snapshot_held() -> Guards {
    Guards {
        snapshot: Some("the snapshot has no graphs".into()),
        ..allow()
    }
}

const POLLING: Polling = Polling {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(4),
};

fn setup(busy_for: u32) -> Setup {
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
    fn recorded(&self) -> BTreeMap<String, ProvisionRecord> {
        self.store
            .provisions()
            .unwrap()
            .into_iter()
            .map(|r| (r.cluster.clone(), r))
            .collect()
    }

    fn desired(&self, workers: Option<u32>) -> BTreeMap<String, NfvclProvision> {
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

    /// One pass: plan, run every action, commit the changes.
    async fn pass(&mut self, workers: Option<u32>, guards: Guards) -> Vec<(Action, Outcome)> {
        let desired = self.desired(workers);
        let recorded = self.recorded();
        let plan = plan(&desired, &recorded, &guards);
        let mut out = Vec::new();
        for action in plan.actions {
            let outcome = step(&self.client, &action, &desired, &recorded, &POLLING, 1).await;
            if let Some(change) = &outcome.change {
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
    async fn settle(&mut self, workers: Option<u32>) -> usize {
        for n in 0..20 {
            if self.pass(workers, allow()).await.is_empty() {
                return n;
            }
        }
        panic!("provisioning did not settle: {:?}", self.recorded());
    }

    fn record(&self) -> ProvisionRecord {
        self.recorded()
            .remove("edge-3")
            .expect("a record of edge-3")
    }

    /// The password is in no error, no record and no request but the VIM
    /// registration.
    fn assert_no_leak(&self) {
        self.fake.assert_password_only_in_vim_registration();
        for e in &self.errors {
            assert!(!e.contains(PASSWORD), "{e}");
        }
        let records = serde_json::to_string(&self.store.provisions().unwrap()).unwrap();
        assert!(!records.contains(PASSWORD));
    }
}

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
    s.store.write(|tx| tx.delete_provision("edge-3")).unwrap();
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
            .write(|tx| tx.delete_provision("edge-3"))
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

impl Setup {
    fn fail_next_create(&self, status: u16, detail: &str) {
        self.fake
            .fail_next("/nfvcl/v2/api/blue/k8s", status, detail);
    }
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

/// The cluster file of edge-3 with `workers` workers.
fn cluster_file(password_file: &std::path::Path, workers: u32) -> String {
    format!(
        "cluster:\n  name: edge-3\n  provision:\n    nfvcl:\n      vim: {{name: os-lab, url: \"https://keystone.example:5000/v3\", tenant: smo, user: smo, passwordFile: {}}}\n      area: 3\n      mgmtNet: dmz-internal\n      masterFlavor: {{vcpu: 4, memoryMb: 8192, storageGb: 40}}\n      workerFlavor: {{vcpu: 8, memoryMb: 16384, storageGb: 80}}\n      workers: {workers}\n",
        password_file.display()
    )
}

/// The provision record of edge-3 in the daemon's status, when `f` holds.
fn edge3(
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
