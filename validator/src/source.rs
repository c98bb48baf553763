//! Finding and reading input files: directory walks, excludes, `.tallyignore`, stdin, and the
//! checks that come before YAML (binary files, encodings).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::finding::{Finding, Pos, Severity};
use crate::unit::{UnitKind, unit_file};

/// Rule ids raised while reading files.
pub mod rules {
    /// Not valid UTF-8 (or UTF-16, which the API server does not read).
    pub const ENCODING: &str = "file-encoding";
    /// A file with NUL bytes where manifests were expected.
    pub const BINARY: &str = "file-binary";
}

/// The name stdin is reported under.
pub const STDIN_NAME: &str = "<stdin>";

/// Errors that stop a run before any finding (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A path given on the command line does not exist or cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An `--exclude` pattern is not a valid glob.
    #[error("invalid --exclude pattern `{pattern}`: {message}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A directory walk failed.
    #[error("walking {path}: {message}")]
    Walk {
        /// Where.
        path: String,
        /// What happened.
        message: String,
    },
}

/// One input to read: a file on disk, stdin, or a directory rendered as a unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    /// A file on disk.
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
    /// A Helm chart or a kustomization: rendered, then judged ([`crate::unit`]).
    Unit(UnitKind, PathBuf),
}

impl Input {
    /// The name findings use for this input.
    pub fn display_name(&self) -> String {
        match self {
            Input::File(p) | Input::Unit(_, p) => path_name(p),
            Input::Stdin => STDIN_NAME.to_owned(),
        }
    }
}

/// A path as findings name it: as it is when it is UTF-8; otherwise losslessly, each invalid byte
/// written `\xNN`, so two names that differ only there stay two files.
pub fn path_name(path: &Path) -> String {
    match path.to_str() {
        Some(s) => s.to_owned(),
        #[cfg(unix)]
        None => {
            use std::os::unix::ffi::OsStrExt;
            crate::text::escape_bytes(path.as_os_str().as_bytes())
        }
        #[cfg(not(unix))]
        None => path.to_string_lossy().into_owned(),
    }
}

/// Whether a path names a manifest file by its extension (`.yaml`, `.yml`, `.json`).
pub fn is_manifest_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        e.eq_ignore_ascii_case("yaml")
            || e.eq_ignore_ascii_case("yml")
            || e.eq_ignore_ascii_case("json")
    })
}

/// Expands the command line's paths into the files to read, sorted and deduplicated.
///
/// Directories are walked for `.yaml`, `.yml` and `.json` files, skipping hidden entries, paths
/// matching an `excludes` glob (gitignore syntax) and paths listed in `.tallyignore` files. A
/// directory holding a `Chart.yaml` or a `kustomization.yaml` is one [`Input::Unit`], not walked
/// further. A file named explicitly is always read. `-` is stdin.
pub fn discover(paths: &[PathBuf], excludes: &[String]) -> Result<Vec<Input>, SourceError> {
    let matcher = Arc::new(exclude_matcher(excludes)?);
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if !meta.is_dir() {
            inputs.push(Input::File(path.clone()));
            continue;
        }
        if let Some((kind, _)) = unit_file(path) {
            inputs.push(Input::Unit(kind, path.clone()));
            continue;
        }
        // Units met on the way: collected by the walk's filter, which does not descend into them.
        let units = Arc::new(std::sync::Mutex::new(Vec::new()));
        let found = Arc::clone(&units);
        let m = Arc::clone(&matcher);
        let cwd = std::env::current_dir().unwrap_or_default();
        let root = path.clone();
        let walker = ignore::WalkBuilder::new(path)
            .standard_filters(false)
            .hidden(true)
            .parents(true)
            .follow_links(true)
            .add_custom_ignore_filename(".tallyignore")
            .filter_entry(move |e| {
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                // Patterns are relative to the current directory; a path outside it is matched
                // relative to its walk root (the matcher refuses absolute paths).
                let p = e.path();
                let rel = if p.has_root() {
                    p.strip_prefix(&cwd)
                        .or_else(|_| p.strip_prefix(&root))
                        .unwrap_or(Path::new(""))
                } else {
                    p
                };
                if rel.as_os_str().is_empty() {
                    return true;
                }
                if m.matched_path_or_any_parents(rel, is_dir).is_ignore() {
                    return false;
                }
                if is_dir && let Some((kind, _)) = unit_file(p) {
                    if let Ok(mut units) = found.lock() {
                        units.push(Input::Unit(kind, p.to_path_buf()));
                    }
                    return false;
                }
                true
            })
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| SourceError::Walk {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            if entry.file_type().is_some_and(|t| t.is_file()) && is_manifest_path(entry.path()) {
                inputs.push(Input::File(entry.into_path()));
            }
        }
        if let Ok(mut units) = units.lock() {
            inputs.append(&mut units);
        }
    }
    inputs.sort();
    inputs.dedup();
    Ok(inputs)
}

