//! Planning: the desired objects against the live cluster, in apply order, with what would be
//! pruned.
//!
//! Live state is read with one labelled list per kind (`app.kubernetes.io/managed-by=tally,
//! tally.dev/environment=ENV`), not one GET per object; only desired objects missing from those
//! lists (new ones, or ones tally has not labelled yet) are looked up one by one, or with one
//! unlabelled list when there are many. The daemon answers the labelled lists from its watch cache
//! ([`Watched`](crate::cluster::Watched)), so its rounds list nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde_json::Value;
use tally_layout::guardrails::DEPLOYER;
use tally_layout::load::Repo;
use tally_layout::model::Strategy;
use tally_layout::render::{APP_LABEL, ENVIRONMENT_LABEL, MANAGED_BY, Rendered, TENANT_LABEL};
use tally_layout::validator::ObjectRef;

use crate::EngineError;
use crate::adopt::{self, Adoption};
use crate::bluegreen::BlueGreenApp;
use crate::cluster::{Cluster, ClusterError, Resource};
use crate::confirm::{self, ServerVerdicts};
use crate::diff::{self, Change, FieldChange, Op};
use crate::fields;
use crate::health::{self, Health};
use crate::ignore;
use crate::inventory::{self, Entry, Inventory, InventoryError, Key, PruneSet};
use crate::wave::{self, GUARDRAIL_LABEL, Placement, Wave};

/// An environment's desired state, as the engine takes it.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The environment.
    pub environment: String,
    /// The commit the objects come from (recorded in the inventory).
    pub commit: String,
    /// The objects, in render order (guardrails, then apps in `dependsOn` order).
    pub objects: Vec<Value>,
    /// Each app's dependencies (`dependsOn`).
    pub depends_on: BTreeMap<String, Vec<String>>,
    /// The apps released blue/green, which [`prepare`](crate::bluegreen::prepare) turns into two colours.
    pub blue_green: Vec<BlueGreenApp>,
}

impl Desired {
    /// The desired state of a rendered environment of `repo` at `commit`.
    pub fn from_rendered(rendered: Rendered, repo: &Repo, commit: impl Into<String>) -> Desired {
        let depends_on = repo
            .apps
            .iter()
            .filter(|(_, app)| !app.spec.depends_on.is_empty())
            .map(|(name, app)| (name.clone(), app.spec.depends_on.clone()))
            .collect();
        let mut blue_green = Vec::new();
        for (name, app) in &repo.apps {
            let Strategy::BlueGreen(bg) = &app.spec.strategy else {
                continue;
            };
            // The gate made sure the app ships exactly one Deployment.
            let deployment = rendered.objects.iter().find(|o| {
                o.id.kind == "Deployment"
                    && o.id.group() == "apps"
                    && o.value
                        .pointer("/metadata/labels")
                        .and_then(|l| l.get(APP_LABEL))
                        .and_then(Value::as_str)
                        == Some(name.as_str())
            });
            if let Some(d) = deployment {
                let namespace = d.id.namespace.as_deref().unwrap_or_default();
                blue_green.push(BlueGreenApp::from_layout(name, namespace, &d.id.name, bg));
            }
        }
        Desired {
            environment: rendered.environment,
            commit: commit.into(),
            objects: rendered.objects.into_iter().map(|o| o.value).collect(),
            depends_on,
            blue_green,
        }
    }
}

/// Options of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Where the inventory ConfigMaps live.
    pub inventory_namespace: String,
    /// Apply each tenant app's namespaced objects as the tenant's deployer ServiceAccount
    /// (`system:serviceaccount:<ns>:tally-deployer`), so RBAC enforces the tenant boundary.
    pub impersonate_tenants: bool,
    /// Ask the server (a dry-run apply) about each update the local diff finds, keeping its
    /// answers here (see [`crate::confirm`]); `None` trusts the local diff.
    pub server_verdicts: Option<ServerVerdicts>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            inventory_namespace: inventory::DEFAULT_NAMESPACE.into(),
            impersonate_tenants: false,
            server_verdicts: Some(ServerVerdicts::default()),
        }
    }
}

