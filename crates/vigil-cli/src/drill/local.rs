//! The self-contained drill: a fixture PKI and CRL/OCSP responder, an mTLS
//! echo server on vigil-rustls with a connection tracker, and N clients
//! exchanging data over real TLS on 127.0.0.1. Each scenario gets a fresh
//! set, so scenarios cannot disturb one another.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Ca, Cert, CertSpec, Pki, PkiOptions, Reason};
use rand::seq::index::sample;
use rand::{rngs::StdRng, SeedableRng};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::{Methods, RevocationPolicy, Usage, VerifierConfig, VerifyOptions};
use vigil_runtime::{
    ConnectionEvent, Engine, EngineConfig, FetchConfig, MemoryStore, Store, SystemClock, Tracker,
    TrackerConfig,
};
use vigil_rustls::VigilClientVerifier;

use super::progress::Progress;
use super::report::{Latency, ScenarioReport};
use super::{DrillArgs, Scenario, SourceArg};

const SERVER_NAME: &str = "server.vigil.test";

/// Raises the open-file limit to what N connections need (two descriptors
/// each, both ends being in this process), as far as the system allows.
pub(crate) fn raise_fd_limit(connections: usize, progress: &Progress) {
    let want = (connections as u64) * 2 + 1024;
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) if soft < want => {
            // Raising the hard limit needs privileges; try, then fall back.
            let raised = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want.max(hard))
                .or_else(|_| rlimit::setrlimit(rlimit::Resource::NOFILE, hard.min(want), hard));
            if raised.is_err()
                || hard < want
                    && rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(true, |(s, _)| s < want)
            {
                progress.line(&format!(
                    "open-file limit {soft} (hard {hard}) may be too low for {connections} connections"
                ));
            }
        }
        _ => {}
    }
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
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

/// What one client saw: when its connection closed.
type Closed = (usize, Instant);

/// The in-process mTLS echo server.
struct Server {
    addr: SocketAddr,
    tracker: Tracker,
    tasks: JoinSet<()>,
}

async fn start_server(
    pki: &Pki,
    engine: &Engine,
    policy: RevocationPolicy,
    broken: bool,
) -> Result<Server, String> {
    let tracker = Tracker::new(
        engine,
        TrackerConfig {
            options: VerifyOptions {
                usage: Usage::Client,
                policy,
                ..VerifyOptions::default()
            },
            ..TrackerConfig::default()
        },
    );
    let verifier = VigilClientVerifier::new(engine.clone()).with_policy(policy);
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![der(&pki.server), der(&pki.intermediate.cert)],
            key(&pki.server),
        )
        .map_err(|e| e.to_string())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut tasks = JoinSet::new();
    let accept_tracker = tracker.clone();
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or a connection reset before accept:
                // keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tracker) = (acceptor.clone(), accept_tracker.clone());
            conns.spawn(async move {
                if broken {
                    // Verified at the handshake, never again.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        echo(tls).await;
                    }
                    return;
                }
                if let Ok(stream) =
                    vigil_rustls::accept(&acceptor, tcp, &tracker, BTreeMap::new()).await
                {
                    echo(stream).await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    });
    Ok(Server {
        addr,
        tracker,
        tasks,
    })
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: S) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if stream.get_mut().write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One client: connects, exchanges a first line, then keeps sending a line
/// every `period` and reading the echoes; reports the moment the server
/// closes the connection.
async fn client(
    index: usize,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    period: Duration,
    closed: mpsc::UnboundedSender<Closed>,
) -> Result<impl std::future::Future<Output = ()>, String> {
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
    let connect = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))
    };
    let tls = tokio::time::timeout(Duration::from_secs(60), connect)
        .await
        .map_err(|_| "no connection within 60 s".to_owned())??;
    let (read, mut write) = tokio::io::split(tls);
    let mut read = BufReader::new(read);
    let mut line = String::new();
    write
        .write_all(b"hello\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(30), read.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        other => return Err(format!("no echo: {other:?}")),
    }
    Ok(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            line.clear();
            tokio::select! {
                got = read.read_line(&mut line) => {
                    if matches!(got, Ok(0) | Err(_)) {
                        let _ = closed.send((index, Instant::now()));
                        return;
                    }
                }
                _ = ticker.tick() => {
                    if write.write_all(b"ping\n").await.is_err() {
                        let _ = closed.send((index, Instant::now()));
                        return;
                    }
                }
            }
        }
    })
}

