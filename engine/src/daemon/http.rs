//! The daemon's HTTP server: probes, metrics and the GitHub push webhook.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves requests |
//! | `GET /readyz` | 200 once [`Readiness::check`] passes, else 503 with the reason |
//! | `GET /metrics` | [`Metrics::text`], Prometheus text format |
//! | `POST /hooks/github` | see below; 404 when no [`Webhook`] is configured |
//!
//! # The webhook
//!
//! A delivery is trusted only if `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the
//! raw body under the configured secret, compared in constant time (ring's `hmac::verify`).
//! Nothing is parsed before that. Then:
//!
//! | delivery | status | outcome |
//! |---|---|---|
//! | no `X-Hub-Signature-256` | 401 | `unsigned` |
//! | wrong or malformed signature | 401 | `bad_signature` |
//! | body over [`MAX_WEBHOOK_BODY`] | 413 | `malformed` |
//! | body not received within [`WEBHOOK_BODY_TIMEOUT`] | 408 | `malformed` |
//! | no `X-GitHub-Event`, form-encoded or unparsable push payload | 400/415 | `malformed` |
//! | `ping` | 200 | `ignored` |
//! | `push` to `refs/heads/<branch>` | 202, a [`Trigger`] is sent | `accepted` |
//! | a push elsewhere, a branch deletion, any other event | 204 | `ignored` |
//! | `push` to the branch but the reconcile loop is gone | 503 | `ignored` |
//!
//! Rejections are logged at `warn` through `tracing`, with the peer address and GitHub's
//! delivery id. The outcome is counted in `tally_webhook_deliveries_total`.
//!
//! # Using it
//!
//! ```no_run
//! use std::sync::Arc;
//! use tally_engine::daemon::http::{Readiness, ServerState, Webhook, serve};
//! use tally_engine::daemon::metrics::{Metrics, ReconcileResult};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(Metrics::new());
//! let readiness = Arc::new(Readiness::new(false));
//! // Capacity 1 is enough: a full channel means a fetch is already due, and a fetch reads
//! // the branch head, so no push is missed.
//! let (triggers, mut pushed) = tokio::sync::mpsc::channel(1);
//! let webhook = Webhook::new(b"from --webhook-secret-file".to_vec(), "main", triggers)?;
//! let server = serve(
//!     "0.0.0.0:8080".parse()?,
//!     ServerState { metrics: metrics.clone(), readiness: readiness.clone(), webhook: Some(webhook) },
//! )
//! .await?;
//!
//! // The reconcile loop: on every tick or push, reconcile and record.
//! # let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
//! loop {
//!     tokio::select! {
//!         _ = interval.tick() => {}
//!         Some(trigger) = pushed.recv() => { let _ = trigger.commit; }
//!     }
//!     // ... fetch, gate, plan, apply ...
//!     # let (result, took) = (ReconcileResult::NoChange, std::time::Duration::ZERO);
//!     metrics.reconciled(result, took);
//!     readiness.reconciled();
//!     # break;
//! }
//! readiness.shutting_down();
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use ring::hmac;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::metrics::{self, Metrics, WebhookOutcome};

/// The largest webhook body accepted (1 MiB). GitHub caps payloads at 25 MB, but a push event
/// of a few commits is a few kilobytes; a bigger body is refused before it is buffered.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// How long a webhook body may take to arrive once the headers are in.
pub const WEBHOOK_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The header GitHub signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The header naming the event (`push`, `ping`, ...).
pub const EVENT_HEADER: &str = "x-github-event";
/// The header carrying GitHub's id of the delivery (for logs).
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Why the server could not start or stopped badly, or a webhook could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The server's task panicked or was cancelled.
    #[error("the HTTP server task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// An empty webhook secret would let anyone sign a push.
    #[error(
        "the webhook secret is empty: set a secret on the GitHub webhook and give it to tally, or leave the webhook off"
    )]
    EmptySecret,
    /// The followed branch has no name.
    #[error("the webhook's branch is empty")]
    EmptyBranch,
}

/// A push to the followed branch, sent to the reconcile loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The commit the branch now points to (the push event's `after`).
    pub commit: String,
    /// GitHub's delivery id (`X-GitHub-Delivery`), to tie the reconcile's logs to the delivery.
    pub delivery: Option<String>,
}

