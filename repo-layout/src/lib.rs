//! tally-layout: the model of a tally repo (`tally.yaml`, environments, tenants, apps), loading and
//! checking it, rendering an environment to objects, and generating tenant guardrails.
//!
//! It knows nothing of clusters: it turns a directory into the objects the gate checks and the
//! engine applies. The way through: [`load`] reads and schema-checks the layout files, [`check`]
//! resolves their cross-references, [`render`] turns an environment into objects (with
//! [`guardrails`], [`overrides`] and the tenant [`boundary`]), [`emit`] prints them as YAML.
//! [`validate`] judges a whole repo with the gate; [`rules`] documents the layout's rules for the
//! reports it returns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boundary;
pub mod check;
pub mod emit;
pub mod guardrails;
pub mod init;
pub mod load;
pub mod model;
pub mod overrides;
pub mod render;
pub mod rules;
pub mod strategy;
pub mod validate;

pub use tally_validator as validator;

#[cfg(test)]
mod tests {
    /// Every rule the layout raises is documented for reports (SARIF rule descriptors).
    #[test]
    fn every_layout_rule_is_described_for_reports() {
        let ids = [
            crate::load::rules::SCHEMA,
            crate::load::rules::IDENTITY,
            crate::check::rules::UNKNOWN_TENANT,
            crate::check::rules::UNKNOWN_APP,
            crate::check::rules::NAMESPACE_NOT_OWNED,
            crate::check::rules::NAMESPACE_CONFLICT,
            crate::check::rules::NOT_IN_ENVIRONMENT,
            crate::check::rules::DEPENDENCY_CYCLE,
            crate::render::rules::SOURCE,
            crate::boundary::rules::NAMESPACE,
            crate::boundary::rules::CLUSTER_SCOPED,
            crate::boundary::rules::CLUSTER_ADMIN,
            crate::boundary::rules::ID_RANGE,
        ];
        for id in ids {
            assert!(
                crate::rules::describe(id).is_some(),
                "{id} has no entry in repo-layout/src/rules.rs"
            );
        }
    }
}
