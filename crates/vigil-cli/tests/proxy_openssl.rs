//! `vigil proxy` against the real OpenSSL tools, as an operator running a
//! plain OpenSSL CA would see it: every certificate, CRL and OCSP answer
//! comes from the `openssl` command line (`openssl ca` with its index.txt,
//! serial and crlnumber; `openssl ocsp -index … -reqin … -respout …`
//! behind a small HTTP server of this test on 127.0.0.1), the clients are
//! `openssl s_client` and `curl`, and the backends a TCP echo server and
//! Python's `http.server`. All processes are real, all sockets on
//! 127.0.0.1.
//!
//! - Revocation decided by CRL (the leaves carry only a CRL distribution
//!   point) and by OCSP (only an AIA OCSP URL): after `openssl ca -revoke`,
//!   with no refresh triggered, within the proxy's `--refresh-interval`
//!   (2 s), the revoked client's `s_client`
//!   sees its connection closed and the backend sees EOF on that leg, the
//!   other client's connection goes on, and a new handshake of the revoked
//!   client is refused before any backend connection is made.
//! - curl through the proxy to `python3 -m http.server` (leaves with both
//!   a CRL distribution point and an OCSP URL): the revoked client's
//!   requests fail, the other's go on.
//! - Client mode against `openssl s_server -status_file` (mTLS, stapling an
//!   answer of the `openssl ocsp` responder): with the leaf's responder
//!   down, the staple alone lets the handshake through and bytes flow both
//!   ways; after `openssl ca -revoke` and a refresh, the local connection
//!   is closed.
//!
//! `openssl` (or `$PKI_FIXTURES_OPENSSL`), `curl` and `python3` are
//! required: without them these tests fail, they do not skip.

#![allow(clippy::unwrap_used)]

mod proxy_support;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxy_support::Proxy;
use serde_json::{json, Value};

/// How long anything that should happen soon may take.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long after the refresh returned a revoked connection may stay up.
const TEARDOWN: Duration = Duration::from_secs(5);
/// The proxy's --refresh-interval where the scheduler, not a trigger, must
/// learn a revocation.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// The organisation of every certificate of the test PKI.
const ORG: &str = "Vigil openssl interop";

// ---------------------------------------------------------------------------
// The OpenSSL CA
// ---------------------------------------------------------------------------

/// Which revocation sources the certificates name (the intermediate names
/// the root's, the leaves the intermediate's).
#[derive(Clone, Copy, Debug)]
struct Sources {
    crl: bool,
    ocsp: bool,
}

const CRL_ONLY: Sources = Sources {
    crl: true,
    ocsp: false,
};
const OCSP_ONLY: Sources = Sources {
    crl: false,
    ocsp: true,
};
const CRL_AND_OCSP: Sources = Sources {
    crl: true,
    ocsp: true,
};

/// Runs `openssl ARGS`; panics with its output when it fails.
fn openssl<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    pki_fixtures::openssl::run(args).unwrap_or_else(|e| panic!("{e}"))
}

fn os(path: &Path) -> OsString {
    path.as_os_str().to_owned()
}

/// A root and an intermediate managed with `openssl ca`, the leaves they
/// issued, and the HTTP server publishing their CRLs and answering OCSP
/// with `openssl ocsp`.
struct OpensslPki {
    dir: PathBuf,
    /// Held while `openssl ca` rewrites index.txt or a CRL, and while the
    /// responder reads them.
    lock: Arc<Mutex<()>>,
    publisher: Publisher,
}

impl OpensslPki {
    /// Builds the PKI under `dir` (root, intermediate, server leaf for
    /// localhost/127.0.0.1, client leaves alice and bob) and publishes
    /// fresh CRLs of both CAs.
    fn build(dir: &Path, sources: Sources) -> Self {
        let dir = dir.join("pki");
        std::fs::create_dir_all(dir.join("leaves")).unwrap();
        let lock = Arc::new(Mutex::new(()));
        let publisher = Publisher::start(&dir, Arc::clone(&lock));
        let pki = Self {
            dir,
            lock,
            publisher,
        };
        for ca in ["root", "int"] {
            let ca_dir = pki.ca_dir(ca);
            std::fs::create_dir_all(ca_dir.join("newcerts")).unwrap();
            std::fs::write(ca_dir.join("index.txt"), "").unwrap();
            std::fs::write(ca_dir.join("serial"), "1000\n").unwrap();
            std::fs::write(ca_dir.join("crlnumber"), "1000\n").unwrap();
            std::fs::write(pki.config(ca), pki.config_text(ca, sources)).unwrap();
            genkey(&ca_dir.join("ca.key"));
        }
        let root = pki.ca_dir("root");
        openssl([
            OsString::from("req"),
            "-x509".into(),
            "-new".into(),
            "-config".into(),
            os(&pki.config("root")),
            "-key".into(),
            os(&root.join("ca.key")),
            "-subj".into(),
            format!("/O={ORG}/CN=Vigil openssl root").into(),
            "-days".into(),
            "30".into(),
            "-sha256".into(),
            "-extensions".into(),
            "v3_root".into(),
            "-out".into(),
            os(&pki.root_pem()),
        ]);
        let int = pki.ca_dir("int");
        pki.sign(
            "root",
            &int.join("ca.key"),
            "Vigil openssl intermediate",
            "v3_intermediate",
            &int.join("ca.pem"),
        );
        pki.issue("server", "server_cert");
        for name in ["alice", "bob"] {
            pki.issue(name, "client_cert");
        }
        pki.gencrl("root");
        pki.gencrl("int");
        pki
    }

