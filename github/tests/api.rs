//! The GitHub client against the fake GitHub API.

mod fake;

use fake::FakeGitHub;
use tally_github::{
    Annotation, CheckRun, CommentAction, Conclusion, GitHub, Level, comment_marker,
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
    use tally_github::{StatusError, StatusState};
    let fake = FakeGitHub::start();
    let gh = GitHub::new(&fake.url, "t", "acme/platform").expect("client");
    fake.fail_next(&[(429, Some(3)), (502, None), (404, None)]);
    let limited = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(
        matches!(limited, Err(StatusError::Retry { after: Some(d), .. }) if d.as_secs() == 3),
        "{limited:?}"
    );
    let down = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(
        matches!(down, Err(StatusError::Retry { after: None, .. })),
        "{down:?}"
    );
    let missing = gh
        .commit_status("abc", StatusState::Pending, "tally/staging", "applying")
        .await;
    assert!(matches!(missing, Err(StatusError::Fatal(_))), "{missing:?}");
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
