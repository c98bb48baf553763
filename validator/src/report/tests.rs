//! Snapshot tests of every format over one fixed report: several files, every severity, a
//! finding without an object, findings with help, an exempted finding, and a clean file.

use std::sync::Arc;

use super::*;
use crate::finding::{Exemption, Finding, Pos};
use crate::gate::{GateReport, Sources};
use crate::object::ObjectRef;

const DEPLOY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replica: 3
  template:
    spec:
      containers:
        - name: web
          image: nginx:latest
          securityContext:
            privileged: yes
";

const SETTINGS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: team-a
data:
  greeting: \"héllo, 世界\"
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
";

const BROKEN: &str = "\
apiVersion: v1
kind: ConfigMap
data: [1, 2
";

fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    }
}

fn fixed_report() -> GateReport {
    let deploy: Arc<str> = Arc::from("apps/web/deploy.yaml");
    let service: Arc<str> = Arc::from("./apps/web/service.yaml");
    let settings: Arc<str> = Arc::from("config/settings.yml");
    let broken: Arc<str> = Arc::from("broken.yaml");
    let web = object("apps/v1", "Deployment", Some("default"), "web");
    let cm = object("v1", "ConfigMap", Some("team-a"), "settings");
    let mut sources = Sources::default();
    sources.insert(Arc::clone(&deploy), Arc::from(DEPLOY));
    sources.insert(Arc::clone(&settings), Arc::from(SETTINGS));
    sources.insert(Arc::clone(&broken), Arc::from(BROKEN));
    sources.insert(Arc::clone(&service), Arc::from("kind: Service\n"));
    let mut findings = vec![
        Finding::new(
            "yaml-syntax",
            Severity::Error,
            &broken,
            Pos::new(4, 1),
            "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence",
        ),
        Finding::new(
            "schema-unknown-field",
            Severity::Error,
            &deploy,
            Pos::new(7, 3),
            "unknown field `replica` in Deployment `spec`; did you mean `replicas`?",
        )
        .with_help("`spec` accepts: minReadySeconds, paused, replicas, selector, strategy, template")
        .with_object(web.clone()),
        Finding::new(
            "no-latest-tag",
            Severity::Warning,
            &deploy,
            Pos::new(12, 18),
            "image `nginx:latest` has no fixed tag",
        )
        .with_object(web.clone()),
        Finding::new(
            "yaml-ambiguous-bool",
            Severity::Warning,
            &deploy,
            Pos::new(14, 25),
            "`yes` is the string \"yes\" to YAML 1.2 but the boolean true to YAML 1.1 readers; quote it, or write true",
        )
        .with_object(web.clone()),
        Finding::new(
            "configmap-unused",
            Severity::Info,
            &settings,
            Pos::new(7, 13),
            "ConfigMap `settings` is not mounted by any pod in this input (100% of keys unused)",
        )
        .with_object(cm.clone()),
    ];
    findings[2].exempted = Some(Exemption {
        source: "annotation".into(),
        reason: "the tag is pinned by digest at deploy time".into(),
    });
    crate::finding::sort_findings(&mut findings);
    GateReport {
        findings,
        files: 4,
        objects: 4,
        checked: vec![
            (Arc::clone(&deploy), web),
            (
                Arc::clone(&service),
                object("v1", "Service", Some("default"), "web"),
            ),
            (Arc::clone(&settings), cm),
            (
                Arc::clone(&settings),
                object("v1", "Namespace", None, "team-a"),
            ),
        ],
        kubernetes_version: "1.37".into(),
        sources,
        skipped: Vec::new(),
        rule_docs: Vec::new(),
    }
}

fn render(format: Format, report: &GateReport, color: bool) -> String {
    let mut out = Vec::new();
    let options = ReportOptions {
        color,
        ..ReportOptions::default()
    };
    write(format, report, options, &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("reports are UTF-8")
}

#[test]
fn human() {
    insta::assert_snapshot!(render(Format::Human, &fixed_report(), false));
}

#[test]
fn human_in_colour_marks_severities_and_dims_exemptions() {
    let text = render(Format::Human, &fixed_report(), true);
    assert!(text.contains("\x1b[1;31merror[schema-unknown-field]\x1b[0m"));
    assert!(text.contains("\x1b[1;33mwarning[yaml-ambiguous-bool]\x1b[0m"));
    assert!(text.contains("\x1b[2mexempted warning[no-latest-tag]"));
    let plain = render(Format::Human, &fixed_report(), false);
    assert!(!plain.contains('\x1b'));
}

#[test]
fn human_without_findings_is_one_line() {
    let report = GateReport {
        files: 3,
        objects: 7,
        kubernetes_version: "1.37".into(),
        ..GateReport::default()
    };
    assert_eq!(
        render(Format::Human, &report, false),
        "ok: no findings in 3 files and 7 objects (Kubernetes 1.37)\n"
    );
}

#[test]
fn json() {
    insta::assert_snapshot!(render(Format::Json, &fixed_report(), false));
}

#[test]
fn sarif() {
    let text = render(Format::Sarif, &fixed_report(), false);
    insta::assert_snapshot!(text.replace(env!("CARGO_PKG_VERSION"), "[version]"));
}

#[test]
fn sarif_results_point_at_real_regions() {
    let text = render(Format::Sarif, &fixed_report(), false);
    let log: serde_json::Value = serde_json::from_str(&text).expect("SARIF is JSON");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    for r in results {
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().is_some_and(|l| l >= 1));
        assert!(region["startColumn"].as_u64().is_some_and(|c| c >= 1));
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
    }
    assert_eq!(rules.len(), 5, "one descriptor per rule");
}

