//! What reports say about the layout's rules: a title and, where there is one general fix, help
//! for every rule id the layout raises. The ids are taken from the modules that raise them, so a
//! renamed rule cannot drift from its entry.
//!
//! The gate knows nothing of layouts: [`validate::validate_repo`](crate::validate::validate_repo)
//! hands these docs to the report it returns
//! ([`GateReport::rule_docs`](tally_validator::GateReport::rule_docs)), and report formats
//! (SARIF's rule descriptors) look rules up there before the gate's own catalog.

use tally_validator::RuleDoc;

use crate::{boundary, check, load, render, strategy};

/// Every rule the layout raises, as reports describe it.
pub const DOCS: &[RuleDoc] = &[
    RuleDoc::new(
        load::rules::SCHEMA,
        "A layout file that does not match its schema.",
        Some("See repo-layout/schemas/ for the kinds' fields."),
    ),
    RuleDoc::new(
        load::rules::IDENTITY,
        "A layout file of the wrong kind, named unlike its directory, empty, or missing.",
        Some(
            "Each directory under environments/, tenants/ and apps/ holds one file of its kind, named after the directory.",
        ),
    ),
    RuleDoc::new(
        check::rules::UNKNOWN_TENANT,
        "A tenant name with no tenants/<name>/tenant.yaml.",
        None,
    ),
    RuleDoc::new(
        check::rules::UNKNOWN_APP,
        "An app name with no apps/<name>/app.yaml.",
        None,
    ),
    RuleDoc::new(
        check::rules::NAMESPACE_NOT_OWNED,
        "An app targeting a namespace its tenant does not own.",
        Some("Target one of the tenant's namespaces, or add the namespace to the tenant."),
    ),
    RuleDoc::new(
        check::rules::NAMESPACE_CONFLICT,
        "A namespace claimed by two tenants.",
        Some("Every namespace belongs to exactly one tenant."),
    ),
    RuleDoc::new(
        check::rules::NOT_IN_ENVIRONMENT,
        "An app whose tenant or dependency the environment does not run.",
        None,
    ),
    RuleDoc::new(
        check::rules::DEPENDENCY_CYCLE,
        "Apps whose dependsOn loops back on itself.",
        Some("Remove one dependsOn entry of the cycle."),
    ),
    RuleDoc::new(
        render::rules::SOURCE,
        "An app source that cannot be read or rendered.",
        None,
    ),
    RuleDoc::new(
        strategy::rules::BLUE_GREEN,
        "A blueGreen app whose manifests do not fit the strategy.",
        Some(
            "Ship exactly one Deployment, and both Services (active and preview, distinct), each selecting the Deployment's pod labels.",
        ),
    ),
    RuleDoc::new(
        boundary::rules::NAMESPACE,
        "An object in a namespace its tenant does not own.",
        Some("Move the object to one of the tenant's namespaces."),
    ),
    RuleDoc::new(
        boundary::rules::CLUSTER_SCOPED,
        "A cluster-scoped kind the tenant was not granted.",
        Some(
            "Grant the kind in the tenant's allowedClusterKinds, or move the object out of the app.",
        ),
    ),
    RuleDoc::new(
        boundary::rules::CLUSTER_ADMIN,
        "A tenant's app binding cluster-admin.",
        Some("Bind a namespaced Role, or the admin ClusterRole in the tenant's namespaces."),
    ),
    RuleDoc::new(
        boundary::rules::ID_RANGE,
        "A user or group id outside the tenant's range.",
        Some(
            "Remove the id (rendering fills it from the tenant's range) or pick one inside the range.",
        ),
    ),
];

/// The layout's entry for a rule id, if it is one of the layout's rules.
pub fn describe(id: &str) -> Option<RuleDoc> {
    DOCS.iter().find(|d| d.id == id).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_validator::report::catalog;

    #[test]
    fn ids_are_unique_and_not_the_gates() {
        for (i, a) in DOCS.iter().enumerate() {
            assert!(DOCS[i + 1..].iter().all(|b| b.id != a.id), "{}", a.id);
            // A layout rule the gate also described would be shadowed in reports.
            assert_eq!(catalog::describe(a.id), None, "{}", a.id);
        }
    }
}
