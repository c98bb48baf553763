//! The reconcile loop (`tally run`): every interval, push or working-tree change, read the source,
//! gate and reconcile it, record the round (status, metrics, log); stop cleanly between waves on
//! SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tally_validator::Severity;
use tokio::sync::{Notify, mpsc};

use super::{
    Election, LeaseError, LeaseSettings, Metrics, Readiness, ReconcileResult, ServerState, Trigger,
    Webhook, http, serve,
};
use crate::cluster::{Backoff, Watched};
use crate::reconcile::{self, Outcome, ReconcileSettings, Record, State};
use crate::source::{Follower, Source, SourceError, redact_url, tree};
use crate::{ApplyOptions, ClusterError, KubeCluster, KubeOptions, PlanOptions, Retrying};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The source to follow.
    pub source: Source,
    /// The environment.
    pub environment: String,
    /// Lowest gate severity that rejects a commit (`None`: report, never reject).
    pub fail_on: Option<Severity>,
    /// Time between reconciles.
    pub interval: Duration,
    /// Correct drift, or only report it.
    pub self_heal: bool,
    /// Health wait per wave.
    pub timeout: Duration,
    /// Cluster connection.
    pub kube: KubeOptions,
    /// Apply tenant apps as their deployer ServiceAccounts.
    pub impersonate_tenants: bool,
    /// Where to serve /healthz, /readyz, /metrics and the webhook.
    pub listen: Option<SocketAddr>,
    /// The GitHub webhook's secret (enables `POST /hooks/github`).
    pub webhook_secret: Option<Vec<u8>>,
    /// Leader election: this replica's identity and the lease duration (`None`: off).
    pub leader_election: Option<(String, Duration)>,
    /// The branch whose pushes trigger a reconcile.
    pub branch: String,
    /// Commit statuses on GitHub (`--github-repo`).
    pub github: Option<super::github::GithubReporting>,
}

/// Why the daemon could not start (once running, failures are rounds, recorded and retried).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The cluster could not be reached or tally's namespace not created.
    #[error("connecting to the cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The HTTP server or webhook could not be set up.
    #[error(transparent)]
    Http(#[from] http::Error),
    /// Leader election could not start.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub async fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let d = config;
    let cluster = KubeCluster::connect(&d.kube).await?;
    let client = cluster.client().clone();
    // Live state comes from watches: a reconcile with nothing to do lists nothing.
    let cluster = Watched::new(
        Retrying::new(cluster, Backoff::default()),
        Backoff {
            attempts: 1,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let settings = ReconcileSettings {
        environment: d.environment.clone(),
        fail_on: d.fail_on,
        self_heal: d.self_heal,
        plan: PlanOptions {
            impersonate_tenants: d.impersonate_tenants,
            ..PlanOptions::default()
        },
        apply: ApplyOptions {
            wait_timeout: d.timeout,
            stop: Some(Arc::clone(&stop)),
            ..ApplyOptions::default()
        },
    };
    let shutdown = Arc::new(Notify::new());
    {
        let stop = Arc::clone(&stop);
        let shutdown = Arc::clone(&shutdown);
        tokio::spawn(async move {
            wait_for_signal().await;
            // Between waves the apply sees the flag and ends as interrupted, unpruned.
            stop.store(true, Ordering::SeqCst);
            shutdown.notify_one();
        });
    }
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::new(d.leader_election.is_some()));
    // Only the replica holding the Lease reconciles; the others wait to take over.
    let mut election = match &d.leader_election {
        Some((identity, duration)) => {
            let namespace = settings.plan.inventory_namespace.clone();
            reconcile::ensure_namespace(&cluster, &namespace).await?;
            let lease = LeaseSettings {
                namespace,
                name: format!("tally-{}", d.environment),
                identity: identity.clone(),
                duration: *duration,
            };
            let election = Election::start(client, &lease).await?;
            tracing::info!(lease = %lease.name, identity = %identity, "joined leader election");
            Some(election)
        }
        None => None,
    };
    // Capacity 1: a push that finds a reconcile already due folds into it.
    let (triggers, mut pushed) = mpsc::channel::<Trigger>(1);
    let server = match d.listen {
        Some(addr) => {
            let webhook = match &d.webhook_secret {
                Some(secret) => Some(Webhook::new(secret, &d.branch, triggers.clone())?),
                None => None,
            };
            let state = ServerState {
                metrics: Arc::clone(&metrics),
                readiness: Arc::clone(&readiness),
                webhook,
            };
            Some(serve(addr, state).await?)
        }
        None => None,
    };
    // A working tree is also watched: a change reconciles at once (the interval still runs).
    let _watch = match &d.source {
        Source::Tree(root) => match tree::watch(root, triggers.clone(), tree::DEBOUNCE) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(path = %root.display(), error = %format!("{e}; following it every interval only"),
                    "cannot watch the working tree");
                None
            }
        },
        Source::Git(_) => None,
    };
    let mut follower = Follower::open(d.source.clone())?;
    log_start(&d);
    let mut state = State::default();
    let mut reporter = d
        .github
        .clone()
        .map(|g| super::github::Reporter::start(g, &d.environment, Arc::clone(&metrics)));
    let mut ticker = tokio::time::interval(d.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(trigger) = pushed.recv() => {
                if trigger.commit.is_empty() {
                    tracing::info!("working tree changed");
                } else {
                    tracing::info!(commit = %trigger.commit, delivery = trigger.delivery.as_deref(), "push received");
                }
            }
            _ = leadership_changed(&mut election) => {}
            _ = shutdown.notified() => break,
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(e) = &election {
            let leading = e.is_leading();
            readiness.lease(leading);
            if !leading {
                continue;
            }
        }
        let record = match follower.read().await {
            Ok(checkout) => {
                if let Some(r) = &mut reporter {
                    r.starting(&checkout.commit, &d.environment);
                }
                let record = reconcile::reconcile(
                    &cluster,
                    &checkout.root,
                    &checkout.commit,
                    &settings,
                    &mut state,
                )
                .await;
                // Keep the tree just read and the last good one; drop older ones.
                let good = state.last_applied.clone().unwrap_or_default();
                follower.retain(&[&checkout.commit, &good]);
                if let Some(r) = &mut reporter {
                    r.finished(&record, &d.environment);
                }
                record
            }
            Err(e) => {
                // The cluster keeps the last good commit; the failure is recorded against it.
                let commit = state.last_applied.clone().unwrap_or_default();
                reconcile::record_failure(&cluster, &commit, e.to_string(), &settings, &mut state)
                    .await
            }
        };
        log_record(&d.environment, &record);
        observe(&metrics, &d.environment, &record);
        let cache = cluster.stats();
        metrics.watch_cache(cache.objects as u64, cache.lists, cache.misses);
        readiness.reconciled();
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    readiness.shutting_down();
    if let Some(e) = election {
        // Released at once, so another replica takes over without waiting out the lease.
        e.resign().await;
    }
    if let Some(server) = server {
        let _ = server.shutdown().await;
    }
    drop(triggers);
    tracing::info!("stopped");
    Ok(())
}

