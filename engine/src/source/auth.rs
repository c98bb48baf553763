//! Credentials for a private remote: a token for HTTPS (basic auth), a key for SSH, and the
//! known_hosts file an SSH server's host key must be in.
//!
//! Secrets are read when the remote asks for them (a rotated Secret mount is picked up at the next
//! fetch), offered once per fetch (libgit2 asks again after a refusal, and would ask forever), and
//! never appear in a message: messages name the file or the variable a secret came from.

use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, ErrorClass, ErrorCode};

/// The user name sent with a token when none is configured and the URL names none. GitHub accepts
/// it for every kind of token; GitLab and Bitbucket take any non-empty name with a token.
pub const DEFAULT_TOKEN_USERNAME: &str = "x-access-token";

/// The environment variable a token may come from.
pub const TOKEN_ENV: &str = "TALLY_GIT_TOKEN";

/// How tally authenticates to a remote. The default is none: public or local remotes.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The user name sent with the token (default: the URL's, else [`DEFAULT_TOKEN_USERNAME`]);
    /// for SSH, the user when the URL names none (default `git`).
    pub username: Option<String>,
    /// HTTPS: the token, sent as the password of basic auth.
    pub token: Option<Token>,
    /// SSH: the private key.
    pub ssh_key: Option<SshKey>,
    /// SSH: the known_hosts file the server's host key must be in. Without one every SSH host is
    /// refused.
    pub known_hosts: Option<PathBuf>,
}

/// The credential files a user names (`tally run --git-*`), before they are checked against a
/// remote.
#[derive(Debug, Clone, Default)]
pub struct CredentialFiles {
    /// HTTPS: a file holding a token.
    pub token_file: Option<PathBuf>,
    /// HTTPS: the user name sent with the token; SSH: the user when the URL names none.
    pub username: Option<String>,
    /// SSH: the private key file.
    pub ssh_key: Option<PathBuf>,
    /// SSH: a file holding the key's passphrase.
    pub ssh_passphrase_file: Option<PathBuf>,
    /// SSH: the known_hosts file.
    pub known_hosts: Option<PathBuf>,
}

/// Why the credentials given cannot be used for a remote; found at start, not at the first fetch.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A token file was given for an SSH remote.
    #[error("--git-token-file is for HTTPS remotes; {url} is an SSH remote: give --git-ssh-key")]
    TokenForSsh {
        /// The remote (redacted).
        url: String,
    },
    /// An SSH flag was given for a remote that is not SSH.
    #[error("{flag} is for SSH remotes (ssh://... or git@host:path); {url} is not one")]
    SshFlagForHttps {
        /// The flag.
        flag: &'static str,
        /// The remote (redacted).
        url: String,
    },
    /// An SSH remote without a known_hosts file.
    #[error(
        "{url} is an SSH remote: give --git-known-hosts FILE with its host key \
         (`ssh-keyscan HOST > FILE`); tally never trusts an unknown host"
    )]
    NoKnownHosts {
        /// The remote (redacted).
        url: String,
    },
    /// An SSH remote without a key.
    #[error("{url} is an SSH remote: give --git-ssh-key with a deploy key")]
    NoSshKey {
        /// The remote (redacted).
        url: String,
    },
    /// A file named by a flag cannot be used.
    #[error("{flag}: {message}")]
    Unusable {
        /// The flag naming the file.
        flag: &'static str,
        /// Why (names the file, never a secret).
        message: String,
    },
}

