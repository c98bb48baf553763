//! The in-memory cluster: objects, resource versions, the event history watches replay, and the
//! write operations (create, update, patch, apply, delete) with the API server's rules.
//!
//! Every write goes through one mutex; commits broadcast under it, so a watch that subscribes
//! while holding the lock misses nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::admission::{self, Mutation};
use crate::clock;
use crate::fields::Scope;
use crate::resources::{Registry, ResourceType};
use crate::ssa::{self, ApplyError, Write};
use crate::status::ApiError;

/// Where an object lives: its type (`group` and plural `resource`), namespace ("" for
/// cluster-scoped objects) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct ChangeEvent {
    /// The cluster resourceVersion of the change.
    pub resource_version: u64,
    /// Added, modified or deleted.
    pub event_type: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (for a deletion: its last state).
    pub object: Value,
    /// The object before the change, if any (watches with selectors need it).
    pub old: Option<Value>,
}

/// Options shared by writes.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions<'a> {
    /// The field manager recorded in managed fields.
    pub manager: &'a str,
    /// `dryRun=All`: compute and return, store nothing.
    pub dry_run: bool,
    /// `force=true` for server-side apply.
    pub force: bool,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// No resourceVersion or "0": the current objects as ADDED events, then changes.
    Current,
    /// Changes after this resourceVersion.
    After(u64),
}

/// What a watch gets when it starts.
pub struct WatchInit {
    /// Events to send first (current objects as ADDED, or the replayed history).
    pub initial: Vec<(EventType, Value, Option<Value>)>,
    /// The resourceVersion the initial events bring the watcher to.
    pub resource_version: u64,
    /// Later changes.
    pub receiver: broadcast::Receiver<Arc<ChangeEvent>>,
}

struct State {
    objects: BTreeMap<ObjectKey, Value>,
    registry: Registry,
    resource_version: u64,
    history: VecDeque<Arc<ChangeEvent>>,
    /// Changes at or below this resourceVersion are no longer in the history.
    compacted: u64,
    history_limit: usize,
    counter: u64,
    seed: u64,
    mutations: Vec<Mutation>,
}

/// The cluster's state, shared by the HTTP handlers, the simulated controller and the
/// [`crate::Store`] handle tests use.
pub struct Cluster {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<ChangeEvent>>,
}

