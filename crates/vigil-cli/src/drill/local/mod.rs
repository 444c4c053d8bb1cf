//! The self-contained drill: a fixture PKI and CRL/OCSP responder, an mTLS
//! echo server on vigil-rustls with a connection tracker, and N clients
//! exchanging data over real TLS on 127.0.0.1. Each scenario gets a fresh
//! set, so scenarios cannot disturb one another.
//!
//! `scenario` builds the fixture and acts; `server` and `client` are the two
//! TLS ends; `worker` runs the clients in a second process when both ends
//! would not fit one process's open-file limit; this module orchestrates.

mod client;
mod proxy;
mod scenario;
mod server;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::Cert;
use rustls::pki_types::PrivatePkcs8KeyDer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use vigil_core::{Methods, RevocationPolicy, VerifierConfig};
use vigil_runtime::{
    ConnectionEvent, Engine, EngineConfig, FetchConfig, MemoryStore, Store, SystemClock,
};

use super::progress::Progress;
use super::report::{Latency, ScenarioReport};
use super::{DrillArgs, Scenario, SourceArg};
use client::{spawn_clients, ClientSpec, Closed};
use proxy::ProxyFront;
use scenario::{act, lapse_per_connection, next_updates, prepare, Lever};
use server::start_server;
use worker::{needs_worker, spawn_worker, WorkerProcess};
pub(crate) use worker::{raise_fd_limit, run_worker};

