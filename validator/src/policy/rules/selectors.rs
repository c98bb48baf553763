//! Selectors that select: `selector-matches-template`, `service-selects-pods`.

use serde_json::Value;

use crate::object::WorkloadKind;
use crate::policy::engine::Out;
use crate::policy::labels::{is_empty_selector, map_selects, selects};

use super::{SELECTOR_MATCHES_TEMPLATE, SERVICE_SELECTS_PODS, Subject};

/// A controller whose selector does not select its own pod template.
pub(crate) fn selector_matches_template(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let obj = s.obj;
    let Some(selector) = obj.value.pointer("/spec/selector") else {
        return;
    };
    let matches = match w.kind {
        WorkloadKind::Deployment
        | WorkloadKind::StatefulSet
        | WorkloadKind::DaemonSet
        | WorkloadKind::ReplicaSet => {
            if is_empty_selector(selector) {
                out.report(
                    SELECTOR_MATCHES_TEMPLATE,
                    obj,
                    "/spec/selector",
                    "an empty selector would claim every pod of the namespace; the API server rejects it. Select the template's labels",
                );
                return;
            }
            selects(selector, w.labels)
        }
        // Jobs generate their selector unless told otherwise.
        WorkloadKind::Job => {
            if obj
                .value
                .pointer("/spec/manualSelector")
                .and_then(Value::as_bool)
                != Some(true)
            {
                return;
            }
            selects(selector, w.labels)
        }
        WorkloadKind::ReplicationController => match selector.as_object() {
            Some(map) if !map.is_empty() => map_selects(map, w.labels),
            _ => return,
        },
        WorkloadKind::Pod | WorkloadKind::CronJob => return,
    };
    if !matches {
        out.report(
            SELECTOR_MATCHES_TEMPLATE,
            obj,
            "/spec/selector",
            format!(
                "the selector does not match the labels of the pod template (`{}`); the API server rejects this {}",
                w.meta_ptr.trim_start_matches('/').replace('/', ".") + ".labels",
                obj.id.kind
            ),
        );
    }
}

/// A Service with a selector that matches no pod template in the set.
pub(crate) fn service_selects_pods(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if obj.id.kind != "Service" || !obj.id.group().is_empty() {
        return;
    }
    if obj.value.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    // No selector: the endpoints are managed by hand (or by another controller).
    let Some(selector) = obj
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return;
    };
    let ns = obj.id.namespace.as_deref();
    if s.index
        .pod_templates_near(ns)
        .any(|t| map_selects(selector, t.labels.as_ref()))
    {
        return;
    }
    // An operator's custom resource nearby may run the pods; the set cannot see their labels.
    if s.index.operator_pods_near(ns) {
        return;
    }
    let wanted: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect();
    out.report(
        SERVICE_SELECTS_PODS,
        obj,
        "/spec/selector",
        format!(
            "no pod template in the set has the labels {}; this Service would have no endpoints",
            wanted.join(",")
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{at, deployment, findings_with};

    #[test]
    fn selector_and_template() {
        let d = deployment("      containers: [{name: a, image: app:1.0.0}]\n");
        assert!(at(SELECTOR_MATCHES_TEMPLATE, &d).is_empty());
        let wrong = d.replace("matchLabels: {app: web}", "matchLabels: {app: website}");
        assert_eq!(at(SELECTOR_MATCHES_TEMPLATE, &wrong), [(8, 3)]);
        let empty = d.replace("matchLabels: {app: web}", "matchLabels: {}");
        assert_eq!(at(SELECTOR_MATCHES_TEMPLATE, &empty), [(8, 3)]);
        let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r, namespace: shop}\nspec:\n  selector: {app: a}\n  template:\n    metadata: {labels: {app: b}}\n    spec:\n      containers: [{name: c, image: app:1.0.0}]\n";
        assert_eq!(at(SELECTOR_MATCHES_TEMPLATE, rc), [(5, 3)]);
    }

    #[test]
    fn services_find_their_pods() {
        let d = deployment("      containers: [{name: a, image: app:1.0.0}]\n");
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";
        let run = |svc: &str| -> Vec<(u32, u32)> {
            findings_with(&PolicyConfig::default(), &[("d.yaml", &d), ("s.yaml", svc)])
                .iter()
                .filter(|f| f.rule == SERVICE_SELECTS_PODS)
                .map(|f| (f.pos.line, f.pos.column))
                .collect()
        };
        assert!(run(svc).is_empty());
        assert_eq!(run(&svc.replace("{app: web}", "{app: api}")), [(5, 3)]);
        assert_eq!(
            run(&svc.replace("namespace: shop", "namespace: other")),
            [(5, 3)]
        );
        // Without a namespace it may land anywhere: no false alarm.
        assert!(run(&svc.replace(", namespace: shop", "")).is_empty());
        let operator = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: shop}\nspec: {instances: 3}\n";
        let cr_svc = svc.replace("{app: web}", "{cnpg.io/cluster: pg}");
        let all = findings_with(
            &PolicyConfig::default(),
            &[("s.yaml", &cr_svc), ("c.yaml", operator)],
        );
        assert!(
            !all.iter().any(|f| f.rule == SERVICE_SELECTS_PODS),
            "{all:#?}"
        );
        let monitor = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m, namespace: shop}\nspec: {selector: {}, endpoints: []}\n";
        let all = findings_with(
            &PolicyConfig::default(),
            &[("s.yaml", &cr_svc), ("m.yaml", monitor)],
        );
        assert!(all.iter().any(|f| f.rule == SERVICE_SELECTS_PODS));
        let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: shop}\nspec:\n  ports: [{port: 5432}]\n";
        assert!(run(headless).is_empty());
    }
}
