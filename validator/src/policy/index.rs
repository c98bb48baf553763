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
use std::sync::atomic::{AtomicBool, Ordering};

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

/// A pod template somewhere in the set: its labels, all Services and PodDisruptionBudgets need.
#[derive(Debug, Clone)]
pub(crate) struct PodTemplate {
    pub labels: Option<Map<String, Value>>,
}

/// The set, indexed for cross-object rules. Build it with
/// [`PolicyEngine::index`](super::PolicyEngine::index), or one object at a time with
/// [`SetIndex::add`] (and [`SetIndex::append`] for the index of later inputs).
///
/// It owns what it keeps, so the objects it was built from may be dropped: the small objects
/// rules read whole (Namespaces, quotas, network policies, Services, claims, accounts,
/// disruption budgets, autoscalers) are kept whole; of a workload only its pod template's labels
/// and, for the first one naming a namespace, the place of that name; of anything else, names.
///
/// Per-object rules read it through its methods only: on a [`SetIndex::probe`] each method
/// (but [`SetIndex::is_namespaced`], which only CRDs in the set can change) records that the
/// rules asked about the set, so the gate knows which objects it may judge before it has seen
/// the whole set.
#[derive(Debug, Default)]
pub struct SetIndex {
    /// Set on a probe: the empty index of a set not yet read.
    probe: bool,
    /// On a probe: a per-object rule asked about the set.
    consulted: AtomicBool,
    /// Namespaces named by workloads, each with the first workload naming it (kept as far as
    /// `/metadata/namespace`: the anchor of findings about the namespace).
    pub(crate) workload_namespaces: BTreeMap<String, Object>,
    /// `Namespace` objects by name.
    pub(crate) namespace_objects: HashMap<String, Object>,
    /// ResourceQuotas by namespace (`""` for none named).
    pub(crate) quotas: HashMap<String, Vec<Object>>,
    /// NetworkPolicies by namespace (`""` for none named).
    pub(crate) network_policies: HashMap<String, Vec<Object>>,
    /// Pod templates by namespace (`None` for none named).
    pub(crate) pod_templates: HashMap<Option<String>, Vec<PodTemplate>>,
    /// Names that references can resolve to, with the namespaces they exist in.
    pub(crate) names: HashMap<RefKind, HashMap<String, Vec<Option<String>>>>,
    /// PersistentVolumeClaims by name.
    pvcs: HashMap<String, Vec<Object>>,
    /// ServiceAccount objects by name: their namespace and `automountServiceAccountToken`.
    pub(crate) service_accounts: HashMap<String, Vec<AccountEntry>>,
    /// Services by name.
    services: HashMap<String, Vec<Object>>,
    /// The selectors of Services that select pods, with the Service's namespace.
    pub(crate) service_selectors: Vec<(Option<String>, Map<String, Value>)>,
    /// PodDisruptionBudgets.
    pdbs: Vec<Object>,
    /// HorizontalPodAutoscalers by target kind, then target name.
    pub(crate) hpas: HashMap<String, HashMap<String, Vec<Object>>>,
    /// Custom resource kinds defined by CRDs in the set: group → kind → namespaced.
    pub(crate) crd_scopes: HashMap<String, HashMap<String, bool>>,
    /// Namespaces of custom resources whose operators may run pods (labels the set cannot see).
    pub(crate) operator_pods: Vec<Option<String>>,
}

/// A ServiceAccount's namespace and its `automountServiceAccountToken`.
pub(crate) type AccountEntry = (Option<String>, Option<bool>);

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

/// Appends `later`'s lists to `earlier`'s, key by key.
fn extend_lists<K: std::hash::Hash + Eq, T>(
    earlier: &mut HashMap<K, Vec<T>>,
    later: HashMap<K, Vec<T>>,
) {
    for (k, mut v) in later {
        earlier.entry(k).or_default().append(&mut v);
    }
}

