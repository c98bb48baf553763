//! An in-memory cluster for tests of the plan and apply loop: discovery of the built-in kinds
//! (and of CRDs once applied), a server-side apply that merges, records tally's managed fields,
//! bumps generations and keeps status, namespaces that must exist, cascading deletes, a
//! "controller" hook that fills status, fault injection and request counters.
//!
//! It is not an API server: no validation beyond names and namespaces, no admission, no watch.
//! The end-to-end tests use the fake API server for that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

use super::{ApplyParams, Cluster, ClusterError, Propagation, Resource, Selector, describe};
use crate::fields::{self, MANAGER};

/// A kind of request, for counting and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Discovery (`resource`, `resources`).
    Discovery,
    /// Get one object.
    Get,
    /// List objects.
    List,
    /// Server-side apply (dry runs included).
    Apply,
    /// Delete.
    Delete,
}

/// How many requests of each kind the cluster received (failed ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Discovery look-ups.
    pub discovery: usize,
    /// Gets.
    pub gets: usize,
    /// Lists.
    pub lists: usize,
    /// Applies that would store (not dry runs).
    pub applies: usize,
    /// Dry-run applies.
    pub dry_runs: usize,
    /// Deletes.
    pub deletes: usize,
}

impl RequestCounts {
    /// Requests that change the cluster.
    pub fn writes(&self) -> usize {
        self.applies + self.deletes
    }
}

type Controller = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// (group, kind, namespace or "", name): objects are stored once whatever the version.
type Key = (String, String, String, String);

struct State {
    resources: Vec<Resource>,
    objects: BTreeMap<Key, Value>,
    counts: RequestCounts,
    /// (verb, requests to let through first, requests to fail, code)
    faults: Vec<(Verb, usize, usize, u16)>,
    controller: Controller,
    next_version: u64,
    log: Vec<String>,
}

/// The in-memory [`Cluster`]. Cheap to share behind a reference; all methods take `&self`.
pub struct MemoryCluster {
    state: Mutex<State>,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        MemoryCluster::new()
    }
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryCluster")
            .field("objects", &s.objects.len())
            .field("counts", &s.counts)
            .finish()
    }
}

/// The built-in kinds it serves: (group, version, kind, plural, namespaced).
const BUILTIN: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Namespace", "namespaces", false),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    ("", "v1", "Service", "services", true),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    ("", "v1", "PersistentVolume", "persistentvolumes", false),
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Event", "events", true),
    ("", "v1", "ResourceQuota", "resourcequotas", true),
    ("", "v1", "LimitRange", "limitranges", true),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("batch", "v1", "Job", "jobs", true),
    ("batch", "v1", "CronJob", "cronjobs", true),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("coordination.k8s.io", "v1", "Lease", "leases", true),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
];

