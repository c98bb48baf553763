//! Behaviour of the registry as the gate uses it: YAML text in, findings at lines and columns out.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use super::*;
use crate::manifest::objects_from;
use crate::yaml;

/// The default registry (newest version), shared: validators compile lazily, once.
static NEWEST: LazyLock<SchemaRegistry> = LazyLock::new(|| registry(SchemaOptions::default()));

fn registry(options: SchemaOptions) -> SchemaRegistry {
    match SchemaRegistry::new(options) {
        Ok(r) => r,
        Err(e) => panic!("registry: {e}"),
    }
}

fn version(v: &str) -> SchemaRegistry {
    registry(SchemaOptions {
        kubernetes_version: Some(v.into()),
        ..SchemaOptions::default()
    })
}

/// Objects from YAML text, as the gate reads them.
fn objects(text: &str) -> Vec<Object> {
    let file: Arc<str> = Arc::from("test.yaml");
    let loaded = objects_from(&file, yaml::load(&file, text));
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    loaded.objects
}

/// Validates every object of `text`.
fn check(registry: &SchemaRegistry, text: &str) -> Vec<Finding> {
    objects(text)
        .iter()
        .flat_map(|o| registry.validate(o))
        .collect()
}

/// Learns the CRDs of `text`, then validates every object of it, as the gate does.
fn check_with_crds(mut registry: SchemaRegistry, text: &str) -> Vec<Finding> {
    let objects = objects(text);
    let mut findings = registry.add_crds(&objects);
    findings.extend(objects.iter().flat_map(|o| registry.validate(o)));
    findings
}

/// Rule, line and column of each finding, in position order.
fn summary(findings: &[Finding]) -> Vec<(&'static str, u32, u32)> {
    let mut s: Vec<_> = findings
        .iter()
        .map(|f| (f.rule, f.pos.line, f.pos.column))
        .collect();
    s.sort_by_key(|&(rule, line, column)| (line, column, rule));
    s
}

/// Line and column (1-based) of the first occurrence of `needle` in `text`.
fn at(text: &str, needle: &str) -> (u32, u32) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line as u32, column as u32)
}

