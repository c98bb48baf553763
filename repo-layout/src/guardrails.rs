//! Tenant guardrails: the objects every tenant namespace gets, generated from `tenant.yaml` and
//! never written by hand.
//!
//! Per namespace: the Namespace (Pod Security Admission labels, the tenant's id ranges), a
//! ResourceQuota, a LimitRange, a default-deny NetworkPolicy for ingress and egress plus one policy
//! per allowance, the deployer ServiceAccount with its Role and RoleBinding (the engine impersonates
//! it to apply the tenant's apps), and a RoleBinding per group. Each generated object names the
//! tenant-file field that produced it, so findings and diffs point at a line a person can change.

use serde_json::{Map, Value, json};

use crate::model::{Role, TenantSpec};

/// The deployer ServiceAccount's (and its Role's) name in every tenant namespace.
pub const DEPLOYER: &str = "tally-deployer";

/// A generated object and the JSON pointer (into `tenant.yaml`) of the field that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The object.
    pub value: Value,
    /// The tenant-file field it comes from, e.g. `/spec/quota`.
    pub source: String,
}

/// Every guardrail object for one tenant.
pub fn guardrails(tenant: &str, spec: &TenantSpec) -> Vec<Generated> {
    let mut out = Vec::new();
    for (i, ns) in spec.namespaces.iter().enumerate() {
        let at = |p: &str| {
            if p.is_empty() {
                format!("/spec/namespaces/{i}")
            } else {
                p.to_owned()
            }
        };
        let mut push = |value: Value, source: String| out.push(Generated { value, source });
        push(namespace(tenant, ns, spec), at(""));
        push(quota(tenant, ns, spec), at("/spec/quota"));
        push(limit_range(tenant, ns, spec), at("/spec/limits"));
        push(default_deny(tenant, ns), at(""));
        if spec.network.allow_dns {
            push(allow_dns(tenant, ns), at("/spec/network"));
        }
        if spec.network.allow_same_tenant {
            push(allow_same_tenant(tenant, ns), at("/spec/network"));
        }
        if let Some(ingress_ns) = &spec.network.ingress_controller_namespace {
            push(
                allow_from_ingress(tenant, ns, ingress_ns),
                at("/spec/network/ingressControllerNamespace"),
            );
        }
        for (e, egress) in spec.network.egress.iter().enumerate() {
            let ports: Vec<Value> = egress
                .ports
                .iter()
                .map(|p| json!({"protocol": egress.protocol, "port": p}))
                .collect();
            let mut rule = Map::new();
            rule.insert("to".into(), json!([{"ipBlock": {"cidr": egress.cidr}}]));
            if !ports.is_empty() {
                rule.insert("ports".into(), Value::Array(ports));
            }
            let np = network_policy(
                tenant,
                ns,
                &format!("allow-egress-{e}"),
                json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [rule]}),
            );
            push(np, format!("/spec/network/egress/{e}"));
        }
        push(deployer_account(tenant, ns), at(""));
        push(deployer_role(tenant, ns), at(""));
        push(deployer_binding(tenant, ns), at(""));
        for (g, group) in spec.groups.iter().enumerate() {
            push(
                group_binding(tenant, ns, &group.name, group.role),
                format!("/spec/groups/{g}"),
            );
        }
    }
    out
}

/// Labels every generated object carries.
fn labels(tenant: &str) -> Value {
    json!({
        "app.kubernetes.io/managed-by": "tally",
        "tally.dev/tenant": tenant,
        "tally.dev/guardrail": "true",
    })
}

fn meta(tenant: &str, ns: &str, name: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": labels(tenant)})
}

fn namespace(tenant: &str, ns: &str, spec: &TenantSpec) -> Value {
    let level = spec.pod_security.as_str();
    let mut labels = labels(tenant);
    if let Some(l) = labels.as_object_mut() {
        for mode in ["enforce", "audit", "warn"] {
            l.insert(format!("pod-security.kubernetes.io/{mode}"), json!(level));
        }
        l.insert(
            "pod-security.kubernetes.io/enforce-version".into(),
            json!("latest"),
        );
    }
    let mut metadata = json!({"name": ns, "labels": labels});
    if let Some(ids) = &spec.ids {
        metadata["annotations"] = json!({
            "tally.dev/uid-range": format!("{}-{}", ids.uid.min, ids.uid.max),
            "tally.dev/gid-range": format!("{}-{}", ids.gid.min, ids.gid.max),
        });
    }
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
}

fn quota(tenant: &str, ns: &str, spec: &TenantSpec) -> Value {
    let q = &spec.quota;
    let mut hard = Map::new();
    hard.insert("requests.cpu".into(), json!(q.cpu));
    hard.insert("requests.memory".into(), json!(q.memory));
    hard.insert("limits.memory".into(), json!(q.memory));
    let counts = [
        ("pods", q.pods),
        ("services", q.services),
        ("persistentvolumeclaims", q.persistent_volume_claims),
    ];
    for (key, value) in counts {
        if let Some(v) = value {
            hard.insert(key.into(), json!(v.to_string()));
        }
    }
    if let Some(storage) = &q.storage {
        hard.insert("requests.storage".into(), json!(storage));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta(tenant, ns, "tenant-quota"),
        "spec": {"hard": hard},
    })
}

fn limit_range(tenant: &str, ns: &str, spec: &TenantSpec) -> Value {
    let pairs = |r: &crate::model::Resources| {
        let mut m = Map::new();
        if let Some(cpu) = &r.cpu {
            m.insert("cpu".into(), json!(cpu));
        }
        if let Some(memory) = &r.memory {
            m.insert("memory".into(), json!(memory));
        }
        Value::Object(m)
    };
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta(tenant, ns, "tenant-limits"),
        "spec": {"limits": [{
            "type": "Container",
            "defaultRequest": pairs(&spec.limits.default_request),
            "default": pairs(&spec.limits.default),
        }]},
    })
}

