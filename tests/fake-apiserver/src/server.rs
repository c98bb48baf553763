//! HTTP: routing Kubernetes API paths to the cluster, discovery, watches, the request log and
//! fault injection.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::cluster::{Cluster, EventType, WatchStart, WriteOptions};
use crate::endpoints;
use crate::faults::Faults;
use crate::rbac;
use crate::requests::{RequestRecord, Verb};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 << 20;

/// State shared by every request.
pub struct App {
    /// The objects.
    pub cluster: Arc<Cluster>,
    /// Fault controls.
    pub faults: Arc<Faults>,
    /// The request log.
    pub log: Mutex<Vec<RequestRecord>>,
    /// Next log sequence number.
    pub seq: AtomicU64,
    /// Watches currently streaming.
    pub open_watches: Arc<AtomicUsize>,
    /// Flips to true on shutdown; watches end.
    pub shutdown: watch::Receiver<bool>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// `host:port`, for `/api`'s server address.
    pub address: String,
    /// What `/version` reports.
    pub version: (u32, u32),
}

/// A parsed API path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList {
        group: String,
        version: String,
    },
    Resource(Target),
    /// `GET /api/v1/namespaces/<ns>/services/<name>[:<port>]/proxy/<path>`.
    ServiceProxy {
        namespace: String,
        service: String,
    },
    NotFound,
}

