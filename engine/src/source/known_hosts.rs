//! The SSH host key check: the key a server presents must be listed for that host in an OpenSSH
//! known_hosts file (`ssh-keyscan HOST` prints the lines). Plain and hashed (`|1|...`) host names,
//! `[host]:port`, `*` and `?` wildcards, `!` negations and `@revoked` are understood; host
//! certificates (`@cert-authority`) are not accepted, as libssh2 does not show them.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    patterns: String,
    key_type: String,
    key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    file: String,
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Reads and parses `path`. A file with no usable line is an error (it would refuse every
    /// host); so is a line that is not `[marker] hosts key-type base64-key [comment]`.
    pub fn load(path: &Path) -> Result<KnownHosts, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the known_hosts file {}: {e}", path.display()))?;
        KnownHosts::parse(&path.display().to_string(), &text)
    }

    /// Parses the text of a known_hosts file named `file` (for messages).
    pub fn parse(file: &str, text: &str) -> Result<KnownHosts, String> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => {
                    return Err(format!("{file}:{line}: unknown marker {m}"));
                }
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
                return Err(format!(
                    "{file}:{line}: expected `host-patterns key-type base64-key`"
                ));
            };
            let key = STANDARD
                .decode(key)
                .map_err(|e| format!("{file}:{line}: the key is not base64: {e}"))?;
            entries.push(Entry {
                line,
                marker,
                patterns: first.to_owned(),
                key_type: key_type.to_owned(),
                key,
            });
        }
        if entries.is_empty() {
            return Err(format!("the known_hosts file {file} lists no host"));
        }
        Ok(KnownHosts {
            file: file.to_owned(),
            entries,
        })
    }

    /// Accepts `key` (the SSH wire-format public key the server presented, of type `key_type`)
    /// for `host` on `port`, or says why not.
    pub fn check(&self, host: &str, port: u16, key_type: &str, key: &[u8]) -> Result<(), String> {
        let name = if port == 22 {
            host.to_owned()
        } else {
            format!("[{host}]:{port}")
        };
        let scan = |key_type: Option<&str>| {
            let mut command = "ssh-keyscan".to_owned();
            if let Some(t) = key_type {
                command.push_str(&format!(" -t {t}"));
            }
            if port != 22 {
                command.push_str(&format!(" -p {port}"));
            }
            format!("{command} {host}")
        };
        let applying: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| host_matches(&e.patterns, &name))
            .collect();
        if let Some(e) = applying
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Err(format!(
                "the host key of {name} is revoked in {}:{}",
                self.file, e.line
            ));
        }
        if applying
            .iter()
            .any(|e| e.marker == Marker::None && e.key == key)
        {
            return Ok(());
        }
        let listed: Vec<&str> = applying
            .iter()
            .filter(|e| e.marker == Marker::None)
            .map(|e| e.key_type.as_str())
            .collect();
        if listed.contains(&key_type) {
            return Err(format!(
                "the {key_type} host key of {name} does not match the one in {} (the key changed, or \
                 someone is impersonating the host)",
                self.file
            ));
        }
        if !listed.is_empty() {
            return Err(format!(
                "{name} presented an {key_type} host key and {} lists only {} for it; add its \
                 {key_type} key (`{}`)",
                self.file,
                listed.join(", "),
                scan(Some(key_type))
            ));
        }
        if applying.iter().any(|e| e.marker == Marker::CertAuthority) {
            return Err(format!(
                "{} lists only a @cert-authority for {name}; host certificates are not supported, \
                 list the host key itself (`{}`)",
                self.file,
                scan(None)
            ));
        }
        Err(format!(
            "{name} is not in the known_hosts file {} (`{}` prints its keys)",
            self.file,
            scan(None)
        ))
    }
}

/// Whether a comma-separated list of patterns (or one hashed name) matches `name`: some positive
/// pattern matches and no negated one does.
fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(&negated.to_ascii_lowercase(), &name.to_ascii_lowercase()) => {
                return false;
            }
            Some(_) => {}
            None => matched |= glob(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase()),
        }
    }
    matched
}

