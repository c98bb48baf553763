//! The apply order: which objects go out together, and which must be healthy first.
//!
//! Objects are sorted into [`Phase`]s: CRDs and Namespaces first (nothing else can be created
//! before them), then tenant guardrails (quotas and network policies must exist before a tenant's
//! workloads do), then built-in kinds in dependency order (identities and config before the
//! workloads that mount them, workloads before what routes to or scales them), then custom
//! resources (their CRDs and controllers are up by then). Each non-empty phase is one [`Wave`].
//!
//! Inside a wave, objects are grouped by app ([`Group`]), apps in `dependsOn` order. A group lists
//! the apps it [`needs`](Group::needs): the apply loop waits for those apps' objects in the wave
//! to be healthy before the group goes out, so an app never starts before its dependencies are up.
//! The order is stable: objects keep the order the render gave them within their group.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The label that marks a generated tenant guardrail.
pub const GUARDRAIL_LABEL: &str = "tally.dev/guardrail";

/// A step of the apply order. The derive order is the apply order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// CustomResourceDefinitions and Namespaces.
    Foundation,
    /// Tenant guardrails (objects labelled `tally.dev/guardrail: "true"`).
    Guardrails,
    /// ServiceAccounts.
    ServiceAccounts,
    /// Roles, ClusterRoles and their bindings.
    Rbac,
    /// ConfigMaps.
    ConfigMaps,
    /// Secrets.
    Secrets,
    /// StorageClasses, PersistentVolumes and PersistentVolumeClaims.
    Storage,
    /// Services.
    Services,
    /// Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Pods.
    Workloads,
    /// Ingresses (and IngressClasses).
    Ingress,
    /// HorizontalPodAutoscalers.
    Autoscaling,
    /// PodDisruptionBudgets.
    Disruption,
    /// Every other built-in kind.
    OtherBuiltin,
    /// Custom resources (kinds of groups that are not Kubernetes' own).
    CustomResources,
}

impl Phase {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Foundation => "CRDs and Namespaces",
            Phase::Guardrails => "tenant guardrails",
            Phase::ServiceAccounts => "ServiceAccounts",
            Phase::Rbac => "RBAC",
            Phase::ConfigMaps => "ConfigMaps",
            Phase::Secrets => "Secrets",
            Phase::Storage => "storage",
            Phase::Services => "Services",
            Phase::Workloads => "workloads",
            Phase::Ingress => "Ingress",
            Phase::Autoscaling => "autoscaling",
            Phase::Disruption => "disruption budgets",
            Phase::OtherBuiltin => "other built-in kinds",
            Phase::CustomResources => "custom resources",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an API group is Kubernetes' own (the core group, `apps`, `batch`, `*.k8s.io`, ...).
/// The same rule the layout uses to decide scopes.
pub fn builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// The group part of an `apiVersion` (`""` for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The phase of an object from its `apiVersion`, `kind` and labels.
pub fn phase(api_version: &str, kind: &str, labels: Option<&Map<String, Value>>) -> Phase {
    let group = group_of(api_version);
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => {
            return Phase::Foundation;
        }
        _ => {}
    }
    let guardrail = labels
        .and_then(|l| l.get(GUARDRAIL_LABEL))
        .and_then(Value::as_str)
        == Some("true");
    if guardrail {
        return Phase::Guardrails;
    }
    if !builtin_group(group) {
        return Phase::CustomResources;
    }
    match (group, kind) {
        ("", "ServiceAccount") => Phase::ServiceAccounts,
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => Phase::Rbac,
        ("", "ConfigMap") => Phase::ConfigMaps,
        ("", "Secret") => Phase::Secrets,
        ("", "PersistentVolumeClaim" | "PersistentVolume") | ("storage.k8s.io", "StorageClass") => {
            Phase::Storage
        }
        ("", "Service") => Phase::Services,
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod" | "ReplicationController") => Phase::Workloads,
        ("networking.k8s.io", "Ingress" | "IngressClass") => Phase::Ingress,
        ("autoscaling", "HorizontalPodAutoscaler") => Phase::Autoscaling,
        ("policy", "PodDisruptionBudget") => Phase::Disruption,
        _ => Phase::OtherBuiltin,
    }
}

/// The phase of an object given as JSON.
pub fn phase_of(object: &Value) -> Phase {
    let s = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
    phase(
        s("apiVersion"),
        s("kind"),
        object
            .pointer("/metadata/labels")
            .and_then(Value::as_object),
    )
}

/// One app's objects in one wave.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<T> {
    /// The app (`tally.dev/app`), or `None` for objects of no app (guardrails).
    pub app: Option<String>,
    /// Apps whose objects in this wave come before this group and must be healthy first.
    pub needs: Vec<String>,
    /// The objects, in render order.
    pub items: Vec<T>,
}

/// The objects of one phase, grouped by app in `dependsOn` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Wave<T> {
    /// Which phase.
    pub phase: Phase,
    /// The groups, in apply order.
    pub groups: Vec<Group<T>>,
}

