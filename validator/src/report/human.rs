//! `--format human`: one rustc-like snippet per finding, then a summary.

use std::io::{self, Write};

use super::{ReportOptions, Summary};
use crate::gate::GateReport;

/// Writes the findings as snippets and a summary line.
pub fn write(report: &GateReport, _options: ReportOptions, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.findings {
        writeln!(out, "{}[{}]: {}", f.severity, f.rule, f.message)?;
        writeln!(out, "  --> {}:{}:{}", f.file, f.pos.line, f.pos.column)?;
        if let Some(line) = report.sources.line(&f.file, f.pos.line) {
            writeln!(out, "   | {line}")?;
        }
        writeln!(out)?;
    }
    let s = Summary::of(report);
    writeln!(
        out,
        "{} files, {} objects: {} errors, {} warnings, {} infos",
        s.files, s.objects, s.errors, s.warnings, s.infos
    )
}
