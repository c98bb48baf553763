//! A fake GitHub API for tests: real HTTP on 127.0.0.1 (a random port), the endpoints tally
//! uses (check runs, issue comments), every request recorded with its body.
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
    /// Answers to give before any other, in order: (status, Retry-After seconds).
    pub faults: Vec<(u16, Option<u64>)>,
    /// Commit statuses set: (sha, state, context, description).
    pub statuses: Vec<(String, String, String, String)>,
    /// Pull-request comments: (id, pr, body).
    pub comments: Vec<(u64, u64, String)>,
    next_id: u64,
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
            .extend_from_slice(faults);
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
        let (status, retry_after) = s.faults.remove(0);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = reply(code, json!({"message": "fault"}));
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                "retry-after",
                axum::http::HeaderValue::from_str(&secs.to_string()).expect("header"),
            );
        }
        return response;
    }
    let path = uri.path().to_owned();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = uri.query().unwrap_or("");
    match (method.as_str(), parts.as_slice()) {
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
