//! The daemon's sources: a working tree ([`tree`]) or, below, one branch of a remote, fetched into a bare cache repository, its head
//! commit's tree written out as plain files for the gate and the renderer to read.
//!
//! Layout of the cache directory (one subdirectory per remote and branch, so several daemons or
//! environments may share it):
//!
//! ```text
//! <cache>/<digest of url and branch>/repo.git        bare repository, refs/heads/<branch>
//! <cache>/<digest of url and branch>/trees/<commit>  the files of a commit, written once
//! ```
//!
//! A commit's tree is written once and reused while it is the head; only the current tree and the
//! last good one are kept ([`GitSource::retain`]). Fetching is blocking (libgit2): async callers
//! run it on a blocking thread.
//!
//! A private remote takes [`Credentials`]: a token for HTTPS, or a key for SSH with a known_hosts
//! file its host key must be in ([`KnownHosts`]); no SSH host is trusted without one.
//!
//! A fetch is bounded by a timeout ([`GitSource::with_fetch_timeout`], default
//! [`DEFAULT_FETCH_TIMEOUT`]): connecting, and each wait for the server, gives up after it, and a
//! transfer still going when it has passed is abandoned.

mod auth;
mod follow;
pub mod known_hosts;
pub mod tree;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use git2::{
    CertificateCheckStatus, ErrorClass, ErrorCode, FetchOptions, ObjectType, Oid, RemoteCallbacks,
    Repository,
};

use auth::{Attempts, ssh_host_port};
pub use auth::{
    CredentialFiles, Credentials, CredentialsError, DEFAULT_TOKEN_USERNAME, SecretError, SshKey,
    TOKEN_ENV, Token, Transport, read_secret, redact_url,
};
pub use follow::{Follower, GitSettings, Source};
pub use known_hosts::{KnownHosts, KnownHostsError, LineProblem};
pub use tree::tree_digest;

/// Why the source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The cache directory could not be created or opened.
    #[error("the git cache at {path}: {message}")]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The remote could not be reached (network, TLS, no such host or path).
    #[error("{url} is unreachable: {message}")]
    Unreachable {
        /// The remote.
        url: String,
        /// libgit2's message.
        message: String,
    },
    /// The remote asked for credentials and none were given, refused the ones given, or (SSH) its
    /// host key is not the one known for it.
    #[error("{url} refused access (authentication needed or failed): {message}")]
    Auth {
        /// The remote.
        url: String,
        /// libgit2's message.
        message: String,
    },
    /// The remote has no such branch.
    #[error("{url} has no branch {branch:?}")]
    MissingBranch {
        /// The remote.
        url: String,
        /// The branch.
        branch: String,
    },
    /// Fetching failed for another reason.
    #[error("fetching {branch:?} from {url}: {message}")]
    Fetch {
        /// The remote.
        url: String,
        /// The branch.
        branch: String,
        /// libgit2's message.
        message: String,
    },
    /// A working tree could not be read.
    #[error("reading {}: {source}", path.display())]
    Tree {
        /// The tree's root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The blocking fetch task died.
    #[error("the fetch task failed: {0}")]
    Task(String),
    /// A commit's tree could not be read from the cache or written out.
    #[error("writing out commit {commit}: {message}")]
    Materialise {
        /// The commit.
        commit: String,
        /// Why.
        message: String,
    },
}

/// How long a fetch may take when no timeout is given.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A commit written out as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The commit id (40 hex digits).
    pub commit: String,
    /// The directory holding its files.
    pub root: PathBuf,
    /// Whether this call wrote the files (false: they were already there from an earlier call).
    pub written: bool,
}

