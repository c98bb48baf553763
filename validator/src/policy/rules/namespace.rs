//! `no-default-namespace`: namespaced objects say which namespace they belong to, and it is not
//! `default`.
//!
//! A plain manifest set has no environment yet, so an object without a namespace lands wherever
//! it is applied (kubectl's context, usually `default`): that is an info, not an error, because a
//! tool may supply the namespace (`kubectl -n`, kustomize's `namespace:`, later a tally
//! environment). An explicit `namespace: default` is a warning, except on the kinds that govern
//! the namespace they are in (a Role or RoleBinding granting access there, its ResourceQuota,
//! LimitRange or NetworkPolicy): moving those elsewhere would defeat them. Cluster-scoped kinds
//! are exempt, and so are custom resources whose scope the set does not tell (no CRD in the
//! input).

use crate::finding::Severity;
use crate::policy::engine::Out;

use super::{NO_DEFAULT_NAMESPACE, Subject};

/// A namespaced object in `default`, or in no namespace.
pub(crate) fn no_default_namespace(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    let group = obj.id.group();
    if s.index.is_namespaced(group, &obj.id.kind) != Some(true) {
        return;
    }
    // Objects the cluster itself keeps in `default`.
    let builtin = group.is_empty()
        && matches!(
            (obj.id.kind.as_str(), obj.id.name.as_str()),
            ("ServiceAccount", "default") | ("Service", "kubernetes")
        );
    if builtin {
        return;
    }
    match obj.id.namespace.as_deref() {
        Some("default") if governs_its_namespace(group, &obj.id.kind) => {}
        Some("default") => out.report(
            NO_DEFAULT_NAMESPACE,
            obj,
            "/metadata/namespace",
            format!(
                "{} is in the `default` namespace, which every unqualified command and every unconfigured tool also uses; give it a namespace of its own",
                obj.id.kind
            ),
        ),
        Some(_) => {}
        None => out.report_as(
            NO_DEFAULT_NAMESPACE,
            Severity::Info,
            obj,
            "/metadata",
            format!(
                "{} names no namespace, so it lands in whatever namespace it is applied to (usually `default`); set `metadata.namespace`",
                obj.id.kind
            ),
        ),
    }
}

/// Kinds whose purpose is to act on the namespace they live in: access to it (Role,
/// RoleBinding) and its guardrails (ResourceQuota, LimitRange, NetworkPolicy). One that names
/// `default` is there on purpose.
fn governs_its_namespace(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("rbac.authorization.k8s.io", "Role" | "RoleBinding")
            | ("", "ResourceQuota" | "LimitRange")
            | ("networking.k8s.io", "NetworkPolicy")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, of};

    #[test]
    fn default_missing_and_cluster_scoped() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n";
        let f = of(NO_DEFAULT_NAMESPACE, cm);
        assert_eq!(
            (f[0].pos.line, f[0].pos.column, f[0].severity),
            (5, 3, Severity::Warning)
        );
        let none = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let f = of(NO_DEFAULT_NAMESPACE, none);
        assert_eq!(
            (f[0].pos.line, f[0].pos.column, f[0].severity),
            (3, 1, Severity::Info)
        );
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n";
        assert!(at(NO_DEFAULT_NAMESPACE, ns).is_empty());
        let crb =
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: a\n";
        assert!(at(NO_DEFAULT_NAMESPACE, crb).is_empty());
        let cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n";
        assert!(at(NO_DEFAULT_NAMESPACE, cr).is_empty());
        let with_crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n---\n";
        assert_eq!(
            at(NO_DEFAULT_NAMESPACE, &format!("{with_crd}{cr}")),
            [(11, 1)]
        );
    }

    #[test]
    fn objects_the_cluster_keeps_in_default() {
        let sa =
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n";
        assert!(at(NO_DEFAULT_NAMESPACE, sa).is_empty());
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default}\nspec:\n  ports: [{port: 443}]\n";
        assert!(at(NO_DEFAULT_NAMESPACE, svc).is_empty());
        let other = sa.replace("name: default,", "name: builder,");
        assert_eq!(at(NO_DEFAULT_NAMESPACE, &other), [(3, 27)]);
    }

    #[test]
    fn objects_that_govern_default_belong_there() {
        let binding = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-deploys-default, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: ci, namespace: ci}]
";
        assert!(at(NO_DEFAULT_NAMESPACE, binding).is_empty());
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: default}\nrules: []\n";
        assert!(at(NO_DEFAULT_NAMESPACE, role).is_empty());
        let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: default}\nspec: {hard: {pods: '0'}}\n";
        assert!(at(NO_DEFAULT_NAMESPACE, quota).is_empty());
        let limits = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l, namespace: default}\nspec: {limits: []}\n";
        assert!(at(NO_DEFAULT_NAMESPACE, limits).is_empty());
        let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: default}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
        assert!(at(NO_DEFAULT_NAMESPACE, deny).is_empty());
        // Without a namespace it is still told to say which one it governs.
        let nowhere = role.replace(", namespace: default", "");
        let f = of(NO_DEFAULT_NAMESPACE, &nowhere);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Info);
        // Same names in another API group are not the built-in kinds.
        let custom = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: roles.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Role, plural: roles}\n---\napiVersion: example.com/v1\nkind: Role\nmetadata: {name: r, namespace: default}\n";
        assert_eq!(at(NO_DEFAULT_NAMESPACE, custom), [(11, 21)]);
    }
}
