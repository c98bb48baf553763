//! Applying a plan: only changed objects, wave by wave, waiting for health in between, then
//! pruning (only after a clean apply), then recording the inventory.
//!
//! The order of writes makes an interrupted apply safe to resume: before the first object goes
//! out, the inventory is extended with every desired object (marked `pending`), so whatever gets
//! created is accounted for even if the process dies; pruning happens only after every wave is
//! healthy; the final inventory (the desired set) is written last. A no-op reconcile writes
//! nothing at all.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tally_layout::validator::ObjectRef;

use crate::cluster::{ApplyParams, Cluster, Propagation};
use crate::diff::Change;
use crate::health::{self, Health};
use crate::inventory::{self, Entry, Inventory, KeepReason};
use crate::plan::{Plan, PlannedObject, get_entry};
use crate::wave::Phase;

/// Options of [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Send every write as a server-side dry run: nothing is stored, pruned or recorded, and
    /// nothing is waited for.
    pub dry_run: bool,
    /// How long to wait for one wave (or one app's dependencies) to become healthy.
    pub wait_timeout: Duration,
    /// The longest wait between reads of an object not yet healthy (the first reads come sooner:
    /// an eighth of it, at least 50 ms, doubling).
    pub poll_interval: Duration,
    /// Whether to prune objects that left git.
    pub prune: bool,
    /// Set to stop between waves (graceful shutdown): the apply ends as interrupted, unpruned.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            dry_run: false,
            wait_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            prune: true,
            stop: None,
        }
    }
}

/// How an apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Every wave applied and healthy.
    Clean,
    /// A wave failed (an object could not be applied or did not become healthy); the waves after
    /// it were not applied.
    WaveFailed(Phase),
    /// The inventory could not be recorded before applying, so nothing was applied.
    NotStarted(String),
    /// Stopped between waves on request, before this phase.
    Interrupted(Phase),
    /// Every wave applied and healthy except the objects whose kind's API was unavailable
    /// (see each wave's `blocked`); nothing was pruned.
    Blocked,
}

/// What one wave did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveReport {
    /// Which wave.
    pub phase: Phase,
    /// Objects written (or dry-run).
    pub applied: Vec<ObjectRef>,
    /// Objects already as desired.
    pub unchanged: usize,
    /// Objects not sent: on a dry run, those in a namespace this plan creates (the server would
    /// refuse them only because the namespace does not exist yet).
    pub skipped: Vec<ObjectRef>,
    /// Objects the server refused, with its message.
    pub failed: Vec<(ObjectRef, String)>,
    /// Objects not applied because their kind's API was unavailable, with why.
    pub blocked: Vec<(ObjectRef, String)>,
    /// Objects that did not become healthy in time, with why.
    pub unhealthy: Vec<(ObjectRef, Health)>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// The environment.
    pub environment: String,
    /// The commit applied.
    pub commit: String,
    /// How it ended.
    pub completion: Completion,
    /// Per wave, in order (waves not reached are absent).
    pub waves: Vec<WaveReport>,
    /// Objects deleted by pruning.
    pub pruned: Vec<ObjectRef>,
    /// Prune candidates left alone, with why.
    pub kept: Vec<(ObjectRef, String)>,
    /// Deletions that failed, with the error.
    pub prune_failed: Vec<(ObjectRef, String)>,
    /// Why pruning did not run, when it did not.
    pub prune_skipped: Option<String>,
    /// Whether the inventory was written.
    pub inventory_written: bool,
    /// Why writing the inventory failed, if it did.
    pub inventory_error: Option<String>,
}

impl ApplyReport {
    /// Whether every wave applied and became healthy, and nothing else failed.
    pub fn is_clean(&self) -> bool {
        self.completion == Completion::Clean
            && self.prune_failed.is_empty()
            && self.inventory_error.is_none()
    }

    /// Objects written.
    pub fn applied(&self) -> impl Iterator<Item = &ObjectRef> {
        self.waves.iter().flat_map(|w| w.applied.iter())
    }

    /// Objects that failed or were unhealthy, with why.
    pub fn problems(&self) -> Vec<(ObjectRef, String)> {
        let mut out = Vec::new();
        for w in &self.waves {
            out.extend(w.failed.iter().cloned());
            out.extend(w.blocked.iter().cloned());
            out.extend(
                w.unhealthy
                    .iter()
                    .map(|(id, h)| (id.clone(), h.to_string())),
            );
        }
        out.extend(self.prune_failed.iter().cloned());
        out
    }