/// One branch of a remote, cached on disk.
pub struct GitSource {
    /// The URL as messages show it (any password replaced).
    url: String,
    /// The URL as given, for libgit2.
    remote_url: String,
    branch: String,
    dir: PathBuf,
    repo: Repository,
    credentials: Credentials,
    fetch_timeout: Duration,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.url)
            .field("branch", &self.branch)
            .field("dir", &self.dir)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl GitSource {
    /// Opens (or creates) the cache of `branch` of `url` under `cache`. Nothing is fetched yet.
    pub fn open(url: &str, branch: &str, cache: &Path) -> Result<Self, SourceError> {
        let dir = cache.join(cache_key(url, branch));
        let cache_error = |message: String| SourceError::Cache {
            path: dir.clone(),
            message,
        };
        std::fs::create_dir_all(dir.join("trees")).map_err(|e| cache_error(e.to_string()))?;
        // Each commit's objects are read once, to write its tree out: libgit2's object cache would
        // only hold on to them, growing with every commit the daemon follows.
        git2::opts::enable_caching(false);
        let bare = dir.join("repo.git");
        let repo = if bare.join("HEAD").is_file() {
            Repository::open_bare(&bare)
        } else {
            Repository::init_bare(&bare)
        }
        .map_err(|e| cache_error(e.message().to_owned()))?;
        Ok(GitSource {
            url: redact_url(url),
            remote_url: url.to_owned(),
            branch: branch.to_owned(),
            dir,
            repo,
            credentials: Credentials::default(),
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        })
    }

    /// Give up on a fetch after `timeout`: connecting and each wait for the server are bounded by
    /// it, and a transfer still going when it has passed is abandoned.
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Authenticate with `credentials` from the next fetch on.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The remote (any password in the URL replaced by `***`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Fetches the branch and returns its head commit id. Objects already in the cache are not
    /// fetched again.
    pub fn fetch(&mut self) -> Result<String, SourceError> {
        let reference = format!("refs/heads/{}", self.branch);
        // Refuse names git would refuse, before they reach a refspec.
        if !git2::Reference::is_valid_name(&reference) {
            return Err(self.missing());
        }
        let mut remote = self
            .repo
            .remote_anonymous(&self.remote_url)
            .map_err(|e| self.classify(e))?;
        let refspec = format!("+{reference}:{reference}");
        let mut attempts = Attempts::new(&self.credentials);
        let host_key_refused = RefCell::new(None);
        // One network fetch at a time in this process: the socket timeouts are process-wide.
        let _network = NETWORK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set_socket_timeouts(self.fetch_timeout);
        let deadline = Instant::now() + self.fetch_timeout;
        let timed_out = Cell::new(false);
        let in_time = || {
            let ok = Instant::now() < deadline;
            if !ok {
                timed_out.set(true);
            }
            ok
        };
        let fetched = {
            let mut callbacks = RemoteCallbacks::new();
            // Returning false abandons the transfer; both are called as data arrives.
            callbacks.transfer_progress(|_| in_time());
            callbacks.sideband_progress(|_| in_time());
            callbacks.credentials(|_url, username, allowed| attempts.callback(username, allowed));
            callbacks.certificate_check(|cert, host| {
                // TLS certificates are checked by libgit2 and OpenSSL as usual.
                let Some(hostkey) = cert.as_hostkey() else {
                    return Ok(CertificateCheckStatus::CertificatePassthrough);
                };
                match self.check_host_key(host, hostkey) {
                    Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                    Err(reason) => {
                        let e = git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, &reason);
                        *host_key_refused.borrow_mut() = Some(reason);
                        Err(e)
                    }
                }
            });
            let mut options = FetchOptions::new();
            options.remote_callbacks(callbacks);
            // Only the branch: no tags, no other refs.
            options.download_tags(git2::AutotagOption::None);
            remote.fetch(&[refspec.as_str()], Some(&mut options), None)
        };
        if let Err(e) = fetched {
            if timed_out.get() || e.code() == ErrorCode::Timeout {
                return Err(SourceError::Unreachable {
                    url: self.url.clone(),
                    message: format!(
                        "gave up after the fetch timeout of {} ({})",
                        seconds(self.fetch_timeout),
                        e.message()
                    ),
                });
            }
            // Our reason, not libgit2's generic one ("invalid or unknown remote ssh hostkey").
            return Err(match host_key_refused.into_inner().or(attempts.refusal) {
                Some(message) => SourceError::Auth {
                    url: self.url.clone(),
                    message,
                },
                None => self.classify(e),
            });
        }
        // The heads the remote advertised on this fetch: a branch deleted upstream is missing now,
        // even though the cache still holds its old ref.
        let advertised = remote
            .list()
            .map_err(|e| self.classify(e))?
            .iter()
            .find(|head| head.name() == reference)
            .map(|head| head.oid());
        let Some(oid) = advertised else {
            return Err(self.missing());
        };
        // The object must have arrived (an empty or broken remote would not send it).
        self.repo.find_commit(oid).map_err(|e| SourceError::Fetch {
            url: self.url.clone(),
            branch: self.branch.clone(),
            message: format!("the head {oid} did not arrive: {}", e.message()),
        })?;
        Ok(oid.to_string())
    }

    /// The head commit id of the branch as last fetched, if it was ever fetched.
    pub fn cached_head(&self) -> Option<String> {
        self.repo
            .find_reference(&format!("refs/heads/{}", self.branch))
            .ok()
            .and_then(|r| r.target())
            .map(|oid| oid.to_string())
    }

    /// Writes `commit`'s tree to `<cache>/trees/<commit>` (unless it is already there) and
    /// returns where.
    pub fn materialise(&self, commit: &str) -> Result<Checkout, SourceError> {
        let fail = |message: String| SourceError::Materialise {
            commit: commit.to_owned(),
            message,
        };
        let oid = Oid::from_str(commit).map_err(|e| fail(e.message().to_owned()))?;
        let root = self.dir.join("trees").join(oid.to_string());
        if root.is_dir() {
            return Ok(Checkout {
                commit: oid.to_string(),
                root,
                written: false,
            });
        }
        let tree = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| fail(e.message().to_owned()))?;
        // Written beside, then renamed: a tree directory that exists is always complete.
        let partial = self.dir.join("trees").join(format!(".partial-{oid}"));
        let _ = std::fs::remove_dir_all(&partial);
        write_tree(&self.repo, &tree, &partial).map_err(fail)?;
        std::fs::rename(&partial, &root).map_err(|e| fail(e.to_string()))?;
        Ok(Checkout {
            commit: oid.to_string(),
            root,
            written: true,
        })
    }

    /// Deletes the written trees of every commit but `keep` (the current one and the last good
    /// one). Failures are ignored: a leftover tree costs only disk.
    pub fn retain(&self, keep: &[&str]) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("trees")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !keep.iter().any(|k| *k == name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Whether an SSH server's host key is listed for it in the known_hosts file.
    fn check_host_key(
        &self,
        host: &str,
        hostkey: &git2::cert::CertHostkey<'_>,
    ) -> Result<(), String> {
        let key = hostkey
            .hostkey()
            .ok_or_else(|| format!("{host} presented no host key"))?;
        let key_type = hostkey.hostkey_type().map_or("unknown", |t| t.name());
        self.verify_host_key(host, key_type, key)
    }

    /// [`GitSource::check_host_key`] on the key's type and bytes. The file is read at each fetch,
    /// so an edited one is picked up.
    fn verify_host_key(&self, host: &str, key_type: &str, key: &[u8]) -> Result<(), String> {
        let port = ssh_host_port(&self.remote_url).map_or(22, |(_, port)| port);
        let Some(path) = &self.credentials.known_hosts else {
            let scan = match port {
                22 => format!("ssh-keyscan {host}"),
                _ => format!("ssh-keyscan -p {port} {host}"),
            };
            return Err(format!(
                "no known_hosts file was given, and no SSH host is trusted without one \
                 (`{scan}` prints its keys)"
            ));
        };
        KnownHosts::load(path)
            .and_then(|k| k.check(host, port, key_type, key))
            .map_err(|e| e.to_string())
    }

    fn missing(&self) -> SourceError {
        SourceError::MissingBranch {
            url: self.url.clone(),
            branch: self.branch.clone(),
        }
    }

    /// Sorts libgit2's errors into the ones a person acts on differently.
    fn classify(&self, e: git2::Error) -> SourceError {
        let url = self.url.clone();
        let message = e.message().to_owned();
        match (e.code(), e.class()) {
            (ErrorCode::Auth | ErrorCode::Certificate, _) => SourceError::Auth { url, message },
            // libssh2 refusing the key or its passphrase ("failed to authenticate SSH session").
            (_, ErrorClass::Ssh) if message.contains("authenticat") => {
                let message = match &self.credentials.ssh_key {
                    Some(key) if message.contains("private key") => format!(
                        "with the key {}: {message} (an OpenSSH or PEM private key is needed, and \
                         its passphrase if it has one)",
                        key.private_key.display()
                    ),
                    Some(key) => format!("with the key {}: {message}", key.private_key.display()),
                    None => message,
                };
                SourceError::Auth { url, message }
            }
            (_, ErrorClass::Net | ErrorClass::Os | ErrorClass::Ssl | ErrorClass::Http)
            | (ErrorCode::NotFound, _) => SourceError::Unreachable { url, message },
            _ => SourceError::Fetch {
                url,
                branch: self.branch.clone(),
                message,
            },
        }
    }
}

