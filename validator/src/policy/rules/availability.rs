//! Staying up through disruptions: `replicas-minimum`, `pdb-exists`; and who sets the replica
//! count: `hpa-replicas-conflict`.

use serde_json::Value;

use crate::object::{Object, WorkloadKind};
use crate::policy::engine::Out;
use crate::policy::index::same_namespace;
use crate::policy::labels::selects;

use super::{HPA_REPLICAS_CONFLICT, PDB_EXISTS, REPLICAS_MINIMUM, Subject};

/// Deployments and StatefulSets: the workloads whose replica count is a choice.
fn replicated<'a>(s: &Subject<'a>) -> Option<&'a Object> {
    let w = s.workload.as_ref()?;
    matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet).then_some(s.obj)
}

fn replicas(obj: &Object) -> i64 {
    obj.value
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn hpa_min(hpa: &Object) -> i64 {
    hpa.value
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// `spec.replicas` set on a workload an autoscaler in the set scales: two owners of one field.
pub(crate) fn hpa_replicas_conflict(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(obj) = replicated(s) else { return };
    if obj.value.pointer("/spec/replicas").is_none() {
        return;
    }
    let Some(hpa) = s.index.hpas_for(obj).next() else {
        return;
    };
    let kind = &obj.id.kind;
    out.report(
        HPA_REPLICAS_CONFLICT,
        obj,
        "/spec/replicas",
        format!(
            "`spec.replicas` is set, and HorizontalPodAutoscaler `{}` scales this {kind}: tally sets it only when it creates the {kind} and leaves it to the autoscaler after, so this value is ignored from then on; remove it",
            hpa.id.name
        ),
    );
}

/// Fewer than two replicas (or an autoscaler allowed to go below two).
pub(crate) fn replicas_minimum(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(obj) = replicated(s) else { return };
    let hpas: Vec<&Object> = s.index.hpas_for(obj).collect();
    if !hpas.is_empty() {
        for hpa in hpas {
            let min = hpa_min(hpa);
            if min < 2 {
                let at = if hpa.value.pointer("/spec/minReplicas").is_some() {
                    "/spec/minReplicas"
                } else {
                    "/spec"
                };
                out.report(
                    REPLICAS_MINIMUM,
                    hpa,
                    at,
                    format!(
                        "this autoscaler may scale {} `{}` down to {min} replica: it is then down whenever that pod is rescheduled; set `minReplicas: 2` or more",
                        obj.id.kind, obj.id.name
                    ),
                );
            }
        }
        return;
    }
    let n = replicas(obj);
    // Zero is a deliberate "off".
    if n == 0 || n >= 2 {
        return;
    }
    let at = if obj.value.pointer("/spec/replicas").is_some() {
        "/spec/replicas"
    } else {
        "/spec"
    };
    out.report(
        REPLICAS_MINIMUM,
        obj,
        at,
        format!(
            "one replica: this {} is down whenever its pod is rescheduled (node drain, eviction, update); run at least 2",
            obj.id.kind
        ),
    );
}

/// A Deployment or StatefulSet running two or more replicas without a PodDisruptionBudget that
/// selects its pods.
pub(crate) fn pdb_exists(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(obj) = replicated(s) else { return };
    let Some(w) = &s.workload else { return };
    let scaled_up = s.index.hpas_for(obj).any(|h| {
        h.value
            .pointer("/spec/maxReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            >= 2
    });
    if replicas(obj) < 2 && !scaled_up {
        return;
    }
    let ns = obj.id.namespace.as_deref();
    let covered = s.index.pdbs().iter().any(|pdb| {
        same_namespace(pdb.id.namespace.as_deref(), ns)
            && pdb
                .value
                .pointer("/spec/selector")
                .is_some_and(|sel| selects(sel, w.labels))
    });
    if covered {
        return;
    }
    let at = if obj.value.pointer("/spec/replicas").is_some() {
        "/spec/replicas"
    } else {
        "/metadata/name"
    };
    out.report(
        PDB_EXISTS,
        obj,
        at,
        format!(
            "no PodDisruptionBudget selects the pods of this {}; a node drain may evict all its replicas at once",
            obj.id.kind
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{at, deployment, findings_with};

    #[test]
    fn replicas() {
        let two = deployment("      containers: [{name: a, image: app:1.0.0}]\n");
        assert!(at(REPLICAS_MINIMUM, &two).is_empty());
        let one = two.replace("replicas: 2", "replicas: 1");
        assert_eq!(at(REPLICAS_MINIMUM, &one), [(7, 3)]);
        let zero = two.replace("replicas: 2", "replicas: 0");
        assert!(at(REPLICAS_MINIMUM, &zero).is_empty());
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: shop}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 1\n  maxReplicas: 5\n";
        let unset = two.replace("  replicas: 2\n", "");
        let all = findings_with(
            &PolicyConfig::default(),
            &[("d.yaml", &unset), ("h.yaml", hpa)],
        );
        let got: Vec<_> = all
            .iter()
            .filter(|f| f.rule == REPLICAS_MINIMUM)
            .map(|f| (f.file.to_string(), f.pos.line))
            .collect();
        assert_eq!(got, [("h.yaml".to_owned(), 6)]);
    }

    #[test]
    fn disruption_budgets() {
        let d = deployment("      containers: [{name: a, image: app:1.0.0}]\n");
        assert_eq!(at(PDB_EXISTS, &d), [(7, 3)]);
        let pdb = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: shop}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}\n";
        let all = findings_with(&PolicyConfig::default(), &[("d.yaml", &d), ("p.yaml", pdb)]);
        assert!(!all.iter().any(|f| f.rule == PDB_EXISTS));
        let other = pdb.replace("{app: web}", "{app: api}");
        let all = findings_with(
            &PolicyConfig::default(),
            &[("d.yaml", &d), ("p.yaml", &other)],
        );
        assert!(all.iter().any(|f| f.rule == PDB_EXISTS));
        let one = d.replace("replicas: 2", "replicas: 1");
        assert!(at(PDB_EXISTS, &one).is_empty());
    }
}
