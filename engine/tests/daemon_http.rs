//! The daemon's HTTP server over real HTTP: probes, metrics and the GitHub webhook.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::hmac;
use tally_engine::daemon::http::{MAX_WEBHOOK_BODY, Trigger};
use tally_engine::daemon::{
    Metrics, Readiness, ReconcileResult, ServerHandle, ServerState, Webhook, serve,
};
use tokio::sync::mpsc;

const SECRET: &[u8] = b"a shared secret";
const MAIN_HEAD: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

struct Daemon {
    server: ServerHandle,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: String,
}

/// A server on 127.0.0.1 with a random port, following `main` when `triggers` is given.
async fn start(triggers: Option<mpsc::Sender<Trigger>>) -> Daemon {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::new(false));
    let webhook = triggers.map(|t| Webhook::new(SECRET, "main", t).expect("a valid webhook"));
    let server = serve(
        "127.0.0.1:0".parse().expect("an address"),
        ServerState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            webhook,
        },
    )
    .await
    .expect("the server starts");
    Daemon {
        server,
        metrics,
        readiness,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl Daemon {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.server.addr()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        let response = self.client.request(request).await.expect("an answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        Answer {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], Vec::new()).await
    }

    /// A delivery of `event` signed with `secret` (unsigned when `None`).
    async fn deliver(&self, event: &str, body: &str, secret: Option<&[u8]>) -> Answer {
        let signature = secret.map(|s| sign(s, body.as_bytes()));
        let mut headers = vec![
            ("x-github-event", event),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("content-type", "application/json"),
        ];
        if let Some(signature) = &signature {
            headers.push(("x-hub-signature-256", signature));
        }
        self.send(
            Method::POST,
            "/hooks/github",
            &headers,
            body.as_bytes().to_vec(),
        )
        .await
    }

    async fn metric(&self, sample: &str) -> f64 {
        let text = self.get("/metrics").await.body;
        parse_exposition(&text)
            .remove(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn push(git_ref: &str, after: &str) -> String {
    serde_json::json!({
        "ref": git_ref,
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "deleted": false,
        "repository": {"full_name": "acme/environments"},
        "commits": [],
    })
    .to_string()
}

/// Checks every line of a Prometheus text exposition and returns its samples by
/// `name{labels}`: HELP then TYPE before a family's samples, sample names belonging to the
/// family, label values quoted, values numbers.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut family: Option<(String, String)> = None;
    let mut helped: Option<String> = None;
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "{line}");
            helped = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(helped.as_deref(), Some(name), "HELP before TYPE: {line}");
            assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter names end in _total: {line}"
                );
            }
            family = Some((name.to_owned(), kind.to_owned()));
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line}");
            let (name_labels, value) = line.rsplit_once(' ').expect("name value");
            let name = name_labels.split('{').next().expect("a name");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let (family_name, kind) = family.as_ref().expect("TYPE before samples");
            let suffixes: &[&str] = if kind == "histogram" {
                &["_bucket", "_sum", "_count"]
            } else {
                &[""]
            };
            assert!(
                suffixes
                    .iter()
                    .any(|s| *name == format!("{family_name}{s}")),
                "{name} is not in family {family_name}"
            );
            let labels = &name_labels[name.len()..];
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .expect("labels in braces");
                check_labels(inner, line);
            }
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("a number in {line}")),
            };
            assert!(
                samples.insert(name_labels.to_owned(), value).is_none(),
                "duplicate sample {line}"
            );
        }
    }
    samples
}

/// `name="value",...` with values escaped (no raw quote, backslash only before `\`, `"`, `n`).
fn check_labels(mut rest: &str, line: &str) {
    loop {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {line}"));
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape in {line}"
                    );
                }
                Some((i, '"')) => break i,
                Some(_) => {}
                None => panic!("unterminated label value in {line}"),
            }
        };
        rest = &after[end + 1..];
        if rest.is_empty() {
            return;
        }
        rest = rest
            .strip_prefix(',')
            .unwrap_or_else(|| panic!("comma in {line}"));
    }
}

