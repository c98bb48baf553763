//! What tally applied to an environment, kept in the cluster, and what may be pruned.
//!
//! The inventory is a ConfigMap `tally-inventory-<env>` in the engine's namespace (default
//! `tally-system`) listing every object of the last applied commit, one JSON object per line
//! (group, version, kind, namespace, name), with the commit and the time it was applied. Objects
//! are identified by group, kind, namespace and name, not version: moving a kind from `v1beta1`
//! to `v1` is the same object and must never prune it.
//!
//! Pruning deletes only what the previous inventory lists, the render no longer has, and the live
//! object still proves tally's (`app.kubernetes.io/managed-by: tally` and the same
//! `tally.dev/environment`), unless it is annotated `tally.dev/prune: disabled`. The guards are
//! plain functions: [`check_render_not_empty`], [`check_apply_clean`], [`foreign_objects`] (a
//! Namespace or CRD is not deleted while it holds objects tally does not own).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tally_layout::render::{ENVIRONMENT_LABEL, MANAGED_BY};
use tally_layout::validator::ObjectRef;

use crate::wave;

/// The namespace the engine keeps its inventories in unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "tally-system";
/// The annotation that keeps an object from being pruned (`tally.dev/prune: disabled`).
pub const PRUNE_ANNOTATION: &str = "tally.dev/prune";
/// The label naming the environment of an inventory ConfigMap.
pub const INVENTORY_LABEL: &str = "tally.dev/inventory";

/// Why the inventory could not be read, or pruning was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    /// The ConfigMap lacks a field or holds something else.
    #[error("inventory ConfigMap {name}: {problem}")]
    Malformed {
        /// The ConfigMap's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The render has no objects; pruning would delete everything tally applied.
    #[error(
        "the render of environment `{environment}` is empty: refusing to prune the {count} objects in its inventory"
    )]
    EmptyRender {
        /// The environment.
        environment: String,
        /// How many objects pruning would have deleted.
        count: usize,
    },
    /// The apply did not complete cleanly.
    #[error("the apply did not complete cleanly: nothing is pruned")]
    ApplyIncomplete,
}

/// One object in an inventory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, for namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// An object's identity across API versions: group, kind, namespace, name.
pub type Key = (String, String, Option<String>, String);

impl Entry {
    /// The entry for an object reference.
    pub fn from_ref(r: &ObjectRef) -> Entry {
        Entry {
            group: r.group().to_owned(),
            version: r.version().to_owned(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
    }

    /// The entry for an object given as JSON.
    pub fn of(object: &Value) -> Entry {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str);
        let api_version = s("/apiVersion").unwrap_or("");
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        Entry {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: s("/kind").unwrap_or("").to_owned(),
            namespace: s("/metadata/namespace").map(str::to_owned),
            name: s("/metadata/name").unwrap_or("").to_owned(),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The object reference.
    pub fn to_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The identity that survives an API version change.
    pub fn key(&self) -> Key {
        (
            self.group.clone(),
            self.kind.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_ref().fmt(f)
    }
}

/// What tally applied to one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// The environment.
    pub environment: String,
    /// The commit last applied cleanly (empty before the first).
    pub commit: String,
    /// When it was written (RFC 3339, UTC).
    pub applied_at: String,
    /// A commit whose apply started but has not finished cleanly: the objects listed then
    /// include its new ones, so an interrupted apply leaves nothing unaccounted for.
    pub pending: Option<String>,
    /// The objects, sorted, one per identity.
    pub objects: Vec<Entry>,
}

impl Inventory {
    /// An inventory of `objects` (sorted and made unique by identity).
    pub fn new(
        environment: impl Into<String>,
        commit: impl Into<String>,
        objects: impl IntoIterator<Item = Entry>,
    ) -> Inventory {
        let mut inv = Inventory {
            environment: environment.into(),
            commit: commit.into(),
            applied_at: now_rfc3339(),
            pending: None,
            objects: objects.into_iter().collect(),
        };
        inv.normalize();
        inv
    }

    fn normalize(&mut self) {
        self.objects.sort();
        let mut seen = BTreeSet::new();
        self.objects.retain(|e| seen.insert(e.key()));
    }

    /// The ConfigMap name of an environment's inventory.
    pub fn config_map_name(environment: &str) -> String {
        format!("tally-inventory-{environment}")
    }

    /// The identities of the objects.
    pub fn keys(&self) -> BTreeSet<Key> {
        self.objects.iter().map(Entry::key).collect()
    }

    /// This inventory with `more` objects added (an apply in progress or interrupted).
    pub fn union(&self, more: impl IntoIterator<Item = Entry>) -> Inventory {
        let mut out = self.clone();
        out.objects.extend(more);
        out.normalize();
        out
    }

    /// Whether two inventories list the same objects for the same commit.
    pub fn same_content(&self, other: &Inventory) -> bool {
        self.commit == other.commit
            && self.pending == other.pending
            && self.objects == other.objects
    }

    /// The ConfigMap that stores this inventory in `namespace`.
    pub fn to_config_map(&self, namespace: &str) -> Value {
        let mut lines = String::new();
        for e in &self.objects {
            // An Entry always serializes; the fallback keeps this infallible.
            lines.push_str(&serde_json::to_string(e).unwrap_or_default());
            lines.push('\n');
        }
        let mut data = Map::new();
        data.insert("environment".into(), json!(self.environment));
        data.insert("commit".into(), json!(self.commit));
        data.insert("appliedAt".into(), json!(self.applied_at));
        if let Some(p) = &self.pending {
            data.insert("pending".into(), json!(p));
        }
        data.insert("objects".into(), json!(lines));
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": Inventory::config_map_name(&self.environment),
                "namespace": namespace,
                "labels": {MANAGED_BY.0: MANAGED_BY.1, INVENTORY_LABEL: self.environment},
                "annotations": {PRUNE_ANNOTATION: "disabled"},
            },
            "data": data,
        })
    }

