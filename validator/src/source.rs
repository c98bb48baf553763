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
    /// A file that cannot be read: a dangling link, a link loop, no permission, or not a
    /// regular file (a FIFO, a device, a socket), which is never opened.
    pub const UNREADABLE: &str = "file-unreadable";
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
    /// A path met on the way that cannot be read (a dangling link, a link loop, a directory
    /// without permission): one `file-unreadable` finding, and the run goes on.
    Broken(PathBuf, String),
}

impl Input {
    /// The name findings use for this input.
    pub fn display_name(&self) -> String {
        match self {
            Input::File(p) | Input::Unit(_, p) | Input::Broken(p, _) => path_name(p),
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
        // A path that does not exist is a mistake on the command line (exit 2); anything else
        // that cannot be read (a dangling link, a loop, no permission) is the file's finding.
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => match std::fs::symlink_metadata(path) {
                Ok(_) => {
                    inputs.push(Input::Broken(path.clone(), describe_io(&e)));
                    continue;
                }
                Err(source) => {
                    return Err(SourceError::Io {
                        path: path_name(path),
                        source,
                    });
                }
            },
        };
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
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // One entry that cannot be walked (a loop, a dangling link, a directory
                    // without permission) is its own finding; the walk goes on.
                    let at = walk_error_path(&e).unwrap_or_else(|| path.clone());
                    if is_walk_loop(&e) || is_manifest_path(&at) || at.extension().is_none() {
                        inputs.push(Input::Broken(at, walk_error_message(&e)));
                    }
                    continue;
                }
            };
            // Every manifest-named entry that is not a directory is read (or reported: a FIFO,
            // a device or a socket named `.yaml` is a finding, never opened).
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if !is_dir && is_manifest_path(entry.path()) {
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

/// The path an error of the walk is about, when it names one.
fn walk_error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error_path(err)
        }
        ignore::Error::Partial(errs) => errs.iter().find_map(walk_error_path),
        _ => None,
    }
}

/// Whether the walk met a directory link back to one of its ancestors.
fn is_walk_loop(e: &ignore::Error) -> bool {
    match e {
        ignore::Error::Loop { .. } => true,
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => is_walk_loop(err),
        _ => false,
    }
}

/// What went wrong in the walk, without the path (the finding names it).
fn walk_error_message(e: &ignore::Error) -> String {
    match e {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => walk_error_message(err),
        ignore::Error::Loop { ancestor, .. } => format!(
            "a symbolic link loop (back to {})",
            crate::text::escape(&path_name(ancestor))
        ),
        ignore::Error::Io(io) => describe_io(io),
        other => other.to_string(),
    }
}

/// An I/O error as a person reads it.
fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "a dangling symbolic link (its target does not exist)".to_owned(),
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ if is_loop(e) => "a symbolic link loop".to_owned(),
        _ => e.to_string(),
    }
}

/// Whether an I/O error is ELOOP (too many levels of symbolic links).
fn is_loop(e: &std::io::Error) -> bool {
    // ErrorKind::FilesystemLoop is not stable yet; ELOOP is 40 on Linux.
    cfg!(target_os = "linux") && e.raw_os_error() == Some(40)
}

/// Reads an input's bytes, or says in a finding why it cannot be read. Only regular files are
/// opened: a FIFO, a device or a socket is reported from its metadata, so none can block the run.
/// At most `max_bytes + 1` bytes are read (a longer input is the caller's finding), so neither a
/// file that grows nor an endless stdin can exhaust memory.
pub fn read_input(input: &Input, name: &Arc<str>, max_bytes: u64) -> Result<Vec<u8>, Box<Finding>> {
    let unreadable = |message: String| {
        Box::new(Finding::new(
            rules::UNREADABLE,
            Severity::Error,
            name,
            Pos::START,
            format!("cannot read this file: {message}"),
        ))
    };
    match input {
        Input::Broken(_, reason) => Err(unreadable(reason.clone())),
        Input::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| unreadable(describe_io(&e)))?;
            if !meta.is_file() {
                return Err(unreadable(not_regular(&meta)));
            }
            let file = std::fs::File::open(path).map_err(|e| unreadable(describe_io(&e)))?;
            read_at_most(file, max_bytes, meta.len()).map_err(|e| unreadable(describe_io(&e)))
        }
        Input::Stdin => read_at_most(std::io::stdin().lock(), max_bytes, 0)
            .map_err(|e| unreadable(describe_io(&e))),
        Input::Unit(..) => Err(unreadable(
            "a chart or kustomization is rendered, not read".to_owned(),
        )),
    }
}

