//! `--format sarif`: SARIF 2.1.0, one run, for GitHub code scanning and other SARIF readers.
//!
//! Written by hand with `serde_json` rather than a SARIF crate: the subset used is small and a
//! typed model of the whole standard would cost more to compile than this file. What code
//! scanning needs is kept: a descriptor per rule that occurs, real regions (never line 0),
//! relative URIs against `%SRCROOT%`, and suppressions for exempted findings.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::{Summary, catalog, span};
use crate::finding::{Finding, Severity};
use crate::gate::GateReport;
use crate::source::STDIN_NAME;

/// The JSON schema of SARIF 2.1.0 that readers look up.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The base that relative artifact URIs are resolved against (the checkout's root in CI).
const SRCROOT: &str = "%SRCROOT%";

/// Writes the report as one SARIF log.
pub fn write(report: &GateReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &log(report))?;
    writeln!(out)
}

fn log(report: &GateReport) -> Value {
    // One descriptor per rule that occurs, in order of first appearance; results point at it.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut rules: Vec<(&str, Severity)> = Vec::new();
    for f in &report.findings {
        match index.get(f.rule) {
            Some(&i) => rules[i].1 = rules[i].1.max(f.severity),
            None => {
                index.insert(f.rule, rules.len());
                rules.push((f.rule, f.severity));
            }
        }
    }
    let descriptors: Vec<Value> = rules
        .iter()
        .map(|&(id, severity)| descriptor(report, id, severity))
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(report, f, index.get(f.rule).copied().unwrap_or(0)))
        .collect();
    let summary = Summary::of(report);
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "tally",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": descriptors,
                }
            },
            // tally counts columns in characters, not in UTF-16 code units (SARIF's default).
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {
                "kubernetesVersion": summary.kubernetes_version,
                "files": summary.files,
                "objects": summary.objects,
            }
        }]
    })
}

/// A rule descriptor. GitHub code scanning wants `fullDescription` and `help` on every rule, so
/// both are always there: the rule's documented help (the report's own rule docs, then the
/// catalog), else the first help a finding of the rule gave, else the title.
fn descriptor(report: &GateReport, id: &str, severity: Severity) -> Value {
    let title = catalog::title_in(&report.rule_docs, id);
    let help = catalog::describe_in(&report.rule_docs, id)
        .and_then(|r| r.help)
        .map(str::to_owned)
        .or_else(|| {
            report
                .findings
                .iter()
                .filter(|f| f.rule == id)
                .find_map(|f| f.help.as_deref().map(str::to_owned))
        });
    let full = match &help {
        Some(help) => format!("{title} {help}"),
        None => title.clone(),
    };
    json!({
        "id": id,
        "name": catalog::camel_name(id),
        "shortDescription": { "text": title },
        "fullDescription": { "text": full },
        "help": { "text": help.unwrap_or_else(|| title.clone()) },
        "defaultConfiguration": { "level": level(severity) },
    })
}

fn result(report: &GateReport, f: &Finding, rule_index: usize) -> Value {
    let mut text = f.message.clone();
    if let Some(help) = &f.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    let line = f.pos.line.max(1);
    let column = f.pos.column.max(1);
    let mut region = Map::new();
    region.insert("startLine".into(), json!(line));
    region.insert("startColumn".into(), json!(column));
    if let Some(w) = report.sources.window(&f.file, line, column) {
        let len = span::token_chars_in(w.text, w.column, w.flow_line) as u32;
        region.insert("endColumn".into(), json!(column + len));
    }
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(f.rule));
    r.insert("ruleIndex".into(), json!(rule_index));
    r.insert("level".into(), json!(level(f.severity)));
    r.insert("message".into(), json!({ "text": text }));
    r.insert(
        "locations".into(),
        json!([{
            "physicalLocation": {
                "artifactLocation": artifact(&f.file),
                "region": region,
            }
        }]),
    );
    if let Some(e) = &f.exempted {
        // An annotation sits in the manifest itself; anything else is configured elsewhere.
        let kind = if e.source == "annotation" {
            "inSource"
        } else {
            "external"
        };
        r.insert(
            "suppressions".into(),
            json!([{
                "kind": kind,
                "status": "accepted",
                "justification": e.reason,
                "properties": { "source": e.source },
            }]),
        );
    }
    if let Some(object) = &f.object {
        r.insert("properties".into(), json!({ "object": object }));
    }
    Value::Object(r)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The artifact location of a file name as findings carry it: relative paths against
/// `%SRCROOT%` with forward slashes, absolute paths as `file://` URIs.
fn artifact(file: &str) -> Value {
    if file == STDIN_NAME {
        return json!({ "uri": encode(file) });
    }
    let path = if std::path::MAIN_SEPARATOR == '\\' {
        file.replace('\\', "/")
    } else {
        file.to_owned()
    };
    let is_windows_absolute = path.as_bytes().get(1) == Some(&b':')
        && path.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && path.as_bytes().get(2) == Some(&b'/');
    if path.starts_with('/') {
        return json!({ "uri": format!("file://{}", encode(&path)) });
    }
    if is_windows_absolute {
        return json!({ "uri": format!("file:///{}", encode(&path)) });
    }
    let mut relative = path.as_str();
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    json!({ "uri": encode(relative), "uriBaseId": SRCROOT })
}

/// Percent-encodes what may not appear in a URI path (spaces, `%`, `#`, `?`, `:`, `<`, non-ASCII
/// bytes...). `:` is encoded so that a first segment such as `a:b.yaml` is not read as a scheme.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_uris() {
        assert_eq!(
            artifact("./apps/web/deploy.yaml"),
            json!({"uri": "apps/web/deploy.yaml", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact("my apps/a#1.yaml"),
            json!({"uri": "my%20apps/a%231.yaml", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact("/abs/x.yaml"),
            json!({"uri": "file:///abs/x.yaml"})
        );
        assert_eq!(artifact("<stdin>"), json!({"uri": "%3Cstdin%3E"}));
        assert_eq!(
            artifact("c:x.yaml"),
            json!({"uri": "c%3Ax.yaml", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact("é.yaml"),
            json!({"uri": "%C3%A9.yaml", "uriBaseId": "%SRCROOT%"})
        );
    }
}
