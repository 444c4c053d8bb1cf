//! One route at work: its listener, and each connection from accept to
//! close, in server mode (mTLS in, plain or TLS out) or client mode (plain
//! in, mTLS out).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vigil_core::CertificateDer;
use vigil_sidecar::{Live, LiveConnection, Refused};

use super::metrics::{Closed, Outcome, ProxyMetrics, RouteCounters};
use super::pp2;
use super::settings::{Mode, Route};
use super::splice::{splice, Control, End};
use super::tls::{Identity, Rules};

/// Time to reach the target.
/// At most one log line per this while connections are refused at the cap.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time given to a closing leg to send close_notify / FIN.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What every connection of every route shares.
pub(crate) struct Shared {
    pub(crate) live: Live,
    /// One permit per connection, all routes together.
    pub(crate) limit: Arc<Semaphore>,
    pub(crate) max: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    /// Stop accepting.
    pub(crate) stop: watch::Receiver<bool>,
    /// Close what is still open (the drain deadline passed).
    pub(crate) force: watch::Receiver<bool>,
    pub(crate) metrics: Arc<ProxyMetrics>,
}

/// A route ready to accept.
pub(crate) struct Running {
    /// The route, with the address actually bound as `listen`.
    pub(crate) route: Route,
    /// The listen address as configured (port 0 stays 0): how a reloaded
    /// `[[proxy]]` table finds its route.
    pub(crate) configured: SocketAddr,
    pub(crate) identity: Arc<Identity>,
    pub(crate) rules: Rules,
    pub(crate) rules_changed: watch::Sender<u64>,
    pub(crate) tls: Tls,
    pub(crate) counters: Arc<RouteCounters>,
}

/// The TLS side of a route.
pub(crate) enum Tls {
    Server {
        acceptor: TlsAcceptor,
        /// `--target-tls` (swapped when SIGHUP reloads its anchors).
        target: Option<arc_swap::ArcSwap<TlsConnector>>,
    },
    Client {
        connector: TlsConnector,
    },
}

/// Accepts until told to stop.
pub(crate) async fn accept_loop(running: Arc<Running>, listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    let mut last_limit_log: Option<Instant> = None;
    let mut refused_since_log = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(listen = %running.route.listen, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&shared.limit).try_acquire_owned() else {
            shared.metrics.at_limit.fetch_add(1, Ordering::Relaxed);
            // A flood at the cap is one line per LIMIT_LOG_EVERY, with the
            // count refused since (all of them are in the metrics).
            refused_since_log += 1;
            if last_limit_log.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
                tracing::warn!(
                    listen = %running.route.listen,
                    %peer,
                    max = shared.max,
                    refused = refused_since_log,
                    "connection refused: the proxy holds its most connections"
                );
                last_limit_log = Some(Instant::now());
                refused_since_log = 0;
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let running = Arc::clone(&running);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            shared.metrics.open.fetch_add(1, Ordering::Relaxed);
            match running.route.mode {
                Mode::Server => serve_client(&running, &shared, tcp, peer).await,
                Mode::Client => serve_local(&running, &shared, tcp, peer).await,
            }
            shared.metrics.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Server mode: mutual TLS from a client, then the target.
async fn serve_client(running: &Running, shared: &Shared, tcp: TcpStream, peer: SocketAddr) {
    let route = &running.route;
    let Tls::Server { acceptor, target } = &running.tls else {
        return;
    };
    let local = tcp.local_addr().unwrap_or(route.listen);
    let mut tls = match tokio::time::timeout(shared.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            running.counters.outcome(Outcome::HandshakeFailed);
            tracing::info!(listen = %route.listen, %peer, error = %e, "TLS handshake failed; connection dropped");
            return;
        }
        Err(_) => {
            running.counters.outcome(Outcome::HandshakeTimeout);
            tracing::info!(
                listen = %route.listen,
                %peer,
                timeout_secs = shared.handshake_timeout.as_secs(),
                "TLS handshake not completed in time; connection dropped"
            );
            return;
        }
    };
    let (chain, version) = {
        let conn = tls.get_ref().1;
        (
            owned_chain(conn.peer_certificates()),
            tls_version(conn.protocol_version()),
        )
    };
    let Some(mut live) = admit(running, shared, &chain, peer).await else {
        close_leg(&mut tls).await;
        return;
    };
    let Some(leaf) = chain.first().cloned() else {
        return;
    };
    let backend = match connect(&route.target).await {
        Ok(b) => b,
        Err(e) => {
            running.counters.outcome(Outcome::TargetUnreachable);
            tracing::warn!(listen = %route.listen, target = %route.target, %peer, error = %e, "target unreachable; client connection closed");
            close_leg(&mut tls).await;
            return;
        }
    };
    let mut backend = backend;
    if route.proxy_protocol {
        let header = proxy_header(&live, &leaf, peer, local, version);
        if let Err(e) = backend.write_all(&header).await {
            tracing::warn!(target = %route.target, error = %e, "PROXY header not sent; connection closed");
            close_leg(&mut tls).await;
            return;
        }
    }
    let mut ctl = control(running, shared, &mut live, leaf);
    match target {
        None => {
            running.counters.outcome(Outcome::Spliced);
            let end = splice(&mut tls, &mut backend, &mut ctl).await;
            finish(running, peer, ctl.live, end, &mut tls, &mut backend).await;
        }
        Some(connector) => {
            let connector = connector.load_full();
            let name = match server_name(&route.target) {
                Some(n) => n,
                None => return,
            };
            let handshake = connector.connect(name, backend);
            let mut upstream = match tokio::time::timeout(shared.handshake_timeout, handshake).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    running.counters.outcome(Outcome::TargetUnreachable);
                    tracing::warn!(target = %route.target, error = %e, "TLS to the target failed; client connection closed");
                    close_leg(&mut tls).await;
                    return;
                }
                Err(_) => {
                    running.counters.outcome(Outcome::TargetUnreachable);
                    tracing::warn!(target = %route.target, "TLS to the target timed out; client connection closed");
                    close_leg(&mut tls).await;
                    return;
                }
            };
            running.counters.outcome(Outcome::Spliced);
            let end = splice(&mut tls, &mut upstream, &mut ctl).await;
            finish(running, peer, ctl.live, end, &mut tls, &mut upstream).await;
        }
    }
}