/// Held for the length of a fetch: libgit2's socket timeouts are process-wide, so a fetch sets
/// them and no other fetch in this process opens a connection meanwhile.
static NETWORK: Mutex<()> = Mutex::new(());

/// Sets libgit2's connect timeout and its timeout for each read or write on a socket (HTTP, HTTPS
/// and SSH) to `timeout`. Called with [`NETWORK`] held.
#[allow(unsafe_code)]
fn set_socket_timeouts(timeout: Duration) {
    let ms = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    // SAFETY: these write two plain `int`s in libgit2 that it copies when it opens a socket. The
    // functions are `unsafe` only because a write racing such a copy would be a data race; every
    // fetch in this process holds `NETWORK` from before these writes until its sockets are
    // closed, and nothing else here opens libgit2 sockets. Neither call can fail.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
    }
}

/// `1s`, `1.5s`, `60s`.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Where the cache lives when none is given: `/var/cache/tally` when it can be written, else a
/// directory in the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let preferred = PathBuf::from("/var/cache/tally");
    if writable(&preferred) {
        preferred
    } else {
        std::env::temp_dir().join("tally-cache")
    }
}

/// Whether `dir` exists or can be created, and a file can be written in it.
pub fn writable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".tally-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// A stable directory name for a remote and branch (SHA-256, shortened).
fn cache_key(url: &str, branch: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{url}\n{branch}").as_bytes());
    digest
        .as_ref()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the tree of revision `rev` (a commit, branch, tag or `HEAD~1`) of the git repository
/// that holds `path` under `dir`, read from the object database (no checkout, the working tree
/// untouched); `subdir` is where `path` lies inside the repository, so the returned directory is
/// `path` as it was at that commit. Returns the commit id and that directory.
pub fn export_revision(
    path: &Path,
    rev: &str,
    dir: &Path,
) -> Result<(String, PathBuf), SourceError> {
    let fail = |message: String| SourceError::Materialise {
        commit: rev.to_owned(),
        message,
    };
    let repo = Repository::discover(path).map_err(|e| fail(e.message().to_owned()))?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| fail(e.message().to_owned()))?;
    let tree = commit.tree().map_err(|e| fail(e.message().to_owned()))?;
    write_tree(&repo, &tree, dir).map_err(fail)?;
    let workdir = repo
        .workdir()
        .and_then(|w| w.canonicalize().ok())
        .ok_or_else(|| fail("a bare repository has no working tree to compare".into()))?;
    let inside = path
        .canonicalize()
        .ok()
        .and_then(|p| p.strip_prefix(&workdir).ok().map(Path::to_path_buf))
        .unwrap_or_default();
    Ok((commit.id().to_string(), dir.join(inside)))
}

