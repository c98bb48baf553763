//! `tally policies`, `tally policies explain` and `tally validate --config`, end to end.

mod common;

use common::{stdout, tally};

#[test]
fn policies_lists_the_catalog() {
    let o = tally(&["policies"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("secret-as-volume ") && l.contains(" error ")),
        "{text}"
    );
}

#[test]
fn explain_shows_a_violation_and_its_fix() {
    let o = tally(&["policies", "explain", "no-latest-tag"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for part in [
        "Why:",
        "Fix:",
        "References:",
        "Violation:",
        "Fixed:",
        ":latest",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let o = tally(&["policies", "explain", "no-latest-tags"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `no-latest-tag`"));
}

#[test]
fn the_compliant_example_passes_at_every_level() {
    let o = tally(&[
        "validate",
        "examples/compliant",
        "--fail-on",
        "info",
        "--no-config",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn config_flag_reads_the_file_and_a_missing_file_is_a_usage_error() {
    let dir = common::temp_dir("cli-config");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("policies.yaml");
    std::fs::write(
        &config,
        "apiVersion: tally.dev/v1alpha1\nkind: Repo\npolicies:\n  rules:\n    no-such-rule: false\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = config.to_string_lossy().into_owned();
    let o = tally(&[
        "validate",
        "examples/compliant",
        "--config",
        &config,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("\"rule\": \"policy-config\""));
    let o = tally(&[
        "validate",
        "examples/compliant",
        "--config",
        "does-not-exist.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
