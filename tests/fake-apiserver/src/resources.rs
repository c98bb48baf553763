//! The resource types the server knows (built-in and from CRDs) and the discovery documents.

use serde_json::{Value, json};

/// The verbs every resource supports.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One resource type, e.g. `deployments` in `apps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Served versions, the preferred one first.
    pub versions: Vec<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Whether the type has a `/status` subresource.
    pub has_status: bool,
    /// Whether the type was registered by a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceType {
    fn builtin(group: &str, versions: &[&str], kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.to_string(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: Vec::new(),
            has_status: false,
            custom: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    fn status(mut self) -> Self {
        self.has_status = true;
        self
    }

    /// `apps/v1` or `v1` for the given version.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The preferred apiVersion.
    pub fn preferred_api_version(&self) -> String {
        self.api_version(self.versions.first().map(String::as_str).unwrap_or("v1"))
    }

    /// `deployments.apps`, or `configmaps` for the core group.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Builds the type a CustomResourceDefinition declares.
    pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
        let spec = crd.get("spec").ok_or("spec is required")?;
        let text = |pointer: &str| spec.pointer(pointer).and_then(Value::as_str);
        let group = text("/group").ok_or("spec.group is required")?;
        let kind = text("/names/kind").ok_or("spec.names.kind is required")?;
        let plural = text("/names/plural").ok_or("spec.names.plural is required")?;
        let name = crd.pointer("/metadata/name").and_then(Value::as_str);
        if name != Some(format!("{plural}.{group}").as_str()) {
            return Err(format!(
                "metadata.name must be spec.names.plural+\".\"+spec.group: {plural}.{group}"
            ));
        }
        let versions: Vec<&Value> = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let served: Vec<String> = versions
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
            .filter_map(|v| v.get("name").and_then(Value::as_str).map(String::from))
            .collect();
        if served.is_empty() {
            return Err("spec.versions must serve at least one version".into());
        }
        let has_status = versions
            .iter()
            .any(|v| v.pointer("/subresources/status").is_some());
        Ok(ResourceType {
            group: group.to_string(),
            versions: served,
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: text("/names/singular").map_or_else(|| kind.to_lowercase(), String::from),
            namespaced: text("/scope") != Some("Cluster"),
            short_names: spec
                .pointer("/names/shortNames")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            has_status,
            custom: true,
        })
    }
}

