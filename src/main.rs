//! `tally`: the command line. Flags are parsed here and in `cmd/` (one file per subcommand), the
//! work is the libraries', and `exit.rs` says what each exit status means.
#![forbid(unsafe_code)]

mod args;
mod cmd;
mod exit;
mod github;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::Exit;
use logging::{LogFormat, LogLevel};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "GitOps reconciliation engine with a built-in manifest gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Lowest level logged by tally (RUST_LOG, when set, replaces it and names crates).
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests (or every environment of a tally repo) against Kubernetes schemas and
    /// policies; report findings at their lines.
    ///
    /// A path holding a `tally.yaml` of kind Repo is a repo: each environment is rendered and
    /// judged as one set. Any other path is plain manifests.
    ///
    /// Exit status: 0 when no finding is at or above --fail-on, 1 when one is, 2 on usage or
    /// I/O errors.
    Validate(cmd::validate::ValidateArgs),
    /// Print an environment's complete desired state, as the engine would apply it.
    ///
    /// The environment is gated as `validate` gates it; findings at or above --fail-on are
    /// printed on stderr. Exit status: 0 rendered, 1 the gate rejects it (the objects are printed
    /// all the same), 2 usage or I/O errors.
    Render(cmd::render::RenderArgs),
    /// What a change to the repo does to each environment: every environment rendered at two
    /// revisions and compared object by object, field by field. No cluster needed.
    ///
    /// Exit status: 0 no change, 3 changes, 2 usage or I/O errors.
    Diff(cmd::diff::DiffArgs),
    /// Write a working repo (two environments, two tenants, three apps) to start from.
    Init(cmd::init::InitArgs),
    /// Gate and render an environment, read the cluster, and print what applying would change.
    ///
    /// Exit status: 0 no changes, 3 changes pending, 1 the gate rejected the commit, 2 usage,
    /// I/O or cluster errors.
    Plan(cmd::deploy::PlanCommand),
    /// Plan, then apply: server-side apply in waves, wait for health, prune what left git.
    ///
    /// Exit status: 0 applied and healthy, 1 the gate rejected the commit (nothing applied), 4
    /// the apply did not complete (a wave failed or timed out; nothing pruned), 2 usage, I/O or
    /// cluster errors.
    Apply(cmd::deploy::ApplyArgs),
    /// Promote a blueGreen app's release that waits for it (`autoPromote: false`): approve it,
    /// then apply, which switches the active Service to the new colour.
    ///
    /// Exit status: as `apply`; 2 when no release of the app waits.
    Promote(cmd::deploy::ReleaseArgs),
    /// Point a blueGreen app's active Service back at its previous colour: one write while that
    /// colour is up, or after scaling it up and waiting for it. The template rolled back from
    /// is not released again until git changes it.
    ///
    /// Exit status: 0 rolled back, 1 the gate rejected the commit, 2 when it cannot be done.
    Rollback(cmd::deploy::ReleaseArgs),
    /// The reconcile daemon: keep an environment equal to a source, every interval.
    ///
    /// Each round gates the source (a commit with findings at or above --fail-on is never
    /// applied; the last good one stays), applies what changed, and corrects drift (or only
    /// reports it with --no-self-heal). Stops between waves on SIGTERM or Ctrl-C.
    Run(cmd::run::RunArgs),
    /// What the cluster says about an environment: the commit applied, the daemon's last
    /// attempt, each app's health now, and inventory objects that went missing.
    ///
    /// Exit status: 0 healthy, 1 something is unhealthy, pending or missing, 2 errors.
    Status(cmd::status::StatusArgs),
    /// List the policy rules (id, severity, title), or explain one.
    Policies(cmd::policies::PoliciesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = logging::install(cli.log_format, cli.log_level) {
        eprintln!("tally: error: {message}");
        return Exit::Error.into();
    }
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::validate(args),
        Command::Render(args) => cmd::render::render(args),
        Command::Diff(args) => cmd::diff::diff(args),
        Command::Init(args) => cmd::init::init(args),
        Command::Plan(args) => cmd::deploy::plan(args),
        Command::Apply(args) => cmd::deploy::apply(args),
        Command::Promote(args) => cmd::deploy::promote(args),
        Command::Rollback(args) => cmd::deploy::rollback(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Status(args) => cmd::status::status(args),
        Command::Policies(args) => cmd::policies::policies(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(message) => {
            eprintln!("tally: error: {message}");
            Exit::Error.into()
        }
    }
}
