//! What cross-object rules need to know about the whole set, gathered in one cheap pass before the
//! per-object rules run: which namespaces receive workloads, their quotas and network policies,
//! the pod templates Services and PodDisruptionBudgets may select (and the Services' selectors,
//! to tell which pods receive traffic), and what names a reference can resolve to.
//!
//! Namespaces: an object without `metadata.namespace` will land in whatever namespace it is
//! applied to, which the set does not say. Lookups by reference therefore treat a missing
//! namespace on either side as "could be the same" (no false alarm), while namespace guardrails
//! (quota, default-deny) are judged only for namespaces the objects name.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::object::Object;

use super::labels::map_selects;
use super::workload::Workload;

/// Kinds of object a pod spec refers to by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RefKind {
    ConfigMap,
    Secret,
    PersistentVolumeClaim,
    ServiceAccount,
}

impl RefKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RefKind::ConfigMap => "ConfigMap",
            RefKind::Secret => "Secret",
            RefKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            RefKind::ServiceAccount => "ServiceAccount",
        }
    }
}

/// A pod template somewhere in the set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodTemplate<'a> {
    pub labels: Option<&'a Map<String, Value>>,
}

/// The set, indexed for cross-object rules. Build it with
/// [`PolicyEngine::index`](super::PolicyEngine::index).
#[derive(Debug, Default)]
pub struct SetIndex<'a> {
    /// Namespaces named by workloads, each with the first workload naming it.
    pub(crate) workload_namespaces: BTreeMap<&'a str, &'a Object>,
    /// `Namespace` objects by name.
    pub(crate) namespace_objects: HashMap<&'a str, &'a Object>,
    /// ResourceQuotas by namespace (`""` for none named).
    pub(crate) quotas: HashMap<&'a str, Vec<&'a Object>>,
    /// NetworkPolicies by namespace (`""` for none named).
    pub(crate) network_policies: HashMap<&'a str, Vec<&'a Object>>,
    /// Pod templates by namespace (`None` for none named).
    pub(crate) pod_templates: HashMap<Option<&'a str>, Vec<PodTemplate<'a>>>,
    /// Names that references can resolve to, with the namespaces they exist in.
    pub(crate) names: HashMap<(RefKind, &'a str), Vec<Option<&'a str>>>,
    /// PersistentVolumeClaims by name.
    pub(crate) pvcs: HashMap<&'a str, Vec<&'a Object>>,
    /// ServiceAccount objects by name: their namespace and `automountServiceAccountToken`.
    pub(crate) service_accounts: HashMap<&'a str, Vec<AccountEntry<'a>>>,
    /// Services by name.
    pub(crate) services: HashMap<&'a str, Vec<&'a Object>>,
    /// The selectors of Services that select pods, with the Service's namespace.
    pub(crate) service_selectors: Vec<(Option<&'a str>, &'a Map<String, Value>)>,
    /// PodDisruptionBudgets.
    pub(crate) pdbs: Vec<&'a Object>,
    /// HorizontalPodAutoscalers by target (kind, name).
    pub(crate) hpas: HashMap<(&'a str, &'a str), Vec<&'a Object>>,
    /// Custom resource kinds defined by CRDs in the set: (group, kind) → namespaced.
    pub(crate) crd_scopes: HashMap<(&'a str, &'a str), bool>,
    /// Namespaces of custom resources whose operators may run pods (labels the set cannot see).
    pub(crate) operator_pods: Vec<Option<&'a str>>,
}

/// A ServiceAccount's namespace and its `automountServiceAccountToken`.
pub(crate) type AccountEntry<'a> = (Option<&'a str>, Option<bool>);

/// Whether two objects' namespaces may be the same (a missing one may be anything).
pub(crate) fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