/// Server-owned metadata that clients cannot set.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl Cluster {
    /// An empty cluster keeping `history_limit` changes for watches to resume from.
    pub fn new(history_limit: usize, seed: u64) -> Self {
        let (events, _) = broadcast::channel(history_limit.clamp(1024, 1 << 16));
        Cluster {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                registry: Registry::builtin(),
                resource_version: 1,
                history: VecDeque::new(),
                compacted: 1,
                history_limit: history_limit.max(1),
                counter: 0,
                seed,
                mutations: Vec::new(),
            }),
            events,
        }
    }

    /// Sets the simulated mutating webhooks.
    pub fn set_mutations(&self, mutations: Vec<Mutation>) {
        self.lock().mutations = mutations;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every later request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to every later change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.events.subscribe()
    }

    /// A copy of the registry (for discovery).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// Resolves `group/version/plural`.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.lock().registry.find(group, version, plural).cloned()
    }

    /// Resolves `apiVersion` + `kind`.
    pub fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.lock().registry.find_kind(api_version, kind).cloned()
    }

    /// Resolves `plural.group`, a plural or a short name.
    pub fn resolve_name(&self, name: &str) -> Option<ResourceType> {
        self.lock().registry.find_group_resource(name).cloned()
    }

    /// The current cluster resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// Forgets the whole watch history: watches from any earlier version get 410 Gone.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.history.clear();
        state.compacted = state.resource_version;
    }

    /// One object.
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let key = key_of(rt, namespace, name);
        self.lock()
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))
    }

    /// A stored object by key, if present.
    pub fn get_key(&self, key: &ObjectKey) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of a type, in one namespace or all, filtered by `keep`; with the list's
    /// resourceVersion.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        keep: impl Fn(&Value) -> bool,
    ) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = objects_of(&state, rt, namespace)
            .filter(|(_, v)| keep(v))
            .map(|(_, v)| v.clone())
            .collect();
        (items, state.resource_version)
    }

    /// Every stored object's key.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Starts a watch of a type in one namespace or all.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        start: WatchStart,
    ) -> Result<WatchInit, ApiError> {
        let state = self.lock();
        let initial = match start {
            WatchStart::Current => objects_of(&state, rt, namespace)
                .map(|(_, v)| (EventType::Added, v.clone(), None))
                .collect(),
            WatchStart::After(rv) => {
                if rv < state.compacted {
                    return Err(ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", state.compacted),
                    ));
                }
                state
                    .history
                    .iter()
                    .filter(|e| e.resource_version > rv && in_scope(&e.key, rt, namespace))
                    .map(|e| (e.event_type, e.object.clone(), e.old.clone()))
                    .collect()
            }
        };
        Ok(WatchInit {
            initial,
            resource_version: state.resource_version,
            receiver: self.events.subscribe(),
        })
    }

    /// POST: creates an object.
    pub fn create(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        body: Value,
        opts: WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let mut obj = body;
        check_type(rt, version, &obj)?;
        let ns = target_namespace(rt, namespace, &obj)?;
        let meta = metadata_mut(&mut obj)?;
        for key in SERVER_METADATA {
            meta.shift_remove(*key);
        }
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let prefix = prefix.to_string();
                    format!("{prefix}{}", random_suffix(&mut state))
                }
                _ => {
                    return Err(ApiError::invalid(
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        meta.insert("name".into(), json!(name));
        set_namespace(meta, rt, &ns);
        validate_name(rt, &name)?;
        check_namespace_usable(&state, rt, &ns)?;
        let key = key_of(rt, &ns, &name);
        if state.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
        }
        if rt.has_status
            && let Some(map) = obj.as_object_mut()
        {
            map.shift_remove("status");
        }
        finish_new(&mut state, rt, version, &mut obj)?;
        let write = Write {
            manager: opts.manager,
            scope: Scope::Main {
                has_status: rt.has_status,
            },
            api_version: &rt.api_version(version),
            now: &clock::now_rfc3339(),
        };
        ssa::record_update(None, &mut obj, &write);
        if opts.dry_run {
            return Ok(obj);
        }
        Ok(self.commit(&mut state, key, Some(obj), EventType::Added))
    }

    /// PUT: replaces an object (or its status).
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        status: bool,
        opts: WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let ns = target_namespace(rt, namespace, &body)?;
        let key = key_of(rt, &ns, name);
        let live = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        check_type(rt, version, &body)?;
        if let Some(body_name) = body.pointer("/metadata/name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let wanted_rv = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty());
        if let Some(rv) = wanted_rv
            && Some(rv)
                != live
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(ApiError::stale(&rt.plural, &rt.group, name));
        }
        self.finish_update(&mut state, rt, version, key, live, body, status, opts)
    }

    /// PATCH with a JSON merge patch (also used for strategic merge patches).
    #[allow(clippy::too_many_arguments)]
    pub fn merge_patch(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
        opts: WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = key_of(rt, namespace.unwrap_or_default(), name);
        let live = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        if let Some(rv) = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && Some(rv)
                != live
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(ApiError::stale(&rt.plural, &rt.group, name));
        }
        let mut new = live.clone();
        ssa::merge_patch(&mut new, patch);
        self.finish_update(&mut state, rt, version, key, live, new, status, opts)
    }

    /// PATCH with a JSON patch (RFC 6902: add, remove, replace, test).
    #[allow(clippy::too_many_arguments)]
    pub fn json_patch(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
        opts: WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = key_of(rt, namespace.unwrap_or_default(), name);
        let live = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        let mut new = live.clone();
        apply_json_patch(&mut new, patch)?;
        self.finish_update(&mut state, rt, version, key, live, new, status, opts)
    }

    /// The end of every non-apply update: server fields, defaults, generation, managed fields.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        state: &mut State,
        rt: &ResourceType,
        version: &str,
        key: ObjectKey,
        live: Value,
        body: Value,
        status: bool,
        opts: WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let mut new = if status {
            let mut new = live.clone();
            if let (Some(map), Some(st)) = (new.as_object_mut(), body.get("status")) {
                map.insert("status".into(), st.clone());
            }
            new
        } else {
            let mut new = body;
            if !new.is_object() {
                return Err(ApiError::bad_request("the body must be an object"));
            }
            if rt.has_status
                && let Some(map) = new.as_object_mut()
            {
                match live.get("status") {
                    Some(st) => map.insert("status".into(), st.clone()),
                    None => map.shift_remove("status"),
                };
            }
            new
        };
        keep_server_fields(&live, &mut new, rt, version)?;
        if !status {
            admit(state, rt, &mut new);
            admission::keep_allocated(rt, &live, &mut new);
            admission::check_immutable(rt, &live, &new)?;
        }
        bump_generation(&live, &mut new);
        check_crd(state, rt, &new)?;
        let write = Write {
            manager: opts.manager,
            scope: if status {
                Scope::Status
            } else {
                Scope::Main {
                    has_status: rt.has_status,
                }
            },
            api_version: &rt.api_version(version),
            now: &clock::now_rfc3339(),
        };
        ssa::record_update(Some(&live), &mut new, &write);
        if same_content(&live, &new) || opts.dry_run {
            return Ok(if opts.dry_run { new } else { live });
        }
        Ok(self.commit(state, key, Some(new), EventType::Modified))
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply. Returns the object and
    /// whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        config: &Value,
        status: bool,
        opts: WriteOptions<'_>,
    ) -> Result<(Value, bool), ApiError> {
        let mut state = self.lock();
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        for field in ["apiVersion", "kind"] {
            if config.get(field).and_then(Value::as_str).is_none() {
                return Err(ApiError::bad_request(format!(
                    "{field} must be set in an apply request"
                )));
            }
        }
        check_type(rt, version, config)?;
        if let Some(body_name) = config.pointer("/metadata/name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let ns = target_namespace(rt, namespace, config)?;
        let key = key_of(rt, &ns, name);
        let live = state.objects.get(&key).cloned();
        // As on a real server, an apply that carries a resourceVersion is an optimistic lock:
        // it fails (409) unless the object is still at that version.
        if let Some(rv) = config
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty())
            && live
                .as_ref()
                .and_then(|l| l.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str)
                != Some(rv)
        {
            return Err(match live {
                Some(_) => ApiError::stale(&rt.plural, &rt.group, name),
                None => ApiError::not_found(&rt.plural, &rt.group, name),
            });
        }
        if live.is_none() {
            if status {
                return Err(ApiError::not_found(&rt.plural, &rt.group, name));
            }
            validate_name(rt, name)?;
            check_namespace_usable(&state, rt, &ns)?;
        }
        let api_version = rt.api_version(version);
        let now = clock::now_rfc3339();
        let write = Write {
            manager: opts.manager,
            scope: if status {
                Scope::Status
            } else {
                Scope::Main {
                    has_status: rt.has_status,
                }
            },
            api_version: &api_version,
            now: &now,
        };
        let result =
            ssa::apply(live.as_ref(), config, &write, opts.force).map_err(|e| match e {
                ApplyError::Invalid(message) => ApiError::invalid(message),
                ApplyError::Conflicts(conflicts) => conflict_error(rt, name, &conflicts),
            })?;
        let Some(mut new) = result else {
            // A no-op apply changes nothing, not even the resourceVersion.
            return Ok((live.unwrap_or_default(), false));
        };
        let created = live.is_none();
        match &live {
            None => {
                if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(name));
                    set_namespace(meta, rt, &ns);
                } else if let Some(map) = new.as_object_mut() {
                    let mut meta = Map::new();
                    meta.insert("name".into(), json!(name));
                    set_namespace(&mut meta, rt, &ns);
                    map.insert("metadata".into(), Value::Object(meta));
                }
                finish_new(&mut state, rt, version, &mut new)?;
            }
            Some(live) => {
                keep_server_fields(live, &mut new, rt, version)?;
                if !status {
                    admit(&state, rt, &mut new);
                    admission::keep_allocated(rt, live, &mut new);
                    admission::check_immutable(rt, live, &new)?;
                }
                bump_generation(live, &mut new);
                check_crd(&state, rt, &new)?;
                if same_content(live, &new) && !opts.dry_run {
                    return Ok((live.clone(), false));
                }
            }
        }
        if opts.dry_run {
            return Ok((new, created));
        }
        let event = if created {
            EventType::Added
        } else {
            EventType::Modified
        };
        Ok((self.commit(&mut state, key, Some(new), event), created))
    }

    /// DELETE one object. Deleting a Namespace deletes everything in it; deleting a CRD deletes
    /// its custom resources and removes the type from discovery.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        preconditions: Option<&Value>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = key_of(rt, namespace.unwrap_or_default(), name);
        let live = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        if let Some(pre) = preconditions {
            for (field, pointer) in [
                ("uid", "/metadata/uid"),
                ("resourceVersion", "/metadata/resourceVersion"),
            ] {
                if let Some(wanted) = pre.get(field).and_then(Value::as_str)
                    && live.pointer(pointer).and_then(Value::as_str) != Some(wanted)
                {
                    return Err(ApiError::new(
                        409,
                        "Conflict",
                        format!("Precondition failed: {field}: {wanted}"),
                    ));
                }
            }
        }
        if dry_run {
            return Ok(live);
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let inside: Vec<ObjectKey> = state
                .objects
                .keys()
                .filter(|k| k.namespace == name)
                .cloned()
                .collect();
            for k in inside {
                self.commit(&mut state, k, None, EventType::Deleted);
            }
        }
        if rt.group == "apiextensions.k8s.io"
            && let Ok(custom) = ResourceType::from_crd(&live)
        {
            let owned: Vec<ObjectKey> = state
                .objects
                .keys()
                .filter(|k| k.group == custom.group && k.resource == custom.plural)
                .cloned()
                .collect();
            for k in owned {
                self.commit(&mut state, k, None, EventType::Deleted);
            }
            state.registry.unregister(&custom.group, &custom.plural);
        }
        Ok(self.commit(&mut state, key, None, EventType::Deleted))
    }

    /// Writes an object's status as a controller would (an Update through `/status`). Returns
    /// false when the object is gone or the status is already equal.
    pub fn write_status(&self, key: &ObjectKey, status: Value, manager: &str) -> bool {
        let mut state = self.lock();
        let Some(live) = state.objects.get(key).cloned() else {
            return false;
        };
        if live.get("status") == Some(&status) {
            return false;
        }
        let mut new = live.clone();
        if let Some(map) = new.as_object_mut() {
            map.insert("status".into(), status);
        }
        let api_version = live
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let write = Write {
            manager,
            scope: Scope::Status,
            api_version: &api_version,
            now: &clock::now_rfc3339(),
        };
        ssa::record_update(Some(&live), &mut new, &write);
        self.commit(&mut state, key.clone(), Some(new), EventType::Modified);
        true
    }

    /// Registers the type a stored CRD declares (the CRD becomes Established). Returns the
    /// CRD's status to write, or None when the CRD is gone or invalid.
    pub fn establish_crd(&self, key: &ObjectKey) -> Option<Value> {
        let mut state = self.lock();
        let crd = state.objects.get(key)?.clone();
        let rt = ResourceType::from_crd(&crd).ok()?;
        state.registry.register(rt).ok()?;
        let now = clock::now_rfc3339();
        let condition = |kind: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                "lastTransitionTime": now})
        };
        let storage: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        Some(json!({
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "storedVersions": storage,
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found for names"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
        }))
    }

    /// Stores an object as-is (server fields filled in, no managed-fields bookkeeping beyond
    /// what the object carries). For seeding and for tests.
    pub fn put_raw(&self, rt: &ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("metadata.name is required"))?
            .to_string();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let key = key_of(rt, if rt.namespaced { &ns } else { "" }, &name);
        let old = state.objects.get(&key).cloned();
        match &old {
            Some(live) => {
                let version = rt.versions.first().cloned().unwrap_or_default();
                keep_server_fields(live, &mut obj, rt, &version)?;
                bump_generation(live, &mut obj);
            }
            None => {
                let version = rt.versions.first().cloned().unwrap_or_default();
                finish_new(&mut state, rt, &version, &mut obj)?
            }
        }
        let event = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        Ok(self.commit(&mut state, key, Some(obj), event))
    }

    /// Stores a change: bumps the resourceVersion, records and broadcasts the event.
    fn commit(
        &self,
        state: &mut State,
        key: ObjectKey,
        new: Option<Value>,
        event_type: EventType,
    ) -> Value {
        state.resource_version += 1;
        let rv = state.resource_version;
        let old = state.objects.get(&key).cloned();
        let mut object = match new {
            Some(obj) => obj,
            None => {
                state.objects.remove(&key);
                old.clone().unwrap_or_default()
            }
        };
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if event_type != EventType::Deleted {
            state.objects.insert(key.clone(), object.clone());
        }
        let event = Arc::new(ChangeEvent {
            resource_version: rv,
            event_type,
            key,
            object: object.clone(),
            old,
        });
        state.history.push_back(event.clone());
        while state.history.len() > state.history_limit {
            if let Some(gone) = state.history.pop_front() {
                state.compacted = gone.resource_version;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
        object
    }
}

/// The key of an object of a type.
pub fn key_of(rt: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        namespace: if rt.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn in_scope(key: &ObjectKey, rt: &ResourceType, namespace: Option<&str>) -> bool {
    key.group == rt.group
        && key.resource == rt.plural
        && namespace.is_none_or(|ns| key.namespace == ns)
}

fn objects_of<'a>(
    state: &'a State,
    rt: &'a ResourceType,
    namespace: Option<&'a str>,
) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
    let start = ObjectKey {
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        namespace: namespace.unwrap_or_default().to_string(),
        name: String::new(),
    };
    state
        .objects
        .range(start..)
        .take_while(move |(k, _)| in_scope(k, rt, namespace))
}

fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn set_namespace(meta: &mut Map<String, Value>, rt: &ResourceType, ns: &str) {
    if rt.namespaced {
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.shift_remove("namespace");
    }
}

/// Checks `apiVersion`/`kind` in a body against the endpoint.
fn check_type(rt: &ResourceType, version: &str, obj: &Value) -> Result<(), ApiError> {
    let expected_api_version = rt.api_version(version);
    let kind = obj.get("kind").and_then(Value::as_str);
    let api_version = obj.get("apiVersion").and_then(Value::as_str);
    if kind.is_some_and(|k| k != rt.kind) || api_version.is_some_and(|v| v != expected_api_version)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) and kind ({}) do not match the endpoint ({expected_api_version}, {})",
            api_version.unwrap_or_default(),
            kind.unwrap_or_default(),
            rt.kind
        )));
    }
    Ok(())
}

/// The namespace a write targets: the URL's, which the body may repeat but not contradict.
fn target_namespace(
    rt: &ResourceType,
    url: Option<&str>,
    body: &Value,
) -> Result<String, ApiError> {
    if !rt.namespaced {
        return Ok(String::new());
    }
    let in_body = body
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty());
    match (url, in_body) {
        (Some(u), Some(b)) if u != b => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        (Some(u), _) => Ok(u.to_string()),
        (None, _) => Err(ApiError::bad_request(format!(
            "{} is namespaced: write it under /namespaces/{{namespace}}/",
            rt.group_resource()
        ))),
    }
}