/// The GitHub webhook's configuration: the shared secret, the followed branch, and where
/// triggers go.
#[derive(Clone)]
pub struct Webhook {
    key: hmac::Key,
    branch_ref: String,
    triggers: mpsc::Sender<Trigger>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Webhook")
            .field("branch_ref", &self.branch_ref)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook verifying deliveries with `secret` (exactly the bytes set on GitHub: trim the
    /// newline a secret file may end with) and triggering on pushes to `branch` (`main` or
    /// `refs/heads/main`).
    ///
    /// A trigger that finds the channel full is dropped: a reconcile is already due, and it
    /// fetches the branch head. A channel of capacity 1 is therefore enough.
    pub fn new(
        secret: impl AsRef<[u8]>,
        branch: &str,
        triggers: mpsc::Sender<Trigger>,
    ) -> Result<Self, Error> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(Error::EmptySecret);
        }
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        if branch.is_empty() {
            return Err(Error::EmptyBranch);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            branch_ref: format!("refs/heads/{branch}"),
            triggers,
        })
    }
}

/// Whether the daemon should receive traffic, as `/readyz` reports it.
///
/// Ready once the first reconcile has finished (whatever its result: a rejected commit is a
/// healthy daemon refusing it) and, with leader election, while this replica holds the lease.
/// A standby replica is therefore not ready, so the webhook Service sends pushes to the leader,
/// the one replica that reconciles.
#[derive(Debug)]
pub struct Readiness {
    state: Mutex<ReadinessState>,
}

#[derive(Debug)]
struct ReadinessState {
    reconciled: bool,
    /// `None` without leader election.
    lease_held: Option<bool>,
    shutting_down: bool,
}

impl Readiness {
    /// Not ready yet: no reconcile has finished and, with `leader_election`, no lease is held.
    pub fn new(leader_election: bool) -> Self {
        Self {
            state: Mutex::new(ReadinessState {
                reconciled: false,
                lease_held: leader_election.then_some(false),
                shutting_down: false,
            }),
        }
    }

    /// The first reconcile (of this leadership) has finished.
    pub fn reconciled(&self) {
        self.update(|state| state.reconciled = true);
    }

    /// The lease was acquired (`true`) or lost (`false`). Losing it also forgets the
    /// reconcile: a new leader is ready after its own first reconcile. Ignored without leader
    /// election.
    pub fn lease(&self, held: bool) {
        self.update(|state| {
            if let Some(lease) = state.lease_held.as_mut() {
                *lease = held;
                if !held {
                    state.reconciled = false;
                }
            }
        });
    }

    /// The daemon is stopping: not ready from now on, so traffic drains before the server stops.
    pub fn shutting_down(&self) {
        self.update(|state| state.shutting_down = true);
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), &'static str> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.shutting_down {
            Err("shutting down")
        } else if state.lease_held == Some(false) {
            Err("waiting for the leader lease (another replica reconciles)")
        } else if !state.reconciled {
            Err("the first reconcile has not finished")
        } else {
            Ok(())
        }
    }

    fn update(&self, change: impl FnOnce(&mut ReadinessState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// What the server serves: shared with the reconcile loop, which updates metrics and readiness.
#[derive(Debug)]
pub struct ServerState {
    /// Served on `/metrics`; the webhook counts its deliveries here.
    pub metrics: Arc<Metrics>,
    /// Answers `/readyz`.
    pub readiness: Arc<Readiness>,
    /// The GitHub webhook; `None` disables it (`/hooks/github` answers 404).
    pub webhook: Option<Webhook>,
}

/// A running server. Dropping it stops the server too (gracefully, without waiting).
#[derive(Debug)]
#[must_use = "dropping the handle stops the server"]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets requests in progress finish, and waits for the server
    /// to stop. Requests are short (a webhook body has [`WEBHOOK_BODY_TIMEOUT`] to arrive), but
    /// a caller that must not wait at all can wrap this in `tokio::time::timeout`.
    pub async fn shutdown(self) -> Result<(), Error> {
        // The server may have stopped already; its result is in the task either way.
        let _ = self.stop.send(());
        self.task.await?.map_err(Error::Serve)
    }
}

/// Binds `addr` and serves the daemon's routes on a new tokio task until
/// [`ServerHandle::shutdown`]. Must be called within a tokio runtime.
pub async fn serve(addr: SocketAddr, state: ServerState) -> Result<ServerHandle, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/hooks/github", post(github_hook))
        .with_state(Arc::new(state))
        .into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped handle stops the server as well as an explicit shutdown.
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(addr = %bound, "serving /healthz, /readyz, /metrics and /hooks/github");
    Ok(ServerHandle {
        addr: bound,
        stop,
        task,
    })
}

type Shared = State<Arc<ServerState>>;

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): Shared) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.text(),
    )
        .into_response()
}

/// The fields of a push event tally reads.
#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
}

