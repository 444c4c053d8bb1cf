//! Interoperability with real OpenSSL (issue 3, Tests): a CA built only with
//! the `openssl` command-line tool (`openssl req -x509`, `openssl ca`,
//! `openssl ca -revoke`, `openssl ca -gencrl`), its CRL served over HTTP on
//! 127.0.0.1, and OCSP answered by OpenSSL's own responder logic
//! (`openssl ocsp -index … -rsigner … -reqin REQ -respout RESP`) behind a
//! small axum front end bound to 127.0.0.1 (never `openssl ocsp -port`,
//! which listens on every interface).
//!
//! The engine must tell the good and the revoked certificates apart through
//! CRLs alone, through OCSP alone and in both method orders, and then follow
//! a revocation made afterwards with `openssl ca -revoke` and a new
//! `openssl ca -gencrl`. Two certificate profiles cover both encodings and
//! both OCSP transports: "direct" names a DER CRL and an OCSP URL small
//! requests are sent to with GET, answered with the CA key; "delegated"
//! names a PEM CRL and an OCSP URL with a query (so requests are POSTed),
//! answered by a delegated responder certificate with id-kp-OCSPSigning.
//!
//! Without `openssl` (or `$PKI_FIXTURES_OPENSSL`) the test fails; it never
//! skips.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use vigil_core::{
    CertStatus, CertificateDer, Decision, Methods, ReasonCode, RevocationPolicy, Source, Status,
    Usage, Verdict, VerifierConfig, VerifyOptions,
};
use vigil_runtime::{
    Engine, EngineConfig, FetchConfig, MemoryStore, Refreshed, SourceState, SystemClock,
};

/// Runs `openssl` with `args` (paths as text: everything lives in one temporary
/// directory) and returns its standard output; any failure fails the test with
/// openssl's own words.
fn openssl(args: &[&str]) -> Vec<u8> {
    pki_fixtures::openssl::run(args).unwrap_or_else(|e| panic!("{e}"))
}

/// A file in `dir`, as the text openssl is given.
fn file(dir: &Path, name: &str) -> String {
    dir.join(name)
        .to_str()
        .unwrap_or_else(|| panic!("temporary directory {dir:?} is not UTF-8"))
        .to_owned()
}

/// The two certificate profiles (extension sections of `openssl.cnf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// CRL in DER at `/ca.crl`; OCSP at `/ocsp` (GET), signed by the CA key.
    Direct,
    /// CRL in PEM at `/ca.crl.pem`; OCSP at `/delegated?via=post` (a query
    /// forces POST), signed by a delegated OCSP responder.
    Delegated,
}

impl Profile {
    fn section(self) -> &'static str {
        match self {
            Self::Direct => "leaf_direct",
            Self::Delegated => "leaf_delegated",
        }
    }
}

