//! Findings: what the gate says about the input, each at a position a person can open.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::object::ObjectRef;

/// How serious a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a run unless `--fail-on info`.
    Info,
    /// Probably wrong; fails a run with `--fail-on warning`.
    Warning,
    /// Wrong: the API server would reject it, or a policy forbids it.
    Error,
}

impl Severity {
    /// The lowercase name used in every report format and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `error`, `warning` (or `warn`) and `info`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Pos {
    /// A position from a 1-based line and column.
    pub const fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    /// The start of a file.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// Why a finding does not count against the run: who exempted it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    /// Where the exemption was granted (`annotation` or the config file and selector).
    pub source: String,
    /// The reason given for it.
    pub reason: String,
}

/// One thing the gate says, at one position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule id, kebab-case (`yaml-syntax`, `schema-unknown-field`, `no-bare-pod`, ...).
    pub rule: &'static str,
    /// The severity after configuration.
    pub severity: Severity,
    /// One sentence a person can act on.
    pub message: String,
    /// The file as given on the command line or found under it (`-` for stdin).
    pub file: Arc<str>,
    /// Where in the file.
    #[serde(flatten)]
    pub pos: Pos,
    /// The object the finding is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// How to fix it, when there is more to say than the message (shared: a rule's help is the
    /// same text on each of its findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<Arc<str>>,
    /// Set when the finding was exempted on purpose: still reported, never counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempted: Option<Exemption>,
}

impl Finding {
    /// A finding without an object (file-level problems: syntax, encoding).
    pub fn new(
        rule: &'static str,
        severity: Severity,
        file: &Arc<str>,
        pos: Pos,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule,
            severity,
            message: message.into(),
            file: Arc::clone(file),
            pos,
            object: None,
            help: None,
            exempted: None,
        }
    }

    /// Adds help text.
    pub fn with_help(mut self, help: impl Into<Arc<str>>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// Attaches the object the finding is about.
    pub fn with_object(mut self, object: ObjectRef) -> Finding {
        self.object = Some(object);
        self
    }

    /// Whether this finding counts towards the exit status at `fail_on`.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.exempted.is_none() && self.severity >= fail_on
    }
}

/// A rule as reports describe it, apart from any one finding of it: a title and, where there is
/// one general fix, help (SARIF's rule descriptors are built from it).
///
/// Each crate that raises findings documents its own rules: the gate's are in
/// [`report::catalog`](crate::report::catalog); a caller with rules of its own (the repo layout)
/// hands their docs to reports in [`GateReport::rule_docs`](crate::gate::GateReport::rule_docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    /// The rule id.
    pub id: &'static str,
    /// One line: what the rule finds.
    pub title: &'static str,
    /// How to fix any finding of it, when that can be said in general.
    pub help: Option<&'static str>,
}

impl RuleDoc {
    /// A rule's documentation; `const`, so a crate can list its rules as a constant table.
    pub const fn new(id: &'static str, title: &'static str, help: Option<&'static str>) -> RuleDoc {
        RuleDoc { id, title, help }
    }
}

/// One cause, one finding: a schema error at the very spot where a template or a placeholder was
/// left in the manifest (`replicas: {{ .Values.replicas }}` is also "expected integer, found
/// object"; `lun: <ADD LUN ID Here>` also "expected integer") is its consequence, and is
/// dropped. Call on sorted findings.
pub fn drop_consequences(findings: &mut Vec<Finding>) {
    const CAUSES: [&str; 2] = ["template-leftover", "unrendered-placeholder"];
    let leftovers: std::collections::HashSet<(&str, Pos)> = findings
        .iter()
        .filter(|f| CAUSES.contains(&f.rule))
        .map(|f| (&*f.file, f.pos))
        .collect();
    if leftovers.is_empty() {
        return;
    }
    let doomed: Vec<bool> = findings
        .iter()
        .map(|f| f.rule.starts_with("schema-") && leftovers.contains(&(&*f.file, f.pos)))
        .collect();
    let mut i = 0;
    findings.retain(|_| {
        i += 1;
        !doomed[i - 1]
    });
}

/// Orders findings the way people read them: by file, then position, then rule.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&*a.file, a.pos, a.rule, &a.message).cmp(&(&*b.file, b.pos, b.rule, &b.message))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
        assert_eq!(Severity::parse("warn"), Some(Severity::Warning));
        assert_eq!(Severity::parse("fatal"), None);
    }

    #[test]
    fn exempted_findings_never_fail() {
        let file: Arc<str> = Arc::from("a.yaml");
        let mut f = Finding::new("x", Severity::Error, &file, Pos::START, "m");
        assert!(f.fails(Severity::Error));
        f.exempted = Some(Exemption {
            source: "annotation".into(),
            reason: "r".into(),
        });
        assert!(!f.fails(Severity::Info));
    }
}