async fn github_hook(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let Some(webhook) = &state.webhook else {
        return (
            StatusCode::NOT_FOUND,
            "the webhook is disabled: no secret configured\n",
        )
            .into_response();
    };
    let (parts, body) = request.into_parts();
    let delivery = header_str(&parts.headers, DELIVERY_HEADER).map(str::to_owned);
    let delivery_id = delivery.as_deref().unwrap_or("-");
    let reject = |outcome: WebhookOutcome, status: StatusCode, reason: &str| {
        state.metrics.webhook(outcome);
        tracing::warn!(
            %peer,
            delivery = delivery_id,
            outcome = outcome.as_str(),
            status = status.as_u16(),
            "webhook delivery rejected: {reason}"
        );
        (status, format!("{reason}\n")).into_response()
    };
    let ignore = |status: StatusCode, reason: &str| {
        state.metrics.webhook(WebhookOutcome::Ignored);
        tracing::info!(%peer, delivery = delivery_id, "webhook delivery ignored: {reason}");
        (status, format!("{reason}\n")).into_response()
    };

    // Refuse unsigned deliveries before reading their bodies.
    let Some(signature) = parts.headers.get(SIGNATURE_HEADER) else {
        return reject(
            WebhookOutcome::Unsigned,
            StatusCode::UNAUTHORIZED,
            "no X-Hub-Signature-256 header",
        );
    };
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
        .and_then(|length| length.parse::<u64>().ok());
    let too_large = declared.is_some_and(|length| length > MAX_WEBHOOK_BODY as u64);
    let body = if too_large {
        Err(BodyError::TooLarge)
    } else {
        read_body(body).await
    };
    let body = match body {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return reject(
                WebhookOutcome::Malformed,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body larger than 1 MiB",
            );
        }
        Err(BodyError::TooSlow) => {
            return reject(
                WebhookOutcome::Malformed,
                StatusCode::REQUEST_TIMEOUT,
                "body not received in time",
            );
        }
        Err(BodyError::Unreadable) => {
            return reject(
                WebhookOutcome::Malformed,
                StatusCode::BAD_REQUEST,
                "body could not be read",
            );
        }
    };
    if !signature_matches(&webhook.key, signature.as_bytes(), &body) {
        return reject(
            WebhookOutcome::BadSignature,
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 does not match the body",
        );
    }

    // From here on the delivery comes from whoever holds the secret.
    let Some(event) = header_str(&parts.headers, EVENT_HEADER) else {
        return reject(
            WebhookOutcome::Malformed,
            StatusCode::BAD_REQUEST,
            "no X-GitHub-Event header",
        );
    };
    match event {
        "ping" => return ignore(StatusCode::OK, "pong"),
        "push" => {}
        _ => return ignore(StatusCode::NO_CONTENT, "not a push event"),
    }
    let form_encoded = header_str(&parts.headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form_encoded {
        return reject(
            WebhookOutcome::Malformed,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "form-encoded payload: set the webhook's content type to application/json",
        );
    }
    let push: PushEvent = match serde_json::from_slice(&body) {
        Ok(push) => push,
        Err(_) => {
            return reject(
                WebhookOutcome::Malformed,
                StatusCode::BAD_REQUEST,
                "not a push event payload (JSON with `ref` and `after`)",
            );
        }
    };
    if push.git_ref != webhook.branch_ref {
        return ignore(StatusCode::NO_CONTENT, "a push to another ref");
    }
    if push.deleted {
        return ignore(StatusCode::NO_CONTENT, "the followed branch was deleted");
    }
    if !is_commit_id(&push.after) {
        return reject(
            WebhookOutcome::Malformed,
            StatusCode::BAD_REQUEST,
            "`after` is not a commit id",
        );
    }
    let trigger = Trigger {
        commit: push.after,
        delivery: delivery.clone(),
    };
    let commit = trigger.commit.clone();
    match webhook.triggers.try_send(trigger) {
        // Full: a reconcile is already due and will fetch this push too.
        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {
            state.metrics.webhook(WebhookOutcome::Accepted);
            tracing::info!(
                %peer,
                delivery = delivery_id,
                commit,
                git_ref = webhook.branch_ref,
                "push received: reconcile triggered"
            );
            (StatusCode::ACCEPTED, "reconcile triggered\n").into_response()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            state.metrics.webhook(WebhookOutcome::Ignored);
            tracing::error!(
                %peer,
                delivery = delivery_id,
                commit,
                "push received but the reconcile loop is not running"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the reconcile loop is not running\n",
            )
                .into_response()
        }
    }
}

enum BodyError {
    TooLarge,
    TooSlow,
    Unreadable,
}

