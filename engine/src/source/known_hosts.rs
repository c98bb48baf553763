//! The SSH host key check: the key a server presents must be listed for that host in an OpenSSH
//! known_hosts file (`ssh-keyscan HOST` prints the lines). Plain and hashed (`|1|...`) host names,
//! `[host]:port`, `*` and `?` wildcards, `!` negations and `@revoked` are understood; host
//! certificates (`@cert-authority`) are not accepted, as libssh2 does not show them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tally_validator::policy::config::NamePattern;

/// Why a known_hosts file cannot be used, or why it refuses a host's key. The messages name the
/// file and line, and say which command prints the keys to add.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    /// The file could not be read.
    #[error("reading the known_hosts file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not `[marker] hosts key-type base64-key [comment]`.
    #[error("{file}:{line}: {problem}")]
    Line {
        /// The file.
        file: String,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// The file has no usable line: it would refuse every host.
    #[error("the known_hosts file {file} lists no host")]
    NoHost {
        /// The file.
        file: String,
    },
    /// The key the host presented is listed as `@revoked`.
    #[error("the host key of {} is revoked in {file}:{line}", listed_name(host, *port))]
    Revoked {
        /// The host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The file.
        file: String,
        /// The `@revoked` line.
        line: usize,
    },
    /// The host presented a key of a type listed for it, but not the listed key.
    #[error(
        "the {key_type} host key of {} does not match the one in {file} (the key changed, or \
         someone is impersonating the host)",
        listed_name(host, *port)
    )]
    KeyChanged {
        /// The host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The type of the key it presented (`ssh-ed25519`).
        key_type: String,
        /// The file.
        file: String,
    },
    /// The host presented a key of a type the file lists no key of for it.
    #[error(
        "{} presented an {key_type} host key and {file} lists only {} for it; add its \
         {key_type} key (`{}`)",
        listed_name(host, *port),
        listed.join(", "),
        keyscan(host, *port, Some(key_type))
    )]
    KeyTypeNotListed {
        /// The host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The type of the key it presented.
        key_type: String,
        /// The types of the keys listed for it.
        listed: Vec<String>,
        /// The file.
        file: String,
    },
    /// Only a `@cert-authority` applies to the host; host certificates are not supported.
    #[error(
        "{file} lists only a @cert-authority for {}; host certificates are not supported, \
         list the host key itself (`{}`)",
        listed_name(host, *port),
        keyscan(host, *port, None)
    )]
    CertAuthorityOnly {
        /// The host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The file.
        file: String,
    },
    /// No line applies to the host.
    #[error(
        "{} is not in the known_hosts file {file} (`{}` prints its keys)",
        listed_name(host, *port),
        keyscan(host, *port, None)
    )]
    HostNotListed {
        /// The host.
        host: String,
        /// Its SSH port.
        port: u16,
        /// The file.
        file: String,
    },
}

/// What is wrong with a line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// A marker other than `@revoked` and `@cert-authority`.
    #[error("unknown marker {marker}")]
    UnknownMarker {
        /// The marker, `@` included.
        marker: String,
    },
    /// Fewer than three fields.
    #[error("expected `host-patterns key-type base64-key`")]
    MissingFields,
    /// The key field does not decode.
    #[error("the key is not base64: {message}")]
    NotBase64 {
        /// The decoder's message.
        message: String,
    },
}