    /// Reads an inventory from its ConfigMap.
    pub fn from_config_map(cm: &Value) -> Result<Inventory, InventoryError> {
        let name = cm
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let malformed = |problem: String| InventoryError::Malformed {
            name: name.clone(),
            problem,
        };
        let data = cm
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("no `data`".into()))?;
        let text = |k: &str| data.get(k).and_then(Value::as_str);
        let environment = text("environment")
            .ok_or_else(|| malformed("no `data.environment`".into()))?
            .to_owned();
        let mut objects = Vec::new();
        for (i, line) in text("objects").unwrap_or("").lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e: Entry = serde_json::from_str(line)
                .map_err(|err| malformed(format!("objects line {}: {err}", i + 1)))?;
            objects.push(e);
        }
        let mut inv = Inventory {
            environment,
            commit: text("commit").unwrap_or("").to_owned(),
            applied_at: text("appliedAt").unwrap_or("").to_owned(),
            pending: text("pending").map(str::to_owned),
            objects,
        };
        inv.normalize();
        Ok(inv)
    }
}

/// The current time as RFC 3339 in UTC, to the second.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 in UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Whether a live object carries tally's ownership labels for `environment`.
pub fn owned_by_tally(object: &Value, environment: &str) -> bool {
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    label(MANAGED_BY.0) == Some(MANAGED_BY.1) && label(ENVIRONMENT_LABEL) == Some(environment)
}

/// Whether a live object is annotated `tally.dev/prune: disabled`.
pub fn prune_disabled(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PRUNE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("disabled")
}

/// Guard: an empty render never prunes. `Ok` when there is something rendered or nothing to prune.
pub fn check_render_not_empty(
    environment: &str,
    desired_count: usize,
    previous: &Inventory,
) -> Result<(), InventoryError> {
    if desired_count == 0 && !previous.objects.is_empty() {
        return Err(InventoryError::EmptyRender {
            environment: environment.to_owned(),
            count: previous.objects.len(),
        });
    }
    Ok(())
}

/// Guard: nothing is pruned after an apply that did not complete cleanly.
pub fn check_apply_clean(clean: bool) -> Result<(), InventoryError> {
    if clean {
        Ok(())
    } else {
        Err(InventoryError::ApplyIncomplete)
    }
}

/// Why a prune candidate is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// The live object lacks tally's labels for this environment (someone else took it over).
    NotOwned,
    /// The live object is annotated `tally.dev/prune: disabled`.
    PruneDisabled,
    /// A Namespace or CRD that still holds objects tally does not own (or still wants).
    InUse(Vec<String>),
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::NotOwned => {
                f.write_str("it no longer carries tally's labels for this environment")
            }
            KeepReason::PruneDisabled => f.write_str("annotated tally.dev/prune: disabled"),
            KeepReason::InUse(objects) => {
                let shown: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
                let more = objects.len().saturating_sub(shown.len());
                write!(
                    f,
                    "it holds objects tally does not own: {}",
                    shown.join(", ")
                )?;
                if more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
        }
    }
}