fn check_namespace_usable(state: &State, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let key = ObjectKey {
        group: String::new(),
        resource: "namespaces".into(),
        namespace: String::new(),
        name: ns.to_string(),
    };
    match state.objects.get(&key) {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(obj)
            if obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") =>
        {
            Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Object names must be DNS subdomains (RBAC names only need to be valid path segments).
fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let ok = if rt.group == "rbac.authorization.k8s.io" {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            rt.kind
        )))
    }
}

/// Server fields of a new object: uid, creationTimestamp, generation, defaults.
fn finish_new(
    state: &mut State,
    rt: &ResourceType,
    version: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let uid = new_uid(state);
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(rt.api_version(version)));
        map.insert("kind".into(), json!(rt.kind));
    }
    let meta = metadata_mut(obj)?;
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(clock::now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    meta.shift_remove("resourceVersion");
    admit(state, rt, obj);
    let n = next_random(state);
    admission::allocate_cluster_ip(rt, obj, n);
    check_crd(state, rt, obj)
}

/// Carries the server-owned metadata of the live object over to its replacement.
fn keep_server_fields(
    live: &Value,
    new: &mut Value,
    rt: &ResourceType,
    version: &str,
) -> Result<(), ApiError> {
    if let Some(map) = new.as_object_mut() {
        map.insert("apiVersion".into(), json!(rt.api_version(version)));
        map.insert("kind".into(), json!(rt.kind));
    }
    let live_meta = live.get("metadata").and_then(Value::as_object);
    let meta = metadata_mut(new)?;
    // managedFields are not carried over: apply computed them already, updates record them next.
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "deletionTimestamp",
    ] {
        match live_meta.and_then(|m| m.get(key)) {
            Some(v) => meta.insert(key.into(), v.clone()),
            None => meta.shift_remove(key),
        };
    }
    Ok(())
}