/// One object of a plan.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    /// Its position in the plan (0-based, in apply order).
    pub index: usize,
    /// Its identity.
    pub id: ObjectRef,
    /// Its app (`tally.dev/app`), if any.
    pub app: Option<String>,
    /// How to reach its kind; `None` when the kind is not served yet because its CRD is in this
    /// plan (looked up again once the CRDs are established).
    pub resource: Option<Resource>,
    /// The object to apply.
    pub desired: Value,
    /// The live object, when it exists, without its `metadata.managedFields`: the diff reads
    /// them, and nothing after it does (health reads spec and status), so they are not kept.
    pub live: Option<Value>,
    /// What applying it would change.
    pub change: Change,
    /// The user to apply it as, when impersonating.
    pub as_user: Option<String>,
    /// Fields tally still owns and now leaves to others, with their live values: handed over
    /// (see [`crate::ignore`]) before the object is applied without them.
    pub handover: Vec<(String, Value)>,
    /// Fields of other deploy tools' managers tally takes over before applying (see
    /// [`crate::adopt`]).
    pub adoption: Option<Adoption>,
    /// Why the object cannot be planned or applied now (its kind's API is unavailable); the
    /// rest of the plan goes ahead without it.
    pub blocked: Option<String>,
}

/// How many objects a plan creates, updates, leaves alone and prunes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete and create again (immutable fields changed).
    pub replace: usize,
    /// Objects that cannot be planned now (their kind's API is unavailable).
    pub blocked: usize,
    /// Objects already as desired.
    pub unchanged: usize,
    /// Objects to delete.
    pub prune: usize,
    /// Prune candidates left alone.
    pub kept: usize,
}

/// What applying an environment would do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// The commit being applied.
    pub commit: String,
    /// The objects, in waves.
    pub waves: Vec<Wave<PlannedObject>>,
    /// The inventory found in the cluster (`None` before the first apply).
    pub previous: Option<Inventory>,
    /// What pruning would delete and leave alone (empty when refused).
    pub prune: PruneSet,
    /// Why pruning is refused, if it is (an empty render).
    pub prune_refused: Option<InventoryError>,
    /// Where the inventory lives.
    pub inventory_namespace: String,
}

impl Plan {
    /// Every object, in apply order.
    pub fn objects(&self) -> impl Iterator<Item = &PlannedObject> {
        self.waves.iter().flat_map(|w| w.items())
    }

    /// How many objects are created, updated, unchanged, pruned and kept.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            prune: self.prune.delete.len(),
            kept: self.prune.kept.len(),
            ..Summary::default()
        };
        for o in self.objects() {
            if o.blocked.is_some() {
                s.blocked += 1;
                continue;
            }
            match o.change {
                Change::Create => s.create += 1,
                Change::Update(_) => s.update += 1,
                Change::Replace(_) => s.replace += 1,
                Change::Unchanged => s.unchanged += 1,
            }
        }
        s
    }

    /// Whether applying would change the cluster.
    pub fn has_changes(&self) -> bool {
        let s = self.summary();
        s.create + s.update + s.replace + s.prune + s.blocked > 0
    }

    /// Each app's health from the live state the plan read: the worst of its objects (failed,
    /// then progressing, with the first such object named); objects not created yet count as
    /// progressing. Objects of no app (guardrails) are under `""`.
    pub fn app_health(&self) -> BTreeMap<String, Health> {
        let mut out: BTreeMap<String, Health> = BTreeMap::new();
        for o in self.objects() {
            let h = match &o.live {
                Some(v) => health::health(v),
                None => Health::Progressing("not created yet".into()),
            };
            let h = match h {
                Health::Healthy => Health::Healthy,
                Health::Progressing(r) => Health::Progressing(format!("{}: {r}", o.id)),
                Health::Failed(r) => Health::Failed(format!("{}: {r}", o.id)),
            };
            let rank = |h: &Health| match h {
                Health::Healthy => 0,
                Health::Progressing(_) => 1,
                Health::Failed(_) => 2,
            };
            let slot = out
                .entry(o.app.clone().unwrap_or_default())
                .or_insert(Health::Healthy);
            if rank(&h) > rank(slot) {
                *slot = h;
            }
        }
        out
    }

    /// The identities of the desired objects.
    pub fn desired_keys(&self) -> BTreeSet<Key> {
        self.objects()
            .map(|o| Entry::from_ref(&o.id).key())
            .collect()
    }

    /// The plan as `tally plan` prints it: one line per created, updated (with its fields) and
    /// pruned object, kept objects with their reason, and a summary line. Secret values never
    /// appear.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for o in self.objects() {
            match &o.blocked {
                Some(why) => {
                    let _ = writeln!(out, "! blocked {}: {why}", o.id);
                }
                None => diff::write_change(&mut out, &o.id, &o.change),
            }
        }
        for e in &self.prune.delete {
            diff::write_prune(&mut out, &e.to_ref());
        }
        for (e, why) in &self.prune.kept {
            let _ = writeln!(out, "  keep {e}: {why}");
        }
        if let Some(refused) = &self.prune_refused {
            let _ = writeln!(out, "! {refused}");
        }
        let s = self.summary();
        let replace = if s.replace > 0 {
            format!(", {} to replace", s.replace)
        } else {
            String::new()
        };
        let blocked = if s.blocked > 0 {
            format!(", {} blocked", s.blocked)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}: {} to create, {} to update{replace}, {} to prune, {} unchanged{blocked}",
            self.environment, s.create, s.update, s.prune, s.unchanged
        );
        out
    }
}

