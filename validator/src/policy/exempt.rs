//! Exemptions: silencing a rule on purpose, always with a reason, never silently.
//!
//! Two ways: on the object, with annotations
//! `tally.dev/exempt: "rule-a,rule-b"` and `tally.dev/exempt-reason: "..."`; or in `tally.yaml`,
//! by path glob, namespace, kind and name. An exempted finding stays in the report, marked with
//! who exempted it and why; it does not count towards `--fail-on`. An annotation without a reason
//! exempts nothing and is itself a finding.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::finding::{Exemption, Severity};
use crate::object::Object;

use super::catalog::Catalog;
use super::config::ConfigExemption;
use super::engine::Out;
use super::rules;

/// The annotation that lists exempted rule ids, comma-separated.
pub const EXEMPT_ANNOTATION: &str = "tally.dev/exempt";
/// The annotation that says why.
pub const EXEMPT_REASON_ANNOTATION: &str = "tally.dev/exempt-reason";

const EXEMPT_POINTER: &str = "/metadata/annotations/tally.dev~1exempt";

/// The rule ids an object's annotation exempts, with its reason, when both are present.
fn annotation(obj: &Object) -> Option<(&str, &str)> {
    let rules = obj.annotation(EXEMPT_ANNOTATION)?;
    let reason = obj.annotation(EXEMPT_REASON_ANNOTATION)?.trim();
    (!reason.is_empty()).then_some((rules, reason))
}

fn ids(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Findings about an object's exemption annotations: a missing reason, unknown rule ids.
pub(crate) fn check_annotations(obj: &Object, out: &mut Out<'_>) {
    let Some(annotations) = obj
        .value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let Some(list) = annotations.get(EXEMPT_ANNOTATION) else {
        return;
    };
    let Some(list) = list.as_str() else {
        out.report(
            rules::EXEMPTION_MISSING_REASON,
            obj,
            EXEMPT_POINTER,
            "`tally.dev/exempt` must be a string of comma-separated rule ids",
        );
        return;
    };
    let reason = annotations
        .get(EXEMPT_REASON_ANNOTATION)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if reason.is_empty() {
        out.report(
            rules::EXEMPTION_MISSING_REASON,
            obj,
            EXEMPT_POINTER,
            format!(
                "`tally.dev/exempt: \"{list}\"` has no `tally.dev/exempt-reason`, so it exempts nothing; say why the rules do not apply"
            ),
        );
    }
    let catalog = Catalog::builtin();
    let mut empty = true;
    for id in ids(list) {
        empty = false;
        match catalog.rule(id) {
            Some(r) if r.category != "engine" => {}
            Some(_) => out.report_as(
                rules::EXEMPTION_UNKNOWN_RULE,
                Severity::Warning,
                obj,
                EXEMPT_POINTER,
                format!(
                    "`{id}` cannot be exempted: it reports problems with exemptions themselves"
                ),
            ),
            None => {
                let hint = catalog
                    .suggest(id)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                out.report(
                    rules::EXEMPTION_UNKNOWN_RULE,
                    obj,
                    EXEMPT_POINTER,
                    format!("`tally.dev/exempt` names unknown rule `{id}`{hint}"),
                );
            }
        }
    }
    if empty {
        out.report(
            rules::EXEMPTION_UNKNOWN_RULE,
            obj,
            EXEMPT_POINTER,
            "`tally.dev/exempt` names no rule",
        );
    }
}

/// The annotation listing fields tally leaves to others once an object exists.
const IGNORE_FIELDS_ANNOTATION: &str = "tally.dev/ignore-fields";
const IGNORE_FIELDS_POINTER: &str = "/metadata/annotations/tally.dev~1ignore-fields";

/// Findings about `tally.dev/ignore-fields`: every entry (separated by commas or new lines) must
/// be a JSON pointer (RFC 6901: `/spec/replicas`, `~1` for `/` and `~0` for `~` in a key). The
/// engine ignores any other entry, so a typo would leave tally fighting the field's owner
/// without a word.
pub(crate) fn check_ignore_fields(obj: &Object, out: &mut Out<'_>) {
    let Some(value) = obj
        .value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(IGNORE_FIELDS_ANNOTATION))
    else {
        return;
    };
    let Some(list) = value.as_str() else {
        out.report(
            rules::IGNORE_FIELDS_POINTER,
            obj,
            IGNORE_FIELDS_POINTER,
            "`tally.dev/ignore-fields` must be a string of JSON pointers separated by commas",
        );
        return;
    };
    for entry in list
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if let Some(why) = pointer_error(entry) {
            out.report(
                rules::IGNORE_FIELDS_POINTER,
                obj,
                IGNORE_FIELDS_POINTER,
                format!(
                    "`{entry}` in `tally.dev/ignore-fields` is not a JSON pointer ({why}), so tally would keep setting that field; write it as `/spec/replicas`"
                ),
            );
        }
    }
}

