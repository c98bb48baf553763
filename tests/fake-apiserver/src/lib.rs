//! A fake Kubernetes API server that speaks real HTTP, so tally's binary and its kube client can
//! be tested end to end without a cluster.
//!
//! What it is: discovery, get/list (label and field selectors)/watch (resourceVersion,
//! bookmarks, 410 for expired versions), create, update, merge/JSON patch, server-side apply
//! (merge by key, managed fields, conflicts, force, dry-run), delete (namespace cascade),
//! status subresources, CRD registration, a simulated controller that fills in workload status,
//! fault injection, and a request log with counters.
//!
//! What it is not: an API server. There is no authentication, admission, validation against
//! schemas, garbage collection of owned objects or pods. It is test support; every shortcut is
//! listed in the crate's README.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tally_fake_apiserver::Error> {
//! use tally_fake_apiserver::{Config, FakeApiServer};
//! let server = FakeApiServer::start(Config::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! println!("{}", server.url());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod clock;
mod cluster;
mod controller;
mod endpoints;
mod faults;
pub mod fields;
mod rbac;
mod requests;
mod resources;
mod selector;
mod server;
pub mod ssa;
mod status;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admission::Mutation;
pub use cluster::{ObjectKey, WatchStart};
pub use endpoints::SMOKE_FAIL_MARKER;
pub use faults::{Fault, Faults};
pub use requests::{Counters, RequestRecord, Verb};
pub use resources::{Registry, ResourceType};
pub use selector::{FieldSelector, LabelSelector};
pub use status::ApiError;

use cluster::{Cluster, WriteOptions};

/// Errors starting or using the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address tried.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A runtime for a background server could not be built.
    #[error("cannot start a runtime for the fake API server: {0}")]
    Runtime(std::io::Error),
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A resource name was not recognised.
    #[error("unknown resource {0:?}")]
    UnknownResource(String),
    /// The API refused a write made through [`Store`].
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// The simulated controllers' settings.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Whether workloads, Jobs and PVCs get a status at all (CRDs are always established).
    pub enabled: bool,
    /// Time from a rollout's start until the workload reports ready (Jobs complete, PVCs bind).
    pub ready_delay: Duration,
    /// A container image containing this string never becomes ready (empty: none fails).
    pub fail_image_marker: String,
    /// Overrides every Deployment's `spec.progressDeadlineSeconds`, so a failing rollout is
    /// reported quickly in tests. `None` uses the spec (default 600 s).
    pub progress_deadline: Option<Duration>,
    /// Time from a CRD's creation until it is Established and served.
    pub crd_established_delay: Duration,
    /// Nodes a DaemonSet schedules onto.
    pub nodes: u32,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            enabled: true,
            ready_delay: Duration::from_millis(50),
            fail_image_marker: "fail".into(),
            progress_deadline: None,
            crd_established_delay: Duration::ZERO,
            nodes: 1,
        }
    }
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The simulated controllers.
    pub controller: ControllerConfig,
    /// Changes kept for watches to resume from; older versions get 410 Gone.
    pub watch_history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Create `default`, `kube-system`, `kube-public` and `kube-node-lease` at start.
    pub seed_namespaces: bool,
    /// The Kubernetes version `/version` reports (major, minor).
    pub kubernetes_version: (u32, u32),
    /// Simulated mutating admission webhooks.
    pub mutations: Vec<Mutation>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            controller: ControllerConfig::default(),
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            seed_namespaces: true,
            kubernetes_version: (1, 33),
            mutations: Vec::new(),
        }
    }
}

impl Config {
    /// Sets the time until workloads report ready.
    pub fn with_ready_delay(mut self, delay: Duration) -> Self {
        self.controller.ready_delay = delay;
        self
    }

    /// Sets the progress deadline for every Deployment.
    pub fn with_progress_deadline(mut self, deadline: Duration) -> Self {
        self.controller.progress_deadline = Some(deadline);
        self
    }

    /// Turns the workload controllers off (statuses stay empty).
    pub fn without_controller(mut self) -> Self {
        self.controller.enabled = false;
        self
    }