/// The label selector of an environment's objects.
pub fn owned_selector(environment: &str) -> String {
    format!(
        "{}={},{}={}",
        MANAGED_BY.0, MANAGED_BY.1, ENVIRONMENT_LABEL, environment
    )
}

/// More desired objects of one kind than this missing from the labelled list are read with one
/// unlabelled list instead of one GET each.
const GETS_BEFORE_LIST: usize = 10;

/// Reads the live state and builds the plan for `desired`.
pub async fn plan<C: Cluster>(
    cluster: &C,
    desired: Desired,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let previous =
        read_inventory(cluster, &desired.environment, &options.inventory_namespace).await?;

    // Kinds whose CRD is in this plan may be unknown to the cluster until it is applied.
    let planned_crds: BTreeSet<(String, String)> = desired
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .filter_map(|o| {
            let s = |p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_owned);
            Some((s("/spec/group")?, s("/spec/names/kind")?))
        })
        .collect();

    let autoscaled = ignore::autoscaled(&desired.objects);
    // A kind whose discovery fails (an aggregated API that is down) blocks its own objects, not
    // the plan: the others are planned and applied.
    let mut resources: HashMap<(String, String), Result<Option<Resource>, String>> = HashMap::new();
    let mut unknown = Vec::new();
    let mut objects = Vec::with_capacity(desired.objects.len());
    let mut blocked: HashMap<usize, String> = HashMap::new();
    for value in desired.objects {
        let id = Entry::of(&value).to_ref();
        let key = (id.api_version.clone(), id.kind.clone());
        let found = match resources.get(&key) {
            Some(r) => r.clone(),
            None => {
                let r = match cluster.resource(&id.api_version, &id.kind).await {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        tracing::warn!(api_version = %id.api_version, kind = %id.kind, error = %e,
                            "discovery failed: the objects of this kind are blocked");
                        Err(format!("its API ({}) is unavailable: {e}", id.api_version))
                    }
                };
                resources.insert(key, r.clone());
                r
            }
        };
        let resource = match found {
            Ok(r) => r,
            Err(why) => {
                blocked.insert(objects.len(), why);
                None
            }
        };
        if resource.is_none()
            && !blocked.contains_key(&objects.len())
            && !planned_crds.contains(&(id.group().to_owned(), id.kind.clone()))
        {
            unknown.push(format!("{} ({})", id, id.api_version));
        }
        objects.push((id, resource, value));
    }
    if !unknown.is_empty() {
        return Err(EngineError::UnknownKinds(unknown));
    }

    let mut live = read_live(cluster, &desired.environment, &objects).await?;

    let mut planned = Vec::with_capacity(objects.len());
    for (i, (id, resource, mut value)) in objects.into_iter().enumerate() {
        let labels = value.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let app = label(APP_LABEL).map(str::to_owned);
        let as_user = match (&id.namespace, label(TENANT_LABEL), label(GUARDRAIL_LABEL)) {
            (Some(ns), Some(_), None) if options.impersonate_tenants && app.is_some() => {
                Some(format!("system:serviceaccount:{ns}:{DEPLOYER}"))
            }
            _ => None,
        };
        if let Some(why) = blocked.remove(&i) {
            planned.push(PlannedObject {
                index: i,
                id,
                app,
                resource,
                desired: value,
                live: None,
                change: Change::Unchanged,
                as_user,
                handover: Vec::new(),
                adoption: None,
                blocked: Some(why),
            });
            continue;
        }
        // Taken, not copied: what stays in `live` is only what the prune checks need (objects
        // that left the desired state).
        let mut live = match live.remove(&Entry::from_ref(&id).key()) {
            Some(text) => Some(revive(&text, &id)?),
            None => None,
        };
        // An object another deploy tool created is compared as it will be once tally has
        // taken over that tool's fields (see `adopt`).
        let adoption = live.as_ref().and_then(adopt::adoption);
        let adopted = adoption
            .as_ref()
            .zip(live.as_ref())
            .map(|(a, l)| adopt::adopted_view(l, a));
        let compared = adopted.as_ref().or(live.as_ref());
        let left = ignore::left_to_others(&value, &autoscaled);
        let (change, handover) = match compared {
            Some(l) if !left.is_empty() => {
                let leaving = ignore::leave(&mut value, l, left);
                let mut change = diff::diff_leaving(&value, Some(l), &leaving.pointers);
                if !leaving.handover.is_empty() {
                    let released = leaving.handover.iter().map(|(p, v)| FieldChange {
                        path: ignore::display(p),
                        op: Op::Release,
                        from: Some(v.clone()),
                        to: None,
                        redacted: false,
                    });
                    change = match change {
                        Change::Update(mut fields) => {
                            fields.extend(released);
                            Change::Update(fields)
                        }
                        _ => Change::Update(released.collect()),
                    };
                }
                (change, leaving.handover)
            }
            _ => (diff::diff(&value, compared), Vec::new()),
        };
        let change = match &adoption {
            Some(a) => {
                let taken = FieldChange {
                    path: "metadata.managedFields".into(),
                    op: Op::Adopt,
                    from: Some(Value::from(a.from.join(", "))),
                    to: None,
                    redacted: false,
                };
                match change {
                    Change::Update(mut fields) => {
                        fields.insert(0, taken);
                        Change::Update(fields)
                    }
                    Change::Replace(mut r) => {
                        r.fields.insert(0, taken);
                        Change::Replace(r)
                    }
                    _ => Change::Update(vec![taken]),
                }
            }
            None => change,
        };
        if let Some(l) = live.as_mut() {
            fields::drop_managed_fields(l);
        }
        planned.push(PlannedObject {
            index: i,
            id,
            app,
            resource,
            desired: value,
            live,
            change,
            as_user,
            handover,
            adoption,
            blocked: None,
        });
    }

    if let Some(verdicts) = &options.server_verdicts {
        confirm::confirm(cluster, &mut planned, verdicts).await;
    }

    let desired_keys: BTreeSet<Key> = planned
        .iter()
        .map(|o| Entry::from_ref(&o.id).key())
        .collect();
    // With kinds blocked, what left git cannot all be seen: nothing is pruned this time (the
    // apply is not clean either, so the inventory keeps every entry).
    let any_blocked = planned.iter().any(|o| o.blocked.is_some());
    let (prune, prune_refused) = match &previous {
        None => (PruneSet::default(), None),
        Some(_) if any_blocked => (PruneSet::default(), None),
        Some(prev) => {
            // Labelled objects the desired state no longer holds: the prune candidates.
            let mut rest = HashMap::with_capacity(live.len());
            for (key, text) in live {
                let value = revive(&text, &format_args!("{} {}", key.1, key.3))?;
                rest.insert(key, value);
            }
            plan_prune(cluster, prev, &desired_keys, &rest, &desired.environment).await?
        }
    };

    let mut waves = wave::plan_waves(
        planned,
        |o: &PlannedObject| Placement {
            phase: wave::phase_of(&o.desired),
            app: o.app.as_deref(),
        },
        &desired.depends_on,
    );
    // Number the objects in apply order.
    let mut n = 0;
    for w in &mut waves {
        for g in &mut w.groups {
            for o in &mut g.items {
                o.index = n;
                n += 1;
            }
        }
    }
    Ok(Plan {
        environment: desired.environment,
        commit: desired.commit,
        waves,
        previous,
        prune,
        prune_refused,
        inventory_namespace: options.inventory_namespace.clone(),
    })
}

