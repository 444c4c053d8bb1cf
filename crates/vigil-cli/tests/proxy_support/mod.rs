//! Shared by the `proxy*` tests: a real `vigil proxy` process, a plain TCP
//! backend that reports what it sees (bytes, EOF, a PROXY v2 header), and an
//! mTLS client over tokio-rustls.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pki_fixtures::Cert;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A running `vigil proxy`.
pub struct Proxy {
    child: Option<Child>,
    /// The bound listen addresses, in the order given.
    pub listens: Vec<SocketAddr>,
    /// `http://ADDR` of the admin API, when `--admin` was given.
    pub admin: Option<String>,
    pub log: PathBuf,
}

impl Proxy {
    /// Starts `vigil proxy ARGS` and waits for `routes` listening lines
    /// (and the admin line when `--admin` is among the arguments).
    pub fn start(args: &[String], routes: usize, log: &Path) -> Self {
        let admin_expected = args.iter().any(|a| a == "--admin");
        Self::start_expecting(args, routes, admin_expected, log)
    }

    /// As [`Proxy::start`], saying whether an admin line is expected (the
    /// config file may set it).
    pub fn start_expecting(
        args: &[String],
        routes: usize,
        admin_expected: bool,
        log: &Path,
    ) -> Self {
        Self::start_under(&[], args, routes, admin_expected, log)
    }

    /// As [`Proxy::start_expecting`], run by `wrapper` (e.g. `prlimit …`)
    /// when it is not empty.
    pub fn start_under(
        wrapper: &[&str],
        args: &[String],
        routes: usize,
        admin_expected: bool,
        log: &Path,
    ) -> Self {
        let stderr = std::fs::File::create(log).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_vigil"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_vigil")),
        };
        command
            .arg("proxy")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, _) in std::env::vars() {
            if k.starts_with("VIGIL_") {
                command.env_remove(k);
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut listens = Vec::new();
        let mut admin = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while listens.len() < routes || (admin_expected && admin.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        listens.push(addr.trim().parse().unwrap());
                    } else if let Some(url) = line.strip_prefix("admin on ") {
                        admin = Some(url.trim().to_owned());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "vigil proxy did not start: {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        }
        Self {
            child: Some(child),
            listens,
            admin,
            log: log.to_owned(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listens[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits; the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "vigil proxy did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing `text`.
    pub async fn wait_log(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log_text();
            if log.contains(text) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {text:?} in:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The proxy's resident memory, KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the backend saw of one connection.
#[derive(Debug)]
pub enum Seen {
    /// A PROXY v2 header: its TLVs (type, value) and the source address.
    Header {
        source: SocketAddr,
        tlvs: Vec<(u8, Vec<u8>)>,
    },
    /// The connection from the proxy reached EOF (or failed): its peer
    /// address (the proxy's side of the backend leg).
    Closed(SocketAddr),
}

/// A plain TCP echo backend on 127.0.0.1.
pub struct Backend {
    pub addr: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

impl Backend {
    /// Echoes everything; with `proxy_v2`, first reads and reports the
    /// header.
    pub async fn start(proxy_v2: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut tcp, peer)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if proxy_v2 {
                        match read_pp2(&mut tcp).await {
                            Some((source, tlvs)) => {
                                let _ = tx.send(Seen::Header { source, tlvs });
                            }
                            None => {
                                let _ = tx.send(Seen::Closed(peer));
                                return;
                            }
                        }
                    }
                    let mut buf = vec![0u8; 64 * 1024];
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
                    let _ = tx.send(Seen::Closed(peer));
                });
            }
        });
        Self { addr, seen }
    }

    /// The next close the backend saw, within `within`.
    pub async fn next_close(&mut self, within: Duration) -> Option<SocketAddr> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(Seen::Closed(peer))) => return Some(peer),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
}

async fn read_pp2(tcp: &mut TcpStream) -> Option<(SocketAddr, Vec<(u8, Vec<u8>)>)> {
    let mut head = [0u8; 16];
    tcp.read_exact(&mut head).await.ok()?;
    if head[..12] != *b"\r\n\r\n\0\r\nQUIT\n" || head[12] != 0x21 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await.ok()?;
    let (source, rest) = match head[13] {
        0x11 => {
            let ip = std::net::Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            (SocketAddr::from((ip, port)), &body[12..])
        }
        0x21 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            (
                SocketAddr::from((std::net::Ipv6Addr::from(octets), port)),
                &body[36..],
            )
        }
        _ => return None,
    };
    let mut tlvs = Vec::new();
    let mut rest = rest;
    while rest.len() >= 3 {
        let n = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        tlvs.push((rest[0], rest.get(3..3 + n)?.to_vec()));
        rest = &rest[3 + n..];
    }
    Some((source, tlvs))
}

/// A tokio-rustls client configuration presenting `leaf` (with
/// `intermediate`) and trusting `root`.
pub fn client_config(leaf: &Cert, intermediate: &Cert, root: &Cert) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.der.clone())).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_pkcs8_der.clone()));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![
            CertificateDer::from(leaf.der.clone()),
            CertificateDer::from(intermediate.der.clone()),
        ],
        key,
    )
    .unwrap();
    Arc::new(config)
}

/// An mTLS connection to `addr` for `server.vigil.test`.
pub async fn connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("server.vigil.test").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await?;
    // TLS 1.3: a refused client certificate shows on the first read.
    ping(&mut tls).await?;
    Ok(tls)
}

/// Writes a line and reads its echo.
pub async fn ping<S>(stream: &mut S) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(b"ping\n").await?;
    let mut buf = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no echo"))??;
    assert_eq!(&buf, b"ping\n");
    Ok(())
}

/// Waits until reading `stream` ends (EOF or an error): the connection was
/// closed by the far side. The time it took.
pub async fn wait_closed<S>(stream: &mut S, within: Duration) -> Option<Duration>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// A small-footprint echo backend (for idle connections at scale): the
/// number accepted so far.
pub async fn holding_backend() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 || tcp.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, count)
}
