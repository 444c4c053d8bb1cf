//! `mtls_echo`: a line-echo server over mutual TLS whose clients are verified
//! by Vigil, and whose connections are closed as soon as a client's
//! certificate stops being trusted (revoked, expired, ...).
//!
//! ```text
//! cargo run --release -p vigil-rustls --example mtls_echo -- \
//!     --listen 127.0.0.1:8443 --cert server.chain.pem --key server.key.pem \
//!     --anchor root.pem [--revocation require|prefer] [--refresh-interval SECS]
//! ```
//!
//! * Client certificates are required and verified by a
//!   [`VigilClientVerifier`] over an [`Engine`] trusting the certificates of
//!   `--anchor`; the engine fetches the CRLs and OCSP answers the clients'
//!   certificates point at.
//! * The engine's refresh scheduler ([`Engine::spawn_scheduler`]) fetches
//!   every source it knows again at least every `--refresh-interval` seconds
//!   (default 60), whatever its nextUpdate says (the policy's
//!   `max_interval_secs`).
//! * Each accepted connection is tracked ([`vigil_rustls::accept`]); when new
//!   data, an expiry or a deadline says its client is no longer trusted, the
//!   server sends close_notify and closes it, and logs
//!   `teardown connection=ID reason=REASON serial=SERIAL subject=".." detail=".."`
//!   on stderr.
//! * `--key` may be PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
//!   (`RSA PRIVATE KEY`) PEM; `--cert` is the server's chain, leaf first.
//!
//! Once it listens it prints `listening on ADDR` (the bound address, so
//! `--listen 127.0.0.1:0` works) on stdout. Everything else goes to stderr.
//! Exit status 2: bad arguments or unusable files; 1: the server could not
//! start (e.g. the address is taken).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio_rustls::TlsAcceptor;
use vigil_core::input::{load_certificates, load_private_key};
use vigil_core::RevocationPolicy;
use vigil_runtime::{
    ConnectionEvent, Engine, EngineConfig, MemoryStore, RefreshPolicy, Store, SystemClock, Tracker,
    TrackerConfig,
};
use vigil_rustls::{TornDown, VigilClientVerifier};

const USAGE: &str = "usage: mtls_echo --listen ADDR --cert SERVER_CHAIN_PEM --key SERVER_KEY_PEM \
--anchor CLIENT_ROOT_PEM [--revocation require|prefer] [--refresh-interval SECS]";

/// Longest line echoed in one piece; longer lines are echoed in chunks.
const MAX_LINE: u64 = 64 * 1024;

/// Time a client has to complete its handshake (revocation fetches
/// included).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the tracker re-checks deadlines at the latest.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

/// The command line.
#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    anchor: PathBuf,
    policy: RevocationPolicy,
    refresh: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut listen, mut cert, mut key, mut anchor) = (None, None, None, None);
    let mut policy = RevocationPolicy::Require;
    let mut refresh = Duration::from_secs(60);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen =
                    Some(v.parse::<SocketAddr>().map_err(|e| {
                        format!("--listen {v}: {e} (expected e.g. 127.0.0.1:8443)")
                    })?);
            }
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--anchor" => anchor = Some(PathBuf::from(value()?)),
            "--revocation" => {
                policy = match value()?.as_str() {
                    "require" => RevocationPolicy::Require,
                    "prefer" => RevocationPolicy::Prefer,
                    other => {
                        return Err(format!("--revocation {other}: expected require or prefer"))
                    }
                }
            }
            "--refresh-interval" => {
                let v = value()?;
                let secs = v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("--refresh-interval {v}: expected whole seconds >= 1")
                })?;
                refresh = Duration::from_secs(secs);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let missing = |name: &str| format!("{name} is required");
    Ok(Some(Args {
        listen: listen.ok_or_else(|| missing("--listen"))?,
        cert: cert.ok_or_else(|| missing("--cert"))?,
        key: key.ok_or_else(|| missing("--key"))?,
        anchor: anchor.ok_or_else(|| missing("--anchor"))?,
        policy,
        refresh,
    }))
}

/// Everything built from the command line before anything listens.
struct Setup {
    engine: Engine,
    tracker: Tracker,
    acceptor: TlsAcceptor,
    anchors: usize,
}