/// The environment's inventory, if there is one.
pub async fn read_inventory<C: Cluster>(
    cluster: &C,
    environment: &str,
    namespace: &str,
) -> Result<Option<Inventory>, EngineError> {
    let Some(cm) = cluster.resource("v1", "ConfigMap").await? else {
        return Err(EngineError::UnknownKinds(vec!["ConfigMap (v1)".into()]));
    };
    let name = Inventory::config_map_name(environment);
    match cluster.get(&cm, Some(namespace), &name).await? {
        Some(v) => Ok(Some(Inventory::from_config_map(&v)?)),
        None => Ok(None),
    }
}

/// Live objects by identity: one labelled list per kind, then the stragglers. Each is kept as
/// JSON text as soon as its list arrives, and parsed again one at a time by the plan, so a
/// thousand live objects (managed fields and status included) are never all parsed at once.
async fn read_live<C: Cluster>(
    cluster: &C,
    environment: &str,
    objects: &[(ObjectRef, Option<Resource>, Value)],
) -> Result<HashMap<Key, Box<str>>, EngineError> {
    let selector = owned_selector(environment);
    let mut by_resource: BTreeMap<&Resource, Vec<&ObjectRef>> = BTreeMap::new();
    for (id, resource, _) in objects {
        if let Some(r) = resource {
            by_resource.entry(r).or_default().push(id);
        }
    }
    let mut live: HashMap<Key, Box<str>> = HashMap::new();
    for (resource, ids) in by_resource {
        for text in cluster.list_text(resource, None, &selector).await? {
            live.insert(key_of(&text, resource)?, text);
        }
        let missing: Vec<&&ObjectRef> = ids
            .iter()
            .filter(|id| !live.contains_key(&Entry::from_ref(id).key()))
            .collect();
        if missing.len() > GETS_BEFORE_LIST {
            let wanted: BTreeSet<Key> =
                missing.iter().map(|id| Entry::from_ref(id).key()).collect();
            for v in cluster.list(resource, None, "").await? {
                let key = Entry::of(&v).key();
                if wanted.contains(&key) {
                    live.insert(key, compact(&v));
                }
            }
        } else {
            for id in missing {
                let ns = id.namespace.as_deref().filter(|_| resource.namespaced);
                if let Some(v) = cluster.get(resource, ns, &id.name).await? {
                    live.insert(Entry::from_ref(id).key(), compact(&v));
                }
            }
        }
    }
    Ok(live)
}

