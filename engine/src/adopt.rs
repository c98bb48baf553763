//! Adoption: taking over an object that another deploy tool created, so that what git removes
//! later is removed from the cluster.
//!
//! Server-side apply removes a field only when the applier was its last owner. An object first
//! created by `kubectl apply` (client-side: the managers `kubectl-client-side-apply` and
//! `before-first-apply`), by `kubectl apply --server-side` (`kubectl`) or by Helm (`helm`) keeps
//! those managers as owners of every field it had: tally's apply would change the values but
//! never remove one, so a container's env var dropped in git would stay forever. Before its
//! first apply of such an object, tally moves those managers' fields into its own entry (one
//! patch of `metadata.managedFields`, guarded by the resourceVersion the plan read), as Flux
//! does; the plan says so, and shows the fields the apply will then remove.
//!
//! Controllers' entries (an autoscaler's `spec.replicas`, a status writer) and entries of a
//! subresource are left alone.

use serde_json::{Map, Value, json};

use crate::fields::MANAGER;

/// Managers whose fields tally takes over: other ways of deploying the same manifests.
pub const ADOPTED_MANAGERS: &[&str] = &[
    "kubectl-client-side-apply",
    "before-first-apply",
    "kubectl",
    "helm",
];

/// A takeover to do before the first apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoption {
    /// The managers whose fields move to tally.
    pub from: Vec<String>,
    /// The managed fields after the takeover.
    pub managed_fields: Value,
    /// The resourceVersion the takeover is guarded by.
    pub resource_version: String,
}

/// What taking over `live` means, if it has entries of [`ADOPTED_MANAGERS`].
pub fn adoption(live: &Value) -> Option<Adoption> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let adopted = |e: &Value| {
        let manager = e.get("manager").and_then(Value::as_str).unwrap_or_default();
        ADOPTED_MANAGERS.contains(&manager) && e.get("subresource").is_none_or(Value::is_null)
    };
    if !entries.iter().any(adopted) {
        return None;
    }
    let mut from: Vec<String> = Vec::new();
    let mut taken = Map::new();
    let mut kept = Vec::new();
    let mut tally_entry: Option<Value> = None;
    for e in entries {
        let manager = e.get("manager").and_then(Value::as_str).unwrap_or_default();
        let is_tally = manager == MANAGER
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("subresource").is_none_or(Value::is_null);
        if adopted(e) {
            if !from.iter().any(|m| m == manager) {
                from.push(manager.to_owned());
            }
            if let Some(f) = e.get("fieldsV1").and_then(Value::as_object) {
                merge(&mut taken, f);
            }
        } else if is_tally {
            tally_entry = Some(e.clone());
        } else {
            kept.push(e.clone());
        }
    }
    let api_version = live.get("apiVersion").cloned().unwrap_or(Value::Null);
    let mut entry = tally_entry.unwrap_or_else(|| {
        json!({"manager": MANAGER, "operation": "Apply", "apiVersion": api_version,
            "fieldsType": "FieldsV1", "fieldsV1": {}})
    });
    if let Some(fields) = entry.get_mut("fieldsV1").and_then(Value::as_object_mut) {
        merge(fields, &taken);
    }
    if let Some(map) = entry.as_object_mut() {
        map.insert("time".into(), json!(crate::inventory::now_rfc3339()));
    }
    kept.push(entry);
    Some(Adoption {
        from,
        managed_fields: Value::Array(kept),
        resource_version: live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// `live` as it will be once adopted: what the diff should compare with, so that the fields the
/// other managers set and git no longer has are planned as removed.
pub fn adopted_view(live: &Value, adoption: &Adoption) -> Value {
    let mut v = live.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".into(), adoption.managed_fields.clone());
    }
    v
}

/// Unions two `fieldsV1` trees.
fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (Some(_), _) => {}
            (None, _) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_fields_move_to_tally_and_controllers_keep_theirs() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "resourceVersion": "7", "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update",
                 "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                     "k:{\"name\":\"api\"}": {".": {}, "f:env": {"k:{\"name\":\"OLD\"}": {}}}}}}}}},
                {"manager": "kube-controller-manager", "operation": "Update",
                 "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}},
                {"manager": "tally", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}});
        let a = adoption(&live).unwrap_or_else(|| panic!("adoption"));
        assert_eq!(a.from, ["kubectl-client-side-apply"]);
        assert_eq!(a.resource_version, "7");
        let entries = a.managed_fields.as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["manager"], "kube-controller-manager");
        assert_eq!(entries[1]["manager"], "tally");
        let spec = &entries[1]["fieldsV1"]["f:spec"];
        assert!(spec.get("f:replicas").is_some());
        assert!(spec.pointer("/f:template/f:spec/f:containers").is_some());

        let plain = json!({"metadata": {"managedFields": [
            {"manager": "tally", "operation": "Apply", "fieldsV1": {}}]}});
        assert!(adoption(&plain).is_none());
    }
}