fn finding<'a>(findings: &'a [Finding], rule: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} in {findings:#?}"))
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

#[test]
fn a_valid_deployment_has_no_findings() {
    assert_eq!(check(&NEWEST, DEPLOYMENT), []);
}

#[test]
fn unknown_field_points_at_its_key_and_suggests_the_known_one() {
    let text = DEPLOYMENT.replace("  replicas: 2", "  replica: 2");
    let findings = check(&NEWEST, &text);
    let (line, column) = at(&text, "replica:");
    assert_eq!(summary(&findings), [(rules::UNKNOWN_FIELD, line, column)]);
    assert_eq!(
        findings[0].message,
        "unknown field `replica` in Deployment `spec`; did you mean `replicas`?"
    );
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(
        findings[0].object.as_ref().map(|o| o.name.as_str()),
        Some("web")
    );
}

#[test]
fn a_misspelt_required_field_is_reported_once() {
    let text = DEPLOYMENT.replace("  selector:", "  selectr:");
    let findings = check(&NEWEST, &text);
    let (line, column) = at(&text, "selectr");
    assert_eq!(summary(&findings), [(rules::UNKNOWN_FIELD, line, column)]);
    assert!(findings[0].message.ends_with("did you mean `selector`?"));
}

#[test]
fn unknown_field_without_a_close_match_lists_the_allowed_ones() {
    let text = DEPLOYMENT.replace("    matchLabels:", "    matchThings: {}\n    matchLabels:");
    let findings = check(&NEWEST, &text);
    let (line, column) = at(&text, "matchThings");
    assert_eq!(summary(&findings), [(rules::UNKNOWN_FIELD, line, column)]);
    let help = findings[0].help.as_deref().unwrap_or("");
    assert!(help.contains("`matchExpressions`, `matchLabels`"), "{help}");
}

#[test]
fn type_errors_point_at_nested_container_values() {
    let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: app
    image: nginx
    ports:
    - containerPort: \"80\"
    env:
    - name: PORT
      value: 8080
";
    let findings = check(&NEWEST, text);
    let port = at(text, "\"80\"");
    let value = at(text, "8080");
    assert_eq!(
        summary(&findings),
        [
            (rules::INVALID, port.0, port.1),
            (rules::INVALID, value.0, value.1)
        ]
    );
    let by_line = |line| findings.iter().find(|f| f.pos.line == line).unwrap();
    let f = by_line(port.0);
    assert_eq!(
        f.message,
        "`spec.containers[0].ports[0].containerPort`: expected integer, found string \"80\""
    );
    assert_eq!(f.help.as_deref(), Some("remove the quotes: 80"));
    let f = by_line(value.0);
    assert_eq!(
        f.message,
        "`spec.containers[0].env[0].value`: expected string, found integer 8080"
    );
    assert!(
        f.help
            .as_deref()
            .unwrap_or("")
            .starts_with("quote it (\"8080\")")
    );
}

#[test]
fn missing_required_field_points_at_the_parent_key() {
    let text = DEPLOYMENT.replace("  selector:\n    matchLabels: {app: web}\n", "");
    let findings = check(&NEWEST, &text);
    let (line, column) = at(&text, "spec:");
    assert_eq!(summary(&findings), [(rules::INVALID, line, column)]);
    assert_eq!(
        findings[0].message,
        "missing required field `selector` in Deployment `spec`"
    );
}

#[test]
fn int_or_string_and_quantities_accept_numbers_and_strings() {
    let text = "\
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
  - {port: 80, targetPort: 8080}
  - {port: 81, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: a
    resources:
      requests: {cpu: 500m, memory: 1Gi}
      limits: {cpu: 1, memory: 1.5e9, ephemeral-storage: 0.5}
";
    assert_eq!(check(&NEWEST, text), []);
}

#[test]
fn int_or_string_and_quantity_errors_say_what_is_expected() {
    let text = "\
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
  - {port: 80, targetPort: true}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: a
    resources:
      requests: {cpu: yes please, memory: 1gb}
      limits: {cpu: [1]}
";
    let findings = check(&NEWEST, text);
    let target = at(text, "true}");
    let cpu = at(text, "yes please");
    let memory = at(text, "1gb");
    let limit = at(text, "[1]");
    assert_eq!(
        summary(&findings),
        [
            (rules::INVALID, target.0, target.1),
            (rules::INVALID, cpu.0, cpu.1),
            (rules::INVALID, memory.0, memory.1),
            (rules::INVALID, limit.0, limit.1),
        ]
    );
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert!(messages.contains(
        &"`spec.ports[0].targetPort`: expected an integer or a string, found boolean true"
    ));
    assert!(messages.contains(
        &"`spec.containers[0].resources.requests.memory`: expected a quantity such as 500m or 1Gi, found `1gb`"
    ));
    assert!(messages.contains(
        &"`spec.containers[0].resources.requests.cpu`: expected a quantity such as 500m or 1Gi, found `yes please`"
    ));
    assert!(messages.contains(
        &"`spec.containers[0].resources.limits.cpu`: expected a quantity such as 500m or 1Gi, found array"
    ));
}

#[test]
fn int32_fields_are_range_checked_and_secret_data_must_be_base64() {
    let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3000000000
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data:
  good: aGVsbG8=
  bad: hunter2!
";
    let findings = check(&NEWEST, text);
    let replicas = at(text, "3000000000");
    let bad = at(text, "hunter2!");
    assert_eq!(
        summary(&findings),
        [
            (rules::INVALID, replicas.0, replicas.1),
            (rules::INVALID, bad.0, bad.1)
        ]
    );
    assert_eq!(
        findings[0].message,
        "`spec.replicas`: `3000000000` is greater than the maximum 2147483647"
    );
    assert_eq!(findings[1].message, "`data.bad`: not valid base64");
    assert!(
        findings[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("stringData")
    );
    assert!(!findings[1].message.contains("hunter2"));
}

#[test]
fn kubernetes_version_is_selectable_and_changes_what_exists() {
    let r = version("v1.29.3");
    assert_eq!(r.kubernetes_version(), "1.29");
    let text = "\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  validations:
  - expression: object.spec.replicas <= 5
";
    let findings = check(&r, text);
    assert_eq!(summary(&findings), [(rules::MISSING, 1, 1)]);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert!(
        findings[0]
            .message
            .contains("Kubernetes 1.29 serves ValidatingAdmissionPolicy as"),
        "{}",
        findings[0].message
    );
    assert_eq!(
        findings[0].help.as_deref(),
        Some("change `apiVersion` to admissionregistration.k8s.io/v1beta1")
    );
    assert_eq!(check(&version("1.30"), text), []);
    assert_eq!(
        NEWEST.kubernetes_version(),
        *supported_versions().last().unwrap()
    );
}

#[test]
fn an_unsupported_version_is_an_error_listing_the_supported_ones() {
    let err = SchemaRegistry::new(SchemaOptions {
        kubernetes_version: Some("1.12".into()),
        ..SchemaOptions::default()
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SchemaError::UnsupportedVersion { .. }));
    assert!(
        message.contains("`1.12`") && message.contains("1.25, 1.26") && message.contains("1.37"),
        "{message}"
    );
}

#[test]
fn removed_apis_are_errors_with_their_replacement_and_nothing_else() {
    let text = "\
kind: Deployment
apiVersion: extensions/v1beta1
metadata: {name: old}
spec: {replicas: 1, bogus: true}
---
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: psp}
spec: {}
";
    let findings = check(&NEWEST, text);
    assert_eq!(
        summary(&findings),
        [(rules::REMOVED_API, 2, 1), (rules::REMOVED_API, 6, 1)]
    );
    assert_eq!(
        findings[0].message,
        "`extensions/v1beta1` Deployment was removed in Kubernetes 1.16 (validating for 1.37); use `apps/v1`"
    );
    assert!(
        findings[1]
            .message
            .ends_with("and no apiVersion replaces it")
    );
    assert!(
        findings[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("Pod Security Admission")
    );
    assert!(findings.iter().all(|f| f.severity == Severity::Error));
}

#[test]
fn deprecated_apis_are_warnings_until_their_removal() {
    let text = "\
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata: {name: f}
spec:
  priorityLevelConfiguration: {name: workload-low}
";
    let findings = check(&version("1.30"), text);
    assert_eq!(summary(&findings), [(rules::DEPRECATED_API, 1, 1)]);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert_eq!(
        findings[0].message,
        "`flowcontrol.apiserver.k8s.io/v1beta3` FlowSchema is deprecated since Kubernetes 1.29 \
         and removed in 1.32; use `flowcontrol.apiserver.k8s.io/v1`"
    );
    let findings = check(&version("1.32"), text);
    assert_eq!(summary(&findings), [(rules::REMOVED_API, 1, 1)]);
}

const WIDGET: &str = "\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {size: small}
";

#[test]
fn missing_schemas_follow_the_chosen_mode() {
    let at_kind = [(rules::MISSING, 2, 1)];
    for (mode, severity) in [
        (MissingSchema::Warn, Some(Severity::Warning)),
        (MissingSchema::Error, Some(Severity::Error)),
        (MissingSchema::Ignore, None),
    ] {
        let r = registry(SchemaOptions {
            missing_schema: mode,
            ..SchemaOptions::default()
        });
        let findings = check(&r, WIDGET);
        match severity {
            Some(severity) => {
                assert_eq!(summary(&findings), at_kind, "{mode:?}");
                assert_eq!(findings[0].severity, severity);
                assert!(findings[0].message.contains("`example.com/v1` Widget"));
                let help = findings[0].help.as_deref().unwrap_or("");
                assert!(help.contains("--crd") && help.contains("--schema-location"));
            }
            None => assert_eq!(findings, [], "{mode:?}"),
        }
    }
}

#[test]
fn a_misspelt_kind_gets_a_suggestion() {
    let text = DEPLOYMENT.replace("kind: Deployment", "kind: Deploymnet");
    let findings = check(&NEWEST, &text);
    assert_eq!(summary(&findings), [(rules::MISSING, 2, 1)]);
    assert_eq!(
        findings[0].message,
        "no schema for `apps/v1` Deploymnet; did you mean `Deployment`?"
    );
}

const CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string, enum: [small, large]}
              port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              parts:
                type: array
                items:
                  type: object
                  properties:
                    count: {type: integer}
";

#[test]
fn crds_in_the_input_validate_their_custom_resources() {
    let text = format!(
        "{CRD}---
apiVersion: example.com/v1
kind: Widget
metadata: {{name: fine}}
spec:
  size: small
  port: http
  extra: {{anything: [1, 2], goes: true}}
  parts:
  - count: 3
---
apiVersion: example.com/v1
kind: Widget
metadata: {{name: bad, labels: {{a: b}}, annotation: {{}}}}
spec:
  size: smal
  sise: large
  port: true
  parts:
  - count: \"3\"
    colour: red
"
    );
    let findings = check_with_crds(fresh(), &text);
    let annotation = at(&text, "annotation:");
    let size = at(&text, "smal\n");
    let sise = at(&text, "sise");
    let port = at(&text, "true\n  parts");
    let count = at(&text, "\"3\"");
    let colour = at(&text, "colour");
    assert_eq!(
        summary(&findings),
        [
            (rules::UNKNOWN_FIELD, annotation.0, annotation.1),
            (rules::INVALID, size.0, size.1),
            (rules::UNKNOWN_FIELD, sise.0, sise.1),
            (rules::INVALID, port.0, port.1),
            (rules::INVALID, count.0, count.1),
            (rules::UNKNOWN_FIELD, colour.0, colour.1),
        ]
    );
    let message = |line| {
        findings
            .iter()
            .find(|f| f.pos.line == line)
            .map(|f| f.message.as_str())
            .unwrap_or("")
    };
    assert_eq!(
        message(annotation.0),
        "unknown field `annotation` in Widget `metadata`; did you mean `annotations`?"
    );
    assert_eq!(
        message(size.0),
        "`spec.size`: `smal` is not allowed; expected one of `small`, `large`; did you mean `small`?"
    );
    assert_eq!(
        message(sise.0),
        "unknown field `sise` in Widget `spec`; did you mean `size`?"
    );
    assert_eq!(
        message(port.0),
        "`spec.port`: expected an integer or a string, found boolean true"
    );
    assert_eq!(
        message(colour.0),
        "unknown field `colour` in Widget `spec.parts[0]`"
    );
}

#[test]
fn crds_from_elsewhere_and_missing_required_fields() {
    let mut r = version("1.37");
    let crd = objects(CRD);
    assert_eq!(r.add_crds(&crd), []);
    let findings = check(&r, WIDGET.replace("{size: small}", "{}").as_str());
    assert_eq!(summary(&findings), [(rules::INVALID, 4, 1)]);
    assert_eq!(
        findings[0].message,
        "missing required field `size` in Widget `spec`"
    );
}

#[test]
fn an_invalid_crd_schema_is_reported_at_the_crd() {
    let text = CRD.replace(
        "size: {type: string, enum: [small, large]}",
        "size: {type: strin}",
    );
    let findings = check_with_crds(fresh(), &format!("{text}---\n{WIDGET}"));
    let size_type = at(&text, "type: strin");
    let bad = finding(&findings, rules::BAD_CRD);
    assert_eq!((bad.pos.line, bad.pos.column), size_type);
    assert!(
        bad.message
            .starts_with("the schema of `example.com/v1` Widget at `properties.spec.properties.size.type` is invalid"),
        "{}",
        bad.message
    );
    // Its custom resources are not checked, and say why once.
    let widget = finding(&findings, rules::MISSING);
    assert!(
        widget.message.contains("cannot be used"),
        "{}",
        widget.message
    );

    // A pattern that does not compile, at its own line.
    let text = CRD.replace("type: array", "type: array\n                pattern: \"(\"");
    let findings = check_with_crds(fresh(), &text);
    let pattern = at(&text, "pattern");
    assert_eq!(summary(&findings), [(rules::BAD_CRD, pattern.0, pattern.1)]);
    assert!(
        findings[0]
            .message
            .contains("`properties.spec.properties.parts.pattern`"),
        "{}",
        findings[0].message
    );
}

#[test]
fn adding_no_crds_is_free() {
    let mut r = version("1.37");
    let objects = objects(DEPLOYMENT);
    assert_eq!(r.add_crds(&objects), []);
    assert!(r.crds.is_empty());
}

/// A fresh registry for tests that add CRDs (the shared one is read-only).
fn fresh() -> SchemaRegistry {
    registry(SchemaOptions::default())
}

/// A scratch directory of schema files, removed afterwards.
struct SchemaDir(PathBuf);

impl SchemaDir {
    fn new(name: &str, files: &[(&str, &str)]) -> SchemaDir {
        let dir = std::env::temp_dir().join(format!("tally-schemas-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        SchemaDir(dir)
    }
}

impl Drop for SchemaDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A kubeconform-style schema: unknown `$schema`, IntOrString as `oneOf`, strict objects.
const WIDGET_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/schema#",
  "type": "object",
  "properties": {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
    "spec": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "size": {"type": "string"},
        "port": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
      }
    }
  }
}"#;

#[test]
fn schema_location_directories_use_kubeconform_file_names() {
    let dir = SchemaDir::new(
        "dir",
        &[
            ("widget-example-v1.json", WIDGET_SCHEMA),
            (
                "example.com/gadget_v2.json",
                r#"{"type": "object", "required": ["spec"]}"#,
            ),
            // A location comes before the embedded schemas.
            (
                "configmap-v1.json",
                r#"{"type": "object", "properties": {"data": {"type": "object", "maxProperties": 0}}}"#,
            ),
        ],
    );
    let r = registry(SchemaOptions {
        locations: vec![dir.0.display().to_string()],
        ..SchemaOptions::default()
    });
    let text = "\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {sise: small, port: true}
---
apiVersion: example.com/v2
kind: Gadget
metadata: {name: g}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: b}
";
    let findings = check(&r, text);
    let sise = at(text, "sise");
    let port = at(text, "true}");
    let data = at(text, "{a: b}");
    assert_eq!(
        summary(&findings),
        [
            (rules::UNKNOWN_FIELD, sise.0, sise.1),
            (rules::INVALID, port.0, port.1),
            (rules::INVALID, 6, 1),
            (rules::INVALID, data.0, data.1),
        ]
    );
    let message = |(line, column)| {
        findings
            .iter()
            .find(|f| f.pos == Pos::new(line, column))
            .map(|f| f.message.as_str())
            .unwrap_or("")
    };
    assert_eq!(
        message(sise),
        "unknown field `sise` in Widget `spec`; did you mean `size`?"
    );
    assert_eq!(
        message(port),
        "`spec.port`: expected an integer or a string, found boolean true"
    );
    assert_eq!(message((6, 1)), "missing required field `spec` in Gadget");
}