#[test]
fn sarif_describes_rules_from_the_reports_own_docs() {
    let file: Arc<str> = Arc::from("app.yaml");
    let report = GateReport {
        findings: vec![Finding::new(
            "caller-rule",
            Severity::Error,
            &file,
            Pos::new(1, 1),
            "m",
        )],
        rule_docs: vec![crate::RuleDoc::new(
            "caller-rule",
            "A rule the caller raises.",
            Some("Fix it like this."),
        )],
        ..GateReport::default()
    };
    let text = render(Format::Sarif, &report, false);
    let log: serde_json::Value = serde_json::from_str(&text).expect("SARIF is JSON");
    let rule = &log["runs"][0]["tool"]["driver"]["rules"][0];
    assert_eq!(
        rule["shortDescription"]["text"],
        "A rule the caller raises."
    );
    assert_eq!(rule["help"]["text"], "Fix it like this.");
}

#[test]
fn junit() {
    insta::assert_snapshot!(render(Format::Junit, &fixed_report(), false));
}

#[test]
fn github() {
    insta::assert_snapshot!(render(Format::Github, &fixed_report(), false));
}

#[test]
fn summary_counts() {
    let s = Summary::of(&fixed_report());
    assert_eq!(
        (
            s.files, s.objects, s.errors, s.warnings, s.infos, s.exempted
        ),
        (4, 4, 2, 1, 1, 1)
    );
}

// --- The human format: order, `show`, one cause, repeats -----------------------------------------

fn render_human(report: &GateReport, show: Severity) -> String {
    let mut out = Vec::new();
    let options = ReportOptions { color: false, show };
    write(Format::Human, report, options, &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("reports are UTF-8")
}

/// Where each `severity[rule]` header starts, in order.
fn headers(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("error[") || l.starts_with("warning[") || l.starts_with("info["))
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect()
}

#[test]
fn human_prints_errors_before_warnings_each_by_file_and_position() {
    let text = render_human(&fixed_report(), Severity::Info);
    assert_eq!(
        headers(&text),
        [
            "error[schema-unknown-field]",
            "error[yaml-syntax]",
            "warning[yaml-ambiguous-bool]",
            "info[configmap-unused]",
        ]
    );
}

#[test]
fn human_counts_infos_unless_asked_to_show_them() {
    let default = render(Format::Human, &fixed_report(), false);
    assert!(!default.contains("info[configmap-unused]"), "{default}");
    // Still in the table and the totals, and one line says how to see them.
    assert!(default.contains("│ configmap-unused     │ info     │     1 │"));
    assert!(default.contains("2 errors, 1 warning, 1 info, 1 exempted\n"));
    assert!(default.ends_with("1 info not shown; `tally validate --show info` lists them\n"));

    let all = render_human(&fixed_report(), Severity::Info);
    assert!(all.contains("info[configmap-unused]: ConfigMap `settings`"));
    assert!(all.contains("exempted warning[no-latest-tag]"));
    assert!(!all.contains("not shown"), "{all}");
    assert!(all.ends_with("2 errors, 1 warning, 1 info, 1 exempted\n"));

    let errors = render_human(&fixed_report(), Severity::Error);
    assert_eq!(
        headers(&errors),
        ["error[schema-unknown-field]", "error[yaml-syntax]"]
    );
    assert!(!errors.contains("exempted warning"), "{errors}");
    assert!(errors.ends_with(
        "1 warning, 1 info and 1 exempted not shown; `tally validate --show info` lists them\n"
    ));
}

