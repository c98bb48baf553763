//! What the real API server does to a write between decoding it and storing it: defaulting,
//! mutating webhooks, and the validation that refuses changes to immutable fields.
//!
//! Only the fields a client most often meets are modelled: the defaults `kubectl get -o yaml`
//! shows on every Deployment, pod template and Service, and the immutable fields whose change
//! a GitOps tool must handle (workload selectors, a Job's template, a Service's cluster IP, a
//! binding's `roleRef`, most of a StatefulSet's and a claim's spec, the data of an immutable
//! ConfigMap or Secret). Messages and `details.causes` have the real server's shape.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;
use crate::status::ApiError;

/// A mutating admission webhook, simulated: on every write of a kind, sets a field.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// The resource, as `deployments.apps` or `services`.
    pub resource: String,
    /// A JSON pointer into the object, e.g. `/metadata/annotations/injected`; missing parents
    /// are created as maps.
    pub pointer: String,
    /// The value set.
    pub value: Value,
}

/// Fills in the defaults the API server sets.
pub fn default(rt: &ResourceType, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let spec = || json!({});
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            if let Some(spec) = map.entry("spec").or_insert_with(spec).as_object_mut() {
                spec.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
            let status = map.entry("status").or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                status.entry("phase").or_insert_with(|| json!("Active"));
            }
        }
        ("apps", "deployments" | "statefulsets" | "replicasets" | "daemonsets") => {
            let Some(spec) = map.entry("spec").or_insert_with(spec).as_object_mut() else {
                return;
            };
            if rt.plural != "daemonsets" {
                spec.entry("replicas").or_insert_with(|| json!(1));
            }
            spec.entry("revisionHistoryLimit")
                .or_insert_with(|| json!(10));
            if rt.plural == "deployments" {
                spec.entry("progressDeadlineSeconds")
                    .or_insert_with(|| json!(600));
                let strategy = spec
                    .entry("strategy")
                    .or_insert_with(|| json!({"type": "RollingUpdate"}));
                if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                    && let Some(s) = strategy.as_object_mut()
                {
                    s.entry("rollingUpdate")
                        .or_insert_with(|| json!({"maxUnavailable": "25%", "maxSurge": "25%"}));
                }
            }
            if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
                default_pod_spec(pod);
            }
        }
        ("batch", "jobs") => {
            if let Some(pod) = map
                .get_mut("spec")
                .and_then(|s| s.pointer_mut("/template/spec"))
            {
                default_pod_spec(pod);
            }
        }
        ("batch", "cronjobs") => {
            if let Some(pod) = map
                .get_mut("spec")
                .and_then(|s| s.pointer_mut("/jobTemplate/spec/template/spec"))
            {
                default_pod_spec(pod);
            }
        }
        ("", "pods") => {
            if let Some(pod) = map.get_mut("spec") {
                default_pod_spec(pod);
            }
        }
        ("", "services") => default_service(map),
        ("networking.k8s.io", "networkpolicies") => {
            for rules in ["ingress", "egress"] {
                let rules = map
                    .get_mut("spec")
                    .and_then(|s| s.get_mut(rules))
                    .and_then(Value::as_array_mut);
                for rule in rules.into_iter().flatten() {
                    let ports = rule.get_mut("ports").and_then(Value::as_array_mut);
                    for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                        port.entry("protocol").or_insert_with(|| json!("TCP"));
                    }
                }
            }
        }
        _ => {}
    }
}

fn default_pod_spec(pod: &mut Value) {
    let Some(pod) = pod.as_object_mut() else {
        return;
    };
    pod.entry("restartPolicy")
        .or_insert_with(|| json!("Always"));
    pod.entry("dnsPolicy")
        .or_insert_with(|| json!("ClusterFirst"));
    pod.entry("schedulerName")
        .or_insert_with(|| json!("default-scheduler"));
    pod.entry("terminationGracePeriodSeconds")
        .or_insert_with(|| json!(30));
    pod.entry("securityContext").or_insert_with(|| json!({}));
    for list in ["initContainers", "containers"] {
        let containers = pod.get_mut(list).and_then(Value::as_array_mut);
        for c in containers
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            c.entry("terminationMessagePath")
                .or_insert_with(|| json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy")
                .or_insert_with(|| json!("File"));
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let policy = if image_is_latest(image) {
                "Always"
            } else {
                "IfNotPresent"
            };
            c.entry("imagePullPolicy").or_insert_with(|| json!(policy));
            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                port.entry("protocol").or_insert_with(|| json!("TCP"));
            }
        }
    }
}

