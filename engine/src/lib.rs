//! tally-engine: keeps a cluster equal to an environment of a tally repo.
//!
//! The engine's library, as small units with one job each (after Flux's `ssa` package):
//!
//! | module | job |
//! |---|---|
//! | [`wave`] | the apply order: [`Phase`](wave::Phase)s (CRDs and Namespaces, guardrails, kind order, custom resources), apps in `dependsOn` order within each [`Wave`](wave::Wave) |
//! | [`diff`] | desired against live on the fields tally manages: [`Change`](diff::Change) per object, a text diff with Secret values redacted |
//! | [`fields`] | reading `metadata.managedFields`: what tally's field manager owns |
//! | [`health`] | per-kind health, as strict as kstatus: [`Health`](health::Health) |
//! | [`inventory`] | what tally applied per environment (a ConfigMap), prune candidates and the prune guards |
//! | [`cluster`] | the [`Cluster`] trait; [`KubeCluster`] (kube-rs), [`Retrying`] (backoff), [`Watched`](cluster::Watched) (the daemon's watch cache), `MemoryCluster` (unit tests, feature `testing`) |
//! | [`plan`] | [`plan()`]: live state read, objects diffed, waves built, prune set guarded → [`Plan`] |
//! | [`apply`] | [`apply()`]: changed objects only, wave by wave, health waits, prune, inventory → [`ApplyReport`] |
//! | [`gate`] | [`gate_commit`](gate::gate_commit): a commit's environment loaded, rendered and judged once; only an accepted one becomes a [`Desired`] state |
//! | [`reconcile`] | one daemon round: the gate's verdict (once per commit), plan, apply or drift, the status ConfigMap and Events |
//! | [`source`] | what the daemon follows ([`Source`](source::Source)): a git branch fetched into a bare cache with its credentials ([`GitSource`](source::GitSource)), or a working tree ([`source::tree`]) |
//! | [`daemon`] | the loop ([`run`](daemon::run())) and its HTTP side: [`Metrics`](daemon::Metrics), `/healthz`, `/readyz`, `/metrics`, the GitHub push webhook ([`serve`](daemon::serve())), leader election |
//!
//! It renders and validates through [`gate`], which calls the layout and validator crates, so
//! what `tally validate` accepts is exactly what it applies. It has no CLI: that is the binary's.
//!
//! # Using it
//!
//! `tally plan` is [`plan()`] then [`Plan::text`]; `tally apply` adds [`apply()`]; a daemon
//! repeats both per commit and per interval (drift is a plan with changes for an unchanged
//! commit).
//!
//! ```
//! use tally_engine::{ApplyOptions, Desired, MemoryCluster, PlanOptions, apply, plan};
//! use serde_json::json;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! # rt.block_on(async {
//! // In production: Retrying::new(KubeCluster::connect(&KubeOptions::default()).await?, Backoff::default())
//! let cluster = MemoryCluster::new();
//! cluster.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tally-system"}}));
//!
//! // Normally `Desired::from_rendered(render(&repo, env, &[])?, &repo, commit)`, after the gate.
//! let desired = Desired {
//!     environment: "prod".into(),
//!     commit: "3f2a9c1".into(),
//!     objects: vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop",
//!         "labels": {"app.kubernetes.io/managed-by": "tally", "tally.dev/environment": "prod"}}})],
//!     depends_on: Default::default(),
//!     blue_green: Vec::new(),
//! };
//! let plan = plan(&cluster, desired, &PlanOptions::default()).await?;
//! assert_eq!(plan.text(), "+ create Namespace shop\nprod: 1 to create, 0 to update, 0 to prune, 0 unchanged\n");
//! let report = apply(&cluster, &plan, &ApplyOptions::default()).await;
//! assert!(report.is_clean());
//! # Ok::<(), tally_engine::EngineError>(())
//! # }).unwrap();
//! ```
//!
//! # Invariants
//!
//! - Only changed objects are written; a reconcile with nothing to change writes nothing.
//! - Every object about to be created is in the inventory before it is created (marked
//!   `pending`), so an apply that dies midway leaves nothing tally would not prune later.
//! - Nothing is pruned unless the apply was clean, the render was not empty, the object is in the
//!   inventory and still carries tally's labels for the environment, it is not annotated
//!   `tally.dev/prune: disabled`, and (for a Namespace or CRD) nothing it holds is someone else's.
//! - Secret values never leave [`diff`]: changes to them are reported by key only.
// One exception, in `source`: libgit2's socket timeouts are process-wide settings that git2 can only
// set through an `unsafe fn` (see `source::set_socket_timeouts`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod adopt;
pub mod apply;
pub mod bluegreen;
pub mod cluster;
pub mod confirm;
pub mod daemon;
pub mod diff;
pub mod events;
pub mod fields;
pub mod gate;
pub mod health;
pub mod ignore;
pub mod inventory;
pub mod plan;
pub mod reconcile;
pub mod review;
pub mod source;
pub mod status;
pub mod wave;

pub use tally_layout as layout;

pub use apply::{ApplyOptions, ApplyReport, Completion, apply};
#[cfg(any(test, feature = "testing"))]
pub use cluster::MemoryCluster;
pub use cluster::{Cluster, ClusterError, KubeCluster, KubeOptions, Propagation, Retrying};
pub use confirm::ServerVerdicts;
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
    /// A blue/green command that cannot be carried out (nothing to promote, no colour to roll
    /// back to).
    #[error("{0}")]
    Release(String),
    /// Objects of kinds the cluster does not serve, whose CRDs are not in the plan either.
    #[error("the cluster does not serve these kinds (is their CRD installed?): {}", .0.join(", "))]
    UnknownKinds(Vec<String>),
}
