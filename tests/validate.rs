//! End-to-end tests of `tally validate`: the binary run as a subprocess over the fixtures in
//! `tests/fixtures/` (binary and invalid-UTF-8 inputs are written at test time).
//!
//! Positions are asserted through `--format json`. Schema findings are not asserted here (the
//! schema tests own them): runs pass `--missing-schema ignore`, fixtures whose findings are listed
//! in full hold only valid built-in objects, and other tests look for the findings they expect
//! rather than for an exact list.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::{json, output, stdout, tally_command};
use serde_json::Value;

/// Runs `tally validate --no-policies ARGS...` from the crate root, with `input` on stdin.
fn run(args: &[&str], input: Option<&[u8]>) -> Output {
    // These tests are about reading, parsing and reporting: policies have tests of their own.
    let mut all = vec!["--no-policies"];
    all.extend_from_slice(args);
    run_validate(&all, input)
}

/// Runs `tally validate ARGS...` from the crate root, with `input` on stdin.
fn run_validate(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut child = common::tally_command()
        .arg("validate")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tally binary starts");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input).expect("writing stdin");
    }
    child.wait_with_output().expect("tally finishes")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("tally exits with a code")
}

/// A finding as the JSON report gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    rule: String,
    file: String,
    line: u64,
    column: u64,
    /// `metadata.name` of the finding's object, if it has one.
    object: Option<String>,
}

struct Report {
    code: i32,
    findings: Vec<Found>,
    summary: Value,
}

impl Report {
    /// The finding of `rule` at `line:column` of `file`; fails the test with every finding
    /// listed when there is none.
    fn at(&self, rule: &str, file: &str, line: u64, column: u64) -> &Found {
        self.findings
            .iter()
            .find(|f| f.rule == rule && f.file == file && f.line == line && f.column == column)
            .unwrap_or_else(|| {
                panic!(
                    "no {rule} at {file}:{line}:{column}; found {:#?}",
                    self.findings
                )
            })
    }

    fn of_rule(&self, rule: &str) -> Vec<&Found> {
        self.findings.iter().filter(|f| f.rule == rule).collect()
    }

    fn files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = self.findings.iter().map(|f| f.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        files
    }

    fn count(&self, key: &str) -> u64 {
        self.summary[key].as_u64().expect("a count in the summary")
    }
}

/// Runs with `--format json --missing-schema ignore` and parses the report.
fn check_with_input(args: &[&str], input: Option<&[u8]>) -> Report {
    let mut all = vec!["--format", "json", "--missing-schema", "ignore"];
    all.extend_from_slice(args);
    let out = run(&all, input);
    let doc = common::json(&out);
    let findings = doc["findings"]
        .as_array()
        .expect("a findings array")
        .iter()
        .map(|f| Found {
            rule: f["rule"].as_str().expect("rule").to_owned(),
            file: f["file"].as_str().expect("file").to_owned(),
            line: f["line"].as_u64().expect("line"),
            column: f["column"].as_u64().expect("column"),
            object: f["object"]["name"].as_str().map(str::to_owned),
        })
        .collect();
    Report {
        code: code(&out),
        findings,
        summary: doc["summary"].clone(),
    }
}

fn check(args: &[&str]) -> Report {
    check_with_input(args, None)
}

const FIXTURES: &str = "tests/fixtures";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

// --- Broken input: every class is a finding at its position -------------------------------------

#[test]
fn yaml_syntax_error() {
    let file = fixture("broken/syntax.yaml");
    let r = check(&[&file]);
    r.at("yaml-syntax", &file, 7, 8);
    assert_eq!(r.code, 1);
}

#[test]
fn duplicate_key_points_at_the_second_key() {
    let file = fixture("broken/duplicate-key.yaml");
    let r = check(&[&file]);
    let f = r.at("yaml-duplicate-key", &file, 8, 3);
    assert_eq!(f.object.as_deref(), Some("duplicate"));
    assert_eq!(r.of_rule("yaml-duplicate-key").len(), 1);
    assert_eq!(r.code, 1);
}

#[test]
fn documents_that_are_not_mappings() {
    let file = fixture("broken/not-mapping.yaml");
    let r = check(&[&file]);
    r.at("manifest-not-object", &file, 1, 1);
    r.at("manifest-not-object", &file, 4, 1);
    // The good document after the bad ones is still an object.
    assert_eq!(r.count("objects"), 1);
}

