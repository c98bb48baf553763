//! Blue/green releases, driven by the engine itself: no controller runs in the cluster.
//!
//! A `blueGreen` app's one Deployment runs as two, `<name>-blue` and `<name>-green`, each with
//! `tally.dev/color` in its selector and pod template. The active Service selects the live
//! colour, the preview Service the other. A release starts only when the pod template changes
//! (its hash, [`template_hash`], is kept on each colour's Deployment):
//!
//! ```text
//!   git: template T'          idle colour            active Service     preview Service
//!   ───────────────────────────────────────────────────────────────────────────────────
//!   1 apply (plan round)      T' at full replicas    live colour        idle colour
//!   2 wait healthy            ready, available            │                  │
//!   3 smoke test              GET via API proxy ─────────────────────────────▶ 200?
//!   4 switch (one write,      ──────────────────────▶ idle colour       (guarded by the
//!     resourceVersion)                                                   Service's version)
//!   5 post-switch check       ready endpoints > 0 for postPromotionSeconds, else switch back
//!   6 a later round, after    old colour scaled to 0 (never a sleep: the delay is kept in
//!     scaleDownDelaySeconds   the cluster, so a restart carries it on)
//! ```
//!
//! Failure before the switch (not healthy in time, smoke test failed) scales the new colour
//! down and blocks its template hash: the live colour never stopped serving, and the same
//! template is not tried again until git changes it.
//!
//! Which colour is live is read from the active Service itself, never from memory. What a
//! restart needs besides (the phase, the switch time, the templates each colour runs, a blocked
//! hash) is kept in one ConfigMap beside the inventory, `tally-releases-<env>`. The phase
//! `switching` is written before the switch, so a `kill -9` between the write to the Service and
//! the record of it is read correctly: if the Service names the new colour, the switch happened.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::EngineError;
use crate::cluster::{ApplyParams, Cluster, ClusterError, Resource};
use crate::health::{self, Health};
use crate::inventory::INVENTORY_LABEL;
use tally_layout::render::ENVIRONMENT_LABEL;

/// The label that tells the colours apart, in selectors and pod templates.
pub const COLOR_LABEL: &str = "tally.dev/color";

/// The annotation on each colour's Deployment: the hash of the pod template it runs.
pub const HASH_ANNOTATION: &str = "tally.dev/template-hash";

/// One of the two colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// The first colour, live after the first apply.
    Blue,
    /// The second.
    Green,
}

impl Color {
    /// The other colour.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    /// `blue` or `green`.
    pub fn name(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    fn parse(s: &str) -> Option<Color> {
        match s {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A blueGreen app as the engine drives it (its app file's `strategy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenApp {
    /// The app.
    pub app: String,
    /// Its namespace.
    pub namespace: String,
    /// The Deployment's name as written (each colour adds `-blue` or `-green`).
    pub deployment: String,
    /// The active Service.
    pub service: String,
    /// The preview Service.
    pub preview_service: Option<String>,
    /// How long the old colour stays up after a switch.
    pub scale_down_delay: Duration,
    /// The check of the new colour before the switch.
    pub smoke_test: Option<SmokeTest>,
    /// Switch without `tally promote`.
    pub auto_promote: bool,
    /// Replicas of the new colour before the switch (default: the Deployment's).
    pub preview_replicas: Option<u32>,
    /// How long the active Service's endpoints are watched after a switch.
    pub post_promotion: Duration,
}

/// An HTTP GET through the API server's Service proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeTest {
    /// The path, from `/`.
    pub path: String,
    /// The preview Service's port, by number or name.
    pub port: String,
    /// The status that passes.
    pub expected_status: u16,
    /// Tries before it fails.
    pub attempts: u32,
}

impl BlueGreenApp {
    /// The app of `name` with strategy `bg`, whose Deployment is `deployment` in `namespace`.
    pub fn from_layout(
        name: &str,
        namespace: &str,
        deployment: &str,
        bg: &tally_layout::model::BlueGreen,
    ) -> BlueGreenApp {
        BlueGreenApp {
            app: name.to_owned(),
            namespace: namespace.to_owned(),
            deployment: deployment.to_owned(),
            service: bg.service.clone(),
            preview_service: bg.preview_service.clone(),
            scale_down_delay: Duration::from_secs(bg.scale_down_delay_seconds.into()),
            smoke_test: bg.smoke_test.as_ref().map(|s| SmokeTest {
                path: s.path.clone(),
                port: match &s.port {
                    tally_layout::model::PortRef::Number(n) => n.to_string(),
                    tally_layout::model::PortRef::Name(n) => n.clone(),
                },
                expected_status: s.expected_status,
                attempts: s.attempts.max(1),
            }),
            auto_promote: bg.auto_promote,
            preview_replicas: bg.preview_replicas,
            post_promotion: Duration::from_secs(bg.post_promotion_seconds.into()),
        }
    }

    /// The Deployment name of `color`.
    pub fn colored(&self, color: Color) -> String {
        format!("{}-{color}", self.deployment)
    }
}

/// Where a release stands, as recorded in the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// One colour live, nothing in flight.
    #[default]
    Steady,
    /// The idle colour has the new template; it is being checked.
    Releasing,
    /// Checked, waiting for `tally promote`.
    Waiting,
    /// About to write the active Service (recorded first, so a restart can tell).
    Switching,
    /// Switched; the post-switch check is running.
    Switched,
    /// The release failed before (or right after) the switch; the old colour serves.
    Aborted,
    /// Rolled back by `tally rollback`.
    RolledBack,
}

impl Phase {
    /// The phase as written in status: `steady`, `releasing`, ...
    pub fn name(self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::Releasing => "releasing",
            Phase::Waiting => "waiting",
            Phase::Switching => "switching",
            Phase::Switched => "switched",
            Phase::Aborted => "aborted",
            Phase::RolledBack => "rolledBack",
        }
    }
}

/// One app's release state, kept in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppState {
    /// The live colour, as last seen on the active Service.
    pub active: Option<Color>,
    /// Where the release stands.
    pub phase: Phase,
    /// The template hash the phase is about.
    pub hash: Option<String>,
    /// The colour being released to (`releasing`, `waiting`, `switching`).
    pub target: Option<Color>,
    /// When the phase began (seconds since the epoch).
    pub since: u64,
    /// When the last switch was written.
    pub switched_at: Option<u64>,
    /// The colour that served before the last switch.
    pub previous: Option<Color>,
    /// A template hash not to release again (it failed, or was rolled back) until git changes.
    pub blocked: Option<String>,
    /// A template hash `tally promote` approved.
    pub promote: Option<String>,
    /// What happened last, for people.
    pub message: String,
    /// The pod template of each hash a colour runs, as tally applied it.
    pub templates: BTreeMap<String, Value>,
}

