//! Leader election on a Kubernetes Lease, so several daemon replicas never apply at once: only
//! the replica holding the Lease reconciles; the others wait, ready to take over when it stops
//! renewing.

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to elect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The Lease's namespace (tally's own).
    pub namespace: String,
    /// The Lease's name (one per environment: `tally-<env>`).
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a holder's claim lasts without renewal.
    pub duration: Duration,
}

/// Why election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease settings are unusable.
    #[error("leader election: {0}")]
    Settings(String),
    /// The lease manager failed.
    #[error("leader election: {0}")]
    Manager(#[from] LeaseManagerError),
}

/// A running election: watch `leading` for whether this replica holds the Lease.
#[derive(Debug)]
pub struct Election {
    /// `true` while this replica holds the Lease.
    pub leading: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for `settings.name` in `settings.namespace` (the Lease is created when
    /// missing). Renewal runs in the background until [`Election::resign`].
    pub async fn start(
        client: kube::Client,
        settings: &LeaseSettings,
    ) -> Result<Election, LeaseError> {
        let duration = settings.duration.as_secs();
        if duration < 2 {
            return Err(LeaseError::Settings(
                "the lease duration must be at least 2 seconds".into(),
            ));
        }
        if settings.identity.is_empty() {
            return Err(LeaseError::Settings("the identity is empty".into()));
        }
        // Renew a third of the duration before it runs out: room for clock skew and slow calls.
        let grace = (duration / 3).max(1);
        let manager = LeaseManagerBuilder::new(client, &settings.name)
            .with_namespace(&settings.namespace)
            .with_identity(&settings.identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await?;
        let (leading, task) = manager.watch().await;
        Ok(Election { leading, task })
    }

    /// Whether this replica holds the Lease now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Leaves the election, releasing the Lease if held so another replica takes over at once.
    pub async fn resign(self) {
        let Election { leading, task } = self;
        // Closing the channel makes the manager release the lock and stop.
        drop(leading);
        let _ = task.await;
    }
}
