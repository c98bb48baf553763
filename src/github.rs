//! `--github`: the pull-request side of `tally validate` (a check run with every finding as an
//! annotation) and `tally diff` (one comment per environment, edited in place).
//!
//! Where it runs is read from the GitHub Actions environment (`GITHUB_REPOSITORY`,
//! `GITHUB_API_URL`, `GITHUB_SHA`, and the event payload at `GITHUB_EVENT_PATH` for a pull
//! request's number and head commit); every value can be given as a flag instead. The token is
//! `--github-token-file` (read when used) or `GITHUB_TOKEN`. Without a token, or with one that
//! cannot write (a pull request from a fork gets a read-only one), the same text goes to the job
//! summary, and the run says why; the command's exit status never depends on GitHub.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;
use tally_github::{Annotation, App, Auth, CheckRun, Conclusion, Credentials, GitHub, Level};
use tally_validator::gate::GateReport;
use tally_validator::{Finding, Severity};

/// The flags of `--github`.
#[derive(Args, Clone, Debug, Default)]
pub struct GithubArgs {
    /// Report to GitHub: a check run (`validate`) or a pull-request comment per environment
    /// (`diff`).
    #[arg(long)]
    pub github: bool,

    /// A file holding the token (default: `GITHUB_TOKEN`).
    #[arg(long, value_name = "PATH", requires = "github")]
    pub github_token_file: Option<PathBuf>,

    /// `OWNER/NAME` (default: `GITHUB_REPOSITORY`).
    #[arg(long, value_name = "OWNER/NAME", requires = "github")]
    pub github_repository: Option<String>,

    /// The commit to report on (default: the pull request's head, else `GITHUB_SHA`).
    #[arg(long, value_name = "SHA", requires = "github")]
    pub github_sha: Option<String>,

    /// The pull request (default: the event's).
    #[arg(long, value_name = "NUMBER", requires = "github")]
    pub github_pr: Option<u64>,

    /// The API's URL (default: `GITHUB_API_URL`, else https://api.github.com; GitHub Enterprise
    /// Server: `https://HOST/api/v3`).
    #[arg(long, value_name = "URL", requires = "github")]
    pub github_api_url: Option<String>,

    #[command(flatten)]
    pub app: AppArgs,
}

/// A GitHub App's credentials, instead of a token.
#[derive(Args, Clone, Debug, Default)]
pub struct AppArgs {
    /// Authenticate as this GitHub App (with `--github-app-installation` and
    /// `--github-app-key-file`): tally signs a JWT with the App's key and uses installation
    /// tokens, exchanged again before they expire.
    #[arg(
        long,
        value_name = "ID",
        requires_all = ["github_app_installation", "github_app_key_file"]
    )]
    pub github_app_id: Option<u64>,

    /// The App's installation on the repository's owner.
    #[arg(long, value_name = "ID", requires = "github_app_id")]
    pub github_app_installation: Option<u64>,

    /// The App's private key (PEM, as GitHub hands it out), read at each token exchange.
    #[arg(long, value_name = "PATH", requires = "github_app_id")]
    pub github_app_key_file: Option<PathBuf>,
}

impl AppArgs {
    /// The credentials: the App's, else the token file, else the token in environment
    /// variable `token_env`; `None` without any.
    pub fn credentials(&self, token_file: Option<&Path>, token_env: &str) -> Option<Credentials> {
        if let (Some(id), Some(installation), Some(key_file)) = (
            self.github_app_id,
            self.github_app_installation,
            &self.github_app_key_file,
        ) {
            return Some(Credentials::App(App {
                id,
                installation,
                key_file: key_file.clone(),
            }));
        }
        if let Some(file) = token_file {
            return Some(Credentials::TokenFile(file.to_owned()));
        }
        std::env::var(token_env)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(Credentials::Token)
    }
}

/// Where to report, resolved from the flags and the environment.
pub struct Target {
    api_url: String,
    credentials: Option<Credentials>,
    repository: String,
    sha: Option<String>,
    pr: Option<u64>,
}

