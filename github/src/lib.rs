//! tally-github: what tally tells GitHub about a pull request.
//!
//! - [`GitHub::check_run`]: one check run per environment on the head commit, every finding an
//!   annotation at its file and line. The API takes at most 50 annotations per request, so the
//!   run is created with the first 50 and updated with the rest, 50 at a time (GitHub appends
//!   them); past [`MAX_ANNOTATIONS`] the summary says how many were left out.
//! - [`GitHub::sticky_comment`]: one comment per environment on the pull request, found again by
//!   a hidden marker and edited in place on every push (never one comment per run), deleted
//!   when the pull request no longer changes that environment.
//!
//! It talks to `api_url` (GitHub, or GitHub Enterprise Server's `https://HOST/api/v3`) with
//! octocrab, over rustls with ring as kube does. A token never appears in an error or a log:
//! errors carry the request and GitHub's status and message only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;

use std::time::Duration;

use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use auth::{App, Auth, Credentials};

/// Annotations per request, GitHub's limit.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// Annotations sent per check run at most: past it, a reviewer learns nothing more from the
/// Files tab than from the summary, and each 50 cost a request.
pub const MAX_ANNOTATIONS: usize = 1000;

/// GitHub keeps at most this many characters of a check run's summary and of a comment.
pub const MAX_TEXT: usize = 65_000;

/// What went wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client could not be built (a malformed API URL).
    #[error("GitHub client: {0}")]
    Client(String),
    /// The credentials could not be read or used (a token file, an App's private key). The
    /// message names the file, never its content.
    #[error("GitHub credentials: {0}")]
    Credentials(String),
    /// A request GitHub refused, not worth sending again as it is (a bad token, no such
    /// repository or commit, a malformed body).
    #[error("{what}: {message}")]
    Request {
        /// The request, as `POST /repos/o/r/check-runs`.
        what: String,
        /// GitHub's answer (status and message).
        message: String,
    },
    /// A request worth sending again: GitHub could not be reached, answered 5xx or 429, or
    /// the rate limit is spent. `after` is GitHub's wait when it gave one (`Retry-After`, or
    /// the rate limit's reset time).
    #[error("{what}: {message}")]
    Busy {
        /// The request.
        what: String,
        /// What happened.
        message: String,
        /// How long GitHub asked to wait.
        after: Option<Duration>,
    },
    /// `--github-repository` (or `GITHUB_REPOSITORY`) is not `OWNER/NAME`.
    #[error("`{0}` is not a repository (OWNER/NAME)")]
    Repository(String),
}

impl Error {
    /// Whether sending the request again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Busy { .. })
    }
}

/// How a client tries a request again when GitHub is busy (see [`Error::Busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Tries in all, the first included (1: never again).
    pub attempts: u32,
    /// The longest wait between two tries: when GitHub asks for more (a rate limit resetting
    /// in an hour), the request fails now instead of holding a CI job.
    pub max_wait: Duration,
}

impl Default for Retries {
    /// Three tries, waiting at most a minute: a CI step rides out a blip, never an outage.
    fn default() -> Retries {
        Retries {
            attempts: 3,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// A client for one repository.
pub struct GitHub {
    client: Octocrab,
    owner: String,
    repo: String,
    retries: Retries,
}

/// How a check run concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// Nothing at or above the failing severity.
    Success,
    /// The gate rejected the environment.
    Failure,
    /// Only findings below the failing severity (warnings).
    Neutral,
}

/// The level of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// An error.
    Failure,
    /// A warning.
    Warning,
    /// Information.
    Notice,
}

/// One finding at its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// The file, relative to the repository's root.
    pub path: String,
    /// Its line (from 1).
    pub start_line: u32,
    /// Its last line.
    pub end_line: u32,
    /// The level.
    pub annotation_level: Level,
    /// What is wrong.
    pub message: String,
    /// A short title (the rule).
    pub title: String,
}

/// A check run to publish.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// Its name, e.g. `tally / staging`.
    pub name: String,
    /// The commit it is about.
    pub head_sha: String,
    /// How it ends.
    pub conclusion: Conclusion,
    /// Its title, one line.
    pub title: String,
    /// Markdown: the counts and the diff or the plan.
    pub summary: String,
    /// Every finding at its line.
    pub annotations: Vec<Annotation>,
}

/// What publishing a check run took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The check run's id.
    pub id: u64,
    /// Its page.
    pub html_url: String,
    /// Requests sent (one create, then one update per further 50 annotations).
    pub requests: usize,
    /// Annotations sent.
    pub annotations: usize,
    /// Annotations left out past [`MAX_ANNOTATIONS`].
    pub left_out: usize,
}

/// What became of a sticky comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentAction {
    /// Written for the first time.
    Created(u64),
    /// Found by its marker and edited in place.
    Updated(u64),
    /// Found and deleted (nothing to say any more).
    Deleted(u64),
    /// Nothing to say and nothing there.
    None,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
    #[serde(default)]
    html_url: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
}

