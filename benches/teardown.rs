//! Live teardown at the issue's size: 10,000 tracked client connections under
//! one intermediate, 2,000 of them real mutual-TLS connections over
//! 127.0.0.1 (a `vigil_rustls::accept` echo server and tokio-rustls
//! clients), and a new CRL revoking the 1,000 leaves of half the real
//! connections.
//!
//! Run with `cargo bench --bench teardown`. This is a plain timed `main`
//! (criterion would need thousands of fresh TLS connections per sample).
//! For each round, timed from the start of `Engine::add_crl(new CRL)`, which
//! includes the CRL's parse, signature check and index, called from a
//! thread outside the async workers but in the runtime's context, as the
//! engine's refresh does (its CRL load and re-checks run on the blocking
//! pool):
//! - `add_crl` returning, and the 1,000th teardown event received from
//!   `Tracker::subscribe` ("refresh to last teardown event");
//! - each revoked client observing the close of its TCP/TLS connection (its
//!   read returning EOF or an error): p50 / p99 / max ("refresh to TCP
//!   close").
//!
//! Checked every round: exactly the 1,000 revoked connections get a
//! teardown event, and the 1,000 unrevoked real connections still echo a
//! byte. Round 1 is the scenario as specified; rounds 2 and 3 connect 1,000
//! fresh revoked clients again (back to 10,000 tracked) and publish the next
//! cumulative CRL (2,000 and 3,000 entries). The registry's index memory per
//! tracked connection is printed once. The open-file limit matters: the
//! process holds about 6,000 descriptors at its peak (client socket, server
//! socket and the server's watchdog duplicate per real connection), which is
//! why 8,000 of the 10,000 connections are tracked without a socket.
//!
//! Also printed, to see where `add_crl`'s time goes: the measuring thread's
//! time on and off CPU during the call; the 1,000-entry CRL's load alone
//! (`VerifiedCrl::from_der`); and the same refresh over the same 10,000
//! tracked connections with no socket behind any (signals only), with and
//! without the engine's verdict cache emptied first.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pki_fixtures::{generate, Cert, CertSpec, CrlSpec, Pki, PkiOptions, Reason};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::revocation::CrlSigner;
use vigil_core::revocation::VerifiedCrl;
use vigil_core::{ConnectionId, CrlLoad, TeardownReason, TeardownSignal, Usage, VerifyOptions};
use vigil_runtime::{
    ConnectionEvent, Engine, EngineConfig, MemoryStore, Store, SystemClock, Tracker, TrackerConfig,
};

const TRACKED: usize = 10_000;
const REAL: usize = 2_000;
const REVOKED: usize = 1_000;
const KEPT: usize = REAL - REVOKED;
/// Connections tracked without a socket, spread over the kept leaves.
const TRACK_ONLY: usize = TRACKED - REAL;
/// Rounds under `cargo bench`; one under `cargo test --benches`.
const ROUNDS: usize = 3;
/// Handshakes in flight at once while connecting.
const CONNECT_CONCURRENCY: usize = 64;
const SERVER_NAME: &str = "server.vigil.test";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn der(cert: &Cert) -> CertificateDer<'static> {
    CertificateDer::from(cert.der.clone())
}

fn key(cert: &Cert) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.clone()).into()
}

fn chain(pki: &Pki, leaf: &Cert) -> Vec<CertificateDer<'static>> {
    vec![der(leaf), der(&pki.intermediate.cert)]
}

fn labels(peer: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("peer".to_owned(), peer.to_owned())])
}

/// Which real client a leaf belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    /// Revoked in the given round.
    Revoked { round: usize, index: usize },
    /// Never revoked.
    Kept(usize),
}

/// What a client task reports.
enum ClientEvent {
    /// Its read returned EOF or an error, at this instant.
    Closed(Client, Instant),
    /// It read back bytes.
    Echo(Client),
}

/// What the server reports once a connection is tracked.
struct Accepted {
    id: ConnectionId,
    leaf: Vec<u8>,
}

fn engine(pki: &Pki) -> Engine {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        vec![der(&pki.root.cert)],
        store,
        EngineConfig::default().with_offline(true),
        Arc::new(SystemClock),
    )
    .unwrap();
    engine
        .add_ca_certificate(&der(&pki.intermediate.cert))
        .unwrap();
    // Revocation covers the whole chain by default: the root's CRL too.
    let empty = pki.intermediate.crl(&CrlSpec::new(&pki.options)).unwrap();
    for crl in [&pki.root_crl.der, &empty.der] {
        let load = engine.add_crl(crl).unwrap();
        assert!(matches!(load, CrlLoad::Verified { .. }), "{load:?}");
    }
    engine
}

