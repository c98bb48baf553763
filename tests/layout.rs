//! End-to-end tests of tally repos: `tally validate` on a repo root, `tally render`, `tally init`,
//! and the documented broken examples.

mod common;

use std::path::Path;

use common::{json, tally, temp_dir};
use serde_json::Value;

/// (rule, file, line, column) of every finding, sorted.
fn findings(report: &Value) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array"))
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_owned(),
                f["file"].as_str().unwrap_or("").to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_example_repo_passes_with_no_finding_at_all() {
    let out = tally(&[
        "validate",
        "examples",
        "--format",
        "json",
        "--fail-on",
        "info",
    ]);
    let report = json(&out);
    assert_eq!(findings(&report), []);
    assert_eq!(out.status.code(), Some(0));
    // Two environments, each with the tenants' guardrails and three apps.
    assert_eq!(report["summary"]["objects"], 80);
}

#[test]
fn the_broken_repo_is_reported_at_the_lines_that_say_it() {
    let out = tally(&["validate", "examples/broken/repo", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let base = "examples/broken/repo";
    let expected: Vec<(String, String, u64, u64)> = [
        ("cluster-admin-binding", "apps/b/manifests/b.yaml", 9, 3),
        ("layout-dependency-cycle", "apps/b/app.yaml", 11, 7),
        ("layout-namespace-not-owned", "apps/a/app.yaml", 7, 3),
        (
            "layout-unknown-app",
            "environments/dev/environment.yaml",
            14,
            7,
        ),
        (
            "layout-unknown-tenant",
            "environments/dev/environment.yaml",
            8,
            7,
        ),
        ("no-latest-tag", "environments/dev/environment.yaml", 13, 9),
        ("tenant-cluster-admin", "apps/b/manifests/b.yaml", 9, 3),
        ("tenant-cluster-scoped", "apps/b/manifests/b.yaml", 3, 1),
        ("tenant-id-range", "apps/b/manifests/b.yaml", 34, 9),
        ("tenant-namespace", "apps/a/manifests/config.yaml", 4, 3),
    ]
    .into_iter()
    .map(|(r, f, l, c)| (r.to_owned(), format!("{base}/{f}"), l, c))
    .collect();
    let mut expected = expected;
    expected.sort();
    let got: Vec<_> = findings(&json(&out))
        .into_iter()
        .filter(|f| f.0 != "namespace-has-quota" && f.0 != "namespace-default-deny")
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn one_environment_can_be_validated_alone() {
    let out = tally(&[
        "validate", "examples", "--env", "staging", "--format", "json",
    ]);
    assert_eq!(json(&out)["summary"]["objects"], 40);
    let out = tally(&["validate", "tests/fixtures/discovery", "--env", "staging"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn render_prints_the_desired_state_with_overrides_labels_and_ids() {
    let out = tally(&["render", "--env", "staging", "examples", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let objects = doc["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("objects"));
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["object"]["kind"] == kind && o["object"]["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // Guardrails come first and point at the tenant file.
    assert_eq!(objects[0]["object"]["kind"], "Namespace");
    let deny = find("NetworkPolicy", "default-deny");
    assert_eq!(
        deny["source"]["file"],
        "examples/tenants/storefront/tenant.yaml"
    );
    // The environment's overrides are applied; ids come from the tenant's range.
    let web = &find("Deployment", "web")["object"];
    let pod = &web["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/shop/web:1.5.0-rc.1"
    );
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsUser"], 10000);
    assert_eq!(web["metadata"]["namespace"], "shop");
    let labels = &web["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tally");
    assert_eq!(labels["tally.dev/environment"], "staging");
    assert_eq!(labels["tally.dev/app"], "web");
    assert_eq!(labels["tally.dev/tenant"], "storefront");
    let ledger_cm = &find("ConfigMap", "ledger-settings")["object"];
    assert_eq!(ledger_cm["metadata"]["labels"]["tier"], "staging");
    // Apps come in dependsOn order: api before web.
    let position = |name: &str| {
        objects.iter().position(|o| {
            o["object"]["kind"] == "Deployment" && o["object"]["metadata"]["name"] == name
        })
    };
    assert!(position("api") < position("web"));

    let yaml = tally(&["render", "--env", "production", "examples"]);
    let text = String::from_utf8_lossy(&yaml.stdout);
    assert!(
        text.starts_with("---\n# source: examples/tenants/storefront/tenant.yaml:"),
        "{text}"
    );
    assert!(text.contains("JAVA_OPTS: -Xmx1536m"), "{text}");
}

#[test]
fn an_apps_recreate_and_ignore_fields_become_annotations_of_its_objects() {
    let dir = common::temp_dir("layout-annotations");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    let app = repo.join("apps/api/app.yaml");
    let text = std::fs::read_to_string(&app).unwrap_or_default();
    let text = text.replace(
        "  namespace: shop\n",
        "  namespace: shop\n  recreate: true\n  ignoreFields:\n    - kind: Deployment\n      pointers: [/spec/replicas, /metadata/labels/team]\n    - kind: Service\n      name: nope\n      pointers: [/spec/type]\n",
    );
    std::fs::write(&app, text).unwrap_or_else(|e| panic!("{e}"));
    let repo_arg = repo.to_string_lossy().into_owned();
    let out = tally(&["render", "--env", "staging", &repo_arg, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let objects = doc["objects"].as_array().cloned().unwrap_or_default();
    let annotations = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["object"]["kind"] == kind && o["object"]["metadata"]["name"] == name)
            .map(|o| o["object"]["metadata"]["annotations"].clone())
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let api = annotations("Deployment", "api");
    assert_eq!(api["tally.dev/recreate"], "enabled");
    assert_eq!(
        api["tally.dev/ignore-fields"],
        "/spec/replicas,/metadata/labels/team"
    );
    let service = annotations("Service", "api");
    assert_eq!(service["tally.dev/recreate"], "enabled");
    assert!(
        service.get("tally.dev/ignore-fields").is_none(),
        "{service}"
    );
    // Another app's objects are untouched.
    assert!(
        annotations("Deployment", "web")
            .get("tally.dev/recreate")
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_blue_green_app_must_ship_one_deployment_and_both_services_selecting_it() {
    let dir = temp_dir("layout-blue-green");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    let edit = |file: &str, from: &str, to: &str| {
        let path = repo.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text.contains(from), "{from} not in {file}");
        std::fs::write(&path, text.replace(from, to)).unwrap_or_else(|e| panic!("{e}"));
    };
    // The active Service selects other pods; the preview Service is missing.
    edit(
        "apps/web/manifests/web.yaml",
        "  name: web\nspec:\n  selector:\n    app.kubernetes.io/name: web\n",
        "  name: web\nspec:\n  selector:\n    app.kubernetes.io/name: web-old\n",
    );
    edit(
        "apps/web/app.yaml",
        "previewService: web-preview",
        "previewService: web-next",
    );
    let repo_arg = repo.to_string_lossy().into_owned();
    let out = tally(&[
        "validate", &repo_arg, "--env", "staging", "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let app = format!("{repo_arg}/apps/web/app.yaml");
    let found: Vec<(String, String, u64, u64)> = findings(&json(&out))
        .into_iter()
        .filter(|f| f.0 == "layout-blue-green")
        .collect();
    assert_eq!(
        found,
        [
            ("layout-blue-green".to_owned(), app.clone(), 13, 5),
            ("layout-blue-green".to_owned(), app.clone(), 14, 5),
        ]
    );
    // The preview Service exists, but not the smoke test's port.
    edit(
        "apps/web/app.yaml",
        "previewService: web-next",
        "previewService: web-preview",
    );
    edit("apps/web/app.yaml", "port: http", "port: 9090");
    let out = tally(&[
        "validate", &repo_arg, "--env", "staging", "--format", "json",
    ]);
    let found: Vec<(String, String, u64, u64)> = findings(&json(&out))
        .into_iter()
        .filter(|f| f.0 == "layout-blue-green")
        .collect();
    assert_eq!(
        found,
        [
            ("layout-blue-green".to_owned(), app.clone(), 13, 5),
            ("layout-blue-green".to_owned(), app, 18, 7),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_repos_input_limits_hold_for_each_environment_as_a_whole_and_flags_override_them() {
    let dir = common::temp_dir("layout-limits");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    let set_limits = |limits: &str| {
        let file = repo.join("tally.yaml");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let text = text.replace(
            "  kubernetesVersion: \"1.37\"\n",
            &format!("  kubernetesVersion: \"1.37\"\n  limits:\n{limits}"),
        );
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    };
    set_limits("    maxInputSize: 8Ki\n");
    let repo_arg = repo.to_string_lossy().into_owned();
    let validate = |extra: &[&str]| {
        let mut args = vec![
            "validate", &repo_arg, "--env", "staging", "--format", "json",
        ];
        args.extend_from_slice(extra);
        tally(&args)
    };
    // The layout files and the first apps' manifests fit in 8 KiB; the last app's file does
    // not, though no one file is near the limit.
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let limit: Vec<&Value> = report["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["rule"] == "input-limit").collect())
        .unwrap_or_default();
    assert_eq!(limit.len(), 1, "{report}");
    let message = limit[0]["message"].as_str().unwrap_or("");
    assert!(message.contains("spec.limits in tally.yaml"), "{message}");
    // The flag overrides the repo's setting.
    let out = validate(&["--max-input-size", "1M"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A limit that is not a size is reported at its line.
    let file = repo.join("tally.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    std::fs::write(
        &file,
        text.replace("maxInputSize: 8Ki", "maxInputSize: lots"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(1));
    let at = findings(&json(&out));
    assert!(
        at.iter()
            .any(|(rule, file, line, _)| rule == "schema-invalid"
                && file.ends_with("tally.yaml")
                && *line == 9),
        "{at:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn render_of_an_unknown_environment_fails_clearly() {
    let out = tally(&["render", "--env", "qa", "examples"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no environment `qa` (known: production, staging)"),
        "{err}"
    );
    let out = tally(&["render", "--env", "qa", "tests"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_and_render_load_the_repo_once_and_render_each_environment_once() {
    let out = tally(&["validate", "examples", "--log-level", "debug"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("loading the repo").count(), 1, "{err}");
    assert_eq!(err.matches("rendering the environment").count(), 2, "{err}");

    let out = tally(&[
        "render",
        "--env",
        "staging",
        "examples",
        "--log-level",
        "debug",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("loading the repo").count(), 1, "{err}");
    assert_eq!(err.matches("rendering the environment").count(), 1, "{err}");
}

#[test]
fn render_fails_on_what_the_gate_rejects_at_its_fail_on_level() {
    let dir = temp_dir("render-gate");
    let d = dir.to_string_lossy().into_owned();
    assert_eq!(tally(&["init", &d]).status.code(), Some(0));
    let manifest = dir.join("apps/api/manifests/api.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_default();
    std::fs::write(&manifest, text.replace("shop/api:2.0.1", "shop/api:latest"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = tally(&["render", "--env", "staging", &d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[no-latest-tag]"), "{err}");
    // The objects are printed all the same.
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: Deployment"));
    // --fail-on never: reported nowhere, exit 0.
    let out = tally(&["render", "--env", "staging", &d, "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_writes_a_repo_that_passes_the_gate() {
    let dir = temp_dir("init");
    let d = dir.to_string_lossy().into_owned();
    let out = tally(&["init", &d]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tally(&["validate", &d, "--format", "json", "--fail-on", "info"]);
    assert_eq!(findings(&json(&out)), []);
    assert_eq!(out.status.code(), Some(0));
    // A second init refuses to overwrite.
    assert_eq!(tally(&["init", &d]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn layout_files_are_checked_against_their_schemas_at_the_line() {
    let dir = temp_dir("layout-schema");
    let d = dir.to_string_lossy().into_owned();
    assert_eq!(tally(&["init", &d]).status.code(), Some(0));
    let tenant = Path::new(&d).join("tenants/payments/tenant.yaml");
    let text = std::fs::read_to_string(&tenant).unwrap_or_default();
    let text = text.replace("  namespaces:\n", "  namespace: wrong\n  namespaces:\n");
    std::fs::write(&tenant, text).unwrap_or_else(|e| panic!("{e}"));
    let out = tally(&["validate", &d, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let got = findings(&json(&out));
    let file = tenant.to_string_lossy().into_owned();
    assert!(
        got.contains(&("schema-unknown-field".to_owned(), file, 7, 3)),
        "{got:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_manifests_each_show_their_finding() {
    let out = tally(&["validate", "examples/broken/manifests", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let got = findings(&json(&out));
    let dir = "examples/broken/manifests";
    for (rule, file, line, column) in [
        ("yaml-syntax", "yaml-syntax.yaml", 8, 24),
        ("yaml-duplicate-key", "yaml-duplicate-key.yaml", 9, 3),
        ("yaml-ambiguous-bool", "yaml-1.1-traps.yaml", 9, 12),
        ("yaml-ambiguous-number", "yaml-1.1-traps.yaml", 10, 10),
        ("template-leftover", "template-leftover.yaml", 8, 10),
        ("schema-unknown-field", "schema-unknown-field.yaml", 8, 3),
        ("schema-invalid", "schema-wrong-type.yaml", 9, 13),
        ("api-removed", "api-removed.yaml", 2, 1),
        ("no-bare-pod", "bare-pod.yaml", 3, 1),
        ("secret-as-volume", "secret-in-env.yaml", 23, 17),
        ("privileged-container", "privileged.yaml", 20, 13),
    ] {
        let want = (rule.to_owned(), format!("{dir}/{file}"), line, column);
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
}

#[test]
fn layout_mistakes_are_findings_not_silent_skips() {
    let dir = temp_dir("layout-mistakes");
    let d = dir.to_string_lossy().into_owned();
    assert_eq!(tally(&["init", &d]).status.code(), Some(0));
    let root = Path::new(&d);
    // An environment directory whose file has the other extension.
    std::fs::create_dir_all(root.join("environments/qa")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        root.join("environments/qa/environment.yml"),
        "kind: Environment\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // An unsupported Kubernetes version, named in tally.yaml.
    let repo = std::fs::read_to_string(root.join("tally.yaml")).unwrap_or_default();
    std::fs::write(
        root.join("tally.yaml"),
        repo.replace("\"1.37\"", "\"1.24\""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Quotas written as plain numbers are quantities too.
    let tenant = root.join("tenants/payments/tenant.yaml");
    let text = std::fs::read_to_string(&tenant).unwrap_or_default();
    std::fs::write(&tenant, text.replace("cpu: \"4\"", "cpu: 4")).unwrap_or_else(|e| panic!("{e}"));
    // An app whose manifests leave the repo.
    let app = root.join("apps/api/app.yaml");
    let text = std::fs::read_to_string(&app).unwrap_or_default();
    std::fs::write(
        &app,
        text.replace("manifests: manifests", "manifests: ../../../.."),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let out = tally(&["validate", &d, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let got = findings(&json(&out));
    let at = |p: &str| root.join(p).to_string_lossy().into_owned();
    for want in [
        ("layout-identity", at("environments/qa"), 1, 1),
        ("layout-schema", at("tally.yaml"), 7, 3),
        ("layout-source", at("apps/api/app.yaml"), 10, 5),
    ] {
        let want = (want.0.to_owned(), want.1, want.2, want.3);
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
    assert!(
        !got.iter().any(|f| f.0 == "layout-unknown-tenant"),
        "{got:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_crd_cannot_make_a_builtin_kind_namespaced() {
    let dir = temp_dir("crd-scope");
    let d = dir.to_string_lossy().into_owned();
    assert_eq!(tally(&["init", &d]).status.code(), Some(0));
    let sneaky = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusterrolebindings.rbac.authorization.k8s.io
spec:
  group: rbac.authorization.k8s.io
  scope: Namespaced
  names: {kind: ClusterRoleBinding, plural: clusterrolebindings}
  versions: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: sneaky
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: x, apiGroup: rbac.authorization.k8s.io}]
";
    std::fs::write(Path::new(&d).join("apps/api/manifests/sneaky.yaml"), sneaky)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = tally(&["validate", &d, "--env", "staging", "--format", "json"]);
    let got = findings(&json(&out));
    assert!(
        got.iter()
            .filter(|f| f.0 == "tenant-cluster-scoped")
            .count()
            >= 2,
        "{got:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn excludes_outside_the_current_directory_work() {
    let dir = temp_dir("exclude-outside");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\ndata: {a: b}\n";
    std::fs::write(dir.join("keep.yaml"), cm).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("skip.bak.yaml"), "{{ broken").unwrap_or_else(|e| panic!("{e}"));
    let d = dir.to_string_lossy().into_owned();
    let out = tally(&[
        "validate",
        &d,
        "--exclude",
        "*.bak.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["summary"]["files"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_kustomize_binary_is_a_finding_that_names_it() {
    let dir = temp_dir("kustomize");
    let d = dir.to_string_lossy().into_owned();
    assert_eq!(tally(&["init", &d]).status.code(), Some(0));
    let app = Path::new(&d).join("apps/api/app.yaml");
    let text = std::fs::read_to_string(&app).unwrap_or_default();
    std::fs::write(
        &app,
        text.replace("manifests: manifests", "kustomize: manifests"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // An empty PATH: whatever the machine has installed, kustomize cannot be found.
    let out = common::output(
        common::tally_command()
            .args(["validate", &d, "--env", "staging", "--format", "json"])
            .env("PATH", ""),
    );
    let report = json(&out);
    let found = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "layout-source")
        .unwrap_or_else(|| panic!("no layout-source finding: {report}"));
    assert!(
        found["message"]
            .as_str()
            .unwrap_or("")
            .contains("`kustomize`"),
        "{found}"
    );
    assert_eq!(found["line"], 10);
    let _ = std::fs::remove_dir_all(&dir);
}
