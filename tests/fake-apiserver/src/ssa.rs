//! Server-side apply and the managed-fields bookkeeping of ordinary writes.
//!
//! A faithful-enough model of the API server's structured merge: maps merge by key, associative
//! lists (containers, env, ports, volumes, ... see [`crate::fields::list_type`]) merge by
//! their key, other lists and scalars are replaced. Each manager's fields are recorded in
//! `metadata.managedFields`; an apply that changes a field another manager owns is a conflict
//! unless forced; fields a manager applied before and omits now are removed unless another
//! manager owns them.

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet, ListType, Path, PathElement, Scope};

/// `operation` of a managed-fields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    /// The field manager's name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the manager wrote with.
    pub api_version: String,
    /// When the entry last changed.
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_slot(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let (Some(sub), Some(map)) = (&self.subresource, entry.as_object_mut()) {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        entry
    }
}

/// A field another manager owns and an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager.
    pub manager: String,
    /// The apiVersion it wrote with.
    pub api_version: String,
    /// The field, as `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, PartialEq)]
pub enum ApplyError {
    /// Fields owned by other managers would change; `force` was not set.
    Conflicts(Vec<Conflict>),
    /// The applied configuration is malformed.
    Invalid(String),
}

/// What one write does to an object.
pub struct Write<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// Main resource or status subresource.
    pub scope: Scope,
    /// The apiVersion of the request.
    pub api_version: &'a str,
    /// The timestamp to record.
    pub now: &'a str,
}

impl Write<'_> {
    fn subresource(&self) -> Option<&'static str> {
        match self.scope {
            Scope::Status => Some("status"),
            Scope::Main { .. } => None,
        }
    }
}

/// Reads `metadata.managedFields`; malformed entries are dropped rather than failing the write.
pub fn managed_entries(object: &Value) -> Vec<ManagedEntry> {
    let Some(entries) = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let operation = match entry.get("operation")?.as_str()? {
                "Apply" => Operation::Apply,
                _ => Operation::Update,
            };
            Some(ManagedEntry {
                manager: entry.get("manager")?.as_str()?.to_string(),
                operation,
                api_version: str_field(entry, "apiVersion"),
                time: str_field(entry, "time"),
                subresource: entry
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(String::from),
                fields: FieldSet::from_fields_v1(entry.get("fieldsV1")?).ok()?,
            })
        })
        .collect()
}

fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn set_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries.iter().map(ManagedEntry::to_json).collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.shift_remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Removes `null`s from an applied configuration: in an apply, a null states no intent.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Merges an applied configuration into an object: maps by key, associative lists by key (the
/// applied items in their order, then the items only the object has), everything else replaced.
pub fn merge(target: &mut Value, applied: &Value) {
    merge_at(target, applied, &mut Vec::new());
}

fn merge_at<'a>(target: &mut Value, applied: &'a Value, fields: &mut Vec<&'a str>) {
    match (target, applied) {
        (Value::Object(live), Value::Object(config)) => {
            for (key, value) in config {
                match live.get_mut(key) {
                    Some(existing) => {
                        fields.push(key);
                        merge_at(existing, value, fields);
                        fields.pop();
                    }
                    None => {
                        live.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(config)) => {
            let ListType::Map(keys) = fields::list_type(fields) else {
                *live = config.clone();
                return;
            };
            let mut rest: Vec<Option<Value>> = std::mem::take(live).into_iter().map(Some).collect();
            let mut merged = Vec::with_capacity(config.len() + rest.len());
            for item in config {
                let key = fields::item_key(item, keys);
                let found = rest.iter_mut().find(|slot| {
                    slot.as_ref()
                        .is_some_and(|l| key.is_some() && fields::item_key(l, keys) == key)
                });
                match found.and_then(Option::take) {
                    Some(mut existing) => {
                        merge_at(&mut existing, item, fields);
                        merged.push(existing);
                    }
                    None => merged.push(item.clone()),
                }
            }
            merged.extend(rest.into_iter().flatten());
            *live = merged;
        }
        (target, applied) => *target = applied.clone(),
    }
}

/// Server-side apply of `config` onto `live` (absent: create). Returns the new object with its
/// managed fields, or `None` when the apply changes nothing (a no-op keeps the stored object).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    write: &Write<'_>,
    force: bool,
) -> Result<Option<Value>, ApplyError> {
    let mut config = config.clone();
    strip_nulls(&mut config);
    if !config.is_object() {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    }
    // Only the addressed part of the object is applied.
    let config = match write.scope {
        Scope::Status => json!({"status": config.get("status").cloned().unwrap_or(json!({}))}),
        Scope::Main { has_status } => {
            let mut c = config;
            if let Some(map) = c.as_object_mut() {
                if has_status {
                    map.shift_remove("status");
                }
                if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                    for key in ["uid", "resourceVersion", "generation", "creationTimestamp"] {
                        meta.shift_remove(key);
                    }
                    meta.shift_remove("managedFields");
                }
            }
            c
        }
    };
    let applied = FieldSet::from_object(&config, write.scope, true).map_err(ApplyError::Invalid)?;
    let subresource = write.subresource();
    let mut entries = live.map(managed_entries).unwrap_or_default();
    let previous = entries
        .iter()
        .find(|e| e.same_slot(write.manager, Operation::Apply, subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    let empty = json!({});
    let live_value = live.unwrap_or(&empty);
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| e.manager != write.manager) {
        let clashing: Vec<Path> = applied
            .iter()
            .filter(|p| entry.fields.contains(p))
            .filter(|p| !matches!(p.last(), Some(PathElement::Key(_))))
            .filter(
                |p| match (fields::get(live_value, p), fields::get(&config, p)) {
                    (Some(old), Some(new)) => old != new,
                    _ => false,
                },
            )
            .cloned()
            .collect();
        for path in clashing {
            if force {
                entry.fields.remove(&path);
            } else {
                conflicts.push(Conflict {
                    manager: entry.manager.clone(),
                    api_version: entry.api_version.clone(),
                    field: fields::display_path(&path),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }

    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    merge(&mut result, &config);

    // Fields this manager applied before and omits now go, unless someone else still holds them.
    let others_own = |path: &Path, entries: &[ManagedEntry]| {
        entries
            .iter()
            .filter(|e| !e.same_slot(write.manager, Operation::Apply, subresource))
            .any(|e| e.fields.contains_or_below(path))
    };
    let dropped: Vec<Path> = previous
        .iter()
        .filter(|p| !applied.contains(p) && !applied.contains_or_below(p))
        .filter(|p| !others_own(p, &entries))
        .cloned()
        .collect();
    for path in &dropped {
        if fields::remove(&mut result, path) {
            prune_empty_parents(&mut result, path, &applied, &entries);
        }
    }

    // Record the new ownership.
    match entries
        .iter_mut()
        .find(|e| e.same_slot(write.manager, Operation::Apply, subresource))
    {
        Some(entry) => {
            if entry.fields != applied {
                entry.fields = applied;
                entry.time = write.now.to_string();
            }
            entry.api_version = write.api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: write.manager.to_string(),
            operation: Operation::Apply,
            api_version: write.api_version.to_string(),
            time: write.now.to_string(),
            subresource: subresource.map(String::from),
            fields: applied,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());

    if let Some(live) = live {
        let mut before = live.clone();
        if let Some(meta) = before.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.shift_remove("managedFields");
        }
        if before == result && managed_fields_equal(&managed_entries(live), &entries) {
            return Ok(None);
        }
        // A changed object gets a fresh timestamp on the applying manager's entry.
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.same_slot(write.manager, Operation::Apply, subresource))
        {
            entry.time = write.now.to_string();
        }
    }
    set_managed(&mut result, &entries);
    Ok(Some(result))
}

fn managed_fields_equal(a: &[ManagedEntry], b: &[ManagedEntry]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.same_slot(&y.manager, y.operation, y.subresource.as_deref())
                    && x.fields == y.fields
            })
        })
}

/// After a removal, drops maps left empty that nobody owns (never the top-level sections).
fn prune_empty_parents(
    object: &mut Value,
    path: &Path,
    applied: &FieldSet,
    entries: &[ManagedEntry],
) {
    let mut parent = path.clone();
    parent.pop();
    while parent.len() > 1 {
        let empty = fields::get(object, &parent)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
        let owned = applied.contains(&parent) || entries.iter().any(|e| e.fields.contains(&parent));
        if !empty || owned || !matches!(parent.last(), Some(PathElement::Field(_))) {
            break;
        }
        fields::remove(object, &parent);
        parent.pop();
    }
}

/// Records a non-apply write (create, update, patch) in the managed fields of `new`: the fields
/// it changed move to `manager`'s Update entry, fields it removed leave every entry. A write
/// that changes `metadata.managedFields` itself (a tool migrating managers) is taken as given,
/// as the API server does; `[{}]` clears them.
pub fn record_update(live: Option<&Value>, new: &mut Value, write: &Write<'_>) {
    let subresource = write.subresource();
    let requested = new.pointer("/metadata/managedFields");
    let mut entries = match (live, requested) {
        (Some(l), Some(r)) if l.pointer("/metadata/managedFields") != Some(r) => {
            managed_entries(new)
        }
        _ => live.map(managed_entries).unwrap_or_default(),
    };
    let empty = json!({});
    let old = live.unwrap_or(&empty);
    let new_set = FieldSet::from_object(new, write.scope, false).unwrap_or_default();
    let old_set = FieldSet::from_object(old, write.scope, false).unwrap_or_default();
    let changed: Vec<Path> = new_set
        .iter()
        .filter(|p| fields::get(old, p) != fields::get(new, p) || !old_set.contains(p))
        .cloned()
        .collect();
    let removed: Vec<Path> = old_set
        .iter()
        .filter(|p| !new_set.contains(p))
        .cloned()
        .collect();
    if changed.is_empty() && removed.is_empty() {
        set_managed(new, &entries);
        return;
    }
    for entry in &mut entries {
        for path in &removed {
            entry.fields.remove(path);
        }
        if !entry.same_slot(write.manager, Operation::Update, subresource) {
            for path in &changed {
                entry.fields.remove(path);
            }
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.same_slot(write.manager, Operation::Update, subresource))
    {
        Some(entry) => {
            for path in changed {
                entry.fields.insert(path);
            }
            entry.time = write.now.to_string();
            entry.api_version = write.api_version.to_string();
        }
        None if !changed.is_empty() => {
            let mut set = FieldSet::new();
            for path in changed {
                set.insert(path);
            }
            entries.push(ManagedEntry {
                manager: write.manager.to_string(),
                operation: Operation::Update,
                api_version: write.api_version.to_string(),
                time: write.now.to_string(),
                subresource: subresource.map(String::from),
                fields: set,
            });
        }
        None => {}
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed(new, &entries);
}

/// JSON merge patch (RFC 7386): maps merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                map.shift_remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Scope = Scope::Main { has_status: true };

    fn write(manager: &str) -> Write<'_> {
        Write {
            manager,
            scope: MAIN,
            api_version: "apps/v1",
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image}]}}}})
    }

    fn apply_ok(live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Option<Value> {
        match apply(live, config, &write(manager), force) {
            Ok(v) => v,
            Err(e) => panic!("apply failed: {e:?}"),
        }
    }

    #[test]
    fn create_records_apply_entry() {
        let obj = apply_ok(None, &deployment(2, "nginx:1"), "tally", false).unwrap();
        let entries = managed_entries(&obj);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "tally");
        assert_eq!(entries[0].operation, Operation::Apply);
        assert_eq!(obj["spec"]["replicas"], 2);
        let v1 = &obj["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(v1["f:spec"]["f:replicas"], json!({}));
    }

    #[test]
    fn same_apply_twice_is_a_noop() {
        let obj = apply_ok(None, &deployment(2, "nginx:1"), "tally", false).unwrap();
        assert!(apply_ok(Some(&obj), &deployment(2, "nginx:1"), "tally", false).is_none());
    }

    #[test]
    fn conflict_with_other_manager_unless_forced() {
        let obj = apply_ok(None, &deployment(2, "nginx:1"), "tally", false).unwrap();
        let err = apply(
            Some(&obj),
            &deployment(3, "nginx:1"),
            &write("other"),
            false,
        );
        let Err(ApplyError::Conflicts(conflicts)) = err else {
            panic!("expected a conflict, got {err:?}");
        };
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].manager, "tally");
        assert_eq!(conflicts[0].field, ".spec.replicas");

        // Same values: shared ownership, no conflict.
        let shared = apply_ok(Some(&obj), &deployment(2, "nginx:1"), "other", false).unwrap();
        assert_eq!(managed_entries(&shared).len(), 2);

        let forced = apply_ok(Some(&obj), &deployment(3, "nginx:1"), "other", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let entries = managed_entries(&forced);
        let tally = entries.iter().find(|e| e.manager == "tally").unwrap();
        let replicas = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("replicas".into()),
        ];
        assert!(!tally.fields.contains(&replicas));
    }

    #[test]
    fn omitted_fields_are_removed_unless_others_own_them() {
        let mut config = deployment(2, "nginx:1");
        config["metadata"]["labels"]["tier"] = json!("front");
        config["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "envoy"}));
        let obj = apply_ok(None, &config, "tally", false).unwrap();
        // Another manager adds a label of its own.
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"team": "x"}}});
        let obj = apply_ok(Some(&obj), &other, "other", false).unwrap();
        let after = apply_ok(Some(&obj), &deployment(2, "nginx:1"), "tally", false).unwrap();
        assert_eq!(
            after["metadata"]["labels"],
            json!({"app": "web", "team": "x"})
        );
        let containers = after["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "app");
    }

    #[test]
    fn lists_merge_by_name_and_atomic_lists_replace() {
        let mut live = json!({"spec": {"containers": [
            {"name": "app", "image": "a", "args": ["1", "2"]},
            {"name": "injected", "image": "b"}]}});
        merge(
            &mut live,
            &json!({"spec": {"containers": [{"name": "app", "args": ["3"]}]}}),
        );
        assert_eq!(
            live,
            json!({"spec": {"containers": [
            {"name": "app", "image": "a", "args": ["3"]},
            {"name": "injected", "image": "b"}]}})
        );
    }

    #[test]
    fn status_scope_only_touches_status() {
        let obj = apply_ok(None, &deployment(2, "nginx:1"), "tally", false).unwrap();
        let w = Write {
            manager: "ctrl",
            scope: Scope::Status,
            api_version: "apps/v1",
            now: "t",
        };
        let mut config = deployment(5, "x");
        config["status"] = json!({"readyReplicas": 2});
        let obj = apply(Some(&obj), &config, &w, false).unwrap().unwrap();
        assert_eq!(obj["spec"]["replicas"], 2);
        assert_eq!(obj["status"]["readyReplicas"], 2);
        let entries = managed_entries(&obj);
        let ctrl = entries.iter().find(|e| e.manager == "ctrl").unwrap();
        assert_eq!(ctrl.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let obj = apply_ok(None, &deployment(2, "nginx:1"), "tally", false).unwrap();
        let mut edited = obj.clone();
        edited["spec"]["replicas"] = json!(7);
        record_update(Some(&obj), &mut edited, &write("kubectl-edit"));
        let entries = managed_entries(&edited);
        let edit = entries
            .iter()
            .find(|e| e.manager == "kubectl-edit")
            .unwrap();
        assert_eq!(edit.operation, Operation::Update);
        assert_eq!(edit.fields.len(), 1);
        // tally applying its value again now conflicts with the edit.
        let err = apply(
            Some(&edited),
            &deployment(2, "nginx:1"),
            &write("tally"),
            false,
        );
        assert!(matches!(err, Err(ApplyError::Conflicts(_))));
    }

    #[test]
    fn merge_patch_deletes_nulls() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut target, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(target, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }

    #[test]
    fn a_write_that_changes_managed_fields_is_taken_as_given() {
        let live = apply_ok(None, &deployment(1, "a"), "kubectl", false)
            .unwrap_or_else(|| panic!("created"));
        let mut migrated = live.clone();
        migrated["metadata"]["managedFields"][0]["manager"] = json!("tally");
        record_update(Some(&live), &mut migrated, &write("kubectl-patch"));
        let managers: Vec<String> = managed_entries(&migrated)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, ["tally"]);
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        record_update(Some(&live), &mut reset, &write("x"));
        assert!(managed_entries(&reset).is_empty());
    }

    #[test]
    fn duplicate_keys_are_invalid() {
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a"}, {"name": "a"}]}}}});
        assert!(matches!(
            apply(None, &config, &write("t"), false),
            Err(ApplyError::Invalid(_))
        ));
    }
}