/// The `openssl ca` configuration: database, serial and CRL number files, and
/// one extension section per profile, naming the front end at `port`.
fn openssl_cnf(dir: &Path, port: u16) -> String {
    let dir = dir.to_str().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    format!(
        r"# Written by vigil-runtime/tests/openssl_interop.rs
[ ca ]
default_ca = interop_ca

[ interop_ca ]
dir              = {dir}
database         = $dir/index.txt
serial           = $dir/serial
crlnumber        = $dir/crlnumber
new_certs_dir    = $dir/issued
certificate      = $dir/ca.pem
private_key      = $dir/ca.key
default_md       = sha256
default_days     = 30
default_crl_days = 7
policy           = policy_anything
copy_extensions  = none
unique_subject   = no
crl_extensions   = crl_ext

[ policy_anything ]
countryName            = optional
stateOrProvinceName    = optional
localityName           = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied
emailAddress           = optional

[ req ]
distinguished_name = req_dn

[ req_dn ]

[ root_ext ]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ leaf_direct ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints  = URI:{base}/ca.crl
authorityInfoAccess    = OCSP;URI:{base}/ocsp

[ leaf_delegated ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints  = URI:{base}/ca.crl.pem
authorityInfoAccess    = OCSP;URI:{base}/delegated?via=post

[ ocsp_responder ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = critical, OCSPSigning
noCheck                = ignored
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"
    )
}

/// A leaf issued by the OpenSSL CA.
struct Leaf {
    name: &'static str,
    der: CertificateDer<'static>,
}

/// The OpenSSL CA: its directory (keys, `index.txt`, CRLs) and its root.
struct OpensslCa {
    dir: tempfile::TempDir,
    root: CertificateDer<'static>,
}

impl OpensslCa {
    fn path(&self, name: &str) -> String {
        file(self.dir.path(), name)
    }

    /// Root key and self-signed certificate, and an empty `openssl ca` database.
    fn create(dir: tempfile::TempDir, port: u16) -> Self {
        let d = dir.path();
        std::fs::write(d.join("openssl.cnf"), openssl_cnf(d, port)).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "1000\n").unwrap();
        std::fs::write(d.join("crlnumber"), "01\n").unwrap();
        std::fs::create_dir(d.join("issued")).unwrap();
        let (cnf, key, pem) = (file(d, "openssl.cnf"), file(d, "ca.key"), file(d, "ca.pem"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &key,
        ]);
        openssl(&[
            "req",
            "-config",
            &cnf,
            "-new",
            "-x509",
            "-key",
            &key,
            "-sha256",
            "-days",
            "365",
            "-subj",
            "/O=Vigil interop/CN=Vigil OpenSSL interop root",
            "-extensions",
            "root_ext",
            "-out",
            &pem,
        ]);
        let root = Self::der_of(d, "ca");
        Self { dir, root }
    }

    /// `NAME.pem` as DER, through `openssl x509 -outform DER`.
    fn der_of(d: &Path, name: &str) -> CertificateDer<'static> {
        let der = file(d, &format!("{name}.der"));
        openssl(&[
            "x509",
            "-in",
            &file(d, &format!("{name}.pem")),
            "-outform",
            "DER",
            "-out",
            &der,
        ]);
        CertificateDer::from(std::fs::read(der).unwrap())
    }

    /// A P-256 key, a CSR, and `openssl ca -batch -extensions SECTION`.
    fn issue(&self, name: &str, section: &str) -> CertificateDer<'static> {
        let d = self.dir.path();
        let (key, csr) = (
            file(d, &format!("{name}.key")),
            file(d, &format!("{name}.csr")),
        );
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ]);
        openssl(&[
            "req",
            "-config",
            &self.path("openssl.cnf"),
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/O=Vigil interop/CN={name}"),
            "-out",
            &csr,
        ]);
        openssl(&[
            "ca",
            "-config",
            &self.path("openssl.cnf"),
            "-batch",
            "-notext",
            "-extensions",
            section,
            "-days",
            "30",
            "-in",
            &csr,
            "-out",
            &file(d, &format!("{name}.pem")),
        ]);
        Self::der_of(d, name)
    }

    /// `openssl ca -revoke NAME.pem -crl_reason REASON`.
    fn revoke(&self, name: &str, reason: &str) {
        openssl(&[
            "ca",
            "-config",
            &self.path("openssl.cnf"),
            "-revoke",
            &self.path(&format!("{name}.pem")),
            "-crl_reason",
            reason,
        ]);
    }

    /// `openssl ca -gencrl -crldays 7` to `ca.crl.pem`, and its DER form
    /// `ca.crl.der` (`openssl crl -outform DER`).
    fn gencrl(&self) {
        openssl(&[
            "ca",
            "-config",
            &self.path("openssl.cnf"),
            "-gencrl",
            "-crldays",
            "7",
            "-out",
            &self.path("ca.crl.pem"),
        ]);
        openssl(&[
            "crl",
            "-in",
            &self.path("ca.crl.pem"),
            "-outform",
            "DER",
            "-out",
            &self.path("ca.crl.der"),
        ]);
    }
}

/// Who signs OCSP responses.
#[derive(Clone, Copy)]
enum Signer {
    /// The CA itself (`-rsigner ca.pem -rkey ca.key`).
    Ca,
    /// The delegated responder (`-rsigner responder.pem -rkey responder.key`).
    Delegated,
}

/// The HTTP front end: serves the CA directory's CRLs and runs
/// `openssl ocsp` for each OCSP request; counts requests per route.
#[derive(Clone)]
struct FrontEnd {
    dir: Arc<PathBuf>,
    hits: Arc<Mutex<BTreeMap<&'static str, usize>>>,
    seq: Arc<AtomicU64>,
}

impl FrontEnd {
    fn hit(&self, route: &'static str) {
        *self.hits.lock().unwrap().entry(route).or_default() += 1;
    }