    /// Why the apply was not clean, in one line (at most five problems named); empty when it was.
    pub fn why_unclean(&self) -> String {
        let mut why: Vec<String> = self
            .problems()
            .into_iter()
            .take(5)
            .map(|(id, why)| format!("{id}: {why}"))
            .collect();
        match &self.completion {
            Completion::Interrupted(phase) => why.push(format!(
                "stopped before the {phase} wave (shutting down); nothing was pruned"
            )),
            Completion::NotStarted(reason) => why.push(format!("nothing was applied: {reason}")),
            Completion::Clean | Completion::WaveFailed(_) | Completion::Blocked => {}
        }
        if let Some(e) = &self.inventory_error {
            why.push(format!("recording the inventory: {e}"));
        }
        why.join("; ")
    }

    /// A readable account: what was applied and pruned, what is unhealthy and why.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for w in &self.waves {
            for id in &w.applied {
                let _ = writeln!(out, "applied {id}");
            }
            for (id, why) in &w.failed {
                let _ = writeln!(out, "failed {id}: {why}");
            }
            for (id, h) in &w.unhealthy {
                let _ = writeln!(out, "unhealthy {id}: {h}");
            }
            for (id, why) in &w.blocked {
                let _ = writeln!(out, "blocked {id}: {why}");
            }
        }
        for id in &self.pruned {
            let _ = writeln!(out, "pruned {id}");
        }
        for (id, why) in &self.kept {
            let _ = writeln!(out, "kept {id}: {why}");
        }
        for (id, why) in &self.prune_failed {
            let _ = writeln!(out, "prune failed {id}: {why}");
        }
        if let Some(why) = &self.prune_skipped {
            let _ = writeln!(out, "nothing pruned: {why}");
        }
        if let Some(why) = &self.inventory_error {
            let _ = writeln!(out, "inventory not written: {why}");
        }
        let applied = self.applied().count();
        let result = match &self.completion {
            Completion::Clean => "applied cleanly".to_owned(),
            Completion::WaveFailed(p) => format!("stopped: the {p} wave failed"),
            Completion::NotStarted(why) => format!("not started: {why}"),
            Completion::Interrupted(p) => format!("interrupted before the {p} wave"),
            Completion::Blocked => "applied, except objects whose API is unavailable".to_owned(),
        };
        let _ = writeln!(
            out,
            "{} at {}: {result}; {applied} applied, {} pruned",
            self.environment,
            short(&self.commit),
            self.pruned.len()
        );
        out
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Applies a plan. Errors of single objects are reported, not returned: the report says what
/// happened to each.
pub async fn apply<C: Cluster>(cluster: &C, plan: &Plan, options: &ApplyOptions) -> ApplyReport {
    let mut report = ApplyReport {
        environment: plan.environment.clone(),
        commit: plan.commit.clone(),
        completion: Completion::Clean,
        waves: Vec::new(),
        pruned: Vec::new(),
        kept: Vec::new(),
        prune_failed: Vec::new(),
        prune_skipped: None,
        inventory_written: false,
        inventory_error: None,
    };
    let desired_entries: Vec<Entry> = plan.objects().map(|o| Entry::from_ref(&o.id)).collect();
    let previous = plan.previous.clone().unwrap_or_else(|| Inventory {
        environment: plan.environment.clone(),
        ..Inventory::default()
    });

    // An object the server refuses to update in place, and that may not be deleted and created
    // again, stops the apply before anything is written.
    let refused: Vec<String> = plan
        .objects()
        .filter_map(|o| match &o.change {
            Change::Replace(r) if !r.recreate => Some(format!("{}: {}", o.id, r.refusal())),
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        report.completion = Completion::NotStarted(refused.join("; "));
        return report;
    }

    // Record every object about to exist before creating any.
    let known = previous.keys();
    let adds_objects = desired_entries.iter().any(|e| !known.contains(&e.key()));
    if adds_objects && !options.dry_run {
        let mut pending = previous.union(desired_entries.iter().cloned());
        pending.pending = Some(plan.commit.clone());
        pending.applied_at = inventory::now_rfc3339();
        match write_inventory(cluster, plan, &pending).await {
            Ok(()) => report.inventory_written = true,
            Err(e) => {
                report.completion = Completion::NotStarted(format!("recording the inventory: {e}"));
                report.inventory_error = Some(e);
                return report;
            }
        }
    }

    let new_namespaces: BTreeSet<&String> = plan
        .objects()
        .filter(|o| o.id.kind == "Namespace" && o.id.group().is_empty())
        .filter(|o| matches!(o.change, Change::Create))
        .map(|o| &o.id.name)
        .collect();

    // The live state of the objects read or written since the plan, by index; the others are as
    // the plan saw them.
    let mut live: HashMap<usize, Option<Value>> = HashMap::new();
    let params = |o: &PlannedObject| ApplyParams {
        dry_run: options.dry_run,
        as_user: o.as_user.clone(),
        manager: None,
    };

    'waves: for wave in &plan.waves {
        if options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
        {
            report.completion = Completion::Interrupted(wave.phase);
            break;
        }
        let mut w = WaveReport {
            phase: wave.phase,
            applied: Vec::new(),
            unchanged: 0,
            skipped: Vec::new(),
            failed: Vec::new(),
            blocked: Vec::new(),
            unhealthy: Vec::new(),
        };
        for group in &wave.groups {
            if !group.needs.is_empty() && !options.dry_run {
                let deps: Vec<&PlannedObject> = wave
                    .groups
                    .iter()
                    .filter(|g| g.app.as_ref().is_some_and(|a| group.needs.contains(a)))
                    .flat_map(|g| g.items.iter())
                    .collect();
                w.unhealthy = wait_healthy(cluster, &deps, &mut live, options).await;
                if !w.unhealthy.is_empty() {
                    report.completion = Completion::WaveFailed(wave.phase);
                    report.waves.push(w);
                    break 'waves;
                }
            }
            for o in &group.items {
                if let Some(why) = &o.blocked {
                    w.blocked.push((o.id.clone(), why.clone()));
                    continue;
                }
                if !o.change.is_change() {
                    w.unchanged += 1;
                    continue;
                }
                if options.dry_run
                    && o.id
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| new_namespaces.contains(ns))
                {
                    w.skipped.push(o.id.clone());
                    continue;
                }
                if let Change::Replace(r) = &o.change {
                    if options.dry_run {
                        w.skipped.push(o.id.clone());
                        continue;
                    }
                    if let Err(e) = delete_for_replace(cluster, o, options.wait_timeout).await {
                        w.failed.push((
                            o.id.clone(),
                            format!("replacing ({}): {e}", r.immutable.join(", ")),
                        ));
                        continue;
                    }
                }
                if let (Some(a), Some(resource), false) =
                    (&o.adoption, &o.resource, options.dry_run)
                {
                    let ns = o.id.namespace.as_deref().filter(|_| resource.namespaced);
                    let taken = cluster
                        .set_managed_fields(
                            resource,
                            ns,
                            &o.id.name,
                            &a.resource_version,
                            &a.managed_fields,
                        )
                        .await;
                    if let Err(e) = taken {
                        w.failed.push((
                            o.id.clone(),
                            format!("adopting the fields of {}: {e}", a.from.join(", ")),
                        ));
                        continue;
                    }
                }
                if !o.handover.is_empty() && !options.dry_run {
                    let config = crate::ignore::handover_config(&o.desired, &o.handover);
                    let handover = ApplyParams {
                        manager: Some(crate::ignore::HANDOVER_MANAGER),
                        ..params(o)
                    };
                    if let Err(e) = apply_config(cluster, o, &config, &handover).await {
                        w.failed
                            .push((o.id.clone(), format!("handing fields over: {e}")));
                        continue;
                    }
                }
                match apply_one(cluster, o, &params(o)).await {
                    Ok(mut stored) => {
                        // Kept for the health wait, which reads spec and status only.
                        crate::fields::drop_managed_fields(&mut stored);
                        live.insert(o.index, Some(stored));
                        w.applied.push(o.id.clone());
                    }
                    Err(e) => w.failed.push((o.id.clone(), e)),
                }
            }
            if !w.failed.is_empty() {
                break;
            }
        }
        if w.failed.is_empty() && !options.dry_run {
            let gating: Vec<&PlannedObject> = wave
                .items()
                .filter(|o| o.blocked.is_none())
                .filter(|o| health::gates_next_wave(&o.id.api_version, &o.id.kind))
                .collect();
            w.unhealthy = wait_healthy(cluster, &gating, &mut live, options).await;
        }
        let failed = !w.failed.is_empty() || !w.unhealthy.is_empty();
        report.waves.push(w);
        if failed {
            report.completion = Completion::WaveFailed(wave.phase);
            break;
        }
    }

    // Objects that do not hold up a wave (claims) are checked once every wave is out.
    if report.completion == Completion::Clean && !options.dry_run {
        let rest: Vec<&PlannedObject> = plan
            .objects()
            .filter(|o| o.blocked.is_none())
            .filter(|o| !health::gates_next_wave(&o.id.api_version, &o.id.kind))
            .collect();
        let unhealthy = wait_healthy(cluster, &rest, &mut live, options).await;
        if !unhealthy.is_empty() {
            let phase = Phase::Storage;
            if let Some(w) = report.waves.iter_mut().find(|w| w.phase == phase) {
                w.unhealthy.extend(unhealthy);
            } else {
                report.waves.push(WaveReport {
                    phase,
                    applied: Vec::new(),
                    unchanged: 0,
                    skipped: Vec::new(),
                    failed: Vec::new(),
                    blocked: Vec::new(),
                    unhealthy,
                });
            }
            report.completion = Completion::WaveFailed(phase);
        }
    }

    if report.completion == Completion::Clean && report.waves.iter().any(|w| !w.blocked.is_empty())
    {
        report.completion = Completion::Blocked;
    }

    if options.dry_run {
        report.prune_skipped = Some("dry run".into());
        return report;
    }

    // Prune, only after a clean apply.
    let mut retained: Vec<Entry> = Vec::new();
    if let Err(e) = inventory::check_apply_clean(report.completion == Completion::Clean) {
        report.prune_skipped = Some(e.to_string());
    } else if let Some(refused) = &plan.prune_refused {
        report.prune_skipped = Some(refused.to_string());
        // Keep what the inventory lists: nothing was decided about it.
        retained.extend(previous.objects.iter().cloned());
    } else if !options.prune {
        report.prune_skipped = Some("pruning is turned off".into());
        retained.extend(plan.prune.delete.iter().cloned());
    } else {
        for (e, why) in &plan.prune.kept {
            report.kept.push((e.to_ref(), why.to_string()));
            if matches!(why, KeepReason::InUse(_)) {
                // Retried on the next reconcile, once what it holds is gone.
                retained.push(e.clone());
            }
        }
        for e in &plan.prune.delete {
            match prune_one(cluster, plan, e).await {
                Ok(Pruned::Deleted) => report.pruned.push(e.to_ref()),
                Ok(Pruned::Kept(why)) => report.kept.push((e.to_ref(), why.to_string())),
                Err(err) => {
                    report.prune_failed.push((e.to_ref(), err));
                    retained.push(e.clone());
                }
            }
        }
    }

    // The final inventory.
    let next = if report.completion == Completion::Clean {
        let mut inv = Inventory::new(
            plan.environment.clone(),
            plan.commit.clone(),
            desired_entries.iter().cloned().chain(retained),
        );
        inv.pending = None;
        inv
    } else {
        let mut inv = previous.union(desired_entries.iter().cloned());
        inv.pending = Some(plan.commit.clone());
        inv.applied_at = inventory::now_rfc3339();
        inv
    };
    // What the cluster holds now: the pending inventory written above, or the one read.
    let current = if report.inventory_written {
        let mut p = previous.union(desired_entries.iter().cloned());
        p.pending = Some(plan.commit.clone());
        Some(p)
    } else {
        plan.previous.clone()
    };
    let unchanged_inventory = current.is_some_and(|c| c.same_content(&next));
    if !unchanged_inventory {
        match write_inventory(cluster, plan, &next).await {
            Ok(()) => report.inventory_written = true,
            Err(e) => report.inventory_error = Some(e),
        }
    }
    report
}

