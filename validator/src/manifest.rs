//! From YAML documents to Kubernetes objects: `kind: List` expanded, empty documents skipped,
//! documents that cannot be objects reported at their line.
//!
//! A file is judged for what it is. A file none of whose documents looks like a Kubernetes object
//! (no `apiVersion`, no `kind`, no `metadata.name`: a `package.json`, a dashboard, a CI config) is
//! not a manifest: it is skipped and counted, never an error. Documents of tools' own
//! configuration (`kustomization.yaml`, skaffold, kind, kubeadm, kubeconfig files) are skipped
//! too, in any file. A document that looks like an object but lacks its `apiVersion`, `kind` or
//! name stays an error.
//!
//! A file of plain text template placeholders (`replicas: {{replicas}}`, filled in by a script
//! before it is applied) is a template, not a manifest: one `unit-not-rendered` warning at the
//! first placeholder, and its objects are not judged, as a chart's are not before it is
//! rendered. A Helm chart's syntax leaked into a manifest is the policy `template-leftover`'s.

use std::sync::Arc;

use serde_json::Value;

use crate::finding::{Finding, Severity};
use crate::object::{Object, ObjectRef, Provenance};
use crate::position::PosNode;
use crate::unit;
use crate::yaml::{self, LoadedYaml, YamlDocument};

/// Rule ids raised while turning documents into objects.
pub mod rules {
    /// A document that is not a mapping (a list or a scalar at the top).
    pub const NOT_OBJECT: &str = "manifest-not-object";
    /// No `apiVersion`, or not a string.
    pub const MISSING_API_VERSION: &str = "missing-api-version";
    /// No `kind`, or not a string.
    pub const MISSING_KIND: &str = "missing-kind";
    /// No `metadata.name`.
    pub const MISSING_NAME: &str = "missing-name";
    /// A file with no document at all: empty, or only comments (an info).
    pub const EMPTY_FILE: &str = "empty-file";
    /// An object larger than the API server stores (etcd's 1.5 MiB request limit).
    pub const TOO_LARGE: &str = "object-too-large";
}

/// The largest object the API server accepts: etcd's default request limit, 1.5 MiB.
pub const MAX_OBJECT_BYTES: u64 = 3 << 19;

/// The objects of one file and the findings met on the way.
#[derive(Debug, Default)]
pub struct FileObjects {
    /// Objects in file order.
    pub objects: Vec<Object>,
    /// Findings about the file and its documents.
    pub findings: Vec<Finding>,
    /// The file holds no Kubernetes object: it was read and set aside, not judged.
    pub skipped: bool,
}

/// API groups (the part of `apiVersion` before `/`) of tools' own configuration files: read by
/// a tool, never sent to an API server.
const TOOL_CONFIG_GROUPS: &[&str] = &[
    "kustomize.config.k8s.io",
    "kind.x-k8s.io",
    "skaffold",
    "kpt.dev",
    "kubeadm.k8s.io",
    "kubelet.config.k8s.io",
    "kubeproxy.config.k8s.io",
    "apiserver.config.k8s.io",
    "audit.k8s.io",
    "client.authentication.k8s.io",
    "ctlptl.dev",
];

/// What a document is, before it is judged.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// Nothing in it.
    Empty,
    /// A tool's configuration (see [`TOOL_CONFIG_GROUPS`], or a kubeconfig).
    ToolConfig,
    /// Has an `apiVersion`, a `kind` or a `metadata.name`: meant as a Kubernetes object.
    Object,
    /// Anything else: a mapping of other keys, a sequence, a scalar.
    Other,
}

