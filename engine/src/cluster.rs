//! The cluster as the engine needs it: a small async trait, [`Cluster`], with a real
//! implementation on kube ([`KubeCluster`]), an in-memory one for unit tests (`MemoryCluster`,
//! behind the `testing` feature: never in the shipped binary), and a wrapper that retries transient failures with backoff ([`Retrying`]).
//!
//! Objects travel as `serde_json::Value`, exactly as the API server sends and takes them, so the
//! diff sees what the server stored (managed fields, defaults, status). Every write is a
//! server-side apply by field manager `tally`, forced (tally's repo is the source of truth for
//! the fields it sets), optionally a dry run, optionally as an impersonated user.

use std::future::Future;

use serde_json::Value;

mod kube_cluster;
#[cfg(any(test, feature = "testing"))]
mod memory;
mod retry;
mod watch;

pub use self::kube_cluster::{KubeCluster, KubeOptions};
#[cfg(any(test, feature = "testing"))]
pub use self::memory::{MemoryCluster, RequestCounts, Verb, ready_controller};
pub use self::retry::{Backoff, Retrying, retry};
pub use self::watch::{CacheStats, WATCH_TIMEOUT, Watch, WatchEvent, WatchStream, Watched};

/// How to reach one kind: its API group, version, plural and scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// The plural resource name used in URLs (`deployments`).
    pub plural: String,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

impl Resource {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Options of one server-side apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyParams {
    /// Ask the server to validate and default without storing (`dryRun=All`).
    pub dry_run: bool,
    /// Apply as this user (impersonation), e.g. a tenant's deployer ServiceAccount
    /// `system:serviceaccount:<ns>:tally-deployer`.
    pub as_user: Option<String>,
    /// The field manager, when not `tally` (the handover of fields left to others).
    pub manager: Option<&'static str>,
}

/// How a deletion treats the object's dependents (`propagationPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The object goes at once; the garbage collector deletes its dependents after.
    #[default]
    Background,
    /// The object stays (with a finalizer) until its dependents are gone: when it is gone, so
    /// are its pods.
    Foreground,
}

/// A failed call to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The API server answered with an error status.
    #[error("{what}: the API server answered {code} {reason}: {message}")]
    Api {
        /// What was being done, e.g. `apply Deployment shop/web`.
        what: String,
        /// HTTP status code.
        code: u16,
        /// The status reason (`NotFound`, `Conflict`, `TooManyRequests`, ...).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or did not answer in time.
    #[error("{what}: {message}")]
    Transport {
        /// What was being done.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The cluster does not serve this kind (its CRD is missing, or the version is not served).
    #[error("{api_version} {kind} is not served by the cluster (is its CRD installed?)")]
    UnknownKind {
        /// The `apiVersion` asked for.
        api_version: String,
        /// The kind asked for.
        kind: String,
    },
    /// The client configuration could not be loaded (kubeconfig, in-cluster).
    #[error("cluster configuration: {0}")]
    Config(String),
    /// Anything else: a response that could not be read, an object without a name.
    #[error("{what}: {message}")]
    Other {
        /// What was being done.
        what: String,
        /// What went wrong.
        message: String,
    },
}

impl ClusterError {
    /// Whether retrying may help: throttling (429), server errors (5xx), conflicts (409),
    /// timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClusterError::Api { code, .. } => {
                *code == 429 || *code == 409 || *code == 408 || (500..600).contains(code)
            }
            ClusterError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::Api { code: 404, .. })
    }
}

/// What the engine asks of a cluster. Implementations must be cheap to share across tasks.
pub trait Cluster: Send + Sync {
    /// Discovery: how to reach `kind` of `api_version`, or `None` when the cluster does not serve
    /// it. Implementations should cache, and look again on a miss (a CRD applied a moment ago).
    fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> impl Future<Output = Result<Option<Resource>, ClusterError>> + Send;

    /// Every listable kind the cluster serves, in its preferred version (to see what a Namespace
    /// holds before deleting it).
    fn resources(&self) -> impl Future<Output = Result<Vec<Resource>, ClusterError>> + Send;

    /// One object, or `None` when it does not exist.
    fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;

    /// The objects of a kind matching a label selector (`""` for all), in one namespace or (with
    /// `None`) in all.
    fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;

