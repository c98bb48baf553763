//! Namespace guardrails, judged over the whole set: `namespace-has-quota` and
//! `namespace-default-deny`.
//!
//! "A namespace that receives workloads" is any namespace a workload (Pod, Deployment, ...,
//! CronJob) in the set names in `metadata.namespace`, whether or not the Namespace object itself
//! is in the set. The guardrails must be in the set too: tally checks what a commit will create.
//! A finding about a namespace points at its Namespace object's name when the set has it, else at
//! the `namespace:` line of the first workload that names it.

use serde_json::Value;

use crate::object::Object;
use crate::policy::engine::Out;
use crate::policy::index::SetIndex;
use crate::policy::labels::is_empty_selector;

use super::{NAMESPACE_DEFAULT_DENY, NAMESPACE_HAS_QUOTA};

/// Where a finding about namespace `ns` points.
fn anchor<'a>(
    index: &'a SetIndex,
    ns: &str,
    first_workload: &'a Object,
) -> (&'a Object, &'static str) {
    match index.namespace_objects.get(ns) {
        Some(obj) => (obj, "/metadata/name"),
        None => (first_workload, "/metadata/namespace"),
    }
}

/// Every namespace that receives workloads has an unscoped ResourceQuota bounding cpu and memory.
pub(crate) fn namespace_has_quota(index: &SetIndex, out: &mut Out<'_>) {
    for (ns, first) in &index.workload_namespaces {
        let quotas = index.quotas.get(ns).map(Vec::as_slice).unwrap_or(&[]);
        let (mut cpu, mut memory) = (false, false);
        for q in quotas {
            let scoped = q
                .value
                .pointer("/spec/scopes")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty())
                || q.value.pointer("/spec/scopeSelector").is_some();
            if scoped {
                continue;
            }
            let Some(hard) = q.value.pointer("/spec/hard").and_then(Value::as_object) else {
                continue;
            };
            cpu |= ["cpu", "requests.cpu", "limits.cpu"]
                .iter()
                .any(|k| hard.contains_key(*k));
            memory |= ["memory", "requests.memory", "limits.memory"]
                .iter()
                .any(|k| hard.contains_key(*k));
        }
        if cpu && memory {
            continue;
        }
        let missing = match (cpu, memory) {
            (false, false) => "cpu and memory",
            (false, true) => "cpu",
            _ => "memory",
        };
        match quotas.first() {
            None => {
                let (obj, at) = anchor(index, ns, first);
                out.report_namespace(
                    NAMESPACE_HAS_QUOTA,
                    obj,
                    at,
                    format!(
                        "namespace `{ns}` receives workloads but the set has no ResourceQuota for it; add one that bounds {missing}"
                    ),
                );
            }
            Some(q) => {
                let at = if q.value.pointer("/spec/hard").is_some() {
                    "/spec/hard"
                } else {
                    "/spec"
                };
                out.report_namespace(
                    NAMESPACE_HAS_QUOTA,
                    q,
                    at,
                    format!(
                        "the ResourceQuotas of namespace `{ns}` do not bound {missing} for every pod (scoped quotas cover only some pods); add `requests.{}` to an unscoped quota",
                        if cpu { "memory" } else { "cpu" }
                    ),
                );
            }
        }
    }
}

/// Which traffic a NetworkPolicy governs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    fn rules_key(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn peers_key(self) -> &'static str {
        match self {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        }
    }
}

/// Whether the policy governs `dir` (its `policyTypes`, or the API server's default: Ingress
/// always, Egress when it has egress rules).
fn governs(p: &Object, dir: Direction) -> bool {
    match p
        .value
        .pointer("/spec/policyTypes")
        .and_then(Value::as_array)
    {
        Some(types) => types.iter().any(|t| t.as_str() == Some(dir.name())),
        None => match dir {
            Direction::Ingress => true,
            Direction::Egress => p.value.pointer("/spec/egress").is_some(),
        },
    }
}

/// Whether one of the policy's rules for `dir` allows everything (no peers and no ports).
fn allows_all(p: &Object, dir: Direction) -> bool {
    let empty = |r: &Value, key: &str| {
        r.get(key)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    p.value
        .pointer(&format!("/spec/{}", dir.rules_key()))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| empty(r, dir.peers_key()) && empty(r, "ports"))
}

fn selects_all(p: &Object) -> bool {
    p.value
        .pointer("/spec/podSelector")
        .is_some_and(is_empty_selector)
}

