//! The repo model: the kinds users write under `tally.dev/v1alpha1`, as typed Rust.
//!
//! These types are deserialised only after the file passed its JSON schema (in `schemas/`), so
//! a person sees schema findings at their lines, never a serde message without one.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use tally_validator::gate::InputLimits;
use tally_validator::yaml::YamlLimits;

/// A Kubernetes quantity written as a string (`500m`, `8Gi`) or a plain number (`4`).
fn quantity<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a quantity, found {other}"
        ))),
    }
}

/// An optional quantity (see [`quantity`]).
fn opt_quantity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    quantity(d).map(Some)
}

/// The API version of every layout file.
pub const API_VERSION: &str = "tally.dev/v1alpha1";

/// `tally.yaml`: repo-wide defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoSpec {
    /// The Kubernetes version (`X.Y`) to validate against unless an environment says otherwise.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// What gating one environment may read.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// `spec.limits` of `tally.yaml`: the gate's input limits for this repo. Each unset one keeps
/// the default; `tally validate` flags override them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Largest file or tool output read, in bytes.
    #[serde(default, deserialize_with = "opt_size")]
    pub max_file_size: Option<u64>,
    /// Most bytes read for one environment.
    #[serde(default, deserialize_with = "opt_size")]
    pub max_input_size: Option<u64>,
    /// Most documents read from one file.
    #[serde(default)]
    pub max_documents: Option<usize>,
    /// Deepest nesting read.
    #[serde(default)]
    pub max_depth: Option<usize>,
}

impl LimitsSpec {
    /// `base` with the limits this spec sets.
    pub fn over(&self, base: InputLimits) -> InputLimits {
        InputLimits {
            max_file_bytes: self.max_file_size.unwrap_or(base.max_file_bytes),
            max_total_bytes: self.max_input_size.unwrap_or(base.max_total_bytes),
            yaml: YamlLimits {
                max_documents: self.max_documents.unwrap_or(base.yaml.max_documents),
                max_depth: self
                    .max_depth
                    .unwrap_or(base.yaml.max_depth)
                    .min(tally_validator::yaml::DEPTH_CEILING),
            },
        }
    }
}

/// A size written as bytes (`1048576`) or with a suffix (`64Mi`, `2G`).
fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a size, found {n}"))),
        serde_json::Value::String(s) => tally_validator::size::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!(
            "expected a size, found {other}"
        ))),
    }
}

/// `environments/<env>/environment.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The cluster this environment targets.
    #[serde(default)]
    pub cluster: Cluster,
    /// Overrides the repo's Kubernetes version for this environment.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// Tenants that run here.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Apps that run here, with their overrides.
    #[serde(default)]
    pub apps: Vec<AppInstance>,
}

/// Where an environment's cluster is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// A kubeconfig context name.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the in-cluster service account.
    #[serde(default)]
    pub in_cluster: bool,
}

/// One app in an environment, with what the environment changes about it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInstance {
    /// The app's name (a directory under `apps/`).
    pub name: String,
    /// Image tags by container name.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// Replicas for every workload of the app that has them.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Labels added to every object of the app.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// JSON merge patches (RFC 7386) for anything else.
    #[serde(default)]
    pub patches: Vec<Patch>,
}

/// A JSON merge patch applied to the objects it targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// Which objects.
    pub target: PatchTarget,
    /// The merge patch.
    pub patch: serde_json::Value,
}

/// Selects objects by kind and name (both optional; absent means any).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchTarget {
    /// The kind, e.g. `Deployment`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The object's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `tenants/<tenant>/tenant.yaml`: a team's namespaces and the guardrails around them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// The namespaces the tenant owns.
    pub namespaces: Vec<String>,
    /// The ResourceQuota for each namespace.
    #[serde(default)]
    pub quota: Quota,
    /// Default container requests and limits (a LimitRange).
    #[serde(default)]
    pub limits: Limits,
    /// Network allowances on top of default-deny.
    #[serde(default)]
    pub network: Network,
    /// The UID/GID range the tenant's pods run within.
    #[serde(default)]
    pub ids: Option<IdRanges>,
    /// Groups and their role in the tenant's namespaces.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Cluster-scoped kinds the tenant's apps may create (none by default).
    #[serde(default)]
    pub allowed_cluster_kinds: Vec<String>,
    /// Pod Security Admission level enforced on the namespaces.
    #[serde(default)]
    pub pod_security: PodSecurity,
}

