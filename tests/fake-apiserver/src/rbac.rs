//! RBAC for impersonated requests: a request made as another user (the `Impersonate-User`
//! header, as a tenant's deployer ServiceAccount) is allowed only by the Roles, ClusterRoles and
//! bindings the server holds, as the API server's RBAC authorizer decides. Requests made as the
//! server's own client (no impersonation) are a cluster admin's.
//!
//! Modelled: bindings' `User`, `Group` and `ServiceAccount` subjects (a ServiceAccount also has
//! the groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` and
//! `system:authenticated`), rules' `apiGroups`, `resources` (with `*` and `resource/subresource`),
//! `verbs` and `resourceNames`, a RoleBinding to a ClusterRole, and the built-in ClusterRoles
//! `cluster-admin`, `admin`, `edit` and `view` (by what they allow, not their exact lists).

use serde_json::Value;

use crate::cluster::Cluster;
use crate::status::ApiError;

/// One request, as the authorizer sees it.
pub struct Attributes<'a> {
    /// The impersonated user.
    pub user: &'a str,
    /// Extra groups (`Impersonate-Group`).
    pub groups: Vec<String>,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'a str,
    /// API group (`""` for core).
    pub group: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource, if any.
    pub subresource: Option<&'a str>,
    /// Namespace, if any.
    pub namespace: Option<&'a str>,
    /// Object name, if any.
    pub name: Option<&'a str>,
}

/// Allows the request, or refuses it with the real server's 403.
pub fn authorize(cluster: &Cluster, a: &Attributes<'_>) -> Result<(), ApiError> {
    if allowed(cluster, a) {
        return Ok(());
    }
    let what = if a.group.is_empty() {
        a.resource.to_owned()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let object = match a.name {
        Some(name) => format!("{what} \"{name}\" is forbidden"),
        None => format!("{what} is forbidden"),
    };
    let resource = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_owned(),
    };
    let scope = match a.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_owned(),
    };
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "{object}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
            a.user, a.verb, a.group
        ),
    )
    .with_details(serde_json::json!({
        "name": a.name.unwrap_or_default(),
        "group": a.group,
        "kind": a.resource,
    })))
}

fn allowed(cluster: &Cluster, a: &Attributes<'_>) -> bool {
    let mut groups = a.groups.clone();
    groups.push("system:authenticated".into());
    let account = a
        .user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    if let Some((ns, _)) = account {
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{ns}"));
    }
    let names_me = |binding: &Value| {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| {
                let field = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
                match field("kind") {
                    "User" => field("name") == a.user,
                    "Group" => groups.iter().any(|g| g == field("name")),
                    "ServiceAccount" => {
                        account == Some((field("namespace"), field("name")))
                            || (field("namespace").is_empty()
                                && binding
                                    .pointer("/metadata/namespace")
                                    .and_then(Value::as_str)
                                    == account.map(|(ns, _)| ns)
                                && account.map(|(_, n)| n) == Some(field("name")))
                    }
                    _ => false,
                }
            })
    };
    let role_ref = |binding: &Value| {
        let s = |k: &str| {
            binding
                .pointer(&format!("/roleRef/{k}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        (s("kind"), s("name"))
    };
    let rbac = |plural: &str| cluster.resolve("rbac.authorization.k8s.io", "v1", plural);
    let (Some(cluster_roles), Some(roles), Some(crbs), Some(rbs)) = (
        rbac("clusterroles"),
        rbac("roles"),
        rbac("clusterrolebindings"),
        rbac("rolebindings"),
    ) else {
        return false;
    };
    let cluster_role_allows = |name: &str, namespaced: bool| {
        if let Some(answer) = builtin(name, a, namespaced) {
            return answer;
        }
        cluster
            .get(&cluster_roles, "", name)
            .is_ok_and(|role| rules_allow(&role, a))
    };
    for binding in cluster.list(&crbs, None, |_| true).0 {
        if names_me(&binding)
            && let (kind, name) = role_ref(&binding)
            && kind == "ClusterRole"
            && cluster_role_allows(&name, false)
        {
            return true;
        }
    }
    let Some(ns) = a.namespace else {
        return false;
    };
    for binding in cluster.list(&rbs, Some(ns), |_| true).0 {
        if !names_me(&binding) {
            continue;
        }
        let allows = match role_ref(&binding) {
            (kind, name) if kind == "Role" => cluster
                .get(&roles, ns, &name)
                .is_ok_and(|role| rules_allow(&role, a)),
            (kind, name) if kind == "ClusterRole" => cluster_role_allows(&name, true),
            _ => false,
        };
        if allows {
            return true;
        }
    }
    false
}

fn rules_allow(role: &Value, a: &Attributes<'_>) -> bool {
    let resource = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_owned(),
    };
    role.get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|rule| {
            let list = |k: &str| -> Vec<&str> {
                rule.get(k)
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default()
            };
            let has = |k: &str, want: &str| list(k).iter().any(|v| *v == "*" || *v == want);
            let names = list("resourceNames");
            has("apiGroups", a.group)
                && has("resources", &resource)
                && has("verbs", a.verb)
                && (names.is_empty() || a.name.is_some_and(|n| names.contains(&n)))
        })
}

/// What the default ClusterRoles allow, without listing them: `cluster-admin` everything,
/// `admin` everything in a namespace it is bound in, `edit` the same but RBAC objects, `view`
/// reads but Secrets. `None` for any other name.
fn builtin(name: &str, a: &Attributes<'_>, namespaced: bool) -> Option<bool> {
    let read = matches!(a.verb, "get" | "list" | "watch");
    let rbac = a.group == "rbac.authorization.k8s.io";
    Some(match name {
        "cluster-admin" => true,
        "admin" => namespaced,
        "edit" => namespaced && !rbac,
        "view" => namespaced && read && !rbac && a.resource != "secrets",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> Cluster {
        let c = Cluster::new(100, 1);
        let put = |group: &str, plural: &str, obj: Value| {
            let rt = c
                .resolve(group, "v1", plural)
                .unwrap_or_else(|| panic!("{plural}"));
            c.put_raw(&rt, obj).unwrap_or_else(|e| panic!("{e}"));
        };
        put("", "namespaces", json!({"metadata": {"name": "shop"}}));
        put("", "namespaces", json!({"metadata": {"name": "payments"}}));
        put(
            "rbac.authorization.k8s.io",
            "roles",
            json!({"metadata": {"name": "deployer", "namespace": "shop"},
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                    "verbs": ["get", "patch", "create"]}]}),
        );
        put(
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "deployer", "namespace": "shop"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
                "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "shop"}]}),
        );
        c
    }

    fn attributes<'a>(verb: &'a str, resource: &'a str, namespace: &'a str) -> Attributes<'a> {
        Attributes {
            user: "system:serviceaccount:shop:deployer",
            groups: Vec::new(),
            verb,
            group: if resource == "deployments" {
                "apps"
            } else {
                ""
            },
            resource,
            subresource: None,
            namespace: Some(namespace),
            name: Some("web"),
        }
    }

    #[test]
    fn a_tenants_deployer_may_do_what_its_role_grants_in_its_namespace_only() {
        let c = cluster();
        assert!(authorize(&c, &attributes("patch", "deployments", "shop")).is_ok());
        let e = authorize(&c, &attributes("patch", "deployments", "payments")).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:shop:deployer\" \
             cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"payments\""
        );
        assert!(authorize(&c, &attributes("delete", "deployments", "shop")).is_err());
        assert!(authorize(&c, &attributes("get", "secrets", "shop")).is_err());
    }
}
