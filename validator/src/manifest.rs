//! From YAML documents to Kubernetes objects: `kind: List` expanded, empty documents skipped,
//! documents that cannot be objects reported at their line.

use std::sync::Arc;

use serde_json::Value;

use crate::finding::{Finding, Severity};
use crate::object::{Object, ObjectRef, Provenance};
use crate::position::PosNode;
use crate::yaml::{LoadedYaml, YamlDocument};

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
}

/// The objects of one file and the findings met on the way.
#[derive(Debug, Default)]
pub struct FileObjects {
    /// Objects in file order.
    pub objects: Vec<Object>,
    /// Findings about the file and its documents.
    pub findings: Vec<Finding>,
}

/// Turns a loaded YAML stream into objects.
pub fn objects_from(file: &Arc<str>, loaded: LoadedYaml) -> FileObjects {
    let mut out = FileObjects {
        objects: Vec::new(),
        findings: loaded.findings,
    };
    for doc in loaded.documents {
        document_objects(file, doc, &mut out);
    }
    out
}

fn document_objects(file: &Arc<str>, doc: YamlDocument, out: &mut FileObjects) {
    let YamlDocument {
        index,
        value,
        positions,
        mut findings,
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
            let item_positions = match positions.entry("items").map(|e| &e.value) {
                Some(PosNode::Seq { items, .. }) => items.clone(),
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
    let objects = &out.objects[before..];
    for f in &mut findings {
        if let Some(o) = objects.iter().rev().find(|o| o.positions.pos() <= f.pos) {
            f.object = Some(o.id.clone());
        }
    }
    out.findings.append(&mut findings);
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