fn network_policy(tenant: &str, ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(tenant, ns, name),
        "spec": spec,
    })
}

fn default_deny(tenant: &str, ns: &str) -> Value {
    network_policy(
        tenant,
        ns,
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    )
}

fn allow_dns(tenant: &str, ns: &str) -> Value {
    network_policy(
        tenant,
        ns,
        "allow-dns",
        json!({
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }],
        }),
    )
}

fn allow_same_tenant(tenant: &str, ns: &str) -> Value {
    let peer = json!([{"namespaceSelector": {"matchLabels": {"tally.dev/tenant": tenant}}}]);
    network_policy(
        tenant,
        ns,
        "allow-same-tenant",
        json!({
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": peer}],
            "egress": [{"to": peer}],
        }),
    )
}

fn allow_from_ingress(tenant: &str, ns: &str, ingress_ns: &str) -> Value {
    network_policy(
        tenant,
        ns,
        "allow-from-ingress",
        json!({
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ingress_ns}},
            }]}],
        }),
    )
}

fn deployer_account(tenant: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(tenant, ns, DEPLOYER),
        "automountServiceAccountToken": false,
    })
}

/// What the deployer may do in its namespace: manage the namespaced kinds apps ship, write (not
/// read) Secrets, and nothing cluster-wide. Explicit lists, no wildcards, so the gate's own RBAC
/// rules hold for it too.
fn deployer_role(tenant: &str, ns: &str) -> Value {
    let verbs = json!([
        "get", "list", "watch", "create", "update", "patch", "delete"
    ]);
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(tenant, ns, DEPLOYER),
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps", "services", "serviceaccounts",
                "persistentvolumeclaims", "pods"], "verbs": verbs},
            // Applying a Secret needs no read access: the engine reads live state as itself.
            {"apiGroups": [""], "resources": ["secrets"],
                "verbs": ["create", "update", "patch", "delete"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets",
                "replicasets"], "verbs": verbs},
            {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": verbs},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"],
                "verbs": verbs},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": verbs},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": verbs},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "verbs": verbs},
        ],
    })
}

fn deployer_binding(tenant: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(tenant, ns, DEPLOYER),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": DEPLOYER},
        "subjects": [{"kind": "ServiceAccount", "name": DEPLOYER, "namespace": ns}],
    })
}

fn group_binding(tenant: &str, ns: &str, group: &str, role: Role) -> Value {
    let name = format!("tenant-{}-{}", role.cluster_role(), sanitize(group));
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(tenant, ns, &name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.cluster_role()},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    })
}

/// A group name as a DNS-1123 label fragment.
fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_owned();
    out.truncate(40);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantSpec;

    fn spec(v: Value) -> TenantSpec {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test spec: {e}"))
    }

    fn kinds(g: &[Generated]) -> Vec<String> {
        g.iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o.value["kind"].as_str().unwrap_or(""),
                    o.value["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn a_minimal_tenant_gets_every_guardrail() {
        let g = guardrails("payments", &spec(json!({"namespaces": ["pay"]})));
        assert_eq!(
            kinds(&g),
            [
                "Namespace/pay",
                "ResourceQuota/tenant-quota",
                "LimitRange/tenant-limits",
                "NetworkPolicy/default-deny",
                "NetworkPolicy/allow-dns",
                "NetworkPolicy/allow-same-tenant",
                "ServiceAccount/tally-deployer",
                "Role/tally-deployer",
                "RoleBinding/tally-deployer",
            ]
        );
        assert_eq!(
            g[0].value["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert_eq!(
            g[3].value["spec"],
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        );
        assert_eq!(g[1].source, "/spec/quota");
    }

    #[test]
    fn allowances_groups_and_ids() {
        let g = guardrails(
            "web",
            &spec(json!({
                "namespaces": ["web", "web-jobs"],
                "network": {"allowDns": false, "ingressControllerNamespace": "ingress-nginx",
                            "egress": [{"cidr": "10.0.0.0/8", "ports": [5432]}]},
                "ids": {"uid": {"min": 10000, "max": 10999}, "gid": {"min": 10000, "max": 10999}},
                "groups": [{"name": "team:Web Devs", "role": "edit"}],
                "quota": {"cpu": "8", "memory": "16Gi", "pods": 100, "storage": "100Gi"},
            })),
        );
        let k = kinds(&g);
        assert!(!k.contains(&"NetworkPolicy/allow-dns".to_owned()));
        assert!(k.contains(&"NetworkPolicy/allow-from-ingress".to_owned()));
        assert!(k.contains(&"NetworkPolicy/allow-egress-0".to_owned()));
        assert!(k.contains(&"RoleBinding/tenant-edit-team-web-devs".to_owned()));
        assert_eq!(k.iter().filter(|k| k.starts_with("Namespace/")).count(), 2);
        assert_eq!(
            g[0].value["metadata"]["annotations"]["tally.dev/uid-range"],
            "10000-10999"
        );
        let q = &g[1].value["spec"]["hard"];
        assert_eq!(
            (q["pods"].as_str(), q["requests.storage"].as_str()),
            (Some("100"), Some("100Gi"))
        );
        let egress = g
            .iter()
            .find(|o| o.value["metadata"]["name"] == "allow-egress-0");
        assert_eq!(
            egress.map(|o| o.source.as_str()),
            Some("/spec/network/egress/0")
        );
    }
}
