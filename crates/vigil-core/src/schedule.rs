//! When to fetch revocation data again: pure decisions from times, no I/O
//! (the runtime sleeps and fetches).

/// How revocation sources are refreshed.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use vigil_core::schedule::RefreshPolicy;
///
/// // Every source at least hourly, whatever its nextUpdate says.
/// let policy = RefreshPolicy::default().with_max_interval_secs(3600);
/// assert_eq!(policy.max_interval_secs, 3600);
/// assert_eq!(policy.fraction, 0.5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Refresh at this fraction of the thisUpdate..nextUpdate window
    /// (default 0.5: halfway, so a failed refresh has time to retry).
    pub fraction: f64,
    /// Never refresh a source more often than this (default 60 s).
    pub min_interval_secs: i64,
    /// Refresh at least this often, also data without nextUpdate (default 6 h).
    pub max_interval_secs: i64,
    /// First retry delay after a failure, doubled per failure (default 5 s).
    pub retry_base_secs: i64,
    /// Longest retry delay (default 10 min).
    pub retry_max_secs: i64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            fraction: 0.5,
            min_interval_secs: 60,
            max_interval_secs: 6 * 3600,
            retry_base_secs: 5,
            retry_max_secs: 600,
        }
    }
}

impl RefreshPolicy {
    /// Sets the fraction of the thisUpdate..nextUpdate window at which a
    /// source is refreshed (default 0.5).
    #[must_use]
    pub fn with_fraction(mut self, fraction: f64) -> Self {
        self.fraction = fraction;
        self
    }

    /// Sets the shortest time between refreshes of a source, seconds
    /// (default 60).
    #[must_use]
    pub fn with_min_interval_secs(mut self, secs: i64) -> Self {
        self.min_interval_secs = secs;
        self
    }

    /// Sets the longest time between refreshes of a source, seconds
    /// (default 6 hours).
    #[must_use]
    pub fn with_max_interval_secs(mut self, secs: i64) -> Self {
        self.max_interval_secs = secs;
        self
    }

    /// Sets the first retry delay after a failure, seconds, doubled per
    /// failure (default 5).
    #[must_use]
    pub fn with_retry_base_secs(mut self, secs: i64) -> Self {
        self.retry_base_secs = secs;
        self
    }

    /// Sets the longest retry delay, seconds (default 10 minutes).
    #[must_use]
    pub fn with_retry_max_secs(mut self, secs: i64) -> Self {
        self.retry_max_secs = secs;
        self
    }
}

/// What is known about one source's timing, Unix seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceTiming {
    /// thisUpdate of the data held.
    pub this_update: Option<i64>,
    /// nextUpdate of the data held.
    pub next_update: Option<i64>,
    /// Last successful fetch (including 304 Not Modified).
    pub last_success: Option<i64>,
    /// Last attempt, successful or not.
    pub last_attempt: Option<i64>,
    /// Failures since the last success.
    pub failures: u32,
}

/// The next time the source should be fetched. Before jitter, which the
/// runtime adds to retries.
pub fn next_refresh(t: &SourceTiming, p: &RefreshPolicy) -> i64 {
    if t.failures > 0 {
        let shift = (t.failures - 1).min(20);
        let delay = p
            .retry_base_secs
            .saturating_mul(1i64 << shift)
            .min(p.retry_max_secs);
        return t.last_attempt.unwrap_or(0).saturating_add(delay);
    }
    let Some(last) = t.last_success else {
        return i64::MIN; // never fetched: now
    };
    // A max_interval below min_interval is the operator asking for more
    // frequent refreshes: it wins (not silently raised to min_interval).
    let earliest = last.saturating_add(p.min_interval_secs.min(p.max_interval_secs));
    let latest = last.saturating_add(p.max_interval_secs);
    match (t.this_update, t.next_update) {
        (Some(this), Some(next)) if next > this => {
            let at = this + ((next - this) as f64 * p.fraction.clamp(0.0, 1.0)) as i64;
            // Data already past its refresh point (fetched late): soon, but
            // not in a tight loop; never after nextUpdate when avoidable.
            at.clamp(earliest, latest.max(earliest))
                .min(next.max(earliest))
        }
        _ => latest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refresh_policy_setter_sets_its_own_field() {
        let built = RefreshPolicy::default()
            .with_fraction(0.25)
            .with_min_interval_secs(1)
            .with_max_interval_secs(2)
            .with_retry_base_secs(3)
            .with_retry_max_secs(4);
        let expected = RefreshPolicy {
            fraction: 0.25,
            min_interval_secs: 1,
            max_interval_secs: 2,
            retry_base_secs: 3,
            retry_max_secs: 4,
        };
        assert_eq!(built, expected);
    }

    #[test]
    fn refreshes_halfway_with_bounds_and_backoff() {
        let p = RefreshPolicy::default();
        let fresh = SourceTiming {
            this_update: Some(1000),
            next_update: Some(1000 + 7200),
            last_success: Some(1000),
            last_attempt: Some(1000),
            failures: 0,
        };
        assert_eq!(next_refresh(&fresh, &p), 1000 + 3600);
        assert_eq!(next_refresh(&SourceTiming::default(), &p), i64::MIN);
        // A long window is capped by max_interval.
        let week = SourceTiming {
            next_update: Some(1000 + 7 * 86400),
            ..fresh
        };
        assert_eq!(next_refresh(&week, &p), 1000 + 6 * 3600);
        // Data fetched after its halfway point: not before min_interval.
        let late = SourceTiming {
            last_success: Some(5000),
            ..fresh
        };
        assert_eq!(next_refresh(&late, &p), 5060);
        // Failures back off exponentially, capped.
        let failing = SourceTiming {
            failures: 3,
            last_attempt: Some(9000),
            ..fresh
        };
        assert_eq!(next_refresh(&failing, &p), 9000 + 20);
        let many = SourceTiming {
            failures: 40,
            ..failing
        };
        assert_eq!(next_refresh(&many, &p), 9000 + 600);
    }

    #[test]
    fn a_max_interval_below_the_default_min_interval_is_honoured() {
        let p = RefreshPolicy::default().with_max_interval_secs(1);
        let t = SourceTiming {
            this_update: Some(1000),
            next_update: Some(1000 + 7200),
            last_success: Some(1000),
            last_attempt: Some(1000),
            failures: 0,
        };
        assert_eq!(next_refresh(&t, &p), 1001);
        let no_next = SourceTiming {
            next_update: None,
            ..t
        };
        assert_eq!(next_refresh(&no_next, &p), 1001);
    }
}
