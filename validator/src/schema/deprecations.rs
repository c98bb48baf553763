//! apiVersions that Kubernetes deprecated and removed, from the Kubernetes deprecated API migration
//! guide (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>): what was removed in
//! which minor version and what to use instead.

/// The migration guide, for help texts.
pub(super) const GUIDE: &str = "https://kubernetes.io/docs/reference/using-api/deprecation-guide/";

/// One deprecated apiVersion of some kinds.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ApiChange {
    /// The deprecated apiVersion.
    pub api_version: &'static str,
    /// The kinds it served that moved.
    pub kinds: &'static [&'static str],
    /// The minor version that deprecated it.
    pub deprecated: u32,
    /// The first minor version that no longer serves it.
    pub removed: u32,
    /// Replacement apiVersions, best first; the first that the chosen Kubernetes version serves
    /// is suggested. Empty when nothing replaces it.
    pub replacements: &'static [&'static str],
    /// What to do when there is no replacement apiVersion, or what else changed.
    pub note: Option<&'static str>,
}

const APPS: &[&str] = &["apps/v1"];
const FLOWCONTROL_V1: &str = "flowcontrol.apiserver.k8s.io/v1";
const FLOWCONTROL_V1BETA3: &str = "flowcontrol.apiserver.k8s.io/v1beta3";
const FLOWCONTROL_V1BETA2: &str = "flowcontrol.apiserver.k8s.io/v1beta2";
const FLOWCONTROL_KINDS: &[&str] = &["FlowSchema", "PriorityLevelConfiguration"];
const PSA: &str = "PodSecurityPolicy has no replacement API: enforce pod security with Pod Security \
    Admission (`pod-security.kubernetes.io/enforce` namespace labels) or a policy engine";

const fn change(
    api_version: &'static str,
    kinds: &'static [&'static str],
    deprecated: u32,
    removed: u32,
    replacements: &'static [&'static str],
) -> ApiChange {
    ApiChange {
        api_version,
        kinds,
        deprecated,
        removed,
        replacements,
        note: None,
    }
}