#[test]
fn missing_api_version_kind_and_name() {
    let file = fixture("broken/missing-fields.yaml");
    let r = check(&[&file]);
    r.at("missing-api-version", &file, 1, 1);
    r.at("missing-kind", &file, 5, 1);
    // `metadata` without `name`: at `metadata`; no `metadata` at all: at the document.
    r.at("missing-name", &file, 11, 1);
    r.at("missing-name", &file, 15, 1);
    assert_eq!(r.code, 1);
}

#[test]
fn template_leftovers_quoted_and_unquoted() {
    // Unquoted, a template breaks the document's structure: found while reading, policies or
    // not. Quoted, it is a string value: the policy `template-leftover` (exemptable) finds it.
    let quoted = fixture("broken/template-quoted.yaml");
    let unquoted = fixture("broken/template-unquoted.yaml");
    let r = check(&[&quoted, &unquoted]);
    r.at("template-leftover", &unquoted, 6, 13);
    // One cause, one finding: the schema's "expected string, found object" there is dropped.
    assert!(
        r.findings.iter().all(|f| f.rule != "schema-invalid"),
        "{:#?}",
        r.findings
    );
    assert_eq!(r.code, 1);
    let doc = json(&output(tally_command().args([
        "validate",
        "--no-config",
        "--format",
        "json",
        &quoted,
    ])));
    let leftover = doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "template-leftover");
    let at = leftover.map(|f| (f["line"].clone(), f["column"].clone()));
    assert_eq!(at, Some((6.into(), 10.into())), "{doc}");
}

#[test]
fn runtime_templates_in_data_are_not_leftovers() {
    let r = check(&[&fixture("broken/prometheus-rules.yaml")]);
    assert!(
        r.of_rule("template-leftover").is_empty(),
        "{:#?}",
        r.findings
    );
    assert_eq!(r.count("objects"), 1);
}

#[test]
fn tab_indentation() {
    let file = fixture("broken/tabs.yaml");
    let r = check(&[&file]);
    r.at("yaml-tab-indent", &file, 4, 1);
    assert_eq!(r.code, 1);
}

#[test]
fn invalid_utf8_binary_and_utf16_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("writing a fixture");
        path.display().to_string()
    };
    let latin1 = write(
        "latin1.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n",
    );
    let binary = write("image.yaml", b"apiVersion: v1\nkind: \x00\x01\x02\xff");
    let utf16 = write("utf16.yaml", b"\xff\xfea\x00:\x00 \x001\x00");
    let r = check(&[dir.path().to_str().expect("a UTF-8 temp path")]);
    r.at("file-encoding", &latin1, 4, 12);
    r.at("file-binary", &binary, 2, 7);
    r.at("file-encoding", &utf16, 1, 1);
    assert_eq!(r.count("files"), 3);
    assert_eq!(r.code, 1);
}

#[test]
#[cfg(unix)]
fn one_unreadable_file_never_stops_the_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let at = |name: &str| dir.path().join(name).display().to_string();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    std::fs::write(at("good.yaml"), cm("good")).expect("write");
    // One document with a stray Latin-1 byte, one with a NUL, and two good ones around them.
    let mixed = format!(
        "{}---\n{}  x: caf\u{e9}\n---\n{}  y: \0\n---\n{}",
        cm("first"),
        cm("latin1"),
        cm("nul"),
        cm("last")
    );
    let mut bytes = mixed.into_bytes();
    // `é` above is two bytes in UTF-8; make it the single (Latin-1) byte 0xE9.
    let e9 = bytes
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .expect("the é");
    bytes.splice(e9..e9 + 2, [0xE9]);
    std::fs::write(at("mixed.yaml"), bytes).expect("write");
    std::os::unix::fs::symlink(at("nowhere.yaml"), at("dangling.yaml")).expect("a link");
    let fifo_made = std::process::Command::new("mkfifo")
        .arg(at("pipe.yaml"))
        .status()
        .is_ok_and(|s| s.success());
    let r = check(&[dir.path().to_str().expect("a UTF-8 temp path")]);
    r.at("file-unreadable", &at("dangling.yaml"), 1, 1);
    if fifo_made {
        r.at("file-unreadable", &at("pipe.yaml"), 1, 1);
    }
    r.at("file-encoding", &at("mixed.yaml"), 10, 9);
    r.at("file-binary", &at("mixed.yaml"), 16, 6);
    // good, first and last: the documents around the broken ones are still objects.
    assert_eq!(r.count("objects"), 3, "{:#?}", r.findings);
    assert_eq!(r.code, 1);
    // Named on the command line, a dangling link is a finding too; a missing path is exit 2.
    let r = check(&[&at("dangling.yaml"), &at("good.yaml")]);
    r.at("file-unreadable", &at("dangling.yaml"), 1, 1);
    assert_eq!(r.count("objects"), 1);
}