#[test]
fn human_shows_only_the_summary_when_everything_is_below_show() {
    let file: Arc<str> = Arc::from("a.yaml");
    let mut report = fixed_report();
    report.findings = vec![Finding::new(
        "replicas-minimum",
        Severity::Info,
        &file,
        Pos::START,
        "one replica",
    )];
    let text = render(Format::Human, &report, false);
    assert!(text.starts_with("╭"), "{text}");
    assert!(text.ends_with(
        "0 errors, 0 warnings, 1 info\n1 info not shown; `tally validate --show info` lists them\n"
    ));
}

const CHART_VALUES: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: chart-values
data:
  replicas: {{ .Values.replicas }}
  umask: 0644
";

/// Two findings for one cause at each of two spots, and an unrelated one.
fn one_cause_report() -> GateReport {
    let file: Arc<str> = Arc::from("chart-values.yaml");
    let cm = object("v1", "ConfigMap", None, "chart-values");
    let mut sources = Sources::default();
    sources.insert(Arc::clone(&file), Arc::from(CHART_VALUES));
    let mut findings = vec![
        Finding::new(
            "template-leftover",
            Severity::Error,
            &file,
            Pos::new(6, 13),
            "template syntax `{{ .Values.replicas }}` left in a manifest; render the chart or kustomization first",
        ),
        Finding::new(
            "schema-invalid",
            Severity::Error,
            &file,
            Pos::new(6, 13),
            "`data.replicas`: expected string, found object",
        ),
        Finding::new(
            "yaml-ambiguous-number",
            Severity::Warning,
            &file,
            Pos::new(7, 10),
            "`0644` is read as the octal number 420 by YAML 1.1 readers such as kubectl and the API server, differently by YAML 1.2 tools; write the number unambiguously or quote it",
        ),
        Finding::new(
            "schema-invalid",
            Severity::Error,
            &file,
            Pos::new(7, 10),
            "`data.umask`: expected string, found integer 644",
        )
        .with_help("quote it (\"644\")"),
        Finding::new(
            "no-default-namespace",
            Severity::Warning,
            &file,
            Pos::new(3, 1),
            "ConfigMap names no namespace",
        ),
    ];
    for f in &mut findings {
        f.object = Some(cm.clone());
    }
    crate::finding::sort_findings(&mut findings);
    GateReport {
        findings,
        files: 1,
        objects: 1,
        kubernetes_version: "1.37".into(),
        sources,
        ..GateReport::default()
    }
}

#[test]
fn human_prints_one_cause_as_one_entry() {
    insta::assert_snapshot!(render(Format::Human, &one_cause_report(), false));
}

#[test]
fn one_cause_is_still_two_findings_for_machines() {
    let text = render(Format::Json, &one_cause_report(), false);
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(5));
}

/// `deploy.yaml` of one service: its image has no tag, on line 8.
fn service(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - image: {name}\n"
    )
}

/// Eight leftovers in one chart template, five services without an image tag, and a warning.
fn repeats_report() -> GateReport {
    let mut sources = Sources::default();
    let mut findings = Vec::new();
    let chart: Arc<str> = Arc::from("chart/templates/web.yaml");
    let mut chart_text = String::from("data:\n");
    for i in 1..=8 {
        chart_text.push_str(&format!("  key{i}: {{{{ .Values.key{i} }}}}\n"));
        findings.push(Finding::new(
            "template-leftover",
            Severity::Error,
            &chart,
            Pos::new(i + 1, 10),
            format!("template syntax `{{{{ .Values.key{i} }}}}` left in a manifest; render the chart or kustomization first"),
        ));
    }
    sources.insert(Arc::clone(&chart), Arc::from(chart_text));
    for name in ["ads", "cart", "checkout", "email", "shipping"] {
        let file: Arc<str> = Arc::from(format!("k8s/{name}.yaml"));
        sources.insert(Arc::clone(&file), Arc::from(service(name)));
        findings.push(
            Finding::new(
                "no-latest-tag",
                Severity::Error,
                &file,
                Pos::new(9, 18),
                format!("`{name}` has no tag, so it runs whatever `latest` is when a node pulls it; pin a version (or a digest)"),
            )
            .with_object(object("apps/v1", "Deployment", None, name)),
        );
    }
    let ads: Arc<str> = Arc::from("k8s/ads.yaml");
    findings.push(
        Finding::new(
            "seccomp-profile",
            Severity::Warning,
            &ads,
            Pos::new(7, 5),
            "the pod sets no seccomp profile",
        )
        .with_object(object("apps/v1", "Deployment", None, "ads")),
    );
    crate::finding::sort_findings(&mut findings);
    GateReport {
        findings,
        files: 6,
        objects: 6,
        kubernetes_version: "1.37".into(),
        sources,
        ..GateReport::default()
    }
}