fn shape(value: &Value) -> Shape {
    let Value::Object(map) = value else {
        return if value.is_null() {
            Shape::Empty
        } else {
            Shape::Other
        };
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str);
    let kind = map.get("kind").and_then(Value::as_str);
    if let Some(av) = api_version {
        let group = av.split_once('/').map_or("", |(g, _)| g);
        // `v1` Config is a kubeconfig, `v1` Policy a kube-scheduler policy file.
        let core_config = av == "v1" && matches!(kind, Some("Config" | "Policy"));
        if TOOL_CONFIG_GROUPS.contains(&group) || core_config {
            return Shape::ToolConfig;
        }
    }
    let named = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .is_some_and(|n| !n.is_null());
    if map.contains_key("apiVersion") || map.contains_key("kind") || named {
        Shape::Object
    } else {
        Shape::Other
    }
}

/// Turns a loaded YAML stream into objects.
pub fn objects_from(file: &Arc<str>, loaded: LoadedYaml) -> FileObjects {
    let mut judge = FileJudge::default();
    let mut read = FileObjects::default();
    for doc in loaded.documents {
        let mut part = judge.document(file, doc);
        read.objects.append(&mut part.objects);
        read.findings.append(&mut part.findings);
    }
    judge.finish(file, loaded.findings, read)
}

/// Turns a file's documents into objects one at a time, and at the end says what the file was:
/// a manifest, a file of something else (skipped), or a template. Until then its objects are
/// provisional: [`FileJudge::finish`] keeps or drops them, as reading the file whole would.
#[derive(Debug, Default)]
pub struct FileJudge {
    /// A document meant as an object was seen.
    any_object: bool,
    /// A document that is not empty was seen.
    any_content: bool,
    /// The first plain text template placeholder, with its position.
    template: Option<(crate::finding::Pos, String)>,
}

/// What a file turned out to be, once all its documents were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// Its objects are judged.
    Manifest,
    /// No document is meant as an object: set aside (`true` when it holds something at all).
    NotManifest {
        /// Some document is not empty (the file is counted as skipped).
        skipped: bool,
    },
    /// A plain text template: one finding, its objects not judged.
    Template(Box<Finding>),
}

impl FileJudge {
    /// Takes the next document of the file: its objects (none for a tool's configuration) and
    /// the findings about them and about the document, as judged if the file is a manifest.
    pub fn document(&mut self, file: &Arc<str>, doc: YamlDocument) -> FileObjects {
        let shape = shape(&doc.value);
        self.any_object |= shape == Shape::Object;
        self.any_content |= shape != Shape::Empty;
        if self.template.is_none() {
            self.template = document_placeholder(&doc);
        }
        let mut out = FileObjects::default();
        if shape != Shape::ToolConfig {
            document_objects(file, doc, &mut out);
        }
        out
    }

    /// What the file is, given every document read so far.
    pub fn kind(&self, file: &Arc<str>) -> FileKind {
        // A file with no document meant as an object is not a manifest: its documents are not
        // judged (their YAML traps and templates are the tool's business); syntax errors still
        // count, as nobody can tell what a broken file was meant to be.
        if !self.any_object {
            return FileKind::NotManifest {
                skipped: self.any_content,
            };
        }
        match &self.template {
            Some((pos, text)) => FileKind::Template(Box::new(Finding::new(
                unit::rules::NOT_RENDERED,
                Severity::Warning,
                file,
                *pos,
                format!(
                    "this file is a template (`{text}` is filled in before it is applied): render \
                     it and check the output; its objects were not checked"
                ),
            ))),
            None => FileKind::Manifest,
        }
    }

    /// The file's objects and findings: the stream's own `findings` first, then, for a manifest,
    /// what its documents gave (`read`, from [`FileJudge::document`]).
    pub fn finish(
        &self,
        file: &Arc<str>,
        findings: Vec<Finding>,
        read: FileObjects,
    ) -> FileObjects {
        let mut out = FileObjects {
            objects: Vec::new(),
            findings,
            skipped: false,
        };
        match self.kind(file) {
            FileKind::NotManifest { skipped } => out.skipped = skipped,
            // The documents' own findings are the template's business; only the stream's
            // (syntax, encoding) stay.
            FileKind::Template(finding) => out.findings.push(*finding),
            FileKind::Manifest => {
                let FileObjects {
                    objects,
                    mut findings,
                    ..
                } = read;
                out.objects = objects;
                out.findings.append(&mut findings);
            }
        }
        out
    }
}

