//! A connection lives only as long as its peer's certificate stays trusted: an
//! mTLS server verifies clients with Vigil, tracks each connection, and the
//! connection of a client whose certificate is revoked is closed.
use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
use pki_fixtures::{PkiDir, PkiOptions, Reason};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::input::{load_certificates, load_private_key};
use vigil_core::TeardownReason;
use vigil_runtime::{
    Engine, EngineConfig, MemoryStore, Store, SystemClock, Tracker, TrackerConfig,
};
use vigil_rustls::{TornDown, VigilClientVerifier};

type BoxError = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A test PKI in a temporary directory, its CRLs and OCSP served on 127.0.0.1.
    let (responder, pki) =
        start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default()).await?;
    let files = PkiDir::new(&pki)?;

    // The server: client certificates verified by Vigil, connections tracked.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new()); // or SledStore::open(dir)
    let anchors = load_certificates(&files.file("root.pem"))?;
    let engine = Engine::open(
        anchors,
        store,
        EngineConfig::default(),
        Arc::new(SystemClock),
    )?;
    let verifier = VigilClientVerifier::new(engine.clone()); // require, whole chain
    let tracker = Tracker::new(
        &engine,
        // Enforcement::Enforce; .with_enforcement(Enforcement::DryRun) to roll out.
        TrackerConfig::default().with_options(verifier.options().clone()),
    );
    let expiry = tracker.spawn_expiry(Duration::from_secs(1)); // notAfter, nextUpdate
    let scheduler = engine.spawn_scheduler(); // CRL/OCSP refresh; runs until abort()
    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(
                load_certificates(&files.file("server.chain.pem"))?,
                load_private_key(&files.file("server.key.pem"))?,
            )?;
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;

    // A client with the fixture's client certificate (any mTLS client will do).
    let client = tokio::spawn(connect(addr, files.path().to_owned()));

    // Per accepted TCP connection: handshake, then tracked until dropped.
    let (tcp, peer) = listener.accept().await?;
    let labels = BTreeMap::from([("peer".to_owned(), peer.to_string())]);
    let mut stream = vigil_rustls::accept(&acceptor, tcp, &tracker, labels).await?;
    let mut client = client.await??;
    client.write_all(b"ping").await?;
    let mut buf = [0; 4];
    stream.read_exact(&mut buf).await?;

    // The CA revokes the client; the engine fetches the new CRL and OCSP
    // answer (the scheduler would in time; refresh_all does it now).
    responder.revoke(&pki.client, Reason::KeyCompromise)?;
    engine.refresh_all().await;

    // The server's stream sent close_notify and fails with the teardown...
    let Err(error) = stream.read(&mut buf).await else {
        return Err("the connection outlived the revocation".into());
    };
    let event = TornDown::from_io(&error).ok_or("not a teardown")?;
    assert_eq!(event.reason, TeardownReason::Revoked);
    println!("torn down: {} ({})", event.subject, event.detail);
    // ...and the client sees the connection end.
    assert_eq!(client.read(&mut buf).await?, 0);

    scheduler.abort();
    expiry.abort();
    Ok(())
}

async fn connect(
    addr: std::net::SocketAddr,
    files: PathBuf,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, BoxError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(load_certificates(&files.join("root.pem"))?);
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                load_certificates(&files.join("client.chain.pem"))?,
                load_private_key(&files.join("client.key.pem"))?,
            )?;
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("server.vigil.test")?;
    Ok(TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}
