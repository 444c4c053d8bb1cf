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

/// Buffer per direction: large enough that one bulk stream is not held
/// back by the copy (TLS records are at most 16 KiB of plaintext).
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
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut wa, &mut wb, BUFFER, BUFFER);
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
