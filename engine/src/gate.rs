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
    let mut options = repo_options(root)?;
    let memory = memory_limit().map(|limit| (limit, input_budget(limit)));
    let capped = memory.filter(|(_, budget)| *budget < options.limits.max_total_bytes);
    if let Some((_, budget)) = capped {
        options.limits.max_total_bytes = budget;
    }
    let mut gated = gate_repo(root, &options, Some(environment))?;
    if let Some((limit, budget)) = capped {
        explain_memory_cap(&mut gated.report, limit, budget);
    }
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

/// Gating holds one environment's parsed objects at once, about thirty times the bytes of its
/// manifests, and a round holds the rendering while it applies: under a memory limit (a pod's),
/// a commit may bring at most this share of what is left after the process itself.
const MEMORY_PER_INPUT_BYTE: u64 = 40;

/// What the process itself takes before a commit is read, set aside from the memory limit.
const BASELINE_MEMORY: u64 = 64 << 20;

/// The most input bytes one environment of a commit may bring under a memory limit of `limit`
/// bytes: a commit past it is rejected (an `input-limit` finding) instead of the pod being
/// killed for memory, and the last good commit stays applied.
pub fn input_budget(limit: u64) -> u64 {
    (limit.saturating_sub(BASELINE_MEMORY) / MEMORY_PER_INPUT_BYTE).max(1 << 20)
}

/// The memory limit of the cgroup this process runs in (a container's), when it has one.
pub fn memory_limit() -> Option<u64> {
    // cgroup v2, then v1 (which writes a huge number for "no limit").
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = || std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let text = v2.or_else(v1)?;
    text.trim().parse::<u64>().ok().filter(|&n| n < 1 << 60)
}

/// Says, on each input-limit finding the memory cap caused, where the limit came from.
fn explain_memory_cap(report: &mut GateReport, limit: u64, budget: u64) {
    let crossed = format!("passed {budget} bytes");
    for f in &mut report.findings {
        if f.rule == tally_validator::yaml::rules::LIMIT && f.message.contains(&crossed) {
            f.message.push_str(&format!(
                "; under a memory limit of {} MiB, one environment may read {} MiB (1/{MEMORY_PER_INPUT_BYTE} of the limit past {} MiB): raise the pod's memory limit to read more",
                limit >> 20,
                budget >> 20,
                BASELINE_MEMORY >> 20,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::input_budget;

    #[test]
    fn the_input_budget_follows_the_memory_limit() {
        assert_eq!(input_budget(512 << 20), (448 << 20) / 40);
        assert_eq!(input_budget(4 << 30), ((4 << 30) - (64 << 20)) / 40);
        // Never below 1 MiB, however small the limit.
        assert_eq!(input_budget(32 << 20), 1 << 20);
    }
}
