//! tokio-rustls streams tied to a [`Tracker`] (documented on
//! [`GuardedStream`]).

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor};
use vigil_core::{ConnectionId, TeardownEvent};
use vigil_runtime::{Enforcement, Tracked, Tracker};

/// How long a torn-down connection that nobody reads or writes is given to
/// close itself (sending close_notify) before its socket is shut down (see
/// [`GuardedStream`]).
pub const CLOSE_GRACE: Duration = Duration::from_millis(20);

/// Why a [`GuardedStream`] was closed: the error inside the [`io::Error`]
/// (kind [`io::ErrorKind::ConnectionAborted`]) its reads, writes and
/// flushes return once its peer is no longer trusted, and that [`accept`]
/// and [`connect`] return for a peer refused at tracking time. It carries
/// the [`TeardownEvent`]: reason (`revoked`, `expired`, `unverifiable`,
/// `untrusted`, `denied`), the certificate concerned, a detail and the time.
///
/// ```
/// # fn on_error(error: std::io::Error) {
/// if let Some(event) = vigil_rustls::TornDown::from_io(&error) {
///     eprintln!("closed: {} ({})", event.reason, event.detail);
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornDown(pub TeardownEvent);

impl std::fmt::Display for TornDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection {} torn down ({}): {}",
            self.0.connection_id, self.0.reason, self.0.detail
        )
    }
}

impl std::error::Error for TornDown {}

impl TornDown {
    /// The teardown behind an I/O error, if it is one.
    pub fn from_io(error: &io::Error) -> Option<&TeardownEvent> {
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<TornDown>())
            .map(|t| &t.0)
    }

    fn io_error(&self) -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, self.clone())
    }
}

/// A TLS stream whose peer certificate chain can be tracked: implemented
/// for tokio-rustls's server and client streams over a [`TcpStream`].
pub trait TlsPeer: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The peer's chain, leaf first; none when the peer sent no certificate.
    fn peer_chain(&self) -> Option<Vec<CertificateDer<'static>>>;
    /// Whether the handshake resumed an earlier session.
    fn resumed(&self) -> bool;
    /// A second handle on the TCP socket, for the idle-connection watchdog.
    fn socket(&self) -> Option<std::net::TcpStream>;
}

fn owned_chain(certs: Option<&[CertificateDer<'_>]>) -> Option<Vec<CertificateDer<'static>>> {
    certs
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
}

#[cfg(unix)]
fn dup_socket(tcp: &TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    tcp.as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::net::TcpStream::from)
}

#[cfg(not(unix))]
fn dup_socket(_tcp: &TcpStream) -> Option<std::net::TcpStream> {
    None
}

impl TlsPeer for server::TlsStream<TcpStream> {
    fn peer_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        owned_chain(self.get_ref().1.peer_certificates())
    }
    fn resumed(&self) -> bool {
        self.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed)
    }
    fn socket(&self) -> Option<std::net::TcpStream> {
        dup_socket(self.get_ref().0)
    }
}

impl TlsPeer for client::TlsStream<TcpStream> {
    fn peer_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        owned_chain(self.get_ref().1.peer_certificates())
    }
    fn resumed(&self) -> bool {
        self.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed)
    }
    fn socket(&self) -> Option<std::net::TcpStream> {
        dup_socket(self.get_ref().0)
    }
}

/// Shared between a stream and its teardown callback.
#[derive(Default)]
struct Guard {
    /// The connection's teardown signal (set once tracked).
    signal: std::sync::OnceLock<vigil_core::TeardownSignal>,
    /// The signal fired (the event is the signal's).
    fired: AtomicBool,
    read: Mutex<Option<Waker>>,
    write: Mutex<Option<Waker>>,
    /// The stream sent close_notify or was dropped.
    closed: AtomicBool,
}

