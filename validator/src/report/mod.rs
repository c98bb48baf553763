//! Reports: the same findings in the formats people and CI systems read.
//!
//! Every format is a pure function of a [`GateReport`]; none of them decides what fails. That is
//! the caller's `--fail-on`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;

use crate::finding::Severity;
use crate::gate::GateReport;

pub mod catalog;
mod github;
mod human;
mod json;
mod junit;
mod sarif;
mod span;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// rustc-like snippets and a summary table, for people.
    Human,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
}

impl Format {
    /// Every format's name, as accepted on the command line.
    pub const NAMES: [&'static str; 5] = ["human", "json", "sarif", "junit", "github"];
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "human" | "text" => Format::Human,
            "json" => Format::Json,
            "sarif" => Format::Sarif,
            "junit" => Format::Junit,
            "github" => Format::Github,
            other => {
                return Err(format!(
                    "unknown format `{other}` (expected one of: {})",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// Options that change how a report looks, never what it says.
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// ANSI colours (human format only).
    pub color: bool,
    /// The lowest severity the human format prints in detail (`--show`); findings below it are
    /// only counted. Every other format lists every finding.
    pub show: Severity,
}

impl Default for ReportOptions {
    /// No colour; errors and warnings in detail, infos counted.
    fn default() -> ReportOptions {
        ReportOptions {
            color: false,
            show: Severity::Warning,
        }
    }
}

/// Counts over a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Objects checked.
    pub objects: usize,
    /// Files read that hold no Kubernetes object (set aside, not judged).
    pub skipped: usize,
    /// Counted findings that are errors.
    pub errors: usize,
    /// Counted findings that are warnings.
    pub warnings: usize,
    /// Counted findings that are infos.
    pub infos: usize,
    /// Findings exempted on purpose (not counted above).
    pub exempted: usize,
    /// Per rule: counted findings.
    pub rules: BTreeMap<&'static str, usize>,
    /// The Kubernetes version validated against.
    #[serde(rename = "kubernetesVersion")]
    pub kubernetes_version: String,
}

impl Summary {
    /// Counts a report's findings.
    pub fn of(report: &GateReport) -> Summary {
        let mut s = Summary {
            files: report.files,
            objects: report.objects,
            skipped: report.skipped.len(),
            kubernetes_version: report.kubernetes_version.clone(),
            ..Summary::default()
        };
        for f in &report.findings {
            if f.exempted.is_some() {
                s.exempted += 1;
                continue;
            }
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
            *s.rules.entry(f.rule).or_default() += 1;
        }
        s
    }
}

/// Writes `report` in `format`.
pub fn write(
    format: Format,
    report: &GateReport,
    options: ReportOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => human::write(report, options, out),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Github => github::write(report, out),
    }
}

#[cfg(test)]
mod tests;