/// Every namespace that receives workloads has NetworkPolicies selecting all its pods
/// (`podSelector: {}`) that deny ingress and egress unless another policy allows it.
pub(crate) fn namespace_default_deny(index: &SetIndex, out: &mut Out<'_>) {
    for (ns, first) in &index.workload_namespaces {
        let all_pods: Vec<&Object> = index
            .network_policies
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|p| selects_all(p))
            .collect();
        let denied = |dir: Direction| {
            all_pods.iter().any(|p| governs(p, dir)) && !all_pods.iter().any(|p| allows_all(p, dir))
        };
        let missing: Vec<&str> = [Direction::Ingress, Direction::Egress]
            .into_iter()
            .filter(|d| !denied(*d))
            .map(|d| match d {
                Direction::Ingress => "ingress",
                Direction::Egress => "egress",
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        let what = missing.join(" and ");
        // Point at the policy to extend when there is one that selects every pod.
        match all_pods.first() {
            Some(p) => {
                let at = if p.value.pointer("/spec/policyTypes").is_some() {
                    "/spec/policyTypes"
                } else {
                    "/spec/podSelector"
                };
                out.report_namespace(
                    NAMESPACE_DEFAULT_DENY,
                    p,
                    at,
                    format!(
                        "namespace `{ns}` does not deny {what} by default: a NetworkPolicy selecting every pod must list it in `policyTypes`, and no such policy may allow all of it"
                    ),
                );
            }
            None => {
                let (obj, at) = anchor(index, ns, first);
                out.report_namespace(
                    NAMESPACE_DEFAULT_DENY,
                    obj,
                    at,
                    format!(
                        "namespace `{ns}` receives workloads but no NetworkPolicy in the set denies its {what} by default; add one with `podSelector: {{}}` and `policyTypes: [Ingress, Egress]`, then allow what each app needs"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{deployment, findings_with};

    fn at(rule: &str, files: &[(&str, &str)]) -> Vec<(String, u32, u32)> {
        findings_with(&PolicyConfig::default(), files)
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| (f.file.to_string(), f.pos.line, f.pos.column))
            .collect()
    }

    fn app() -> String {
        deployment("      containers: [{name: app, image: app:1.0.0}]\n")
    }

    const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
    const QUOTA: &str = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\nspec:\n  hard: {requests.cpu: '4', requests.memory: 8Gi, limits.memory: 8Gi}\n";
    const DENY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";

    #[test]
    fn quota_missing_points_at_the_namespace_or_the_workload() {
        let app = app();
        assert_eq!(
            at(NAMESPACE_HAS_QUOTA, &[("app.yaml", &app)]),
            [("app.yaml".to_owned(), 5, 3)]
        );
        assert_eq!(
            at(NAMESPACE_HAS_QUOTA, &[("app.yaml", &app), ("ns.yaml", NS)]),
            [("ns.yaml".to_owned(), 4, 3)]
        );
        assert!(
            at(
                NAMESPACE_HAS_QUOTA,
                &[("app.yaml", &app), ("q.yaml", QUOTA)]
            )
            .is_empty()
        );
    }

    #[test]
    fn scoped_or_partial_quotas_do_not_count() {
        let app = app();
        let partial = QUOTA.replace(", requests.memory: 8Gi, limits.memory: 8Gi", "");
        assert_eq!(
            at(
                NAMESPACE_HAS_QUOTA,
                &[("app.yaml", &app), ("q.yaml", &partial)]
            ),
            [("q.yaml".to_owned(), 5, 3)]
        );
        let scoped = QUOTA.replace("spec:\n", "spec:\n  scopes: [BestEffort]\n");
        assert_eq!(
            at(
                NAMESPACE_HAS_QUOTA,
                &[("app.yaml", &app), ("q.yaml", &scoped)]
            )
            .len(),
            1
        );
    }

    #[test]
    fn default_deny_in_one_or_two_policies() {
        let app = app();
        assert!(
            at(
                NAMESPACE_DEFAULT_DENY,
                &[("app.yaml", &app), ("np.yaml", DENY)]
            )
            .is_empty()
        );
        assert_eq!(
            at(NAMESPACE_DEFAULT_DENY, &[("app.yaml", &app)]),
            [("app.yaml".to_owned(), 5, 3)]
        );
        let ingress_only = DENY.replace("[Ingress, Egress]", "[Ingress]");
        assert_eq!(
            at(
                NAMESPACE_DEFAULT_DENY,
                &[("app.yaml", &app), ("np.yaml", &ingress_only)]
            ),
            [("np.yaml".to_owned(), 6, 3)]
        );
        let egress_only = DENY
            .replace("[Ingress, Egress]", "[Egress]")
            .replace("name: deny", "name: deny-egress");
        assert!(
            at(
                NAMESPACE_DEFAULT_DENY,
                &[
                    ("app.yaml", &app),
                    ("a.yaml", &ingress_only),
                    ("b.yaml", &egress_only)
                ]
            )
            .is_empty()
        );
        // A policy for every pod that allows all egress undoes the deny.
        let allow_all = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{}]\n";
        assert_eq!(
            at(
                NAMESPACE_DEFAULT_DENY,
                &[
                    ("app.yaml", &app),
                    ("np.yaml", DENY),
                    ("open.yaml", allow_all)
                ]
            )
            .len(),
            1
        );
        // Egress allowances to DNS keep the deny.
        let dns = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: dns, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - ports: [{port: 53, protocol: UDP}]\n";
        assert!(
            at(
                NAMESPACE_DEFAULT_DENY,
                &[("app.yaml", &app), ("np.yaml", DENY), ("dns.yaml", dns)]
            )
            .is_empty()
        );
    }
}
