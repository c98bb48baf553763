//! Field paths and field sets, the bookkeeping behind server-side apply's managed fields.
//!
//! A field set is the set of paths a manager owns. Paths end at leaves (scalars, atomic lists,
//! empty maps) or at items of associative lists (the item's existence). They serialize to the
//! `FieldsV1` format Kubernetes uses in `metadata.managedFields`: `f:<field>` for map fields,
//! `k:<json>` for list items by key, `v:<json>` for set items, `.` for the node itself.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map.
    Field(String),
    /// An item of an associative list, by its key fields: compact JSON, keys sorted.
    Key(String),
    /// An item of a set list, by its JSON value (parsed from managed fields, never produced).
    Value(String),
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

/// The paths one manager owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<Path>,
}

/// Metadata fields the server owns; they are never part of a manager's field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is left out when the resource has a status subresource.
    Main {
        /// The resource has a `/status` subresource.
        has_status: bool,
    },
    /// The `/status` subresource: only `status` counts.
    Status,
}

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.paths.insert(path);
    }

    /// Removes a path; true if it was there.
    pub fn remove(&mut self, path: &Path) -> bool {
        self.paths.remove(path)
    }

    /// Whether the set holds exactly this path.
    pub fn contains(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }

    /// Whether the set holds this path or any path below it.
    pub fn contains_or_below(&self, path: &Path) -> bool {
        self.paths
            .range(path.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(path))
    }

    /// True when no path is owned.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The paths, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter()
    }

    /// Collects the fields an object sets, for the given scope. `strict` rejects duplicate keys in
    /// associative lists (as apply does); otherwise such lists are treated as atomic.
    pub fn from_object(object: &Value, scope: Scope, strict: bool) -> Result<FieldSet, String> {
        let mut set = FieldSet::new();
        let Some(map) = object.as_object() else {
            return Ok(set);
        };
        let mut path = Vec::new();
        for (key, value) in map {
            let keep = match scope {
                Scope::Status => key == "status",
                Scope::Main { has_status } => {
                    !(key == "apiVersion" || key == "kind" || (has_status && key == "status"))
                }
            };
            if !keep {
                continue;
            }
            path.push(PathElement::Field(key.clone()));
            if key == "metadata" {
                if let Some(meta) = value.as_object() {
                    for (mk, mv) in meta {
                        if SERVER_METADATA.contains(&mk.as_str()) || mv.is_null() {
                            continue;
                        }
                        path.push(PathElement::Field(mk.clone()));
                        collect(mv, &mut path, &mut set, strict)?;
                        path.pop();
                    }
                }
            } else if !value.is_null() {
                collect(value, &mut path, &mut set, strict)?;
            }
            path.pop();
        }
        Ok(set)
    }

    /// Serializes to the `FieldsV1` tree.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.paths {
            insert_path(&mut root, path);
        }
        // A node that is owned itself and also has owned children is marked with ".".
        mark_owned_parents(&mut root, &self.paths, &mut Vec::new());
        Value::Object(root)
    }

    /// Parses a `FieldsV1` tree.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let mut set = FieldSet::new();
        let Some(map) = value.as_object() else {
            return Err("fieldsV1 must be an object".into());
        };
        parse_node(map, &mut Vec::new(), &mut set)?;
        Ok(set)
    }
}

fn insert_path(node: &mut Map<String, Value>, path: &[PathElement]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let entry = node
        .entry(element_key(first))
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(child) = entry {
        insert_path(child, rest);
    }
}

fn mark_owned_parents(node: &mut Map<String, Value>, paths: &BTreeSet<Path>, prefix: &mut Path) {
    for (key, child) in node.iter_mut() {
        if key == "." {
            continue;
        }
        let Some(element) = parse_element(key) else {
            continue;
        };
        prefix.push(element);
        if let Value::Object(child_map) = child
            && !child_map.is_empty()
        {
            if paths.contains(prefix) && !child_map.contains_key(".") {
                child_map.insert(".".into(), Value::Object(Map::new()));
            }
            mark_owned_parents(child_map, paths, prefix);
        }
        prefix.pop();
    }
}

