//! Retries with exponential backoff for transient API failures (429, 5xx, 409, timeouts).

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::watch::{Watch, WatchStream};
use super::{ApplyParams, Cluster, ClusterError, Propagation, Resource};

/// How to retry: at most `attempts` tries, waiting `initial`, then twice as long each time up to
/// `max`, each wait shortened by up to a fifth at random so replicas do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// Six tries over about six seconds.
    fn default() -> Self {
        Backoff {
            attempts: 6,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No waiting between tries (for tests).
    pub fn immediate(attempts: u32) -> Backoff {
        Backoff {
            attempts,
            initial: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// The wait after try `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(self.max);
        base.saturating_sub(base.mul_f64(jitter() * 0.2))
    }
}

/// A number in [0, 1) from the clock: enough to spread retries, no dependency needed.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

/// Runs `op` until it succeeds, fails with an error that retrying cannot fix, or runs out of
/// tries; returns the last result.
pub async fn retry<T, F, Fut>(backoff: &Backoff, mut op: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut n = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && n + 1 < backoff.attempts.max(1) => {
                let wait = backoff.delay(n);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                n += 1;
            }
            other => return other,
        }
    }
}

/// A [`Cluster`] whose every call is retried with [`Backoff`].
#[derive(Debug, Clone)]
pub struct Retrying<C> {
    inner: C,
    backoff: Backoff,
}

impl<C: Cluster> Retrying<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, backoff: Backoff) -> Retrying<C> {
        Retrying { inner, backoff }
    }

    /// The wrapped cluster.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Cluster> Cluster for Retrying<C> {
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        retry(&self.backoff, || self.inner.resource(api_version, kind)).await
    }

    async fn resources(&self) -> Result<Vec<Resource>, ClusterError> {
        retry(&self.backoff, || self.inner.resources()).await
    }

    async fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        retry(&self.backoff, || self.inner.get(resource, namespace, name)).await
    }

    async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        retry(&self.backoff, || {
            self.inner.list(resource, namespace, label_selector)
        })
        .await
    }

    async fn apply(
        &self,
        resource: &Resource,
        object: &Value,
        params: &ApplyParams,
    ) -> Result<Value, ClusterError> {
        retry(&self.backoff, || self.inner.apply(resource, object, params)).await
    }

    async fn set_managed_fields(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: &str,
        managed_fields: &Value,
    ) -> Result<Value, ClusterError> {
        retry(&self.backoff, || {
            self.inner.set_managed_fields(
                resource,
                namespace,
                name,
                resource_version,
                managed_fields,
            )
        })
        .await
    }

    async fn proxy_get(
        &self,
        namespace: &str,
        service: &str,
        port: &str,
        path: &str,
    ) -> Result<(u16, String), ClusterError> {
        // Not retried: a smoke test counts its own attempts.
        self.inner.proxy_get(namespace, service, port, path).await
    }

    async fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        propagation: Propagation,
    ) -> Result<(), ClusterError> {
        retry(&self.backoff, || {
            self.inner.delete(resource, namespace, name, propagation)
        })
        .await
    }
}

impl<C: Watch> Watch for Retrying<C> {
    async fn list_versioned(
        &self,
        resource: &Resource,
        label_selector: &str,
    ) -> Result<(Vec<Value>, String), ClusterError> {
        retry(&self.backoff, || {
            self.inner.list_versioned(resource, label_selector)
        })
        .await
    }

    /// Not retried: the follower resumes or relists by itself.
    async fn watch(
        &self,
        resource: &Resource,
        label_selector: &str,
        resource_version: &str,
    ) -> Result<WatchStream, ClusterError> {
        self.inner
            .watch(resource, label_selector, resource_version)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MemoryCluster, Verb};
    use serde_json::json;

    fn api(code: u16) -> ClusterError {
        ClusterError::Api {
            what: "t".into(),
            code,
            reason: String::new(),
            message: String::new(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let mut calls = 0;
        let r = retry(&Backoff::immediate(5), || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test]
    async fn permanent_errors_and_exhausted_tries_return_the_error() {
        let mut calls = 0;
        let r: Result<(), _> = retry(&Backoff::immediate(5), || {
            calls += 1;
            async { Err(api(422)) }
        })
        .await;
        assert_eq!((r, calls), (Err(api(422)), 1));

        let mut calls = 0;
        let r: Result<(), _> = retry(&Backoff::immediate(3), || {
            calls += 1;
            async { Err(api(429)) }
        })
        .await;
        assert_eq!((r, calls), (Err(api(429)), 3));
    }

    #[test]
    fn delays_grow_and_stay_bounded() {
        let b = Backoff::default();
        assert!(b.delay(0) <= Duration::from_millis(200));
        assert!(b.delay(0) >= Duration::from_millis(160));
        assert!(b.delay(3) >= Duration::from_millis(1280));
        assert!(b.delay(30) <= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_retrying_cluster_rides_out_faults() {
        let memory = MemoryCluster::new();
        memory.fail(Verb::Apply, 2, 503);
        let cluster = Retrying::new(memory, Backoff::immediate(4));
        let Ok(Some(res)) = cluster.resource("v1", "Namespace").await else {
            panic!("Namespace is served");
        };
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        let applied = cluster.apply(&res, &ns, &ApplyParams::default()).await;
        assert!(applied.is_ok(), "{applied:?}");
        assert_eq!(cluster.inner().counts().applies, 3);
    }
}
