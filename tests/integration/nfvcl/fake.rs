//! The fake NFVCL: tiny_http on a loopback port with an in-memory
//! blueprint store, a configurable number of "processing" answers before a
//! blueprint is idle (or in error), and injected failures (an error
//! answer, or a request carried out whose answer comes too late). It
//! records every request. Shared by the NFVCL tests, the fault matrix and
//! the crash suite.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) body: String,
}

pub(crate) struct Blueprint {
    /// "processing" answers left before the final status.
    pub(crate) busy_left: u32,
    /// The creation request, as NFVCL keeps it.
    pub(crate) create_config: Value,
    pub(crate) workers: u32,
}

struct Fault {
    path_contains: String,
    kind: FaultKind,
    /// Stays until [`FakeNfvcl::clear_faults`]; otherwise used once.
    sticky: bool,
}

#[derive(Clone)]
enum FaultKind {
    /// Answer with this status and detail, doing nothing.
    Answer { status: u16, detail: String },
    /// Carry the request out, then answer only after this delay (past the
    /// client's timeout, the answer is lost; within it, it is late).
    ActThenStall(Duration),
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) blueprints: BTreeMap<String, Blueprint>,
    pub(crate) vims: Vec<String>,
    next_id: u32,
    /// "processing" answers after every creation or scaling.
    busy_for: u32,
    /// Final status: `None` idle, `Some(detail)` error.
    pub(crate) ends_in_error: Option<String>,
    faults: Vec<Fault>,
    requests: Vec<Request>,
}

pub(crate) struct FakeNfvcl {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNfvcl {
    pub(crate) fn start(busy_for: u32) -> FakeNfvcl {
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
    pub(crate) fn fail_next(&self, path_contains: &str, status: u16, detail: &str) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            kind: FaultKind::Answer {
                status,
                detail: detail.into(),
            },
            sticky: false,
        });
    }

    /// The next request whose path contains `path_contains` is carried out
    /// but answered only after `after`.
    pub(crate) fn lose_next_answer(&self, path_contains: &str, after: Duration) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            kind: FaultKind::ActThenStall(after),
            sticky: false,
        });
    }

    /// Every request whose path contains `path_contains` fails, until
    /// [`FakeNfvcl::clear_faults`].
    pub(crate) fn fail_until_cleared(&self, path_contains: &str, status: u16, detail: &str) {
        self.state.lock().unwrap().faults.push(Fault {
            path_contains: path_contains.into(),
            kind: FaultKind::Answer {
                status,
                detail: detail.into(),
            },
            sticky: true,
        });
    }

    pub(crate) fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Creations NFVCL was asked for (carried out or not).
    pub(crate) fn creations(&self) -> usize {
        self.count("POST", "/blue/k8s")
    }

    /// The blueprints NFVCL has: id → workers.
    pub(crate) fn blueprints(&self) -> BTreeMap<String, u32> {
        self.state
            .lock()
            .unwrap()
            .blueprints
            .iter()
            .map(|(id, bp)| (id.clone(), bp.workers))
            .collect()
    }

    pub(crate) fn count(&self, method: &str, path_ends_with: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_ends_with))
            .count()
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
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
        let kind = if state.faults[i].sticky {
            state.faults[i].kind.clone()
        } else {
            state.faults.remove(i).kind
        };
        match kind {
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
