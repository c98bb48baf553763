//! One reconcile of an environment: gate the source, render, plan, then apply — or, when the
//! commit is already applied and only the cluster moved, correct (or just report) the drift.
//!
//! The gate comes first: a commit it rejects is never applied, and the cluster keeps the last good
//! commit. Each attempt's result is recorded in the cluster (a ConfigMap beside the inventory) only
//! when it differs from the last one, so a reconcile with nothing to do writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_validator::Severity;

use crate::bluegreen;
use crate::cluster::{ApplyParams, Cluster, ClusterError};
use crate::gate::{Verdict, gate_commit};
use crate::health::Health;
use crate::inventory::now_rfc3339;
use crate::{ApplyOptions, Desired, PlanOptions, apply, plan};

/// How reconciles run.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// The environment.
    pub environment: String,
    /// Lowest gate severity that rejects a commit (`None`: the gate reports, never rejects).
    pub fail_on: Option<Severity>,
    /// Correct drift (the default) or only report it.
    pub self_heal: bool,
    /// Planning options (inventory namespace, impersonation).
    pub plan: PlanOptions,
    /// Apply options (health timeout, prune, stop flag).
    pub apply: ApplyOptions,
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new commit (or drift) applied cleanly.
    Applied {
        /// Objects written.
        applied: usize,
        /// Objects deleted.
        pruned: usize,
        /// Of those writes, corrections of drift on an already applied commit.
        drift_corrected: usize,
    },
    /// Nothing to do: the cluster equals the commit.
    NoChange,
    /// The commit is applied but the cluster moved, and self-heal is off.
    Drifted {
        /// Objects that differ.
        objects: usize,
    },
    /// The gate rejected the commit; nothing was applied.
    Rejected {
        /// Findings at or above the failing severity.
        errors: usize,
        /// That severity.
        fail_on: Severity,
        /// The first one, as `file:line: rule: message`.
        first: String,
    },
    /// Planning or applying failed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// The result label used in metrics and status: `applied`, `no_change`, `drifted`,
    /// `rejected`, `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied { .. } => "applied",
            Outcome::NoChange => "no_change",
            Outcome::Drifted { .. } => "drifted",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// One line for logs and status.
    pub fn message(&self) -> String {
        match self {
            Outcome::Applied {
                applied,
                pruned,
                drift_corrected,
            } => format!("{applied} applied, {pruned} pruned, {drift_corrected} drift corrections"),
            Outcome::NoChange => "no changes".into(),
            Outcome::Drifted { objects } => {
                format!("{objects} objects drifted; self-heal is off, nothing changed")
            }
            Outcome::Rejected {
                errors,
                fail_on: Severity::Error,
                first,
            } => format!("the gate rejected the commit ({errors} errors; first: {first})"),
            Outcome::Rejected {
                errors,
                fail_on,
                first,
            } => format!(
                "the gate rejected the commit ({errors} findings at {fail_on} or above; \
                 first: {first})"
            ),
            Outcome::Failed { reason } => reason.clone(),
        }
    }
}

/// One reconcile's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The commit (or working-tree digest) reconciled.
    pub commit: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
    /// Each app's health after it (`""` holds the guardrails).
    pub health: BTreeMap<String, String>,
    /// What became of each blue/green release the round carried on.
    pub releases: Vec<bluegreen::Outcome>,
    /// Why the round's status could not be recorded in the cluster (the round itself is not
    /// failed by it, but an operator must hear of it: `tally status` would show an old round).
    pub status_error: Option<String>,
}

/// What the reconcile loop remembers between runs.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// The last commit applied cleanly (the inventory's, read on the first run).
    pub last_applied: Option<String>,
    /// The last recorded status, to write it again only when it changes.
    last_status: Option<(String, String, String)>,
    /// The gate's verdict on the last commit read, and its rendering: a commit is gated and
    /// rendered once, not at every interval.
    gated: Option<Gated>,
    /// Per blue/green app, the time of the last rollback (`tally rollback`) this daemon has
    /// seen recorded, so each is counted once.
    rollbacks_seen: BTreeMap<String, u64>,
}

/// A commit the gate has judged: its desired state, or why it cannot be applied.
#[derive(Debug, Clone)]
struct Gated {
    commit: String,
    verdict: Result<Compact, Outcome>,
}

