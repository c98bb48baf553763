//! `tally run`: the reconcile daemon. Flags become an [`engine::daemon::DaemonConfig`]; the loop
//! is the engine's.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tally_engine::daemon::github::GithubReporting;
use tally_engine::daemon::{self, DaemonConfig};
use tally_engine::source::{self, CredentialFiles, Credentials, GitSettings, Source};
use tally_layout::load;

use crate::args::{FailOn, KubeArgs};
use crate::exit::{CommandResult, Exit};

/// `tally run --env ENV (--path DIR | --repo URL)`.
#[derive(Args)]
pub struct RunArgs {
    /// The environment.
    #[arg(long, short = 'e')]
    env: String,

    /// Follow a local working tree (development; a digest of its files stands for the commit).
    /// The tree is watched: a change reconciles at once, without waiting for the interval.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,

    /// Follow a branch (--branch) of a git repository: `https://...`, `file://...` or a path.
    /// Each round (interval or push) fetches it into the cache and reconciles its head commit.
    #[arg(long, value_name = "URL")]
    repo: Option<String>,

    /// Give up on a fetch of --repo after this many seconds (connecting, each wait for the
    /// server, and the whole transfer); the round fails and the last good commit stays applied.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", requires = "repo")]
    fetch_timeout: u64,

    /// Where --repo's clone and commit trees are kept (default: /var/cache/tally, or a
    /// directory in the temporary directory when that is not writable).
    #[arg(long, value_name = "DIR", requires = "repo")]
    cache_dir: Option<PathBuf>,

    /// Seconds between reconciles.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    interval: u64,

    /// Report drift without correcting it.
    #[arg(long)]
    no_self_heal: bool,

    /// How long to wait for each wave to become healthy, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,

    #[command(flatten)]
    kube: KubeArgs,

    /// Lowest gate severity that rejects a commit (it is never applied; the last good one stays).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// Apply each tenant's app objects as the tenant's deployer ServiceAccount.
    #[arg(long)]
    impersonate_tenants: bool,

    /// Serve /healthz, /readyz, /metrics and the webhook on this address (`:8080` for all
    /// interfaces, `127.0.0.1:8080`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Set a commit status `tally/<env>` on each commit handled, in this repository
    /// (`OWNER/NAME`): pending while it is applied, then success or failure with the reason.
    #[arg(long, value_name = "OWNER/NAME")]
    github_repo: Option<String>,

    /// A file holding the token for `--github-repo` (read at each report, so a rotated Secret
    /// is picked up; default: the `TALLY_GITHUB_TOKEN` environment variable).
    #[arg(long, value_name = "PATH", requires = "github_repo")]
    github_token_file: Option<PathBuf>,

    /// The GitHub API's URL (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://api.github.com",
        requires = "github_repo"
    )]
    github_api_url: String,

    /// Also record a GitHub Deployment per commit to the environment, with its statuses
    /// (in_progress, then success, failure, or error when the gate rejected it).
    #[arg(long, requires = "github_repo")]
    github_deployments: bool,

    #[command(flatten)]
    github_app: crate::github::AppArgs,

    /// A file holding the GitHub webhook secret; enables `POST /hooks/github`.
    #[arg(long, value_name = "PATH", requires = "listen")]
    webhook_secret_file: Option<PathBuf>,

    /// Elect a leader on a Lease (`tally-<env>` in tally-system) so several replicas never
    /// apply at once; only the leader reconciles and reports ready.
    #[arg(long)]
    leader_election: bool,

    /// How long the leader's claim lasts without renewal, in seconds.
    #[arg(
        long,
        default_value_t = 15,
        value_name = "SECONDS",
        requires = "leader_election"
    )]
    lease_duration: u64,

    /// The branch to follow (--repo), and whose pushes trigger a reconcile.
    #[arg(long, default_value = "main")]
    branch: String,

    /// HTTPS: a file holding a token (GitHub, GitLab, Bitbucket...), sent as the password of basic
    /// auth; read at each fetch, so a rotated Secret is picked up. Default: the TALLY_GIT_TOKEN
    /// environment variable.
    #[arg(long, value_name = "PATH", requires = "repo")]
    git_token_file: Option<PathBuf>,

    /// HTTPS: the user name sent with the token (default: the URL's, else x-access-token, which
    /// GitHub accepts for every token); SSH: the user when the URL names none (default git).
    #[arg(long, value_name = "NAME", requires = "repo")]
    git_username: Option<String>,

    /// SSH: the private key file (OpenSSH or PEM format), for ssh:// and git@host:path remotes.
    #[arg(long, value_name = "PATH", requires = "repo")]
    git_ssh_key: Option<PathBuf>,

    /// SSH: a file holding the private key's passphrase.
    #[arg(long, value_name = "PATH", requires = "git_ssh_key")]
    git_ssh_passphrase_file: Option<PathBuf>,

    /// SSH: the known_hosts file the server's host key must be in (`ssh-keyscan HOST` prints the
    /// lines); required for SSH remotes: no host is trusted without it.
    #[arg(long, value_name = "PATH", requires = "repo")]
    git_known_hosts: Option<PathBuf>,
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub fn run(args: RunArgs) -> CommandResult {
    let config = config(args)?;
    super::runtime()?
        .block_on(daemon::run(config))
        .map_err(|e| e.to_string())?;
    Ok(Exit::Ok)
}