/// An image without a tag or digest, or tagged `latest`, is pulled always.
fn image_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service(map: &mut Map<String, Value>) {
    let Some(spec) = map
        .entry("spec")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    let kind = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if kind != "ExternalName" {
        spec.entry("sessionAffinity")
            .or_insert_with(|| json!("None"));
        spec.entry("internalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
    }
    let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
    for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
        port.entry("protocol").or_insert_with(|| json!("TCP"));
        if let Some(number) = port.get("port").cloned() {
            port.entry("targetPort").or_insert(number);
        }
    }
}

/// Allocates a Service's cluster IP on create, as the server's allocator does; `n` picks the
/// address.
pub fn allocate_cluster_ip(rt: &ResourceType, obj: &mut Value, n: u64) {
    if (rt.group.as_str(), rt.plural.as_str()) != ("", "services") {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    let given = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
    let ip = if given.is_empty() {
        format!("10.96.{}.{}", (n >> 8) % 255, n % 254 + 1)
    } else {
        given.to_owned()
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
}

/// On an update, a Service that leaves its cluster IP empty keeps the one allocated (the API
/// server allows an empty `clusterIP` on update, for historical reasons, and fills it in).
pub fn keep_allocated(rt: &ResourceType, live: &Value, new: &mut Value) {
    if (rt.group.as_str(), rt.plural.as_str()) != ("", "services") {
        return;
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(v) = live.pointer(&format!("/spec/{field}")) {
                spec.insert(field.into(), v.clone());
            }
        }
    }
}

/// Applies the configured mutating webhooks for this resource.
pub fn mutate(rt: &ResourceType, mutations: &[Mutation], obj: &mut Value) {
    let resource = if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    };
    for m in mutations.iter().filter(|m| m.resource == resource) {
        set_pointer(obj, &m.pointer, m.value.clone());
    }
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let steps: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        node = match node {
            Value::Object(map) => map.entry(step.clone()).or_insert_with(|| json!({})),
            Value::Array(items) => {
                match step.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
    match node {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        _ => {}
    }
}

/// One refused field.
struct Cause {
    field: String,
    /// `FieldValueInvalid` or `FieldValueForbidden`.
    reason: &'static str,
    message: String,
}

/// Refuses an update that changes an immutable field, with the real server's 422.
pub fn check_immutable(rt: &ResourceType, live: &Value, new: &Value) -> Result<(), ApiError> {
    let at = |v: &Value, pointer: &str| v.pointer(pointer).cloned().unwrap_or(Value::Null);
    let changed = |pointer: &str| at(live, pointer) != at(new, pointer);
    let invalid = |field: &str, pointer: &str, what: &str| Cause {
        field: field.to_owned(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {what}", at(new, pointer)),
    };
    let mut causes = Vec::new();
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments" | "replicasets" | "daemonsets") if changed("/spec/selector") => {
            causes.push(invalid(
                "spec.selector",
                "/spec/selector",
                "field is immutable",
            ));
        }
        ("apps", "statefulsets") => {
            const MUTABLE: &[&str] = &[
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
                "revisionHistoryLimit",
            ];
            let rest = |v: &Value| -> Map<String, Value> {
                v.get("spec")
                    .and_then(Value::as_object)
                    .map(|s| {
                        s.iter()
                            .filter(|(k, _)| !MUTABLE.contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if rest(live) != rest(new) {
                causes.push(Cause {
                    field: "spec".into(),
                    reason: "FieldValueForbidden",
                    message: "Forbidden: updates to statefulset spec for fields other than \
                              'replicas', 'ordinals', 'template', 'updateStrategy', \
                              'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' \
                              and 'minReadySeconds' are forbidden"
                        .into(),
                });
            }
        }
        ("batch", "jobs") => {
            if changed("/spec/selector") {
                causes.push(invalid(
                    "spec.selector",
                    "/spec/selector",
                    "field is immutable",
                ));
            }
            if changed("/spec/template") {
                causes.push(invalid(
                    "spec.template",
                    "/spec/template",
                    "field is immutable",
                ));
            }
        }
        ("", "services") => {
            let old = at(live, "/spec/clusterIP");
            let ip = at(new, "/spec/clusterIP");
            if old.as_str().is_some_and(|s| !s.is_empty()) && ip != old {
                causes.push(invalid(
                    "spec.clusterIPs[0]",
                    "/spec/clusterIP",
                    "may not change once set",
                ));
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings")
            if changed("/roleRef") =>
        {
            causes.push(invalid("roleRef", "/roleRef", "cannot change roleRef"));
        }
        ("", "persistentvolumeclaims") => {
            let rest = |v: &Value| {
                let mut spec = at(v, "/spec");
                if let Some(s) = spec.as_object_mut() {
                    s.shift_remove("resources");
                    s.shift_remove("volumeAttributesClassName");
                    // Set by the binder, not by clients.
                    s.shift_remove("volumeName");
                }
                spec
            };
            if rest(live) != rest(new) {
                causes.push(Cause {
                    field: "spec".into(),
                    reason: "FieldValueForbidden",
                    message: "Forbidden: spec is immutable after creation except \
                              resources.requests and volumeAttributesClassName for bound claims"
                        .into(),
                });
            }
        }
        ("", "configmaps" | "secrets") if at(live, "/immutable") == json!(true) => {
            for field in ["data", "binaryData", "stringData"] {
                if changed(&format!("/{field}")) {
                    causes.push(Cause {
                        field: field.into(),
                        reason: "FieldValueForbidden",
                        message: "Forbidden: field is immutable when `immutable` is set".into(),
                    });
                }
            }
            if changed("/immutable") {
                causes.push(Cause {
                    field: "immutable".into(),
                    reason: "FieldValueForbidden",
                    message: "Forbidden: field is immutable when `immutable` is set".into(),
                });
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let qualified = if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    };
    let errors: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let list = if errors.len() == 1 {
        errors.join("")
    } else {
        format!("[{}]", errors.join(", "))
    };
    let details = json!({
        "name": name,
        "group": rt.group,
        "kind": rt.kind,
        "causes": causes.iter().map(|c| json!({
            "reason": c.reason,
            "message": c.message,
            "field": c.field,
        })).collect::<Vec<_>>(),
    });
    Err(
        ApiError::invalid(format!("{qualified} \"{name}\" is invalid: {list}"))
            .with_details(details),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn rt(api_version: &str, kind: &str) -> ResourceType {
        Registry::builtin()
            .find_kind(api_version, kind)
            .cloned()
            .unwrap_or_else(|| panic!("{kind}"))
    }

    #[test]
    fn a_changed_selector_is_refused_as_the_server_does() {
        let d = rt("apps/v1", "Deployment");
        let live = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let mut new = live.clone();
        new["spec"]["selector"]["matchLabels"]["app"] = json!("web2");
        let e = check_immutable(&d, &live, &new).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .starts_with("Deployment.apps \"web\" is invalid: spec.selector: Invalid value:"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("field is immutable"), "{}", e.message);
        assert_eq!(
            e.details.as_ref().map(|d| d["causes"][0]["field"].clone()),
            Some(json!("spec.selector"))
        );
        assert!(check_immutable(&d, &live, &live).is_ok());
    }

    #[test]
    fn pod_templates_and_services_get_the_usual_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "registry/x:1.2"}]}}}});
        default(&rt("apps/v1", "Deployment"), &mut d);
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(c[1]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);

        let svc = rt("v1", "Service");
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        default(&svc, &mut s);
        allocate_cluster_ip(&svc, &mut s, 7);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(s["spec"]["clusterIP"], "10.96.0.8");
    }

    #[test]
    fn mutations_set_fields_and_create_parents() {
        let svc = rt("v1", "Service");
        let mut s = json!({"metadata": {"name": "x"}});
        let m = Mutation {
            resource: "services".into(),
            pointer: "/metadata/annotations/injected".into(),
            value: json!("yes"),
        };
        mutate(&svc, &[m], &mut s);
        assert_eq!(s["metadata"]["annotations"]["injected"], "yes");
    }
}