async fn read_body(body: Body) -> Result<Vec<u8>, BodyError> {
    let limited = Limited::new(body, MAX_WEBHOOK_BODY);
    match tokio::time::timeout(WEBHOOK_BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Whether `header` is `sha256=<64 hex digits>` and the digits are the HMAC-SHA256 of `body`
/// under `key`. ring compares in constant time, so the answer's timing does not tell an attacker
/// how much of a forged signature was right.
fn signature_matches(key: &hmac::Key, header: &[u8], body: &[u8]) -> bool {
    let Some(hex) = header.strip_prefix(b"sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    tag.len() == 32 && hmac::verify(key, body, &tag).is_ok()
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A full SHA-1 or SHA-256 object id in lowercase hex.
fn is_commit_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example in GitHub's documentation on validating webhook deliveries.
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_BODY: &str = "Hello, World!";
    const DOC_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn doc_key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, DOC_SECRET.as_bytes())
    }

    #[test]
    fn githubs_example_signature_matches() {
        assert!(signature_matches(
            &doc_key(),
            DOC_SIGNATURE.as_bytes(),
            DOC_BODY.as_bytes()
        ));
        // Hex digits are case-insensitive.
        assert!(signature_matches(
            &doc_key(),
            DOC_SIGNATURE
                .to_uppercase()
                .replace("SHA256=", "sha256=")
                .as_bytes(),
            DOC_BODY.as_bytes()
        ));
    }

    #[test]
    fn anything_else_does_not_match() {
        let key = doc_key();
        let body = DOC_BODY.as_bytes();
        let hex = &DOC_SIGNATURE["sha256=".len()..];
        for header in [
            String::new(),
            hex.to_owned(),
            format!("sha1={hex}"),
            format!("sha256={}", &hex[..62]),
            format!("sha256={hex}00"),
            format!("sha256={}0", &hex[..63]),
            format!("sha256={}x", &hex[..63]),
            format!("sha256= {hex}"),
            "sha256=".to_owned(),
        ] {
            assert!(
                !signature_matches(&key, header.as_bytes(), body),
                "{header:?} matched"
            );
        }
        assert!(!signature_matches(
            &key,
            DOC_SIGNATURE.as_bytes(),
            b"Hello, World?"
        ));
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another secret");
        assert!(!signature_matches(&other, DOC_SIGNATURE.as_bytes(), body));
    }

    #[test]
    fn odd_or_non_hex_digits_do_not_decode() {
        assert_eq!(decode_hex(b"0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex(b""), Some(vec![]));
        assert_eq!(decode_hex(b"abc"), None);
        assert_eq!(decode_hex(b"zz"), None);
        assert_eq!(decode_hex("é1".as_bytes()), None);
    }

    #[test]
    fn commit_ids_are_full_lowercase_hex() {
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"0".repeat(64)));
        assert!(!is_commit_id("3f2a9c1"));
        assert!(!is_commit_id(&"A".repeat(40)));
        assert!(!is_commit_id(&"g".repeat(40)));
    }

    #[test]
    fn a_webhook_needs_a_secret_and_a_branch() {
        let (triggers, _pushed) = mpsc::channel(1);
        assert!(matches!(
            Webhook::new(b"", "main", triggers.clone()),
            Err(Error::EmptySecret)
        ));
        assert!(matches!(
            Webhook::new(b"s", "refs/heads/", triggers.clone()),
            Err(Error::EmptyBranch)
        ));
        let webhook = Webhook::new(b"s", "refs/heads/main", triggers.clone());
        assert!(webhook.is_ok_and(|w| w.branch_ref == "refs/heads/main"));
        let webhook = Webhook::new(b"s", "main", triggers);
        assert!(
            webhook.is_ok_and(
                |w| w.branch_ref == "refs/heads/main" && !format!("{w:?}").contains("key")
            )
        );
    }

    #[test]
    fn readiness_needs_a_reconcile_and_the_lease() {
        let plain = Readiness::new(false);
        assert_eq!(plain.check(), Err("the first reconcile has not finished"));
        plain.lease(false); // no election: ignored
        plain.reconciled();
        assert_eq!(plain.check(), Ok(()));
        plain.shutting_down();
        assert_eq!(plain.check(), Err("shutting down"));

        let elected = Readiness::new(true);
        elected.reconciled();
        assert!(elected.check().is_err_and(|r| r.contains("lease")));
        elected.lease(true);
        assert_eq!(elected.check(), Ok(()));
        elected.lease(false);
        elected.lease(true);
        assert_eq!(elected.check(), Err("the first reconcile has not finished"));
    }
}
