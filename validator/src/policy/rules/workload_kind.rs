//! Choosing the right workload kind: `no-bare-pod`, `job-ttl`, `stateful-workload-kind`.

use serde_json::Value;

use crate::finding::Severity;
use crate::object::{Object, WorkloadKind};
use crate::policy::engine::Out;
use crate::policy::index::same_namespace;
use crate::policy::workload::ContainerList;

use super::{JOB_TTL, NO_BARE_POD, STATEFUL_WORKLOAD_KIND, Subject};

/// Annotations that make an object a deploy-time hook run by a tool, not a long-lived object.
const HOOK_ANNOTATIONS: [&str; 2] = ["helm.sh/hook", "argocd.argoproj.io/hook"];

fn is_hook(obj: &Object) -> bool {
    HOOK_ANNOTATIONS.iter().any(|a| obj.annotation(a).is_some())
}

fn is_owned(obj: &Object) -> bool {
    obj.value
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty())
}

/// A top-level Pod (error) or ReplicaSet (warning): nothing recreates it when its node goes.
pub(crate) fn no_bare_pod(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let obj = s.obj;
    if is_owned(obj) {
        return;
    }
    match w.kind {
        WorkloadKind::Pod if !is_hook(obj) => out.report(
            NO_BARE_POD,
            obj,
            "/kind",
            "a bare Pod is not recreated when its node fails or is drained; run it from a Deployment, StatefulSet, DaemonSet or Job",
        ),
        WorkloadKind::ReplicaSet => out.report_as(
            NO_BARE_POD,
            Severity::Warning,
            obj,
            "/kind",
            "a bare ReplicaSet cannot roll out a change; use a Deployment, which manages ReplicaSets for you",
        ),
        _ => {}
    }
}

/// A top-level Job without `ttlSecondsAfterFinished`: finished pods pile up forever.
pub(crate) fn job_ttl(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let obj = s.obj;
    if w.kind != WorkloadKind::Job || is_owned(obj) {
        return;
    }
    // Tools that delete their hooks themselves already clean up.
    let deleted_by_tool = [
        "helm.sh/hook-delete-policy",
        "argocd.argoproj.io/hook-delete-policy",
    ]
    .iter()
    .any(|a| obj.annotation(a).is_some());
    if deleted_by_tool || obj.value.pointer("/spec/ttlSecondsAfterFinished").is_some() {
        return;
    }
    out.report(
        JOB_TTL,
        obj,
        "/spec",
        "this Job and its pods stay in the cluster after it finishes; set `spec.ttlSecondsAfterFinished`",
    );
}

/// Image names (the last path component) of databases and other data stores.
const DATA_STORES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgis",
    "pgvector",
    "timescaledb",
    "mysql",
    "mysql-server",
    "mariadb",
    "percona-server",
    "mongo",
    "mongodb",
    "mongodb-community-server",
    "cassandra",
    "scylla",
    "elasticsearch",
    "opensearch",
    "etcd",
    "zookeeper",
    "kafka",
    "rabbitmq",
    "clickhouse",
    "clickhouse-server",
    "cockroach",
    "influxdb",
    "neo4j",
    "couchdb",
    "couchbase",
    "minio",
];

