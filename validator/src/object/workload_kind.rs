//! The Kubernetes kinds that carry a pod template (or are a pod), and where that template lives
//! inside them. Object-level knowledge: the object model answers "where is the pod spec" with it,
//! and the policies' view of a workload (`policy::workload`) is built on it.

use crate::object::Object;

/// A kind that carries a pod template (or is a pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl WorkloadKind {
    /// The workload kind of an object, checking its API group so a custom resource that happens to
    /// be called `Deployment` is not mistaken for one.
    pub(crate) fn of(obj: &Object) -> Option<WorkloadKind> {
        WorkloadKind::from_parts(obj.id.group(), &obj.id.kind)
    }

    /// The workload kind of an API group and kind.
    pub(crate) fn from_parts(group: &str, kind: &str) -> Option<WorkloadKind> {
        Some(match (group, kind) {
            ("", "Pod") => WorkloadKind::Pod,
            ("", "ReplicationController") => WorkloadKind::ReplicationController,
            ("apps" | "extensions", "Deployment") => WorkloadKind::Deployment,
            ("apps", "StatefulSet") => WorkloadKind::StatefulSet,
            ("apps" | "extensions", "DaemonSet") => WorkloadKind::DaemonSet,
            ("apps" | "extensions", "ReplicaSet") => WorkloadKind::ReplicaSet,
            ("batch", "Job") => WorkloadKind::Job,
            ("batch", "CronJob") => WorkloadKind::CronJob,
            _ => return None,
        })
    }

    /// The keys from the object's root to the pod template (empty for a Pod).
    pub(crate) fn template_path(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &[],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// Where the pod spec and the pod metadata are.
    pub(crate) fn pointers(self) -> (&'static str, &'static str) {
        match self {
            WorkloadKind::Pod => ("/spec", "/metadata"),
            WorkloadKind::CronJob => (
                "/spec/jobTemplate/spec/template/spec",
                "/spec/jobTemplate/spec/template/metadata",
            ),
            _ => ("/spec/template/spec", "/spec/template/metadata"),
        }
    }

    /// Whether its pods run to completion rather than serve (no probes expected).
    pub(crate) fn runs_to_completion(self) -> bool {
        matches!(self, WorkloadKind::Job | WorkloadKind::CronJob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_group_aware() {
        assert_eq!(
            WorkloadKind::from_parts("apps", "Deployment"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(WorkloadKind::from_parts("example.com", "Deployment"), None);
        assert_eq!(WorkloadKind::from_parts("", "Service"), None);
    }

    #[test]
    fn pointers_follow_the_template_path() {
        use WorkloadKind::*;
        let kinds = [
            Pod,
            Deployment,
            StatefulSet,
            DaemonSet,
            ReplicaSet,
            ReplicationController,
            Job,
            CronJob,
        ];
        for kind in kinds {
            let template: String = kind
                .template_path()
                .iter()
                .map(|k| format!("/{k}"))
                .collect();
            let (spec, meta) = kind.pointers();
            assert_eq!(spec, format!("{template}/spec"), "{kind:?}");
            assert_eq!(meta, format!("{template}/metadata"), "{kind:?}");
        }
    }
}