/// The fixture for one scenario.
struct Setup {
    responder: Responder,
    pki: Pki,
    /// Each connection's leaf and the certificate of the CA that issued it.
    leaves: Vec<(Cert, Cert)>,
    /// Indices of the connections that must go.
    doomed: Vec<usize>,
    /// For `revoke-intermediate`: the intermediate to revoke.
    revoked_ca: Option<Cert>,
    /// For `expire`: when the short-lived certificates stop being valid.
    expires_at: Option<SystemTime>,
}

/// Setup time budget per connection, for certificate lifetimes and data
/// validity that must outlast the setup.
fn setup_budget(n: usize) -> Duration {
    Duration::from_secs(6) + Duration::from_millis(4) * n as u32
}

async fn prepare(args: &DrillArgs, scenario: Scenario, seed: u64) -> Result<Setup, String> {
    let n = args.connections;
    let short = setup_budget(n);
    let validity = match scenario {
        Scenario::ResponderDown { .. } => time::Duration::seconds(short.as_secs() as i64),
        _ => time::Duration::hours(1),
    };
    let (responder, pki) = start_with_fresh_pki(
        PkiOptions::default(),
        ResponderOptions {
            crl_validity: validity,
            ocsp_validity: validity,
            ..ResponderOptions::default()
        },
    )
    .await
    .map_err(|e| format!("fixture responder: {e}"))?;
    let k = ((n as f64) * args.revoke_fraction).round().max(1.0) as usize;
    let k = k.min(n);
    let mut rng = StdRng::seed_from_u64(seed);
    let doomed: Vec<usize> = match scenario {
        Scenario::ResponderDown { require: true } => (0..n).collect(),
        Scenario::ResponderDown { require: false } => Vec::new(),
        Scenario::RevokeIntermediate => (0..k).collect(),
        _ => {
            let mut v = sample(&mut rng, n, k).into_vec();
            v.sort_unstable();
            v
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let opts = pki.options.clone();
    // revoke-intermediate: a second intermediate keeps the other leaves.
    let (revoked_ca, other_ca) = if scenario == Scenario::RevokeIntermediate {
        let other = pki
            .root
            .issue_ca(&CertSpec::ca(
                "drill-intermediate-b",
                "Vigil Drill Intermediate B",
                &opts,
            ))
            .map_err(|e| e.to_string())?;
        responder.add_ca(&other, None).map_err(|e| e.to_string())?;
        responder.register(&other.cert).map_err(|e| e.to_string())?;
        (Some(pki.intermediate.cert.clone()), Some(other))
    } else {
        (None, None)
    };
    let expires_at = (scenario == Scenario::Expire).then(|| now + short);
    let doomed_set: std::collections::HashSet<usize> = doomed.iter().copied().collect();
    let mut leaves = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("drill-client-{i}");
        let mut spec = CertSpec::leaf(&name, &name, &opts);
        let issuer: &Ca = match (&other_ca, doomed_set.contains(&i)) {
            (Some(other), false) => other,
            _ => &pki.intermediate,
        };
        if let (Some(until), true) = (expires_at, doomed_set.contains(&i)) {
            spec = spec.with_validity(now - time::Duration::hours(1), until);
        }
        let leaf = issuer.issue_leaf(&spec).map_err(|e| e.to_string())?;
        responder.register(&leaf).map_err(|e| e.to_string())?;
        leaves.push((leaf, issuer.cert.clone()));
    }
    if let Scenario::ResponderDown { .. } = scenario {
        // Published now, so that they carry the short validity.
        for ca in ["root", "intermediate"] {
            responder.publish(ca).map_err(|e| e.to_string())?;
        }
    }
    Ok(Setup {
        responder,
        pki,
        leaves,
        doomed,
        revoked_ca,
        expires_at: expires_at.map(SystemTime::from),
    })
}

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
        vec![der(&setup.pki.root.cert)],
        store,
        EngineConfig {
            fetch: FetchConfig {
                connect_timeout: Duration::from_secs(2),
                total_timeout: Duration::from_secs(5),
                retries: 0,
                use_env_proxy: false,
                ..FetchConfig::default()
            },
            verifier: VerifierConfig {
                methods: methods(args.source),
                clock_skew_secs: skew,
                ..VerifierConfig::default()
            },
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("engine: {e}"))?;
    let mut server = start_server(&setup.pki, &engine, policy, args.broken_server).await?;
    let expiry = server.tracker.spawn_expiry(Duration::from_millis(250));
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
    let mut events = server.tracker.subscribe();

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
            server.addr,
            period,
            ready_tx.clone(),
            closed_tx.clone(),
        )?))
    } else {
        Clients::Tasks(spawn_clients(
            specs,
            root,
            server.addr,
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
    progress.line(&format!(
        "{label}: {n} connections up, {} tracked",
        server.tracker.registry().len()
    ));
    // Anything closed before the action is collateral already.
    let mut closed: HashMap<usize, Instant> = HashMap::new();
    while let Ok((i, at)) = closed_rx.try_recv() {
        closed.insert(i, at);
    }

    // Act.
    let (t0, refresh) = act(&setup, scenario, &engine, args, progress, &label).await?;
    // Responder down: each connection's data lapses at its own time (OCSP
    // answers were fetched at different moments), measured from there.
    let lapses = match scenario {
        Scenario::ResponderDown { .. } => lapse_per_connection(&setup, &engine, args.source),
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
    while let Ok(event) = events.try_recv() {
        if let ConnectionEvent::Degraded(notice) = event {
            degraded.insert(notice.connection_id);
        }
    }
    let latencies: Vec<f64> = setup
        .doomed
        .iter()
        .filter_map(|i| closed.get(i).map(|at| (i, at)))
        .map(|(i, at)| {
            let from = lapses.get(*i).copied().flatten().unwrap_or(t0);
            at.saturating_duration_since(from).as_secs_f64() * 1000.0
        })
        .collect();
    let torn_down = latencies.len();
    let collateral = closed.keys().filter(|i| !doomed.contains(i)).count();

    // Tear the set down.
    if let Some(task) = scheduled {
        task.abort();
    }
    expiry.abort();
    clients.stop();
    server.tasks.abort_all();
    setup.responder.shutdown().await;

    let detail = (expected > torn_down).then(|| {
        format!(
            "{} connection(s) still open {} s after the {}",
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
        degraded: degraded.len(),
        teardown_ms: Latency::of(latencies),
        passed: false,
        detail,
    })
}

/// Does what the scenario is about; returns the instant the connections
/// concerned stopped being trusted (publication, expiry, data lapse) and
/// the refresh path.
async fn act(
    setup: &Setup,
    scenario: Scenario,
    engine: &Engine,
    args: &DrillArgs,
    progress: &Progress,
    label: &str,
) -> Result<(Instant, &'static str), String> {
    let trigger = |engine: &Engine| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine.refresh_all().await;
        });
    };
    let refresh = if args.refresh_interval.is_some() {
        "scheduled"
    } else {
        "triggered"
    };
    match scenario {
        Scenario::RevokeLeaf => {
            let certs: Vec<&Cert> = setup.doomed.iter().map(|i| &setup.leaves[*i].0).collect();
            progress.line(&format!("{label}: revoking {} leaves", certs.len()));
            setup
                .responder
                .revoke_many(&certs, Reason::KeyCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger(engine);
            }
            Ok((t0, refresh))
        }
        Scenario::RevokeIntermediate => {
            let ca = setup
                .revoked_ca
                .as_ref()
                .ok_or("no intermediate to revoke")?;
            progress.line(&format!(
                "{label}: revoking the intermediate of {} leaves",
                setup.doomed.len()
            ));
            setup
                .responder
                .revoke(ca, Reason::CaCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger(engine);
            }
            Ok((t0, refresh))
        }
        Scenario::Expire => {
            // The notAfter as encoded (whole seconds), not as requested.
            let until = setup
                .doomed
                .iter()
                .map(|i| SystemTime::from(setup.leaves[*i].0.not_after))
                .max()
                .or(setup.expires_at)
                .ok_or("no expiry set")?;
            // RFC 5280 §4.1.2.5: notAfter is inclusive; with whole-second
            // times the certificate is expired from notAfter + 1 s.
            let lapse = until + Duration::from_secs(1);
            progress.line(&format!(
                "{label}: {} certificates expire at {}",
                setup.doomed.len(),
                vigil_core::rfc3339(unix(until))
            ));
            Ok((instant_at(lapse), "deadline"))
        }
        Scenario::ResponderDown { .. } => {
            setup
                .responder
                .set_behaviour(Target::All, Behaviour::Down)
                .map_err(|e| e.to_string())?;
            // The data lapses at the latest nextUpdate the engine holds
            // (+1 s: stale once strictly past it).
            let latest = engine
                .sources()
                .iter()
                .filter_map(|s| s.next_update.as_deref().and_then(parse_rfc3339))
                .max()
                .ok_or("the engine holds no revocation data")?;
            let lapse = SystemTime::UNIX_EPOCH + Duration::from_secs(latest.max(0) as u64 + 1);
            progress.line(&format!(
                "{label}: responder down; revocation data lapses at {}",
                vigil_core::rfc3339(latest)
            ));
            // Refreshes keep failing meanwhile.
            trigger(engine);
            Ok((instant_at(lapse), "deadline"))
        }
    }
}

/// When each connection's revocation data stops being usable: for each
/// certificate of its chain, the latest nextUpdate among the sources the
/// method reads (the engine falls back from one to the other), then the
/// earliest over the chain; +1 s, as data is stale once strictly past
/// nextUpdate (clock skew 0 in this scenario).
fn lapse_per_connection(setup: &Setup, engine: &Engine, source: SourceArg) -> Vec<Option<Instant>> {
    let next: HashMap<String, i64> = engine
        .sources()
        .into_iter()
        .filter_map(|s| Some((s.url.clone(), parse_rfc3339(s.next_update.as_deref()?)?)))
        .collect();
    let cert_lapse = |issuer_role: &str, serial: &str| -> Option<i64> {
        let crl = next.get(&setup.responder.crl_url(issuer_role)).copied();
        let ocsp = next
            .get(&format!(
                "{}#{serial}",
                setup.responder.ocsp_url(issuer_role)
            ))
            .copied();
        match source {
            SourceArg::Crl => crl,
            SourceArg::Ocsp => ocsp,
            SourceArg::Both => crl.max(ocsp),
        }
    };
    let ca = &setup.pki.intermediate.cert;
    let intermediate = cert_lapse(&ca.issuer, &ca.serial_hex());
    setup
        .leaves
        .iter()
        .map(|(leaf, _)| {
            let leaf = cert_lapse(&leaf.issuer, &leaf.serial_hex())?;
            let at = intermediate.map_or(leaf, |i| i.min(leaf));
            Some(instant_at(
                SystemTime::UNIX_EPOCH + Duration::from_secs(at.max(0) as u64 + 1),
            ))
        })
        .collect()
}

/// What a client needs: its chain (leaf first, DER) and PKCS#8 key.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ClientSpec {
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
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

/// Whether N connections with both ends here would exceed the open-file
/// limit (two descriptors each, plus a margin).
fn needs_worker(n: usize) -> bool {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    (n as u64) * 2 + 512 > soft
}

fn client_config(spec: &ClientSpec, root: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| e.to_string())?;
    let chain = spec
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivatePkcs8KeyDer::from(spec.key.clone()).into();
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?,
    ))
}