fn parse_node(
    map: &Map<String, Value>,
    prefix: &mut Path,
    set: &mut FieldSet,
) -> Result<(), String> {
    for (key, child) in map {
        if key == "." {
            if !prefix.is_empty() {
                set.insert(prefix.clone());
            }
            continue;
        }
        let element = parse_element(key).ok_or_else(|| format!("bad fieldsV1 key {key:?}"))?;
        prefix.push(element);
        match child.as_object() {
            Some(m) if m.is_empty() => set.insert(prefix.clone()),
            Some(m) => parse_node(m, prefix, set)?,
            None => return Err(format!("fieldsV1 node {key:?} is not an object")),
        }
        prefix.pop();
    }
    Ok(())
}

fn element_key(element: &PathElement) -> String {
    match element {
        PathElement::Field(name) => format!("f:{name}"),
        PathElement::Key(json) => format!("k:{json}"),
        PathElement::Value(json) => format!("v:{json}"),
    }
}

fn parse_element(key: &str) -> Option<PathElement> {
    if let Some(name) = key.strip_prefix("f:") {
        Some(PathElement::Field(name.to_string()))
    } else if let Some(json) = key.strip_prefix("k:") {
        // Re-canonicalize so keys written by other tools compare equal to ours.
        let parsed: Value = serde_json::from_str(json).ok()?;
        let map = parsed.as_object()?;
        let fields: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Some(PathElement::Key(canonical_key(fields)))
    } else {
        key.strip_prefix("v:")
            .map(|json| PathElement::Value(json.to_string()))
    }
}

/// Compact JSON of key fields, sorted by name.
fn canonical_key(mut fields: Vec<(&str, &Value)>) -> String {
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = Map::new();
    for (name, value) in fields {
        map.insert(name.to_string(), value.clone());
    }
    Value::Object(map).to_string()
}

/// How the server keeps a list: its `x-kubernetes-list-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole by every write; recorded as one leaf.
    Atomic,
    /// A set of scalars, each recorded as `v:<json>`.
    Set,
    /// An associative list keyed by these fields, each item recorded as `k:<json>`.
    Map(&'static [&'static str]),
}

/// Fields that hold a container (their items have `ports`, `env`, `volumeMounts`).
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The list type of the list at `fields` (the field names from the object's root; list items
/// are not steps). This is what the built-in types declare with `+listType`, `+listMapKey` and
/// `+patchMergeKey` (the API server treats a merge key without a list type as a map keyed by
/// it); every other list, including every list of a custom resource here, is atomic, as the
/// real server treats a list its schema says nothing about.
pub fn list_type(fields: &[&str]) -> ListType {
    let Some((&last, before)) = fields.split_last() else {
        return ListType::Atomic;
    };
    let parent = before.last().copied();
    const NAME: &[&str] = &["name"];
    match (parent, last) {
        (_, list) if CONTAINER_LISTS.contains(&list) => ListType::Map(NAME),
        (Some(c), "ports") if CONTAINER_LISTS.contains(&c) => {
            ListType::Map(&["containerPort", "protocol"])
        }
        (Some(c), "env") if CONTAINER_LISTS.contains(&c) => ListType::Map(NAME),
        (Some(c), "volumeMounts") if CONTAINER_LISTS.contains(&c) => ListType::Map(&["mountPath"]),
        (Some(c), "volumeDevices") if CONTAINER_LISTS.contains(&c) => {
            ListType::Map(&["devicePath"])
        }
        (Some("spec"), "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
            ListType::Map(NAME)
        }
        (Some("spec"), "hostAliases") => ListType::Map(&["ip"]),
        (Some("spec"), "topologySpreadConstraints") => {
            ListType::Map(&["topologyKey", "whenUnsatisfiable"])
        }
        // A Service's ports: the only `ports` right under `spec`.
        (Some("spec"), "ports") if before.len() == 1 => ListType::Map(&["port", "protocol"]),
        (Some("metadata"), "ownerReferences") if before.len() == 1 => ListType::Map(&["uid"]),
        (Some("metadata"), "finalizers") if before.len() == 1 => ListType::Set,
        (_, "conditions") if fields.first() == Some(&"status") => ListType::Map(&["type"]),
        // A ServiceAccount's secrets.
        (None, "secrets") => ListType::Map(NAME),
        _ => ListType::Atomic,
    }
}

/// The value a key field takes when an item leaves it out (the schema's default).
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::String("TCP".into()))
}

/// The key of one list item: its key fields (defaulted where the schema defaults them), or
/// `None` when the item lacks one that has no default.
pub fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let map = item.as_object()?;
    let mut fields = Vec::with_capacity(keys.len());
    for k in keys {
        let value = match map.get(*k) {
            Some(v) => v.clone(),
            None => key_default(k)?,
        };
        fields.push((*k, value));
    }
    Some(canonical_key(fields.iter().map(|(k, v)| (*k, v)).collect()))
}

