//! The real [`Cluster`], on kube-rs: raw JSON requests (no typed round trip, so the diff sees
//! exactly what the server stored), discovery cached per kind and looked up again on a miss,
//! server-side apply by field manager `tally`, forced, and a client per impersonated user.
//!
//! It does not retry by itself: wrap it in [`Retrying`](super::Retrying).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{DeleteParams, GetParams, ListParams, Patch, PatchParams, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{GroupVersionKind, Request};
use kube::discovery::{self, Discovery, Scope};
use kube::{Client, Config};
use serde_json::Value;

use super::watch::{WATCH_TIMEOUT, Watch, WatchEvent, WatchStream};
use super::{ApplyParams, Cluster, ClusterError, Propagation, Resource, describe, name_of};
use crate::fields::MANAGER;

/// Where the client configuration comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeOptions {
    /// A kubeconfig file (`--kubeconfig`); otherwise `KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig (`--context`); otherwise its current context.
    pub context: Option<String>,
    /// How long one request may take before it counts as a (retryable) timeout; default 30 s.
    pub request_timeout: Option<Duration>,
}

/// A cluster reached through kube-rs.
pub struct KubeCluster {
    config: Config,
    client: Client,
    kinds: Mutex<HashMap<(String, String), Resource>>,
    impersonated: Mutex<HashMap<String, Client>>,
    watcher: Mutex<Option<Client>>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("cluster_url", &self.config.cluster_url)
            .finish()
    }
}

