//! Managed fields: which fields of a live object tally's field manager owns, and the shape of
//! associative lists.
//!
//! The API server records, per field manager, the set of fields it set (`metadata.managedFields`,
//! `fieldsV1`): `f:name` for a map field, `k:{"name":"web"}` for an item of a list keyed by
//! `name`, `v:"x"` for a member of a set, `i:3` for a list position, `.` for the node itself.
//! The diff reads tally's set to tell "a field tally set and then dropped" (a change) from "a field
//! someone else set, or a server default" (not tally's business).

use serde_json::{Map, Value};

/// tally's field manager name, for every server-side apply.
pub const MANAGER: &str = "tally";

/// Removes `metadata.managedFields` from an object read or written: once the diff has read them
/// they are dead weight (often a third of the object), and the engine holds a thousand objects
/// while it applies.
pub fn drop_managed_fields(object: &mut serde_json::Value) {
    if let Some(meta) = object
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        meta.remove("managedFields");
    }
}

/// The field sets covering one node of an object: tally's and everyone else's.
#[derive(Debug, Clone, Default)]
pub struct Ownership<'a> {
    /// tally's set at this node, if tally owns anything here.
    pub tally: Option<&'a Map<String, Value>>,
    /// Other managers' sets at this node.
    pub others: Vec<&'a Map<String, Value>>,
    /// Inside a list the server keeps whole (`listType: atomic`): an apply replaces it, so an
    /// item live holds and the desired state does not is removed, whoever added it.
    pub atomic: bool,
}

impl<'a> Ownership<'a> {
    /// The ownership recorded in a live object's `metadata.managedFields`. Only tally's `Apply`
    /// entries count as tally's; entries for subresources (`status`) are ignored, since tally
    /// never writes them.
    pub fn of(live: &'a Value) -> Ownership<'a> {
        let mut own = Ownership::default();
        let Some(entries) = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
        else {
            return own;
        };
        for entry in entries {
            let s = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
            if !s("subresource").is_empty() {
                continue;
            }
            let Some(set) = entry.get("fieldsV1").and_then(Value::as_object) else {
                continue;
            };
            if s("manager") == MANAGER && s("operation") == "Apply" {
                own.tally = Some(set);
            } else {
                own.others.push(set);
            }
        }
        own
    }

    /// Whether nobody has recorded anything (no managed fields, or a node no one set).
    pub fn is_unknown(&self) -> bool {
        self.tally.is_none() && self.others.is_empty()
    }

    /// The ownership of what lies inside an atomic list: nothing recorded, everything replaced.
    pub fn atomic() -> Ownership<'a> {
        Ownership {
            atomic: true,
            ..Ownership::default()
        }
    }

    /// Whether the list at this node is kept whole by the server: already inside an atomic list,
    /// or tally's set records the list as a leaf (`f:subjects: {}`) and no manager records items
    /// (`k:`/`v:` entries), which is how the server records a `listType: atomic` field.
    pub fn list_is_atomic(&self) -> bool {
        self.atomic
            || (self.tally.is_some_and(Map::is_empty)
                && self.list_keys().is_none()
                && !self.is_set())
    }

    /// The ownership of child `key` (`f:name`, `k:{..}`, `v:..`).
    pub fn child(&self, key: &str) -> Ownership<'a> {
        if self.atomic {
            return Ownership::atomic();
        }
        let get = |m: &&'a Map<String, Value>| m.get(key).and_then(Value::as_object);
        Ownership {
            tally: self.tally.and_then(|m| get(&m)),
            others: self.others.iter().filter_map(get).collect(),
            atomic: false,
        }
    }

    /// The ownership of map field `name`.
    pub fn field(&self, name: &str) -> Ownership<'a> {
        self.child(&format!("f:{name}"))
    }

    /// The ownership of the keyed list item that `item` (a live item) is.
    pub fn item(&self, item: &Value) -> Ownership<'a> {
        if self.atomic {
            return Ownership::atomic();
        }
        let find = |m: &'a Map<String, Value>| -> Option<&'a Map<String, Value>> {
            m.iter()
                .find(|(k, _)| {
                    k.strip_prefix("k:")
                        .and_then(|json| serde_json::from_str::<Map<String, Value>>(json).ok())
                        .is_some_and(|key| item_has_key(item, &key))
                })
                .and_then(|(_, v)| v.as_object())
        };
        Ownership {
            tally: self.tally.and_then(find),
            others: self.others.iter().filter_map(|m| find(m)).collect(),
            atomic: false,
        }
    }

    /// The ownership of set member `value`.
    pub fn member(&self, value: &Value) -> Ownership<'a> {
        self.child(&format!("v:{value}"))
    }

    /// Whether tally owns this node and nobody else does: dropping it from the desired state
    /// removes it from the cluster.
    pub fn tally_alone(&self) -> bool {
        self.tally.is_some() && self.others.is_empty()
    }

    /// The key fields of a keyed list, as the recorded `k:` entries show them.
    pub fn list_keys(&self) -> Option<Vec<String>> {
        self.tally
            .into_iter()
            .chain(self.others.iter().copied())
            .flat_map(|m| m.keys())
            .find_map(|k| {
                let json = k.strip_prefix("k:")?;
                let key: Map<String, Value> = serde_json::from_str(json).ok()?;
                Some(key.keys().cloned().collect())
            })
    }

    /// Whether the recorded entries show the list at this node as a set (`v:` members).
    pub fn is_set(&self) -> bool {
        self.tally
            .into_iter()
            .chain(self.others.iter().copied())
            .flat_map(|m| m.keys())
            .any(|k| k.starts_with("v:"))
    }
}