impl AppState {
    /// One line for `tally status`: the live colour, the phase, and what comes next.
    pub fn describe(&self, app: &str, environment: &str) -> String {
        let live = self
            .active
            .map_or("no colour".to_owned(), |c| format!("{c} live"));
        let mut line = format!("{live}, {}", self.phase.name());
        if !self.message.is_empty() {
            line.push_str(&format!(": {}", self.message));
        }
        let next = match self.phase {
            Phase::Waiting => Some(format!(
                "next: `tally promote --env {environment} {app}` switches to {}",
                self.target.map_or("the new colour", Color::name)
            )),
            Phase::Aborted | Phase::RolledBack => self.blocked.as_ref().map(|h| {
                format!("next: template {h} is not released again; push a fix or a revert")
            }),
            Phase::Releasing | Phase::Switching => {
                Some("next: the release is carried on by the next round".into())
            }
            Phase::Switched => Some("next: the post-switch check ends".into()),
            Phase::Steady => None,
        };
        if let Some(next) = next {
            line.push_str(&format!("; {next}"));
        }
        line
    }
}

/// The name of the ConfigMap that keeps an environment's release states.
pub fn states_name(environment: &str) -> String {
    format!("tally-releases-{environment}")
}

/// The release states of `environment`, by app (empty when none were written).
pub async fn read_states<C: Cluster>(
    cluster: &C,
    namespace: &str,
    environment: &str,
) -> Result<BTreeMap<String, AppState>, ClusterError> {
    let resource = crate::reconcile::served(cluster, "ConfigMap").await?;
    let name = states_name(environment);
    let listed = Owned::list(cluster, &resource, environment).await?;
    let Some(cm) = listed.get(cluster, namespace, &name).await? else {
        return Ok(BTreeMap::new());
    };
    let data = cm.get("data").and_then(Value::as_object);
    Ok(data
        .into_iter()
        .flatten()
        .filter_map(|(app, v)| {
            let state = serde_json::from_str(v.as_str()?).ok()?;
            Some((app.clone(), state))
        })
        .collect())
}

/// Writes every app's release state (one server-side apply of the ConfigMap).
pub async fn write_states<C: Cluster>(
    cluster: &C,
    namespace: &str,
    environment: &str,
    states: &BTreeMap<String, AppState>,
) -> Result<(), ClusterError> {
    let resource = crate::reconcile::served(cluster, "ConfigMap").await?;
    let data: Map<String, Value> = states
        .iter()
        .map(|(app, s)| {
            let text = serde_json::to_string(s).unwrap_or_default();
            (app.clone(), Value::String(text))
        })
        .collect();
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": states_name(environment),
            "namespace": namespace,
            // The environment's label puts it in the daemon's watch cache: a quiet round reads
            // it from memory. It is in no inventory, so it is never pruned.
            "labels": {
                "app.kubernetes.io/managed-by": "tally",
                ENVIRONMENT_LABEL: environment,
                INVENTORY_LABEL: environment,
            },
            "annotations": {crate::inventory::PRUNE_ANNOTATION: "disabled"},
        },
        "data": data,
    });
    cluster
        .apply(&resource, &cm, &ApplyParams::default())
        .await
        .map(|_| ())
}

/// The environment's objects of one kind, from its labelled list (which the daemon answers from
/// its watch cache).
struct Owned<'r> {
    resource: &'r Resource,
    objects: Vec<Value>,
}

impl<'r> Owned<'r> {
    async fn list<C: Cluster>(
        cluster: &C,
        resource: &'r Resource,
        environment: &str,
    ) -> Result<Owned<'r>, ClusterError> {
        let objects = cluster
            .list(resource, None, &crate::plan::owned_selector(environment))
            .await?;
        Ok(Owned { resource, objects })
    }

    /// One object: from the list, else (one tally has not labelled yet) one GET.
    async fn get<C: Cluster>(
        &self,
        cluster: &C,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let found = self
            .objects
            .iter()
            .find(|o| crate::cluster::name_of(o) == (Some(namespace), name));
        match found {
            Some(o) => Ok(Some(o.clone())),
            None => cluster.get(self.resource, Some(namespace), name).await,
        }
    }
}

/// The hash of a pod template: 12 hex digits of the SHA-256 of its JSON with sorted keys.
pub fn template_hash(template: &Value) -> String {
    let text = canonical(template);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", body.join(","))
        }
        other => other.to_string(),
    }
}

/// What a round must do for one app after its objects are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Check the idle colour that now runs the new template, then switch to it.
    Release(Release),
    /// The rest of a post-switch check a restart interrupted.
    PostCheck(Release),
}

/// A release in flight: the app, the colours, and the objects the switch and an abort write.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The app.
    pub app: BlueGreenApp,
    /// The colour released to.
    pub to: Color,
    /// Its template hash.
    pub hash: String,
    /// The commit that brought it.
    pub commit: String,
    /// The colour's Deployment as applied (an abort applies it with no replicas).
    pub deployment: Value,
    /// The active Service as desired, selecting the live colour.
    pub service: Value,
}

impl Step {
    /// The release the step is about.
    pub fn release(&self) -> &Release {
        match self {
            Step::Release(r) | Step::PostCheck(r) => r,
        }
    }
}

/// The blue/green side of a round, before planning: each blueGreen app's Deployment replaced
/// by its two colours, its Services pointed at them, and what is left to do after the apply.
#[derive(Debug, Default)]
pub struct Prepared {
    /// What to do after the apply, per app.
    pub steps: Vec<Step>,
    /// Every app's state, as it will be recorded.
    pub states: BTreeMap<String, AppState>,
    /// One line per app for `tally plan` and logs: the live colour and what comes next.
    pub lines: Vec<String>,
    /// Whether `states` differs from what the cluster holds.
    pub changed: bool,
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The live facts `plan_app` decides from.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The active Service, if it exists.
    pub service: Option<Value>,
    /// Each colour's Deployment, if it exists.
    pub blue: Option<Value>,
    /// As `blue`.
    pub green: Option<Value>,
}

impl Live {
    fn deployment(&self, color: Color) -> Option<&Value> {
        match color {
            Color::Blue => self.blue.as_ref(),
            Color::Green => self.green.as_ref(),
        }
    }
}

fn live_hash(d: Option<&Value>) -> Option<&str> {
    d?.pointer("/metadata/annotations")?
        .get(HASH_ANNOTATION)?
        .as_str()
}

