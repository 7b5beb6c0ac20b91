//! smo's Grafana sinks against a fake Grafana and a temporary directory.
//!
//! The fake is a tiny_http server on a loopback port with an in-memory
//! store: `GET/POST /api/folders`, `POST /api/dashboards/db` (matched by
//! uid, version bumped on every save) and `DELETE /api/dashboards/uid/UID`.
//! It records every request (method, path, Authorization header, JSON
//! body) and answers 401 to any other token than the one it was given.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use smo::adapters::grafana::{DEFAULT_TIMEOUT, DirSink, GrafanaClient, GrafanaError, Token};
use smo::daemon::context;
use smo::dashboards::{self, DashboardConfig};
use smo::spec::config::Grafana;

pub(crate) const TOKEN: &str = "glsa_fake-grafana-token-7d1e";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Store {
    requests: Vec<Recorded>,
    /// uid → title.
    folders: BTreeMap<String, String>,
    /// uid → (folder uid, dashboard with its version).
    dashboards: BTreeMap<String, (String, Value)>,
}

pub(crate) struct FakeGrafana {
    pub(crate) url: String,
    store: Arc<Mutex<Store>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeGrafana {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl FakeGrafana {
    pub(crate) fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let store = Arc::new(Mutex::new(Store::default()));
        let thread = {
            let (server, store) = (server.clone(), store.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut text = String::new();
                    let _ = request.as_reader().read_to_string(&mut text);
                    let recorded = Recorded {
                        method: request.method().as_str().to_owned(),
                        path: request.url().to_owned(),
                        authorization: request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv("Authorization"))
                            .map(|h| h.value.as_str().to_owned()),
                        body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    };
                    let (status, answer) = {
                        let mut store = store.lock().expect("store");
                        store.requests.push(recorded.clone());
                        handle(&mut store, &recorded)
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                        .expect("header");
                    let response = tiny_http::Response::from_string(answer.to_string())
                        .with_status_code(status)
                        .with_header(header);
                    let _ = request.respond(response);
                }
            })
        };
        FakeGrafana {
            url: format!("http://127.0.0.1:{port}"),
            store,
            server,
            thread: Some(thread),
        }
    }

    fn client(&self, token: &str) -> GrafanaClient {
        GrafanaClient::new(&self.url, Token::new(token), DEFAULT_TIMEOUT).expect("client")
    }

    fn requests(&self) -> Vec<Recorded> {
        self.store.lock().expect("store").requests.clone()
    }

    pub(crate) fn dashboards(&self) -> BTreeMap<String, (String, Value)> {
        self.store.lock().expect("store").dashboards.clone()
    }
}

/// Grafana's answers, as far as smo reads them.
fn handle(store: &mut Store, r: &Recorded) -> (u16, Value) {
    if r.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return (401, json!({"message": "invalid API key"}));
    }
    let path = r.path.split('?').next().unwrap_or_default();
    match (r.method.as_str(), path) {
        ("GET", "/api/folders") => (
            200,
            store
                .folders
                .iter()
                .map(|(uid, title)| json!({"id": 1, "uid": uid, "title": title}))
                .collect(),
        ),
        ("POST", "/api/folders") => {
            let uid = r.body["uid"].as_str().unwrap_or_default().to_owned();
            let title = r.body["title"].as_str().unwrap_or_default().to_owned();
            if store.folders.contains_key(&uid) {
                return (409, json!({"message": "folder exists"}));
            }
            store.folders.insert(uid.clone(), title.clone());
            (200, json!({"id": 1, "uid": uid, "title": title}))
        }
        ("POST", "/api/dashboards/db") => {
            let mut dashboard = r.body["dashboard"].clone();
            let folder = r.body["folderUid"].as_str().unwrap_or_default().to_owned();
            let Some(uid) = dashboard["uid"].as_str().map(str::to_owned) else {
                return (400, json!({"message": "uid missing"}));
            };
            if !store.folders.contains_key(&folder) {
                return (400, json!({"message": "folder not found"}));
            }
            let version = match store.dashboards.get(&uid) {
                Some(_) if r.body["overwrite"] != json!(true) => {
                    return (412, json!({"message": "version-mismatch"}));
                }
                Some((_, old)) => old["version"].as_u64().unwrap_or(0) + 1,
                None => 1,
            };
            dashboard["version"] = json!(version);
            store.dashboards.insert(uid.clone(), (folder, dashboard));
            (
                200,
                json!({"id": 1, "uid": uid, "url": format!("/d/{uid}/slug"), "status": "success", "version": version}),
            )
        }
        ("DELETE", p) if p.starts_with("/api/dashboards/uid/") => {
            let uid = &p["/api/dashboards/uid/".len()..];
            match store.dashboards.remove(uid) {
                Some(_) => (200, json!({"title": "x", "message": "deleted"})),
                None => (404, json!({"message": "Dashboard not found"})),
            }
        }
        _ => (404, json!({"message": "not found"})),
    }
}

