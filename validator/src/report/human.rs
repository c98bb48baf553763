//! `--format human`: what a person has to fix now, worst first, as rustc-like snippets; then a
//! summary table of counts per rule and a totals line.
//!
//! What is printed, and in what order:
//!
//! - **Worst first.** Errors, then warnings, then infos; within a severity, by file and position.
//!   [`ReportOptions::show`] is the lowest severity printed in detail (`--show`, `warning` by
//!   default): below it findings are only counted, in the table and the totals, and one line
//!   after the totals says how many were not shown and how to see them.
//! - **One cause, one entry.** Some findings follow from another at the same spot, and fixing the
//!   cause fixes both (see [`FOLLOWS`]): an unquoted `{{ .Values.n }}` is a template leftover
//!   *and*, to the schema, an object where a number belongs. Such a pair is one entry: the worse
//!   of the two (the cause on a tie) heads it with the snippet, the other is one
//!   `= also: error[schema-invalid]: ...` line under it. The entry sits in its head's section.
//!   Machine formats list both, as each rule is configured and exempted on its own.
//! - **Repeats are shortened, never silently dropped.** A rule's first three entries of a
//!   severity are shown in full; later ones show only their header and location (two lines), as
//!   the snippet and help would repeat what is above. Within one file a rule shows at most five
//!   entries, and one line counts the rest (`... and 46 more template-leftover in this file`):
//!   fifty leftovers in a chart template are one message, "render it first". The table and the
//!   other formats count and list every finding.
//! - **Exempted findings** at or above `show` follow the counted ones, dimmed and without a
//!   snippet: never silent, but not what a person has to fix now.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};
use unicode_width::UnicodeWidthChar;

use super::{ReportOptions, Summary, span};
use crate::finding::{Finding, Severity};
use crate::gate::{GateReport, LineWindow};
use crate::manifest::rules::{MISSING_API_VERSION, MISSING_KIND, MISSING_NAME};
use crate::object::ObjectRef;
use crate::policy::rules::{
    AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, DEFAULT_SERVICE_ACCOUNT, NO_LATEST_TAG, UNRENDERED_PLACEHOLDER,
};
use crate::schema::rules::INVALID as SCHEMA_INVALID;
use crate::text;
use crate::yaml::rules::{AMBIGUOUS_NUMBER, TEMPLATE_LEFTOVER};

/// Source lines longer than this (in columns) are shown as a window around the finding.
const MAX_SNIPPET_WIDTH: usize = 120;
/// How many characters of context a window keeps before the finding's column.
const WINDOW_BEFORE: usize = 40;
/// A tab is shown as this many spaces (as rustc does), so carets line up in any terminal.
const TAB_WIDTH: usize = 4;
/// Entries of one rule (in one severity) shown with their snippet; later ones get two lines.
const FULL_PER_RULE: usize = 3;
/// Entries of one rule shown per file; one line counts the rest.
const SHOWN_PER_FILE: usize = 5;

/// Findings that follow from another at the same file, line and column, as (cause, consequence)
/// rule pairs: the same mistake seen by two checks, fixed by one edit. Only pairs seen in real
/// repositories are listed; two independent problems at one spot (a container without probes
/// *and* without resources) stay separate entries.
const FOLLOWS: &[(&str, &str)] = &[
    // `replicas: {{ .Values.n }}` is a flow mapping to the schema: "found object".
    (TEMPLATE_LEFTOVER, SCHEMA_INVALID),
    // An unquoted `0644`: the schema sees 644 where YAML 1.1 readers (the API server) see 420.
    (AMBIGUOUS_NUMBER, SCHEMA_INVALID),
    // `image: <YOUR-IMAGE>` has no tag because it is not an image yet.
    (UNRENDERED_PLACEHOLDER, NO_LATEST_TAG),
    // The namespace's default service account, with a token nobody decided to mount.
    (DEFAULT_SERVICE_ACCOUNT, AUTOMOUNT_SERVICE_ACCOUNT_TOKEN),
    // No apiVersion, kind or name: a document that is not a Kubernetes object (a CI file, a
    // chart's Chart.yaml, an application's config) is one problem, not two or three.
    (MISSING_API_VERSION, MISSING_KIND),
    (MISSING_API_VERSION, MISSING_NAME),
    (MISSING_KIND, MISSING_NAME),
];

