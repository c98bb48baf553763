//! The daemon reports back to GitHub: a commit status `tally/<env>` on each commit it handles,
//! `pending` while a new commit is applied, then `success` (applied and healthy) or `failure`
//! (the gate rejected it, or the apply or a release failed), with the reason.
//!
//! Reporting never blocks or fails a round: rounds put reports on a bounded queue (a full queue
//! drops the report and counts it), and one task delivers them, trying again on a 429, a spent
//! rate limit or a 5xx after GitHub's `Retry-After` (or its rate limit's reset, else a growing
//! pause), giving up on any other answer. Every outcome is counted in
//! `tally_github_reports_total{result}`. The token is read from its file at each delivery, so a
//! rotated Secret is picked up; it never appears in a log or an error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tally_github::{GitHub, StatusError, StatusState};
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
    /// A file holding the token, read at each delivery.
    pub token_file: Option<PathBuf>,
    /// The token itself (from the environment), when there is no file.
    pub token: Option<String>,
}

/// One commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The commit.
    pub commit: String,
    /// Its state.
    pub state: StatusState,
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
        let context = format!("tally/{environment}");
        tokio::spawn(deliver(config, context, reports, Arc::clone(&metrics)));
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
            description: format!("applying to {environment}"),
        });
    }

    /// A round ended with `record`.
    pub fn finished(&mut self, record: &Record, environment: &str) {
        let (state, description) = match &record.outcome {
            Outcome::Applied { .. } | Outcome::NoChange | Outcome::Drifted { .. } => {
                (StatusState::Success, format!("applied to {environment}"))
            }
            Outcome::Rejected { .. } | Outcome::Failed { .. } => {
                (StatusState::Failure, record.outcome.message())
            }
        };
        self.send(CommitReport {
            commit: record.commit.clone(),
            state,
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
    context: String,
    mut reports: mpsc::Receiver<CommitReport>,
    metrics: Arc<Metrics>,
) {
    while let Some(report) = reports.recv().await {
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            let outcome = match client(&config) {
                Ok(gh) => {
                    gh.commit_status(&report.commit, report.state, &context, &report.description)
                        .await
                }
                Err(e) => Err(StatusError::Fatal(e)),
            };
            match outcome {
                Ok(()) => {
                    metrics.github_report("sent");
                    break;
                }
                Err(StatusError::Retry { after, message }) if attempt < ATTEMPTS => {
                    metrics.github_report("retried");
                    let wait = after.unwrap_or(pause).min(MAX_PAUSE);
                    tracing::warn!(error = %message, wait_s = wait.as_secs_f64(), "GitHub commit status: trying again");
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => {
                    metrics.github_report("failed");
                    tracing::warn!(error = %e, commit = %report.commit, "GitHub commit status not set");
                    break;
                }
            }
        }
    }
}

fn client(config: &GithubReporting) -> Result<GitHub, tally_github::Error> {
    let token = match &config.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| tally_github::Error::Client(format!("{}: {e}", path.display())))?,
        None => config.token.clone().unwrap_or_default(),
    };
    GitHub::new(&config.api_url, &token, &config.repository)
}
