//! Live connections end when their peer stops being trusted (issue 4): real
//! mTLS connections over 127.0.0.1 accepted with [`vigil_rustls::accept`],
//! the fixture CRL/OCSP responder, and the engine's refresh. Each test
//! checks that the connection concerned is closed as the client sees it,
//! with the right teardown event, and that the others keep working.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Ca, Cert, CertSpec, Pki, PkiOptions, Reason};
use rustls::pki_types::{PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::{Methods, RevocationPolicy, TeardownReason, Usage, VerifierConfig, VerifyOptions};
use vigil_runtime::{
    ConnectionEvent, Enforcement, Engine, EngineConfig, FetchConfig, MemoryStore, Store,
    SystemClock, Tracker, TrackerConfig,
};
use vigil_rustls::{TornDown, VigilClientVerifier};

const SERVER_NAME: &str = "server.vigil.test";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn key(cert: &Cert) -> rustls::pki_types::PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.clone()).into()
}

fn engine(pki: &Pki, methods: Methods, skew: i64) -> Engine {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    Engine::open(
        vec![pki.root.cert.certificate_der()],
        store,
        EngineConfig::default()
            .with_fetch(
                FetchConfig::default()
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_total_timeout(Duration::from_secs(2))
                    .with_retries(0)
                    .with_use_env_proxy(false),
            )
            .with_verifier(
                VerifierConfig::default()
                    .with_methods(methods)
                    .with_clock_skew_secs(skew),
            ),
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// An echo server over 127.0.0.1 whose connections are tracked.
struct Server {
    addr: SocketAddr,
    tracker: Tracker,
    engine: Engine,
    /// accept() errors (refused connections), as the server saw them.
    refused: Arc<Mutex<Vec<std::io::Error>>>,
    task: tokio::task::JoinHandle<()>,
    expiry: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.expiry.abort();
    }
}

async fn serve(pki: &Pki, engine: Engine, policy: RevocationPolicy, mode: Enforcement) -> Server {
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default()
            .with_options(VerifyOptions::new(Usage::Client).with_policy(policy))
            .with_enforcement(mode),
    );
    let verifier = VigilClientVerifier::new(engine.clone()).with_policy(policy);
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![
                pki.server.certificate_der(),
                pki.intermediate.cert.certificate_der(),
            ],
            key(&pki.server),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let tracker = tracker.clone();
        let refused = refused.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, tracker, refused) =
                    (acceptor.clone(), tracker.clone(), refused.clone());
                tokio::spawn(async move {
                    let labels = BTreeMap::from([("peer".to_owned(), "test".to_owned())]);
                    let stream = match vigil_rustls::accept(&acceptor, tcp, &tracker, labels).await
                    {
                        Ok(s) => s,
                        Err(e) => {
                            refused.lock().unwrap().push(e);
                            return;
                        }
                    };
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
                });
            }
        })
    };
    let expiry = tracker.spawn_expiry(Duration::from_millis(200));
    Server {
        addr,
        tracker,
        engine,
        refused,
        task,
        expiry,
    }
}

/// The usual server: CRLs, `require`, enforcing.
async fn strict_server(pki: &Pki) -> Server {
    serve(
        pki,
        engine(pki, Methods::CrlOnly, 300),
        RevocationPolicy::Require,
        Enforcement::Enforce,
    )
    .await
}

fn client_config(pki: &Pki, leaf: &Cert, issuer: &Ca) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert.certificate_der()).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![leaf.certificate_der(), issuer.cert.certificate_der()],
                key(leaf),
            )
            .unwrap(),
    )
}

/// A connected client that has exchanged one line.
struct Client {
    stream: BufReader<TlsStream<TcpStream>>,
}

impl Client {
    async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let tls = TlsConnector::from(config).connect(name, tcp).await?;
        let mut client = Client {
            stream: BufReader::new(tls),
        };
        client.echo("hello").await?;
        Ok(client)
    }

    /// Sends a line and reads it back.
    async fn echo(&mut self, text: &str) -> std::io::Result<()> {
        self.stream
            .get_mut()
            .write_all(format!("{text}\n").as_bytes())
            .await?;
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::other("no echo within 5 s"))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        assert_eq!(line.trim_end(), text);
        Ok(())
    }

    /// Waits until the server closes the connection (EOF or error).
    async fn closed_within(&mut self, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(limit, self.stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// The teardown events received within `limit`, until `n` arrived.
async fn teardowns(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    n: usize,
    limit: Duration,
) -> Vec<(vigil_core::TeardownEvent, bool)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(ConnectionEvent::Teardown { event, dry_run })) => out.push((event, dry_run)),
            Ok(Ok(ConnectionEvent::Degraded(_))) => {}
            _ => break,
        }
    }
    out
}

