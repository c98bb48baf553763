//! Kubernetes Events tally writes, so `kubectl get events` and event exporters see what it did:
//! a rejected commit or a failed round (on the environment's status ConfigMap), and each step of
//! a blue/green release (on the app's active Service).

use serde_json::json;

use crate::cluster::{ApplyParams, Cluster, ClusterError};
use crate::inventory::now_rfc3339;

/// The core object an Event is about.
pub struct About<'a> {
    /// Its kind (`ConfigMap`, `Service`): a core (`v1`) kind.
    pub kind: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

/// Writes an Event about `about`, named `<name>.<timestamp>`, of type `Normal` or `Warning`,
/// with `message` cut to 1,000 bytes. A cluster that serves no Events is left alone.
pub async fn record<C: Cluster>(
    cluster: &C,
    about: About<'_>,
    name: &str,
    reason: &str,
    kind: &str,
    message: &str,
) -> Result<(), ClusterError> {
    let Some(resource) = cluster.resource("v1", "Event").await? else {
        return Ok(());
    };
    let now = now_rfc3339();
    let stamp: String = now.chars().filter(char::is_ascii_digit).collect();
    let mut message = message.to_owned();
    if message.len() > 1000 {
        let mut end = 1000;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{stamp}"), "namespace": about.namespace},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": about.kind,
            "name": about.name,
            "namespace": about.namespace,
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": "tally"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    cluster
        .apply(&resource, &event, &ApplyParams::default())
        .await
        .map(|_| ())
}
