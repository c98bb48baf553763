//! `container-resources`: every container says what it needs (cpu and memory requests) and the
//! most memory it may take (a memory limit).

use serde_json::Value;

use crate::policy::engine::Out;

use super::{CONTAINER_RESOURCES, Subject};

/// Containers and init containers without cpu and memory requests or a memory limit. A limit
/// alone counts as a request (the API server copies it), and pod-level `resources` cover every
/// container. Ephemeral containers cannot have resources and are not checked.
pub(crate) fn container_resources(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let pod = w.get("resources");
    let has = |r: Option<&Value>, kind: &str, what: &str| {
        r.and_then(|r| r.get(kind))
            .and_then(|k| k.get(what))
            .is_some_and(|v| !v.is_null())
    };
    for c in w.regular_and_init() {
        let r = c.get("resources");
        let request = |what| {
            has(r, "requests", what)
                || has(r, "limits", what)
                || has(pod, "requests", what)
                || has(pod, "limits", what)
        };
        let mut missing = Vec::new();
        if !request("cpu") {
            missing.push("cpu request");
        }
        if !request("memory") {
            missing.push("memory request");
        }
        if !has(r, "limits", "memory") && !has(pod, "limits", "memory") {
            missing.push("memory limit");
        }
        if missing.is_empty() {
            continue;
        }
        let at = if r.is_some() {
            c.ptr("/resources")
        } else {
            c.anchor()
        };
        out.report(
            CONTAINER_RESOURCES,
            s.obj,
            &at,
            format!(
                "{} sets no {}; without requests the scheduler cannot place it well and a namespace quota rejects it, without a memory limit it can starve its node",
                c.describe(),
                join(&missing)
            ),
        );
    }
}

fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn missing_requests_and_limits() {
        let d = deployment(
            "      initContainers:
        - name: migrate
          image: app:1.0.0
      containers:
        - name: app
          image: app:1.0.0
          resources:
            requests: {cpu: 100m}
        - name: ok
          image: app:1.0.0
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 64Mi}
        - name: limits-only
          image: app:1.0.0
          resources:
            limits: {cpu: 200m, memory: 64Mi}
      ephemeralContainers:
        - name: debug
          image: busybox:1.36
",
        );
        assert_eq!(at(CONTAINER_RESOURCES, &d), [(15, 11), (20, 11)]);
        let f = of(CONTAINER_RESOURCES, &d);
        assert!(
            f[0].message
                .contains("sets no cpu request, memory request or memory limit")
        );
        assert!(
            f[1].message
                .contains("sets no memory request or memory limit")
        );
    }

    #[test]
    fn pod_level_resources_cover_containers() {
        let d = deployment(
            "      resources:
        requests: {cpu: 500m, memory: 256Mi}
        limits: {memory: 256Mi}
      containers: [{name: a, image: app:1.0.0}, {name: b, image: app:1.0.0}]
",
        );
        assert!(at(CONTAINER_RESOURCES, &d).is_empty());
    }
}
