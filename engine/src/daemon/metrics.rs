//! The daemon's metrics and their Prometheus text exposition.
//!
//! One [`Metrics`] per process, shared (`Arc`) between the reconcile loop, which records events
//! with one call each ([`reconciled`](Metrics::reconciled), [`applied`](Metrics::applied), ...),
//! and the HTTP server, which serves [`text`](Metrics::text) on `/metrics`.
//!
//! The exposition is written by hand rather than with `prometheus-client`: ten fixed families
//! need no registry, and the format (HELP and TYPE lines, one sample a line, escaped label
//! values) is small enough to own. Families always come in the same order, and every labelled
//! counter shows all its label values from the start (at 0), so a series never appears out of
//! nowhere and `rate()` sees its first increment.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tally_engine::daemon::metrics::{Metrics, ReconcileResult};
//!
//! let metrics = Metrics::new();
//! metrics.reconciled(ReconcileResult::Applied, Duration::from_millis(420));
//! metrics.applied(3);
//! metrics.commit_applied("3f2a9c1", "prod", SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let text = metrics.text();
//! assert!(text.contains("tally_reconciles_total{result=\"applied\"} 1\n"));
//! assert!(text.contains("tally_last_applied_commit{commit=\"3f2a9c1\",environment=\"prod\"} 1\n"));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The content type of [`Metrics::text`] (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the reconcile duration histogram's buckets: from a no-op reconcile
/// (well under a second) to an apply that waits minutes for workloads to become healthy.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// How a reconcile ended: the `result` label of `tally_reconciles_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// Changes were applied (and pruned) cleanly.
    Applied,
    /// Nothing to change: the cluster already matched the commit.
    NoChange,
    /// The gate rejected the commit; nothing was applied.
    Rejected,
    /// The reconcile failed: fetch, render, cluster errors, unhealthy objects.
    Failed,
}

impl ReconcileResult {
    /// Every result, in exposition order.
    pub const ALL: [ReconcileResult; 4] = [
        ReconcileResult::Applied,
        ReconcileResult::NoChange,
        ReconcileResult::Rejected,
        ReconcileResult::Failed,
    ];

    /// The label value: `applied`, `no_change`, `rejected`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Applied => "applied",
            ReconcileResult::NoChange => "no_change",
            ReconcileResult::Rejected => "rejected",
            ReconcileResult::Failed => "failed",
        }
    }
}

/// What became of a webhook delivery: the `outcome` label of `tally_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOutcome {
    /// A push to the followed branch: a reconcile was triggered.
    Accepted,
    /// Correctly signed, but nothing to do: a ping, another branch, a tag, another event, a
    /// deleted branch, or a reconcile loop that is no longer running.
    Ignored,
    /// No `X-Hub-Signature-256` header: rejected.
    Unsigned,
    /// A signature that does not match the body under the configured secret: rejected.
    BadSignature,
    /// Signed or not, unusable: a body over the size limit or too slow to arrive, a missing
    /// event header, a payload that is not a push event in JSON.
    Malformed,
}

impl WebhookOutcome {
    /// Every outcome, in exposition order.
    pub const ALL: [WebhookOutcome; 5] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Ignored,
        WebhookOutcome::Unsigned,
        WebhookOutcome::BadSignature,
        WebhookOutcome::Malformed,
    ];

    /// The label value: `accepted`, `ignored`, `unsigned`, `bad_signature`, `malformed`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Unsigned => "unsigned",
            WebhookOutcome::BadSignature => "bad_signature",
            WebhookOutcome::Malformed => "malformed",
        }
    }
}

/// The daemon's metrics: thread-safe, cheap to update, rendered on demand.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: [AtomicU64; ReconcileResult::ALL.len()],
    duration: Mutex<Histogram>,
    gate_rejections: AtomicU64,
    objects_applied: AtomicU64,
    prune_deletions: AtomicU64,
    drift_objects: AtomicU64,
    drift_corrections: AtomicU64,
    last_applied: Mutex<Option<LastApplied>>,
    webhook: [AtomicU64; WebhookOutcome::ALL.len()],
    cache_objects: AtomicU64,
    cache_lists: AtomicU64,
    cache_misses: AtomicU64,
    /// Blue/green releases by (app, outcome).
    releases: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
    /// GitHub commit statuses by result.
    github_reports: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Per app, the seconds from the start of the round that saw the commit to the switch.
    switch_seconds: Mutex<std::collections::BTreeMap<String, f64>>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Debug)]