async fn apply_one<C: Cluster>(
    cluster: &C,
    o: &PlannedObject,
    params: &ApplyParams,
) -> Result<Value, String> {
    apply_config(cluster, o, &o.desired, params).await
}

/// Applies `config` (the object, or part of it) for planned object `o`.
async fn apply_config<C: Cluster>(
    cluster: &C,
    o: &PlannedObject,
    config: &Value,
    params: &ApplyParams,
) -> Result<Value, String> {
    let resource = match &o.resource {
        Some(r) => r.clone(),
        // A kind whose CRD was applied in an earlier wave of this plan.
        None => match cluster.resource(&o.id.api_version, &o.id.kind).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(format!(
                    "{} {} is not served by the cluster (is its CRD installed?)",
                    o.id.api_version, o.id.kind
                ));
            }
            Err(e) => return Err(e.to_string()),
        },
    };
    cluster
        .apply(&resource, config, params)
        .await
        .map_err(|e| e.to_string())
}

/// Deletes an object whose immutable fields change (its dependents first: foreground) and waits
/// until it is gone, so that the apply after creates it anew.
async fn delete_for_replace<C: Cluster>(
    cluster: &C,
    o: &PlannedObject,
    timeout: Duration,
) -> Result<(), String> {
    let Some(resource) = &o.resource else {
        return Ok(());
    };
    let ns = o.id.namespace.as_deref().filter(|_| resource.namespaced);
    tracing::info!(object = %o.id, "deleting to create again: immutable fields change");
    cluster
        .delete(resource, ns, &o.id.name, Propagation::Foreground)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut wait = Duration::from_millis(50);
    loop {
        match cluster.get(resource, ns, &o.id.name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "still being deleted after {}s (finalizers?)",
                    timeout.as_secs()
                ));
            }
            Ok(Some(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

enum Pruned {
    Deleted,
    Kept(KeepReason),
}

/// Deletes one prune candidate after checking again that it is still tally's to delete.
async fn prune_one<C: Cluster>(cluster: &C, plan: &Plan, e: &Entry) -> Result<Pruned, String> {
    let live = get_entry(cluster, e).await.map_err(|err| err.to_string())?;
    let Some(live) = live else {
        return Ok(Pruned::Deleted);
    };
    if !inventory::owned_by_tally(&live, &plan.environment) {
        return Ok(Pruned::Kept(KeepReason::NotOwned));
    }
    if inventory::prune_disabled(&live) {
        return Ok(Pruned::Kept(KeepReason::PruneDisabled));
    }
    let resource = match cluster.resource(&e.api_version(), &e.kind).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Pruned::Deleted),
        Err(err) => return Err(err.to_string()),
    };
    let ns = e.namespace.as_deref().filter(|_| resource.namespaced);
    cluster
        .delete(&resource, ns, &e.name, Propagation::Background)
        .await
        .map(|()| Pruned::Deleted)
        .map_err(|err| err.to_string())
}

