//! `tally run`: the reconcile loop. Every interval (and on demand), gate and apply the source's
//! current state; correct or report drift; stop cleanly between waves on SIGTERM or Ctrl-C.

mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tally_engine::cluster::{Backoff, Watched};
use tally_engine::daemon::{
    Election, LeaseSettings, Metrics, Readiness, ReconcileResult, ServerState, Trigger, Webhook,
    serve,
};
use tally_engine::reconcile::{self, Outcome, ReconcileSettings, Record, State};
use tally_engine::source::{Credentials, GitSource, Token, redact_url};
use tally_engine::{ApplyOptions, KubeCluster, KubeOptions, PlanOptions, Retrying};

/// What the daemon follows.
pub enum Source {
    /// A local working tree (a digest of its files stands for the commit).
    Path(PathBuf),
    /// A branch of a git remote, cached under a directory.
    Git {
        /// The remote.
        url: String,
        /// The cache directory.
        cache: PathBuf,
        /// How to authenticate to it.
        credentials: Credentials,
        /// How long a fetch may take.
        fetch_timeout: Duration,
    },
}

/// How the daemon runs.
pub struct Daemon {
    /// The source to follow.
    pub source: Source,
    /// The environment.
    pub environment: String,
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
    /// Log lines as JSON.
    pub json_logs: bool,
    /// Where to serve /healthz, /readyz, /metrics and the webhook.
    pub listen: Option<std::net::SocketAddr>,
    /// The GitHub webhook's secret (enables `POST /hooks/github`).
    pub webhook_secret: Option<Vec<u8>>,
    /// Leader election: this replica's identity and the lease duration (`None`: off).
    pub leader_election: Option<(String, Duration)>,
    /// The branch whose pushes trigger a reconcile.
    pub branch: String,
}

/// Runs until SIGTERM or Ctrl-C. Returns the exit status.
pub fn run(daemon: Daemon) -> Result<u8, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(run_async(daemon))
}