#[tokio::test]
async fn a_signed_push_to_the_branch_triggers_a_reconcile() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;
    let answer = daemon
        .deliver("push", &push("refs/heads/main", MAIN_HEAD), Some(SECRET))
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(
        pushed.recv().await,
        Some(Trigger {
            commit: MAIN_HEAD.to_owned(),
            delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned()),
        })
    );
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"accepted\"}")
            .await,
        1.0
    );
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn unsigned_and_badly_signed_pushes_are_refused() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;
    let body = push("refs/heads/main", MAIN_HEAD);

    let unsigned = daemon.deliver("push", &body, None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let wrong_secret = daemon.deliver("push", &body, Some(b"guessed")).await;
    assert_eq!(wrong_secret.status, StatusCode::UNAUTHORIZED);
    // A signature of another body.
    let replayed = sign(SECRET, push("refs/heads/main", &"1".repeat(40)).as_bytes());
    let tampered = daemon
        .send(
            Method::POST,
            "/hooks/github",
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &replayed),
            ],
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);
    let garbage = daemon
        .send(
            Method::POST,
            "/hooks/github",
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", "sha256=xyz"),
            ],
            body.into_bytes(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    assert!(matches!(
        pushed.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"unsigned\"}")
            .await,
        1.0
    );
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"bad_signature\"}")
            .await,
        3.0
    );
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"accepted\"}")
            .await,
        0.0
    );
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn pushes_elsewhere_and_other_events_are_ignored() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;

    let ping = daemon
        .deliver(
            "ping",
            r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
            Some(SECRET),
        )
        .await;
    assert_eq!(ping.status, StatusCode::OK);
    for git_ref in [
        "refs/heads/feature",
        "refs/heads/main2",
        "refs/tags/main",
        "main",
    ] {
        let answer = daemon
            .deliver("push", &push(git_ref, MAIN_HEAD), Some(SECRET))
            .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{git_ref}");
    }
    let deleted =
        serde_json::json!({"ref": "refs/heads/main", "after": "0".repeat(40), "deleted": true})
            .to_string();
    let answer = daemon.deliver("push", &deleted, Some(SECRET)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let issue = daemon
        .deliver("issues", r#"{"action":"opened"}"#, Some(SECRET))
        .await;
    assert_eq!(issue.status, StatusCode::NO_CONTENT);

    assert!(matches!(
        pushed.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"ignored\"}")
            .await,
        7.0
    );
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn signed_but_unusable_deliveries_are_refused() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;

    let not_json = daemon
        .deliver("push", "ref=refs/heads/main", Some(SECRET))
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let short_commit = daemon
        .deliver("push", &push("refs/heads/main", "4b825dc"), Some(SECRET))
        .await;
    assert_eq!(short_commit.status, StatusCode::BAD_REQUEST);
    let body = push("refs/heads/main", MAIN_HEAD);
    let signature = sign(SECRET, body.as_bytes());
    let no_event = daemon
        .send(
            Method::POST,
            "/hooks/github",
            &[("x-hub-signature-256", &signature)],
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(no_event.status, StatusCode::BAD_REQUEST);
    let form = daemon
        .send(
            Method::POST,
            "/hooks/github",
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body.into_bytes(),
        )
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(form.body.contains("application/json"), "{}", form.body);

    assert!(matches!(
        pushed.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"malformed\"}")
            .await,
        4.0
    );
    daemon.server.shutdown().await.expect("a clean shutdown");
}

/// Sends raw bytes (writing as much as the server takes) and returns the status code of the
/// answer. Raw, because a server that refuses a body early may close before taking all of it.
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("a connection");
    // The server may stop reading once it has seen enough; its answer is what matters.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .unwrap_or_else(|| panic!("an answer: {answer:?}"));
    status[..3].parse().expect("a status code")
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;
    let addr = daemon.server.addr();
    // A valid push padded past the limit and correctly signed: size alone refuses it.
    let mut body = push("refs/heads/main", MAIN_HEAD);
    body.insert_str(
        1,
        &format!("\"padding\":\"{}\",", "x".repeat(MAX_WEBHOOK_BODY)),
    );
    let signature = sign(SECRET, body.as_bytes());
    let head = format!(
        "POST /hooks/github HTTP/1.1\r\nhost: {addr}\r\nx-github-event: push\r\n\
         x-hub-signature-256: {signature}\r\ncontent-type: application/json\r\n"
    );

    // Declared too long: refused before the body is sent at all.
    let declared = format!("{head}content-length: {}\r\n\r\n", body.len());
    assert_eq!(raw_status(addr, declared.as_bytes()).await, 413);

    // Chunked, so the length shows only while reading: refused once the limit is passed.
    let mut chunked = format!("{head}transfer-encoding: chunked\r\n\r\n").into_bytes();
    for chunk in body.as_bytes().chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_status(addr, &chunked).await, 413);

    // Just under the limit is fine (and then judged on its content: here, accepted).
    let mut fits = push("refs/heads/main", MAIN_HEAD);
    let padding = MAX_WEBHOOK_BODY - fits.len() - "\"padding\":\"\",".len();
    fits.insert_str(1, &format!("\"padding\":\"{}\",", "x".repeat(padding)));
    assert_eq!(fits.len(), MAX_WEBHOOK_BODY);
    let answer = daemon.deliver("push", &fits, Some(SECRET)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert!(pushed.recv().await.is_some());

    assert!(matches!(
        pushed.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    assert_eq!(
        daemon
            .metric("tally_webhook_deliveries_total{outcome=\"malformed\"}")
            .await,
        2.0
    );
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn pushes_while_a_reconcile_is_due_are_accepted_and_coalesced() {
    let (triggers, mut pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;
    let second = "1".repeat(40);
    for head in [MAIN_HEAD, second.as_str()] {
        let answer = daemon
            .deliver("push", &push("refs/heads/main", head), Some(SECRET))
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    // One reconcile is due; it fetches the branch head, which has both pushes.
    assert!(pushed.recv().await.is_some());
    assert!(pushed.try_recv().is_err());

    // Once the loop is gone, a push is answered 503 rather than silently dropped.
    drop(pushed);
    let answer = daemon
        .deliver("push", &push("refs/heads/main", MAIN_HEAD), Some(SECRET))
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn without_a_secret_the_webhook_does_not_exist() {
    let daemon = start(None).await;
    let answer = daemon
        .deliver("push", &push("refs/heads/main", MAIN_HEAD), None)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = daemon
        .deliver("push", &push("refs/heads/main", MAIN_HEAD), Some(SECRET))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn probes_answer_and_readiness_follows_the_daemon() {
    let daemon = start(None).await;
    let health = daemon.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);

    let ready = daemon.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.body.contains("first reconcile"), "{}", ready.body);

    daemon.readiness.reconciled();
    assert_eq!(daemon.get("/readyz").await.status, StatusCode::OK);

    daemon.readiness.shutting_down();
    let draining = daemon.get("/readyz").await;
    assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(draining.body.contains("shutting down"));
    // Liveness does not depend on readiness.
    assert_eq!(daemon.get("/healthz").await.status, StatusCode::OK);

    let wrong_method = daemon
        .send(Method::GET, "/hooks/github", &[], Vec::new())
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(daemon.get("/nothing").await.status, StatusCode::NOT_FOUND);
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn metrics_show_what_the_daemon_recorded() {
    let (triggers, _pushed) = mpsc::channel(1);
    let daemon = start(Some(triggers)).await;
    let before = daemon.get("/metrics").await;
    assert_eq!(before.status, StatusCode::OK);
    let families: Vec<&str> = before
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();

    let metrics = &daemon.metrics;
    metrics.reconciled(ReconcileResult::Applied, Duration::from_millis(1500));
    metrics.reconciled(ReconcileResult::NoChange, Duration::from_millis(40));
    metrics.reconciled(ReconcileResult::Rejected, Duration::from_millis(200));
    metrics.commit_rejected();
    metrics.applied(12);
    metrics.pruned(2);
    metrics.drift(3);
    metrics.drift_corrected(3);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    metrics.commit_applied(MAIN_HEAD, "prod \"eu\"", at);
    daemon.deliver("push", "{}", None).await;

    let answer = daemon.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let after: Vec<&str> = answer
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    assert_eq!(families, after, "families keep their order");
    let samples = parse_exposition(&answer.body);
    let expected = [
        ("tally_reconciles_total{result=\"applied\"}", 1.0),
        ("tally_reconciles_total{result=\"no_change\"}", 1.0),
        ("tally_reconciles_total{result=\"rejected\"}", 1.0),
        ("tally_reconciles_total{result=\"failed\"}", 0.0),
        ("tally_reconcile_duration_seconds_bucket{le=\"0.05\"}", 1.0),
        ("tally_reconcile_duration_seconds_bucket{le=\"0.25\"}", 2.0),
        ("tally_reconcile_duration_seconds_bucket{le=\"2.5\"}", 3.0),
        ("tally_reconcile_duration_seconds_bucket{le=\"+Inf\"}", 3.0),
        ("tally_reconcile_duration_seconds_count", 3.0),
        ("tally_gate_rejections_total", 1.0),
        ("tally_objects_applied_total", 12.0),
        ("tally_prune_deletions_total", 2.0),
        ("tally_drift_objects", 3.0),
        ("tally_drift_corrections_total", 3.0),
        (
            "tally_last_applied_commit_timestamp_seconds",
            1_767_225_600.0,
        ),
        (
            "tally_last_applied_commit{commit=\"4b825dc642cb6eb9a060e54bf8d69288fbee4904\",environment=\"prod \\\"eu\\\"\"}",
            1.0,
        ),
        ("tally_webhook_deliveries_total{outcome=\"unsigned\"}", 1.0),
    ];
    for (sample, value) in expected {
        assert_eq!(
            samples.get(sample),
            Some(&value),
            "{sample} in\n{}",
            answer.body
        );
    }
    let sum = samples["tally_reconcile_duration_seconds_sum"];
    assert!((sum - 1.74).abs() < 1e-9, "sum {sum}");
    daemon.server.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn after_shutdown_nothing_listens() {
    let daemon = start(None).await;
    let addr = daemon.server.addr();
    assert_eq!(daemon.get("/healthz").await.status, StatusCode::OK);
    daemon.server.shutdown().await.expect("a clean shutdown");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn every_metric_is_documented() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/daemon.md");
    let docs = std::fs::read_to_string(docs_path).expect("docs/daemon.md");
    let text = Metrics::new().text();
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = family.split_once(' ').expect("TYPE name kind");
        let row = docs
            .lines()
            .find(|l| {
                l.starts_with(&format!("| `{name}`")) || l.starts_with(&format!("| `{name}{{"))
            })
            .unwrap_or_else(|| panic!("{name} is not in the table of docs/daemon.md"));
        assert!(
            row.contains(&format!("| {kind} |")),
            "{name} is a {kind}: {row}"
        );
    }
}