impl SetIndex {
    /// An empty index that records whether per-object rules asked it anything beyond
    /// [`SetIndex::is_namespaced`]: the rules' findings about an object checked against it are
    /// final when they did not ([`SetIndex::consulted`]) and no CRD of the set defines the
    /// object's kind.
    pub fn probe() -> SetIndex {
        SetIndex {
            probe: true,
            ..SetIndex::default()
        }
    }

    /// On a probe: whether a per-object rule asked about the set.
    pub fn consulted(&self) -> bool {
        self.consulted.load(Ordering::Relaxed)
    }

    fn consult(&self) {
        if self.probe {
            self.consulted.store(true, Ordering::Relaxed);
        }
    }

    /// Whether per-object rules are known to ask about the set for `obj` (a workload, a Service,
    /// an Ingress): a first pass need not try to judge it against a [`SetIndex::probe`].
    pub fn likely_consulted_for(obj: &Object) -> bool {
        Workload::of(obj).is_some()
            || matches!(
                (obj.id.group(), obj.id.kind.as_str()),
                ("", "Service") | ("networking.k8s.io", "Ingress")
            )
    }

    /// PodDisruptionBudgets.
    pub(crate) fn pdbs(&self) -> &[Object] {
        self.consult();
        &self.pdbs
    }

    /// Services named `name`.
    pub(crate) fn services_named(&self, name: &str) -> &[Object] {
        self.consult();
        self.services.get(name).map_or(&[], Vec::as_slice)
    }

    /// PersistentVolumeClaims named `name`.
    pub(crate) fn pvcs_named(&self, name: &str) -> &[Object] {
        self.consult();
        self.pvcs.get(name).map_or(&[], Vec::as_slice)
    }

    /// Indexes a set of objects.
    pub(crate) fn build(objects: &[Object]) -> SetIndex {
        let mut ix = SetIndex::default();
        for obj in objects {
            ix.add(obj);
        }
        ix
    }

    /// Adds what the cross-object rules need to know of `obj`, which may then be dropped.
    pub fn add(&mut self, obj: &Object) {
        let ns = obj.id.namespace.as_deref();
        let name = obj.id.name.as_str();
        let group = obj.id.group();
        if let Some(w) = Workload::of(obj) {
            if let Some(ns) = ns
                && !self.workload_namespaces.contains_key(ns)
            {
                let anchor = obj.trimmed_to("/metadata/namespace");
                self.workload_namespaces.insert(ns.to_owned(), anchor);
            }
            self.pod_templates
                .entry(ns.map(str::to_owned))
                .or_default()
                .push(PodTemplate {
                    labels: w.labels.cloned(),
                });
            return;
        }
        let owned_ns = || ns.map(str::to_owned);
        let mut provide = |kind: RefKind, name: &str| {
            if !name.is_empty() {
                self.names
                    .entry(kind)
                    .or_default()
                    .entry(name.to_owned())
                    .or_default()
                    .push(ns.map(str::to_owned));
            }
        };
        match (group, obj.id.kind.as_str()) {
            ("", "Namespace") => {
                self.namespace_objects.insert(name.to_owned(), obj.clone());
            }
            ("", "ResourceQuota") => self
                .quotas
                .entry(ns.unwrap_or("").to_owned())
                .or_default()
                .push(obj.clone()),
            ("networking.k8s.io", "NetworkPolicy") => self
                .network_policies
                .entry(ns.unwrap_or("").to_owned())
                .or_default()
                .push(obj.clone()),
            ("", "ConfigMap") => provide(RefKind::ConfigMap, name),
            ("", "Secret") => provide(RefKind::Secret, name),
            ("", "PersistentVolumeClaim") => {
                provide(RefKind::PersistentVolumeClaim, name);
                self.pvcs
                    .entry(name.to_owned())
                    .or_default()
                    .push(obj.clone());
            }
            ("", "ServiceAccount") => {
                provide(RefKind::ServiceAccount, name);
                let automount = obj
                    .value
                    .get("automountServiceAccountToken")
                    .and_then(Value::as_bool);
                self.service_accounts
                    .entry(name.to_owned())
                    .or_default()
                    .push((owned_ns(), automount));
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
                self.services
                    .entry(name.to_owned())
                    .or_default()
                    .push(obj.clone());
                let selector = obj
                    .value
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty());
                let external = str_at(&obj.value, "/spec/type") == Some("ExternalName");
                if let (Some(selector), false) = (selector, external) {
                    self.service_selectors.push((owned_ns(), selector.clone()));
                }
            }
            ("policy", "PodDisruptionBudget") => self.pdbs.push(obj.clone()),
            ("autoscaling", "HorizontalPodAutoscaler") => {
                let target = obj.value.pointer("/spec/scaleTargetRef");
                let kind = target.and_then(|t| t.get("kind")).and_then(Value::as_str);
                let tname = target.and_then(|t| t.get("name")).and_then(Value::as_str);
                if let (Some(kind), Some(tname)) = (kind, tname) {
                    self.hpas
                        .entry(kind.to_owned())
                        .or_default()
                        .entry(tname.to_owned())
                        .or_default()
                        .push(obj.clone());
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let g = str_at(&obj.value, "/spec/group");
                let k = str_at(&obj.value, "/spec/names/kind");
                if let (Some(g), Some(k)) = (g, k) {
                    let namespaced = str_at(&obj.value, "/spec/scope") != Some("Cluster");
                    self.crd_scopes
                        .entry(g.to_owned())
                        .or_default()
                        .insert(k.to_owned(), namespaced);
                }
            }
            _ => {
                if builtin_scope(group, &obj.id.kind).is_none() && may_run_pods(group, &obj.id.kind)
                {
                    self.operator_pods.push(owned_ns());
                }
            }
        }
    }

