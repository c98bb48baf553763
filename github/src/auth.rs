//! Who tally is to GitHub: a token (given, or read from a file at each use so a rotated Secret
//! is picked up), or a GitHub App installation.
//!
//! An App authenticates with a JSON Web Token signed with its private key (RS256, signed here
//! with ring, the crypto provider rustls and kube already use), exchanges it for an
//! installation token (`POST /app/installations/{id}/access_tokens`, valid an hour), and uses
//! that. The installation token is kept and exchanged again five minutes before it expires.
//! The private key is read from its file at each exchange, so a rotated key is picked up too.
//!
//! No token, JWT or key ever appears in an error or a log: errors name the file or the request
//! and GitHub's answer.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::{Error, GitHub, Method};

/// An installation token is exchanged again this long before it expires.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// How tally proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A token as given (`GITHUB_TOKEN`, `TALLY_GITHUB_TOKEN`).
    Token(String),
    /// A file holding a token, read at each use.
    TokenFile(PathBuf),
    /// A GitHub App's installation.
    App(App),
}

/// A GitHub App installed on the repository.
#[derive(Debug, Clone)]
pub struct App {
    /// The App's id (its settings page shows it).
    pub id: u64,
    /// The installation's id (in the URL of the installation's settings page).
    pub installation: u64,
    /// The App's private key, PEM (`BEGIN RSA PRIVATE KEY`, as GitHub hands it out, or
    /// `BEGIN PRIVATE KEY`).
    pub key_file: PathBuf,
}

/// Credentials, with the App's installation token kept until shortly before it expires.
#[derive(Debug)]
pub struct Auth {
    api_url: String,
    credentials: Credentials,
    /// The installation token and its expiry (seconds since the epoch).
    installation: Mutex<Option<(String, u64)>>,
}

impl Auth {
    /// Credentials for the API at `api_url`.
    pub fn new(api_url: &str, credentials: Credentials) -> Auth {
        Auth {
            api_url: api_url.to_owned(),
            credentials,
            installation: Mutex::new(None),
        }
    }

    /// The API's URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// A client for `repository` with a token valid now.
    pub async fn client(&self, repository: &str) -> Result<GitHub, Error> {
        let token = self.token().await?;
        GitHub::new(&self.api_url, &token, repository)
    }

    /// A token valid now: the given one, the file's, or an installation token (exchanged when
    /// there is none or it expires within [`REFRESH_BEFORE`]).
    pub async fn token(&self) -> Result<String, Error> {
        let app = match &self.credentials {
            Credentials::Token(token) => return nonempty(token.trim(), "the token is empty"),
            Credentials::TokenFile(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Credentials(format!("{}: {e}", path.display())))?;
                return nonempty(text.trim(), &format!("{} is empty", path.display()));
            }
            Credentials::App(app) => app,
        };
        let now = now();
        if let Some((token, expires)) = &*self.lock()
            && *expires > now + REFRESH_BEFORE.as_secs()
        {
            return Ok(token.clone());
        }
        let (token, expires) = self.exchange(app, now).await?;
        *self.lock() = Some((token.clone(), expires));
        Ok(token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, u64)>> {
        self.installation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs a JWT as the App and exchanges it for an installation token.
    async fn exchange(&self, app: &App, now: u64) -> Result<(String, u64), Error> {
        let jwt = app.jwt(now)?;
        let client = crate::client(&self.api_url, &jwt)?;
        let route = format!("/app/installations/{}/access_tokens", app.installation);
        let answer = crate::request(&client, Method::Post, &route, Some(&json!({}))).await?;
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Request {
                what: format!("POST {route}"),
                message: "GitHub's answer holds no token".into(),
            })?;
        // An expiry GitHub did not give, or in a form not understood, is taken as ten minutes
        // from now: the token is then exchanged again early rather than used past its end.
        let expires = answer
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(unix_seconds)
            .unwrap_or(now + 600);
        tracing::info!(
            app = app.id,
            installation = app.installation,
            valid_s = expires.saturating_sub(now),
            "GitHub App installation token obtained"
        );
        Ok((token.to_owned(), expires))
    }
}

impl App {
    /// The App's JSON Web Token at `now`: issued a minute in the past (clock drift, as GitHub
    /// advises) and valid nine minutes (GitHub's limit is ten).
    pub fn jwt(&self, now: u64) -> Result<String, Error> {
        let pem = std::fs::read_to_string(&self.key_file).map_err(|e| {
            Error::Credentials(format!("the App's key {}: {e}", self.key_file.display()))
        })?;
        let key = private_key(&pem).ok_or_else(|| {
            Error::Credentials(format!(
                "the App's key {}: not an RSA private key in PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)",
                self.key_file.display()
            ))
        })?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims =
            json!({"iat": now.saturating_sub(60), "exp": now + 540, "iss": self.id.to_string()});
        let claims = b64.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .map_err(|_| {
            Error::Credentials(format!(
                "the App's key {}: signing failed",
                self.key_file.display()
            ))
        })?;
        Ok(format!("{signed}.{}", b64.encode(signature)))
    }
}

/// An RSA private key from PEM: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
pub fn private_key(pem: &str) -> Option<RsaKeyPair> {
    let (label, der) = pem_block(pem)?;
    match label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).ok(),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).ok(),
        _ => None,
    }
}

/// The first PEM block: its label and its bytes.
fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = pem.lines().map(str::trim);
    let label = lines.find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))?;
    let end = format!("-----END {label}-----");
    let body: String = lines.take_while(|l| *l != end).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label.to_owned(), der))
}

fn nonempty(token: &str, why: &str) -> Result<String, Error> {
    if token.is_empty() {
        Err(Error::Credentials(why.to_owned()))
    } else {
        Ok(token.to_owned())
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-12-03T19:40:00Z` (GitHub's form of a time) as seconds since the epoch.
fn unix_seconds(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let time = time.strip_suffix('Z')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let s = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_times_are_read() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2016-07-11T22:14:10Z"), Some(1_468_275_250));
        assert_eq!(
            unix_seconds("2026-12-03T19:40:00.123Z"),
            Some(1_796_326_800)
        );
        for bad in [
            "",
            "2026-12-03",
            "2026-13-03T00:00:00Z",
            "2026-12-03T19:40:00+01:00",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_key_that_is_not_one_is_named_by_its_file_only() {
        let dir = std::env::temp_dir().join(format!("tally-github-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("key.pem");
        std::fs::write(
            &file,
            "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END RSA PRIVATE KEY-----\n",
        )
        .expect("write");
        let app = App {
            id: 1,
            installation: 2,
            key_file: file.clone(),
        };
        let e = app.jwt(now()).expect_err("not a key").to_string();
        assert!(
            e.contains("key.pem") && e.contains("not an RSA private key"),
            "{e}"
        );
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