/// Writes the findings as snippets, then the summary.
pub fn write(report: &GateReport, options: ReportOptions, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint(options.color);
    let summary = Summary::of(report);
    if report.findings.is_empty() {
        return writeln!(
            out,
            "{} no findings in {} and {} (Kubernetes {}){}",
            paint.paint(GREEN, "ok:"),
            plural(summary.files, "file", "files"),
            plural(summary.objects, "object", "objects"),
            summary.kubernetes_version,
            skipped(&summary)
        );
    }
    let counted: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.exempted.is_none())
        .collect();
    let entries = entries(&counted);
    let mut hidden = Hidden::default();
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        let of_severity: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.head.severity == severity)
            .collect();
        if severity >= options.show {
            section(report, &of_severity, paint, out)?;
        } else {
            for f in of_severity.iter().flat_map(|e| e.findings()) {
                hidden.count(f.severity);
            }
        }
    }
    for f in report.findings.iter().filter(|f| f.exempted.is_some()) {
        if f.severity >= options.show {
            exempted(f, paint, out)?;
        } else {
            hidden.exempted += 1;
        }
    }
    if !summary.rules.is_empty() {
        writeln!(out, "{}", table(report))?;
    }
    writeln!(out, "{}", totals(&summary, paint))?;
    if let Some(line) = hidden.line() {
        writeln!(out, "{}", paint.paint(DIM, &line))?;
    }
    Ok(())
}

/// One entry of the report: a finding, and those at the same spot that follow from it.
struct Entry<'a> {
    /// The worst of the group (the cause on a tie): it gets the header and the snippet.
    head: &'a Finding,
    /// The others, worst first, one `= also:` line each.
    also: Vec<&'a Finding>,
}

impl<'a> Entry<'a> {
    fn findings(&self) -> impl Iterator<Item = &'a Finding> + '_ {
        std::iter::once(self.head).chain(self.also.iter().copied())
    }
}

/// Groups findings (sorted by file and position) into entries, in the same order.
fn entries<'a>(findings: &[&'a Finding]) -> Vec<Entry<'a>> {
    let follows = |cause: &Finding, f: &Finding| FOLLOWS.contains(&(cause.rule, f.rule));
    let mut out = Vec::new();
    for spot in findings.chunk_by(|a, b| a.file == b.file && a.pos == b.pos) {
        let cause: Vec<Option<usize>> = spot
            .iter()
            .map(|f| spot.iter().position(|c| follows(c, f)))
            .collect();
        // The finding a chain of causes starts from (bounded, should the table ever loop).
        let root = |mut i: usize| {
            for _ in 0..spot.len() {
                match cause[i] {
                    Some(c) => i = c,
                    None => break,
                }
            }
            i
        };
        for (i, &first) in spot.iter().enumerate() {
            if cause[i].is_some() {
                continue;
            }
            let mut group: Vec<&Finding> = vec![first];
            group.extend(
                (0..spot.len())
                    .filter(|&j| j != i && root(j) == i)
                    .map(|j| spot[j]),
            );
            // Stable: the cause stays ahead of a consequence of the same severity.
            group.sort_by_key(|f| Reverse(f.severity));
            let head = group.remove(0);
            out.push(Entry { head, also: group });
        }
    }
    out
}

/// The entries of one severity: the first of each rule in full, repeats shortened, and past
/// [`SHOWN_PER_FILE`] in a file, counted.
fn section(
    report: &GateReport,
    entries: &[&Entry],
    paint: Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut in_file: HashMap<(&str, &str), usize> = HashMap::new();
    for e in entries {
        *in_file.entry((&*e.head.file, e.head.rule)).or_default() += 1;
    }
    let mut shown_in_file: HashMap<(&str, &str), usize> = HashMap::new();
    let mut shown_of_rule: HashMap<&str, usize> = HashMap::new();
    // Whether the last line written wants a blank line before the next full entry.
    let mut open = false;
    for e in entries {
        let key = (&*e.head.file, e.head.rule);
        let n = shown_in_file.entry(key).or_default();
        if *n == SHOWN_PER_FILE {
            continue;
        }
        *n += 1;
        let nth = shown_of_rule.entry(e.head.rule).or_default();
        *nth += 1;
        if *nth <= FULL_PER_RULE {
            if open {
                writeln!(out)?;
            }
            full(report, e, paint, out)?;
            open = false;
        } else {
            header(e.head, paint, out)?;
            also(e, paint, out)?;
            open = true;
        }
        let total = in_file.get(&key).copied().unwrap_or(0);
        if *n == SHOWN_PER_FILE && total > SHOWN_PER_FILE {
            writeln!(
                out,
                "  ... and {} more {} in this file\n",
                total - SHOWN_PER_FILE,
                e.head.rule
            )?;
            open = false;
        }
    }
    if open {
        writeln!(out)?;
    }
    Ok(())
}