/// `|1|salt|hash`: HMAC-SHA1 of the name under the salt, both base64.
fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// `*` (any run) and `?` (any one character) wildcards.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real public keys (github.com's published ones); only their bytes matter here.
    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";

    fn key(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hosts(text: &str) -> KnownHosts {
        KnownHosts::parse("known_hosts", text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_listed_key_is_accepted_and_any_other_refused() {
        let k = hosts(&format!(
            "# comment\n\ngithub.com,gh ssh-ed25519 {ED25519} a comment\n"
        ));
        let ed = key(ED25519);
        assert_eq!(k.check("github.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert_eq!(k.check("GitHub.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert_eq!(k.check("gh", 22, "ssh-ed25519", &ed), Ok(()));
        // The same key on another port is another host.
        let other_port = k.check("github.com", 2222, "ssh-ed25519", &ed);
        assert!(
            matches!(other_port, Err(ref m) if m.contains("[github.com]:2222 is not in")
                && m.contains("ssh-keyscan -p 2222 github.com")),
            "{other_port:?}"
        );
        let unknown = k.check("gitlab.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(unknown, Err(ref m) if m.contains("`ssh-keyscan gitlab.com`")),
            "{unknown:?}"
        );
        // A different key of the listed type: the warning ssh gives.
        let mut changed = ed.clone();
        if let Some(last) = changed.last_mut() {
            *last ^= 1;
        }
        let err = k.check("github.com", 22, "ssh-ed25519", &changed);
        assert!(
            matches!(err, Err(ref m) if m.contains("does not match")),
            "{err:?}"
        );
        // A key of a type not listed: say which to add.
        let err = k.check("github.com", 22, "ecdsa-sha2-nistp256", &key(ECDSA));
        assert!(
            matches!(err, Err(ref m) if m.contains("lists only ssh-ed25519")
                && m.contains("`ssh-keyscan -t ecdsa-sha2-nistp256 github.com`")),
            "{err:?}"
        );
    }

    #[test]
    fn ports_wildcards_negations_hashes_and_markers() {
        let ed = key(ED25519);
        let k = hosts(&format!("[git.example.com]:2222 ssh-ed25519 {ED25519}\n"));
        assert_eq!(k.check("git.example.com", 2222, "ssh-ed25519", &ed), Ok(()));
        assert!(k.check("git.example.com", 22, "ssh-ed25519", &ed).is_err());

        let k = hosts(&format!(
            "*.example.com,!evil.example.com ssh-ed25519 {ED25519}\n"
        ));
        assert_eq!(k.check("git.example.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert!(k.check("evil.example.com", 22, "ssh-ed25519", &ed).is_err());
        assert!(k.check("example.com", 22, "ssh-ed25519", &ed).is_err());

        // `ssh-keygen -H` form: HMAC-SHA1 of "github.com" under a salt.
        let salt = [7u8; 20];
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt),
            b"github.com",
        );
        let hashed = format!(
            "|1|{}|{} ssh-ed25519 {ED25519}\n",
            STANDARD.encode(salt),
            STANDARD.encode(tag.as_ref())
        );
        let k = hosts(&hashed);
        assert_eq!(k.check("github.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert!(k.check("gitlab.com", 22, "ssh-ed25519", &ed).is_err());

        let k = hosts(&format!(
            "github.com ssh-ed25519 {ED25519}\n@revoked * ssh-ed25519 {ED25519}\n"
        ));
        let err = k.check("github.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Err(ref m) if m.contains("revoked")),
            "{err:?}"
        );

        let k = hosts(&format!(
            "@cert-authority *.example.com ssh-ed25519 {ED25519}\n"
        ));
        let err = k.check("git.example.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Err(ref m) if m.contains("@cert-authority")),
            "{err:?}"
        );
    }

    #[test]
    fn a_malformed_or_empty_file_is_an_error_naming_the_line() {
        let err = KnownHosts::parse("kh", "github.com ssh-ed25519\n").err();
        assert!(err.is_some_and(|m| m.starts_with("kh:1:")));
        let err = KnownHosts::parse("kh", "# only\n\nh ssh-ed25519 not*base64\n").err();
        assert!(err.is_some_and(|m| m.starts_with("kh:3:") && m.contains("base64")));
        let err = KnownHosts::parse("kh", "@bogus h ssh-ed25519 AAAA\n").err();
        assert!(err.is_some_and(|m| m.contains("unknown marker")));
        let err = KnownHosts::parse("kh", "# nothing\n").err();
        assert!(err.is_some_and(|m| m.contains("lists no host")));
        assert!(KnownHosts::load(Path::new("/nonexistent/kh")).is_err());
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(glob("*", "anything"));
        assert!(glob("git?.example.com", "git1.example.com"));
        assert!(!glob("git?.example.com", "git.example.com"));
        assert!(glob("*.example.com", "a.b.example.com"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }
}