/// A desired state kept between rounds as JSON text: a tenth of the memory of parsed values,
/// parsed again in a few milliseconds when a round needs it.
#[derive(Debug, Clone)]
struct Compact {
    environment: String,
    commit: String,
    objects: Vec<Box<str>>,
    depends_on: BTreeMap<String, Vec<String>>,
    blue_green: Vec<crate::bluegreen::BlueGreenApp>,
}

impl Compact {
    fn of(desired: &Desired) -> Compact {
        Compact {
            environment: desired.environment.clone(),
            commit: desired.commit.clone(),
            objects: desired
                .objects
                .iter()
                .map(|o| o.to_string().into_boxed_str())
                .collect(),
            depends_on: desired.depends_on.clone(),
            blue_green: desired.blue_green.clone(),
        }
    }

    /// The desired state again, or `None` if an object cannot be read back (never expected: it
    /// was written from a value).
    fn desired(&self) -> Option<Desired> {
        let objects = self
            .objects
            .iter()
            .map(|o| serde_json::from_str(o).ok())
            .collect::<Option<Vec<Value>>>()?;
        Some(Desired {
            environment: self.environment.clone(),
            commit: self.commit.clone(),
            objects,
            depends_on: self.depends_on.clone(),
            blue_green: self.blue_green.clone(),
        })
    }
}

/// Reconciles `environment` from the repo at `root` (a checkout of `commit`).
pub async fn reconcile<C: Cluster>(
    cluster: &C,
    root: &Path,
    commit: &str,
    settings: &ReconcileSettings,
    state: &mut State,
) -> Record {
    let started = Instant::now();
    let mut health = BTreeMap::new();
    let mut releases = Vec::new();
    let outcome = round(
        cluster,
        root,
        commit,
        settings,
        state,
        &mut health,
        &mut releases,
    )
    .await;
    let mut record = Record {
        commit: commit.to_owned(),
        outcome,
        duration: started.elapsed(),
        health,
        releases,
        status_error: None,
    };
    // The status is for people; failing to write it must not fail the reconcile.
    record.status_error = write_status(cluster, settings, state, &record)
        .await
        .err()
        .map(|e| e.to_string());
    record
}

/// Records an attempt that failed before the reconcile could start (the source could not be
/// fetched, say): nothing is applied, the last good commit stays, and status says why.
pub async fn record_failure<C: Cluster>(
    cluster: &C,
    commit: &str,
    reason: String,
    settings: &ReconcileSettings,
    state: &mut State,
) -> Record {
    let mut record = Record {
        commit: commit.to_owned(),
        outcome: Outcome::Failed { reason },
        duration: Duration::ZERO,
        health: BTreeMap::new(),
        releases: Vec::new(),
        status_error: None,
    };
    // As in `reconcile`: the status is for people and must not fail the round.
    record.status_error = write_status(cluster, settings, state, &record)
        .await
        .err()
        .map(|e| e.to_string());
    record
}

