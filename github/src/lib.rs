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

use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// A request failed.
    #[error("{what}: {message}")]
    Request {
        /// The request, as `POST /repos/o/r/check-runs`.
        what: String,
        /// GitHub's answer (status and message), or the transport error.
        message: String,
    },
    /// `--github-repository` (or `GITHUB_REPOSITORY`) is not `OWNER/NAME`.
    #[error("`{0}` is not a repository (OWNER/NAME)")]
    Repository(String),
}

/// A client for one repository.
pub struct GitHub {
    client: Octocrab,
    owner: String,
    repo: String,
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

impl GitHub {
    /// A client for `repository` (`OWNER/NAME`) at `api_url` with `token`. Call it inside a
    /// Tokio runtime (the client's connection pool runs on it).
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHub, Error> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| Error::Repository(repository.to_owned()))?;
        let client = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .map_err(|e| Error::Client(format!("API URL `{api_url}`: {e}")))?
            .personal_token(token.to_owned())
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(GitHub {
            client,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
        })
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
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
        let route = self.route("check-runs");
        let body = json!({
            "name": run.name,
            "head_sha": run.head_sha,
            "status": "completed",
            "conclusion": run.conclusion,
            "output": output(batches.next().unwrap_or_default()),
        });
        let created: Created = self
            .client
            .post(&route, Some(&body))
            .await
            .map_err(|e| failed("POST", &route, e))?;
        let mut requests = 1;
        let update = self.route(&format!("check-runs/{}", created.id));
        for batch in batches {
            let body = json!({"output": output(batch)});
            let _: Value = self
                .client
                .patch(&update, Some(&body))
                .await
                .map_err(|e| failed("PATCH", &update, e))?;
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
                let _: Value = self
                    .client
                    .patch(&route, Some(&json!({"body": text})))
                    .await
                    .map_err(|e| failed("PATCH", &route, e))?;
                Ok(CommentAction::Updated(id))
            }
            (None, Some(text)) => {
                let route = self.route(&format!("issues/{pr}/comments"));
                let created: Created = self
                    .client
                    .post(&route, Some(&json!({"body": text})))
                    .await
                    .map_err(|e| failed("POST", &route, e))?;
                Ok(CommentAction::Created(created.id))
            }
            (Some(id), None) => {
                let route = self.route(&format!("issues/comments/{id}"));
                self.client
                    ._delete(&route, None::<&()>)
                    .await
                    .map_err(|e| failed("DELETE", &route, e))?;
                Ok(CommentAction::Deleted(id))
            }
            (None, None) => Ok(CommentAction::None),
        }
    }

    /// The first comment on `pr` whose body starts with `marker`, page by page.
    async fn find_comment(&self, pr: u64, marker: &str) -> Result<Option<u64>, Error> {
        for page in 1u32.. {
            let route = self.route(&format!("issues/{pr}/comments?per_page=100&page={page}"));
            let comments: Vec<Comment> = self
                .client
                .get(&route, None::<&()>)
                .await
                .map_err(|e| failed("GET", &route, e))?;
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

/// Why a commit status was not set.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Worth trying again, after `after` when GitHub said (`Retry-After`, or the rate limit's
    /// reset time).
    #[error("{message}")]
    Retry {
        /// GitHub's wait, when it gave one.
        after: Option<std::time::Duration>,
        /// What happened.
        message: String,
    },
    /// Not worth trying again (a bad token, no such repository or commit).
    #[error(transparent)]
    Fatal(#[from] Error),
}

impl GitHub {
    /// Sets the commit status `context` on `sha`. The answer's status and headers are read
    /// here: a 429, a 403 with the rate limit spent, and any 5xx are [`StatusError::Retry`],
    /// with GitHub's `Retry-After` or `x-ratelimit-reset` when it sent one.
    pub async fn commit_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
    ) -> Result<(), StatusError> {
        let route = self.route(&format!("statuses/{sha}"));
        let description: String = description.chars().take(140).collect();
        let body = json!({"state": state, "context": context, "description": description});
        let what = format!("POST {route}");
        let response =
            self.client
                ._post(&route, Some(&body))
                .await
                .map_err(|e| StatusError::Retry {
                    after: None,
                    message: format!("{what}: {e}"),
                })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let after = header("retry-after")
            .map(std::time::Duration::from_secs)
            .or_else(|| {
                let reset = header("x-ratelimit-reset")?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs();
                Some(std::time::Duration::from_secs(reset.saturating_sub(now)))
            });
        let spent = header("x-ratelimit-remaining") == Some(0);
        let message = format!("{what}: GitHub answered {status}");
        if status == 429 || status >= 500 || (status == 403 && (spent || after.is_some())) {
            Err(StatusError::Retry { after, message })
        } else {
            Err(StatusError::Fatal(Error::Request {
                what,
                message: format!("GitHub answered {status}"),
            }))
        }
    }
}

/// The hidden marker of environment `env`'s comment.
pub fn comment_marker(env: &str) -> String {
    format!("<!-- tally:environment={env} -->")
}

fn failed(method: &str, route: &str, e: octocrab::Error) -> Error {
    let message = match &e {
        octocrab::Error::GitHub { source, .. } => {
            format!("GitHub answered {}: {}", source.status_code, source.message)
        }
        other => other.to_string(),
    };
    Error::Request {
        what: format!("{method} {}", route.split('?').next().unwrap_or(route)),
        message,
    }
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