fn live_replicas(d: Option<&Value>) -> i64 {
    d.and_then(|d| d.pointer("/spec/replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The colour the active Service selects, if it selects one.
pub fn service_color(service: &Value) -> Option<Color> {
    service
        .pointer("/spec/selector")?
        .get(COLOR_LABEL)?
        .as_str()
        .and_then(Color::parse)
}

/// Reads what each blueGreen app of `desired` needs and rewrites the desired objects (see
/// [`plan_app`]). Sends nothing when the environment has no blueGreen app.
pub async fn prepare<C: Cluster>(
    cluster: &C,
    desired: &mut crate::Desired,
    inventory_namespace: &str,
    now: u64,
) -> Result<Prepared, EngineError> {
    let mut out = Prepared::default();
    if desired.blue_green.is_empty() {
        return Ok(out);
    }
    let recorded = read_states(cluster, inventory_namespace, &desired.environment).await?;
    out.states = recorded.clone();
    let service_kind = crate::reconcile::served(cluster, "Service").await?;
    let deployment_kind = apps_deployment(cluster).await?;
    let services = Owned::list(cluster, &service_kind, &desired.environment).await?;
    let deployments = Owned::list(cluster, &deployment_kind, &desired.environment).await?;
    for app in desired.blue_green.clone() {
        let ns = app.namespace.as_str();
        let live = Live {
            service: services.get(cluster, ns, &app.service).await?,
            blue: deployments
                .get(cluster, ns, &app.colored(Color::Blue))
                .await?,
            green: deployments
                .get(cluster, ns, &app.colored(Color::Green))
                .await?,
        };
        let state = out.states.entry(app.app.clone()).or_default();
        if let Some((step, line)) = plan_app(&app, &mut desired.objects, &live, state, now) {
            if let Some(mut step) = step {
                match &mut step {
                    Step::Release(r) | Step::PostCheck(r) => r.commit = desired.commit.clone(),
                }
                out.steps.push(step);
            }
            out.lines.push(line);
        }
    }
    out.changed = out.states != recorded;
    Ok(out)
}

/// Decides one app's colours from the live state: rewrites its Deployment into two and points
/// its Services, in `objects`; updates `state`; returns what to do after the apply and a line
/// for people. `None` when the app's Deployment is not among the objects.
pub fn plan_app(
    app: &BlueGreenApp,
    objects: &mut Vec<Value>,
    live: &Live,
    state: &mut AppState,
    now: u64,
) -> Option<(Option<Step>, String)> {
    let at = objects.iter().position(|o| {
        o.get("kind").and_then(Value::as_str) == Some("Deployment")
            && o.pointer("/metadata/name").and_then(Value::as_str) == Some(&app.deployment)
            && o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&app.namespace)
    })?;
    let deployment = objects.remove(at);
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let hash = template_hash(&template);
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    state.templates.insert(hash.clone(), template.clone());

    let live_color = live.service.as_ref().and_then(service_color);
    // A switch recorded as begun: the Service says whether it happened.
    if state.phase == Phase::Switching {
        if live_color.is_some() && live_color == state.target {
            state.phase = Phase::Switched;
            state.previous = state.target.map(Color::other);
            state.switched_at = Some(state.since);
        } else {
            state.phase = Phase::Releasing;
        }
    }
    let active = live_color.unwrap_or(Color::Blue);
    let idle = active.other();
    state.active = Some(active);
    let active_hash = live_hash(live.deployment(active)).map(str::to_owned);
    let template_of = |color: Color, state: &AppState| -> Value {
        live_hash(live.deployment(color))
            .and_then(|h| state.templates.get(h))
            .cloned()
            .or_else(|| {
                live.deployment(color)
                    .and_then(|d| d.pointer("/spec/template"))
                    .map(strip_color)
            })
            .unwrap_or_else(|| template.clone())
    };
    // The Service exists but selects no colour: a Deployment converted to blue/green. Blue is
    // brought up beside the old pods (the Service's selector still matches both), then switched.
    let converting = live.service.is_some() && live_color.is_none();
    let fresh = !converting && (live.service.is_none() || live.deployment(active).is_none());

    let scale_down_due = state
        .switched_at
        .is_none_or(|at| now >= at + app.scale_down_delay.as_secs());
    let idle_replicas_kept = if scale_down_due {
        0
    } else {
        live_replicas(live.deployment(idle))
    };

    let mut step = None;
    let mut note = String::new();
    let (active_obj, idle_obj, service_color_now, preview_color, line);
    if fresh && !converting {
        active_obj = colored(&deployment, active, &template, &hash, replicas);
        idle_obj = colored(&deployment, idle, &template, &hash, 0);
        service_color_now = Some(active);
        preview_color = active;
        state.phase = Phase::Steady;
        state.hash = Some(hash.clone());
        line = format!("{}: first release, {active} live", app.app);
    } else if active_hash.as_deref() == Some(hash.as_str()) && !converting {
        let idle_template = template_of(idle, state);
        let idle_hash = template_hash(&idle_template);
        active_obj = colored(&deployment, active, &template, &hash, replicas);
        idle_obj = colored(
            &deployment,
            idle,
            &idle_template,
            &idle_hash,
            idle_replicas_kept,
        );
        service_color_now = Some(active);
        preview_color = active;
        let window = state
            .switched_at
            .map(|at| at + app.post_promotion.as_secs());
        match state.phase {
            Phase::Switched if window.is_some_and(|end| now < end) => {
                line = format!("{}: {active} live; checking it after the switch", app.app);
            }
            Phase::Switched | Phase::Releasing | Phase::Waiting | Phase::Switching => {
                state.phase = Phase::Steady;
                line = format!("{}: {active} live", app.app);
            }
            _ => line = format!("{}: {active} live", app.app),
        }
        if state.phase == Phase::Switched {
            step = Some(Step::PostCheck(Release {
                app: app.clone(),
                to: active,
                hash: hash.clone(),
                commit: String::new(),
                deployment: active_obj.clone(),
                service: Value::Null,
            }));
        }
        if !scale_down_due && idle_replicas_kept > 0 {
            let at = state.switched_at.unwrap_or(now) + app.scale_down_delay.as_secs();
            note = format!(
                "; {idle} kept up until {} (scaleDownDelaySeconds)",
                crate::inventory::rfc3339(at)
            );
        }
    } else if state.blocked.as_deref() == Some(hash.as_str()) && !converting {
        let active_template = template_of(active, state);
        let active_hash = template_hash(&active_template);
        active_obj = colored(
            &deployment,
            active,
            &active_template,
            &active_hash,
            replicas,
        );
        idle_obj = colored(&deployment, idle, &template, &hash, 0);
        service_color_now = Some(active);
        // The preview stays on the colour that failed, as the release left it.
        preview_color = idle;
        line = format!(
            "{}: {active} live; template {hash} is blocked ({}): push a change to release again",
            app.app, state.message
        );
    } else {
        // A release: the idle colour (blue, when converting) gets the new template.
        let (serving, target) = if converting {
            (None, Color::Blue)
        } else {
            (Some(active), idle)
        };
        let target_replicas = app.preview_replicas.map_or(replicas, i64::from);
        idle_obj = colored(&deployment, target, &template, &hash, target_replicas);
        active_obj = if converting {
            colored(&deployment, Color::Green, &template, &hash, 0)
        } else {
            let active_template = template_of(active, state);
            let active_hash = template_hash(&active_template);
            colored(
                &deployment,
                active,
                &active_template,
                &active_hash,
                replicas,
            )
        };
        service_color_now = serving;
        preview_color = target;
        if state.hash.as_deref() != Some(hash.as_str())
            || !matches!(state.phase, Phase::Releasing | Phase::Waiting)
        {
            state.phase = Phase::Releasing;
            state.since = now;
            state.message = String::new();
        }
        state.hash = Some(hash.clone());
        state.target = Some(target);
        line = match serving {
            Some(a) => format!(
                "{}: {a} live; releasing template {hash} to {target}, then switching",
                app.app
            ),
            None => format!(
                "{}: converting to blue/green; blue gets the template, then the Service switches to it",
                app.app
            ),
        };
        step = Some(Step::Release(Release {
            app: app.clone(),
            to: target,
            hash: hash.clone(),
            commit: String::new(),
            deployment: idle_obj.clone(),
            service: Value::Null,
        }));
    }
    finish(
        app,
        objects,
        state,
        step,
        line + &note,
        active_obj,
        idle_obj,
        service_color_now,
        preview_color,
    )
}

/// Puts the colours and Services in place and fills in the step's Service.
#[allow(clippy::too_many_arguments)]
fn finish(
    app: &BlueGreenApp,
    objects: &mut Vec<Value>,
    state: &mut AppState,
    mut step: Option<Step>,
    line: String,
    first: Value,
    second: Value,
    active: Option<Color>,
    preview: Color,
) -> Option<(Option<Step>, String)> {
    // Only the templates a colour runs are kept.
    let in_use: Vec<String> = [&first, &second]
        .iter()
        .filter_map(|d| live_hash(Some(d)).map(str::to_owned))
        .collect();
    state.templates.retain(|h, _| in_use.contains(h));
    objects.push(first);
    objects.push(second);
    let mut service = Value::Null;
    for o in objects.iter_mut() {
        if o.get("kind").and_then(Value::as_str) != Some("Service")
            || o.pointer("/metadata/namespace").and_then(Value::as_str) != Some(&app.namespace)
        {
            continue;
        }
        let name = o.pointer("/metadata/name").and_then(Value::as_str);
        if name == Some(app.service.as_str()) {
            if let Some(color) = active {
                select(o, color);
            }
            service = o.clone();
        } else if name.is_some() && name == app.preview_service.as_deref() {
            select(o, preview);
        }
    }
    // An autoscaler of the Deployment scales the live colour; the idle one's replicas are
    // tally's (none, or the new colour's while it is checked).
    let live = active.unwrap_or(Color::Blue);
    for o in objects.iter_mut() {
        let is_hpa = o.get("kind").and_then(Value::as_str) == Some("HorizontalPodAutoscaler")
            && o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&app.namespace)
            && o.pointer("/spec/scaleTargetRef/kind")
                .and_then(Value::as_str)
                == Some("Deployment")
            && o.pointer("/spec/scaleTargetRef/name")
                .and_then(Value::as_str)
                == Some(&app.deployment);
        if is_hpa && let Some(target) = o.pointer_mut("/spec/scaleTargetRef/name") {
            *target = Value::from(app.colored(live));
        }
    }
    if let Some(Step::Release(r) | Step::PostCheck(r)) = &mut step {
        r.service = service;
    }
    Some((step, line))
}

/// The Service with its selector on `color`.
fn select(service: &mut Value, color: Color) {
    if let Some(selector) = service
        .pointer_mut("/spec/selector")
        .and_then(Value::as_object_mut)
    {
        selector.insert(COLOR_LABEL.into(), Value::from(color.name()));
    }
}

/// A template as stored on a colour, without the colour (to hash and reuse it).
fn strip_color(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(COLOR_LABEL);
    }
    t
}