/// Quota numbers; absent ones are not limited.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Total CPU requests (a quantity).
    #[serde(default = "Quota::default_cpu", deserialize_with = "quantity")]
    pub cpu: String,
    /// Total memory requests and limits (a quantity).
    #[serde(default = "Quota::default_memory", deserialize_with = "quantity")]
    pub memory: String,
    /// Pods.
    #[serde(default)]
    pub pods: Option<u32>,
    /// Services.
    #[serde(default)]
    pub services: Option<u32>,
    /// PersistentVolumeClaims.
    #[serde(default)]
    pub persistent_volume_claims: Option<u32>,
    /// Total storage requests (a quantity).
    #[serde(default, deserialize_with = "opt_quantity")]
    pub storage: Option<String>,
}

impl Quota {
    fn default_cpu() -> String {
        "4".into()
    }
    fn default_memory() -> String {
        "8Gi".into()
    }
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            cpu: Quota::default_cpu(),
            memory: Quota::default_memory(),
            pods: Some(50),
            services: None,
            persistent_volume_claims: None,
            storage: None,
        }
    }
}

/// Container defaults for a LimitRange.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Requests given to containers that set none.
    #[serde(default = "Limits::default_request")]
    pub default_request: Resources,
    /// Limits given to containers that set none.
    #[serde(default = "Limits::default_limit")]
    pub default: Resources,
}

impl Limits {
    fn default_request() -> Resources {
        Resources {
            cpu: Some("100m".into()),
            memory: Some("128Mi".into()),
        }
    }
    fn default_limit() -> Resources {
        Resources {
            cpu: None,
            memory: Some("256Mi".into()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_request: Limits::default_request(),
            default: Limits::default_limit(),
        }
    }
}

/// A cpu/memory pair.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU quantity.
    #[serde(default, deserialize_with = "opt_quantity")]
    pub cpu: Option<String>,
    /// Memory quantity.
    #[serde(default, deserialize_with = "opt_quantity")]
    pub memory: Option<String>,
}

/// Network allowances on top of the default-deny policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Egress to the cluster DNS (kube-system/kube-dns, port 53).
    #[serde(default = "yes")]
    pub allow_dns: bool,
    /// Traffic between the tenant's own namespaces.
    #[serde(default = "yes")]
    pub allow_same_tenant: bool,
    /// Ingress from the ingress controller's namespace.
    #[serde(default)]
    pub ingress_controller_namespace: Option<String>,
    /// Explicit egress destinations.
    #[serde(default)]
    pub egress: Vec<Egress>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            allow_dns: true,
            allow_same_tenant: true,
            ingress_controller_namespace: None,
            egress: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// One allowed egress destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Egress {
    /// Destination CIDR, e.g. `10.20.0.0/16`.
    pub cidr: String,
    /// Destination ports (any when empty).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default = "Egress::default_protocol")]
    pub protocol: String,
}

impl Egress {
    fn default_protocol() -> String {
        "TCP".into()
    }
}

/// UID and GID ranges, inclusive.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdRanges {
    /// User ids.
    pub uid: IdRange,
    /// Group ids (also used for fsGroup).
    pub gid: IdRange,
}

/// An inclusive id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct IdRange {
    /// First id.
    pub min: u32,
    /// Last id.
    pub max: u32,
}

impl IdRange {
    /// Whether `id` is inside the range.
    pub fn contains(&self, id: i64) -> bool {
        id >= i64::from(self.min) && id <= i64::from(self.max)
    }
}

/// A group of people and their role in the tenant's namespaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// The group name as the cluster's authenticator reports it.
    pub name: String,
    /// The role.
    pub role: Role,
}

/// Namespace roles, bound to Kubernetes' built-in aggregated ClusterRoles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the namespace, including RBAC.
    Admin,
    /// Read and write workloads and config, no RBAC.
    Edit,
    /// Read only, no Secrets.
    View,
}