/// An entry with its snippet, help, consequences and object.
fn full(report: &GateReport, e: &Entry, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    let f = e.head;
    let style = severity_style(f.severity);
    let pad = gutter(f);
    header(f, paint, out)?;
    let bar = paint.paint(BLUE, "|");
    if let Some(window) = source_window(report, f) {
        let snippet = Snippet::new(window);
        writeln!(out, "{pad}  {bar}")?;
        // No trailing space after the bar when the line is empty (the end of the file).
        let gap = if snippet.text.is_empty() { "" } else { " " };
        writeln!(
            out,
            " {} {bar}{gap}{}",
            paint.paint(BLUE, &f.pos.line.to_string()),
            snippet.text
        )?;
        writeln!(
            out,
            "{pad}  {bar} {}{}",
            " ".repeat(snippet.caret_at),
            paint.paint(style, &"^".repeat(snippet.caret_len))
        )?;
    }
    let eq = paint.paint(BLUE, "=");
    if let Some(help) = &f.help {
        writeln!(
            out,
            "{pad}  {eq} {}: {}",
            paint.paint(BOLD, "help"),
            text::escape(help)
        )?;
    }
    also(e, paint, out)?;
    if let Some(object) = &f.object {
        writeln!(
            out,
            "{pad}  {eq} {}: {}",
            paint.paint(BOLD, "object"),
            object_label(object)
        )?;
    }
    writeln!(out)
}

/// `error[rule]: message` and `--> file:line:column`.
fn header(f: &Finding, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{}{} {}",
        paint.paint(
            severity_style(f.severity),
            &format!("{}[{}]", f.severity, f.rule)
        ),
        paint.paint(BOLD, ":"),
        paint.paint(BOLD, &text::escape(&f.message))
    )?;
    writeln!(
        out,
        "{} {} {}:{}:{}",
        gutter(f),
        paint.paint(BLUE, "-->"),
        text::escape(&f.file),
        f.pos.line,
        f.pos.column
    )
}

/// One `= also:` line per finding that follows from the entry's head.
fn also(e: &Entry, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    let pad = gutter(e.head);
    for f in &e.also {
        writeln!(
            out,
            "{pad}  {} {}: {}: {}",
            paint.paint(BLUE, "="),
            paint.paint(BOLD, "also"),
            paint.paint(
                severity_style(f.severity),
                &format!("{}[{}]", f.severity, f.rule)
            ),
            text::escape(&f.message)
        )?;
    }
    Ok(())
}

/// As wide as the line number, like rustc's.
fn gutter(f: &Finding) -> String {
    " ".repeat(f.pos.line.to_string().len())
}

fn exempted(f: &Finding, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    let mut text = format!(
        "exempted {}[{}]: {}\n  --> {}:{}:{}\n",
        f.severity,
        f.rule,
        text::escape(&f.message),
        text::escape(&f.file),
        f.pos.line,
        f.pos.column
    );
    if let Some(e) = &f.exempted {
        text.push_str(&format!(
            "   = reason: {} ({})\n",
            text::escape(&e.reason),
            text::escape(&e.source)
        ));
    }
    if let Some(object) = &f.object {
        text.push_str(&format!("   = object: {}\n", object_label(object)));
    }
    for line in text.lines() {
        writeln!(out, "{}", paint.paint(DIM, line))?;
    }
    writeln!(out)
}

/// Findings below [`ReportOptions::show`]: counted in the table, named in one line.
#[derive(Default)]
struct Hidden {
    warnings: usize,
    infos: usize,
    exempted: usize,
}

impl Hidden {
    fn count(&mut self, severity: Severity) {
        match severity {
            Severity::Warning => self.warnings += 1,
            Severity::Info => self.infos += 1,
            // Errors are always shown.
            Severity::Error => {}
        }
    }

    /// `28 warnings and 47 infos not shown; ...`, when anything was hidden.
    fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.warnings > 0 {
            parts.push(plural(self.warnings, "warning", "warnings"));
        }
        if self.infos > 0 {
            parts.push(plural(self.infos, "info", "infos"));
        }
        if self.exempted > 0 {
            parts.push(format!("{} exempted", self.exempted));
        }
        let last = parts.pop()?;
        let list = if parts.is_empty() {
            last
        } else {
            format!("{} and {last}", parts.join(", "))
        };
        Some(format!(
            "{list} not shown; `tally validate --show info` lists them"
        ))
    }
}