#[test]
fn schema_location_templates_and_local_refs() {
    let dir = SchemaDir::new(
        "template",
        &[
            (
                "v1.30.0/example.com/widget_v1.json",
                r##"{"type": "object", "properties": {"spec": {"$ref": "_definitions.json#/definitions/spec"}}}"##,
            ),
            (
                "v1.30.0/example.com/_definitions.json",
                r#"{"definitions": {"spec": {"type": "object", "additionalProperties": false, "properties": {"size": {"type": "string"}}}}}"#,
            ),
        ],
    );
    let template = format!(
        "{}/{{{{ .NormalizedKubernetesVersion }}}}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
        dir.0.display()
    );
    let r = registry(SchemaOptions {
        kubernetes_version: Some("1.30".into()),
        locations: vec![template],
        ..SchemaOptions::default()
    });
    let text = WIDGET.replace("{size: small}", "{size: 3, colour: red}");
    let findings = check(&r, &text);
    let size = at(&text, "3,");
    let colour = at(&text, "colour");
    assert_eq!(
        summary(&findings),
        [
            (rules::INVALID, size.0, size.1),
            (rules::UNKNOWN_FIELD, colour.0, colour.1)
        ]
    );
    let unknown = finding(&findings, rules::UNKNOWN_FIELD);
    assert_eq!(unknown.message, "unknown field `colour` in Widget `spec`");
    assert_eq!(unknown.help.as_deref(), Some("fields allowed here: `size`"));
}