impl MemoryCluster {
    /// An empty cluster serving the built-in kinds, whose workloads become ready as soon as they
    /// are applied ([`ready_controller`]).
    pub fn new() -> MemoryCluster {
        let resources = BUILTIN
            .iter()
            .map(|(g, v, k, p, n)| Resource {
                group: (*g).into(),
                version: (*v).into(),
                kind: (*k).into(),
                plural: (*p).into(),
                namespaced: *n,
            })
            .collect();
        MemoryCluster {
            state: Mutex::new(State {
                resources,
                objects: BTreeMap::new(),
                counts: RequestCounts::default(),
                faults: Vec::new(),
                controller: Arc::new(ready_controller),
                next_version: 1,
                log: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the controller that runs on every stored apply (to fill status).
    pub fn set_controller(&self, controller: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.lock().controller = Arc::new(controller);
    }

    /// Makes the next `times` requests of `verb` fail with HTTP `code`.
    pub fn fail(&self, verb: Verb, times: usize, code: u16) {
        self.fail_after(verb, 0, times, code);
    }

    /// Lets `after` requests of `verb` through, then fails the next `times` with HTTP `code`.
    pub fn fail_after(&self, verb: Verb, after: usize, times: usize, code: u16) {
        self.lock().faults.push((verb, after, times, code));
    }

    /// Stores an object as given (someone else's object, or a state to start from).
    pub fn insert(&self, mut object: Value) {
        let mut s = self.lock();
        let version = s.next_version;
        s.next_version += 1;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(version.to_string()));
            meta.entry("uid")
                .or_insert_with(|| json!(format!("uid-{version}")));
        }
        let key = key_of(&object);
        s.objects.insert(key, object);
    }

    /// Changes a stored object in place (drift, a controller's status); `false` if absent.
    pub fn modify(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let mut s = self.lock();
        let found = s
            .objects
            .iter_mut()
            .find(|((_, k, ns, n), _)| k == kind && ns == namespace.unwrap_or("") && n == name);
        match found {
            Some((_, v)) => {
                f(v);
                true
            }
            None => false,
        }
    }

    /// A stored object by kind, namespace and name.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .iter()
            .find(|((_, k, ns, n), _)| k == kind && ns == namespace.unwrap_or("") && n == name)
            .map(|(_, v)| v.clone())
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.values().cloned().collect()
    }

    /// The requests received so far.
    pub fn counts(&self) -> RequestCounts {
        self.lock().counts
    }

    /// Forgets the requests received so far (counters and log).
    pub fn reset_counts(&self) {
        let mut s = self.lock();
        s.counts = RequestCounts::default();
        s.log.clear();
    }

    /// The writes received, in order: `apply Deployment shop/web`, `delete ConfigMap shop/x`,
    /// with ` as USER` for impersonated ones.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn enter(&self, verb: Verb, what: &str) -> Result<MutexGuard<'_, State>, ClusterError> {
        self.enter_apply(verb, false, what)
    }

    fn enter_apply(
        &self,
        verb: Verb,
        dry_run: bool,
        what: &str,
    ) -> Result<MutexGuard<'_, State>, ClusterError> {
        let mut s = self.lock();
        match verb {
            Verb::Discovery => s.counts.discovery += 1,
            Verb::Get => s.counts.gets += 1,
            Verb::List => s.counts.lists += 1,
            Verb::Apply if dry_run => s.counts.dry_runs += 1,
            Verb::Apply => s.counts.applies += 1,
            Verb::Delete => s.counts.deletes += 1,
        }
        if let Some(fault) = s
            .faults
            .iter_mut()
            .find(|(v, _, n, _)| *v == verb && *n > 0)
        {
            if fault.1 > 0 {
                fault.1 -= 1;
                return Ok(s);
            }
            fault.2 -= 1;
            let code = fault.3;
            return Err(ClusterError::Api {
                what: what.to_owned(),
                code,
                reason: "Injected".into(),
                message: "an injected fault".into(),
            });
        }
        Ok(s)
    }
}

fn key_of(object: &Value) -> Key {
    let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    (
        crate::wave::group_of(s("/apiVersion")).to_owned(),
        s("/kind").to_owned(),
        s("/metadata/namespace").to_owned(),
        s("/metadata/name").to_owned(),
    )
}

fn not_found(what: &str, message: String) -> ClusterError {
    ClusterError::Api {
        what: what.to_owned(),
        code: 404,
        reason: "NotFound".into(),
        message,
    }
}

