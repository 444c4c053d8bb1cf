//! The drill against a running `vigil serve`: connections are registered
//! through `POST /v1/connections`, revocations published at the drill's
//! fixture responder, and teardowns observed on `GET /v1/events` (Server-
//! Sent Events), as any caller of the sidecar would see them.
//!
//! The sidecar must trust the drill's fixture root: the drill writes it to
//! `--anchor-out` and waits until the sidecar accepts a chain under it, so
//! the two can be started together:
//!
//! ```text
//! vigil drill --sidecar http://127.0.0.1:8787 --anchor-out /tmp/drill.pem &
//! vigil serve --anchor /tmp/drill.pem
//! ```
//!
//! Several URLs drill a fleet: every connection is registered on every
//! node, the revocation (its refresh) or the deny goes through the first
//! node only, and each node's teardowns are reported on a row of its own,
//! with a `fleet` row whose latency is each connection's last close across
//! the nodes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use pki_fixtures::responder::{start_with_fresh_pki, Responder, ResponderOptions};
use pki_fixtures::{Ca, Cert, CertSpec, Pki, PkiOptions, Reason};
use rand::seq::index::sample;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::progress::Progress;
use super::report::{Latency, Report, ScenarioReport};
use super::{DrillArgs, Scenario};

/// A teardown seen on a node's event stream: node, connection id, when.
type Seen = (usize, String, Instant);

/// A node of the drilled fleet.
struct Node {
    api: Api,
    /// Its name in the report (none when only one node is drilled).
    name: Option<String>,
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.trim_end_matches('/'))
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let response = self
            .auth(json_body(self.http.post(self.url(path)), body))
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn delete(&self, path: &str) {
        let _ = self.auth(self.http.delete(self.url(path))).send().await;
    }
}

fn json_body(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Runs the scenarios against the sidecars at `urls` (one, or a fleet).
/// `prepared`: the fixture PKI and responder when the caller made them
/// (`--fleet` starts its nodes on their anchor); otherwise they are made
/// here and the anchor written to `--anchor-out`.
pub(crate) async fn run(
    args: &DrillArgs,
    urls: &[String],
    prepared: Option<(Responder, Pki)>,
    seed: u64,
    list: &[Scenario],
    progress: &Progress,
    report: &mut Report,
) -> Result<(), String> {
    if urls.is_empty() {
        return Err("--sidecar: no URL".into());
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("VIGIL_API_TOKEN").ok());
    let (responder, pki) = match prepared {
        Some(p) => p,
        None => {
            let (responder, pki) =
                start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
                    .await
                    .map_err(|e| format!("fixture responder: {e}"))?;
            std::fs::write(&args.anchor_out, &pki.root.cert.pem)
                .map_err(|e| format!("cannot write {}: {e}", args.anchor_out.display()))?;
            progress.line(&format!(
                "wrote the drill's trust anchor to {}; the sidecar must trust it (vigil serve --anchor {})",
                args.anchor_out.display(),
                args.anchor_out.display()
            ));
            (responder, pki)
        }
    };
    let mut nodes = Vec::with_capacity(urls.len());
    for url in urls {
        let api = Api {
            http: http.clone(),
            base: url.clone(),
            token: token.clone(),
        };
        wait_for_trust(&api, &pki, args.wait_sidecar, progress).await?;
        let name = if urls.len() > 1 {
            Some(node_name(&api).await.unwrap_or_else(|| url.clone()))
        } else {
            None
        };
        nodes.push(Node { api, name });
    }
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let events: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(j, node)| {
            tokio::spawn(watch_events(
                node.api.http.clone(),
                node.api.url("/v1/events"),
                node.api.token.clone(),
                j,
                seen_tx.clone(),
            ))
        })
        .collect();
    // Give the subscriptions a moment to be established.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, scenario) in list.iter().enumerate() {
        if let Scenario::ResponderDown { .. } = scenario {
            progress.line(
                "responder-down is drilled in process only: its timing depends on the sidecar's \
                 clock-skew tolerance, which the drill does not control",
            );
            continue;
        }
        let results = scenario_run(
            &nodes,
            &responder,
            &pki,
            args,
            *scenario,
            seed.wrapping_add(i as u64),
            &mut seen_rx,
            progress,
        )
        .await?;
        for result in results {
            report.push(result);
        }
    }
    for task in events {
        task.abort();
    }
    responder.shutdown().await;
    Ok(())
}

/// The node id a fleet-mode sidecar reports on `/readyz`.
async fn node_name(api: &Api) -> Option<String> {
    let response = api
        .auth(api.http.get(api.url("/readyz")))
        .send()
        .await
        .ok()?;
    let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    body["cluster"]["node"].as_str().map(str::to_owned)
}

async fn wait_for_trust(
    api: &Api,
    pki: &Pki,
    wait_secs: u64,
    progress: &Progress,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let body = json!({
        "chain": [pki.client.pem, pki.intermediate.cert.pem],
        "usage": "client",
    });
    let mut last = String::new();
    while Instant::now() < deadline {
        match api.post("/v1/verify", &body).await {
            Ok((200, verdict)) if verdict["verdict"] == "accepted" => {
                progress.line("the sidecar trusts the drill's anchor");
                return Ok(());
            }
            Ok((status, body)) => last = format!("HTTP {status}: {body}"),
            Err(e) => last = e,
        }
        progress.update(&format!("waiting for the sidecar at {} ({last})", api.base));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "the sidecar did not accept a chain under the drill's anchor within {wait_secs} s: {last}"
    ))
}

