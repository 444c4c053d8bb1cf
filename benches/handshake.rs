//! Full TLS 1.3 mutual-TLS handshakes per second, in memory (a rustls
//! `ServerConnection` and `ClientConnection` pumped against each other over
//! byte buffers, no sockets), with the server's client-certificate verifier
//! being either rustls's own `WebPkiClientVerifier` with the CRLs, or
//! `vigil_rustls::VigilClientVerifier` over an offline engine holding the
//! same CRLs.
//!
//! Run with `cargo bench --bench handshake`. Measured, in one group:
//! - `handshake/webpki_crl` vs `handshake/vigil`: the fixture CRLs (root and
//!   intermediate, a few entries);
//! - `handshake/webpki_crl_10k` vs `handshake/vigil_10k`: the intermediate's
//!   CRL replaced by one with 10,000 entries.
//!
//! Same PKI, same server certificate, TLS 1.3 only, session resumption off
//! on both sides (no tickets, no session cache), so every iteration is a
//! full handshake that calls the verifier. The client presents the same
//! chain every time, so Vigil answers from its verdict cache after the first
//! handshake (webpki has none).
//!
//! After criterion, a short interleaved timed loop prints the vigil/webpki
//! handshakes-per-second ratio for each CRL size, measured in the same run:
//! with the same client chain, and with a newly issued client leaf on every
//! handshake (a client's first connection: no verdict cache hit).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use pki_fixtures::{generate, Cert, CertSpec, CrlSpec, Pki, PkiOptions};
use rustls::client::Resumption;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};
use vigil_core::CrlLoad;
use vigil_runtime::{Engine, EngineConfig, MemoryStore, Store, SystemClock};
use vigil_rustls::VigilClientVerifier;

const SERVER_NAME: &str = "server.vigil.test";
/// Handshakes per verifier in the ratio loop.
const RATIO_HANDSHAKES: usize = 200;
/// Handshakes per verifier in a row before switching, in the ratio loop.
const RATIO_BATCH: usize = 10;

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

/// The intermediate's CRL with `n` entries (none of them the client's).
fn big_crl(pki: &Pki, n: u32) -> Vec<u8> {
    let opts = &pki.options;
    let mut spec = CrlSpec::synthetic(opts, n);
    spec.number = 100;
    pki.intermediate.crl(&spec).unwrap().der
}

fn webpki_verifier(pki: &Pki, crls: &[&[u8]]) -> Arc<dyn ClientCertVerifier> {
    let mut roots = RootCertStore::empty();
    roots.add(der(&pki.root.cert)).unwrap();
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(
            crls.iter()
                .map(|c| CertificateRevocationListDer::from(c.to_vec())),
        )
        .build()
        .unwrap()
}

fn vigil_verifier(pki: &Pki, crls: &[&[u8]]) -> Arc<dyn ClientCertVerifier> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        vec![der(&pki.root.cert)],
        store,
        EngineConfig::default().with_offline(true),
        Arc::new(SystemClock),
    )
    .unwrap();
    // The CRL signer, so the intermediate's CRL is verified when loaded
    // rather than when the first chain brings the certificate.
    engine
        .add_ca_certificate(&der(&pki.intermediate.cert))
        .unwrap();
    for crl in crls {
        let load = engine.add_crl(crl).unwrap();
        assert!(matches!(load, CrlLoad::Verified { .. }), "{load:?}");
    }
    Arc::new(VigilClientVerifier::new(engine))
}

fn server_config(pki: &Pki, verifier: Arc<dyn ClientCertVerifier>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(pki, &pki.server), key(&pki.server))
        .unwrap();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn client_config(pki: &Pki, leaf: &Cert) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(der(&pki.root.cert)).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain(pki, leaf), key(leaf))
        .unwrap();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Moves everything `from` has to send into `to`, which processes it.
fn transfer(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).unwrap();
    }
    let mut pending = &buf[..];
    while !pending.is_empty() {
        to.read_tls(&mut pending).unwrap();
        to.process_new_packets().unwrap();
    }
}

/// One full handshake; returns the server connection (which verified the
/// client's chain).
fn handshake(
    server: &Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    buf: &mut Vec<u8>,
) -> Connection {
    let mut c =
        Connection::Client(ClientConnection::new(Arc::clone(client), name.clone()).unwrap());
    let mut s = Connection::Server(ServerConnection::new(Arc::clone(server)).unwrap());
    while c.is_handshaking() || s.is_handshaking() {
        transfer(&mut c, &mut s, buf);
        transfer(&mut s, &mut c, buf);
    }
    s
}

struct Case {
    label: &'static str,
    webpki: Arc<ServerConfig>,
    vigil: Arc<ServerConfig>,
}

