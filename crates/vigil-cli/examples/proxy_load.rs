//! Load generator for comparing `vigil proxy` with stunnel and HAProxy (run
//! by `scripts/proxy_compare.sh`; not part of `cargo test`). Every
//! subcommand prints one JSON line on stdout; everything is on 127.0.0.1.
//!
//! * `backend --listen ADDR`: the plain TCP service behind the proxies. The
//!   first byte of a connection picks what it does: `U` + u64 (big-endian)
//!   N: read and discard N bytes, then answer N as a u64 (upload sink);
//!   `D` + u64 N: send N bytes (download source); anything else: echo
//!   everything, that first byte included (handshakes, latency).
//! * `bulk`: one mTLS stream. `--direction up` (default) sends `--bytes`
//!   to the sink and waits for its count: the proxy decrypts; `down`
//!   receives them from the source: the proxy encrypts; `echo` does both
//!   at once through the echo. One direction at a time is the fair figure
//!   on a small machine: the generator, the proxy and the backend share
//!   its cores, and in echo mode the generator's own TLS (both ways) takes
//!   as much CPU as the proxy's. The clock starts after the handshake.
//! * `handshakes`: `--concurrency` workers open new mTLS connections for
//!   `--seconds` (full handshakes: the client keeps no session, so nothing
//!   is resumed), each sends one byte and reads it back, then closes
//!   (close_notify, FIN).
//! * `latency`: one connection, `--requests` ping-pongs of `--size` bytes,
//!   one at a time; `--plain` for a plain TCP connection (to the backend
//!   directly: the baseline).
//! * `teardown`: its own PKI and CRL/OCSP responder (in process), its own
//!   backend (in process: it sees each backend leg close), and the proxy
//!   started by `--start` once the PKI is written to `--dir` (server.chain.pem,
//!   server.key.pem, combined.pem = chain + key, root.pem, crl.pem = the
//!   root's and the intermediate's CRLs). Opens `--connections` mTLS
//!   connections (`--certs` distinct client certificates), revokes the
//!   certificates of about `--revoke-percent` % of them at the responder,
//!   then either asks the proxy's admin API to refresh (`--admin URL`:
//!   `POST /v1/revocation/refresh`, which returns when done) or writes the
//!   new CRLs to crl.pem and runs `--reload CMD` (env PROXY_PID is the
//!   proxy's pid; e.g. `kill -HUP $PROXY_PID`), and measures, for each
//!   connection of a revoked certificate, when the client sees EOF (or an
//!   error) and when its backend leg sees EOF: from the refresh's return,
//!   from its start and from the CRL's publication. Then it checks that
//!   the other connections are open and still carry bytes, that a new
//!   connection with a revoked certificate is refused and one with a good
//!   certificate accepted.
//!
//! `bulk`, `handshakes` and `latency` take `--pid PID` to report the CPU
//! time that process used during the measurement (from /proc/PID/stat).
//! The client speaks TLS 1.3 only, key exchange `--kx` (x25519 by default),
//! with rustls and ring, and verifies the server's certificate.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
use pki_fixtures::{Cert, CertSpec, KeyAlg, PkiOptions, Reason};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// Load generator for vigil proxy / stunnel / HAProxy comparisons.
#[derive(Parser, Debug)]
#[command(name = "proxy_load")]
struct Cli {
    /// Worker threads of the generator's runtime.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Plain TCP backend: upload sink, download source, echo.
    Backend {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// One stream's throughput.
    Bulk(BulkArgs),
    /// New full handshakes per second.
    Handshakes(HandshakeArgs),
    /// Round-trip latency on one connection.
    Latency(LatencyArgs),
    /// Revocation to both legs closed, with its own PKI and backend.
    Teardown(TeardownArgs),
}

#[derive(Args, Debug, Clone)]
struct ClientArgs {
    /// Where to connect (the proxy, or the backend with --plain).
    #[arg(long)]
    connect: String,
    /// Client certificate chain (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Anchor(s) for the server's certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Name the server's certificate must carry [default: the host of --connect].
    #[arg(long)]
    name: Option<String>,
    /// Key exchange group offered.
    #[arg(long, value_enum, default_value_t = Kx::X25519)]
    kx: Kx,
    /// Plain TCP (no TLS).
    #[arg(long)]
    plain: bool,
    /// A label echoed in the JSON output.
    #[arg(long, default_value = "")]
    label: String,
    /// Report the CPU time of this process during the measurement.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kx {
    X25519,
    P256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Direction {
    /// Client to backend (the proxy decrypts).
    Up,
    /// Backend to client (the proxy encrypts).
    Down,
    /// Both at once through the echo.
    Echo,
}

#[derive(Args, Debug)]
struct BulkArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Bytes to move.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Which way.
    #[arg(long, value_enum, default_value_t = Direction::Up)]
    direction: Direction,
    /// Size of each write / read buffer.
    #[arg(long, default_value_t = 256 * 1024)]
    chunk: usize,
}

#[derive(Args, Debug)]
struct HandshakeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections in progress at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[derive(Args, Debug)]
struct LatencyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Round trips measured.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Round trips before measuring.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Bytes each way per round trip.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

#[derive(Args, Debug)]
struct TeardownArgs {
    /// The proxy's mTLS listener.
    #[arg(long)]
    connect: SocketAddr,
    /// Where this process's backend listens (the proxy's target).
    #[arg(long)]
    backend: SocketAddr,
    /// Directory for the PKI files (created).
    #[arg(long)]
    dir: PathBuf,
    /// Shell command starting the proxy in the foreground (run with `exec`
    /// once the files are written; env PKI_DIR is --dir).
    #[arg(long)]
    start: String,
    /// The proxy's admin API (vigil): refresh with POST /v1/revocation/refresh.
    #[arg(long, conflicts_with = "reload")]
    admin: Option<String>,
    /// Shell command run after the new CRLs are written to crl.pem (env
    /// PROXY_PID: the proxy's pid).
    #[arg(long)]
    reload: Option<String>,
    /// Connections held open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Distinct client certificates (connection i uses certificate i mod certs).
    #[arg(long, default_value_t = 1000)]
    certs: usize,
    /// Share of the certificates revoked, percent.
    #[arg(long, default_value_t = 10)]
    revoke_percent: usize,
    /// Handshakes in progress at once while opening.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to wait for the revoked connections to close.
    #[arg(long, default_value_t = 3.0)]
    wait_secs: f64,
    /// A label echoed in the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Backend { listen } => backend(listen).await.map(|()| Value::Null),
            Cmd::Bulk(a) => bulk(a).await,
            Cmd::Handshakes(a) => handshakes(a).await,
            Cmd::Latency(a) => latency(a).await,
            Cmd::Teardown(a) => teardown(a).await,
        }
    });
    match result {
        Ok(Value::Null) => {}
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("proxy_load: {e}");
            std::process::exit(1);
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

// ---------------------------------------------------------------- client

/// A connected stream, TLS or plain.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to reach the server under test.
#[derive(Clone)]
struct Client {
    addr: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// What a TLS connection negotiated.
fn negotiated(conn: &rustls::ClientConnection) -> Value {
    json!({
        "version": conn.protocol_version().map(|v| format!("{v:?}")),
        "suite": conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
        "kx": conn.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name())),
    })
}