struct LastApplied {
    commit: String,
    environment: String,
    unix_seconds: u64,
}

impl Metrics {
    /// Metrics with every counter at zero and no applied commit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a finished reconcile: its result and how long it took (gate to end of apply).
    pub fn reconciled(&self, result: ReconcileResult, duration: Duration) {
        self.reconciles[result as usize].fetch_add(1, Ordering::Relaxed);
        let seconds = duration.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        let mut histogram = lock(&self.duration);
        histogram.counts[bucket] += 1;
        histogram.sum += seconds;
    }

    /// Counts a commit the gate rejected. Call it once per rejected commit (the reconcile that
    /// found it also calls [`reconciled`](Self::reconciled) with [`ReconcileResult::Rejected`],
    /// which counts attempts, not commits).
    pub fn commit_rejected(&self) {
        self.gate_rejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts objects written to the cluster (created or updated by server-side apply).
    pub fn applied(&self, objects: u64) {
        self.objects_applied.fetch_add(objects, Ordering::Relaxed);
    }

    /// Counts objects deleted by pruning.
    pub fn pruned(&self, objects: u64) {
        self.prune_deletions.fetch_add(objects, Ordering::Relaxed);
    }

    /// Sets how many objects differed from the last applied state at the last drift check
    /// (0 when the cluster matched).
    pub fn drift(&self, drifted: u64) {
        self.drift_objects.store(drifted, Ordering::Relaxed);
    }

    /// Counts drifted objects that were put back (self-heal).
    pub fn drift_corrected(&self, objects: u64) {
        self.drift_corrections.fetch_add(objects, Ordering::Relaxed);
    }

    /// Records the commit now applied to `environment`, and when it was applied (usually
    /// `SystemTime::now()` at the end of a clean apply).
    pub fn commit_applied(&self, commit: &str, environment: &str, at: SystemTime) {
        // A clock before 1970 is not worth an error: it shows as 0.
        let unix_seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        *lock(&self.last_applied) = Some(LastApplied {
            commit: commit.to_owned(),
            environment: environment.to_owned(),
            unix_seconds,
        });
    }

    /// Records the watch cache's state: objects held, lists its watches needed (the first one of
    /// each kind, then one per expired or broken watch), and lists it could not answer.
    pub fn watch_cache(&self, objects: u64, lists: u64, misses: u64) {
        self.cache_objects.store(objects, Ordering::Relaxed);
        self.cache_lists.store(lists, Ordering::Relaxed);
        self.cache_misses.store(misses, Ordering::Relaxed);
    }

    /// Counts what a blue/green release came to (`switched`, `aborted`, `switched_back`) and,
    /// for a switch, how long it took from the start of the round that saw the commit.
    pub fn release(&self, app: &str, outcome: &'static str, took: Option<Duration>) {
        *lock(&self.releases)
            .entry((app.to_owned(), outcome))
            .or_default() += 1;
        if let Some(took) = took {
            lock(&self.switch_seconds).insert(app.to_owned(), took.as_secs_f64());
        }
    }

    /// Counts what became of a GitHub commit status: `sent`, `retried`, `failed`, `dropped`.
    pub fn github_report(&self, result: &'static str) {
        *lock(&self.github_reports).entry(result).or_default() += 1;
    }

    /// Counts a webhook delivery by what became of it.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhook[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]), families in a fixed order.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |n: &AtomicU64| n.load(Ordering::Relaxed);

        family(
            &mut out,
            "tally_reconcile_duration_seconds",
            "histogram",
            "Time a reconcile took, from the gate to the end of apply (the fetch not included).",
        );
        {
            let histogram = lock(&self.duration);
            let mut cumulative = 0;
            for (i, count) in histogram.counts.iter().enumerate() {
                cumulative += count;
                let le = DURATION_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |le| float(*le));
                sample(
                    &mut out,
                    "tally_reconcile_duration_seconds_bucket",
                    &[("le", &le)],
                    cumulative,
                );
            }
            sample(
                &mut out,
                "tally_reconcile_duration_seconds_sum",
                &[],
                float(histogram.sum),
            );
            sample(
                &mut out,
                "tally_reconcile_duration_seconds_count",
                &[],
                cumulative,
            );
        }

