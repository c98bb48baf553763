//! Health of a live object, per kind, as strict as kstatus.
//!
//! A workload is healthy only when its controller has seen the latest spec (observed generation)
//! and every replica is updated, ready and available; a Deployment whose rollout exceeded its
//! progress deadline has failed. Jobs are healthy when complete, PVCs when bound, CRDs when
//! established, Namespaces when active; a custom resource follows its `Ready` (and `Stalled`)
//! conditions. Any other kind is healthy once it exists. An object being deleted is progressing.

use serde_json::Value;

use crate::wave::group_of;

/// The health of one object, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Up to date and ready.
    Healthy,
    /// Not ready yet; may become healthy by itself.
    Progressing(String),
    /// Will not become healthy without a change.
    Failed(String),
}

impl Health {
    /// Whether the object is healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// Whether the object has failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Health::Failed(_))
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Progressing(r) => write!(f, "progressing: {r}"),
            Health::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

/// Whether the apply loop waits for objects of this kind before the next wave. Everything but
/// PersistentVolumeClaims: a claim of a `WaitForFirstConsumer` storage class stays pending until
/// a pod of a later wave uses it, so it is only checked once every wave is out.
pub fn gates_next_wave(api_version: &str, kind: &str) -> bool {
    !(group_of(api_version).is_empty() && kind == "PersistentVolumeClaim")
}

/// The health of a live object.
pub fn health(object: &Value) -> Health {
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Health::Progressing("being deleted".into());
    }
    let api_version = str_at(object, "/apiVersion").unwrap_or("");
    let kind = str_at(object, "/kind").unwrap_or("");
    let group = group_of(api_version);
    match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => replica_set(object),
        ("batch", "Job") => job(object),
        ("", "Pod") => pod(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Namespace") => namespace(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        _ if !crate::wave::builtin_group(group) => custom(object),
        _ => Health::Healthy,
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// `status.conditions[type]` as (status, reason, message).
fn condition<'a>(v: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            (s("status"), s("reason"), s("message"))
        })
}

/// "reason: message", or whichever of the two is there.
fn because(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "no reason given".to_owned(),
    }
}

/// Progressing unless the controller has observed the object's current generation. With
/// `required`, a missing `status.observedGeneration` counts as not observed.
fn observed(v: &Value, required: bool) -> Option<Health> {
    let generation = int_at(v, "/metadata/generation").unwrap_or(0);
    match int_at(v, "/status/observedGeneration") {
        Some(seen) if seen >= generation => None,
        Some(seen) => Some(Health::Progressing(format!(
            "the controller has seen generation {seen} of {generation}"
        ))),
        None if required => Some(Health::Progressing(
            "the controller has not reported status yet".into(),
        )),
        None => None,
    }
}

fn desired_replicas(v: &Value) -> i64 {
    int_at(v, "/spec/replicas").unwrap_or(1)
}