fn provider(kx: Kx) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = match kx {
        Kx::X25519 => vec![rustls::crypto::ring::kx_group::X25519],
        Kx::P256 => vec![rustls::crypto::ring::kx_group::SECP256R1],
    };
    Arc::new(p)
}

/// TLS 1.3 only, no resumption, client certificate `chain`/`key`.
fn tls_config(
    kx: Kx,
    anchors: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots.add(a.clone()).map_err(err("anchor"))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider(kx))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(err("TLS"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(err("client certificate"))?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

fn server_name(connect: &str, name: Option<&str>) -> Result<ServerName<'static>> {
    let host = match name {
        Some(n) => n.to_owned(),
        None => {
            let (host, _) = connect
                .rsplit_once(':')
                .ok_or_else(|| format!("--connect {connect}: expected HOST:PORT"))?;
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        }
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host).map_err(err("server name"))
}

impl Client {
    fn from_args(a: &ClientArgs) -> Result<Self> {
        if a.plain {
            return Ok(Self {
                addr: a.connect.clone(),
                tls: None,
            });
        }
        let need = |p: &Option<PathBuf>, flag: &str| {
            p.clone()
                .ok_or_else(|| format!("{flag} is needed (or --plain)"))
        };
        let chain = vigil_core::input::load_certificates(&need(&a.cert, "--cert")?)
            .map_err(err("--cert"))?;
        let key =
            vigil_core::input::load_private_key(&need(&a.key, "--key")?).map_err(err("--key"))?;
        let anchors =
            vigil_core::input::load_certificates(&need(&a.ca, "--ca")?).map_err(err("--ca"))?;
        let config = tls_config(a.kx, &anchors, chain, key)?;
        Ok(Self {
            addr: a.connect.clone(),
            tls: Some((
                TlsConnector::from(config),
                server_name(&a.connect, a.name.as_deref())?,
            )),
        })
    }

    /// Connects (and handshakes); the negotiated parameters for TLS.
    async fn open(&self) -> io::Result<(Box<dyn Io>, Value)> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok((Box::new(tcp), json!({"version": "plain"}))),
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await?;
                let info = negotiated(tls.get_ref().1);
                Ok((Box::new(tls), info))
            }
        }
    }
}

