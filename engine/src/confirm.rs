//! The server decides what changed: every update the local diff finds is sent once as a
//! server-side dry-run apply, and the object the server would store is compared with the live
//! one. Defaulting, normalization and mutating webhooks are thus the server's own, so a value
//! the server rewrites never makes a write every round or a false drift report; and a change
//! the server refuses in place (an immutable field) is known before anything is written.
//!
//! Only objects the local diff flags are asked about, so a quiet round sends nothing. The
//! daemon keeps the server's answers ([`ServerVerdicts`]) for as long as neither the live object
//! (its resourceVersion) nor the desired one changes, so a value the server rewrites costs one
//! dry run, not one per round.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::cluster::{ApplyParams, Cluster, ClusterError};
use crate::diff::{self, Change, Replace};
use crate::inventory::{Entry, Key};
use crate::plan::PlannedObject;

/// What the server said about an update.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// The dry run stores the object as it is: nothing to write.
    Unchanged,
    /// The dry run was refused: these fields are immutable.
    Immutable(Vec<String>),
}

/// The server's answers, kept between rounds; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct ServerVerdicts(Arc<Mutex<HashMap<Key, Remembered>>>);

#[derive(Clone)]
struct Remembered {
    resource_version: String,
    desired: u64,
    verdict: Verdict,
}

impl std::fmt::Debug for ServerVerdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |m| m.len());
        write!(f, "ServerVerdicts({n} kept)")
    }
}

/// Two handles are equal when they share their answers.
impl PartialEq for ServerVerdicts {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ServerVerdicts {}

impl ServerVerdicts {
    fn get(&self, key: &Key, resource_version: &str, desired: u64) -> Option<Verdict> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|r| r.resource_version == resource_version && r.desired == desired)
            .map(|r| r.verdict.clone())
    }

    fn put(&self, key: Key, resource_version: String, desired: u64, verdict: Verdict) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(
            key,
            Remembered {
                resource_version,
                desired,
                verdict,
            },
        );
    }

    fn forget(&self, key: &Key) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(key);
    }
}

/// How many objects a confirmation asked the server about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// Dry-run applies sent.
    pub dry_runs: usize,
    /// Updates the server showed to change nothing.
    pub unchanged: usize,
}

/// Confirms each planned update with the server; `live` must still carry its managed fields
/// removed or not (they are not compared).
pub async fn confirm<C: Cluster>(
    cluster: &C,
    planned: &mut [PlannedObject],
    verdicts: &ServerVerdicts,
) -> Asked {
    let mut asked = Asked::default();
    for o in planned.iter_mut() {
        let Change::Update(fields) = &o.change else {
            continue;
        };
        // A takeover of other managers' fields is a write whatever the dry run says.
        if o.adoption.is_some() {
            continue;
        }
        let (Some(resource), Some(live)) = (&o.resource, &o.live) else {
            continue;
        };
        let key = Entry::from_ref(&o.id).key();
        let resource_version = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let desired = digest(&o.desired);
        let verdict = match verdicts.get(&key, &resource_version, desired) {
            Some(v) => Some(v),
            None => {
                let params = ApplyParams {
                    dry_run: true,
                    as_user: o.as_user.clone(),
                    manager: None,
                };
                asked.dry_runs += 1;
                let answer = cluster.apply(resource, &o.desired, &params).await;
                let verdict = judge(answer, live, &o.id);
                match &verdict {
                    Some(v) => verdicts.put(key, resource_version, desired, v.clone()),
                    None => verdicts.forget(&key),
                }
                verdict
            }
        };
        match verdict {
            Some(Verdict::Unchanged) => {
                asked.unchanged += 1;
                o.change = Change::Unchanged;
            }
            Some(Verdict::Immutable(immutable)) => {
                o.change = Change::Replace(Replace {
                    fields: fields.clone(),
                    immutable,
                    recreate: diff::recreate_allowed(&o.desired),
                });
            }
            None => {}
        }
    }
    asked
}

/// The server's answer to a dry run, as a verdict; `None` when it confirms a change (or could
/// not answer: the update then goes ahead and the apply reports what the server says).
fn judge(
    answer: Result<Value, ClusterError>,
    live: &Value,
    id: &impl std::fmt::Display,
) -> Option<Verdict> {
    match answer {
        Ok(would_store) => (comparable(&would_store) == comparable(live)).then(|| {
            tracing::debug!(object = %id, "the server's dry run stores it as it is: no change");
            Verdict::Unchanged
        }),
        Err(ClusterError::Api {
            code: 422, message, ..
        }) => {
            let immutable = diff::immutable_fields_refused(&message);
            (!immutable.is_empty()).then_some(Verdict::Immutable(immutable))
        }
        Err(e) => {
            tracing::debug!(object = %id, error = %e, "dry run not answered; the local diff stands");
            None
        }
    }
}

/// The object without what every write changes (managed fields, resourceVersion, generation)
/// and without its status, which an apply never writes.
fn comparable(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        map.shift_remove("status");
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["managedFields", "resourceVersion", "generation"] {
            meta.shift_remove(key);
        }
    }
    v
}

fn digest(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}
