//! `no-latest-tag`: images pinned to a version (or a digest), not to whatever a tag points at today.

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::engine::Out;

use super::{NO_LATEST_TAG, Subject};

/// Tags that name a branch or a channel: they move.
const MOVING_TAGS: &[&str] = &[
    "main",
    "master",
    "develop",
    "devel",
    "dev",
    "development",
    "trunk",
    "head",
    "edge",
    "nightly",
    "stable",
    "unstable",
    "snapshot",
    "staging",
    "production",
    "prod",
    "testing",
    "rolling",
    "current",
];

/// How an image reference is pinned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pin<'a> {
    /// `@sha256:...`
    Digest,
    /// No tag: the runtime pulls `latest`.
    Untagged,
    /// `:latest`.
    Latest,
    /// A branch or channel tag.
    Moving(&'a str),
    /// Anything else.
    Version(&'a str),
}

/// Reads an image reference's tag (a registry's `host:port/` is not a tag).
pub(crate) fn pin(image: &str) -> Pin<'_> {
    if image.contains('@') {
        return Pin::Digest;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let Some((_, tag)) = last.rsplit_once(':') else {
        return Pin::Untagged;
    };
    let lower = tag.to_ascii_lowercase();
    if lower == "latest" {
        Pin::Latest
    } else if MOVING_TAGS.contains(&lower.as_str())
        || lower.starts_with("latest-")
        || lower.ends_with("-latest")
        || lower.ends_with("-snapshot")
    {
        Pin::Moving(tag)
    } else {
        Pin::Version(tag)
    }
}

/// Untagged or `:latest` images (error), branch-like tags (warning).
pub(crate) fn no_latest_tag(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w.containers() {
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        if image.is_empty() {
            continue;
        }
        let at = c.ptr("/image");
        match pin(image) {
            Pin::Digest | Pin::Version(_) => {}
            Pin::Untagged => out.report(
                NO_LATEST_TAG,
                s.obj,
                &at,
                format!("`{image}` has no tag, so it runs whatever `latest` is when a node pulls it; pin a version (or a digest)"),
            ),
            Pin::Latest => out.report(
                NO_LATEST_TAG,
                s.obj,
                &at,
                format!("`{image}` runs whatever `latest` is when a node pulls it; nodes can end up running different code. Pin a version (or a digest)"),
            ),
            Pin::Moving(tag) => out.report_as(
                NO_LATEST_TAG,
                Severity::Warning,
                s.obj,
                &at,
                format!("tag `{tag}` of `{image}` follows a branch or channel and moves; pin a version (or a digest)"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{deployment, of};

    #[test]
    fn pins() {
        assert_eq!(pin("nginx"), Pin::Untagged);
        assert_eq!(pin("localhost:5000/app"), Pin::Untagged);
        assert_eq!(pin("nginx:latest"), Pin::Latest);
        assert_eq!(pin("ghcr.io/x/app:main"), Pin::Moving("main"));
        assert_eq!(pin("app:latest-alpine"), Pin::Moving("latest-alpine"));
        assert_eq!(pin("nginx:1.27.1"), Pin::Version("1.27.1"));
        assert_eq!(pin("localhost:5000/app:2.0"), Pin::Version("2.0"));
        assert_eq!(pin("nginx@sha256:abcd"), Pin::Digest);
        assert_eq!(pin("nginx:latest@sha256:abcd"), Pin::Digest);
    }

    #[test]
    fn findings_per_container_list() {
        let d = deployment(
            "      initContainers:
        - {name: init, image: busybox}
      containers:
        - name: app
          image: registry.example.com/app:develop
        - name: proxy
          image: envoyproxy/envoy:v1.31.0
",
        );
        let f = of(NO_LATEST_TAG, &d);
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.pos.line, f.pos.column, f.severity))
            .collect();
        assert_eq!(
            got,
            [(15, 24, Severity::Error), (18, 11, Severity::Warning)]
        );
    }
}