/// A path that names a resource type and maybe a namespace, object and subresource.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_route(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["apis", group] => return Route::Group(group.to_string()),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let target = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(Target {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        })
    };
    let core_namespace_sub = |s: &str| group.is_empty() && matches!(s, "status" | "finalize");
    match rest {
        [] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        ["namespaces", name, sub] if core_namespace_sub(sub) => {
            target("namespaces", None, Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => target(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => target(plural, Some(ns), Some(name), None),
        ["namespaces", ns, "services", service, "proxy", ..] if group.is_empty() => {
            Route::ServiceProxy {
                namespace: ns.to_string(),
                service: service.to_string(),
            }
        }
        ["namespaces", ns, plural, name, sub] => target(plural, Some(ns), Some(name), Some(sub)),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

/// Query parameters, in order.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "True"))
    }
}

fn json_response(code: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The one handler: every request comes here.
pub async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query_raw = parts.uri.query().unwrap_or_default().to_string();
    let query = Query::parse(&query_raw);
    let route = parse_route(&path);
    let mut record = RequestRecord {
        seq: app.seq.fetch_add(1, Ordering::Relaxed) + 1,
        method: parts.method.to_string(),
        path: path.clone(),
        query: query_raw,
        verb: Verb::Discovery,
        resource: String::new(),
        namespace: None,
        name: None,
        subresource: None,
        status: 0,
        field_manager: query.get("fieldManager").map(String::from),
        dry_run: query.get("dryRun") == Some("All"),
        force: query.flag("force"),
        impersonate_user: header_text(&parts.headers, "impersonate-user"),
        injected_fault: false,
    };
    let resolved = match &route {
        Route::Resource(target) => {
            record.namespace = target.namespace.clone();
            record.name = target.name.clone();
            record.subresource = target.subresource.clone();
            record.resource = if target.group.is_empty() {
                target.plural.clone()
            } else {
                format!("{}.{}", target.plural, target.group)
            };
            match verb_of(&parts.method, target, &query, &parts.headers) {
                Ok(verb) => {
                    record.verb = verb;
                    Ok(verb)
                }
                Err(e) => Err(e),
            }
        }
        // Discovery of one group is recorded (and can be faulted) by the group's name, as an
        // aggregated API that is down fails only its own group.
        Route::ServiceProxy { namespace, service } => {
            record.resource = "services".into();
            record.namespace = Some(namespace.clone());
            record.name = Some(service.clone());
            record.subresource = Some("proxy".into());
            Ok(Verb::Get)
        }
        Route::Group(group) | Route::ResourceList { group, .. } => {
            record.resource = group.clone();
            Ok(Verb::Discovery)
        }
        _ => Ok(Verb::Discovery),
    };

    let (latency, fault) = app.faults.check(record.verb, &record.resource);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = if let Some(fault) = fault {
        record.injected_fault = true;
        error_response(&fault)
    } else {
        match resolved {
            Err(e) => error_response(&e),
            Ok(verb) => {
                let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
                    Ok(b) => b,
                    Err(e) => {
                        let e = ApiError::bad_request(format!("reading the body: {e}"));
                        return finish(&app, record, error_response(&e));
                    }
                };
                match route {
                    Route::Version => json_response(200, &version_info(app.version)),
                    Route::CoreVersions => {
                        json_response(200, &app.cluster.registry().api_versions(&app.address))
                    }
                    Route::Groups => json_response(200, &app.cluster.registry().api_group_list()),
                    Route::Group(group) => match app.cluster.registry().api_group(&group) {
                        Some(v) => json_response(200, &v),
                        None => error_response(&not_found_path()),
                    },
                    Route::ResourceList { group, version } => {
                        match app.cluster.registry().resource_list(&group, &version) {
                            Some(v) => json_response(200, &v),
                            None => error_response(&not_found_path()),
                        }
                    }
                    Route::NotFound => error_response(&not_found_path()),
                    Route::ServiceProxy { namespace, service } => {
                        match endpoints::proxy(&app.cluster, &namespace, &service) {
                            Ok((code, body)) => {
                                let mut response = Response::new(Body::from(body));
                                *response.status_mut() = StatusCode::from_u16(code)
                                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                                response
                            }
                            Err(e) => error_response(&e),
                        }
                    }
                    Route::Resource(target) => {
                        match serve_resource(&app, &target, verb, &query, &parts.headers, &bytes) {
                            Ok(response) => response,
                            Err(e) => error_response(&e),
                        }
                    }
                }
            }
        }
    };
    finish(&app, record, response)
}

fn finish(app: &App, mut record: RequestRecord, response: Response) -> Response {
    record.status = response.status().as_u16();
    app.log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(record);
    response
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The `/scale` subresource of Deployments, StatefulSets and ReplicaSets: an `autoscaling/v1`
/// Scale read from and written to the object's `spec.replicas` (what an autoscaler and `kubectl
/// scale` use). A write records the writer as the owner of `spec.replicas`.
fn scale(
    app: &App,
    rt: &ResourceType,
    target: &Target,
    verb: Verb,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    if !(rt.group == "apps"
        && matches!(
            rt.plural.as_str(),
            "deployments" | "statefulsets" | "replicasets"
        ))
    {
        return Err(not_found_path());
    }
    let ns = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let as_scale = |obj: &Value| {
        let labels = obj
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let meta = |k: &str| {
            obj.pointer(&format!("/metadata/{k}"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": meta("name"),
                "namespace": meta("namespace"),
                "uid": meta("uid"),
                "resourceVersion": meta("resourceVersion"),
                "creationTimestamp": meta("creationTimestamp"),
            },
            "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
            "status": {
                "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
                "selector": labels,
            },
        })
    };
    match verb {
        Verb::Get => Ok(json_response(
            200,
            &as_scale(&app.cluster.get(rt, ns, name)?),
        )),
        Verb::Update | Verb::Patch => {
            let body = parse_body(body)?;
            let Some(replicas) = body.pointer("/spec/replicas").and_then(Value::as_i64) else {
                return Err(ApiError::invalid(format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Required value"
                )));
            };
            if replicas < 0 {
                return Err(ApiError::invalid(format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                )));
            }
            let manager = manager_of(query, headers);
            let opts = WriteOptions {
                manager: &manager,
                dry_run: query.get("dryRun") == Some("All"),
                force: false,
            };
            let version = rt.versions.first().cloned().unwrap_or_default();
            let patch = json!({"spec": {"replicas": replicas}});
            let obj = app
                .cluster
                .merge_patch(rt, &version, Some(ns), name, &patch, false, opts)?;
            Ok(json_response(200, &as_scale(&obj)))
        }
        _ => Err(ApiError::method_not_allowed(
            "the scale subresource supports get, update and patch",
        )),
    }
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn version_info((major, minor): (u32, u32)) -> Value {
    json!({
        "major": major.to_string(),
        "minor": minor.to_string(),
        "gitVersion": format!("v{major}.{minor}.0-tally-fake"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// The RBAC verb of a request.
fn rbac_verb(verb: Verb) -> &'static str {
    match verb {
        Verb::Get => "get",
        Verb::List => "list",
        Verb::Watch => "watch",
        Verb::Create => "create",
        Verb::Update => "update",
        Verb::Patch | Verb::Apply => "patch",
        Verb::Delete => "delete",
        Verb::DeleteCollection => "deletecollection",
        _ => "get",
    }
}

fn verb_of(
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Verb, ApiError> {
    let named = target.name.is_some();
    Ok(match *method {
        Method::GET if named => Verb::Get,
        Method::GET if query.flag("watch") => Verb::Watch,
        Method::GET => Verb::List,
        Method::POST if !named => Verb::Create,
        Method::PUT if named => Verb::Update,
        Method::PATCH if named => {
            let content_type = header_text(headers, "content-type").unwrap_or_default();
            if content_type.starts_with("application/apply-patch") {
                Verb::Apply
            } else {
                Verb::Patch
            }
        }
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on {}",
                if named { "an object" } else { "a collection" }
            )));
        }
    })
}

/// The manager of a write: `fieldManager`, else the user agent's first word, as the API server.
fn manager_of(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_string();
    }
    header_text(headers, "user-agent")
        .and_then(|ua| ua.split('/').next().map(String::from))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the fake API server reads JSON bodies only (JSON is valid YAML): {e}"),
        )
    })
}