/// Defaulting, then the mutating webhooks.
fn admit(state: &State, rt: &ResourceType, obj: &mut Value) {
    admission::default(rt, obj);
    admission::mutate(rt, &state.mutations, obj);
}

/// `metadata.generation` counts changes outside metadata and status.
fn bump_generation(live: &Value, new: &mut Value) {
    let differs = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let generation = live
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let next = if differs(live) != differs(new) {
        generation + 1
    } else {
        generation
    };
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), json!(next));
    }
}

/// A CRD must declare a valid type that does not shadow a built-in one.
fn check_crd(state: &State, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if rt.group != "apiextensions.k8s.io" || rt.plural != "customresourcedefinitions" {
        return Ok(());
    }
    let custom = ResourceType::from_crd(obj).map_err(ApiError::invalid)?;
    let shadows = state
        .registry
        .types()
        .iter()
        .any(|t| !t.custom && t.group == custom.group && t.plural == custom.plural);
    if shadows {
        return Err(ApiError::invalid(format!(
            "{} is a built-in resource",
            custom.group_resource()
        )));
    }
    Ok(())
}

/// Equal apart from the resourceVersion and managed-field timestamps.
fn same_content(live: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.shift_remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    entry.shift_remove("time");
                }
            }
        }
        v
    };
    strip(live) == strip(new)
}

