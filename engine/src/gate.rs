//! The gate in front of the engine: a commit's environment is loaded, rendered and judged once
//! (through [`tally_layout::validate::gate_repo`], as `tally validate` judges it), and only a
//! commit the gate accepts becomes a [`Desired`] state. `tally plan`, `tally apply` and every
//! daemon round come through here, with the same `--fail-on`.

use std::path::{Path, PathBuf};

use tally_layout::load;
use tally_layout::load::LayoutError;
use tally_layout::validate::{gate_repo, repo_options};
use tally_validator::gate::GateReport;
use tally_validator::{Finding, Severity};

use crate::Desired;

/// The gate's verdict on one environment of a commit.
#[derive(Debug)]
pub enum Verdict {
    /// Nothing at or above the failing severity: the environment as it is to be applied, and the
    /// report (which may still hold findings below it).
    Accepted {
        /// The rendered environment.
        desired: Desired,
        /// Every finding.
        report: GateReport,
    },
    /// Findings at or above the failing severity: nothing of this commit may be applied.
    Rejected {
        /// Every finding.
        report: GateReport,
        /// The severity the commit failed at.
        fail_on: Severity,
    },
}

impl Verdict {
    /// The findings that rejected the commit (none when it was accepted).
    pub fn failing(&self) -> Vec<&Finding> {
        match self {
            Verdict::Accepted { .. } => Vec::new(),
            Verdict::Rejected { report, fail_on } => report
                .findings
                .iter()
                .filter(|f| f.fails(*fail_on))
                .collect(),
        }
    }
}

/// Why a commit could not be gated at all (as opposed to gated and rejected).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The directory holds no `tally.yaml` of kind Repo.
    #[error("{} is not a tally repo (no tally.yaml of kind Repo)", .0.display())]
    NotARepo(PathBuf),
    /// Loading, configuring or rendering the repo failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Gates `environment` of the repo at `root` (a checkout of `commit`): the repo's own policy
/// configuration, one load, one render. `fail_on: None` reports but never rejects.
pub fn gate_commit(
    root: &Path,
    environment: &str,
    commit: &str,
    fail_on: Option<Severity>,
) -> Result<Verdict, GateError> {
    if !load::is_repo(root) {
        return Err(GateError::NotARepo(root.to_owned()));
    }
    let options = repo_options(root)?;
    let mut gated = gate_repo(root, &options, Some(environment))?;
    if let Some(level) = fail_on.filter(|level| gated.report.fails(*level)) {
        return Ok(Verdict::Rejected {
            report: gated.report,
            fail_on: level,
        });
    }
    let rendered =
        gated
            .take_environment(environment)
            .ok_or_else(|| LayoutError::UnknownEnvironment {
                name: environment.to_owned(),
                known: gated
                    .repo
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    Ok(Verdict::Accepted {
        desired: Desired::from_rendered(rendered, &gated.repo, commit),
        report: gated.report,
    })
}
