//! What the daemon (`tally run`) shows the outside world, apart from the cluster it reconciles.
//!
//! - [`metrics`]: [`Metrics`], the counters and gauges the reconcile loop records, in the
//!   Prometheus text format.
//! - [`http`]: [`serve()`], the HTTP server with `/healthz`, `/readyz` ([`Readiness`]),
//!   `/metrics` and the GitHub push webhook (`/hooks/github`, [`Webhook`]) that sends a
//!   [`Trigger`] to the reconcile loop.
//!
//! The reconcile loop itself is not here: it owns the [`Metrics`], [`Readiness`] and the
//! receiving end of the triggers, and hands the rest to [`serve()`] in a [`ServerState`].

pub mod http;
pub mod lease;
pub mod metrics;

pub use http::{Readiness, ServerHandle, ServerState, Trigger, Webhook, serve};
pub use lease::{Election, LeaseError, LeaseSettings};
pub use metrics::{Metrics, ReconcileResult, WebhookOutcome};
