//! Counters of the engine's revocation refreshes, for metrics: how many by
//! kind (CRL, OCSP) and outcome, and how long each took (fetch, verify and
//! store together), as a histogram. Updated with relaxed atomics: reading
//! them never blocks a refresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Refreshed, SourceKind};

/// Upper bounds (seconds) of the refresh duration histogram buckets.
pub const REFRESH_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct KindCounters {
    /// updated, not_modified, failed.
    outcomes: [AtomicU64; 3],
    buckets: [AtomicU64; REFRESH_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The engine's refresh counters.
#[derive(Default)]
pub(crate) struct RefreshStats {
    crl: KindCounters,
    ocsp: KindCounters,
}

impl RefreshStats {
    pub(crate) fn record(&self, kind: SourceKind, outcome: &Refreshed, took: Duration) {
        let k = match kind {
            SourceKind::Crl => &self.crl,
            SourceKind::Ocsp => &self.ocsp,
        };
        let slot = match outcome {
            Refreshed::Updated => 0,
            Refreshed::NotModified => 1,
            Refreshed::Failed(_) => 2,
        };
        k.outcomes[slot].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = REFRESH_BUCKETS.iter().position(|b| secs <= *b) {
            k.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        k.count.fetch_add(1, Ordering::Relaxed);
        k.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn snapshot(&self) -> RefreshMetrics {
        RefreshMetrics {
            crl: self.crl.snapshot(),
            ocsp: self.ocsp.snapshot(),
        }
    }
}

impl KindCounters {
    fn snapshot(&self) -> KindRefreshMetrics {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut cumulative = 0;
        let buckets = REFRESH_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += get(n);
                (*bound, cumulative)
            })
            .collect();
        KindRefreshMetrics {
            updated: get(&self.outcomes[0]),
            not_modified: get(&self.outcomes[1]),
            failed: get(&self.outcomes[2]),
            buckets,
            count: get(&self.count),
            sum_seconds: get(&self.sum_micros) as f64 / 1e6,
        }
    }
}

/// Refreshes of one kind of source since the engine started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KindRefreshMetrics {
    /// New data fetched, verified and stored.
    pub updated: u64,
    /// 304 Not Modified.
    pub not_modified: u64,
    /// The fetch or the data failed.
    pub failed: u64,
    /// Cumulative histogram of durations: (upper bound in seconds, refreshes
    /// that took at most that long), bounds as [`REFRESH_BUCKETS`].
    pub buckets: Vec<(f64, u64)>,
    /// All refreshes.
    pub count: u64,
    /// Their total duration, seconds.
    pub sum_seconds: f64,
}

/// Refresh counters by kind of source, see [`crate::Engine::refresh_metrics`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RefreshMetrics {
    /// CRL distribution points.
    pub crl: KindRefreshMetrics,
    /// OCSP responders.
    pub ocsp: KindRefreshMetrics,
}