    /// Adds a simulated mutating webhook: every write of `resource` (`deployments.apps`) gets
    /// `value` at JSON `pointer`.
    pub fn with_mutation(mut self, resource: &str, pointer: &str, value: Value) -> Self {
        self.mutations.push(Mutation {
            resource: resource.into(),
            pointer: pointer.into(),
            value,
        });
        self
    }

    /// Sets the port (0: any free port).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

/// Starts fake API servers.
pub struct FakeApiServer;

impl FakeApiServer {
    /// Binds 127.0.0.1 and serves in the current tokio runtime until the handle is shut down or
    /// dropped.
    pub async fn start(config: Config) -> Result<Handle, Error> {
        start(config).await
    }

    /// Starts the server on a runtime of its own, for synchronous tests (e.g. ones that run the
    /// `tally` binary with `std::process::Command`). Must not be called from async code.
    pub fn start_in_background(config: Config) -> Result<Handle, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-apiserver")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let mut handle = runtime.block_on(start(config))?;
        handle.runtime = Some(runtime);
        Ok(handle)
    }
}

async fn start(config: Config) -> Result<Handle, Error> {
    let address = format!("127.0.0.1:{}", config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| Error::Bind {
            address: address.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { address, source })?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
        ^ u64::from(addr.port());
    let cluster = Arc::new(Cluster::new(config.watch_history, seed));
    cluster.set_mutations(config.mutations.clone());
    if config.seed_namespaces
        && let Some(ns) = cluster.resolve("", "v1", "namespaces")
    {
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            cluster.put_raw(
                &ns,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )?;
        }
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let faults = Arc::new(Faults::default());
    let app = Arc::new(server::App {
        cluster: cluster.clone(),
        faults: faults.clone(),
        log: Mutex::new(Vec::new()),
        seq: AtomicU64::new(0),
        open_watches: Arc::new(AtomicUsize::new(0)),
        shutdown: shutdown_rx.clone(),
        bookmark_interval: config.bookmark_interval.max(Duration::from_millis(10)),
        address: addr.to_string(),
        version: config.kubernetes_version,
    });
    let router = axum::Router::new()
        .fallback(server::handle)
        .with_state(app.clone());
    let mut stop = shutdown_rx.clone();
    let serve = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        // Errors here only end the server; the handle's owner sees requests fail.
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(graceful)
            .await;
    });
    let controller = tokio::spawn(controller::run(
        cluster.clone(),
        config.controller.clone(),
        shutdown_rx,
    ));
    Ok(Handle {
        addr,
        app,
        cluster,
        faults,
        shutdown: shutdown_tx,
        tasks: vec![serve, controller],
        runtime: None,
    })
}

