//! What the end-to-end tests of the `tally` binary share: running it, reading its output, and a
//! scratch directory. Each file in `tests/` takes it with `mod common;`.

// Every test file is a crate of its own that compiles this module and uses only part of it; the
// part it does not use would otherwise be a dead-code warning in that crate.
#![allow(dead_code)]

pub mod cluster;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The `tally` binary, ready for arguments: run from the crate root (where `examples/` and
/// `tests/fixtures/` are), without `GITHUB_ACTIONS` (inside GitHub Actions the binary adds
/// annotations to stdout; tests want one format) and without `KUBECONFIG` (a test that needs a
/// cluster names its own with `--kubeconfig`, never the one of the machine it runs on).
pub fn tally_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("KUBECONFIG");
    command
}

/// Runs `tally ARGS...` (see [`tally_command`]) to its end.
pub fn tally(args: &[&str]) -> Output {
    output(tally_command().args(args))
}

/// Runs `command` (a [`tally_command`] with its arguments) to its end, stdout and stderr captured.
pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running tally: {e}"))
}

/// The run's stdout; tally writes UTF-8, so anything else fails the test.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// The run's stdout parsed as JSON (`--format json`); when it is not JSON, the test fails with
/// stdout and stderr shown.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `tally-NAME-PID` in the system's temp directory, not created: whatever an earlier run left
/// there is removed. A name is used once per test file; the process id keeps test files apart.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `tally init REPO`: the example repo written at `repo`, or the test fails with tally's output.
pub fn init_repo(repo: &std::path::Path) {
    let out = output(tally_command().arg("init").arg(repo));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Commits everything in the working tree of `dir` (a git repository, created on the first call
/// with its `HEAD` on `main`) to `main`; returns the commit id.
pub fn commit_all(dir: &std::path::Path, message: &str) -> String {
    let repo = git2::Repository::open(dir)
        .or_else(|_| {
            let repo = git2::Repository::init(dir)?;
            repo.set_head("refs/heads/main")?;
            Ok::<_, git2::Error>(repo)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut index = repo.index().unwrap_or_else(|e| panic!("{e}"));
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap_or_else(|e| panic!("{e}"));
    // Files removed from the working tree leave the index too.
    index
        .update_all(["*"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    index.write().unwrap_or_else(|e| panic!("{e}"));
    let tree = index
        .write_tree()
        .and_then(|id| repo.find_tree(id))
        .unwrap_or_else(|e| panic!("{e}"));
    let sig = git2::Signature::now("t", "t@example.com").unwrap_or_else(|e| panic!("{e}"));
    let parent = repo
        .find_reference("refs/heads/main")
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        message,
        &tree,
        &parents,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_string()
}

/// Stdout then stderr of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