/// Client mode: a local plain connection, then mutual TLS to the target.
async fn serve_local(running: &Running, shared: &Shared, mut local: TcpStream, peer: SocketAddr) {
    let route = &running.route;
    let Tls::Client { connector } = &running.tls else {
        return;
    };
    let Ok(name) = ServerName::try_from(route.name.clone()) else {
        return;
    };
    let tcp = match connect(&route.target).await {
        Ok(t) => t,
        Err(e) => {
            running.counters.outcome(Outcome::TargetUnreachable);
            tracing::warn!(listen = %route.listen, target = %route.target, error = %e, "target unreachable; local connection closed");
            return;
        }
    };
    let mut tls = match tokio::time::timeout(shared.handshake_timeout, connector.connect(name, tcp))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            running.counters.outcome(Outcome::HandshakeFailed);
            tracing::warn!(listen = %route.listen, target = %route.target, error = %e, "TLS handshake with the target failed; local connection closed");
            return;
        }
        Err(_) => {
            running.counters.outcome(Outcome::HandshakeTimeout);
            tracing::warn!(listen = %route.listen, target = %route.target, "TLS handshake with the target timed out; local connection closed");
            return;
        }
    };
    let chain = owned_chain(tls.get_ref().1.peer_certificates());
    let Some(mut live) = admit(running, shared, &chain, peer).await else {
        close_leg(&mut tls).await;
        return;
    };
    let Some(leaf) = chain.first().cloned() else {
        return;
    };
    let mut ctl = control(running, shared, &mut live, leaf);
    running.counters.outcome(Outcome::Spliced);
    let end = splice(&mut local, &mut tls, &mut ctl).await;
    finish(running, peer, ctl.live, end, &mut tls, &mut local).await;
}

