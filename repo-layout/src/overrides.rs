//! An environment's changes to an app's objects: image tags, replicas, labels and JSON merge
//! patches. Each change is recorded with the environment-file field that caused it, so a finding
//! on a changed field points at the environment line, not the app's.

use serde_json::{Map, Value};

use tally_validator::object::pod_spec_pointer;

use crate::model::AppInstance;

/// One field an override set: where in the object, and which environment field said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// JSON pointer into the object.
    pub pointer: String,
    /// JSON pointer into `environment.yaml`.
    pub source: String,
}

/// Applies an environment's overrides for one app to one of its objects. `at` is the JSON
/// pointer of the app's entry in the environment file (`/spec/apps/3`).
pub fn apply(object: &mut Value, instance: &AppInstance, at: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(pod) = pod_spec_pointer(api_version, &kind) {
        for list in ["initContainers", "containers"] {
            let pointer = format!("{pod}/{list}");
            let Some(Value::Array(containers)) = object.pointer_mut(&pointer) else {
                continue;
            };
            for (i, c) in containers.iter_mut().enumerate() {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
                let Some(tag) = instance.images.get(cname) else {
                    continue;
                };
                let current = c.get("image").and_then(Value::as_str).unwrap_or("");
                let image = retag(current, tag);
                let source = format!("{at}/images/{}", escape(cname));
                c["image"] = Value::String(image);
                changes.push(Change {
                    pointer: format!("{pointer}/{i}/image"),
                    source,
                });
            }
        }
    }

    if let Some(replicas) = instance.replicas
        && matches!(kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet")
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("replicas".into(), Value::from(replicas));
        changes.push(Change {
            pointer: "/spec/replicas".into(),
            source: format!("{at}/replicas"),
        });
    }

    if !instance.labels.is_empty()
        && let Some(labels) = labels_mut(object)
    {
        for (k, v) in &instance.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
            changes.push(Change {
                pointer: format!("/metadata/labels/{}", escape(k)),
                source: format!("{at}/labels/{}", escape(k)),
            });
        }
    }

    for (p, patch) in instance.patches.iter().enumerate() {
        let kind_ok = patch.target.kind.as_deref().is_none_or(|k| k == kind);
        let name_ok = patch.target.name.as_deref().is_none_or(|n| n == name);
        if kind_ok && name_ok {
            let source = format!("{at}/patches/{p}/patch");
            merge_patch(object, &patch.patch, "", &source, &mut changes);
        }
    }
    changes
}

/// `metadata.labels` as a mutable map, created when absent (`None` when the object is not a
/// mapping at all).
pub fn labels_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let metadata = object
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let labels = metadata
        .as_object_mut()?
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels.as_object_mut()
}

/// Replaces an image reference's tag. A value with `/`, `:` or `@` is a whole reference.
fn retag(current: &str, tag: &str) -> String {
    if tag.contains(['/', ':', '@']) {
        return tag.to_owned();
    }
    let without_digest = current.split('@').next().unwrap_or(current);
    // A `:` after the last `/` starts a tag; one before it belongs to a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    format!("{repo}:{tag}")
}

/// RFC 7386 JSON merge patch, recording each leaf it sets or removes.
fn merge_patch(
    target: &mut Value,
    patch: &Value,
    pointer: &str,
    source: &str,
    changes: &mut Vec<Change>,
) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        changes.push(Change {
            pointer: pointer.to_owned(),
            source: source.to_owned(),
        });
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(map) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch_map {
        let p = format!("{pointer}/{}", escape(key));
        let s = format!("{source}/{}", escape(key));
        if value.is_null() {
            if map.remove(key).is_some() {
                changes.push(Change {
                    pointer: p,
                    source: s,
                });
            }
        } else {
            let slot = map.entry(key.clone()).or_insert(Value::Null);
            merge_patch(slot, value, &p, &s, changes);
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance(v: Value) -> AppInstance {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad instance: {e}"))
    }

    #[test]
    fn retags_images_keeping_registry_ports() {
        assert_eq!(retag("nginx:1.0", "2.0"), "nginx:2.0");
        assert_eq!(retag("reg:5000/team/app", "v3"), "reg:5000/team/app:v3");
        assert_eq!(retag("reg:5000/app:1@sha256:abc", "v3"), "reg:5000/app:v3");
        assert_eq!(retag("nginx:1.0", "ghcr.io/x/nginx:9"), "ghcr.io/x/nginx:9");
    }

    #[test]
    fn overrides_record_their_source() {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "envoy:1"}, {"name": "web", "image": "web:1"}]}}}
        });
        let i = instance(json!({
            "name": "web", "images": {"web": "2"}, "replicas": 3, "labels": {"tier": "front"},
            "patches": [{"target": {"kind": "Deployment"}, "patch": {"spec": {"minReadySeconds": 10, "paused": null}}}]
        }));
        let changes = apply(&mut d, &i, "/spec/apps/0");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1]["image"],
            "web:2"
        );
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["metadata"]["labels"]["tier"], "front");
        assert_eq!(d["spec"]["minReadySeconds"], 10);
        let got: Vec<_> = changes
            .iter()
            .map(|c| (c.pointer.as_str(), c.source.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/spec/template/spec/containers/1/image",
                    "/spec/apps/0/images/web"
                ),
                ("/spec/replicas", "/spec/apps/0/replicas"),
                ("/metadata/labels/tier", "/spec/apps/0/labels/tier"),
                (
                    "/spec/minReadySeconds",
                    "/spec/apps/0/patches/0/patch/spec/minReadySeconds"
                ),
            ]
        );
    }

    #[test]
    fn patches_respect_their_target() {
        let mut svc = json!({"kind": "Service", "metadata": {"name": "web"}, "spec": {}});
        let i = instance(json!({"name": "web", "patches": [
            {"target": {"kind": "Deployment"}, "patch": {"spec": {"x": 1}}}]}));
        assert!(apply(&mut svc, &i, "/spec/apps/0").is_empty());
    }
}
