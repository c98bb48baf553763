//! The policy engine through the gate: the compliant example stays clean, and configuration,
//! exemptions and their reporting work end to end.

use std::path::{Path, PathBuf};

use tally_validator::Severity;
use tally_validator::gate::{self, GateOptions};
use tally_validator::policy::{PolicyConfig, rules};
use tally_validator::report::{self, Format, ReportOptions, Summary};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn is_policy(rule: &str) -> bool {
    rules::all_ids().any(|id| id == rule)
}

#[test]
fn the_compliant_example_has_no_policy_findings_at_all() {
    let options = GateOptions::default();
    let report = gate::validate_paths(&[repo().join("examples/compliant")], &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let policy: Vec<_> = report
        .findings
        .iter()
        .filter(|f| is_policy(f.rule))
        .collect();
    assert!(policy.is_empty(), "{policy:#?}");
    assert!(report.objects > 25, "{} objects", report.objects);
}

/// A scratch directory under the target dir, removed first.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
}

const AGENT: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: monitoring
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      hostPID: true
      containers:
        - name: agent
          image: registry.example.com/ops/agent:3.2.0
";

#[test]
fn configuration_exempts_disables_and_is_itself_checked() {
    let dir = scratch("policy-config-flow");
    write(&dir, "agent.yaml", AGENT);
    write(
        &dir,
        "tally.yaml",
        "apiVersion: tally.dev/v1alpha1
kind: Repo
policies:
  rules:
    liveness-probe: false
    seccomp-profile: error
    no-such-rule: false
  exemptions:
    - rules: [host-namespaces]
      reason: the agent reads every process's metrics (SEC-9)
      namespaces: [monitoring]
      kinds: [DaemonSet]
",
    );
    let policy = PolicyConfig::load(&dir.join("tally.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let options = GateOptions {
        policy,
        ..GateOptions::default()
    };
    let report = gate::validate_paths(std::slice::from_ref(&dir), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    // The configuration is not read as a manifest.
    assert_eq!(report.files, 1);
    let by_rule = |rule: &str| {
        report
            .findings
            .iter()
            .filter(|f| f.rule == rule)
            .collect::<Vec<_>>()
    };
    // Off.
    assert!(by_rule(rules::LIVENESS_PROBE).is_empty());
    // Severity override.
    assert!(
        by_rule(rules::SECCOMP_PROFILE)
            .iter()
            .all(|f| f.severity == Severity::Error)
    );
    // Exempted, still reported, at its line, with its reason.
    let host = by_rule(rules::HOST_NAMESPACES);
    assert_eq!(host.len(), 1);
    assert_eq!((host[0].pos.line, host[0].pos.column), (11, 7));
    let exemption = host[0]
        .exempted
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", host[0]));
    assert!(exemption.reason.contains("SEC-9"));
    assert!(
        exemption
            .source
            .ends_with("policies.exemptions[0] (line 9)"),
        "{}",
        exemption.source
    );
    // The configuration's own mistake, at its line in tally.yaml.
    let config = by_rule(rules::POLICY_CONFIG);
    assert_eq!(config.len(), 1);
    assert!(config[0].file.ends_with("tally.yaml"));
    assert_eq!(config[0].pos.line, 7);
    // Counted apart in the summary, and listed as exempted in JSON.
    let summary = Summary::of(&report);
    assert_eq!(summary.exempted, 1);
    assert!(!summary.rules.contains_key(rules::HOST_NAMESPACES));
    let mut json = Vec::new();
    report::write(Format::Json, &report, ReportOptions::default(), &mut json)
        .unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}"));
    let listed = json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == rules::HOST_NAMESPACES)
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        listed["exempted"]["reason"],
        "the agent reads every process's metrics (SEC-9)"
    );
}

#[test]
fn an_annotation_without_a_reason_fails_the_run() {
    let dir = scratch("policy-annotation");
    let text = AGENT.replace(
        "  namespace: monitoring\n",
        "  namespace: monitoring\n  annotations:\n    tally.dev/exempt: host-namespaces\n",
    );
    write(&dir, "agent.yaml", &text);
    let report = gate::validate_paths(std::slice::from_ref(&dir), &GateOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let missing: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == rules::EXEMPTION_MISSING_REASON)
        .collect();
    assert_eq!(missing.len(), 1);
    assert_eq!((missing[0].pos.line, missing[0].pos.column), (7, 5));
    assert!(report.fails(Severity::Error));
    assert!(
        report
            .findings
            .iter()
            .filter(|f| f.rule == rules::HOST_NAMESPACES)
            .all(|f| f.exempted.is_none())
    );
}

/// Times the policy pass against reading and parsing, on a corpus named by `TALLY_BENCH_DIR`:
/// `TALLY_BENCH_DIR=corpus cargo test --release -p tally-validator --test policies -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test: needs TALLY_BENCH_DIR"]
fn policy_cost_on_a_corpus() {
    use std::time::Instant;
    use tally_validator::policy::PolicyEngine;
    use tally_validator::source;
    let Some(dir) = std::env::var_os("TALLY_BENCH_DIR") else {
        return;
    };
    let inputs = source::discover(&[PathBuf::from(dir)], &[]).unwrap_or_else(|e| panic!("{e}"));
    let engine = PolicyEngine::default();
    let mut best = (f64::MAX, f64::MAX, f64::MAX);
    let mut count = (0, 0);
    for _ in 0..5 {
        let t = Instant::now();
        let loaded = gate::load_inputs(&inputs).unwrap_or_else(|e| panic!("{e}"));
        let parse = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let index = engine.index(&loaded.objects);
        let index_time = t.elapsed().as_secs_f64();
        let t = Instant::now();
        use rayon::prelude::*;
        let mut findings: Vec<_> = loaded
            .objects
            .par_iter()
            .flat_map_iter(|o| engine.check_object(o, &index))
            .collect();
        findings.extend(engine.check_set(&index));
        let check = t.elapsed().as_secs_f64();
        best = (best.0.min(parse), best.1.min(index_time), best.2.min(check));
        count = (loaded.objects.len(), findings.len());
    }
    // What each rule costs alone (index excluded), to find the expensive ones.
    if std::env::var_os("TALLY_BENCH_RULES").is_some() {
        use tally_validator::policy::config::RuleSetting;
        let loaded = gate::load_inputs(&inputs).unwrap_or_else(|e| panic!("{e}"));
        let index = engine.index(&loaded.objects);
        for only in rules::all_ids() {
            let mut config = PolicyConfig::default();
            for id in rules::all_ids().filter(|id| *id != only && !rules::is_engine_rule(id)) {
                config.rules.insert(
                    id.to_owned(),
                    RuleSetting {
                        enabled: Some(false),
                        severity: None,
                    },
                );
            }
            let one = PolicyEngine::new(&config);
            let t = Instant::now();
            for o in &loaded.objects {
                std::hint::black_box(one.check_object(o, &index));
            }
            std::hint::black_box(one.check_set(&index));
            eprintln!(
                "{only:>32}: {:.2} ms (one thread)",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    eprintln!(
        "{} objects, {} findings: read+parse {:.1} ms, index {:.1} ms, policies {:.1} ms",
        count.0,
        count.1,
        best.0 * 1e3,
        best.1 * 1e3,
        best.2 * 1e3
    );
}