    fn ca_dir(&self, ca: &str) -> PathBuf {
        self.dir.join(ca)
    }

    fn config(&self, ca: &str) -> PathBuf {
        self.ca_dir(ca).join("openssl.cnf")
    }

    fn root_pem(&self) -> PathBuf {
        self.ca_dir("root").join("ca.pem")
    }

    fn int_pem(&self) -> PathBuf {
        self.ca_dir("int").join("ca.pem")
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.dir.join("leaves").join(format!("{name}.pem"))
    }

    /// The leaf followed by the intermediate.
    fn chain(&self, name: &str) -> PathBuf {
        self.dir.join("leaves").join(format!("{name}.chain.pem"))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.join("leaves").join(format!("{name}.key"))
    }

    /// The configuration of one CA for `openssl req` and `openssl ca`: its
    /// database, and the extensions of what it issues. The revocation
    /// sources a certificate names are those of its issuer.
    fn config_text(&self, ca: &str, sources: Sources) -> String {
        let base = self.publisher.url();
        let names = |issuer: &str| {
            let mut lines = String::new();
            if sources.crl {
                lines.push_str(&format!(
                    "crlDistributionPoints = URI:{base}/{issuer}.crl\n"
                ));
            }
            if sources.ocsp {
                lines.push_str(&format!(
                    "authorityInfoAccess = OCSP;URI:{base}/ocsp/{issuer}\n"
                ));
            }
            lines
        };
        let dir = self.ca_dir(ca);
        format!(
            "\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_cn
unique_subject = no
email_in_dn = no
copy_extensions = none
crl_extensions = crl_ext

[ policy_cn ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = req_dn

[ req_dn ]

[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_intermediate ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{root_sources}
[ client_cert ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{int_sources}
[ server_cert ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1

[ server_cert_sourced ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1
{int_sources}
[ crl_ext ]
authorityKeyIdentifier = keyid:always
",
            dir = dir.display(),
            root_sources = names("root"),
            int_sources = names("int"),
        )
    }

    /// A CSR for `key` named `cn`, signed by `ca` with `extensions` into
    /// `out` (`openssl ca`, which records it in the CA's index.txt).
    fn sign(&self, ca: &str, key: &Path, cn: &str, extensions: &str, out: &Path) {
        let csr = out.with_extension("csr");
        openssl([
            OsString::from("req"),
            "-new".into(),
            "-config".into(),
            os(&self.config(ca)),
            "-key".into(),
            os(key),
            "-subj".into(),
            format!("/O={ORG}/CN={cn}").into(),
            "-out".into(),
            os(&csr),
        ]);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        openssl([
            OsString::from("ca"),
            "-batch".into(),
            "-config".into(),
            os(&self.config(ca)),
            "-extensions".into(),
            extensions.into(),
            "-notext".into(),
            "-in".into(),
            os(&csr),
            "-out".into(),
            os(out),
        ]);
    }

    /// A P-256 key and a certificate of the intermediate for `name`, and
    /// the chain file (leaf, intermediate).
    fn issue(&self, name: &str, extensions: &str) {
        genkey(&self.key(name));
        self.sign("int", &self.key(name), name, extensions, &self.cert(name));
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(self.cert(name)).unwrap(),
            std::fs::read_to_string(self.int_pem()).unwrap()
        );
        std::fs::write(self.chain(name), chain).unwrap();
    }

    /// `openssl ca -gencrl` (valid one day), published as DER at
    /// `/{ca}.crl`.
    fn gencrl(&self, ca: &str) {
        let dir = self.ca_dir(ca);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        openssl([
            OsString::from("ca"),
            "-config".into(),
            os(&self.config(ca)),
            "-gencrl".into(),
            "-crldays".into(),
            "1".into(),
            "-out".into(),
            os(&dir.join("crl.pem")),
        ]);
        openssl([
            OsString::from("crl"),
            "-in".into(),
            os(&dir.join("crl.pem")),
            "-outform".into(),
            "DER".into(),
            "-out".into(),
            os(&dir.join("crl.der.new")),
        ]);
        std::fs::rename(dir.join("crl.der.new"), dir.join("crl.der")).unwrap();
    }

    /// `openssl ca -revoke` of a leaf (keyCompromise): its index.txt line
    /// turns `R`, so the responder answers revoked; with `new_crl`, the
    /// intermediate's CRL is issued again with it.
    fn revoke(&self, name: &str, new_crl: bool) {
        {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            openssl([
                OsString::from("ca"),
                "-config".into(),
                os(&self.config("int")),
                "-revoke".into(),
                os(&self.cert(name)),
                "-crl_reason".into(),
                "keyCompromise".into(),
            ]);
        }
        let index = std::fs::read_to_string(self.ca_dir("int").join("index.txt")).unwrap();
        let line = index
            .lines()
            .find(|l| l.ends_with(&format!("/CN={name}")))
            .unwrap();
        assert!(line.starts_with("R\t"), "not revoked in index.txt: {line}");
        if new_crl {
            self.gencrl("int");
            let text = String::from_utf8(openssl([
                OsString::from("crl"),
                "-in".into(),
                os(&self.ca_dir("int").join("crl.pem")),
                "-noout".into(),
                "-text".into(),
            ]))
            .unwrap();
            assert!(
                text.contains("Key Compromise"),
                "the new CRL does not list {name}:\n{text}"
            );
        }
    }
}

/// `openssl genpkey`: a P-256 key, PKCS#8 PEM.
fn genkey(out: &Path) {
    openssl([
        OsString::from("genpkey"),
        "-algorithm".into(),
        "EC".into(),
        "-pkeyopt".into(),
        "ec_paramgen_curve:P-256".into(),
        "-out".into(),
        os(out),
    ]);
}

// ---------------------------------------------------------------------------
// The CRL and OCSP publisher
// ---------------------------------------------------------------------------

/// An HTTP/1.1 server on 127.0.0.1: `GET /root.crl` and `GET /int.crl`
/// return the CA's current CRL (DER); `GET /ocsp/{root,int}/BASE64` and
/// `POST /ocsp/{root,int}` answer with `openssl ocsp -index … -CA …
/// -rsigner … -rkey … -reqin … -respout … -ndays 1`, signed by that CA.
/// One request per connection.
struct Publisher {
    addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Routes answered 503 (a responder that is down), counted apart.
    down: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl Publisher {
    fn start(dir: &Path, lock: Arc<Mutex<()>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let down = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let work = dir.join("ocsp-work");
        std::fs::create_dir_all(&work).unwrap();
        let shared = Arc::new(PublisherState {
            dir: dir.to_owned(),
            work,
            lock,
            hits: Arc::clone(&hits),
            down: Arc::clone(&down),
            seq: AtomicUsize::new(0),
        });
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || shared.handle(conn));
            }
        });
        Self {
            addr,
            hits,
            down,
            stop,
        }
    }

    /// Answers `route` with 503 from now on (`false`: normally again).
    fn set_down(&self, route: &str, down: bool) {
        let mut routes = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down {
            routes.entry(route.to_owned()).or_insert(0);
        } else {
            routes.remove(route);
        }
    }

    /// Requests refused on `route` while it was down.
    fn refused(&self, route: &str) -> usize {
        let routes = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        routes.get(route).copied().unwrap_or(0)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered on `route` (`/int.crl`, `/ocsp/int`, …).
    fn hits(&self, route: &str) -> usize {
        let hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        hits.get(route).copied().unwrap_or(0)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

struct PublisherState {
    dir: PathBuf,
    work: PathBuf,
    lock: Arc<Mutex<()>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    down: Arc<Mutex<HashMap<String, usize>>>,
    seq: AtomicUsize,
}

impl PublisherState {
    fn handle(&self, mut conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(DEADLINE));
        let Some((method, target, body)) = read_request(&mut conn) else {
            return;
        };
        let path = target.split('?').next().unwrap_or_default();
        {
            let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(refused) = down
                .iter_mut()
                .find(|(route, _)| path.starts_with(route.as_str()))
                .map(|(_, n)| n)
            {
                *refused += 1;
                let _ = conn.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n",
                );
                let _ = conn.shutdown(Shutdown::Write);
                return;
            }
        }
        let (status, content_type, payload) = match self.answer(&method, path, &body) {
            Some((route, content_type, payload)) => {
                let mut hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
                *hits.entry(route).or_insert(0) += 1;
                ("200 OK", content_type, payload)
            }
            None => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            payload.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&payload);
        let _ = conn.flush();
        let _ = conn.shutdown(Shutdown::Write);
    }

    /// The route, content type and body of the answer to a known request.
    fn answer(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<(String, &'static str, Vec<u8>)> {
        for ca in ["root", "int"] {
            let crl = format!("/{ca}.crl");
            if path == crl && method == "GET" {
                let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                let der = std::fs::read(self.dir.join(ca).join("crl.der")).ok()?;
                return Some((crl, "application/pkix-crl", der));
            }
            let ocsp = format!("/ocsp/{ca}");
            let request = if path == ocsp && method == "POST" {
                body.to_vec()
            } else if let Some(encoded) = path
                .strip_prefix(&ocsp)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|_| method == "GET")
            {
                // RFC 6960 Appendix A.1: base64, URL-encoded.
                base64::engine::general_purpose::STANDARD
                    .decode(percent_decode(encoded)?)
                    .ok()?
            } else {
                continue;
            };
            let response = self.ocsp(ca, &request)?;
            return Some((ocsp, "application/ocsp-response", response));
        }
        None
    }

    /// The real OpenSSL responder's answer to `request` (DER) from `ca`'s
    /// index.txt, signed by `ca`.
    fn ocsp(&self, ca: &str, request: &[u8]) -> Option<Vec<u8>> {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let req = self.work.join(format!("{n}.req.der"));
        let resp = self.work.join(format!("{n}.resp.der"));
        std::fs::write(&req, request).ok()?;
        let ca_dir = self.dir.join(ca);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let out = Command::new(pki_fixtures::openssl::program().ok()?)
            .arg("ocsp")
            .arg("-index")
            .arg(ca_dir.join("index.txt"))
            .arg("-CA")
            .arg(ca_dir.join("ca.pem"))
            .arg("-rsigner")
            .arg(ca_dir.join("ca.pem"))
            .arg("-rkey")
            .arg(ca_dir.join("ca.key"))
            .arg("-reqin")
            .arg(&req)
            .arg("-respout")
            .arg(&resp)
            .args(["-ndays", "1"])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "openssl ocsp failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        std::fs::read(&resp).ok()
    }
}

/// `%XX` escapes decoded.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Method, target and body of one HTTP/1.1 request.
fn read_request(conn: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    const LIMIT: usize = 64 * 1024;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > LIMIT {
            return None;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > LIMIT {
        return None;
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((method, target, body))
}

// ---------------------------------------------------------------------------
// The plain backend
// ---------------------------------------------------------------------------

/// One connection the echo backend accepted (a backend leg of the proxy).
#[derive(Clone, Debug)]
struct Leg {
    /// The first line received, which names the client.
    first_line: String,
    /// How the leg ended: `eof` (a FIN from the proxy) or `error: …`.
    end: Option<String>,
}

/// A TCP echo server on 127.0.0.1 that records each connection and how it
/// ended.
struct EchoBackend {
    addr: SocketAddr,
    legs: Arc<Mutex<Vec<Leg>>>,
    stop: Arc<AtomicBool>,
}

impl EchoBackend {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let legs: Arc<Mutex<Vec<Leg>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&legs), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let legs = Arc::clone(&shared);
                std::thread::spawn(move || echo(conn, &legs));
            }
        });
        Self { addr, legs, stop }
    }

    fn legs(&self) -> Vec<Leg> {
        self.legs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The leg whose first line is `line`.
    fn leg(&self, line: &str) -> Leg {
        let legs = self.legs();
        legs.iter()
            .find(|l| l.first_line == line)
            .cloned()
            .unwrap_or_else(|| panic!("no backend leg began with {line:?}: {legs:?}"))
    }

    /// Waits until the leg that began with `line` ended; how it ended.
    fn wait_end(&self, line: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.leg(line).end {
                return Some(end);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn echo(mut conn: TcpStream, legs: &Mutex<Vec<Leg>>) {
    let index = {
        let mut legs = legs.lock().unwrap_or_else(PoisonError::into_inner);
        legs.push(Leg {
            first_line: String::new(),
            end: None,
        });
        legs.len() - 1
    };
    let mut first = Vec::new();
    let mut first_done = false;
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => break "eof".to_owned(),
            Ok(n) => {
                if !first_done {
                    for &b in &buf[..n] {
                        if b == b'\n' || first.len() >= 256 {
                            first_done = true;
                            break;
                        }
                        first.push(b);
                    }
                    if first_done {
                        let mut legs = legs.lock().unwrap_or_else(PoisonError::into_inner);
                        legs[index].first_line = String::from_utf8_lossy(&first).into_owned();
                    }
                }
                if let Err(e) = conn.write_all(&buf[..n]) {
                    break format!("error: write: {e}");
                }
            }
            Err(e) => break format!("error: read: {e}"),
        }
    };
    let mut legs = legs.lock().unwrap_or_else(PoisonError::into_inner);
    legs[index].end = Some(end);
}

// ---------------------------------------------------------------------------
// Clients, children, the admin API
// ---------------------------------------------------------------------------

/// Kills and reaps its processes when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `openssl s_client -quiet` connected to the proxy with a client
/// certificate; what it prints arrives line by line.
struct SClient {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: PathBuf,
}

impl SClient {
    fn connect(pki: &OpensslPki, name: &str, addr: SocketAddr, logs: &Path) -> Self {
        let stderr = logs.join(format!(
            "s_client-{name}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = Command::new(pki_fixtures::openssl::program().unwrap())
            .arg("s_client")
            .arg("-connect")
            .arg(addr.to_string())
            .arg("-cert")
            .arg(pki.cert(name))
            .arg("-cert_chain")
            .arg(pki.int_pem())
            .arg("-key")
            .arg(pki.key(name))
            .arg("-CAfile")
            .arg(pki.root_pem())
            .args(["-verify_ip", "127.0.0.1", "-verify_return_error", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Writes `line` and a newline to the connection; false when stdin is
    /// closed (the process is gone).
    fn send(&mut self, line: &str) -> bool {
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .is_ok()
    }

    /// Sends `line` and waits for its echo from the backend.
    fn round_trip(&mut self, line: &str) {
        assert!(self.send(line), "{}: s_client is gone", self.name);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(got) if got == line => return,
                Ok(_) => continue,
                Err(e) => panic!(
                    "{}: no echo of {line:?} ({e:?}); s_client stderr:\n{}",
                    self.name,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits until s_client's stdout ends and the process exits (the
    /// server closed the connection): its exit status and what it printed
    /// meanwhile.
    fn wait_closed(&mut self, within: Duration) -> Option<(ExitStatus, Vec<String>)> {
        let deadline = Instant::now() + within;
        let mut printed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => printed.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, printed));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SClient {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy's admin API.
struct Admin {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    base: String,
}

impl Admin {
    fn new(proxy: &Proxy) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = runtime
            .block_on(async {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
            })
            .unwrap();
        Self {
            http,
            runtime,
            base: proxy.admin.clone().unwrap(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value, String) {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            (status, body, text)
        })
    }

    fn get(&self, path: &str) -> (u16, Value, String) {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value, String) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + DEADLINE;
        while self.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "the proxy never became ready");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `POST /v1/revocation/refresh`, which returns when the refresh is
    /// done.
    fn refresh(&self) {
        let (status, _, text) = self.post("/v1/revocation/refresh", &json!({}));
        assert_eq!(status, 200, "{text}");
    }

    /// The id of the one tracked connection whose subject names `cn`.
    fn connection_of(&self, cn: &str) -> String {
        let (status, body, text) = self.get("/v1/connections");
        assert_eq!(status, 200, "{text}");
        let rows: Vec<&Value> = body["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("CN={cn}")))
            })
            .collect();
        assert_eq!(rows.len(), 1, "{cn} is not tracked once: {text}");
        rows[0]["id"].as_str().unwrap().to_owned()
    }
}

/// Starts `vigil proxy` in front of `target` with the PKI's server
/// certificate, its root as the only anchor, an admin API and `extra`.
fn start_proxy(pki: &OpensslPki, target: SocketAddr, dir: &Path, extra: &[&str]) -> Proxy {
    let mut args: Vec<String> = [
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--target".to_owned(),
        target.to_string(),
        "--cert".to_owned(),
        pki.chain("server").display().to_string(),
        "--key".to_owned(),
        pki.key("server").display().to_string(),
        "--anchor".to_owned(),
        pki.root_pem().display().to_string(),
        "--data-dir".to_owned(),
        dir.join("data").display().to_string(),
        "--admin".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]
    .into();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Proxy::start(&args, 1, &dir.join("proxy.log"))
}

/// Waits until the proxy's log has a line containing `text`; that line.
fn wait_log_line(proxy: &Proxy, text: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = proxy.log_text();
        if let Some(line) = log.lines().find(|l| l.contains(text)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {text:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// Two s_client connections through the proxy to the echo backend; alice
/// is revoked with `openssl ca -revoke` (and, for CRLs, a new CRL), the
/// admin API refreshes, and alice loses both legs while bob goes on.
fn revocation_closes_both_legs(sources: Sources) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = OpensslPki::build(tmp.path(), sources);
    let backend = EchoBackend::start();
    let interval = REFRESH_INTERVAL.as_secs().to_string();
    let proxy = start_proxy(
        &pki,
        backend.addr,
        tmp.path(),
        &["--refresh-interval", &interval],
    );
    let admin = Admin::new(&proxy);
    admin.wait_ready();

    let mut alice = SClient::connect(&pki, "alice", proxy.addr(), tmp.path());
    alice.round_trip("alice-1");
    let mut bob = SClient::connect(&pki, "bob", proxy.addr(), tmp.path());
    bob.round_trip("bob-1");
    alice.round_trip("alice-2");
    let alice_id = admin.connection_of("alice");
    let bob_id = admin.connection_of("bob");
    assert_eq!(backend.legs().len(), 2, "{:?}", backend.legs());

    // The proxy fetched what the certificates name, and only that.
    let (status, revocation, text) = admin.get("/v1/revocation");
    assert_eq!(status, 200, "{text}");
    let fetched: Vec<(String, String)> = revocation["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["last_error"].is_null(), "{s}");
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["url"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let base = pki.publisher.url();
    let mut expected: Vec<(String, String)> = Vec::new();
    if sources.crl {
        expected.push(("crl".into(), format!("{base}/int.crl")));
        expected.push(("crl".into(), format!("{base}/root.crl")));
    }
    if sources.ocsp && !sources.crl {
        expected.push(("ocsp".into(), format!("{base}/ocsp/int")));
        expected.push(("ocsp".into(), format!("{base}/ocsp/root")));
    }
    for source in &expected {
        assert!(fetched.contains(source), "{source:?} not in {text}");
    }
    if !sources.ocsp {
        assert!(fetched.iter().all(|(kind, _)| kind == "crl"), "{text}");
    }
    if !sources.crl {
        assert!(fetched.iter().all(|(kind, _)| kind == "ocsp"), "{text}");
    }

    // Revoke alice at the CA. Nobody triggers a refresh: the proxy's
    // scheduler asks again within --refresh-interval and learns it.
    pki.revoke("alice", sources.crl);
    let route = if sources.crl { "/int.crl" } else { "/ocsp/int" };
    let asked = pki.publisher.hits(route);
    let refreshed = Instant::now();

    // Alice's client leg: s_client sees the connection end and exits.
    let (status, printed) = alice
        .wait_closed(REFRESH_INTERVAL + TEARDOWN)
        .unwrap_or_else(|| {
            panic!(
                "alice's connection survived its revocation for {:?}; proxy log:\n{}",
                refreshed.elapsed(),
                proxy.log_text()
            )
        });
    assert!(printed.is_empty(), "alice got {printed:?}");
    assert!(
        pki.publisher.hits(route) > asked,
        "the scheduler did not ask {route} again"
    );
    // A close_notify ends s_client cleanly; a bare FIN or a reset would be
    // an error ("unexpected eof while reading").
    assert!(
        status.success() && !alice.stderr().contains(":error:"),
        "alice's s_client did not see a clean close ({status}):\n{}",
        alice.stderr()
    );
    // Her backend leg: a clean EOF (FIN), not a reset.
    let end = backend.wait_end("alice-1", TEARDOWN).unwrap_or_else(|| {
        panic!(
            "the backend leg of alice's connection stayed open: {:?}",
            backend.legs()
        )
    });
    assert_eq!(
        end,
        "eof",
        "alice's backend leg: {:?}",
        backend.leg("alice-1")
    );
    let took = refreshed.elapsed();
    eprintln!("alice torn down {took:?} after her revocation, no refresh triggered (s_client exit {status})");

    // The proxy says why.
    let (_, record, text) = admin.get(&format!("/v1/connections/{alice_id}"));
    assert_eq!(record["state"], "torn_down", "{text}");
    assert_eq!(record["teardown"]["reason"], "revoked", "{text}");
    assert!(
        record["teardown"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("keyCompromise")),
        "{text}"
    );

    // Bob's connection goes on, both legs.
    bob.round_trip("bob-2");
    assert!(
        backend.leg("bob-1").end.is_none(),
        "{:?}",
        backend.leg("bob-1")
    );
    let (_, record, text) = admin.get(&format!("/v1/connections/{bob_id}"));
    assert_eq!(record["state"], "active", "{text}");

    // A new handshake of alice is refused, before any backend connection.
    let legs = backend.legs().len();
    let mut again = SClient::connect(&pki, "alice", proxy.addr(), tmp.path());
    again.send("alice-again");
    let (status, printed) = again.wait_closed(DEADLINE).unwrap_or_else(|| {
        panic!(
            "a revoked client's new connection stayed open; s_client stderr:\n{}",
            again.stderr()
        )
    });
    assert!(printed.is_empty(), "revoked alice got {printed:?}");
    assert!(
        !status.success() && again.stderr().contains("alert certificate revoked"),
        "s_client did not get a certificate_revoked alert ({status}):\n{}",
        again.stderr()
    );
    let rejected = wait_log_line(&proxy, "client certificate rejected");
    assert!(rejected.contains("revoked"), "{rejected}");
    assert_eq!(backend.legs().len(), legs, "{:?}", backend.legs());

    // Bob is still there after all that.
    bob.round_trip("bob-3");
    if !sources.crl {
        assert_eq!(pki.publisher.hits("/int.crl"), 0);
        assert_eq!(pki.publisher.hits("/root.crl"), 0);
    }
}

#[test]
fn crl_revocation_by_openssl_ca_closes_both_legs_of_the_revoked_s_client() {
    revocation_closes_both_legs(CRL_ONLY);
}

#[test]
fn ocsp_revocation_by_openssl_responder_closes_both_legs_of_the_revoked_s_client() {
    revocation_closes_both_legs(OCSP_ONLY);
}

/// `curl --cert … --key … --cacert …` through the proxy.
fn curl(pki: &OpensslPki, name: &str, proxy: SocketAddr) -> Output {
    Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cert"])
        .arg(pki.chain(name))
        .arg("--key")
        .arg(pki.key(name))
        .arg("--cacert")
        .arg(pki.root_pem())
        .arg(format!("https://{proxy}/hello.txt"))
        .output()
        .unwrap()
}

/// Starts `python3 -m http.server` on 127.0.0.1 serving `site`; its
/// address.
fn http_server(site: &Path, children: &mut Children, log: &Path) -> SocketAddr {
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(site)
        .arg("0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    children.0.push(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|e| {
        panic!(
            "python3 -m http.server did not start ({e}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    let port: u16 = line
        .split_once(" port ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn curl_through_the_proxy_to_python_http_server_stops_working_for_a_revoked_client() {
    const CONTENT: &str = "hello through vigil proxy\n";
    let tmp = tempfile::tempdir().unwrap();
    let pki = OpensslPki::build(tmp.path(), CRL_AND_OCSP);
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("hello.txt"), CONTENT).unwrap();
    let mut children = Children(Vec::new());
    let web = http_server(&site, &mut children, &tmp.path().join("http.log"));
    let proxy = start_proxy(&pki, web, tmp.path(), &[]);
    let admin = Admin::new(&proxy);
    admin.wait_ready();

    for name in ["alice", "bob"] {
        let out = curl(&pki, name, proxy.addr());
        assert!(
            out.status.success(),
            "curl as {name}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), CONTENT);
    }

    pki.revoke("alice", true);
    admin.refresh();

    let out = curl(&pki, "alice", proxy.addr());
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "curl as revoked alice got an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate revoked"),
        "curl as revoked alice: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rejected = wait_log_line(&proxy, "client certificate rejected");
    assert!(rejected.contains("revoked"), "{rejected}");

    let out = curl(&pki, "bob", proxy.addr());
    assert!(
        out.status.success(),
        "curl as bob after alice's revocation: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), CONTENT);
    // The web server saw alice, bob, bob: the refused request never got
    // past the proxy.
    let log = std::fs::read_to_string(tmp.path().join("http.log")).unwrap();
    assert_eq!(log.matches("GET /hello.txt").count(), 3, "{log}");
}

/// Client mode against `openssl s_server -status_file`: the remote server
/// staples an answer of the `openssl ocsp` responder; vigil proxy --client
/// uses the staple (its leaf's responder is not asked), carries bytes from
/// the local plain connection to s_server, and when the server's
/// certificate is revoked at the CA, the refresh closes the local
/// connection and the TLS leg.
#[test]
fn client_mode_uses_s_server_staple_and_closes_when_the_server_is_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = OpensslPki::build(tmp.path(), OCSP_ONLY);
    pki.issue("remote", "server_cert_sourced");
    let base = pki.publisher.url();

    // The staple: the real responder's answer about the remote server.
    let staple = tmp.path().join("staple.der");
    openssl([
        OsString::from("ocsp"),
        "-issuer".into(),
        os(&pki.int_pem()),
        "-cert".into(),
        os(&pki.cert("remote")),
        "-url".into(),
        format!("{base}/ocsp/int").into(),
        "-respout".into(),
        os(&staple),
        "-noverify".into(),
    ]);
    assert_eq!(pki.publisher.hits("/ocsp/int"), 1);

    // openssl s_server: mTLS (client certificate required), stapling.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut children = Children(Vec::new());
    let mut server = Command::new(pki_fixtures::openssl::program().unwrap())
        .arg("s_server")
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(pki.cert("remote"))
        .arg("-cert_chain")
        .arg(pki.int_pem())
        .arg("-key")
        .arg(pki.key("remote"))
        .arg("-CAfile")
        .arg(pki.root_pem())
        .args(["-Verify", "2", "-verify_return_error"])
        .arg("-status_file")
        .arg(&staple)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.path().join("s_server.log")).unwrap())
        .spawn()
        .unwrap();
    let server_stdin = server.stdin.take();
    let stdout = server.stdout.take().unwrap();
    children.0.push(server);
    let (tx, server_lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_server = |text: &str| -> Option<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server_lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    assert!(wait_server("ACCEPT").is_some(), "s_server did not start");

    let args: Vec<String> = [
        "--client".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--target".to_owned(),
        format!("127.0.0.1:{port}"),
        "--cert".to_owned(),
        pki.chain("alice").display().to_string(),
        "--key".to_owned(),
        pki.key("alice").display().to_string(),
        "--anchor".to_owned(),
        pki.root_pem().display().to_string(),
        "--data-dir".to_owned(),
        tmp.path().join("data").display().to_string(),
        "--admin".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]
    .into();
    let proxy = Proxy::start(&args, 1, &tmp.path().join("proxy.log"));
    let admin = Admin::new(&proxy);
    admin.wait_ready();

    // The leaf's responder is down: only the staple can tell its status
    // (require: unknown would refuse the handshake).
    pki.publisher.set_down("/ocsp/int", true);

    // Bytes flow from the local plain connection to s_server and back.
    let mut local = TcpStream::connect(proxy.addr()).unwrap();
    local.write_all(b"hello-remote\n").unwrap();
    assert!(
        wait_server("hello-remote").is_some(),
        "s_server did not get the bytes; proxy log:\n{}\ns_server log:\n{}",
        proxy.log_text(),
        std::fs::read_to_string(tmp.path().join("s_server.log")).unwrap_or_default()
    );
    let mut server_stdin = server_stdin.unwrap();
    server_stdin.write_all(b"hello-local\n").unwrap();
    server_stdin.flush().unwrap();
    local.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = [0u8; 12];
    local.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello-local\n");
    let remote_id = admin.connection_of("remote");
    // The staple answered for the leaf: its responder was asked (the
    // engine registers it to keep checking the live connection) and
    // failed; the intermediate's status came from the root's responder.
    assert_eq!(pki.publisher.hits("/ocsp/int"), 1);
    assert!(pki.publisher.refused("/ocsp/int") >= 1);
    assert!(pki.publisher.hits("/ocsp/root") >= 1);
    let (_, record, text) = admin.get(&format!("/v1/connections/{remote_id}"));
    assert_eq!(record["state"], "active", "{text}");

    // Revoked at the CA, the responder back; the refresh asks it and
    // learns it.
    pki.revoke("remote", false);
    pki.publisher.set_down("/ocsp/int", false);
    admin.refresh();
    assert!(pki.publisher.hits("/ocsp/int") > 1);
    let mut byte = [0u8; 1];
    local.set_read_timeout(Some(TEARDOWN)).unwrap();
    match local.read(&mut byte) {
        Ok(0) => {}
        other => panic!(
            "the local connection survived the server's revocation: {other:?}; proxy log:\n{}",
            proxy.log_text()
        ),
    }
    let (_, record, text) = admin.get(&format!("/v1/connections/{remote_id}"));
    assert_eq!(record["state"], "torn_down", "{text}");
    assert_eq!(record["teardown"]["reason"], "revoked", "{text}");
    drop(server_stdin);
}