/// Writes a tree's blobs under `dir`. Symbolic links and submodules are skipped: a link could
/// point outside the tree, and a submodule's content is not in this repository.
fn write_tree(repo: &Repository, tree: &git2::Tree<'_>, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in tree.iter() {
        // Names that are not UTF-8 cannot be manifests tally reads.
        let Ok(name) = entry.name() else {
            continue;
        };
        // Git refuses these names in trees; a crafted object could still hold them.
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.eq_ignore_ascii_case(".git")
            || name.contains(['/', '\\'])
        {
            return Err(format!("unsafe name {name:?} in the tree"));
        }
        let path = dir.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(|e| format!("{name}: {}", e.message()))?;
                write_tree(repo, &sub, &path)?;
            }
            Some(ObjectType::Blob) if entry.filemode() != 0o120000 => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(|e| format!("{name}: {}", e.message()))?;
                std::fs::write(&path, blob.content())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A working repository with one commit per call to [`Upstream::commit`].
    struct Upstream {
        repo: Repository,
        dir: PathBuf,
    }

    impl Upstream {
        fn new(dir: &Path) -> Upstream {
            let repo = Repository::init(dir).unwrap_or_else(|e| panic!("{e}"));
            Upstream {
                repo,
                dir: dir.to_path_buf(),
            }
        }

        fn url(&self) -> String {
            format!("file://{}", self.dir.display())
        }

        /// Writes `files`, commits everything on `branch`, returns the commit id.
        fn commit(&self, branch: &str, files: &[(&str, &str)]) -> String {
            for (name, text) in files {
                let path = self.dir.join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
                }
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            }
            let mut index = self.repo.index().unwrap_or_else(|e| panic!("{e}"));
            index
                .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
                .unwrap_or_else(|e| panic!("{e}"));
            index.write().unwrap_or_else(|e| panic!("{e}"));
            let tree_id = index.write_tree().unwrap_or_else(|e| panic!("{e}"));
            let tree = self
                .repo
                .find_tree(tree_id)
                .unwrap_or_else(|e| panic!("{e}"));
            let sig = git2::Signature::now("t", "t@example.com").unwrap_or_else(|e| panic!("{e}"));
            let reference = format!("refs/heads/{branch}");
            let parent = self
                .repo
                .find_reference(&reference)
                .ok()
                .and_then(|r| r.peel_to_commit().ok());
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            self.repo
                .commit(Some(&reference), &sig, &sig, "change", &tree, &parents)
                .unwrap_or_else(|e| panic!("{e}"))
                .to_string()
        }
    }

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn fetches_the_head_writes_its_tree_and_picks_up_a_new_commit() {
        let tmp = temp();
        let upstream = Upstream::new(&tmp.path().join("upstream"));
        let first = upstream.commit("main", &[("a/x.yaml", "x: 1\n"), ("tally.yaml", "r\n")]);
        let mut source = GitSource::open(&upstream.url(), "main", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(source.cached_head(), None);
        let head = source.fetch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head, first);
        assert_eq!(source.cached_head(), Some(first.clone()));
        let checkout = source.materialise(&head).unwrap_or_else(|e| panic!("{e}"));
        assert!(checkout.written);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&checkout.root.join("a/x.yaml")), "x: 1\n");
        assert!(!checkout.root.join(".git").exists());

        let second = upstream.commit("main", &[("a/x.yaml", "x: 2\n")]);
        let head = source.fetch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head, second);
        let next = source.materialise(&head).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&next.root.join("a/x.yaml")), "x: 2\n");
        assert_ne!(next.root, checkout.root);

        // Only the current and the last good trees stay.
        let third = upstream.commit("main", &[("a/x.yaml", "x: 3\n")]);
        let head = source.fetch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head, third);
        source.materialise(&head).unwrap_or_else(|e| panic!("{e}"));
        source.retain(&[&third, &second]);
        assert!(!checkout.root.exists());
        assert!(next.root.exists());

        // A reopened cache knows what it fetched.
        drop(source);
        let reopened = GitSource::open(&upstream.url(), "main", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reopened.cached_head(), Some(third));
    }

    #[test]
    fn an_unchanged_head_is_not_written_again() {
        let tmp = temp();
        let upstream = Upstream::new(&tmp.path().join("upstream"));
        let first = upstream.commit("main", &[("x.yaml", "x: 1\n")]);
        let mut source = GitSource::open(&upstream.url(), "main", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        let head = source.fetch().unwrap_or_else(|e| panic!("{e}"));
        assert!(source.materialise(&head).is_ok_and(|c| c.written));
        let again = source.fetch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, first);
        let checkout = source.materialise(&again).unwrap_or_else(|e| panic!("{e}"));
        assert!(!checkout.written);
        assert_eq!(checkout.commit, first);
    }

    #[test]
    fn a_missing_branch_is_a_clear_error() {
        let tmp = temp();
        let upstream = Upstream::new(&tmp.path().join("upstream"));
        upstream.commit("main", &[("x.yaml", "x: 1\n")]);
        let mut source = GitSource::open(&upstream.url(), "release", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = source.fetch().err();
        assert!(
            matches!(err, Some(SourceError::MissingBranch { ref branch, .. }) if branch == "release"),
            "{err:?}"
        );
        let mut bad = GitSource::open(&upstream.url(), "no..pe", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            bad.fetch(),
            Err(SourceError::MissingBranch { .. })
        ));
    }

    #[test]
    fn an_unreachable_remote_is_a_clear_error() {
        let tmp = temp();
        let url = format!("file://{}", tmp.path().join("nowhere").display());
        let mut source = GitSource::open(&url, "main", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = source.fetch().err();
        assert!(
            matches!(
                err,
                Some(SourceError::Unreachable { .. } | SourceError::Fetch { .. })
            ),
            "{err:?}"
        );
        assert!(err.is_some_and(|e| e.to_string().contains("nowhere")));
    }

    /// A git smart-HTTP remote on 127.0.0.1: `git http-backend` (CGI) behind basic auth with the
    /// user `x-access-token` and a password that can be changed while it runs.
    struct HttpRemote {
        addr: std::net::SocketAddr,
        password: std::sync::Arc<std::sync::Mutex<String>>,
        /// The `Authorization` header of each request (`None`: there was none).
        seen: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
    }

    impl HttpRemote {
        /// Serves the repositories under `root` until the test process ends.
        fn start(root: &Path, password: &str) -> HttpRemote {
            use std::sync::{Arc, Mutex};
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let password = Arc::new(Mutex::new(password.to_owned()));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (root, pw, log) = (root.to_path_buf(), Arc::clone(&password), Arc::clone(&seen));
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let expected = pw.lock().map(|p| p.clone()).unwrap_or_default();
                    serve_one(stream, &root, &expected, &log);
                }
            });
            HttpRemote {
                addr,
                password,
                seen,
            }
        }

        fn url(&self, repo: &str) -> String {
            format!("http://{}/{repo}", self.addr)
        }

        fn set_password(&self, password: &str) {
            if let Ok(mut p) = self.password.lock() {
                *p = password.to_owned();
            }
        }

        fn authorizations(&self) -> Vec<Option<String>> {
            self.seen.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    /// One request: 401 unless it carries the password, else `git http-backend`'s answer.
    fn serve_one(
        stream: std::net::TcpStream,
        root: &Path,
        password: &str,
        seen: &std::sync::Mutex<Vec<Option<String>>>,
    ) {
        use base64::Engine as _;
        use std::io::{BufRead, Read, Write};
        let mut reader = std::io::BufReader::new(&stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.trim_end().split_once(':') {
                headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                let _ = reader.read_line(&mut size);
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if n == 0 || reader.read_exact(&mut chunk).is_err() {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body.resize(n, 0);
            let _ = reader.read_exact(&mut body);
        }
        let authorization = header("authorization");
        if let Ok(mut s) = seen.lock() {
            s.push(authorization.clone());
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{password}"))
        );
        let mut out = &stream;
        if authorization.as_deref() != Some(expected.as_str()) {
            let _ = out.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let child = std::process::Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REQUEST_METHOD", &method)
            .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "x-access-token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("git http-backend (Debian package git) is needed: {e}"));
        let mut child = child;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&body);
        }
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let text = output.stdout;
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| {
                text.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, i + 2))
            })
            .unwrap_or((0, 0));
        let head = String::from_utf8_lossy(&text[..split.0]).into_owned();
        let mut status = "200 OK".to_owned();
        let mut response_headers = String::new();
        for line in head.lines() {
            match line.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
                Some(_) => response_headers.push_str(&format!("{line}\r\n")),
                None => {}
            }
        }
        let payload = &text[split.1..];
        let _ = out.write_all(
            format!(
                "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            )
            .as_bytes(),
        );
        let _ = out.write_all(payload);
    }

    #[test]
    fn a_token_is_sent_as_basic_auth_once_and_a_rotated_token_is_picked_up() {
        let tmp = temp();
        let upstream = Upstream::new(&tmp.path().join("upstream"));
        let first = upstream.commit("main", &[("x.yaml", "x: 1\n")]);
        let server = HttpRemote::start(tmp.path(), "tok-RIGHT-42");
        let token_file = tmp.path().join("token");
        std::fs::write(&token_file, "tok-WRONG-17\n").unwrap_or_else(|e| panic!("{e}"));
        let credentials = Credentials {
            token: Some(Token::File(token_file.clone())),
            ..Credentials::default()
        };

        // No credentials: a clear error, not a hang.
        let mut anonymous = GitSource::open(&server.url("upstream"), "main", &tmp.path().join("c"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = anonymous.fetch().err();
        assert!(
            matches!(err, Some(SourceError::Auth { ref message, .. }) if message.contains("no token was given")),
            "{err:?}"
        );

        // A wrong token is offered once, refused, and never shown.
        let mut source = GitSource::open(&server.url("upstream"), "main", &tmp.path().join("c"))
            .unwrap_or_else(|e| panic!("{e}"))
            .with_credentials(credentials);
        let before = server.authorizations().len();
        let err = source.fetch().err();
        let shown = err.as_ref().map(|e| e.to_string()).unwrap_or_default();
        assert!(matches!(err, Some(SourceError::Auth { .. })), "{err:?}");
        assert!(shown.contains("refused the token file"), "{shown}");
        assert!(!shown.contains("tok-WRONG") && !format!("{err:?}").contains("tok-WRONG"));
        let sent: Vec<_> = server.authorizations()[before..]
            .iter()
            .flatten()
            .cloned()
            .collect();
        assert_eq!(
            sent.len(),
            1,
            "the token was offered more than once: {sent:?}"
        );

        // The Secret is rotated: the next fetch reads the new token, without a restart.
        std::fs::write(&token_file, "tok-RIGHT-42\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(source.fetch().ok(), Some(first.clone()));
        let checkout = source.materialise(&first).unwrap_or_else(|e| panic!("{e}"));
        assert!(checkout.root.join("x.yaml").is_file());

        // And the server's password changes back under it: refused again, cleanly.
        server.set_password("tok-NEWER-99");
        assert!(matches!(source.fetch(), Err(SourceError::Auth { .. })));
    }

    #[test]
    fn an_ssh_host_is_refused_without_a_known_hosts_file() {
        let tmp = temp();
        let source = GitSource::open("git@github.com:acme/p.git", "main", tmp.path())
            .unwrap_or_else(|e| panic!("{e}"));
        // What the certificate callback answers, without a network: no file, no trust.
        let err = source.verify_host_key("github.com", "ssh-ed25519", b"key");
        assert!(
            err.as_ref()
                .is_err_and(|m| m.contains("no known_hosts file")),
            "{err:?}"
        );
        let kh = tmp.path().join("known_hosts");
        std::fs::write(&kh, "gitlab.com ssh-ed25519 AAAA\n").unwrap_or_else(|e| panic!("{e}"));
        let source = source.with_credentials(Credentials {
            known_hosts: Some(kh),
            ..Credentials::default()
        });
        let err = source.verify_host_key("github.com", "ssh-ed25519", b"key");
        assert!(
            err.as_ref()
                .is_err_and(|m| m.contains("github.com is not in")),
            "{err:?}"
        );
    }

    #[test]
    fn a_server_that_never_answers_is_given_up_on_after_the_fetch_timeout() {
        let tmp = temp();
        // Accepts connections and holds them open, never sending a byte.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let mut source = GitSource::open(&format!("http://{addr}/r.git"), "main", tmp.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_fetch_timeout(Duration::from_secs(1));
        let err = source.fetch().err();
        assert!(
            matches!(err, Some(SourceError::Unreachable { ref message, .. })
                if message.contains("fetch timeout of 1s")),
            "{err:?}"
        );
    }

    #[test]
    fn a_commit_not_in_the_cache_is_an_error_not_a_panic() {
        let tmp = temp();
        let source = GitSource::open("file:///nowhere", "main", &tmp.path().join("cache"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            source.materialise("0123456789012345678901234567890123456789"),
            Err(SourceError::Materialise { .. })
        ));
        assert!(matches!(
            source.materialise("not a commit"),
            Err(SourceError::Materialise { .. })
        ));
    }
}
