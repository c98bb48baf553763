//! Service endpoints, simulated: the fake runs no pods, so a Service's endpoints are the
//! replicas of the Deployments in its namespace whose pod template its selector matches (ready
//! ones as `addresses`, the rest as `notReadyAddresses`), kept in an `Endpoints` object as the
//! endpoints controller does; and the API server's Service proxy answers through them: 503 when
//! no endpoint is ready, 500 when the ready pods run an image carrying [`SMOKE_FAIL_MARKER`]
//! (pods that start but answer wrongly), 200 otherwise.

use serde_json::{Map, Value, json};

use crate::cluster::Cluster;
use crate::status::ApiError;

/// An image whose name holds this becomes ready but answers every proxied request with 500.
pub const SMOKE_FAIL_MARKER: &str = "smoke-bad";

/// The Deployments a selector picks in a namespace.
fn selected(cluster: &Cluster, namespace: &str, selector: &Map<String, Value>) -> Vec<Value> {
    let Some(rt) = cluster.resolve("apps", "v1", "deployments") else {
        return Vec::new();
    };
    cluster
        .list(&rt, Some(namespace), |d| {
            let labels = d
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object);
            !selector.is_empty()
                && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
        })
        .0
}

fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// What changed, for [`sync`]: a Service (by name) or a Deployment (its pod labels).
pub enum Changed<'a> {
    /// This Service.
    Service(&'a str),
    /// A Deployment with these pod labels (every Service selecting them).
    Pods(&'a Map<String, Value>),
}

/// Brings the `Endpoints` of the Services a change concerns up to date (writing only changes).
pub fn sync(cluster: &Cluster, namespace: &str, changed: Changed<'_>) {
    let (Some(services), Some(endpoints)) = (
        cluster.resolve("", "v1", "services"),
        cluster.resolve("", "v1", "endpoints"),
    ) else {
        return;
    };
    let concerned = |s: &Value| match &changed {
        Changed::Service(name) => s.pointer("/metadata/name").and_then(Value::as_str) == Some(name),
        Changed::Pods(labels) => s
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_some_and(|sel| {
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            }),
    };
    for service in cluster.list(&services, Some(namespace), concerned).0 {
        let Some(name) = service.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for (d, deployment) in selected(cluster, namespace, selector).iter().enumerate() {
            let pod = deployment
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let up = count(deployment, "/status/readyReplicas");
            let want = count(deployment, "/spec/replicas");
            for i in 0..want.max(up) {
                let address = json!({
                    "ip": format!("10.244.{}.{}", d % 250, i % 250 + 1),
                    "targetRef": {"kind": "Pod", "namespace": namespace, "name": format!("{pod}-{i}")},
                });
                if i < up {
                    ready.push(address);
                } else {
                    not_ready.push(address);
                }
            }
        }
        let ports: Vec<Value> = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let port = p
                    .get("targetPort")
                    .filter(|t| t.is_u64())
                    .or_else(|| p.get("port"))
                    .cloned()
                    .unwrap_or(json!(80));
                json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": port,
                    "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})
            })
            .collect();
        let mut subset = Map::new();
        if !ready.is_empty() {
            subset.insert("addresses".into(), Value::Array(ready));
        }
        if !not_ready.is_empty() {
            subset.insert("notReadyAddresses".into(), Value::Array(not_ready));
        }
        let subsets = if subset.is_empty() {
            json!([])
        } else {
            subset.insert("ports".into(), Value::Array(ports));
            json!([subset])
        };
        let current = cluster.get(&endpoints, namespace, name).ok();
        if current.as_ref().and_then(|e| e.get("subsets")) == Some(&subsets) {
            continue;
        }
        let object = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace}, "subsets": subsets});
        let _ = cluster.put_raw(&endpoints, object);
    }
}

/// The answer of `GET .../services/<name>[:<port>]/proxy/<path>`: the selected pods' answer.
pub fn proxy(cluster: &Cluster, namespace: &str, service: &str) -> Result<(u16, String), ApiError> {
    let name = service.split(':').next().unwrap_or(service);
    let rt = cluster
        .resolve("", "v1", "services")
        .ok_or_else(|| ApiError::not_found("services", "", name))?;
    let svc = cluster.get(&rt, namespace, name)?;
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let ready: Vec<Value> = selected(cluster, namespace, &selector)
        .into_iter()
        .filter(|d| count(d, "/status/readyReplicas") > 0)
        .collect();
    if ready.is_empty() {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{name}\""),
        ));
    }
    let failing = ready.iter().any(|d| {
        d.pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
            .any(|image| image.contains(SMOKE_FAIL_MARKER))
    });
    Ok(if failing {
        (500, "internal server error\n".into())
    } else {
        (200, "ok\n".into())
    })
}
