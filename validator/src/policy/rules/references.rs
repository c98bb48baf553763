//! `references-resolve`: what a pod spec names (ConfigMaps, Secrets, PersistentVolumeClaims, its
//! ServiceAccount) is in the set, so the pod does not wait forever for it.
//!
//! Secrets count as present when an object that creates them is in the set: a SealedSecret, an
//! ExternalSecret, a cert-manager Certificate. References marked `optional: true`, the
//! `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (created in every namespace) are
//! not checked.

use serde_json::Value;

use crate::policy::engine::Out;
use crate::policy::index::RefKind;

use super::{REFERENCES_RESOLVE, Subject};

fn optional(v: &Value) -> bool {
    v.get("optional").and_then(Value::as_bool) == Some(true)
}

/// Every reference of a pod spec, with its pointer.
fn references(s: &Subject<'_>) -> Vec<(RefKind, String, String)> {
    let mut refs = Vec::new();
    let Some(w) = &s.workload else { return refs };
    let mut push = |kind: RefKind, source: Option<&Value>, key: &str, ptr: String| {
        let Some(source) = source else { return };
        if optional(source) {
            return;
        }
        if let Some(name) = source.get(key).and_then(Value::as_str) {
            refs.push((kind, name.to_owned(), format!("{ptr}/{key}")));
        }
    };
    for (i, v) in w.volumes() {
        let base = w.ptr(&format!("/volumes/{i}"));
        push(
            RefKind::ConfigMap,
            v.get("configMap"),
            "name",
            format!("{base}/configMap"),
        );
        push(
            RefKind::Secret,
            v.get("secret"),
            "secretName",
            format!("{base}/secret"),
        );
        push(
            RefKind::PersistentVolumeClaim,
            v.get("persistentVolumeClaim"),
            "claimName",
            format!("{base}/persistentVolumeClaim"),
        );
        if let Some(sources) = v
            .get("projected")
            .and_then(|p| p.get("sources"))
            .and_then(Value::as_array)
        {
            for (j, src) in sources.iter().enumerate() {
                let p = format!("{base}/projected/sources/{j}");
                push(
                    RefKind::ConfigMap,
                    src.get("configMap"),
                    "name",
                    format!("{p}/configMap"),
                );
                push(
                    RefKind::Secret,
                    src.get("secret"),
                    "name",
                    format!("{p}/secret"),
                );
            }
        }
    }
    for c in w.containers() {
        if let Some(env) = c.get("env").and_then(Value::as_array) {
            for (i, e) in env.iter().enumerate() {
                let p = c.ptr(&format!("/env/{i}/valueFrom"));
                let from = e.get("valueFrom");
                push(
                    RefKind::ConfigMap,
                    from.and_then(|f| f.get("configMapKeyRef")),
                    "name",
                    format!("{p}/configMapKeyRef"),
                );
                push(
                    RefKind::Secret,
                    from.and_then(|f| f.get("secretKeyRef")),
                    "name",
                    format!("{p}/secretKeyRef"),
                );
            }
        }
        if let Some(env_from) = c.get("envFrom").and_then(Value::as_array) {
            for (i, e) in env_from.iter().enumerate() {
                let p = c.ptr(&format!("/envFrom/{i}"));
                push(
                    RefKind::ConfigMap,
                    e.get("configMapRef"),
                    "name",
                    format!("{p}/configMapRef"),
                );
                push(
                    RefKind::Secret,
                    e.get("secretRef"),
                    "name",
                    format!("{p}/secretRef"),
                );
            }
        }
    }
    if let Some(pull) = w.get("imagePullSecrets").and_then(Value::as_array) {
        for (i, p) in pull.iter().enumerate() {
            push(
                RefKind::Secret,
                Some(p),
                "name",
                w.ptr(&format!("/imagePullSecrets/{i}")),
            );
        }
    }
    for key in ["serviceAccountName", "serviceAccount"] {
        if let Some(name) = w.get(key).and_then(Value::as_str) {
            refs.push((
                RefKind::ServiceAccount,
                name.to_owned(),
                w.ptr(&format!("/{key}")),
            ));
            break;
        }
    }
    refs
}

/// A reference to a ConfigMap, Secret, PersistentVolumeClaim or ServiceAccount that nothing in
/// the set provides.
pub(crate) fn references_resolve(s: &Subject<'_>, out: &mut Out<'_>) {
    if s.workload.is_none() {
        return;
    }
    let ns = s.obj.id.namespace.as_deref();
    let mut reported: Vec<(RefKind, String)> = Vec::new();
    for (kind, name, ptr) in references(s) {
        let implicit = match kind {
            RefKind::ServiceAccount => name == "default" || name.is_empty(),
            RefKind::ConfigMap => name == "kube-root-ca.crt",
            _ => false,
        };
        if implicit || s.index.resolves(kind, ns, &name) {
            continue;
        }
        if reported.iter().any(|(k, n)| *k == kind && *n == name) {
            continue;
        }
        let where_ = ns.map_or_else(String::new, |n| format!(" in namespace `{n}`"));
        out.report(
            REFERENCES_RESOLVE,
            s.obj,
            &ptr,
            format!(
                "{} `{name}` is not in the set{where_}; pods wait in ContainerCreating until something creates it",
                kind.name()
            ),
        );
        reported.push((kind, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{deployment, findings_with};

    #[test]
    fn unresolved_references() {
        let d = deployment(
            "      serviceAccountName: web
      imagePullSecrets: [{name: registry}]
      containers:
        - name: app
          image: app:1.0.0
          envFrom:
            - configMapRef: {name: settings}
            - configMapRef: {name: extras, optional: true}
      volumes:
        - name: tls
          secret: {secretName: web-tls}
        - name: certs
          configMap: {name: kube-root-ca.crt}
        - name: data
          persistentVolumeClaim: {claimName: data}
",
        );
        let provided = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: shop}
spec: {secretName: web-tls}
";
        let got = |files: &[(&str, &str)]| -> Vec<(u32, u32)> {
            findings_with(&PolicyConfig::default(), files)
                .iter()
                .filter(|f| f.rule == REFERENCES_RESOLVE)
                .map(|f| (f.pos.line, f.pos.column))
                .collect()
        };
        assert_eq!(
            got(&[("d.yaml", &d)]),
            [(14, 7), (15, 27), (20, 30), (24, 20), (28, 35)]
        );
        assert_eq!(
            got(&[("d.yaml", &d), ("p.yaml", provided)]),
            [(14, 7), (15, 27), (28, 35)]
        );
    }
}
