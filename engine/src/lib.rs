//! tally-engine: keeps a cluster equal to an environment of a tally repo.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod cluster;
pub mod diff;
pub mod fields;
pub mod health;
pub mod inventory;
pub mod plan;
pub mod wave;

pub use tally_layout as layout;

pub use apply::{ApplyOptions, ApplyReport, Outcome, apply};
pub use cluster::{Cluster, ClusterError, KubeCluster, KubeOptions, MemoryCluster, Retrying};
pub use plan::{Desired, Plan, PlanOptions, plan};

/// Why planning failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A call to the cluster failed (after retries, when the cluster retries).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The inventory could not be read.
    #[error(transparent)]
    Inventory(#[from] inventory::InventoryError),
    /// Objects of kinds the cluster does not serve, whose CRDs are not in the plan either.
    #[error("the cluster does not serve these kinds (is their CRD installed?): {}", .0.join(", "))]
    UnknownKinds(Vec<String>),
}