/// One round's work, after the source was read: the gate's verdict (once per commit), plan,
/// apply.
async fn round<C: Cluster>(
    cluster: &C,
    root: &Path,
    commit: &str,
    settings: &ReconcileSettings,
    state: &mut State,
    health: &mut BTreeMap<String, String>,
    releases_done: &mut Vec<bluegreen::Outcome>,
) -> Outcome {
    let reuse = match state.gated.as_ref().filter(|g| g.commit == commit) {
        Some(Gated {
            verdict: Err(outcome),
            ..
        }) => return outcome.clone(),
        Some(Gated {
            verdict: Ok(compact),
            ..
        }) => compact.desired(),
        None => None,
    };
    let desired = match reuse {
        Some(d) => d,
        None => {
            // The last commit's verdict is no longer needed: free it before this one's gate.
            state.gated = None;
            let verdict = gate(root, commit, settings);
            // A rejection or a rendering stands for the commit; other failures (a renderer
            // that could not run) are tried again next time.
            let kept = match &verdict {
                Ok(desired) => Some(Ok(Compact::of(desired))),
                Err(outcome @ Outcome::Rejected { .. }) => Some(Err(outcome.clone())),
                Err(_) => None,
            };
            state.gated = kept.map(|verdict| Gated {
                commit: commit.to_owned(),
                verdict,
            });
            match verdict {
                Ok(d) => d,
                Err(outcome) => return outcome,
            }
        }
    };
    let started = Instant::now();
    let mut desired = desired;
    let mut releases = match bluegreen::prepare(
        cluster,
        &mut desired,
        &settings.plan.inventory_namespace,
        bluegreen::now_secs(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            return Outcome::Failed {
                reason: format!("planning: {e}"),
            };
        }
    };
    // A rollback is made by `tally rollback`; the daemon sees it recorded and counts it once.
    for (app, s) in &releases.states {
        if s.phase == bluegreen::Phase::RolledBack
            && let Some(at) = s.switched_at
            && state.rollbacks_seen.insert(app.clone(), at) != Some(at)
        {
            releases_done.push(bluegreen::Outcome::RolledBack { app: app.clone() });
        }
    }
    let (outcome, clean) = plan_and_apply(cluster, desired, commit, settings, state, health).await;
    if releases.steps.is_empty() && !releases.changed {
        return outcome;
    }
    let options = bluegreen::AdvanceOptions {
        inventory_namespace: settings.plan.inventory_namespace.clone(),
        environment: settings.environment.clone(),
        wait_timeout: settings.apply.wait_timeout,
        poll_interval: settings.apply.poll_interval,
        impersonate_tenants: settings.plan.impersonate_tenants,
    };
    let released = match bluegreen::advance(cluster, &mut releases, clean, started, &options).await
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Failed {
                reason: format!("blue/green: {e}"),
            };
        }
    };
    for r in &released {
        tracing::info!(release = %r.message(), "blue/green");
    }
    releases_done.extend(released.iter().cloned());
    if let Some(failed) = released.iter().find(|r| r.failed()) {
        return Outcome::Failed {
            reason: failed.message(),
        };
    }
    let switches = released
        .iter()
        .filter(|r| matches!(r, bluegreen::Outcome::Switched { .. }))
        .count();
    match outcome {
        Outcome::NoChange if switches > 0 => Outcome::Applied {
            applied: switches,
            pruned: 0,
            drift_corrected: 0,
        },
        Outcome::Applied {
            applied,
            pruned,
            drift_corrected,
        } => Outcome::Applied {
            applied: applied + switches,
            pruned,
            drift_corrected,
        },
        other => other,
    }
}

/// Plans and applies a desired state; whether the apply (if any) finished cleanly.
async fn plan_and_apply<C: Cluster>(
    cluster: &C,
    desired: Desired,
    commit: &str,
    settings: &ReconcileSettings,
    state: &mut State,
    health: &mut BTreeMap<String, String>,
) -> (Outcome, bool) {
    let plan = match plan(cluster, desired, &settings.plan).await {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("planning: {e}");
            return (Outcome::Failed { reason }, false);
        }
    };
    if state.last_applied.is_none() {
        state.last_applied = plan.previous.as_ref().map(|i| i.commit.clone());
    }
    for (app, h) in plan.app_health() {
        health.insert(app, describe_health(&h));
    }
    if !plan.has_changes() {
        return (Outcome::NoChange, true);
    }
    // Same commit, different cluster: drift.
    let drift = state.last_applied.as_deref() == Some(commit);
    let s = plan.summary();
    let changed = s.create + s.update + s.replace + s.prune;
    if drift && !settings.self_heal {
        return (Outcome::Drifted { objects: changed }, false);
    }
    if let Err(e) = ensure_namespace(cluster, &plan.inventory_namespace).await {
        let reason = e.to_string();
        return (Outcome::Failed { reason }, false);
    }
    let report = apply(cluster, &plan, &settings.apply).await;
    if !report.is_clean() {
        let reason = format!("apply did not complete: {}", report.why_unclean());
        return (Outcome::Failed { reason }, false);
    }
    state.last_applied = Some(commit.to_owned());
    let applied = report.applied().count();
    let outcome = Outcome::Applied {
        applied,
        pruned: report.pruned.len(),
        drift_corrected: if drift {
            applied + report.pruned.len()
        } else {
            0
        },
    };
    (outcome, true)
}

/// The gate's verdict on the commit at `root`: its desired state, or the outcome that stops the
/// reconcile.
fn gate(root: &Path, commit: &str, settings: &ReconcileSettings) -> Result<Desired, Outcome> {
    match gate_commit(root, &settings.environment, commit, settings.fail_on) {
        Ok(Verdict::Accepted { desired, .. }) => Ok(desired),
        Ok(verdict @ Verdict::Rejected { fail_on, .. }) => {
            let failing = verdict.failing();
            let first = failing
                .first()
                .map(|f| format!("{}:{}: {}: {}", f.file, f.pos.line, f.rule, f.message))
                .unwrap_or_default();
            Err(Outcome::Rejected {
                errors: failing.len(),
                fail_on,
                first,
            })
        }
        Err(e) => Err(Outcome::Failed {
            reason: format!("gate: {e}"),
        }),
    }
}