fn graph_dashboard() -> Value {
    let services = vec!["front".to_owned(), "db".to_owned()];
    dashboards::graph_dashboard("shop", "web", &services, &DashboardConfig::default())
}

#[tokio::test]
async fn publish_creates_the_folder_and_the_dashboard_with_a_bearer_token() {
    let grafana = FakeGrafana::start();
    let client = grafana.client(TOKEN);
    let cfg = DashboardConfig::default();
    let folder = client
        .ensure_folder(
            &dashboards::folder_uid("shop"),
            &dashboards::folder_title("shop", &cfg),
        )
        .await
        .expect("folder");
    assert_eq!(folder, "smo-shop");
    let dashboard = graph_dashboard();
    let url = client.publish(&dashboard, &folder).await.expect("publish");
    let uid = dashboards::graph_uid("shop", "web");
    assert_eq!(url, format!("{}/d/{uid}/slug", grafana.url));

    let requests = grafana.requests();
    let shape: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.split('?').next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("GET", "/api/folders"),
            ("POST", "/api/folders"),
            ("POST", "/api/dashboards/db")
        ]
    );
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert_eq!(
        requests[1].body,
        json!({"uid": "smo-shop", "title": "smo shop"})
    );
    let body = &requests[2].body;
    assert_eq!(body["overwrite"], true);
    assert_eq!(body["folderUid"], "smo-shop");
    assert_eq!(body["dashboard"]["uid"], uid);
    assert_eq!(body["dashboard"]["title"], "shop / web");
    let panels = body["dashboard"]["panels"].as_array().expect("panels");
    assert_eq!(panels.len(), 4);
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "prometheus");
        assert!(
            p["targets"][0]["expr"]
                .as_str()
                .expect("expr")
                .contains("$service")
        );
    }

    // An existing folder is found, not created again.
    let again = client
        .ensure_folder("smo-shop", "smo shop")
        .await
        .expect("folder");
    assert_eq!(again, "smo-shop");
    assert_eq!(grafana.requests().len(), 4);
}

#[tokio::test]
async fn publishing_the_same_dashboard_twice_keeps_one_and_bumps_its_version() {
    let grafana = FakeGrafana::start();
    let client = grafana.client(TOKEN);
    let folder = client
        .ensure_folder("smo-shop", "smo shop")
        .await
        .expect("folder");
    let first = client
        .publish(&graph_dashboard(), &folder)
        .await
        .expect("publish");
    let second = client
        .publish(&graph_dashboard(), &folder)
        .await
        .expect("publish");
    assert_eq!(first, second);
    let stored = grafana.dashboards();
    assert_eq!(stored.len(), 1);
    let (in_folder, dashboard) = &stored[&dashboards::graph_uid("shop", "web")];
    assert_eq!(in_folder, "smo-shop");
    assert_eq!(dashboard["version"], 2);
}

#[tokio::test]
async fn delete_removes_the_dashboard_and_a_second_delete_is_fine() {
    let grafana = FakeGrafana::start();
    let client = grafana.client(TOKEN);
    let folder = client
        .ensure_folder("smo-shop", "smo shop")
        .await
        .expect("folder");
    client
        .publish(&graph_dashboard(), &folder)
        .await
        .expect("publish");
    let uid = dashboards::graph_uid("shop", "web");
    assert!(client.delete(&uid).await.expect("delete"));
    assert!(grafana.dashboards().is_empty());
    assert!(!client.delete(&uid).await.expect("second delete"));
    let last = grafana.requests().pop().expect("a request");
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("DELETE", format!("/api/dashboards/uid/{uid}").as_str())
    );
}