impl GithubArgs {
    /// The target, or `None` without `--github`.
    pub fn target(&self) -> Result<Option<Target>, String> {
        if !self.github {
            return Ok(None);
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let event: Value = env("GITHUB_EVENT_PATH")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let credentials = self
            .app
            .credentials(self.github_token_file.as_deref(), "GITHUB_TOKEN");
        let repository = self
            .github_repository
            .clone()
            .or_else(|| env("GITHUB_REPOSITORY"))
            .ok_or("--github needs the repository: --github-repository OWNER/NAME or GITHUB_REPOSITORY")?;
        let sha = self
            .github_sha
            .clone()
            .or_else(|| {
                event
                    .pointer("/pull_request/head/sha")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| env("GITHUB_SHA"));
        let pr = self.github_pr.or_else(|| {
            event
                .pointer("/pull_request/number")
                .and_then(Value::as_u64)
        });
        Ok(Some(Target {
            api_url: self
                .github_api_url
                .clone()
                .or_else(|| env("GITHUB_API_URL"))
                .unwrap_or_else(|| "https://api.github.com".into()),
            credentials,
            repository,
            sha,
            pr,
        }))
    }
}

impl Target {
    /// A client, or why there is none (said once on stderr; the caller falls back).
    async fn client(&self) -> Option<GitHub> {
        let Some(credentials) = &self.credentials else {
            fallback("no GitHub token (GITHUB_TOKEN, --github-token-file or a GitHub App)");
            return None;
        };
        match Auth::new(&self.api_url, credentials.clone())
            .client(&self.repository)
            .await
        {
            Ok(c) => Some(c),
            Err(e) => {
                fallback(&e.to_string());
                None
            }
        }
    }

    /// Publishes a gate report as the check run `name`, with `diff` (markdown: what the change
    /// does to the environment) after the counts.
    pub fn check_run(
        &self,
        name: &str,
        report: &GateReport,
        fail_on: Option<Severity>,
        diff: Option<&str>,
    ) {
        let Some(sha) = &self.sha else {
            fallback("no commit to report on (--github-sha, or GITHUB_SHA)");
            return;
        };
        let mut run = check_of(name, sha, report, fail_on);
        if let Some(diff) = diff {
            run.summary.push_str("\n## What the change does\n\n");
            run.summary.push_str(diff);
        }
        let outcome = runtime().and_then(|rt| {
            rt.block_on(async {
                let Some(client) = self.client().await else {
                    return Ok(None);
                };
                client
                    .check_run(&run)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string())
            })
        });
        match outcome {
            Ok(Some(p)) => eprintln!(
                "tally: check run `{name}`: {} ({} annotations in {} requests{})",
                p.html_url,
                p.annotations,
                p.requests,
                if p.left_out > 0 {
                    format!("; {} more not sent", p.left_out)
                } else {
                    String::new()
                }
            ),
            Ok(None) => summary(&format!("## {}\n\n{}\n", run.title, run.summary)),
            Err(e) => {
                fallback(&e);
                summary(&format!("## {}\n\n{}\n", run.title, run.summary));
            }
        }
    }

    /// Keeps one comment per environment on the pull request: `body` (markdown) edits it in
    /// place, `None` (no change) deletes it.
    pub fn comments(&self, per_env: &[(String, Option<String>)]) {
        match runtime() {
            Ok(rt) => rt.block_on(self.comment(per_env)),
            Err(e) => fallback(&e),
        }
    }

    /// [`Target::comments`], inside a runtime.
    pub async fn comment(&self, per_env: &[(String, Option<String>)]) {
        let Some(pr) = self.pr else {
            fallback("no pull request (--github-pr, or a pull_request event)");
            return;
        };
        let Some(client) = self.client().await else {
            return;
        };
        for (env, body) in per_env {
            let marker = tally_github::comment_marker(env);
            match client.sticky_comment(pr, &marker, body.as_deref()).await {
                Ok(action) => eprintln!("tally: pull request #{pr}, {env}: {action:?}"),
                Err(e) => return fallback(&e.to_string()),
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    crate::cmd::runtime()
}

/// Says why GitHub is not written to; the job summary carries the report instead.
fn fallback(why: &str) {
    eprintln!(
        "tally: warning: not reporting to GitHub: {why}; the report goes to the job summary \
         (a pull request from a fork gets a read-only token)"
    );
}

/// Appends to `$GITHUB_STEP_SUMMARY` when there is one.
pub fn summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, markdown.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(file = %Path::new(&path).display(), error = %e, "the job summary could not be written");
    }
}

/// The comment of a live plan: what applying `commit` would do to `environment`'s cluster.
pub fn plan_markdown(environment: &str, commit: &str, text: &str) -> String {
    let lines = text.lines().count();
    let block = format!("```diff\n{}\n```\n", text.trim_end());
    let short = commit.get(..12).unwrap_or(commit);
    let mut out = format!(
        "### {environment}: the plan against the live cluster\n\nWhat `tally apply` of {short} would do now.\n\n"
    );
    if lines > 40 {
        out.push_str(&format!(
            "<details><summary>{lines} lines</summary>\n\n{block}\n</details>\n"
        ));
    } else {
        out.push_str(&block);
    }
    out
}

/// The comment of an environment the gate rejects: nothing would be applied.
pub fn rejected_markdown(environment: &str, report: &GateReport) -> String {
    let counted = || report.findings.iter().filter(|f| f.exempted.is_none());
    let errors = counted().filter(|f| f.severity == Severity::Error).count();
    let mut out = format!(
        "### {environment}: rejected by the gate\n\n{errors} errors; nothing would be applied. \
         The check run `tally / {environment}` shows each at its line.\n\n"
    );
    for f in counted().filter(|f| f.severity == Severity::Error).take(20) {
        out.push_str(&format!(
            "- `{}:{}` {}: {}\n",
            relative(&f.file, std::env::var("GITHUB_WORKSPACE").ok().as_deref()),
            f.pos.line,
            f.rule,
            tally_validator::text::escape(&f.message)
        ));
    }
    if errors > 20 {
        out.push_str(&format!("- and {} more\n", errors - 20));
    }
    out
}

/// The check run of a gate report.
fn check_of(name: &str, sha: &str, report: &GateReport, fail_on: Option<Severity>) -> CheckRun {
    let counted: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.exempted.is_none())
        .collect();
    let count = |s: Severity| counted.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, infos) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let conclusion = match fail_on {
        Some(level) if report.fails(level) => Conclusion::Failure,
        _ if warnings > 0 || errors > 0 => Conclusion::Neutral,
        _ => Conclusion::Success,
    };
    let title = format!(
        "{errors} errors, {warnings} warnings, {infos} infos in {} objects",
        report.objects
    );
    let mut rules: std::collections::BTreeMap<(&str, Severity), usize> = Default::default();
    for f in &counted {
        *rules.entry((f.rule, f.severity)).or_default() += 1;
    }
    let mut summary = format!(
        "{} files and {} objects checked against Kubernetes {}.\n\n",
        report.files, report.objects, report.kubernetes_version
    );
    if !rules.is_empty() {
        summary.push_str("| rule | severity | count |\n|---|---|---|\n");
        for ((rule, severity), n) in &rules {
            summary.push_str(&format!("| `{rule}` | {severity} | {n} |\n"));
        }
    }
    let workspace = std::env::var("GITHUB_WORKSPACE").ok();
    let annotations = counted
        .iter()
        .map(|f| {
            let path = relative(&f.file, workspace.as_deref());
            Annotation {
                path,
                start_line: f.pos.line.max(1),
                end_line: f.pos.line.max(1),
                annotation_level: match f.severity {
                    Severity::Error => Level::Failure,
                    Severity::Warning => Level::Warning,
                    Severity::Info => Level::Notice,
                },
                message: f.message.clone(),
                title: f.rule.to_owned(),
            }
        })
        .collect();
    CheckRun {
        name: name.to_owned(),
        head_sha: sha.to_owned(),
        conclusion,
        title,
        summary,
        annotations,
    }
}

/// A finding's file as GitHub names it: relative to the repository's root.
fn relative(file: &str, workspace: Option<&str>) -> String {
    let file = file.strip_prefix("./").unwrap_or(file);
    match workspace {
        Some(root) => file
            .strip_prefix(root)
            .map(|f| f.trim_start_matches('/'))
            .unwrap_or(file)
            .to_owned(),
        None => file.to_owned(),
    }
}
