//! The rules. Each file holds one rule or a small family, with its tests beside it; the rule's
//! documentation is its entry in `policies/catalog.yaml`.
//!
//! A rule is a plain function: per-object rules get a [`Subject`] (the object, its pod template
//! when it has one, and the whole set's index); set rules get the index. They report through the
//! engine, which applies configuration and exemptions.

use crate::object::Object;

use super::engine::Out;
use super::index::SetIndex;
use super::workload::Workload;

mod availability;
mod env;
mod guardrails;
mod host;
mod image;
mod ingress;
mod namespace;
mod placeholder;
mod probes;
mod rbac;
mod references;
mod resources;
mod secrets;
mod security_context;
mod selectors;
mod service_account;
mod workload_kind;

/// Rule ids, as findings and configuration name them.
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident = $id:literal;)*) => {
        $($(#[$doc])* pub const $name: &str = $id;)*
    };
}

ids! {
    /// A top-level Pod or ReplicaSet.
    NO_BARE_POD = "no-bare-pod";
    /// A Secret consumed through environment variables.
    SECRET_AS_VOLUME = "secret-as-volume";
    /// A namespace receiving workloads has no cpu/memory ResourceQuota.
    NAMESPACE_HAS_QUOTA = "namespace-has-quota";
    /// A container without cpu and memory requests or a memory limit.
    CONTAINER_RESOURCES = "container-resources";
    /// A namespace receiving workloads has no default-deny NetworkPolicy.
    NAMESPACE_DEFAULT_DENY = "namespace-default-deny";
    /// A privileged container.
    PRIVILEGED_CONTAINER = "privileged-container";
    /// `allowPrivilegeEscalation` not false.
    PRIVILEGE_ESCALATION = "privilege-escalation";
    /// A container that may run as root.
    RUN_AS_NON_ROOT = "run-as-non-root";
    /// hostNetwork, hostPID or hostIPC.
    HOST_NAMESPACES = "host-namespaces";
    /// A hostPath volume.
    HOST_PATH = "host-path";
    /// The container runtime's socket mounted into a pod.
    DOCKER_SOCKET = "docker-socket";
    /// Dangerous capabilities added, or NET_RAW not dropped.
    DANGEROUS_CAPABILITIES = "dangerous-capabilities";
    /// A writable root file system.
    READ_ONLY_ROOT_FS = "read-only-root-fs";
    /// No seccomp profile, or `Unconfined`.
    SECCOMP_PROFILE = "seccomp-profile";
    /// The service account token mounted without a decision.
    AUTOMOUNT_SERVICE_ACCOUNT_TOKEN = "automount-service-account-token";
    /// A pod using the namespace's default service account with its token.
    DEFAULT_SERVICE_ACCOUNT = "default-service-account";
    /// A literal credential in an environment variable.
    PLAINTEXT_CREDENTIAL_ENV = "plaintext-credential-env";
    /// Credentials in a ConfigMap.
    SECRET_IN_CONFIGMAP = "secret-in-configmap";
    /// A Secret with its data committed.
    COMMITTED_SECRET_DATA = "committed-secret-data";
    /// A binding to cluster-admin.
    CLUSTER_ADMIN_BINDING = "cluster-admin-binding";
    /// `*` in an RBAC rule.
    RBAC_WILDCARD = "rbac-wildcard";
    /// An RBAC rule that reads Secrets.
    RBAC_SECRETS_READ = "rbac-secrets-read";
    /// An Ingress host without TLS.
    INGRESS_TLS = "ingress-tls";
    /// An untagged, `:latest` or branch-tagged image.
    NO_LATEST_TAG = "no-latest-tag";
    /// A container without a liveness probe.
    LIVENESS_PROBE = "liveness-probe";
    /// A container without a readiness probe.
    READINESS_PROBE = "readiness-probe";
    /// A probe on a port the container does not declare.
    PROBE_PORT_EXPOSED = "probe-port-exposed";
    /// A workload selector that does not match its template.
    SELECTOR_MATCHES_TEMPLATE = "selector-matches-template";
    /// The same environment variable twice in one container.
    DUPLICATE_ENV = "duplicate-env";
    /// A Service whose selector matches no pod template in the set.
    SERVICE_SELECTS_PODS = "service-selects-pods";
    /// An Ingress backend Service (or port) missing from the set.
    INGRESS_BACKEND_EXISTS = "ingress-backend-exists";
    /// A ConfigMap, Secret, PVC or ServiceAccount reference that resolves to nothing in the set.
    REFERENCES_RESOLVE = "references-resolve";
    /// A namespaced object in `default`, or in no namespace.
    NO_DEFAULT_NAMESPACE = "no-default-namespace";
    /// A value that was meant to be replaced (`<ADD ... HERE>`, `changeme`).
    UNRENDERED_PLACEHOLDER = "unrendered-placeholder";
    /// A Helm chart's template syntax left in a value (`{{ .Values.x }}`).
    TEMPLATE_LEFTOVER = "template-leftover";
    /// A database image or a data volume in a Deployment.
    STATEFUL_WORKLOAD_KIND = "stateful-workload-kind";
    /// A Deployment or StatefulSet with fewer than two replicas.
    REPLICAS_MINIMUM = "replicas-minimum";
    /// A replicated workload without a PodDisruptionBudget.
    PDB_EXISTS = "pdb-exists";
    /// `spec.replicas` set on a workload an autoscaler scales.
    HPA_REPLICAS_CONFLICT = "hpa-replicas-conflict";
    /// A Job that is never cleaned up.
    JOB_TTL = "job-ttl";
    /// `tally.dev/exempt` without `tally.dev/exempt-reason`.
    EXEMPTION_MISSING_REASON = "exemption-missing-reason";
    /// `tally.dev/exempt` naming a rule that does not exist.
    EXEMPTION_UNKNOWN_RULE = "exemption-unknown-rule";
    /// A `tally.dev/ignore-fields` entry that is not a JSON pointer.
    IGNORE_FIELDS_POINTER = "ignore-fields-pointer";
    /// A problem in the policies section of tally.yaml.
    POLICY_CONFIG = "policy-config";
}

/// What a per-object rule looks at.
pub(crate) struct Subject<'a> {
    /// The object.
    pub obj: &'a Object,
    /// Its pod template, when it has one.
    pub workload: Option<Workload<'a>>,
    /// The whole set.
    pub index: &'a SetIndex,
}