/// The host as known_hosts names it: `host` on port 22, else `[host]:port`.
fn listed_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The command printing the host's keys (of `key_type` only, when given).
fn keyscan(host: &str, port: u16, key_type: Option<&str>) -> String {
    let mut command = "ssh-keyscan".to_owned();
    if let Some(t) = key_type {
        command.push_str(&format!(" -t {t}"));
    }
    if port != 22 {
        command.push_str(&format!(" -p {port}"));
    }
    format!("{command} {host}")
}

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
    pub fn load(path: &Path) -> Result<KnownHosts, KnownHostsError> {
        let text = std::fs::read_to_string(path).map_err(|source| KnownHostsError::Read {
            path: path.to_owned(),
            source,
        })?;
        KnownHosts::parse(&path.display().to_string(), &text)
    }

    /// Parses the text of a known_hosts file named `file` (for messages).
    pub fn parse(file: &str, text: &str) -> Result<KnownHosts, KnownHostsError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |problem| KnownHostsError::Line {
                file: file.to_owned(),
                line,
                problem,
            };
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
                    return Err(bad(LineProblem::UnknownMarker {
                        marker: m.to_owned(),
                    }));
                }
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
                return Err(bad(LineProblem::MissingFields));
            };
            let key = STANDARD.decode(key).map_err(|e| {
                bad(LineProblem::NotBase64 {
                    message: e.to_string(),
                })
            })?;
            entries.push(Entry {
                line,
                marker,
                patterns: first.to_owned(),
                key_type: key_type.to_owned(),
                key,
            });
        }
        if entries.is_empty() {
            return Err(KnownHostsError::NoHost {
                file: file.to_owned(),
            });
        }
        Ok(KnownHosts {
            file: file.to_owned(),
            entries,
        })
    }

    /// Accepts `key` (the SSH wire-format public key the server presented, of type `key_type`)
    /// for `host` on `port`, or says why not.
    pub fn check(
        &self,
        host: &str,
        port: u16,
        key_type: &str,
        key: &[u8],
    ) -> Result<(), KnownHostsError> {
        let name = listed_name(host, port);
        let (host, file) = (host.to_owned(), self.file.clone());
        let applying: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| host_matches(&e.patterns, &name))
            .collect();
        if let Some(e) = applying
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Err(KnownHostsError::Revoked {
                host,
                port,
                file,
                line: e.line,
            });
        }
        if applying
            .iter()
            .any(|e| e.marker == Marker::None && e.key == key)
        {
            return Ok(());
        }
        let listed: Vec<String> = applying
            .iter()
            .filter(|e| e.marker == Marker::None)
            .map(|e| e.key_type.clone())
            .collect();
        let key_type = key_type.to_owned();
        if listed.contains(&key_type) {
            return Err(KnownHostsError::KeyChanged {
                host,
                port,
                key_type,
                file,
            });
        }
        if !listed.is_empty() {
            return Err(KnownHostsError::KeyTypeNotListed {
                host,
                port,
                key_type,
                listed,
                file,
            });
        }
        if applying.iter().any(|e| e.marker == Marker::CertAuthority) {
            return Err(KnownHostsError::CertAuthorityOnly { host, port, file });
        }
        Err(KnownHostsError::HostNotListed { host, port, file })
    }
}

