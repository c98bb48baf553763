//! Property tests of the gate under mutated input (fixed seed, bounded case count, a few
//! seconds): no panic, valid JSON and SARIF, every finding on a line of its file, and a broken
//! document never changes another document's findings. The long run is the fuzz harness
//! (`examples/fuzz.rs`).

mod support;

use support::fuzz::{self, Rng};
use tally_validator::gate::GateOptions;

#[test]
fn mutated_fixtures_never_break_the_gate() {
    let seeds = fuzz::corpus();
    assert!(seeds.len() > 20, "the fixtures and examples are the seeds");
    let (registry, options) = fuzz::setup();
    let mut rng = Rng::new(12);
    for i in 0..300 {
        let (name, bytes) = fuzz::mutate(&mut rng, &seeds);
        let report = fuzz::judge(&name, bytes.clone(), &registry, &options);
        if let Err(problem) = fuzz::check(&report, &name, &bytes) {
            panic!(
                "case {i} ({name}): {problem}\n--- input ---\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn a_broken_document_never_changes_another_documents_findings() {
    let seeds = fuzz::corpus();
    let (registry, _) = fuzz::setup();
    // Reading and schemas: policies that judge the set may rightly change with another object.
    let options = GateOptions {
        skip_policies: true,
        ..GateOptions::default()
    };
    let mut rng = Rng::new(34);
    let yaml: Vec<&fuzz::Seed> = seeds
        .iter()
        .filter(|s| !s.name.ends_with(".json"))
        .collect();
    let mut compared = 0;
    for i in 0..200 {
        let first = yaml[rng.below(yaml.len())];
        let Ok(text) = std::str::from_utf8(&first.bytes) else {
            continue;
        };
        // A file-wide verdict (a template, a file of no object) is about every document: the
        // first document is one object, with no template.
        let object = text.starts_with("apiVersion:") || text.contains("\napiVersion:");
        if !object || text.contains("{{") || text.contains("\n---") || text.starts_with("---") {
            continue;
        }
        let mut a = text.to_owned();
        if !a.ends_with('\n') {
            a.push('\n');
        }
        let a_lines = a.lines().count() as u32;
        let (_, b) = fuzz::mutate(&mut rng, &seeds);
        let broken = String::from_utf8_lossy(&b);
        if broken.contains("{{") {
            continue;
        }
        let whole = |second: &[u8]| {
            let mut bytes = a.clone().into_bytes();
            bytes.extend_from_slice(b"---\n");
            bytes.extend_from_slice(second);
            let report = fuzz::judge("pair.yaml", bytes, &registry, &options);
            let mut found: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.pos.line <= a_lines && f.pos.line > 0)
                .filter(|f| f.rule != "empty-file")
                .map(|f| format!("{}:{}:{} {}", f.rule, f.pos.line, f.pos.column, f.message))
                .collect();
            found.sort();
            found
        };
        let clean = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n";
        let with_clean = whole(clean);
        let with_broken = whole(&b);
        assert_eq!(
            with_clean, with_broken,
            "case {i}: {} changed by a broken second document:\n{broken}",
            first.name
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} pairs compared");
}