/// The repository's last path component of an image reference, lowercased is not needed (image
/// names are lowercase by spec).
pub(crate) fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// A database image or a writable data volume in a Deployment (info): a StatefulSet fits better.
pub(crate) fn stateful_workload_kind(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if w.kind != WorkloadKind::Deployment {
        return;
    }
    let obj = s.obj;
    for c in w
        .containers()
        .filter(|c| c.list == ContainerList::Containers)
    {
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        let name = image_name(image);
        if DATA_STORES.contains(&name) {
            out.report(
                STATEFUL_WORKLOAD_KIND,
                obj,
                &c.ptr("/image"),
                format!(
                    "`{image}` is a data store; a StatefulSet gives each replica a stable identity and its own volume, and stops the old pod before starting a new one"
                ),
            );
            return;
        }
    }
    let ns = obj.id.namespace.as_deref();
    for (i, v) in w.volumes() {
        let Some(claim) = v.get("persistentVolumeClaim") else {
            continue;
        };
        if claim.get("readOnly").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(claim_name) = claim.get("claimName").and_then(Value::as_str) else {
            continue;
        };
        // A claim the set shows to be shareable (ReadWriteMany, ReadOnlyMany) suits a Deployment.
        let shareable = s
            .index
            .pvcs_named(claim_name)
            .iter()
            .filter(|p| same_namespace(p.id.namespace.as_deref(), ns))
            .any(|p| {
                p.value
                    .pointer("/spec/accessModes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany")
            });
        if shareable {
            continue;
        }
        out.report(
            STATEFUL_WORKLOAD_KIND,
            obj,
            &w.ptr(&format!("/volumes/{i}/persistentVolumeClaim")),
            format!(
                "this Deployment writes to PersistentVolumeClaim `{claim_name}`; during a rollout the new pod waits for the old one to release a ReadWriteOnce volume, and replicas cannot each have their own. Use a StatefulSet with volumeClaimTemplates, or a ReadWriteMany claim"
            ),
        );
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn bare_pods_and_replicasets() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: c, image: nginx:1.27}]\n";
        assert_eq!(at(NO_BARE_POD, pod), [(2, 1)]);
        let hook = pod.replace(
            "metadata: {name: p, namespace: shop}",
            "metadata: {name: p, namespace: shop, annotations: {helm.sh/hook: test}}",
        );
        assert!(at(NO_BARE_POD, &hook).is_empty());
        let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r, namespace: shop}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: nginx:1.27}]\n";
        let f = of(NO_BARE_POD, rs);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].pos.line, f[0].severity), (2, Severity::Warning));
        assert!(
            at(
                NO_BARE_POD,
                &deployment("      containers: [{name: c, image: nginx:1.27}]\n")
            )
            .is_empty()
        );
    }

    #[test]
    fn jobs_without_ttl() {
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox:1.36}]\n";
        assert_eq!(at(JOB_TTL, job), [(4, 1)]);
        let ok = job.replace(
            "spec:\n  template:",
            "spec:\n  ttlSecondsAfterFinished: 600\n  template:",
        );
        assert!(at(JOB_TTL, &ok).is_empty());
        let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j, namespace: shop}\nspec:\n  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: busybox:1.36}]\n";
        assert!(at(JOB_TTL, cron).is_empty());
    }

    #[test]
    fn databases_and_data_volumes_in_deployments() {
        let db = deployment(
            "      containers:\n        - name: db\n          image: docker.io/library/postgres:16.4\n",
        );
        assert_eq!(at(STATEFUL_WORKLOAD_KIND, &db), [(16, 11)]);
        let exporter = deployment(
            "      containers:\n        - name: m\n          image: prometheuscommunity/postgres-exporter:v0.15.0\n",
        );
        assert!(at(STATEFUL_WORKLOAD_KIND, &exporter).is_empty());
        let pvc = deployment(
            "      containers: [{name: c, image: grafana/grafana:11.2.0}]\n      volumes:\n        - name: data\n          persistentVolumeClaim:\n            claimName: grafana\n",
        );
        assert_eq!(at(STATEFUL_WORKLOAD_KIND, &pvc), [(17, 11)]);
        let rwx = format!(
            "{pvc}---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: grafana, namespace: shop}}\nspec:\n  accessModes: [ReadWriteMany]\n  resources: {{requests: {{storage: 1Gi}}}}\n"
        );
        assert!(at(STATEFUL_WORKLOAD_KIND, &rwx).is_empty());
        assert_eq!(image_name("ghcr.io/x/mysql@sha256:abc"), "mysql");
        assert_eq!(image_name("localhost:5000/mongo:7"), "mongo");
    }
}