impl Role {
    /// The built-in ClusterRole this role binds.
    pub fn cluster_role(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Edit => "edit",
            Role::View => "view",
        }
    }
}

/// Pod Security Admission level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurity {
    /// The strictest level (the default).
    #[default]
    Restricted,
    /// Known privilege escalations blocked.
    Baseline,
    /// Unrestricted (needs a reason in review).
    Privileged,
}

impl PodSecurity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurity::Restricted => "restricted",
            PodSecurity::Baseline => "baseline",
            PodSecurity::Privileged => "privileged",
        }
    }
}

/// `apps/<app>/app.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// The owning tenant.
    pub tenant: String,
    /// The namespace the app's namespaced objects go to (one of the tenant's).
    pub namespace: String,
    /// Where the manifests come from.
    pub source: Source,
    /// How new versions roll out.
    #[serde(default)]
    pub strategy: Strategy,
    /// Apps that must be healthy before this one is applied.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Delete and create again an object whose immutable fields change.
    #[serde(default)]
    pub recreate: bool,
    /// Fields tally sets when it creates an object and leaves to others after.
    #[serde(default)]
    pub ignore_fields: Vec<IgnoreFields>,
}

/// Fields of some of an app's objects that tally leaves to others once they exist.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreFields {
    /// Only objects of this kind (all when absent).
    #[serde(default)]
    pub kind: Option<String>,
    /// Only the object of this name (all when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// JSON pointers, e.g. `/spec/replicas`.
    pub pointers: Vec<String>,
}

/// An app's manifests.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A directory of plain manifests, relative to the app's directory.
    Manifests(String),
    /// A kustomization directory, rendered with `kustomize build`.
    Kustomize(String),
    /// A Helm chart, rendered with `helm template`.
    Helm(HelmSource),
}

/// A Helm chart source.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// The chart directory, relative to the app's directory.
    pub chart: String,
    /// Values files, relative to the app's directory.
    #[serde(default)]
    pub values_files: Vec<String>,
}

/// How an app's new versions roll out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Strategy {
    /// The workloads' own rolling update.
    #[default]
    Rolling,
    /// Two colored Deployments and a Service switch.
    BlueGreen(BlueGreen),
}

/// Blue/green settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreen {
    /// The Service whose selector switches between colors.
    pub service: String,
    /// The Service that always points at the new color, for checks before the switch.
    #[serde(default)]
    pub preview_service: Option<String>,
    /// Seconds to keep the old color up after a switch.
    #[serde(default = "BlueGreen::default_scale_down")]
    pub scale_down_delay_seconds: u32,
    /// An HTTP check of the new colour, through the preview Service, before switching.
    #[serde(default)]
    pub smoke_test: Option<SmokeTest>,
    /// Switch as soon as the new colour is healthy and its smoke test passed.
    #[serde(default = "BlueGreen::default_auto_promote")]
    pub auto_promote: bool,
    /// Replicas of the new colour before the switch (default: the Deployment's).
    #[serde(default)]
    pub preview_replicas: Option<u32>,
    /// Seconds after a switch during which the active Service's ready endpoints are watched.
    #[serde(default = "BlueGreen::default_post_promotion")]
    pub post_promotion_seconds: u32,
}

impl BlueGreen {
    fn default_scale_down() -> u32 {
        300
    }

    fn default_auto_promote() -> bool {
        true
    }

    fn default_post_promotion() -> u32 {
        30
    }
}

/// An HTTP GET sent through the API server's Service proxy to the preview Service.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeTest {
    /// The path, e.g. `/ready`.
    pub path: String,
    /// The preview Service's port, by number or name.
    pub port: PortRef,
    /// The status that passes.
    #[serde(default = "SmokeTest::default_status")]
    pub expected_status: u16,
    /// Tries before the test fails.
    #[serde(default = "SmokeTest::default_attempts")]
    pub attempts: u32,
}

impl SmokeTest {
    fn default_status() -> u16 {
        200
    }

    fn default_attempts() -> u32 {
        3
    }
}

/// A Service port, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    /// `port: 80`.
    Number(u16),
    /// `port: http`.
    Name(String),
}