fn conflict_error(rt: &ResourceType, name: &str, conflicts: &[ssa::Conflict]) -> ApiError {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager, c.api_version, c.field
            )
        })
        .collect();
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    let message = if lines.len() == 1 {
        format!("Apply failed with 1 conflict: {}", lines[0])
    } else {
        format!(
            "Apply failed with {} conflict{plural}: {}",
            lines.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"type": "FieldManagerConflict",
                "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                "field": c.field})
        })
        .collect();
    ApiError::new(409, "Conflict", message).with_details(json!({
        "name": name, "group": rt.group, "kind": rt.plural, "causes": causes,
    }))
}

/// A minimal RFC 6902 JSON patch: add, remove, replace, test.
fn apply_json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("a JSON patch operation needs a path"))?;
        let (parent_path, last) = path
            .rsplit_once('/')
            .ok_or_else(|| ApiError::bad_request(format!("bad JSON pointer {path:?}")))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        match kind {
            "test" => {
                if target.pointer(path) != op.get("value") {
                    return Err(ApiError::invalid(format!("the test at {path} failed")));
                }
            }
            "add" | "replace" | "remove" => {
                let parent = target
                    .pointer_mut(parent_path)
                    .ok_or_else(|| ApiError::invalid(format!("no parent for {path}")))?;
                let value = op.get("value").cloned();
                match (parent, kind) {
                    (Value::Object(map), "remove") => {
                        map.shift_remove(&last)
                            .ok_or_else(|| ApiError::invalid(format!("nothing at {path}")))?;
                    }
                    (Value::Object(map), _) => {
                        map.insert(last, value.unwrap_or_default());
                    }
                    (Value::Array(items), _) => {
                        let index = if last == "-" {
                            items.len()
                        } else {
                            last.parse::<usize>()
                                .map_err(|_| ApiError::invalid(format!("bad index in {path}")))?
                        };
                        match kind {
                            "remove" if index < items.len() => {
                                items.remove(index);
                            }
                            "replace" if index < items.len() => {
                                items[index] = value.unwrap_or_default()
                            }
                            "add" if index <= items.len() => {
                                items.insert(index, value.unwrap_or_default())
                            }
                            _ => {
                                return Err(ApiError::invalid(format!(
                                    "index out of range in {path}"
                                )));
                            }
                        }
                    }
                    _ => return Err(ApiError::invalid(format!("cannot {kind} at {path}"))),
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unsupported JSON patch op {other:?}"
                )));
            }
        }
    }
    Ok(())
}

fn next_random(state: &mut State) -> u64 {
    // splitmix64: deterministic per server, distinct per call; uids need no more.
    state.counter += 1;
    let mut z = state
        .seed
        .wrapping_add(state.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn new_uid(state: &mut State) -> String {
    let a = next_random(state);
    let b = next_random(state);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn random_suffix(state: &mut State) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = next_random(state);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
