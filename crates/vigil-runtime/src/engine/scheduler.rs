//! The refresh scheduler: runs due sources (bounded, with backoff on every
//! outcome) until aborted.

use super::*;

/// Ends one scheduled refresh, whatever way it ends (done, failed,
/// cancelled, panicked): the source is free to be scheduled again, and if
/// its timing did not move (a path that recorded nothing), it is counted as
/// a failure so that its next attempt backs off instead of being due again
/// at once.
pub(super) struct Refreshing {
    pub(super) engine: Engine,
    pub(super) key: String,
    pub(super) before: SourceTiming,
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        let now = unix(self.engine.now());
        let policy = self.engine.inner.config.refresh;
        let mut sources = self
            .engine
            .inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = sources.get_mut(&self.key) {
            t.refreshing = false;
            if t.timing == self.before {
                t.timing.failures = t.timing.failures.saturating_add(1);
                t.timing.last_attempt = Some(now);
                t.jitter_secs = retry_jitter(t, &policy);
            }
        }
    }
}

/// When the scheduler launches `t` next: its due time, but never twice in
/// the same second, and a source added by a refresh still under way (never
/// attempted) only after the first retry delay, so the scheduler does not
/// race the verification that added it.
pub(super) fn scheduled_at(t: &Tracked, policy: &RefreshPolicy) -> i64 {
    let at = t.due_at(policy);
    match t.timing.last_attempt {
        Some(last) => at.max(last.saturating_add(1)),
        None if t.timing.last_success.is_none() && t.timing.failures == 0 => {
            at.max(t.last_used.saturating_add(policy.retry_base_secs.max(1)))
        }
        None => at,
    }
}

/// A retry's jitter: up to a fifth of its backoff delay.
pub(super) fn retry_jitter(t: &Tracked, policy: &RefreshPolicy) -> i64 {
    let delay = next_refresh(&t.timing, policy)
        .saturating_sub(t.timing.last_attempt.unwrap_or(0))
        .max(0);
    let spread = u64::try_from(delay / 5).unwrap_or(0);
    if spread == 0 {
        0
    } else {
        i64::try_from(rand::random::<u64>() % (spread + 1)).unwrap_or(0)
    }
}

impl Engine {
    /// Runs the refresh scheduler: every source is refreshed at its refresh
    /// time (see [`vigil_core::schedule`]), at most
    /// [`EngineConfig::refresh_concurrency`] at once, so slow endpoints do
    /// not hold up the rest. Every outcome reschedules the source; failures
    /// back off exponentially, with jitter. A source added by a
    /// verification or a handshake wakes the scheduler at once.
    ///
    /// The task runs until [`JoinHandle::abort`](tokio::task::JoinHandle::abort)
    /// is called or the runtime shuts down; dropping the handle detaches
    /// the task, it does **not** stop it. Aborting also cancels the
    /// refreshes in flight, so it stops promptly whatever the endpoints do.
    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(engine.schedule())
    }

    /// The scheduler's loop. Each turn awaits something (a refresh
    /// finishing, the next due time, or a new source), and every source
    /// launched moves its due time forward when its refresh ends (see
    /// [`Refreshing`]), so no path loops without yielding.
    pub(super) async fn schedule(self) {
        let policy = self.inner.config.refresh;
        let limit = self.inner.config.refresh_concurrency.max(1);
        // Dropped with the task on abort: the refreshes in flight go too.
        let mut running = tokio::task::JoinSet::new();
        loop {
            // Armed before the sources are read: a source added after the
            // read still wakes this turn's wait.
            let woken = self.inner.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = unix(self.now());
            let mut next: Option<i64> = None;
            let mut launch = Vec::new();
            {
                let mut sources = self
                    .inner
                    .sources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (key, t) in sources.iter_mut() {
                    if t.refreshing {
                        continue;
                    }
                    let at = scheduled_at(t, &policy);
                    if at > now {
                        next = Some(next.map_or(at, |n| n.min(at)));
                    } else if running.len() + launch.len() < limit {
                        t.refreshing = true;
                        launch.push((key.clone(), t.clone()));
                    }
                    // Due but no slot free: a finishing refresh wakes us.
                }
            }
            for (key, t) in launch {
                let engine = self.clone();
                running.spawn(async move {
                    let _settle = Refreshing {
                        engine: engine.clone(),
                        key: key.clone(),
                        before: t.timing,
                    };
                    engine.refresh_tracked(&key, &t).await
                });
            }
            let wait_secs = next.map_or(60, |at| (at - now).clamp(0, 60));
            let jitter_ms = rand::random::<u64>() % 250;
            let sleep = tokio::time::sleep(Duration::from_millis(
                u64::try_from(wait_secs).unwrap_or(60) * 1000 + jitter_ms,
            ));
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = sleep => {}
                () = &mut woken => {}
            }
        }
    }
}