/// User + system CPU time of a process and of its descendants now alive
/// (HAProxy's master-worker mode works in a child), from /proc.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    let mut total = Duration::from_millis(ticks * 10);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            total += cpu_time(Some(child)).unwrap_or_default();
        }
    }
    Some(total)
}

fn cpu_used(pid: Option<u32>, before: Option<Duration>) -> Option<f64> {
    Some((cpu_time(pid)? - before?).as_secs_f64())
}

/// p in 0..=100 of sorted `v` (nearest rank).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn summary(mut v: Vec<f64>, digits: i32) -> Value {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return json!({"n": 0});
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "n": v.len(),
        "min": round(v[0], digits),
        "p50": round(pct(&v, 50.0), digits),
        "p90": round(pct(&v, 90.0), digits),
        "p99": round(pct(&v, 99.0), digits),
        "p999": round(pct(&v, 99.9), digits),
        "max": round(v[v.len() - 1], digits),
        "mean": round(mean, digits),
    })
}

// ---------------------------------------------------------------- backend

async fn backend(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen).await.map_err(err("listen"))?;
    println!(
        "backend listening on {}",
        listener.local_addr().map_err(err("listen"))?
    );
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("backend: accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let _ = serve_backend(tcp).await;
        });
    }
}

async fn serve_backend(mut s: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = s.read(&mut buf).await?;
    if n == 0 {
        return Ok(());
    }
    match buf[0] {
        mode @ (b'U' | b'D') => {
            let mut have = n;
            if have < 9 {
                s.read_exact(&mut buf[have..9]).await?;
                have = 9;
            }
            let len = u64::from_be_bytes(buf[1..9].try_into().unwrap_or_default());
            if mode == b'U' {
                let mut got = (have - 9) as u64;
                while got < len {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    got += n as u64;
                }
                s.write_all(&got.to_be_bytes()).await?;
            } else {
                buf.fill(0);
                let mut left = len;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    s.write_all(&buf[..n]).await?;
                    left -= n as u64;
                }
            }
            // Until the client goes.
            while s.read(&mut buf).await? > 0 {}
            Ok(())
        }
        _ => {
            s.write_all(&buf[..n]).await?;
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                s.write_all(&buf[..n]).await?;
            }
        }
    }
}

// ---------------------------------------------------------------- bulk

