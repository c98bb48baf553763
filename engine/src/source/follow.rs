//! What the daemon follows, and reading it once per round: a branch of a git remote (fetched,
//! its head written out) or a working tree (read as it is, a digest of its files for a commit).

use std::path::PathBuf;
use std::time::Duration;

use super::{Checkout, Credentials, GitSource, SourceError, redact_url, tree_digest};

/// What the daemon follows.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local working tree (development): a digest of its files stands for the commit, and it is
    /// watched so a change reconciles at once.
    Tree(PathBuf),
    /// A branch of a git remote, cached under a directory.
    Git(GitSettings),
}

/// A git remote to follow.
#[derive(Debug, Clone)]
pub struct GitSettings {
    /// The remote.
    pub url: String,
    /// The branch followed.
    pub branch: String,
    /// The cache directory.
    pub cache: PathBuf,
    /// How to authenticate to it.
    pub credentials: Credentials,
    /// How long a fetch may take.
    pub fetch_timeout: Duration,
}

/// A [`Source`] opened for reading, round after round.
#[derive(Debug)]
pub struct Follower {
    source: Source,
    /// The open git cache (`None` for a working tree, and while a fetch has it).
    git: Option<GitSource>,
}

impl Follower {
    /// Opens `source` (for git: creates or opens its cache).
    pub fn open(source: Source) -> Result<Follower, SourceError> {
        let git = match &source {
            Source::Tree(_) => None,
            Source::Git(g) => Some(
                GitSource::open(&g.url, &g.branch, &g.cache)?
                    .with_credentials(g.credentials.clone())
                    .with_fetch_timeout(g.fetch_timeout),
            ),
        };
        Ok(Follower { source, git })
    }

    /// What is followed.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Reads the source for one round: the branch fetched and its head written out, or the
    /// working tree as it is. libgit2 blocks, so a fetch runs on a blocking thread.
    pub async fn read(&mut self) -> Result<Checkout, SourceError> {
        match (&self.source, self.git.take()) {
            (_, Some(mut git)) => {
                let (git, result) = tokio::task::spawn_blocking(move || {
                    let result = git.fetch().and_then(|commit| git.materialise(&commit));
                    (git, result)
                })
                .await
                .map_err(|e| SourceError::Task(e.to_string()))?;
                self.git = Some(git);
                result
            }
            (Source::Tree(root), None) => {
                let commit = tree_digest(root).map_err(|e| SourceError::Tree {
                    path: root.clone(),
                    source: e,
                })?;
                Ok(Checkout {
                    commit,
                    root: root.clone(),
                    written: false,
                })
            }
            (Source::Git(g), None) => Err(SourceError::Cache {
                path: g.cache.clone(),
                message: format!("the cache of {} is not open", redact_url(&g.url)),
            }),
        }
    }

    /// Keeps only these commits' trees in a git cache (the one just read and the last good one).
    pub fn retain(&self, keep: &[&str]) {
        if let Some(git) = &self.git {
            git.retain(keep);
        }
    }
}