/// Whether a comma-separated list of patterns (or one hashed name) matches `name`: some positive
/// pattern matches and no negated one does. Names and patterns are compared in ASCII lowercase,
/// `*` and `?` being wildcards, as OpenSSH does.
fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let name = name.to_ascii_lowercase();
    let glob = |pattern: &str| NamePattern::new(pattern.to_ascii_lowercase()).matches(&name);
    let mut matched = false;
    for pattern in patterns.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated) => return false,
            Some(_) => {}
            None => matched |= glob(pattern),
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

    /// [`KnownHosts::check`] with the refusal as its message.
    fn check(
        k: &KnownHosts,
        host: &str,
        port: u16,
        key_type: &str,
        key: &[u8],
    ) -> Result<(), String> {
        k.check(host, port, key_type, key)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_listed_key_is_accepted_and_any_other_refused() {
        let k = hosts(&format!(
            "# comment\n\ngithub.com,gh ssh-ed25519 {ED25519} a comment\n"
        ));
        let ed = key(ED25519);
        assert_eq!(check(&k, "github.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert_eq!(check(&k, "GitHub.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert_eq!(check(&k, "gh", 22, "ssh-ed25519", &ed), Ok(()));
        // The same key on another port is another host.
        let other_port = check(&k, "github.com", 2222, "ssh-ed25519", &ed);
        assert!(
            matches!(other_port, Err(ref m) if m.contains("[github.com]:2222 is not in")
                && m.contains("ssh-keyscan -p 2222 github.com")),
            "{other_port:?}"
        );
        let unknown = check(&k, "gitlab.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(unknown, Err(ref m) if m.contains("`ssh-keyscan gitlab.com`")),
            "{unknown:?}"
        );
        // A different key of the listed type: the warning ssh gives.
        let mut changed = ed.clone();
        if let Some(last) = changed.last_mut() {
            *last ^= 1;
        }
        let err = check(&k, "github.com", 22, "ssh-ed25519", &changed);
        assert!(
            matches!(err, Err(ref m) if m.contains("does not match")),
            "{err:?}"
        );
        // A key of a type not listed: say which to add.
        let err = check(&k, "github.com", 22, "ecdsa-sha2-nistp256", &key(ECDSA));
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
        assert_eq!(
            check(&k, "git.example.com", 2222, "ssh-ed25519", &ed),
            Ok(())
        );
        assert!(check(&k, "git.example.com", 22, "ssh-ed25519", &ed).is_err());

        let k = hosts(&format!(
            "*.example.com,!evil.example.com ssh-ed25519 {ED25519}\n"
        ));
        assert_eq!(check(&k, "git.example.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert!(check(&k, "evil.example.com", 22, "ssh-ed25519", &ed).is_err());
        assert!(check(&k, "example.com", 22, "ssh-ed25519", &ed).is_err());

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
        assert_eq!(check(&k, "github.com", 22, "ssh-ed25519", &ed), Ok(()));
        assert!(check(&k, "gitlab.com", 22, "ssh-ed25519", &ed).is_err());

        let k = hosts(&format!(
            "github.com ssh-ed25519 {ED25519}\n@revoked * ssh-ed25519 {ED25519}\n"
        ));
        let err = check(&k, "github.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Err(ref m) if m.contains("revoked")),
            "{err:?}"
        );

        let k = hosts(&format!(
            "@cert-authority *.example.com ssh-ed25519 {ED25519}\n"
        ));
        let err = check(&k, "git.example.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Err(ref m) if m.contains("@cert-authority")),
            "{err:?}"
        );
    }

    #[test]
    fn each_refusal_is_its_own_variant_with_its_message() {
        let ed = key(ED25519);
        let mut changed = ed.clone();
        if let Some(last) = changed.last_mut() {
            *last ^= 1;
        }
        let k = hosts(&format!(
            "github.com ssh-ed25519 {ED25519}\n@revoked gitlab.com ssh-ed25519 {ED25519}\n\
             @cert-authority [*.example.com]:2222 ssh-ed25519 {ED25519}\n"
        ));
        let refusal = |host: &str, port: u16, key_type: &str, key: &[u8]| {
            k.check(host, port, key_type, key).err()
        };

        let err = refusal("gitlab.com", 22, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Some(KnownHostsError::Revoked { line: 2, .. })),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("the host key of gitlab.com is revoked in known_hosts:2")
        );

        let err = refusal("github.com", 22, "ssh-ed25519", &changed);
        assert!(
            matches!(err, Some(KnownHostsError::KeyChanged { .. })),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "the ssh-ed25519 host key of github.com does not match the one in known_hosts \
                 (the key changed, or someone is impersonating the host)"
            )
        );

        let err = refusal("github.com", 22, "ecdsa-sha2-nistp256", &key(ECDSA));
        assert!(
            matches!(err, Some(KnownHostsError::KeyTypeNotListed { ref listed, .. }) if listed == &["ssh-ed25519"]),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "github.com presented an ecdsa-sha2-nistp256 host key and known_hosts lists only \
                 ssh-ed25519 for it; add its ecdsa-sha2-nistp256 key \
                 (`ssh-keyscan -t ecdsa-sha2-nistp256 github.com`)"
            )
        );

        let err = refusal("git.example.com", 2222, "ssh-ed25519", &ed);
        assert!(
            matches!(
                err,
                Some(KnownHostsError::CertAuthorityOnly { port: 2222, .. })
            ),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "known_hosts lists only a @cert-authority for [git.example.com]:2222; host \
                 certificates are not supported, list the host key itself \
                 (`ssh-keyscan -p 2222 git.example.com`)"
            )
        );

        let err = refusal("github.com", 2222, "ssh-ed25519", &ed);
        assert!(
            matches!(err, Some(KnownHostsError::HostNotListed { ref host, port: 2222, .. }) if host == "github.com"),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "[github.com]:2222 is not in the known_hosts file known_hosts \
                 (`ssh-keyscan -p 2222 github.com` prints its keys)"
            )
        );
    }

    #[test]
    fn a_malformed_or_empty_file_is_an_error_naming_the_line() {
        let parse = |text: &str| KnownHosts::parse("kh", text).err();
        let err = parse("github.com ssh-ed25519\n");
        assert!(
            matches!(
                err,
                Some(KnownHostsError::Line {
                    line: 1,
                    problem: LineProblem::MissingFields,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("kh:1: expected `host-patterns key-type base64-key`")
        );
        let err = parse("# only\n\nh ssh-ed25519 not*base64\n").map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.starts_with("kh:3:") && m.contains("base64")));
        let err = parse("@bogus h ssh-ed25519 AAAA\n").map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("kh:1: unknown marker @bogus"));
        let err = parse("# nothing\n").map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("the known_hosts file kh lists no host")
        );
        let err = KnownHosts::load(Path::new("/nonexistent/kh")).err();
        assert!(
            matches!(err, Some(KnownHostsError::Read { ref path, .. }) if path == Path::new("/nonexistent/kh")),
            "{err:?}"
        );
        let err = err.map(|e| e.to_string());
        assert!(
            err.as_ref()
                .is_some_and(|m| m.starts_with("reading the known_hosts file /nonexistent/kh: ")),
            "{err:?}"
        );
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(host_matches("*", "anything"));
        assert!(host_matches("git?.example.com", "git1.example.com"));
        assert!(!host_matches("git?.example.com", "git.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("a*b*c", "aXbYbZc"));
        // `[host]:port` is literal, not a character class; case does not matter.
        assert!(host_matches(
            "[*.Example.com]:2?22",
            "[git.example.COM]:2222"
        ));
        assert!(!host_matches("[ab]", "a"));
        assert!(host_matches("x,!y*,z", "z") && !host_matches("x,!y*,y1", "y1"));
    }
}
