//! RBAC: `cluster-admin-binding`, `rbac-wildcard`, `rbac-secrets-read`.

use serde_json::Value;

use crate::object::Object;
use crate::policy::engine::Out;

use super::{CLUSTER_ADMIN_BINDING, RBAC_SECRETS_READ, RBAC_WILDCARD, Subject};

const RBAC: &str = "rbac.authorization.k8s.io";

fn is(obj: &Object, kinds: &[&str]) -> bool {
    obj.id.group() == RBAC && kinds.contains(&obj.id.kind.as_str())
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = (usize, &str)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v.as_str()?)))
}

/// A (Cluster)RoleBinding to the `cluster-admin` ClusterRole.
pub(crate) fn cluster_admin_binding(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if !is(obj, &["ClusterRoleBinding", "RoleBinding"]) {
        return;
    }
    let role = obj.value.get("roleRef");
    let kind = role.and_then(|r| r.get("kind")).and_then(Value::as_str);
    let name = role.and_then(|r| r.get("name")).and_then(Value::as_str);
    if kind != Some("ClusterRole") || name != Some("cluster-admin") {
        return;
    }
    // The cluster's own bootstrap binding for system:masters.
    let subjects: Vec<&Value> = obj
        .value
        .get("subjects")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    if !subjects.is_empty()
        && subjects
            .iter()
            .all(|s| s.get("name").and_then(Value::as_str) == Some("system:masters"))
    {
        return;
    }
    let scope = if obj.id.kind == "RoleBinding" {
        "every permission in its namespace"
    } else {
        "every permission in the cluster"
    };
    out.report(
        CLUSTER_ADMIN_BINDING,
        obj,
        "/roleRef/name",
        format!("this binding grants `cluster-admin`: {scope}; bind a role with only the permissions needed"),
    );
}

/// `*` in a Role's or ClusterRole's verbs, resources or apiGroups.
pub(crate) fn rbac_wildcard(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if !is(obj, &["ClusterRole", "Role"]) {
        return;
    }
    for (i, rule) in obj
        .value
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for field in ["verbs", "resources", "apiGroups"] {
            for (j, item) in strings(rule.get(field)) {
                if item == "*" || item.starts_with("*/") {
                    out.report(
                        RBAC_WILDCARD,
                        obj,
                        &format!("/rules/{i}/{field}/{j}"),
                        format!(
                            "`{item}` in {field} grants whatever exists now and whatever a future API or CRD adds; list what is needed"
                        ),
                    );
                }
            }
        }
    }
}

/// A rule that lets its holders read every Secret (get, list or watch on `secrets`, without
/// `resourceNames`).
pub(crate) fn rbac_secrets_read(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if !is(obj, &["ClusterRole", "Role"]) {
        return;
    }
    for (i, rule) in obj
        .value
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let core = strings(rule.get("apiGroups")).any(|(_, g)| g.is_empty() || g == "*");
        let named = rule
            .get("resourceNames")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty());
        let mut reads: Vec<&str> = Vec::new();
        for (_, verb) in strings(rule.get("verbs")) {
            if matches!(verb, "get" | "list" | "watch" | "*") && !reads.contains(&verb) {
                reads.push(verb);
            }
        }
        if !core || named || reads.is_empty() {
            continue;
        }
        if let Some((j, _)) = strings(rule.get("resources")).find(|(_, r)| *r == "secrets") {
            let scope = if obj.id.kind == "ClusterRole" {
                "every Secret of every namespace it is bound in (all of them, through a ClusterRoleBinding)"
            } else {
                "every Secret of its namespace"
            };
            out.report(
                RBAC_SECRETS_READ,
                obj,
                &format!("/rules/{i}/resources/{j}"),
                format!(
                    "this rule can {} {scope}; name the Secrets it needs in `resourceNames`",
                    what_it_can_do(&reads)
                ),
            );
        }
    }
}

/// The reading verbs of a rule as a sentence says them ("get, list and watch"); `*` reads
/// "do anything (`*`) to".
fn what_it_can_do(verbs: &[&str]) -> String {
    if verbs.contains(&"*") {
        return "do anything (`*`) to".to_owned();
    }
    match verbs {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, of};

    #[test]
    fn cluster_admin() {
        let b = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: ci, namespace: ci}]
";
        assert_eq!(at(CLUSTER_ADMIN_BINDING, b), [(4, 67)]);
        let view = b.replace("name: cluster-admin", "name: view");
        assert!(at(CLUSTER_ADMIN_BINDING, &view).is_empty());
    }

    #[test]
    fn wildcards_and_secret_reads() {
        let r = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
rules:
  - apiGroups: ['']
    resources: [pods, secrets]
    verbs: [get, list]
  - apiGroups: [apps]
    resources: ['*']
    verbs: ['*']
  - apiGroups: ['']
    resources: [secrets]
    resourceNames: [app-tls]
    verbs: [get]
";
        assert_eq!(at(RBAC_WILDCARD, r), [(9, 17), (10, 13)]);
        assert_eq!(at(RBAC_SECRETS_READ, r), [(6, 23)]);
    }

    #[test]
    fn secret_reads_are_said_in_words() {
        let role = |verbs: &str| {
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r, namespace: shop}}\nrules:\n  - apiGroups: ['']\n    resources: [secrets]\n    verbs: {verbs}\n"
            )
        };
        let said = |verbs: &str| -> String {
            let f = of(RBAC_SECRETS_READ, &role(verbs));
            assert_eq!(f.len(), 1, "{verbs}: {f:#?}");
            f[0].message.clone()
        };
        assert!(
            said("[get]").starts_with("this rule can get every Secret of its namespace;"),
            "{}",
            said("[get]")
        );
        assert!(said("[get, list]").starts_with("this rule can get and list every Secret"));
        assert!(
            said("[get, list, watch, update]")
                .starts_with("this rule can get, list and watch every Secret")
        );
        assert!(
            said("['*']").starts_with("this rule can do anything (`*`) to every Secret"),
            "{}",
            said("['*']")
        );
        assert!(said("[get, '*']").starts_with("this rule can do anything (`*`) to every Secret"));
        assert!(said("[list, list]").starts_with("this rule can list every Secret"));
    }

    #[test]
    fn write_verbs_and_other_groups_are_left_to_review() {
        let r = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: shop}
rules:
  - apiGroups: ['']
    resources: [secrets]
    verbs: [create, update, delete]
  - apiGroups: [example.com]
    resources: [secrets]
    verbs: [get, list]
";
        assert!(at(RBAC_SECRETS_READ, r).is_empty());
    }
}