fn document_objects(file: &Arc<str>, doc: YamlDocument, out: &mut FileObjects) {
    let YamlDocument {
        index,
        value,
        positions,
        mut findings,
        ..
    } = doc;
    let before = out.objects.len();
    match value {
        Value::Null => {}
        Value::Object(_) if is_list(&value) => {
            let Value::Object(mut map) = value else {
                unreachable!("checked by the guard")
            };
            let items = match map.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            let item_positions = match positions {
                PosNode::Map { mut entries, .. } => {
                    match entries.iter().rposition(|e| &*e.key == "items") {
                        Some(i) => match entries.swap_remove(i).value {
                            PosNode::Seq { items, .. } => items,
                            _ => Vec::new(),
                        },
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            for (i, (item, pos)) in items.into_iter().zip(item_positions).enumerate() {
                let pointer = format!("/items/{i}");
                object(file, index, pointer, item, pos, out);
            }
        }
        value => object(file, index, String::new(), value, positions, out),
    }
    // Attach the document's own findings to the object they sit in: the last one (of a List,
    // in source order) that starts at or before the finding.
    // Objects are in source order: a binary search finds it (a List of many items with a
    // finding each stays linear).
    let objects = &out.objects[before..];
    for f in &mut findings {
        let after = objects.partition_point(|o| o.positions.pos() <= f.pos);
        if let Some(o) = after.checked_sub(1).map(|i| &objects[i]) {
            f.object = Some(o.id.clone());
        }
    }
    out.findings.append(&mut findings);
}

/// The first plain text template placeholder (`{{name}}`) in a document's keys or single-line
/// values, with its position and text.
fn document_placeholder(doc: &YamlDocument) -> Option<(crate::finding::Pos, String)> {
    fn walk(v: &Value, pointer: &mut String, found: &mut Option<String>) -> Option<usize> {
        match v {
            Value::String(s) if !s.contains('\n') => {
                let at = yaml::placeholder(s)?;
                *found = Some(s[at..].split("}}").next().unwrap_or("").to_owned() + "}}");
                Some(0)
            }
            Value::Object(map) => map.iter().find_map(|(k, child)| {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&crate::position::escape_segment(k));
                let hit = walk(child, pointer, found);
                if hit.is_none() {
                    pointer.truncate(len);
                }
                hit
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                let hit = walk(child, pointer, found);
                if hit.is_none() {
                    pointer.truncate(len);
                }
                hit
            }),
            _ => None,
        }
    }
    {
        // `key: {{name}}` breaks the mapping: the reader reports it as a leftover at its line.
        let broken = doc
            .findings
            .iter()
            .filter(|f| {
                f.rule == yaml::rules::TEMPLATE_LEFTOVER && yaml::placeholder(&f.message).is_some()
            })
            .map(|f| {
                let text = f.message.split('`').nth(1).unwrap_or("{{...}}").to_owned();
                (f.pos, text)
            })
            .next();
        let mut pointer = String::new();
        let mut text = None;
        let in_value = walk(&doc.value, &mut pointer, &mut text).map(|_| {
            (
                doc.positions.locate(&pointer).value,
                text.unwrap_or_default(),
            )
        });
        match (broken, in_value) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

fn is_list(value: &Value) -> bool {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List") && value.get("items").is_some_and(Value::is_array)
}

fn object(
    file: &Arc<str>,
    document: usize,
    pointer: String,
    value: Value,
    positions: PosNode,
    out: &mut FileObjects,
) {
    let root = positions.pos();
    let what = if pointer.is_empty() {
        "document"
    } else {
        "list item"
    };
    if !value.is_object() {
        let found = match value {
            Value::Array(_) => "a sequence",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        out.findings.push(Finding::new(
            rules::NOT_OBJECT,
            Severity::Error,
            file,
            root,
            format!("this {what} is {found}, not a Kubernetes object (a mapping with apiVersion, kind and metadata)"),
        ));
        return;
    }
    let mut complete = true;
    let api_version = required_string(
        &value,
        &positions,
        "apiVersion",
        rules::MISSING_API_VERSION,
        file,
        out,
    );
    let kind = required_string(&value, &positions, "kind", rules::MISSING_KIND, file, out);
    complete &= api_version.is_some() && kind.is_some();
    let metadata = value.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = ObjectRef {
        api_version: api_version.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        namespace,
        name,
    };
    if id.name.is_empty() {
        let located = positions.locate("/metadata");
        let generate = metadata.is_some_and(|m| m.get("generateName").is_some());
        let message = if generate {
            "`metadata.generateName` cannot be applied declaratively; give the object a `metadata.name`"
        } else if located.exact {
            "`metadata.name` is missing"
        } else {
            "`metadata` with a `name` is missing"
        };
        let mut f = Finding::new(
            rules::MISSING_NAME,
            Severity::Error,
            file,
            located.best(),
            message,
        );
        if complete {
            f = f.with_object(id.clone());
        }
        out.findings.push(f);
    }
    if !complete {
        return;
    }
    let size = json_size(&value);
    if size > MAX_OBJECT_BYTES {
        out.findings.push(
            Finding::new(
                rules::TOO_LARGE,
                Severity::Error,
                file,
                root,
                format!(
                    "this object is {size} bytes as JSON; the API server (etcd) stores at most {MAX_OBJECT_BYTES} bytes (1.5 MiB) per object"
                ),
            )
            .with_object(id.clone()),
        );
    }
    out.objects.push(Object {
        id,
        provenance: Provenance {
            file: Arc::clone(file),
            document,
            pointer,
        },
        value,
        positions,
        origins: Vec::new(),
    });
}

/// The size of a value written as compact JSON, counted without writing it.
fn json_size(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn required_string(
    value: &Value,
    positions: &PosNode,
    field: &str,
    rule: &'static str,
    file: &Arc<str>,
    out: &mut FileObjects,
) -> Option<String> {
    match value.get(field) {
        Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
        Some(_) => {
            let pos = positions.locate_segments([field]).best();
            let msg = format!("`{field}` must be a non-empty string");
            out.findings
                .push(Finding::new(rule, Severity::Error, file, pos, msg));
        }
        None => {
            let msg = format!("`{field}` is missing; every Kubernetes object needs one");
            out.findings.push(Finding::new(
                rule,
                Severity::Error,
                file,
                positions.pos(),
                msg,
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Pos;
    use crate::yaml::load;

    fn objects(text: &str) -> FileObjects {
        let file: Arc<str> = Arc::from("m.yaml");
        objects_from(&file, load(&file, text))
    }

    #[test]
    fn lists_expand_with_their_positions() {
        let o = objects(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b, namespace: x}\n",
        );
        assert!(o.findings.is_empty(), "{:?}", o.findings);
        let names: Vec<_> = o.objects.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(names, ["ConfigMap a", "ConfigMap x/b"]);
        assert_eq!(o.objects[1].provenance.pointer, "/items/1");
        assert_eq!(o.objects[1].pos("/metadata/name"), Pos::new(9, 14));
    }

    #[test]
    fn objects_over_the_etcd_limit_are_findings() {
        let big = "x".repeat(1_600_000);
        let o = objects(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {{k: {big}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: b}}\n"
        ));
        let found: Vec<_> = o.findings.iter().map(|f| (f.rule, f.pos.line)).collect();
        assert_eq!(found, [(rules::TOO_LARGE, 1)]);
        assert_eq!(o.objects.len(), 2);
    }

    #[test]
    fn findings_in_list_items_name_their_item() {
        let o = objects(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n  data: {x: yes}\n",
        );
        let names: Vec<_> = o
            .findings
            .iter()
            .map(|f| f.object.as_ref().map(|o| o.name.as_str()))
            .collect();
        assert_eq!(names, [Some("b")]);
    }

    #[test]
    fn files_that_hold_no_object_are_skipped_not_judged() {
        for text in [
            "{\"name\": \"shop\", \"version\": \"1.0.0\", \"dependencies\": {}}\n",
            "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [build, .]\non: yes\n",
            "replicaCount: 1\nimage:\n  repository: nginx\n---\n",
            "[1, 2, 3]\n",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
            "apiVersion: skaffold/v4beta6\nkind: Config\nmetadata: {name: app}\n",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}]\n",
            "{\"kind\": \"Policy\", \"apiVersion\": \"v1\", \"predicates\": []}\n",
        ] {
            let o = objects(text);
            assert!(o.skipped, "{text}");
            assert!(o.findings.is_empty(), "{text}: {:?}", o.findings);
            assert!(o.objects.is_empty(), "{text}");
        }
        // Empty files and syntax errors are not "skipped": the first holds nothing, the second
        // cannot be told apart from a broken manifest.
        let empty = objects("# nothing\n");
        assert!(!empty.skipped && empty.findings.is_empty());
        let broken = objects("a: [1\n");
        assert!(!broken.skipped && !broken.findings.is_empty());
    }

    #[test]
    fn documents_meant_as_objects_stay_errors() {
        // A name but no type, a kind without apiVersion: meant as objects, reported.
        let o = objects("metadata: {name: web}\nspec: {replicas: 1}\n");
        assert!(!o.skipped);
        let rules: Vec<_> = o.findings.iter().map(|f| f.rule).collect();
        assert_eq!(rules, [rules::MISSING_API_VERSION, rules::MISSING_KIND]);
        // In a file of objects, a document of other keys is a broken object, not configuration.
        let o = objects("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nfoo: bar\n");
        assert!(!o.skipped);
        assert_eq!(o.objects.len(), 1);
        assert!(
            o.findings
                .iter()
                .any(|f| f.rule == rules::MISSING_API_VERSION)
        );
        // A tool's config beside objects is set aside; the objects are judged.
        let o = objects(
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        );
        assert!(o.findings.is_empty(), "{:?}", o.findings);
        assert_eq!(o.objects.len(), 1);
    }

    #[test]
    fn files_of_text_template_placeholders_are_templates_not_manifests() {
        let o = objects(
            "kind: ReplicationController\napiVersion: v1\nmetadata:\n  name: vtgate-{{uid}}\nspec:\n  replicas: {{replicas}}\n",
        );
        let got: Vec<_> = o
            .findings
            .iter()
            .map(|f| (f.rule, f.pos.line, f.severity))
            .collect();
        assert_eq!(got, [(unit::rules::NOT_RENDERED, 4, Severity::Warning)]);
        assert!(o.objects.is_empty());
        // Go templates in data (Prometheus, Alertmanager) are not placeholders.
        let o = objects(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  s: \"{{ $labels.x }} {{ .Status }}\"\n",
        );
        assert!(o.findings.is_empty(), "{:?}", o.findings);
        assert_eq!(o.objects.len(), 1);
    }

    #[test]
    fn broken_documents_are_findings_and_others_survive() {
        let o = objects(
            "- a\n---\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n",
        );
        let got: Vec<_> = o.findings.iter().map(|f| (f.rule, f.pos.line)).collect();
        assert_eq!(
            got,
            [
                (rules::NOT_OBJECT, 1),
                (rules::MISSING_API_VERSION, 3),
                (rules::MISSING_NAME, 6)
            ]
        );
        let names: Vec<_> = o.objects.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(names, ["Pod ", "Namespace ok"]);
    }
}