/// Why `text` is not a JSON pointer, if it is not.
fn pointer_error(text: &str) -> Option<&'static str> {
    if !text.starts_with('/') {
        return Some("it does not start with `/`");
    }
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Some("`~` is followed by neither 0 nor 1");
        }
    }
    None
}

/// Matches findings against configured exemptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exempter {
    exemptions: Vec<ConfigExemption>,
    /// The configuration's display name, for the exemption's source.
    config_file: String,
    /// Absolute, normalized directory of the configuration (path globs are relative to it).
    base: Option<PathBuf>,
    /// Absolute current directory, to make relative input paths absolute.
    cwd: Option<PathBuf>,
}

impl Exempter {
    pub(crate) fn new(
        exemptions: Vec<ConfigExemption>,
        config_file: Option<&str>,
        base_dir: Option<&Path>,
    ) -> Exempter {
        let cwd = std::env::current_dir().ok();
        let base = base_dir.map(|b| match &cwd {
            Some(cwd) if b.is_relative() => normalize(&cwd.join(b)),
            _ => normalize(b),
        });
        Exempter {
            exemptions,
            config_file: config_file.unwrap_or("tally.yaml").to_owned(),
            base,
            cwd,
        }
    }

    /// The exemption for a finding of `rule` about `obj`, when one applies. Annotations count
    /// only when `annotation_ok` (findings about a namespace are anchored on an object that may
    /// not speak for the namespace).
    pub(crate) fn exemption(
        &self,
        rule: &str,
        obj: &Object,
        annotation_ok: bool,
    ) -> Option<Exemption> {
        if annotation_ok
            && let Some((list, reason)) = annotation(obj)
            && ids(list).any(|id| id == rule)
        {
            return Some(Exemption {
                source: format!("annotation {EXEMPT_ANNOTATION}"),
                reason: reason.to_owned(),
            });
        }
        let e = self
            .exemptions
            .iter()
            .find(|e| e.covers_rule(rule) && self.selects(e, obj))?;
        Some(Exemption {
            source: format!(
                "{} policies.exemptions[{}] (line {})",
                self.config_file, e.index, e.pos.line
            ),
            reason: e.reason.clone(),
        })
    }

    fn selects(&self, e: &ConfigExemption, obj: &Object) -> bool {
        let id = &obj.id;
        let any = |patterns: &[super::config::NamePattern], text: &str| {
            patterns.is_empty() || patterns.iter().any(|p| p.matches(text))
        };
        if !any(&e.kinds, &id.kind) || !any(&e.names, &id.name) {
            return false;
        }
        if !e.namespaces.is_empty() {
            match id.namespace.as_deref() {
                Some(ns) if any(&e.namespaces, ns) => {}
                _ => return false,
            }
        }
        match &e.paths {
            None => true,
            Some(globs) => self
                .candidates(&obj.provenance.file)
                .iter()
                .any(|p| globs.is_match(p)),
        }
    }

    /// The ways a finding's file may be written relative to the configuration's directory.
    fn candidates(&self, file: &str) -> Vec<PathBuf> {
        let raw = Path::new(file);
        let mut out = vec![raw.strip_prefix(".").unwrap_or(raw).to_owned()];
        if let Some(base) = &self.base {
            let abs = match &self.cwd {
                Some(cwd) if raw.is_relative() => normalize(&cwd.join(raw)),
                _ => normalize(raw),
            };
            if let Ok(rel) = abs.strip_prefix(base) {
                out.push(rel.to_owned());
            }
        }
        out
    }
}

/// Removes `.` and resolves `..` lexically (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{findings_with, rules_of};
    use std::sync::Arc;

    const PRIVILEGED: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: monitoring
  annotations:
    tally.dev/exempt: privileged-container, host-path
    tally.dev/exempt-reason: the agent loads eBPF programs (SEC-12)
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
        - name: agent
          image: agent:1.0.0
          securityContext:
            privileged: true