/// The identity of an object given as JSON text, read without parsing the rest of it.
fn key_of(text: &str, resource: &Resource) -> Result<Key, EngineError> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: Meta,
    }
    #[derive(serde::Deserialize, Default)]
    struct Meta {
        #[serde(default)]
        name: String,
        namespace: Option<String>,
    }
    let head: Head = serde_json::from_str(text).map_err(|e| {
        EngineError::Cluster(ClusterError::Other {
            what: format!("reading a listed {}", resource.kind),
            message: e.to_string(),
        })
    })?;
    // The list was of this kind: its group and kind are the resource's.
    Ok((
        resource.group.clone(),
        resource.kind.clone(),
        head.metadata.namespace,
        head.metadata.name,
    ))
}

/// An object as JSON text.
fn compact(object: &Value) -> Box<str> {
    object.to_string().into_boxed_str()
}

/// An object kept by [`compact`], parsed again.
fn revive(text: &str, id: &dyn std::fmt::Display) -> Result<Value, EngineError> {
    serde_json::from_str(text).map_err(|e| {
        EngineError::Cluster(ClusterError::Other {
            what: format!("reading the live {id}"),
            message: e.to_string(),
        })
    })
}

/// The prune set for `previous` against the desired identities, guards applied.
async fn plan_prune<C: Cluster>(
    cluster: &C,
    previous: &Inventory,
    desired: &BTreeSet<Key>,
    live: &HashMap<Key, Value>,
    environment: &str,
) -> Result<(PruneSet, Option<InventoryError>), EngineError> {
    // Live objects of candidates the labelled lists did not show.
    let mut found: HashMap<Key, Value> = HashMap::new();
    for e in &previous.objects {
        let key = e.key();
        if desired.contains(&key) || live.contains_key(&key) {
            continue;
        }
        if let Some(v) = get_entry(cluster, e).await? {
            found.insert(key, v);
        }
    }
    let lookup = |e: &Entry| live.get(&e.key()).or_else(|| found.get(&e.key()));
    let mut set = match inventory::prune_candidates(previous, desired, lookup) {
        Ok(set) => set,
        Err(refused) => return Ok((PruneSet::default(), Some(refused))),
    };
    // What each Namespace or CRD to delete holds.
    let mut contents: HashMap<Key, Vec<Value>> = HashMap::new();
    for e in set.delete.iter().filter(|e| inventory::is_container(e)) {
        let held = match (e.group.as_str(), e.kind.as_str()) {
            ("", "Namespace") => namespace_contents(cluster, &e.name).await?,
            _ => match lookup(e) {
                Some(crd) => custom_resources(cluster, crd).await?,
                None => Vec::new(),
            },
        };
        contents.insert(e.key(), held);
    }
    let empty = Vec::new();
    inventory::guard_containers(&mut set, environment, desired, |e| {
        contents.get(&e.key()).unwrap_or(&empty).as_slice()
    });
    Ok((set, None))
}

