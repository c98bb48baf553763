//! Best-practice policies: the rule catalog, the engine that runs it, its configuration and the
//! exemptions that silence a rule on purpose.
//!
//! The way through: [`PolicyConfig`] reads the `policies:` section of `tally.yaml`;
//! [`PolicyEngine::new`] turns it into per-rule settings; [`PolicyEngine::index`] makes one cheap
//! pass over the whole object set to learn what cross-object rules need (namespaces, quotas,
//! network policies, services, what references can resolve to); [`PolicyEngine::check_object`]
//! runs the per-object rules (in the gate's parallel pass, beside schema validation); and
//! [`PolicyEngine::check_set`] runs the rules that judge a namespace as a whole.
//!
//! Every rule lives in one file of [`rules`] with its tests beside it; its documentation (title,
//! rationale, remediation, references, a violation and its fix) is data in `policies/catalog.yaml`,
//! from which `docs/policies.md` is generated.
//!
//! Findings are never dropped to honour an exemption: an exempted finding keeps its place in the
//! report with [`Finding::exempted`](crate::finding::Finding::exempted) set, and does not count.

pub mod catalog;
pub mod config;
mod engine;
mod exempt;
mod index;
mod labels;
pub mod rules;
pub(crate) mod workload;

pub use catalog::{Catalog, CatalogRule};
pub use config::{PolicyConfig, PolicyConfigError};
pub use engine::PolicyEngine;
pub use index::SetIndex;

#[cfg(test)]
pub(crate) mod testing;