fn server_config(pki: &Pki, engine: &Engine) -> Arc<ServerConfig> {
    let verifier = vigil_rustls::VigilClientVerifier::new(engine.clone());
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain(pki, &pki.server), key(&pki.server))
        .unwrap();
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn client_config(pki: &Pki, leaf: &Cert) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(der(&pki.root.cert)).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain(pki, leaf), key(leaf))
        .unwrap();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Accepts, tracks and echoes until each connection ends.
async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tracker: Tracker,
    accepted: mpsc::UnboundedSender<Result<Accepted, String>>,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, tracker, accepted) = (acceptor.clone(), tracker.clone(), accepted.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let peer = peer.to_string();
            let mut stream =
                match vigil_rustls::accept(&acceptor, tcp, &tracker, labels(&peer)).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = accepted.send(Err(format!("{peer}: {e}")));
                        return;
                    }
                };
            let leaf = stream
                .get_ref()
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .unwrap_or_default();
            let _ = accepted.send(Ok(Accepted {
                id: stream.id().unwrap(),
                leaf,
            }));
            let mut buf = [0u8; 256];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

/// Connects, hands back the write half, then reads until the connection
/// ends, reporting what it read and when it ended.
async fn client(
    who: Client,
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    limit: Arc<Semaphore>,
    writers: mpsc::UnboundedSender<(Client, WriteHalf<TlsStream<TcpStream>>)>,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let permit = limit.acquire_owned().await.unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
    drop(permit);
    let (mut read, write) = tokio::io::split(tls);
    writers.send((who, write)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = events.send(ClientEvent::Closed(who, Instant::now()));
                return;
            }
            Ok(_) => {
                let _ = events.send(ClientEvent::Echo(who));
            }
        }
    }
}

