//! Real TLS handshakes over 127.0.0.1 with the Vigil verifiers, against the
//! fixture PKI and its CRL/OCSP responder (issue 4, item 2).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use pki_fixtures::openssl::CertIdHash;
use pki_fixtures::responder::{
    ocsp_request, start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Cert, Pki, PkiOptions, Reason};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::RevocationPolicy;
use vigil_runtime::{Engine, EngineConfig, FetchConfig, Fetcher, MemoryStore, Store, SystemClock};
use vigil_rustls::{VigilClientVerifier, VigilServerVerifier};

const SERVER_NAME: &str = "server.vigil.test";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn fetch_config() -> FetchConfig {
    FetchConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_total_timeout(Duration::from_secs(3))
        .with_retries(0)
        .with_use_env_proxy(false)
}

fn engine(pki: &Pki) -> Engine {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    Engine::open(
        vec![pki.root.cert.certificate_der()],
        store,
        EngineConfig::default().with_fetch(fetch_config()),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn chain(pki: &Pki, leaf: &Cert) -> Vec<CertificateDer<'static>> {
    vec![
        leaf.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ]
}

fn key(cert: &Cert) -> rustls::pki_types::PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.clone()).into()
}

async fn setup() -> (Responder, Pki) {
    start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap()
}

/// An mTLS server config: the fixture server's chain, clients verified by Vigil.
fn mtls_server(pki: &Pki, verifier: VigilClientVerifier) -> ServerConfig {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain(pki, &pki.server), key(&pki.server))
        .unwrap()
}

/// A client trusting the fixture root (rustls's own verifier) presenting `leaf`.
fn mtls_client(pki: &Pki, leaf: &Cert) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert.certificate_der()).unwrap();
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain(pki, leaf), key(leaf))
        .unwrap()
}

/// What each side saw: the server's accept result, and the line the client
/// read back (or its error).
struct Outcome {
    server: Result<(), std::io::Error>,
    client: Result<String, std::io::Error>,
}

/// One connection over 127.0.0.1: the client sends a line, the server echoes it.
async fn exchange(server: ServerConfig, client: ClientConfig) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tls = acceptor.accept(tcp).await?;
        let mut tls = BufReader::new(tls);
        let mut line = String::new();
        tls.read_line(&mut line).await?;
        tls.get_mut().write_all(line.as_bytes()).await?;
        tls.get_mut().shutdown().await?;
        Ok::<(), std::io::Error>(())
    });
    let connector = TlsConnector::from(Arc::new(client));
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"hello vigil\n").await?;
        let mut tls = BufReader::new(tls);
        let mut line = String::new();
        tls.read_line(&mut line).await?;
        if line.is_empty() {
            return Err(std::io::Error::other("closed without an answer"));
        }
        Ok(line)
    }
    .await;
    let server = tokio::time::timeout(Duration::from_secs(20), server_task)
        .await
        .unwrap()
        .unwrap();
    Outcome { server, client }
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

fn certificate_error(e: &std::io::Error) -> Option<&CertificateError> {
    match rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(c)) => Some(c),
        _ => None,
    }
}

/// The error of an unknown revocation status: `Other` holding the verdict.
fn is_unknown_status(e: Option<&CertificateError>) -> bool {
    match e {
        Some(CertificateError::Other(other)) => other
            .0
            .downcast_ref::<vigil_rustls::Rejected>()
            .is_some_and(|r| r.0.status == vigil_core::Status::Unknown),
        _ => false,
    }
}

fn assert_refused_unknown(outcome: &Outcome) {
    let server = outcome.server.as_ref().unwrap_err();
    assert!(is_unknown_status(certificate_error(server)), "{server:?}");
    let client = outcome.client.as_ref().unwrap_err();
    assert_eq!(
        rustls_error(client),
        Some(&rustls::Error::AlertReceived(
            AlertDescription::CertificateUnknown
        )),
        "{client:?}"
    );
}