fn read_at_most(reader: impl Read, max_bytes: u64, expected: u64) -> std::io::Result<Vec<u8>> {
    let limit = max_bytes.saturating_add(1);
    let mut buf = Vec::with_capacity(expected.min(limit) as usize);
    reader.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// What a path that is not a regular file is.
fn not_regular(meta: &std::fs::Metadata) -> String {
    let what = {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_fifo() {
                "a FIFO (named pipe)"
            } else if t.is_socket() {
                "a socket"
            } else if t.is_block_device() || t.is_char_device() {
                "a device"
            } else if t.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            }
        }
        #[cfg(not(unix))]
        {
            if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            }
        }
    };
    format!("{what}, not a regular file; it was not opened")
}

/// A file's text, or the finding that says why it has none.
#[derive(Debug)]
pub enum SourceText {
    /// Valid UTF-8 text (a leading BOM removed).
    Text(String),
    /// Some documents are not text: `text` has them blanked (see [`decode`]), `shown` is the
    /// whole file for quoting (bad bytes as U+FFFD), `findings` say which and why.
    Partly {
        /// The text to parse.
        text: String,
        /// The text to quote in reports.
        shown: String,
        /// One finding per document that is not text.
        findings: Vec<Finding>,
    },
    /// Not text the gate can read.
    Unreadable(Box<Finding>),
}

/// Checks bytes for being text the gate can read: UTF-8, no NUL bytes.
///
/// A document (between `---` markers) with a NUL byte or invalid UTF-8 costs only itself: it gets
/// one finding at its first bad byte and is blanked (its lines kept, empty, so the other
/// documents keep their line numbers); the file's other documents are read as usual.
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
    let mut bytes = bytes;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    if !bytes.contains(&0) {
        match String::from_utf8(bytes) {
            Ok(text) => return SourceText::Text(text),
            Err(e) => bytes = e.into_bytes(),
        }
    }
    let mut text = String::with_capacity(bytes.len());
    let mut findings = Vec::new();
    let mut line = 1u32;
    for chunk in split_document_bytes(&bytes) {
        let bad = match chunk.iter().position(|&b| b == 0) {
            Some(at) => Some((at, rules::BINARY, "binary content (a NUL byte) in a manifest file".to_owned())),
            None => std::str::from_utf8(chunk).err().map(|e| {
                let at = e.valid_up_to();
                let msg = format!(
                    "invalid UTF-8 (byte 0x{:02x}); manifests must be UTF-8; this document was not read",
                    chunk[at]
                );
                (at, rules::ENCODING, msg)
            }),
        };
        let lines = chunk.iter().filter(|&&b| b == b'\n').count() as u32;
        match bad {
            None => text.push_str(std::str::from_utf8(chunk).unwrap_or_default()),
            Some((at, rule, message)) => {
                let pos = position_of(&chunk[..at]);
                let pos = Pos::new(pos.line + line - 1, pos.column);
                findings.push(Finding::new(rule, Severity::Error, file, pos, message));
                // Keep the marker line (it separates documents) and the line count.
                if chunk.starts_with(b"---") {
                    text.push_str("---");
                }
                text.extend(std::iter::repeat_n('\n', lines as usize));
            }
        }
        line += lines;
    }
    let shown = String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}");
    SourceText::Partly {
        text,
        shown,
        findings,
    }
}

/// Splits bytes at document markers (`---` at the start of a line, then a space or the line's
/// end); each chunk starts with its marker line.
fn split_document_bytes(bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let marker = line.starts_with(b"---")
            && line
                .get(3)
                .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        if marker && offset > start {
            chunks.push(&bytes[start..offset]);
            start = offset;
        }
        offset += line.len();
    }
    if start < bytes.len() || chunks.is_empty() {
        chunks.push(&bytes[start..]);
    }
    chunks
}