/// Runs one scenario end to end.
pub(crate) async fn run(
    args: &DrillArgs,
    scenario: Scenario,
    seed: u64,
    progress: &Progress,
) -> Result<ScenarioReport, String> {
    let n = args.connections;
    let policy = match scenario {
        Scenario::ResponderDown { require: false } => RevocationPolicy::Prefer,
        _ => RevocationPolicy::Require,
    };
    let label = match scenario {
        Scenario::ResponderDown { require } => {
            format!(
                "{} ({})",
                scenario.name(),
                if require { "require" } else { "prefer" }
            )
        }
        _ => scenario.name().to_owned(),
    };
    progress.line(&format!("{label}: generating {n} client certificates"));
    let setup = prepare(args, scenario, seed).await?;
    let deadline_driven = matches!(scenario, Scenario::Expire | Scenario::ResponderDown { .. });
    // Data lapses at nextUpdate: no skew tolerance in the responder-down
    // scenario, so that "stale" starts at a known instant.
    let skew = if deadline_driven { 0 } else { 300 };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        vec![setup.pki.root.cert.certificate_der()],
        store,
        EngineConfig::default()
            .with_fetch(
                FetchConfig::default()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_total_timeout(Duration::from_secs(5))
                    .with_retries(0)
                    .with_use_env_proxy(false),
            )
            .with_verifier(
                VerifierConfig::default()
                    .with_methods(methods(args.source))
                    .with_clock_skew_secs(skew),
            ),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("engine: {e}"))?;
    let mut front = if args.proxy {
        Front::Proxy(Box::new(ProxyFront::start(&setup.pki, policy, skew).await?))
    } else {
        Front::Local(start_server(&setup.pki, &engine, policy, args.broken_server).await?)
    };
    let server_addr = match &front {
        Front::Local(server) => server.addr,
        Front::Proxy(proxy) => proxy.addr,
    };
    let expiry = match &front {
        Front::Local(server) => Some(server.tracker.spawn_expiry(Duration::from_millis(250))),
        Front::Proxy(_) => None,
    };
    let scheduled = args.refresh_interval.map(|secs| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(secs));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                engine.refresh_all().await;
            }
        })
    });
    let mut events = match &front {
        Front::Local(server) => Some(server.tracker.subscribe()),
        Front::Proxy(_) => None,
    };

    // Connect everyone, 64 handshakes at a time: in this process, or in a
    // worker process when both ends would not fit the open-file limit.
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<Closed>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let period = Duration::from_millis(200).max(Duration::from_micros(100) * n as u32);
    let specs: Vec<ClientSpec> = setup
        .leaves
        .iter()
        .map(|(leaf, issuer)| ClientSpec {
            chain: vec![leaf.der.clone(), issuer.der.clone()],
            key: leaf.key_pkcs8_der.clone(),
        })
        .collect();
    let root = setup.pki.root.cert.der.clone();
    let mut clients = if needs_worker(n) {
        progress.line(&format!(
            "{label}: clients run in a worker process (open-file limit)"
        ));
        Clients::Worker(Box::new(spawn_worker(
            &specs,
            &root,
            server_addr,
            period,
            ready_tx.clone(),
            closed_tx.clone(),
        )?))
    } else {
        Clients::Tasks(spawn_clients(
            specs,
            root,
            server_addr,
            period,
            ready_tx.clone(),
            closed_tx.clone(),
        )?)
    };
    drop(ready_tx);
    let mut up = 0;
    let mut failed = Vec::new();
    // One answer per client (the senders live on in the clients' tasks).
    for _ in 0..n {
        let Some(result) = ready_rx.recv().await else {
            break;
        };
        match result {
            Ok(()) => up += 1,
            Err(e) => failed.push(e),
        }
        if up % 50 == 0 || up == n {
            progress.update(&format!("{label}: {up}/{n} connections up"));
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} of {n} connections could not be established (first: {})",
            failed.len(),
            failed[0]
        ));
    }
    let tracked = match &front {
        Front::Local(server) => server.tracker.registry().len() as u64,
        Front::Proxy(proxy) => proxy.admin.tracked().await?,
    };
    progress.line(&format!("{label}: {n} connections up, {tracked} tracked"));
    // Anything closed before the action is collateral already.
    let mut closed: HashMap<usize, Instant> = HashMap::new();
    while let Ok((i, at)) = closed_rx.try_recv() {
        closed.insert(i, at);
    }

    // Act.
    let lever = match &front {
        Front::Local(_) => Lever::Engine(&engine),
        Front::Proxy(proxy) => Lever::Admin(&proxy.admin),
    };
    let (t0, refresh) = act(&setup, scenario, &lever, args, progress, &label).await?;
    // Responder down: each connection's data lapses at its own time (OCSP
    // answers were fetched at different moments), measured from there.
    let lapses = match scenario {
        Scenario::ResponderDown { .. } => {
            lapse_per_connection(&setup, &next_updates(&lever).await?, args.source)
        }
        _ => Vec::new(),
    };
    let expected = setup.doomed.len();
    let doomed: std::collections::HashSet<usize> = setup.doomed.iter().copied().collect();
    let wait = if expected == 0 {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(args.wait_secs + args.refresh_interval.unwrap_or(0))
    };
    let give_up = t0.max(Instant::now()) + wait;
    super::await_closes(
        &mut closed_rx,
        Some,
        &doomed,
        &mut closed,
        give_up,
        progress,
        &label,
    )
    .await;
    let mut degraded = std::collections::HashSet::new();
    while let Some(Ok(event)) = events.as_mut().map(|e| e.try_recv()) {
        if let ConnectionEvent::Degraded(notice) = event {
            degraded.insert(notice.connection_id);
        }
    }
    let degraded = match &front {
        Front::Local(_) => degraded.len(),
        Front::Proxy(proxy) => proxy.degraded(),
    };
    let latencies: Vec<f64> = setup
        .doomed
        .iter()
        .filter_map(|i| closed.get(i).map(|at| (i, at)))
        .map(|(i, at)| {
            let from = lapses.get(*i).copied().flatten().unwrap_or(t0);
            at.saturating_duration_since(from).as_secs_f64() * 1000.0
        })
        .collect();
    let mut torn_down = latencies.len();
    let collateral = closed.keys().filter(|i| !doomed.contains(i)).count();
    // Through the proxy, the backend leg of each closed connection must be
    // closed too: one still open is a connection that survived.
    let mut backend_open = 0;
    if let Front::Proxy(proxy) = &front {
        let expected_legs = torn_down + collateral;
        let until = Instant::now() + Duration::from_secs(2);
        let mut legs = proxy
            .backend_closed
            .load(std::sync::atomic::Ordering::Relaxed);
        while legs < expected_legs && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
            legs = proxy
                .backend_closed
                .load(std::sync::atomic::Ordering::Relaxed);
        }
        backend_open = expected_legs.saturating_sub(legs);
        torn_down = torn_down.saturating_sub(backend_open);
    }

    // Tear the set down.
    if let Some(task) = scheduled {
        task.abort();
    }
    if let Some(expiry) = expiry {
        expiry.abort();
    }
    clients.stop();
    match &mut front {
        Front::Local(server) => server.tasks.abort_all(),
        Front::Proxy(proxy) => proxy.stop(),
    }
    setup.responder.shutdown().await;

    let detail = (expected > torn_down).then(|| {
        let legs = if backend_open > 0 {
            format!(" ({backend_open} with only the backend leg open)")
        } else {
            String::new()
        };
        format!(
            "{} connection(s) still open{legs} {} s after the {}",
            expected - torn_down,
            wait.as_secs(),
            if deadline_driven {
                "deadline"
            } else {
                "publication"
            }
        )
    });
    Ok(ScenarioReport {
        name: scenario.name(),
        node: None,
        source: args.source.as_str(),
        policy: match scenario {
            Scenario::ResponderDown { require } => Some(if require { "require" } else { "prefer" }),
            _ => None,
        },
        refresh,
        connections: n,
        revoked: expected,
        torn_down,
        collateral,
        survivors: expected - torn_down,
        degraded,
        teardown_ms: Latency::of(latencies),
        passed: false,
        detail,
    })
}

/// What the clients connect to: the in-process server, or `vigil proxy`.
enum Front {
    Local(server::Server),
    Proxy(Box<ProxyFront>),
}

/// The clients of a scenario, in this process or in a worker process.
enum Clients {
    Tasks(JoinSet<()>),
    Worker(Box<WorkerProcess>),
}

impl Clients {
    fn stop(&mut self) {
        match self {
            Self::Tasks(tasks) => tasks.abort_all(),
            Self::Worker(worker) => worker.stop(),
        }
    }
}

fn key(cert: &Cert) -> rustls::pki_types::PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.clone()).into()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn methods(source: SourceArg) -> Methods {
    match source {
        SourceArg::Crl => Methods::CrlOnly,
        SourceArg::Ocsp => Methods::OcspOnly,
        SourceArg::Both => Methods::OcspThenCrl,
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The monotonic instant of a wall-clock time.
fn instant_at(at: SystemTime) -> Instant {
    let now_sys = SystemTime::now();
    let now = Instant::now();
    match at.duration_since(now_sys) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}
