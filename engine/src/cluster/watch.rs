//! A watch cache: live state kept current by watches, so the daemon's reconciles read lists from
//! memory instead of the API server.
//!
//! [`Watched`] wraps a cluster that can [`Watch`]. The first labelled list of a kind starts a
//! follower for that kind and selector: one list, then a watch from the list's resourceVersion,
//! resumed from the last version seen when the server ends it, listed again when the server says
//! the version is gone (410). Later lists of the same kind and selector are answered from memory.
//! Writes made through the wrapper are written into the cache at once (the watch confirms them a
//! moment later), so a reconcile never plans against its own stale state.
//!
//! The cache is only trusted while its watch is healthy: when a watch fails, lists go to the
//! server again until the follower has listed afresh. Unlabelled lists (adoption of objects tally
//! has not labelled yet, a Namespace's contents before a prune) and single GETs always go to the
//! server: they are rare, and their answers must be exact.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::Stream;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{
    ApplyParams, Backoff, Cluster, ClusterError, Propagation, Resource, Selector, name_of,
};

/// One event of a watch, as the cache needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// An object was added or modified (its new state).
    Applied(Value),
    /// An object was deleted (its last state).
    Deleted(Value),
    /// Nothing changed up to this resourceVersion.
    Bookmark(String),
    /// The version watched from is too old (410 Gone): list again.
    Gone,
    /// The watch failed.
    Error(ClusterError),
}

/// A stream of watch events; it ends when the server closes the watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// A cluster that can list with a resourceVersion and watch from one.
pub trait Watch: Cluster + 'static {
    /// The objects of a kind matching a label selector, in all namespaces, and the list's
    /// resourceVersion.
    fn list_versioned(
        &self,
        resource: &Resource,
        label_selector: &str,
    ) -> impl Future<Output = Result<(Vec<Value>, String), ClusterError>> + Send;

    /// Changes to the objects of a kind matching a label selector, in all namespaces, after
    /// `resource_version`.
    fn watch(
        &self,
        resource: &Resource,
        label_selector: &str,
        resource_version: &str,
    ) -> impl Future<Output = Result<WatchStream, ClusterError>> + Send;
}

/// Where a follower stands.
#[derive(Debug, Clone, PartialEq)]
enum Sync {
    /// Listing for the first time.
    Pending,
    /// Listed, and the watch is following: the cache is current.
    Current,
    /// The watch broke (or the last list failed): ask the server until the follower recovers.
    Stale,
}

/// One cached object, kept as the JSON text it came as: a tenth of the memory of a parsed
/// `Value`, parsed again (a few milliseconds for a thousand objects) when a list asks for it.
struct Cached {
    /// Its resourceVersion as a number, when it is one.
    version: Option<u64>,
    json: Box<str>,
}

impl Cached {
    fn new(object: &Value) -> Cached {
        Cached {
            version: number(object),
            json: object.to_string().into_boxed_str(),
        }
    }
}

/// The objects of one kind and selector, by (namespace, name).
struct Store {
    objects: Mutex<HashMap<(String, String), Cached>>,
    sync: watch::Sender<Sync>,
    selector: Option<Selector>,
}