/// The outcome of comparing the previous inventory with the desired objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneSet {
    /// To delete, in deletion order (custom resources first; Namespaces, then CRDs, last).
    pub delete: Vec<Entry>,
    /// Left alone, with the reason.
    pub kept: Vec<(Entry, KeepReason)>,
    /// Already gone from the cluster.
    pub gone: Vec<Entry>,
}

impl PruneSet {
    /// Whether nothing is to be deleted.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
    }
}

/// The objects of `previous` that `desired` no longer has, split into those to delete, those to
/// keep, and those already gone. `live` gives the live object of an entry, if it exists. Refuses
/// (an error) when the render is empty.
pub fn prune_candidates<'a>(
    previous: &Inventory,
    desired: &BTreeSet<Key>,
    live: impl Fn(&Entry) -> Option<&'a Value>,
) -> Result<PruneSet, InventoryError> {
    check_render_not_empty(&previous.environment, desired.len(), previous)?;
    let mut out = PruneSet::default();
    for entry in &previous.objects {
        if desired.contains(&entry.key()) {
            continue;
        }
        match live(entry) {
            None => out.gone.push(entry.clone()),
            Some(v) if !owned_by_tally(v, &previous.environment) => {
                out.kept.push((entry.clone(), KeepReason::NotOwned));
            }
            Some(v) if prune_disabled(v) => {
                out.kept.push((entry.clone(), KeepReason::PruneDisabled));
            }
            Some(_) => out.delete.push(entry.clone()),
        }
    }
    sort_for_deletion(&mut out.delete);
    Ok(out)
}

/// Deletion order: the reverse of the apply order, CRDs last (deleting one deletes every custom
/// resource of its kind).
pub fn sort_for_deletion(entries: &mut [Entry]) {
    entries.sort_by_key(|e| {
        let crd = e.group == "apiextensions.k8s.io" && e.kind == "CustomResourceDefinition";
        let phase = wave::phase(&e.api_version(), &e.kind, None);
        (std::cmp::Reverse(phase), crd, e.clone())
    });
}

/// Objects a Namespace holds that do not stop its deletion: those the cluster makes by itself in
/// every namespace, and dependents (with owner references) that go with their owner.
fn ignorable_in_namespace(object: &Value) -> bool {
    let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let has_owner = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty());
    let group = wave::group_of(s("/apiVersion"));
    has_owner
        || matches!(
            (group, s("/kind"), s("/metadata/name")),
            ("", "ServiceAccount", "default")
                | ("", "ConfigMap", "kube-root-ca.crt")
                | ("", "Event", _)
                | ("events.k8s.io", "Event", _)
                | ("", "Endpoints", _)
                | ("discovery.k8s.io", "EndpointSlice", _)
        )
        || (group.is_empty()
            && s("/kind") == "Secret"
            && s("/type") == "kubernetes.io/service-account-token")
        || group == "metrics.k8s.io"
}

/// Guard for deleting a Namespace or a CRD: the objects among `contents` (everything in the
/// namespace, or every custom resource of the CRD) that block it, as `Kind ns/name`. An object
/// blocks unless it is tally's for `environment` and not `desired` any more; objects the cluster
/// creates in every namespace and dependents with owner references do not block.
pub fn foreign_objects(
    contents: &[Value],
    environment: &str,
    desired: &BTreeSet<Key>,
) -> Vec<String> {
    let mut out: Vec<String> = contents
        .iter()
        .filter(|o| !ignorable_in_namespace(o))
        .filter(|o| !owned_by_tally(o, environment) || desired.contains(&Entry::of(o).key()))
        .map(|o| Entry::of(o).to_string())
        .collect();
    out.sort();
    out
}