        family(
            &mut out,
            "tally_reconciles_total",
            "counter",
            "Reconciles by result: applied, no_change, rejected (by the gate), failed.",
        );
        for result in ReconcileResult::ALL {
            sample(
                &mut out,
                "tally_reconciles_total",
                &[("result", result.as_str())],
                counter(&self.reconciles[result as usize]),
            );
        }

        let plain_counters = [
            (
                "tally_gate_rejections_total",
                "Commits the gate rejected; none of them was applied.",
                &self.gate_rejections,
            ),
            (
                "tally_objects_applied_total",
                "Objects written to the cluster by server-side apply.",
                &self.objects_applied,
            ),
            (
                "tally_prune_deletions_total",
                "Objects deleted because they left git.",
                &self.prune_deletions,
            ),
        ];
        for (name, help, value) in plain_counters {
            family(&mut out, name, "counter", help);
            sample(&mut out, name, &[], counter(value));
        }

        family(
            &mut out,
            "tally_drift_objects",
            "gauge",
            "Objects that differed from the last applied state at the last drift check.",
        );
        sample(
            &mut out,
            "tally_drift_objects",
            &[],
            counter(&self.drift_objects),
        );
        family(
            &mut out,
            "tally_drift_corrections_total",
            "counter",
            "Drifted objects put back to the last applied state.",
        );
        sample(
            &mut out,
            "tally_drift_corrections_total",
            &[],
            counter(&self.drift_corrections),
        );

        family(
            &mut out,
            "tally_watch_cache_objects",
            "gauge",
            "Live objects held by the watch cache.",
        );
        sample(
            &mut out,
            "tally_watch_cache_objects",
            &[],
            counter(&self.cache_objects),
        );
        let cache_counters = [
            (
                "tally_watch_cache_lists_total",
                "Lists the watch cache sent: one per kind, then one per expired or broken watch.",
                &self.cache_lists,
            ),
            (
                "tally_watch_cache_misses_total",
                "Lists the watch cache could not answer (a watch was broken) and sent on.",
                &self.cache_misses,
            ),
        ];
        for (name, help, value) in cache_counters {
            family(&mut out, name, "counter", help);
            sample(&mut out, name, &[], counter(value));
        }

        {
            let last = lock(&self.last_applied);
            family(
                &mut out,
                "tally_last_applied_commit_timestamp_seconds",
                "gauge",
                "Unix time at which the last applied commit was applied.",
            );
            if let Some(last) = last.as_ref() {
                sample(
                    &mut out,
                    "tally_last_applied_commit_timestamp_seconds",
                    &[],
                    last.unix_seconds,
                );
            }
            family(
                &mut out,
                "tally_last_applied_commit",
                "gauge",
                "The commit applied last, as labels; the value is always 1.",
            );
            if let Some(last) = last.as_ref() {
                sample(
                    &mut out,
                    "tally_last_applied_commit",
                    &[("commit", &last.commit), ("environment", &last.environment)],
                    1,
                );
            }
        }

        family(
            &mut out,
            "tally_bluegreen_releases_total",
            "counter",
            "Blue/green releases by app and outcome: switched, aborted (before the switch), switched_back (by the post-switch check), rolled_back (by tally rollback, as the daemon saw it recorded).",
        );
        for ((app, outcome), n) in lock(&self.releases).iter() {
            sample(
                &mut out,
                "tally_bluegreen_releases_total",
                &[("app", app), ("outcome", outcome)],
                n,
            );
        }
        family(
            &mut out,
            "tally_bluegreen_last_switch_seconds",
            "gauge",
            "Seconds from the start of the round that saw a commit to its blue/green switch, last switch per app.",
        );
        for (app, seconds) in lock(&self.switch_seconds).iter() {
            sample(
                &mut out,
                "tally_bluegreen_last_switch_seconds",
                &[("app", app)],
                float(*seconds),
            );
        }