/// The Deployment as `color`: its name, selector, pod labels, template and replicas.
pub fn colored(
    deployment: &Value,
    color: Color,
    template: &Value,
    hash: &str,
    replicas: i64,
) -> Value {
    let mut d = deployment.clone();
    let name = d
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let color_value = Value::from(color.name());
    if let Some(meta) = d.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), Value::from(format!("{name}-{color}")));
        let labels = meta
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(labels) = labels {
            labels.insert(COLOR_LABEL.into(), color_value.clone());
        }
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(annotations) = annotations {
            annotations.insert(HASH_ANNOTATION.into(), Value::from(hash));
        }
    }
    let mut template = template.clone();
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(COLOR_LABEL.into(), color_value.clone());
            }
        }
    }
    if let Some(spec) = d.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("template".into(), template);
        spec.insert("replicas".into(), Value::from(replicas));
        if let Some(selector) = spec
            .get_mut("selector")
            .and_then(|s| s.get_mut("matchLabels"))
            .and_then(Value::as_object_mut)
        {
            selector.insert(COLOR_LABEL.into(), color_value);
        }
    }
    d
}

/// How [`advance`] waits and checks.
#[derive(Debug, Clone)]
pub struct AdvanceOptions {
    /// Where the states live.
    pub inventory_namespace: String,
    /// The environment.
    pub environment: String,
    /// How long the new colour may take to become healthy.
    pub wait_timeout: Duration,
    /// The pause between reads while waiting, between smoke-test attempts and between
    /// post-switch samples.
    pub poll_interval: Duration,
    /// Write the app's objects (the switch, an abort's scale-down, a rollback's scale-up) as
    /// its tenant's deployer, as the plan's apply does (`--impersonate-tenants`).
    pub impersonate_tenants: bool,
}

impl AdvanceOptions {
    /// How an app object of `app` is written.
    fn params(&self, app: &BlueGreenApp) -> ApplyParams {
        ApplyParams {
            as_user: self.impersonate_tenants.then(|| {
                format!(
                    "system:serviceaccount:{}:{}",
                    app.namespace,
                    tally_layout::guardrails::DEPLOYER
                )
            }),
            ..ApplyParams::default()
        }
    }
}