impl<'a> SetIndex<'a> {
    /// Indexes a set of objects.
    pub(crate) fn build(objects: &'a [Object]) -> SetIndex<'a> {
        let mut ix = SetIndex::default();
        for obj in objects {
            ix.add(obj);
        }
        ix
    }

    fn add(&mut self, obj: &'a Object) {
        let ns = obj.id.namespace.as_deref();
        let name = obj.id.name.as_str();
        let group = obj.id.group();
        if let Some(w) = Workload::of(obj) {
            if let Some(ns) = ns {
                self.workload_namespaces.entry(ns).or_insert(obj);
            }
            self.pod_templates
                .entry(ns)
                .or_default()
                .push(PodTemplate { labels: w.labels });
            return;
        }
        let mut provide = |kind: RefKind, name: &'a str| {
            if !name.is_empty() {
                self.names.entry((kind, name)).or_default().push(ns);
            }
        };
        match (group, obj.id.kind.as_str()) {
            ("", "Namespace") => {
                self.namespace_objects.insert(name, obj);
            }
            ("", "ResourceQuota") => self.quotas.entry(ns.unwrap_or("")).or_default().push(obj),
            ("networking.k8s.io", "NetworkPolicy") => self
                .network_policies
                .entry(ns.unwrap_or(""))
                .or_default()
                .push(obj),
            ("", "ConfigMap") => provide(RefKind::ConfigMap, name),
            ("", "Secret") => provide(RefKind::Secret, name),
            ("", "PersistentVolumeClaim") => {
                provide(RefKind::PersistentVolumeClaim, name);
                self.pvcs.entry(name).or_default().push(obj);
            }
            ("", "ServiceAccount") => {
                provide(RefKind::ServiceAccount, name);
                let automount = obj
                    .value
                    .get("automountServiceAccountToken")
                    .and_then(Value::as_bool);
                self.service_accounts
                    .entry(name)
                    .or_default()
                    .push((ns, automount));
            }
            // Objects whose controllers create a Secret of a known name.
            ("bitnami.com", "SealedSecret") => {
                let target = str_at(&obj.value, "/spec/template/metadata/name").unwrap_or(name);
                provide(RefKind::Secret, target);
            }
            ("external-secrets.io", "ExternalSecret" | "PushSecret") => {
                let target = str_at(&obj.value, "/spec/target/name").unwrap_or(name);
                provide(RefKind::Secret, target);
            }
            ("cert-manager.io", "Certificate") => {
                if let Some(target) = str_at(&obj.value, "/spec/secretName") {
                    provide(RefKind::Secret, target);
                }
            }
            ("", "Service") => {
                self.services.entry(name).or_default().push(obj);
                let selector = obj
                    .value
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty());
                let external = str_at(&obj.value, "/spec/type") == Some("ExternalName");
                if let (Some(selector), false) = (selector, external) {
                    self.service_selectors.push((ns, selector));
                }
            }
            ("policy", "PodDisruptionBudget") => self.pdbs.push(obj),
            ("autoscaling", "HorizontalPodAutoscaler") => {
                let target = obj.value.pointer("/spec/scaleTargetRef");
                let kind = target.and_then(|t| t.get("kind")).and_then(Value::as_str);
                let tname = target.and_then(|t| t.get("name")).and_then(Value::as_str);
                if let (Some(kind), Some(tname)) = (kind, tname) {
                    self.hpas.entry((kind, tname)).or_default().push(obj);
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let g = str_at(&obj.value, "/spec/group");
                let k = str_at(&obj.value, "/spec/names/kind");
                if let (Some(g), Some(k)) = (g, k) {
                    let namespaced = str_at(&obj.value, "/spec/scope") != Some("Cluster");
                    self.crd_scopes.insert((g, k), namespaced);
                }
            }
            _ => {
                if builtin_scope(group, &obj.id.kind).is_none() && may_run_pods(group, &obj.id.kind)
                {
                    self.operator_pods.push(ns);
                }
            }
        }
    }

    /// Whether a custom resource that may run pods shares a namespace with `ns`.
    pub(crate) fn operator_pods_near(&self, ns: Option<&str>) -> bool {
        self.operator_pods.iter().any(|n| same_namespace(*n, ns))
    }

    /// Whether something of `kind` named `name` exists where a pod in `ns` can see it.
    pub(crate) fn resolves(&self, kind: RefKind, ns: Option<&str>, name: &str) -> bool {
        self.names
            .get(&(kind, name))
            .is_some_and(|nss| nss.iter().any(|n| same_namespace(*n, ns)))
    }