/// Every deprecation the guide lists, by removal version.
pub(super) static CHANGES: &[ApiChange] = &[
    // Removed in 1.16.
    change(
        "extensions/v1beta1",
        &["DaemonSet", "Deployment", "ReplicaSet"],
        9,
        16,
        APPS,
    ),
    change(
        "extensions/v1beta1",
        &["NetworkPolicy"],
        9,
        16,
        &["networking.k8s.io/v1"],
    ),
    ApiChange {
        note: Some(PSA),
        ..change(
            "extensions/v1beta1",
            &["PodSecurityPolicy"],
            10,
            16,
            &["policy/v1beta1"],
        )
    },
    change(
        "apps/v1beta1",
        &[
            "ControllerRevision",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
        ],
        9,
        16,
        APPS,
    ),
    change(
        "apps/v1beta2",
        &[
            "ControllerRevision",
            "DaemonSet",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
        ],
        9,
        16,
        APPS,
    ),
    // Removed in 1.22.
    change(
        "admissionregistration.k8s.io/v1beta1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ],
        16,
        22,
        &["admissionregistration.k8s.io/v1"],
    ),
    change(
        "apiextensions.k8s.io/v1beta1",
        &["CustomResourceDefinition"],
        16,
        22,
        &["apiextensions.k8s.io/v1"],
    ),
    change(
        "apiregistration.k8s.io/v1beta1",
        &["APIService"],
        19,
        22,
        &["apiregistration.k8s.io/v1"],
    ),
    change(
        "authentication.k8s.io/v1beta1",
        &["TokenReview"],
        19,
        22,
        &["authentication.k8s.io/v1"],
    ),
    change(
        "authorization.k8s.io/v1beta1",
        &[
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ],
        19,
        22,
        &["authorization.k8s.io/v1"],
    ),
    change(
        "certificates.k8s.io/v1beta1",
        &["CertificateSigningRequest"],
        19,
        22,
        &["certificates.k8s.io/v1"],
    ),
    change(
        "coordination.k8s.io/v1beta1",
        &["Lease"],
        19,
        22,
        &["coordination.k8s.io/v1"],
    ),
    change(
        "extensions/v1beta1",
        &["Ingress"],
        14,
        22,
        &["networking.k8s.io/v1"],
    ),
    change(
        "networking.k8s.io/v1beta1",
        &["Ingress", "IngressClass"],
        19,
        22,
        &["networking.k8s.io/v1"],
    ),
    change(
        "rbac.authorization.k8s.io/v1beta1",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
        17,
        22,
        &["rbac.authorization.k8s.io/v1"],
    ),
    change(
        "scheduling.k8s.io/v1beta1",
        &["PriorityClass"],
        14,
        22,
        &["scheduling.k8s.io/v1"],
    ),
    change(
        "storage.k8s.io/v1beta1",
        &["CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"],
        19,
        22,
        &["storage.k8s.io/v1"],
    ),
    // Removed in 1.25.
    change("batch/v1beta1", &["CronJob"], 21, 25, &["batch/v1"]),
    change(
        "discovery.k8s.io/v1beta1",
        &["EndpointSlice"],
        21,
        25,
        &["discovery.k8s.io/v1"],
    ),
    change(
        "events.k8s.io/v1beta1",
        &["Event"],
        19,
        25,
        &["events.k8s.io/v1"],
    ),
    change(
        "autoscaling/v2beta1",
        &["HorizontalPodAutoscaler"],
        22,
        25,
        &["autoscaling/v2"],
    ),
    change(
        "policy/v1beta1",
        &["PodDisruptionBudget"],
        21,
        25,
        &["policy/v1"],
    ),
    ApiChange {
        note: Some(PSA),
        ..change("policy/v1beta1", &["PodSecurityPolicy"], 21, 25, &[])
    },
    change(
        "node.k8s.io/v1beta1",
        &["RuntimeClass"],
        20,
        25,
        &["node.k8s.io/v1"],
    ),
    // Removed in 1.26.
    change(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        FLOWCONTROL_KINDS,
        23,
        26,
        &[FLOWCONTROL_V1, FLOWCONTROL_V1BETA3, FLOWCONTROL_V1BETA2],
    ),
    change(
        "autoscaling/v2beta2",
        &["HorizontalPodAutoscaler"],
        23,
        26,
        &["autoscaling/v2"],
    ),
    // Removed in 1.27.
    change(
        "storage.k8s.io/v1beta1",
        &["CSIStorageCapacity"],
        24,
        27,
        &["storage.k8s.io/v1"],
    ),
    // Removed in 1.29.
    change(
        FLOWCONTROL_V1BETA2,
        FLOWCONTROL_KINDS,
        26,
        29,
        &[FLOWCONTROL_V1, FLOWCONTROL_V1BETA3],
    ),
    // Removed in 1.32.
    change(
        FLOWCONTROL_V1BETA3,
        FLOWCONTROL_KINDS,
        29,
        32,
        &[FLOWCONTROL_V1],
    ),
];

/// What the chosen Kubernetes version says about an apiVersion and kind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Status {
    /// Still served and not deprecated (or unknown to the guide).
    Current,
    /// Deprecated, still served.
    Deprecated(&'static ApiChange),
    /// No longer served.
    Removed(&'static ApiChange),
}

/// Looks an apiVersion and kind up for Kubernetes 1.`minor`.
pub(super) fn status(api_version: &str, kind: &str, minor: u32) -> Status {
    let found = CHANGES
        .iter()
        .find(|c| c.api_version == api_version && c.kinds.contains(&kind));
    match found {
        Some(c) if minor >= c.removed => Status::Removed(c),
        Some(c) if minor >= c.deprecated => Status::Deprecated(c),
        _ => Status::Current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_and_deprecation_follow_the_version() {
        assert!(matches!(
            status("extensions/v1beta1", "Deployment", 25),
            Status::Removed(c) if c.removed == 16
        ));
        assert!(matches!(
            status("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", 30),
            Status::Deprecated(_)
        ));
        assert!(matches!(
            status("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", 32),
            Status::Removed(_)
        ));
        assert_eq!(status("apps/v1", "Deployment", 37), Status::Current);
        assert_eq!(status("extensions/v1beta1", "Widget", 37), Status::Current);
    }

    #[test]
    fn the_table_is_consistent() {
        for c in CHANGES {
            assert!(c.deprecated < c.removed, "{}", c.api_version);
            assert!(!c.replacements.contains(&c.api_version));
            assert!(!c.replacements.is_empty() || c.note.is_some());
        }
    }
}