fn describe_health(h: &Health) -> String {
    match h {
        Health::Healthy => "healthy".into(),
        Health::Progressing(why) => format!("progressing: {why}"),
        Health::Failed(why) => format!("failed: {why}"),
    }
}

/// The name of an environment's status ConfigMap.
pub fn status_name(environment: &str) -> String {
    format!("tally-status-{environment}")
}

/// Records the last attempt in `tally-status-<env>` when it differs from the last one recorded.
async fn write_status<C: Cluster>(
    cluster: &C,
    settings: &ReconcileSettings,
    state: &mut State,
    record: &Record,
) -> Result<(), ClusterError> {
    let key = (
        record.commit.clone(),
        record.outcome.label().to_owned(),
        record.outcome.message(),
    );
    if state.last_status.as_ref() == Some(&key) {
        return Ok(());
    }
    let resource = served(cluster, "ConfigMap").await?;
    ensure_namespace(cluster, &settings.plan.inventory_namespace).await?;
    let health: serde_json::Map<String, Value> = record
        .health
        .iter()
        .map(|(app, h)| (app.clone(), Value::from(h.as_str())))
        .collect();
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": status_name(&settings.environment),
            "namespace": settings.plan.inventory_namespace,
            "labels": {"app.kubernetes.io/managed-by": "tally"},
        },
        "data": {
            "environment": settings.environment,
            "commit": record.commit,
            "result": record.outcome.label(),
            "message": record.outcome.message(),
            "time": now_rfc3339(),
            "health": Value::Object(health).to_string(),
        },
    });
    cluster
        .apply(&resource, &cm, &ApplyParams::default())
        .await?;
    state.last_status = Some(key);
    if matches!(
        record.outcome,
        Outcome::Rejected { .. } | Outcome::Failed { .. }
    ) {
        emit_event(cluster, settings, record).await?;
    }
    Ok(())
}

/// A Kubernetes Event on the status ConfigMap for a rejected commit or a failed reconcile, so
/// `kubectl get events -n tally-system` and event exporters see it.
async fn emit_event<C: Cluster>(
    cluster: &C,
    settings: &ReconcileSettings,
    record: &Record,
) -> Result<(), ClusterError> {
    let reason = match record.outcome {
        Outcome::Rejected { .. } => "CommitRejected",
        _ => "ReconcileFailed",
    };
    let status = status_name(&settings.environment);
    let about = crate::events::About {
        kind: "ConfigMap",
        namespace: &settings.plan.inventory_namespace,
        name: &status,
    };
    let message = format!(
        "{} at {}: {}",
        settings.environment,
        record.commit,
        record.outcome.message()
    );
    crate::events::record(cluster, about, &status, reason, "Warning", &message).await
}

/// Creates tally's own namespace (where inventories and status live) when it is missing. It is
/// in no environment's inventory, so it is never pruned.
pub async fn ensure_namespace<C: Cluster>(cluster: &C, name: &str) -> Result<(), ClusterError> {
    let resource = served(cluster, "Namespace").await?;
    if cluster.get(&resource, None, name).await?.is_some() {
        return Ok(());
    }
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "tally"}},
    });
    cluster
        .apply(&resource, &namespace, &ApplyParams::default())
        .await
        .map(|_| ())
}

/// The core (`v1`) kind's resource, which every cluster serves.
pub(crate) async fn served<C: Cluster>(
    cluster: &C,
    kind: &str,
) -> Result<crate::cluster::Resource, ClusterError> {
    cluster
        .resource("v1", kind)
        .await?
        .ok_or_else(|| ClusterError::UnknownKind {
            api_version: "v1".into(),
            kind: kind.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_stable_labels() {
        let o = Outcome::Rejected {
            errors: 2,
            fail_on: Severity::Error,
            first: "a.yaml:3: no-bare-pod: x".into(),
        };
        assert_eq!(o.label(), "rejected");
        assert!(o.message().contains("2 errors"));
    }
}
