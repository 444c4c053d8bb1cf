//! The socket side: a listener that can be closed and re-opened on the same port while
//! the server keeps running (for "responder down"), and connections that a handler can
//! order to be closed or reset instead of answered.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

use crate::FixtureError;

/// The listening socket, shared between the accept loop and the [`super::Responder`]
/// handle so that closing it takes effect synchronously.
pub(crate) struct Socket {
    addr: SocketAddr,
    runtime: Handle,
    listener: Mutex<Option<TcpListener>>,
    /// The accept loop's waker, to be woken whenever the listener changes.
    waker: Mutex<Option<Waker>>,
}

impl Socket {
    /// Binds `addr` (port 0: any free port). Must run inside a tokio runtime.
    pub(crate) fn bind(addr: SocketAddr) -> Result<Arc<Self>, FixtureError> {
        let runtime = Handle::try_current().map_err(|e| FixtureError::Net {
            what: "the responder needs a tokio runtime".into(),
            source: io::Error::other(e),
        })?;
        let listener = bind_now(&runtime, addr)?;
        let addr = listener.local_addr().map_err(|source| FixtureError::Net {
            what: format!("reading the address bound for {addr}"),
            source,
        })?;
        Ok(Arc::new(Self {
            addr,
            runtime,
            listener: Mutex::new(Some(listener)),
            waker: Mutex::new(None),
        }))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The runtime the socket was bound on, which also runs the server.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Opens (re-binding the same port) or closes the listening socket. While closed,
    /// connecting fails with "connection refused".
    pub(crate) fn set_open(&self, open: bool) -> Result<(), FixtureError> {
        let mut listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        match (open, listener.is_some()) {
            (true, false) => *listener = Some(bind_now(&self.runtime, self.addr)?),
            (false, true) => *listener = None,
            _ => return Ok(()),
        }
        drop(listener);
        if let Some(waker) = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            waker.wake();
        }
        Ok(())
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        let listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner);
        match listener.as_ref() {
            Some(l) => l.poll_accept(cx),
            None => Poll::Pending,
        }
    }
}

/// Binds with the standard library (which sets `SO_REUSEADDR` on Unix, so the port can be
/// bound again while old connections linger in TIME_WAIT) and registers with `runtime`.
fn bind_now(runtime: &Handle, addr: SocketAddr) -> Result<TcpListener, FixtureError> {
    let net = |source| FixtureError::Net {
        what: format!("binding {addr}"),
        source,
    };
    let std_listener = std::net::TcpListener::bind(addr).map_err(net)?;
    std_listener.set_nonblocking(true).map_err(net)?;
    let _guard = runtime.enter();
    TcpListener::from_std(std_listener).map_err(net)
}

/// The [`Listener`] handed to `axum::serve`.
pub(crate) struct ResponderListener(pub(crate) Arc<Socket>);

impl Listener for ResponderListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match poll_fn(|cx| self.0.poll_accept(cx)).await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Conn {
                        stream,
                        fate: Arc::new(AtomicU8::new(FATE_ANSWER)),
                    };
                    return (conn, addr);
                }
                // Per-connection failures (the peer gave up before accept) are skipped;
                // anything else (e.g. out of descriptors) is retried after a pause.
                Err(e) if is_connection_error(&e) => {}
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.addr())
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

const FATE_ANSWER: u8 = 0;
const FATE_CLOSE: u8 = 1;
const FATE_RESET: u8 = 2;

/// An accepted connection. Once a handler has decided its fate through a [`ConnHandle`],
/// the first write fails: the server drops the connection before a byte of the response
/// is sent, with a FIN ([`ConnHandle::close`]) or an RST ([`ConnHandle::reset`]).
pub(crate) struct Conn {
    stream: TcpStream,
    fate: Arc<AtomicU8>,
}

impl Conn {
    fn doomed(&self) -> Option<io::Error> {
        match self.fate.load(Ordering::Acquire) {
            FATE_ANSWER => None,
            FATE_RESET => {
                // SO_LINGER 0: close() sends RST and discards unsent data.
                let _ = self.stream.set_zero_linger();
                Some(io::ErrorKind::ConnectionReset.into())
            }
            _ => Some(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.doomed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.doomed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.doomed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Lets a handler decide that its connection gets no answer. Reaches handlers as
/// `ConnectInfo<ConnHandle>`.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle(Arc<AtomicU8>);

impl ConnHandle {
    /// Close the connection (FIN) instead of answering.
    pub(crate) fn close(&self) {
        let _ =
            self.0
                .compare_exchange(FATE_ANSWER, FATE_CLOSE, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Reset the connection (RST) instead of answering.
    pub(crate) fn reset(&self) {
        self.0.store(FATE_RESET, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, ResponderListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, ResponderListener>) -> Self {
        Self(Arc::clone(&stream.io().fate))
    }
}