impl<T> Wave<T> {
    /// Every object of the wave, in apply order.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.groups.iter().flat_map(|g| g.items.iter())
    }

    /// How many objects the wave holds.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.items.len()).sum()
    }

    /// Whether the wave holds no object.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.items.is_empty())
    }
}

/// Where an object goes: its phase and its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    /// The object's phase.
    pub phase: Phase,
    /// The object's app, if any.
    pub app: Option<&'a str>,
}

/// Sorts `items` into waves. `place` tells each item's phase and app; `depends_on` maps an app to
/// the apps it depends on. Apps keep the order in which they first appear (the render's
/// `dependsOn` order), except that an app is moved after any dependency that came later; a
/// dependency cycle (which the gate rejects) keeps the given order.
pub fn plan_waves<T>(
    items: Vec<T>,
    place: impl Fn(&T) -> Placement<'_>,
    depends_on: &BTreeMap<String, Vec<String>>,
) -> Vec<Wave<T>> {
    // Apps in first-appearance order, then fixed so dependencies come first.
    let mut apps: Vec<String> = Vec::new();
    for item in &items {
        if let Some(app) = place(item).app
            && !apps.iter().any(|a| a == app)
        {
            apps.push(app.to_owned());
        }
    }
    let apps = dependency_order(apps, depends_on);
    let rank = |app: Option<&str>| -> usize {
        match app {
            None => 0,
            Some(a) => 1 + apps.iter().position(|x| x == a).unwrap_or(apps.len()),
        }
    };

    let mut keyed: Vec<(Phase, usize, String, T)> = items
        .into_iter()
        .map(|item| {
            let p = place(&item);
            let app = p.app.map(str::to_owned).unwrap_or_default();
            (p.phase, rank(p.app), app, item)
        })
        .collect();
    // A stable sort keeps the render order inside each (phase, app).
    keyed.sort_by_key(|(phase, rank, _, _)| (*phase, *rank));

    let mut waves: Vec<Wave<T>> = Vec::new();
    for (phase, rank, app, item) in keyed {
        let app = (rank > 0).then_some(app);
        let wave = match waves.last_mut() {
            Some(w) if w.phase == phase => w,
            _ => {
                waves.push(Wave {
                    phase,
                    groups: Vec::new(),
                });
                match waves.last_mut() {
                    Some(w) => w,
                    None => continue,
                }
            }
        };
        match wave.groups.last_mut() {
            Some(g) if g.app == app => g.items.push(item),
            _ => {
                let needs = match &app {
                    Some(a) => depends_on
                        .get(a)
                        .into_iter()
                        .flatten()
                        .filter(|d| wave.groups.iter().any(|g| g.app.as_deref() == Some(d)))
                        .cloned()
                        .collect(),
                    None => Vec::new(),
                };
                wave.groups.push(Group {
                    app,
                    needs,
                    items: vec![item],
                });
            }
        }
    }
    waves
}