impl Credentials {
    /// The credentials for `url` from the files a user named and a token from the environment
    /// ([`TOKEN_ENV`]), checked now so a wrong path or a flag that cannot apply to this remote is
    /// an error at start, not at the first fetch.
    pub fn resolve(
        url: &str,
        files: CredentialFiles,
        env_token: Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        let shown = redact_url(url);
        let ssh = Transport::of(url) == Transport::Ssh;
        let token = if ssh {
            if files.token_file.is_some() {
                return Err(CredentialsError::TokenForSsh { url: shown });
            }
            None
        } else {
            for (flag, given) in [
                ("--git-ssh-key", files.ssh_key.is_some()),
                ("--git-known-hosts", files.known_hosts.is_some()),
            ] {
                if given {
                    return Err(CredentialsError::SshFlagForHttps { flag, url: shown });
                }
            }
            Token::choose(files.token_file.clone(), env_token)
        };
        let unusable = |flag: &'static str| {
            move |message: String| CredentialsError::Unusable { flag, message }
        };
        if let Some(Token::File(path)) = &token {
            read_secret(path, "token file")
                .map_err(|e| unusable("--git-token-file")(e.to_string()))?;
        }
        if ssh {
            let Some(known_hosts) = &files.known_hosts else {
                return Err(CredentialsError::NoKnownHosts { url: shown });
            };
            super::KnownHosts::load(known_hosts)
                .map_err(|e| unusable("--git-known-hosts")(e.to_string()))?;
            let Some(key) = &files.ssh_key else {
                return Err(CredentialsError::NoSshKey { url: shown });
            };
            std::fs::File::open(key)
                .map_err(|e| unusable("--git-ssh-key")(format!("{}: {e}", key.display())))?;
            if let Some(p) = &files.ssh_passphrase_file {
                read_secret(p, "passphrase file")
                    .map_err(|e| unusable("--git-ssh-passphrase-file")(e.to_string()))?;
            }
        }
        Ok(Credentials {
            username: files.username,
            token,
            ssh_key: files.ssh_key.map(|private_key| SshKey {
                private_key,
                passphrase_file: files.ssh_passphrase_file,
            }),
            known_hosts: files.known_hosts,
        })
    }

    /// How these credentials authenticate, for logs: where secrets come from, never their values.
    pub fn describe(&self) -> String {
        match (&self.token, &self.ssh_key) {
            (_, Some(key)) => format!("ssh key {}", key.private_key.display()),
            (Some(Token::File(path)), None) => format!("token file {}", path.display()),
            (Some(Token::Env(_)), None) => format!("token from {TOKEN_ENV}"),
            (None, None) => "none".to_owned(),
        }
    }
}

/// Where a token comes from.
#[derive(Clone)]
pub enum Token {
    /// A file, read at each fetch that needs it (trailing whitespace is not part of the token).
    File(PathBuf),
    /// A value read once at start, from [`TOKEN_ENV`].
    Env(String),
}

impl Token {
    /// A token from `file` if one is given, else from the environment variable's value, else
    /// none. The file wins: it can be rotated without a restart.
    pub fn choose(file: Option<PathBuf>, env: Option<String>) -> Option<Token> {
        match (file, env) {
            (Some(path), _) => Some(Token::File(path)),
            (None, Some(value)) if !value.trim().is_empty() => {
                Some(Token::Env(value.trim().to_owned()))
            }
            (None, _) => None,
        }
    }

    /// Where the token comes from, for messages: the file or the variable, never the value.
    pub fn origin(&self) -> String {
        match self {
            Token::File(path) => format!("the token file {}", path.display()),
            Token::Env(_) => format!("the token in {TOKEN_ENV}"),
        }
    }

    /// The token itself.
    pub fn read(&self) -> Result<String, SecretError> {
        match self {
            Token::File(path) => read_secret(path, "token file"),
            Token::Env(value) => Ok(value.clone()),
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::File(path) => f.debug_tuple("File").field(path).finish(),
            Token::Env(_) => f.write_str("Env(<redacted>)"),
        }
    }
}

/// An SSH private key, and the file holding its passphrase if it has one.
#[derive(Debug, Clone)]
pub struct SshKey {
    /// The private key file (OpenSSH or PEM format).
    pub private_key: PathBuf,
    /// A file holding the key's passphrase.
    pub passphrase_file: Option<PathBuf>,
}

/// Why a file holding a secret cannot be used. The messages name the file, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("reading the {what} {}: {source}", path.display())]
    Read {
        /// What the file holds (`token file`, `passphrase file`).
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("the {what} {} is empty", path.display())]
    Empty {
        /// What the file holds.
        what: String,
        /// The file.
        path: PathBuf,
    },
}

/// Reads a file holding one secret; a trailing newline is not part of it, an empty file is an
/// error. `what` names the file in messages (`token file`).
pub fn read_secret(path: &Path, what: &str) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim_end();
    if secret.is_empty() {
        return Err(SecretError::Empty {
            what: what.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(secret.to_owned())
}

/// What to answer one request of libgit2 for credentials.
#[derive(PartialEq, Eq)]
pub(crate) enum Offer {
    /// Only a user name (SSH asks for it first when the URL has none).
    Username(String),
    /// A user name and a token, for basic auth.
    Token {
        /// The user name.
        username: String,
        /// The token.
        token: String,
    },
    /// An SSH key.
    SshKey {
        /// The user.
        username: String,
        /// The private key file.
        private_key: PathBuf,
        /// Its passphrase.
        passphrase: Option<String>,
    },
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offer::Username(name) => write!(f, "Username({name:?})"),
            Offer::Token { username, .. } => write!(f, "Token({username:?}, <redacted>)"),
            Offer::SshKey {
                username,
                private_key,
                ..
            } => write!(f, "SshKey({username:?}, {})", private_key.display()),
        }
    }
}

