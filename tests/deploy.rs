//! The manifests that run the daemon (`deploy/`) and the runner pods (`deploy/runner/`) pass
//! tally's own gate: no finding at any severity, and the one exemption (the webhook Secret that
//! is never committed) is explained. `tally validate deploy` walks the whole tree, `deploy/runner`
//! included.

mod common;

use serde_json::Value;

/// `tally validate PATH --fail-on info --format json`, which must pass: its report, and its
/// output for messages.
fn gate(path: &str) -> (Value, String) {
    let out = common::tally(&["validate", path, "--fail-on", "info", "--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    (common::json(&out), stdout)
}

#[test]
fn deploy_manifests_pass_the_gate_with_no_finding() {
    let (report, stdout) = gate("deploy");
    let findings = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array: {stdout}"));
    let open: Vec<&Value> = findings
        .iter()
        .filter(|f| f["exempted"].is_null())
        .collect();
    assert!(open.is_empty(), "findings in deploy/: {open:#?}");
    let exempted: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or(""),
                f["exempted"]["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(exempted.len(), 1, "{exempted:?}");
    assert_eq!(exempted[0].0, "references-resolve");
    assert!(exempted[0].1.contains("tally-webhook"), "{exempted:?}");
    // Every kind the daemon (18) and the runner pods (10) need is there.
    assert_eq!(report["summary"]["objects"], 28, "{stdout}");
}

#[test]
fn runner_manifests_pass_the_gate_alone_and_set_aside_what_is_not_a_manifest() {
    let (report, stdout) = gate("deploy/runner");
    assert_eq!(report["findings"], serde_json::json!([]), "{stdout}");
    assert_eq!(report["summary"]["objects"], 10, "{stdout}");
    // The Helm values and the example workflow are not Kubernetes objects: the gate says it
    // skipped them rather than judging them.
    assert_eq!(
        report["skipped"],
        serde_json::json!(["deploy/runner/apply.yml", "deploy/runner/values.yaml"]),
        "{stdout}"
    );
}

/// The runner's account shares the daemon's rules instead of copying them: deploy/runner/ binds
/// the ClusterRole and Role of deploy/20-rbac.yaml and defines no role of its own, and the
/// daemon's Lease stays in a Role the runner is not bound to.
#[test]
fn runner_rbac_is_the_daemons_without_the_lease() {
    let read = |path: &str| {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let runner = read("deploy/runner/20-rbac.yaml");
    assert!(!runner.contains("\nkind: ClusterRole\n"), "{runner}");
    assert!(!runner.contains("\nkind: Role\n"), "{runner}");
    assert!(!runner.contains("rules:"), "{runner}");
    assert!(
        runner.contains("kind: ClusterRole\n  name: tally\n"),
        "{runner}"
    );
    assert!(runner.contains("kind: Role\n  name: tally\n"), "{runner}");
    assert!(!runner.contains("name: tally-leader-election"), "{runner}");
    let daemon = read("deploy/20-rbac.yaml");
    let lease_role = daemon
        .split("\n---\n")
        .find(|doc| doc.contains("kind: Role\n") && doc.contains("resources: [leases]"))
        .unwrap_or_else(|| panic!("no Role with leases in deploy/20-rbac.yaml"));
    assert!(
        lease_role.contains("name: tally-leader-election"),
        "{lease_role}"
    );
    let values = read("deploy/runner/values.yaml");
    assert!(
        values.contains("serviceAccountName: tally-runner"),
        "{values}"
    );
}