fn serve_resource(
    app: &Arc<App>,
    target: &Target,
    verb: Verb,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let rt = app
        .cluster
        .resolve(&target.group, &target.version, &target.plural)
        .ok_or_else(not_found_path)?;
    if target.namespace.is_some() && !rt.namespaced {
        return Err(not_found_path());
    }
    if let Some(user) = header_text(headers, "impersonate-user") {
        let groups = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let mut a = rbac::Attributes {
            user: &user,
            groups,
            verb: rbac_verb(verb),
            group: &rt.group,
            resource: &rt.plural,
            subresource: target.subresource.as_deref(),
            namespace: target.namespace.as_deref(),
            name: target.name.as_deref(),
        };
        rbac::authorize(&app.cluster, &a)?;
        // An apply that would create the object needs `create` as well.
        if verb == Verb::Apply
            && let Some(name) = target.name.as_deref()
            && app
                .cluster
                .get(&rt, target.namespace.as_deref().unwrap_or_default(), name)
                .is_err()
        {
            a.verb = "create";
            rbac::authorize(&app.cluster, &a)?;
        }
    }
    if target.subresource.as_deref() == Some("scale") {
        return scale(app, &rt, target, verb, query, headers, body);
    }
    let status = match target.subresource.as_deref() {
        None => false,
        Some("status") if rt.has_status => true,
        Some("finalize") if rt.plural == "namespaces" => false,
        Some(_) => return Err(not_found_path()),
    };
    if status && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch | Verb::Apply) {
        return Err(ApiError::method_not_allowed(
            "the status subresource supports get, update and patch",
        ));
    }
    let ns = target.namespace.as_deref();
    let name = target.name.as_deref().unwrap_or_default();
    let version = target.version.as_str();
    let manager = manager_of(query, headers);
    let opts = WriteOptions {
        manager: &manager,
        dry_run: query.get("dryRun") == Some("All"),
        force: query.flag("force"),
    };
    let out = |code: u16, obj: Value| json_response(code, &at_version(obj, &rt, version));
    match verb {
        Verb::Get => Ok(out(
            200,
            app.cluster.get(&rt, ns.unwrap_or_default(), name)?,
        )),
        Verb::List => {
            let (labels, fields) = selectors(query)?;
            let (items, rv) = app
                .cluster
                .list(&rt, ns, |o| labels.matches(o) && fields.matches(o));
            let items: Vec<Value> = items
                .into_iter()
                .map(|o| at_version(o, &rt, version))
                .collect();
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", rt.kind),
                    "apiVersion": rt.api_version(version),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                }),
            ))
        }
        Verb::Watch => start_watch(app, rt, version, ns, query),
        Verb::Create => {
            let created = app
                .cluster
                .create(&rt, version, ns, parse_body(body)?, opts)?;
            Ok(out(201, created))
        }
        Verb::Update => {
            let obj =
                app.cluster
                    .replace(&rt, version, ns, name, parse_body(body)?, status, opts)?;
            Ok(out(200, obj))
        }
        Verb::Apply => {
            if query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH requests of type apply-patch require a fieldManager query parameter",
                ));
            }
            let config = parse_body(body)?;
            let (obj, created) = app
                .cluster
                .apply(&rt, version, ns, name, &config, status, opts)?;
            Ok(out(if created { 201 } else { 200 }, obj))
        }
        Verb::Patch => {
            let patch = parse_body(body)?;
            let content_type = header_text(headers, "content-type").unwrap_or_default();
            let obj = if content_type.starts_with("application/json-patch+json") {
                app.cluster
                    .json_patch(&rt, version, ns, name, &patch, status, opts)?
            } else if content_type.starts_with("application/merge-patch+json")
                || content_type.starts_with("application/strategic-merge-patch+json")
            {
                app.cluster
                    .merge_patch(&rt, version, ns, name, &patch, status, opts)?
            } else {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format: {content_type}"),
                ));
            };
            Ok(out(200, obj))
        }
        Verb::Delete => {
            let options: Value = if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("bad DeleteOptions: {e}")))?
            };
            let policy = query
                .get("propagationPolicy")
                .or_else(|| options.get("propagationPolicy").and_then(Value::as_str));
            if let Some(policy) = policy
                && !matches!(policy, "Foreground" | "Background" | "Orphan")
            {
                return Err(ApiError::bad_request(format!(
                    "unknown propagationPolicy {policy:?}"
                )));
            }
            let dry_run = opts.dry_run
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|v| v == "All"));
            let deleted =
                app.cluster
                    .delete(&rt, ns, name, options.get("preconditions"), dry_run)?;
            Ok(out(200, deleted))
        }
        Verb::DeleteCollection => {
            let (labels, fields) = selectors(query)?;
            let (items, _) = app
                .cluster
                .list(&rt, ns, |o| labels.matches(o) && fields.matches(o));
            let mut deleted = Vec::new();
            for item in items {
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
                let item_name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Ok(obj) = app
                    .cluster
                    .delete(&rt, item_ns, item_name, None, opts.dry_run)
                {
                    deleted.push(at_version(obj, &rt, version));
                }
            }
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", rt.kind),
                    "apiVersion": rt.api_version(version),
                    "metadata": {"resourceVersion": app.cluster.resource_version().to_string()},
                    "items": deleted,
                }),
            ))
        }
        Verb::Discovery => Err(not_found_path()),
    }
}

fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
    Ok((labels, fields))
}

/// The object as served at the requested version.
fn at_version(mut obj: Value, rt: &ResourceType, version: &str) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(rt.api_version(version)));
    }
    obj
}

/// A body that streams what a channel receives.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChannelBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|item| item.map(Ok))
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, version: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end && let Some(map) = metadata.as_object_mut() {
        map.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    event_line(
        "BOOKMARK",
        &json!({
            "kind": rt.kind,
            "apiVersion": rt.api_version(version),
            "metadata": metadata,
        }),
    )
}

/// How a change looks to a watcher with selectors: objects that stop matching are DELETED,
/// objects that start matching are ADDED.
fn visible(
    event_type: EventType,
    object: &Value,
    old: Option<&Value>,
    matches: &dyn Fn(&Value) -> bool,
) -> Option<&'static str> {
    let now = matches(object);
    match event_type {
        EventType::Added => now.then_some("ADDED"),
        EventType::Deleted => now.then_some("DELETED"),
        EventType::Modified => {
            let before = old.is_some_and(matches);
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }
}

fn start_watch(
    app: &Arc<App>,
    rt: ResourceType,
    version: &str,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(query)?;
    let send_initial = query.flag("sendInitialEvents");
    let start = match query.get("resourceVersion") {
        None | Some("" | "0") => WatchStart::Current,
        Some(_) if send_initial => WatchStart::Current,
        Some(rv) => WatchStart::After(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bookmarks = query.flag("allowWatchBookmarks");
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let version = version.to_string();
    let mut response = Response::new(Body::from_stream(ChannelBody(rx)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let init = match app.cluster.watch(&rt, namespace, start) {
        Ok(init) => init,
        Err(gone) => {
            // Like the real server: 200, then one ERROR event carrying the 410 Status, so
            // watchers relist.
            let _ = tx.try_send(event_line("ERROR", &gone.to_status()));
            return Ok(response);
        }
    };
    let matches = move |o: &Value| labels.matches(o) && fields.matches(o);
    let namespace = namespace.map(String::from);
    let mut drop_signal = app.faults.drop_signal();
    drop_signal.mark_unchanged();
    let mut shutdown = app.shutdown.clone();
    let bookmark_interval = app.bookmark_interval;
    let open = app.open_watches.clone();
    open.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let _guard = OpenWatch(open);
        let at = |o: &Value| at_version(o.clone(), &rt, &version);
        for (event_type, object, old) in &init.initial {
            if let Some(kind) = visible(*event_type, object, old.as_ref(), &matches)
                && tx.send(event_line(kind, &at(object))).await.is_err()
            {
                return;
            }
        }
        let mut last_rv = init.resource_version;
        if send_initial
            && tx
                .send(bookmark(&rt, &version, last_rv, true))
                .await
                .is_err()
        {
            return;
        }
        let mut receiver = init.receiver;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            let line = tokio::select! {
                event = receiver.recv() => match event {
                    Ok(event) => {
                        if event.resource_version <= last_rv {
                            continue;
                        }
                        last_rv = event.resource_version;
                        let in_scope = event.key.group == rt.group
                            && event.key.resource == rt.plural
                            && namespace.as_deref().is_none_or(|ns| event.key.namespace == ns);
                        if !in_scope {
                            continue;
                        }
                        match visible(event.event_type, &event.object, event.old.as_ref(), &matches) {
                            Some(kind) => event_line(kind, &at(&event.object)),
                            None => continue,
                        }
                    }
                    // Fell behind or the cluster is gone: end the stream; the client re-watches
                    // from its last version and the history replays what it missed.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => bookmark(&rt, &version, last_rv, false),
                _ = sleep_until(deadline) => return,
                _ = drop_signal.changed() => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Counts a watch as open while it streams.
struct OpenWatch(Arc<AtomicUsize>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(Target {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        })
    }

    #[test]
    fn routes() {
        assert_eq!(parse_route("/version"), Route::Version);
        assert_eq!(parse_route("/api"), Route::CoreVersions);
        assert_eq!(parse_route("/apis"), Route::Groups);
        assert_eq!(parse_route("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(
            parse_route("/api/v1"),
            Route::ResourceList {
                group: "".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            parse_route("/api/v1/namespaces"),
            target("", "namespaces", None, None, None)
        );
        assert_eq!(
            parse_route("/api/v1/namespaces/a"),
            target("", "namespaces", None, Some("a"), None)
        );
        assert_eq!(
            parse_route("/api/v1/namespaces/a/status"),
            target("", "namespaces", None, Some("a"), Some("status"))
        );
        assert_eq!(
            parse_route("/api/v1/namespaces/a/configmaps"),
            target("", "configmaps", Some("a"), None, None)
        );
        assert_eq!(
            parse_route("/apis/apps/v1/namespaces/a/deployments/web/status"),
            target(
                "apps",
                "deployments",
                Some("a"),
                Some("web"),
                Some("status")
            )
        );
        assert_eq!(
            parse_route("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.y/status"),
            target(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
                Some("x.y"),
                Some("status")
            )
        );
        assert_eq!(parse_route("/healthz"), Route::NotFound);
    }

    #[test]
    fn selector_transitions() {
        let matches = |o: &Value| o["l"] == "x";
        let yes = json!({"l": "x"});
        let no = json!({"l": "y"});
        assert_eq!(
            visible(EventType::Modified, &no, Some(&yes), &matches),
            Some("DELETED")
        );
        assert_eq!(
            visible(EventType::Modified, &yes, Some(&no), &matches),
            Some("ADDED")
        );
        assert_eq!(visible(EventType::Modified, &no, Some(&no), &matches), None);
        assert_eq!(visible(EventType::Added, &no, None, &matches), None);
    }
}
