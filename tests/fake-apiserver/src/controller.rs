//! A simulated controller manager: fills in the status of workloads, Jobs, PVCs and CRDs the
//! way the real controllers would, after configurable delays.
//!
//! Deployments, StatefulSets and DaemonSets first report a rollout in progress, then (after
//! `ready_delay`) ready replicas. A workload whose container image contains the fail marker
//! never becomes ready; a Deployment then reports `Progressing=False` with
//! `ProgressDeadlineExceeded` once its progress deadline passes. Jobs complete (or fail), PVCs
//! bind, CRDs become Established and their resources appear in discovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};

use crate::ControllerConfig;
use crate::clock;
use crate::cluster::{ChangeEvent, Cluster, EventType, ObjectKey};

/// The manager name the simulated controllers write status with.
pub const MANAGER: &str = "kube-controller-manager";

/// Which simulated controller handles a key, if any.
fn handles(key: &ObjectKey) -> bool {
    matches!(
        (key.group.as_str(), key.resource.as_str()),
        ("apps", "deployments" | "statefulsets" | "daemonsets")
            | ("batch", "jobs")
            | ("", "persistentvolumeclaims")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
    )
}

/// Runs until `shutdown` changes.
pub async fn run(
    cluster: Arc<Cluster>,
    config: ControllerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events = cluster.subscribe();
    // (key -> generation) already scheduled, so our own status writes do not reschedule.
    let mut scheduled: HashMap<ObjectKey, i64> = HashMap::new();
    // Objects that existed before the controller subscribed.
    for key in cluster.keys().into_iter().filter(handles) {
        schedule(&cluster, &config, &shutdown, &mut scheduled, &key);
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Ok(event) => {
                    // Endpoints follow Services and the readiness of Deployments.
                    endpoints_follow(&cluster, &event);
                    on_event(&cluster, &config, &shutdown, &mut scheduled, &event);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: look at everything again.
                    scheduled.clear();
                    for key in cluster.keys().into_iter().filter(handles) {
                        schedule(&cluster, &config, &shutdown, &mut scheduled, &key);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Endpoints follow a Service's changes and the readiness of the Deployments it selects.
fn endpoints_follow(cluster: &Cluster, event: &ChangeEvent) {
    use crate::endpoints::{Changed, sync};
    let key = &event.key;
    match (key.group.as_str(), key.resource.as_str()) {
        ("", "services") => sync(cluster, &key.namespace, Changed::Service(&key.name)),
        ("apps", "deployments") => {
            // The object as changed (for a deletion, its last state): its pods' labels.
            let labels = event
                .object
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object);
            if let Some(labels) = labels {
                sync(cluster, &key.namespace, Changed::Pods(labels));
            }
        }
        _ => {}
    }
}

fn on_event(
    cluster: &Arc<Cluster>,
    config: &ControllerConfig,
    shutdown: &watch::Receiver<bool>,
    scheduled: &mut HashMap<ObjectKey, i64>,
    event: &ChangeEvent,
) {
    if !handles(&event.key) {
        return;
    }
    if event.event_type == EventType::Deleted {
        scheduled.remove(&event.key);
        return;
    }
    schedule(cluster, config, shutdown, scheduled, &event.key);
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn schedule(
    cluster: &Arc<Cluster>,
    config: &ControllerConfig,
    shutdown: &watch::Receiver<bool>,
    scheduled: &mut HashMap<ObjectKey, i64>,
    key: &ObjectKey,
) {
    let Some(obj) = cluster.get_key(key) else {
        return;
    };
    let generation = generation(&obj);
    if scheduled.get(key) == Some(&generation) {
        return;
    }
    let is_crd = key.resource == "customresourcedefinitions";
    if !is_crd && !config.enabled {
        return;
    }
    // Already reconciled at this generation (e.g. found again after a lag): nothing to do.
    if !is_crd
        && obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == Some(generation)
        && key.resource != "jobs"
        && key.resource != "persistentvolumeclaims"
    {
        scheduled.insert(key.clone(), generation);
        return;
    }
    scheduled.insert(key.clone(), generation);
    let cluster = cluster.clone();
    let config = config.clone();
    let key = key.clone();
    let mut shutdown = shutdown.clone();
    tokio::spawn(async move {
        // Pending rollouts (a stuck one sleeps until its deadline) end with the server.
        tokio::select! {
            _ = reconcile(cluster, config, key, generation) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => {}
        }
    });
}

/// The object if it still exists at this generation.
fn current(cluster: &Cluster, key: &ObjectKey, generation: i64) -> Option<Value> {
    cluster
        .get_key(key)
        .filter(|obj| self::generation(obj) == generation)
}

async fn reconcile(cluster: Arc<Cluster>, config: ControllerConfig, key: ObjectKey, gen_: i64) {
    if key.resource == "customresourcedefinitions" {
        tokio::time::sleep(config.crd_established_delay).await;
        if current(&cluster, &key, gen_).is_some()
            && let Some(status) = cluster.establish_crd(&key)
        {
            cluster.write_status(&key, status, "apiextensions-apiserver");
        }
        return;
    }
    let Some(obj) = current(&cluster, &key, gen_) else {
        return;
    };
    let failing = uses_failing_image(&obj, &config.fail_image_marker);
    // Phase 1, at once: the rollout has started.
    let started = match key.resource.as_str() {
        "deployments" => deployment_status(&obj, gen_, Rollout::Progressing),
        "statefulsets" => statefulset_status(&obj, gen_, false),
        "daemonsets" => daemonset_status(&obj, gen_, config.nodes, false),
        "jobs" => job_status(&obj, None),
        "persistentvolumeclaims" => json!({"phase": "Pending"}),
        _ => return,
    };
    cluster.write_status(&key, started, MANAGER);

    // Phase 2, after the delay: ready (or, for a failing image, still not ready).
    tokio::time::sleep(config.ready_delay).await;
    let Some(obj) = current(&cluster, &key, gen_) else {
        return;
    };
    let finished = match key.resource.as_str() {
        "deployments" if failing => None,
        "deployments" => Some(deployment_status(&obj, gen_, Rollout::Complete)),
        "statefulsets" if failing => None,
        "statefulsets" => Some(statefulset_status(&obj, gen_, true)),
        "daemonsets" if failing => None,
        "daemonsets" => Some(daemonset_status(&obj, gen_, config.nodes, true)),
        "jobs" => Some(job_status(&obj, Some(!failing))),
        "persistentvolumeclaims" => Some(pvc_bound(&obj)),
        _ => None,
    };
    if let Some(status) = finished {
        cluster.write_status(&key, status, MANAGER);
        return;
    }
    if key.resource != "deployments" {
        return;
    }
    // A failing Deployment: report the deadline once it has passed since the rollout began.
    let deadline = config.progress_deadline.unwrap_or_else(|| {
        Duration::from_secs(
            obj.pointer("/spec/progressDeadlineSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(600),
        )
    });
    tokio::time::sleep(deadline.saturating_sub(config.ready_delay)).await;
    if let Some(obj) = current(&cluster, &key, gen_) {
        cluster.write_status(
            &key,
            deployment_status(&obj, gen_, Rollout::DeadlineExceeded),
            MANAGER,
        );
    }
}

fn uses_failing_image(obj: &Value, marker: &str) -> bool {
    if marker.is_empty() {
        return false;
    }
    let pod = obj
        .pointer("/spec/template/spec")
        .or_else(|| obj.pointer("/spec/jobTemplate/spec/template/spec"));
    let Some(pod) = pod else {
        return false;
    };
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod.get(*list).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .any(|image| image.contains(marker))
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    let now = clock::now_rfc3339();
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    })
}

/// Inserts counts the way the API server serializes them: zero values are omitted.
fn counts(map: &mut Map<String, Value>, fields: &[(&str, i64)]) {
    for (name, n) in fields {
        if *n != 0 {
            map.insert((*name).into(), json!(n));
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Rollout {
    Progressing,
    Complete,
    DeadlineExceeded,
}

fn deployment_status(obj: &Value, generation: i64, rollout: Rollout) -> Value {
    let n = replicas(obj);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ready = if rollout == Rollout::Complete { n } else { 0 };
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    counts(
        &mut status,
        &[
            ("replicas", n),
            ("updatedReplicas", n),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", n - ready),
        ],
    );
    let rs = format!("ReplicaSet \"{name}-{generation}\"");
    let available = if ready >= n {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let progressing = match rollout {
        Rollout::Progressing => condition(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            &format!("{rs} is progressing."),
        ),
        Rollout::Complete => condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &format!("{rs} has successfully progressed."),
        ),
        Rollout::DeadlineExceeded => condition(
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            &format!("{rs} has timed out progressing."),
        ),
    };
    status.insert("conditions".into(), json!([available, progressing]));
    Value::Object(status)
}

fn statefulset_status(obj: &Value, generation: i64, ready: bool) -> Value {
    let n = replicas(obj);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let revision = format!("{name}-{generation}");
    let previous = obj
        .pointer("/status/currentRevision")
        .and_then(Value::as_str)
        .unwrap_or(&revision)
        .to_string();
    let r = if ready { n } else { 0 };
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    counts(
        &mut status,
        &[
            ("replicas", n),
            ("readyReplicas", r),
            ("currentReplicas", r),
            ("updatedReplicas", r),
            ("availableReplicas", r),
        ],
    );
    status.insert(
        "currentRevision".into(),
        json!(if ready { &revision } else { &previous }),
    );
    status.insert("updateRevision".into(), json!(revision));
    status.insert("collisionCount".into(), json!(0));
    Value::Object(status)
}

fn daemonset_status(_obj: &Value, generation: i64, nodes: u32, ready: bool) -> Value {
    let n = i64::from(nodes);
    let r = if ready { n } else { 0 };
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    status.insert("desiredNumberScheduled".into(), json!(n));
    status.insert("currentNumberScheduled".into(), json!(n));
    status.insert("numberMisscheduled".into(), json!(0));
    status.insert("numberReady".into(), json!(r));
    counts(
        &mut status,
        &[
            ("updatedNumberScheduled", n),
            ("numberAvailable", r),
            ("numberUnavailable", n - r),
        ],
    );
    Value::Object(status)
}

/// A Job's status: running (`None`), complete (`Some(true)`) or failed (`Some(false)`).
fn job_status(obj: &Value, outcome: Option<bool>) -> Value {
    let start = obj
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(clock::now_rfc3339()));
    match outcome {
        None => json!({"startTime": start, "active": 1}),
        Some(true) => {
            let completions = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!({"startTime": start, "completionTime": clock::now_rfc3339(), "succeeded": completions,
            "conditions": [
                condition("SuccessCriteriaMet", true, "CompletionsReached", "Reached expected number of succeeded pods"),
                condition("Complete", true, "CompletionsReached", "Reached expected number of succeeded pods"),
            ]})
        }
        Some(false) => {
            let limit = obj
                .pointer("/spec/backoffLimit")
                .and_then(Value::as_i64)
                .unwrap_or(6);
            json!({"startTime": start, "failed": limit + 1,
            "conditions": [
                condition("FailureTarget", true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                condition("Failed", true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            ]})
        }
    }
}

fn pvc_bound(obj: &Value) -> Value {
    let mut status = json!({"phase": "Bound"});
    if let Some(map) = status.as_object_mut() {
        if let Some(modes) = obj.pointer("/spec/accessModes") {
            map.insert("accessModes".into(), modes.clone());
        }
        if let Some(storage) = obj.pointer("/spec/resources/requests/storage") {
            map.insert("capacity".into(), json!({"storage": storage}));
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_statuses() {
        let obj = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "template": {"spec": {
            "containers": [{"name": "app", "image": "registry/fail:1"}]}}}});
        assert!(uses_failing_image(&obj, "fail"));
        assert!(!uses_failing_image(&obj, ""));
        let done = deployment_status(&obj, 2, Rollout::Complete);
        assert_eq!(done["availableReplicas"], 3);
        assert_eq!(done["observedGeneration"], 2);
        assert_eq!(done["conditions"][0]["status"], "True");
        let stuck = deployment_status(&obj, 2, Rollout::DeadlineExceeded);
        assert!(stuck.get("readyReplicas").is_none());
        assert_eq!(stuck["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    }

    #[test]
    fn job_and_pvc_statuses() {
        let job = json!({"spec": {"completions": 2}});
        assert_eq!(
            job_status(&job, Some(true))["conditions"][1]["type"],
            "Complete"
        );
        assert_eq!(
            job_status(&job, Some(false))["conditions"][1]["type"],
            "Failed"
        );
        let pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(pvc_bound(&pvc)["capacity"]["storage"], "1Gi");
    }
}