/// The line and column just after `prefix`.
fn position_of(prefix: &[u8]) -> Pos {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let last = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(prefix, |i| &prefix[i + 1..]);
    Pos::new(
        line,
        String::from_utf8_lossy(last).chars().count() as u32 + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parse text and the findings' rules and positions of a decoding.
    fn decoded(bytes: &[u8]) -> (String, Vec<(&'static str, Pos)>) {
        let f: Arc<str> = Arc::from("x.yaml");
        match decode(&f, bytes.to_vec()) {
            SourceText::Text(t) => (t, Vec::new()),
            SourceText::Partly { text, findings, .. } => {
                (text, findings.iter().map(|f| (f.rule, f.pos)).collect())
            }
            SourceText::Unreadable(f) => (String::new(), vec![(f.rule, f.pos)]),
        }
    }

    #[test]
    fn decode_reports_encoding_problems_at_their_position() {
        let (text, found) = decoded(b"a: 1\nb: \xff\n");
        assert_eq!(found, [(rules::ENCODING, Pos::new(2, 4))]);
        assert_eq!(text, "\n\n");
        let (_, found) = decoded(b"a: 1\n\0\0");
        assert_eq!(found, [(rules::BINARY, Pos::new(2, 1))]);
        assert_eq!(decoded(b"\xEF\xBB\xBFa: 1"), ("a: 1".into(), vec![]));
        let (_, found) = decoded(b"\xFF\xFEa\0");
        assert_eq!(found, [(rules::ENCODING, Pos::START)]);
    }

    #[test]
    fn a_bad_document_costs_only_itself() {
        let (text, found) = decoded(b"a: 1\n---\nb: \xff\nc: 2\n---\nd: \0\n---\ne: 5\n");
        assert_eq!(
            found,
            [
                (rules::ENCODING, Pos::new(3, 4)),
                (rules::BINARY, Pos::new(6, 4))
            ]
        );
        // The good documents keep their lines; the bad ones are empty documents.
        assert_eq!(text, "a: 1\n---\n\n\n---\n\n---\ne: 5\n");
    }

    #[cfg(unix)]
    fn read(input: &Input) -> Result<Vec<u8>, String> {
        let name: Arc<str> = Arc::from(input.display_name());
        read_input(input, &name, u64::MAX).map_err(|f| format!("{}: {}", f.rule, f.message))
    }

    #[test]
    #[cfg(unix)]
    fn unreadable_files_are_findings_and_fifos_are_never_opened() {
        let dir = std::env::temp_dir().join(format!("tally-unreadable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::os::unix::fs::symlink(dir.join("nowhere.yaml"), dir.join("dangling.yaml"))
            .expect("link");
        std::os::unix::fs::symlink(dir.join("loop-b.yaml"), dir.join("loop-a.yaml")).expect("link");
        std::os::unix::fs::symlink(dir.join("loop-a.yaml"), dir.join("loop-b.yaml")).expect("link");
        let fifo = dir.join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        std::fs::write(dir.join("good.yaml"), "a: 1\n").expect("write");
        // The walk goes on past every one of them.
        let inputs = discover(std::slice::from_ref(&dir), &[]).expect("a walk never fails");
        let names: Vec<String> = inputs
            .iter()
            .map(|i| i.display_name().rsplit('/').next().unwrap_or("").to_owned())
            .collect();
        assert!(names.contains(&"good.yaml".to_owned()), "{names:?}");
        assert!(names.contains(&"dangling.yaml".to_owned()), "{names:?}");
        assert!(names.contains(&"loop-a.yaml".to_owned()), "{names:?}");
        let outcome = |name: &str| {
            let input = inputs
                .iter()
                .find(|i| i.display_name().ends_with(name))
                .cloned()
                .unwrap_or(Input::File(dir.join(name)));
            read(&input)
        };
        assert_eq!(outcome("good.yaml"), Ok(b"a: 1\n".to_vec()));
        let dangling = outcome("dangling.yaml").unwrap_err();
        assert!(dangling.starts_with("file-unreadable"), "{dangling}");
        assert!(dangling.contains("dangling"), "{dangling}");
        assert!(outcome("loop-a.yaml").unwrap_err().contains("loop"));
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO with no writer would block forever: it is never opened.
            let err = outcome("pipe.yaml").unwrap_err();
            assert!(err.contains("FIFO"), "{err}");
        }
        // Named on the command line, they are findings too; a missing path stays a usage error.
        let named = discover(&[dir.join("dangling.yaml")], &[]).expect("a finding, not an error");
        assert!(matches!(&named[..], [Input::Broken(..)]), "{named:?}");
        assert!(discover(&[dir.join("missing.yaml")], &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
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