fn config(args: RunArgs) -> Result<DaemonConfig, String> {
    let source = match (args.path, args.repo) {
        (Some(path), None) => {
            if !load::is_repo(&path) {
                return Err(format!(
                    "{} is not a tally repo (no tally.yaml of kind Repo)",
                    path.display()
                ));
            }
            Source::Tree(path)
        }
        (None, Some(url)) => {
            let cache = match args.cache_dir {
                Some(dir) if source::writable(&dir) => dir,
                Some(dir) => return Err(format!("--cache-dir {}: not writable", dir.display())),
                None => source::default_cache_dir(),
            };
            let files = CredentialFiles {
                token_file: args.git_token_file,
                username: args.git_username,
                ssh_key: args.git_ssh_key,
                ssh_passphrase_file: args.git_ssh_passphrase_file,
                known_hosts: args.git_known_hosts,
            };
            let credentials =
                Credentials::resolve(&url, files, std::env::var(source::TOKEN_ENV).ok())
                    .map_err(|e| e.to_string())?;
            Source::Git(GitSettings {
                url,
                branch: args.branch.clone(),
                cache,
                credentials,
                fetch_timeout: Duration::from_secs(args.fetch_timeout.max(1)),
            })
        }
        _ => return Err("give exactly one source: --repo URL or --path DIR".into()),
    };
    let listen = match args.listen.as_deref() {
        None => None,
        Some(a) => {
            let full = if a.starts_with(':') {
                format!("0.0.0.0{a}")
            } else {
                a.to_owned()
            };
            Some(full.parse().map_err(|e| format!("--listen {a}: {e}"))?)
        }
    };
    let webhook_secret = match &args.webhook_secret_file {
        None => None,
        Some(p) => {
            let text = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            // Secret files usually end with a newline that is not part of the secret.
            let trimmed = text.trim_ascii_end().to_vec();
            if trimmed.is_empty() {
                return Err(format!("{} is empty", p.display()));
            }
            Some(trimmed)
        }
    };
    let leader_election = args.leader_election.then(|| {
        // The pod's name in a cluster (downward API), else the host and process.
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        (identity, Duration::from_secs(args.lease_duration.max(2)))
    });
    Ok(DaemonConfig {
        source,
        environment: args.env,
        fail_on: args.fail_on.severity(),
        interval: Duration::from_secs(args.interval.max(1)),
        self_heal: !args.no_self_heal,
        timeout: Duration::from_secs(args.timeout),
        kube: args.kube.options(),
        impersonate_tenants: args.impersonate_tenants,
        listen,
        webhook_secret,
        leader_election,
        branch: args.branch,
        github: match args.github_repo {
            Some(repository) => Some(GithubReporting {
                api_url: args.github_api_url,
                repository,
                credentials: args
                    .github_app
                    .credentials(args.github_token_file.as_deref(), "TALLY_GITHUB_TOKEN")
                    .ok_or(
                        "--github-repo needs credentials: --github-token-file, TALLY_GITHUB_TOKEN, \
                         or a GitHub App (--github-app-id, --github-app-installation, \
                         --github-app-key-file)",
                    )?,
                deployments: args.github_deployments,
            }),
            None => None,
        },
    })
}
