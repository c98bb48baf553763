//! `tally diff`: what a change to the repo does to each environment, without a cluster.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::Value;
use tally_engine::review;
use tally_engine::source::export_revision;
use tally_layout::{load, render};
use tally_validator::gate::InputLimits;

use crate::exit::{CommandResult, Exit};

/// `tally diff --base REF [--head REF] [--env ENV] [REPO]`.
#[derive(Args)]
pub struct DiffArgs {
    /// The revision to compare from: a commit, branch or tag (`origin/main`, `HEAD~1`).
    #[arg(long)]
    base: String,

    /// The revision to compare to; without it, the files as they are now (the working tree).
    #[arg(long)]
    head: Option<String>,

    /// Only this environment (default: every environment either side has).
    #[arg(long, short = 'e')]
    env: Option<String>,

    /// The repo's root (inside a git repository).
    #[arg(default_value = ".")]
    path: PathBuf,

    /// `text` (as `plan` prints), or `markdown` (for a pull request comment).
    #[arg(long, short = 'f', value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,

    #[command(flatten)]
    github: crate::github::GithubArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    Text,
    Markdown,
}

/// Renders each environment at both revisions and prints what changes. Exit 0 no change, 3
/// changes, 2 errors.
pub fn diff(args: DiffArgs) -> CommandResult {
    let diffs = environment_diffs(
        &args.path,
        &args.base,
        args.head.as_deref(),
        args.env.as_deref(),
    )?;
    let mut changed = false;
    let mut markdown = String::new();
    let mut comments = Vec::new();
    for d in &diffs {
        changed |= !d.is_empty();
        markdown.push_str(&d.markdown());
        comments.push((d.environment.clone(), (!d.is_empty()).then(|| d.markdown())));
        match args.format {
            DiffFormat::Text => print!("{}", d.text()),
            DiffFormat::Markdown => print!("{}", d.markdown()),
        }
    }
    // In GitHub Actions, the job's summary page shows it too.
    let head = args.head.as_deref().unwrap_or("the working tree");
    crate::github::summary(&format!(
        "## tally diff: {} → {head}\n\n{markdown}\n",
        args.base
    ));
    if let Some(target) = args.github.target()? {
        target.comments(&comments);
    }
    Ok(if changed { Exit::Changes } else { Exit::Ok })
}

/// What each environment (or only `env`) of the repo at `path` becomes from revision `base` to
/// revision `head` (the working tree without it), rendered both sides without a cluster.
pub fn environment_diffs(
    path: &Path,
    base: &str,
    head: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<review::EnvironmentDiff>, String> {
    if !load::is_repo(path) {
        return Err(format!(
            "{} is not a tally repo (no tally.yaml of kind Repo)",
            path.display()
        ));
    }
    let scratch = tempdir()?;
    let (base_commit, base_root) =
        export_revision(path, base, &scratch.0.join("base")).map_err(|e| e.to_string())?;
    let head_root = match head {
        Some(rev) => {
            export_revision(path, rev, &scratch.0.join("head"))
                .map_err(|e| e.to_string())?
                .1
        }
        None => path.to_owned(),
    };
    let base_repo = load_repo(&base_root, &format!("{base} ({})", short(&base_commit)))?;
    let head_repo = load_repo(&head_root, head.unwrap_or("the working tree"))?;
    let environments: BTreeSet<String> = match env {
        Some(env) => [env.to_owned()].into(),
        None => base_repo
            .environments
            .keys()
            .chain(head_repo.environments.keys())
            .cloned()
            .collect(),
    };
    environments
        .iter()
        .map(|env| {
            let before = objects(&base_repo, env)?;
            let after = objects(&head_repo, env)?;
            Ok(review::compare(env, &before, &after))
        })
        .collect()
}

fn load_repo(root: &Path, what: &str) -> Result<load::Repo, String> {
    if !load::is_repo(root) {
        return Err(format!(
            "{what}: not a tally repo (no tally.yaml of kind Repo)"
        ));
    }
    load::load(root).map_err(|e| format!("{what}: {e}"))
}

/// The environment's rendered objects; none when the repo has no such environment.
fn objects(repo: &load::Repo, env: &str) -> Result<Vec<Value>, String> {
    if !repo.environments.contains_key(env) {
        return Ok(Vec::new());
    }
    let limits = load::input_limits(&repo.root, InputLimits::default());
    let rendered = render::render(repo, env, &[], &limits).map_err(|e| e.to_string())?;
    Ok(rendered.objects.into_iter().map(|o| o.value).collect())
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir, String> {
    let dir = std::env::temp_dir().join(format!("tally-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(TempDir(dir))
}