#[tokio::test]
async fn a_rejected_token_is_a_terminal_error_naming_the_url_not_the_token() {
    let grafana = FakeGrafana::start();
    let wrong = "glsa_wrong-token-4f0a";
    let client = grafana.client(wrong);
    let error = client
        .publish(&graph_dashboard(), "smo-shop")
        .await
        .expect_err("401");
    assert!(
        matches!(error, GrafanaError::Status { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    let (shown, debug) = (error.to_string(), format!("{error:?}"));
    assert!(shown.contains(&grafana.url), "{shown}");
    assert!(shown.contains("grafana.tokenFile"), "{shown}");
    for text in [&shown, &debug, &format!("{client:?}")] {
        assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_grafana_is_transient() {
    let url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let client = GrafanaClient::new(&url, Token::new(TOKEN), DEFAULT_TIMEOUT).expect("client");
    let error = client.delete("smo-x").await.expect_err("nobody listens");
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains(&url));
}

#[test]
fn the_token_is_read_from_its_file_and_the_client_follows_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("write token");
    let cfg = Grafana {
        url: Some("http://127.0.0.1:3000".into()),
        token_file: Some(file.clone()),
        ..Grafana::default()
    };
    let client = context::grafana_client(&cfg, DEFAULT_TIMEOUT).expect("client");
    assert!(client.is_some());
    assert!(
        context::grafana_client(&Grafana::default(), DEFAULT_TIMEOUT)
            .expect("off")
            .is_none()
    );
    let without_token = Grafana {
        token_file: None,
        ..cfg
    };
    assert!(matches!(
        context::grafana_client(&without_token, DEFAULT_TIMEOUT),
        Err(GrafanaError::MissingToken)
    ));
    std::fs::write(&file, "\n").expect("write token");
    assert!(matches!(
        Token::read(&file),
        Err(GrafanaError::EmptyToken { .. })
    ));
}

#[test]
fn the_dir_sink_writes_valid_json_and_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = DirSink::new(dir.path());
    let dashboard = graph_dashboard();
    let uid = dashboards::graph_uid("shop", "web");
    let path = sink.write("shop", &dashboard).expect("write");
    assert_eq!(path, dir.path().join("shop").join(format!("{uid}.json")));
    let read: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    assert_eq!(read, dashboard);
    // Rewriting replaces the file; no temporary file is left behind.
    sink.write("shop", &dashboard).expect("rewrite");
    let entries = std::fs::read_dir(dir.path().join("shop"))
        .expect("list")
        .count();
    assert_eq!(entries, 1);
    assert!(sink.remove("shop", &uid).expect("remove"));
    assert!(!path.exists());
    assert!(!sink.remove("shop", &uid).expect("second remove"));
}

#[test]
fn the_grafana_configuration_has_defaults_and_takes_custom_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "source:\n  dir: state\ngrafana:\n  dashboardsDir: dashboards\n  datasource: prom-eu\n  queries:\n    cpu: 'my_cpu{ns=\"{namespace}\"}'\n",
    )
    .expect("write config");
    let cfg = smo::spec::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let grafana = cfg.grafana;
    assert_eq!(grafana.dashboards_dir, Some(dir.path().join("dashboards")));
    assert_eq!(grafana.datasource, "prom-eu");
    assert_eq!(grafana.window, "$__rate_interval");
    assert_eq!(grafana.queries.cpu, "my_cpu{ns=\"{namespace}\"}");
    let defaults = Grafana::default().queries;
    assert_eq!(grafana.queries.request_rate, defaults.request_rate);
    let d =
        dashboards::service_dashboard("shop", "web", "front", &context::dashboard_config(&grafana));
    assert_eq!(d["panels"][1]["targets"][0]["expr"], "my_cpu{ns=\"shop\"}");

    std::fs::write(&path, "source:\n  dir: state\ngrafana:\n  datasource: ''\n")
        .expect("write config");
    let smo::spec::config::ConfigError::Invalid { findings, .. } =
        smo::spec::config::load(&path).expect_err("empty datasource");
    assert_eq!(findings[0].pointer, "/grafana/datasource");
}

