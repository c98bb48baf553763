//! What a change to the repo does to each environment, without a cluster: the environment as
//! rendered at one commit against the same environment at another, object by object (added,
//! removed, changed field by field; Secret values redacted). What `tally diff` prints for a
//! pull request, so a reviewer sees every environment's change, forks' PRs included.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};
use tally_layout::validator::ObjectRef;

use crate::diff::{self, Change, FieldChange};
use crate::fields::{self, MANAGER};
use crate::inventory::{Entry, Key};

/// One environment's change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvironmentDiff {
    /// The environment.
    pub environment: String,
    /// Objects only the new render has.
    pub added: Vec<ObjectRef>,
    /// Objects only the old render has.
    pub removed: Vec<ObjectRef>,
    /// Objects in both that differ, with their fields.
    pub changed: Vec<(ObjectRef, Vec<FieldChange>)>,
}

impl EnvironmentDiff {
    /// Whether anything changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// As the plan reads: `+ add`, `- remove`, `~ update` with its fields, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for id in &self.added {
            let _ = writeln!(out, "+ add {id}");
        }
        for (id, fields) in &self.changed {
            diff::write_change(&mut out, id, &Change::Update(fields.clone()));
        }
        for id in &self.removed {
            let _ = writeln!(out, "- remove {id}");
        }
        let _ = writeln!(
            out,
            "{}: {} to add, {} to change, {} to remove",
            self.environment,
            self.added.len(),
            self.changed.len(),
            self.removed.len()
        );
        out
    }
}

/// Compares an environment's objects at the old commit (`base`) and the new one (`head`); an
/// environment missing on one side has all its objects added or removed.
pub fn compare(environment: &str, base: &[Value], head: &[Value]) -> EnvironmentDiff {
    let index = |objects: &[Value]| -> BTreeMap<Key, (ObjectRef, Value)> {
        objects
            .iter()
            .map(|o| {
                let entry = Entry::of(o);
                (entry.key(), (entry.to_ref(), o.clone()))
            })
            .collect()
    };
    let mut old = index(base);
    let mut out = EnvironmentDiff {
        environment: environment.to_owned(),
        ..EnvironmentDiff::default()
    };
    for (key, (id, new)) in index(head) {
        match old.remove(&key) {
            None => out.added.push(id),
            Some((_, before)) => {
                // The old object as if tally had applied it: every field it sets is tally's, so
                // a field the new one drops shows as removed.
                let mut applied = before;
                let owned = fields::field_set(&applied);
                if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert(
                        "managedFields".into(),
                        json!([{"manager": MANAGER, "operation": "Apply", "fieldsV1": owned}]),
                    );
                }
                if let Change::Update(fields) = diff::diff(&new, Some(&applied)) {
                    out.changed.push((id, fields));
                }
            }
        }
    }
    out.removed = old.into_values().map(|(id, _)| id).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"}, "data": data})
    }

    #[test]
    fn objects_added_removed_and_changed_field_by_field() {
        let base = [
            config_map("a", json!({"x": "1", "gone": "y"})),
            config_map("old", json!({})),
        ];
        let head = [
            config_map("a", json!({"x": "2"})),
            config_map("new", json!({})),
        ];
        let d = compare("staging", &base, &head);
        let text = d.text();
        assert!(text.contains("+ add ConfigMap shop/new"), "{text}");
        assert!(text.contains("- remove ConfigMap shop/old"), "{text}");
        assert!(text.contains("~ update ConfigMap shop/a"), "{text}");
        assert!(text.contains("    ~ data.x: \"1\" → \"2\""), "{text}");
        assert!(text.contains("    - data.gone: \"y\""), "{text}");
        assert!(
            text.ends_with("staging: 1 to add, 1 to change, 1 to remove\n"),
            "{text}"
        );
        assert!(compare("staging", &base, &base).is_empty());
    }
}
