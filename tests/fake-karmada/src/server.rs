//! The HTTP side: accept loop with outage control, request logging, fault
//! injection, routing of Kubernetes REST paths onto `api`, discovery,
//! OpenAPI v3 and watch streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::{self, ApiError, PatchKind, Scope, WriteOpts};
use crate::kinds::{KindSpec, Registry};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;
use crate::{Fault, LoggedRequest};

/// Kubernetes version the fake reports.
pub(crate) const KUBE_MINOR: &str = "33";

/// State shared by the server tasks and the test handle.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub registry: RwLock<Registry>,
    pub faults: Mutex<Vec<Fault>>,
    pub latency: Mutex<Duration>,
    pub log: Mutex<Vec<LoggedRequest>>,
    /// Bumped on every outage: connection tasks of older epochs end.
    pub epoch: watch::Sender<u64>,
    /// Bumped to close every connection cleanly: watches end their streams
    /// (as an API server does on shutdown), then connections close.
    pub closing: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            store: Mutex::new(Store::new()),
            registry: RwLock::new(Registry::new()),
            faults: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
            log: Mutex::new(Vec::new()),
            epoch: watch::channel(0).0,
            closing: watch::channel(0).0,
        }
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Response body: a whole buffer, or a stream of chunks (watch).
pub(crate) enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    // An exact hint lets hyper send Content-Length instead of chunking.
    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(b) => {
                http_body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::Full(Some(body.into())));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    respond(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

/// Runs the accept loop until `stop` changes; each connection ends when
/// the epoch changes (outage) or the peer goes away.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let addr = listener.local_addr().ok();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let mut epoch = shared.epoch.subscribe();
                let mut closing = shared.closing.subscribe();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, addr, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        _ = epoch.changed() => return,
                        _ = stop.changed() => return,
                        _ = closing.changed() => {}
                    }
                    // A clean close: the response in flight (a watch ends
                    // its stream on the same signal) completes first, so
                    // a client sees the end of a stream, never an error.
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = conn => {}
                        _ = epoch.changed() => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        }
    }
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    shared: Arc<Shared>,
    addr: Option<SocketAddr>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let q = query_map(Some(&query));
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header(CONTENT_TYPE);
    let user_agent = header(hyper::header::USER_AGENT);
    let accept = header(hyper::header::ACCEPT);
    let decoded = decode_body(&content_type, &body);
    let mut entry = LoggedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        field_manager: q.get("fieldManager").cloned(),
        user_agent: user_agent.clone(),
        status: 0,
        body: body.to_vec(),
        body_json: decoded.as_ref().ok().cloned(),
    };
    let latency = *shared.latency.lock().unwrap_or_else(|p| p.into_inner());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = take_fault(&shared, parts.method.as_str(), &path) {
        let e = ApiError::new(
            status,
            reason_for(status),
            format!("fault injected by the test (status {status})"),
        );
        entry.status = status;
        push_log(&shared, entry);
        return error_response(&e);
    }
    let ctx = Ctx {
        shared: &shared,
        method: parts.method.clone(),
        q,
        content_type,
        user_agent,
        accept,
        body,
        decoded,
        addr,
    };
    let response = match route(&ctx, &path).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    entry.status = response.status().as_u16();
    push_log(&shared, entry);
    response
}

fn push_log(shared: &Shared, entry: LoggedRequest) {
    shared
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(entry);
}

fn reason_for(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<u16> {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    let idx = faults.iter().position(|f| f.matches(method, path))?;
    let status = faults[idx].status;
    faults[idx].remaining -= 1;
    if faults[idx].remaining == 0 {
        faults.remove(idx);
    }
    Some(status)
}

fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty request body"));
    }
    let ct = content_type.split(';').next().unwrap_or("").trim();
    match ct {
        "application/vnd.kubernetes.protobuf" => crate::proto::decode(body)
            .map_err(|e| ApiError::new(415, "UnsupportedMediaType", e.to_string())),
        "application/yaml" | "application/apply-patch+yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
            serde_json::from_str(text)
                .or_else(|_| serde_saphyr::from_str(text))
                .map_err(|e| ApiError::bad_request(format!("body is not valid YAML: {e}")))
        }
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("body is not valid JSON: {e}"))),
    }
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    method: Method,
    q: HashMap<String, String>,
    content_type: String,
    user_agent: String,
    accept: String,
    body: Bytes,
    decoded: Result<Value, ApiError>,
    addr: Option<SocketAddr>,
}