/// This thread's time on CPU and waiting for a CPU so far, from the
/// scheduler's statistics (Linux).
fn sched_times() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let run = fields.next()??;
    let wait = fields.next()??;
    Some((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One round's figures.
struct Figures {
    crl_entries: usize,
    add_crl: Duration,
    /// The measuring thread's time on CPU and waiting for a CPU during
    /// `add_crl`.
    add_crl_sched: Option<(Duration, Duration)>,
    last_event: Duration,
    close_p50: Duration,
    close_p99: Duration,
    close_max: Duration,
}

struct Bench {
    pki: Pki,
    rt: tokio::runtime::Runtime,
    engine: Engine,
    tracker: Tracker,
    addr: SocketAddr,
    limit: Arc<Semaphore>,
    accepted: mpsc::UnboundedReceiver<Result<Accepted, String>>,
    writers_tx: mpsc::UnboundedSender<(Client, WriteHalf<TlsStream<TcpStream>>)>,
    writers_rx: mpsc::UnboundedReceiver<(Client, WriteHalf<TlsStream<TcpStream>>)>,
    events_tx: mpsc::UnboundedSender<ClientEvent>,
    events_rx: mpsc::UnboundedReceiver<ClientEvent>,
    /// Leaf DER to the real client using it.
    owners: HashMap<Vec<u8>, Client>,
    /// Server-side connection ids of the real clients.
    ids: HashMap<Client, ConnectionId>,
    kept_writers: Vec<WriteHalf<TlsStream<TcpStream>>>,
}

impl Bench {
    /// Connects one real client per leaf and waits until the server tracks
    /// them all.
    fn connect(&mut self, leaves: &[(Client, &Cert)]) {
        let started = Instant::now();
        for (who, leaf) in leaves {
            self.owners.insert(leaf.der.clone(), *who);
            let config = client_config(&self.pki, leaf);
            self.rt.spawn(client(
                *who,
                config,
                self.addr,
                Arc::clone(&self.limit),
                self.writers_tx.clone(),
                self.events_tx.clone(),
            ));
        }
        let mut writers = Vec::new();
        self.rt.block_on(async {
            for _ in leaves {
                let accepted = tokio::time::timeout(Duration::from_secs(60), self.accepted.recv())
                    .await
                    .expect("server accepts in time")
                    .unwrap()
                    .unwrap();
                let who = self.owners[&accepted.leaf];
                assert!(self.ids.insert(who, accepted.id).is_none());
            }
            for _ in leaves {
                writers.push(self.writers_rx.recv().await.unwrap());
            }
        });
        for (who, writer) in writers {
            if let Client::Kept(_) = who {
                self.kept_writers.push(writer);
            }
            // A revoked client's write half is dropped: it only reads.
        }
        eprintln!(
            "connected and tracked {} mTLS clients over 127.0.0.1 in {:.1} s",
            leaves.len(),
            started.elapsed().as_secs_f64()
        );
    }

    /// Every kept real connection still echoes a byte.
    fn check_kept_alive(&mut self) {
        self.rt.block_on(async {
            for w in &mut self.kept_writers {
                w.write_all(b"x").await.unwrap();
                w.flush().await.unwrap();
            }
            let mut echoed = HashSet::new();
            while echoed.len() < KEPT {
                let event = tokio::time::timeout(Duration::from_secs(10), self.events_rx.recv())
                    .await
                    .expect("kept connections echo in time")
                    .unwrap();
                match event {
                    ClientEvent::Echo(who @ Client::Kept(_)) => {
                        echoed.insert(who);
                    }
                    ClientEvent::Echo(who) => panic!("unexpected echo on {who:?}"),
                    ClientEvent::Closed(who, _) => panic!("{who:?} was closed"),
                }
            }
        });
    }

    /// Publishes `crl` and measures until the revoked clients of `round`
    /// are all closed.
    fn measure(&mut self, round: usize, crl: &[u8], crl_entries: usize) -> Figures {
        let mut events = self.tracker.subscribe();
        let expected: HashSet<ConnectionId> = self
            .ids
            .iter()
            .filter(|(who, _)| matches!(who, Client::Revoked { round: r, .. } if *r == round))
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(expected.len(), REVOKED);
        assert_eq!(self.tracker.registry().len(), TRACKED);

        // Called as the engine's refresh calls it: on a thread of the
        // runtime's blocking pool (outside the async workers, inside the
        // runtime's context).
        let _context = self.rt.enter();
        let sched_before = sched_times();
        let t0 = Instant::now();
        let load = self.engine.add_crl(crl).unwrap();
        let add_crl = t0.elapsed();
        let add_crl_sched = sched_times()
            .zip(sched_before)
            .map(|((run, wait), (run0, wait0))| (run - run0, wait - wait0));
        let mut torn = HashSet::new();
        let deadline = t0 + Duration::from_secs(10);
        while torn.len() < REVOKED {
            match events.try_recv() {
                Ok(ConnectionEvent::Teardown { event, dry_run }) => {
                    assert!(!dry_run);
                    assert_eq!(event.reason, TeardownReason::Revoked, "{event:?}");
                    assert!(
                        expected.contains(&event.connection_id),
                        "teardown of a connection that was not revoked: {event:?}"
                    );
                    assert!(torn.insert(event.connection_id), "twice: {event:?}");
                }
                Ok(other) => panic!("unexpected event {other:?}"),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                    assert!(Instant::now() < deadline, "{} events only", torn.len());
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        let last_event = t0.elapsed();
        assert!(
            matches!(load, CrlLoad::Verified { entries } if entries == crl_entries),
            "{load:?}"
        );

        let mut closes = Vec::with_capacity(REVOKED);
        self.rt.block_on(async {
            while closes.len() < REVOKED {
                let event = tokio::time::timeout(Duration::from_secs(10), self.events_rx.recv())
                    .await
                    .expect("revoked clients see the close in time")
                    .unwrap();
                match event {
                    ClientEvent::Closed(Client::Revoked { round: r, .. }, at) if r == round => {
                        closes.push(at.duration_since(t0));
                    }
                    ClientEvent::Closed(who, _) => panic!("{who:?} was closed"),
                    ClientEvent::Echo(who) => panic!("unexpected echo on {who:?}"),
                }
            }
            // Longer than the watchdog's grace: nothing else may follow.
            tokio::time::sleep(vigil_rustls::CLOSE_GRACE * 5).await;
        });
        assert!(
            matches!(
                events.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty)
            ),
            "a teardown event beyond the revoked connections"
        );
        assert!(
            self.events_rx.try_recv().is_err(),
            "a client event too many"
        );
        assert_eq!(self.tracker.registry().len(), TRACKED - REVOKED);
        self.check_kept_alive();

        closes.sort();
        Figures {
            crl_entries,
            add_crl,
            add_crl_sched,
            last_event,
            close_p50: percentile(&closes, 50.0),
            close_p99: percentile(&closes, 99.0),
            close_max: *closes.last().unwrap(),
        }
    }
}

/// The same refresh with the same 10,000 tracked connections but no
/// socket behind any of them (each signal's callback does nothing): what
/// the engine, registry and tracker cost alone, without waking tasks.
/// Returns (add_crl returned, last teardown event received).
///
/// With `empty_cache`, the engine's verdict cache (filled by tracking: one
/// verdict per distinct chain) is emptied first, outside the measurement,
/// by adding an unrelated anchor; that call's time is returned too.
fn signals_only(
    pki: &Pki,
    kept: &[Cert],
    revoked: &[Cert],
    crl: &[u8],
    empty_cache: bool,
) -> (Duration, Duration, Option<Duration>) {
    let engine = engine(pki);
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default().with_options(VerifyOptions::new(Usage::Client)),
    );
    let leaves = revoked.iter().chain(kept.iter().cycle()).take(TRACKED);
    for (i, leaf) in leaves.enumerate() {
        let tracked = tracker.track(chain(pki, leaf), labels(&format!("10.1.0.{i}:443")));
        assert!(tracked.verdict.is_accepted());
        tracked.signal.on_fire(Box::new(|_| {}));
    }
    let emptied = empty_cache.then(|| {
        let started = Instant::now();
        assert!(engine.add_anchor(der(&pki.other_root.cert)).unwrap());
        started.elapsed()
    });
    let mut events = tracker.subscribe();
    let t0 = Instant::now();
    engine.add_crl(crl).unwrap();
    let returned = t0.elapsed();
    for _ in 0..REVOKED {
        assert!(matches!(
            events.try_recv(),
            Ok(ConnectionEvent::Teardown { .. })
        ));
    }
    let last = t0.elapsed();
    assert!(events.try_recv().is_err());
    (returned, last, emptied)
}

fn issue(pki: &Pki, prefix: &str, n: usize) -> Vec<Cert> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            pki.intermediate
                .issue_leaf(&CertSpec::leaf(&name, &name, &pki.options))
                .unwrap()
        })
        .collect()
}