#[test]
fn a_budget_crossed_is_one_finding_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let at = |name: &str| dir.path().join(name).display().to_string();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    std::fs::write(at("a-small.yaml"), cm("small")).expect("write");
    std::fs::write(at("b-big.yaml"), cm(&"x".repeat(300))).expect("write");
    let stream: Vec<String> = (0..4).map(|i| cm(&format!("doc{i}"))).collect();
    std::fs::write(at("c-stream.yaml"), stream.join("---\n")).expect("write");
    let deep = format!("a: {}1{}\n", "[".repeat(40), "]".repeat(40));
    std::fs::write(at("d-deep.yaml"), deep).expect("write");
    let r = check(&[
        "--max-file-size",
        "300",
        "--max-documents",
        "2",
        "--max-depth",
        "20",
        dir.path().to_str().expect("a UTF-8 temp path"),
    ]);
    r.at("input-limit", &at("b-big.yaml"), 1, 1);
    // The third document starts at the second `---` (line 10).
    r.at("input-limit", &at("c-stream.yaml"), 10, 1);
    assert_eq!(r.of_rule("input-limit").len(), 3, "{:#?}", r.findings);
    // small, and the stream's first two documents.
    assert_eq!(r.count("objects"), 3);
    assert_eq!(r.code, 1);
    // The run's total: the files past it (in order) are not read.
    let r = check(&[
        "--max-input-size",
        "100",
        &at("a-small.yaml"),
        &at("c-stream.yaml"),
    ]);
    r.at("input-limit", &at("c-stream.yaml"), 1, 1);
    assert_eq!(r.count("objects"), 1);
    // Stdin is read up to the limit, never past it.
    let endless = "# padding\n".repeat(1000);
    let r = check_with_input(&["--max-file-size", "1K", "-"], Some(endless.as_bytes()));
    r.at("input-limit", "<stdin>", 1, 1);
}

#[test]
fn smaller_misreadings_are_named_where_they_are() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let at = |name: &str| dir.path().join(name).display().to_string();
    let json = "{\n  \"apiVersion\": \"v1\",\n  // the kind\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"a\"}\n}\n";
    std::fs::write(at("commented.json"), json).expect("write");
    std::fs::write(at("empty.yaml"), "").expect("write");
    std::fs::write(at("comments.yaml"), "# nothing yet\n---\n# still nothing\n").expect("write");
    let tagged = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\ndata:\n  bucket: !Ref Bucket\n  big: 1e400\n";
    std::fs::write(at("tagged.yaml"), tagged).expect("write");
    let r = check(&[
        "--show",
        "info",
        dir.path().to_str().expect("a UTF-8 temp path"),
    ]);
    r.at("yaml-syntax", &at("commented.json"), 3, 3);
    r.at("empty-file", &at("empty.yaml"), 1, 1);
    r.at("empty-file", &at("comments.yaml"), 1, 1);
    r.at("yaml-unknown-tag", &at("tagged.yaml"), 6, 11);
    r.at("yaml-unrepresentable", &at("tagged.yaml"), 7, 8);
    assert_eq!(r.findings.len(), 5, "{:#?}", r.findings);
}

#[test]
fn yaml11_booleans_and_octals_are_warnings() {
    let file = fixture("broken/yaml11.yaml");
    let r = check(&[&file]);
    let yes = r.at("yaml-ambiguous-bool", &file, 6, 12);
    assert_eq!(yes.object.as_deref(), Some("feature-flags"));
    let octal = r.at("yaml-ambiguous-number", &file, 24, 22);
    assert_eq!(octal.object.as_deref(), Some("web"));
    // A quoted "no" is a string to every reader.
    assert_eq!(r.of_rule("yaml-ambiguous-bool").len(), 1);
}

// --- Streams, lists, discovery -------------------------------------------------------------------

#[test]
fn one_bad_document_does_not_hide_the_others() {
    let file = fixture("broken/multi-document.yaml");
    let r = check(&[&file]);
    // The unclosed `[` runs to the end of its document: reported at the end of its line.
    r.at("yaml-syntax", &file, 13, 11);
    let dup = r.at("yaml-duplicate-key", &file, 21, 3);
    assert_eq!(dup.object.as_deref(), Some("third"));
    // `first` and `third` are objects; `second` is lost to its syntax error.
    assert_eq!(r.count("objects"), 2);
}

