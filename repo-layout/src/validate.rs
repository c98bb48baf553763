//! The gate over a whole repo: load and cross-check the layout, render every environment (or
//! one), and judge each rendered environment as one set of objects with the same schemas and
//! policies as plain manifests.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use tally_validator::finding::{drop_consequences, sort_findings};
use tally_validator::gate::{self, GateOptions, GateReport, InputLimits};
use tally_validator::schema::SchemaRegistry;
use tally_validator::{Finding, ObjectRef, Severity, source};

use crate::check;
use crate::load::{self, LayoutError, Repo};
use crate::render::{self, Rendered};

/// A repo through the gate: its model, the gate's report, and each environment as rendered.
#[derive(Debug)]
pub struct GatedRepo {
    /// The repo as loaded.
    pub repo: Repo,
    /// Every finding: layout, rendering, schemas and policies.
    pub report: GateReport,
    /// Each environment gated, in the order gated, rendered once.
    pub environments: Vec<Rendered>,
}

impl GatedRepo {
    /// Takes one environment's rendering out (`None` when it was not gated).
    pub fn take_environment(&mut self, name: &str) -> Option<Rendered> {
        let at = self
            .environments
            .iter()
            .position(|r| r.environment == name)?;
        Some(self.environments.swap_remove(at))
    }
}

/// The repo at `root` through the gate: loaded once, each environment (or only `environment`)
/// rendered once and judged as one set. Every command that reads a repo (`validate`, `render`,
/// `plan`, `apply`, `run`) goes through here, so each judges exactly what the engine applies.
pub fn gate_repo(
    root: &Path,
    options: &GateOptions,
    environment: Option<&str>,
) -> Result<GatedRepo, LayoutError> {
    gate(root, options, environment, true)
}

/// The policy configuration and input limits of the repo at `root` (its `tally.yaml`), in
/// otherwise default gate options: how `plan`, `apply` and `run` gate a commit.
pub fn repo_options(root: &Path) -> Result<GateOptions, LayoutError> {
    let policy = tally_validator::policy::PolicyConfig::load(&root.join(load::REPO_FILE))?;
    Ok(GateOptions {
        policy,
        limits: load::input_limits(root, InputLimits::default()),
        ..GateOptions::default()
    })
}

/// Validates the repo at `root`: every environment, or only `environment`. As [`gate_repo`], but
/// each rendering is dropped once judged (a large repo's renders are never all held at once).
pub fn validate_repo(
    root: &Path,
    options: &GateOptions,
    environment: Option<&str>,
) -> Result<GateReport, LayoutError> {
    gate(root, options, environment, false).map(|g| g.report)
}

fn gate(
    root: &Path,
    options: &GateOptions,
    environment: Option<&str>,
    keep_renders: bool,
) -> Result<GatedRepo, LayoutError> {
    let repo = load::load_within(root, &options.limits)?;
    let mut findings = repo.findings.clone();
    findings.extend(check::check(&repo));
    let mut report = GateReport {
        sources: repo.sources.clone(),
        rule_docs: crate::rules::DOCS.to_vec(),
        ..GateReport::default()
    };
    let names: Vec<String> = match environment {
        Some(e) => vec![e.to_owned()],
        None => repo.environments.keys().cloned().collect(),
    };
    let mut versions = Vec::new();
    let mut checked: HashSet<(Arc<str>, ObjectRef)> = HashSet::new();
    let mut environments = Vec::new();
    for name in &names {
        let rendered = render::render(&repo, name, &options.excludes, &options.limits)?;
        let (found, version) = judge(&repo, &rendered, options)?;
        findings.extend(found);
        if !versions.contains(&version) {
            versions.push(version);
        }
        report.objects += rendered.objects.len();
        for o in &rendered.objects {
            let entry = (Arc::clone(&o.provenance.file), o.id.clone());
            if checked.insert(entry.clone()) {
                report.checked.push(entry);
            }
        }
        for (file, text) in rendered.sources.iter() {
            report.sources.insert(Arc::clone(file), Arc::clone(text));
        }
        if keep_renders {
            environments.push(rendered);
        }
    }
    findings.extend(options.policy.findings.iter().cloned());
    if let (Some(file), Some(text)) = (&options.policy.file, &options.policy.text) {
        report.sources.insert(Arc::clone(file), Arc::clone(text));
    }
    // An app shared by environments has the same problem in each: say it once.
    let mut seen = HashSet::new();
    findings.retain(|f| {
        seen.insert((
            f.rule,
            Arc::clone(&f.file),
            f.pos,
            f.message.clone(),
            f.severity,
            f.exempted.is_some(),
        ))
    });
    sort_findings(&mut findings);
    drop_consequences(&mut findings);
    report.findings = findings;
    report.kubernetes_version = versions.join(", ");
    report.files = report.sources.iter().count();
    Ok(GatedRepo {
        repo,
        report,
        environments,
    })
}

