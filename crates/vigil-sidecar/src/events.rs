//! `/v1/events`: Server-Sent Events (WHATWG HTML §9.2) with keep-alive
//! comments, event ids, and resumption from a bounded backlog.
//!
//! Every event gets an id `EPOCH-SEQ`: EPOCH is the sidecar's start time in
//! milliseconds, SEQ counts from 1. A subscriber that reconnects with
//! `Last-Event-ID` (header, or `?last_event_id=` for clients that cannot set
//! it) first receives every held event after that id. An id from an earlier
//! run of the sidecar (another EPOCH), or `0`, replays everything this run
//! holds, so teardowns found while restoring connections after a restart
//! reach a subscriber that reconnects. When events it asked for were already
//! dropped from the backlog (or it fell too far behind), it receives a
//! `reset` event first: it should then re-list `/v1/connections`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::error::ApiError;

/// One published event.
#[derive(Debug)]
pub(crate) struct Event {
    seq: u64,
    id: String,
    name: &'static str,
    data: String,
}

/// Event names, for metrics.
pub(crate) const EVENT_NAMES: [&str; 3] = ["teardown", "degraded", "lease_expired"];

/// The event hub: a ring of recent events and a live broadcast.
pub(crate) struct Hub {
    epoch: u64,
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<Event>>,
    subscribers: AtomicU64,
    max_subscribers: u64,
    published: [AtomicU64; EVENT_NAMES.len()],
    /// Fleet mode: every event is also published to the fleet.
    cluster: Option<vigil_cluster::Cluster>,
}

struct Ring {
    next_seq: u64,
    capacity: usize,
    events: VecDeque<Arc<Event>>,
}

/// Where a subscriber resumes.
enum Resume {
    /// Live events only.
    Now,
    /// Everything held.
    All,
    /// After this sequence number of this run.
    After(u64),
}

impl Hub {
    /// A hub holding the last `capacity` events, for at most
    /// `max_subscribers` subscribers at once.
    pub(crate) fn new(
        capacity: usize,
        max_subscribers: usize,
        cluster: Option<vigil_cluster::Cluster>,
    ) -> Self {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (live, _) = broadcast::channel(capacity.max(16));
        Self {
            epoch,
            ring: Mutex::new(Ring {
                next_seq: 1,
                capacity: capacity.max(16),
                events: VecDeque::new(),
            }),
            live,
            subscribers: AtomicU64::new(0),
            max_subscribers: u64::try_from(max_subscribers).unwrap_or(u64::MAX),
            published: Default::default(),
            cluster,
        }
    }

    /// Publishes `data` (JSON) as event `name` to every subscriber.
    pub(crate) fn publish(&self, name: &'static str, data: String) {
        if let Some(i) = EVENT_NAMES.iter().position(|n| *n == name) {
            self.published[i].fetch_add(1, Ordering::Relaxed);
        }
        // Fleet mode: every event names its node (here too), and goes to
        // the fleet.
        let data = match &self.cluster {
            Some(cluster) => {
                let data = vigil_cluster::with_node(&data, cluster.node());
                cluster.publish_event(name, data.clone());
                data
            }
            None => data,
        };
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        let event = Arc::new(Event {
            seq,
            id: format!("{}-{seq}", self.epoch),
            name,
            data,
        });
        if ring.events.len() == ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // Sent under the ring's lock, so that a subscriber's snapshot of the
        // ring and its live receiver neither overlap nor leave a gap.
        let _ = self.live.send(event);
    }

    /// Subscribers connected now.
    pub(crate) fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Events published since start, by name (see [`EVENT_NAMES`]).
    pub(crate) fn published(&self) -> [u64; EVENT_NAMES.len()] {
        std::array::from_fn(|i| self.published[i].load(Ordering::Relaxed))
    }