async fn bulk(a: BulkArgs) -> Result<Value> {
    let client = Client::from_args(&a.client)?;
    let (stream, info) = client.open().await.map_err(err("connect"))?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let n = a.bytes;
    let chunk = vec![0u8; a.chunk.max(1)];
    let cpu0 = cpu_time(a.client.pid);
    let start = Instant::now();
    match a.direction {
        Direction::Up => {
            let mut header = vec![b'U'];
            header.extend_from_slice(&n.to_be_bytes());
            wr.write_all(&header).await.map_err(err("send"))?;
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len() as u64) as usize;
                wr.write_all(&chunk[..k]).await.map_err(err("send"))?;
                left -= k as u64;
            }
            wr.flush().await.map_err(err("send"))?;
            let mut ack = [0u8; 8];
            rd.read_exact(&mut ack).await.map_err(err("count"))?;
            let counted = u64::from_be_bytes(ack);
            if counted != n {
                return Err(format!("the backend counted {counted} bytes, not {n}"));
            }
        }
        Direction::Down => {
            let mut header = vec![b'D'];
            header.extend_from_slice(&n.to_be_bytes());
            wr.write_all(&header).await.map_err(err("send"))?;
            wr.flush().await.map_err(err("send"))?;
            read_n(&mut rd, n, a.chunk).await?;
        }
        Direction::Echo => {
            let writer = tokio::spawn(async move {
                // Zeros: never taken for an upload or download header.
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    wr.write_all(&chunk[..k]).await?;
                    left -= k as u64;
                }
                wr.flush().await?;
                Ok::<_, io::Error>(wr)
            });
            read_n(&mut rd, n, a.chunk).await?;
            let _ = writer.await;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_used(a.client.pid, cpu0);
    Ok(json!({
        "test": "bulk",
        "label": a.client.label,
        "direction": format!("{:?}", a.direction).to_lowercase(),
        "bytes": n,
        "secs": round(secs, 4),
        "mb_per_s": round(n as f64 / secs / 1e6, 1),
        "proxy_cpu_s": cpu.map(|c| round(c, 2)),
        "proxy_cpu_s_per_gb": cpu.map(|c| round(c / (n as f64 / 1e9), 3)),
        "tls": info,
    }))
}

async fn read_n<R: AsyncRead + Unpin>(rd: &mut R, n: u64, chunk: usize) -> Result<()> {
    let mut buf = vec![0u8; chunk.max(1)];
    let mut got = 0u64;
    while got < n {
        let k = rd.read(&mut buf).await.map_err(err("receive"))?;
        if k == 0 {
            return Err(format!("EOF after {got} of {n} bytes"));
        }
        got += k as u64;
    }
    Ok(())
}

// ---------------------------------------------------------------- handshakes

async fn one_exchange(client: &Client) -> io::Result<()> {
    let (mut s, _) = client.open().await?;
    s.write_all(b"h").await?;
    s.flush().await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    let _ = s.shutdown().await;
    Ok(())
}

