//! `tally status`: what the cluster says about an environment — the commit applied, the last
//! attempt and its result, and each app's health now.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::EngineError;
use crate::bluegreen::{self, AppState};
use crate::cluster::Cluster;
use crate::health::{self, Health};
use crate::plan::{get_entry, read_inventory};
use crate::reconcile::status_name;

/// An environment's state, read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvStatus {
    /// The environment.
    pub environment: String,
    /// The commit last applied cleanly and when (`None` before the first apply).
    pub applied: Option<(String, String)>,
    /// A commit whose apply started and did not finish cleanly.
    pub pending: Option<String>,
    /// Objects in the inventory.
    pub objects: usize,
    /// The daemon's last attempt: commit, result, message, time.
    pub last_attempt: Option<[String; 4]>,
    /// Per app (`""`: guardrails and objects of no app): health now, and the worst object.
    pub apps: BTreeMap<String, Health>,
    /// Inventory objects that no longer exist.
    pub missing: Vec<String>,
    /// Each blue/green app's release state.
    pub releases: BTreeMap<String, AppState>,
}

/// Reads an environment's status: its inventory, its status ConfigMap, and every inventory
/// object's health.
pub async fn status<C: Cluster>(
    cluster: &C,
    environment: &str,
    namespace: &str,
) -> Result<EnvStatus, EngineError> {
    let inventory = read_inventory(cluster, environment, namespace).await?;
    let mut out = EnvStatus {
        environment: environment.to_owned(),
        applied: None,
        pending: None,
        objects: 0,
        last_attempt: None,
        apps: BTreeMap::new(),
        missing: Vec::new(),
        releases: bluegreen::read_states(cluster, namespace, environment).await?,
    };
    if let Some(cm) = cluster.resource("v1", "ConfigMap").await?
        && let Some(v) = cluster
            .get(&cm, Some(namespace), &status_name(environment))
            .await?
    {
        let d = |k: &str| {
            v.pointer(&format!("/data/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        out.last_attempt = Some([d("commit"), d("result"), d("message"), d("time")]);
    }
    let Some(inventory) = inventory else {
        return Ok(out);
    };
    if !inventory.commit.is_empty() {
        out.applied = Some((inventory.commit.clone(), inventory.applied_at.clone()));
    }
    out.pending = inventory.pending.clone();
    out.objects = inventory.objects.len();
    for entry in &inventory.objects {
        let live = get_entry(cluster, entry).await?;
        let Some(live) = live else {
            out.missing.push(entry.to_ref().to_string());
            continue;
        };
        let app = live
            .pointer("/metadata/labels/tally.dev~1app")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let h = match health::health(&live) {
            Health::Healthy => Health::Healthy,
            Health::Progressing(r) => Health::Progressing(format!("{}: {r}", entry.to_ref())),
            Health::Failed(r) => Health::Failed(format!("{}: {r}", entry.to_ref())),
        };
        let slot = out.apps.entry(app).or_insert(Health::Healthy);
        if rank(&h) > rank(slot) {
            *slot = h;
        }
    }
    Ok(out)
}

fn rank(h: &Health) -> u8 {
    match h {
        Health::Healthy => 0,
        Health::Progressing(_) => 1,
        Health::Failed(_) => 2,
    }
}

impl EnvStatus {
    /// The status as a small table for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let short = |c: &str| c.chars().take(12).collect::<String>();
        let _ = writeln!(out, "environment   {}", self.environment);
        match &self.applied {
            Some((commit, at)) => {
                let _ = writeln!(
                    out,
                    "applied       {} at {at} ({} objects)",
                    short(commit),
                    self.objects
                );
            }
            None => {
                let _ = writeln!(out, "applied       nothing yet");
            }
        }
        if let Some(p) = &self.pending {
            let _ = writeln!(
                out,
                "pending       {} (an apply that did not finish cleanly)",
                short(p)
            );
        }
        if let Some([commit, result, message, time]) = &self.last_attempt {
            let _ = writeln!(
                out,
                "last attempt  {} at {time}: {result}: {message}",
                short(commit)
            );
        }
        if !self.apps.is_empty() {
            let width = self
                .apps
                .keys()
                .map(|a| a.len().max(10))
                .max()
                .unwrap_or(10);
            let _ = writeln!(out, "\n{:width$}  health", "app");
            for (app, h) in &self.apps {
                let name = if app.is_empty() { "(guardrails)" } else { app };
                let h = match h {
                    Health::Healthy => "healthy".to_owned(),
                    Health::Progressing(r) => format!("progressing: {r}"),
                    Health::Failed(r) => format!("failed: {r}"),
                };
                let _ = writeln!(out, "{name:width$}  {h}");
            }
        }
        if !self.releases.is_empty() {
            let _ = writeln!(out, "\nblue/green");
            for (app, state) in &self.releases {
                let _ = writeln!(out, "{app:10}  {}", state.describe(app, &self.environment));
            }
        }
        for m in &self.missing {
            let _ = writeln!(
                out,
                "missing       {m} (in the inventory, not in the cluster: drift)"
            );
        }
        out
    }

    /// Whether every app is healthy and nothing is missing or pending.
    pub fn is_healthy(&self) -> bool {
        self.pending.is_none()
            && self.missing.is_empty()
            && self.apps.values().all(|h| matches!(h, Health::Healthy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MemoryCluster, Propagation};
    use crate::{ApplyOptions, Desired, PlanOptions, apply, plan};
    use serde_json::json;

    #[tokio::test]
    async fn status_reports_the_applied_commit_health_and_missing_objects() {
        let c = MemoryCluster::new();
        c.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tally-system"}}),
        );
        let labels = json!({"app.kubernetes.io/managed-by": "tally", "tally.dev/environment": "prod",
            "tally.dev/app": "web"});
        let desired = Desired {
            environment: "prod".into(),
            commit: "abc123".into(),
            objects: vec![
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "a", "namespace": "tally-system", "labels": labels}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "b", "namespace": "tally-system", "labels": labels}}),
            ],
            depends_on: Default::default(),
            blue_green: Vec::new(),
        };
        let p = plan(&c, desired, &PlanOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(apply(&c, &p, &ApplyOptions::default()).await.is_clean());
        let s = status(&c, "prod", "tally-system")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.applied.as_ref().map(|a| a.0.as_str()), Some("abc123"));
        assert_eq!(s.objects, 2);
        assert_eq!(s.apps.get("web"), Some(&Health::Healthy));
        assert!(s.is_healthy(), "{}", s.text());

        if let Ok(Some(cm)) = c.resource("v1", "ConfigMap").await {
            let _ = c
                .delete(&cm, Some("tally-system"), "b", Propagation::Background)
                .await;
        }
        let s = status(&c, "prod", "tally-system")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.is_healthy());
        assert!(
            s.text().contains("missing       ConfigMap tally-system/b"),
            "{}",
            s.text()
        );
    }
}