impl State {
    fn find_resource(&self, group: &str, version: &str, kind: &str) -> Option<Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    fn apply(
        &mut self,
        resource: &Resource,
        object: &Value,
        what: &str,
    ) -> Result<Value, ClusterError> {
        let invalid = |message: &str| ClusterError::Api {
            what: what.to_owned(),
            code: 422,
            reason: "Invalid".into(),
            message: message.to_owned(),
        };
        let (_, name) = super::name_of(object);
        if name.is_empty() {
            return Err(invalid("metadata.name: Required value"));
        }
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != resource.kind {
            return Err(invalid("kind does not match the resource"));
        }
        let mut applied = crate::diff::normalized(object).into_owned();
        if let Some(o) = applied.as_object_mut() {
            o.remove("status");
            if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in [
                    "managedFields",
                    "resourceVersion",
                    "uid",
                    "generation",
                    "creationTimestamp",
                ] {
                    meta.remove(k);
                }
                if resource.namespaced {
                    meta.entry("namespace").or_insert_with(|| json!("default"));
                } else {
                    meta.remove("namespace");
                }
            }
        }
        if resource.namespaced {
            let ns = applied
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned();
            let key = (
                String::new(),
                "Namespace".to_owned(),
                String::new(),
                ns.clone(),
            );
            if !self.objects.contains_key(&key) {
                return Err(not_found(what, format!("namespaces \"{ns}\" not found")));
            }
        }
        let key = key_of(&applied);
        let existing = self.objects.get(&key);
        let mut stored = match existing {
            Some(old) => {
                let mut base = old.clone();
                let ownership = fields::Ownership::of(old);
                if let Some(owned) = ownership.tally {
                    drop_released(&mut base, owned, &applied);
                }
                merge_into(&mut base, &applied, "");
                base
            }
            None => applied.clone(),
        };
        let generation = match existing {
            Some(old) if spec_of(old) == spec_of(&stored) => generation_of(old),
            Some(old) => generation_of(old) + 1,
            None => 1,
        };
        let version = self.next_version;
        self.next_version += 1;
        let mut set = fields::field_set(&applied);
        if let Some(m) = set.as_object_mut() {
            m.remove("f:apiVersion");
            m.remove("f:kind");
        }
        let entry = json!({"manager": MANAGER, "operation": "Apply",
            "apiVersion": resource.api_version(), "fieldsType": "FieldsV1", "fieldsV1": set});
        if let Some(meta) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
            let mut managed: Vec<Value> = match meta.remove("managedFields") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            managed.retain(|m| {
                !(m.get("manager").and_then(Value::as_str) == Some(MANAGER)
                    && m.get("operation").and_then(Value::as_str) == Some("Apply"))
            });
            managed.push(entry);
            meta.insert("managedFields".into(), Value::Array(managed));
            meta.insert("generation".into(), json!(generation));
            meta.insert("resourceVersion".into(), json!(version.to_string()));
            meta.entry("uid")
                .or_insert_with(|| json!(format!("uid-{version}")));
            meta.entry("creationTimestamp")
                .or_insert_with(|| json!("2024-01-01T00:00:00Z"));
        }
        if let Some(o) = stored.as_object_mut() {
            o.insert("apiVersion".into(), json!(resource.api_version()));
            if let Some(status) = existing.and_then(|e| e.get("status")) {
                o.insert("status".into(), status.clone());
            }
        }
        match (resource.group.as_str(), resource.kind.as_str()) {
            ("", "Namespace") => {
                stored["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                stored["status"] = json!({"conditions": [
                    {"type": "NamesAccepted", "status": "True"},
                    {"type": "Established", "status": "True"}]});
            }
            _ => {}
        }
        (self.controller)(&mut stored);
        Ok(stored)
    }

    fn register_crd(&mut self, crd: &Value) {
        let s = |p: &str| {
            crd.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (group, kind, plural) = (
            s("/spec/group"),
            s("/spec/names/kind"),
            s("/spec/names/plural"),
        );
        let namespaced = s("/spec/scope") != "Cluster";
        let versions = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for v in versions {
            let served = v.get("served").and_then(Value::as_bool).unwrap_or(true);
            let Some(version) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            if served && self.find_resource(&group, version, &kind).is_none() {
                self.resources.push(Resource {
                    group: group.clone(),
                    version: version.to_owned(),
                    kind: kind.clone(),
                    plural: plural.clone(),
                    namespaced,
                });
            }
        }
    }
}