/// The field names of a path (its list steps left out).
pub fn field_names(path: &[PathElement]) -> Vec<&str> {
    path.iter()
        .filter_map(|e| match e {
            PathElement::Field(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn collect(value: &Value, path: &mut Path, set: &mut FieldSet, strict: bool) -> Result<(), String> {
    match value {
        Value::Object(map) if map.values().any(|v| !v.is_null()) => {
            for (key, child) in map {
                if child.is_null() {
                    continue;
                }
                path.push(PathElement::Field(key.clone()));
                collect(child, path, set, strict)?;
                path.pop();
            }
        }
        Value::Array(items) => match list_type(&field_names(path)) {
            ListType::Map(keys) if !items.is_empty() => {
                let mut seen = BTreeSet::new();
                let mut keyed = Vec::with_capacity(items.len());
                for item in items {
                    let Some(key) = item_key(item, keys) else {
                        set.insert(path.clone());
                        return Ok(());
                    };
                    if !seen.insert(key.clone()) {
                        if strict {
                            return Err(format!(
                                "duplicate entries for key {key} in {}",
                                display_path(path)
                            ));
                        }
                        set.insert(path.clone());
                        return Ok(());
                    }
                    keyed.push((key, item));
                }
                for (key, item) in keyed {
                    path.push(PathElement::Key(key));
                    set.insert(path.clone());
                    collect(item, path, set, strict)?;
                    path.pop();
                }
            }
            ListType::Set if !items.is_empty() => {
                for item in items {
                    path.push(PathElement::Value(item.to_string()));
                    set.insert(path.clone());
                    path.pop();
                }
            }
            _ => set.insert(path.clone()),
        },
        _ => set.insert(path.clone()),
    }
    Ok(())
}

/// The value at a path, if present.
pub fn get<'a>(value: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut current = value;
    for element in path {
        current = match element {
            PathElement::Field(name) => current.as_object()?.get(name)?,
            PathElement::Key(key) => {
                let items = current.as_array()?;
                let position = find_keyed(items, key)?;
                items.get(position)?
            }
            PathElement::Value(json) => {
                let wanted: Value = serde_json::from_str(json).ok()?;
                current.as_array()?.iter().find(|item| **item == wanted)?
            }
        };
    }
    Some(current)
}

/// Removes the value at a path; true if something was removed.
pub fn remove(value: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = get_mut(value, parent_path) else {
        return false;
    };
    match last {
        PathElement::Field(name) => parent
            .as_object_mut()
            .is_some_and(|m| m.shift_remove(name).is_some()),
        PathElement::Key(key) => match parent.as_array_mut() {
            Some(items) => match find_keyed(items, key) {
                Some(position) => {
                    items.remove(position);
                    true
                }
                None => false,
            },
            None => false,
        },
        PathElement::Value(json) => {
            let Ok(wanted) = serde_json::from_str::<Value>(json) else {
                return false;
            };
            match parent.as_array_mut() {
                Some(items) => {
                    let before = items.len();
                    items.retain(|item| *item != wanted);
                    before != items.len()
                }
                None => false,
            }
        }
    }
}

fn get_mut<'a>(value: &'a mut Value, path: &[PathElement]) -> Option<&'a mut Value> {
    let mut current = value;
    for element in path {
        current = match element {
            PathElement::Field(name) => current.as_object_mut()?.get_mut(name)?,
            PathElement::Key(key) => {
                let items = current.as_array_mut()?;
                let position = find_keyed(items, key)?;
                items.get_mut(position)?
            }
            PathElement::Value(json) => {
                let wanted: Value = serde_json::from_str(json).ok()?;
                current
                    .as_array_mut()?
                    .iter_mut()
                    .find(|item| **item == wanted)?
            }
        };
    }
    Some(current)
}

fn find_keyed(items: &[Value], key: &str) -> Option<usize> {
    let wanted: Value = serde_json::from_str(key).ok()?;
    let fields: Vec<&str> = wanted.as_object()?.keys().map(String::as_str).collect();
    items.iter().position(|item| {
        item.as_object().is_some_and(|m| {
            fields.iter().all(|f| {
                let value = m.get(*f).cloned().or_else(|| key_default(f));
                value.as_ref() == wanted.get(*f)
            })
        })
    })
}

/// A path as Kubernetes prints it in conflicts: `.spec.containers[name="app"].image`.
pub fn display_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            PathElement::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            PathElement::Key(json) => {
                out.push('[');
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) {
                    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&parts.join(","));
                }
                out.push(']');
            }
            PathElement::Value(json) => {
                out.push_str("[=");
                out.push_str(json);
                out.push(']');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn collects_leaves_and_keyed_items() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx", "args": ["a", "b"]}
            ]}}},
            "status": {"replicas": 2}
        });
        let set = FieldSet::from_object(&obj, Scope::Main { has_status: true }, true).unwrap();
        let c = PathElement::Key(r#"{"name":"app"}"#.into());
        let containers = vec![f("spec"), f("template"), f("spec"), f("containers")];
        let mut item = containers.clone();
        item.push(c.clone());
        let mut image = item.clone();
        image.push(f("image"));
        let mut args = item.clone();
        args.push(f("args"));
        assert!(set.contains(&vec![f("metadata"), f("labels"), f("app")]));
        assert!(set.contains(&vec![f("spec"), f("replicas")]));
        assert!(set.contains(&item));
        assert!(set.contains(&image));
        assert!(set.contains(&args));
        assert!(!set.contains(&vec![f("metadata"), f("name")]));
        assert!(!set.contains(&vec![f("status"), f("replicas")]));
        assert!(!set.contains(&containers));
        assert_eq!(
            display_path(&image),
            r#".spec.template.spec.containers[name="app"].image"#
        );
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [
            {"port": 80, "protocol": "TCP", "name": "http"}], "selector": {}}});
        let set = FieldSet::from_object(&obj, Scope::Main { has_status: false }, true).unwrap();
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {
                "f:ports": {r#"k:{"port":80,"protocol":"TCP"}"#: {".": {}, "f:port": {}, "f:protocol": {}, "f:name": {}}},
                "f:selector": {}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set);
    }

    #[test]
    fn duplicate_keys_are_rejected_when_strict() {
        let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert!(FieldSet::from_object(&obj, Scope::Main { has_status: false }, true).is_err());
        let set = FieldSet::from_object(&obj, Scope::Main { has_status: false }, false).unwrap();
        assert!(set.contains(&vec![f("spec"), f("containers")]));
    }

    #[test]
    fn get_and_remove_keyed_items() {
        let mut obj = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        let path = vec![
            f("env"),
            PathElement::Key(r#"{"name":"B"}"#.into()),
            f("value"),
        ];
        assert_eq!(get(&obj, &path), Some(&json!("2")));
        assert!(remove(&mut obj, &path[..2]));
        assert_eq!(obj, json!({"env": [{"name": "A", "value": "1"}]}));
        assert!(!remove(&mut obj, &path[..2]));
    }

    #[test]
    fn volume_mounts_key_by_mount_path() {
        let items = [
            json!({"name": "data", "mountPath": "/a"}),
            json!({"name": "data", "mountPath": "/b"}),
        ];
        let keys = ["mountPath"];
        assert_ne!(item_key(&items[0], &keys), item_key(&items[1], &keys));
        let container = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_type(&[&container[..], &["volumeMounts"]].concat()),
            ListType::Map(&["mountPath"])
        );
        assert_eq!(
            list_type(&[&container[..], &["args"]].concat()),
            ListType::Atomic
        );
    }

    #[test]
    fn list_types_follow_the_built_in_schemas() {
        // Keyed by name only where the type says so: a RoleBinding's subjects and a
        // NetworkPolicy's rules are atomic.
        assert_eq!(list_type(&["subjects"]), ListType::Atomic);
        assert_eq!(list_type(&["spec", "ingress"]), ListType::Atomic);
        assert_eq!(list_type(&["rules"]), ListType::Atomic);
        assert_eq!(
            list_type(&["spec", "ports"]),
            ListType::Map(&["port", "protocol"])
        );
        assert_eq!(list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(
            list_type(&["status", "conditions"]),
            ListType::Map(&["type"])
        );
        // A port without a protocol is keyed with the default one.
        let port = json!({"containerPort": 80});
        assert_eq!(
            item_key(&port, &["containerPort", "protocol"]).as_deref(),
            Some(r#"{"containerPort":80,"protocol":"TCP"}"#)
        );
    }
}
