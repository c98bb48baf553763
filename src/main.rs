//! `tally`: the command line. Arguments in, library calls out; nothing else lives here.
#![forbid(unsafe_code)]

mod daemon;
mod deploy;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tally_engine::source;
use tally_layout::{emit, init, load, render, validate as layout_validate};
use tally_validator::Severity;
use tally_validator::gate::{self, GateOptions, GateReport};
use tally_validator::policy::{self, Catalog, PolicyConfig};
use tally_validator::report::{self, Format, ReportOptions};
use tally_validator::schema::{MissingSchema, SchemaOptions};

/// Exit status: nothing at or above --fail-on.
const EXIT_OK: u8 = 0;
/// Exit status: findings at or above --fail-on.
const EXIT_FINDINGS: u8 = 1;
/// Exit status: usage or I/O error.
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "GitOps reconciliation engine with a built-in manifest gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Validate(ValidateArgs),
    /// Print an environment's complete desired state, as the engine would apply it.
    ///
    /// Exit status: 0 rendered, 1 the repo has errors (the objects are printed all the same), 2
    /// usage or I/O errors.
    Render(RenderArgs),
    /// Write a working repo (two environments, two tenants, three apps) to start from.
    Init(InitArgs),
    /// Gate and render an environment, read the cluster, and print what applying would change.
    ///
    /// Exit status: 0 no changes, 3 changes pending, 1 the gate rejected the commit, 2 usage,
    /// I/O or cluster errors.
    Plan(DeployArgs),
    /// Plan, then apply: server-side apply in waves, wait for health, prune what left git.
    ///
    /// Exit status: 0 applied and healthy, 1 the gate rejected the commit (nothing applied), 4
    /// the apply did not complete (a wave failed or timed out; nothing pruned), 2 usage, I/O or
    /// cluster errors.
    Apply(ApplyArgs),
    /// The reconcile daemon: keep an environment equal to a source, every interval.
    ///
    /// Each round gates the source (a rejected state is never applied; the last good one stays),
    /// applies what changed, and corrects drift (or only reports it with --no-self-heal). Stops
    /// between waves on SIGTERM or Ctrl-C.
    Run(RunArgs),
    /// What the cluster says about an environment: the commit applied, the daemon's last
    /// attempt, each app's health now, and inventory objects that went missing.
    ///
    /// Exit status: 0 healthy, 1 something is unhealthy, pending or missing, 2 errors.
    Status(StatusArgs),
    /// List the policy rules (id, severity, title), or explain one.
    Policies(PoliciesArgs),
}

#[derive(Args)]
struct PoliciesArgs {
    #[command(subcommand)]
    command: Option<PoliciesCommand>,
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// Show one rule: why it matters, how to fix it, references, a violation and its fix.
    Explain {
        /// The rule id, as `tally policies` lists it.
        id: String,
    },
}

#[derive(Args)]
struct RenderArgs {
    /// The environment to render.
    #[arg(long, short = 'e')]
    env: String,

    /// The repo's root.
    #[arg(default_value = ".")]
    path: PathBuf,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = RenderFormat::Yaml)]
    format: RenderFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum RenderFormat {
    Yaml,
    Json,
}

#[derive(Args)]
struct DeployArgs {
    /// The environment.
    #[arg(long, short = 'e')]
    env: String,

    /// The repo's root.
    #[arg(default_value = ".")]
    path: PathBuf,

    /// The kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// The kubeconfig context (default: its current context).
    #[arg(long)]
    context: Option<String>,

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

#[derive(Args)]
struct ApplyArgs {
    #[command(flatten)]
    target: DeployArgs,

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

#[derive(Args)]
struct StatusArgs {
    /// The environment.
    #[arg(long, short = 'e')]
    env: String,

    /// The kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// The kubeconfig context.
    #[arg(long)]
    context: Option<String>,
}

#[derive(Args)]
struct RunArgs {
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

    /// The kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// The kubeconfig context.
    #[arg(long)]
    context: Option<String>,

