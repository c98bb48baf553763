//! Helm charts and kustomizations are judged as units: rendered when their tool is installed,
//! with findings at the lines of the files a person edits; never walked file by file. The tools
//! are stand-in scripts (tests/fixtures/units/bin-*) so the tests need neither helm nor kustomize;
//! one test also uses the real `kubectl kustomize` when kubectl is installed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{json, output, tally, tally_command, temp_dir};
use serde_json::Value;

const UNITS: &str = "tests/fixtures/units";

/// `tally validate PATH --format json` with PATH (the variable) set to `path_var`.
fn validate(target: &str, path_var: &str) -> (Output, Value) {
    let out = output(
        tally_command()
            .args(["validate", target, "--format", "json", "--no-config"])
            .env("PATH", path_var),
    );
    let report = json(&out);
    (out, report)
}

/// A PATH of one fixture directory of stand-in tools, then the system's (for `sh`'s tools).
fn with_tools(dir: &str) -> String {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(UNITS).join(dir);
    format!("{}:/usr/bin:/bin", bin.display())
}

/// A PATH where no tool is found.
fn no_tools() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(UNITS)
        .join("bin-empty")
        .display()
        .to_string()
}

/// (rule, file, line, column) of every finding.
fn findings(report: &Value) -> Vec<(String, String, u64, u64)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["file"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_u64().unwrap_or_default(),
                f["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn a_chart_without_helm_is_one_warning_and_nothing_under_it_is_judged() {
    let (out, report) = validate(&format!("{UNITS}/chart"), &no_tools());
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(
        findings(&report),
        [(
            "unit-not-rendered".to_owned(),
            format!("{UNITS}/chart/Chart.yaml"),
            1,
            1
        )]
    );
    assert_eq!(report["findings"][0]["severity"], "warning");
    assert_eq!(report["summary"]["objects"], 0);
}

#[test]
fn a_chart_rendered_by_helm_is_judged_at_its_template_lines() {
    let (out, report) = validate(&format!("{UNITS}/chart"), &with_tools("bin-helm"));
    assert_eq!(out.status.code(), Some(1), "{report}");
    let template = format!("{UNITS}/chart/templates/deployment.yaml");
    let got = findings(&report);
    // `image: "{{ .Values.image }}"` is line 19 of the template; the render said nginx:latest.
    assert!(
        got.contains(&("no-latest-tag".to_owned(), template.clone(), 19, 11)),
        "{got:?}"
    );
    // Every finding points into the chart's own files, none into the render.
    assert!(
        got.iter().all(|(_, file, _, _)| file == &template),
        "{got:?}"
    );
    assert_eq!(report["summary"]["objects"], 1);
}

#[test]
fn helm_values_files_are_given_to_helm() {
    let dir = temp_dir("helm-values");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let args_file = dir.join("args");
    let out = output(
        tally_command()
            .args([
                "validate",
                &format!("{UNITS}/chart"),
                "--helm-values",
                "prod.yaml",
                "--format",
                "json",
            ])
            .env("PATH", with_tools("bin-helm"))
            .env("HELM_ARGS_FILE", &args_file),
    );
    let args = std::fs::read_to_string(&args_file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(args.starts_with("template chart "), "{args}");
    assert!(args.trim_end().ends_with("--values=prod.yaml"), "{args}");
    assert_eq!(json(&out)["summary"]["objects"], 1);
}

#[test]
fn a_kustomization_without_tools_checks_its_resources_not_its_patches() {
    let (_, report) = validate(&format!("{UNITS}/kustomize"), &no_tools());
    let got = findings(&report);
    let dir = format!("{UNITS}/kustomize");
    assert!(
        got.contains(&(
            "unit-not-rendered".to_owned(),
            format!("{dir}/kustomization.yaml"),
            1,
            1
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            "no-latest-tag".to_owned(),
            format!("{dir}/deployment.yaml"),
            19,
            11
        )),
        "{got:?}"
    );
    // The patch (a partial Deployment) is not judged as an object.
    assert!(
        got.iter()
            .all(|(_, file, _, _)| !file.ends_with("replicas.yaml")),
        "{got:?}"
    );
    assert_eq!(report["summary"]["objects"], 1);
}

#[test]
fn a_built_kustomization_points_at_its_resource_files() {
    let (_, report) = validate(&format!("{UNITS}/kustomize"), &with_tools("bin-kustomize"));
    let got = findings(&report);
    let file = format!("{UNITS}/kustomize/deployment.yaml");
    assert!(
        got.contains(&("no-latest-tag".to_owned(), file.clone(), 19, 11)),
        "{got:?}"
    );
    assert!(got.iter().all(|(_, f, _, _)| f == &file), "{got:?}");
    assert!(
        got.iter()
            .all(|(rule, _, _, _)| rule != "unit-not-rendered"),
        "{got:?}"
    );
}

#[test]
fn the_real_kubectl_kustomize_agrees_when_installed() {
    let installed = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("kubectl is not installed: the stand-in tests cover the mapping");
        return;
    }
    // No `kustomize` on this PATH: tally falls back to `kubectl kustomize`.
    let kubectl = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "command -v kubectl"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_owned();
    let dir = Path::new(&kubectl)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (_, report) = validate(&format!("{UNITS}/kustomize"), &dir);
    let got = findings(&report);
    let file = format!("{UNITS}/kustomize/deployment.yaml");
    assert!(
        got.contains(&("no-latest-tag".to_owned(), file, 19, 11)),
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|(rule, _, _, _)| rule != "unit-not-rendered"),
        "{got:?}"
    );
}

#[test]
fn a_template_leftover_is_a_policy_that_explains_itself_and_can_be_exempted() {
    let explain = tally(&["policies", "explain", "template-leftover"]);
    assert_eq!(explain.status.code(), Some(0));
    let dir = temp_dir("leftover");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("values-cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: m\n  annotations:\n    tally.dev/exempt: template-leftover\n    tally.dev/exempt-reason: our deploy script renders it\ndata:\n  IMAGE: \"{{ .Values.image }}\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (out, report) = validate(&file.display().to_string(), &no_tools());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let leftover = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "template-leftover");
    assert!(
        leftover.is_some_and(|f| f["exempted"]["reason"] == "our deploy script renders it"),
        "{report}"
    );
}
