//! The GitHub client against the fake GitHub API.

mod fake;

use fake::FakeGitHub;
use std::time::{Duration, Instant};

use tally_github::{
    Annotation, App, Auth, CheckRun, CommentAction, Conclusion, Credentials, GitHub, Level,
    comment_marker,
};

fn annotations(n: usize) -> Vec<Annotation> {
    (0..n)
        .map(|i| Annotation {
            path: format!("apps/web/manifests/f{i}.yaml"),
            start_line: i as u32 + 1,
            end_line: i as u32 + 1,
            annotation_level: Level::Failure,
            message: format!("finding {i}"),
            title: "no-latest-tag".into(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_check_run_sends_120_annotations_in_batches_of_50() {
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "secret-token", "acme/platform").expect("client");
    let run = CheckRun {
        name: "tally / staging".into(),
        head_sha: "abc123".into(),
        conclusion: Conclusion::Failure,
        title: "3 errors".into(),
        summary: "## staging".into(),
        annotations: annotations(120),
    };
    let published = gh.check_run(&run).await.expect("published");
    assert_eq!(published.requests, 3);
    assert_eq!(published.annotations, 120);
    assert_eq!(published.left_out, 0);
    let requests = fake.requests();
    let sizes: Vec<(String, usize)> = requests
        .iter()
        .map(|r| {
            let n = r.body["output"]["annotations"]
                .as_array()
                .map_or(0, Vec::len);
            (format!("{} {}", r.method, r.path), n)
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("POST /repos/acme/platform/check-runs".to_owned(), 50),
            (
                format!("PATCH /repos/acme/platform/check-runs/{}", published.id),
                50
            ),
            (
                format!("PATCH /repos/acme/platform/check-runs/{}", published.id),
                20
            ),
        ]
    );
    let create = &requests[0].body;
    assert_eq!(create["conclusion"], "failure");
    assert_eq!(create["head_sha"], "abc123");
    assert_eq!(create["status"], "completed");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer secret-token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn annotations_past_the_cap_are_counted_in_the_summary() {
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform").expect("client");
    let run = CheckRun {
        name: "tally / staging".into(),
        head_sha: "abc123".into(),
        conclusion: Conclusion::Failure,
        title: "many".into(),
        summary: "## staging".into(),
        annotations: annotations(tally_github::MAX_ANNOTATIONS + 7),
    };
    let published = gh.check_run(&run).await.expect("published");
    assert_eq!(published.left_out, 7);
    let summary = fake.requests()[0].body["output"]["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        summary.contains("7 more findings are not shown"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_comment_is_edited_in_place_and_deleted_when_there_is_nothing_to_say() {
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform").expect("client");
    let marker = comment_marker("staging");
    let first = gh.sticky_comment(7, &marker, Some("one change")).await;
    let Ok(CommentAction::Created(id)) = first else {
        panic!("{first:?}");
    };
    // Another environment's comment is another comment.
    let other = gh
        .sticky_comment(7, &comment_marker("production"), Some("x"))
        .await;
    assert!(matches!(other, Ok(CommentAction::Created(_))));
    let second = gh.sticky_comment(7, &marker, Some("two changes")).await;
    assert!(
        matches!(second, Ok(CommentAction::Updated(i)) if i == id),
        "{second:?}"
    );
    let comments = fake.comments();
    assert_eq!(comments.len(), 2);
    assert!(
        comments
            .iter()
            .any(|(i, _, b)| *i == id && b.ends_with("two changes") && b.starts_with(&marker))
    );
    let gone = gh.sticky_comment(7, &marker, None).await;
    assert!(
        matches!(gone, Ok(CommentAction::Deleted(i)) if i == id),
        "{gone:?}"
    );
    assert_eq!(fake.comments().len(), 1);
    assert!(matches!(
        gh.sticky_comment(7, &marker, None).await,
        Ok(CommentAction::None)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn errors_name_the_request_and_never_the_token() {
    let fake = FakeGitHub::start();
    let run = CheckRun {
        name: "n".into(),
        head_sha: "s".into(),
        conclusion: Conclusion::Success,
        title: "t".into(),
        summary: "s".into(),
        annotations: Vec::new(),
    };
    // A base URL the fake serves nothing under: every request is a 404.
    let bad = GitHub::new(
        &format!("{}/nothing-here", fake.url),
        "secret-token",
        "acme/x",
    )
    .expect("client");
    let e = bad.check_run(&run).await.expect_err("404");
    let text = e.to_string();
    assert!(text.contains("POST /repos/acme/x/check-runs"), "{text}");
    assert!(!text.contains("secret-token"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_rate_limited_status_says_when_to_try_again() {
    use tally_github::{Error, Retries, StatusState};
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform")
        .expect("client")
        .with_retries(Retries {
            attempts: 1,
            max_wait: Duration::ZERO,
        });
    fake.fail_next(&[(429, Some(3)), (502, None)]);
    fake.rate_limit_next(120);
    fake.fail_next(&[(404, None)]);
    let limited = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(
        matches!(limited, Err(Error::Busy { after: Some(d), .. }) if d.as_secs() == 3),
        "{limited:?}"
    );
    let down = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(
        matches!(down, Err(Error::Busy { after: None, .. })),
        "{down:?}"
    );
    let spent = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(
        matches!(spent, Err(Error::Busy { after: Some(d), .. }) if (118..=120).contains(&d.as_secs())),
        "{spent:?}"
    );
    let missing = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(matches!(missing, Err(Error::Request { .. })), "{missing:?}");
    gh.commit_status("abc", StatusState::Success, "tally/staging", "applied")
        .await
        .expect("set");
    assert_eq!(
        fake.statuses(),
        [(
            "abc".into(),
            "success".into(),
            "tally/staging".into(),
            "applied".into()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn busy_requests_are_sent_again_after_githubs_wait_within_the_limit() {
    use tally_github::{Error, Retries};
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform")
        .expect("client")
        .with_retries(Retries {
            attempts: 3,
            max_wait: Duration::from_secs(5),
        });
    let run = CheckRun {
        name: "tally / staging".into(),
        head_sha: "abc123".into(),
        conclusion: Conclusion::Success,
        title: "ok".into(),
        summary: "ok".into(),
        annotations: annotations(60),
    };
    // A 429 asking for a second, then a 502 on the update: both sent again, nothing lost.
    fake.fail_next(&[(429, Some(1))]);
    let started = Instant::now();
    let published = gh.check_run(&run).await.expect("published");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(published.requests, 2);
    let methods: Vec<String> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "POST", "PATCH"]);
    // A rate limit resetting in an hour is not waited for: the request fails now, busy.
    fake.rate_limit_next(3600);
    let started = Instant::now();
    let e = gh
        .sticky_comment(7, &comment_marker("staging"), Some("x"))
        .await
        .expect_err("rate limited");
    assert!(matches!(e, Error::Busy { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Three tries at most.
    fake.fail_next(&[(502, None), (503, None), (504, None)]);
    let e = gh
        .sticky_comment(7, &comment_marker("staging"), Some("x"))
        .await
        .expect_err("down");
    assert!(e.to_string().contains("504"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_deployment_and_its_statuses() {
    use tally_github::DeploymentState;
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform").expect("client");
    let id = gh
        .deployment("abc123", "production", "tally applies abc123")
        .await
        .expect("created");
    gh.deployment_status(id, DeploymentState::InProgress, "applying")
        .await
        .expect("status");
    gh.deployment_status(id, DeploymentState::Success, "applied and healthy")
        .await
        .expect("status");
    assert_eq!(
        fake.deployments(),
        [(id, "abc123".to_owned(), "production".to_owned())]
    );
    let states: Vec<String> = fake
        .deployment_statuses()
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(states, ["in_progress", "success"]);
    let create = &fake.requests()[0].body;
    assert_eq!(create["auto_merge"], false);
    assert_eq!(create["required_contexts"], serde_json::json!([]));
}

const APP_KEY: &str = include_str!("fake/app-key.pem");

fn app_auth(fake: &FakeGitHub, dir: &str, id: u64) -> Auth {
    let dir = std::env::temp_dir().join(format!("tally-github-{dir}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("app.pem");
    std::fs::write(&key_file, APP_KEY).expect("key");
    Auth::new(
        &fake.url,
        Credentials::App(App {
            id,
            installation: 42,
            key_file,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_github_app_exchanges_its_jwt_for_an_installation_token_and_keeps_it() {
    let fake = FakeGitHub::start();
    fake.app(7, 42, APP_KEY, 3600);
    let auth = app_auth(&fake, "app-keep", 7);
    for sha in ["a", "b"] {
        let gh = auth.client("acme/platform").await.expect("client");
        gh.commit_status(sha, tally_github::StatusState::Success, "tally/x", "ok")
            .await
            .expect("status with the installation token");
    }
    let tokens = fake.tokens();
    assert_eq!(tokens.len(), 1, "one exchange for both: {tokens:?}");
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/app/installations/42/access_tokens");
    let jwt = requests[0].authorization.clone().unwrap_or_default();
    assert!(jwt.starts_with("Bearer ey"), "a JWT: {jwt}");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer ghs_fake1"))
    );
    assert_eq!(fake.statuses().len(), 2);
    // Another App's JWT is refused, and the error names the request, not the JWT.
    let stranger = app_auth(&fake, "app-stranger", 8);
    let e = stranger
        .client("acme/platform")
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("POST /app/installations/42/access_tokens") && e.contains("401"),
        "{e}"
    );
    assert!(!e.contains("ey"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_installation_token_is_exchanged_again_before_it_expires() {
    let fake = FakeGitHub::start();
    // Tokens valid 302 s: fresh at first, within five minutes of their end two seconds later.
    fake.app(7, 42, APP_KEY, 302);
    let auth = app_auth(&fake, "app-refresh", 7);
    let first = auth.token().await.expect("token");
    assert_eq!(auth.token().await.expect("token"), first);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let second = auth.token().await.expect("token");
    assert_ne!(first, second);
    assert_eq!(fake.tokens().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_token_file_is_read_at_each_use() {
    let dir = std::env::temp_dir().join(format!("tally-github-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("token");
    std::fs::write(&file, "one\n").expect("write");
    let auth = Auth::new("http://127.0.0.1:1", Credentials::TokenFile(file.clone()));
    assert_eq!(auth.token().await.expect("token"), "one");
    std::fs::write(&file, "two").expect("write");
    assert_eq!(auth.token().await.expect("token"), "two");
    std::fs::write(&file, "").expect("write");
    let e = auth.token().await.expect_err("empty").to_string();
    assert!(e.contains("is empty"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