#[test]
fn kind_list_is_expanded_with_item_positions() {
    let file = fixture("broken/list.yaml");
    let r = check(&[&file]);
    r.at("yaml-ambiguous-bool", &file, 16, 13);
    assert_eq!(r.count("objects"), 2);
    let out = run(
        &["--format", "junit", "--missing-schema", "ignore", &file],
        None,
    );
    let xml = stdout(&out);
    assert!(xml.contains(r#"<testcase name="ConfigMap one""#), "{xml}");
    assert!(
        xml.contains(r#"<testcase name="ConfigMap team-a/two""#),
        "{xml}"
    );
}

#[test]
fn yml_and_json_are_discovered_hidden_and_other_files_are_not() {
    let dir = fixture("discovery");
    let r = check(&[&dir]);
    assert_eq!(r.count("files"), 3);
    assert_eq!(r.count("objects"), 3);
    // The JSON file is indented with tabs, which JSON allows: only its duplicate key is reported.
    let json = fixture("discovery/c.json");
    r.at("yaml-duplicate-key", &json, 9, 3);
    assert_eq!(r.files(), [json.as_str()]);
    let out = run(
        &["--format", "junit", "--missing-schema", "ignore", &dir],
        None,
    );
    let xml = stdout(&out);
    for name in ["a.yaml", "b.yml", "c.json"] {
        let suite = format!(r#"<testsuite name="{dir}/{name}""#);
        assert!(xml.contains(&suite), "{suite} missing from {xml}");
    }
    assert!(!xml.contains(".hidden.yaml") && !xml.contains("notes.txt"));
}

#[test]
fn exclude_and_tallyignore_are_honoured() {
    let dir = fixture("ignore");
    let kept = fixture("ignore/kept.yaml");
    let by_flag = fixture("ignore/skipped-by-flag.yaml");
    let r = check(&[&dir]);
    assert_eq!(r.files(), [kept.as_str(), by_flag.as_str()]);
    let r = check(&[&dir, "--exclude", "skipped-by-flag.yaml"]);
    assert_eq!(r.files(), [kept.as_str()]);
    assert_eq!(r.count("files"), 1);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let input = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: piped\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let r = check_with_input(&["-"], Some(input));
    let f = r.at("yaml-duplicate-key", "<stdin>", 7, 3);
    assert_eq!(f.object.as_deref(), Some("piped"));
    assert_eq!(r.count("files"), 1);
    assert_eq!(r.code, 1);
}

// --- Exit status ---------------------------------------------------------------------------------

#[test]
fn exit_0_when_clean() {
    let out = run(&["--missing-schema", "ignore", &fixture("valid")], None);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ok: no findings in 2 files"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn exit_1_on_errors_unless_fail_on_never() {
    let file = fixture("broken/duplicate-key.yaml");
    assert_eq!(code(&run(&["--missing-schema", "ignore", &file], None)), 1);
    let never = run(
        &["--missing-schema", "ignore", "--fail-on", "never", &file],
        None,
    );
    assert_eq!(code(&never), 0);
}

#[test]
fn fail_on_warning() {
    // Only a YAML 1.1 warning in this file.
    let file = fixture("broken/list.yaml");
    assert_eq!(check(&[&file]).code, 0);
    assert_eq!(check(&[&file, "--fail-on", "warning"]).code, 1);
    assert_eq!(check(&[&file, "--fail-on", "error"]).code, 0);
}

#[test]
fn exit_2_for_a_missing_path() {
    let out = run(&[&fixture("no-such-dir/app.yaml")], None);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-dir/app.yaml"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn exit_2_for_a_bad_format() {
    let valid = fixture("valid");
    for args in [
        vec!["--format", "xml", &valid],
        vec!["--output", "xml=report.xml", &valid],
        vec!["--output", "report.json", &valid],
    ] {
        let out = run(&args, None);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("xml") || err.contains("FORMAT=PATH"), "{err}");
    }
}

// --- Reports -------------------------------------------------------------------------------------

#[test]
fn several_outputs_at_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let file = fixture("broken/yaml11.yaml");
    let outputs = [
        format!("json={}", path("report.json")),
        format!("sarif={}", path("report.sarif")),
        format!("junit={}", path("report.xml")),
        format!("github={}", path("annotations.txt")),
    ];
    let mut args = vec!["--missing-schema", "ignore", &file];
    for o in &outputs {
        args.extend(["--output", o.as_str()]);
    }
    let out = run(&args, None);
    assert_eq!(code(&out), 0);
    // Stdout keeps the default human format, without colour when piped.
    let human = stdout(&out);
    assert!(human.contains("warning[yaml-ambiguous-bool]"), "{human}");
    assert!(!human.contains('\x1b'));

    let read = |name: &str| std::fs::read_to_string(path(name)).expect("the report was written");
    let json: Value = serde_json::from_str(&read("report.json")).expect("JSON");
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(2));
    let sarif: Value = serde_json::from_str(&read("report.sarif")).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    let location = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], file.as_str());
    assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(location["region"]["startLine"], 6);
    assert_eq!(location["region"]["startColumn"], 12);
    let junit = read("report.xml");
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(
        junit.contains(r#"<testsuites name="tally validate" tests="2" failures="2""#),
        "{junit}"
    );
    let github = read("annotations.txt");
    assert!(
        github.starts_with(&format!(
            "::warning file={file},line=6,col=12,title=yaml-ambiguous-bool::"
        )),
        "{github}"
    );
    assert_eq!(github.lines().count(), 2);
}