impl Store {
    fn key(object: &Value) -> (String, String) {
        let (ns, name) = name_of(object);
        (ns.unwrap_or("").to_owned(), name.to_owned())
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replace(&self, items: Vec<Value>) {
        let mut objects = self.objects();
        objects.clear();
        for v in items {
            objects.insert(Store::key(&v), Cached::new(&v));
        }
        objects.shrink_to_fit();
    }

    /// Records a newer state of an object; an older one (a watch event overtaken by a write this
    /// cache made) is ignored, and an object that no longer matches the selector leaves.
    fn upsert(&self, object: &Value) {
        let key = Store::key(object);
        let mut objects = self.objects();
        if let Some(old) = objects.get(&key)
            && older(object, old)
        {
            return;
        }
        if self.selector.as_ref().is_some_and(|s| !s.matches(object)) {
            objects.remove(&key);
        } else {
            objects.insert(key, Cached::new(object));
        }
    }

    fn remove(&self, object: &Value) {
        let key = Store::key(object);
        let mut objects = self.objects();
        if let Some(old) = objects.get(&key)
            && older(object, old)
        {
            return;
        }
        objects.remove(&key);
    }

    /// The objects (in one namespace, for namespaced kinds) as JSON text.
    fn texts(&self, resource: &Resource, namespace: Option<&str>) -> Vec<Box<str>> {
        let namespace = namespace.filter(|_| resource.namespaced);
        self.objects()
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, c)| c.json.clone())
            .collect()
    }

    /// The objects (in one namespace, for namespaced kinds), or `None` if one cannot be read
    /// back (never expected: the cache wrote it).
    fn snapshot(&self, resource: &Resource, namespace: Option<&str>) -> Option<Vec<Value>> {
        let namespace = namespace.filter(|_| resource.namespaced);
        self.objects()
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, c)| serde_json::from_str(&c.json).ok())
            .collect()
    }
}

/// The resourceVersion of an object.
fn version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// The resourceVersion as a number. Resource versions are opaque to clients, but every API
/// server in use issues increasing integers.
fn number(object: &Value) -> Option<u64> {
    version(object).and_then(|s| s.parse().ok())
}

/// Whether `new` is older than the cached `old`; a version that is not a number is taken as newer.
fn older(new: &Value, old: &Cached) -> bool {
    matches!((number(new), old.version), (Some(n), Some(o)) if n < o)
}

/// What the cache has done, for metrics and tests.
#[derive(Debug, Default)]
struct Counters {
    lists: AtomicU64,
    watches: AtomicU64,
    events: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A snapshot of the cache's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Kinds (with their selector) being followed.
    pub followed: usize,
    /// Objects held.
    pub objects: usize,
    /// Lists the followers sent (the first one and each relist).
    pub lists: u64,
    /// Watches the followers opened (the first one and each resume).
    pub watches: u64,
    /// Watch events received.
    pub events: u64,
    /// Lists answered from memory.
    pub hits: u64,
    /// Lists that had to go to the server (cache stale or being rebuilt).
    pub misses: u64,
}

/// A [`Cluster`] whose labelled lists are served from watches. See the module docs.
pub struct Watched<C> {
    inner: Arc<C>,
    stores: Mutex<HashMap<(Resource, String), Arc<Store>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    counters: Arc<Counters>,
    backoff: Backoff,
}

