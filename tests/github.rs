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
    common::init_repo(&repo);
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

/// The daemon following a repo made by `tally init` (committed once), against the fake API
/// server, reporting to `fake` with `github` flags and the environment `env`.
struct Daemon {
    cluster: common::cluster::Cluster,
    store: tally_fake_apiserver::Store,
    repo: std::path::PathBuf,
    first: String,
    log: std::path::PathBuf,
    child: std::process::Child,
}

impl Daemon {
    fn start(fake: &FakeGitHub, name: &str, github: &[&str], env: &[(&str, &str)]) -> Daemon {
        use std::time::Duration;
        let cluster = common::cluster::Cluster::start(
            name,
            tally_fake_apiserver::Config::default().with_ready_delay(Duration::from_millis(100)),
        );
        let (dir, repo, kubeconfig) = (
            cluster.dir.clone(),
            cluster.repo(),
            cluster.kubeconfig.clone(),
        );
        let first = common::commit_all(&repo, "first");
        let log = dir.join("daemon.log");
        let mut cmd = common::tally_command();
        cmd.args([
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
        .args(github)
        .env_remove("TALLY_GITHUB_TOKEN")
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        Daemon {
            store: cluster.server.store(),
            cluster,
            repo,
            first,
            log,
            child,
        }
    }

    fn eventually(&self, fake: &FakeGitHub, what: &str, check: &dyn Fn() -> bool) {
        for _ in 0..300 {
            if check() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!(
            "timed out waiting for {what}: {:?} {:?}\n{log}",
            fake.statuses(),
            fake.deployment_statuses()
        );
    }

    /// Commits an image tag the gate rejects (`latest`); returns the commit.
    fn commit_rejected(&self) -> String {
        let api = self.repo.join("apps/api/manifests/api.yaml");
        let text = std::fs::read_to_string(&api).unwrap_or_default();
        std::fs::write(
            &api,
            text.replace(
                "image: registry.example.com/shop/api:2.0.1",
                "image: registry.example.com/shop/api:latest",
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        common::commit_all(&self.repo, "latest")
    }

    /// Stops the daemon; its log.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        drop(self.cluster);
        log
    }
}

#[test]
fn the_daemon_sets_a_commit_status_per_commit_and_rides_out_a_github_outage() {
    use std::time::Duration;

    let fake = FakeGitHub::start();
    // GitHub is down for the first reports: a rate limit, then a bad gateway.
    fake.fail_next(&[(429, Some(1)), (502, None)]);
    let daemon = Daemon::start(
        &fake,
        "github-daemon",
        &[],
        &[("TALLY_GITHUB_TOKEN", "secret-token")],
    );
    let states = |sha: &str| -> Vec<String> {
        fake.statuses()
            .into_iter()
            .filter(|(s, _, c, _)| s == sha && c == "tally/staging")
            .map(|(_, state, _, _)| state)
            .collect()
    };
    // The round applies while GitHub is down; the reports arrive once it is back.
    let first = daemon.first.clone();
    daemon.eventually(&fake, "the first commit reported", &|| {
        states(&first) == ["pending", "success"]
    });
    assert!(
        daemon
            .store
            .get("configmaps", "tally-system", "tally-inventory-staging")
            .is_some()
    );

    // A commit the gate rejects: failure, with the reason.
    let second = daemon.commit_rejected();
    daemon.eventually(&fake, "the rejection reported", &|| {
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
    let log = daemon.stop();
    assert!(!log.contains("secret-token"));
    assert!(log.contains("trying again"), "{log}");
}

#[test]
fn the_daemon_as_a_github_app_records_a_deployment_per_commit() {
    let fake = FakeGitHub::start();
    let key = include_str!("../github/tests/fake/app-key.pem");
    fake.app(7, 42, key, 3600);
    let keys = common::temp_dir("github-app-key");
    std::fs::create_dir_all(&keys).unwrap_or_else(|e| panic!("{e}"));
    let key_file = keys.join("app.pem");
    std::fs::write(&key_file, key).unwrap_or_else(|e| panic!("{e}"));
    let daemon = Daemon::start(
        &fake,
        "github-app-daemon",
        &[
            "--github-deployments",
            "--github-app-id",
            "7",
            "--github-app-installation",
            "42",
            "--github-app-key-file",
            &key_file.to_string_lossy(),
        ],
        &[],
    );
    let deployed = |sha: &str| -> Vec<String> {
        let ids: Vec<u64> = fake
            .deployments()
            .into_iter()
            .filter(|(_, r, e)| r == sha && e == "staging")
            .map(|(id, _, _)| id)
            .collect();
        fake.deployment_statuses()
            .into_iter()
            .filter(|(id, _, _)| ids.contains(id))
            .map(|(_, state, _)| state)
            .collect()
    };
    let first = daemon.first.clone();
    daemon.eventually(&fake, "the first deployment", &|| {
        deployed(&first) == ["in_progress", "success"]
    });
    // The gate's rejection is a deployment that errored: never applied.
    let second = daemon.commit_rejected();
    daemon.eventually(&fake, "the rejected deployment", &|| {
        deployed(&second) == ["in_progress", "error"]
    });
    // One deployment per commit, every request with the installation token, one exchange.
    assert_eq!(fake.deployments().len(), 2);
    assert_eq!(fake.tokens().len(), 1);
    assert!(
        fake.statuses()
            .iter()
            .any(|(s, state, _, _)| *s == second && state == "failure")
    );
    let log = daemon.stop();
    let _ = std::fs::remove_dir_all(&keys);
    assert!(!log.contains("ghs_fake"), "{log}");
    assert!(log.contains("installation token obtained"), "{log}");
}

#[test]
fn validate_on_a_repo_publishes_one_check_run_per_environment_with_its_diff() {
    let fake = FakeGitHub::start();
    let dir = common::temp_dir("github-validate-repo");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    common::commit_all(&repo, "base");
    let env_file = repo.join("environments/staging/environment.yaml");
    let t = std::fs::read_to_string(&env_file).unwrap_or_default();
    std::fs::write(&env_file, t.replace("web: 1.5.0-rc.1", "web: 1.5.0-rc.2"))
        .unwrap_or_else(|e| panic!("{e}"));
    let summary = dir.join("summary.md");
    let out = tally(
        &fake,
        &[
            "validate",
            &repo.to_string_lossy(),
            "--github",
            "--base",
            "main",
        ],
        Some("t"),
        &summary,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs: Vec<(String, String)> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            (
                r.body["name"].as_str().unwrap_or("").to_owned(),
                r.body["output"]["summary"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = runs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["tally / production", "tally / staging"]);
    let staging = &runs[1].1;
    assert!(staging.contains("## What the change does"), "{staging}");
    assert!(staging.contains("1.5.0-rc.2"), "{staging}");
    assert!(runs[0].1.contains("No change."), "{}", runs[0].1);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.body["conclusion"].is_null() || r.body["conclusion"] == "success")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_puts_the_live_plan_in_the_environments_comment() {
    use tally_fake_apiserver::{Config, FakeApiServer};
    let fake = FakeGitHub::start();
    let server =
        FakeApiServer::start_in_background(Config::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = common::temp_dir("github-plan");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    common::commit_all(&repo, "base");
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .unwrap_or_else(|e| panic!("{e}"));
    let summary = dir.join("summary.md");
    let (repo_arg, kube_arg) = (
        repo.to_string_lossy().into_owned(),
        kubeconfig.to_string_lossy().into_owned(),
    );
    let run = |command: &str, github: bool| {
        let mut args = vec![
            command,
            "--env",
            "staging",
            &repo_arg,
            "--kubeconfig",
            &kube_arg,
        ];
        if github {
            args.extend(["--github", "--github-pr", "7"]);
        }
        tally(&fake, &args, Some("t"), &summary)
    };
    let out = run("plan", true);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let comments = fake.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    let body = &comments[0].2;
    assert!(
        body.starts_with("<!-- tally:environment=staging -->"),
        "{body}"
    );
    assert!(body.contains("the plan against the live cluster"), "{body}");
    assert!(body.contains("```diff"), "{body}");
    // Planned again: the same comment.
    let out = run("plan", true);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(fake.comments().len(), 1);
    assert_eq!(fake.comments()[0].0, comments[0].0);
    // Once applied there is nothing to say: the comment goes.
    let out = run("apply", false);
    assert!(
        matches!(out.status.code(), Some(0) | Some(4)),
        "{}",
        text(&out)
    );
    let out = run("plan", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fake.comments().is_empty(), "{:?}", fake.comments());
    let _ = std::fs::remove_dir_all(&dir);
}
