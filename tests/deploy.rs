//! The manifests that run the daemon (`deploy/`) pass tally's own gate: no finding at any
//! severity, and the one exemption (the webhook Secret that is never committed) is explained.

mod common;

use serde_json::Value;

#[test]
fn deploy_manifests_pass_the_gate_with_no_finding() {
    let out = common::tally(&[
        "validate",
        "deploy",
        "--fail-on",
        "info",
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report = common::json(&out);
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
    // Every kind the daemon needs is there.
    assert_eq!(report["summary"]["objects"], 16, "{stdout}");
}