    /// Adds the index of objects that come after this index's (the next input's): the result is
    /// the index of both sets, as if their objects had been added one by one in that order.
    pub fn append(&mut self, later: SetIndex) {
        for (ns, anchor) in later.workload_namespaces {
            self.workload_namespaces.entry(ns).or_insert(anchor);
        }
        // A later object of the same name replaces an earlier one, as `add` does.
        self.namespace_objects.extend(later.namespace_objects);
        extend_lists(&mut self.quotas, later.quotas);
        extend_lists(&mut self.network_policies, later.network_policies);
        extend_lists(&mut self.pod_templates, later.pod_templates);
        for (kind, names) in later.names {
            extend_lists(self.names.entry(kind).or_default(), names);
        }
        extend_lists(&mut self.pvcs, later.pvcs);
        extend_lists(&mut self.service_accounts, later.service_accounts);
        extend_lists(&mut self.services, later.services);
        self.service_selectors.extend(later.service_selectors);
        self.pdbs.extend(later.pdbs);
        for (kind, targets) in later.hpas {
            extend_lists(self.hpas.entry(kind).or_default(), targets);
        }
        for (group, kinds) in later.crd_scopes {
            self.crd_scopes.entry(group).or_default().extend(kinds);
        }
        self.operator_pods.extend(later.operator_pods);
    }

    /// Whether a custom resource that may run pods shares a namespace with `ns`.
    pub(crate) fn operator_pods_near(&self, ns: Option<&str>) -> bool {
        self.consult();
        self.operator_pods
            .iter()
            .any(|n| same_namespace(n.as_deref(), ns))
    }

    /// Whether something of `kind` named `name` exists where a pod in `ns` can see it.
    pub(crate) fn resolves(&self, kind: RefKind, ns: Option<&str>, name: &str) -> bool {
        self.consult();
        self.names
            .get(&kind)
            .and_then(|names| names.get(name))
            .is_some_and(|nss| nss.iter().any(|n| same_namespace(n.as_deref(), ns)))
    }