/// Starts the clients as tasks of this process.
fn spawn_clients(
    specs: Vec<ClientSpec>,
    root: Vec<u8>,
    addr: SocketAddr,
    period: Duration,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    closed: mpsc::UnboundedSender<Closed>,
) -> Result<JoinSet<()>, String> {
    let limit = Arc::new(Semaphore::new(64));
    let mut clients = JoinSet::new();
    for (i, spec) in specs.iter().enumerate() {
        let config = client_config(spec, &root)?;
        let (limit, closed, ready) = (limit.clone(), closed.clone(), ready.clone());
        clients.spawn(async move {
            let permit = limit.acquire_owned().await;
            match client(i, addr, config, period, closed).await {
                Ok(run) => {
                    drop(permit);
                    let _ = ready.send(Ok(()));
                    run.await;
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        });
    }
    Ok(clients)
}

/// The input of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerInput {
    addr: SocketAddr,
    period_ms: u64,
    root: Vec<u8>,
    clients: Vec<ClientSpec>,
}

/// A worker process running the clients; killed on stop or drop.
struct WorkerProcess {
    child: tokio::process::Child,
    _input: tempfile::NamedTempFile,
}

impl WorkerProcess {
    fn stop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `vigil drill --client-worker FILE`, which runs the clients and
/// reports on stdout: `up I`, `fail I MESSAGE`, `closed I UNIX_NANOS`.
fn spawn_worker(
    specs: &[ClientSpec],
    root: &[u8],
    addr: SocketAddr,
    period: Duration,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    closed: mpsc::UnboundedSender<Closed>,
) -> Result<WorkerProcess, String> {
    use std::io::Write;
    let input = WorkerInput {
        addr,
        period_ms: period.as_millis() as u64,
        root: root.to_vec(),
        clients: specs
            .iter()
            .map(|c| ClientSpec {
                chain: c.chain.clone(),
                key: c.key.clone(),
            })
            .collect(),
    };
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    serde_json::to_writer(&mut file, &input).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .arg("drill")
        .arg("--client-worker")
        .arg(file.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the client worker: {e}"))?;
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut parts = line.splitn(3, ' ');
            let (kind, index, rest) = (parts.next(), parts.next(), parts.next());
            let Some(index) = index.and_then(|i| i.parse::<usize>().ok()) else {
                continue;
            };
            match kind {
                Some("up") => {
                    let _ = ready.send(Ok(()));
                }
                Some("fail") => {
                    let _ = ready.send(Err(rest.unwrap_or_default().to_owned()));
                }
                Some("closed") => {
                    let nanos = rest.and_then(|n| n.parse::<u64>().ok()).unwrap_or_default();
                    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
                    let _ = closed.send((index, instant_at(at)));
                }
                _ => {}
            }
        }
    });
    Ok(WorkerProcess {
        child,
        _input: file,
    })
}