fn deployment(v: &Value) -> Health {
    // Generation first, as kstatus does: conditions the controller wrote for an older generation
    // (a deadline the last rollout exceeded) say nothing about the one just applied.
    if let Some(h) = observed(v, true) {
        return h;
    }
    if let Some(("False", "ProgressDeadlineExceeded", message)) = condition(v, "Progressing") {
        return Health::Failed(because("ProgressDeadlineExceeded", message));
    }
    let want = desired_replicas(v);
    let status = |f: &str| int_at(v, &format!("/status/{f}")).unwrap_or(0);
    let updated = status("updatedReplicas");
    if updated < want {
        return Health::Progressing(format!("{updated} of {want} replicas updated"));
    }
    let total = status("replicas");
    if total > updated {
        return Health::Progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    let ready = status("readyReplicas");
    if ready < want {
        return Health::Progressing(format!("{ready} of {want} replicas ready"));
    }
    let available = status("availableReplicas");
    if available < want {
        return Health::Progressing(format!("{available} of {want} replicas available"));
    }
    match condition(v, "Available") {
        Some(("True", _, _)) => Health::Healthy,
        Some((_, reason, message)) => {
            Health::Progressing(format!("not Available ({})", because(reason, message)))
        }
        None => Health::Progressing("no Available condition yet".into()),
    }
}

fn stateful_set(v: &Value) -> Health {
    if let Some(h) = observed(v, true) {
        return h;
    }
    let want = desired_replicas(v);
    let status = |f: &str| int_at(v, &format!("/status/{f}")).unwrap_or(0);
    let ready = status("readyReplicas");
    if ready < want {
        return Health::Progressing(format!("{ready} of {want} replicas ready"));
    }
    if let Some(available) = int_at(v, "/status/availableReplicas")
        && available < want
    {
        return Health::Progressing(format!("{available} of {want} replicas available"));
    }
    if str_at(v, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::Healthy;
    }
    let partition = int_at(v, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    let updated = status("updatedReplicas");
    if partition > 0 {
        let expected = (want - partition).max(0);
        return if updated < expected {
            Health::Progressing(format!(
                "{updated} of {expected} replicas above the partition updated"
            ))
        } else {
            Health::Healthy
        };
    }
    let current = str_at(v, "/status/currentRevision");
    let update = str_at(v, "/status/updateRevision");
    if current != update {
        return Health::Progressing(format!(
            "rolling out revision {} ({updated} of {want} replicas updated)",
            update.unwrap_or("?")
        ));
    }
    Health::Healthy
}

fn daemon_set(v: &Value) -> Health {
    if let Some(h) = observed(v, true) {
        return h;
    }
    let Some(desired) = int_at(v, "/status/desiredNumberScheduled") else {
        return Health::Progressing("no pods scheduled yet".into());
    };
    let status = |f: &str| int_at(v, &format!("/status/{f}")).unwrap_or(0);
    // With `OnDelete`, pods are updated only when someone deletes them: not a rollout to wait on.
    let on_delete = str_at(v, "/spec/updateStrategy/type") == Some("OnDelete");
    for (field, what) in [
        ("currentNumberScheduled", "scheduled"),
        ("updatedNumberScheduled", "updated"),
        ("numberReady", "ready"),
        ("numberAvailable", "available"),
    ] {
        if on_delete && field == "updatedNumberScheduled" {
            continue;
        }
        let n = status(field);
        if n < desired {
            return Health::Progressing(format!("{n} of {desired} pods {what}"));
        }
    }
    Health::Healthy
}

fn replica_set(v: &Value) -> Health {
    if let Some(h) = observed(v, true) {
        return h;
    }
    let want = desired_replicas(v);
    let status = |f: &str| int_at(v, &format!("/status/{f}")).unwrap_or(0);
    let ready = status("readyReplicas");
    if ready < want {
        return Health::Progressing(format!("{ready} of {want} replicas ready"));
    }
    let available = status("availableReplicas");
    if available < want {
        return Health::Progressing(format!("{available} of {want} replicas available"));
    }
    Health::Healthy
}

fn job(v: &Value) -> Health {
    if let Some(("True", reason, message)) = condition(v, "Failed") {
        return Health::Failed(because(reason, message));
    }
    if let Some(("True", _, _)) = condition(v, "Complete") {
        return Health::Healthy;
    }
    if let Some(("True", _, _)) = condition(v, "Suspended") {
        // A suspended Job waits for a person; waiting on it would only time out.
        return Health::Healthy;
    }
    let succeeded = int_at(v, "/status/succeeded").unwrap_or(0);
    let active = int_at(v, "/status/active").unwrap_or(0);
    let completions = int_at(v, "/spec/completions").unwrap_or(1);
    Health::Progressing(format!(
        "{succeeded} of {completions} completions, {active} pods active"
    ))
}

fn pod(v: &Value) -> Health {
    match str_at(v, "/status/phase") {
        Some("Succeeded") => Health::Healthy,
        Some("Failed") => Health::Failed(because(
            str_at(v, "/status/reason").unwrap_or(""),
            str_at(v, "/status/message").unwrap_or("the pod failed"),
        )),
        Some("Running") => match condition(v, "Ready") {
            Some(("True", _, _)) => Health::Healthy,
            Some((_, reason, message)) => {
                Health::Progressing(format!("not Ready ({})", because(reason, message)))
            }
            None => Health::Progressing("not Ready".into()),
        },
        Some(phase) => Health::Progressing(format!("phase {phase}")),
        None => Health::Progressing("not scheduled yet".into()),
    }
}

fn pvc(v: &Value) -> Health {
    match str_at(v, "/status/phase") {
        Some("Bound") => Health::Healthy,
        Some("Lost") => Health::Failed("the claim lost its volume".into()),
        Some(phase) => Health::Progressing(format!("phase {phase}, not Bound")),
        None => Health::Progressing("not Bound yet".into()),
    }
}

fn namespace(v: &Value) -> Health {
    match str_at(v, "/status/phase") {
        Some("Active") => Health::Healthy,
        Some("Terminating") => Health::Progressing("terminating".into()),
        Some(phase) => Health::Progressing(format!("phase {phase}, not Active")),
        None => Health::Progressing("not Active yet".into()),
    }
}

fn crd(v: &Value) -> Health {
    if let Some(("False", reason, message)) = condition(v, "NamesAccepted") {
        return Health::Failed(format!("names not accepted ({})", because(reason, message)));
    }
    match condition(v, "Established") {
        Some(("True", _, _)) => Health::Healthy,
        Some((_, reason, message)) => {
            Health::Progressing(format!("not Established ({})", because(reason, message)))
        }
        None => Health::Progressing("not Established yet".into()),
    }
}

fn custom(v: &Value) -> Health {
    if let Some(("True", reason, message)) = condition(v, "Stalled") {
        return Health::Failed(format!("Stalled ({})", because(reason, message)));
    }
    if let Some(h) = observed(v, false) {
        return h;
    }
    if let Some(("True", reason, message)) = condition(v, "Reconciling") {
        return Health::Progressing(format!("Reconciling ({})", because(reason, message)));
    }
    match condition(v, "Ready") {
        None | Some(("True", _, _)) => Health::Healthy,
        Some((_, reason, message)) => {
            Health::Progressing(format!("not Ready ({})", because(reason, message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": 3}, "status": status})
    }

    fn ready_deploy_status() -> Value {
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
               "availableReplicas": 3,
               "conditions": [{"type": "Available", "status": "True"},
                              {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
    }

    fn is_progressing(h: &Health, needle: &str) -> bool {
        matches!(h, Health::Progressing(r) if r.contains(needle))
    }

    #[test]
    fn a_deployment_is_healthy_only_when_fully_rolled_out() {
        assert_eq!(health(&deploy(ready_deploy_status())), Health::Healthy);

        let mut s = ready_deploy_status();
        s["observedGeneration"] = json!(1);
        assert!(is_progressing(
            &health(&deploy(s)),
            "seen generation 1 of 2"
        ));

        let mut s = ready_deploy_status();
        s["updatedReplicas"] = json!(1);
        assert!(is_progressing(
            &health(&deploy(s)),
            "1 of 3 replicas updated"
        ));

        let mut s = ready_deploy_status();
        s["replicas"] = json!(4);
        assert!(is_progressing(&health(&deploy(s)), "1 old replicas"));

        let mut s = ready_deploy_status();
        s["readyReplicas"] = json!(2);
        assert!(is_progressing(&health(&deploy(s)), "2 of 3 replicas ready"));

        let mut s = ready_deploy_status();
        s["availableReplicas"] = json!(0);
        assert!(is_progressing(
            &health(&deploy(s)),
            "0 of 3 replicas available"
        ));

        let mut s = ready_deploy_status();
        s["conditions"][0]["status"] = json!("False");
        s["conditions"][0]["reason"] = json!("MinimumReplicasUnavailable");
        assert!(is_progressing(
            &health(&deploy(s)),
            "MinimumReplicasUnavailable"
        ));

        assert!(is_progressing(
            &health(&deploy(json!({}))),
            "not reported status"
        ));
    }

    #[test]
    fn a_deployment_past_its_progress_deadline_has_failed() {
        let s = json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
        assert_eq!(
            health(&deploy(s)),
            Health::Failed(
                "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing.".into()
            )
        );
    }

    #[test]
    fn a_deadline_of_the_previous_generation_does_not_fail_the_new_one() {
        // Generation 2 was just applied; the controller still reports generation 1's deadline.
        let s = json!({"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
        assert!(matches!(health(&deploy(s)), Health::Progressing(_)));
    }

    #[test]
    fn an_on_delete_daemon_set_does_not_wait_for_updated_pods() {
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 2},
            "spec": {"updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3, "updatedNumberScheduled": 0, "numberReady": 3,
                "numberAvailable": 3}});
        assert_eq!(health(&ds), Health::Healthy);
    }

    #[test]
    fn replicas_default_to_one() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
            "spec": {}, "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}]}});
        assert_eq!(health(&d), Health::Healthy);
    }

    #[test]
    fn stateful_sets_wait_for_ready_replicas_and_the_update_revision() {
        let base = |status: Value, strategy: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
                   "spec": {"replicas": 2, "updateStrategy": strategy}, "status": status})
        };
        let done = json!({"observedGeneration": 1, "readyReplicas": 2, "availableReplicas": 2,
            "updatedReplicas": 2, "currentRevision": "r2", "updateRevision": "r2"});
        assert_eq!(health(&base(done.clone(), json!({}))), Health::Healthy);

        let mut rolling = done.clone();
        rolling["currentRevision"] = json!("r1");
        rolling["updatedReplicas"] = json!(1);
        assert!(is_progressing(
            &health(&base(rolling.clone(), json!({}))),
            "revision r2"
        ));
        // A partition of 1 only asks for one replica to be updated.
        let partitioned = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
        assert_eq!(health(&base(rolling.clone(), partitioned)), Health::Healthy);
        assert_eq!(
            health(&base(rolling, json!({"type": "OnDelete"}))),
            Health::Healthy
        );

        let mut unready = done;
        unready["readyReplicas"] = json!(1);
        assert!(is_progressing(
            &health(&base(unready, json!({}))),
            "1 of 2 replicas ready"
        ));
    }

    #[test]
    fn daemon_sets_wait_for_every_node() {
        let ds = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 3},
                   "status": status})
        };
        let done = json!({"observedGeneration": 3, "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberReady": 2,
            "numberAvailable": 2});
        assert_eq!(health(&ds(done.clone())), Health::Healthy);
        let mut s = done;
        s["updatedNumberScheduled"] = json!(1);
        assert!(is_progressing(&health(&ds(s)), "1 of 2 pods updated"));
        assert!(is_progressing(
            &health(&ds(json!({"observedGeneration": 3}))),
            "no pods scheduled"
        ));
    }

    #[test]
    fn jobs_complete_or_fail() {
        let job = |conditions: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"active": 1,
                   "conditions": conditions}})
        };
        assert_eq!(
            health(&job(json!([{"type": "Complete", "status": "True"}]))),
            Health::Healthy
        );
        assert_eq!(
            health(&job(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}])
            )),
            Health::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        assert!(is_progressing(
            &health(&job(json!([]))),
            "0 of 1 completions, 1 pods active"
        ));
    }

    #[test]
    fn claims_namespaces_and_crds() {
        let pvc = |phase: &str| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": phase}});
        assert_eq!(health(&pvc("Bound")), Health::Healthy);
        assert!(is_progressing(&health(&pvc("Pending")), "Pending"));
        assert!(health(&pvc("Lost")).is_failed());

        let ns = |phase: &str| json!({"apiVersion": "v1", "kind": "Namespace", "status": {"phase": phase}});
        assert_eq!(health(&ns("Active")), Health::Healthy);
        assert!(is_progressing(&health(&ns("Terminating")), "terminating"));

        let crd = |conditions: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "status": {"conditions": conditions}})
        };
        assert_eq!(
            health(&crd(json!([{"type": "Established", "status": "True"}]))),
            Health::Healthy
        );
        assert!(is_progressing(&health(&crd(json!([]))), "not Established"));
        assert!(
            health(&crd(
                json!([{"type": "NamesAccepted", "status": "False", "reason": "PluralConflict"}])
            ))
            .is_failed()
        );
    }

    #[test]
    fn custom_resources_follow_ready_and_stalled() {
        let cr = |status: Value| {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                   "metadata": {"generation": 2}, "status": status})
        };
        assert_eq!(health(&cr(json!({}))), Health::Healthy);
        assert_eq!(
            health(&cr(
                json!({"conditions": [{"type": "Ready", "status": "True"}]})
            )),
            Health::Healthy
        );
        assert!(is_progressing(
            &health(&cr(
                json!({"conditions": [{"type": "Ready", "status": "False",
                "reason": "Issuing", "message": "waiting for the issuer"}]})
            )),
            "Issuing: waiting for the issuer"
        ));
        assert!(is_progressing(
            &health(&cr(json!({"observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}]}))),
            "generation 1 of 2"
        ));
        assert!(
            health(&cr(
                json!({"conditions": [{"type": "Stalled", "status": "True"}]})
            ))
            .is_failed()
        );
    }

    #[test]
    fn other_kinds_are_healthy_when_they_exist_unless_being_deleted() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(health(&cm), Health::Healthy);
        let gone = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "deletionTimestamp": "2024-01-01T00:00:00Z"}});
        assert!(is_progressing(&health(&gone), "being deleted"));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health(&pod), Health::Healthy);
        assert!(gates_next_wave("apps/v1", "Deployment"));
        assert!(!gates_next_wave("v1", "PersistentVolumeClaim"));
    }
}