async fn setup(opts: ResponderOptions) -> (Responder, Pki) {
    start_with_fresh_pki(PkiOptions::default(), opts)
        .await
        .unwrap()
}

/// A second good client leaf under the fixture intermediate, known to the
/// responder.
fn second_client(responder: &Responder, pki: &Pki, name: &str) -> Cert {
    let spec = CertSpec::leaf(name, name, &pki.options);
    let cert = pki.intermediate.issue_leaf(&spec).unwrap();
    responder.register(&cert).unwrap();
    cert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_leaf_is_closed_after_the_crl_refresh_and_others_keep_working() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let server = strict_server(&pki).await;
    let other = second_client(&responder, &pki, "client-2");
    let mut doomed = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    let mut kept = Client::connect(server.addr, client_config(&pki, &other, &pki.intermediate))
        .await
        .unwrap();
    assert_eq!(server.tracker.registry().len(), 2);
    let mut events = server.tracker.subscribe();

    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    let started = Instant::now();
    server.engine.refresh_all().await;

    assert!(doomed.closed_within(Duration::from_secs(2)).await);
    let closed_after = started.elapsed();
    let got = teardowns(&mut events, 1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (event, dry_run) = &got[0];
    assert!(!dry_run);
    assert_eq!(event.reason, TeardownReason::Revoked);
    assert_eq!(
        vigil_core::text::hex(&event.serial),
        pki.client.serial_hex()
    );
    assert!(event.detail.contains("keyCompromise"), "{}", event.detail);
    // Nothing else was touched.
    kept.echo("still here").await.unwrap();
    assert_eq!(server.tracker.registry().len(), 1);
    let m = server.tracker.metrics();
    assert_eq!((m.tracked, m.revoked, m.open), (2, 1, 1));
    // The refresh took the time; the close itself follows at once.
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
    // A new handshake with the revoked certificate is refused.
    assert!(Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate)
    )
    .await
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_leaf_is_closed_after_the_ocsp_refresh() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let server = serve(
        &pki,
        engine(&pki, Methods::OcspOnly, 300),
        RevocationPolicy::Require,
        Enforcement::Enforce,
    )
    .await;
    let other = second_client(&responder, &pki, "client-2");
    let mut doomed = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    let mut kept = Client::connect(server.addr, client_config(&pki, &other, &pki.intermediate))
        .await
        .unwrap();
    let mut events = server.tracker.subscribe();
    responder.revoke(&pki.client, Reason::Superseded).unwrap();
    server.engine.refresh_all().await;
    assert!(doomed.closed_within(Duration::from_secs(2)).await);
    let got = teardowns(&mut events, 1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.reason, TeardownReason::Revoked);
    assert_eq!(
        vigil_core::text::hex(&got[0].0.serial),
        pki.client.serial_hex()
    );
    kept.echo("still here").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_intermediate_closes_all_its_leaves_and_nothing_else() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    // A second intermediate under the same root, with its own leaf.
    let second = pki
        .root
        .issue_ca(&CertSpec::ca(
            "intermediate-2",
            "Vigil Test Intermediate 2",
            &pki.options,
        ))
        .unwrap();
    responder.add_ca(&second, None).unwrap();
    responder.register(&second.cert).unwrap();
    let outside = second
        .issue_leaf(&CertSpec::leaf("client-b", "client-b", &pki.options))
        .unwrap();
    responder.register(&outside).unwrap();
    let sibling = second_client(&responder, &pki, "client-2");

    let server = strict_server(&pki).await;
    let mut a = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    let mut b = Client::connect(
        server.addr,
        client_config(&pki, &sibling, &pki.intermediate),
    )
    .await
    .unwrap();
    let mut c = Client::connect(server.addr, client_config(&pki, &outside, &second))
        .await
        .unwrap();
    let mut events = server.tracker.subscribe();

    responder
        .revoke(&pki.intermediate.cert, Reason::CaCompromise)
        .unwrap();
    server.engine.refresh_all().await;

    assert!(a.closed_within(Duration::from_secs(2)).await);
    assert!(b.closed_within(Duration::from_secs(2)).await);
    let got = teardowns(&mut events, 2, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for (event, _) in &got {
        assert_eq!(event.reason, TeardownReason::Revoked);
        // The event names the certificate concerned: the intermediate.
        assert_eq!(
            vigil_core::text::hex(&event.serial),
            pki.intermediate.cert.serial_hex()
        );
    }
    c.echo("other intermediate").await.unwrap();
    assert_eq!(server.tracker.registry().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expires_while_connected_is_closed() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let now = time::OffsetDateTime::now_utc();
    let short = pki
        .intermediate
        .issue_leaf(
            &CertSpec::leaf("short", "short-lived", &pki.options).with_validity(
                now - time::Duration::hours(1),
                now + time::Duration::seconds(3),
            ),
        )
        .unwrap();
    responder.register(&short).unwrap();
    let server = strict_server(&pki).await;
    let mut events = server.tracker.subscribe();
    let mut doomed = Client::connect(server.addr, client_config(&pki, &short, &pki.intermediate))
        .await
        .unwrap();
    let mut kept = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    // Closed by time alone: no refresh, no new data.
    assert!(doomed.closed_within(Duration::from_secs(8)).await);
    let got = teardowns(&mut events, 1, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.reason, TeardownReason::Expired);
    assert_eq!(vigil_core::text::hex(&got[0].0.serial), short.serial_hex());
    kept.echo("not expired").await.unwrap();
}

/// The responder stops answering; the data it served passes nextUpdate.
async fn responder_down(policy: RevocationPolicy) -> (Server, Client, Vec<ConnectionEvent>) {
    let (responder, pki) = setup(ResponderOptions {
        crl_validity: time::Duration::seconds(4),
        ocsp_validity: time::Duration::seconds(4),
        ..ResponderOptions::default()
    })
    .await;
    // Published now, so they carry the short validity.
    for ca in ["root", "intermediate"] {
        responder.publish(ca).unwrap();
    }
    let server = serve(
        &pki,
        engine(&pki, Methods::CrlOnly, 0),
        policy,
        Enforcement::Enforce,
    )
    .await;
    let mut events = server.tracker.subscribe();
    let client = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    // Refreshes fail from now on; the CRLs held lapse within ~4 s.
    let refresher = {
        let engine = server.engine.clone();
        tokio::spawn(async move {
            loop {
                engine.refresh_all().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let mut client = client;
    let deadline = Instant::now() + Duration::from_secs(9);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(e)) => {
                let done = matches!(
                    e,
                    ConnectionEvent::Teardown { .. } | ConnectionEvent::Degraded(_)
                );
                seen.push(e);
                if done {
                    break;
                }
            }
            _ => continue,
        }
    }
    refresher.abort();
    drop(responder);
    let _ = &mut client;
    (server, client, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_down_past_next_update_closes_under_require() {
    let (server, mut client, seen) = responder_down(RevocationPolicy::Require).await;
    assert!(
        matches!(
            seen.first(),
            Some(ConnectionEvent::Teardown { event, .. }) if event.reason == TeardownReason::Unverifiable
        ),
        "{seen:?}"
    );
    assert!(client.closed_within(Duration::from_secs(2)).await);
    assert_eq!(server.tracker.metrics().unverifiable, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_down_past_next_update_is_kept_and_reported_under_prefer() {
    let (server, mut client, seen) = responder_down(RevocationPolicy::Prefer).await;
    assert!(
        matches!(seen.first(), Some(ConnectionEvent::Degraded(n)) if !n.detail.is_empty()),
        "{seen:?}"
    );
    client.echo("degraded but open").await.unwrap();
    assert_eq!(server.tracker.registry().degraded().len(), 1);
    let m = server.tracker.metrics();
    assert_eq!((m.degraded, m.unverifiable, m.open), (1, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_anchor_closes_its_connections() {
    let (_responder, pki) = setup(ResponderOptions::default()).await;
    let server = strict_server(&pki).await;
    let mut events = server.tracker.subscribe();
    let mut client = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    // Reloading the same bundle changes nothing.
    assert_eq!(
        server
            .engine
            .set_anchors(vec![pki.root.cert.certificate_der()])
            .unwrap(),
        (0, 0)
    );
    client.echo("same anchors").await.unwrap();
    // A bundle with another root only: the fixture root is removed.
    assert_eq!(
        server
            .engine
            .set_anchors(vec![pki.other_root.cert.certificate_der()])
            .unwrap(),
        (1, 1)
    );
    assert!(client.closed_within(Duration::from_secs(2)).await);
    let got = teardowns(&mut events, 1, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.reason, TeardownReason::Untrusted);
    assert_eq!(
        vigil_core::text::hex(&got[0].0.serial),
        pki.root.cert.serial_hex()
    );
    // And no new handshake gets through.
    assert!(Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate)
    )
    .await
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumed_after_revocation_is_closed_at_once() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let server = strict_server(&pki).await;
    let config = client_config(&pki, &pki.client, &pki.intermediate);
    // A full handshake; the client keeps the session tickets.
    let first = Client::connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(
        first.stream.get_ref().get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    drop(first);
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    server.engine.refresh_all().await;

    // The client comes back on a ticket: rustls does not call the verifier,
    // the tracker re-checks the chain and closes the connection.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "the second connection must resume the session for this test to mean anything"
    );
    let mut client = Client {
        stream: BufReader::new(tls),
    };
    assert!(client.closed_within(Duration::from_secs(2)).await);
    let m = server.tracker.metrics();
    assert_eq!((m.resumed, m.refused), (1, 1), "{m:?}");
    // The server task records the refusal after the client sees the close.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let event = loop {
        let found = server
            .refused
            .lock()
            .unwrap()
            .iter()
            .find_map(TornDown::from_io)
            .cloned();
        if let Some(event) = found {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no teardown recorded for the refused resumption"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(event.reason, TeardownReason::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_emits_the_event_and_leaves_the_connection_open() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let server = serve(
        &pki,
        engine(&pki, Methods::CrlOnly, 300),
        RevocationPolicy::Require,
        Enforcement::DryRun,
    )
    .await;
    let mut events = server.tracker.subscribe();
    let mut client = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    server.engine.refresh_all().await;
    let got = teardowns(&mut events, 1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.reason, TeardownReason::Revoked);
    assert!(got[0].1, "flagged as dry-run");
    // Still open, well past the watchdog's grace.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.echo("dry run").await.unwrap();
    let m = server.tracker.metrics();
    assert_eq!((m.revoked, m.dry_run), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_by_the_watchdog_and_normal_closes_leave_no_trace() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let engine = engine(&pki, Methods::CrlOnly, 300);
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default().with_options(VerifyOptions::new(Usage::Client)),
    );
    let verifier = VigilClientVerifier::new(engine.clone());
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![
                pki.server.certificate_der(),
                pki.intermediate.cert.certificate_der(),
            ],
            key(&pki.server),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    // Normal open/close cycles leave nothing tracked.
    for _ in 0..20 {
        let (accepted, client) = tokio::join!(
            async {
                let (tcp, _) = listener.accept().await.unwrap();
                vigil_rustls::accept(&acceptor, tcp, &tracker, BTreeMap::new())
                    .await
                    .unwrap()
            },
            async {
                let tcp = TcpStream::connect(addr).await.unwrap();
                TlsConnector::from(client_config(&pki, &pki.client, &pki.intermediate))
                    .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
                    .await
                    .unwrap()
            }
        );
        assert!(accepted.id().is_some());
        drop(accepted);
        drop(client);
    }
    assert!(tracker.registry().is_empty());
    let stats = tracker.registry().stats();
    // Only map capacity (bounded by the peak) remains.
    assert_eq!(
        stats,
        vigil_core::RegistryStats {
            index_bytes: stats.index_bytes,
            ..Default::default()
        }
    );
    assert_eq!(tracker.metrics().closed, 20);

    // A server that never reads: the watchdog shuts the socket.
    let (idle, client) = tokio::join!(
        async {
            let (tcp, _) = listener.accept().await.unwrap();
            vigil_rustls::accept(&acceptor, tcp, &tracker, BTreeMap::new())
                .await
                .unwrap()
        },
        async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            TlsConnector::from(client_config(&pki, &pki.client, &pki.intermediate))
                .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
                .await
                .unwrap()
        }
    );
    let mut client = Client {
        stream: BufReader::new(client),
    };
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    engine.refresh_all().await;
    assert!(client.closed_within(Duration::from_secs(2)).await);
    assert!(idle.teardown().is_some());
    drop(idle);
    assert!(tracker.registry().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_deny_closes_at_once_and_refuses_until_lifted() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    let server = strict_server(&pki).await;
    let other = second_client(&responder, &pki, "client-2");
    let mut events = server.tracker.subscribe();
    let mut doomed = Client::connect(
        server.addr,
        client_config(&pki, &pki.client, &pki.intermediate),
    )
    .await
    .unwrap();
    let mut kept = Client::connect(server.addr, client_config(&pki, &other, &pki.intermediate))
        .await
        .unwrap();
    // Named as verdicts name it: the issuer DN and serial of the leaf.
    let verdict = server.engine.verify_cached(
        &[
            pki.client.certificate_der(),
            pki.intermediate.cert.certificate_der(),
        ],
        server.tracker.options(),
    );
    assert!(verdict.is_accepted(), "{verdict:?}");
    let key = vigil_core::DenyKey::IssuerSerial {
        issuer: verdict.chain[0].issuer.clone(),
        serial: vigil_core::text::hex(&verdict.chain[0].serial).to_uppercase(),
    }
    .normalized()
    .unwrap();
    let started = Instant::now();
    assert!(server
        .engine
        .deny(vigil_core::DenyRule::new(
            key.clone(),
            "laptop stolen",
            None
        ))
        .unwrap());
    assert!(doomed.closed_within(Duration::from_secs(1)).await);
    assert!(started.elapsed() < Duration::from_millis(500));
    let got = teardowns(&mut events, 1, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.reason, TeardownReason::Denied);
    assert!(
        got[0].0.detail.contains("laptop stolen"),
        "{}",
        got[0].0.detail
    );
    kept.echo("not denied").await.unwrap();
    let config = client_config(&pki, &pki.client, &pki.intermediate);
    assert!(Client::connect(server.addr, config.clone()).await.is_err());
    assert!(server.engine.lift(&key).unwrap());
    Client::connect(server.addr, config).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closes_its_connection_when_the_server_certificate_is_revoked() {
    let (responder, pki) = setup(ResponderOptions::default()).await;
    // A plain rustls echo server presenting the fixture server chain.
    let server_config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![
                pki.server.certificate_der(),
                pki.intermediate.cert.certificate_der(),
            ],
            key(&pki.server),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut tls = BufReader::new(tls);
        let mut line = String::new();
        while tls.read_line(&mut line).await.unwrap_or(0) > 0 {
            if tls.get_mut().write_all(line.as_bytes()).await.is_err() {
                break;
            }
            line.clear();
        }
    });

    // The client verifies and tracks the server with Vigil.
    let engine = engine(&pki, Methods::CrlOnly, 300);
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default().with_options(VerifyOptions::new(Usage::Server)),
    );
    let verifier = vigil_rustls::VigilServerVerifier::new(engine.clone());
    let client_config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = vigil_rustls::connect(
        &TlsConnector::from(Arc::new(client_config)),
        ServerName::try_from(SERVER_NAME).unwrap(),
        tcp,
        &tracker,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    assert!(stream.id().is_some());
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(b"hi\n").await.unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    assert_eq!(line, "hi\n");

    responder
        .revoke(&pki.server, Reason::KeyCompromise)
        .unwrap();
    engine.refresh_all().await;
    line.clear();
    let err = tokio::time::timeout(Duration::from_secs(2), stream.read_line(&mut line))
        .await
        .unwrap()
        .unwrap_err();
    let event = TornDown::from_io(&err).unwrap();
    assert_eq!(event.reason, TeardownReason::Revoked);
    assert_eq!(
        vigil_core::text::hex(&event.serial),
        pki.server.serial_hex()
    );
    assert!(tracker.registry().is_empty());
    // The server saw the close (close_notify), and its echo loop ended.
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .unwrap()
        .unwrap();
}
