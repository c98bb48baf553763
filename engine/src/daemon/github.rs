//! The daemon reports back to GitHub: a commit status `tally/<env>` on each commit it handles,
//! `pending` while a new commit is applied, then `success` (applied and healthy) or `failure`
//! (the gate rejected it, or the apply or a release failed), with the reason. With
//! `--github-deployments`, each commit also gets a GitHub Deployment to the environment, with
//! the statuses `in_progress`, then `success`, `failure` (the apply failed) or `error` (the
//! gate rejected it: never applied); GitHub then shows the environment's history and which
//! commit is live.
//!
//! Reporting never blocks or fails a round: rounds put reports on a bounded queue (a full queue
//! drops the report and counts it), and one task delivers them, trying again on a 429, a spent
//! rate limit or a 5xx after GitHub's `Retry-After` (or its rate limit's reset, else a growing
//! pause), giving up on any other answer. Every outcome is counted in
//! `tally_github_reports_total{result}`. The token is read from its file at each delivery, so a
//! rotated Secret is picked up; a GitHub App's installation token is kept and exchanged again
//! before it expires. No token appears in a log or an error.

use std::sync::Arc;
use std::time::Duration;

use tally_github::{Auth, Credentials, DeploymentState, Error, GitHub, Retries, StatusState};
use tokio::sync::mpsc;

use super::Metrics;
use crate::reconcile::{Outcome, Record};

/// Where and as whom the daemon reports.
#[derive(Debug, Clone)]
pub struct GithubReporting {
    /// The API's URL (`https://api.github.com`, or GitHub Enterprise Server's).
    pub api_url: String,
    /// `OWNER/NAME`.
    pub repository: String,
    /// Who tally is: a token, a token file (read at each delivery) or a GitHub App.
    pub credentials: Credentials,
    /// Also a GitHub Deployment per commit (`--github-deployments`).
    pub deployments: bool,
}

/// One commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The commit.
    pub commit: String,
    /// Its state.
    pub state: StatusState,
    /// The deployment's state.
    pub deployment: DeploymentState,
    /// Why, in one line.
    pub description: String,
}

/// Reports waiting for delivery at most; past it, a report is dropped and counted.
const QUEUE: usize = 32;

/// Deliveries of one report at most.
const ATTEMPTS: u32 = 5;

/// The longest pause between two deliveries of a report.
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// The rounds' side: reports deduplicated (a quiet round sends nothing) and queued.
pub struct Reporter {
    queue: mpsc::Sender<CommitReport>,
    last: Option<CommitReport>,
    metrics: Arc<Metrics>,
}

impl Reporter {
    /// Starts the delivery task for `environment`.
    pub fn start(config: GithubReporting, environment: &str, metrics: Arc<Metrics>) -> Reporter {
        let (queue, reports) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(
            config,
            environment.to_owned(),
            reports,
            Arc::clone(&metrics),
        ));
        Reporter {
            queue,
            last: None,
            metrics,
        }
    }

    /// A round is about to handle `commit`: `pending` when it is new.
    pub fn starting(&mut self, commit: &str, environment: &str) {
        if self.last.as_ref().is_some_and(|l| l.commit == commit) {
            return;
        }
        self.send(CommitReport {
            commit: commit.to_owned(),
            state: StatusState::Pending,
            deployment: DeploymentState::InProgress,
            description: format!("applying to {environment}"),
        });
    }

    /// A round ended with `record`.
    pub fn finished(&mut self, record: &Record, environment: &str) {
        let (state, deployment, description) = match &record.outcome {
            Outcome::Applied { .. } | Outcome::NoChange | Outcome::Drifted { .. } => (
                StatusState::Success,
                DeploymentState::Success,
                format!("applied to {environment}"),
            ),
            Outcome::Rejected { .. } => (
                StatusState::Failure,
                DeploymentState::Error,
                record.outcome.message(),
            ),
            Outcome::Failed { .. } => (
                StatusState::Failure,
                DeploymentState::Failure,
                record.outcome.message(),
            ),
        };
        self.send(CommitReport {
            commit: record.commit.clone(),
            state,
            deployment,
            description,
        });
    }

    fn send(&mut self, report: CommitReport) {
        if report.commit.is_empty() || self.last.as_ref() == Some(&report) {
            return;
        }
        match self.queue.try_send(report.clone()) {
            Ok(()) => self.last = Some(report),
            Err(_) => self.metrics.github_report("dropped"),
        }
    }
}

async fn deliver(
    config: GithubReporting,
    environment: String,
    mut reports: mpsc::Receiver<CommitReport>,
    metrics: Arc<Metrics>,
) {
    let auth = Auth::new(&config.api_url, config.credentials.clone());
    let context = format!("tally/{environment}");
    // The deployment of the commit last reported, once created.
    let mut deployment: Option<(String, u64)> = None;
    while let Some(report) = reports.recv().await {
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            let outcome = match client(&auth, &config.repository).await {
                Ok(gh) => {
                    deliver_one(
                        &gh,
                        &report,
                        &context,
                        &environment,
                        config.deployments.then_some(&mut deployment),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    metrics.github_report("sent");
                    break;
                }
                Err(Error::Busy { after, message, .. }) if attempt < ATTEMPTS => {
                    metrics.github_report("retried");
                    let wait = after.unwrap_or(pause).min(MAX_PAUSE);
                    tracing::warn!(error = %message, wait_s = wait.as_secs_f64(), "GitHub report: trying again");
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => {
                    metrics.github_report("failed");
                    tracing::warn!(error = %e, commit = %report.commit, "GitHub report not delivered");
                    break;
                }
            }
        }
    }
}

/// Sets the commit status, then (with deployments) the deployment's status, creating the
/// commit's deployment first when there is none yet. A retry after a failure sends both again:
/// statuses are idempotent, and the deployment is created once.
async fn deliver_one(
    gh: &GitHub,
    report: &CommitReport,
    context: &str,
    environment: &str,
    deployment: Option<&mut Option<(String, u64)>>,
) -> Result<(), Error> {
    gh.commit_status(&report.commit, report.state, context, &report.description)
        .await?;
    let Some(deployment) = deployment else {
        return Ok(());
    };
    let id = match deployment {
        Some((commit, id)) if *commit == report.commit => *id,
        _ => {
            let description = format!("tally applies {} to {environment}", short(&report.commit));
            let id = gh
                .deployment(&report.commit, environment, &description)
                .await?;
            *deployment = Some((report.commit.clone(), id));
            id
        }
    };
    gh.deployment_status(id, report.deployment, &report.description)
        .await
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A client with a token valid now. The queue does the retrying, so the client sends once.
async fn client(auth: &Auth, repository: &str) -> Result<GitHub, Error> {
    Ok(auth.client(repository).await?.with_retries(Retries {
        attempts: 1,
        max_wait: Duration::ZERO,
    }))
}
