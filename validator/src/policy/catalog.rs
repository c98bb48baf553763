//! The built-in rule catalog: `policies/catalog.yaml`, embedded in the binary and read with the
//! gate's own YAML loader. It documents every rule (the Rust code in [`super::rules`] only
//! decides); `docs/policies.md`, `tally policies` and `tally policies explain` are rendered from it.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer};

use crate::finding::Severity;
use crate::yaml;

/// The catalog's source, as committed under `policies/`.
pub const CATALOG_YAML: &str = include_str!("../../../policies/catalog.yaml");

/// Every documented rule, in the order the docs list them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Markdown that opens the generated docs: how to configure and exempt.
    pub guide: String,
    /// The rules.
    pub rules: Vec<CatalogRule>,
}

/// One rule's documentation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRule {
    /// Kebab-case id, as findings and configuration name it.
    pub id: String,
    /// The severity its findings get unless configured otherwise.
    #[serde(deserialize_with = "severity")]
    pub severity: Severity,
    /// `security`, `reliability`, `hygiene` or `engine`.
    pub category: String,
    /// One line saying what good looks like.
    pub title: String,
    /// Why it matters, and where tally's judgement differs from other tools'.
    pub rationale: String,
    /// How to fix a finding.
    pub remediation: String,
    /// The same concept in kube-linter, Polaris, kube-score and Checkov.
    #[serde(default)]
    pub equivalents: Vec<String>,
    /// Further reading.
    #[serde(default)]
    pub references: Vec<String>,
    /// A manifest that breaks the rule and the same manifest fixed (absent for engine rules).
    #[serde(default)]
    pub example: Option<Example>,
}

/// A violation and its fix, as YAML manifests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Manifests that produce the rule's finding.
    pub violation: String,
    /// The same manifests fixed: no finding from this rule.
    pub fix: String,
}

fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
    let s = String::deserialize(d)?;
    Severity::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown severity `{s}`")))
}

/// Reads a catalog from YAML text.
pub fn parse(text: &str) -> Result<Catalog, String> {
    let file: Arc<str> = Arc::from("policies/catalog.yaml");
    let loaded = yaml::load(&file, text);
    let problems: Vec<String> = loaded
        .findings
        .iter()
        .chain(loaded.documents.iter().flat_map(|d| &d.findings))
        .map(|f| format!("{}:{}: {}", f.pos.line, f.pos.column, f.message))
        .collect();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let doc = loaded
        .documents
        .into_iter()
        .next()
        .ok_or("the catalog is empty")?;
    serde_json::from_value(doc.value).map_err(|e| e.to_string())
}

impl Catalog {
    /// The catalog embedded in this binary.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match parse(CATALOG_YAML) {
            Ok(catalog) => catalog,
            // Compiled-in data, checked by this module's tests: a failure here is a build defect,
            // never a user's input.
            Err(e) => panic!("the embedded policies/catalog.yaml is invalid: {e}"),
        })
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&CatalogRule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The closest known id to a misspelt one, when one is close.
    pub fn suggest(&self, id: &str) -> Option<&str> {
        self.rules
            .iter()
            .map(|r| (edit_distance(id, &r.id), r.id.as_str()))
            .filter(|(d, known)| *d <= 2.max(known.len() / 4))
            .min()
            .map(|(_, known)| known)
    }

    /// `tally policies`: one line per rule (id, severity, title) under a header.
    pub fn table(&self) -> String {
        let width = self.rules.iter().map(|r| r.id.len()).max().unwrap_or(2);
        let mut out = String::new();
        let _ = writeln!(out, "{:<width$}  {:<8}  TITLE", "ID", "SEVERITY");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {}",
                r.id,
                r.severity.as_str(),
                r.title
            );
        }
        let _ = writeln!(
            out,
            "\n{} rules. `tally policies explain ID` shows one with an example; docs/policies.md has them all.",
            self.rules.len()
        );
        out
    }

    /// `tally policies explain ID`: one rule in full, for a terminal.
    pub fn explain(&self, id: &str) -> Option<String> {
        let r = self.rule(id)?;
        let mut out = String::new();
        let _ = writeln!(out, "{} [{}, {}]", r.id, r.severity, r.category);
        let _ = writeln!(out, "{}\n", r.title);
        let _ = writeln!(out, "Why:\n{}\n", wrap(&r.rationale));
        let _ = writeln!(out, "Fix:\n{}\n", wrap(&r.remediation));
        if !r.equivalents.is_empty() {
            let _ = writeln!(out, "Elsewhere:\n{}\n", wrap(&r.equivalents.join("; ")));
        }
        if !r.references.is_empty() {
            let _ = writeln!(out, "References:");
            for link in &r.references {
                let _ = writeln!(out, "  {link}");
            }
            out.push('\n');
        }
        if let Some(ex) = &r.example {
            let _ = writeln!(out, "Violation:\n{}", indent(ex.violation.trim_end()));
            let _ = writeln!(out, "\nFixed:\n{}", indent(ex.fix.trim_end()));
        }
        let _ = writeln!(
            out,
            "\nSilence on purpose: annotate the object with `tally.dev/exempt: \"{}\"` and `tally.dev/exempt-reason: \"...\"`, or configure the rule in tally.yaml (docs/policies.md).",
            r.id
        );
        Some(out)
    }

    /// `docs/policies.md`: the guide, a table of every rule, then each rule in full.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "<!-- Generated from policies/catalog.yaml by `TALLY_BLESS=1 cargo test -p tally-validator catalog`. Do not edit by hand. -->\n\n",
        );
        out.push_str("# Policies\n\n");
        out.push_str(self.guide.trim());
        out.push_str("\n\n## The rules\n\n");
        out.push_str("| Rule | Severity | Category | What good looks like |\n");
        out.push_str("|---|---|---|---|\n");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "| [`{}`](#{}) | {} | {} | {} |",
                r.id, r.id, r.severity, r.category, r.title
            );
        }
        for r in &self.rules {
            let _ = writeln!(out, "\n### {}\n", r.id);
            let _ = writeln!(
                out,
                "**{}** · severity `{}` · {}\n",
                r.title, r.severity, r.category
            );
            let _ = writeln!(out, "{}\n", r.rationale.trim());
            let _ = writeln!(out, "**Fix:** {}\n", r.remediation.trim());
            if !r.equivalents.is_empty() {
                let _ = writeln!(out, "**Elsewhere:** {}\n", r.equivalents.join("; "));
            }
            if !r.references.is_empty() {
                let links: Vec<String> = r.references.iter().map(|l| format!("<{l}>")).collect();
                let _ = writeln!(out, "**References:** {}\n", links.join(", "));
            }
            if let Some(ex) = &r.example {
                let _ = writeln!(
                    out,
                    "Violation:\n\n```yaml\n{}\n```\n",
                    ex.violation.trim_end()
                );
                let _ = writeln!(out, "Fixed:\n\n```yaml\n{}\n```", ex.fix.trim_end());
            }
        }
        out
    }
}