impl Guard {
    fn event(&self) -> Option<TeardownEvent> {
        if !self.fired.load(Ordering::Acquire) {
            return None;
        }
        self.signal
            .get()
            .and_then(vigil_core::TeardownSignal::event)
    }

    fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn clear(slot: &Mutex<Option<Waker>>) {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Marks the stream torn down and wakes the tasks waiting on it (the
    /// event itself stays with the signal, read by the stream's own task).
    /// Returns whether none was waiting (no poll left it Pending).
    fn fire(&self) -> bool {
        self.fired.store(true, Ordering::Release);
        let mut idle = true;
        for slot in [&self.read, &self.write] {
            let waker = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(waker) = waker {
                idle = false;
                // After the rest of the batch is signalled and published.
                vigil_runtime::wake_after_delivery(waker);
            }
        }
        idle
    }
}

/// A TLS stream tracked by a [`Tracker`]: made by [`accept`], [`connect`]
/// or [`GuardedStream::track`], it reads and writes like the stream it
/// wraps until its peer stops being trusted.
///
/// Tracking starts once the handshake completed, full or resumed: the peer
/// chain is verified again against current data then (rustls does not call
/// the verifier on resumption), and a chain no longer trusted is closed at
/// once (close_notify sent, [`TornDown`] returned). A peer that sent no
/// certificate cannot be tracked: the stream is returned unguarded
/// ([`GuardedStream::id`] is `None`).
///
/// # Teardown
///
/// When the tracker says the peer must go (revocation, expiry, revocation
/// data that can no longer be verified under `require`, anchor removal, an
/// operator's deny), under [`Enforcement::Enforce`] (the default):
///
/// 1. a pending or next read, write or flush wakes, sends the TLS
///    close_notify alert and shuts the TCP write side (so the peer sees the
///    close at once), then fails with [`io::ErrorKind::ConnectionAborted`]
///    whose inner error is a [`TornDown`] carrying the event (read it with
///    [`TornDown::from_io`], or later with [`GuardedStream::teardown`]);
/// 2. if the application is not using the stream at all, a watchdog shuts
///    the socket down after [`CLOSE_GRACE`], so an idle connection goes too
///    (this needs a tokio runtime when the stream is tracked).
///
/// Under [`Enforcement::DryRun`] the stream is left alone: the tracker only
/// emits and counts the event ([`Tracker::subscribe`],
/// [`vigil_runtime::TrackerMetrics::dry_run`]).
///
/// Dropping the stream untracks the connection.
pub struct GuardedStream<S> {
    inner: S,
    tracker: Tracker,
    id: Option<ConnectionId>,
    guard: Arc<Guard>,
    /// close_notify sent after a teardown.
    shut: bool,
}

impl<S: TlsPeer> GuardedStream<S> {
    /// Tracks an established stream (e.g. from your own accept loop) with
    /// `labels`; a `handshake` label (`full` or `resumed`) is added. A peer
    /// without a certificate cannot be tracked: it is counted
    /// ([`vigil_runtime::TrackerMetrics::untracked`]) and the stream is
    /// returned unguarded. A chain that is no longer trusted (e.g. a
    /// session resumed after revocation) is closed at once: close_notify is
    /// sent and the error is returned.
    pub async fn track(
        mut stream: S,
        tracker: &Tracker,
        mut labels: BTreeMap<String, String>,
    ) -> io::Result<Self> {
        let guard = Arc::new(Guard::default());
        let Some(chain) = stream.peer_chain() else {
            tracker.count_untracked();
            return Ok(Self {
                inner: stream,
                tracker: tracker.clone(),
                id: None,
                guard,
                shut: false,
            });
        };
        let kind = if stream.resumed() { "resumed" } else { "full" };
        labels.insert("handshake".into(), kind.into());
        let Tracked { id, signal, .. } = tracker.track_fetching(chain, labels).await;
        if let Some(event) = signal.event() {
            if tracker.enforcement() == Enforcement::Enforce {
                // Refused: never handed to the application.
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                return Err(TornDown(event).io_error());
            }
        }
        if tracker.enforcement() == Enforcement::Enforce {
            let callback_guard = Arc::clone(&guard);
            let socket = stream.socket();
            let runtime = tokio::runtime::Handle::try_current().ok();
            let _ = guard.signal.set(signal.clone());
            signal.on_fire(Box::new(move |_| {
                // A stream with a pending read or write closes itself as
                // soon as it is woken; only one nobody polls needs the
                // watchdog.
                let idle = callback_guard.fire();
                if let (true, Some(socket), Some(runtime)) = (idle, socket, runtime) {
                    let guard = callback_guard;
                    runtime.spawn(async move {
                        tokio::time::sleep(CLOSE_GRACE).await;
                        if !guard.closed.load(Ordering::Acquire) {
                            let _ = socket.shutdown(std::net::Shutdown::Both);
                        }
                    });
                }
            }));
        }
        Ok(Self {
            inner: stream,
            tracker: tracker.clone(),
            id: Some(id),
            guard,
            shut: false,
        })
    }
}

impl<S> GuardedStream<S> {
    /// The tracked connection's id (none when the peer had no certificate).
    pub fn id(&self) -> Option<ConnectionId> {
        self.id
    }

    /// The teardown event, once the connection was torn down.
    pub fn teardown(&self) -> Option<TeardownEvent> {
        self.guard.event()
    }

    /// The TLS stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> GuardedStream<S> {
    /// After a teardown: sends close_notify (once), then yields the error.
    fn poll_torn_down(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Error>> {
        let Some(event) = self.guard.event() else {
            return Poll::Ready(None);
        };
        if !self.shut {
            match Pin::new(&mut self.inner).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => {
                    self.shut = true;
                    self.guard.closed.store(true, Ordering::Release);
                }
            }
        }
        Poll::Ready(Some(TornDown(event).io_error()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        Guard::register(&this.guard.read, cx.waker());
        match this.poll_torn_down(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => {}
        }
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            // Nobody waits on this stream until the next Pending.
            Guard::clear(&this.guard.read);
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Guard::register(&this.guard.write, cx.waker());
        match this.poll_torn_down(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => {}
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if polled.is_ready() {
            Guard::clear(&this.guard.write);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        Guard::register(&this.guard.write, cx.waker());
        match this.poll_torn_down(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => {}
        }
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if polled.is_ready() {
            Guard::clear(&this.guard.write);
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.inner).poll_shutdown(cx);
        if done.is_ready() {
            this.shut = true;
            this.guard.closed.store(true, Ordering::Release);
        }
        done
    }
}

impl<S> Drop for GuardedStream<S> {
    fn drop(&mut self) {
        self.guard.closed.store(true, Ordering::Release);
        if let Some(id) = self.id {
            self.tracker.untrack(id);
        }
    }
}

impl<S> std::fmt::Debug for GuardedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("id", &self.id)
            .field("teardown", &self.guard.event())
            .finish_non_exhaustive()
    }
}

/// Accepts a TLS connection on `tcp` with `acceptor` and tracks it (see
/// [`GuardedStream::track`]).
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    tracker: &Tracker,
    labels: BTreeMap<String, String>,
) -> io::Result<GuardedStream<server::TlsStream<TcpStream>>> {
    let tls = acceptor.accept(tcp).await?;
    GuardedStream::track(tls, tracker, labels).await
}

/// Connects with `connector` over `tcp` to `name` and tracks the server's
/// chain (see [`GuardedStream::track`]); `tracker` should verify with
/// `usage: server`.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
    tcp: TcpStream,
    tracker: &Tracker,
    labels: BTreeMap<String, String>,
) -> io::Result<GuardedStream<client::TlsStream<TcpStream>>> {
    let tls = connector.connect(name, tcp).await?;
    GuardedStream::track(tls, tracker, labels).await
}