    fn hits(&self) -> BTreeMap<&'static str, usize> {
        self.hits.lock().unwrap().clone()
    }

    fn router(self) -> Router {
        Router::new()
            .route("/ca.crl", get(crl_der))
            .route("/ca.crl.pem", get(crl_pem))
            .route("/ocsp", axum::routing::post(ocsp_post_ca))
            .route("/ocsp/{*request}", get(ocsp_get_ca))
            .route("/delegated", axum::routing::post(ocsp_post_delegated))
            .route("/delegated/{*request}", get(ocsp_get_delegated))
            .with_state(self)
    }

    /// Answers one DER OCSP request with OpenSSL's responder:
    /// `openssl ocsp -index index.txt -rsigner … -rkey … -CA ca.pem
    /// -reqin REQ -respout RESP -ndays 1`.
    async fn answer(&self, signer: Signer, request: Bytes) -> Response {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = Arc::clone(&self.dir);
        let done = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let (req, resp) = (
                file(&dir, &format!("ocsp-{n}.req")),
                file(&dir, &format!("ocsp-{n}.resp")),
            );
            std::fs::write(&req, &request).map_err(|e| e.to_string())?;
            let (cert, key) = match signer {
                Signer::Ca => ("ca.pem", "ca.key"),
                Signer::Delegated => ("responder.pem", "responder.key"),
            };
            pki_fixtures::openssl::run([
                "ocsp",
                "-index",
                &file(&dir, "index.txt"),
                "-rsigner",
                &file(&dir, cert),
                "-rkey",
                &file(&dir, key),
                "-CA",
                &file(&dir, "ca.pem"),
                "-reqin",
                &req,
                "-respout",
                &resp,
                "-ndays",
                "1",
            ])
            .map_err(|e| e.to_string())?;
            std::fs::read(&resp).map_err(|e| e.to_string())
        })
        .await;
        match done {
            Ok(Ok(der)) => {
                ([(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response()
            }
            Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }

    /// The GET form (RFC 6960 A.1): base64 of the DER request after the
    /// responder path (the extractor has percent-decoded it).
    async fn answer_get(&self, signer: Signer, encoded: &str) -> Response {
        match base64::engine::general_purpose::STANDARD.decode(encoded.trim_start_matches('/')) {
            Ok(der) => self.answer(signer, Bytes::from(der)).await,
            Err(e) => (StatusCode::BAD_REQUEST, format!("bad base64: {e}")).into_response(),
        }
    }

    fn serve_file(&self, name: &str, content_type: &'static str) -> Response {
        match std::fs::read(self.dir.join(name)) {
            Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
            Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        }
    }
}

async fn crl_der(State(fe): State<FrontEnd>) -> Response {
    fe.hit("crl der");
    fe.serve_file("ca.crl.der", "application/pkix-crl")
}

async fn crl_pem(State(fe): State<FrontEnd>) -> Response {
    fe.hit("crl pem");
    fe.serve_file("ca.crl.pem", "application/x-pem-file")
}

async fn ocsp_get_ca(State(fe): State<FrontEnd>, UrlPath(request): UrlPath<String>) -> Response {
    fe.hit("ocsp get");
    fe.answer_get(Signer::Ca, &request).await
}

async fn ocsp_post_ca(State(fe): State<FrontEnd>, body: Bytes) -> Response {
    fe.hit("ocsp post");
    fe.answer(Signer::Ca, body).await
}

async fn ocsp_get_delegated(
    State(fe): State<FrontEnd>,
    UrlPath(request): UrlPath<String>,
) -> Response {
    fe.hit("delegated get");
    fe.answer_get(Signer::Delegated, &request).await
}

async fn ocsp_post_delegated(State(fe): State<FrontEnd>, body: Bytes) -> Response {
    fe.hit("delegated post");
    fe.answer(Signer::Delegated, body).await
}

/// The front end is bound first (its port goes into the certificates), then the
/// CA is built and the leaves issued, one good and one revoked
/// (keyCompromise) per profile, and the CRL generated.
async fn setup() -> (OpensslCa, FrontEnd, Vec<Leaf>) {
    // Fail, with a clear message, when there is no openssl to run.
    let version = pki_fixtures::openssl::version()
        .unwrap_or_else(|e| panic!("this test needs the OpenSSL command-line tool: {e}"));
    eprintln!("interop with {version}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ca = OpensslCa::create(tempfile::tempdir().unwrap(), port);
    ca.issue("responder", "ocsp_responder");
    let mut leaves = Vec::new();
    for (name, profile) in [
        ("good-direct", Profile::Direct),
        ("revoked-direct", Profile::Direct),
        ("good-delegated", Profile::Delegated),
        ("revoked-delegated", Profile::Delegated),
    ] {
        let der = ca.issue(name, profile.section());
        leaves.push(Leaf { name, der });
    }
    ca.revoke("revoked-direct", "keyCompromise");
    ca.revoke("revoked-delegated", "keyCompromise");
    ca.gencrl();

    let front = FrontEnd {
        dir: Arc::new(ca.dir.path().to_path_buf()),
        hits: Arc::default(),
        seq: Arc::default(),
    };
    let app = front.clone().router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (ca, front, leaves)
}

fn engine(ca: &OpensslCa, methods: Methods) -> Engine {
    let config = EngineConfig::default()
        .with_fetch(FetchConfig::default().with_use_env_proxy(false))
        .with_verifier(VerifierConfig::default().with_methods(methods));
    Engine::open(
        vec![ca.root.clone()],
        Arc::new(MemoryStore::new()),
        config,
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn client() -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(RevocationPolicy::Require)
}

/// The verdict is `ok` from `source`.
fn assert_good(verdict: &Verdict, source: Source, what: &str) {
    assert_eq!(verdict.reason, ReasonCode::Ok, "{what}: {}", verdict.detail);
    assert_eq!(verdict.verdict, Decision::Accepted, "{what}");
    assert_eq!(verdict.status, Status::Good, "{what}");
    assert_eq!(
        verdict.revocation.len(),
        1,
        "{what}: {:?}",
        verdict.revocation
    );
    assert_eq!(verdict.revocation[0].status, CertStatus::Good, "{what}");
    assert_eq!(verdict.revocation[0].source, source, "{what}");
}

/// The verdict is `revoked` for `reason`, from one of `sources`; returns
/// revoked_at.
fn assert_revoked(verdict: &Verdict, sources: &[Source], reason: &str, what: &str) -> i64 {
    assert_eq!(
        verdict.reason,
        ReasonCode::Revoked,
        "{what}: {}",
        verdict.detail
    );
    assert_eq!(verdict.verdict, Decision::Rejected, "{what}");
    assert_eq!(verdict.status, Status::Revoked, "{what}");
    let result = &verdict.revocation[0];
    assert_eq!(result.status, CertStatus::Revoked, "{what}: {result:?}");
    assert!(sources.contains(&result.source), "{what}: {result:?}");
    assert_eq!(result.reason.as_deref(), Some(reason), "{what}: {result:?}");
    result
        .revoked_at
        .unwrap_or_else(|| panic!("{what}: no revocation time"))
}

fn no_errors(sources: &[SourceState], what: &str) {
    for s in sources {
        assert_eq!(s.last_error, None, "{what}: {}", s.url);
    }
}

/// Both CRL sources (DER and PEM URL) hold the CRL numbered `number`. The
/// second URL to deliver the same CRL reports no entry count (the core found
/// it unchanged), so the count is checked where it is reported; see
/// `an_unchanged_crl_keeps_its_entry_count` for that.
fn crl_state(sources: &[SourceState], number: &str, entries: usize) {
    let crls: Vec<&SourceState> = sources.iter().filter(|s| s.kind == "crl").collect();
    assert_eq!(crls.len(), 2, "{sources:?}");
    for s in &crls {
        assert_eq!(
            s.crl_number
                .as_deref()
                .map(vigil_core::text::hex)
                .as_deref(),
            Some(number),
            "{s:?}"
        );
        assert!(s.entries.is_none_or(|n| n == entries), "{s:?}");
    }
    assert!(crls.iter().any(|s| s.entries == Some(entries)), "{crls:?}");
}

/// Requests per route made between `before` and `after`.
fn delta(
    before: &BTreeMap<&'static str, usize>,
    after: &BTreeMap<&'static str, usize>,
) -> BTreeMap<&'static str, usize> {
    after
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_and_revoked_are_told_apart_through_crl_and_ocsp_from_openssl() {
    let (ca, front, leaves) = setup().await;
    let mut revoked_at: BTreeMap<&str, i64> = BTreeMap::new();
    let mut engines = Vec::new();
    // (methods, the source of a good answer, the possible sources of a
    // revoked one). With CRLs first, a revocation may still be reported from
    // OCSP: both say so, "revoked" from any source wins, and the core asks
    // OCSP first for that.
    for (methods, source, revoked_by) in [
        (Methods::OcspThenCrl, Source::Ocsp, &[Source::Ocsp][..]),
        (
            Methods::CrlThenOcsp,
            Source::Crl,
            &[Source::Crl, Source::Ocsp][..],
        ),
        (Methods::CrlOnly, Source::Crl, &[Source::Crl][..]),
        (Methods::OcspOnly, Source::Ocsp, &[Source::Ocsp][..]),
    ] {
        let engine = engine(&ca, methods);
        let before = front.hits();
        for leaf in &leaves {
            let what = format!("{methods:?}, {}", leaf.name);
            let verdict = engine
                .verify(std::slice::from_ref(&leaf.der), &client())
                .await;
            if leaf.name.starts_with("good") {
                assert_good(&verdict, source, &what);
            } else {
                let at = assert_revoked(&verdict, revoked_by, "keyCompromise", &what);
                // The CRL's revocationDate and the OCSP revocationTime both come
                // from the same index.txt line.
                let first = revoked_at.entry(leaf.name).or_insert(at);
                assert_eq!(*first, at, "{what}");
            }
        }
        let hits = delta(&before, &front.hits());
        let sources = engine.sources();
        no_errors(&sources, &format!("{methods:?}"));
        if methods.uses_ocsp() {
            // Small requests go by GET, a responder URL with a query forces POST;
            // one request per certificate.
            assert_eq!(hits.get("ocsp get"), Some(&2), "{methods:?}: {hits:?}");
            assert_eq!(
                hits.get("delegated post"),
                Some(&2),
                "{methods:?}: {hits:?}"
            );
            assert_eq!(
                sources.iter().filter(|s| s.kind == "ocsp").count(),
                4,
                "{methods:?}: {sources:?}"
            );
        } else {
            // The CRL alone told them apart: OpenSSL's responder was never asked.
            assert!(
                !hits.keys().any(|k| k.contains("get") || k.contains("post")),
                "{methods:?}: {hits:?}"
            );
            assert!(sources.iter().all(|s| s.kind == "crl"), "{sources:?}");
        }
        if methods.uses_crl() {
            assert_eq!(hits.get("crl der"), Some(&1), "{methods:?}: {hits:?}");
            assert_eq!(hits.get("crl pem"), Some(&1), "{methods:?}: {hits:?}");
            crl_state(&sources, "01", 2);
        }
        // Under OcspOnly the CRLs play no part in the verdicts (source ocsp),
        // though the engine still downloads them: see
        // `ocsp_only_fetches_no_crl`.
        engines.push((methods, source, revoked_by, engine));
    }

    // A revocation made afterwards, with a new CRL (number 02): every engine
    // follows it after a refresh, and the other good certificate stays good.
    ca.revoke("good-direct", "superseded");
    ca.gencrl();
    for (methods, source, revoked_by, engine) in &engines {
        let refreshed = engine.refresh_all().await;
        assert!(
            refreshed.iter().all(|(_, r)| *r == Refreshed::Updated),
            "{methods:?}: {refreshed:?}"
        );
        for leaf in &leaves {
            let what = format!("{methods:?} after refresh, {}", leaf.name);
            let verdict = engine.verify_cached(std::slice::from_ref(&leaf.der), &client());
            match leaf.name {
                "good-direct" => {
                    assert_revoked(&verdict, revoked_by, "superseded", &what);
                }
                "good-delegated" => assert_good(&verdict, *source, &what),
                _ => {
                    let at = assert_revoked(&verdict, revoked_by, "keyCompromise", &what);
                    assert_eq!(revoked_at[leaf.name], at, "{what}");
                }
            }
        }
        if methods.uses_crl() {
            crl_state(&engine.sources(), "02", 3);
        }
    }
}

/// Under `Methods::OcspOnly` the CRLs a chain names are never consulted, so
/// they should not be downloaded either (they can be tens of megabytes, and
/// their server is one more dependency and timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn ocsp_only_fetches_no_crl() {
    let (ca, front, leaves) = setup().await;
    let engine = engine(&ca, Methods::OcspOnly);
    for leaf in &leaves {
        let verdict = engine
            .verify(std::slice::from_ref(&leaf.der), &client())
            .await;
        assert_eq!(verdict.revocation[0].source, Source::Ocsp, "{}", leaf.name);
    }
    let hits = front.hits();
    assert!(!hits.keys().any(|k| k.starts_with("crl")), "{hits:?}");
    let sources = engine.sources();
    assert!(sources.iter().all(|s| s.kind == "ocsp"), "{sources:?}");
}

/// A CRL source's entry count (shown by the sidecar and the CLI) describes
/// the CRL it holds: downloading the same CRL again (this front end sends no
/// ETag or Last-Modified, so every refresh is a full download), or the same
/// CRL from a second URL, must not erase it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn an_unchanged_crl_keeps_its_entry_count() {
    let (ca, _front, leaves) = setup().await;
    let engine = engine(&ca, Methods::CrlOnly);
    for leaf in &leaves {
        engine
            .verify(std::slice::from_ref(&leaf.der), &client())
            .await;
    }
    let refreshed = engine.refresh_all().await;
    assert!(
        refreshed.iter().all(|(_, r)| *r == Refreshed::Updated),
        "{refreshed:?}"
    );
    let sources = engine.sources();
    assert_eq!(sources.len(), 2, "{sources:?}");
    for s in &sources {
        assert_eq!(s.entries, Some(2), "{s:?}");
    }
}