    /// As [`list`](Cluster::list), each object as JSON text: what a caller that keeps objects
    /// as text and reads them one at a time wants, and what a cache that keeps them so (the
    /// daemon's watch cache) hands out without parsing them.
    fn list_text(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> impl Future<Output = Result<Vec<Box<str>>, ClusterError>> + Send {
        async move {
            Ok(self
                .list(resource, namespace, label_selector)
                .await?
                .iter()
                .map(|v| v.to_string().into_boxed_str())
                .collect())
        }
    }

    /// Server-side apply of `object` by field manager `tally`, forced. Returns the object as the
    /// server stored it (or would, on a dry run).
    fn apply(
        &self,
        resource: &Resource,
        object: &Value,
        params: &ApplyParams,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Replaces an object's `metadata.managedFields`, if it is still at `resource_version` (a
    /// merge patch that carries the version as its precondition): how tally takes over the
    /// fields other managers recorded. Returns the object as stored.
    fn set_managed_fields(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: &str,
        managed_fields: &Value,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// An HTTP GET of `path` on a Service's `port` (number or name) through the API server's
    /// Service proxy: the status and body the Service's pods answered (or the API server's
    /// own, 503, when no endpoint is ready). How a smoke test reaches a Service without any
    /// network path into the cluster.
    fn proxy_get(
        &self,
        namespace: &str,
        service: &str,
        port: &str,
        path: &str,
    ) -> impl Future<Output = Result<(u16, String), ClusterError>> + Send {
        let what = format!("GET {path} on Service {namespace}/{service}:{port}");
        async move {
            Err(ClusterError::Other {
                what,
                message: "this cluster has no Service proxy".into(),
            })
        }
    }

    /// Deletes an object, its dependents as `propagation` says. An object already gone is not
    /// an error.
    fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        propagation: Propagation,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
}

/// `Kind ns/name` for messages.
pub fn describe(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", resource.kind),
        None => format!("{} {name}", resource.kind),
    }
}

/// The name and namespace of an object given as JSON.
pub fn name_of(object: &Value) -> (Option<&str>, &str) {
    let s = |p: &str| object.pointer(p).and_then(Value::as_str);
    (s("/metadata/namespace"), s("/metadata/name").unwrap_or(""))
}

/// A label selector as tally writes them: `k=v` terms joined by commas (also `k!=v`, `k`, `!k`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Term>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Selector {
    /// Parses a selector; unknown syntax (set-based `in (...)`) matches nothing.
    pub fn parse(text: &str) -> Option<Selector> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let term = if let Some((k, v)) = part.split_once("!=") {
                Term::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Term::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Term::Absent(k.trim().into())
            } else if part.contains(' ') || part.contains('(') {
                return None;
            } else {
                Term::Exists(part.into())
            };
            terms.push(term);
        }
        Some(Selector(terms))
    }

    /// Whether an object's labels match.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|t| match t {
            Term::Equals(k, v) => label(k) == Some(v.as_str()),
            Term::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Term::Exists(k) => label(k).is_some(),
            Term::Absent(k) => label(k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_labels() {
        let o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let yes = ["", "a=1", "a==1,b=2", "a", "!c", "b!=3"];
        let no = ["a=2", "c", "!a", "b!=2"];
        for s in yes {
            assert!(Selector::parse(s).is_some_and(|x| x.matches(&o)), "{s}");
        }
        for s in no {
            assert!(Selector::parse(s).is_some_and(|x| !x.matches(&o)), "{s}");
        }
        assert_eq!(Selector::parse("a in (1,2)"), None);
    }

    #[test]
    fn retryable_errors_are_transient_ones() {
        let api = |code| ClusterError::Api {
            what: "x".into(),
            code,
            reason: String::new(),
            message: String::new(),
        };
        for code in [429, 409, 500, 503, 504] {
            assert!(api(code).is_retryable(), "{code}");
        }
        for code in [400, 403, 404, 422] {
            assert!(!api(code).is_retryable(), "{code}");
        }
        assert!(api(404).is_not_found());
        assert!(
            ClusterError::Transport {
                what: "get".into(),
                message: "timed out".into()
            }
            .is_retryable()
        );
    }
}
