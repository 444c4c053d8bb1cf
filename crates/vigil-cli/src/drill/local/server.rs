//! The in-process mTLS echo server, on vigil-rustls with a connection
//! tracker (or, with `--broken-server`, without one).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pki_fixtures::Pki;
use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use vigil_core::{RevocationPolicy, Usage, VerifyOptions};
use vigil_runtime::{Engine, Tracker, TrackerConfig};
use vigil_rustls::VigilClientVerifier;

use super::{key, provider};

/// The in-process mTLS echo server.
pub(super) struct Server {
    pub(super) addr: SocketAddr,
    pub(super) tracker: Tracker,
    pub(super) tasks: JoinSet<()>,
}

pub(super) async fn start_server(
    pki: &Pki,
    engine: &Engine,
    policy: RevocationPolicy,
    broken: bool,
) -> Result<Server, String> {
    let tracker = Tracker::new(
        engine,
        TrackerConfig::default()
            .with_options(VerifyOptions::new(Usage::Client).with_policy(policy)),
    );
    let verifier = VigilClientVerifier::new(engine.clone()).with_policy(policy);
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![
                pki.server.certificate_der(),
                pki.intermediate.cert.certificate_der(),
            ],
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