/// The finding's source line (or a window of a long one); an empty one for the end of the file,
/// where errors about an unfinished document point.
fn source_window<'a>(report: &'a GateReport, f: &Finding) -> Option<LineWindow<'a>> {
    if let Some(window) = report.sources.window(&f.file, f.pos.line, f.pos.column) {
        return Some(window);
    }
    let lines = report.sources.line_count(&f.file)?;
    (f.pos.line as usize == lines + 1).then_some(LineWindow {
        text: "",
        column: f.pos.column,
        cut_before: false,
        cut_after: false,
        flow_line: false,
    })
}

/// `Deployment default/web`, with placeholders where the object lacks a kind or a name.
pub(super) fn object_label(o: &ObjectRef) -> String {
    let kind = if o.kind.is_empty() {
        "<no kind>"
    } else {
        &o.kind
    };
    let name = if o.name.is_empty() {
        "<no name>"
    } else {
        &o.name
    };
    let (kind, name) = (text::escape(kind), text::escape(name));
    match &o.namespace {
        Some(ns) => format!("{kind} {}/{name}", text::escape(ns)),
        None => format!("{kind} {name}"),
    }
}

/// Counted findings per rule and severity, worst first.
fn table(report: &GateReport) -> String {
    let mut counts: BTreeMap<(Reverse<Severity>, &str), usize> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.exempted.is_none()) {
        *counts.entry((Reverse(f.severity), f.rule)).or_default() += 1;
    }
    let mut b = Builder::default();
    b.push_record(["rule", "severity", "count"]);
    for ((severity, rule), n) in &counts {
        b.push_record([rule.to_string(), severity.0.to_string(), n.to_string()]);
    }
    let mut t = b.build();
    t.with(Style::rounded())
        .modify(Columns::last(), Alignment::right());
    t.to_string()
}

fn totals(s: &Summary, paint: Paint) -> String {
    let mut counts = vec![
        paint.paint(
            if s.errors > 0 { RED } else { BOLD },
            &plural(s.errors, "error", "errors"),
        ),
        paint.paint(
            if s.warnings > 0 { YELLOW } else { BOLD },
            &plural(s.warnings, "warning", "warnings"),
        ),
        plural(s.infos, "info", "infos"),
    ];
    if s.exempted > 0 {
        counts.push(format!("{} exempted", s.exempted));
    }
    format!(
        "{} and {} checked against Kubernetes {}: {}{}",
        plural(s.files, "file", "files"),
        plural(s.objects, "object", "objects"),
        s.kubernetes_version,
        counts.join(", "),
        skipped(s)
    )
}

