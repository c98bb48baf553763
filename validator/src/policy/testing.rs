//! Test support: inline YAML through the real loader, the real engine, sorted findings.

use std::sync::Arc;

use crate::finding::{Finding, sort_findings};
use crate::manifest::objects_from;
use crate::object::Object;
use crate::yaml;

use super::{PolicyConfig, PolicyEngine};

/// Objects from `(file, text)` pairs; panics on YAML or manifest problems (tests only).
pub(crate) fn objects(files: &[(&str, &str)]) -> Vec<Object> {
    let mut out = Vec::new();
    for (name, text) in files {
        let file: Arc<str> = Arc::from(*name);
        let parsed = objects_from(&file, yaml::load(&file, text));
        assert!(
            parsed.findings.is_empty(),
            "{name}: fixture does not load cleanly: {:#?}",
            parsed.findings
        );
        out.extend(parsed.objects);
    }
    out
}

/// Every policy finding for the files, with a configuration, sorted.
pub(crate) fn findings_with(config: &PolicyConfig, files: &[(&str, &str)]) -> Vec<Finding> {
    let objects = objects(files);
    let mut all = PolicyEngine::new(config).check(&objects);
    sort_findings(&mut all);
    all
}

/// Every policy finding for one file, default configuration.
pub(crate) fn findings(text: &str) -> Vec<Finding> {
    findings_with(&PolicyConfig::default(), &[("t.yaml", text)])
}

/// (line, column) of each finding of `rule` for one file.
pub(crate) fn at(rule: &str, text: &str) -> Vec<(u32, u32)> {
    findings(text)
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.pos.line, f.pos.column))
        .collect()
}

/// The findings of `rule` for one file.
pub(crate) fn of(rule: &str, text: &str) -> Vec<Finding> {
    findings(text)
        .into_iter()
        .filter(|f| f.rule == rule)
        .collect()
}

/// The rule ids of findings, in order.
pub(crate) fn rules_of(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

/// A Deployment whose pod spec is `pod_spec` (indented by six spaces already), in namespace
/// `shop`, starting at line 1. Its pod spec's first line is line 14.
pub(crate) fn deployment(pod_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
{pod_spec}"
    )
}
