//! The `policies:` section of `tally.yaml` (kind `Repo`, `tally.dev/v1alpha1`): rules on or off,
//! severity overrides, and exemptions by path, namespace, kind or name, each with a reason.
//!
//! ```yaml
//! apiVersion: tally.dev/v1alpha1
//! kind: Repo
//! policies:
//!   rules:
//!     replicas-minimum: false          # off
//!     read-only-root-fs: error         # severity override
//!     job-ttl: {enabled: true, severity: warning}
//!   exemptions:
//!     - rules: [host-path, host-namespaces]
//!       reason: node-exporter reads the host's /proc and /sys (SEC-142)
//!       namespaces: [monitoring]
//!       kinds: [DaemonSet]
//!       names: [node-exporter]
//! ```
//!
//! The shape is checked against `policies/config.schema.json` (the same file editors can use),
//! with every error reported at its line; then the meaning is checked (known rule ids, valid
//! globs). Problems are findings of rule `policy-config`, never panics, and a broken entry is
//! ignored while the rest of the file still applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

use crate::finding::{Finding, Pos, Severity};
use crate::position::{PosNode, escape_segment};
use crate::yaml;

use super::catalog::Catalog;
use super::rules;

/// The configuration's file name.
pub const CONFIG_FILE: &str = "tally.yaml";

/// Finds the configuration for a run over `paths` when none is named: `tally.yaml` in the
/// current directory; otherwise the nearest `tally.yaml` in the first input path's directory or
/// one of its parents, stopping at the repository root (a directory holding `.git`).
pub fn find(paths: &[PathBuf]) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    find_from(&cwd, paths)
}

/// [`find`] from a given current directory.
pub fn find_from(cwd: &Path, paths: &[PathBuf]) -> Option<PathBuf> {
    if cwd.join(CONFIG_FILE).is_file() {
        return Some(PathBuf::from(CONFIG_FILE));
    }
    let first = paths.iter().find(|p| p.as_os_str() != "-")?;
    let first = cwd.join(first);
    let start = if first.is_dir() {
        first
    } else {
        first.parent()?.to_owned()
    };
    let start = start.canonicalize().ok()?;
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_owned());
    for dir in start.ancestors() {
        let candidate = dir.join(CONFIG_FILE);
        if candidate.is_file() {
            // Shown relative to where the user is, when it is below.
            return Some(match candidate.strip_prefix(&cwd) {
                Ok(rel) => rel.to_owned(),
                Err(_) => candidate,
            });
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    None
}

/// The JSON Schema of the `policies` section (and of `apiVersion`/`kind`).
pub const CONFIG_SCHEMA: &str = include_str!("../../../policies/config.schema.json");

/// Errors that stop a run: the configuration could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    /// The file could not be read.
    #[error("reading the configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How one rule is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleSetting {
    /// `Some(false)` turns the rule off.
    pub enabled: Option<bool>,
    /// Replaces the rule's severity for all its findings.
    pub severity: Option<Severity>,
}

/// A name pattern with `*` (any run of characters) and `?` (any one byte: one character of ASCII
/// text); every other character stands for itself (`[`, `{` and `\` too). Matching is
/// case-sensitive.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    /// `None` only for a pattern too large to compile, which matches nothing.
    regex: Option<regex::bytes::Regex>,
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NamePattern {}

impl NamePattern {
    /// A pattern from its text.
    pub fn new(pattern: impl Into<String>) -> NamePattern {
        let text = pattern.into();
        let regex = GlobBuilder::new(&glob_syntax(&text))
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .ok()
            .and_then(|glob| {
                // globset's regex for the glob, compiled here: `compile_matcher` panics on a
                // pattern over the regex size limit. Not a `GlobSet` either: its shortcuts read
                // the text as a path (`*.` would not match `..`).
                regex::bytes::RegexBuilder::new(glob.regex())
                    .dot_matches_new_line(true)
                    .build()
                    .ok()
            });
        NamePattern { text, regex }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.regex
            .as_ref()
            .is_some_and(|r| r.is_match(text.as_bytes()))
    }
}

