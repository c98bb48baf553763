//! Kubernetes objects as the gate sees them: a JSON value, its positions, and where it came from.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::finding::{Finding, Pos, Severity};
use crate::position::{Located, PosNode};

mod workload_kind;

pub(crate) use workload_kind::WorkloadKind;

/// Which object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, ...
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Deployment`, ...
    pub kind: String,
    /// The namespace, when the object names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name` (empty when missing).
    pub name: String,
}

impl ObjectRef {
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// The version part of `apiVersion`.
    pub fn version(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((_, version)) => version,
            None => &self.api_version,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The JSON pointer of the pod spec in an object of this API version and kind (`/spec` for a Pod,
/// `/spec/template/spec` for a Deployment, `/spec/jobTemplate/spec/template/spec` for a CronJob),
/// when it carries one. Group-aware: a custom `Deployment` kind has none.
pub fn pod_spec_pointer(api_version: &str, kind: &str) -> Option<&'static str> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    WorkloadKind::from_parts(group, kind).map(|k| k.pointers().0)
}

/// Where an object came from: its file, its document, and (for `kind: List` items) its place in
/// the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The file as given or found.
    pub file: Arc<str>,
    /// 0-based document index in the file.
    pub document: usize,
    /// JSON pointer of the object inside its document (empty, or `/items/3` in a List).
    pub pointer: String,
}

/// One Kubernetes object with everything needed to report on it.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its identity.
    pub id: ObjectRef,
    /// Where it came from.
    pub provenance: Provenance,
    /// The object as the API server would receive it.
    pub value: Value,
    /// The position of every node of `value`.
    pub positions: PosNode,
    /// Fields set from elsewhere (an environment's override): findings on them point there.
    pub origins: Vec<Origin>,
}

/// A field of an object whose value came from another file, such as an environment override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// JSON pointer of the field in the object.
    pub pointer: String,
    /// The file that set it.
    pub file: Arc<str>,
    /// Where in that file.
    pub pos: Pos,
}

impl Object {
    /// Where a JSON pointer (relative to this object) is in the source.
    pub fn locate(&self, pointer: &str) -> Located {
        self.positions.locate(pointer)
    }

    /// The best position for a pointer: the key if it exists, else the value, else the nearest
    /// existing ancestor.
    pub fn pos(&self, pointer: &str) -> Pos {
        self.positions.locate(pointer).best()
    }

    /// A finding about this object at `pointer`: at the field's own line, or at the line that
    /// set it when an [`Origin`] covers it.
    pub fn finding(
        &self,
        rule: &'static str,
        severity: Severity,
        pointer: &str,
        message: impl Into<String>,
    ) -> Finding {
        let (file, pos) = match self.origin_of(pointer) {
            Some(o) => (&o.file, o.pos),
            None => (&self.provenance.file, self.pos(pointer)),
        };
        Finding::new(rule, severity, file, pos, message).with_object(self.id.clone())
    }

    /// The origin covering `pointer` (the field itself or one of its ancestors), if any.
    pub fn origin_of(&self, pointer: &str) -> Option<&Origin> {
        self.origins.iter().rev().find(|o| {
            pointer == o.pointer
                || (pointer.starts_with(&o.pointer) && pointer[o.pointer.len()..].starts_with('/'))
        })
    }

    /// A copy of this object that keeps, of its value and positions, only the path to `pointer`
    /// (a mapping key path such as `/metadata/namespace`): enough to report at that field, at a
    /// fraction of the size. Identity, provenance and origins are kept whole.
    pub fn trimmed_to(&self, pointer: &str) -> Object {
        let keys: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|s| crate::position::unescape_segment(s).into_owned())
            .collect();
        Object {
            id: self.id.clone(),
            provenance: self.provenance.clone(),
            value: trim_value(&self.value, &keys),
            positions: trim_positions(&self.positions, &keys),
            origins: self.origins.clone(),
        }
    }

    /// `metadata.annotations[key]`, when it is a string.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// `metadata.labels`, when present.
    pub fn labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
    }
}

/// `value` with, in each mapping on the way, only the key that `keys` follows.
fn trim_value(value: &Value, keys: &[String]) -> Value {
    match (value, keys.split_first()) {
        (Value::Object(map), Some((key, rest))) => {
            let mut out = serde_json::Map::new();
            if let Some(child) = map.get(key) {
                out.insert(key.clone(), trim_value(child, rest));
            }
            Value::Object(out)
        }
        (Value::Object(_) | Value::Array(_), None) => Value::Null,
        (v, _) => v.clone(),
    }
}

/// The positions of [`trim_value`]'s result: the same path, the same entries on it.
fn trim_positions(node: &PosNode, keys: &[String]) -> PosNode {
    match (node, keys.split_first()) {
        (PosNode::Map { pos, .. }, Some((key, rest))) => PosNode::Map {
            pos: *pos,
            entries: node
                .entry(key)
                .map(|e| crate::position::MapEntry {
                    key: e.key.clone(),
                    key_pos: e.key_pos,
                    value: trim_positions(&e.value, rest),
                })
                .into_iter()
                .collect(),
        },
        (n, _) => PosNode::Scalar(n.pos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{manifest, yaml};

    #[test]
    fn findings_on_overridden_fields_point_at_the_override() {
        let file: Arc<str> = Arc::from("app.yaml");
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n";
        let mut o = manifest::objects_from(&file, yaml::load(&file, text))
            .objects
            .remove(0);
        o.origins.push(Origin {
            pointer: "/spec/containers".into(),
            file: Arc::from("env.yaml"),
            pos: Pos::new(9, 7),
        });
        let f = o.finding("r", Severity::Error, "/spec/containers/0/image", "m");
        assert_eq!((&*f.file, f.pos), ("env.yaml", Pos::new(9, 7)));
        let f = o.finding("r", Severity::Error, "/spec/containersX", "m");
        assert_eq!((&*f.file, f.pos.line), ("app.yaml", 5));
    }
}
