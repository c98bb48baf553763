//! `--format junit`: JUnit XML, the test-report format most CI systems display.
//!
//! A `<testsuite>` per file and a `<testcase>` per object (plus one named after the file for
//! findings that belong to no object, such as syntax errors). Each error or warning is a
//! `<failure>`; infos and exempted findings go to the test case's `<system-out>`. `failures`
//! counts failed test cases, as JUnit readers expect, not failure elements.
//!
//! Written by hand: the format is a few elements, and XML escaping is the only subtle part.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::human::object_label;
use crate::finding::{Finding, Severity};
use crate::gate::GateReport;
use crate::object::ObjectRef;
use crate::text;

/// One test case: an object of a file, or the file itself (`object: None`).
struct Case<'a> {
    object: Option<&'a ObjectRef>,
    findings: Vec<&'a Finding>,
}

impl Case<'_> {
    fn failed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.exempted.is_none() && f.severity >= Severity::Warning)
    }
}

/// Writes the report as one JUnit XML document.
pub fn write(report: &GateReport, out: &mut dyn Write) -> io::Result<()> {
    let suites = suites(report);
    let tests: usize = suites.values().map(Vec::len).sum();
    let failures: usize = suites
        .values()
        .flat_map(|cases| cases.iter())
        .filter(|c| c.failed())
        .count();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="tally validate" tests="{tests}" failures="{failures}" errors="0">"#
    )?;
    for (file, cases) in &suites {
        let failed = cases.iter().filter(|c| c.failed()).count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{failed}" errors="0">"#,
            escape(&text::escape(file)),
            cases.len()
        )?;
        for case in cases {
            write_case(file, case, out)?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Test cases per file (sorted by file name): the file's own case first when a finding has no
/// object, then every checked object in input order, then objects only findings name.
fn suites(report: &GateReport) -> BTreeMap<&str, Vec<Case<'_>>> {
    let mut suites: BTreeMap<&str, Vec<Case<'_>>> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.object.is_none()) {
        let cases = suites.entry(&f.file).or_default();
        match cases.first_mut() {
            Some(case) if case.object.is_none() => case.findings.push(f),
            _ => cases.push(Case {
                object: None,
                findings: vec![f],
            }),
        }
    }
    for (file, object) in &report.checked {
        let cases = suites.entry(file).or_default();
        if !cases.iter().any(|c| c.object == Some(object)) {
            cases.push(Case {
                object: Some(object),
                findings: Vec::new(),
            });
        }
    }
    for f in &report.findings {
        let Some(object) = &f.object else { continue };
        let cases = suites.entry(&f.file).or_default();
        match cases.iter_mut().find(|c| c.object == Some(object)) {
            Some(case) => case.findings.push(f),
            None => cases.push(Case {
                object: Some(object),
                findings: vec![f],
            }),
        }
    }
    suites
}

fn write_case(file: &str, case: &Case<'_>, out: &mut dyn Write) -> io::Result<()> {
    let name = match case.object {
        Some(o) => object_label(o),
        None => text::escape(file).into_owned(),
    };
    let file = &*text::escape(file);
    let open = format!(
        r#"    <testcase name="{}" classname="{}""#,
        escape(&name),
        escape(file)
    );
    if case.findings.is_empty() {
        return writeln!(out, "{open}/>");
    }
    writeln!(out, "{open}>")?;
    let mut system_out = Vec::new();
    for f in &case.findings {
        // Quoted from input: escaped before the XML escaping (see `text::escape`).
        let message = text::escape(&f.message);
        let location = format!("{}:{}:{}", text::escape(&f.file), f.pos.line, f.pos.column);
        if let Some(e) = &f.exempted {
            system_out.push(format!(
                "{location}: exempted {}[{}]: {message} (reason: {}; {})",
                f.severity,
                f.rule,
                text::escape(&e.reason),
                text::escape(&e.source)
            ));
        } else if f.severity == Severity::Info {
            system_out.push(format!("{location}: info[{}]: {message}", f.rule));
        } else {
            let mut body = format!("{location}: {}[{}]: {message}", f.severity, f.rule);
            if let Some(help) = &f.help {
                body.push_str("\nhelp: ");
                body.push_str(&text::escape(help));
            }
            writeln!(
                out,
                r#"      <failure type="{}" message="{}">{}</failure>"#,
                escape(f.rule),
                escape(&message),
                escape_text(&body)
            )?;
        }
    }
    if !system_out.is_empty() {
        writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape_text(&system_out.join("\n"))
        )?;
    }
    writeln!(out, "    </testcase>")
}

/// Escapes an attribute value. Line breaks and tabs become character references (a reader would
/// otherwise normalise them to spaces).
fn escape(s: &str) -> String {
    escape_xml(s, true)
}

/// Escapes element content; line breaks stay as they are, for people reading the file.
fn escape_text(s: &str) -> String {
    escape_xml(s, false)
}

/// Characters XML 1.0 cannot carry at all, even as references, become U+FFFD.
fn escape_xml(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    out
}

/// XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\n\u{1}\u{FFFE}é"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;&#10;\u{FFFD}\u{FFFD}é"
        );
        assert_eq!(escape_text("a\n\tb\r<'\""), "a\n\tb&#13;&lt;'\"");
    }
}
