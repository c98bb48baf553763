//! `tally init`: writes a working repo (the one in `examples/`) to start from.

use std::path::{Path, PathBuf};

/// Every file of the starter repo, as shipped in `examples/`.
const FILES: &[(&str, &str)] = &[
    ("tally.yaml", include_str!("../../examples/tally.yaml")),
    (
        "apps/api/app.yaml",
        include_str!("../../examples/apps/api/app.yaml"),
    ),
    (
        "apps/api/manifests/api.yaml",
        include_str!("../../examples/apps/api/manifests/api.yaml"),
    ),
    (
        "apps/ledger/app.yaml",
        include_str!("../../examples/apps/ledger/app.yaml"),
    ),
    (
        "apps/ledger/manifests/ledger.yaml",
        include_str!("../../examples/apps/ledger/manifests/ledger.yaml"),
    ),
    (
        "apps/web/app.yaml",
        include_str!("../../examples/apps/web/app.yaml"),
    ),
    (
        "apps/web/manifests/web.yaml",
        include_str!("../../examples/apps/web/manifests/web.yaml"),
    ),
    (
        "environments/production/environment.yaml",
        include_str!("../../examples/environments/production/environment.yaml"),
    ),
    (
        "environments/staging/environment.yaml",
        include_str!("../../examples/environments/staging/environment.yaml"),
    ),
    (
        "tenants/payments/tenant.yaml",
        include_str!("../../examples/tenants/payments/tenant.yaml"),
    ),
    (
        "tenants/storefront/tenant.yaml",
        include_str!("../../examples/tenants/storefront/tenant.yaml"),
    ),
];

/// Errors writing the starter repo.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The target directory already holds files.
    #[error("{0} is not empty; tally init writes only into a new or empty directory")]
    NotEmpty(String),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Writes the starter repo into `dir` (created when missing; it must be empty). Returns the
/// files written.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Io { path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(InitError::NotEmpty(dir.display().to_string()));
        }
    }
    let mut written = Vec::new();
    for (path, text) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, text).map_err(io(&target))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_example_repo_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("tally-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written = init(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.len(), FILES.len());
        assert!(dir.join("tally.yaml").is_file());
        assert!(matches!(init(&dir), Err(InitError::NotEmpty(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ships_every_file_of_the_example_repo() {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel == "broken" || rel == "compliant" {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, root, out);
                } else if rel.ends_with(".yaml") {
                    out.push(rel);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut shipped: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        shipped.sort();
        assert_eq!(shipped, on_disk, "update FILES in repo-layout/src/init.rs");
    }
}