fn spec_of(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

fn generation_of(v: &Value) -> i64 {
    v.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Removes from `base` the fields tally owned (`owned`) that `applied` no longer sets, as
/// server-side apply does.
fn drop_released(base: &mut Value, owned: &Map<String, Value>, applied: &Value) {
    for (key, child) in owned {
        if let Some(name) = key.strip_prefix("f:") {
            let Some(b) = base.as_object_mut() else {
                continue;
            };
            match applied.get(name) {
                None | Some(Value::Null) => {
                    b.remove(name);
                }
                Some(a) => {
                    if let (Some(bv), Some(c)) = (b.get_mut(name), child.as_object())
                        && !c.is_empty()
                    {
                        drop_released(bv, c, a);
                    }
                }
            }
        } else if let Some(json) = key.strip_prefix("k:") {
            let Ok(k) = serde_json::from_str::<Map<String, Value>>(json) else {
                continue;
            };
            let is_item = |i: &Value| {
                k.iter()
                    .all(|(f, v)| i.get(f).is_some_and(|x| crate::fields::same_scalar(v, x)))
            };
            let wanted = applied
                .as_array()
                .and_then(|a| a.iter().find(|i| is_item(i)));
            let Some(items) = base.as_array_mut() else {
                continue;
            };
            match wanted {
                None => items.retain(|i| !is_item(i)),
                Some(a) => {
                    if let (Some(item), Some(c)) =
                        (items.iter_mut().find(|i| is_item(i)), child.as_object())
                    {
                        drop_released(item, c, a);
                    }
                }
            }
        }
    }
}

/// Merges `applied` into `base`: maps field by field, keyed lists item by item, anything else
/// replaced.
fn merge_into(base: &mut Value, applied: &Value, field: &str) {
    match (base, applied) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(bv) => merge_into(bv, v, k),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            let items: Vec<&Value> = a.iter().chain(b.iter()).collect();
            let Some(keys) = fields::known_list_keys(field, &items) else {
                *b = a.clone();
                return;
            };
            for ai in a {
                let same = |bi: &Value| {
                    keys.iter().all(|k| match (ai.get(k), bi.get(k)) {
                        (Some(x), Some(y)) => crate::fields::same_scalar(x, y),
                        (None, _) => true,
                        (Some(_), None) => false,
                    })
                };
                match b.iter_mut().find(|bi| same(bi)) {
                    Some(bi) => merge_into(bi, ai, field),
                    None => b.push(ai.clone()),
                }
            }
        }
        (b, a) => *b = a.clone(),
    }
}

/// The default controller: workloads, jobs, pods and claims become healthy at once.
pub fn ready_controller(object: &mut Value) {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let generation = generation_of(object);
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status = match kind {
        "Deployment" => json!({"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
        "StatefulSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas,
            "currentReplicas": replicas, "currentRevision": "r1", "updateRevision": "r1"}),
        "DaemonSet" => json!({"observedGeneration": generation, "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1, "updatedNumberScheduled": 1, "numberReady": 1,
            "numberAvailable": 1}),
        "ReplicaSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas}),
        "Job" => json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
        "Pod" => json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        "PersistentVolumeClaim" => json!({"phase": "Bound"}),
        _ => return,
    };
    object["status"] = status;
}

