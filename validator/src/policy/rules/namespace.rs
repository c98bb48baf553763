//! `no-default-namespace`: namespaced objects say which namespace they belong to, and it is not
//! `default`.
//!
//! A plain manifest set has no environment yet, so an object without a namespace lands wherever
//! it is applied (kubectl's context, usually `default`): that is an info, not an error, because a
//! tool may supply the namespace (`kubectl -n`, kustomize's `namespace:`, later a tally
//! environment). An explicit `namespace: default` is a warning. Cluster-scoped kinds are exempt,
//! and so are custom resources whose scope the set does not tell (no CRD in the input).

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
}