    /// Apply each tenant's app objects as the tenant's deployer ServiceAccount.
    #[arg(long)]
    impersonate_tenants: bool,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Serve /healthz, /readyz, /metrics and the webhook on this address (`:8080` for all
    /// interfaces, `127.0.0.1:8080`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

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

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct InitArgs {
    /// Where to write the repo (created; must be empty).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

#[derive(Args)]
struct ValidateArgs {
    /// Files or directories to check (`-` reads stdin). Directories are walked for .yaml, .yml
    /// and .json files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,

    /// Report format on stdout: human, json, sarif, junit, github.
    #[arg(long, short = 'f', value_parser = parse_format)]
    format: Option<Format>,

    /// Also write a report to a file, as FORMAT=PATH (repeatable).
    #[arg(long, short = 'o', value_name = "FORMAT=PATH", value_parser = parse_output)]
    output: Vec<(Format, PathBuf)>,

    /// Lowest severity that fails the run.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// Kubernetes version (X.Y) whose schemas to use; the newest embedded by default.
    #[arg(long, value_name = "X.Y")]
    kubernetes_version: Option<String>,

    /// Extra schemas: a directory or a kubeconform-style template such as
    /// `dir/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json` (repeatable).
    #[arg(long, value_name = "LOCATION")]
    schema_location: Vec<String>,

    /// CustomResourceDefinition files or directories that supply schemas (repeatable).
    #[arg(long, value_name = "PATH")]
    crd: Vec<PathBuf>,

    /// What a kind without a schema is.
    #[arg(long, value_enum, default_value_t = MissingSchemaArg::Warn)]
    missing_schema: MissingSchemaArg,

    /// Skip paths matching this glob (gitignore syntax; repeatable). `.tallyignore` files too.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Policy configuration (`tally.yaml`). Default: `tally.yaml` in the current directory, else
    /// the nearest one from the first path up to the repository root.
    #[arg(long, value_name = "PATH", conflicts_with = "no_config")]
    config: Option<PathBuf>,

    /// Read no policy configuration: every rule on, at its default severity.
    #[arg(long)]
    no_config: bool,

    /// Check schemas only; run no policy.
    #[arg(long)]
    no_policies: bool,

    /// In a repo, validate only this environment (default: all of them).
    #[arg(long, short = 'e')]
    env: Option<String>,

    /// Colour in the human format.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
enum MissingSchemaArg {
    Error,
    Warn,
    Ignore,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_output(s: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FORMAT=PATH, got `{s}`"))?;
    if path.is_empty() {
        return Err(format!("no path after `{format}=`"));
    }
    Ok((format.parse()?, PathBuf::from(path)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate(args),
        Command::Render(args) => render_environment(args),
        Command::Init(args) => init_repo(args),
        Command::Run(args) => run_daemon(args),
        Command::Status(args) => deploy::status(
            &args.env,
            tally_engine::KubeOptions {
                kubeconfig: args.kubeconfig,
                context: args.context,
                request_timeout: None,
            },
        ),
        Command::Plan(args) => deploy::run(target(args), None),
        Command::Apply(args) => deploy::run(
            target(args.target),
            Some(deploy::ApplySettings {
                timeout: std::time::Duration::from_secs(args.timeout),
                dry_run: args.dry_run,
                prune: !args.no_prune,
            }),
        ),
        Command::Policies(args) => policies(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("tally: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn policies(args: PoliciesArgs) -> Result<u8, String> {
    let catalog = Catalog::builtin();
    let text = match args.command {
        None => catalog.table(),
        Some(PoliciesCommand::Explain { id }) => match catalog.explain(&id) {
            Some(text) => text,
            None => {
                let hint = match catalog.suggest(&id) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => "; `tally policies` lists them".to_owned(),
                };
                return Err(format!("unknown rule `{id}`{hint}"));
            }
        },
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))?;
    Ok(EXIT_OK)
}

fn validate(args: ValidateArgs) -> Result<u8, String> {
    let repo_root = match args.paths.as_slice() {
        [one] if load::is_repo(one) => Some(one.clone()),
        _ => None,
    };
    if args.env.is_some() && repo_root.is_none() {
        return Err("--env needs a tally repo (a directory with a tally.yaml of kind Repo)".into());
    }
    let config_path = match (&args.config, args.no_config, &repo_root) {
        (_, true, _) => None,
        (Some(path), false, _) => Some(path.clone()),
        (None, false, Some(root)) => Some(root.join(load::REPO_FILE)),
        (None, false, None) => policy::config::find(&args.paths),
    };
    let policy = match config_path {
        Some(path) => PolicyConfig::load(&path).map_err(|e| e.to_string())?,
        None => PolicyConfig::default(),
    };
    let options = GateOptions {
        schema: SchemaOptions {
            kubernetes_version: args.kubernetes_version.clone(),
            locations: args.schema_location.clone(),
            missing_schema: match args.missing_schema {
                MissingSchemaArg::Error => MissingSchema::Error,
                MissingSchemaArg::Warn => MissingSchema::Warn,
                MissingSchemaArg::Ignore => MissingSchema::Ignore,
            },
        },
        crds: args.crd.clone(),
        excludes: args.exclude.clone(),
        policy,
        skip_policies: args.no_policies,
    };
    let report = match &repo_root {
        Some(root) => layout_validate::validate_repo(root, &options, args.env.as_deref())
            .map_err(|e| e.to_string())?,
        None => gate::run(&args.paths, &options).map_err(|e| e.to_string())?,
    };
    if report.files == 0 {
        // A gate that read nothing passes nothing on purpose: say so, so a wrong path in CI shows.
        eprintln!(
            "tally: warning: no .yaml, .yml or .json files under {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    write_reports(&report, &args)?;
    let fail_on = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    Ok(match fail_on {
        Some(level) if report.fails(level) => EXIT_FINDINGS,
        _ => EXIT_OK,
    })
}

fn write_reports(report: &GateReport, args: &ValidateArgs) -> Result<(), String> {
    let stdout = io::stdout();
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let report_options = ReportOptions { color };
    let mut formats = vec![args.format.unwrap_or(Format::Human)];
    // Inside GitHub Actions the human report also becomes annotations on the pull request.
    if args.format.is_none() && std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        formats.push(Format::Github);
    }
    let mut out = BufWriter::new(stdout.lock());
    for format in formats {
        report::write(format, report, report_options, &mut out)
            .map_err(|e| format!("writing the report: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the report: {e}"))?;
    for (format, path) in &args.output {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = BufWriter::new(file);
        report::write(*format, report, ReportOptions { color: false }, &mut w)
            .and_then(|()| w.flush())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }

    Ok(())
}

fn render_environment(args: RenderArgs) -> Result<u8, String> {
    if !load::is_repo(&args.path) {
        return Err(format!(
            "{} is not a tally repo (no tally.yaml of kind Repo); `tally init` writes one",
            args.path.display()
        ));
    }
    let repo = load::load(&args.path).map_err(|e| e.to_string())?;
    let mut problems = repo.findings.clone();
    problems.extend(tally_layout::check::check(&repo));
    let rendered = render::render(&repo, &args.env, &[]).map_err(|e| e.to_string())?;
    problems.extend(rendered.findings.iter().cloned());
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match args.format {
        RenderFormat::Yaml => rendered.objects.iter().try_for_each(|o| {
            let origin = format!("{}:{}", o.provenance.file, o.positions.pos().line);
            write!(out, "---\n# source: {origin}\n{}", emit::to_yaml(&o.value))
        }),
        RenderFormat::Json => {
            let objects: Vec<_> = rendered
                .objects
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "source": {"file": &*o.provenance.file, "line": o.positions.pos().line},
                        "object": o.value,
                    })
                })
                .collect();
            let doc = serde_json::json!({"environment": args.env, "objects": objects});
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        }
    };
    let errors: Vec<_> = problems
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    let code = if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    };
    match written.and_then(|()| out.flush()) {
        // A closed pipe (`tally render | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.map_err(|e| format!("writing to stdout: {e}"))?,
    }
    for f in &errors {
        eprintln!(
            "{}:{}:{}: error[{}]: {}",
            f.file, f.pos.line, f.pos.column, f.rule, f.message
        );
    }
    Ok(code)
}

fn run_daemon(args: RunArgs) -> Result<u8, String> {
    let source = match (args.path.clone(), args.repo.clone()) {
        (Some(path), None) => {
            if !load::is_repo(&path) {
                return Err(format!(
                    "{} is not a tally repo (no tally.yaml of kind Repo)",
                    path.display()
                ));
            }
            daemon::Source::Path(path)
        }
        (None, Some(url)) => {
            let cache = match &args.cache_dir {
                Some(dir) if tally_engine::source::writable(dir) => dir.clone(),
                Some(dir) => return Err(format!("--cache-dir {}: not writable", dir.display())),
                None => tally_engine::source::default_cache_dir(),
            };
            let credentials = git_credentials(&args, &url)?;
            daemon::Source::Git {
                url,
                cache,
                credentials,
                fetch_timeout: std::time::Duration::from_secs(args.fetch_timeout.max(1)),
            }
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
    // The pod's name in a cluster (downward API), else the host and process.
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let leader_election = args.leader_election.then(|| {
        (
            identity,
            std::time::Duration::from_secs(args.lease_duration.max(2)),
        )
    });
    daemon::run(daemon::Daemon {
        leader_election,
        listen,
        webhook_secret,
        branch: args.branch,
        source,
        environment: args.env,
        interval: std::time::Duration::from_secs(args.interval.max(1)),
        self_heal: !args.no_self_heal,
        timeout: std::time::Duration::from_secs(args.timeout),
        kube: tally_engine::KubeOptions {
            kubeconfig: args.kubeconfig,
            context: args.context,
            request_timeout: None,
        },
        impersonate_tenants: args.impersonate_tenants,
        json_logs: matches!(args.log_format, LogFormat::Json),
    })
}

/// The credentials for `url` from the `--git-*` flags and `TALLY_GIT_TOKEN`, checked at start so a
/// wrong path or a flag that cannot apply to this remote is an error now, not at the first fetch.
fn git_credentials(args: &RunArgs, url: &str) -> Result<source::Credentials, String> {
    use source::{KnownHosts, Token, Transport};
    let ssh = Transport::of(url) == Transport::Ssh;
    let env = std::env::var(source::TOKEN_ENV).ok();
    let token = if ssh {
        if args.git_token_file.is_some() {
            return Err(format!(
                "--git-token-file is for HTTPS remotes; {} is an SSH remote: give --git-ssh-key",
                source::redact_url(url)
            ));
        }
        None
    } else {
        for (flag, given) in [
            ("--git-ssh-key", args.git_ssh_key.is_some()),
            ("--git-known-hosts", args.git_known_hosts.is_some()),
        ] {
            if given {
                return Err(format!(
                    "{flag} is for SSH remotes (ssh://... or git@host:path); {} is not one",
                    source::redact_url(url)
                ));
            }
        }
        Token::choose(args.git_token_file.clone(), env)
    };
    if let Some(Token::File(path)) = &token {
        source::read_secret(path, "token file").map_err(|e| format!("--git-token-file: {e}"))?;
    }
    if ssh {
        let Some(known_hosts) = &args.git_known_hosts else {
            return Err(format!(
                "{} is an SSH remote: give --git-known-hosts FILE with its host key \
                 (`ssh-keyscan HOST > FILE`); tally never trusts an unknown host",
                source::redact_url(url)
            ));
        };
        KnownHosts::load(known_hosts).map_err(|e| format!("--git-known-hosts: {e}"))?;
        let Some(key) = &args.git_ssh_key else {
            return Err(format!(
                "{} is an SSH remote: give --git-ssh-key with a deploy key",
                source::redact_url(url)
            ));
        };
        std::fs::File::open(key).map_err(|e| format!("--git-ssh-key {}: {e}", key.display()))?;
        if let Some(p) = &args.git_ssh_passphrase_file {
            source::read_secret(p, "passphrase file")
                .map_err(|e| format!("--git-ssh-passphrase-file: {e}"))?;
        }
    }
    Ok(source::Credentials {
        username: args.git_username.clone(),
        token,
        ssh_key: args.git_ssh_key.clone().map(|private_key| source::SshKey {
            private_key,
            passphrase_file: args.git_ssh_passphrase_file.clone(),
        }),
        known_hosts: args.git_known_hosts.clone(),
    })
}

fn target(args: DeployArgs) -> deploy::Target {
    deploy::Target {
        root: args.path,
        env: args.env,
        commit: args.commit,
        kube: tally_engine::KubeOptions {
            kubeconfig: args.kubeconfig,
            context: args.context,
            request_timeout: None,
        },
        fail_on: match args.fail_on {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        },
        impersonate_tenants: args.impersonate_tenants,
    }
}

fn init_repo(args: InitArgs) -> Result<u8, String> {
    let written = init::init(&args.dir).map_err(|e| e.to_string())?;
    println!(
        "wrote {} files to {}; next: tally validate {} && tally render --env staging {}",
        written.len(),
        args.dir.display(),
        args.dir.display(),
        args.dir.display()
    );
    Ok(EXIT_OK)
}