/// What a round did for one app after the apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Switched to the new colour; the post-switch check passed.
    Switched {
        /// The app.
        app: String,
        /// The colour now live.
        to: Color,
        /// From the start of the round that switched to the switch.
        took: Duration,
    },
    /// Checked and waiting for `tally promote`.
    Waiting {
        /// The app.
        app: String,
    },
    /// The release failed; the old colour serves.
    Aborted {
        /// The app.
        app: String,
        /// Why.
        reason: String,
    },
    /// Switched, then switched back by the post-switch check.
    SwitchedBack {
        /// The app.
        app: String,
        /// Why.
        reason: String,
    },
    /// Rolled back by `tally rollback` (seen by the daemon in the recorded state).
    RolledBack {
        /// The app.
        app: String,
    },
    /// Still in flight (the apply did not finish); tried again next round.
    Pending {
        /// The app.
        app: String,
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// One line for logs, status and Events.
    pub fn message(&self) -> String {
        match self {
            Outcome::Switched { app, to, took } => format!(
                "{app}: switched to {to} ({:.2} s from the start of the round)",
                took.as_secs_f64()
            ),
            Outcome::Waiting { app } => format!(
                "{app}: the new colour is healthy and passed its checks; waiting for `tally promote`"
            ),
            Outcome::Aborted { app, reason } => {
                format!("{app}: release aborted, the live colour still serves: {reason}")
            }
            Outcome::SwitchedBack { app, reason } => {
                format!("{app}: switched back after the switch: {reason}")
            }
            Outcome::Pending { app, reason } => format!("{app}: release pending: {reason}"),
            Outcome::RolledBack { app } => format!("{app}: rolled back by `tally rollback`"),
        }
    }

    /// Whether the release failed.
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Aborted { .. } | Outcome::SwitchedBack { .. })
    }
}

/// Carries each step of `prepared` on after the apply: health, smoke test, switch, post-switch
/// check, or the abort. `applied` says whether the apply finished cleanly (a switch never
/// follows an unclean apply). Writes the states when they changed.
pub async fn advance<C: Cluster>(
    cluster: &C,
    prepared: &mut Prepared,
    applied: bool,
    started: Instant,
    options: &AdvanceOptions,
) -> Result<Vec<Outcome>, EngineError> {
    let mut outcomes = Vec::new();
    if prepared.states.is_empty() && prepared.steps.is_empty() {
        return Ok(outcomes);
    }
    if prepared.changed {
        write_states(
            cluster,
            &options.inventory_namespace,
            &options.environment,
            &prepared.states,
        )
        .await?;
    }
    for step in prepared.steps.clone() {
        let r = step.release();
        let name = r.app.app.clone();
        let outcome = match &step {
            Step::Release(r) => release(cluster, prepared, r, applied, started, options).await?,
            Step::PostCheck(r) => {
                let state = prepared.states.entry(name.clone()).or_default();
                let end = state.switched_at.unwrap_or(0) + r.app.post_promotion.as_secs();
                let from = state.previous.unwrap_or(r.to.other());
                post_check(cluster, prepared, r, from, end, options).await?
            }
        };
        if let Some(o) = outcome {
            outcomes.push(o);
        }
    }
    Ok(outcomes)
}

async fn release<C: Cluster>(
    cluster: &C,
    prepared: &mut Prepared,
    r: &Release,
    applied: bool,
    started: Instant,
    options: &AdvanceOptions,
) -> Result<Option<Outcome>, EngineError> {
    let app = r.app.app.clone();
    let deployments = apps_deployment(cluster).await?;
    let ns = Some(r.app.namespace.as_str());
    let name = r.app.colored(r.to);
    // 1. The new colour healthy. After an unclean apply, only a colour that runs the new
    // template and failed is aborted; anything else waits for a clean apply.
    if !applied {
        let live = cluster.get(&deployments, ns, &name).await?;
        let ours = live_hash(live.as_ref()) == Some(r.hash.as_str());
        let h = live.as_ref().map(health::health);
        return match h {
            Some(Health::Progressing(why) | Health::Failed(why)) if ours => {
                let reason = format!("{name} did not become healthy: {why}");
                abort(cluster, prepared, r, reason, options).await.map(Some)
            }
            _ => Ok(Some(Outcome::Pending {
                app,
                reason: "the apply did not finish; the switch waits for a clean one".into(),
            })),
        };
    }
    let deadline = Instant::now() + options.wait_timeout;
    let healthy = loop {
        let live = cluster.get(&deployments, ns, &name).await?;
        let h = live
            .as_ref()
            .map_or_else(|| Health::Progressing("not created".into()), health::health);
        match h {
            Health::Healthy => break Ok(()),
            Health::Failed(why) => break Err(why),
            Health::Progressing(why) if Instant::now() >= deadline => break Err(why),
            Health::Progressing(_) => tokio::time::sleep(options.poll_interval).await,
        }
    };
    if let Err(why) = healthy {
        let reason = format!("{name} did not become healthy: {why}");
        return abort(cluster, prepared, r, reason, options).await.map(Some);
    }
    // 2. The smoke test, through the preview Service.
    if let (Some(test), Some(preview)) = (&r.app.smoke_test, &r.app.preview_service) {
        let mut last = String::new();
        let mut passed = false;
        for attempt in 0..test.attempts {
            if attempt > 0 {
                tokio::time::sleep(options.poll_interval).await;
            }
            match cluster
                .proxy_get(&r.app.namespace, preview, &test.port, &test.path)
                .await
            {
                Ok((status, _)) if status == test.expected_status => {
                    passed = true;
                    break;
                }
                Ok((status, body)) => {
                    let body: String = body.chars().take(200).collect();
                    last = format!("GET {} answered {status} {}", test.path, body.trim());
                }
                Err(e) => last = e.to_string(),
            }
        }
        if !passed {
            let reason = format!(
                "smoke test failed after {} attempts (expected {}): {last}",
                test.attempts, test.expected_status
            );
            return abort(cluster, prepared, r, reason, options).await.map(Some);
        }
    }
    // 3. Promotion.
    let state = prepared.states.entry(app.clone()).or_default();
    if !r.app.auto_promote && state.promote.as_deref() != Some(r.hash.as_str()) {
        if state.phase != Phase::Waiting {
            state.phase = Phase::Waiting;
            state.message = format!("{} is ready on {}; run `tally promote`", r.hash, r.to);
            save(cluster, prepared, options).await?;
        }
        return Ok(Some(Outcome::Waiting { app }));
    }
    // 4. The switch: recorded as begun, then one guarded write.
    let from = state.active.unwrap_or(r.to.other());
    state.phase = Phase::Switching;
    state.target = Some(r.to);
    state.since = now_secs();
    save(cluster, prepared, options).await?;
    switch(cluster, &r.service, r.to, &options.params(&r.app)).await?;
    let state = prepared.states.entry(app.clone()).or_default();
    state.phase = Phase::Switched;
    state.previous = Some(from);
    state.active = Some(r.to);
    state.switched_at = Some(now_secs());
    state.promote = None;
    state.message = format!("switched from {from} to {} ({})", r.to, r.commit);
    save(cluster, prepared, options).await?;
    let took = started.elapsed();
    emit(
        cluster,
        &r.app,
        "Switched",
        "Normal",
        &format!(
            "{}: switched {} from {from} to {} (template {}, commit {})",
            r.app.app, r.app.service, r.to, r.hash, r.commit
        ),
    )
    .await;
    // 5. The post-switch check.
    let end = now_secs() + r.app.post_promotion.as_secs();
    match post_check(cluster, prepared, r, from, end, options).await? {
        Some(back @ Outcome::SwitchedBack { .. }) => Ok(Some(back)),
        _ => Ok(Some(Outcome::Switched {
            app,
            to: r.to,
            took,
        })),
    }
}