/// `; skipped 7 files that are not Kubernetes objects`, when there are any.
fn skipped(s: &Summary) -> String {
    match s.skipped {
        0 => String::new(),
        n => format!(
            "; skipped {} that {} not Kubernetes objects",
            plural(n, "file", "files"),
            if n == 1 { "is" } else { "are" }
        ),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A source line made printable, and where under it the carets go (in terminal columns).
struct Snippet {
    text: String,
    caret_at: usize,
    caret_len: usize,
}

impl Snippet {
    fn new(window: LineWindow) -> Snippet {
        let LineWindow {
            text: line, column, ..
        } = window;
        let chars: Vec<char> = line.chars().collect();
        let start = (column.max(1) as usize - 1).min(chars.len());
        let len = span::token_chars_in(line, column, window.flow_line);
        // Long lines (minified JSON) are cut to a window that keeps the finding in view.
        let total: usize = chars.iter().map(|&c| display_width(c)).sum();
        let (from, to) = if total > MAX_SNIPPET_WIDTH {
            let from = start.saturating_sub(WINDOW_BEFORE);
            let mut to = from;
            let mut width = 0;
            while to < chars.len() && (width < MAX_SNIPPET_WIDTH || to < start + 1) {
                width += display_width(chars[to]);
                to += 1;
            }
            (from, to)
        } else {
            (0, chars.len())
        };
        let mut text = String::new();
        let mut caret_at = 0;
        let mut caret_len = 0;
        if from > 0 || window.cut_before {
            text.push('…');
            caret_at += 1;
        }
        for (i, &c) in chars.iter().enumerate().take(to).skip(from) {
            let w = display_width(c);
            if c == '\t' {
                text.push_str(&" ".repeat(TAB_WIDTH));
            } else if text::is_unsafe(c) {
                text.push(char::REPLACEMENT_CHARACTER);
            } else {
                text.push(c);
            }
            if i < start {
                caret_at += w;
            } else if i < start + len {
                caret_len += w;
            }
        }
        if to < chars.len() || window.cut_after {
            text.push('…');
        }
        Snippet {
            text,
            caret_at,
            caret_len: caret_len.max(1),
        }
    }
}

fn display_width(c: char) -> usize {
    if c == '\t' {
        TAB_WIDTH
    } else if text::is_unsafe(c) {
        1
    } else {
        c.width().unwrap_or(0)
    }
}

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "1;31";
const GREEN: &str = "1;32";
const YELLOW: &str = "1;33";
const CYAN: &str = "1;36";
const BLUE: &str = "1;34";

fn severity_style(s: Severity) -> &'static str {
    match s {
        Severity::Error => RED,
        Severity::Warning => YELLOW,
        Severity::Info => CYAN,
    }
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn paint(self, style: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carets(line: &str, column: u32) -> String {
        let s = Snippet::new(LineWindow {
            text: line,
            column,
            cut_before: false,
            cut_after: false,
            flow_line: false,
        });
        format!(
            "{}\n{}{}",
            s.text,
            " ".repeat(s.caret_at),
            "^".repeat(s.caret_len)
        )
    }

    #[test]
    fn tabs_and_wide_characters_keep_carets_aligned() {
        assert_eq!(carets("\tname: x", 2), "    name: x\n    ^^^^");
        assert_eq!(carets("名前: 値", 5), "名前: 値\n      ^^");
        assert_eq!(carets("a: 1", 9), "a: 1\n    ^");
    }

    /// Entries over findings at one spot, as `head rule: also rules`.
    fn grouped(at_one_spot: &[(&'static str, Severity)]) -> Vec<String> {
        let file: std::sync::Arc<str> = std::sync::Arc::from("a.yaml");
        let mut findings: Vec<Finding> = at_one_spot
            .iter()
            .map(|&(rule, severity)| {
                Finding::new(rule, severity, &file, crate::Pos::new(3, 5), "m")
            })
            .collect();
        crate::finding::sort_findings(&mut findings);
        let refs: Vec<&Finding> = findings.iter().collect();
        entries(&refs)
            .iter()
            .map(|e| {
                let also: Vec<&str> = e.also.iter().map(|f| f.rule).collect();
                format!("{}: {}", e.head.rule, also.join(" "))
            })
            .collect()
    }

    #[test]
    fn no_rule_follows_from_itself() {
        // A loop would leave its findings without a head: no entry would print them.
        let mut reach: Vec<(&str, &str)> = FOLLOWS.to_vec();
        for _ in 0..FOLLOWS.len() {
            let next: Vec<(&str, &str)> = reach
                .iter()
                .flat_map(|&(a, b)| {
                    FOLLOWS
                        .iter()
                        .filter(move |p| p.0 == b)
                        .map(move |p| (a, p.1))
                })
                .collect();
            reach.extend(next);
        }
        assert!(reach.iter().all(|(a, b)| a != b));
    }

    #[test]
    fn findings_of_one_cause_are_one_entry_headed_by_the_worst() {
        use Severity::*;
        assert_eq!(
            grouped(&[
                (MISSING_NAME, Error),
                (MISSING_KIND, Error),
                (MISSING_API_VERSION, Error)
            ]),
            ["missing-api-version: missing-kind missing-name"]
        );
        assert_eq!(
            grouped(&[(MISSING_NAME, Error), (MISSING_KIND, Error)]),
            ["missing-kind: missing-name"]
        );
        assert_eq!(
            grouped(&[
                (AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, Warning),
                (DEFAULT_SERVICE_ACCOUNT, Warning),
                ("seccomp-profile", Warning),
            ]),
            [
                "default-service-account: automount-service-account-token",
                "seccomp-profile: "
            ]
        );
        // A consequence worse than its cause heads the entry.
        assert_eq!(
            grouped(&[(AMBIGUOUS_NUMBER, Warning), (SCHEMA_INVALID, Error)]),
            ["schema-invalid: yaml-ambiguous-number"]
        );
        // Two problems at one spot are two entries.
        assert_eq!(
            grouped(&[("liveness-probe", Warning), ("readiness-probe", Warning)]),
            ["liveness-probe: ", "readiness-probe: "]
        );
    }

    #[test]
    fn long_lines_are_windowed_around_the_column() {
        let line = format!("{{\"a\": \"{}\", \"bad\": 1}}", "x".repeat(300));
        let column = line.find("\"bad\"").map(|i| i as u32 + 1).unwrap_or(1);
        let s = carets(&line, column);
        let (text, marks) = s.split_once('\n').unwrap_or_default();
        assert!(
            text.starts_with('…') && text.chars().count() < 200,
            "{text}"
        );
        let at = marks.find('^').unwrap_or(0);
        let under: String = text.chars().skip(at).take(5).collect();
        assert_eq!(under, "\"bad\"");
    }
}
