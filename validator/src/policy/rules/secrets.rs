//! Secrets handled as secrets: `secret-as-volume`, `plaintext-credential-env`,
//! `secret-in-configmap`, `committed-secret-data`.

use serde_json::Value;

use crate::policy::engine::Out;
use crate::position::escape_segment;

use super::placeholder::is_placeholder;
use super::{
    COMMITTED_SECRET_DATA, PLAINTEXT_CREDENTIAL_ENV, SECRET_AS_VOLUME, SECRET_IN_CONFIGMAP, Subject,
};

/// A Secret reached through `env[].valueFrom.secretKeyRef` or `envFrom[].secretRef`.
pub(crate) fn secret_as_volume(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w.containers() {
        for (i, e) in array(c.get("env")).enumerate() {
            let Some(r) = e.pointer("/valueFrom/secretKeyRef") else {
                continue;
            };
            let var = e.get("name").and_then(Value::as_str).unwrap_or("?");
            let secret = r.get("name").and_then(Value::as_str).unwrap_or("?");
            let key = r.get("key").and_then(Value::as_str).unwrap_or("?");
            out.report(
                SECRET_AS_VOLUME,
                s.obj,
                &c.ptr(&format!("/env/{i}/valueFrom/secretKeyRef")),
                format!(
                    "{} reads Secret `{secret}` key `{key}` into environment variable `{var}`; mount the Secret as a volume instead (environment variables leak into crash dumps, logs and child processes)",
                    c.describe()
                ),
            );
        }
        for (i, e) in array(c.get("envFrom")).enumerate() {
            let Some(r) = e.get("secretRef") else {
                continue;
            };
            let secret = r.get("name").and_then(Value::as_str).unwrap_or("?");
            out.report(
                SECRET_AS_VOLUME,
                s.obj,
                &c.ptr(&format!("/envFrom/{i}/secretRef")),
                format!(
                    "{} loads every key of Secret `{secret}` into environment variables; mount the Secret as a volume instead (environment variables leak into crash dumps, logs and child processes)",
                    c.describe()
                ),
            );
        }
    }
}

/// A literal credential in `env[].value`: a secret-looking name with a literal value, a URL with
/// a password in it, or a private key.
pub(crate) fn plaintext_credential_env(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w.containers() {
        for (i, e) in array(c.get("env")).enumerate() {
            let Some(value) = e.get("value").and_then(Value::as_str) else {
                continue;
            };
            let name = e.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(what) = credential(name, value) else {
                continue;
            };
            out.report(
                PLAINTEXT_CREDENTIAL_ENV,
                s.obj,
                &c.ptr(&format!("/env/{i}/value")),
                format!(
                    "environment variable `{name}` of {} holds {what} in plain text; put it in a Secret (kept out of git) and mount it as a file",
                    c.describe()
                ),
            );
        }
    }
}

/// Credentials in a ConfigMap: secret-looking keys with literal values, private keys, JWTs,
/// URLs with passwords, also inside embedded config files.
pub(crate) fn secret_in_configmap(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if obj.id.kind != "ConfigMap" || !obj.id.group().is_empty() {
        return;
    }
    let Some(data) = obj.value.get("data").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in data {
        let Some(value) = value.as_str() else {
            continue;
        };
        let found = if value.contains('\n') {
            embedded_credential(value)
        } else {
            credential(key, value).map(|what| (0, what))
        };
        let Some((line, what)) = found else {
            continue;
        };
        let place = if line > 0 {
            format!(" (line {line} of its value)")
        } else {
            String::new()
        };
        out.report(
            SECRET_IN_CONFIGMAP,
            obj,
            &format!("/data/{}", escape_segment(key)),
            format!(
                "ConfigMap key `{key}` holds {what}{place}; ConfigMaps are readable by anyone who can read the namespace's configuration: move it to a Secret kept out of git"
            ),
        );
    }
}

