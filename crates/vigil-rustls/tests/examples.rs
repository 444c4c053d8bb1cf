//! End-to-end tests of the `mtls_echo` and `mtls_echo_client` examples, run
//! as real processes against the fixture PKI and its CRL/OCSP responder:
//! a revoked client's live connection is closed while another client's
//! stays up, the server key loads in PKCS#8, SEC1 and PKCS#1 form, `openssl
//! s_client` interoperates, and the client example echoes and reports a
//! server close.
//!
//! The examples are built (`cargo build -p vigil-rustls --examples`, same
//! profile) once per run of this file, then started from
//! `target/<profile>/examples/`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader as StdBufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pki_fixtures::responder::{start_with_fresh_pki, Responder, ResponderOptions};
use pki_fixtures::{Cert, CertSpec, KeyAlg, Pki, PkiDir, PkiOptions, Reason};
use rustls::pki_types::{PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const SERVER_NAME: &str = "server.vigil.test";

/// Proxy variables a child must not inherit: the responder is on 127.0.0.1.
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

// ---------------------------------------------------------------------------
// Example binaries and child processes

/// `target/<profile>/examples/NAME`, after building the examples once.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // This test runs from target/<profile>/deps/.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "vigil-rustls", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
        profile_dir.join("examples")
    });
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Lines a child writes to one of its pipes, collected by a thread.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Self {
        let lines = Self::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            let mut pipe = StdBufReader::new(pipe);
            let mut line = Vec::new();
            while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                sink.0.lock().unwrap().push(text);
                line.clear();
            }
        });
        lines
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        self.all().join("\n")
    }

    /// The first line matching `pred`, waiting up to `timeout` for it.
    async fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.all().into_iter().find(|l| pred(l)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A child process, killed (and reaped) when dropped.
struct Proc {
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

impl Proc {
    fn spawn(mut command: Command) -> Self {
        for var in PROXY_VARS {
            command.env_remove(var);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The exit status, waiting up to `timeout`.
    async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the child said, for failure messages.
    fn report(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The fixture PKI, the server, in-process clients

/// A responder with a fresh PKI of `alg`, plus a second good client
/// certificate the responder answers `good` for.
async fn pki(alg: KeyAlg) -> (Responder, Pki, Cert) {
    let (responder, pki) = start_with_fresh_pki(
        PkiOptions {
            alg,
            ..PkiOptions::default()
        },
        ResponderOptions::default(),
    )
    .await
    .unwrap();
    let spec = CertSpec::leaf("client-two", "client-two.vigil.test", &pki.options);
    let second = tokio::task::block_in_place(|| pki.intermediate.issue_leaf(&spec)).unwrap();
    responder.register(&second).unwrap();
    (responder, pki, second)
}

/// Starts `mtls_echo` on a free port with the fixture server chain, `key`
/// and the fixture root; returns it with its address once it listens.
async fn start_server(dir: &PkiDir, key: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut command = Command::new(example("mtls_echo"));
    command
        .args(["--listen", "127.0.0.1:0", "--cert"])
        .arg(dir.file("server.chain.pem"))
        .arg("--key")
        .arg(key)
        .arg("--anchor")
        .arg(dir.file("root.pem"))
        .args(extra);
    let server = Proc::spawn(command);
    let line = server
        .stdout
        .wait_for(Duration::from_secs(30), |l| l.starts_with("listening on "))
        .await
        .unwrap_or_else(|| panic!("mtls_echo did not start\n{}", server.report()));
    let addr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    (server, addr)
}

/// A rustls client trusting the fixture root, presenting `leaf` (issued by
/// the intermediate).
fn client_config(pki: &Pki, leaf: &Cert) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert.certificate_der()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![
                leaf.certificate_der(),
                pki.intermediate.cert.certificate_der(),
            ],
            PrivatePkcs8KeyDer::from(leaf.key_pkcs8_der.clone()).into(),
        )
        .unwrap()
}

type Conn = BufReader<TlsStream<TcpStream>>;

async fn connect(addr: SocketAddr, config: ClientConfig) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(20),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))??;
    Ok(BufReader::new(tls))
}

/// Sends `line` and reads one line back.
async fn echo(conn: &mut Conn, line: &str) -> std::io::Result<String> {
    conn.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await?;
    conn.get_mut().flush().await?;
    let mut back = String::new();
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read_line(&mut back))
        .await
        .map_err(|_| std::io::Error::other("no echo within 20 s"))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(back.trim_end().to_owned())
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("openssl not found: skipping the parts that need it");
    }
    found
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_client_closes_its_connection_and_only_its() {
    let (responder, pki, second) = pki(KeyAlg::EcdsaP256).await;
    let dir = PkiDir::new(&pki).unwrap();
    let (server, addr) = start_server(
        &dir,
        &dir.file("server.key.pem"),
        &["--refresh-interval", "1"],
    )
    .await;

    let mut first = connect(addr, client_config(&pki, &pki.client))
        .await
        .unwrap();
    assert_eq!(
        echo(&mut first, "first").await.unwrap(),
        "first",
        "{}",
        server.report()
    );
    let mut other = connect(addr, client_config(&pki, &second)).await.unwrap();
    assert_eq!(
        echo(&mut other, "second").await.unwrap(),
        "second",
        "{}",
        server.report()
    );

    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    let revoked_at = Instant::now();

    // The server closes the first connection on its own: a pending read
    // ends (close_notify: EOF; or an error).
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), first.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("still open 5 s after the revocation\n{}", server.report()));
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected a close, got {read:?}"
    );
    eprintln!("closed {:?} after the revocation", revoked_at.elapsed());

    let serial = pki.client.serial_hex();
    let teardown = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with("teardown "))
        .await
        .unwrap_or_else(|| panic!("no teardown logged\n{}", server.report()));
    assert!(teardown.contains("reason=revoked"), "{teardown}");
    assert!(teardown.contains(&format!("serial={serial}")), "{teardown}");

    // The other client is untouched.
    assert_eq!(
        echo(&mut other, "still here").await.unwrap(),
        "still here",
        "{}",
        server.report()
    );

    // And the revoked certificate cannot come back (TLS 1.3: the refusal
    // arrives after the client's side of the handshake, on first use).
    let again = match connect(addr, client_config(&pki, &pki.client)).await {
        Ok(mut conn) => echo(&mut conn, "again").await,
        Err(e) => Err(e),
    };
    assert!(again.is_err(), "a revoked client was served: {again:?}");
    assert_eq!(
        server
            .stderr
            .all()
            .iter()
            .filter(|l| l.starts_with("teardown "))
            .count(),
        1,
        "{}",
        server.report()
    );
    drop(server);
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_key_loads_as_pkcs8_sec1_and_pkcs1() {
    let openssl = openssl_available();
    for (alg, traditional) in [
        (KeyAlg::EcdsaP256, "EC PRIVATE KEY"),
        (KeyAlg::Rsa2048, "RSA PRIVATE KEY"),
    ] {
        let (responder, pki, _) = pki(alg).await;
        let dir = PkiDir::new(&pki).unwrap();
        let pkcs8 = dir.file("server.key.pem");
        assert!(std::fs::read_to_string(&pkcs8)
            .unwrap()
            .contains("-----BEGIN PRIVATE KEY-----"));
        let mut keys = vec![("PKCS#8", pkcs8.clone())];
        if openssl {
            let converted = dir.file("server.traditional.key.pem");
            let status = Command::new("openssl")
                .args(["pkey", "-traditional", "-in"])
                .arg(&pkcs8)
                .arg("-out")
                .arg(&converted)
                .status()
                .unwrap();
            assert!(status.success(), "openssl pkey failed: {status}");
            let text = std::fs::read_to_string(&converted).unwrap();
            assert!(
                text.contains(&format!("-----BEGIN {traditional}-----")),
                "{text}"
            );
            keys.push((traditional, converted));
        }
        for (form, key) in keys {
            let (server, addr) = start_server(&dir, &key, &[]).await;
            let mut conn = connect(addr, client_config(&pki, &pki.client))
                .await
                .unwrap();
            let back = echo(&mut conn, form).await;
            assert_eq!(
                back.as_deref().ok(),
                Some(form),
                "{alg:?} {form}: {back:?}\n{}",
                server.report()
            );
        }
        responder.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_interoperates() {
    if !openssl_available() {
        return;
    }
    let (responder, pki, _) = pki(KeyAlg::EcdsaP256).await;
    let dir = PkiDir::new(&pki).unwrap();
    let (server, addr) = start_server(&dir, &dir.file("server.key.pem"), &[]).await;

    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", SERVER_NAME, "-verify_hostname", SERVER_NAME])
        .arg("-cert")
        .arg(dir.file("client.pem"))
        .arg("-cert_chain")
        .arg(dir.file("intermediate.pem"))
        .arg("-key")
        .arg(dir.file("client.key.pem"))
        .arg("-CAfile")
        .arg(dir.file("root.pem"))
        .args(["-verify_return_error", "-quiet"]);
    let mut client = Proc::spawn(command);
    client.write_stdin(b"hello from openssl\n");
    let echoed = client
        .stdout
        .wait_for(Duration::from_secs(20), |l| l == "hello from openssl")
        .await;
    assert!(
        echoed.is_some(),
        "no echo\nopenssl s_client:\n{}\nmtls_echo:\n{}",
        client.report(),
        server.report()
    );
    assert!(
        server
            .stderr
            .all()
            .iter()
            .any(|l| l.starts_with("accepted connection=")),
        "{}",
        server.report()
    );
    drop(client);
    drop(server);
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_example_echoes_and_reports_a_server_close() {
    let (responder, pki, _) = pki(KeyAlg::EcdsaP256).await;
    let dir = PkiDir::new(&pki).unwrap();
    let (server, addr) = start_server(
        &dir,
        &dir.file("server.key.pem"),
        &["--refresh-interval", "1"],
    )
    .await;
    let client_command = || {
        let mut command = Command::new(example("mtls_echo_client"));
        command
            .args(["--connect", &addr.to_string(), "--cert"])
            .arg(dir.file("client.chain.pem"))
            .arg("--key")
            .arg(dir.file("client.key.pem"))
            .arg("--anchor")
            .arg(dir.file("root.pem"));
        command
    };

    // stdin ends: every line comes back, exit 0.
    let mut client = Proc::spawn(client_command());
    client.write_stdin(b"alpha\nbeta\n");
    client.close_stdin();
    let status = client.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}\nmtls_echo:\n{}",
        client.report(),
        server.report()
    );
    assert_eq!(client.stdout.all(), ["alpha", "beta"]);

    // The server closes first (the client is revoked): exit 1.
    let mut client = Proc::spawn(client_command());
    client.write_stdin(b"gamma\n");
    assert!(
        client
            .stdout
            .wait_for(Duration::from_secs(20), |l| l == "gamma")
            .await
            .is_some(),
        "{}\nmtls_echo:\n{}",
        client.report(),
        server.report()
    );
    responder
        .revoke(&pki.client, Reason::KeyCompromise)
        .unwrap();
    let status = client.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{}\nmtls_echo:\n{}",
        client.report(),
        server.report()
    );
    assert!(
        client
            .stderr
            .all()
            .iter()
            .any(|l| l == "connection closed by server"),
        "{}",
        client.report()
    );
    drop(server);
    responder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_without_panicking() {
    let dir = tempfile_dir();
    let missing = dir.join("missing.pem");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, b"not a PEM file\n").unwrap();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec![],
        vec!["--listen".into(), "nowhere".into()],
        vec!["--bogus".into()],
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            missing.clone().into(),
            "--key".into(),
            missing.clone().into(),
            "--anchor".into(),
            missing.clone().into(),
        ],
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            not_pem.clone().into(),
            "--key".into(),
            not_pem.clone().into(),
            "--anchor".into(),
            not_pem.clone().into(),
        ],
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            "c".into(),
            "--key".into(),
            "k".into(),
            "--anchor".into(),
            "a".into(),
            "--revocation".into(),
            "off".into(),
        ],
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            "c".into(),
            "--key".into(),
            "k".into(),
            "--anchor".into(),
            "a".into(),
            "--refresh-interval".into(),
            "0".into(),
        ],
    ];
    for args in cases {
        let mut command = Command::new(example("mtls_echo"));
        command.args(&args);
        let mut proc = Proc::spawn(command);
        let status = proc.wait_exit(Duration::from_secs(20)).await;
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(2),
            "{args:?}\n{}",
            proc.report()
        );
        // Let the pipe threads catch up before looking.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stderr = proc.stderr.text();
        assert!(stderr.starts_with("mtls_echo: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vigil-mtls-echo-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
