//! `tally plan` and `tally apply`: gate and render the environment once, then ask the engine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use tally_engine::bluegreen;
use tally_engine::cluster::Backoff;
use tally_engine::gate::{Verdict, gate_commit};
use tally_engine::reconcile::ensure_namespace;
use tally_engine::{
    ApplyOptions, KubeCluster, PlanOptions, Retrying, apply as apply_plan, plan as plan_changes,
};
use tally_validator::report::{self, Format, ReportOptions};

use crate::args::{FailOn, KubeArgs};
use crate::exit::{CommandResult, Exit};

/// `tally plan --env ENV [REPO]`.
#[derive(Args)]
pub struct PlanArgs {
    /// The environment.
    #[arg(long, short = 'e')]
    env: String,

    /// The repo's root.
    #[arg(default_value = ".")]
    path: PathBuf,

    #[command(flatten)]
    kube: KubeArgs,

    /// The commit recorded in the inventory (default: the repo's git HEAD).
    #[arg(long)]
    commit: Option<String>,

    /// Lowest gate severity that rejects the commit.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// Apply each tenant's app objects as the tenant's deployer ServiceAccount.
    #[arg(long)]
    impersonate_tenants: bool,
}

/// `tally plan`: the target, and where to report the plan.
#[derive(Args)]
pub struct PlanCommand {
    #[command(flatten)]
    target: PlanArgs,

    #[command(flatten)]
    github: crate::github::GithubArgs,
}

/// `tally apply`: the plan's flags and how to apply.
#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    target: PlanArgs,

    /// How long to wait for each wave to become healthy, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,

    /// Send everything as a server-side dry run: nothing is stored, pruned or recorded.
    #[arg(long)]
    dry_run: bool,

    /// Do not delete objects that left git.
    #[arg(long)]
    no_prune: bool,
}

/// `tally promote` and `tally rollback`: a blueGreen app and how to carry the round on.
#[derive(Args)]
pub struct ReleaseArgs {
    /// The blueGreen app.
    app: String,

    #[command(flatten)]
    apply: ApplyArgs,
}

/// What a command does to a blueGreen app before (or instead of) the round.
enum Release {
    /// Nothing: plan or apply.
    None,
    /// Approve the release waiting for promotion, then apply.
    Promote(String),
    /// Point the active Service back at the previous colour; nothing else is applied.
    Rollback(String),
}

/// Prints what applying would change: exit 0 none, 3 pending, 1 the gate rejected the commit.
/// With `--github`, the plan (or the gate's rejection) is also the environment's comment on the
/// pull request, in place of the cluster-free diff: what applying would do to the live cluster.
pub fn plan(args: PlanCommand) -> CommandResult {
    let github = args.github.target()?;
    deploy(args.target, None, Release::None, github.as_ref())
}

/// Plans, then applies: exit 0 applied and healthy, 4 incomplete, 1 the gate rejected the commit.
pub fn apply(args: ApplyArgs) -> CommandResult {
    let options = apply_options(&args);
    deploy(args.target, Some(options), Release::None, None)
}

/// Approves a release waiting with `autoPromote: false`, then applies (which switches).
pub fn promote(args: ReleaseArgs) -> CommandResult {
    let options = apply_options(&args.apply);
    deploy(
        args.apply.target,
        Some(options),
        Release::Promote(args.app),
        None,
    )
}

/// Points a blueGreen app's active Service back at its previous colour.
pub fn rollback(args: ReleaseArgs) -> CommandResult {
    let options = apply_options(&args.apply);
    deploy(
        args.apply.target,
        Some(options),
        Release::Rollback(args.app),
        None,
    )
}

fn apply_options(args: &ApplyArgs) -> ApplyOptions {
    ApplyOptions {
        dry_run: args.dry_run,
        wait_timeout: Duration::from_secs(args.timeout),
        prune: !args.no_prune,
        ..ApplyOptions::default()
    }
}

