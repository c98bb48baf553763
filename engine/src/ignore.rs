//! Fields left to others: values tally sets when it creates an object and never again, so that
//! an autoscaler, an operator or a person can own them without tally undoing their choice.
//!
//! Which fields: the JSON pointers in the object's `tally.dev/ignore-fields` annotation (an
//! app's `ignoreFields` puts them there), and `spec.replicas` of a workload that a
//! HorizontalPodAutoscaler in the same environment scales.
//!
//! How: once the object exists, a pointer through maps only (`/spec/replicas`) is left out of
//! what tally applies. While tally still owns the field (it created the object with it), leaving
//! it out would make the server delete it, so the field is first handed over: one apply by the
//! field manager `tally-handover` with the live value, which keeps the field whoever changes it
//! later. A pointer into a list (`/spec/template/spec/containers/0/image`) cannot be left out
//! of an item without changing the item, so there the live value is applied back as it is:
//! tally then co-owns the field but never changes it.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::fields::Ownership;

/// The annotation listing fields tally leaves to others: JSON pointers, separated by commas or
/// new lines.
pub use tally_layout::render::IGNORE_FIELDS_ANNOTATION as IGNORE_ANNOTATION;

/// The field manager that keeps a field tally hands over.
pub const HANDOVER_MANAGER: &str = "tally-handover";

/// A workload an autoscaler scales: namespace, kind and name.
pub type Target = (Option<String>, String, String);

/// The workloads the HorizontalPodAutoscalers among `objects` scale.
pub fn autoscaled<'a>(objects: impl IntoIterator<Item = &'a Value>) -> HashSet<Target> {
    objects
        .into_iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("HorizontalPodAutoscaler"))
        .filter_map(|hpa| {
            let s = |p: &str| hpa.pointer(p).and_then(Value::as_str).map(str::to_owned);
            Some((
                s("/metadata/namespace"),
                s("/spec/scaleTargetRef/kind")?,
                s("/spec/scaleTargetRef/name")?,
            ))
        })
        .collect()
}