async fn handshakes(a: HandshakeArgs) -> Result<Value> {
    let client = Client::from_args(&a.client)?;
    // Warm-up (and a check that the path works at all).
    for _ in 0..3 {
        one_exchange(&client)
            .await
            .map_err(err("first connection"))?;
    }
    let (_, info) = client.open().await.map_err(err("connect"))?;
    let cpu0 = cpu_time(a.client.pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                match one_exchange(&client).await {
                    Ok(()) => times.push(t.elapsed().as_secs_f64() * 1e3),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            (times, errors, first_error)
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for w in workers {
        let (t, e, f) = w.await.map_err(err("worker"))?;
        times.extend(t);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_used(a.client.pid, cpu0);
    let ok = times.len();
    Ok(json!({
        "test": "handshakes",
        "label": a.client.label,
        "concurrency": a.concurrency,
        "secs": round(secs, 3),
        "ok": ok,
        "errors": errors,
        "first_error": first_error,
        "per_s": round(ok as f64 / secs, 1),
        "connect_ms": summary(times, 3),
        "proxy_cpu_s": cpu.map(|c| round(c, 2)),
        "proxy_cpu_us_per_handshake": cpu.map(|c| round(c * 1e6 / ok.max(1) as f64, 1)),
        "tls": info,
    }))
}

// ---------------------------------------------------------------- latency

async fn latency(a: LatencyArgs) -> Result<Value> {
    let client = Client::from_args(&a.client)?;
    let (mut s, info) = client.open().await.map_err(err("connect"))?;
    let size = a.size.max(1);
    // 'p' first: an echo, never an upload or download.
    let out = vec![b'p'; size];
    let mut back = vec![0u8; size];
    let mut times = Vec::with_capacity(a.requests);
    let mut cpu0 = None;
    for i in 0..a.warmup + a.requests {
        if i == a.warmup {
            cpu0 = cpu_time(a.client.pid);
        }
        let t = Instant::now();
        s.write_all(&out).await.map_err(err("send"))?;
        s.flush().await.map_err(err("send"))?;
        s.read_exact(&mut back).await.map_err(err("receive"))?;
        if i >= a.warmup {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let cpu = cpu_used(a.client.pid, cpu0);
    let _ = s.shutdown().await;
    Ok(json!({
        "test": "latency",
        "label": a.client.label,
        "size": size,
        "requests": a.requests,
        "rtt_us": summary(times, 1),
        "proxy_cpu_us_per_rtt": cpu.map(|c| round(c * 1e6 / a.requests.max(1) as f64, 2)),
        "tls": info,
    }))
}

// ---------------------------------------------------------------- teardown

/// Per connection, what the teardown run saw.
struct Track {
    /// When the client side saw EOF or an error.
    client_closed: Vec<Mutex<Option<(Instant, String)>>>,
    /// When the backend leg saw EOF or an error.
    backend_closed: Vec<Mutex<Option<Instant>>>,
    /// The backend leg is up.
    backend_open: Vec<AtomicBool>,
    /// Bytes echoed back to the client after the setup.
    echoed: Vec<AtomicU64>,
}

impl Track {
    fn new(n: usize) -> Self {
        Self {
            client_closed: (0..n).map(|_| Mutex::new(None)).collect(),
            backend_closed: (0..n).map(|_| Mutex::new(None)).collect(),
            backend_open: (0..n).map(|_| AtomicBool::new(false)).collect(),
            echoed: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn client_at(&self, i: usize) -> Option<Instant> {
        self.client_closed[i].lock().unwrap().as_ref().map(|c| c.0)
    }

    fn backend_at(&self, i: usize) -> Option<Instant> {
        *self.backend_closed[i].lock().unwrap()
    }
}

/// The teardown backend: a 4-byte connection index, acknowledged, then echo;
/// the leg's end is noted.
async fn teardown_backend(listener: TcpListener, track: Arc<Track>) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let track = Arc::clone(&track);
        tokio::spawn(async move {
            let mut id = [0u8; 4];
            if tcp.read_exact(&mut id).await.is_err() {
                return;
            }
            let i = u32::from_be_bytes(id) as usize;
            if tcp.write_all(&id).await.is_err() {
                return;
            }
            let tracked = i < track.backend_open.len();
            if tracked {
                track.backend_open[i].store(true, Ordering::SeqCst);
            }
            let mut buf = [0u8; 4096];
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tcp.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            if tracked {
                *track.backend_closed[i].lock().unwrap() = Some(Instant::now());
            }
        });
    }
}

/// Connects with `config`, handshakes and passes index `i` to the backend.
async fn td_open(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    i: u32,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    tls.write_all(&i.to_be_bytes()).await?;
    tls.flush().await?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut ack))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the backend"))??;
    if ack != i.to_be_bytes() {
        return Err(io::Error::other("wrong answer from the backend"));
    }
    Ok(tls)
}

/// Whether a new connection is let through (the backend answers).
async fn td_probe(addr: SocketAddr, config: Arc<rustls::ClientConfig>, i: u32) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), td_open(addr, config, i)).await,
        Ok(Ok(_))
    )
}

fn stop_child(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills the proxy when the run ends, however it ends.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(err("write"))?;
    std::fs::rename(&tmp, path).map_err(err("rename"))
}

fn ms_since(t: Instant, from: Instant) -> f64 {
    if t >= from {
        t.duration_since(from).as_secs_f64() * 1e3
    } else {
        -(from.duration_since(t).as_secs_f64() * 1e3)
    }
}