fn deploy(
    target: PlanArgs,
    apply_options: Option<ApplyOptions>,
    release: Release,
    github: Option<&crate::github::Target>,
) -> CommandResult {
    let commit = target
        .commit
        .clone()
        .unwrap_or_else(|| head_commit(&target.path));
    // The gate first: a commit it rejects is never planned or applied.
    let mut desired = match gate_commit(
        &target.path,
        &target.env,
        &commit,
        target.fail_on.severity(),
    )
    .map_err(|e| e.to_string())?
    {
        Verdict::Accepted { desired, .. } => desired,
        Verdict::Rejected { report, .. } => {
            let mut out = std::io::stdout().lock();
            report::write(Format::Human, &report, ReportOptions::default(), &mut out)
                .map_err(|e| format!("writing the report: {e}"))?;
            eprintln!(
                "tally: the gate rejected {}: nothing was planned or applied",
                target.env
            );
            if let Some(github) = github {
                let markdown = crate::github::rejected_markdown(&target.env, &report);
                crate::github::summary(&markdown);
                github.comments(&[(target.env.clone(), Some(markdown))]);
            }
            return Ok(Exit::Findings);
        }
    };
    super::runtime()?.block_on(async {
        let cluster = KubeCluster::connect(&target.kube.options())
            .await
            .map_err(|e| format!("connecting to the cluster: {e}"))?;
        let cluster = Retrying::new(cluster, Backoff::default());
        let plan_options = PlanOptions {
            impersonate_tenants: target.impersonate_tenants,
            ..PlanOptions::default()
        };
        let started = Instant::now();
        let environment = desired.environment.clone();
        let advance = |options: &ApplyOptions| bluegreen::AdvanceOptions {
            inventory_namespace: plan_options.inventory_namespace.clone(),
            environment: environment.clone(),
            wait_timeout: options.wait_timeout,
            poll_interval: options.poll_interval,
            impersonate_tenants: plan_options.impersonate_tenants,
        };
        match (&release, &apply_options) {
            (Release::Promote(app), _) => {
                let hash = bluegreen::approve(
                    &cluster,
                    &plan_options.inventory_namespace,
                    &desired.environment,
                    app,
                )
                .await
                .map_err(|e| e.to_string())?;
                println!("blue/green {app}: template {hash} approved for promotion");
            }
            (Release::Rollback(app), Some(options)) => {
                let message = bluegreen::rollback(&cluster, &desired, app, &advance(options))
                    .await
                    .map_err(|e| e.to_string())?;
                println!("blue/green {app}: {message}");
                return Ok(Exit::Ok);
            }
            _ => {}
        }
        let mut releases = bluegreen::prepare(
            &cluster,
            &mut desired,
            &plan_options.inventory_namespace,
            bluegreen::now_secs(),
        )
        .await
        .map_err(|e| format!("planning: {e}"))?;
        let plan = plan_changes(&cluster, desired, &plan_options)
            .await
            .map_err(|e| format!("planning: {e}"))?;
        let mut text = plan.text();
        for line in &releases.lines {
            text.push_str(&format!("blue/green {line}\n"));
        }
        print!("{text}");
        let changes = plan.has_changes() || !releases.steps.is_empty();
        if let Some(github) = github {
            let markdown = crate::github::plan_markdown(&environment, &commit, &text);
            crate::github::summary(&markdown);
            github
                .comment(&[(environment.clone(), changes.then_some(markdown))])
                .await;
        }
        let Some(options) = apply_options else {
            return Ok(if changes { Exit::Changes } else { Exit::Ok });
        };
        if !options.dry_run {
            ensure_namespace(&cluster, &plan.inventory_namespace)
                .await
                .map_err(|e| format!("creating namespace {}: {e}", plan.inventory_namespace))?;
        }
        let report = apply_plan(&cluster, &plan, &options).await;
        print!("{}", report.text());
        let mut clean = report.is_clean();
        if !options.dry_run && (!releases.steps.is_empty() || releases.changed) {
            let advance = advance(&options);
            let released = bluegreen::advance(&cluster, &mut releases, clean, started, &advance)
                .await
                .map_err(|e| format!("blue/green: {e}"))?;
            for r in &released {
                println!("blue/green {}", r.message());
                clean &= !r.failed();
            }
        }
        Ok(if clean { Exit::Ok } else { Exit::Incomplete })
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
