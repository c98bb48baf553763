//! What an app's rollout strategy needs of its manifests. A `blueGreen` app runs its one
//! Deployment as two colours behind two Services, so its manifests must hold exactly one
//! Deployment, and both Services (distinct), each selecting that Deployment's pods. Findings
//! point at the app file's strategy line that names the missing or wrong thing.

use serde_json::{Map, Value};
use tally_validator::{Finding, Object, Severity};

use crate::load::Entry;
use crate::model::{AppSpec, PortRef, Strategy};

/// Rule ids of strategy checks.
pub mod rules {
    /// A blueGreen app whose manifests do not fit the strategy.
    pub const BLUE_GREEN: &str = "layout-blue-green";
}

/// Checks an app's rendered objects against its strategy.
pub fn check(app: &Entry<AppSpec>, objects: &[Object]) -> Vec<Finding> {
    let Strategy::BlueGreen(bg) = &app.spec.strategy else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut finding = |pointer: &str, message: String| {
        out.push(
            app.object
                .finding(rules::BLUE_GREEN, Severity::Error, pointer, message),
        );
    };
    let deployments: Vec<&Object> = objects
        .iter()
        .filter(|o| o.id.kind == "Deployment" && o.id.group() == "apps")
        .collect();
    let deployment = match deployments.as_slice() {
        [one] => Some(*one),
        [] => {
            finding(
                "/spec/strategy/type",
                "a blueGreen app runs one Deployment as two colours, and this app's manifests have no Deployment".into(),
            );
            None
        }
        many => {
            let names: Vec<&str> = many.iter().map(|d| d.id.name.as_str()).collect();
            finding(
                "/spec/strategy/type",
                format!(
                    "a blueGreen app runs one Deployment as two colours, and this app's manifests have {}: `{}`",
                    many.len(),
                    names.join("`, `")
                ),
            );
            None
        }
    };
    let pod_labels = deployment.and_then(|d| {
        d.value
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
    });
    if bg.smoke_test.is_some() && bg.preview_service.is_none() {
        finding(
            "/spec/strategy/smokeTest",
            "the smoke test is sent to the preview Service, and the strategy names none (`previewService`)".into(),
        );
    }
    let mut services = vec![("/spec/strategy/service", "active", bg.service.as_str())];
    if let Some(preview) = &bg.preview_service {
        if *preview == bg.service {
            finding(
                "/spec/strategy/previewService",
                format!("the preview Service must not be the active one (`{preview}`)"),
            );
        } else {
            services.push(("/spec/strategy/previewService", "preview", preview.as_str()));
        }
    }
    for (pointer, role, name) in services {
        let service = objects
            .iter()
            .find(|o| o.id.kind == "Service" && o.id.group().is_empty() && o.id.name == name);
        let Some(service) = service else {
            finding(
                pointer,
                format!("the {role} Service `{name}` is not among the app's manifests"),
            );
            continue;
        };
        if role == "preview"
            && let Some(test) = &bg.smoke_test
            && !exposes(service, &test.port)
        {
            let port = match &test.port {
                PortRef::Number(n) => n.to_string(),
                PortRef::Name(n) => n.clone(),
            };
            finding(
                "/spec/strategy/smokeTest/port",
                format!("the preview Service `{name}` has no port `{port}` for the smoke test"),
            );
        }
        let (Some(d), Some(labels)) = (deployment, pod_labels) else {
            continue;
        };
        let selector = service
            .value
            .pointer("/spec/selector")
            .and_then(Value::as_object);
        if !selects(selector, labels) {
            finding(
                pointer,
                format!(
                    "the {role} Service `{name}` does not select the pods of Deployment `{}` (selector {}, pod labels {})",
                    d.id.name,
                    show(selector),
                    show(Some(labels))
                ),
            );
        }
    }
    out
}

/// Whether a Service exposes this port (by its number or its name).
fn exposes(service: &Object, port: &PortRef) -> bool {
    let ports = service
        .value
        .pointer("/spec/ports")
        .and_then(Value::as_array);
    ports.into_iter().flatten().any(|p| match port {
        PortRef::Number(n) => p.get("port").and_then(Value::as_u64) == Some(u64::from(*n)),
        PortRef::Name(n) => p.get("name").and_then(Value::as_str) == Some(n),
    })
}

/// Whether a Service selector (non-empty) matches these labels.
fn selects(selector: Option<&Map<String, Value>>, labels: &Map<String, Value>) -> bool {
    selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

fn show(map: Option<&Map<String, Value>>) -> String {
    match map {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "(none)".into(),
    }
}