impl Ctx<'_> {
    /// Whether the client accepts aggregated discovery (apidiscovery.k8s.io/v2).
    fn wants_aggregated(&self) -> bool {
        self.accept.split(',').any(|t| {
            t.contains("g=apidiscovery.k8s.io")
                && t.contains("v=v2;")
                && t.contains("as=APIGroupDiscoveryList")
        })
    }

    fn opts(&self) -> WriteOpts {
        let manager = self.q.get("fieldManager").cloned().unwrap_or_else(|| {
            // The real API derives the default manager from the user agent.
            self.user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string()
        });
        WriteOpts {
            manager,
            dry_run: self.q.get("dryRun").is_some_and(|d| d == "All"),
            force: self.q.get("force").is_some_and(|f| f == "true"),
        }
    }

    fn body_json(&self) -> Result<Value, ApiError> {
        self.decoded.clone()
    }
}

async fn route(ctx: &Ctx<'_>, path: &str) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = ctx.method == Method::GET;
    match segs.as_slice() {
        ["version"] if get => Ok(json_response(200, &version())),
        ["healthz" | "readyz" | "livez", ..] if get => Ok(respond(200, "text/plain", "ok")),
        ["api"] if get && ctx.wants_aggregated() => Ok(aggregated(&ctx.shared.registry(), true)),
        ["apis"] if get && ctx.wants_aggregated() => Ok(aggregated(&ctx.shared.registry(), false)),
        ["api"] if get => Ok(json_response(
            200,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{
                    "clientCIDR": "0.0.0.0/0",
                    "serverAddress": ctx.addr.map(|a| a.to_string()).unwrap_or_default(),
                }],
            }),
        )),
        ["apis"] if get => Ok(json_response(200, &group_list(&ctx.shared.registry()))),
        ["apis", group] if get => {
            let reg = ctx.shared.registry();
            let g = reg.groups().into_iter().find(|(g, _)| g == group);
            match g {
                Some((g, vs)) => Ok(json_response(200, &group_json(&g, &vs, true))),
                None => Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource (group {group})"),
                )),
            }
        }
        ["api", "v1"] if get => resource_list(ctx, "", "v1"),
        ["apis", group, version] if get => resource_list(ctx, group, version),
        ["openapi", "v3"] if get => Ok(json_response(
            200,
            &crate::openapi::root(&ctx.shared.registry()),
        )),
        ["openapi", "v3", rest @ ..] if get => {
            let gv = rest.join("/");
            match crate::openapi::group_version(&ctx.shared.registry(), &gv) {
                Some(doc) => Ok(json_response(200, &doc)),
                None => Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("no OpenAPI v3 document for {gv}"),
                )),
            }
        }
        ["api", "v1", rest @ ..] => resource(ctx, "", "v1", rest).await,
        ["apis", group, version, rest @ ..] => resource(ctx, group, version, rest).await,
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!(
                "the server could not find the requested resource ({} {path})",
                ctx.method
            ),
        )),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_json(group: &str, versions: &[String], with_kind: bool) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let mut g = json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(json!({})),
    });
    if with_kind {
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
    }
    g
}

fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .map(|(g, vs)| group_json(g, vs, false))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): every group, version and
/// resource in one document; `core` selects `/api` instead of `/apis`.
fn aggregated(reg: &Registry, core: bool) -> Response<Body> {
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        reg.groups()
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .in_group_version(g, v)
                        .iter()
                        .map(|k| {
                            let mut subs = Vec::new();
                            if k.status_subresource {
                                subs.push(json!({"subresource": "status", "responseKind": {"group": k.group, "version": k.version, "kind": k.kind}, "verbs": ["get", "patch", "update"]}));
                            }
                            if k.scale_subresource {
                                subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                            }
                            json!({
                                "resource": k.plural,
                                "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
                                "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": k.singular(),
                                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                "shortNames": k.short_names,
                                "subresources": subs,
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .collect();
    let doc = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    respond(
        200,
        AGGREGATED_CT,
        serde_json::to_vec(&doc).unwrap_or_default(),
    )
}

fn resource_list(ctx: &Ctx<'_>, group: &str, version: &str) -> Result<Response<Body>, ApiError> {
    let reg = ctx.shared.registry();
    let kinds = reg.in_group_version(group, version);
    if kinds.is_empty() {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({group}/{version})"),
        ));
    }
    let resources: Vec<Value> = kinds.iter().flat_map(|k| k.discovery_entries()).collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }),
    ))
}

/// A parsed resource path.
struct ResPath<'a> {
    watch: bool,
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_res_path<'a>(rest: &[&'a str]) -> Option<ResPath<'a>> {
    let (watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !matches!(*plural, "status" | "finalize") || !tail.is_empty() =>
        {
            if tail.len() > 2 {
                return None;
            }
            Some(ResPath {
                watch,
                namespace: Some(ns),
                plural,
                name: tail.first().copied(),
                sub: tail.get(1).copied(),
            })
        }
        [plural, tail @ ..] if tail.len() <= 2 => Some(ResPath {
            watch,
            namespace: None,
            plural,
            name: tail.first().copied(),
            sub: tail.get(1).copied(),
        }),
        _ => None,
    }
}

async fn resource(
    ctx: &Ctx<'_>,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let rp = parse_res_path(rest).ok_or_else(not_found)?;
    let spec: KindSpec = ctx
        .shared
        .registry()
        .by_plural(group, version, rp.plural)
        .cloned()
        .ok_or_else(not_found)?;
    if rp.namespace.is_some() && !spec.namespaced {
        return Err(not_found());
    }
    let ns = rp.namespace.unwrap_or("");
    let watch = rp.watch || ctx.q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (rp.name, rp.sub) {
        (None, _) => {
            let ns_filter = if spec.namespaced { rp.namespace } else { None };
            match ctx.method {
                Method::GET if watch => crate::watch::start(
                    ctx.shared,
                    &spec,
                    ns_filter,
                    &ctx.q,
                    ctx.accept.contains("as=PartialObjectMetadata"),
                ),
                Method::GET => list(ctx, &spec, ns_filter),
                Method::POST => {
                    if spec.namespaced && rp.namespace.is_none() {
                        return Err(ApiError::new(
                            405,
                            "MethodNotAllowed",
                            "create requires a namespace in the path",
                        ));
                    }
                    let obj = ctx.body_json()?;
                    let mut store = ctx.shared.store();
                    let created = api::create(&mut store, &spec, ns, obj, &ctx.opts())?;
                    Ok(json_response(201, &created))
                }
                Method::DELETE => delete_collection(ctx, &spec, ns_filter),
                _ => Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    format!("{} is not allowed on a collection", ctx.method),
                )),
            }
        }
        (Some(name), None) => single(ctx, &spec, ns, name, Scope::Main),
        (Some(name), Some("status")) if spec.status_subresource => {
            single(ctx, &spec, ns, name, Scope::Status)
        }
        (Some(name), Some("scale")) if spec.scale_subresource => scale(ctx, &spec, ns, name),
        _ => Err(not_found()),
    }
}