/// The pointers of `desired` that are left to others.
pub fn left_to_others(desired: &Value, autoscaled: &HashSet<Target>) -> Vec<String> {
    let mut out: Vec<String> = desired
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(IGNORE_ANNOTATION))
        .and_then(Value::as_str)
        .map(|text| {
            text.split([',', '\n'])
                .map(str::trim)
                .filter(|p| p.starts_with('/'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let s = |p: &str| {
        desired
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let (Some(kind), Some(name)) = (s("/kind"), s("/metadata/name")) {
        let target = (s("/metadata/namespace"), kind, name);
        if autoscaled.contains(&target) && !out.iter().any(|p| p == "/spec/replicas") {
            out.push("/spec/replicas".into());
        }
    }
    out
}

/// What to do with an existing object's fields left to others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leaving {
    /// The pointers, for the diff to skip.
    pub pointers: Vec<String>,
    /// Pointers tally still owns and must hand over before leaving them out, with the live
    /// value of each.
    pub handover: Vec<(String, Value)>,
}

/// Prepares `desired` (an object that exists as `live`) for applying: fields left to others are
/// taken out of it, or given their live values; returns what the plan and apply need to know.
pub fn leave(desired: &mut Value, live: &Value, pointers: Vec<String>) -> Leaving {
    let own = Ownership::of(live);
    let mut handover = Vec::new();
    for pointer in &pointers {
        let steps = steps(pointer);
        let through_lists = {
            let mut node = Some(&*desired);
            let mut lists = false;
            for step in &steps[..steps.len().saturating_sub(1)] {
                node = node.and_then(|n| match n {
                    Value::Object(m) => m.get(step),
                    Value::Array(items) => {
                        lists = true;
                        step.parse::<usize>().ok().and_then(|i| items.get(i))
                    }
                    _ => None,
                });
            }
            lists || node.is_some_and(Value::is_array)
        };
        let live_value = live.pointer(pointer).cloned();
        if through_lists {
            match live_value {
                Some(v) => set(desired, &steps, v),
                None => remove(desired, &steps),
            }
            continue;
        }
        remove(desired, &steps);
        let mut node = own.clone();
        for step in &steps {
            node = node.field(step);
        }
        if node.tally.is_some()
            && let Some(v) = live_value
        {
            handover.push((pointer.clone(), v));
        }
    }
    Leaving { pointers, handover }
}

/// The apply that hands fields over: the object's identity and the live values.
pub fn handover_config(desired: &Value, handover: &[(String, Value)]) -> Value {
    let mut config = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = desired.get(key) {
            config.insert(key.into(), v.clone());
        }
    }
    let mut meta = Map::new();
    for key in ["name", "namespace"] {
        if let Some(v) = desired.pointer(&format!("/metadata/{key}")) {
            meta.insert(key.into(), v.clone());
        }
    }
    config.insert("metadata".into(), Value::Object(meta));
    let mut config = Value::Object(config);
    for (pointer, value) in handover {
        set(&mut config, &steps(pointer), value.clone());
    }
    config
}

/// The unescaped steps of a JSON pointer.
fn steps(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A pointer as a field path, as the plan prints paths: `spec.replicas`.
pub fn display(pointer: &str) -> String {
    steps(pointer).join(".")
}

fn set(obj: &mut Value, steps: &[String], value: Value) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        node = match node {
            Value::Object(m) => m
                .entry(step.clone())
                .or_insert_with(|| Value::Object(Map::new())),
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
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        _ => {}
    }
}

fn remove(obj: &mut Value, steps: &[String]) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        node = match node {
            Value::Object(m) => match m.get_mut(step) {
                Some(n) => n,
                None => return,
            },
            Value::Array(items) => {
                match step.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
    if let Value::Object(m) = node {
        m.shift_remove(last);
    }
}

/// Whether the field at `pointer` is one of `left` or lies under one.
pub fn is_left(left: &[String], pointer: &str) -> bool {
    left.iter().any(|p| {
        pointer == p
            || pointer
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1"}]}}}})
    }

    #[test]
    fn an_autoscaled_workloads_replicas_are_left_to_the_autoscaler() {
        let hpa = json!({"kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}});
        let set = autoscaled([&hpa]);
        assert_eq!(left_to_others(&deployment(2), &set), ["/spec/replicas"]);
        assert!(left_to_others(&deployment(2), &HashSet::new()).is_empty());
    }

    #[test]
    fn the_annotation_lists_pointers() {
        let mut d = deployment(2);
        d["metadata"]["annotations"] = json!({IGNORE_ANNOTATION:
            "/spec/template/spec/containers/0/image,\n /metadata/labels/team, not-a-pointer"});
        assert_eq!(
            left_to_others(&d, &HashSet::new()),
            [
                "/spec/template/spec/containers/0/image",
                "/metadata/labels/team"
            ]
        );
    }

    #[test]
    fn a_field_tally_owns_is_handed_over_and_one_in_a_list_keeps_its_live_value() {
        let mut live = deployment(5);
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:pinned");
        live["metadata"]["managedFields"] = json!([{"manager": "tally", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let mut desired = deployment(2);
        let leaving = leave(
            &mut desired,
            &live,
            vec![
                "/spec/replicas".into(),
                "/spec/template/spec/containers/0/image".into(),
            ],
        );
        assert_eq!(desired.pointer("/spec/replicas"), None);
        assert_eq!(
            desired["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:pinned"
        );
        assert_eq!(leaving.handover, [("/spec/replicas".to_owned(), json!(5))]);
        let config = handover_config(&desired, &leaving.handover);
        assert_eq!(
            config,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 5}})
        );

        // Someone else owns it already: nothing to hand over.
        live["metadata"]["managedFields"] = json!([{"manager": "kube-controller-manager",
            "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let mut desired = deployment(2);
        let leaving = leave(&mut desired, &live, vec!["/spec/replicas".into()]);
        assert!(leaving.handover.is_empty());
        assert!(is_left(&leaving.pointers, "/spec/replicas"));
        assert!(!is_left(&leaving.pointers, "/spec/replicasX"));
    }
}