/// A Secret whose `data` or `stringData` is committed: base64 is an encoding, not encryption.
pub(crate) fn committed_secret_data(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    if obj.id.kind != "Secret" || !obj.id.group().is_empty() {
        return;
    }
    // SOPS-encrypted files carry their metadata beside the data; the values are ciphertext.
    if obj.value.get("sops").is_some() {
        return;
    }
    for field in ["data", "stringData"] {
        let Some(map) = obj.value.get(field).and_then(Value::as_object) else {
            continue;
        };
        let mut filled = map
            .values()
            .filter_map(Value::as_str)
            .filter(|v| !v.is_empty());
        let Some(first) = filled.next() else {
            continue;
        };
        if first.starts_with("ENC[") && filled.all(|v| v.starts_with("ENC[")) {
            continue;
        }
        out.report(
            COMMITTED_SECRET_DATA,
            obj,
            &format!("/{field}"),
            format!(
                "Secret `{}` has its `{field}` committed in plain text (base64 is not encryption); keep the values in an external secret store (External Secrets, Secrets Store CSI driver) or commit them encrypted (Sealed Secrets, SOPS)",
                obj.id.name
            ),
        );
        return;
    }
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

/// What credential a `name = value` pair holds, if it looks like one.
pub(crate) fn credential(name: &str, value: &str) -> Option<&'static str> {
    if contains_private_key(value) {
        return Some("a private key");
    }
    if url_with_password(value) {
        return Some("a URL with a password");
    }
    if looks_like_jwt(value) {
        return Some("a JSON Web Token");
    }
    (is_credential_name(name) && is_literal_secret(value)).then_some("a credential")
}

/// A credential inside a multi-line value (an embedded config file): the 1-based line and what.
fn embedded_credential(text: &str) -> Option<(usize, &'static str)> {
    if contains_private_key(text) {
        let line = text
            .lines()
            .position(|l| l.contains("PRIVATE KEY-----"))
            .unwrap_or(0);
        return Some((line + 1, "a private key"));
    }
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with(['#', ';', '!']) || l.starts_with("//") {
            continue;
        }
        // `key = value`, `key: value`, `"key": "value",`
        let split = match (l.find('='), l.find(": ")) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = split else {
            if url_with_password(l) {
                return Some((i + 1, "a URL with a password"));
            }
            continue;
        };
        let key = l[..at].trim().trim_matches(['"', '\'']);
        let sep = if l[at..].starts_with('=') { 1 } else { 2 };
        let value = l[at + sep..]
            .trim()
            .trim_end_matches(',')
            .trim()
            .trim_matches(['"', '\'']);
        if key.contains(char::is_whitespace) {
            continue;
        }
        if let Some(what) = credential(key, value) {
            return Some((i + 1, what));
        }
    }
    None
}

/// Names that end in a credential word but do not name a credential: etcd's initial cluster
/// token (`ETCD_INITIAL_CLUSTER_TOKEN`, `initial-cluster-token`) keeps two clusters apart and is
/// no password, and a public token (`MAPBOX_PUBLIC_TOKEN`) is meant to be seen. Each is the
/// name's last words, in order.
const NOT_CREDENTIALS: &[&[&str]] = &[&["initial", "cluster", "token"], &["public", "token"]];

/// Whether a variable or key name says "this is a credential": its last word is one
/// (`DB_PASSWORD`, `githubToken`, `api.key`), not merely mentions one (`TOKEN_TTL`,
/// `PASSWORD_MIN_LENGTH`, `SECRET_NAME`), and it is not one of [`NOT_CREDENTIALS`].
pub(crate) fn is_credential_name(name: &str) -> bool {
    let words = words(name);
    let Some((last, before)) = words.split_last() else {
        return false;
    };
    let prev = before.last();
    let last = last.trim_end_matches(|c: char| c.is_ascii_digit());
    const WORDS: [&str; 11] = [
        "password",
        "passwd",
        "pass",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
    ];
    const KEY_OWNERS: [&str; 10] = [
        "api",
        "access",
        "secret",
        "private",
        "signing",
        "encryption",
        "master",
        "auth",
        "license",
        "account",
    ];
    let credential = WORDS.iter().any(|w| last.eq_ignore_ascii_case(w))
        || (last.eq_ignore_ascii_case("key")
            && prev.is_some_and(|p| KEY_OWNERS.iter().any(|o| p.eq_ignore_ascii_case(o))));
    credential
        && !NOT_CREDENTIALS.iter().any(|known| {
            words.len() >= known.len()
                && words[words.len() - known.len()..]
                    .iter()
                    .zip(known.iter())
                    .all(|(w, k)| w.eq_ignore_ascii_case(k))
        })
}