async fn teardown(a: TeardownArgs) -> Result<Value> {
    let n = a.connections;
    let certs_n = a.certs.clamp(1, n.max(1));
    std::fs::create_dir_all(&a.dir).map_err(err("--dir"))?;

    // PKI, responder, client certificates.
    let (responder, pki) = start_with_fresh_pki(
        PkiOptions {
            alg: KeyAlg::EcdsaP256,
            ..PkiOptions::default()
        },
        ResponderOptions::default(),
    )
    .await
    .map_err(err("responder"))?;
    pki.write_to(&a.dir).map_err(err("PKI files"))?;
    let server_chain = pki.chain_pem("server");
    std::fs::write(
        a.dir.join("combined.pem"),
        format!("{server_chain}{}", pki.server.key_pem),
    )
    .map_err(err("combined.pem"))?;
    let crl_pem = |intermediate: &str| format!("{}{intermediate}", pki.root_crl.pem);
    write_atomic(
        &a.dir.join("crl.pem"),
        crl_pem(&pki.intermediate_crl.pem).as_bytes(),
    )?;
    let leaves: Vec<Cert> = {
        let intermediate_opts = pki.options.clone();
        let ca = &pki.intermediate;
        let mut v = Vec::with_capacity(certs_n);
        for i in 0..certs_n {
            let name = format!("td-{i}");
            let leaf = ca
                .issue_leaf(&CertSpec::leaf(
                    &name,
                    &format!("{name}.vigil.test"),
                    &intermediate_opts,
                ))
                .map_err(err("leaf"))?;
            responder.register(&leaf).map_err(err("register"))?;
            v.push(leaf);
        }
        v
    };
    let anchors = vec![pki.root.cert.certificate_der()];
    let intermediate_der = pki.intermediate.cert.certificate_der();
    let config_for = |leaf: &Cert| -> Result<Arc<rustls::ClientConfig>> {
        let key = vigil_core::input::parse_private_key(leaf.key_pem.as_bytes(), &leaf.name)
            .map_err(err("key"))?;
        tls_config(
            Kx::X25519,
            &anchors,
            vec![leaf.certificate_der(), intermediate_der.clone()],
            key,
        )
    };
    let configs: Vec<Arc<rustls::ClientConfig>> =
        leaves.iter().map(config_for).collect::<Result<_>>()?;
    let revoked_cert = |c: usize| (c * a.revoke_percent) % 100 < a.revoke_percent;
    let revoked: Vec<bool> = (0..n).map(|i| revoked_cert(i % certs_n)).collect();

    // Backend, then the proxy.
    let track = Arc::new(Track::new(n));
    let listener = TcpListener::bind(a.backend)
        .await
        .map_err(err("--backend"))?;
    let backend_task = tokio::spawn(teardown_backend(listener, Arc::clone(&track)));
    let log = std::fs::File::create(a.dir.join("proxy.log")).map_err(err("proxy.log"))?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {}", a.start))
        .env("PKI_DIR", &a.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(err("proxy.log"))?)
        .stderr(log)
        .spawn()
        .map_err(err("--start"))?;
    let mut proxy = Proxy(child);
    let pid = proxy.0.id();
    let up_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(a.connect).await.is_ok() {
            break;
        }
        if let Ok(Some(status)) = proxy.0.try_wait() {
            return Err(format!(
                "the proxy exited ({status}); see {}",
                a.dir.join("proxy.log").display()
            ));
        }
        if Instant::now() > up_deadline {
            return Err("the proxy did not listen within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Open every connection.
    let setup_cpu = cpu_time(Some(pid));
    let setup = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency.max(1)));
    let mut opening = Vec::with_capacity(n);
    for (i, config) in (0..n).map(|i| (i, Arc::clone(&configs[i % certs_n]))) {
        let sem = Arc::clone(&sem);
        let addr = a.connect;
        opening.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut last = None;
            for _ in 0..3 {
                match td_open(addr, Arc::clone(&config), i as u32).await {
                    Ok(s) => return Ok(s),
                    Err(e) => {
                        last = Some(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Err(last.map(|e| e.to_string()).unwrap_or_default())
        }));
    }
    let mut writers: Vec<Option<WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>>> =
        Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for (i, task) in opening.into_iter().enumerate() {
        let stream = task
            .await
            .map_err(err("open"))?
            .map_err(|e| format!("connection {i}: {e}"))?;
        let (mut rd, wr) = tokio::io::split(stream);
        writers.push(Some(wr));
        let track = Arc::clone(&track);
        readers.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let how = loop {
                match rd.read(&mut buf).await {
                    Ok(0) => break "eof".to_owned(),
                    Ok(k) => {
                        track.echoed[i].fetch_add(k as u64, Ordering::SeqCst);
                    }
                    Err(e) => break format!("error: {e}"),
                }
            };
            *track.client_closed[i].lock().unwrap() = Some((Instant::now(), how));
        }));
    }
    let setup_s = setup.elapsed().as_secs_f64();
    let setup_cpu = cpu_used(Some(pid), setup_cpu);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early_closed = (0..n).filter(|&i| track.client_at(i).is_some()).count();
    let backend_up = (0..n)
        .filter(|&i| track.backend_open[i].load(Ordering::SeqCst))
        .count();

    // Revoke at the responder, then make the proxy learn it.
    let revoked_leaves: Vec<&Cert> = (0..certs_n)
        .filter(|&c| revoked_cert(c))
        .map(|c| &leaves[c])
        .collect();
    let publications = responder
        .revoke_many(&revoked_leaves, Reason::KeyCompromise)
        .map_err(err("revoke"))?;
    let published = publications
        .iter()
        .map(|p| p.at)
        .max()
        .unwrap_or_else(Instant::now);
    let refresh_start;
    let refresh_end;
    let mut refresh_status = Value::Null;
    if let Some(admin) = &a.admin {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(err("HTTP client"))?;
        refresh_start = Instant::now();
        let reply = http
            .post(format!(
                "{}/v1/revocation/refresh",
                admin.trim_end_matches('/')
            ))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(err("refresh"))?;
        refresh_end = Instant::now();
        let status = reply.status().as_u16();
        let body = reply.text().await.unwrap_or_default();
        // Outcomes counted, not listed (one per CRL and OCSP source).
        let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
        if let Ok(parsed) = serde_json::from_str::<Value>(&body) {
            for r in parsed["refreshed"].as_array().into_iter().flatten() {
                let o = r["outcome"].as_str().unwrap_or("?").to_owned();
                *outcomes.entry(o).or_default() += 1;
            }
        }
        refresh_status = json!({"status": status, "outcomes": outcomes});
        if status != 200 {
            return Err(format!("refresh: HTTP {status}: {body}"));
        }
    } else if let Some(reload) = &a.reload {
        let current = responder
            .current_crl("intermediate")
            .ok_or("no intermediate CRL")?;
        write_atomic(&a.dir.join("crl.pem"), crl_pem(&current.pem).as_bytes())?;
        refresh_start = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(reload)
            .env("PROXY_PID", pid.to_string())
            .env("PKI_DIR", &a.dir)
            .status()
            .map_err(err("--reload"))?;
        refresh_end = Instant::now();
        refresh_status = json!({"status": status.code()});
    } else {
        refresh_start = Instant::now();
        refresh_end = refresh_start;
    }

    // Wait for the revoked ones (both legs), then a little for the others.
    let wait_deadline = refresh_end + Duration::from_secs_f64(a.wait_secs);
    loop {
        let pending = (0..n)
            .filter(|&i| revoked[i])
            .any(|i| track.client_at(i).is_none() || track.backend_at(i).is_none());
        if !pending || Instant::now() > wait_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The others still carry bytes?
    let before: Vec<u64> = (0..n)
        .map(|i| track.echoed[i].load(Ordering::SeqCst))
        .collect();
    let mut pinged = HashSet::new();
    for i in (0..n).filter(|&i| !revoked[i] && track.client_at(i).is_none()) {
        if let Some(w) = writers[i].as_mut() {
            if w.write_all(b"ping").await.is_ok() && w.flush().await.is_ok() {
                pinged.insert(i);
            }
        }
    }
    let ping_deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < ping_deadline
        && pinged
            .iter()
            .any(|&i| track.echoed[i].load(Ordering::SeqCst) < before[i] + 4)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unrevoked_ping_ok = pinged
        .iter()
        .filter(|&&i| track.echoed[i].load(Ordering::SeqCst) >= before[i] + 4)
        .count();

    // New connections: a revoked certificate refused, a good one let in.
    let first_revoked = (0..certs_n).find(|&c| revoked_cert(c));
    let first_good = (0..certs_n).find(|&c| !revoked_cert(c));
    let mut new_revoked_refused = Value::Null;
    // When (after the refresh's return) the refusal was seen: the check
    // runs after the wait above, so this is an upper bound.
    let mut refused_after_ms = Value::Null;
    if let Some(c) = first_revoked {
        let deadline = Instant::now() + Duration::from_secs(3);
        new_revoked_refused = json!(false);
        let mut k = 0u32;
        loop {
            k += 1;
            if !td_probe(a.connect, Arc::clone(&configs[c]), u32::MAX - k).await {
                new_revoked_refused = json!(true);
                refused_after_ms = json!(round(ms_since(Instant::now(), refresh_end), 1));
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let new_good_accepted = match first_good {
        Some(c) => json!(td_probe(a.connect, Arc::clone(&configs[c]), u32::MAX - 10_000).await),
        None => Value::Null,
    };

    // Figures.
    let revoked_ix: Vec<usize> = (0..n).filter(|&i| revoked[i]).collect();
    let mut client_after = Vec::new();
    let mut backend_after = Vec::new();
    let mut both_after = Vec::new();
    let mut both_after_start = Vec::new();
    let mut both_after_pub = Vec::new();
    let mut how_closed = std::collections::BTreeMap::<String, usize>::new();
    for &i in &revoked_ix {
        let c = track.client_at(i);
        let b = track.backend_at(i);
        if let Some(c) = c {
            client_after.push(ms_since(c, refresh_end));
        }
        if let Some(b) = b {
            backend_after.push(ms_since(b, refresh_end));
        }
        if let (Some(c), Some(b)) = (c, b) {
            let both = c.max(b);
            both_after.push(ms_since(both, refresh_end));
            both_after_start.push(ms_since(both, refresh_start));
            both_after_pub.push(ms_since(both, published));
        }
        if let Some((_, how)) = track.client_closed[i].lock().unwrap().as_ref() {
            let key = if how.starts_with("error") {
                "error"
            } else {
                "eof"
            };
            *how_closed.entry(key.to_owned()).or_default() += 1;
        }
    }
    let unrevoked_closed = (0..n)
        .filter(|&i| !revoked[i])
        .filter(|&i| track.client_at(i).is_some() || track.backend_at(i).is_some())
        .count();
    let client_closed = client_after.len();
    let backend_closed = backend_after.len();
    let both_closed = both_after.len();
    let result = json!({
        "test": "teardown",
        "label": a.label,
        "connections": n,
        "certs": certs_n,
        "setup_s": round(setup_s, 2),
        "setup_per_s": round(n as f64 / setup_s, 1),
        // Handshakes with distinct (cold) client certificates.
        "setup_proxy_cpu_us_per_connection": setup_cpu.map(|c| round(c * 1e6 / n.max(1) as f64, 1)),
        "backend_legs_up": backend_up,
        "closed_before_revocation": early_closed,
        "revoked_connections": revoked_ix.len(),
        "revoked_certs": revoked_leaves.len(),
        "refresh_ms": round(ms_since(refresh_end, refresh_start), 1),
        "refresh_reply": refresh_status,
        "client_closed": client_closed,
        "backend_closed": backend_closed,
        "both_closed": both_closed,
        "not_closed": revoked_ix.len() - both_closed,
        "client_close_kind": how_closed,
        "unrevoked_closed": unrevoked_closed,
        "unrevoked_ping_ok": unrevoked_ping_ok,
        "unrevoked_pinged": pinged.len(),
        "both_legs_after_refresh_ms": summary(both_after, 1),
        "both_legs_after_refresh_start_ms": summary(both_after_start, 1),
        "both_legs_after_publication_ms": summary(both_after_pub, 1),
        "client_after_refresh_ms": summary(client_after, 1),
        "backend_after_refresh_ms": summary(backend_after, 1),
        "new_revoked_refused": new_revoked_refused,
        "new_revoked_refused_checked_at_ms": refused_after_ms,
        "new_good_accepted": new_good_accepted,
        "proxy_pid": pid,
        "files": a.dir.display().to_string(),
    });

    // Close what is left, then stop the proxy and the responder.
    for r in &readers {
        r.abort();
    }
    writers.clear();
    drop(readers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .map_err(err("stop"))?;
    backend_task.abort();
    responder.shutdown().await;
    Ok(result)
}
