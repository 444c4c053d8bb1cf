//! Fetcher tests against real HTTP servers on 127.0.0.1: axum for
//! well-behaved routes, a raw TCP server for misbehaviour (oversized and
//! trickled bodies) so that the test sees what the client did to the
//! connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vigil_runtime::{FetchConfig, FetchError, FetchOutcome, Fetcher, OcspMethod, Validators};

/// A DER SEQUENCE of `len` content bytes (the fetcher checks the outer
/// structure only; the core parses the rest).
fn der(len: usize) -> Vec<u8> {
    let mut out = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
    out.extend((0..len).map(|i| (i * 31) as u8));
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn config() -> FetchConfig {
    FetchConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_total_timeout(Duration::from_secs(5))
        .with_backoff_base(Duration::from_millis(10))
        .with_backoff_max(Duration::from_millis(50))
        .with_use_env_proxy(false)
}

fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config).expect("fetcher")
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

fn body_of(outcome: FetchOutcome) -> Vec<u8> {
    match outcome {
        FetchOutcome::Body { bytes, .. } => bytes.to_vec(),
        other => panic!("expected a body, got {other:?}"),
    }
}

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn der_and_pem_crls_come_back_as_der() {
    let crl = der(300);
    let pem_text = format!("explanatory text\n{}", pem("X509 CRL", &crl));
    let two = format!("{}{}", pem("X509 CRL", &crl), pem("X509 CRL", &crl));
    let router = Router::new()
        .route(
            "/a.der",
            get({
                let crl = crl.clone();
                move || async move { crl }
            }),
        )
        .route("/a.pem", get(move || async move { pem_text }))
        .route("/two.pem", get(move || async move { two }))
        .route("/cert.pem", get(|| async { pem("CERTIFICATE", &der(10)) }))
        .route(
            "/html",
            get(|| async { "<html><body>Not here</body></html>" }),
        );
    let addr = serve(router).await;
    let f = fetcher(config());
    let none = Validators::default();

    let got = f.fetch_crl(&format!("http://{addr}/a.der"), &none).await;
    assert_eq!(body_of(got.expect("der")), crl);
    let got = f.fetch_crl(&format!("http://{addr}/a.pem"), &none).await;
    assert_eq!(body_of(got.expect("pem")), crl);

    for path in ["two.pem", "cert.pem", "html"] {
        match f.fetch_crl(&format!("http://{addr}/{path}"), &none).await {
            Err(e @ FetchError::Body { .. }) => assert!(!e.is_transient()),
            other => panic!("{path}: expected a body error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn conditional_get_returns_not_modified() {
    async fn crl(headers: HeaderMap) -> Response {
        let etag_matches = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == "\"v1\"");
        let date_matches = headers
            .get(header::IF_MODIFIED_SINCE)
            .is_some_and(|v| v == "Tue, 14 Nov 2023 22:13:20 GMT");
        let validators = [
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Tue, 14 Nov 2023 22:13:20 GMT"),
        ];
        if etag_matches || date_matches {
            (StatusCode::NOT_MODIFIED, validators).into_response()
        } else {
            (validators, der(20)).into_response()
        }
    }
    let addr = serve(Router::new().route("/c.crl", get(crl))).await;
    let f = fetcher(config());
    let url = format!("http://{addr}/c.crl");

    let first = f
        .fetch_crl(&url, &Validators::default())
        .await
        .expect("first");
    let FetchOutcome::Body {
        etag,
        last_modified,
        ..
    } = first
    else {
        panic!("expected a body, got {first:?}");
    };
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        last_modified.as_deref(),
        Some("Tue, 14 Nov 2023 22:13:20 GMT")
    );

    let by_etag = Validators {
        etag,
        last_modified: None,
    };
    match f.fetch_crl(&url, &by_etag).await.expect("by etag") {
        FetchOutcome::NotModified { etag, .. } => assert_eq!(etag.as_deref(), Some("\"v1\"")),
        other => panic!("expected 304, got {other:?}"),
    }
    let by_date = Validators {
        etag: None,
        last_modified,
    };
    assert!(matches!(
        f.fetch_crl(&url, &by_date).await.expect("by date"),
        FetchOutcome::NotModified { .. }
    ));
    let stale = Validators {
        etag: Some("\"v0\"".into()),
        last_modified: None,
    };
    assert_eq!(
        body_of(f.fetch_crl(&url, &stale).await.expect("changed")),
        der(20)
    );
}

/// A raw HTTP/1.1 server for one connection at a time: answers every
/// request with `head`, then writes `chunk`-sized pieces of body every
/// `pace` until `total` bytes are out or the client goes away. Reports
/// the bytes written and whether the client went away.
struct RawServer {
    addr: SocketAddr,
    written: Arc<AtomicUsize>,
    dropped: Arc<tokio::sync::Notify>,
}

async fn raw_server(head: String, total: usize, chunk: usize, pace: Duration) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(tokio::sync::Notify::new());
    let (w, d) = (written.clone(), dropped.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if socket.write_all(head.as_bytes()).await.is_err() {
                d.notify_one();
                continue;
            }
            let piece = vec![0x41u8; chunk];
            let mut sent = 0;
            while sent < total {
                let n = chunk.min(total - sent);
                if socket.write_all(&piece[..n]).await.is_err() {
                    d.notify_one();
                    break;
                }
                sent += n;
                w.fetch_add(n, Ordering::SeqCst);
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
        }
    });
    RawServer {
        addr,
        written,
        dropped,
    }
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn oversized_body_with_content_length_is_refused_before_reading() {
    let total = 512 * MIB;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {total}\r\n\r\n"
    );
    let server = raw_server(head, total, 64 * 1024, Duration::ZERO).await;
    let f = fetcher(config().with_max_crl_bytes(MIB as u64));
    let started = Instant::now();
    let got = f
        .fetch_crl(
            &format!("http://{}/big.crl", server.addr),
            &Validators::default(),
        )
        .await;
    match got {
        Err(e @ FetchError::TooLarge { .. }) => {
            let FetchError::TooLarge {
                limit, received, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!((*limit, *received), (MIB as u64, total as u64));
            assert!(!e.is_transient(), "oversize is not retried");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The server sees the connection close long before its body is out.
    tokio::time::timeout(Duration::from_secs(5), server.dropped.notified())
        .await
        .expect("server saw the client go away");
    assert!(started.elapsed() < Duration::from_secs(5));
    let written = server.written.load(Ordering::SeqCst);
    eprintln!("server wrote {written} bytes before the client hung up");
    assert!(written < 64 * MIB);
}

#[tokio::test]
async fn oversized_body_without_content_length_stops_at_the_limit() {
    let total = 512 * MIB;
    let chunk = 16 * 1024;
    // No Content-Length: the body runs until the connection closes.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nConnection: close\r\n\r\n"
        .to_owned();
    let server = raw_server(head, total, chunk, Duration::ZERO).await;
    let limit = 2 * MIB as u64;
    let f = fetcher(config().with_max_crl_bytes(limit));
    let got = f
        .fetch_crl(
            &format!("http://{}/big.crl", server.addr),
            &Validators::default(),
        )
        .await;
    match got {
        Err(FetchError::TooLarge {
            limit: l, received, ..
        }) => {
            assert_eq!(l, limit);
            assert!(received > limit);
            // Read at most one network chunk past the limit.
            assert!(received <= limit + 64 * 1024, "read {received} bytes");
            eprintln!("limit {limit}: client gave up at {received} bytes");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(5), server.dropped.notified())
        .await
        .expect("server saw the client go away");
    let written = server.written.load(Ordering::SeqCst);
    eprintln!("server wrote {written} bytes before the client hung up");
    assert!(written < 64 * MIB);
}

#[tokio::test]
async fn slow_server_times_out_within_the_bound() {
    let router = Router::new().route(
        "/slow.crl",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            der(10)
        }),
    );
    let addr = serve(router).await;
    let f = fetcher(
        config()
            .with_total_timeout(Duration::from_millis(300))
            .with_retries(0),
    );
    let started = Instant::now();
    let got = f
        .fetch_crl(&format!("http://{addr}/slow.crl"), &Validators::default())
        .await;
    assert!(
        matches!(got, Err(FetchError::Timeout { after, .. }) if after == Duration::from_millis(300))
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Headers at once, then a trickle: the total timeout covers the body.
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: 1000\r\n\r\n"
            .to_owned();
    let server = raw_server(head, 1000, 1, Duration::from_millis(50)).await;
    let started = Instant::now();
    let got = f
        .fetch_crl(
            &format!("http://{}/trickle.crl", server.addr),
            &Validators::default(),
        )
        .await;
    assert!(matches!(got, Err(FetchError::Timeout { .. })), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    async fn flaky(State(hits): State<Hits>) -> Response {
        if hits.bump() == 1 {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            der(10).into_response()
        }
    }
    async fn missing(State(hits): State<Hits>) -> StatusCode {
        hits.bump();
        StatusCode::NOT_FOUND
    }
    async fn down(State(hits): State<Hits>) -> StatusCode {
        hits.bump();
        StatusCode::SERVICE_UNAVAILABLE
    }
    let (flaky_hits, missing_hits, down_hits) = (Hits::default(), Hits::default(), Hits::default());
    let router = Router::new()
        .route("/flaky.crl", get(flaky).with_state(flaky_hits.clone()))
        .route(
            "/missing.crl",
            get(missing).with_state(missing_hits.clone()),
        )
        .route("/down.crl", get(down).with_state(down_hits.clone()));
    let addr = serve(router).await;
    let f = fetcher(config());
    let none = Validators::default();

    let got = f
        .fetch_crl(&format!("http://{addr}/flaky.crl"), &none)
        .await;
    assert_eq!(body_of(got.expect("second try succeeds")), der(10));
    assert_eq!(flaky_hits.get(), 2);

    let got = f
        .fetch_crl(&format!("http://{addr}/missing.crl"), &none)
        .await;
    assert!(matches!(got, Err(FetchError::Status { status: 404, .. })));
    assert_eq!(missing_hits.get(), 1, "404 is not retried");

    let got = f.fetch_crl(&format!("http://{addr}/down.crl"), &none).await;
    assert!(matches!(got, Err(FetchError::Status { status: 503, .. })));
    assert_eq!(down_hits.get(), 3, "first try and two retries");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let f = fetcher(config());
    let got = f
        .fetch_crl(&format!("http://{addr}/x.crl"), &Validators::default())
        .await;
    match got {
        Err(e @ FetchError::Connect { .. }) => assert!(e.is_transient()),
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_bounded_and_checked() {
    async fn hop(uri: Uri, State(hits): State<Hits>) -> Response {
        hits.bump();
        let n: u32 = uri
            .path()
            .trim_start_matches("/r/")
            .parse()
            .unwrap_or_default();
        if n == 0 {
            return der(10).into_response();
        }
        // Relative and absolute-path Locations, both resolved against the
        // current URL.
        let location = if n.is_multiple_of(2) {
            format!("/r/{}", n - 1)
        } else {
            format!("{}", n - 1)
        };
        let status = [301, 302, 307, 308][n as usize % 4];
        (
            StatusCode::from_u16(status).expect("status"),
            [(header::LOCATION, location)],
        )
            .into_response()
    }
    let hits = Hits::default();
    let router = Router::new()
        .route("/r/{n}", get(hop).with_state(hits.clone()))
        .route(
            "/ftp",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "ftp://127.0.0.1/x.crl")],
                )
            }),
        )
        .route(
            "/creds",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://user:pw@127.0.0.1:9/x.crl")],
                )
            }),
        )
        .route("/nowhere", get(|| async { StatusCode::FOUND }));
    let addr = serve(router).await;
    let f = fetcher(config());
    let none = Validators::default();

    let got = f.fetch_crl(&format!("http://{addr}/r/3"), &none).await;
    assert_eq!(body_of(got.expect("3 redirects are fine")), der(10));
    assert_eq!(hits.get(), 4);

    let got = f.fetch_crl(&format!("http://{addr}/r/4"), &none).await;
    match got {
        Err(e @ FetchError::TooManyRedirects { limit: 3, .. }) => assert!(!e.is_transient()),
        other => panic!("expected TooManyRedirects, got {other:?}"),
    }
    assert_eq!(hits.get(), 8, "stopped at the 4th redirect");

    let got = f.fetch_crl(&format!("http://{addr}/ftp"), &none).await;
    assert!(
        matches!(got, Err(FetchError::BadScheme { ref scheme, .. }) if scheme == "ftp"),
        "{got:?}"
    );
    let got = f.fetch_crl(&format!("http://{addr}/creds"), &none).await;
    assert!(
        matches!(got, Err(FetchError::Credentials { ref url }) if !url.contains("pw")),
        "{got:?}"
    );
    let got = f.fetch_crl(&format!("http://{addr}/nowhere"), &none).await;
    assert!(
        matches!(got, Err(FetchError::BadRedirect { .. })),
        "{got:?}"
    );
}

