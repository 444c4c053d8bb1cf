//! The TLS clients: each connects with its own certificate, keeps the
//! connection busy and reports the moment the server closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::provider;

const SERVER_NAME: &str = "server.vigil.test";

/// What one client saw: when its connection closed.
pub(super) type Closed = (usize, Instant);

/// One client: connects, exchanges a first line, then keeps sending a line
/// every `period` and reading the echoes; reports the moment the server
/// closes the connection.
pub(super) async fn client(
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

/// What a client needs: its chain (leaf first, DER) and PKCS#8 key.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ClientSpec {
    pub(super) chain: Vec<Vec<u8>>,
    pub(super) key: Vec<u8>,
}

pub(super) fn client_config(spec: &ClientSpec, root: &[u8]) -> Result<Arc<ClientConfig>, String> {
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
pub(super) fn spawn_clients(
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