/// How a rule runs.
pub(crate) enum Check {
    /// On every object, in the gate's parallel pass.
    Object(fn(&Subject<'_>, &mut Out<'_>)),
    /// Once, on the whole set.
    Set(fn(&SetIndex, &mut Out<'_>)),
    /// Raised by the engine itself (configuration, exemptions): always on, never exempted.
    Engine,
}

/// A registered rule.
pub(crate) struct RuleImpl {
    pub id: &'static str,
    pub check: Check,
}

const fn object(id: &'static str, f: fn(&Subject<'_>, &mut Out<'_>)) -> RuleImpl {
    RuleImpl {
        id,
        check: Check::Object(f),
    }
}

/// Every rule tally knows.
pub(crate) const RULES: &[RuleImpl] = &[
    object(NO_BARE_POD, workload_kind::no_bare_pod),
    object(JOB_TTL, workload_kind::job_ttl),
    object(
        STATEFUL_WORKLOAD_KIND,
        workload_kind::stateful_workload_kind,
    ),
    object(SECRET_AS_VOLUME, secrets::secret_as_volume),
    object(PLAINTEXT_CREDENTIAL_ENV, secrets::plaintext_credential_env),
    object(SECRET_IN_CONFIGMAP, secrets::secret_in_configmap),
    object(COMMITTED_SECRET_DATA, secrets::committed_secret_data),
    object(CONTAINER_RESOURCES, resources::container_resources),
    RuleImpl {
        id: NAMESPACE_HAS_QUOTA,
        check: Check::Set(guardrails::namespace_has_quota),
    },
    RuleImpl {
        id: NAMESPACE_DEFAULT_DENY,
        check: Check::Set(guardrails::namespace_default_deny),
    },
    object(PRIVILEGED_CONTAINER, security_context::privileged_container),
    object(PRIVILEGE_ESCALATION, security_context::privilege_escalation),
    object(RUN_AS_NON_ROOT, security_context::run_as_non_root),
    object(READ_ONLY_ROOT_FS, security_context::read_only_root_fs),
    object(SECCOMP_PROFILE, security_context::seccomp_profile),
    object(
        DANGEROUS_CAPABILITIES,
        security_context::dangerous_capabilities,
    ),
    object(HOST_NAMESPACES, host::host_namespaces),
    object(HOST_PATH, host::host_path),
    object(DOCKER_SOCKET, host::docker_socket),
    object(
        AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
        service_account::automount_token,
    ),
    object(
        DEFAULT_SERVICE_ACCOUNT,
        service_account::default_service_account,
    ),
    object(CLUSTER_ADMIN_BINDING, rbac::cluster_admin_binding),
    object(RBAC_WILDCARD, rbac::rbac_wildcard),
    object(RBAC_SECRETS_READ, rbac::rbac_secrets_read),
    object(INGRESS_TLS, ingress::ingress_tls),
    object(INGRESS_BACKEND_EXISTS, ingress::ingress_backend_exists),
    object(NO_LATEST_TAG, image::no_latest_tag),
    object(LIVENESS_PROBE, probes::liveness_probe),
    object(READINESS_PROBE, probes::readiness_probe),
    object(PROBE_PORT_EXPOSED, probes::probe_port_exposed),
    object(
        SELECTOR_MATCHES_TEMPLATE,
        selectors::selector_matches_template,
    ),
    object(SERVICE_SELECTS_PODS, selectors::service_selects_pods),
    object(DUPLICATE_ENV, env::duplicate_env),
    object(REFERENCES_RESOLVE, references::references_resolve),
    object(NO_DEFAULT_NAMESPACE, namespace::no_default_namespace),
    object(UNRENDERED_PLACEHOLDER, placeholder::unrendered_placeholder),
    object(TEMPLATE_LEFTOVER, placeholder::template_leftover),
    object(REPLICAS_MINIMUM, availability::replicas_minimum),
    object(PDB_EXISTS, availability::pdb_exists),
    object(HPA_REPLICAS_CONFLICT, availability::hpa_replicas_conflict),
    RuleImpl {
        id: EXEMPTION_MISSING_REASON,
        check: Check::Engine,
    },
    RuleImpl {
        id: EXEMPTION_UNKNOWN_RULE,
        check: Check::Engine,
    },
    RuleImpl {
        id: IGNORE_FIELDS_POINTER,
        check: Check::Engine,
    },
    RuleImpl {
        id: POLICY_CONFIG,
        check: Check::Engine,
    },
];

/// Every rule id.
pub fn all_ids() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.id)
}

/// Whether a rule is raised by the engine itself (and so cannot be configured or exempted).
pub fn is_engine_rule(id: &str) -> bool {
    RULES
        .iter()
        .any(|r| r.id == id && matches!(r.check, Check::Engine))
}

#[cfg(test)]
mod tests {
    use crate::policy::catalog::Catalog;
    use crate::policy::testing::findings;

    /// Every catalog example is real: the violation trips its rule, the fix does not.
    #[test]
    fn catalog_examples_are_true() {
        for rule in &Catalog::builtin().rules {
            let Some(example) = &rule.example else {
                continue;
            };
            let bad = findings(&example.violation);
            assert!(
                bad.iter()
                    .any(|f| f.rule == rule.id && f.exempted.is_none()),
                "{}: the violation example produces no finding: {:#?}",
                rule.id,
                bad
            );
            let good = findings(&example.fix);
            let left: Vec<_> = good.iter().filter(|f| f.rule == rule.id).collect();
            assert!(
                left.is_empty(),
                "{}: the fix still produces {left:#?}",
                rule.id
            );
        }
    }
}