/// A running fake API server. Dropping it stops the server.
pub struct Handle {
    addr: SocketAddr,
    app: Arc<server::App>,
    cluster: Arc<Cluster>,
    faults: Arc<Faults>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Handle {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig with one cluster, user and context, all named `fake`, no authentication.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    \
             user: fake\n    namespace: default\ncurrent-context: fake\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Handle::kubeconfig`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig()).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Every request answered so far, in order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.app
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts of the request log, per verb and resource.
    pub fn counters(&self) -> Counters {
        let log = self.app.log.lock().unwrap_or_else(PoisonError::into_inner);
        Counters::from_log(&log)
    }

    /// Empties the request log (counters start again from zero).
    pub fn reset_request_log(&self) {
        self.app
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Watches currently streaming.
    pub fn open_watches(&self) -> usize {
        self.app.open_watches.load(Ordering::SeqCst)
    }

    /// Fault injection: errors, latency, dropped watches.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Direct access to the stored objects, bypassing HTTP (and the request log).
    pub fn store(&self) -> Store {
        Store {
            cluster: self.cluster.clone(),
        }
    }

    /// Stops serving; open watches end. Also happens on drop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Direct access to the fake cluster's objects, for assertions and for out-of-band edits
/// (drift). Resources are named `plural.group` (`deployments.apps`), or by plural or short name
/// for the core group (`configmaps`, `ns`). Writes bump resourceVersions and reach watches like
/// any other write; they are not in the request log.
#[derive(Clone)]
pub struct Store {
    cluster: Arc<Cluster>,
}

impl Store {
    fn resource(&self, resource: &str) -> Result<ResourceType, Error> {
        self.cluster
            .resolve_name(resource)
            .ok_or_else(|| Error::UnknownResource(resource.to_string()))
    }

    fn resource_of(&self, object: &Value) -> Result<ResourceType, Error> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.cluster
            .resolve_kind(api_version, kind)
            .ok_or_else(|| Error::UnknownResource(format!("{api_version} {kind}")))
    }

    /// One object; `namespace` is ignored for cluster-scoped resources.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = self.resource(resource).ok()?;
        self.cluster.get(&rt, namespace, name).ok()
    }

    /// Objects of a resource in a namespace (or all namespaces with `None`).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        match self.resource(resource) {
            Ok(rt) => self.cluster.list(&rt, namespace, |_| true).0,
            Err(_) => Vec::new(),
        }
    }

    /// Every stored object's key.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.cluster.keys()
    }

    /// Number of stored objects (including seeded namespaces).
    pub fn len(&self) -> usize {
        self.cluster.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.cluster.resource_version()
    }

    /// Creates an object as `manager` (POST semantics: 409 if it exists).
    pub fn create(&self, manager: &str, object: Value) -> Result<Value, Error> {
        let rt = self.resource_of(&object)?;
        let version = version_of(&object, &rt);
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let opts = WriteOptions {
            manager,
            dry_run: false,
            force: false,
        };
        Ok(self
            .cluster
            .create(&rt, &version, ns.as_deref(), object, opts)?)
    }

    /// Server-side applies an object as `manager`, as `PATCH ...?fieldManager=manager&force=...`.
    pub fn apply(&self, manager: &str, object: Value, force: bool) -> Result<Value, Error> {
        let rt = self.resource_of(&object)?;
        let version = version_of(&object, &rt);
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let opts = WriteOptions {
            manager,
            dry_run: false,
            force,
        };
        Ok(self
            .cluster
            .apply(&rt, &version, ns.as_deref(), &name, &object, false, opts)?
            .0)
    }

    /// An out-of-band edit, as `kubectl edit` would make it: `edit` changes a copy of the live
    /// object, which is then written as an Update by `manager` (taking ownership of the fields
    /// it changed). This is how tests simulate drift.
    pub fn edit(
        &self,
        manager: &str,
        resource: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let rt = self.resource(resource)?;
        let mut object = self.cluster.get(&rt, namespace, name)?;
        edit(&mut object);
        let version = version_of(&object, &rt);
        let ns = rt.namespaced.then_some(namespace);
        let opts = WriteOptions {
            manager,
            dry_run: false,
            force: false,
        };
        Ok(self
            .cluster
            .replace(&rt, &version, ns, name, object, false, opts)?)
    }

    /// Replaces an object's status, as a controller would.
    pub fn set_status(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<(), Error> {
        let rt = self.resource(resource)?;
        let key = cluster::key_of(&rt, namespace, name);
        self.cluster.get(&rt, namespace, name)?;
        self.cluster.write_status(&key, status, "tests");
        Ok(())
    }

    /// Deletes an object (a namespace with its contents).
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, Error> {
        let rt = self.resource(resource)?;
        let ns = rt.namespaced.then_some(namespace);
        Ok(self.cluster.delete(&rt, ns, name, None, false)?)
    }

    /// Forgets the watch history: watches resuming from any earlier version get 410 Gone.
    pub fn compact(&self) {
        self.cluster.compact();
    }

    /// The resource types currently served (built-in and registered CRDs).
    pub fn registry(&self) -> Registry {
        self.cluster.registry()
    }
}

fn version_of(object: &Value, rt: &ResourceType) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|v| resources::split_api_version(v).1.to_string())
        .unwrap_or_else(|| rt.versions.first().cloned().unwrap_or_default())
}
