//! Flags several commands share: the cluster connection and `--fail-on`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tally_engine::KubeOptions;
use tally_validator::Severity;

/// Which cluster: `--kubeconfig`, `--context`.
#[derive(Args)]
pub struct KubeArgs {
    /// The kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

impl KubeArgs {
    /// The engine's connection options.
    pub fn options(self) -> KubeOptions {
        KubeOptions {
            kubeconfig: self.kubeconfig,
            context: self.context,
            request_timeout: None,
        }
    }
}

/// `--fail-on`: the lowest gate severity that fails a run or rejects a commit.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FailOn {
    /// Errors fail.
    Error,
    /// Warnings and errors fail.
    Warning,
    /// Every finding fails.
    Info,
    /// Nothing fails: findings are reported only.
    Never,
}

impl FailOn {
    /// The severity, or `None` for never.
    pub fn severity(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}