/// Prose for a terminal: paragraphs kept, lines filled to 96 columns, indented by two.
fn wrap(text: &str) -> String {
    const WIDTH: usize = 96;
    let mut out = Vec::new();
    for paragraph in text.trim().split("\n\n") {
        let mut line = String::from(" ");
        for word in paragraph.split_whitespace() {
            if line.len() + 1 + word.len() > WIDTH && line.len() > 1 {
                out.push(line);
                line = String::from(" ");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push(line);
        out.push(String::new());
    }
    out.pop();
    out.join("\n")
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Levenshtein distance over characters; ids are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    #[test]
    fn catalog_parses_and_is_well_formed() {
        let catalog = parse(CATALOG_YAML).unwrap_or_else(|e| panic!("catalog: {e}"));
        let mut seen = BTreeSet::new();
        for r in &catalog.rules {
            assert!(seen.insert(r.id.as_str()), "duplicate id {}", r.id);
            let kebab = !r.id.is_empty()
                && r.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            assert!(kebab, "{} is not kebab-case", r.id);
            assert!(
                ["security", "reliability", "hygiene", "engine"].contains(&r.category.as_str()),
                "{}: category {}",
                r.id,
                r.category
            );
            for (what, text) in [
                ("title", &r.title),
                ("rationale", &r.rationale),
                ("remediation", &r.remediation),
            ] {
                assert!(!text.trim().is_empty(), "{}: empty {what}", r.id);
            }
            assert!(
                r.category == "engine" || (r.example.is_some() && !r.references.is_empty()),
                "{}: every rule needs an example and references",
                r.id
            );
        }
    }

    #[test]
    fn every_implemented_rule_is_documented_and_vice_versa() {
        let catalog = Catalog::builtin();
        let documented: BTreeSet<&str> = catalog.rules.iter().map(|r| r.id.as_str()).collect();
        let implemented: BTreeSet<&str> = rules::all_ids().collect();
        assert_eq!(documented, implemented);
    }

    #[test]
    fn suggestions_and_explanations() {
        let c = Catalog::builtin();
        assert_eq!(c.suggest("no-latest-tags"), Some("no-latest-tag"));
        assert_eq!(c.suggest("completely-different"), None);
        let text = c.explain("no-bare-pod").unwrap_or_default();
        assert!(
            text.contains("Violation:") && text.contains("kind: Pod"),
            "{text}"
        );
        assert!(c.explain("nope").is_none());
        assert!(
            c.table()
                .lines()
                .any(|l| l.starts_with("secret-as-volume "))
        );
    }

    /// `docs/policies.md` is generated: this fails when it drifts from the catalog.
    /// `TALLY_BLESS=1 cargo test -p tally-validator catalog` rewrites it.
    #[test]
    fn docs_are_generated_from_the_catalog() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/policies.md");
        let want = Catalog::builtin().markdown();
        if std::env::var_os("TALLY_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/policies.md is out of date with policies/catalog.yaml; run `TALLY_BLESS=1 cargo test -p tally-validator catalog` and commit the result"
        );
    }
}