/// A name pattern in globset's syntax: `*` and `?` stay wildcards, every other character is
/// escaped to stand for itself. A run of `*` is written as one, so that globset never sees a
/// `**` (which it gives a meaning beside `/`).
fn glob_syntax(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            // Only a wildcard `*` is ever pushed unescaped.
            '*' if glob.ends_with('*') => {}
            '*' | '?' => glob.push(c),
            '[' | ']' | '{' | '}' | '\\' => {
                glob.push('\\');
                glob.push(c);
            }
            c => glob.push(c),
        }
    }
    glob
}

/// One exemption from the configuration.
#[derive(Debug, Clone)]
pub struct ConfigExemption {
    /// Its index in `policies.exemptions`, for reports (`tally.yaml exemptions[2]`).
    pub index: usize,
    /// Where it is written.
    pub pos: Pos,
    /// Rule ids; `*` for all.
    pub rules: Vec<String>,
    /// Why.
    pub reason: String,
    /// File globs (relative to the configuration's directory), when given.
    pub paths: Option<GlobSet>,
    /// Namespace patterns; empty means any.
    pub namespaces: Vec<NamePattern>,
    /// Kind patterns; empty means any.
    pub kinds: Vec<NamePattern>,
    /// Name patterns; empty means any.
    pub names: Vec<NamePattern>,
}

impl ConfigExemption {
    /// Whether it names this rule.
    pub fn covers_rule(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r == "*" || r == rule)
    }
}

/// The policy configuration of one run. `PolicyConfig::default()` is the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    /// The file as displayed in findings; `None` for the defaults.
    pub file: Option<Arc<str>>,
    /// The file on disk, so the gate does not also read it as a manifest.
    pub path: Option<PathBuf>,
    /// The file's text, for reports that quote lines.
    pub text: Option<Arc<str>>,
    /// The directory path globs are relative to.
    pub base_dir: Option<PathBuf>,
    /// Per-rule settings, by rule id (only known ids).
    pub rules: BTreeMap<String, RuleSetting>,
    /// Exemptions, in file order.
    pub exemptions: Vec<ConfigExemption>,
    /// Problems found reading the file (rule `policy-config`, and YAML findings).
    pub findings: Vec<Finding>,
}

impl PolicyConfig {
    /// Reads `path`. Only I/O errors fail; every problem inside the file is a finding.
    pub fn load(path: &Path) -> Result<PolicyConfig, PolicyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: Arc<str> = Arc::from(path.display().to_string());
        let base = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_owned()
            }
        });
        let mut config = PolicyConfig::parse(&file, &text, base);
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Reads configuration text. Never fails: problems become findings and the entries they
    /// touch are ignored.
    pub fn parse(file: &Arc<str>, text: &str, base_dir: Option<PathBuf>) -> PolicyConfig {
        let mut config = PolicyConfig {
            file: Some(Arc::clone(file)),
            text: Some(Arc::from(text)),
            base_dir,
            ..PolicyConfig::default()
        };
        let loaded = yaml::load(file, text);
        config.findings.extend(loaded.findings);
        let mut documents = loaded.documents.into_iter().filter(|d| !d.value.is_null());
        let Some(mut doc) = documents.next() else {
            return config;
        };
        config.findings.append(&mut doc.findings);
        if let Some(extra) = documents.next() {
            let pos = extra.positions.pos();
            config.findings.push(problem(
                file,
                pos,
                "only the first YAML document of the configuration is read".into(),
            ));
        }
        let reader = Reader {
            file,
            positions: &doc.positions,
        };
        reader.read(&doc.value, &mut config);
        config
    }

    /// The setting for a rule.
    pub fn rule(&self, id: &str) -> RuleSetting {
        self.rules.get(id).copied().unwrap_or_default()
    }
}

fn problem(file: &Arc<str>, pos: Pos, message: String) -> Finding {
    Finding::new(rules::POLICY_CONFIG, Severity::Error, file, pos, message).with_help(
        "the policies section is described in docs/policies.md and policies/config.schema.json",
    )
}

