//! `gate::validate_paths` streams files (one document at a time, in two passes); loading the
//! same files whole and judging them with `gate::check_set` must give the very same report.

use std::path::{Path, PathBuf};

use tally_validator::finding::{drop_consequences, sort_findings};
use tally_validator::gate::{self, GateOptions};
use tally_validator::schema::SchemaRegistry;
use tally_validator::source;

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

/// The gate as it was before streaming: every object loaded, then judged as one set.
fn whole(paths: &[PathBuf], options: &GateOptions) -> gate::GateReport {
    let inputs = source::discover(paths, &options.excludes).unwrap_or_else(|e| panic!("{e}"));
    let mut loaded = gate::load_inputs_limited(&inputs, &options.units, &options.limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut registry =
        SchemaRegistry::new(options.schema.clone()).unwrap_or_else(|e| panic!("{e}"));
    loaded.findings.extend(registry.add_crds(&loaded.objects));
    let mut findings = std::mem::take(&mut loaded.findings);
    findings.extend(gate::check_set(&registry, &loaded.objects, options));
    sort_findings(&mut findings);
    drop_consequences(&mut findings);
    gate::report(loaded, findings, &registry)
}

const SET: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
          envFrom: [{configMapRef: {name: settings}}]
          ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: shop}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: missing, port: {number: 80}}}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ResourceQuota
    metadata: {name: q, namespace: shop}
    spec: {hard: {requests.cpu: '4'}}
  - apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: other, namespace: shop}
    spec: {minAvailable: 1, selector: {matchLabels: {app: other}}}
";

/// A document that does not parse: the file is read one document at a time.
const BROKEN: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - {name: db, image: 'postgres:16'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: broken, namespace: data
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: yes}
";

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: lab}
spec: {size: large}
";

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
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
              properties:
                size: {type: integer}
";

#[test]
fn streaming_gives_the_findings_of_the_whole_set() {
    let dir = scratch("streaming-whole-set");
    write(&dir, "set.yaml", SET);
    write(&dir, "broken.yaml", BROKEN);
    // The custom resource comes before its CRD: its schema is known before any check.
    write(&dir, "a-widget.yaml", WIDGET);
    write(&dir, "b-crd.yaml", CRD);
    write(
        &dir,
        "template.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{name}}'}\n",
    );
    write(
        &dir,
        "package.json",
        "{\"name\": \"app\", \"version\": \"1.0.0\"}\n",
    );
    write(&dir, "empty.yaml", "# nothing\n");
    write(
        &dir,
        "tabs.json",
        "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Secret\",\n\t\"metadata\": {\"name\": \"s\", \"namespace\": \"shop\"},\n\t\"stringData\": {\"password\": \"hunter2\"}\n}\n",
    );
    let paths = [dir.clone()];
    let options = GateOptions::default();
    let streamed = gate::validate_paths(&paths, &options).unwrap_or_else(|e| panic!("{e}"));
    let expected = whole(&paths, &options);
    assert_eq!(streamed.findings, expected.findings);
    assert_eq!(streamed.checked, expected.checked);
    assert_eq!(
        (streamed.files, streamed.objects, &streamed.skipped),
        (expected.files, expected.objects, &expected.skipped)
    );
    // The set is judged as a set: cross-object and whole-namespace rules fired, across files.
    let rules: Vec<&str> = streamed.findings.iter().map(|f| f.rule).collect();
    for rule in [
        "ingress-backend-exists",
        "service-selects-pods",
        "namespace-default-deny",
        "namespace-has-quota",
        "replicas-minimum",
        "yaml-syntax",
        "schema-invalid",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    for (file, text) in expected.sources.iter() {
        assert_eq!(streamed.sources.text(file), Some(&**text), "{file}");
    }
}

#[test]
fn streaming_without_policies_gives_the_schema_findings_of_the_whole_set() {
    let dir = scratch("streaming-no-policies");
    write(&dir, "set.yaml", SET);
    write(&dir, "broken.yaml", BROKEN);
    let paths = [dir.clone()];
    let options = GateOptions {
        skip_policies: true,
        ..GateOptions::default()
    };
    let streamed = gate::validate_paths(&paths, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(streamed.findings, whole(&paths, &options).findings);
}