/// Whether a live list item carries exactly `key` (the values of a `k:` entry).
fn item_has_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter()
        .all(|(k, v)| item.get(k).is_some_and(|iv| same_scalar(v, iv)))
}

/// The merge keys of a list of objects, from its field name and items, when the recorded managed
/// fields do not tell: Kubernetes' well-known associative lists (those the built-in types key
/// with `+listMapKey` or `+patchMergeKey`). `None` means an atomic list, compared position by
/// position, as the server treats every list its schema does not key (a RoleBinding's
/// `subjects`, a custom resource's lists): comparing such a list by a guessed key would miss an
/// item the apply removes.
pub fn known_list_keys(field: &str, items: &[&Value]) -> Option<Vec<String>> {
    let every = |k: &str| !items.is_empty() && items.iter().all(|i| i.get(k).is_some());
    let keys: &[&str] = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "volumeDevices"
        | "resourceClaims"
        | "schedulingGates" => &["name"],
        "volumeMounts" => &["mountPath"],
        "hostAliases" => &["ip"],
        "conditions" => &["type"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        "ports" if every("containerPort") => &["containerPort", "protocol"],
        "ports" if every("port") => &["port", "protocol"],
        "secrets" if every("name") => &["name"],
        _ => return None,
    };
    Some(keys.iter().map(|k| (*k).to_owned()).collect())
}

/// The keys a list is merged by: from the managed fields if they show any, otherwise
/// [`known_list_keys`].
pub fn list_keys(own: &Ownership<'_>, field: &str, items: &[&Value]) -> Option<Vec<String>> {
    if items.iter().any(|i| !i.is_object()) {
        return None;
    }
    own.list_keys().or_else(|| known_list_keys(field, items))
}

/// The `fieldsV1` set that applying `value` records: every leaf as `f:`, keyed list items as
/// `k:`, lists of scalars and other lists as atomic leaves. Used by the in-memory cluster to
/// behave like the API server.
pub fn field_set(value: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = value {
        for (k, v) in m {
            out.insert(format!("f:{k}"), node_set(k, v));
        }
    }
    Value::Object(out)
}

fn node_set(field: &str, value: &Value) -> Value {
    match value {
        Value::Object(m) if !m.is_empty() => field_set(value),
        Value::Array(items) => {
            let refs: Vec<&Value> = items.iter().collect();
            match list_keys(&Ownership::default(), field, &refs) {
                Some(keys) => {
                    let mut out = Map::new();
                    for item in items {
                        let mut key = Map::new();
                        for k in &keys {
                            if let Some(v) = item.get(k) {
                                key.insert(k.clone(), v.clone());
                            }
                        }
                        let mut node = match field_set(item) {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        node.insert(".".into(), Value::Object(Map::new()));
                        out.insert(format!("k:{}", Value::Object(key)), Value::Object(node));
                    }
                    Value::Object(out)
                }
                None => Value::Object(Map::new()),
            }
        }
        _ => Value::Object(Map::new()),
    }
}

/// Whether two scalars are the same value as the API server stores it: equal, equal numbers
/// (`1` and `1.0`), or a number and the string of that number (an int-or-string field).
pub fn same_scalar(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"metadata": {"managedFields": [
            {"manager": "tally", "operation": "Apply", "fieldsV1": {
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {}}},
            {"manager": "kubectl", "operation": "Update", "fieldsV1": {
                "f:spec": {"f:paused": {}}}}
        ]}})
    }

    #[test]
    fn tally_and_other_managers_are_told_apart() {
        let v = live();
        let own = Ownership::of(&v);
        assert!(own.tally.is_some());
        assert_eq!(
            own.others.len(),
            1,
            "the status subresource entry is ignored"
        );
        let spec = own.field("spec");
        assert!(spec.field("replicas").tally_alone());
        let paused = spec.field("paused");
        assert!(paused.tally.is_none() && paused.others.len() == 1);
        let containers = spec.field("template").field("spec").field("containers");
        assert_eq!(containers.list_keys(), Some(vec!["name".to_owned()]));
        let web = containers.item(&json!({"name": "web", "image": "x"}));
        assert!(web.field("image").tally_alone());
        let other = containers.item(&json!({"name": "sidecar"}));
        assert!(other.is_unknown());
    }

    #[test]
    fn well_known_lists_have_keys() {
        let c = json!({"name": "a", "containerPort": 80});
        assert_eq!(
            known_list_keys("ports", &[&c]),
            Some(vec!["containerPort".into(), "protocol".into()])
        );
        let s = json!({"port": 80});
        assert_eq!(
            known_list_keys("ports", &[&s]),
            Some(vec!["port".into(), "protocol".into()])
        );
        assert_eq!(
            known_list_keys("volumeMounts", &[&json!({"mountPath": "/x", "name": "v"})]),
            Some(vec!["mountPath".into()])
        );
        assert_eq!(
            known_list_keys("rules", &[&json!({"verbs": ["get"]})]),
            None
        );
        assert_eq!(known_list_keys("args", &[]), None);
    }

    #[test]
    fn applying_records_a_field_set() {
        let v = json!({"spec": {"replicas": 2, "args": ["a"], "containers": [{"name": "web", "image": "x"}]}});
        assert_eq!(
            field_set(&v),
            json!({"f:spec": {"f:replicas": {}, "f:args": {}, "f:containers": {
                "k:{\"name\":\"web\"}": {"f:name": {}, "f:image": {}, ".": {}}}}})
        );
    }
}