/// Orders apps so that each comes after its dependencies, otherwise keeping the given order.
fn dependency_order(apps: Vec<String>, depends_on: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut placed: Vec<String> = Vec::with_capacity(apps.len());
    let mut remaining = apps;
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut i = 0;
        while i < remaining.len() {
            let ready = depends_on.get(&remaining[i]).is_none_or(|deps| {
                deps.iter()
                    .all(|d| placed.contains(d) || !remaining.contains(d))
            });
            if ready {
                placed.push(remaining.remove(i));
                // Restart so earlier apps keep precedence over later ones.
                i = 0;
            } else {
                i += 1;
            }
        }
        if remaining.len() == before {
            // A cycle: keep the given order for what is left.
            placed.append(&mut remaining);
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(api: &str, kind: &str, app: Option<&str>) -> Value {
        let mut labels = Map::new();
        if let Some(a) = app {
            labels.insert("tally.dev/app".into(), json!(a));
        }
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": kind.to_lowercase(), "labels": labels}})
    }

    fn place(v: &Value) -> Placement<'_> {
        Placement {
            phase: phase_of(v),
            app: v
                .pointer("/metadata/labels/tally.dev~1app")
                .and_then(Value::as_str),
        }
    }

    fn kinds<T>(waves: &[Wave<T>], f: impl Fn(&T) -> String) -> Vec<(Phase, Vec<String>)> {
        waves
            .iter()
            .map(|w| (w.phase, w.items().map(&f).collect()))
            .collect()
    }

    #[test]
    fn phases_follow_the_kind_order() {
        let cases = [
            (
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                Phase::Foundation,
            ),
            ("v1", "Namespace", Phase::Foundation),
            ("v1", "ServiceAccount", Phase::ServiceAccounts),
            (
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                Phase::Rbac,
            ),
            ("v1", "ConfigMap", Phase::ConfigMaps),
            ("v1", "Secret", Phase::Secrets),
            ("v1", "PersistentVolumeClaim", Phase::Storage),
            ("v1", "Service", Phase::Services),
            ("apps/v1", "StatefulSet", Phase::Workloads),
            ("batch/v1", "CronJob", Phase::Workloads),
            ("v1", "Pod", Phase::Workloads),
            ("networking.k8s.io/v1", "Ingress", Phase::Ingress),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                Phase::Autoscaling,
            ),
            ("policy/v1", "PodDisruptionBudget", Phase::Disruption),
            ("networking.k8s.io/v1", "NetworkPolicy", Phase::OtherBuiltin),
            ("scheduling.k8s.io/v1", "PriorityClass", Phase::OtherBuiltin),
            ("cert-manager.io/v1", "Certificate", Phase::CustomResources),
            // A custom kind named like a built-in one is still custom.
            ("example.com/v1", "Deployment", Phase::CustomResources),
        ];
        for (api, kind, want) in cases {
            assert_eq!(phase(api, kind, None), want, "{api} {kind}");
        }
    }

    #[test]
    fn guardrails_come_after_namespaces_and_before_apps() {
        let mut labels = Map::new();
        labels.insert(GUARDRAIL_LABEL.into(), json!("true"));
        assert_eq!(phase("v1", "Namespace", Some(&labels)), Phase::Foundation);
        assert_eq!(
            phase("v1", "ResourceQuota", Some(&labels)),
            Phase::Guardrails
        );
        assert_eq!(
            phase("networking.k8s.io/v1", "NetworkPolicy", Some(&labels)),
            Phase::Guardrails
        );
        labels.insert(GUARDRAIL_LABEL.into(), json!("false"));
        assert_eq!(
            phase("v1", "ResourceQuota", Some(&labels)),
            Phase::OtherBuiltin
        );
    }

    #[test]
    fn waves_sort_by_phase_and_keep_render_order_within() {
        let items = vec![
            obj("apps/v1", "Deployment", Some("web")),
            obj("v1", "ConfigMap", Some("web")),
            obj("example.com/v1", "Widget", Some("web")),
            obj("v1", "Namespace", None),
            obj("v1", "Service", Some("web")),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                Some("web"),
            ),
        ];
        let waves = plan_waves(items, place, &BTreeMap::new());
        let got = kinds(&waves, |v| v["kind"].as_str().unwrap_or("").to_owned());
        assert_eq!(
            got,
            vec![
                (
                    Phase::Foundation,
                    vec!["Namespace".into(), "CustomResourceDefinition".into()]
                ),
                (Phase::ConfigMaps, vec!["ConfigMap".into()]),
                (Phase::Services, vec!["Service".into()]),
                (Phase::Workloads, vec!["Deployment".into()]),
                (Phase::CustomResources, vec!["Widget".into()]),
            ]
        );
    }

    #[test]
    fn apps_in_a_wave_follow_depends_on_and_name_what_they_need() {
        let items = vec![
            obj("apps/v1", "Deployment", Some("db")),
            obj("apps/v1", "Deployment", Some("api")),
            obj("apps/v1", "Deployment", Some("web")),
            obj("v1", "ConfigMap", Some("web")),
        ];
        let deps = BTreeMap::from([
            ("api".to_owned(), vec!["db".to_owned()]),
            ("web".to_owned(), vec!["api".to_owned(), "cache".to_owned()]),
        ]);
        let waves = plan_waves(items, place, &deps);
        let workloads = &waves[1];
        assert_eq!(workloads.phase, Phase::Workloads);
        let groups: Vec<(Option<&str>, Vec<&str>)> = workloads
            .groups
            .iter()
            .map(|g| {
                (
                    g.app.as_deref(),
                    g.needs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                (Some("db"), vec![]),
                (Some("api"), vec!["db"]),
                // `cache` has nothing in this wave, so there is nothing to wait for.
                (Some("web"), vec!["api"]),
            ]
        );
        // In the ConfigMap wave, web's dependencies have no objects: it needs nothing.
        assert!(waves[0].groups[0].needs.is_empty());
    }

    #[test]
    fn a_dependency_listed_late_is_moved_first_and_cycles_keep_order() {
        let deps = BTreeMap::from([("web".to_owned(), vec!["db".to_owned()])]);
        let order = dependency_order(vec!["web".into(), "db".into(), "x".into()], &deps);
        assert_eq!(order, vec!["db", "web", "x"]);
        let cycle = BTreeMap::from([
            ("a".to_owned(), vec!["b".to_owned()]),
            ("b".to_owned(), vec!["a".to_owned()]),
        ]);
        let order = dependency_order(vec!["a".into(), "b".into(), "c".into()], &cycle);
        assert_eq!(order, vec!["c", "a", "b"]);
    }

    #[test]
    fn objects_of_no_app_go_before_apps() {
        let items = vec![
            obj("v1", "ConfigMap", Some("web")),
            obj("v1", "ConfigMap", None),
        ];
        let waves = plan_waves(items, place, &BTreeMap::new());
        let apps: Vec<Option<&str>> = waves[0].groups.iter().map(|g| g.app.as_deref()).collect();
        assert_eq!(apps, vec![None, Some("web")]);
        assert_eq!(waves[0].len(), 2);
        assert!(!waves[0].is_empty());
    }
}