/// Schema and policy findings for one rendered environment, and the Kubernetes version used.
/// The version comes from `--kubernetes-version`, else the environment, else `tally.yaml`; one
/// that tally does not embed is a finding at the line that names it (and the newest is used).
pub fn judge(
    repo: &Repo,
    rendered: &Rendered,
    options: &GateOptions,
) -> Result<(Vec<Finding>, String), LayoutError> {
    let mut findings = rendered.findings.clone();
    let mut schema = options.schema.clone();
    if schema.kubernetes_version.is_none() {
        let env = repo.environments.get(&rendered.environment);
        let from_env = env.and_then(|e| Some((e.spec.kubernetes_version.clone()?, &e.object)));
        let from_repo = repo
            .repo
            .as_ref()
            .and_then(|r| Some((r.spec.kubernetes_version.clone()?, &r.object)));
        if let Some((version, object)) = from_env.or(from_repo) {
            let mut probe = schema.clone();
            probe.kubernetes_version = Some(version.clone());
            match SchemaRegistry::new(probe) {
                Ok(_) => schema.kubernetes_version = Some(version),
                Err(e) => findings.push(object.finding(
                    crate::load::rules::SCHEMA,
                    Severity::Error,
                    "/spec/kubernetesVersion",
                    e.to_string(),
                )),
            }
        }
    }
    let mut registry = SchemaRegistry::new(schema).map_err(gate::GateError::from)?;
    if !options.crds.is_empty() {
        let inputs = source::discover(&options.crds, &[]).map_err(gate::GateError::from)?;
        let crds = gate::load_inputs(&inputs)?;
        findings.extend(crds.findings);
        findings.extend(registry.add_crds(&crds.objects));
    }
    findings.extend(registry.add_crds(&rendered.objects));
    findings.extend(gate::check_set(&registry, &rendered.objects, options));
    Ok((findings, registry.kubernetes_version().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_validator::report::{self, Format, ReportOptions};

    /// A repo's report describes the layout's rules itself: SARIF gets their titles and help
    /// although the gate knows nothing of them.
    #[test]
    fn reports_describe_the_layouts_rules() {
        let dir = std::env::temp_dir().join(format!("tally-rule-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::init::init(&dir).unwrap_or_else(|e| panic!("{e}"));
        // An environment directory without its file: a `layout-identity` finding.
        std::fs::create_dir_all(dir.join("environments/qa")).unwrap_or_else(|e| panic!("{e}"));
        let found = validate_repo(&dir, &GateOptions::default(), None);
        let _ = std::fs::remove_dir_all(&dir);
        let report = found.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.rule_docs, crate::rules::DOCS);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule == load::rules::IDENTITY)
        );

        let mut out = Vec::new();
        report::write(Format::Sarif, &report, ReportOptions::default(), &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let log: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let identity = rules
            .iter()
            .find(|r| r["id"] == load::rules::IDENTITY)
            .unwrap_or_else(|| panic!("no descriptor for {}: {rules:#?}", load::rules::IDENTITY));
        let doc = crate::rules::describe(load::rules::IDENTITY);
        assert_eq!(
            identity["shortDescription"]["text"].as_str(),
            doc.map(|d| d.title)
        );
        assert_eq!(identity["help"]["text"].as_str(), doc.and_then(|d| d.help));
    }
}