/// The credentials of one fetch: each secret is offered once; when the remote asks again it has
/// refused it, and the fetch ends with the reason.
pub(crate) struct Attempts<'a> {
    credentials: &'a Credentials,
    token_offered: bool,
    key_offered: bool,
    /// Why the last request was refused. libgit2 may replace the callback's message with its own,
    /// so the fetch reports this one.
    pub(crate) refusal: Option<String>,
}

impl<'a> Attempts<'a> {
    pub(crate) fn new(credentials: &'a Credentials) -> Self {
        Attempts {
            credentials,
            token_offered: false,
            key_offered: false,
            refusal: None,
        }
    }

    /// The answer to one request, or why there is none.
    pub(crate) fn next(
        &mut self,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Offer, String> {
        let c = self.credentials;
        let ssh_user = || {
            username_from_url
                .or(c.username.as_deref())
                .unwrap_or("git")
                .to_owned()
        };
        if allowed.contains(CredentialType::USERNAME) {
            return Ok(Offer::Username(ssh_user()));
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &c.ssh_key
        {
            if self.key_offered {
                return Err(format!(
                    "the server refused the SSH key {} for user {:?}",
                    key.private_key.display(),
                    ssh_user()
                ));
            }
            self.key_offered = true;
            let passphrase = match &key.passphrase_file {
                Some(path) => {
                    Some(read_secret(path, "SSH key passphrase file").map_err(|e| e.to_string())?)
                }
                None => None,
            };
            return Ok(Offer::SshKey {
                username: ssh_user(),
                private_key: key.private_key.clone(),
                passphrase,
            });
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = &c.token
        {
            if self.token_offered {
                return Err(format!("the server refused {}", token.origin()));
            }
            self.token_offered = true;
            let username = c
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or(DEFAULT_TOKEN_USERNAME)
                .to_owned();
            return Ok(Offer::Token {
                username,
                token: token.read().map_err(|e| e.to_string())?,
            });
        }
        Err(if allowed.contains(CredentialType::SSH_KEY) {
            "the server asks for an SSH key and none was given".to_owned()
        } else if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            format!(
                "the server asks for credentials and no token was given (a token file, or {TOKEN_ENV})"
            )
        } else {
            "the server asks for a kind of credentials tally does not support".to_owned()
        })
    }

    /// libgit2's credentials callback: [`Attempts::next`] as a `Cred`, the refusal remembered.
    pub(crate) fn callback(
        &mut self,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let offer = self.next(username_from_url, allowed);
        let cred = match offer {
            Ok(Offer::Username(name)) => Cred::username(&name),
            Ok(Offer::Token { username, token }) => Cred::userpass_plaintext(&username, &token),
            Ok(Offer::SshKey {
                username,
                private_key,
                passphrase,
            }) => Cred::ssh_key(&username, None, &private_key, passphrase.as_deref()),
            Err(reason) => {
                let error = git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, &reason);
                self.refusal = Some(reason);
                return Err(error);
            }
        };
        // libgit2's own message here could only be about a name or path with a NUL in it.
        cred.map_err(|e| {
            let reason = format!("preparing the credentials: {}", e.message());
            self.refusal = Some(reason.clone());
            git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, reason)
        })
    }
}

/// How a remote is reached, judged from its URL as git judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ssh://`, `git+ssh://`, `ssh+git://`, or scp-like `[user@]host:path`.
    Ssh,
    /// `http://` or `https://`.
    Http,
    /// A path or `file://`, or anything else libgit2 may know.
    Other,
}

impl Transport {
    /// The transport of `url`.
    pub fn of(url: &str) -> Transport {
        let lower = url.to_ascii_lowercase();
        if let Some((scheme, _)) = lower.split_once("://") {
            return match scheme {
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                "http" | "https" => Transport::Http,
                _ => Transport::Other,
            };
        }
        // scp-like syntax: a colon before any slash (`git@github.com:org/repo.git`).
        match url.split_once(':') {
            Some((host, _)) if !host.is_empty() && !host.contains('/') => Transport::Ssh,
            _ => Transport::Other,
        }
    }
}

