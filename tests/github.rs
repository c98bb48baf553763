//! `--github` end to end: the `tally` binary against the fake GitHub API.

mod common;

#[path = "../github/tests/fake/mod.rs"]
mod fake;

use std::path::Path;
use std::process::Output;

use fake::FakeGitHub;

fn tally(fake: &FakeGitHub, args: &[&str], token: Option<&str>, summary: &Path) -> Output {
    let mut cmd = common::tally_command();
    cmd.args(args)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_REPOSITORY", "acme/platform")
        .env("GITHUB_SHA", "0123456789abcdef")
        .env("GITHUB_STEP_SUMMARY", summary)
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_WORKSPACE");
    match token {
        Some(t) => cmd.env("GITHUB_TOKEN", t),
        None => cmd.env_remove("GITHUB_TOKEN"),
    };
    common::output(&mut cmd)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn validate_publishes_a_check_run_with_every_finding_as_an_annotation() {
    let fake = FakeGitHub::start();
    let dir = common::temp_dir("github-validate");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    // 120 findings: one `no-latest-tag` per Pod template of 120 Deployments, and more.
    let mut manifests = String::new();
    for i in 0..60 {
        manifests.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\n  namespace: x\nspec:\n  selector:\n    matchLabels: {{app: d{i}}}\n  template:\n    metadata:\n      labels: {{app: d{i}}}\n    spec:\n      containers:\n        - name: c\n          image: nginx:latest\n"
        ));
    }
    let file = dir.join("many.yaml");
    std::fs::write(&file, manifests).unwrap_or_else(|e| panic!("{e}"));
    let summary = dir.join("summary.md");
    let out = tally(
        &fake,
        &[
            "validate",
            &file.to_string_lossy(),
            "--github",
            "--format",
            "json",
        ],
        Some("secret-token"),
        &summary,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let findings = report["findings"].as_array().map_or(0, Vec::len);
    assert!(findings > 100, "{findings}");
    let requests = fake.requests();
    let sent: usize = requests
        .iter()
        .map(|r| {
            r.body["output"]["annotations"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(sent, findings.min(tally_github::MAX_ANNOTATIONS));
    assert_eq!(requests.len(), findings.div_ceil(50));
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body["name"], "tally");
    assert_eq!(requests[0].body["conclusion"], "failure");
    assert_eq!(requests[0].body["head_sha"], "0123456789abcdef");
    assert!(requests[1..].iter().all(|r| r.method == "PATCH"));
    let first = &requests[0].body["output"]["annotations"][0];
    assert_eq!(first["annotation_level"], "failure");
    assert!(first["start_line"].as_u64().is_some_and(|l| l > 1));
    assert!(!text(&out).contains("secret-token"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_token_the_report_goes_to_the_job_summary_and_says_why() {
    let fake = FakeGitHub::start();
    let dir = common::temp_dir("github-notoken");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let summary = dir.join("summary.md");
    let out = tally(&fake, &["validate", "examples", "--github"], None, &summary);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("not reporting to GitHub: no GitHub token"),
        "{}",
        text(&out)
    );
    assert!(fake.requests().is_empty());
    let written = std::fs::read_to_string(&summary).unwrap_or_default();
    assert!(written.contains("0 errors, 0 warnings"), "{written}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diff_keeps_one_comment_per_environment_edited_in_place() {
    let fake = FakeGitHub::start();
    let dir = common::temp_dir("github-diff");
    let repo = dir.join("repo");
    let init = common::output(common::tally_command().arg("init").arg(&repo));
    assert_eq!(init.status.code(), Some(0));
    common::commit_all(&repo, "base");
    let env_file = repo.join("environments/staging/environment.yaml");
    let edit = |from: &str, to: &str| {
        let t = std::fs::read_to_string(&env_file).unwrap_or_default();
        assert!(t.contains(from));
        std::fs::write(&env_file, t.replace(from, to)).unwrap_or_else(|e| panic!("{e}"));
    };
    let summary = dir.join("summary.md");
    let repo_arg = repo.to_string_lossy().into_owned();
    let diff = |fake: &FakeGitHub| {
        tally(
            fake,
            &[
                "diff",
                "--base",
                "main",
                &repo_arg,
                "--github",
                "--github-pr",
                "7",
            ],
            Some("t"),
            &summary,
        )
    };
    edit("web: 1.5.0-rc.1", "web: 1.5.0-rc.2");
    let out = diff(&fake);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let comments = fake.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0]
            .2
            .starts_with("<!-- tally:environment=staging -->")
    );
    assert!(comments[0].2.contains("1.5.0-rc.2"), "{}", comments[0].2);

    // A second push: the same comment, edited.
    edit("web: 1.5.0-rc.2", "web: 1.5.0-rc.3");
    let out = diff(&fake);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let again = fake.comments();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].0, comments[0].0);
    assert!(again[0].2.contains("1.5.0-rc.3"));

    // Back to what main has: no change, so the comment goes.
    edit("web: 1.5.0-rc.3", "web: 1.5.0-rc.1");
    let out = diff(&fake);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fake.comments().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