/// The worker process: runs the clients described in `path` and reports
/// on stdout until its stdin closes (the drill ended or died).
pub(crate) fn run_worker(path: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let input: WorkerInput = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<Closed>();
        // Index order is kept by tagging each client's readiness.
        let (tagged_tx, mut tagged_rx) = mpsc::unbounded_channel::<(usize, Result<(), String>)>();
        let n = input.clients.len();
        let mut tasks = JoinSet::new();
        let limit = Arc::new(Semaphore::new(64));
        for (i, spec) in input.clients.iter().enumerate() {
            let config = client_config(spec, &input.root)?;
            let (limit, closed, tagged) = (limit.clone(), closed_tx.clone(), tagged_tx.clone());
            let (addr, period) = (input.addr, Duration::from_millis(input.period_ms));
            tasks.spawn(async move {
                let permit = limit.acquire_owned().await;
                match client(i, addr, config, period, closed).await {
                    Ok(run) => {
                        drop(permit);
                        let _ = tagged.send((i, Ok(())));
                        run.await;
                    }
                    Err(e) => {
                        let _ = tagged.send((i, Err(e)));
                    }
                }
            });
        }
        drop((ready_tx, tagged_tx));
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let print = {
            let out = out.clone();
            move |line: String| {
                use std::io::Write;
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        };
        let print2 = print.clone();
        tokio::spawn(async move {
            while let Some((i, at)) = closed_rx.recv().await {
                let since = SystemTime::now()
                    .checked_sub(at.elapsed())
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                print2(format!("closed {i} {since}"));
            }
        });
        for _ in 0..n {
            match tagged_rx.recv().await {
                Some((i, Ok(()))) => print(format!("up {i}")),
                Some((i, Err(e))) => print(format!("fail {i} {}", e.replace('\n', " "))),
                None => break,
            }
        }
        let _ = ready_rx.try_recv();
        // Until the drill closes our stdin.
        let mut stdin = tokio::io::stdin();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut sink).await;
        tasks.abort_all();
        Ok::<(), String>(())
    })
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
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
