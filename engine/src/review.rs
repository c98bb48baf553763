//! What a change to the repo does to each environment, without a cluster: the environment as
//! rendered at one commit against the same environment at another, object by object (added,
//! removed, changed field by field; Secret values redacted). What `tally diff` prints for a
//! pull request, so a reviewer sees every environment's change, forks' PRs included.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};
use tally_layout::validator::ObjectRef;

use crate::diff::{self, Change, FieldChange, Op};
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
    /// Changed objects whose change touches fields the API server keeps immutable: the fields,
    /// and whether the new object allows being deleted and created again.
    pub immutable: Vec<(ObjectRef, Vec<String>, bool)>,
}

impl EnvironmentDiff {
    /// Whether anything changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The summary line: `staging: 1 to add, 2 to change, 0 to remove`.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} to add, {} to change, {} to remove",
            self.environment,
            self.added.len(),
            self.changed.len(),
            self.removed.len()
        )
    }

    /// Markdown for a pull request (a comment or the job summary): a heading with the summary,
    /// the change in a `diff` block (a changed field as its old line and its new line, so GitHub
    /// colours them), folded when long.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.summary());
        if self.is_empty() {
            out.push_str("No change.\n\n");
            return out;
        }
        let mut body = String::new();
        for id in &self.added {
            let _ = writeln!(body, "+ add {id}");
        }
        for (id, fields) in &self.changed {
            let _ = writeln!(body, "  update {id}");
            for f in fields {
                let from = diff::shown(f.from.as_ref(), f.redacted);
                let to = diff::shown(f.to.as_ref(), f.redacted);
                match f.op {
                    Op::Add => {
                        let _ = writeln!(body, "+     {}: {to}", f.path);
                    }
                    Op::Remove => {
                        let _ = writeln!(body, "-     {}: {from}", f.path);
                    }
                    Op::Change if f.redacted => {
                        let _ = writeln!(body, "!     {}: (redacted, changed)", f.path);
                    }
                    _ => {
                        let _ = writeln!(body, "-     {}: {from}", f.path);
                        let _ = writeln!(body, "+     {}: {to}", f.path);
                    }
                }
            }
            if let Some((_, immutable, recreate)) = self.immutable.iter().find(|(i, ..)| i == id) {
                let what = if *recreate {
                    "the object will be deleted and created again"
                } else {
                    "applying will stop unless the object allows recreation (tally.dev/recreate)"
                };
                let _ = writeln!(
                    body,
                    "!     {} cannot change in place: {what}",
                    immutable.join(", ")
                );
            }
        }
        for id in &self.removed {
            let _ = writeln!(body, "- remove {id}");
        }
        // A fence inside a value must not end the block.
        let body = body.replace("```", "`\u{200b}``");
        let long = body.lines().count() > 40;
        if long {
            out.push_str("<details><summary>The change, object by object</summary>\n\n");
        }
        out.push_str("```diff\n");
        out.push_str(&body);
        out.push_str("```\n");
        if long {
            out.push_str("\n</details>\n");
        }
        out.push('\n');
        out
    }

    /// As the plan reads: `+ add`, `- remove`, `~ update` with its fields, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for id in &self.added {
            let _ = writeln!(out, "+ add {id}");
        }
        for (id, fields) in &self.changed {
            diff::write_change(&mut out, id, &Change::Update(fields.clone()));
            if let Some((_, immutable, recreate)) = self.immutable.iter().find(|(i, ..)| i == id) {
                let fields = immutable.join(", ");
                if *recreate {
                    let _ = writeln!(
                        out,
                        "    ! {fields} cannot change in place: the object will be deleted and created again"
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "    ! {fields} cannot change in place: applying will stop unless the object is annotated `{}: enabled` (or its app has `recreate: true`)",
                        diff::RECREATE_ANNOTATION
                    );
                }
            }
        }
        for id in &self.removed {
            let _ = writeln!(out, "- remove {id}");
        }
        let _ = writeln!(out, "{}", self.summary());
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
                    let immutable = immutable_changed(&id, &fields);
                    if !immutable.is_empty() {
                        out.immutable
                            .push((id.clone(), immutable, diff::recreate_allowed(&new)));
                    }
                    out.changed.push((id, fields));
                }
            }
        }
    }
    out.removed = old.into_values().map(|(id, _)| id).collect();
    out
}

/// The fields of a kind the API server refuses to change in place (as field paths); the server
/// has the last word when applying (see `confirm`), this is the warning ahead of it.
fn immutable_fields_of(id: &ObjectRef) -> &'static [&'static str] {
    match (id.group(), id.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => &["spec.selector"],
        ("apps", "StatefulSet") => &[
            "spec.selector",
            "spec.serviceName",
            "spec.volumeClaimTemplates",
            "spec.podManagementPolicy",
        ],
        ("batch", "Job") => &["spec.selector", "spec.template"],
        ("", "Service") => &["spec.clusterIP", "spec.clusterIPs"],
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => &["roleRef"],
        ("", "PersistentVolumeClaim") => &[
            "spec.accessModes",
            "spec.storageClassName",
            "spec.volumeMode",
            "spec.selector",
            "spec.dataSource",
            "spec.volumeName",
        ],
        _ => &[],
    }
}

/// The immutable fields a change touches.
fn immutable_changed(id: &ObjectRef, fields: &[FieldChange]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in immutable_fields_of(id) {
        let touched = fields.iter().any(|c| {
            c.path == *f
                || c.path
                    .strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        if touched {
            out.push((*f).to_owned());
        }
    }
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
        let md = d.markdown();
        assert!(
            md.starts_with("### staging: 1 to add, 1 to change, 1 to remove\n\n```diff\n"),
            "{md}"
        );
        assert!(
            md.contains("-     data.x: \"1\"\n+     data.x: \"2\"\n"),
            "{md}"
        );
    }

    #[test]
    fn a_change_to_an_immutable_field_is_warned_about() {
        let deployment = |app: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": app}},
                    "template": {"metadata": {"labels": {"app": app}}}}})
        };
        let d = compare("staging", &[deployment("web")], &[deployment("web2")]);
        assert!(
            d.text()
                .contains("    ! spec.selector cannot change in place: applying will stop"),
            "{}",
            d.text()
        );
        let mut allowed = deployment("web2");
        allowed["metadata"]["annotations"] = json!({"tally.dev/recreate": "enabled"});
        let d = compare("staging", &[deployment("web")], &[allowed]);
        assert!(
            d.text().contains("will be deleted and created again"),
            "{}",
            d.text()
        );
    }
}
