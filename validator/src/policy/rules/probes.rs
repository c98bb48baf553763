//! Health checks: `liveness-probe`, `readiness-probe`, `probe-port-exposed`.
//!
//! Only serving pods need probes: Jobs, CronJobs and bare Pods that run to completion do not,
//! and neither do init containers (the kubelet runs them to completion first).

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::engine::Out;
use crate::policy::workload::{Container, ContainerList};

use super::{LIVENESS_PROBE, PROBE_PORT_EXPOSED, READINESS_PROBE, Subject};

fn missing_probe(s: &Subject<'_>, out: &mut Out<'_>, rule: &'static str, probe: &str, why: &str) {
    let Some(w) = &s.workload else { return };
    if w.runs_to_completion() {
        return;
    }
    for c in w
        .containers()
        .filter(|c| c.list == ContainerList::Containers)
    {
        if c.get(probe).is_none() {
            out.report(
                rule,
                s.obj,
                &c.anchor(),
                format!("{} has no `{probe}`; {why}", c.describe()),
            );
        }
    }
}

/// A serving container without a liveness probe.
pub(crate) fn liveness_probe(s: &Subject<'_>, out: &mut Out<'_>) {
    missing_probe(
        s,
        out,
        LIVENESS_PROBE,
        "livenessProbe",
        "a process that hangs without exiting is never restarted",
    );
}

/// A serving container without a readiness probe.
pub(crate) fn readiness_probe(s: &Subject<'_>, out: &mut Out<'_>) {
    missing_probe(
        s,
        out,
        READINESS_PROBE,
        "readinessProbe",
        "it receives traffic before it can answer and during rollouts before it is ready",
    );
}

/// A probe aimed at a port the container does not declare: a named port that does not exist
/// (error: the probe can never succeed) or a number missing from the ports it lists (warning).
pub(crate) fn probe_port_exposed(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w
        .containers()
        .filter(|c| c.list == ContainerList::Containers || c.is_sidecar())
    {
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            for handler in ["httpGet", "tcpSocket", "grpc"] {
                let Some(port) = c
                    .get(probe)
                    .and_then(|p| p.get(handler))
                    .and_then(|h| h.get("port"))
                else {
                    continue;
                };
                check_port(s, out, &c, probe, handler, port);
            }
        }
    }
}

fn check_port(
    s: &Subject<'_>,
    out: &mut Out<'_>,
    c: &Container<'_>,
    probe: &str,
    handler: &str,
    port: &Value,
) {
    let ports: Vec<&Value> = c
        .get("ports")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let at = c.ptr(&format!("/{probe}/{handler}/port"));
    match port {
        Value::String(name)
            if !ports
                .iter()
                .any(|p| p.get("name").and_then(Value::as_str) == Some(name)) =>
        {
            out.report(
                PROBE_PORT_EXPOSED,
                s.obj,
                &at,
                format!(
                    "`{probe}` uses port `{name}`, but {} declares no port of that name: the probe can never succeed",
                    c.describe()
                ),
            );
        }
        Value::Number(n) => {
            let Some(n) = n.as_i64() else { return };
            // Declaring ports is informational to the kubelet: only a list that misses the probe's
            // port is suspicious.
            if ports.is_empty()
                || ports
                    .iter()
                    .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(n))
            {
                return;
            }
            out.report_as(
                PROBE_PORT_EXPOSED,
                Severity::Warning,
                s.obj,
                &at,
                format!(
                    "`{probe}` checks port {n}, which is not among the ports {} declares; is it the right port?",
                    c.describe()
                ),
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn missing_probes_only_for_serving_containers() {
        let d = deployment(
            "      initContainers: [{name: init, image: app:1.0.0}]
      containers:
        - name: app
          image: app:1.0.0
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
",
        );
        assert_eq!(at(LIVENESS_PROBE, &d), [(16, 11)]);
        assert!(at(READINESS_PROBE, &d).is_empty());
        let none =
            deployment("      containers:\n        - name: app\n          image: app:1.0.0\n");
        assert_eq!(at(READINESS_PROBE, &none), [(15, 11)]);
        let sidecar = deployment(
            "      initContainers:\n        - name: proxy\n          image: proxy:1.0.0\n          restartPolicy: Always\n      containers: [{name: app, image: app:1.0.0, livenessProbe: {tcpSocket: {port: 80}}, readinessProbe: {tcpSocket: {port: 80}}}]\n",
        );
        assert!(at(READINESS_PROBE, &sidecar).is_empty());
        assert!(at(LIVENESS_PROBE, &sidecar).is_empty());
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: app:1.0.0}]\n";
        assert!(at(LIVENESS_PROBE, job).is_empty());
        assert!(at(READINESS_PROBE, job).is_empty());
    }

    #[test]
    fn probe_ports() {
        let d = deployment(
            "      containers:
        - name: app
          image: app:1.0.0
          ports: [{name: http, containerPort: 8080}]
          livenessProbe: {httpGet: {path: /live, port: health}}
          readinessProbe: {tcpSocket: {port: 9090}}
          startupProbe: {httpGet: {path: /live, port: http}}
",
        );
        let f = of(PROBE_PORT_EXPOSED, &d);
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.pos.line, f.pos.column, f.severity))
            .collect();
        assert_eq!(
            got,
            [(18, 50, Severity::Error), (19, 40, Severity::Warning)]
        );
        let undeclared = deployment(
            "      containers:\n        - name: app\n          image: app:1.0.0\n          livenessProbe: {tcpSocket: {port: 9090}}\n",
        );
        assert!(at(PROBE_PORT_EXPOSED, &undeclared).is_empty());
    }
}