fn cases(pki: &Pki) -> Vec<Case> {
    let root_crl = pki.root_crl.der.as_slice();
    let started = Instant::now();
    let crl_10k = big_crl(pki, 10_000);
    eprintln!(
        "generated a 10,000-entry CRL ({} KB) in {:?}",
        crl_10k.len() / 1000,
        started.elapsed()
    );
    let mut out = Vec::new();
    for (label, crls) in [
        ("", [root_crl, pki.intermediate_crl.der.as_slice()]),
        ("_10k", [root_crl, crl_10k.as_slice()]),
    ] {
        out.push(Case {
            label,
            webpki: server_config(pki, webpki_verifier(pki, &crls)),
            vigil: server_config(pki, vigil_verifier(pki, &crls)),
        });
    }
    out
}

/// Handshakes per second of each verifier, measured in interleaved
/// batches. Handshake `i` (warm-up first) presents `clients[i % len]`.
fn ratio(
    case: &Case,
    clients: &[Arc<ClientConfig>],
    name: &ServerName<'static>,
    n: usize,
) -> (f64, f64) {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut webpki = Duration::ZERO;
    let mut vigil = Duration::ZERO;
    let client = |i: usize| &clients[i % clients.len()];
    // Warm both up first.
    for config in [&case.webpki, &case.vigil] {
        for i in 0..RATIO_BATCH {
            black_box(handshake(config, client(i), name, &mut buf));
        }
    }
    for batch in 1..=n / RATIO_BATCH {
        for (config, total) in [(&case.webpki, &mut webpki), (&case.vigil, &mut vigil)] {
            let started = Instant::now();
            for i in batch * RATIO_BATCH..(batch + 1) * RATIO_BATCH {
                black_box(handshake(config, client(i), name, &mut buf));
            }
            *total += started.elapsed();
        }
    }
    let per_second = |d: Duration| (n / RATIO_BATCH * RATIO_BATCH) as f64 / d.as_secs_f64();
    (per_second(webpki), per_second(vigil))
}

/// A client presenting a newly issued leaf of the intermediate.
fn fresh_client(pki: &Pki, i: usize) -> Arc<ClientConfig> {
    let name = format!("fresh-client-{i}");
    let leaf = pki
        .intermediate
        .issue_leaf(&CertSpec::leaf(&name, &name, &pki.options))
        .unwrap();
    client_config(pki, &leaf)
}

/// Whether run by `cargo bench` (rather than as a smoke test by `cargo test
/// --benches`, which gets a short ratio loop).
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn main() {
    let pki = generate(&PkiOptions::default()).unwrap();
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let client = client_config(&pki, &pki.client);
    let cases = cases(&pki);

    // Every configuration completes a handshake, authenticating the client.
    let mut buf = Vec::new();
    for case in &cases {
        for config in [&case.webpki, &case.vigil] {
            let s = handshake(config, &client, &name, &mut buf);
            let Connection::Server(s) = s else {
                unreachable!()
            };
            assert_eq!(s.peer_certificates().map(<[_]>::len), Some(2));
            assert_eq!(s.handshake_kind(), Some(rustls::HandshakeKind::Full));
        }
    }

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("handshake");
        for case in &cases {
            for (verifier, config) in [("webpki_crl", &case.webpki), ("vigil", &case.vigil)] {
                group.bench_function(format!("{verifier}{}", case.label), |b| {
                    let mut buf = Vec::with_capacity(16 * 1024);
                    b.iter(|| handshake(config, &client, &name, &mut buf))
                });
            }
        }
        group.finish();
    }
    c.final_summary();

    let warm = [Arc::clone(&client)];
    let n = if bench_mode() {
        RATIO_HANDSHAKES
    } else {
        2 * RATIO_BATCH
    };
    let fresh: Vec<Arc<ClientConfig>> = (0..RATIO_BATCH + n)
        .map(|i| fresh_client(&pki, i))
        .collect();
    for case in &cases {
        let size = if case.label.is_empty() {
            "fixture CRLs"
        } else {
            "10k CRL"
        };
        let (webpki, vigil) = ratio(case, &warm, &name, n);
        println!(
            "handshake ratio (vigil/webpki, hs/s) with {size}: {:.2}x ({vigil:.0} vs {webpki:.0} hs/s, {n} each, interleaved)",
            vigil / webpki
        );
        // Vigil caches the verdict of a chain it has seen: a client's first
        // handshake costs more. Each of these handshakes presents a leaf
        // neither verifier has seen.
        let (webpki, vigil) = ratio(case, &fresh, &name, n);
        println!(
            "handshake ratio (vigil/webpki, hs/s) with {size}, a new client leaf every handshake (no verdict cache hit): {:.2}x ({vigil:.0} vs {webpki:.0} hs/s)",
            vigil / webpki
        );
    }
}
