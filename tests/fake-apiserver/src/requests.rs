//! The request log and the counters derived from it.

use std::collections::BTreeMap;
use std::fmt;

/// What a request did, in the API server's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=1`.
    Watch,
    /// POST.
    Create,
    /// PATCH with `application/apply-patch+yaml` (server-side apply).
    Apply,
    /// PATCH with a merge, strategic-merge or JSON patch.
    Patch,
    /// PUT.
    Update,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// `/version`, `/api`, `/apis` and the resource lists.
    Discovery,
}

impl Verb {
    /// Lower-case name, as in RBAC rules (`apply` is `patch` there; here it is its own verb).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Apply => "apply",
            Verb::Patch => "patch",
            Verb::Update => "update",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Discovery => "discovery",
        }
    }

    /// Whether the verb changes the cluster (when not a dry run).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create
                | Verb::Apply
                | Verb::Patch
                | Verb::Update
                | Verb::Delete
                | Verb::DeleteCollection
        )
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// The API verb.
    pub verb: Verb,
    /// `plural.group` (or `plural` for the core group); empty for discovery.
    pub resource: String,
    /// Namespace in the path, if any.
    pub namespace: Option<String>,
    /// Object name in the path, if any.
    pub name: Option<String>,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// HTTP status code of the answer (200 for a watch that started).
    pub status: u16,
    /// `fieldManager` of a write.
    pub field_manager: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force=true` on an apply.
    pub force: bool,
    /// The `Impersonate-User` header.
    pub impersonate_user: Option<String>,
    /// Whether an injected fault answered it.
    pub injected_fault: bool,
}

/// Request counts per verb and resource, taken from the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    counts: BTreeMap<(Verb, String), u64>,
    dry_runs: u64,
    real_writes: u64,
}

impl Counters {
    /// Counts a log.
    pub fn from_log(log: &[RequestRecord]) -> Self {
        let mut counters = Counters::default();
        for record in log {
            *counters
                .counts
                .entry((record.verb, record.resource.clone()))
                .or_default() += 1;
            if record.dry_run {
                counters.dry_runs += 1;
            } else if record.verb.is_write() {
                counters.real_writes += 1;
            }
        }
        counters
    }

    /// Requests with this verb, any resource.
    pub fn verb(&self, verb: Verb) -> u64 {
        self.counts
            .iter()
            .filter(|((v, _), _)| *v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests with this verb on one resource (`deployments.apps`, `configmaps`).
    pub fn get(&self, verb: Verb, resource: &str) -> u64 {
        self.counts
            .get(&(verb, resource.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Requests of any verb on one resource.
    pub fn resource(&self, resource: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((_, r), _)| r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Write requests that were not dry runs (create, apply, patch, update, delete).
    pub fn writes(&self) -> u64 {
        self.real_writes
    }

    /// Dry-run requests.
    pub fn dry_runs(&self) -> u64 {
        self.dry_runs
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Every (verb, resource, count), sorted.
    pub fn iter(&self) -> impl Iterator<Item = (Verb, &str, u64)> {
        self.counts.iter().map(|((v, r), n)| (*v, r.as_str(), *n))
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((verb, resource), n) in &self.counts {
            writeln!(f, "{verb:>16} {resource:<40} {n}")?;
        }
        Ok(())
    }
}