#[tokio::test]
async fn refused_urls_send_nothing() {
    let hits = Hits::default();
    let router = Router::new().route(
        "/x.crl",
        any({
            let hits = hits.clone();
            move || async move {
                hits.bump();
                der(10)
            }
        }),
    );
    let addr = serve(router).await;
    let f = fetcher(config());
    let none = Validators::default();
    let got = f
        .fetch_crl(&format!("http://user:secret@{addr}/x.crl"), &none)
        .await;
    assert!(
        matches!(got, Err(FetchError::Credentials { .. })),
        "{got:?}"
    );
    let got = f.fetch_crl(&format!("ftp://{addr}/x.crl"), &none).await;
    assert!(matches!(got, Err(FetchError::BadScheme { .. })), "{got:?}");
    let got = f.fetch_ocsp("file:///etc/passwd", &[0x30, 0x00]).await;
    assert!(matches!(got, Err(FetchError::BadScheme { .. })), "{got:?}");
    assert_eq!(hits.get(), 0);
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_share_one_request() {
    async fn slow(State(hits): State<Hits>) -> Vec<u8> {
        hits.bump();
        tokio::time::sleep(Duration::from_millis(300)).await;
        der(1000)
    }
    let hits = Hits::default();
    let router = Router::new().route("/shared.crl", get(slow).with_state(hits.clone()));
    let addr = serve(router).await;
    let f = fetcher(config());
    let url = format!("http://{addr}/shared.crl");

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (f, url) = (f.clone(), url.clone());
            tokio::spawn(async move { f.fetch_crl(&url, &Validators::default()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(body_of(t.await.expect("task").expect("fetch")), der(1000));
    }
    assert_eq!(hits.get(), 1, "16 concurrent fetches, one request");

    // Once done, the next fetch goes to the server again.
    f.fetch_crl(&url, &Validators::default())
        .await
        .expect("fetch");
    assert_eq!(hits.get(), 2);
}

/// (method, content type, decoded request) of each OCSP request.
type Request = (Method, Option<String>, Vec<u8>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

#[tokio::test]
async fn ocsp_uses_get_for_small_requests_and_post_for_large_ones() {
    async fn responder(
        State(seen): State<Seen>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> Response {
        let request = if method == Method::GET {
            let encoded = uri.path().trim_start_matches("/ocsp/");
            let b64 = encoded
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=");
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default()
        } else {
            body.to_vec()
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.0
            .lock()
            .expect("lock")
            .push((method, content_type, request));
        (
            [(header::CONTENT_TYPE, "application/ocsp-response")],
            der(40),
        )
            .into_response()
    }
    let seen = Seen::default();
    let router = Router::new()
        .route("/ocsp", any(responder))
        .route("/ocsp/{*req}", any(responder))
        .route(
            "/html/{*req}",
            any(|| async { ([(header::CONTENT_TYPE, "text/html")], der(40)) }),
        )
        .with_state(seen.clone());
    let addr = serve(router).await;
    let f = fetcher(config());
    let url = format!("http://{addr}/ocsp");

    // 0xfb 0xff encode to "+/8=": every character that needs escaping.
    let mut small = der(60);
    small.extend_from_slice(&[0xfb, 0xff]);
    small[3] += 2;
    let got = f.fetch_ocsp(&url, &small).await.expect("small");
    assert_eq!(got.method, OcspMethod::Get);
    assert_eq!(got.body.to_vec(), der(40));

    let large = der(400);
    let got = f.fetch_ocsp(&url, &large).await.expect("large");
    assert_eq!(got.method, OcspMethod::Post);

    let seen = seen.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, Method::GET);
    assert_eq!(seen[0].2, small);
    assert_eq!(seen[1].0, Method::POST);
    assert_eq!(seen[1].1.as_deref(), Some("application/ocsp-request"));
    assert_eq!(seen[1].2, large);

    let got = f.fetch_ocsp(&format!("http://{addr}/html"), &small).await;
    assert!(matches!(got, Err(FetchError::Body { .. })), "{got:?}");
}

#[tokio::test]
async fn oversized_ocsp_response_is_refused() {
    let router = Router::new().route(
        "/ocsp/{*req}",
        any(|| async {
            (
                [(header::CONTENT_TYPE, "application/ocsp-response")],
                der(40_000),
            )
        }),
    );
    let addr = serve(router).await;
    let f = fetcher(config().with_max_ocsp_bytes(16 * 1024));
    let got = f.fetch_ocsp(&format!("http://{addr}/ocsp"), &der(20)).await;
    assert!(
        matches!(got, Err(FetchError::TooLarge { limit: 16384, .. })),
        "{got:?}"
    );
}
