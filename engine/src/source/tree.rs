//! A working tree as a source (`tally run --path`): a digest of its files stands for the commit
//! ([`tree_digest`]), and a change in it triggers a reconcile at once ([`watch`]), through the
//! channel the webhook's pushes take, instead of waiting for the interval.
//!
//! Filesystem notifications (inotify on Linux) are debounced: an editor's save or a `git checkout`
//! is a burst of events, and the reconcile starts once the tree has been quiet for a moment.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::daemon::Trigger;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the tree must be quiet after a change before the reconcile starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// A running watch; dropping it stops the notifications.
pub struct TreeWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `root` recursively; each burst of relevant changes sends one [`Trigger`] (with an
/// empty commit: a working tree has none) on `triggers`. Must be called inside the runtime.
/// Fails when notifications cannot be had (e.g. the inotify watch limit is reached).
pub fn watch(
    root: &Path,
    triggers: mpsc::Sender<Trigger>,
    debounce: Duration,
) -> Result<TreeWatch, notify::Error> {
    let (changed, mut changes) = mpsc::unbounded_channel::<()>();
    // Events name paths as the watch was given; a canonical root makes them comparable.
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let base = root.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            Ok(e) => {
                // A lost event (queue overflow) could be any change.
                e.need_rescan()
                    || (!matches!(e.kind, EventKind::Access(_))
                        && e.paths.iter().any(|p| is_tracked(&base, p)))
            }
            Err(_) => true,
        };
        if relevant {
            let _ = changed.send(());
        }
    })?;
    watcher.watch(&root, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Wait until nothing has changed for `debounce`.
            loop {
                match tokio::time::timeout(debounce, changes.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let trigger = Trigger {
                commit: String::new(),
                delivery: None,
            };
            // Full: a reconcile is already due and will read the tree as it is then.
            if let Err(mpsc::error::TrySendError::Closed(_)) = triggers.try_send(trigger) {
                return;
            }
        }
    });
    Ok(TreeWatch { _watcher: watcher })
}

/// Whether a change to `path` can change what the daemon reads: not under a directory or file
/// whose name starts with a dot (`.git/`, `.#file` locks, `.file.swp`), which the tree digest
/// skips too, and not an editor's backup or swap file (`file~`, `file.swp`, vim's `4913` probe).
pub fn is_tracked(root: &Path, path: &Path) -> bool {
    let relative: PathBuf = match path.strip_prefix(root) {
        Ok(r) => r.to_path_buf(),
        // Paths come from the watch on `root`; one outside it is ignored.
        Err(_) => return false,
    };
    let mut names = relative.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
        _ => None,
    });
    if names.any(|n| n.starts_with('.')) {
        return false;
    }
    let Some(name) = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        // The root itself.
        return true;
    };
    !(name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with(".swx")
        || name == "4913")
}

/// A digest of a working tree's files (hidden entries skipped), standing in for a commit id
/// when the source is a plain directory: it changes exactly when a file does.
pub fn tree_digest(root: &Path) -> std::io::Result<String> {
    use std::hash::{DefaultHasher, Hasher};
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files)?;
            } else {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    // SipHash with fixed keys: the same tree gives the same digest in every process.
    let mut h = DefaultHasher::new();
    for f in files {
        h.write(
            f.strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.write(&std::fs::read(&f)?);
    }
    Ok(format!("tree-{:016x}", h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_digests_follow_content() {
        let dir = std::env::temp_dir().join(format!("tally-digest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("a/x.yaml"), "a: 1").unwrap_or_else(|e| panic!("{e}"));
        let first = tree_digest(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, tree_digest(&dir).unwrap_or_else(|e| panic!("{e}")));
        std::fs::write(dir.join("a/x.yaml"), "a: 2").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, tree_digest(&dir).unwrap_or_else(|e| panic!("{e}")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn editor_files_and_dot_directories_are_not_changes() {
        let root = Path::new("/repo");
        let tracked = |p: &str| is_tracked(root, Path::new(p));
        assert!(tracked("/repo/apps/api/manifests/api.yaml"));
        assert!(tracked("/repo/tally.yaml"));
        assert!(tracked("/repo/apps"));
        assert!(tracked("/repo"));
        assert!(!tracked("/repo/.git/index"));
        assert!(!tracked("/repo/.git/objects/ab/cdef"));
        assert!(!tracked("/repo/apps/.api.yaml.swp"));
        assert!(!tracked("/repo/apps/.#api.yaml"));
        assert!(!tracked("/repo/apps/api.yaml~"));
        assert!(!tracked("/repo/apps/api.yaml.swp"));
        assert!(!tracked("/repo/apps/4913"));
        assert!(!tracked("/elsewhere/x.yaml"));
    }
}