    /// Pod templates that may share a namespace with `ns`.
    pub(crate) fn pod_templates_near<'s>(
        &'s self,
        ns: Option<&'s str>,
    ) -> impl Iterator<Item = &'s PodTemplate> + 's {
        self.consult();
        self.pod_templates
            .iter()
            .filter(move |(n, _)| same_namespace(n.as_deref(), ns))
            .flat_map(|(_, v)| v.iter())
    }

    /// Whether a Service in the set selects pods with these labels in `ns` (a Service without
    /// a selector, or of type `ExternalName`, selects none).
    pub(crate) fn selected_by_service(
        &self,
        ns: Option<&str>,
        labels: Option<&Map<String, Value>>,
    ) -> bool {
        self.consult();
        self.service_selectors
            .iter()
            .any(|(n, selector)| same_namespace(n.as_deref(), ns) && map_selects(selector, labels))
    }

    /// The HorizontalPodAutoscalers that scale this workload.
    pub(crate) fn hpas_for<'s>(&'s self, obj: &'s Object) -> impl Iterator<Item = &'s Object> + 's {
        self.consult();
        let ns = obj.id.namespace.as_deref();
        self.hpas
            .get(&obj.id.kind)
            .and_then(|targets| targets.get(&obj.id.name))
            .into_iter()
            .flatten()
            .filter(move |h| same_namespace(h.id.namespace.as_deref(), ns))
    }

    /// `automountServiceAccountToken` of the ServiceAccount a pod in `ns` would use, when the set
    /// has it and says.
    pub(crate) fn service_account_automount(&self, ns: Option<&str>, name: &str) -> Option<bool> {
        self.consult();
        let accounts = self.service_accounts.get(name)?;
        // A namespace-exact match wins over a lenient one.
        accounts
            .iter()
            .find(|(n, _)| n.is_some() && n.as_deref() == ns)
            .or_else(|| {
                accounts
                    .iter()
                    .find(|(n, _)| same_namespace(n.as_deref(), ns))
            })
            .and_then(|(_, automount)| *automount)
    }

    /// Whether a kind is namespaced, when the set (its CRDs) or the built-in list knows.
    pub(crate) fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        if let Some(namespaced) = self.crd_scopes.get(group).and_then(|k| k.get(kind)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyEngine;
    use crate::policy::testing::objects;

    const SET: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: 'registry.example.com/web:1.0.0'}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80}]}
";

    #[test]
    fn an_index_built_in_parts_is_the_index_of_the_whole() {
        let objs = objects(&[("a.yaml", SET), ("b.yaml", SET)]);
        let engine = PolicyEngine::default();
        let whole = SetIndex::build(&objs);
        let mut parts = SetIndex::build(&objs[..2]);
        parts.append(SetIndex::build(&objs[2..]));
        let with = |ix: &SetIndex| -> Vec<_> {
            let mut f: Vec<_> = objs
                .iter()
                .flat_map(|o| engine.check_object(o, ix))
                .collect();
            f.extend(engine.check_set(ix));
            f
        };
        assert_eq!(with(&parts), with(&whole));
        // The first workload naming a namespace anchors its findings, kept to that field.
        let anchor = &whole.workload_namespaces["shop"];
        assert_eq!(&*anchor.provenance.file, "a.yaml");
        assert_eq!(
            anchor.pos("/metadata/namespace"),
            objs[0].pos("/metadata/namespace")
        );
    }

    #[test]
    fn a_probe_tells_which_objects_ask_about_the_set() {
        let objs = objects(&[("a.yaml", SET)]);
        let engine = PolicyEngine::default();
        let consulted: Vec<bool> = objs
            .iter()
            .map(|o| {
                let probe = SetIndex::probe();
                engine.check_object(o, &probe);
                probe.consulted()
            })
            .collect();
        // The Deployment and the Service ask about the set; the ConfigMap does not.
        assert_eq!(consulted, [true, false, true]);
        let likely: Vec<bool> = objs.iter().map(SetIndex::likely_consulted_for).collect();
        assert_eq!(likely, consulted);
    }
}