/// The host and port of an SSH URL (port 22 unless the URL names one).
pub(crate) fn ssh_host_port(url: &str) -> Option<(String, u16)> {
    let authority = match url.split_once("://") {
        Some((_, rest)) => rest.split('/').next()?,
        None => url.split_once(':')?.0,
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // `[::1]:2222`, `[::1]`, `host:2222`, `host`.
    if let Some(rest) = host_port.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => 22,
        };
        return Some((host.to_owned(), port));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if url.contains("://") => Some((host.to_owned(), port.parse().ok()?)),
        _ => Some((host_port.to_owned(), 22)),
    }
}

/// `url` with any password in it replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if user.len() == userinfo.len() {
                url.to_owned()
            } else {
                format!("{scheme}://{user}:***@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_token_file_wins_over_the_environment_and_is_read_at_each_request() {
        let tmp = temp();
        let file = tmp.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap_or_else(|e| panic!("{e}"));
        let token = Token::choose(Some(file.clone()), Some("from-env".into()));
        assert!(matches!(token, Some(Token::File(_))), "{token:?}");
        let env_only = Token::choose(None, Some(" from-env\n".into()));
        assert_eq!(
            env_only.and_then(|t| t.read().ok()),
            Some("from-env".into())
        );
        assert!(Token::choose(None, Some("  ".into())).is_none());
        assert!(Token::choose(None, None).is_none());

        let credentials = Credentials {
            token: Token::choose(Some(file.clone()), None),
            ..Credentials::default()
        };
        let offer = Attempts::new(&credentials).next(None, CredentialType::USER_PASS_PLAINTEXT);
        assert_eq!(
            offer,
            Ok(Offer::Token {
                username: DEFAULT_TOKEN_USERNAME.into(),
                token: "from-file".into()
            })
        );
        // A rotated file is read again by the next fetch.
        std::fs::write(&file, "rotated").unwrap_or_else(|e| panic!("{e}"));
        let offer = Attempts::new(&credentials).next(None, CredentialType::USER_PASS_PLAINTEXT);
        assert!(
            matches!(offer, Ok(Offer::Token { ref token, .. }) if token == "rotated"),
            "{offer:?}"
        );
        // The URL's user name is used unless one is configured.
        let offer = Attempts::new(&credentials)
            .next(Some("gitlab-ci-token"), CredentialType::USER_PASS_PLAINTEXT);
        assert!(
            matches!(offer, Ok(Offer::Token { ref username, .. }) if username == "gitlab-ci-token")
        );
        let named = Credentials {
            username: Some("bot".into()),
            ..credentials.clone()
        };
        let offer = Attempts::new(&named).next(Some("other"), CredentialType::USER_PASS_PLAINTEXT);
        assert!(matches!(offer, Ok(Offer::Token { ref username, .. }) if username == "bot"));
    }

    #[test]
    fn a_refused_token_is_offered_once_and_never_named_in_the_error() {
        let credentials = Credentials {
            token: Some(Token::Env("ghp_SECRET123".into())),
            ..Credentials::default()
        };
        let mut attempts = Attempts::new(&credentials);
        let allowed = CredentialType::USER_PASS_PLAINTEXT;
        assert!(attempts.callback(None, allowed).is_ok());
        let refused = attempts.callback(None, allowed).err();
        assert!(
            refused
                .as_ref()
                .is_some_and(|e| e.code() == ErrorCode::Auth),
            "{refused:?}"
        );
        let reason = attempts.refusal.clone().unwrap_or_default();
        assert_eq!(reason, "the server refused the token in TALLY_GIT_TOKEN");
        // Every later request is refused too: no loop.
        assert!(attempts.callback(None, allowed).is_err());
        assert!(!format!("{refused:?}{reason}").contains("SECRET123"));
        assert!(!format!("{credentials:?}").contains("SECRET123"));
    }

    #[test]
    fn a_missing_or_empty_token_file_and_absent_credentials_are_clear_errors() {
        let tmp = temp();
        let missing = tmp.path().join("nope");
        let credentials = Credentials {
            token: Some(Token::File(missing.clone())),
            ..Credentials::default()
        };
        let err = Attempts::new(&credentials).next(None, CredentialType::USER_PASS_PLAINTEXT);
        assert!(
            matches!(err, Err(ref m) if m.contains("token file") && m.contains("nope")),
            "{err:?}"
        );
        std::fs::write(&missing, "\n").unwrap_or_else(|e| panic!("{e}"));
        let err = Attempts::new(&credentials).next(None, CredentialType::USER_PASS_PLAINTEXT);
        assert!(
            matches!(err, Err(ref m) if m.contains("is empty")),
            "{err:?}"
        );

        let none = Credentials::default();
        let err = Attempts::new(&none).next(None, CredentialType::USER_PASS_PLAINTEXT);
        assert!(
            matches!(err, Err(ref m) if m.contains(TOKEN_ENV)),
            "{err:?}"
        );
        let err = Attempts::new(&none).next(None, CredentialType::SSH_KEY);
        assert!(
            matches!(err, Err(ref m) if m.contains("SSH key")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unreadable_or_empty_secret_file_is_an_error_naming_the_file() {
        let tmp = temp();
        let file = tmp.path().join("secret");
        let err = read_secret(&file, "token file").err();
        assert!(
            matches!(err, Some(SecretError::Read { ref path, .. }) if *path == file),
            "{err:?}"
        );
        let prefix = format!("reading the token file {}: ", file.display());
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with(&prefix), "{message}");

        std::fs::write(&file, " \n").unwrap_or_else(|e| panic!("{e}"));
        let err = read_secret(&file, "passphrase file").err();
        assert!(
            matches!(err, Some(SecretError::Empty { ref what, .. }) if what == "passphrase file"),
            "{err:?}"
        );
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!("the passphrase file {} is empty", file.display()))
        );

        std::fs::write(&file, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_secret(&file, "token file").ok().as_deref(),
            Some("s3cret")
        );
    }

    #[test]
    fn an_ssh_key_is_offered_once_after_the_user_name() {
        let tmp = temp();
        let passphrase = tmp.path().join("passphrase");
        std::fs::write(&passphrase, "open sesame\n").unwrap_or_else(|e| panic!("{e}"));
        let credentials = Credentials {
            ssh_key: Some(SshKey {
                private_key: tmp.path().join("id_ed25519"),
                passphrase_file: Some(passphrase),
            }),
            ..Credentials::default()
        };
        let mut attempts = Attempts::new(&credentials);
        assert_eq!(
            attempts.next(None, CredentialType::USERNAME),
            Ok(Offer::Username("git".into()))
        );
        let offer = attempts.next(Some("deploy"), CredentialType::SSH_KEY);
        assert!(
            matches!(offer, Ok(Offer::SshKey { ref username, ref passphrase, .. })
                if username == "deploy" && passphrase.as_deref() == Some("open sesame")),
            "{offer:?}"
        );
        let refused = attempts.next(Some("deploy"), CredentialType::SSH_KEY);
        assert!(
            matches!(refused, Err(ref m) if m.contains("refused the SSH key")),
            "{refused:?}"
        );
    }

    #[test]
    fn transports_are_judged_as_git_judges_them() {
        assert_eq!(
            Transport::of("git@github.com:acme/platform.git"),
            Transport::Ssh
        );
        assert_eq!(Transport::of("ssh://git@host:2222/r.git"), Transport::Ssh);
        assert_eq!(Transport::of("SSH://host/r"), Transport::Ssh);
        assert_eq!(Transport::of("git+ssh://host/r"), Transport::Ssh);
        assert_eq!(Transport::of("https://github.com/a/b.git"), Transport::Http);
        assert_eq!(Transport::of("http://127.0.0.1:1/r"), Transport::Http);
        assert_eq!(Transport::of("file:///srv/r"), Transport::Other);
        assert_eq!(Transport::of("/srv/r"), Transport::Other);
        assert_eq!(Transport::of("./a:b"), Transport::Other);

        let hp = |u: &str| ssh_host_port(u);
        assert_eq!(
            hp("git@github.com:acme/p.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(hp("ssh://git@host:2222/r.git"), Some(("host".into(), 2222)));
        assert_eq!(hp("ssh://host/r.git"), Some(("host".into(), 22)));
        assert_eq!(hp("ssh://[::1]:2222/r"), Some(("::1".into(), 2222)));
    }

    #[test]
    fn a_password_in_a_url_is_redacted() {
        assert_eq!(
            redact_url("https://bot:ghp_abc@github.com/a/b.git"),
            "https://bot:***@github.com/a/b.git"
        );
        assert_eq!(
            redact_url("https://bot@github.com/a/b.git"),
            "https://bot@github.com/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(redact_url("file:///srv/r"), "file:///srv/r");
    }
}