#[test]
fn sarif_regions_match_the_json_positions() {
    let dir = fixture("broken");
    let r = check(&[&dir]);
    let out = run(
        &["--format", "sarif", "--missing-schema", "ignore", &dir],
        None,
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), r.findings.len());
    for (result, f) in results.iter().zip(&r.findings) {
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(result["ruleId"], f.rule.as_str());
        assert_eq!(location["artifactLocation"]["uri"], f.file.as_str());
        assert_eq!(location["region"]["startLine"], f.line);
        assert_eq!(location["region"]["startColumn"], f.column);
    }
}

#[test]
fn human_report_quotes_the_line_with_carets() {
    let out = run(
        &[
            "--missing-schema",
            "ignore",
            &fixture("broken/duplicate-key.yaml"),
        ],
        None,
    );
    let text = stdout(&out);
    let expected = format!(
        "error[yaml-duplicate-key]: duplicate key `color` (first at line 6); the API server rejects duplicate fields
  --> {}:8:3
   |
 8 |   color: red
   |   ^^^^^
   = object: ConfigMap duplicate
",
        fixture("broken/duplicate-key.yaml")
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains("yaml-duplicate-key"));
    assert!(
        text.trim_end().ends_with("1 error, 0 warnings, 0 infos"),
        "{text}"
    );

    let coloured = run(
        &[
            "--missing-schema",
            "ignore",
            "--color",
            "always",
            &fixture("broken/duplicate-key.yaml"),
        ],
        None,
    );
    assert!(stdout(&coloured).contains("\x1b[1;31merror[yaml-duplicate-key]"));
}

#[test]
fn human_report_puts_errors_first_and_counts_infos_unless_shown() {
    let file = fixture("broken/yaml11.yaml");
    // With policies: infos come only from them. Without a config: every rule at its default.
    let human = |show: &[&str]| {
        let mut args = vec!["--no-config", "--missing-schema", "ignore"];
        args.extend_from_slice(show);
        args.push(&file);
        stdout(&run_validate(&args, None))
    };
    let headers = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with(' ') && l.contains("]: "))
            .map(|l| l.split('[').next().unwrap_or(l).to_owned())
            .collect()
    };
    let severities = |text: &str| {
        let mut seen = headers(text);
        seen.dedup();
        seen
    };

    let default = human(&[]);
    assert_eq!(severities(&default), ["error", "warning"], "{default}");
    assert!(
        default.ends_with(
            "4 errors, 8 warnings, 2 infos\n2 infos not shown; `tally validate --show info` lists them\n"
        ),
        "{default}"
    );

    let all = human(&["--show", "info"]);
    assert_eq!(severities(&all), ["error", "warning", "info"], "{all}");
    assert!(all.ends_with("4 errors, 8 warnings, 2 infos\n"), "{all}");

    let errors = human(&["--show", "error"]);
    assert_eq!(severities(&errors), ["error"], "{errors}");
    assert!(
        errors.ends_with(
            "8 warnings and 2 infos not shown; `tally validate --show info` lists them\n"
        )
    );

    // Machine formats list every finding whatever `--show` says.
    let json = run_validate(
        &[
            "--no-config",
            "--missing-schema",
            "ignore",
            "--format",
            "json",
            "--show",
            "error",
            &file,
        ],
        None,
    );
    let doc: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(14));

    let bad = run_validate(&["--show", "debug", &file], None);
    assert_eq!(code(&bad), 2);
}

#[test]
fn fixtures_exist() {
    // Guards against running from the wrong directory and asserting over nothing.
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(FIXTURES)
            .is_dir()
    );
}