fn single(
    ctx: &Ctx<'_>,
    spec: &KindSpec,
    ns: &str,
    name: &str,
    scope: Scope,
) -> Result<Response<Body>, ApiError> {
    let mut store = ctx.shared.store();
    match ctx.method {
        Method::GET => store
            .get(&api::key(spec, ns, name))
            .map(|o| json_response(200, o))
            .ok_or_else(|| ApiError::not_found(spec, name)),
        Method::PUT => {
            let obj = ctx.body_json()?;
            let r = api::update(&mut store, spec, ns, name, obj, scope, &ctx.opts())?;
            Ok(json_response(200, &r))
        }
        Method::PATCH => {
            let kind = PatchKind::from_content_type(&ctx.content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format: {}",
                        ctx.content_type
                    ),
                )
            })?;
            let existed = store.get(&api::key(spec, ns, name)).is_some();
            let r = api::patch_object(
                &mut store,
                spec,
                ns,
                name,
                kind,
                &ctx.body,
                scope,
                &ctx.opts(),
            )?;
            Ok(json_response(if existed { 200 } else { 201 }, &r))
        }
        Method::DELETE if scope == Scope::Main => {
            // propagationPolicy and gracePeriodSeconds are accepted; deletion
            // is immediate and does not cascade to dependents.
            let dry = ctx.opts().dry_run;
            let r = api::delete(&mut store, spec, ns, name, dry)?;
            Ok(json_response(200, &r))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{} is not allowed here", ctx.method),
        )),
    }
}

fn scale(ctx: &Ctx<'_>, spec: &KindSpec, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let mut store = ctx.shared.store();
    let current = store
        .get(&api::key(spec, ns, name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(spec, name))?;
    let scale_now = api::scale_of(&current);
    let new_scale = match ctx.method {
        Method::GET => return Ok(json_response(200, &scale_now)),
        Method::PUT => ctx.body_json()?,
        Method::PATCH => {
            let kind = PatchKind::from_content_type(&ctx.content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("unknown patch type {}", ctx.content_type),
                )
            })?;
            if kind == PatchKind::Apply {
                let mut s = scale_now.clone();
                let applied = decode_body("application/apply-patch+yaml", &ctx.body)?;
                crate::patch::apply_merge(&mut s, &applied);
                s
            } else {
                api::patched(&scale_now, kind, &ctx.body)?
            }
        }
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "only get, update and patch on scale",
            ));
        }
    };
    let r = api::write_scale(&mut store, spec, ns, name, &new_scale, &ctx.opts())?;
    Ok(json_response(200, &r))
}

pub(crate) fn selectors(
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

fn list(ctx: &Ctx<'_>, spec: &KindSpec, ns: Option<&str>) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(&ctx.q)?;
    let store = ctx.shared.store();
    let items: Vec<Value> = store
        .list(&spec.group, &spec.version, &spec.plural, ns)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| ls.matches(v) && fs.matches(v))
        .cloned()
        .collect();
    let rv = store.resource_version().to_string();
    // Metadata-only lists (kube's `list_metadata`, client-go's metadata
    // informers): every item reduced to its metadata.
    if ctx.accept.contains("as=PartialObjectMetadataList") {
        let items: Vec<Value> = items
            .into_iter()
            .map(|v| {
                json!({
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "PartialObjectMetadata",
                    "metadata": v["metadata"],
                })
            })
            .collect();
        return Ok(json_response(
            200,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv},
                "items": items,
            }),
        ));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", spec.kind),
            "apiVersion": spec.api_version(),
            "metadata": {"resourceVersion": rv},
            "items": items,
        }),
    ))
}

fn delete_collection(
    ctx: &Ctx<'_>,
    spec: &KindSpec,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(&ctx.q)?;
    let mut store = ctx.shared.store();
    let names: Vec<(String, String)> = store
        .list(&spec.group, &spec.version, &spec.plural, ns)
        .into_iter()
        .filter(|(_, v)| ls.matches(v) && fs.matches(v))
        .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
        .collect();
    let dry = ctx.opts().dry_run;
    let mut items = Vec::new();
    for (ns, name) in names {
        items.push(api::delete(&mut store, spec, &ns, &name, dry)?);
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", spec.kind),
            "apiVersion": spec.api_version(),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": items,
        }),
    ))
}

pub(crate) fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