/// An HTTP method tally uses.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl GitHub {
    /// A client for `repository` (`OWNER/NAME`) at `api_url` with `token`. Call it inside a
    /// Tokio runtime (the client's connection pool runs on it).
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHub, Error> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| Error::Repository(repository.to_owned()))?;
        Ok(GitHub {
            client: client(api_url, token)?,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            retries: Retries::default(),
        })
    }

    /// The same client, trying busy requests again as `retries` says.
    pub fn with_retries(mut self, retries: Retries) -> GitHub {
        self.retries = retries;
        self
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }

    /// Sends a request, again while GitHub is busy and [`Retries`] allow.
    async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let mut pause = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            match request(&self.client, method, route, body).await {
                Err(Error::Busy {
                    what,
                    message,
                    after,
                }) if attempt < self.retries.attempts
                    && after.unwrap_or(pause) <= self.retries.max_wait =>
                {
                    let wait = after.unwrap_or(pause);
                    tracing::warn!(request = %what, error = %message, wait_s = wait.as_secs_f64(), "GitHub is busy: trying again");
                    tokio::time::sleep(wait).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Creates the check run with its first annotations, then sends the rest 50 at a time.
    pub async fn check_run(&self, run: &CheckRun) -> Result<Published, Error> {
        let sent = run.annotations.len().min(MAX_ANNOTATIONS);
        let left_out = run.annotations.len() - sent;
        let mut summary = run.summary.clone();
        if left_out > 0 {
            summary.push_str(&format!(
                "\n\n{left_out} more findings are not shown as annotations (at most {MAX_ANNOTATIONS} are sent); `tally validate` lists them all."
            ));
        }
        let summary = truncate(&summary, MAX_TEXT);
        let mut batches = run.annotations[..sent].chunks(ANNOTATIONS_PER_REQUEST);
        let output = |annotations: &[Annotation]| json!({"title": run.title, "summary": summary, "annotations": annotations});
        let body = json!({
            "name": run.name,
            "head_sha": run.head_sha,
            "status": "completed",
            "conclusion": run.conclusion,
            "output": output(batches.next().unwrap_or_default()),
        });
        let created: Created = parse(
            "check run",
            self.send(Method::Post, &self.route("check-runs"), Some(&body))
                .await?,
        )?;
        let mut requests = 1;
        let update = self.route(&format!("check-runs/{}", created.id));
        for batch in batches {
            let body = json!({"output": output(batch)});
            self.send(Method::Patch, &update, Some(&body)).await?;
            requests += 1;
        }
        Ok(Published {
            id: created.id,
            html_url: created.html_url,
            requests,
            annotations: sent,
            left_out,
        })
    }

    /// Keeps one comment on pull request `pr` marked by `marker` (an HTML comment, invisible):
    /// `body` edits it in place (or creates it); `None` deletes it.
    pub async fn sticky_comment(
        &self,
        pr: u64,
        marker: &str,
        body: Option<&str>,
    ) -> Result<CommentAction, Error> {
        let found = self.find_comment(pr, marker).await?;
        let text = body.map(|b| truncate(&format!("{marker}\n{b}"), MAX_TEXT));
        match (found, text) {
            (Some(id), Some(text)) => {
                let route = self.route(&format!("issues/comments/{id}"));
                self.send(Method::Patch, &route, Some(&json!({"body": text})))
                    .await?;
                Ok(CommentAction::Updated(id))
            }
            (None, Some(text)) => {
                let route = self.route(&format!("issues/{pr}/comments"));
                let created: Created = parse(
                    "comment",
                    self.send(Method::Post, &route, Some(&json!({"body": text})))
                        .await?,
                )?;
                Ok(CommentAction::Created(created.id))
            }
            (Some(id), None) => {
                let route = self.route(&format!("issues/comments/{id}"));
                self.send(Method::Delete, &route, None).await?;
                Ok(CommentAction::Deleted(id))
            }
            (None, None) => Ok(CommentAction::None),
        }
    }

    /// The first comment on `pr` whose body starts with `marker`, page by page.
    async fn find_comment(&self, pr: u64, marker: &str) -> Result<Option<u64>, Error> {
        for page in 1u32.. {
            let route = self.route(&format!("issues/{pr}/comments?per_page=100&page={page}"));
            let comments: Vec<Comment> =
                parse("comments", self.send(Method::Get, &route, None).await?)?;
            if let Some(c) = comments
                .iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.starts_with(marker)))
            {
                return Ok(Some(c.id));
            }
            if comments.len() < 100 {
                break;
            }
        }
        Ok(None)
    }

    /// Sets the commit status `context` on `sha`.
    pub async fn commit_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
    ) -> Result<(), Error> {
        let route = self.route(&format!("statuses/{sha}"));
        let body = json!({"state": state, "context": context, "description": line(description)});
        self.send(Method::Post, &route, Some(&body)).await?;
        Ok(())
    }

    /// Creates a GitHub Deployment of `sha` to `environment` and returns its id. It asks for
    /// no merge and no required status checks: tally deploys the commit it gated, and its own
    /// pending commit status must not hold the deployment back.
    pub async fn deployment(
        &self,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<u64, Error> {
        let body = json!({
            "ref": sha,
            "environment": environment,
            "description": line(description),
            "auto_merge": false,
            "required_contexts": [],
            "task": "deploy",
            "transient_environment": false,
        });
        let created: Created = parse(
            "deployment",
            self.send(Method::Post, &self.route("deployments"), Some(&body))
                .await?,
        )?;
        Ok(created.id)
    }

    /// Adds a status to deployment `id`. A `success` marks the environment's earlier
    /// deployments inactive (`auto_inactive`), as GitHub shows one live deployment.
    pub async fn deployment_status(
        &self,
        id: u64,
        state: DeploymentState,
        description: &str,
    ) -> Result<(), Error> {
        let route = self.route(&format!("deployments/{id}/statuses"));
        let body = json!({"state": state, "description": line(description), "auto_inactive": true});
        self.send(Method::Post, &route, Some(&body)).await?;
        Ok(())
    }
}

