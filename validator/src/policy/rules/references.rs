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
use crate::policy::workload::Workload;

use super::{REFERENCES_RESOLVE, Subject};

fn optional(v: &Value) -> bool {
    v.get("optional").and_then(Value::as_bool) == Some(true)
}

/// One reference: what it names, and how to build its pointer (only when it is reported).
struct Reference<'a> {
    kind: RefKind,
    name: &'a str,
    pointer: &'a dyn Fn() -> String,
}

/// Calls `f` for every reference of a pod spec. No allocation unless `f` asks for a pointer.
fn each_reference<'a>(w: &Workload<'a>, f: &mut dyn FnMut(Reference<'_>)) {
    let mut named =
        |kind: RefKind, source: Option<&'a Value>, key: &str, pointer: &dyn Fn() -> String| {
            let Some(source) = source else { return };
            if optional(source) {
                return;
            }
            if let Some(name) = source.get(key).and_then(Value::as_str) {
                let full = || format!("{}/{key}", pointer());
                f(Reference {
                    kind,
                    name,
                    pointer: &full,
                });
            }
        };
    for (i, v) in w.volumes() {
        let base = || w.ptr(&format!("/volumes/{i}"));
        named(RefKind::ConfigMap, v.get("configMap"), "name", &|| {
            format!("{}/configMap", base())
        });
        named(RefKind::Secret, v.get("secret"), "secretName", &|| {
            format!("{}/secret", base())
        });
        named(
            RefKind::PersistentVolumeClaim,
            v.get("persistentVolumeClaim"),
            "claimName",
            &|| format!("{}/persistentVolumeClaim", base()),
        );
        let sources = v
            .get("projected")
            .and_then(|p| p.get("sources"))
            .and_then(Value::as_array);
        for (j, src) in sources.into_iter().flatten().enumerate() {
            let p = || format!("{}/projected/sources/{j}", base());
            named(RefKind::ConfigMap, src.get("configMap"), "name", &|| {
                format!("{}/configMap", p())
            });
            named(RefKind::Secret, src.get("secret"), "name", &|| {
                format!("{}/secret", p())
            });
        }
    }
    for c in w.containers() {
        for (i, e) in c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(from) = e.get("valueFrom") else {
                continue;
            };
            let p = || c.ptr(&format!("/env/{i}/valueFrom"));
            named(
                RefKind::ConfigMap,
                from.get("configMapKeyRef"),
                "name",
                &|| format!("{}/configMapKeyRef", p()),
            );
            named(RefKind::Secret, from.get("secretKeyRef"), "name", &|| {
                format!("{}/secretKeyRef", p())
            });
        }
        for (i, e) in c
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p = || c.ptr(&format!("/envFrom/{i}"));
            named(RefKind::ConfigMap, e.get("configMapRef"), "name", &|| {
                format!("{}/configMapRef", p())
            });
            named(RefKind::Secret, e.get("secretRef"), "name", &|| {
                format!("{}/secretRef", p())
            });
        }
    }
    let pulls = w.get("imagePullSecrets").and_then(Value::as_array);
    for (i, p) in pulls.into_iter().flatten().enumerate() {
        named(RefKind::Secret, Some(p), "name", &|| {
            w.ptr(&format!("/imagePullSecrets/{i}"))
        });
    }
    for key in ["serviceAccountName", "serviceAccount"] {
        if let Some(name) = w.get(key).and_then(Value::as_str) {
            let pointer = || w.ptr(&format!("/{key}"));
            f(Reference {
                kind: RefKind::ServiceAccount,
                name,
                pointer: &pointer,
            });
            break;
        }
    }
}

/// A reference to a ConfigMap, Secret, PersistentVolumeClaim or ServiceAccount that nothing in
/// the set provides.
pub(crate) fn references_resolve(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let ns = s.obj.id.namespace.as_deref();
    let mut reported: Vec<(RefKind, String)> = Vec::new();
    each_reference(w, &mut |r: Reference<'_>| {
        let implicit = match r.kind {
            RefKind::ServiceAccount => r.name == "default" || r.name.is_empty(),
            RefKind::ConfigMap => r.name == "kube-root-ca.crt",
            _ => false,
        };
        if implicit || s.index.resolves(r.kind, ns, r.name) {
            return;
        }
        if reported.iter().any(|(k, n)| *k == r.kind && n == r.name) {
            return;
        }
        let where_ = ns.map_or_else(String::new, |n| format!(" in namespace `{n}`"));
        out.report(
            REFERENCES_RESOLVE,
            s.obj,
            &(r.pointer)(),
            format!(
                "{} `{}` is not in the set{where_}; pods wait in ContainerCreating until something creates it",
                r.kind.name(),
                r.name
            ),
        );
        reported.push((r.kind, r.name.to_owned()));
    });
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