impl KubeCluster {
    /// Connects with the usual configuration: an explicit kubeconfig or context if given,
    /// otherwise whatever kube infers (`KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub async fn connect(options: &KubeOptions) -> Result<KubeCluster, ClusterError> {
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match (&options.kubeconfig, &options.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::Config(format!("reading {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(file, &kube_options)
                    .await
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&kube_options)
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?,
            (None, None) => Config::infer()
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        let timeout = options.request_timeout.unwrap_or(Duration::from_secs(30));
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // Retries are `Retrying`'s alone: kube's own layer (429, 503, 504) under it would
        // multiply them, and an aggregated API that is down would hold a plan for minutes.
        config.default_retry = false;
        KubeCluster::from_config(config)
    }

    /// A cluster from a kube [`Config`] as given.
    pub fn from_config(config: Config) -> Result<KubeCluster, ClusterError> {
        let client =
            Client::try_from(config.clone()).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(KubeCluster {
            config,
            client,
            kinds: Mutex::new(HashMap::new()),
            impersonated: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
        })
    }

    /// The underlying kube client (for watches, leases, events).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn client_as(&self, user: Option<&str>) -> Result<Client, ClusterError> {
        let Some(user) = user else {
            return Ok(self.client.clone());
        };
        let mut cache = self.impersonated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(user) {
            return Ok(c.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        let client = Client::try_from(config)
            .map_err(|e| ClusterError::Config(format!("impersonating {user}: {e}")))?;
        cache.insert(user.to_owned(), client.clone());
        Ok(client)
    }
}

/// The URL path of a kind's collection.
fn collection(resource: &Resource, namespace: Option<&str>) -> String {
    let root = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    match namespace.filter(|_| resource.namespaced) {
        Some(ns) => format!("{root}/namespaces/{ns}/{}", resource.plural),
        None => format!("{root}/{}", resource.plural),
    }
}

fn error(what: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(status) => ClusterError::Api {
            what: what.to_owned(),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        kube::Error::HyperError(e) => ClusterError::Transport {
            what: what.to_owned(),
            message: e.to_string(),
        },
        kube::Error::Service(e) => ClusterError::Transport {
            what: what.to_owned(),
            message: e.to_string(),
        },
        other => ClusterError::Other {
            what: what.to_owned(),
            message: other.to_string(),
        },
    }
}

fn build_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Other {
        what: what.to_owned(),
        message: format!("building the request: {e}"),
    }
}

fn resource_from(ar: &discovery::ApiResource, caps: &discovery::ApiCapabilities) -> Resource {
    Resource {
        group: ar.group.clone(),
        version: ar.version.clone(),
        kind: ar.kind.clone(),
        plural: ar.plural.clone(),
        namespaced: matches!(caps.scope, Scope::Namespaced),
    }
}

impl Cluster for KubeCluster {
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(r) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Some(r.clone()));
        }
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match discovery::pinned_kind(&self.client, &gvk).await {
            Ok((ar, caps)) => {
                let r = resource_from(&ar, &caps);
                self.kinds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, r.clone());
                Ok(Some(r))
            }
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(error(&format!("discover {api_version} {kind}"), e)),
        }
    }

    async fn resources(&self) -> Result<Vec<Resource>, ClusterError> {
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| error("discover every resource", e))?;
        let mut out = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.supports_operation("list") {
                    out.push(resource_from(&ar, &caps));
                }
            }
        }
        Ok(out)
    }

    async fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let what = format!("get {}", describe(resource, namespace, name));
        let req = Request::new(collection(resource, namespace))
            .get(name, &GetParams::default())
            .map_err(|e| build_error(&what, e))?;
        match self.client.request::<Value>(req).await {
            Ok(v) => Ok(Some(v)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(error(&what, e)),
        }
    }

    async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        Ok(self.list_at(resource, namespace, label_selector).await?.0)
    }

    async fn apply(
        &self,
        resource: &Resource,
        object: &Value,
        params: &ApplyParams,
    ) -> Result<Value, ClusterError> {
        let (namespace, name) = name_of(object);
        let namespace = resource.namespaced.then(|| namespace.unwrap_or("default"));
        let what = format!("apply {}", describe(resource, namespace, name));
        if name.is_empty() {
            return Err(ClusterError::Other {
                what,
                message: "the object has no metadata.name".into(),
            });
        }
        let mut pp = PatchParams::apply(params.manager.unwrap_or(MANAGER)).force();
        pp.dry_run = params.dry_run;
        let req = Request::new(collection(resource, namespace))
            .patch(name, &pp, &Patch::Apply(object))
            .map_err(|e| build_error(&what, e))?;
        let client = self.client_as(params.as_user.as_deref())?;
        client.request(req).await.map_err(|e| error(&what, e))
    }

    async fn set_managed_fields(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: &str,
        managed_fields: &Value,
    ) -> Result<Value, ClusterError> {
        let what = format!(
            "take over the fields of {}",
            describe(resource, namespace, name)
        );
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": resource_version,
            "managedFields": managed_fields,
        }});
        let req = Request::new(collection(resource, namespace))
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .map_err(|e| build_error(&what, e))?;
        self.client.request(req).await.map_err(|e| error(&what, e))
    }

    async fn proxy_get(
        &self,
        namespace: &str,
        service: &str,
        port: &str,
        path: &str,
    ) -> Result<(u16, String), ClusterError> {
        let what = format!("GET {path} on Service {namespace}/{service}:{port}");
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let uri = format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}");
        let request = axum::http::Request::get(uri)
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| ClusterError::Other {
                what: what.clone(),
                message: e.to_string(),
            })?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| error(&what, e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| error(&what, e))?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        propagation: Propagation,
    ) -> Result<(), ClusterError> {
        let what = format!("delete {}", describe(resource, namespace, name));
        let params = match propagation {
            Propagation::Background => DeleteParams::background(),
            Propagation::Foreground => DeleteParams::foreground(),
        };
        let req = Request::new(collection(resource, namespace))
            .delete(name, &params)
            .map_err(|e| build_error(&what, e))?;
        match self.client.request::<Value>(req).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(error(&what, e)),
        }
    }
}

impl KubeCluster {
    /// A list and its resourceVersion.
    async fn list_at(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<(Vec<Value>, String), ClusterError> {
        let what = format!("list {}", resource.kind);
        let mut params = ListParams::default();
        if !label_selector.is_empty() {
            params = params.labels(label_selector);
        }
        let req = Request::new(collection(resource, namespace))
            .list(&params)
            .map_err(|e| build_error(&what, e))?;
        let mut list: Value = self
            .client
            .request(req)
            .await
            .map_err(|e| error(&what, e))?;
        let version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        // List items come without apiVersion and kind.
        let items = items
            .into_iter()
            .map(|mut item| {
                typed(&mut item, resource);
                item
            })
            .collect();
        Ok((items, version))
    }

    /// The client for watches: the same configuration, with a read timeout longer than the
    /// watch's own, so a quiet watch ends at the server's timeout rather than the client's.
    fn watch_client(&self) -> Result<Client, ClusterError> {
        let mut cache = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref() {
            return Ok(c.clone());
        }
        let mut config = self.config.clone();
        config.read_timeout = Some(WATCH_TIMEOUT + Duration::from_secs(30));
        let client = Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        *cache = Some(client.clone());
        Ok(client)
    }
}

/// Fills in `apiVersion` and `kind`, which list items and some watch events lack.
fn typed(item: &mut Value, resource: &Resource) {
    if let Some(o) = item.as_object_mut() {
        if !o.contains_key("apiVersion") {
            o.insert("apiVersion".into(), Value::from(resource.api_version()));
        }
        if !o.contains_key("kind") {
            o.insert("kind".into(), Value::from(resource.kind.as_str()));
        }
    }
}

impl Watch for KubeCluster {
    async fn list_versioned(
        &self,
        resource: &Resource,
        label_selector: &str,
    ) -> Result<(Vec<Value>, String), ClusterError> {
        self.list_at(resource, None, label_selector).await
    }