/// Watches the active Service's ready endpoints until `end`; with none ready, switches back to
/// `from` in one write. `None` when the window had already passed.
async fn post_check<C: Cluster>(
    cluster: &C,
    prepared: &mut Prepared,
    r: &Release,
    from: Color,
    end: u64,
    options: &AdvanceOptions,
) -> Result<Option<Outcome>, EngineError> {
    let app = r.app.app.clone();
    let endpoints = crate::reconcile::served(cluster, "Endpoints").await?;
    loop {
        let live = cluster
            .get(&endpoints, Some(&r.app.namespace), &r.app.service)
            .await?;
        if ready_addresses(live.as_ref()) == 0 {
            let reason = format!(
                "{} had no ready endpoint on {} after the switch",
                r.app.service, r.to
            );
            switch(cluster, &r.service, from, &options.params(&r.app)).await?;
            let state = prepared.states.entry(app.clone()).or_default();
            state.phase = Phase::Aborted;
            state.active = Some(from);
            state.blocked = Some(r.hash.clone());
            state.switched_at = None;
            state.message = reason.clone();
            save(cluster, prepared, options).await?;
            emit(cluster, &r.app, "SwitchedBack", "Warning", &reason).await;
            return Ok(Some(Outcome::SwitchedBack { app, reason }));
        }
        if now_secs() >= end {
            break;
        }
        tokio::time::sleep(options.poll_interval).await;
    }
    let state = prepared.states.entry(app.clone()).or_default();
    if state.phase == Phase::Switched {
        state.phase = Phase::Steady;
        save(cluster, prepared, options).await?;
    }
    Ok(None)
}

fn ready_addresses(endpoints: Option<&Value>) -> usize {
    endpoints
        .and_then(|e| e.get("subsets"))
        .and_then(Value::as_array)
        .map_or(0, |subsets| {
            subsets
                .iter()
                .filter_map(|s| s.get("addresses").and_then(Value::as_array))
                .map(Vec::len)
                .sum()
        })
}

/// Scales the new colour down, blocks its template, records why.
async fn abort<C: Cluster>(
    cluster: &C,
    prepared: &mut Prepared,
    r: &Release,
    reason: String,
    options: &AdvanceOptions,
) -> Result<Outcome, EngineError> {
    let deployments = apps_deployment(cluster).await?;
    let mut down = r.deployment.clone();
    if let Some(spec) = down.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), Value::from(0));
    }
    cluster
        .apply(&deployments, &down, &options.params(&r.app))
        .await?;
    let state = prepared.states.entry(r.app.app.clone()).or_default();
    state.phase = Phase::Aborted;
    state.blocked = Some(r.hash.clone());
    state.target = None;
    state.message = reason.clone();
    save(cluster, prepared, options).await?;
    emit(cluster, &r.app, "ReleaseAborted", "Warning", &reason).await;
    Ok(Outcome::Aborted {
        app: r.app.app.clone(),
        reason,
    })
}

/// Points the active Service at `color`: one server-side apply carrying the resourceVersion
/// read just before, so a Service changed meanwhile fails the write (409) instead of being
/// overwritten.
async fn switch<C: Cluster>(
    cluster: &C,
    desired: &Value,
    color: Color,
    params: &ApplyParams,
) -> Result<(), ClusterError> {
    let services = crate::reconcile::served(cluster, "Service").await?;
    let (ns, name) = crate::cluster::name_of(desired);
    let live = cluster.get(&services, ns, name).await?;
    let mut service = desired.clone();
    select(&mut service, color);
    if let (Some(rv), Some(meta)) = (
        live.as_ref()
            .and_then(|l| l.pointer("/metadata/resourceVersion"))
            .cloned(),
        service.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.insert("resourceVersion".into(), rv);
    }
    cluster.apply(&services, &service, params).await.map(|_| ())
}

async fn save<C: Cluster>(
    cluster: &C,
    prepared: &Prepared,
    options: &AdvanceOptions,
) -> Result<(), ClusterError> {
    write_states(
        cluster,
        &options.inventory_namespace,
        &options.environment,
        &prepared.states,
    )
    .await
}

/// An Event on the app's active Service. Best effort: a release never fails for want of one.
async fn emit<C: Cluster>(
    cluster: &C,
    app: &BlueGreenApp,
    reason: &str,
    kind: &str,
    message: &str,
) {
    let about = crate::events::About {
        kind: "Service",
        namespace: &app.namespace,
        name: &app.service,
    };
    let name = format!("{}.{}", app.service, reason.to_ascii_lowercase());
    if let Err(e) = crate::events::record(cluster, about, &name, reason, kind, message).await {
        tracing::warn!(error = %e, reason, "could not record an Event");
    }
}

async fn apps_deployment<C: Cluster>(cluster: &C) -> Result<Resource, ClusterError> {
    cluster
        .resource("apps/v1", "Deployment")
        .await?
        .ok_or_else(|| ClusterError::UnknownKind {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
        })
}

/// Approves the release of `app` that waits for promotion (`autoPromote: false`): the next
/// round, `tally promote`'s own or the daemon's, switches to it. Returns the approved
/// template's hash.
pub async fn approve<C: Cluster>(
    cluster: &C,
    namespace: &str,
    environment: &str,
    app: &str,
) -> Result<String, EngineError> {
    let mut states = read_states(cluster, namespace, environment).await?;
    let Some(state) = states.get_mut(app) else {
        return Err(EngineError::Release(format!(
            "{app} has no blue/green release in {environment}"
        )));
    };
    let hash = match (state.phase, &state.hash) {
        (Phase::Waiting | Phase::Releasing, Some(hash)) => hash.clone(),
        _ => {
            return Err(EngineError::Release(format!(
                "{app} has no release waiting for promotion in {environment} ({})",
                state.describe(app, environment)
            )));
        }
    };
    state.promote = Some(hash.clone());
    write_states(cluster, namespace, environment, &states).await?;
    Ok(hash)
}

