//! The tenant boundary: what a tenant's apps may create, and the UID/GID range their pods run in.
//!
//! A tenant's app may only touch the tenant's namespaces, may create cluster-scoped kinds only
//! when the tenant is granted them, may never bind `cluster-admin`, and its pods run with user and
//! group ids inside the tenant's range: rendering fills them where absent, the gate rejects an
//! explicit value outside.

use serde_json::{Map, Value};
use tally_validator::object::pod_spec_pointer;
use tally_validator::{Finding, Object, Severity};

use crate::model::{IdRanges, TenantSpec};

/// Rule ids of the tenant boundary.
pub mod rules {
    /// An object in a namespace its tenant does not own.
    pub const NAMESPACE: &str = "tenant-namespace";
    /// A cluster-scoped kind the tenant was not granted.
    pub const CLUSTER_SCOPED: &str = "tenant-cluster-scoped";
    /// A binding to `cluster-admin` in a tenant's app.
    pub const CLUSTER_ADMIN: &str = "tenant-cluster-admin";
    /// A user or group id outside the tenant's range.
    pub const ID_RANGE: &str = "tenant-id-range";
}

/// Built-in kinds that are cluster-scoped (not in any namespace).
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "ServiceCIDR",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

/// Whether a built-in kind is cluster-scoped. Custom resources' scope comes from their CRD.
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// Fills the pod-level `runAsUser`, `runAsGroup` and `fsGroup` of a workload with the range's
/// first ids where they are absent. Returns the pointers it set.
pub fn fill_ids(object: &mut Value, ids: &IdRanges) -> Vec<String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(pod) = pod_spec_pointer(api_version, kind) else {
        return Vec::new();
    };
    let Some(spec) = object.pointer_mut(pod).and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let ctx = spec
        .entry("securityContext")
        .or_insert_with(|| Value::Object(Map::new()));
    // `securityContext: ~` is the same as none.
    if ctx.is_null() {
        *ctx = Value::Object(Map::new());
    }
    let Some(ctx) = ctx.as_object_mut() else {
        return Vec::new();
    };
    let mut filled = Vec::new();
    for (field, id) in [
        ("runAsUser", ids.uid.min),
        ("runAsGroup", ids.gid.min),
        ("fsGroup", ids.gid.min),
    ] {
        if !ctx.contains_key(field) {
            ctx.insert(field.into(), Value::from(id));
            filled.push(format!("{pod}/securityContext/{field}"));
        }
    }
    filled
}

/// Checks one rendered object of a tenant's app against the tenant's boundary.
pub fn check(
    object: &Object,
    tenant: &str,
    spec: &TenantSpec,
    cluster_scoped: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let kind = object.id.kind.as_str();
    if cluster_scoped {
        if !spec.allowed_cluster_kinds.iter().any(|k| k == kind) {
            out.push(object.finding(
                rules::CLUSTER_SCOPED,
                Severity::Error,
                "/kind",
                format!("tenant `{tenant}` may not create cluster-scoped {kind} objects; grant it in the tenant's allowedClusterKinds, or move the object out of the app"),
            ));
        }
    } else {
        let ns = object.id.namespace.as_deref().unwrap_or("");
        if !spec.namespaces.iter().any(|n| n == ns) {
            out.push(object.finding(
                rules::NAMESPACE,
                Severity::Error,
                "/metadata/namespace",
                format!(
                    "namespace `{ns}` does not belong to tenant `{tenant}` (it owns: {})",
                    spec.namespaces.join(", ")
                ),
            ));
        }
    }
    if matches!(kind, "RoleBinding" | "ClusterRoleBinding")
        && object
            .value
            .pointer("/roleRef/kind")
            .and_then(Value::as_str)
            == Some("ClusterRole")
        && object
            .value
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            == Some("cluster-admin")
    {
        out.push(object.finding(
            rules::CLUSTER_ADMIN,
            Severity::Error,
            "/roleRef/name",
            format!("tenant `{tenant}`'s apps may not bind cluster-admin; bind a namespaced Role or the `admin` ClusterRole"),
        ));
    }
    if let Some(ids) = &spec.ids {
        check_ids(object, tenant, ids, &mut out);
    }
    out
}