#[test]
fn human_shortens_repeats_and_counts_them_past_five_in_a_file() {
    let text = render(Format::Human, &repeats_report(), false);
    // Every no-latest-tag location is there; three with snippets.
    for name in ["ads", "cart", "checkout", "email", "shipping"] {
        assert!(
            text.contains(&format!("--> k8s/{name}.yaml:9:18")),
            "{text}"
        );
    }
    assert_eq!(text.matches("|         - image:").count(), 3, "{text}");
    insta::assert_snapshot!(text);
}

/// A report whose file name and key were written by a hostile pull request: an escape sequence
/// that clears the log and paints a fake success line, and a bidi override.
fn hostile_report() -> GateReport {
    let file: Arc<str> = Arc::from("evil\u{202e}lmay.yaml");
    let key = "x\u{1b}[2J\u{1b}[32m\nok: no findings\r";
    let mut sources = Sources::default();
    sources.insert(Arc::clone(&file), Arc::from("a: 1\n"));
    let findings = vec![
        Finding::new(
            "yaml-duplicate-key",
            Severity::Error,
            &file,
            Pos::new(1, 1),
            format!("duplicate key `{key}`, 100% sure: a,b"),
        )
        .with_help(format!("remove `{key}`")),
    ];
    GateReport {
        findings,
        files: 1,
        objects: 0,
        kubernetes_version: "1.37".into(),
        sources,
        ..GateReport::default()
    }
}

/// Whether text can reach a terminal or a log without acting on it.
fn inert(text: &str) -> bool {
    !text.chars().any(|c| c != '\n' && crate::text::is_unsafe(c))
}

#[test]
fn quoted_input_cannot_forge_human_github_or_junit_output() {
    let report = hostile_report();
    for format in [Format::Human, Format::Github, Format::Junit] {
        let out = render(format, &report, false);
        assert!(inert(&out), "{format:?}: {out:?}");
        assert!(
            !out.lines().any(|l| l.starts_with("ok:")),
            "{format:?}: a forged line: {out}"
        );
    }
    let human = render(Format::Human, &report, false);
    assert!(
        human.contains("x\\u{1b}[2J\\u{1b}[32m\\nok: no findings\\r"),
        "{human}"
    );
    assert!(human.contains("evil\\u{202e}lmay.yaml:1:1"), "{human}");
    // GitHub: the message escapes `%` and line breaks; the file property also `:` and `,`.
    let github = render(Format::Github, &report, false);
    assert_eq!(github.lines().count(), 1, "{github}");
    assert!(
        github.contains("file=evil\\u{202e}lmay.yaml,line=1,col=1,"),
        "{github}"
    );
    assert!(github.contains("100%25 sure: a,b"), "{github}");
    assert!(github.contains("%0Ahelp: remove"), "{github}");
    // Machine formats keep the text as it is: JSON escapes it its own way.
    let json = render(Format::Json, &report, false);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert!(value.to_string().contains("\\u001b[2J"), "{json}");
}

#[test]
fn long_lines_cost_a_window_not_the_line() {
    // One minified line of 200,000 characters (non-ASCII, so columns are not byte offsets),
    // with findings near its end: quoted as a window around each, carets on the token.
    let file: Arc<str> = Arc::from("min.json");
    let mut line = String::from("{\"é\": [");
    for i in 0..20_000 {
        line.push_str(&format!("\"v{i:05}\", "));
    }
    line.push_str("\"bad\"]}");
    let column = line.chars().count() as u32 - 6;
    let mut sources = Sources::default();
    sources.insert(Arc::clone(&file), Arc::from(format!("{line}\n").as_str()));
    let window = sources.window(&file, 1, column).expect("a window");
    assert!(window.cut_before && window.text.chars().count() < 400);
    let at: String = window
        .text
        .chars()
        .skip(window.column as usize - 1)
        .collect();
    assert!(at.starts_with("\"bad\"]}"), "{at}");
    let report = GateReport {
        findings: vec![Finding::new(
            "schema-invalid",
            Severity::Error,
            &file,
            Pos::new(1, column),
            "bad",
        )],
        files: 1,
        kubernetes_version: "1.37".into(),
        sources,
        ..GateReport::default()
    };
    let human = render(Format::Human, &report, false);
    let snippet = human.lines().nth(3).unwrap_or_default();
    let carets = human.lines().nth(4).unwrap_or_default();
    assert!(snippet.chars().count() < 200, "{snippet}");
    let under: String = snippet
        .chars()
        .skip(carets.find('^').unwrap_or(0))
        .take(5)
        .collect();
    assert_eq!(under, "\"bad\"", "{human}");
    let sarif: serde_json::Value =
        serde_json::from_str(&render(Format::Sarif, &report, false)).unwrap_or_default();
    let region = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        region["endColumn"],
        serde_json::json!(column + 5),
        "{region}"
    );
}