fn assert_refused(outcome: &Outcome, expected: CertificateError, alert: AlertDescription) {
    let server = outcome.server.as_ref().unwrap_err();
    assert_eq!(certificate_error(server), Some(&expected), "{server:?}");
    let client = outcome.client.as_ref().unwrap_err();
    assert_eq!(
        rustls_error(client),
        Some(&rustls::Error::AlertReceived(alert)),
        "{client:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_completes_the_handshake_and_exchanges_a_line() {
    let (responder, pki) = setup().await;
    let verifier = VigilClientVerifier::new(engine(&pki));
    let outcome = exchange(mtls_server(&pki, verifier), mtls_client(&pki, &pki.client)).await;
    outcome.server.unwrap();
    assert_eq!(outcome.client.unwrap(), "hello vigil\n");
    // The verdict needed live data: the verifier fetched it inside the handshake.
    assert!(responder.counts().ocsp() + responder.counts().crl > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_client_is_refused_with_certificate_revoked() {
    let (_responder, pki) = setup().await;
    let verifier = VigilClientVerifier::new(engine(&pki));
    let outcome = exchange(
        mtls_server(&pki, verifier),
        mtls_client(&pki, &pki.revoked_client),
    )
    .await;
    assert_refused(
        &outcome,
        CertificateError::Revoked,
        AlertDescription::CertificateRevoked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_revoked_after_a_first_handshake_is_refused_on_the_next() {
    let (responder, pki) = setup().await;
    let engine = engine(&pki);
    let outcome = exchange(
        mtls_server(&pki, VigilClientVerifier::new(engine.clone())),
        mtls_client(&pki, &pki.client),
    )
    .await;
    outcome.server.unwrap();
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    engine.refresh_all().await;
    let outcome = exchange(
        mtls_server(&pki, VigilClientVerifier::new(engine)),
        mtls_client(&pki, &pki.client),
    )
    .await;
    assert_refused(
        &outcome,
        CertificateError::Revoked,
        AlertDescription::CertificateRevoked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_client_is_refused_with_certificate_expired() {
    let (_responder, pki) = setup().await;
    let verifier = VigilClientVerifier::new(engine(&pki));
    let outcome = exchange(
        mtls_server(&pki, verifier),
        mtls_client(&pki, &pki.expired_client),
    )
    .await;
    assert_refused(
        &outcome,
        CertificateError::Expired,
        AlertDescription::CertificateExpired,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_down_refuses_under_require_and_accepts_under_prefer() {
    let (responder, pki) = setup().await;
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();

    let verifier = VigilClientVerifier::new(engine(&pki));
    assert_eq!(verifier.options().policy, RevocationPolicy::Require);
    let outcome = exchange(mtls_server(&pki, verifier), mtls_client(&pki, &pki.client)).await;
    // Unknown status: certificate_unknown, the verdict carried in the error.
    assert_refused_unknown(&outcome);

    let verifier = VigilClientVerifier::new(engine(&pki)).with_policy(RevocationPolicy::Prefer);
    let outcome = exchange(mtls_server(&pki, verifier), mtls_client(&pki, &pki.client)).await;
    outcome.server.unwrap();
    assert_eq!(outcome.client.unwrap(), "hello vigil\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_verifier_hints_the_anchor_and_offers_the_provider_schemes() {
    use rustls::server::danger::ClientCertVerifier;
    let (_responder, pki) = setup().await;
    let verifier = VigilClientVerifier::new(engine(&pki));
    assert!(verifier.client_auth_mandatory());
    let hints = verifier.root_hint_subjects();
    assert_eq!(hints.len(), 1);
    // The DER Name with its outer SEQUENCE, as in the root's subject.
    assert_eq!(hints[0].as_ref()[0], 0x30);
    let root = &pki.root.cert.der;
    assert!(root
        .windows(hints[0].as_ref().len())
        .any(|w| w == hints[0].as_ref()));
    assert_eq!(
        verifier.supported_verify_schemes(),
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    );
}

/// A server without client auth, optionally stapling `ocsp`.
fn plain_server(pki: &Pki, ocsp: Vec<u8>) -> ServerConfig {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert_with_ocsp(chain(pki, &pki.server), key(&pki.server), ocsp)
        .unwrap()
}

fn vigil_client(verifier: VigilServerVerifier) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
}

/// One connection to `server` as `name`; the client's handshake result.
async fn connect_as(server: ServerConfig, client: ClientConfig, name: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let result = TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .map(drop);
    server_task.await.unwrap();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_verifier_accepts_the_fixture_server_and_rejects_a_wrong_name() {
    let (_responder, pki) = setup().await;
    let engine = engine(&pki);
    connect_as(
        plain_server(&pki, Vec::new()),
        vigil_client(VigilServerVerifier::new(engine.clone())),
        SERVER_NAME,
    )
    .await
    .unwrap();
    let err = connect_as(
        plain_server(&pki, Vec::new()),
        vigil_client(VigilServerVerifier::new(engine)),
        "elsewhere.vigil.test",
    )
    .await
    .unwrap_err();
    assert_eq!(
        certificate_error(&err),
        Some(&CertificateError::NotValidForName),
        "{err:?}"
    );
}

/// The responder's OCSP answer about the fixture server, as a server would staple it.
async fn ocsp_for_server(responder: &Responder, pki: &Pki) -> Vec<u8> {
    let request = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.server],
        CertIdHash::Sha1,
        None,
    )
    .unwrap();
    Fetcher::new(fetch_config())
        .unwrap()
        .fetch_ocsp(&responder.ocsp_url("intermediate"), &request)
        .await
        .unwrap()
        .body
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stapled_ocsp_is_used_when_the_responder_is_down() {
    let (responder, pki) = setup().await;
    let staple = ocsp_for_server(&responder, &pki).await;
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    // The intermediate's status comes from the root's CRL, given directly;
    // the leaf's can only come from the staple.
    let engine = engine(&pki);
    engine.add_crl(&pki.root_crl.der).unwrap();

    let err = connect_as(
        plain_server(&pki, Vec::new()),
        vigil_client(VigilServerVerifier::new(engine.clone())),
        SERVER_NAME,
    )
    .await
    .unwrap_err();
    assert!(is_unknown_status(certificate_error(&err)), "{err:?}");

    connect_as(
        plain_server(&pki, staple),
        vigil_client(VigilServerVerifier::new(engine)),
        SERVER_NAME,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stapled_revoked_answer_is_refused() {
    let (responder, pki) = setup().await;
    responder
        .revoke(&pki.server, Reason::KeyCompromise)
        .unwrap();
    let staple = ocsp_for_server(&responder, &pki).await;
    responder
        .set_behaviour(Target::All, Behaviour::Down)
        .unwrap();
    let engine = engine(&pki);
    engine.add_crl(&pki.root_crl.der).unwrap();
    let err = connect_as(
        plain_server(&pki, staple),
        vigil_client(VigilServerVerifier::new(engine)),
        SERVER_NAME,
    )
    .await
    .unwrap_err();
    assert_eq!(
        certificate_error(&err),
        Some(&CertificateError::Revoked),
        "{err:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_decides_cached_and_fetches_in_the_background() {
    let (responder, pki) = setup().await;
    let engine = engine(&pki);
    let verifier = VigilClientVerifier::new(engine.clone());
    let first = verifier.verdict(&chain(&pki, &pki.client));
    assert_eq!(first.reason, vigil_core::ReasonCode::RevocationDataMissing);
    // The background fetch runs once this task yields.
    let mut verdict = first;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        verdict = engine.verify_cached(&chain(&pki, &pki.client), verifier.options());
        if verdict.is_accepted() {
            break;
        }
    }
    assert!(verdict.is_accepted(), "{}", verdict.detail);
    assert!(responder.counts().ocsp() + responder.counts().crl > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_is_asked_only_about_accepted_chains_and_refuses_with_access_denied() {
    let (_responder, pki) = setup().await;
    let engine = engine(&pki);
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let only = |allowed: Vec<u8>| -> vigil_rustls::Authorizer {
        let asked = asked.clone();
        Arc::new(move |leaf: &CertificateDer<'_>| {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if leaf.as_ref() == allowed.as_slice() {
                Ok(())
            } else {
                Err("not the allowed leaf".into())
            }
        })
    };
    let client_der = pki.client.certificate_der().to_vec();

    // The allowed leaf passes the authorizer.
    let verifier = VigilClientVerifier::new(engine.clone()).with_authorizer(only(client_der));
    let outcome = exchange(mtls_server(&pki, verifier), mtls_client(&pki, &pki.client)).await;
    outcome.server.unwrap();
    assert_eq!(outcome.client.unwrap(), "hello vigil\n");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A valid chain the authorizer refuses: access_denied.
    let verifier = VigilClientVerifier::new(engine.clone()).with_authorizer(only(Vec::new()));
    let outcome = exchange(mtls_server(&pki, verifier), mtls_client(&pki, &pki.client)).await;
    assert_refused(
        &outcome,
        CertificateError::ApplicationVerificationFailure,
        AlertDescription::AccessDenied,
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A revoked chain is refused by Vigil before the authorizer is asked,
    // even one that would admit everything.
    let verifier = VigilClientVerifier::new(engine.clone()).with_authorizer({
        let asked = asked.clone();
        Arc::new(move |_: &CertificateDer<'_>| {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
    });
    let outcome = exchange(
        mtls_server(&pki, verifier),
        mtls_client(&pki, &pki.revoked_client),
    )
    .await;
    assert_refused(
        &outcome,
        CertificateError::Revoked,
        AlertDescription::CertificateRevoked,
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);

    // The server verifier asks too.
    let err = connect_as(
        plain_server(&pki, Vec::new()),
        vigil_client(VigilServerVerifier::new(engine).with_authorizer(only(Vec::new()))),
        SERVER_NAME,
    )
    .await
    .unwrap_err();
    assert_eq!(
        certificate_error(&err),
        Some(&CertificateError::ApplicationVerificationFailure),
        "{err:?}"
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
}