fn exclude_matcher(excludes: &[String]) -> Result<Gitignore, SourceError> {
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut builder = GitignoreBuilder::new(root);
    for pattern in excludes {
        builder
            .add_line(None, pattern)
            .map_err(|e| SourceError::BadPattern {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
    }
    builder.build().map_err(|e| SourceError::BadPattern {
        pattern: excludes.join(", "),
        message: e.to_string(),
    })
}

/// A file's text, or the finding that says why it has none.
#[derive(Debug)]
pub enum SourceText {
    /// Valid UTF-8 text (a leading BOM removed).
    Text(String),
    /// Not text the gate can read.
    Unreadable(Box<Finding>),
}

/// Reads an input's bytes.
pub fn read_bytes(input: &Input) -> Result<Vec<u8>, SourceError> {
    match input {
        Input::Unit(_, path) => Err(SourceError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("a chart or kustomization is rendered, not read"),
        }),
        Input::File(path) => std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        }),
        Input::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| SourceError::Io {
                    path: STDIN_NAME.to_owned(),
                    source,
                })?;
            Ok(buf)
        }
    }
}

/// Checks bytes for being text the gate can read: UTF-8, no NUL bytes.
pub fn decode(file: &Arc<str>, bytes: Vec<u8>) -> SourceText {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return SourceText::Unreadable(Box::new(Finding::new(
            rules::ENCODING,
            Severity::Error,
            file,
            Pos::START,
            "the file is UTF-16; Kubernetes manifests must be UTF-8",
        )));
    }
    if let Some(at) = memchr_nul(&bytes) {
        let pos = position_of(&bytes[..at]);
        return SourceText::Unreadable(Box::new(Finding::new(
            rules::BINARY,
            Severity::Error,
            file,
            pos,
            "binary content (a NUL byte) in a manifest file",
        )));
    }
    let bytes = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    match String::from_utf8(bytes) {
        Ok(text) => SourceText::Text(text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let pos = position_of(&e.as_bytes()[..valid]);
            SourceText::Unreadable(Box::new(Finding::new(
                rules::ENCODING,
                Severity::Error,
                file,
                pos,
                format!(
                    "invalid UTF-8 (byte 0x{:02x}); manifests must be UTF-8",
                    e.as_bytes()[valid]
                ),
            )))
        }
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// The line and column just after `prefix` (which must be valid UTF-8 up to its end).
fn position_of(prefix: &[u8]) -> Pos {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() as u32 + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    Pos::new(line, last.chars().count() as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reports_encoding_problems_at_their_position() {
        let f: Arc<str> = Arc::from("x.yaml");
        match decode(&f, b"a: 1\nb: \xff\n".to_vec()) {
            SourceText::Unreadable(finding) => {
                assert_eq!(
                    (finding.rule, finding.pos),
                    (rules::ENCODING, Pos::new(2, 4))
                )
            }
            SourceText::Text(_) => panic!("accepted invalid UTF-8"),
        }
        match decode(&f, b"a: 1\n\0\0".to_vec()) {
            SourceText::Unreadable(finding) => assert_eq!(finding.rule, rules::BINARY),
            SourceText::Text(_) => panic!("accepted binary"),
        }
        match decode(&f, b"\xEF\xBB\xBFa: 1".to_vec()) {
            SourceText::Text(t) => assert_eq!(t, "a: 1"),
            SourceText::Unreadable(f) => panic!("{f:?}"),
        }
    }

    #[test]
    #[cfg(unix)]
    fn non_utf8_names_stay_distinct() {
        use std::os::unix::ffi::OsStrExt;
        let a = Input::File(PathBuf::from(std::ffi::OsStr::from_bytes(b"m\xfe.yaml")));
        let b = Input::File(PathBuf::from(std::ffi::OsStr::from_bytes(b"m\xff.yaml")));
        assert_eq!(a.display_name(), "m\\xfe.yaml");
        assert_ne!(a.display_name(), b.display_name());
    }

    #[test]
    fn manifest_extensions() {
        assert!(is_manifest_path(Path::new("a/b.yml")));
        assert!(is_manifest_path(Path::new("a/b.YAML")));
        assert!(is_manifest_path(Path::new("b.json")));
        assert!(!is_manifest_path(Path::new("b.txt")));
    }
}