#[test]
fn remote_and_broken_locations_are_errors() {
    let remote = SchemaRegistry::new(SchemaOptions {
        locations: vec!["https://example.com/{{.ResourceKind}}.json".into()],
        ..SchemaOptions::default()
    });
    assert!(matches!(remote, Err(SchemaError::RemoteLocation(_))));
    let dir = SchemaDir::new("broken", &[("widget-example-v1.json", "{not json")]);
    let r = registry(SchemaOptions {
        locations: vec![dir.0.display().to_string()],
        ..SchemaOptions::default()
    });
    let findings = check(&r, WIDGET);
    assert_eq!(summary(&findings), [(rules::MISSING, 2, 1)]);
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(findings[0].message.contains("not valid JSON"));
}

#[test]
fn base64_follows_the_api_server() {
    assert!(is_base64("aGVsbG8="));
    assert!(is_base64("aGVs\nbG8=\n"));
    assert!(is_base64(""));
    assert!(!is_base64("hello"));
    assert!(!is_base64("aGVsbG8=x"));
    assert!(!is_base64("a==="));
}

#[test]
fn the_registry_is_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<SchemaRegistry>();
    // Several threads wanting the same kind at once compile it once and agree.
    let text = DEPLOYMENT.replace("  replicas: 2", "  replica: 2");
    let object = &objects(&text)[0];
    let r = version("1.33");
    let counts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| r.validate(object).len()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert_eq!(counts, [1, 1, 1, 1]);
}

#[test]
fn standalone_schemas_report_like_kubernetes_ones() {
    let schema = Arc::new(serde_json::json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "additionalProperties": false,
                     "properties": {"replicas": {"type": "integer"}}},
        },
    }));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    let o = objects("apiVersion: x/v1\nkind: Thing\nmetadata: {name: t}\nspec:\n  replica: 2\n");
    let found: Vec<_> = check_against(&validator, &schema, &o[0])
        .into_iter()
        .map(|f| (f.rule, f.pos.line, f.pos.column, f.message))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0, found[0].1, found[0].2),
        (rules::UNKNOWN_FIELD, 5, 3)
    );
    assert!(
        found[0].3.contains("did you mean `replicas`"),
        "{}",
        found[0].3
    );
}

#[test]
fn every_missing_required_field_is_reported() {
    let r = version("1.37");
    let found = check(
        &r,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
    );
    let messages: Vec<_> = found.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("selector")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("template")),
        "{messages:?}"
    );
}