    /// Pod templates that may share a namespace with `ns`.
    pub(crate) fn pod_templates_near(
        &self,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &PodTemplate<'a>> + '_ {
        self.pod_templates
            .iter()
            .filter(move |(n, _)| same_namespace(**n, ns))
            .flat_map(|(_, v)| v.iter())
    }

    /// Whether a Service in the set selects pods with these labels in `ns` (a Service without
    /// a selector, or of type `ExternalName`, selects none).
    pub(crate) fn selected_by_service(
        &self,
        ns: Option<&str>,
        labels: Option<&Map<String, Value>>,
    ) -> bool {
        self.service_selectors
            .iter()
            .any(|(n, selector)| same_namespace(*n, ns) && map_selects(selector, labels))
    }

    /// The HorizontalPodAutoscalers that scale this workload.
    pub(crate) fn hpas_for<'s>(&'s self, obj: &'s Object) -> impl Iterator<Item = &'a Object> + 's {
        let ns = obj.id.namespace.as_deref();
        self.hpas
            .get(&(obj.id.kind.as_str(), obj.id.name.as_str()))
            .into_iter()
            .flatten()
            .copied()
            .filter(move |h| same_namespace(h.id.namespace.as_deref(), ns))
    }

    /// `automountServiceAccountToken` of the ServiceAccount a pod in `ns` would use, when the set
    /// has it and says.
    pub(crate) fn service_account_automount(&self, ns: Option<&str>, name: &str) -> Option<bool> {
        let accounts = self.service_accounts.get(name)?;
        // A namespace-exact match wins over a lenient one.
        accounts
            .iter()
            .find(|(n, _)| n.is_some() && *n == ns)
            .or_else(|| accounts.iter().find(|(n, _)| same_namespace(*n, ns)))
            .and_then(|(_, automount)| *automount)
    }

    /// Whether a kind is namespaced, when the set (its CRDs) or the built-in list knows.
    pub(crate) fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        if let Some(namespaced) = self.crd_scopes.get(&(group, kind)) {
            return Some(*namespaced);
        }
        builtin_scope(group, kind)
    }
}

/// Whether a custom resource may make its operator run pods. Configuration-only kinds of
/// well-known projects do not; anything unknown may.
fn may_run_pods(group: &str, kind: &str) -> bool {
    const CONFIG_GROUPS: &[&str] = &[
        "cert-manager.io",
        "acme.cert-manager.io",
        "external-secrets.io",
        "generators.external-secrets.io",
        "bitnami.com",
        "networking.istio.io",
        "security.istio.io",
        "telemetry.istio.io",
        "gateway.networking.k8s.io",
        "traefik.io",
        "traefik.containo.us",
        "policy.linkerd.io",
        "kyverno.io",
        "autoscaling.k8s.io",
        "snapshot.storage.k8s.io",
        "cilium.io",
        "crd.projectcalico.org",
        "secrets-store.csi.x-k8s.io",
    ];
    const CONFIG_KINDS: &[(&str, &str)] = &[
        ("monitoring.coreos.com", "ServiceMonitor"),
        ("monitoring.coreos.com", "PodMonitor"),
        ("monitoring.coreos.com", "PrometheusRule"),
        ("monitoring.coreos.com", "Probe"),
        ("monitoring.coreos.com", "AlertmanagerConfig"),
        ("monitoring.coreos.com", "ScrapeConfig"),
        ("keda.sh", "ScaledObject"),
        ("keda.sh", "TriggerAuthentication"),
        ("argoproj.io", "Application"),
        ("argoproj.io", "ApplicationSet"),
        ("argoproj.io", "AppProject"),
        ("argoproj.io", "AnalysisTemplate"),
    ];
    !(CONFIG_GROUPS.contains(&group) || CONFIG_KINDS.contains(&(group, kind)))
}

/// Whether a built-in kind is namespaced (`None` for kinds this list does not know).
pub(crate) fn builtin_scope(group: &str, kind: &str) -> Option<bool> {
    const CLUSTER: &[(&str, &str)] = &[
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
        ),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
        ),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        (
            "admissionregistration.k8s.io",
            "MutatingAdmissionPolicyBinding",
        ),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("authentication.k8s.io", "TokenReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ];
    const BUILTIN_GROUPS: &[&str] = &[
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "certificates.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "resource.k8s.io",
        "extensions",
        "authentication.k8s.io",
        "authorization.k8s.io",
    ];
    if CLUSTER.contains(&(group, kind)) {
        Some(false)
    } else if BUILTIN_GROUPS.contains(&group) {
        Some(true)
    } else {
        None
    }
}