/// Whether run by `cargo bench` (rather than as a smoke test by `cargo test
/// --benches`, which gets one round and single diagnostics).
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn main() {
    let total = Instant::now();
    let (rounds, repeats) = if bench_mode() { (ROUNDS, 5) } else { (1, 1) };
    let pki = generate(&PkiOptions::default()).unwrap();
    let started = Instant::now();
    let kept = issue(&pki, "kept-client", KEPT);
    let revoked: Vec<Vec<Cert>> = (0..rounds)
        .map(|r| issue(&pki, &format!("revoked-client-{r}"), REVOKED))
        .collect();
    eprintln!(
        "issued {} leaves in {:.1} s",
        KEPT + rounds * REVOKED,
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine = engine(&pki);
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default().with_options(VerifyOptions::new(Usage::Client)),
    );
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted) = mpsc::unbounded_channel();
    rt.spawn(serve(
        listener,
        TlsAcceptor::from(server_config(&pki, &engine)),
        tracker.clone(),
        accepted_tx,
    ));
    let (writers_tx, writers_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let mut bench = Bench {
        pki,
        rt,
        engine,
        tracker,
        addr,
        limit: Arc::new(Semaphore::new(CONNECT_CONCURRENCY)),
        accepted,
        writers_tx,
        writers_rx,
        events_tx,
        events_rx,
        owners: HashMap::new(),
        ids: HashMap::new(),
        kept_writers: Vec::new(),
    };

    let kept_leaves: Vec<(Client, &Cert)> = kept
        .iter()
        .enumerate()
        .map(|(i, c)| (Client::Kept(i), c))
        .collect();
    bench.connect(&kept_leaves);

    // The other 8,000: tracked with the kept leaves' chains, no socket.
    let mut track_only: Vec<TeardownSignal> = Vec::with_capacity(TRACK_ONLY);
    for i in 0..TRACK_ONLY {
        let leaf = &kept[i % KEPT];
        let tracked = bench.tracker.track(
            chain(&bench.pki, leaf),
            labels(&format!("10.0.{}.{}:443", i / 256, i % 256)),
        );
        assert!(tracked.verdict.is_accepted(), "{:?}", tracked.verdict);
        track_only.push(tracked.signal);
    }

    let mut revoked_serials = Vec::new();
    let mut figures = Vec::new();
    let mut first_crl = Vec::new();
    for (round, leaves) in revoked.iter().enumerate() {
        let round_leaves: Vec<(Client, &Cert)> = leaves
            .iter()
            .enumerate()
            .map(|(index, c)| (Client::Revoked { round, index }, c))
            .collect();
        bench.connect(&round_leaves);
        if round == 0 {
            let stats = bench.tracker.registry().stats();
            println!(
                "{} tracked connections ({} over TLS sockets): registry index {} bytes, {} bytes per connection",
                stats.connections,
                REAL,
                stats.index_bytes,
                stats.index_bytes / stats.connections.max(1)
            );
        }
        // The next CRL of the intermediate: cumulative, a higher number.
        revoked_serials.extend(leaves);
        let opts = &bench.pki.options;
        let mut spec = CrlSpec::new(opts);
        spec.number = 2 + round as u64;
        spec.this_update += time::Duration::minutes(1 + round as i64);
        for leaf in &revoked_serials {
            spec = spec.revoke(
                leaf,
                opts.now - time::Duration::minutes(30),
                Reason::KeyCompromise,
            );
        }
        let crl = bench.pki.intermediate.crl(&spec).unwrap().der;
        let f = bench.measure(round, &crl, revoked_serials.len());
        println!(
            "round {}: CRL with {} entries ({} KB); refresh to add_crl returned {}, to last teardown event {}; refresh to TCP close p50 {} p99 {} max {}",
            round + 1,
            f.crl_entries,
            crl.len() / 1000,
            ms(f.add_crl),
            ms(f.last_event),
            ms(f.close_p50),
            ms(f.close_p99),
            ms(f.close_max),
        );
        if let Some((run, wait)) = f.add_crl_sched {
            println!(
                "  during add_crl the measuring thread was on CPU {} and waited for a CPU {}",
                ms(run),
                ms(wait)
            );
        }
        if round == 0 {
            first_crl = crl;
        }
        figures.push(f);
    }
    assert!(track_only.iter().all(|s| !s.is_fired()));

    // Where add_crl's time goes: the CRL load alone (parse, signature,
    // index), as add_crl does it before the registry is consulted.
    let signer = CrlSigner::from_cert_der(&der(&bench.pki.intermediate.cert)).unwrap();
    let mut loads: Vec<Duration> = (0..11)
        .map(|_| {
            let started = Instant::now();
            let crl = VerifiedCrl::from_der(&first_crl, &signer).unwrap();
            let took = started.elapsed();
            assert_eq!(crl.len(), REVOKED);
            took
        })
        .collect();
    loads.sort();

    // In the runtime's context, as the refresh calls it (see `measure`).
    let context = bench.rt.enter();
    let mut alone: Vec<_> = (0..repeats)
        .map(|_| signals_only(&bench.pki, &kept, &revoked[0], &first_crl, false))
        .collect();
    alone.sort();
    let (alone_returned, alone_last, _) = alone[alone.len() / 2];
    let mut emptied: Vec<_> = (0..repeats)
        .map(|_| signals_only(&bench.pki, &kept, &revoked[0], &first_crl, true))
        .collect();
    emptied.sort();
    let (emptied_returned, emptied_last, emptying) = emptied[emptied.len() / 2];
    drop(context);

    let first = &figures[0];
    let worst = |f: fn(&Figures) -> Duration| figures.iter().map(f).max().unwrap();
    println!(
        "teardown, 10,000 tracked / 1,000 revoked by one CRL (round 1): refresh to last teardown event {} (target < 10 ms); refresh to TCP close p50 {} / p99 {} / max {} (target max < 100 ms)",
        ms(first.last_event),
        ms(first.close_p50),
        ms(first.close_p99),
        ms(first.close_max),
    );
    println!(
        "worst over {rounds} round(s): to last teardown event {}, to TCP close max {}; \
         the 1,000-entry CRL's load alone (parse + signature + index) takes {} (median of 11)",
        ms(worst(|f| f.last_event)),
        ms(worst(|f| f.close_max)),
        ms(loads[loads.len() / 2]),
    );
    println!(
        "the same refresh with no sockets behind the 10,000 tracked connections: \
         add_crl returned {}, last teardown event {} (median of {repeats})",
        ms(alone_returned),
        ms(alone_last),
    );
    println!(
        "  the same with the verdict cache emptied beforehand: add_crl returned {}, \
         last teardown event {}; emptying the cache ({} distinct chains) took {} (median of {repeats})",
        ms(emptied_returned),
        ms(emptied_last),
        KEPT + REVOKED,
        ms(emptying.unwrap_or_default()),
    );
    eprintln!("total {:.1} s", total.elapsed().as_secs_f64());
    drop(track_only);
}
