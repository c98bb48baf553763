//! `--format json`: every finding (exempted ones marked) and the summary.

use std::io::{self, Write};

use serde::Serialize;

use super::Summary;
use crate::finding::Finding;
use crate::gate::GateReport;

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: &'a [Finding],
    /// Files that hold no Kubernetes object, set aside.
    skipped: &'a [std::sync::Arc<str>],
    summary: Summary,
}

/// Writes the report as one pretty-printed JSON document.
pub fn write(report: &GateReport, out: &mut dyn Write) -> io::Result<()> {
    let doc = JsonReport {
        findings: &report.findings,
        skipped: &report.skipped,
        summary: Summary::of(report),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