/// The start line: what is followed and how often; where secrets come from, never their values.
fn log_start(d: &DaemonConfig) {
    let interval_s = d.interval.as_secs_f64();
    match &d.source {
        Source::Tree(path) => {
            tracing::info!(path = %path.display(), interval_s, "started");
        }
        Source::Git(g) => tracing::info!(
            repo = %redact_url(&g.url),
            branch = %g.branch,
            cache = %g.cache.display(),
            auth = %g.credentials.describe(),
            fetch_timeout_s = g.fetch_timeout.as_secs_f64(),
            interval_s,
            "started"
        ),
    }
    if let Some(limit) = crate::gate::memory_limit() {
        tracing::info!(
            memory_limit_mib = limit >> 20,
            input_budget_mib = crate::gate::input_budget(limit) >> 20,
            "a commit that brings more than the input budget is rejected, not read"
        );
    }
}

/// Resolves when this replica gains or loses the Lease; never without an election.
async fn leadership_changed(election: &mut Option<Election>) {
    match election {
        Some(e) => {
            if e.leading.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Records one reconcile in the metrics.
fn observe(metrics: &Metrics, environment: &str, record: &Record) {
    let result = match &record.outcome {
        Outcome::Applied {
            applied,
            pruned,
            drift_corrected,
        } => {
            metrics.applied(*applied as u64);
            metrics.pruned(*pruned as u64);
            if *drift_corrected > 0 {
                metrics.drift_corrected(*drift_corrected as u64);
            }
            metrics.drift(0);
            metrics.commit_applied(&record.commit, environment, std::time::SystemTime::now());
            ReconcileResult::Applied
        }
        Outcome::NoChange => {
            metrics.drift(0);
            ReconcileResult::NoChange
        }
        Outcome::Drifted { objects } => {
            metrics.drift(*objects as u64);
            ReconcileResult::NoChange
        }
        Outcome::Rejected { .. } => {
            metrics.commit_rejected();
            ReconcileResult::Rejected
        }
        Outcome::Failed { .. } => ReconcileResult::Failed,
    };
    metrics.reconciled(result, record.duration);
    for release in &record.releases {
        use crate::bluegreen::Outcome as R;
        match release {
            R::Switched { app, took, .. } => metrics.release(app, "switched", Some(*took)),
            R::Aborted { app, .. } => metrics.release(app, "aborted", None),
            R::SwitchedBack { app, .. } => metrics.release(app, "switched_back", None),
            R::RolledBack { app } => metrics.release(app, "rolled_back", None),
            R::Waiting { .. } | R::Pending { .. } => {}
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// One line per round: rejected and failed rounds at error, drift at warn, applies at info, and a
/// round with nothing to do at debug (not worth a line every interval).
fn log_record(environment: &str, record: &Record) {
    if let Some(e) = &record.status_error {
        tracing::warn!(environment, error = %e, "could not record the round's status");
    }
    let result = record.outcome.label();
    let detail = record.outcome.message();
    let duration_ms = record.duration.as_millis() as u64;
    let commit = record.commit.as_str();
    macro_rules! round {
        ($level:ident) => {
            tracing::$level!(environment, commit, result, detail = %detail, duration_ms, "reconciled")
        };
    }
    match record.outcome {
        Outcome::Rejected { .. } | Outcome::Failed { .. } => round!(error),
        Outcome::Drifted { .. } => round!(warn),
        Outcome::NoChange => round!(debug),
        Outcome::Applied { .. } => round!(info),
    }
}
