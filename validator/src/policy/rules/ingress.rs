//! Ingresses: `ingress-tls`, `ingress-backend-exists`.

use serde_json::Value;

use crate::object::Object;
use crate::policy::engine::Out;
use crate::policy::index::same_namespace;

use super::{INGRESS_BACKEND_EXISTS, INGRESS_TLS, Subject};

fn is_ingress(obj: &Object) -> bool {
    obj.id.kind == "Ingress" && matches!(obj.id.group(), "networking.k8s.io" | "extensions")
}

/// Whether a TLS host entry (`*.example.com` covers one label) covers `host`.
fn covers(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((_, rest))) => suffix.eq_ignore_ascii_case(rest),
        _ => false,
    }
}

/// An Ingress without TLS, or a host its `tls` entries do not cover.
pub(crate) fn ingress_tls(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if !is_ingress(obj) {
        return;
    }
    let tls: Vec<&Value> = obj
        .value
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    if tls.is_empty() {
        out.report(
            INGRESS_TLS,
            obj,
            "/spec",
            "this Ingress serves plain HTTP: add `spec.tls` with a certificate for its hosts",
        );
        return;
    }
    // An entry without hosts is the certificate for every host.
    let catch_all = tls.iter().any(|t| {
        t.get("hosts")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    });
    if catch_all {
        return;
    }
    let tls_hosts: Vec<&str> = tls
        .iter()
        .filter_map(|t| t.get("hosts").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (i, rule) in obj
        .value
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(host) = rule.get("host").and_then(Value::as_str) else {
            continue;
        };
        if !tls_hosts.iter().any(|p| covers(p, host)) {
            out.report(
                INGRESS_TLS,
                obj,
                &format!("/spec/rules/{i}/host"),
                format!(
                    "host `{host}` is not in any `spec.tls[].hosts`, so it is served without TLS"
                ),
            );
        }
    }
}

/// Every `backend.service` of an Ingress is a Service in the set, with that port.
pub(crate) fn ingress_backend_exists(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if !is_ingress(obj) {
        return;
    }
    let mut backends: Vec<(String, &Value)> = Vec::new();
    if let Some(b) = obj.value.pointer("/spec/defaultBackend/service") {
        backends.push(("/spec/defaultBackend/service".into(), b));
    }
    for (i, rule) in obj
        .value
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, path) in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(b) = path.pointer("/backend/service") {
                backends.push((format!("/spec/rules/{i}/http/paths/{j}/backend/service"), b));
            }
        }
    }
    let ns = obj.id.namespace.as_deref();
    for (ptr, b) in backends {
        let Some(name) = b.get("name").and_then(Value::as_str) else {
            continue;
        };
        let services: Vec<&Object> = s
            .index
            .services_named(name)
            .iter()
            .filter(|svc| same_namespace(svc.id.namespace.as_deref(), ns))
            .collect();
        if services.is_empty() {
            out.report(
                INGRESS_BACKEND_EXISTS,
                obj,
                &format!("{ptr}/name"),
                format!("backend Service `{name}` is not in the set; this path would answer 503"),
            );
            continue;
        }
        let port = b.get("port");
        let number = port.and_then(|p| p.get("number")).and_then(Value::as_i64);
        let port_name = port.and_then(|p| p.get("name")).and_then(Value::as_str);
        if number.is_none() && port_name.is_none() {
            continue;
        }
        let has_port = services.iter().any(|svc| {
            if svc.value.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
                return true;
            }
            svc.value
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|p| match (number, port_name) {
                    (Some(n), _) => p.get("port").and_then(Value::as_i64) == Some(n),
                    (None, Some(pn)) => p.get("name").and_then(Value::as_str) == Some(pn),
                    _ => false,
                })
        });
        if !has_port {
            let shown =
                number.map_or_else(|| port_name.unwrap_or("").to_owned(), |n| n.to_string());
            out.report(
                INGRESS_BACKEND_EXISTS,
                obj,
                &format!("{ptr}/port"),
                format!("Service `{name}` has no port `{shown}`; this path would answer 503"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{at, findings_with};

    const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  tls:
    - hosts: ['*.shop.example.com']
      secretName: shop-tls
  rules:
    - host: www.shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: web, port: {name: http}}
    - host: shop.example.com
      http:
        paths:
          - path: /api
            pathType: Prefix
            backend:
              service: {name: api, port: {number: 8080}}
";

    const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
";

    #[test]
    fn tls_covers_hosts() {
        assert_eq!(at(INGRESS_TLS, INGRESS), [(16, 7)]);
        let none = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\nspec:\n  defaultBackend:\n    service: {name: web, port: {number: 80}}\n";
        assert_eq!(at(INGRESS_TLS, none), [(4, 1)]);
        assert!(covers("*.example.com", "a.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
    }

    #[test]
    fn backends_resolve_to_services_and_ports() {
        let all = findings_with(
            &PolicyConfig::default(),
            &[("ing.yaml", INGRESS), ("svc.yaml", SERVICE)],
        );
        let got: Vec<_> = all
            .iter()
            .filter(|f| f.rule == INGRESS_BACKEND_EXISTS)
            .map(|f| (f.pos.line, f.pos.column))
            .collect();
        assert_eq!(got, [(22, 25)]);
        let wrong_port = SERVICE.replace("name: http, ", "name: web, ");
        let all = findings_with(
            &PolicyConfig::default(),
            &[("ing.yaml", INGRESS), ("svc.yaml", &wrong_port)],
        );
        let got: Vec<_> = all
            .iter()
            .filter(|f| f.rule == INGRESS_BACKEND_EXISTS)
            .map(|f| (f.pos.line, f.pos.column))
            .collect();
        assert_eq!(got, [(15, 36), (22, 25)]);
    }
}
