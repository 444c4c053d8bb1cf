//! The responder's notion of "now", which tests and the drill can move.

use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

use crate::ca::normalize_time;

/// The time the responder stamps on CRLs, OCSP answers and revocations.
///
/// Cloning gives another handle on the same clock: keep one to move the time of a
/// running [`super::Responder`]. Times are UTC whole seconds, like everything encoded.
///
/// ```
/// use pki_fixtures::responder::Clock;
/// let t = time::macros::datetime!(2030-01-01 00:00:00 UTC);
/// let clock = Clock::fixed(t);
/// clock.advance(time::Duration::hours(2));
/// assert_eq!(clock.now(), t + time::Duration::hours(2));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<Mutex<Option<OffsetDateTime>>>);

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock stopped at `at` until [`Clock::set`], [`Clock::advance`] or
    /// [`Clock::use_system`].
    pub fn fixed(at: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(Some(normalize_time(at)))))
    }

    /// The current time, UTC, whole seconds.
    pub fn now(&self) -> OffsetDateTime {
        let fixed = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        fixed.unwrap_or_else(|| normalize_time(OffsetDateTime::now_utc()))
    }

    /// Stops the clock at `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(normalize_time(at));
    }

    /// Moves the clock by `by` (negative: backwards) and stops it there. A system clock
    /// becomes a stopped one at the system time plus `by`.
    pub fn advance(&self, by: Duration) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = guard.unwrap_or_else(|| normalize_time(OffsetDateTime::now_utc()));
        *guard = Some(normalize_time(now + by));
    }

    /// Follows the system clock again.
    pub fn use_system(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