fn schema() -> Option<&'static jsonschema::Validator> {
    static SCHEMA: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let value: Value = serde_json::from_str(CONFIG_SCHEMA).ok()?;
            jsonschema::validator_for(&value).ok()
        })
        .as_ref()
}

struct Reader<'a> {
    file: &'a Arc<str>,
    positions: &'a PosNode,
}

impl Reader<'_> {
    fn pos(&self, pointer: &str) -> Pos {
        self.positions.locate(pointer).best()
    }

    fn problem(&self, config: &mut PolicyConfig, pointer: &str, message: String) {
        config
            .findings
            .push(problem(self.file, self.pos(pointer), message));
    }

    fn read(&self, doc: &Value, config: &mut PolicyConfig) {
        if !doc.is_object() {
            self.problem(
                config,
                "",
                "tally.yaml must be a mapping (apiVersion: tally.dev/v1alpha1, kind: Repo, policies: ...)".into(),
            );
            return;
        }
        // Shape first: every schema error at its line; remember where they are.
        let mut broken: Vec<String> = Vec::new();
        match schema() {
            Some(validator) => {
                for error in validator.iter_errors(doc) {
                    let mut pointer = error.instance_path().as_str().to_owned();
                    // Point at the unknown key itself, not at its parent.
                    if let jsonschema::error::ValidationErrorKind::AdditionalProperties {
                        unexpected,
                    } = error.kind()
                        && let Some(first) = unexpected.first()
                    {
                        let message = describe(&error, &pointer);
                        pointer = format!("{pointer}/{}", escape_segment(first));
                        self.problem(config, &pointer, message);
                        broken.push(pointer);
                        continue;
                    }
                    let message = describe(&error, &pointer);
                    self.problem(config, &pointer, message);
                    broken.push(pointer);
                }
            }
            None => self.problem(
                config,
                "",
                "internal error: the embedded configuration schema does not compile".into(),
            ),
        }
        let is_broken = |pointer: &str| {
            broken.iter().any(|b| {
                // At the entry, inside it, or at one of its ancestors.
                b == pointer
                    || b.strip_prefix(pointer)
                        .is_some_and(|rest| rest.starts_with('/'))
                    || pointer
                        .strip_prefix(b.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        let Some(policies) = doc.get("policies") else {
            return;
        };
        if is_broken("/policies") && !policies.is_object() {
            return;
        }
        if let Some(map) = policies.get("rules").and_then(Value::as_object) {
            for (id, setting) in map {
                let pointer = format!("/policies/rules/{}", escape_segment(id));
                if is_broken(&pointer) {
                    continue;
                }
                if let Some(id) = self.known_rule(config, &pointer, id, true) {
                    config.rules.insert(id, rule_setting(setting));
                }
            }
        }
        if let Some(items) = policies.get("exemptions").and_then(Value::as_array) {
            for (index, item) in items.iter().enumerate() {
                let pointer = format!("/policies/exemptions/{index}");
                if is_broken(&pointer) {
                    continue;
                }
                if let Some(e) = self.exemption(config, &pointer, index, item) {
                    config.exemptions.push(e);
                }
            }
        }
    }

    /// Checks a rule id; returns it when it can be configured.
    fn known_rule(
        &self,
        config: &mut PolicyConfig,
        pointer: &str,
        id: &str,
        in_rules: bool,
    ) -> Option<String> {
        let catalog = Catalog::builtin();
        match catalog.rule(id) {
            Some(rule) if rule.category == "engine" => {
                let what = if in_rules { "configured" } else { "exempted" };
                self.problem(
                    config,
                    pointer,
                    format!("`{id}` reports problems with exemptions and configuration; it cannot be {what}"),
                );
                None
            }
            Some(_) => Some(id.to_owned()),
            None => {
                let hint = match catalog.suggest(id) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => "; `tally policies` lists them".into(),
                };
                self.problem(config, pointer, format!("unknown rule `{id}`{hint}"));
                None
            }
        }
    }

    fn exemption(
        &self,
        config: &mut PolicyConfig,
        pointer: &str,
        index: usize,
        item: &Value,
    ) -> Option<ConfigExemption> {
        let strings = |key: &str| -> Vec<&str> {
            item.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        let mut ok = true;
        let mut rule_ids = Vec::new();
        for (i, id) in strings("rules").into_iter().enumerate() {
            if id == "*" {
                rule_ids.push(id.to_owned());
                continue;
            }
            match self.known_rule(config, &format!("{pointer}/rules/{i}"), id, false) {
                Some(id) => rule_ids.push(id),
                None => ok = false,
            }
        }
        let mut paths = None;
        let globs = strings("paths");
        if !globs.is_empty() {
            let mut builder = GlobSetBuilder::new();
            for (i, g) in globs.iter().enumerate() {
                let pattern = g.trim_start_matches("./");
                match GlobBuilder::new(pattern).literal_separator(true).build() {
                    Ok(glob) => {
                        builder.add(glob);
                    }
                    Err(e) => {
                        ok = false;
                        let at = format!("{pointer}/paths/{i}");
                        self.problem(
                            config,
                            &at,
                            format!("invalid path glob `{g}`: {}", e.kind()),
                        );
                    }
                }
            }
            match builder.build() {
                Ok(set) => paths = Some(set),
                Err(e) => {
                    ok = false;
                    self.problem(
                        config,
                        &format!("{pointer}/paths"),
                        format!("invalid path globs: {e}"),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        let patterns = |key: &str| strings(key).into_iter().map(NamePattern::new).collect();
        Some(ConfigExemption {
            index,
            pos: self.pos(pointer),
            rules: rule_ids,
            reason: item
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned(),
            paths,
            namespaces: patterns("namespaces"),
            kinds: patterns("kinds"),
            names: patterns("names"),
        })
    }
}

fn rule_setting(v: &Value) -> RuleSetting {
    match v {
        Value::Bool(b) => RuleSetting {
            enabled: Some(*b),
            severity: None,
        },
        Value::String(s) if s == "off" => RuleSetting {
            enabled: Some(false),
            severity: None,
        },
        Value::String(s) => RuleSetting {
            enabled: Some(true),
            severity: Severity::parse(s),
        },
        Value::Object(m) => RuleSetting {
            enabled: m.get("enabled").and_then(Value::as_bool),
            severity: m
                .get("severity")
                .and_then(Value::as_str)
                .and_then(Severity::parse),
        },
        _ => RuleSetting::default(),
    }
}

/// A message for one schema error that speaks the configuration's language.
fn describe(error: &jsonschema::ValidationError<'_>, pointer: &str) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    let field = pointer.rsplit('/').next().unwrap_or("");
    let in_exemption = pointer.starts_with("/policies/exemptions/");
    match error.kind() {
        K::AdditionalProperties { unexpected } => {
            let known: &[&str] = if pointer == "/policies" {
                &["rules", "exemptions"]
            } else if in_exemption {
                &["rules", "reason", "paths", "namespaces", "kinds", "names"]
            } else {
                &["enabled", "severity"]
            };
            let names: Vec<String> = unexpected.iter().map(|u| format!("`{u}`")).collect();
            let hint = unexpected
                .first()
                .and_then(|u| closest(u, known))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!(" (known: {})", known.join(", ")));
            format!("unknown field {}{hint}", names.join(", "))
        }
        K::Required { property } if in_exemption => match property.as_str() {
            Some("reason") => {
                "an exemption needs a `reason`: it is shown beside every finding it exempts".into()
            }
            Some(p) => format!("an exemption needs `{p}`"),
            None => error.to_string(),
        },
        K::AnyOf { .. } if in_exemption => {
            "an exemption needs at least one selector: `paths`, `namespaces`, `kinds` or `names` (to turn a rule off everywhere, set `policies.rules.<id>: false`)".into()
        }
        K::OneOfNotValid { .. } if pointer.starts_with("/policies/rules/") => format!(
            "rule `{field}`: expected `false` (off), `true`, a severity (`error`, `warning`, `info`) or `{{enabled: ..., severity: ...}}`"
        ),
        K::Pattern { .. } if field == "reason" => {
            "the exemption's `reason` is empty; say why the rule does not apply".into()
        }
        K::Constant { expected_value } => format!(
            "`{field}` must be {expected_value} for the policies section to be read by this version of tally"
        ),
        _ => {
            let at = if pointer.is_empty() { "the file" } else { pointer };
            format!("{at}: {error}")
        }
    }
}

fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    // Cheap similarity for short field names: shared prefix of three or more.
    known
        .iter()
        .copied()
        .find(|k| match (word.get(..3), k.get(..3)) {
            (Some(w), Some(k)) => w.eq_ignore_ascii_case(k),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_with_wide_characters_do_not_panic() {
        assert_eq!(closest("señal", &["severity"]), None);
        assert_eq!(closest("ñ", &["severity"]), None);
        assert_eq!(closest("sev", &["severity"]), Some("severity"));
    }

    fn parse(text: &str) -> PolicyConfig {
        PolicyConfig::parse(&Arc::from("tally.yaml"), text, Some(PathBuf::from(".")))
    }

    fn problems(c: &PolicyConfig) -> Vec<(u32, u32, String)> {
        let mut all: Vec<_> = c
            .findings
            .iter()
            .map(|f| (f.pos.line, f.pos.column, f.message.clone()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn schema_compiles() {
        assert!(schema().is_some());
    }

    #[test]
    fn rule_settings_in_every_form() {
        let c = parse(
            "apiVersion: tally.dev/v1alpha1\nkind: Repo\npolicies:\n  rules:\n    replicas-minimum: false\n    read-only-root-fs: error\n    job-ttl: {enabled: true, severity: warning}\n    pdb-exists: true\n",
        );
        assert!(c.findings.is_empty(), "{:?}", problems(&c));
        assert_eq!(c.rule("replicas-minimum").enabled, Some(false));
        assert_eq!(c.rule("read-only-root-fs").severity, Some(Severity::Error));
        assert_eq!(
            c.rule("job-ttl"),
            RuleSetting {
                enabled: Some(true),
                severity: Some(Severity::Warning)
            }
        );
        assert_eq!(c.rule("pdb-exists").enabled, Some(true));
        assert_eq!(c.rule("no-bare-pod"), RuleSetting::default());
    }

    #[test]
    fn problems_are_findings_at_their_lines_and_the_rest_applies() {
        let c = parse(
            "apiVersion: tally.dev/v1alpha1\nkind: Repo\npolicies:\n  rules:\n    no-latest-tags: false\n    job-ttl: loud\n    pdb-exists: info\n    exemption-missing-reason: false\n  exemptions:\n    - rules: [host-path]\n      namespaces: [monitoring]\n    - rules: [host-path]\n      reason: node agent\n    - rules: [host-paths]\n      reason: x\n      kinds: [DaemonSet]\n    - rules: [docker-socket]\n      reason: ci runner builds images\n      names: [runner-*]\n      paths: [\"ci/[\"]\n    - rules: [docker-socket]\n      reason: ci runner builds images\n      names: [runner-*]\n  exemption: []\n",
        );
        let got = problems(&c);
        let lines: Vec<u32> = got.iter().map(|p| p.0).collect();
        assert_eq!(lines, [5, 6, 8, 10, 12, 14, 20, 24], "{got:#?}");
        assert!(
            got[0].2.contains("did you mean `no-latest-tag`"),
            "{}",
            got[0].2
        );
        assert!(got[1].2.contains("rule `job-ttl`"), "{}", got[1].2);
        assert!(got[2].2.contains("cannot be configured"), "{}", got[2].2);
        assert!(got[3].2.contains("needs a `reason`"), "{}", got[3].2);
        assert!(got[4].2.contains("at least one selector"), "{}", got[4].2);
        assert!(
            got[5].2.contains("did you mean `host-path`"),
            "{}",
            got[5].2
        );
        assert!(got[6].2.contains("invalid path glob"), "{}", got[6].2);
        assert!(
            got[7].2.contains("unknown field `exemption`"),
            "{}",
            got[7].2
        );
        assert!(c.findings.iter().all(|f| f.rule == rules::POLICY_CONFIG));
        // What was valid still applies.
        assert_eq!(c.rule("pdb-exists").severity, Some(Severity::Info));
        assert_eq!(c.exemptions.len(), 1);
        assert_eq!(c.exemptions[0].index, 4);
        assert!(c.exemptions[0].names[0].matches("runner-7"));
    }

    #[test]
    fn wrong_kind_bad_yaml_and_empty_files() {
        let c = parse("apiVersion: tally.dev/v1\nkind: Environment\n");
        assert_eq!(c.findings.len(), 2, "{:?}", problems(&c));
        let c = parse("policies: [\n");
        assert!(!c.findings.is_empty());
        assert!(c.rules.is_empty());
        let c = parse("# nothing yet\n");
        assert!(c.findings.is_empty());
        let c = parse("- a\n");
        assert_eq!(c.findings.len(), 1);
    }

    #[test]
    fn finding_the_configuration() {
        let root = std::env::temp_dir().join(format!("tally-config-{}", std::process::id()));
        let app = root.join("repo/apps/web");
        std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("repo/.git")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("tally.yaml"), "").unwrap_or_else(|e| panic!("{e}"));
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap_or_else(|e| panic!("{e}"));
        // Above the repository root: not found.
        assert_eq!(find_from(&elsewhere, std::slice::from_ref(&app)), None);
        std::fs::write(root.join("repo/tally.yaml"), "").unwrap_or_else(|e| panic!("{e}"));
        let found = find_from(&elsewhere, &[app.join("deploy.yaml")]);
        assert_eq!(
            found.and_then(|p| p.canonicalize().ok()),
            root.join("repo/tally.yaml").canonicalize().ok()
        );
        // Relative to the current directory when below it.
        assert_eq!(
            find_from(&root.join("repo"), &[PathBuf::from("apps/web")]),
            Some(PathBuf::from("tally.yaml"))
        );
        assert_eq!(
            find_from(&root, &[PathBuf::from("repo/apps/web")]),
            Some(PathBuf::from("tally.yaml"))
        );
        std::fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn wildcards() {
        let p = NamePattern::new("web-*");
        assert!(p.matches("web-1") && p.matches("web-") && !p.matches("api-1"));
        assert!(NamePattern::new("*").matches(""));
        assert!(NamePattern::new("a?c*z").matches("abcxyz"));
        assert!(!NamePattern::new("a?c").matches("ac"));
        assert!(NamePattern::new("*-db-*").matches("shop-db-0"));
    }

    #[test]
    fn only_star_and_question_mark_are_wildcards() {
        let m = |pattern: &str, text: &str| NamePattern::new(pattern).matches(text);
        // Glob classes, alternatives and escapes are plain characters.
        assert!(m("[ab]", "[ab]") && !m("[ab]", "a"));
        assert!(m("{a,b}-*", "{a,b}-1") && !m("{a,b}-1", "a-1"));
        assert!(m("a\\*", "a\\b") && !m("a\\*", "ab"));
        assert!(m("]!^-", "]!^-"));
        // `**` is `*`, and `*` and `?` cross `/` and newlines.
        assert!(m("a/**/b", "a/x/y/b") && !m("a/**/b", "a/b"));
        assert!(m("*", "x/y") && m("a?b", "a/b") && m("a?b", "a\nb"));
        // Case-sensitive; `?` is one byte.
        assert!(!m("Web-*", "web-1"));
        assert!(!m("?", "é") && m("??", "é"));
        // Every match, also of text holding `*` or `?`.
        assert!(m("*", "*.*") && m("a*", "a*b") && m("*.", ".."));
        assert!(m("", "") && !m("", "a"));
        // A pattern too large to compile matches nothing; it does not panic.
        assert!(!m(&"?".repeat(1 << 19), "a"));
    }
}
