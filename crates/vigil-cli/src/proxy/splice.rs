//! Moving bytes between the two legs of a proxied connection until either
//! side ends it, its peer stops being trusted, the allow rules stop
//! matching it, it idles too long, or the proxy stops.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;
use vigil_core::{CertificateDer, TeardownEvent};
use vigil_sidecar::LiveConnection;

use super::tls::Rules;

/// Buffer per direction while bytes flow: large enough that one bulk
/// stream is not held back by the copy (TLS records are at most 16 KiB of
/// plaintext). An idle direction holds none (see [`Half`]).
const BUFFER: usize = 64 * 1024;

/// How a spliced connection ended.
pub(crate) enum End {
    /// One side closed and the other finished (or an I/O error).
    Done(io::Result<(u64, u64)>),
    /// The peer must go: the event was published.
    TornDown(TeardownEvent),
    /// The reloaded allow rules no longer let the peer through.
    NotAllowed(String),
    /// No byte either way for the idle timeout.
    Idle,
    /// The proxy is stopping and the drain deadline passed.
    Shutdown,
}

/// What a splice watches besides the bytes.
pub(crate) struct Control<'a> {
    pub(crate) live: &'a mut LiveConnection,
    pub(crate) leaf: CertificateDer<'static>,
    pub(crate) rules: Rules,
    pub(crate) rules_changed: watch::Receiver<u64>,
    pub(crate) idle: Option<Duration>,
    pub(crate) force: watch::Receiver<bool>,
}

/// Copies both ways between `a` and `b` (a half-close is passed on) until
/// one of the [`End`]s.
pub(crate) async fn splice<A, B>(a: &mut A, b: &mut B, ctl: &mut Control<'_>) -> End
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut wa = Watched {
        inner: a,
        last: Arc::clone(&last),
        epoch,
    };
    let mut wb = Watched {
        inner: b,
        last: Arc::clone(&last),
        epoch,
    };
    let copy = Bidirectional {
        a: &mut wa,
        b: &mut wb,
        a_to_b: Half::default(),
        b_to_a: Half::default(),
    };
    tokio::pin!(copy);
    let mut rules_live = true;
    let mut force_live = true;
    loop {
        let idle = async {
            match ctl.idle {
                Some(limit) => {
                    let at = epoch + Duration::from_millis(last.load(Ordering::Relaxed)) + limit;
                    tokio::time::sleep_until(at).await;
                    // Activity since the timer was set moves the deadline.
                    let seen = epoch + Duration::from_millis(last.load(Ordering::Relaxed));
                    Instant::now().saturating_duration_since(seen) >= limit
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut copy => return End::Done(result),
            event = ctl.live.torn_down() => return End::TornDown(event),
            changed = ctl.rules_changed.changed(), if rules_live => {
                if changed.is_err() {
                    rules_live = false;
                } else if let Err(why) = ctl.rules.load().permits(&ctl.leaf) {
                    return End::NotAllowed(why);
                }
            }
            idle_for_good = idle => {
                if idle_for_good {
                    return End::Idle;
                }
            }
            forced = ctl.force.wait_for(|f| *f), if force_live => {
                if forced.is_ok() {
                    return End::Shutdown;
                }
                force_live = false;
            }
        }
    }
}

/// A stream that notes when it last read a byte.
struct Watched<T> {
    inner: T,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl<T> Watched<T> {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One direction of a [`Bidirectional`] copy. Its buffer exists only while
/// it holds bytes or a read is under way: a read that would block on an
/// empty buffer frees it, so ten thousand idle connections cost no copy
/// buffers at all.
#[derive(Default)]
struct Half {
    buf: Option<Box<[u8]>>,
    pos: usize,
    cap: usize,
    read_done: bool,
    need_flush: bool,
    done: bool,
    amount: u64,
}

impl Half {
    /// Moves bytes from `r` to `w` until `r` ends (then shuts `w`'s write
    /// side: a half-close is passed on) or one would block.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut r: Pin<&mut R>,
        mut w: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(self.amount));
        }
        loop {
            if self.pos == self.cap && !self.read_done {
                let buf = self
                    .buf
                    .get_or_insert_with(|| vec![0u8; BUFFER].into_boxed_slice());
                let mut read = ReadBuf::new(buf);
                match r.as_mut().poll_read(cx, &mut read) {
                    Poll::Pending => {
                        if self.need_flush {
                            std::task::ready!(w.as_mut().poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        self.buf = None;
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {
                        let n = read.filled().len();
                        if n == 0 {
                            self.read_done = true;
                            self.buf = None;
                        } else {
                            self.pos = 0;
                            self.cap = n;
                        }
                    }
                }
            }
            while self.pos < self.cap {
                let Some(buf) = self.buf.as_deref() else {
                    break;
                };
                let n = std::task::ready!(w.as_mut().poll_write(cx, &buf[self.pos..self.cap]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the other leg accepts no more bytes",
                    )));
                }
                self.pos += n;
                self.amount += n as u64;
                self.need_flush = true;
            }
            if self.pos == self.cap && self.read_done {
                std::task::ready!(w.as_mut().poll_flush(cx))?;
                std::task::ready!(w.as_mut().poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(self.amount));
            }
        }
    }
}

/// Both directions between `a` and `b`; ends when both ended (or at the
/// first error) with the bytes moved each way.
struct Bidirectional<'a, A: ?Sized, B: ?Sized> {
    a: &'a mut A,
    b: &'a mut B,
    a_to_b: Half,
    b_to_a: Half,
}

impl<A, B> std::future::Future for Bidirectional<'_, A, B>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    type Output = io::Result<(u64, u64)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let up = this
            .a_to_b
            .poll_copy(cx, Pin::new(&mut *this.a), Pin::new(&mut *this.b))?;
        let down = this
            .b_to_a
            .poll_copy(cx, Pin::new(&mut *this.b), Pin::new(&mut *this.a))?;
        match (up, down) {
            (Poll::Ready(up), Poll::Ready(down)) => Poll::Ready(Ok((up, down))),
            _ => Poll::Pending,
        }
    }
}