/// A daemon environment publishing to a fake Grafana (with its token
/// file, kept alive by the returned directory); `None` without helm.
async fn env_with_grafana(
    extra: &str,
) -> Option<(FakeGrafana, tempfile::TempDir, crate::daemon::Env)> {
    let grafana = FakeGrafana::start();
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("grafana-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let env = crate::daemon::env(&format!(
        "grafana:\n  url: {}\n  tokenFile: {}\n{extra}",
        grafana.url,
        token_file.display()
    ))
    .await?;
    Some((grafana, secrets, env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_publishes_dashboards_keeps_them_in_step_and_deletes_a_removed_graphs() {
    let Some((grafana, _secrets, env)) = env_with_grafana("intervals:\n  resync: 1s\n").await
    else {
        return;
    };
    let daemon = env.start(smo::daemon::RunOptions::default());
    let brussels = [
        dashboards::graph_uid("brussels", "image-detection-graph"),
        dashboards::service_uid("brussels", "image-detection-graph", "image-detection"),
        dashboards::service_uid("brussels", "image-detection-graph", "noise-reduction"),
        dashboards::service_uid("brussels", "image-detection-graph", "image-compression-vo"),
    ];
    // Every dashboard of both graphs: a graph's are published one after
    // the other, and counting posts below before the last one arrived
    // would read it as a republication.
    let demo2 = dashboards::graph_uid("demo2", "gpu-offloading-graph");
    let demo2_services = ["ml-inference", "web-frontend"]
        .map(|s| dashboards::service_uid("demo2", "gpu-offloading-graph", s));
    // Every cluster's dashboard (they are published one after the other:
    // counting posts below before the last one would see it arrive).
    let inventory =
        fake_karmada::Inventory::load(&crate::support::repo().join("state-example/inventory.yaml"))
            .unwrap();
    let clusters: Vec<String> = inventory
        .clusters
        .iter()
        .map(|c| dashboards::cluster_uid(&c.name))
        .collect();
    assert!(clusters.contains(&dashboards::cluster_uid("lyon-gpu")));
    let t0 = std::time::Instant::now();
    loop {
        let d = grafana.dashboards();
        if brussels.iter().all(|u| d.contains_key(u))
            && d.contains_key(&demo2)
            && demo2_services.iter().all(|u| d.contains_key(u))
            && clusters.iter().all(|u| d.contains_key(u))
        {
            break;
        }
        if daemon.is_finished() {
            daemon.stop().await;
            panic!("the daemon ended");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "dashboards missing: have {:?}; events {:#?}",
            d.keys().collect::<Vec<_>>(),
            env.snapshot().map(|s| s.events)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // In the project's folder; the URLs are in the status.
    let d = grafana.dashboards();
    assert_eq!(d[&brussels[0]].0, dashboards::folder_uid("brussels"));
    let snap = crate::daemon::wait_for(Duration::from_secs(30), "URLs in the status", || {
        let s = env.snapshot()?;
        let g = s
            .graphs
            .iter()
            .find(|g| g.graph == "image-detection-graph")?;
        (g.dashboards.len() == 4).then_some(s)
    })
    .await;
    let g = snap
        .graphs
        .iter()
        .find(|g| g.graph == "image-detection-graph")
        .unwrap();
    assert!(
        g.dashboards[&brussels[0]].starts_with(&grafana.url),
        "{:?}",
        g.dashboards
    );
    assert!(
        grafana
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "every request carries the service-account token"
    );

    // Resyncs every second publish nothing new: the dashboards did not change.
    let posts = |g: &FakeGrafana| {
        g.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/dashboards/db")
            .count()
    };
    let before = posts(&grafana);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again: Vec<String> = grafana
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/dashboards/db")
        .skip(before)
        .map(|r| r.body["dashboard"]["uid"].to_string())
        .collect();
    assert_eq!(
        posts(&grafana),
        before,
        "an unchanged graph was published again: {again:?}"
    );

    // The graph's descriptor removed: its dashboards go, the other graph's stay.
    std::fs::remove_file(env.descriptor("projects/brussels/image-detection-graph.yaml")).unwrap();
    crate::daemon::wait_for(
        Duration::from_secs(60),
        "brussels' dashboards deleted",
        || {
            let d = grafana.dashboards();
            brussels.iter().all(|u| !d.contains_key(u)).then_some(())
        },
    )
    .await;
    assert!(grafana.dashboards().contains_key(&demo2));
    daemon.stop().await;
}

/// A kill between publishing a graph's dashboards and recording them
/// leaves no dashboard behind when the graph is removed: their uids are
/// deterministic, and removal deletes them whether recorded or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_graph_deletes_its_dashboards_even_unrecorded_ones() {
    let Some((grafana, _secrets, env)) = env_with_grafana("").await else {
        return;
    };
    assert!(env.once().await.converged);
    let demo2 = [
        dashboards::graph_uid("demo2", "gpu-offloading-graph"),
        dashboards::service_uid("demo2", "gpu-offloading-graph", "ml-inference"),
        dashboards::service_uid("demo2", "gpu-offloading-graph", "web-frontend"),
    ];
    for uid in &demo2 {
        assert!(
            grafana.dashboards().contains_key(uid),
            "{uid} not published"
        );
    }
    // The record forgets them, as a kill before the commit would.
    env.store()
        .write(|tx| {
            let mut g = tx.graph("demo2/gpu-offloading-graph")?.expect("recorded");
            g.dashboards.clear();
            tx.put_graph(&g)
        })
        .unwrap();
    std::fs::remove_file(env.descriptor("projects/demo2/gpu-offloading-graph.yaml")).unwrap();
    env.once().await;
    assert!(
        env.store()
            .graph("demo2/gpu-offloading-graph")
            .unwrap()
            .is_none()
    );
    let left: Vec<String> = grafana
        .dashboards()
        .into_keys()
        .filter(|uid| demo2.contains(uid))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        grafana
            .dashboards()
            .contains_key(&dashboards::graph_uid("brussels", "image-detection-graph")),
        "another graph's dashboard went too"
    );
}
