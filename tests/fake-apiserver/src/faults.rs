//! Fault injection: error answers, added latency, dropped watches.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::requests::Verb;
use crate::status::ApiError;

/// An error answer to inject.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    verb: Option<Verb>,
    resource: Option<String>,
    code: u16,
    retry_after: Option<u32>,
    times: Option<u32>,
    ratio: Option<f64>,
}

impl Fault {
    /// Answers with this HTTP code (429, 500, 503, 409, ...), for every matching request until
    /// limited with [`Fault::times`] or [`Fault::ratio`]. 429 and 503 carry `Retry-After: 1`.
    pub fn status(code: u16) -> Self {
        Fault {
            verb: None,
            resource: None,
            code,
            retry_after: matches!(code, 429 | 503).then_some(1),
            times: None,
            ratio: None,
        }
    }

    /// Only requests with this verb.
    pub fn on(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests for this resource (`deployments.apps`, `configmaps`; a bare plural matches
    /// any group).
    pub fn for_resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Only this fraction (0.0 to 1.0) of matching requests, chosen by a seeded generator so
    /// runs repeat.
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio.clamp(0.0, 1.0));
        self
    }

    /// The `Retry-After` header in seconds (`None` to omit it).
    pub fn retry_after(mut self, seconds: Option<u32>) -> Self {
        self.retry_after = seconds;
        self
    }

    fn matches(&self, verb: Verb, resource: &str) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r == resource || resource.split('.').next() == Some(r))
    }

    fn error(&self) -> ApiError {
        let reason = match self.code {
            409 => "Conflict",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        let mut error = ApiError::new(self.code, reason, format!("injected fault ({})", self.code));
        error.retry_after = self.retry_after;
        error
    }
}

#[derive(Default)]
struct Rules {
    faults: Vec<Fault>,
    latency: Vec<(Option<Verb>, Option<String>, Duration)>,
    rng: u64,
}

/// The server's fault controls.
pub struct Faults {
    rules: Mutex<Rules>,
    drop_epoch: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Rules {
                rng: 0x2545_F491_4F6C_DD1D,
                ..Rules::default()
            }),
            drop_epoch: watch::channel(0).0,
        }
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a fault; several may be active, the first that matches answers.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Adds latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.add_latency(None, None, latency);
    }

    /// Adds latency to matching requests (`None` matches any).
    pub fn add_latency(&self, verb: Option<Verb>, resource: Option<&str>, latency: Duration) {
        self.lock()
            .latency
            .push((verb, resource.map(String::from), latency));
    }

    /// Removes every fault and latency rule.
    pub fn clear(&self) {
        let mut rules = self.lock();
        rules.faults.clear();
        rules.latency.clear();
    }

    /// Faults that have not run out yet.
    pub fn pending(&self) -> usize {
        self.lock().faults.len()
    }

    /// Closes every open watch now (clients see the stream end and must re-watch).
    pub fn drop_watches(&self) {
        self.drop_epoch.send_modify(|epoch| *epoch += 1);
    }

    pub(crate) fn drop_signal(&self) -> watch::Receiver<u64> {
        self.drop_epoch.subscribe()
    }

    /// The latency and the error (if any) for a request.
    pub(crate) fn check(&self, verb: Verb, resource: &str) -> (Duration, Option<ApiError>) {
        let mut rules = self.lock();
        let latency = rules
            .latency
            .iter()
            .filter(|(v, r, _)| {
                v.is_none_or(|v| v == verb)
                    && r.as_deref()
                        .is_none_or(|r| r == resource || resource.split('.').next() == Some(r))
            })
            .map(|(_, _, d)| *d)
            .sum();
        let mut error = None;
        let mut index = 0;
        while index < rules.faults.len() {
            if !rules.faults[index].matches(verb, resource) {
                index += 1;
                continue;
            }
            if let Some(ratio) = rules.faults[index].ratio {
                // xorshift64: a fixed sequence, so a test with a ratio repeats exactly.
                let mut x = rules.rng;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                rules.rng = x;
                if (x >> 11) as f64 / (1u64 << 53) as f64 >= ratio {
                    index += 1;
                    continue;
                }
            }
            error = Some(rules.faults[index].error());
            if let Some(times) = rules.faults[index].times.as_mut() {
                *times = times.saturating_sub(1);
                if *times == 0 {
                    rules.faults.remove(index);
                }
            }
            break;
        }
        (latency, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_runs_out() {
        let faults = Faults::default();
        faults.inject(
            Fault::status(503)
                .on(Verb::Apply)
                .for_resource("deployments")
                .times(2),
        );
        assert!(faults.check(Verb::Get, "deployments.apps").1.is_none());
        assert!(faults.check(Verb::Apply, "configmaps").1.is_none());
        let first = faults.check(Verb::Apply, "deployments.apps").1;
        assert_eq!(first.map(|e| (e.code, e.retry_after)), Some((503, Some(1))));
        assert!(faults.check(Verb::Apply, "deployments.apps").1.is_some());
        assert!(faults.check(Verb::Apply, "deployments.apps").1.is_none());
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn ratio_hits_about_that_fraction() {
        let faults = Faults::default();
        faults.inject(Fault::status(500).ratio(0.25));
        let hits = (0..4000)
            .filter(|_| faults.check(Verb::List, "pods").1.is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
    }

    #[test]
    fn latency_adds_up() {
        let faults = Faults::default();
        faults.set_latency(Duration::from_millis(5));
        faults.add_latency(Some(Verb::Apply), None, Duration::from_millis(7));
        assert_eq!(faults.check(Verb::Apply, "x").0, Duration::from_millis(12));
        assert_eq!(faults.check(Verb::Get, "x").0, Duration::from_millis(5));
        faults.clear();
        assert_eq!(faults.check(Verb::Get, "x").0, Duration::ZERO);
    }
}
