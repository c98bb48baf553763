//! A fake GitHub API for tests: real HTTP on 127.0.0.1 (a random port), the endpoints tally
//! uses (check runs, issue comments, commit statuses, deployments, a GitHub App's installation
//! tokens), every request recorded with its body.
//!
//! With [`FakeGitHub::app`], it acts as GitHub does for an App: the token exchange checks the
//! JWT's RS256 signature against the App's key, its issuer and its times, and every other
//! request must carry an installation token it issued and that has not expired.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Debug, Default)]
pub struct State {
    pub requests: Vec<Request>,
    /// Answers to give before any other, in order.
    pub faults: Vec<Fault>,
    /// The App whose tokens are required, once set.
    pub app: Option<AppConfig>,
    /// Installation tokens issued: (token, expiry in seconds since the epoch).
    pub tokens: Vec<(String, u64)>,
    /// Deployments: (id, ref, environment).
    pub deployments: Vec<(u64, String, String)>,
    /// Deployment statuses: (deployment id, state, description).
    pub deployment_statuses: Vec<(u64, String, String)>,
    /// Commit statuses set: (sha, state, context, description).
    pub statuses: Vec<(String, String, String, String)>,
    /// Pull-request comments: (id, pr, body).
    pub comments: Vec<(u64, u64, String)>,
    next_id: u64,
}

/// An answer given instead of the real one.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The rate limit spent (`x-ratelimit-remaining: 0`), reset this many seconds from now.
    pub reset_in: Option<u64>,
}

/// A GitHub App the fake knows.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub id: u64,
    pub installation: u64,
    /// The App's public key (PKCS#1 DER).
    pub public_key: Vec<u8>,
    /// How long an installation token is valid, in seconds.
    pub token_ttl: u64,
}

/// The running fake: its base URL and what it saw.
#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeGitHub {
    /// Starts the fake on its own thread and runtime; it lives as long as the process.
    pub fn start() -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            next_id: 100,
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
                        let state = Arc::clone(&shared);
                        async move { answer(&state, method, uri, headers, body) }
                    },
                );
                axum::serve(listener, app).await.expect("serve");
            });
        });
        FakeGitHub { url, state }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("lock").requests.clone()
    }

    pub fn comments(&self) -> Vec<(u64, u64, String)> {
        self.state.lock().expect("lock").comments.clone()
    }

    pub fn statuses(&self) -> Vec<(String, String, String, String)> {
        self.state.lock().expect("lock").statuses.clone()
    }

    /// The next answers, before any other: (status, Retry-After seconds).
    pub fn fail_next(&self, faults: &[(u16, Option<u64>)]) {
        self.state
            .lock()
            .expect("lock")
            .faults
            .extend(faults.iter().map(|&(status, retry_after)| Fault {
                status,
                retry_after,
                reset_in: None,
            }));
    }

    /// The next answer is a 403 with the rate limit spent, reset `reset_in` seconds from now.
    pub fn rate_limit_next(&self, reset_in: u64) {
        self.state.lock().expect("lock").faults.push(Fault {
            status: 403,
            retry_after: None,
            reset_in: Some(reset_in),
        });
    }

    /// From now on, acts for the App whose private key is the PEM `key`: requests need its
    /// installation tokens, valid `token_ttl` seconds.
    pub fn app(&self, id: u64, installation: u64, key: &str, token_ttl: u64) {
        let der = pem_der(key);
        let pair = ring::signature::RsaKeyPair::from_der(&der).expect("an RSA key (PKCS#1)");
        let public_key = ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec();
        self.state.lock().expect("lock").app = Some(AppConfig {
            id,
            installation,
            public_key,
            token_ttl,
        });
    }

    /// Installation tokens issued so far.
    pub fn tokens(&self) -> Vec<(String, u64)> {
        self.state.lock().expect("lock").tokens.clone()
    }

    pub fn deployments(&self) -> Vec<(u64, String, String)> {
        self.state.lock().expect("lock").deployments.clone()
    }

    pub fn deployment_statuses(&self) -> Vec<(u64, String, String)> {
        self.state.lock().expect("lock").deployment_statuses.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().expect("lock").requests.clear();
    }
}