/// The words of an identifier split at `_`, `-`, `.`, `/`, spaces and camelCase.
fn words(name: &str) -> Vec<&str> {
    let b = name.as_bytes();
    let mut words = Vec::new();
    let mut start = 0;
    let mut push = |s: usize, e: usize| {
        if e > s {
            words.push(&name[s..e]);
        }
    };
    for i in 0..b.len() {
        let c = b[i];
        if !c.is_ascii_alphanumeric() {
            push(start, i);
            start = i + 1;
            continue;
        }
        if i > start && c.is_ascii_uppercase() {
            let p = b[i - 1];
            let next_lower = b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            if p.is_ascii_lowercase() || (p.is_ascii_uppercase() && next_lower) {
                push(start, i);
                start = i;
            }
        }
    }
    push(start, b.len());
    words
}

/// Whether a value is a literal that could be a secret (not empty, not a reference to one, not
/// a path to one, not a placeholder, not a flag).
fn is_literal_secret(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v.contains('\n') || stands_in_for_a_secret(v) {
        return false;
    }
    let path = v.starts_with('/') || v.starts_with("file:");
    let flag = ["true", "false", "yes", "no", "null", "none"]
        .iter()
        .any(|f| v.eq_ignore_ascii_case(f));
    !(path || flag)
}