";

    #[test]
    fn ignore_fields_entries_must_be_json_pointers() {
        let manifest = "apiVersion: v1
kind: ConfigMap
metadata:
  name: flags
  namespace: shop
  annotations:
    tally.dev/ignore-fields: /data/mode, spec.replicas, /data/a~2b, /data/a~1b
data: {mode: a}
";
        let all = findings_with(&PolicyConfig::default(), &[("a.yaml", manifest)]);
        let found: Vec<_> = all
            .iter()
            .filter(|f| f.rule == rules::IGNORE_FIELDS_POINTER)
            .collect();
        assert_eq!(found.len(), 2, "{all:#?}");
        for entry in ["`spec.replicas`", "`/data/a~2b`"] {
            assert!(
                found.iter().any(|f| f.message.contains(entry)),
                "{found:#?}"
            );
        }
        // At the annotation's line.
        assert!(found.iter().all(|f| f.pos.line == 7), "{found:#?}");
    }

    #[test]
    fn annotation_with_reason_exempts_and_keeps_the_finding() {
        let all = findings_with(&PolicyConfig::default(), &[("a.yaml", PRIVILEGED)]);
        let f = all
            .iter()
            .find(|f| f.rule == rules::PRIVILEGED_CONTAINER)
            .unwrap_or_else(|| panic!("{all:#?}"));
        let e = f.exempted.as_ref().unwrap_or_else(|| panic!("{f:?}"));
        assert_eq!(e.reason, "the agent loads eBPF programs (SEC-12)");
        assert_eq!(e.source, "annotation tally.dev/exempt");
        assert!(!f.fails(Severity::Info));
        // Other rules still count.
        assert!(
            all.iter()
                .any(|f| f.rule == rules::READ_ONLY_ROOT_FS && f.exempted.is_none())
        );
    }

    #[test]
    fn annotation_without_reason_exempts_nothing_and_is_a_finding() {
        let text = PRIVILEGED.replace(
            "    tally.dev/exempt-reason: the agent loads eBPF programs (SEC-12)\n",
            "",
        );
        let all = findings_with(&PolicyConfig::default(), &[("a.yaml", &text)]);
        let missing: Vec<_> = all
            .iter()
            .filter(|f| f.rule == rules::EXEMPTION_MISSING_REASON)
            .collect();
        assert_eq!(missing.len(), 1);
        assert_eq!((missing[0].pos.line, missing[0].pos.column), (7, 5));
        assert!(
            all.iter()
                .filter(|f| f.rule == rules::PRIVILEGED_CONTAINER)
                .all(|f| f.exempted.is_none())
        );
    }

    #[test]
    fn unknown_ids_in_the_annotation_are_reported() {
        let text = PRIVILEGED.replace("privileged-container, host-path", "privileged-containers");
        let all = findings_with(&PolicyConfig::default(), &[("a.yaml", &text)]);
        let unknown: Vec<_> = all
            .iter()
            .filter(|f| f.rule == rules::EXEMPTION_UNKNOWN_RULE)
            .collect();
        assert_eq!(unknown.len(), 1, "{all:#?}");
        assert_eq!((unknown[0].pos.line, unknown[0].pos.column), (7, 5));
        assert!(
            unknown[0]
                .message
                .contains("did you mean `privileged-container`")
        );
    }

    #[test]
    fn config_selectors_exempt_by_namespace_kind_name_and_path() {
        let plain = PRIVILEGED
            .replace(
                "    tally.dev/exempt: privileged-container, host-path\n",
                "",
            )
            .replace(
                "    tally.dev/exempt-reason: the agent loads eBPF programs (SEC-12)\n",
                "",
            )
            .replace("  annotations:\n", "");
        let cases = [
            ("namespaces: [monitor*]\n      kinds: [DaemonSet]", true),
            ("namespaces: [other]", false),
            ("names: [node-?gent]", true),
            ("kinds: [Deployment]", false),
            ("paths: [\"deploy/**/*.yaml\"]", true),
            ("paths: [\"deploy/*.yaml\"]", false),
        ];
        for (selector, exempted) in cases {
            let cfg = format!(
                "policies:\n  exemptions:\n    - rules: [privileged-container]\n      reason: agent\n      {selector}\n"
            );
            let config =
                PolicyConfig::parse(&Arc::from("tally.yaml"), &cfg, Some(PathBuf::from(".")));
            assert!(config.findings.is_empty(), "{:?}", config.findings);
            let all = findings_with(&config, &[("deploy/agents/a.yaml", &plain)]);
            let f = all
                .iter()
                .find(|f| f.rule == rules::PRIVILEGED_CONTAINER)
                .unwrap_or_else(|| panic!("{all:#?}"));
            assert_eq!(f.exempted.is_some(), exempted, "{selector}");
            if let Some(e) = &f.exempted {
                assert_eq!(e.reason, "agent");
                assert_eq!(e.source, "tally.yaml policies.exemptions[0] (line 3)");
            }
            // Only the named rule is exempted.
            assert!(
                all.iter()
                    .filter(|f| f.rule != rules::PRIVILEGED_CONTAINER)
                    .all(|f| f.exempted.is_none())
            );
        }
    }

    #[test]
    fn disabled_rules_and_severity_overrides() {
        let cfg =
            "policies:\n  rules:\n    privileged-container: false\n    read-only-root-fs: info\n";
        let config = PolicyConfig::parse(&Arc::from("tally.yaml"), cfg, None);
        let all = findings_with(&config, &[("a.yaml", PRIVILEGED)]);
        let rules = rules_of(&all);
        assert!(!rules.contains(&rules::PRIVILEGED_CONTAINER), "{rules:?}");
        let ro = all
            .iter()
            .find(|f| f.rule == rules::READ_ONLY_ROOT_FS)
            .unwrap_or_else(|| panic!("{all:#?}"));
        assert_eq!(ro.severity, Severity::Info);
    }

    #[test]
    fn lexical_normalization() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