/// Follows the event stream, forwarding every `teardown` event's
/// connection id with the instant it arrived.
async fn watch_events(
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    node: usize,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let mut request = http.get(&url).timeout(Duration::from_secs(24 * 3600));
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    let Ok(response) = request.send().await else {
        return;
    };
    read_sse(response, |event, data, arrived| {
        if event != "teardown" {
            return;
        }
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            let id = match &v["connection_id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = seen.send((node, id, arrived));
        }
    })
    .await;
}

/// Reads a Server-Sent Events stream to its end, handing each event's name,
/// data and arrival time to `on_event`.
pub(super) async fn read_sse(
    mut response: reqwest::Response,
    mut on_event: impl FnMut(&str, &str, Instant),
) {
    let mut buffer = String::new();
    let mut event = String::new();
    let mut data = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !event.is_empty() {
                    on_event(&event, &data, arrived);
                }
                event.clear();
                data.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn scenario_run(
    nodes: &[Node],
    responder: &Responder,
    pki: &Pki,
    args: &DrillArgs,
    scenario: Scenario,
    seed: u64,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    progress: &Progress,
) -> Result<Vec<ScenarioReport>, String> {
    let n = args.connections;
    let label = scenario.name();
    let k = (((n as f64) * args.revoke_fraction).round().max(1.0) as usize).min(n);
    let mut rng = StdRng::seed_from_u64(seed);
    let doomed: HashSet<usize> = match scenario {
        Scenario::RevokeIntermediate => (0..k).collect(),
        _ => sample(&mut rng, n, k).into_iter().collect(),
    };
    let opts = pki.options.clone();
    let now = time::OffsetDateTime::now_utc();
    // A fresh intermediate per scenario: revoking it disturbs no later run.
    let tag = format!("{label}-{seed:x}");
    let ca: Ca = pki
        .root
        .issue_ca(&CertSpec::ca(
            &format!("drill-{tag}"),
            &format!("Vigil Drill {tag}"),
            &opts,
        ))
        .map_err(|e| e.to_string())?;
    responder.add_ca(&ca, None).map_err(|e| e.to_string())?;
    responder.register(&ca.cert).map_err(|e| e.to_string())?;
    let lifetime = Duration::from_secs(8) + Duration::from_millis(10) * (n * nodes.len()) as u32;
    let expires = now + lifetime;
    let mut leaves: Vec<(Cert, Cert)> = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("drill-{tag}-{i}");
        let mut spec = CertSpec::leaf(&name, &name, &opts);
        if scenario == Scenario::Expire && doomed.contains(&i) {
            spec = spec.with_validity(now - time::Duration::hours(1), expires);
        }
        let issuer = if scenario == Scenario::RevokeIntermediate && !doomed.contains(&i) {
            &pki.intermediate
        } else {
            &ca
        };
        let leaf = issuer.issue_leaf(&spec).map_err(|e| e.to_string())?;
        responder.register(&leaf).map_err(|e| e.to_string())?;
        leaves.push((leaf, issuer.cert.clone()));
    }
    // Every connection on every node: index `node * n + i`.
    let mut ids: HashMap<(usize, String), usize> = HashMap::new();
    for (j, node) in nodes.iter().enumerate() {
        let on = node
            .name
            .as_deref()
            .map(|m| format!(" on {m}"))
            .unwrap_or_default();
        progress.line(&format!("{label}: registering {n} connections{on}"));
        for (i, (leaf, issuer)) in leaves.iter().enumerate() {
            let body = json!({
                "chain": [leaf.pem, issuer.pem],
                "usage": "client",
                "labels": {"drill": label, "index": i.to_string()},
            });
            let (status, reply) = node.api.post("/v1/connections", &body).await?;
            let id = match (&reply["id"], status) {
                (Value::String(s), 200 | 201) => s.clone(),
                (Value::Number(n), 200 | 201) => n.to_string(),
                _ => {
                    return Err(format!(
                        "registering connection {i}{on} failed: HTTP {status}: {reply}"
                    ))
                }
            };
            ids.insert((j, id), j * n + i);
            if i % 50 == 0 {
                progress.update(&format!("{label}: {i}/{n} registered{on}"));
            }
        }
    }
    let doomed_all: HashSet<usize> = (0..nodes.len())
        .flat_map(|j| doomed.iter().map(move |i| j * n + i))
        .collect();
    // Anything torn down before the action is collateral.
    let mut closed: HashMap<usize, Instant> = HashMap::new();
    while let Ok((j, id, at)) = seen.try_recv() {
        if let Some(i) = ids.get(&(j, id)) {
            closed.insert(*i, at);
        }
    }
    let first = &nodes[0].api;
    let refresh = if args.refresh_interval.is_some() {
        "scheduled"
    } else {
        "triggered"
    };
    // Only the first node is asked to refresh: the others learn what it
    // fetched from the fleet (or, not in a fleet, on their own schedule).
    let trigger = || {
        let request = first.auth(json_body(
            first.http.post(first.url("/v1/revocation/refresh")),
            &json!({}),
        ));
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    };
    let denied: Vec<String> = doomed
        .iter()
        .map(|i| vigil_core::text::hex(&vigil_core::sha256(&leaves[*i].0.der)))
        .collect();
    let (t0, refresh) = match scenario {
        Scenario::RevokeLeaf => {
            let certs: Vec<&Cert> = doomed.iter().map(|i| &leaves[*i].0).collect();
            responder
                .revoke_many(&certs, Reason::KeyCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger();
            }
            (t0, refresh)
        }
        Scenario::RevokeIntermediate => {
            responder
                .revoke(&ca.cert, Reason::CaCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger();
            }
            (t0, refresh)
        }
        Scenario::Deny => {
            progress.line(&format!("{label}: denying {} leaves", denied.len()));
            let t0 = Instant::now();
            let sends: Vec<_> = denied
                .iter()
                .map(|digest| {
                    let request = first.auth(json_body(
                        first.http.post(first.url("/v1/deny")),
                        &json!({"cert_sha256": digest, "reason": "revocation drill"}),
                    ));
                    tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
                })
                .collect();
            for send in sends {
                match send.await {
                    Ok(Ok(201 | 200)) => {}
                    Ok(Ok(status)) => return Err(format!("POST /v1/deny: HTTP {status}")),
                    Ok(Err(e)) => return Err(format!("POST /v1/deny: {e}")),
                    Err(e) => return Err(format!("POST /v1/deny: {e}")),
                }
            }
            (t0, "deny")
        }
        // RFC 5280 §4.1.2.5: expired from notAfter + 1 s (whole seconds).
        _ => {
            // The notAfter as encoded (whole seconds), not as requested.
            let not_after = doomed
                .iter()
                .map(|i| std::time::SystemTime::from(leaves[*i].0.not_after))
                .max()
                .unwrap_or_else(|| std::time::SystemTime::from(expires));
            let lapse = not_after + Duration::from_secs(1);
            let ahead = lapse
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            (Instant::now() + ahead, "deadline")
        }
    };
    let wait = Duration::from_secs(args.wait_secs + args.refresh_interval.unwrap_or(0));
    let give_up = t0.max(Instant::now()) + wait;
    super::await_closes(
        seen,
        |(j, id, at)| ids.get(&(j, id)).map(|i| (*i, at)),
        &doomed_all,
        &mut closed,
        give_up,
        progress,
        label,
    )
    .await;
    // Leave the sidecars as found.
    for ((j, id), i) in &ids {
        if !closed.contains_key(i) {
            nodes[*j].api.delete(&format!("/v1/connections/{id}")).await;
        }
    }
    if scenario == Scenario::Deny {
        for digest in &denied {
            let request = first.auth(json_body(
                first.http.delete(first.url("/v1/deny")),
                &json!({"cert_sha256": digest}),
            ));
            let _ = request.send().await;
        }
    }
    let row = |node: Option<String>, closes: Vec<Option<Instant>>, collateral: usize| {
        let latencies: Vec<f64> = closes
            .iter()
            .flatten()
            .map(|at| at.saturating_duration_since(t0).as_secs_f64() * 1000.0)
            .collect();
        let torn_down = latencies.len();
        ScenarioReport {
            name: scenario.name(),
            node,
            source: "both",
            policy: None,
            refresh,
            connections: n,
            revoked: doomed.len(),
            torn_down,
            collateral,
            survivors: doomed.len() - torn_down,
            degraded: 0,
            teardown_ms: Latency::of(latencies),
            passed: false,
            detail: (doomed.len() > torn_down).then(|| {
                format!(
                    "{} registration(s) got no teardown event within {} s",
                    doomed.len() - torn_down,
                    wait.as_secs()
                )
            }),
        }
    };
    let collateral_on = |j: usize| {
        closed
            .keys()
            .filter(|x| **x / n == j && !doomed.contains(&(**x % n)))
            .count()
    };
    let mut rows: Vec<ScenarioReport> = nodes
        .iter()
        .enumerate()
        .map(|(j, node)| {
            let closes = doomed
                .iter()
                .map(|i| closed.get(&(j * n + i)).copied())
                .collect();
            row(node.name.clone(), closes, collateral_on(j))
        })
        .collect();
    if nodes.len() > 1 {
        // Fleet-wide: a connection is gone when every node closed it; its
        // latency is the last of those closes.
        let closes = doomed
            .iter()
            .map(|i| {
                (0..nodes.len())
                    .map(|j| closed.get(&(j * n + i)).copied())
                    .collect::<Option<Vec<Instant>>>()
                    .and_then(|all| all.into_iter().max())
            })
            .collect();
        let collateral = (0..nodes.len()).map(collateral_on).sum();
        rows.push(row(Some("fleet".into()), closes, collateral));
    }
    Ok(rows)
}