/// Every resource type the server serves.
#[derive(Clone, Debug)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in types.
    pub fn builtin() -> Self {
        use ResourceType as R;
        let core = |kind, plural, ns| R::builtin("", &["v1"], kind, plural, ns);
        let types = vec![
            core("Namespace", "namespaces", false)
                .short(&["ns"])
                .status(),
            core("ConfigMap", "configmaps", true).short(&["cm"]),
            core("Secret", "secrets", true),
            core("Service", "services", true).short(&["svc"]).status(),
            core("ServiceAccount", "serviceaccounts", true).short(&["sa"]),
            core("Pod", "pods", true).short(&["po"]).status(),
            core("PersistentVolumeClaim", "persistentvolumeclaims", true)
                .short(&["pvc"])
                .status(),
            core("PersistentVolume", "persistentvolumes", false)
                .short(&["pv"])
                .status(),
            core("ResourceQuota", "resourcequotas", true)
                .short(&["quota"])
                .status(),
            core("LimitRange", "limitranges", true).short(&["limits"]),
            core("Event", "events", true).short(&["ev"]),
            core("Endpoints", "endpoints", true).short(&["ep"]),
            core("Node", "nodes", false).short(&["no"]).status(),
            R::builtin("apps", &["v1"], "Deployment", "deployments", true)
                .short(&["deploy"])
                .status(),
            R::builtin("apps", &["v1"], "StatefulSet", "statefulsets", true)
                .short(&["sts"])
                .status(),
            R::builtin("apps", &["v1"], "DaemonSet", "daemonsets", true)
                .short(&["ds"])
                .status(),
            R::builtin("apps", &["v1"], "ReplicaSet", "replicasets", true)
                .short(&["rs"])
                .status(),
            R::builtin(
                "apps",
                &["v1"],
                "ControllerRevision",
                "controllerrevisions",
                true,
            ),
            R::builtin("batch", &["v1"], "Job", "jobs", true).status(),
            R::builtin("batch", &["v1"], "CronJob", "cronjobs", true)
                .short(&["cj"])
                .status(),
            R::builtin("networking.k8s.io", &["v1"], "Ingress", "ingresses", true)
                .short(&["ing"])
                .status(),
            R::builtin(
                "networking.k8s.io",
                &["v1"],
                "NetworkPolicy",
                "networkpolicies",
                true,
            )
            .short(&["netpol"]),
            R::builtin(
                "networking.k8s.io",
                &["v1"],
                "IngressClass",
                "ingressclasses",
                false,
            ),
            R::builtin("rbac.authorization.k8s.io", &["v1"], "Role", "roles", true),
            R::builtin(
                "rbac.authorization.k8s.io",
                &["v1"],
                "RoleBinding",
                "rolebindings",
                true,
            ),
            R::builtin(
                "rbac.authorization.k8s.io",
                &["v1"],
                "ClusterRole",
                "clusterroles",
                false,
            ),
            R::builtin(
                "rbac.authorization.k8s.io",
                &["v1"],
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
            ),
            R::builtin(
                "policy",
                &["v1"],
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
            )
            .short(&["pdb"])
            .status(),
            R::builtin(
                "autoscaling",
                &["v2", "v1"],
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            )
            .short(&["hpa"])
            .status(),
            R::builtin("coordination.k8s.io", &["v1"], "Lease", "leases", true),
            R::builtin(
                "apiextensions.k8s.io",
                &["v1"],
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )
            .short(&["crd", "crds"])
            .status(),
            R::builtin("events.k8s.io", &["v1"], "Event", "events", true).short(&["ev"]),
            R::builtin(
                "storage.k8s.io",
                &["v1"],
                "StorageClass",
                "storageclasses",
                false,
            )
            .short(&["sc"]),
            R::builtin(
                "scheduling.k8s.io",
                &["v1"],
                "PriorityClass",
                "priorityclasses",
                false,
            )
            .short(&["pc"]),
        ];
        Registry { types }
    }

    /// All types.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| {
            t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
        })
    }

    /// The type of an `apiVersion` and `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind && t.versions.iter().any(|v| v == version))
    }

    /// The type named `plural.group` (or `plural` for the core group, or a short name).
    pub fn find_group_resource(&self, name: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group_resource() == name)
            .or_else(|| {
                self.types
                    .iter()
                    .find(|t| t.plural == name || t.short_names.iter().any(|s| s == name))
            })
    }

    /// Adds or replaces a custom type. Built-in types cannot be replaced.
    pub fn register(&mut self, rt: ResourceType) -> Result<(), String> {
        if let Some(existing) = self
            .types
            .iter_mut()
            .find(|t| t.group == rt.group && t.plural == rt.plural)
        {
            if !existing.custom {
                return Err(format!("{} is a built-in resource", rt.group_resource()));
            }
            *existing = rt;
        } else {
            self.types.push(rt);
        }
        Ok(())
    }

    /// Removes a custom type.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
    }

    /// The groups and their versions, in first-seen order, the preferred version first.
    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            let idx = match groups.iter().position(|(g, _)| *g == t.group) {
                Some(i) => i,
                None => {
                    groups.push((t.group.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            for v in &t.versions {
                if !groups[idx].1.contains(v) {
                    groups[idx].1.push(v.clone());
                }
            }
        }
        groups
    }

    /// `/api`: `APIVersions`.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    /// `/apis`: `APIGroupList`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, vs)| group_json(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/{group}`: `APIGroup`, if the group exists.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        self.groups()
            .iter()
            .find(|(g, _)| g == group)
            .map(|(g, vs)| {
                let mut v = group_json(g, vs);
                if let Some(map) = v.as_object_mut() {
                    map.insert("kind".into(), json!("APIGroup"));
                    map.insert("apiVersion".into(), json!("v1"));
                }
                v
            })
    }

    /// `/api/v1` or `/apis/{group}/{version}`: `APIResourceList`, if served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let types: Vec<&ResourceType> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
            .collect();
        if types.is_empty() {
            return None;
        }
        let mut resources = Vec::new();
        for t in types {
            let mut entry = json!({
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": VERBS,
            });
            if !t.short_names.is_empty()
                && let Some(map) = entry.as_object_mut()
            {
                map.insert("shortNames".into(), json!(t.short_names));
            }
            resources.push(entry);
            if t.has_status {
                resources.push(json!({
                    "name": format!("{}/status", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_builtins_by_path_kind_and_name() {
        let r = Registry::builtin();
        let deploy = r.find("apps", "v1", "deployments").map(|t| t.kind.as_str());
        assert_eq!(deploy, Some("Deployment"));
        assert!(r.find("apps", "v2", "deployments").is_none());
        assert_eq!(
            r.find_kind("v1", "Namespace").map(|t| t.namespaced),
            Some(false)
        );
        assert_eq!(
            r.find_group_resource("deployments.apps")
                .map(|t| t.kind.as_str()),
            Some("Deployment")
        );
        assert_eq!(
            r.find_group_resource("cm").map(|t| t.kind.as_str()),
            Some("ConfigMap")
        );
        assert!(
            r.find("autoscaling", "v1", "horizontalpodautoscalers")
                .is_some()
        );
    }

    #[test]
    fn crds_register_and_cannot_shadow_builtins() {
        let mut r = Registry::builtin();
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}}}]}});
        let rt = ResourceType::from_crd(&crd).unwrap();
        assert!(rt.has_status && rt.namespaced);
        r.register(rt).unwrap();
        assert!(r.resource_list("example.com", "v1").is_some());
        assert!(r.api_group("example.com").is_some());
        let mut fake = Registry::builtin()
            .find("apps", "v1", "deployments")
            .unwrap()
            .clone();
        fake.custom = true;
        assert!(r.register(fake).is_err());
        r.unregister("example.com", "widgets");
        assert!(r.resource_list("example.com", "v1").is_none());
    }

    #[test]
    fn bad_crd_names_are_rejected() {
        let crd = json!({"metadata": {"name": "wrong"}, "spec": {"group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"}, "versions": [{"name": "v1"}]}});
        assert!(ResourceType::from_crd(&crd).is_err());
    }
}