fn answer(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("lock");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.requests.push(Request {
        method: method.to_string(),
        path: uri.to_string(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.clone(),
    });
    if !s.faults.is_empty() {
        let fault = s.faults.remove(0);
        let code = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = reply(code, json!({"message": "fault"}));
        let mut header = |name: &'static str, value: u64| {
            response.headers_mut().insert(
                name,
                axum::http::HeaderValue::from_str(&value.to_string()).expect("header"),
            );
        };
        if let Some(secs) = fault.retry_after {
            header("retry-after", secs);
        }
        if let Some(secs) = fault.reset_in {
            header("x-ratelimit-remaining", 0);
            header("x-ratelimit-reset", now() + secs);
        }
        return response;
    }
    let path = uri.path().to_owned();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = uri.query().unwrap_or("");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    if let Some(app) = s.app.clone() {
        if let ("POST", ["app", "installations", id, "access_tokens"]) =
            (method.as_str(), parts.as_slice())
        {
            if id.parse::<u64>().ok() != Some(app.installation) {
                return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            if let Err(why) = verify_jwt(&authorization, &app) {
                return reply(StatusCode::UNAUTHORIZED, json!({"message": why}));
            }
            let token = format!("ghs_fake{}", s.tokens.len() + 1);
            let expires = now() + app.token_ttl;
            s.tokens.push((token.clone(), expires));
            return reply(
                StatusCode::CREATED,
                json!({"token": token, "expires_at": iso(expires)}),
            );
        }
        let valid = s
            .tokens
            .iter()
            .any(|(t, expires)| *t == authorization && *expires > now());
        if !valid {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Bad credentials"}),
            );
        }
    }
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["repos", _, _, "deployments"]) => {
            s.next_id += 1;
            let id = s.next_id;
            let field = |k: &str| body[k].as_str().unwrap_or("").to_owned();
            let entry = (id, field("ref"), field("environment"));
            s.deployments.push(entry);
            reply(StatusCode::CREATED, json!({"id": id}))
        }
        ("POST", ["repos", _, _, "deployments", id, "statuses"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !s.deployments.iter().any(|d| d.0 == id) {
                return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            let field = |k: &str| body[k].as_str().unwrap_or("").to_owned();
            let entry = (id, field("state"), field("description"));
            s.deployment_statuses.push(entry);
            reply(StatusCode::CREATED, json!({"state": body["state"]}))
        }
        ("POST", ["repos", o, r, "check-runs"]) => {
            s.next_id += 1;
            let id = s.next_id;
            let url = format!("https://github.example/{o}/{r}/runs/{id}");
            reply(StatusCode::CREATED, json!({"id": id, "html_url": url}))
        }
        ("POST", ["repos", _, _, "statuses", sha]) => {
            let field = |k: &str| body[k].as_str().unwrap_or("").to_owned();
            let entry = (
                sha.to_string(),
                field("state"),
                field("context"),
                field("description"),
            );
            s.statuses.push(entry);
            reply(StatusCode::CREATED, json!({"state": body["state"]}))
        }
        ("PATCH", ["repos", _, _, "check-runs", id]) => reply(
            StatusCode::OK,
            json!({"id": id.parse::<u64>().unwrap_or(0)}),
        ),
        ("GET", ["repos", _, _, "issues", pr, "comments"]) => {
            let pr: u64 = pr.parse().unwrap_or(0);
            let page = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(1);
            let list: Vec<Value> = if page == 1 {
                s.comments
                    .iter()
                    .filter(|(_, p, _)| *p == pr)
                    .map(|(id, _, body)| json!({"id": id, "body": body}))
                    .collect()
            } else {
                Vec::new()
            };
            reply(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["repos", _, _, "issues", pr, "comments"]) => {
            s.next_id += 1;
            let id = s.next_id;
            let pr: u64 = pr.parse().unwrap_or(0);
            let text = body["body"].as_str().unwrap_or("").to_owned();
            s.comments.push((id, pr, text));
            reply(StatusCode::CREATED, json!({"id": id}))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = body["body"].as_str().unwrap_or("").to_owned();
            match s.comments.iter_mut().find(|(c, _, _)| *c == id) {
                Some(c) => {
                    c.2 = text;
                    reply(StatusCode::OK, json!({"id": id}))
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        ("DELETE", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            s.comments.retain(|(c, _, _)| *c != id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch as GitHub writes a time: `2026-12-03T19:40:00Z`.
fn iso(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // The civil date of a day number (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM")
}

/// Checks an App's JWT as GitHub does: RS256 signed with the App's key, issued by the App,
/// issued in the past and expiring in the future, at most ten minutes long.
fn verify_jwt(jwt: &str, app: &AppConfig) -> Result<(), String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("A JSON web token could not be decoded".into());
    };
    let decode = |p: &str| b64.decode(p).map_err(|e| e.to_string());
    let head: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if head["alg"] != "RS256" {
        return Err(format!("alg {}", head["alg"]));
    }
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &app.public_key,
    )
    .verify(format!("{header}.{claims}").as_bytes(), &decode(signature)?)
    .map_err(|_| "the signature does not verify".to_owned())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    let iss = match &claims["iss"] {
        Value::String(s) => s.parse::<u64>().ok(),
        v => v.as_u64(),
    };
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(u64::MAX),
        claims["exp"].as_u64().unwrap_or(0),
    );
    let now = now();
    if iss != Some(app.id) {
        return Err(format!("issuer {}", claims["iss"]));
    }
    if iat > now || exp <= now || exp - iat > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    Ok(())
}
