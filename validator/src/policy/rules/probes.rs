//! Health checks: `liveness-probe`, `readiness-probe`, `probe-port-exposed`.
//!
//! Only pods that keep running need probes: Jobs, CronJobs and bare Pods that run to completion
//! do not, and neither do init containers (the kubelet runs them to completion first). A
//! liveness probe matters to every other container, since a worker that hangs needs restarting
//! as much as a server. A readiness probe only matters to containers that serve: ones that
//! declare ports, or whose pod a Service in the set selects. A worker without ports that no
//! Service selects is never sent traffic.

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::engine::Out;
use crate::policy::workload::{Container, ContainerList, Workload};

use super::{LIVENESS_PROBE, PROBE_PORT_EXPOSED, READINESS_PROBE, Subject};

/// Which containers of a pod that keeps running a probe rule checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// Every regular container.
    All,
    /// Regular containers that receive traffic.
    Serving,
}

fn missing_probe(
    s: &Subject<'_>,
    out: &mut Out<'_>,
    rule: &'static str,
    probe: &str,
    checked: Checked,
    why: &str,
) {
    let Some(w) = &s.workload else { return };
    if w.runs_to_completion() {
        return;
    }
    // Asked at most once, and only for a container without ports.
    let mut selected = None;
    for c in w
        .containers()
        .filter(|c| c.list == ContainerList::Containers)
    {
        if c.get(probe).is_some() {
            continue;
        }
        if checked == Checked::Serving
            && !declares_ports(&c)
            && !*selected.get_or_insert_with(|| selected_by_service(s, w))
        {
            continue;
        }
        out.report(
            rule,
            s.obj,
            &c.anchor(),
            format!("{} has no `{probe}`; {why}", c.describe()),
        );
    }
}

fn declares_ports(c: &Container<'_>) -> bool {
    c.get("ports")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty())
}

fn selected_by_service(s: &Subject<'_>, w: &Workload<'_>) -> bool {
    s.index
        .selected_by_service(s.obj.id.namespace.as_deref(), w.labels)
}

/// A container of a pod that keeps running, without a liveness probe.
pub(crate) fn liveness_probe(s: &Subject<'_>, out: &mut Out<'_>) {
    missing_probe(
        s,
        out,
        LIVENESS_PROBE,
        "livenessProbe",
        Checked::All,
        "a process that hangs without exiting is never restarted",
    );
}

/// A serving container (it declares ports, or a Service selects its pod) without a readiness
/// probe.
pub(crate) fn readiness_probe(s: &Subject<'_>, out: &mut Out<'_>) {
    missing_probe(
        s,
        out,
        READINESS_PROBE,
        "readinessProbe",
        Checked::Serving,
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
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{at, deployment, findings_with, of};

    /// Every finding of `rule` for several files, as (file, line, column).
    fn at_in(rule: &str, files: &[(&str, &str)]) -> Vec<(String, u32, u32)> {
        findings_with(&PolicyConfig::default(), files)
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| (f.file.to_string(), f.pos.line, f.pos.column))
            .collect()
    }

    #[test]
    fn missing_probes_only_in_pods_that_keep_running() {
        let d = deployment(
            "      initContainers: [{name: init, image: app:1.0.0, ports: [{containerPort: 8080}]}]
      containers:
        - name: app
          image: app:1.0.0
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
",
        );
        assert_eq!(at(LIVENESS_PROBE, &d), [(16, 11)]);
        assert!(at(READINESS_PROBE, &d).is_empty());
        let sidecar = deployment(
            "      initContainers:\n        - name: proxy\n          image: proxy:1.0.0\n          ports: [{containerPort: 15001}]\n          restartPolicy: Always\n      containers: [{name: app, image: app:1.0.0, livenessProbe: {tcpSocket: {port: 80}}, readinessProbe: {tcpSocket: {port: 80}}}]\n",
        );
        assert!(at(READINESS_PROBE, &sidecar).is_empty());
        assert!(at(LIVENESS_PROBE, &sidecar).is_empty());
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: app:1.0.0, ports: [{containerPort: 80}]}]\n";
        assert!(at(LIVENESS_PROBE, job).is_empty());
        assert!(at(READINESS_PROBE, job).is_empty());
        let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, namespace: shop}\nspec:\n  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: c, image: app:1.0.0, ports: [{containerPort: 80}]}]\n";
        assert!(at(LIVENESS_PROBE, cron).is_empty());
        assert!(at(READINESS_PROBE, cron).is_empty());
        let pod = |policy: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: shop}}\nspec:\n  restartPolicy: {policy}\n  containers:\n    - name: c\n      image: app:1.0.0\n      ports: [{{containerPort: 80}}]\n"
            )
        };
        for once in ["Never", "OnFailure"] {
            assert!(at(LIVENESS_PROBE, &pod(once)).is_empty(), "{once}");
            assert!(at(READINESS_PROBE, &pod(once)).is_empty(), "{once}");
        }
        assert_eq!(at(LIVENESS_PROBE, &pod("Always")), [(7, 7)]);
        assert_eq!(at(READINESS_PROBE, &pod("Always")), [(7, 7)]);
    }

    #[test]
    fn readiness_only_for_containers_that_serve() {
        // A worker: no ports, and no Service selects it. It still needs a liveness probe.
        let worker =
            deployment("      containers:\n        - name: app\n          image: app:1.0.0\n");
        assert!(at(READINESS_PROBE, &worker).is_empty());
        assert_eq!(at(LIVENESS_PROBE, &worker), [(15, 11)]);
        // Declared ports: it serves, whether or not a Service in the set selects it.
        let ported = deployment(
            "      containers:\n        - name: app\n          image: app:1.0.0\n          ports: [{containerPort: 8080}]\n",
        );
        assert_eq!(at(READINESS_PROBE, &ported), [(15, 11)]);
        // Selected by a Service: it serves, ports declared or not.
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n";
        assert_eq!(
            at_in(READINESS_PROBE, &[("d.yaml", &worker), ("s.yaml", svc)]),
            [("d.yaml".to_owned(), 15, 11)]
        );
        let unqualified = svc.replace(", namespace: shop", "");
        assert_eq!(
            at_in(
                READINESS_PROBE,
                &[("d.yaml", &worker), ("s.yaml", &unqualified)]
            ),
            [("d.yaml".to_owned(), 15, 11)]
        );
        // Services that do not select it.
        for other in [
            svc.replace("{app: web}", "{app: api}"),
            svc.replace("namespace: shop", "namespace: other"),
            svc.replace("  selector: {app: web}\n", ""),
            svc.replace(
                "  selector:",
                "  type: ExternalName\n  externalName: web.example.com\n  selector:",
            ),
        ] {
            assert!(
                at_in(READINESS_PROBE, &[("d.yaml", &worker), ("s.yaml", &other)]).is_empty(),
                "{other}"
            );
        }
        // In a pod no Service selects, only the containers with ports.
        let mixed = deployment(
            "      containers:
        - name: app
          image: app:1.0.0
          ports: [{containerPort: 8080}]
        - name: log-shipper
          image: shipper:1.0.0
",
        );
        assert_eq!(at(READINESS_PROBE, &mixed), [(15, 11)]);
        assert_eq!(
            at_in(READINESS_PROBE, &[("d.yaml", &mixed), ("s.yaml", svc)]).len(),
            2
        );
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