        family(
            &mut out,
            "tally_github_reports_total",
            "counter",
            "GitHub commit statuses by result: sent, retried (a 429, a spent rate limit or a 5xx), failed, dropped (the queue was full).",
        );
        {
            let reports = lock(&self.github_reports);
            for result in ["sent", "retried", "failed", "dropped"] {
                let n = reports.get(result).copied().unwrap_or(0);
                sample(
                    &mut out,
                    "tally_github_reports_total",
                    &[("result", result)],
                    n,
                );
            }
        }

        family(
            &mut out,
            "tally_webhook_deliveries_total",
            "counter",
            "GitHub webhook deliveries by outcome.",
        );
        for outcome in WebhookOutcome::ALL {
            sample(
                &mut out,
                "tally_webhook_deliveries_total",
                &[("outcome", outcome.as_str())],
                counter(&self.webhook[outcome as usize]),
            );
        }
        out
    }
}

/// Metrics stay readable after a panic elsewhere: a poisoned lock still holds valid numbers.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // HELP text escapes backslash and newline; ours are constants, escaped anyway for safety.
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value as the text format requires: backslash, double quote, newline.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, else Rust's shortest exact form
/// (`0.05`, `1`, never an exponent).
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_metrics_show_every_series_at_zero_and_no_commit() {
        let text = Metrics::new().text();
        assert!(text.contains("tally_reconciles_total{result=\"no_change\"} 0\n"));
        assert!(text.contains("tally_webhook_deliveries_total{outcome=\"bad_signature\"} 0\n"));
        assert!(text.contains("tally_reconcile_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains("# TYPE tally_last_applied_commit gauge\n"));
        assert!(!text.contains("tally_last_applied_commit{"));
        assert!(!text.contains("\ntally_last_applied_commit_timestamp_seconds "));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::new();
        // Durations that are exact in binary, so the sum is too.
        metrics.reconciled(ReconcileResult::NoChange, Duration::from_micros(31_250));
        metrics.reconciled(ReconcileResult::Applied, Duration::from_micros(62_500));
        metrics.reconciled(ReconcileResult::Failed, Duration::from_secs(3600));
        let text = metrics.text();
        for line in [
            "tally_reconcile_duration_seconds_bucket{le=\"0.05\"} 1\n",
            "tally_reconcile_duration_seconds_bucket{le=\"0.1\"} 2\n",
            "tally_reconcile_duration_seconds_bucket{le=\"600\"} 2\n",
            "tally_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "tally_reconcile_duration_seconds_sum 3600.09375\n",
            "tally_reconcile_duration_seconds_count 3\n",
            "tally_reconciles_total{result=\"failed\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.commit_applied("a\"b\\c\nd", "prod", UNIX_EPOCH + Duration::from_secs(42));
        let text = metrics.text();
        assert!(text.contains(
            "tally_last_applied_commit{commit=\"a\\\"b\\\\c\\nd\",environment=\"prod\"} 1\n"
        ));
        assert!(text.contains("tally_last_applied_commit_timestamp_seconds 42\n"));
    }

    #[test]
    fn the_last_commit_replaces_the_previous_one() {
        let metrics = Metrics::new();
        metrics.commit_applied("one", "prod", UNIX_EPOCH);
        metrics.commit_applied("two", "prod", UNIX_EPOCH + Duration::from_secs(60));
        let text = metrics.text();
        assert!(!text.contains("commit=\"one\""));
        assert!(text.contains("commit=\"two\""));
    }

    #[test]
    fn counters_add_and_the_drift_gauge_is_set() {
        let metrics = Metrics::new();
        metrics.applied(3);
        metrics.applied(2);
        metrics.pruned(1);
        metrics.drift(4);
        metrics.drift(2);
        metrics.drift_corrected(2);
        metrics.commit_rejected();
        metrics.webhook(WebhookOutcome::Accepted);
        let text = metrics.text();
        for line in [
            "tally_objects_applied_total 5\n",
            "tally_prune_deletions_total 1\n",
            "tally_drift_objects 2\n",
            "tally_drift_corrections_total 2\n",
            "tally_gate_rejections_total 1\n",
            "tally_webhook_deliveries_total{outcome=\"accepted\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn floats_are_written_the_prometheus_way() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.25), "0.25");
        assert_eq!(float(1e21), "1000000000000000000000");
    }
}