impl<C> std::fmt::Debug for Watched<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").finish_non_exhaustive()
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl<C: Watch> Watched<C> {
    /// Wraps `inner`. Followers wait between failed lists as `backoff` says (its number of
    /// attempts is ignored: a follower never gives up).
    pub fn new(inner: C, backoff: Backoff) -> Watched<C> {
        Watched {
            inner: Arc::new(inner),
            stores: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            counters: Arc::new(Counters::default()),
            backoff,
        }
    }

    /// The wrapped cluster.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// What the cache holds and has done.
    pub fn stats(&self) -> CacheStats {
        let stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let c = &self.counters;
        CacheStats {
            followed: stores.len(),
            objects: stores.values().map(|s| s.objects().len()).sum(),
            lists: c.lists.load(Ordering::Relaxed),
            watches: c.watches.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
        }
    }

    /// The store of a kind and selector, its follower started on first use.
    fn store(&self, resource: &Resource, selector: &str) -> Arc<Store> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let key = (resource.clone(), selector.to_owned());
        if let Some(s) = stores.get(&key) {
            return Arc::clone(s);
        }
        let store = Arc::new(Store {
            objects: Mutex::new(HashMap::new()),
            sync: watch::channel(Sync::Pending).0,
            selector: Selector::parse(selector),
        });
        stores.insert(key, Arc::clone(&store));
        let task = tokio::spawn(follow(
            Arc::clone(&self.inner),
            Arc::downgrade(&store),
            resource.clone(),
            selector.to_owned(),
            Arc::clone(&self.counters),
            self.backoff,
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        store
    }

    /// The store answering a list of `resource` with `label_selector`, once its first list is in,
    /// if it is current; `None` when the list must go to the server (an unlabelled list, or a
    /// watch that is broken), counted as a miss when a store exists.
    async fn current(&self, resource: &Resource, label_selector: &str) -> Option<Arc<Store>> {
        // Only labelled lists are followed: an unlabelled one would hold a whole kind in memory.
        if label_selector.is_empty() || Selector::parse(label_selector).is_none() {
            return None;
        }
        let store = self.store(resource, label_selector);
        let mut sync = store.sync.subscribe();
        let state = loop {
            let state = sync.borrow_and_update().clone();
            if state != Sync::Pending || sync.changed().await.is_err() {
                break state;
            }
        };
        if state == Sync::Current {
            return Some(store);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// The stores following `resource`, whatever their selector.
    fn stores_of(&self, resource: &Resource) -> Vec<Arc<Store>> {
        self.stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((r, _), _)| r == resource)
            .map(|(_, s)| Arc::clone(s))
            .collect()
    }
}

/// Keeps one store current: list, watch, resume, relist; until the store is dropped.
async fn follow<C: Watch>(
    inner: Arc<C>,
    store: Weak<Store>,
    resource: Resource,
    selector: String,
    counters: Arc<Counters>,
    backoff: Backoff,
) {
    let mut failures = 0u32;
    'list: loop {
        counters.lists.fetch_add(1, Ordering::Relaxed);
        let listed = inner.list_versioned(&resource, &selector).await;
        let Some(s) = store.upgrade() else { return };
        let mut at = match listed {
            Ok((items, version)) => {
                s.replace(items);
                s.sync.send_replace(Sync::Current);
                failures = 0;
                version
            }
            Err(e) => {
                tracing::warn!(kind = %resource.kind, error = %e, "watch cache: list failed");
                s.sync.send_replace(Sync::Stale);
                drop(s);
                tokio::time::sleep(backoff.delay(failures)).await;
                failures = failures.saturating_add(1);
                continue 'list;
            }
        };
        drop(s);
        loop {
            counters.watches.fetch_add(1, Ordering::Relaxed);
            let mut events = match inner.watch(&resource, &selector, &at).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(kind = %resource.kind, error = %e, "watch cache: watch failed");
                    break;
                }
            };
            let mut seen = false;
            while let Some(event) = events.next().await {
                let Some(s) = store.upgrade() else { return };
                counters.events.fetch_add(1, Ordering::Relaxed);
                seen = true;
                match event {
                    WatchEvent::Applied(v) => {
                        if let Some(rv) = version(&v) {
                            at = rv.to_owned();
                        }
                        s.upsert(&v);
                    }
                    WatchEvent::Deleted(v) => {
                        if let Some(rv) = version(&v) {
                            at = rv.to_owned();
                        }
                        s.remove(&v);
                    }
                    WatchEvent::Bookmark(rv) => at = rv,
                    WatchEvent::Gone => {
                        s.sync.send_replace(Sync::Stale);
                        continue 'list;
                    }
                    WatchEvent::Error(e) => {
                        tracing::warn!(kind = %resource.kind, error = %e, "watch cache: watch broke");
                        s.sync.send_replace(Sync::Stale);
                        drop(s);
                        tokio::time::sleep(backoff.delay(failures)).await;
                        failures = failures.saturating_add(1);
                        continue 'list;
                    }
                }
            }
            // The server ended the watch (its timeout, or a dropped connection): resume from the
            // last version seen; the server replays what happened meanwhile. A watch that ends at
            // once, again and again, is not trusted: wait, then list afresh.
            if !seen {
                failures = failures.saturating_add(1);
                if failures > 3 {
                    break;
                }
                tokio::time::sleep(backoff.delay(failures)).await;
            } else {
                failures = 0;
            }
        }
        if let Some(s) = store.upgrade() {
            s.sync.send_replace(Sync::Stale);
        }
        tokio::time::sleep(backoff.delay(failures)).await;
        failures = failures.saturating_add(1);
    }
}