    /// The SSE response for a subscriber resuming after `last_event_id`.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        last_event_id: Option<&str>,
        shutdown: watch::Receiver<bool>,
        keep_alive: Duration,
    ) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
        let resume = self.parse_resume(last_event_id)?;
        // Taken before anything is built; given back by the stream's drop
        // (or here, when over the cap).
        self.take_subscriber()?;
        let (rx, replay, last_seq, gap) = {
            let ring = self.lock();
            let rx = self.live.subscribe();
            let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
            let (from, gap) = match resume {
                Resume::Now => (ring.next_seq, false),
                Resume::All => (oldest, oldest > 1),
                // An id this run has not sent yet (a client's bug, or a
                // forged one): nothing it holds can be trusted, so it is
                // told to start over, then gets live events.
                Resume::After(seq) if seq >= ring.next_seq => (ring.next_seq, true),
                Resume::After(seq) => (seq + 1, seq + 1 < oldest),
            };
            let replay: VecDeque<Arc<Event>> = ring
                .events
                .iter()
                .filter(|e| e.seq >= from)
                .cloned()
                .collect();
            (rx, replay, from.saturating_sub(1), gap)
        };
        let state = StreamState {
            hub: Arc::clone(self),
            reset: gap.then(|| {
                "events after your Last-Event-ID were dropped, or it is not one this \
                 sidecar sent"
                    .to_owned()
            }),
            replay,
            rx,
            last_seq,
            shutdown,
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            Some((Ok(event), state))
        });
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)))
    }

    /// The SSE response for a subscriber to the whole fleet's events
    /// (`?scope=fleet`): live only, each with `node`; no ids, as the
    /// fleet's events have no single sequence. Counts against the same
    /// subscriber cap.
    pub(crate) fn subscribe_fleet(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
        keep_alive: Duration,
    ) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
        let Some(cluster) = &self.cluster else {
            return Err(ApiError::bad_request(
                "invalid_request",
                "scope=fleet needs fleet mode (vigil serve --cluster)",
            ));
        };
        self.take_subscriber()?;
        let state = FleetStream {
            hub: Arc::clone(self),
            rx: cluster.subscribe(),
            shutdown,
            reset: false,
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            Some((Ok(event), state))
        });
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)))
    }

    /// Takes a subscriber slot (given back when the stream is dropped).
    fn take_subscriber(&self) -> Result<(), ApiError> {
        if self.subscribers.fetch_add(1, Ordering::AcqRel) >= self.max_subscribers {
            self.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_subscribers",
                format!("at most {} event subscribers at once", self.max_subscribers),
            ));
        }
        Ok(())
    }

    fn parse_resume(&self, last: Option<&str>) -> Result<Resume, ApiError> {
        let Some(last) = last
            .map(|s| s.trim_matches([' ', '\t']))
            .filter(|s| !s.is_empty())
        else {
            return Ok(Resume::Now);
        };
        if last == "0" {
            return Ok(Resume::All);
        }
        // Digits only; a number past u64 is an id this run never sent
        // (saturated, so it resumes as "unknown future id").
        let number = |t: &str| {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u64>().unwrap_or(u64::MAX))
        };
        let parsed = last
            .split_once('-')
            .and_then(|(e, s)| Some((number(e)?, number(s)?)));
        match parsed {
            Some((epoch, seq)) if epoch == self.epoch => Ok(Resume::After(seq)),
            Some(_) => Ok(Resume::All),
            None => Err(ApiError::bad_request(
                "invalid_request",
                "Last-Event-ID must be an event id sent by this sidecar (EPOCH-SEQ) or 0",
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held events after `seq`, and whether some were already dropped.
    fn since(&self, seq: u64) -> (VecDeque<Arc<Event>>, bool) {
        let ring = self.lock();
        let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
        let events = ring
            .events
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect();
        (events, seq.saturating_add(1) < oldest)
    }
}

struct StreamState {
    hub: Arc<Hub>,
    reset: Option<String>,
    replay: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    last_seq: u64,
    shutdown: watch::Receiver<bool>,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StreamState {
    /// The next event to send; `None` ends the stream (shutdown).
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if let Some(detail) = self.reset.take() {
                let data = serde_json::json!({ "detail": detail }).to_string();
                return Some(SseEvent::default().event("reset").data(data));
            }
            if let Some(event) = self.replay.pop_front() {
                if event.seq <= self.last_seq {
                    continue;
                }
                self.last_seq = event.seq;
                return Some(
                    SseEvent::default()
                        .id(event.id.as_str())
                        .event(event.name)
                        .data(event.data.as_str()),
                );
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(event) => self.replay.push_back(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live channel: catch up from the
                        // ring, which holds as many events.
                        let (events, gap) = self.hub.since(self.last_seq);
                        self.replay = events;
                        if gap {
                            self.reset = Some("this subscriber fell behind; events were dropped".into());
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

struct FleetStream {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<vigil_cluster::FleetEvent>,
    shutdown: watch::Receiver<bool>,
    reset: bool,
}

impl Drop for FleetStream {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl FleetStream {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if std::mem::take(&mut self.reset) {
                let data = serde_json::json!({
                    "detail": "this subscriber fell behind; fleet events were dropped"
                });
                return Some(SseEvent::default().event("reset").data(data.to_string()));
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(event) => return Some(SseEvent::default().event(event.name).data(event.data)),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.reset = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::response::IntoResponse;
    use futures_util::StreamExt;

    /// The first SSE frame of `hub`'s stream for `last`, as text.
    async fn first_frame(hub: &Arc<Hub>, last: &str) -> String {
        let (_stop, shutdown) = watch::channel(false);
        let sse = hub
            .subscribe(Some(last), shutdown, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{}", e.detail));
        let mut body = sse.into_response().into_body().into_data_stream();
        let frame = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&frame).into_owned()
    }

    #[tokio::test]
    async fn last_event_id_past_anything_sent_or_past_u64_is_a_reset_not_a_panic() {
        let hub = Arc::new(Hub::new(16, 8, None));
        hub.publish("teardown", "{}".into());
        for last in [
            format!("{}-{}", hub.epoch, u64::MAX),
            format!("{}-{}", hub.epoch, u64::MAX - 1),
            format!("{}-99999999999999999999999999", hub.epoch),
            format!("{}-2", hub.epoch),
        ] {
            let frame = first_frame(&hub, &last).await;
            assert!(frame.contains("event: reset"), "{last}: {frame}");
        }
        // Another run's id (an epoch past u64 included) replays what is held.
        for last in ["99999999999999999999999-1".to_owned(), "1-1".to_owned()] {
            let frame = first_frame(&hub, &last).await;
            assert!(frame.contains("event: teardown"), "{last}: {frame}");
        }
        for bad in ["x-1", "1-", "-1", "1-+2", "1-2-3"] {
            let (_stop, shutdown) = watch::channel(false);
            let refused = hub.subscribe(Some(bad), shutdown, Duration::from_secs(1));
            assert!(refused.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn subscribers_beyond_the_cap_get_429_and_a_slot_frees_on_drop() {
        let hub = Arc::new(Hub::new(16, 2, None));
        let (_stop, shutdown) = watch::channel(false);
        let one = hub.subscribe(None, shutdown.clone(), Duration::from_secs(60));
        let two = hub.subscribe(None, shutdown.clone(), Duration::from_secs(60));
        assert!(one.is_ok() && two.is_ok());
        let three = hub.subscribe(None, shutdown.clone(), Duration::from_secs(60));
        assert_eq!(
            three.err().map(|e| (e.status.as_u16(), e.code)),
            Some((429, "too_many_subscribers"))
        );
        drop(one);
        assert_eq!(hub.subscribers(), 1);
        assert!(hub
            .subscribe(None, shutdown, Duration::from_secs(60))
            .is_ok());
    }
}