async fn write_inventory<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    inventory: &Inventory,
) -> Result<(), String> {
    let resource = match cluster.resource("v1", "ConfigMap").await {
        Ok(Some(r)) => r,
        Ok(None) => return Err("the cluster does not serve ConfigMaps".into()),
        Err(e) => return Err(e.to_string()),
    };
    let cm = inventory.to_config_map(&plan.inventory_namespace);
    cluster
        .apply(&resource, &cm, &ApplyParams::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Waits until every object in `objects` is healthy, has failed, or the timeout passes; returns
/// those not healthy, with why. Reads only the objects not yet healthy.
async fn wait_healthy<C: Cluster>(
    cluster: &C,
    objects: &[&PlannedObject],
    live: &mut HashMap<usize, Option<Value>>,
    options: &ApplyOptions,
) -> Vec<(ObjectRef, Health)> {
    let deadline = tokio::time::Instant::now() + options.wait_timeout;
    let mut pending: BTreeSet<usize> = objects.iter().map(|o| o.index).collect();
    let by_index = |i: usize| objects.iter().find(|o| o.index == i);
    // Most objects are healthy within moments: look again soon, then less and less often, up to
    // the poll interval.
    let mut wait = (options.poll_interval / 8)
        .max(Duration::from_millis(50))
        .min(options.poll_interval);
    loop {
        let mut unhealthy = Vec::new();
        let mut any_failed = false;
        for &i in &pending {
            let current = match live.get(&i) {
                Some(read) => read.as_ref(),
                None => by_index(i).and_then(|o| o.live.as_ref()),
            };
            let h = match current {
                Some(v) => health::health(v),
                None => Health::Progressing("not found".into()),
            };
            if !h.is_healthy() {
                any_failed |= h.is_failed();
                unhealthy.push((i, h));
            }
        }
        pending = unhealthy.iter().map(|(i, _)| *i).collect();
        if pending.is_empty() {
            return Vec::new();
        }
        if any_failed || tokio::time::Instant::now() >= deadline {
            return unhealthy
                .into_iter()
                .filter_map(|(i, h)| by_index(i).map(|o| (o.id.clone(), h)))
                .collect();
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(options.poll_interval);
        for &i in &pending {
            let Some(o) = by_index(i) else { continue };
            let Some(resource) = &o.resource else {
                // Resolved at apply time; read it through discovery again.
                if let Ok(Some(v)) = get_entry(cluster, &Entry::from_ref(&o.id)).await {
                    live.insert(i, Some(v));
                }
                continue;
            };
            let ns = o.id.namespace.as_deref().filter(|_| resource.namespaced);
            // A failed read is retried on the next round; the deadline bounds it.
            if let Ok(v) = cluster.get(resource, ns, &o.id.name).await {
                live.insert(i, v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
