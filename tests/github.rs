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

use common::text;

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

#[test]
fn the_daemon_sets_a_commit_status_per_commit_and_rides_out_a_github_outage() {
    use std::time::Duration;
    use tally_fake_apiserver::{Config, FakeApiServer};

    let fake = FakeGitHub::start();
    // GitHub is down for the first reports: a rate limit, then a bad gateway.
    fake.fail_next(&[(429, Some(1)), (502, None)]);
    let server = FakeApiServer::start_in_background(
        Config::default().with_ready_delay(Duration::from_millis(100)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = common::temp_dir("github-daemon");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .unwrap_or_else(|e| panic!("{e}"));
    let repo = dir.join("repo");
    let init = common::output(common::tally_command().arg("init").arg(&repo));
    assert_eq!(init.status.code(), Some(0));
    let first = common::commit_all(&repo, "first");
    let log = dir.join("daemon.log");
    let mut daemon = common::tally_command()
        .args([
            "run",
            "--env",
            "staging",
            "--interval",
            "1",
            "--log-format",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--repo")
        .arg(format!("file://{}", repo.display()))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args([
            "--github-repo",
            "acme/platform",
            "--github-api-url",
            &fake.url,
        ])
        .env("TALLY_GITHUB_TOKEN", "secret-token")
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let eventually = |what: &str, check: &dyn Fn() -> bool| {
        for _ in 0..300 {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("timed out waiting for {what}: {:?}\n{log}", fake.statuses());
    };
    let states = |sha: &str| -> Vec<String> {
        fake.statuses()
            .into_iter()
            .filter(|(s, _, c, _)| s == sha && c == "tally/staging")
            .map(|(_, state, _, _)| state)
            .collect()
    };
    // The round applies while GitHub is down; the reports arrive once it is back.
    eventually("the first commit reported", &|| {
        states(&first) == ["pending", "success"]
    });
    assert!(
        server
            .store()
            .get("configmaps", "tally-system", "tally-inventory-staging")
            .is_some()
    );

    // A commit the gate rejects: failure, with the reason.
    let api = repo.join("apps/api/manifests/api.yaml");
    let text = std::fs::read_to_string(&api).unwrap_or_default();
    std::fs::write(
        &api,
        text.replace(
            "image: registry.example.com/shop/api:2.0.1",
            "image: registry.example.com/shop/api:latest",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let second = common::commit_all(&repo, "latest");
    eventually("the rejection reported", &|| {
        states(&second).last().map(String::as_str) == Some("failure")
    });
    let description = fake
        .statuses()
        .into_iter()
        .rfind(|(s, _, _, _)| *s == second)
        .map(|(_, _, _, d)| d)
        .unwrap_or_default();
    assert!(description.contains("rejected"), "{description}");
    // Quiet rounds on the same commit send nothing more.
    let sent = fake.statuses().len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(fake.statuses().len(), sent);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("secret-token"));
    assert!(log.contains("trying again"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