/// Applies [`foreign_objects`] to a prune set: a Namespace or CRD in `delete` whose contents
/// (given by `contents`) include objects that block it moves to `kept`.
pub fn guard_containers<'a>(
    set: &mut PruneSet,
    environment: &str,
    desired: &BTreeSet<Key>,
    contents: impl Fn(&Entry) -> &'a [Value],
) {
    let mut keep = Vec::new();
    set.delete.retain(|e| {
        if !is_container(e) {
            return true;
        }
        let blockers = foreign_objects(contents(e), environment, desired);
        if blockers.is_empty() {
            true
        } else {
            keep.push((e.clone(), KeepReason::InUse(blockers)));
            false
        }
    });
    set.kept.extend(keep);
}

/// Whether deleting this object deletes others with it (a Namespace, a CRD).
pub fn is_container(e: &Entry) -> bool {
    (e.group.is_empty() && e.kind == "Namespace")
        || (e.group == "apiextensions.k8s.io" && e.kind == "CustomResourceDefinition")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(api: &str, kind: &str, ns: Option<&str>, name: &str) -> Entry {
        Entry::from_ref(&ObjectRef {
            api_version: api.into(),
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
        })
    }

    fn live(e: &Entry, env: &str, extra: Value) -> Value {
        let mut v = json!({"apiVersion": e.api_version(), "kind": e.kind,
            "metadata": {"name": e.name, "labels": {
                "app.kubernetes.io/managed-by": "tally", "tally.dev/environment": env}}});
        if let Some(ns) = &e.namespace {
            v["metadata"]["namespace"] = json!(ns);
        }
        if let (Some(m), Value::Object(x)) = (v["metadata"].as_object_mut(), extra) {
            m.extend(x);
        }
        v
    }

    #[test]
    fn an_inventory_round_trips_through_its_config_map() {
        let mut inv = Inventory::new(
            "prod",
            "abc123",
            [
                entry("apps/v1", "Deployment", Some("shop"), "web"),
                entry("v1", "Namespace", None, "shop"),
                entry("apps/v1", "Deployment", Some("shop"), "web"),
            ],
        );
        inv.pending = Some("def456".into());
        assert_eq!(inv.objects.len(), 2, "duplicates are dropped");
        let cm = inv.to_config_map(DEFAULT_NAMESPACE);
        assert_eq!(cm["metadata"]["name"], "tally-inventory-prod");
        assert_eq!(cm["metadata"]["namespace"], "tally-system");
        assert_eq!(
            cm["data"]["objects"],
            "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"shop\"}\n\
             {\"group\":\"apps\",\"version\":\"v1\",\"kind\":\"Deployment\",\"namespace\":\"shop\",\"name\":\"web\"}\n"
        );
        assert_eq!(Inventory::from_config_map(&cm), Ok(inv));
    }

    #[test]
    fn a_malformed_config_map_is_an_error_not_an_empty_inventory() {
        let cm = json!({"metadata": {"name": "tally-inventory-x"},
            "data": {"environment": "x", "objects": "{\"kind\": 3}\n"}});
        let err = Inventory::from_config_map(&cm);
        assert!(
            matches!(err, Err(InventoryError::Malformed { ref problem, .. }) if problem.contains("line 1"))
        );
        let err = Inventory::from_config_map(&json!({"metadata": {"name": "n"}}));
        assert!(matches!(err, Err(InventoryError::Malformed { .. })));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(now_rfc3339().len(), 20);
    }

    #[test]
    fn only_owned_objects_that_left_git_are_pruned() {
        let web = entry("apps/v1", "Deployment", Some("shop"), "web");
        let old = entry("v1", "ConfigMap", Some("shop"), "old");
        let taken = entry("v1", "ConfigMap", Some("shop"), "taken");
        let keep = entry("v1", "ConfigMap", Some("shop"), "keep");
        let gone = entry("v1", "ConfigMap", Some("shop"), "gone");
        let other_env = entry("v1", "ConfigMap", Some("shop"), "staging");
        let previous = Inventory::new(
            "prod",
            "c1",
            [&web, &old, &taken, &keep, &gone, &other_env].map(Clone::clone),
        );
        let mut cluster: HashMap<Key, Value> = HashMap::new();
        cluster.insert(web.key(), live(&web, "prod", json!({})));
        cluster.insert(old.key(), live(&old, "prod", json!({})));
        let mut t = live(&taken, "prod", json!({}));
        t["metadata"]["labels"] = json!({});
        cluster.insert(taken.key(), t);
        cluster.insert(
            keep.key(),
            live(
                &keep,
                "prod",
                json!({"annotations": {"tally.dev/prune": "disabled"}}),
            ),
        );
        cluster.insert(other_env.key(), live(&other_env, "staging", json!({})));
        let desired: BTreeSet<Key> = [web.key()].into();

        let set = prune_candidates(&previous, &desired, |e| cluster.get(&e.key())).unwrap();
        assert_eq!(set.delete, vec![old]);
        assert_eq!(set.gone, vec![gone]);
        assert_eq!(
            set.kept,
            vec![
                (keep, KeepReason::PruneDisabled),
                (other_env, KeepReason::NotOwned),
                (taken, KeepReason::NotOwned),
            ]
        );
    }

    #[test]
    fn a_new_api_version_is_the_same_object() {
        let old = entry(
            "autoscaling/v2beta2",
            "HorizontalPodAutoscaler",
            Some("a"),
            "h",
        );
        let new = entry("autoscaling/v2", "HorizontalPodAutoscaler", Some("a"), "h");
        let previous = Inventory::new("e", "c", [old.clone()]);
        let live_old = live(&old, "e", json!({}));
        let set = prune_candidates(&previous, &[new.key()].into(), |_| Some(&live_old)).unwrap();
        assert!(set.is_empty() && set.kept.is_empty());
    }

    #[test]
    fn an_empty_render_never_prunes() {
        let previous = Inventory::new("prod", "c1", [entry("v1", "ConfigMap", Some("a"), "b")]);
        let err = prune_candidates(&previous, &BTreeSet::new(), |_| None).unwrap_err();
        assert_eq!(
            err,
            InventoryError::EmptyRender {
                environment: "prod".into(),
                count: 1
            }
        );
        assert!(check_render_not_empty("prod", 0, &Inventory::default()).is_ok());
        assert!(err.to_string().contains("refusing to prune the 1 objects"));
    }

    #[test]
    fn nothing_is_pruned_after_an_unclean_apply() {
        assert_eq!(
            check_apply_clean(false),
            Err(InventoryError::ApplyIncomplete)
        );
        assert_eq!(check_apply_clean(true), Ok(()));
    }

    #[test]
    fn deletion_goes_in_reverse_apply_order_with_crds_last() {
        let mut entries = vec![
            entry(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.x.io",
            ),
            entry("v1", "Namespace", None, "shop"),
            entry("v1", "ConfigMap", Some("shop"), "c"),
            entry("x.io/v1", "Widget", Some("shop"), "w"),
            entry("apps/v1", "Deployment", Some("shop"), "d"),
        ];
        sort_for_deletion(&mut entries);
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "Widget",
                "Deployment",
                "ConfigMap",
                "Namespace",
                "CustomResourceDefinition"
            ]
        );
    }

    #[test]
    fn a_namespace_holding_foreign_objects_is_kept() {
        let ns = entry("v1", "Namespace", None, "shop");
        let pruned = entry("v1", "ConfigMap", Some("shop"), "old");
        let still_wanted = entry("v1", "ConfigMap", Some("shop"), "wanted");
        let desired: BTreeSet<Key> = [still_wanted.key()].into();
        let mut contents = vec![
            live(&pruned, "prod", json!({})),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}}),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "shop",
                "ownerReferences": [{"kind": "Deployment", "name": "web"}]}}),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "shop"}}),
        ];
        assert!(foreign_objects(&contents, "prod", &desired).is_empty());

        contents.push(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hand-made", "namespace": "shop"}}));
        contents.push(live(&still_wanted, "prod", json!({})));
        contents.push(live(
            &entry("v1", "ConfigMap", Some("shop"), "staging"),
            "staging",
            json!({}),
        ));
        assert_eq!(
            foreign_objects(&contents, "prod", &desired),
            vec![
                "ConfigMap shop/staging".to_owned(),
                "ConfigMap shop/wanted".to_owned(),
                "Secret shop/hand-made".to_owned(),
            ]
        );

        let mut set = PruneSet {
            delete: vec![pruned.clone(), ns.clone()],
            ..PruneSet::default()
        };
        guard_containers(&mut set, "prod", &desired, |_| &contents);
        assert_eq!(set.delete, vec![pruned]);
        assert!(matches!(&set.kept[0], (e, KeepReason::InUse(b)) if *e == ns && b.len() == 3));
        assert!(set.kept[0].1.to_string().contains("Secret shop/hand-made"));
    }
}
