//! The daemon (`tally run`): [`run()`] owns the reconcile loop; around it, what the daemon shows
//! the outside world apart from the cluster it reconciles.
//!
//! - [`run()`] with a [`DaemonConfig`]: every interval, push or working-tree change, read the
//!   source, gate and reconcile it ([`crate::reconcile`]), record the round; leader election;
//!   a clean stop between waves on SIGTERM.
//! - [`metrics`]: [`Metrics`], the counters and gauges the reconcile loop records, in the
//!   Prometheus text format.
//! - [`http`]: [`serve()`], the HTTP server with `/healthz`, `/readyz` ([`Readiness`]),
//!   `/metrics` and the GitHub push webhook (`/hooks/github`, [`Webhook`]) that sends a
//!   [`Trigger`] to the reconcile loop.
//!
//! - [`github`]: commit statuses on GitHub for each commit handled (`--github-repo`).
//!
//! The loop owns the [`Metrics`], [`Readiness`] and the receiving end of the triggers, and hands
//! the rest to [`serve()`] in a [`ServerState`].

pub mod github;
pub mod http;
pub mod lease;
pub mod metrics;
mod run;

pub use http::{Readiness, ServerHandle, ServerState, Trigger, Webhook, serve};
pub use lease::{Election, LeaseError, LeaseSettings};
pub use metrics::{Metrics, ReconcileResult, WebhookOutcome};
pub use run::{DaemonConfig, DaemonError, run};