fn setup(args: &Args) -> Result<Setup, String> {
    let chain = load_certificates(&args.cert).map_err(|e| e.to_string())?;
    let key = load_private_key(&args.key).map_err(|e| e.to_string())?;
    let anchors = load_certificates(&args.anchor).map_err(|e| e.to_string())?;
    let count = anchors.len();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let interval = i64::try_from(args.refresh.as_secs()).unwrap_or(i64::MAX);
    let engine = Engine::open(
        anchors,
        store,
        EngineConfig::default().with_refresh(
            RefreshPolicy::default()
                .with_min_interval_secs(interval.min(RefreshPolicy::default().min_interval_secs))
                .with_max_interval_secs(interval)
                .with_retry_base_secs(1)
                .with_retry_max_secs(interval),
        ),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("{}: {e}", args.anchor.display()))?;
    let verifier = VigilClientVerifier::new(engine.clone()).with_policy(args.policy);
    let tracker = Tracker::new(
        &engine,
        TrackerConfig::default().with_options(verifier.options().clone()),
    );
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)
            .map_err(|e| format!("{} with {}: {e}", args.cert.display(), args.key.display()))?;
    Ok(Setup {
        engine,
        tracker,
        acceptor: TlsAcceptor::from(Arc::new(config)),
        anchors: count,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mtls_echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mtls_echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The engine and tracker spawn nothing until asked, but the tracker
    // wants a runtime handle for its watchdogs: build them inside.
    let setup = match runtime.block_on(async { setup(&args) }) {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("mtls_echo: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(args, setup))
}

async fn serve(args: Args, setup: Setup) -> ExitCode {
    let Setup {
        engine,
        tracker,
        acceptor,
        anchors,
    } = setup;
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mtls_echo: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("mtls_echo: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Runs until the process exits (dropping the handle would not stop it).
    let _scheduler = engine.spawn_scheduler();
    let _expiry = tracker.spawn_expiry(EXPIRY_TICK);
    let _events = tokio::spawn(log_events(tracker.clone()));

    eprintln!(
        "mtls_echo: revocation={} refresh-interval={}s anchors={anchors}",
        args.policy,
        args.refresh.as_secs()
    );
    let mut stdout = std::io::stdout();
    let ready = writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush());
    if let Err(e) = ready {
        eprintln!("mtls_echo: stdout: {e}");
        return ExitCode::FAILURE;
    }

    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                tokio::spawn(handle(acceptor.clone(), tcp, peer, tracker.clone()));
            }
            Err(e) => {
                // E.g. out of file descriptors: wait a little, keep serving.
                eprintln!("accept failed error={e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Logs every teardown and degraded notice of the tracker.
async fn log_events(tracker: Tracker) {
    let mut events = tracker.subscribe();
    drop(tracker);
    loop {
        match events.recv().await {
            Ok(ConnectionEvent::Teardown { event, dry_run }) => eprintln!(
                "teardown connection={} reason={} serial={} subject={:?} detail={:?}{}",
                event.connection_id,
                event.reason,
                vigil_core::text::hex(&event.serial),
                event.subject,
                event.detail,
                if dry_run { " dry_run=true" } else { "" }
            ),
            Ok(ConnectionEvent::Degraded(notice)) => eprintln!(
                "degraded connection={} serial={} subject={:?} detail={:?}",
                notice.connection_id,
                vigil_core::text::hex(&notice.serial),
                notice.subject,
                notice.detail
            ),
            Err(RecvError::Lagged(missed)) => eprintln!("events missed count={missed}"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// One connection: handshake, tracking, then echo lines until either side
/// ends it (or the tracker tears it down).
async fn handle(acceptor: TlsAcceptor, tcp: TcpStream, peer: SocketAddr, tracker: Tracker) {
    let labels = BTreeMap::from([("peer".to_owned(), peer.to_string())]);
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        vigil_rustls::accept(&acceptor, tcp, &tracker, labels),
    )
    .await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            match TornDown::from_io(&e) {
                // The teardown itself is logged by `log_events`.
                Some(event) => eprintln!(
                    "refused connection={} peer={peer} reason={}",
                    event.connection_id, event.reason
                ),
                None => eprintln!("handshake failed peer={peer} error={e}"),
            }
            return;
        }
        Err(_) => {
            eprintln!("handshake failed peer={peer} error=timed out");
            return;
        }
    };
    let id = stream
        .id()
        .map_or_else(|| "untracked".to_owned(), |id| id.to_string());
    eprintln!("accepted connection={id} peer={peer}");

    let mut stream = BufReader::new(stream);
    let mut line = Vec::new();
    let end = loop {
        line.clear();
        match (&mut stream)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        let inner = stream.get_mut();
        if let Err(e) = async {
            inner.write_all(&line).await?;
            inner.flush().await
        }
        .await
        {
            break Err(e);
        }
    };
    match end {
        Ok(()) => {
            // The client is done: answer its close_notify with ours.
            let _ = stream.get_mut().shutdown().await;
            eprintln!("closed connection={id} by=client");
        }
        Err(e) if TornDown::from_io(&e).is_some() => {
            eprintln!("closed connection={id} by=server (teardown)");
        }
        Err(e) => eprintln!("closed connection={id} error={e}"),
    }
}