/// Whether a value only stands where a secret will go: a placeholder (what
/// `unrendered-placeholder` reports: `changeme`, `INSERT_PASSWORD_HERE`, `xxSECRETxx`,
/// `<ADD KEY HERE>`), a reference to be filled in (`$(DB_PASSWORD)`, `${DB_PASSWORD}`,
/// `$DB_PASSWORD`, `{{ .password }}`), anything between angle brackets (`<password>`), a mask
/// (`********`, `xxxxxxxx`) or a word saying there is none (`REDACTED`, `placeholder`).
fn stands_in_for_a_secret(v: &str) -> bool {
    let wrapped = |open: &str, close: &str| {
        v.len() > open.len() + close.len() && v.starts_with(open) && v.ends_with(close)
    };
    let reference = wrapped("$(", ")")
        || wrapped("${", "}")
        || wrapped("{{", "}}")
        || v.strip_prefix('$').is_some_and(|name| {
            name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
    let mask = v.len() >= 3 && {
        let first = v.as_bytes()[0];
        matches!(first, b'*' | b'x' | b'X' | b'.' | b'#') && v.bytes().all(|b| b == first)
    };
    let none = ["redacted", "placeholder", "dummy"]
        .iter()
        .any(|w| v.eq_ignore_ascii_case(w));
    reference || mask || none || wrapped("<", ">") || is_placeholder(v).is_some()
}

fn contains_private_key(value: &str) -> bool {
    // The two markers overlap in 21 bytes at the least (`PRIVATE KEY-----BEGIN`): shorter
    // values are not searched.
    value.len() >= 21
        && value.contains("-----BEGIN")
        && value.contains("PRIVATE KEY-----")
        && !value.contains("ENCRYPTED PRIVATE KEY")
}

/// `scheme://user:password@host`, with a literal password.
fn url_with_password(value: &str) -> bool {
    // `://:p@` is the shortest match; a byte search rules out most values before a substring
    // search is set up.
    if value.len() < 6 || !value.as_bytes().contains(&b'@') {
        return false;
    }
    let Some(at) = value.find("://") else {
        return false;
    };
    let rest = &value[at + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return false;
    };
    let Some((_user, password)) = userinfo.split_once(':') else {
        return false;
    };
    !password.is_empty()
        && !password.starts_with("$(")
        && !password.starts_with("${")
        && !password.starts_with('%')
        && !stands_in_for_a_secret(password)
}

/// Three base64url segments, the first two JSON objects (`eyJ`).
fn looks_like_jwt(value: &str) -> bool {
    // Three parts of at least 10 bytes and two dots.
    if value.len() < 32 {
        return false;
    }
    let v = value.trim().trim_start_matches("Bearer ").trim();
    let mut parts = v.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64 = |s: &str| {
        s.len() >= 10
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    h.starts_with("eyJ") && p.starts_with("eyJ") && b64(h) && b64(p) && b64(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn credential_names() {
        for yes in [
            "DB_PASSWORD",
            "password",
            "githubToken",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
            "apiKey",
            "APIKey",
            "stripe.secret",
            "client-secret",
            "DB_PASS",
            "REDIS_PASSWORD2",
        ] {
            assert!(is_credential_name(yes), "{yes}");
        }
        for no in [
            "TOKEN_TTL",
            "PASSWORD_MIN_LENGTH",
            "SECRET_NAME",
            "PASSWORD_FILE",
            "MAX_TOKENS",
            "CACHE_KEY",
            "BYPASS",
            "keyFile",
            "",
        ] {
            assert!(!is_credential_name(no), "{no}");
        }
    }

    #[test]
    fn names_that_end_in_a_credential_word_but_are_none() {
        for no in [
            "ETCD_INITIAL_CLUSTER_TOKEN",
            "initial-cluster-token",
            "initialClusterToken",
            "MAPBOX_PUBLIC_TOKEN",
        ] {
            assert!(!is_credential_name(no), "{no}");
        }
        for yes in [
            "GITHUB_TOKEN",
            "API_TOKEN",
            "ACCESS_TOKEN",
            "CLUSTER_TOKEN",
            "K3S_TOKEN",
            "INITIAL_ADMIN_TOKEN",
            "VAULT_TOKEN",
            "TOKEN",
        ] {
            assert!(is_credential_name(yes), "{yes}");
        }
    }

    #[test]
    fn values_that_stand_in_for_a_secret() {
        for placeholder in [
            "INSERT_PASSWORD_HERE",
            "INSERT_API_KEY",
            "PASSWORD_HERE",
            "your-token-here",
            "xxSECRETxx",
            "<password>",
            "<db password>",
            "<ADD YOUR TOKEN HERE>",
            "${DB_PASSWORD}",
            "$(DB_PASSWORD)",
            "$DB_PASSWORD",
            "{{ .Values.password }}",
            "REPLACE_ME",
            "replace-me",
            "changeme",
            "YOUR_API_KEY",
            "your-api-key",
            "********",
            "xxxxxxxx",
            "XXXX",
            "...",
            "REDACTED",
            "placeholder",
            "dummy",
        ] {
            assert_eq!(
                credential("DB_PASSWORD", placeholder),
                None,
                "{placeholder}"
            );
            assert_eq!(
                credential(
                    "DATABASE_URL",
                    &format!("postgres://app:{placeholder}@db:5432/app")
                ),
                None,
                "{placeholder}"
            );
        }
        for secret in ["hunter2", "s3cr3t-Pa55", "$ecret", "x1x1x1x1", "password"] {
            assert_eq!(
                credential("DB_PASSWORD", secret),
                Some("a credential"),
                "{secret}"
            );
        }
    }

    #[test]
    fn literal_values() {
        assert_eq!(credential("DB_PASSWORD", "hunter2"), Some("a credential"));
        assert_eq!(credential("DB_PASSWORD", ""), None);
        assert_eq!(credential("DB_PASSWORD", "$(OTHER)"), None);
        assert_eq!(credential("DB_PASSWORD", "/run/secrets/db"), None);
        assert_eq!(credential("DB_PASSWORD", "changeme"), None);
        assert_eq!(
            credential("DATABASE_URL", "postgres://app:s3cr3t@db:5432/app"),
            Some("a URL with a password")
        );
        assert_eq!(credential("DATABASE_URL", "postgres://db:5432/app"), None);
        assert_eq!(
            credential("DATABASE_URL", "postgres://app:$(PW)@db/app"),
            None
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl";
        assert_eq!(credential("AUTH", jwt), Some("a JSON Web Token"));
        assert_eq!(credential("VERSION", "1.2.3"), None);
    }

    #[test]
    fn secrets_through_env_are_findings_at_the_reference() {
        let d = deployment(
            "      containers:
        - name: app
          image: app:1.0.0
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: db, key: password}
          envFrom:
            - secretRef: {name: api}
            - configMapRef: {name: settings}
",
        );
        assert_eq!(at(SECRET_AS_VOLUME, &d), [(20, 17), (22, 15)]);
        let f = of(SECRET_AS_VOLUME, &d);
        assert!(
            f[0].message.contains("Secret `db` key `password`"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn plaintext_credentials_in_env() {
        let d = deployment(
            "      initContainers:
        - name: migrate
          image: app:1.0.0
          env:
            - {name: DB_PASSWORD, value: hunter2}
            - {name: TOKEN_TTL, value: '3600'}
            - name: DB_USER
              value: app
      containers: [{name: app, image: app:1.0.0}]
",
        );
        assert_eq!(at(PLAINTEXT_CREDENTIAL_ENV, &d), [(18, 35)]);
    }

    #[test]
    fn documented_exclusions_of_plaintext_credential_env() {
        let d = deployment(
            "      containers:
        - name: app
          image: app:1.0.0
          env:
            - {name: DB_PASSWORD, value: '$(VAULT_PASSWORD)'}
            - {name: DB_PASSWORD_FILE, value: /run/secrets/db}
            - {name: TLS_KEY_PASSWORD, value: /run/secrets/tls/password}
            - {name: ALLOW_EMPTY_PASSWORD, value: 'yes'}
            - {name: REDIS_PASSWORD, value: 'false'}
            - {name: ADMIN_PASSWORD, value: INSERT_PASSWORD_HERE}
            - {name: SMTP_PASSWORD, value: xxSECRETxx}
            - {name: API_TOKEN, value: <api-token>}
            - {name: GITHUB_TOKEN, value: '${GITHUB_TOKEN}'}
            - {name: TOKEN_TTL, value: '3600'}
            - {name: PASSWORD_MIN_LENGTH, value: '12'}
            - {name: SECRET_NAME, value: db-credentials}
            - {name: ETCD_INITIAL_CLUSTER_TOKEN, value: etcd-cluster-1}
            - name: DB_USER_PASSWORD
              valueFrom:
                secretKeyRef: {name: db, key: password}
",
        );
        assert!(
            at(PLAINTEXT_CREDENTIAL_ENV, &d).is_empty(),
            "{:#?}",
            of(PLAINTEXT_CREDENTIAL_ENV, &d)
        );
        let real = d.replace(
            "etcd-cluster-1}",
            "etcd-cluster-1}\n            - {name: ACCESS_TOKEN, value: ghp-0123456789abcdef}",
        );
        assert_eq!(at(PLAINTEXT_CREDENTIAL_ENV, &real).len(), 1);
    }

    #[test]
    fn configmaps_with_credentials() {
        let cm = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  LOG_LEVEL: info
  SMTP_PASSWORD: s3cret
  PASSWORD_POLICY: strict
  application.properties: |
    server.port=8080
    # spring.datasource.password=in-a-comment
    spring.datasource.password=hunter2
  ca.crt: |
    -----BEGIN CERTIFICATE-----
    MIIB
    -----END CERTIFICATE-----
";
        let f = of(SECRET_IN_CONFIGMAP, cm);
        let got: Vec<_> = f.iter().map(|f| (f.pos.line, f.pos.column)).collect();
        assert_eq!(got, [(6, 3), (8, 3)]);
        assert!(
            f[1].message.contains("line 3 of its value"),
            "{}",
            f[1].message
        );
        let placeholders = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  SMTP_PASSWORD: INSERT_PASSWORD_HERE
  etcd.conf.yml: |
    name: etcd-0
    initial-cluster-token: etcd-cluster-1
    client-transport-security:
      password: <password>
";
        assert!(at(SECRET_IN_CONFIGMAP, placeholders).is_empty());
    }

    #[test]
    fn committed_secrets() {
        let secret = "apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: Opaque
data:
  password: aHVudGVyMg==
";
        assert_eq!(at(COMMITTED_SECRET_DATA, secret), [(5, 1)]);
        let string_data = secret.replace(
            "data:\n  password: aHVudGVyMg==",
            "stringData:\n  password: hunter2",
        );
        assert_eq!(at(COMMITTED_SECRET_DATA, &string_data), [(5, 1)]);
        let sops = format!("{secret}sops:\n  version: 3.9.0\n");
        assert!(at(COMMITTED_SECRET_DATA, &sops).is_empty());
        let token = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: scraper-token\n  namespace: shop\n  annotations: {kubernetes.io/service-account.name: scraper}\ntype: kubernetes.io/service-account-token\n";
        assert!(at(COMMITTED_SECRET_DATA, token).is_empty());
    }
}