/// An octocrab client for `api_url` authenticating with `token` (sent as a bearer token: a
/// personal, installation or Actions token, or an App's JWT).
fn client(api_url: &str, token: &str) -> Result<Octocrab, Error> {
    Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .map_err(|e| Error::Client(format!("API URL `{api_url}`: {e}")))?
        .personal_token(token.to_owned())
        .build()
        .map_err(|e| Error::Client(e.to_string()))
}

/// Sends one request and reads GitHub's answer: JSON on success, else an [`Error`] naming the
/// request (without its query) and GitHub's status and message. A 429, a 403 with the rate
/// limit spent, any 5xx and a failed connection are [`Error::Busy`], with GitHub's
/// `Retry-After` or `x-ratelimit-reset` when it sent one.
async fn request(
    client: &Octocrab,
    method: Method,
    route: &str,
    body: Option<&Value>,
) -> Result<Value, Error> {
    let what = format!(
        "{} {}",
        method.as_str(),
        route.split('?').next().unwrap_or(route)
    );
    let sent = match method {
        Method::Get => client._get(route).await,
        Method::Post => client._post(route, body).await,
        Method::Patch => client._patch(route, body).await,
        Method::Delete => client._delete(route, body).await,
    };
    let response = sent.map_err(|e| Error::Busy {
        what: what.clone(),
        message: transport(&e),
        after: None,
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let after = header("retry-after").map(Duration::from_secs).or_else(|| {
        let reset = header("x-ratelimit-reset")?;
        Some(Duration::from_secs(reset.saturating_sub(auth::now())))
    });
    let spent = header("x-ratelimit-remaining") == Some(0);
    let text = client
        .body_to_string(response)
        .await
        .map_err(|e| Error::Busy {
            what: what.clone(),
            message: transport(&e),
            after: None,
        })?;
    let json: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    if (200..300).contains(&status) {
        return Ok(json);
    }
    let message = match json.get("message").and_then(Value::as_str) {
        Some(m) => format!("GitHub answered {status}: {}", line(m)),
        None => format!("GitHub answered {status}"),
    };
    if status == 429 || status >= 500 || (status == 403 && (spent || after.is_some())) {
        Err(Error::Busy {
            what,
            message,
            after,
        })
    } else {
        Err(Error::Request { what, message })
    }
}

/// A transport error's text: octocrab's own, which names neither the token nor headers.
fn transport(e: &octocrab::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Request {
        what: what.to_owned(),
        message: format!("GitHub's answer is not a {what}: {e}"),
    })
}

/// One line of at most 140 characters, as commit and deployment statuses take.
fn line(text: &str) -> String {
    let one = text.lines().next().unwrap_or("");
    if one.chars().count() <= 140 {
        return one.to_owned();
    }
    let mut cut: String = one.chars().take(139).collect();
    cut.push('…');
    cut
}

/// The state of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    /// Being applied.
    Pending,
    /// Applied and healthy.
    Success,
    /// Rejected by the gate, or the apply failed.
    Failure,
}

/// The state of a deployment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Being applied.
    InProgress,
    /// Applied and healthy.
    Success,
    /// The apply failed, or an app is unhealthy.
    Failure,
    /// The gate rejected the commit: it was never applied.
    Error,
}

/// The hidden marker of environment `env`'s comment.
pub fn comment_marker(env: &str) -> String {
    format!("<!-- tally:environment={env} -->")
}

/// `text` cut to at most `max` bytes at a character boundary, with a note when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let note = "\n\n… (cut: GitHub keeps 65,000 characters)";
    let mut end = max.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn repositories_are_owner_slash_name() {
        assert!(GitHub::new("http://127.0.0.1:1", "t", "acme/platform").is_ok());
        for bad in ["acme", "/platform", "acme/", "a/b/c"] {
            assert!(matches!(
                GitHub::new("http://127.0.0.1:1", "t", bad),
                Err(Error::Repository(_))
            ));
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(40_000);
        let cut = truncate(&text, MAX_TEXT);
        assert!(cut.len() <= MAX_TEXT);
        assert!(cut.ends_with("GitHub keeps 65,000 characters)"));
        assert_eq!(truncate("short", MAX_TEXT), "short");
    }
}
