//! Fleet events: what each node announces, published on
//! `<fleet>.events.<node>` (core NATS: live, not stored), and received
//! from every node of the fleet.
//!
//! Received events are not trusted either: bounded in size, the event name
//! one of the contract's, the body a JSON object; `node` is set from the
//! subject it came on.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::{ClusterConfig, Shared};

/// Events queued for publication at most (then dropped and counted).
pub(crate) const QUEUE: usize = 4096;
/// Fleet events held for slow local subscribers.
pub(crate) const FLEET_CAPACITY: usize = 4096;
/// Largest event accepted from the bus.
const MAX_EVENT: usize = 64 * 1024;
/// The header that names the event.
const HEADER: &str = "Vigil-Event";
/// Names an event may have.
const NAMES: [&str; 3] = ["teardown", "degraded", "lease_expired"];
/// How long one publication may wait for the client's buffer.
const PUBLISH_WAIT: Duration = Duration::from_millis(500);

/// One event of the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEvent {
    /// The node that announced it.
    pub node: String,
    /// `teardown`, `degraded` or `lease_expired`.
    pub name: &'static str,
    /// The event JSON, with `node`.
    pub data: String,
}

/// `data` (a JSON object) with `node` added (last, as the contract's
/// events list it).
pub fn with_node(data: &str, node: &str) -> String {
    let node_json = Value::String(node.to_owned()).to_string();
    // The sidecar's events are serialized objects without `node`: the
    // member is appended, nothing is parsed on the teardown path.
    match data.strip_suffix('}') {
        Some(head) if head.starts_with('{') && head.len() > 1 && !data.contains("\"node\":") => {
            format!("{head},\"node\":{node_json}}}")
        }
        _ => match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(mut map)) => {
                map.insert("node".into(), Value::String(node.to_owned()));
                Value::Object(map).to_string()
            }
            _ => data.to_owned(),
        },
    }
}

/// Publishes queued events until the queue closes.
pub(crate) async fn publish(
    client: async_nats::Client,
    fleet: String,
    node: String,
    mut queue: mpsc::Receiver<(&'static str, String)>,
    shared: Arc<Shared>,
) {
    let subject = format!("{fleet}.events.{node}");
    while let Some((name, data)) = queue.recv().await {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER, name);
        let sent = tokio::time::timeout(
            PUBLISH_WAIT,
            client.publish_with_headers(subject.clone(), headers, data.into()),
        )
        .await;
        let counter = match sent {
            Ok(Ok(())) => &shared.events_published,
            _ => &shared.events_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forwards the fleet's events to `out` (the client resubscribes after a
/// reconnection by itself).
pub(crate) async fn forward(
    client: async_nats::Client,
    fleet: String,
    out: broadcast::Sender<FleetEvent>,
    shared: Arc<Shared>,
) {
    let mut delay = crate::BACKOFF_MIN;
    let mut subscriber = loop {
        match client.subscribe(format!("{fleet}.events.>")).await {
            Ok(s) => break s,
            Err(e) => {
                shared.error(format!("subscribing to fleet events: {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(crate::BACKOFF_MAX);
            }
        }
    };
    while let Some(message) = subscriber.next().await {
        if let Some(event) = accept(&message) {
            let _ = out.send(event);
        }
    }
}

/// The event in `message`, if it is one.
fn accept(message: &async_nats::Message) -> Option<FleetEvent> {
    if message.payload.len() > MAX_EVENT {
        return None;
    }
    let node = message.subject.as_str().rsplit('.').next()?.to_owned();
    let header = message.headers.as_ref()?.get(HEADER)?.as_str();
    let name = *NAMES.iter().find(|n| **n == header)?;
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&message.payload) else {
        return None;
    };
    map.insert("node".into(), Value::String(node.clone()));
    Some(FleetEvent {
        node,
        name,
        data: Value::Object(map).to_string(),
    })
}

/// The fleet's events for a client that is not a node (`vigil watch`).
pub struct EventWatch {
    subscriber: async_nats::Subscriber,
    _client: async_nats::Client,
}

impl EventWatch {
    /// Connects and subscribes to the fleet's events.
    pub async fn connect(config: &ClusterConfig) -> Result<Self, String> {
        config.validate()?;
        let client = crate::connect(config, None).await?;
        let subscriber = client
            .subscribe(format!("{}.events.>", config.fleet))
            .await
            .map_err(|e| format!("subscribing to fleet events: {e}"))?;
        // The subscription is registered with the server before returning.
        client
            .flush()
            .await
            .map_err(|e| format!("subscribing to fleet events: {e}"))?;
        Ok(Self {
            subscriber,
            _client: client,
        })
    }

    /// The next event; none when the connection is closed for good.
    pub async fn next(&mut self) -> Option<FleetEvent> {
        while let Some(message) = self.subscriber.next().await {
            if let Some(event) = accept(&message) {
                return Some(event);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_added_last_to_an_event() {
        let event = r#"{"connection_id":"1","labels":{"a":"}"}}"#;
        let out = with_node(event, "n-1");
        assert_eq!(
            out,
            r#"{"connection_id":"1","labels":{"a":"}"},"node":"n-1"}"#
        );
        let parsed: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(parsed["node"], "n-1");
        // An empty object, or one that names a node already, is rewritten.
        assert_eq!(with_node("{}", "n"), r#"{"node":"n"}"#);
        assert_eq!(with_node(r#"{"node":"x"}"#, "n"), r#"{"node":"n"}"#);
    }
}