/// The live object of an inventory entry, if its kind is still served and it exists.
pub async fn get_entry<C: Cluster>(cluster: &C, e: &Entry) -> Result<Option<Value>, EngineError> {
    let Some(resource) = cluster.resource(&e.api_version(), &e.kind).await? else {
        return Ok(None);
    };
    let ns = e.namespace.as_deref().filter(|_| resource.namespaced);
    Ok(cluster.get(&resource, ns, &e.name).await?)
}

/// Everything in a namespace, of every listable namespaced kind.
async fn namespace_contents<C: Cluster>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<Value>, EngineError> {
    let mut out = Vec::new();
    for r in cluster.resources().await? {
        if r.namespaced {
            match cluster.list(&r, Some(namespace), "").await {
                Ok(objects) => out.extend(objects),
                // A kind tally may not read could hold anything: count it as someone else's,
                // which keeps the Namespace.
                Err(ClusterError::Api { code: 403, .. }) => out.push(serde_json::json!({
                    "apiVersion": r.api_version(),
                    "kind": r.kind,
                    "metadata": {"name": "(not readable: forbidden)", "namespace": namespace},
                })),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Every custom resource of a live CRD, in any served version.
async fn custom_resources<C: Cluster>(cluster: &C, crd: &Value) -> Result<Vec<Value>, EngineError> {
    let s = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (group, kind) = (s("/spec/group"), s("/spec/names/kind"));
    let versions: Vec<&str> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|x| x.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    for version in versions {
        if let Some(r) = cluster
            .resource(&format!("{group}/{version}"), kind)
            .await?
        {
            return Ok(cluster.list(&r, None, "").await?);
        }
    }
    Ok(Vec::new())
}