/// The allow rules again (a resumed session skipped the verifier), then
/// tracking. None: refused, logged.
async fn admit(
    running: &Running,
    shared: &Shared,
    chain: &[CertificateDer<'static>],
    peer: SocketAddr,
) -> Option<LiveConnection> {
    let route = &running.route;
    let Some(leaf) = chain.first() else {
        tracing::info!(listen = %route.listen, %peer, "peer sent no certificate; connection closed");
        return None;
    };
    if let Err(why) = running.rules.load().permits(leaf) {
        running.counters.outcome(Outcome::NotAllowed);
        tracing::info!(listen = %route.listen, %peer, reason = %why, "peer refused by the allow rules");
        return None;
    }
    let mut labels = BTreeMap::new();
    labels.insert("listen".to_owned(), route.listen.to_string());
    labels.insert("peer".to_owned(), peer.to_string());
    labels.insert("target".to_owned(), route.target.clone());
    match shared
        .live
        .attach(chain.to_vec(), route.usage, labels)
        .await
    {
        Ok(live) => {
            tracing::debug!(listen = %route.listen, %peer, connection = %live.id(), "connection tracked");
            Some(live)
        }
        Err(Refused::Rejected(verdict)) => {
            running.counters.outcome(Outcome::Untrusted);
            tracing::info!(
                listen = %route.listen,
                %peer,
                reason = %verdict.reason,
                detail = %verdict.detail,
                "peer no longer trusted at tracking time; connection closed"
            );
            None
        }
        Err(e) => {
            tracing::warn!(listen = %route.listen, %peer, error = %e, "connection not tracked; closed");
            None
        }
    }
}

fn control<'a>(
    running: &Running,
    shared: &Shared,
    live: &'a mut LiveConnection,
    leaf: CertificateDer<'static>,
) -> Control<'a> {
    Control {
        live,
        leaf,
        rules: Arc::clone(&running.rules),
        rules_changed: running.rules_changed.subscribe(),
        idle: shared.idle_timeout,
        force: shared.force.clone(),
    }
}

/// Closes both legs after a splice ended, and says why.
async fn finish<A, B>(
    running: &Running,
    peer: SocketAddr,
    live: &LiveConnection,
    end: End,
    secure: &mut A,
    other: &mut B,
) where
    A: AsyncWrite + Unpin,
    B: AsyncWrite + Unpin,
{
    let route = &running.route;
    let counters = &running.counters;
    match end {
        End::Done(Ok((up, down))) => {
            counters.closed(Closed::Ended);
            counters.bytes(up, down);
            tracing::debug!(listen = %route.listen, %peer, connection = %live.id(), up, down, "connection ended");
        }
        End::Done(Err(e)) => {
            counters.closed(Closed::Ended);
            tracing::debug!(listen = %route.listen, %peer, connection = %live.id(), error = %e, "connection ended with an error");
        }
        End::TornDown(event) => {
            counters.closed(Closed::TornDown);
            // Both legs at once: the event is already on /v1/events.
            tokio::join!(close_leg(secure), close_leg(other));
            tracing::warn!(
                listen = %route.listen,
                %peer,
                connection = %live.id(),
                reason = %event.reason,
                serial = %vigil_core::text::hex(&event.serial),
                detail = %event.detail,
                "connection torn down: peer certificate no longer trusted"
            );
            return;
        }
        End::NotAllowed(why) => {
            counters.closed(Closed::NotAllowed);
            tracing::warn!(listen = %route.listen, %peer, connection = %live.id(), reason = %why, "connection closed: the reloaded allow rules refuse its peer");
        }
        End::Idle => {
            counters.closed(Closed::Idle);
            tracing::info!(listen = %route.listen, %peer, connection = %live.id(), "connection closed: idle timeout");
        }
        End::Shutdown => {
            counters.closed(Closed::Shutdown);
            tracing::info!(listen = %route.listen, %peer, connection = %live.id(), "connection closed: the proxy is stopping");
        }
    }
    tokio::join!(close_leg(secure), close_leg(other));
}

/// close_notify (TLS) and FIN, bounded in time.
async fn close_leg<S: AsyncWrite + Unpin>(stream: &mut S) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
}

async fn connect(target: &str) -> std::io::Result<TcpStream> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

fn server_name(target: &str) -> Option<ServerName<'static>> {
    let (host, _) = target.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned()).ok()
}

fn owned_chain(certs: Option<&[CertificateDer<'_>]>) -> Vec<CertificateDer<'static>> {
    certs
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect()
}

fn tls_version(version: Option<rustls::ProtocolVersion>) -> &'static str {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    }
}

fn proxy_header(
    live: &LiveConnection,
    leaf: &CertificateDer<'_>,
    peer: SocketAddr,
    local: SocketAddr,
    version: &str,
) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let parsed = x509_parser::certificate::X509Certificate::from_der(leaf).ok();
    let subject = parsed
        .as_ref()
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default();
    let common_name = parsed.as_ref().and_then(|(_, c)| {
        c.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
    });
    let id = live.id();
    pp2::header(&pp2::Facts {
        source: peer,
        destination: local,
        connection_id: &id,
        cert_sha256: vigil_core::sha256(leaf),
        subject: &subject,
        common_name: common_name.as_deref(),
        tls_version: version,
    })
}
