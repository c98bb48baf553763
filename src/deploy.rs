//! `tally plan` and `tally apply`: gate the repo, render the environment, then ask the engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tally_engine::cluster::Backoff;
use tally_engine::{
    ApplyOptions, Desired, KubeCluster, KubeOptions, PlanOptions, Retrying, apply, plan,
};
use tally_layout::{load, render, validate as layout_validate};
use tally_validator::Severity;
use tally_validator::gate::GateOptions;
use tally_validator::report::{self, Format, ReportOptions};

/// Exit status of `tally plan` when changes are pending.
pub const EXIT_CHANGES: u8 = 3;
/// Exit status of `tally apply` when the apply did not complete (a wave failed or timed out).
pub const EXIT_APPLY_FAILED: u8 = 4;

/// What `plan` and `apply` share.
pub struct Target {
    /// The repo's root.
    pub root: PathBuf,
    /// The environment.
    pub env: String,
    /// The commit recorded in the inventory (`git rev-parse HEAD` of the repo by default).
    pub commit: Option<String>,
    /// Where the kubeconfig is, and which context.
    pub kube: KubeOptions,
    /// Lowest severity that rejects the commit (`None`: the gate reports but never rejects).
    pub fail_on: Option<Severity>,
    /// Apply tenant apps as their deployer ServiceAccounts.
    pub impersonate_tenants: bool,
}

/// How an apply runs.
pub struct ApplySettings {
    /// Health wait per wave.
    pub timeout: Duration,
    /// Server-side dry run.
    pub dry_run: bool,
    /// Whether to prune.
    pub prune: bool,
}

/// `tally plan` (with `apply: None`) or `tally apply`. Returns the exit status.
pub fn run(target: Target, apply_settings: Option<ApplySettings>) -> Result<u8, String> {
    if !load::is_repo(&target.root) {
        return Err(format!(
            "{} is not a tally repo (no tally.yaml of kind Repo)",
            target.root.display()
        ));
    }
    // The gate first: a commit it rejects is never applied.
    let mut options = GateOptions::default();
    let config = target.root.join(load::REPO_FILE);
    options.policy =
        tally_validator::policy::PolicyConfig::load(&config).map_err(|e| e.to_string())?;
    let report = layout_validate::validate_repo(&target.root, &options, Some(&target.env))
        .map_err(|e| e.to_string())?;
    if target.fail_on.is_some_and(|level| report.fails(level)) {
        let mut out = std::io::stdout().lock();
        report::write(Format::Human, &report, ReportOptions::default(), &mut out)
            .map_err(|e| format!("writing the report: {e}"))?;
        eprintln!(
            "tally: the gate rejected {}: nothing was planned or applied",
            target.env
        );
        return Ok(1);
    }
    let repo = load::load(&target.root).map_err(|e| e.to_string())?;
    let rendered = render::render(&repo, &target.env, &[]).map_err(|e| e.to_string())?;
    let commit = target
        .commit
        .clone()
        .unwrap_or_else(|| head_commit(&target.root));
    let desired = Desired::from_rendered(rendered, &repo, commit);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let cluster = KubeCluster::connect(&target.kube)
            .await
            .map_err(|e| format!("connecting to the cluster: {e}"))?;
        let cluster = Retrying::new(cluster, Backoff::default());
        let plan_options = PlanOptions {
            impersonate_tenants: target.impersonate_tenants,
            ..PlanOptions::default()
        };
        let plan = plan(&cluster, desired, &plan_options)
            .await
            .map_err(|e| format!("planning: {e}"))?;
        print!("{}", plan.text());
        let Some(settings) = apply_settings else {
            return Ok(if plan.has_changes() { EXIT_CHANGES } else { 0 });
        };
        if !settings.dry_run {
            tally_engine::reconcile::ensure_namespace(&cluster, &plan.inventory_namespace).await?;
        }
        let options = ApplyOptions {
            dry_run: settings.dry_run,
            wait_timeout: settings.timeout,
            prune: settings.prune,
            ..ApplyOptions::default()
        };
        let report = apply(&cluster, &plan, &options).await;
        print!("{}", report.text());
        Ok(if report.is_clean() {
            0
        } else {
            EXIT_APPLY_FAILED
        })
    })
}

/// The repo's HEAD commit when it is a git checkout, else `working-tree`.
fn head_commit(root: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "working-tree".into())
}

/// `tally status`: the environment as the cluster has it.
pub fn status(env: &str, kube: KubeOptions) -> Result<u8, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let cluster = KubeCluster::connect(&kube)
            .await
            .map_err(|e| format!("connecting to the cluster: {e}"))?;
        let cluster = Retrying::new(cluster, Backoff::default());
        let namespace = PlanOptions::default().inventory_namespace;
        let status = tally_engine::status::status(&cluster, env, &namespace)
            .await
            .map_err(|e| format!("reading the status: {e}"))?;
        print!("{}", status.text());
        Ok(if status.is_healthy() { 0 } else { 1 })
    })
}