    async fn watch(
        &self,
        resource: &Resource,
        label_selector: &str,
        resource_version: &str,
    ) -> Result<WatchStream, ClusterError> {
        let what = format!("watch {}", resource.kind);
        let mut params = WatchParams::default().timeout(WATCH_TIMEOUT.as_secs() as u32);
        params.bookmarks = true;
        if !label_selector.is_empty() {
            params = params.labels(label_selector);
        }
        let req = Request::new(collection(resource, None))
            .watch(&params, resource_version)
            .map_err(|e| build_error(&what, e))?;
        let events = match self.watch_client()?.request_events::<Value>(req).await {
            Ok(events) => events,
            Err(kube::Error::Api(s)) if s.code == 410 => {
                return Ok(Box::pin(futures_util::stream::iter([WatchEvent::Gone])));
            }
            Err(e) => return Err(error(&what, e)),
        };
        let resource = resource.clone();
        Ok(Box::pin(events.map(move |event| match event {
            Ok(kube::core::WatchEvent::Added(mut v) | kube::core::WatchEvent::Modified(mut v)) => {
                typed(&mut v, &resource);
                WatchEvent::Applied(v)
            }
            Ok(kube::core::WatchEvent::Deleted(mut v)) => {
                typed(&mut v, &resource);
                WatchEvent::Deleted(v)
            }
            Ok(kube::core::WatchEvent::Bookmark(b)) => {
                WatchEvent::Bookmark(b.metadata.resource_version)
            }
            Ok(kube::core::WatchEvent::Error(s)) if s.code == 410 => WatchEvent::Gone,
            Ok(kube::core::WatchEvent::Error(s)) => WatchEvent::Error(ClusterError::Api {
                what: what.clone(),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            }),
            Err(kube::Error::Api(s)) if s.code == 410 => WatchEvent::Gone,
            Err(e) => WatchEvent::Error(error(&what, e)),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_paths() {
        let r = |g: &str, k: &str, p: &str, n: bool| Resource {
            group: g.into(),
            version: "v1".into(),
            kind: k.into(),
            plural: p.into(),
            namespaced: n,
        };
        assert_eq!(
            collection(&r("", "ConfigMap", "configmaps", true), Some("a")),
            "/api/v1/namespaces/a/configmaps"
        );
        assert_eq!(
            collection(&r("apps", "Deployment", "deployments", true), None),
            "/apis/apps/v1/deployments"
        );
        assert_eq!(
            collection(&r("", "Namespace", "namespaces", false), Some("ignored")),
            "/api/v1/namespaces"
        );
    }

    #[test]
    fn api_errors_keep_their_code() {
        let status = kube::core::Status::failure("too many", "TooManyRequests").with_code(429);
        let e = error("apply X", kube::Error::Api(Box::new(status)));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("429 TooManyRequests"), "{e}");
    }

    /// A canned HTTP server on 127.0.0.1: answers each request with the next response and
    /// records `METHOD PATH content-type body`.
    async fn serve(
        responses: Vec<(u16, String)>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let url = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(e) => panic!("{e}"),
        };
        let handle = tokio::spawn(async move {
            let mut log = Vec::new();
            let mut responses = responses.into_iter();
            'conns: while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                loop {
                    // One request: headers, then content-length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => continue 'conns,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let len: usize = header("content-length").parse().unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => continue 'conns,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                    let line = head.lines().next().unwrap_or("").to_owned();
                    let path = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
                    log.push(format!("{path} {} {body}", header("content-type")));
                    buf.drain(..head_end + len);
                    let Some((code, body)) = responses.next() else {
                        break 'conns;
                    };
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        continue 'conns;
                    }
                    if responses.len() == 0 {
                        break 'conns;
                    }
                }
            }
            log
        });
        (url, handle)
    }