impl<C: Watch> Cluster for Watched<C> {
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        self.inner.resource(api_version, kind).await
    }

    async fn resources(&self) -> Result<Vec<Resource>, ClusterError> {
        self.inner.resources().await
    }

    async fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        self.inner.get(resource, namespace, name).await
    }

    async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        if let Some(store) = self.current(resource, label_selector).await
            && let Some(objects) = store.snapshot(resource, namespace)
        {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(objects);
        }
        self.inner.list(resource, namespace, label_selector).await
    }

    /// The cached text itself: no parsing, no serializing.
    async fn list_text(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Box<str>>, ClusterError> {
        if let Some(store) = self.current(resource, label_selector).await {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(store.texts(resource, namespace));
        }
        self.inner
            .list_text(resource, namespace, label_selector)
            .await
    }

    async fn apply(
        &self,
        resource: &Resource,
        object: &Value,
        params: &ApplyParams,
    ) -> Result<Value, ClusterError> {
        let stored = self.inner.apply(resource, object, params).await?;
        if !params.dry_run {
            for s in self.stores_of(resource) {
                s.upsert(&stored);
            }
        }
        Ok(stored)
    }

    async fn set_managed_fields(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: &str,
        managed_fields: &Value,
    ) -> Result<Value, ClusterError> {
        let stored = self
            .inner
            .set_managed_fields(resource, namespace, name, resource_version, managed_fields)
            .await?;
        for s in self.stores_of(resource) {
            s.upsert(&stored);
        }
        Ok(stored)
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
        self.inner
            .delete(resource, namespace, name, propagation)
            .await?;
        // The object may linger (finalizers); its watch events bring it back until it is gone.
        let gone = serde_json::json!({"metadata": {"namespace": namespace, "name": name}});
        for s in self.stores_of(resource) {
            s.remove(&gone);
        }
        Ok(())
    }
}

/// How long a follower's watch may stay open before the server ends it (the API server's own
/// limit is a few minutes; resuming is cheap).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(290);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(ns: &str, name: &str, rv: &str, app: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "resourceVersion": rv,
            "labels": {"app": app}}})
    }

    fn store(selector: &str) -> Store {
        Store {
            objects: Mutex::new(HashMap::new()),
            sync: watch::channel(Sync::Pending).0,
            selector: Selector::parse(selector),
        }
    }

    #[test]
    fn older_events_never_overwrite_newer_writes() {
        let s = store("app=x");
        s.upsert(&object("a", "n", "10", "x"));
        s.upsert(&object("a", "n", "9", "x"));
        let r = Resource {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        };
        assert_eq!(
            s.snapshot(&r, None),
            Some(vec![object("a", "n", "10", "x")])
        );
        // A delete event older than the write this cache made is ignored too.
        s.remove(&object("a", "n", "8", "x"));
        assert_eq!(s.objects().len(), 1);
        s.remove(&object("a", "n", "11", "x"));
        assert!(s.objects().is_empty());
    }

    #[test]
    fn objects_that_stop_matching_the_selector_leave() {
        let s = store("app=x");
        s.upsert(&object("a", "n", "1", "x"));
        s.upsert(&object("a", "n", "2", "y"));
        assert!(s.objects().is_empty());
    }

    #[test]
    fn snapshots_filter_by_namespace_for_namespaced_kinds() {
        let s = store("app=x");
        s.replace(vec![object("a", "n", "1", "x"), object("b", "n", "1", "x")]);
        let r = |namespaced| Resource {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced,
        };
        let count = |r: &Resource, ns| s.snapshot(r, ns).map(|v| v.len());
        assert_eq!(count(&r(true), Some("a")), Some(1));
        assert_eq!(count(&r(true), None), Some(2));
        assert_eq!(count(&r(false), Some("a")), Some(2));
    }
}