async fn run_async(d: Daemon) -> Result<u8, String> {
    let cluster = KubeCluster::connect(&d.kube)
        .await
        .map_err(|e| format!("connecting to the cluster: {e}"))?;
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
    let shutdown = Arc::new(tokio::sync::Notify::new());
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
            let namespace = PlanOptions::default().inventory_namespace;
            reconcile::ensure_namespace(&cluster, &namespace).await?;
            let lease = LeaseSettings {
                namespace,
                name: format!("tally-{}", d.environment),
                identity: identity.clone(),
                duration: *duration,
            };
            let election = Election::start(client, &lease)
                .await
                .map_err(|e| e.to_string())?;
            log(
                &d,
                "info",
                "joined leader election",
                json!({"lease": lease.name, "identity": identity}),
            );
            Some(election)
        }
        None => None,
    };
    // Capacity 1: a push that finds a reconcile already due folds into it.
    let (triggers, mut pushed) = tokio::sync::mpsc::channel::<Trigger>(1);
    let server = match d.listen {
        Some(addr) => {
            let webhook = match &d.webhook_secret {
                Some(secret) => Some(
                    Webhook::new(secret, &d.branch, triggers.clone())
                        .map_err(|e| format!("webhook: {e}"))?,
                ),
                None => None,
            };
            let state = ServerState {
                metrics: Arc::clone(&metrics),
                readiness: Arc::clone(&readiness),
                webhook,
            };
            let server = serve(addr, state)
                .await
                .map_err(|e| format!("listening on {addr}: {e}"))?;
            log(
                &d,
                "info",
                "listening",
                json!({"addr": server.addr().to_string()}),
            );
            Some(server)
        }
        None => None,
    };
    // A working tree is also watched: a change reconciles at once (the interval still runs).
    let _watch = match &d.source {
        Source::Path(root) => match watch::watch(root, triggers.clone(), watch::DEBOUNCE) {
            Ok(w) => Some(w),
            Err(e) => {
                let warning = format!("{e}; following it every interval only");
                log(
                    &d,
                    "warn",
                    "cannot watch the working tree",
                    json!({"path": root, "error": warning}),
                );
                None
            }
        },
        Source::Git { .. } => None,
    };
    let mut git = match &d.source {
        Source::Path(_) => None,
        Source::Git {
            url,
            cache,
            credentials,
            fetch_timeout,
        } => Some(
            GitSource::open(url, &d.branch, cache)
                .map_err(|e| e.to_string())?
                .with_credentials(credentials.clone())
                .with_fetch_timeout(*fetch_timeout),
        ),
    };
    let source = match &d.source {
        Source::Path(p) => json!({"path": p}),
        Source::Git {
            url,
            cache,
            credentials,
            fetch_timeout,
        } => json!({"repo": redact_url(url), "branch": d.branch, "cache": cache,
            "auth": auth_label(credentials), "fetch_timeout_s": fetch_timeout.as_secs_f64()}),
    };
    log(
        &d,
        "info",
        "started",
        json!({"source": source, "interval_s": d.interval.as_secs_f64()}),
    );
    let mut state = State::default();
    let mut ticker = tokio::time::interval(d.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(trigger) = pushed.recv() => {
                if trigger.commit.is_empty() {
                    log(&d, "info", "working tree changed", json!({}));
                } else {
                    log(&d, "info", "push received", json!({"commit": trigger.commit, "delivery": trigger.delivery}));
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
        let record = match read_source(&d, &mut git).await {
            Ok((root, commit)) => {
                let record =
                    reconcile::reconcile(&cluster, &root, &commit, &settings, &mut state).await;
                if let Some(g) = &git {
                    // Keep the tree just read and the last good one; drop older ones.
                    let good = state.last_applied.clone().unwrap_or_default();
                    g.retain(&[&commit, &good]);
                }
                record
            }
            Err(e) => {
                // The cluster keeps the last good commit; the failure is recorded against it.
                let commit = state.last_applied.clone().unwrap_or_default();
                reconcile::record_failure(&cluster, &commit, e, &settings, &mut state).await
            }
        };
        log_record(&d, &record);
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
    log(&d, "info", "stopped", json!({}));
    Ok(0)
}

/// Reads the source for one round: the working tree as it is, or the branch fetched and its head
/// written out. Returns the directory to reconcile and the commit id (or tree digest).
async fn read_source(d: &Daemon, git: &mut Option<GitSource>) -> Result<(PathBuf, String), String> {
    match (&d.source, git.take()) {
        (_, Some(mut source)) => {
            // libgit2 blocks: fetch on a blocking thread, then hand the source back.
            let (source, result) = tokio::task::spawn_blocking(move || {
                let result = source
                    .fetch()
                    .and_then(|commit| source.materialise(&commit));
                (source, result)
            })
            .await
            .map_err(|e| format!("the fetch task failed: {e}"))?;
            *git = Some(source);
            let checkout = result.map_err(|e| e.to_string())?;
            Ok((checkout.root, checkout.commit))
        }
        (Source::Path(path), None) => reconcile::tree_digest(path)
            .map(|digest| (path.clone(), digest))
            .map_err(|e| format!("reading {}: {e}", path.display())),
        (Source::Git { url, .. }, None) => {
            Err(format!("the cache of {} is not open", redact_url(url)))
        }
    }
}

/// How the daemon authenticates, for the start line: where secrets come from, never their values.
fn auth_label(c: &Credentials) -> String {
    match (&c.token, &c.ssh_key) {
        (_, Some(key)) => format!("ssh key {}", key.private_key.display()),
        (Some(Token::File(path)), None) => format!("token file {}", path.display()),
        (Some(Token::Env(_)), None) => format!("token from {}", tally_engine::source::TOKEN_ENV),
        (None, None) => "none".to_owned(),
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

fn log_record(d: &Daemon, record: &Record) {
    if let Some(e) = &record.status_error {
        log(
            d,
            "warn",
            "could not record the round's status",
            json!({"environment": d.environment, "error": e}),
        );
    }
    let level = match record.outcome {
        Outcome::Rejected { .. } | Outcome::Failed { .. } => "error",
        Outcome::Drifted { .. } => "warn",
        _ => "info",
    };
    // A reconcile with nothing to do is not worth a line at every interval in text mode.
    if matches!(record.outcome, Outcome::NoChange) && !d.json_logs {
        return;
    }
    log(
        d,
        level,
        "reconciled",
        json!({
            "environment": d.environment,
            "commit": record.commit,
            "result": record.outcome.label(),
            "message": record.outcome.message(),
            "duration_ms": record.duration.as_millis() as u64,
        }),
    );
}

/// One log line on stderr: JSON (`--log-format json`) or `time level msg key=value ...`.
fn log(d: &Daemon, level: &str, msg: &str, fields: serde_json::Value) {
    let time = tally_engine::inventory::now_rfc3339();
    if d.json_logs {
        let mut line = json!({"time": time, "level": level, "msg": msg});
        if let (Some(l), Some(f)) = (line.as_object_mut(), fields.as_object()) {
            for (k, v) in f {
                l.insert(k.clone(), v.clone());
            }
        }
        eprintln!("{line}");
    } else {
        let mut line = format!("{time} {level:5} {msg}");
        if let Some(f) = fields.as_object() {
            for (k, v) in f {
                match v {
                    serde_json::Value::String(s) => line.push_str(&format!(" {k}={s:?}")),
                    other => line.push_str(&format!(" {k}={other}")),
                }
            }
        }
        eprintln!("{line}");
    }
}