fn check_ids(object: &Object, tenant: &str, ids: &IdRanges, out: &mut Vec<Finding>) {
    let Some(pod) = pod_spec_pointer(&object.id.api_version, &object.id.kind) else {
        return;
    };
    let Some(spec) = object.value.pointer(pod) else {
        return;
    };
    let mut contexts = vec![(
        format!("{pod}/securityContext"),
        spec.get("securityContext"),
    )];
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(Value::Array(cs)) = spec.get(list) {
            for (i, c) in cs.iter().enumerate() {
                contexts.push((
                    format!("{pod}/{list}/{i}/securityContext"),
                    c.get("securityContext"),
                ));
            }
        }
    }
    for (at, ctx) in contexts {
        let Some(ctx) = ctx else { continue };
        for (field, range, what) in [
            ("runAsUser", ids.uid, "user"),
            ("runAsGroup", ids.gid, "group"),
            ("fsGroup", ids.gid, "group"),
        ] {
            if let Some(id) = ctx.get(field).and_then(Value::as_i64)
                && !range.contains(id)
            {
                out.push(object.finding(
                    rules::ID_RANGE,
                    Severity::Error,
                    &format!("{at}/{field}"),
                    format!(
                        "{field} {id} is outside tenant `{tenant}`'s {what} id range {}-{}; remove it (tally fills it) or pick an id in the range",
                        range.min, range.max
                    ),
                ));
            }
        }
        if let Some(Value::Array(groups)) = ctx.get("supplementalGroups") {
            for (g, id) in groups.iter().enumerate() {
                if let Some(id) = id.as_i64()
                    && !ids.gid.contains(id)
                {
                    out.push(object.finding(
                        rules::ID_RANGE,
                        Severity::Error,
                        &format!("{at}/supplementalGroups/{g}"),
                        format!(
                            "supplemental group {id} is outside tenant `{tenant}`'s group id range {}-{}",
                            ids.gid.min, ids.gid.max
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use tally_validator::{manifest, yaml};

    fn object(text: &str) -> Object {
        let file: Arc<str> = Arc::from("app.yaml");
        let mut objects = manifest::objects_from(&file, yaml::load(&file, text)).objects;
        objects.remove(0)
    }

    fn tenant() -> TenantSpec {
        serde_json::from_value(json!({
            "namespaces": ["pay"],
            "ids": {"uid": {"min": 10000, "max": 10999}, "gid": {"min": 20000, "max": 20999}},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules_at(findings: &[Finding]) -> Vec<(&'static str, u32, u32)> {
        findings
            .iter()
            .map(|f| (f.rule, f.pos.line, f.pos.column))
            .collect()
    }

    #[test]
    fn namespaces_and_cluster_scope() {
        let o =
            object("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: other\n");
        assert_eq!(
            rules_at(&check(&o, "payments", &tenant(), false)),
            [(rules::NAMESPACE, 5, 3)]
        );
        let o = object(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: b\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects: []\n",
        );
        assert_eq!(
            rules_at(&check(&o, "payments", &tenant(), true)),
            [(rules::CLUSTER_SCOPED, 2, 1), (rules::CLUSTER_ADMIN, 8, 3)]
        );
    }

    #[test]
    fn ids_are_filled_and_checked() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: pay\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 10500\n      containers:\n        - name: a\n          image: a:1\n          securityContext:\n            runAsGroup: 0\n";
        let mut o = object(text);
        let filled = fill_ids(&mut o.value, &tenant().ids.unwrap_or_else(|| panic!("ids")));
        assert_eq!(
            filled,
            [
                "/spec/template/spec/securityContext/runAsGroup",
                "/spec/template/spec/securityContext/fsGroup"
            ]
        );
        assert_eq!(
            o.value["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
            10500
        );
        assert_eq!(
            rules_at(&check(&o, "payments", &tenant(), false)),
            [(rules::ID_RANGE, 15, 13)]
        );
        assert!(is_cluster_scoped("ClusterRole") && !is_cluster_scoped("Role"));
    }
}