    #[tokio::test]
    async fn requests_are_what_the_api_server_expects() {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "a"}, "data": {"k": "v"}});
        let status = |code: u16, reason: &str| {
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "code": code, "reason": reason, "message": "m"})
            .to_string()
        };
        let discovery = serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1",
            "resources": [{"name": "configmaps", "singularName": "configmap", "namespaced": true,
                "kind": "ConfigMap", "verbs": ["get", "list", "patch", "delete"]}]});
        let (url, server) = serve(vec![
            (200, discovery.to_string()),
            (200, cm.to_string()),
            (404, status(404, "NotFound")),
            (
                200,
                serde_json::json!({"kind": "ConfigMapList", "apiVersion": "v1",
                "items": [{"metadata": {"name": "x", "namespace": "a"}}]})
                .to_string(),
            ),
            (200, cm.to_string()),
            (409, status(409, "Conflict")),
            (200, status(200, "")),
            (404, status(404, "NotFound")),
        ])
        .await;
        let uri = match url.parse() {
            Ok(u) => u,
            Err(e) => panic!("{e}"),
        };
        let cluster = match KubeCluster::from_config(Config::new(uri)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let r = cluster.resource("v1", "ConfigMap").await;
        let Ok(Some(r)) = r else { panic!("{r:?}") };
        assert_eq!((r.plural.as_str(), r.namespaced), ("configmaps", true));
        // Cached: no second discovery request.
        assert_eq!(
            cluster.resource("v1", "ConfigMap").await,
            Ok(Some(r.clone()))
        );
        assert_eq!(cluster.get(&r, Some("a"), "x").await, Ok(Some(cm.clone())));
        assert_eq!(cluster.get(&r, Some("a"), "y").await, Ok(None));
        let listed = cluster.list(&r, None, "app=x").await;
        let Ok(listed) = listed else {
            panic!("{listed:?}")
        };
        assert_eq!(
            (listed[0]["kind"].as_str(), listed[0]["apiVersion"].as_str()),
            (Some("ConfigMap"), Some("v1"))
        );
        let dry = ApplyParams {
            dry_run: true,
            ..ApplyParams::default()
        };
        assert_eq!(cluster.apply(&r, &cm, &dry).await, Ok(cm.clone()));
        let conflict = cluster.apply(&r, &cm, &ApplyParams::default()).await;
        assert!(
            matches!(conflict, Err(ref e) if e.is_retryable()),
            "{conflict:?}"
        );
        assert_eq!(
            cluster
                .delete(&r, Some("a"), "x", Propagation::Background)
                .await,
            Ok(())
        );
        assert_eq!(
            cluster
                .delete(&r, Some("a"), "x", Propagation::Background)
                .await,
            Ok(())
        );

        let log = match server.await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        let lines: Vec<String> = log
            .iter()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            vec![
                "GET /api/v1 ",
                "GET /api/v1/namespaces/a/configmaps/x ",
                "GET /api/v1/namespaces/a/configmaps/y ",
                "GET /api/v1/configmaps?&labelSelector=app%3Dx ",
                "PATCH /api/v1/namespaces/a/configmaps/x?&dryRun=All&force=true&fieldManager=tally application/apply-patch+yaml",
                "PATCH /api/v1/namespaces/a/configmaps/x?&force=true&fieldManager=tally application/apply-patch+yaml",
                "DELETE /api/v1/namespaces/a/configmaps/x? application/json",
                "DELETE /api/v1/namespaces/a/configmaps/x? application/json",
            ]
        );
        assert!(
            log[4].ends_with(&cm.to_string()),
            "the object is sent as JSON: {}",
            log[4]
        );
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_a_config_error() {
        let options = KubeOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..KubeOptions::default()
        };
        let err = KubeCluster::connect(&options).await.unwrap_err();
        assert!(
            matches!(err, ClusterError::Config(ref m) if m.contains("/nonexistent")),
            "{err}"
        );
    }
}