/// Points `app`'s active Service back at the previous colour: in one write while that colour is
/// up, or after scaling it up and waiting for it to be healthy. The template rolled back from
/// is blocked until git changes it, so the next round does not release it again.
pub async fn rollback<C: Cluster>(
    cluster: &C,
    desired: &crate::Desired,
    app: &str,
    options: &AdvanceOptions,
) -> Result<String, EngineError> {
    let env = desired.environment.as_str();
    let refuse = |why: String| Err(EngineError::Release(why));
    let Some(bg) = desired.blue_green.iter().find(|a| a.app == app) else {
        return refuse(format!("{app} is not released blue/green in {env}"));
    };
    let ns = bg.namespace.as_str();
    let mut states = read_states(cluster, &options.inventory_namespace, env).await?;
    let service_kind = crate::reconcile::served(cluster, "Service").await?;
    let deployment_kind = apps_deployment(cluster).await?;
    let services = Owned::list(cluster, &service_kind, env).await?;
    let deployments = Owned::list(cluster, &deployment_kind, env).await?;
    let Some(active) = services
        .get(cluster, ns, &bg.service)
        .await?
        .as_ref()
        .and_then(service_color)
    else {
        return refuse(format!("{}'s Service selects no colour yet", bg.app));
    };
    let back = active.other();
    let Some(live_back) = deployments.get(cluster, ns, &bg.colored(back)).await? else {
        return refuse(format!("{app} has no {back} colour to roll back to"));
    };
    let find = |kind: &str, name: &str| {
        desired.objects.iter().find(|o| {
            o.get("kind").and_then(Value::as_str) == Some(kind)
                && crate::cluster::name_of(o) == (Some(ns), name)
        })
    };
    let (Some(deployment), Some(service)) = (
        find("Deployment", &bg.deployment),
        find("Service", &bg.service),
    ) else {
        return refuse(format!(
            "{app}'s Deployment or Service is not in the commit"
        ));
    };
    let state = states.entry(app.to_owned()).or_default();
    let back_hash = live_hash(Some(&live_back)).unwrap_or_default().to_owned();
    let template = state.templates.get(&back_hash).cloned().unwrap_or_else(|| {
        strip_color(live_back.pointer("/spec/template").unwrap_or(&Value::Null))
    });
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    // Up first when it is not serving at full strength.
    let up = live_replicas(Some(&live_back)) >= replicas
        && health::health(&live_back) == Health::Healthy;
    if !up {
        let scaled = colored(deployment, back, &template, &back_hash, replicas);
        cluster
            .apply(&deployment_kind, &scaled, &options.params(bg))
            .await?;
        let deadline = Instant::now() + options.wait_timeout;
        loop {
            let live = cluster
                .get(&deployment_kind, Some(ns), &bg.colored(back))
                .await?;
            match live.as_ref().map(health::health) {
                Some(Health::Healthy) => break,
                Some(Health::Failed(why)) => {
                    return refuse(format!("{} failed: {why}", bg.colored(back)));
                }
                _ if Instant::now() >= deadline => {
                    return refuse(format!(
                        "{} did not become healthy in {} s; the Service still selects {active}",
                        bg.colored(back),
                        options.wait_timeout.as_secs()
                    ));
                }
                _ => tokio::time::sleep(options.poll_interval).await,
            }
        }
    }
    switch(cluster, service, back, &options.params(bg)).await?;
    let git_hash = template_hash(deployment.pointer("/spec/template").unwrap_or(&Value::Null));
    let from_hash = deployments
        .get(cluster, ns, &bg.colored(active))
        .await?
        .as_ref()
        .and_then(|d| live_hash(Some(d)).map(str::to_owned));
    let state = states.entry(app.to_owned()).or_default();
    state.active = Some(back);
    state.previous = Some(active);
    state.switched_at = Some(now_secs());
    state.phase = Phase::RolledBack;
    state.target = None;
    state.promote = None;
    // Rolling back to a template blocked earlier releases it from the block.
    if state.blocked.as_deref() == Some(back_hash.as_str()) {
        state.blocked = None;
    }
    state.templates.insert(back_hash, template);
    let message = if from_hash.as_deref() == Some(git_hash.as_str()) {
        state.blocked = Some(git_hash.clone());
        format!(
            "rolled back from {active} to {back}; git still says template {git_hash}, which is not released again until git changes"
        )
    } else {
        format!("rolled back from {active} to {back}")
    };
    state.message = message.clone();
    write_states(cluster, &options.inventory_namespace, env, &states).await?;
    emit(
        cluster,
        bg,
        "RolledBack",
        "Warning",
        &format!("{app}: {message}"),
    )
    .await;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> BlueGreenApp {
        BlueGreenApp {
            app: "web".into(),
            namespace: "shop".into(),
            deployment: "web".into(),
            service: "web".into(),
            preview_service: Some("web-preview".into()),
            scale_down_delay: Duration::from_secs(300),
            smoke_test: None,
            auto_promote: true,
            preview_replicas: None,
            post_promotion: Duration::from_secs(30),
        }
    }

    fn deployment(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    fn service(name: &str, color: Option<&str>) -> Value {
        let mut selector = json!({"app": "web"});
        if let Some(c) = color {
            selector[COLOR_LABEL] = json!(c);
        }
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"}, "spec": {"selector": selector}})
    }

    fn objects(image: &str) -> Vec<Value> {
        vec![
            deployment(image),
            service("web", None),
            service("web-preview", None),
        ]
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn image(d: &Value) -> &Value {
        &d["spec"]["template"]["spec"]["containers"][0]["image"]
    }

    /// The live state after `objects` were applied as planned.
    fn live_of(objects: &[Value]) -> Live {
        Live {
            service: Some(find(objects, "Service", "web").clone()),
            blue: Some(find(objects, "Deployment", "web-blue").clone()),
            green: Some(find(objects, "Deployment", "web-green").clone()),
        }
    }

    #[test]
    fn the_first_release_runs_blue_and_keeps_green_at_zero() {
        let mut objects = objects("web:1");
        let mut state = AppState::default();
        let (step, line) = plan_app(&app(), &mut objects, &Live::default(), &mut state, 100)
            .unwrap_or_else(|| panic!("no plan"));
        assert!(step.is_none());
        assert_eq!(line, "web: first release, blue live");
        let blue = find(&objects, "Deployment", "web-blue");
        assert_eq!(blue["spec"]["replicas"], 3);
        assert_eq!(blue["spec"]["selector"]["matchLabels"][COLOR_LABEL], "blue");
        assert_eq!(
            blue["spec"]["template"]["metadata"]["labels"][COLOR_LABEL],
            "blue"
        );
        assert_eq!(
            find(&objects, "Deployment", "web-green")["spec"]["replicas"],
            0
        );
        assert_eq!(
            find(&objects, "Service", "web")["spec"]["selector"][COLOR_LABEL],
            "blue"
        );
        assert!(
            !objects
                .iter()
                .any(|o| o["metadata"]["name"] == "web" && o["kind"] == "Deployment")
        );
        assert_eq!(state.active, Some(Color::Blue));
    }

    #[test]
    fn a_new_template_goes_to_the_idle_colour_and_the_live_one_keeps_its_own() {
        let mut first = objects("web:1");
        let mut state = AppState::default();
        plan_app(&app(), &mut first, &Live::default(), &mut state, 100);
        let live = live_of(&first);

        let mut second = objects("web:2");
        let (step, _) = plan_app(&app(), &mut second, &live, &mut state, 200)
            .unwrap_or_else(|| panic!("no plan"));
        let Some(Step::Release(r)) = step else {
            panic!("no release: {step:?}");
        };
        assert_eq!(r.to, Color::Green);
        assert_eq!(image(find(&second, "Deployment", "web-blue")), "web:1");
        assert_eq!(image(find(&second, "Deployment", "web-green")), "web:2");
        assert_eq!(
            find(&second, "Deployment", "web-green")["spec"]["replicas"],
            3
        );
        // The active Service stays on blue; the preview points at green.
        assert_eq!(
            find(&second, "Service", "web")["spec"]["selector"][COLOR_LABEL],
            "blue"
        );
        assert_eq!(
            find(&second, "Service", "web-preview")["spec"]["selector"][COLOR_LABEL],
            "green"
        );
        assert_eq!(state.phase, Phase::Releasing);
        assert_eq!(r.service["metadata"]["name"], "web");

        // The same commit while nothing changed: the same release, not a new one.
        let since = state.since;
        let mut again = objects("web:2");
        plan_app(&app(), &mut again, &live, &mut state, 300);
        assert_eq!(state.since, since);
    }

    #[test]
    fn after_a_switch_the_old_colour_stays_up_for_the_delay_then_goes_to_zero() {
        let mut first = objects("web:1");
        let mut state = AppState::default();
        plan_app(&app(), &mut first, &Live::default(), &mut state, 100);
        let mut second = objects("web:2");
        plan_app(&app(), &mut second, &live_of(&first), &mut state, 200);
        // The switch, as `advance` records it.
        let mut live = live_of(&second);
        live.service = Some(service("web", Some("green")));
        state.phase = Phase::Steady;
        state.switched_at = Some(1000);

        let mut within = objects("web:2");
        let (_, line) = plan_app(&app(), &mut within, &live, &mut state, 1100)
            .unwrap_or_else(|| panic!("no plan"));
        assert!(line.contains("blue kept up until"), "{line}");
        assert_eq!(
            find(&within, "Deployment", "web-blue")["spec"]["replicas"],
            3
        );
        assert_eq!(image(find(&within, "Deployment", "web-blue")), "web:1");

        let mut after = objects("web:2");
        plan_app(&app(), &mut after, &live, &mut state, 1300);
        assert_eq!(
            find(&after, "Deployment", "web-blue")["spec"]["replicas"],
            0
        );
        assert_eq!(image(find(&after, "Deployment", "web-blue")), "web:1");
        assert_eq!(
            find(&after, "Service", "web")["spec"]["selector"][COLOR_LABEL],
            "green"
        );
    }

    #[test]
    fn a_blocked_template_is_not_released_again() {
        let mut first = objects("web:1");
        let mut state = AppState::default();
        plan_app(&app(), &mut first, &Live::default(), &mut state, 100);
        let live = live_of(&first);
        let mut second = objects("web:2");
        plan_app(&app(), &mut second, &live, &mut state, 200);
        state.blocked = state.hash.clone();
        state.phase = Phase::Aborted;
        let mut again = objects("web:2");
        let (step, line) = plan_app(&app(), &mut again, &live, &mut state, 300)
            .unwrap_or_else(|| panic!("no plan"));
        assert!(step.is_none(), "{step:?}");
        assert!(line.contains("is blocked"), "{line}");
        assert_eq!(
            find(&again, "Deployment", "web-green")["spec"]["replicas"],
            0
        );
        assert_eq!(image(find(&again, "Deployment", "web-blue")), "web:1");
    }

    #[test]
    fn a_switch_cut_short_is_read_from_the_service() {
        let mut first = objects("web:1");
        let mut state = AppState::default();
        plan_app(&app(), &mut first, &Live::default(), &mut state, 100);
        let mut second = objects("web:2");
        plan_app(&app(), &mut second, &live_of(&first), &mut state, 200);
        state.phase = Phase::Switching;
        state.target = Some(Color::Green);
        state.since = 250;
        // The write reached the Service before the process died.
        let mut live = live_of(&second);
        live.service = Some(service("web", Some("green")));
        let mut again = objects("web:2");
        let (step, _) = plan_app(&app(), &mut again, &live, &mut state, 260)
            .unwrap_or_else(|| panic!("no plan"));
        assert_eq!(state.switched_at, Some(250));
        assert!(matches!(step, Some(Step::PostCheck(_))), "{step:?}");
        // It did not: the release goes on.
        state.phase = Phase::Switching;
        let mut again = objects("web:2");
        let (step, _) = plan_app(&app(), &mut again, &live_of(&second), &mut state, 260)
            .unwrap_or_else(|| panic!("no plan"));
        assert_eq!(state.phase, Phase::Releasing);
        assert!(matches!(step, Some(Step::Release(_))), "{step:?}");
    }

    #[test]
    fn a_deployment_converted_to_blue_green_keeps_its_service_until_blue_is_checked() {
        let mut objects = objects("web:1");
        let live = Live {
            service: Some(service("web", None)),
            ..Live::default()
        };
        let mut state = AppState::default();
        let (step, line) = plan_app(&app(), &mut objects, &live, &mut state, 100)
            .unwrap_or_else(|| panic!("no plan"));
        assert!(line.contains("converting"), "{line}");
        let Some(Step::Release(r)) = step else {
            panic!("no release: {step:?}");
        };
        assert_eq!(r.to, Color::Blue);
        assert!(
            find(&objects, "Service", "web")["spec"]["selector"]
                .get(COLOR_LABEL)
                .is_none()
        );
        assert_eq!(
            find(&objects, "Deployment", "web-blue")["spec"]["replicas"],
            3
        );
    }

    #[test]
    fn an_autoscaler_of_the_deployment_scales_the_live_colour() {
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 5}});
        let mut first = objects("web:1");
        first.push(hpa.clone());
        let mut state = AppState::default();
        plan_app(&app(), &mut first, &Live::default(), &mut state, 100);
        let target = |objects: &[Value]| {
            find(objects, "HorizontalPodAutoscaler", "web")["spec"]["scaleTargetRef"]["name"]
                .clone()
        };
        assert_eq!(target(&first), "web-blue");
        let mut live = live_of(&first);
        live.service = Some(service("web", Some("green")));
        let mut later = objects("web:1");
        later.push(hpa);
        plan_app(&app(), &mut later, &live, &mut state, 200);
        assert_eq!(target(&later), "web-green");
    }

    #[test]
    fn template_hashes_ignore_key_order() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let b = json!({"spec": {"x": [1, 2]}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(
            template_hash(&a),
            template_hash(&json!({"spec": {"x": [2, 1]}}))
        );
        assert_eq!(template_hash(&a).len(), 12);
    }
}