impl Cluster for MemoryCluster {
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        let s = self.enter(Verb::Discovery, &format!("discover {api_version} {kind}"))?;
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        Ok(s.find_resource(group, version, kind))
    }

    async fn resources(&self) -> Result<Vec<Resource>, ClusterError> {
        let s = self.enter(Verb::Discovery, "discover every resource")?;
        // The preferred version of each kind: the first registered.
        let mut out: Vec<Resource> = Vec::new();
        for r in &s.resources {
            if !out.iter().any(|o| o.group == r.group && o.kind == r.kind) {
                out.push(r.clone());
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
        let s = self.enter(Verb::Get, &what)?;
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.unwrap_or("").to_owned(),
            name.to_owned(),
        );
        Ok(s.objects.get(&key).map(|v| with_version(v, resource)))
    }

    async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let what = format!("list {}", resource.kind);
        let s = self.enter(Verb::List, &what)?;
        let Some(selector) = Selector::parse(label_selector) else {
            return Err(ClusterError::Api {
                what,
                code: 400,
                reason: "BadRequest".into(),
                message: format!("unsupported selector {label_selector:?}"),
            });
        };
        Ok(s.objects
            .iter()
            .filter(|((g, k, ns, _), v)| {
                *g == resource.group
                    && *k == resource.kind
                    && namespace.is_none_or(|want| want == ns)
                    && selector.matches(v)
            })
            .map(|(_, v)| with_version(v, resource))
            .collect())
    }

    async fn apply(
        &self,
        resource: &Resource,
        object: &Value,
        params: &ApplyParams,
    ) -> Result<Value, ClusterError> {
        let (ns, name) = super::name_of(object);
        let ns = resource.namespaced.then(|| ns.unwrap_or("default"));
        let what = format!("apply {}", describe(resource, ns, name));
        let mut s = self.enter_apply(Verb::Apply, params.dry_run, &what)?;
        let stored = s.apply(resource, object, &what)?;
        if !params.dry_run {
            let entry = match &params.as_user {
                Some(user) => format!("{what} as {user}"),
                None => what,
            };
            s.log.push(entry);
            if resource.group == "apiextensions.k8s.io"
                && resource.kind == "CustomResourceDefinition"
            {
                s.register_crd(&stored);
            }
            s.objects.insert(key_of(&stored), stored.clone());
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
        let what = format!(
            "take over the fields of {}",
            describe(resource, namespace, name)
        );
        let mut s = self.enter(Verb::Apply, &what)?;
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.unwrap_or("").to_owned(),
            name.to_owned(),
        );
        let Some(object) = s.objects.get_mut(&key) else {
            return Err(ClusterError::Api {
                what,
                code: 404,
                reason: "NotFound".into(),
                message: format!("{name} not found"),
            });
        };
        let current = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !resource_version.is_empty() && !current.is_empty() && current != resource_version {
            return Err(ClusterError::Api {
                what,
                code: 409,
                reason: "Conflict".into(),
                message: "the object has been modified".into(),
            });
        }
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("managedFields".into(), managed_fields.clone());
        }
        let stored = object.clone();
        s.log.push(what);
        Ok(stored)
    }

    async fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        _propagation: Propagation,
    ) -> Result<(), ClusterError> {
        let what = format!("delete {}", describe(resource, namespace, name));
        let mut s = self.enter(Verb::Delete, &what)?;
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.unwrap_or("").to_owned(),
            name.to_owned(),
        );
        let Some(removed) = s.objects.remove(&key) else {
            return Ok(());
        };
        s.log.push(what);
        match (resource.group.as_str(), resource.kind.as_str()) {
            ("", "Namespace") => s.objects.retain(|(_, _, ns, _), _| ns != name),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let g = |p: &str| {
                    removed
                        .pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                let (group, kind) = (g("/spec/group"), g("/spec/names/kind"));
                s.objects
                    .retain(|(og, ok, _, _), _| !(*og == group && *ok == kind));
                s.resources
                    .retain(|r| !(r.group == group && r.kind == kind));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A stored object as served in `resource`'s version.
fn with_version(v: &Value, resource: &Resource) -> Value {
    let mut v = v.clone();
    v["apiVersion"] = json!(resource.api_version());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Change, diff};

    async fn res(c: &MemoryCluster, api: &str, kind: &str) -> Resource {
        match c.resource(api, kind).await {
            Ok(Some(r)) => r,
            other => panic!("{api} {kind}: {other:?}"),
        }
    }

    fn ns(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    }

    #[tokio::test]
    async fn apply_merges_records_ownership_and_round_trips_through_the_diff() {
        let c = MemoryCluster::new();
        let nsr = res(&c, "v1", "Namespace").await;
        c.apply(&nsr, &ns("shop"), &ApplyParams::default())
            .await
            .unwrap();
        let dep = res(&c, "apps/v1", "Deployment").await;
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}});
        let stored = c.apply(&dep, &d, &ApplyParams::default()).await.unwrap();
        assert_eq!(stored["metadata"]["generation"], 1);
        assert_eq!(stored["status"]["readyReplicas"], 2);
        assert_eq!(diff(&d, Some(&stored)), Change::Unchanged);

        // Someone else's label survives; tally's dropped label goes.
        c.modify("Deployment", Some("shop"), "web", |v| {
            v["metadata"]["labels"]["other"] = json!("x");
        });
        let mut d2 = d.clone();
        d2["metadata"]["labels"] = json!({"a": "1"});
        d2["spec"]["replicas"] = json!(3);
        let stored = c.apply(&dep, &d2, &ApplyParams::default()).await.unwrap();
        assert_eq!(
            stored["metadata"]["labels"],
            json!({"a": "1", "other": "x"})
        );
        assert_eq!(stored["metadata"]["generation"], 2);
        assert_eq!(diff(&d2, Some(&stored)), Change::Unchanged);
        assert_eq!(c.counts().applies, 3);
        assert_eq!(
            c.log(),
            vec![
                "apply Namespace shop",
                "apply Deployment shop/web",
                "apply Deployment shop/web"
            ]
        );
    }

    #[tokio::test]
    async fn namespaced_objects_need_their_namespace_and_dry_runs_store_nothing() {
        let c = MemoryCluster::new();
        let cm = res(&c, "v1", "ConfigMap").await;
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nope"}});
        let err = c
            .apply(&cm, &obj, &ApplyParams::default())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let nsr = res(&c, "v1", "Namespace").await;
        let dry = ApplyParams {
            dry_run: true,
            ..ApplyParams::default()
        };
        c.apply(&nsr, &ns("nope"), &dry).await.unwrap();
        assert!(c.object("Namespace", None, "nope").is_none());
        assert_eq!(c.counts().dry_runs, 1);
    }

    #[tokio::test]
    async fn crds_register_their_kinds_and_take_them_along_when_deleted() {
        let c = MemoryCluster::new();
        assert_eq!(c.resource("x.io/v1", "Widget").await, Ok(None));
        let crdr = res(&c, "apiextensions.k8s.io/v1", "CustomResourceDefinition").await;
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.x.io"},
            "spec": {"group": "x.io", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}});
        let stored = c.apply(&crdr, &crd, &ApplyParams::default()).await.unwrap();
        assert!(crate::health::health(&stored).is_healthy());
        let widget = res(&c, "x.io/v1", "Widget").await;
        assert!(!widget.namespaced);
        c.apply(
            &widget,
            &json!({"apiVersion": "x.io/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            &ApplyParams::default(),
        )
        .await
        .unwrap();
        c.delete(&crdr, None, "widgets.x.io", Propagation::Background)
            .await
            .unwrap();
        assert!(c.objects().is_empty());
        assert_eq!(c.resource("x.io/v1", "Widget").await, Ok(None));
    }

    #[tokio::test]
    async fn lists_filter_by_namespace_and_labels_and_faults_are_injected() {
        let c = MemoryCluster::new();
        c.insert(ns("a"));
        c.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "a", "labels": {"t": "1"}}}));
        c.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "b"}}));
        let cm = res(&c, "v1", "ConfigMap").await;
        assert_eq!(c.list(&cm, None, "").await.unwrap().len(), 2);
        assert_eq!(c.list(&cm, Some("a"), "").await.unwrap().len(), 1);
        assert_eq!(c.list(&cm, None, "t=1").await.unwrap().len(), 1);
        c.fail(Verb::List, 1, 500);
        assert!(c.list(&cm, None, "").await.is_err());
        assert!(c.list(&cm, None, "").await.is_ok());
        c.delete(
            &res(&c, "v1", "Namespace").await,
            None,
            "a",
            Propagation::Background,
        )
        .await
        .unwrap();
        assert_eq!(c.list(&cm, None, "").await.unwrap().len(), 1);
        assert_eq!(
            c.delete(&cm, Some("zz"), "gone", Propagation::Background)
                .await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn secret_string_data_is_stored_as_data() {
        let c = MemoryCluster::new();
        c.insert(ns("a"));
        let s = res(&c, "v1", "Secret").await;
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a"},
            "stringData": {"k": "v"}});
        let stored = c.apply(&s, &secret, &ApplyParams::default()).await.unwrap();
        assert_eq!(stored["data"]["k"], "dg==");
        assert!(stored.get("stringData").is_none());
        assert_eq!(diff(&secret, Some(&stored)), Change::Unchanged);
    }
}
