//! The fetch guard against real listeners on loopback addresses: where a
//! fetch may connect (IP literals, names through the resolver, redirect
//! targets) and how many fetches run at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use vigil_core::revocation::Sources;
use vigil_runtime::{
    cap_sources, Cidr, FetchConfig, FetchError, Fetcher, Validators, MAX_CRL_URLS_PER_CERT,
    MAX_OCSP_URLS_PER_CERT,
};

fn der() -> Vec<u8> {
    let mut out = vec![0x30, 0x03];
    out.extend([1, 2, 3]);
    out
}

fn config() -> FetchConfig {
    FetchConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_total_timeout(Duration::from_secs(5))
        .with_retries(0)
}

fn cidr(text: &str) -> Cidr {
    text.parse().expect("cidr")
}

#[derive(Clone, Default)]
struct Counter {
    hits: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Counter {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A server on `ip` answering every path with a small DER body after
/// `delay`, counting requests and the most in flight at once.
async fn counting_server(ip: &str, delay: Duration) -> (SocketAddr, Counter) {
    let counter = Counter::default();
    (
        counting_server_with(ip, delay, counter.clone()).await,
        counter,
    )
}

async fn counting_server_with(ip: &str, delay: Duration, counter: Counter) -> SocketAddr {
    let router = Router::new()
        .route(
            "/{*path}",
            get(move |State(c): State<Counter>| async move {
                c.hits.fetch_add(1, Ordering::SeqCst);
                let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                c.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                c.in_flight.fetch_sub(1, Ordering::SeqCst);
                der()
            }),
        )
        .with_state(counter);
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

/// A server on 127.0.0.1 redirecting every request to `target`.
async fn redirector(target: String) -> (SocketAddr, Counter) {
    let counter = Counter::default();
    let router = Router::new()
        .route(
            "/{*path}",
            get(move |State(c): State<Counter>| async move {
                c.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
            }),
        )
        .with_state(counter.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (addr, counter)
}

fn assert_denied(result: Result<impl std::fmt::Debug, FetchError>, addr: &str) {
    match result {
        Err(e @ FetchError::AddressDenied { .. }) => {
            assert_eq!(e.code(), "address_denied");
            assert!(!e.is_transient());
            let FetchError::AddressDenied { addr: got, .. } = &e else {
                unreachable!()
            };
            assert_eq!(got.to_string(), addr, "{e}");
        }
        other => panic!("expected address_denied for {addr}, got {other:?}"),
    }
}

#[tokio::test]
async fn metadata_and_other_default_denied_literals_are_refused_without_connecting() {
    let f = Fetcher::new(
        config()
            // A connection attempt to an unroutable address would take this long.
            .with_connect_timeout(Duration::from_secs(3)),
    )
    .expect("fetcher");
    let none = Validators::default();
    for (url, addr) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("http://[::ffff:169.254.169.254]/x.crl", "169.254.169.254"),
        ("http://[::ffff:a9fe:a9fe]/x.crl", "169.254.169.254"),
        // The URL parser's other spellings of the same address.
        ("http://2852039166/x.crl", "169.254.169.254"),
        ("http://0xa9.0xfe.0xa9.0xfe/x.crl", "169.254.169.254"),
        ("http://[fe80::1]/x.crl", "fe80::1"),
        ("http://0.0.0.0/x.crl", "0.0.0.0"),
        ("http://[::]/x.crl", "::"),
        ("http://224.0.0.1/x.crl", "224.0.0.1"),
        ("http://255.255.255.255/x.crl", "255.255.255.255"),
    ] {
        let started = Instant::now();
        let got = f.fetch_crl(url, &none).await;
        let took = started.elapsed();
        let shown = match &got {
            Err(FetchError::AddressDenied { addr, .. }) => addr.to_canonical().to_string(),
            _ => String::new(),
        };
        assert_eq!(shown, addr, "{url}: {got:?}");
        assert!(took < Duration::from_millis(500), "{url} took {took:?}");
        let ocsp = f.fetch_ocsp(url, &der()).await;
        assert!(
            matches!(ocsp, Err(FetchError::AddressDenied { .. })),
            "{url}: {ocsp:?}"
        );
    }
}

#[tokio::test]
async fn a_denied_loopback_literal_gets_no_request_and_an_undenied_one_does() {
    let (addr, counter) = counting_server("127.0.0.2", Duration::ZERO).await;
    let url = format!("http://{addr}/a.crl");
    let none = Validators::default();

    let denied = Fetcher::new(config().with_deny(vec![cidr("127.0.0.2/32")])).expect("fetcher");
    assert_denied(denied.fetch_crl(&url, &none).await, "127.0.0.2");
    let mapped = format!("http://[::ffff:127.0.0.2]:{}/a.crl", addr.port());
    assert_denied(denied.fetch_crl(&mapped, &none).await, "::ffff:127.0.0.2");
    assert_eq!(counter.hits(), 0);

    // The control: loopback is allowed by default.
    let open = Fetcher::new(config()).expect("fetcher");
    open.fetch_crl(&url, &none).await.expect("fetched");
    assert_eq!(counter.hits(), 1);
}

#[tokio::test]
async fn a_name_resolving_only_to_denied_addresses_is_refused_by_the_resolver() {
    let (addr, counter) = counting_server("127.0.0.1", Duration::ZERO).await;
    let url = format!("http://localhost:{}/a.crl", addr.port());
    let none = Validators::default();

    let denied =
        Fetcher::new(config().with_deny(vec![cidr("127.0.0.0/8"), cidr("::1")])).expect("fetcher");
    match denied.fetch_crl(&url, &none).await {
        Err(FetchError::AddressDenied { host, addr, .. }) => {
            assert_eq!(host, "localhost");
            assert!(addr.is_loopback(), "{addr}");
        }
        other => panic!("expected address_denied, got {other:?}"),
    }
    assert_eq!(counter.hits(), 0);

    // The control: the same name without the deny reaches the server.
    let open = Fetcher::new(config()).expect("fetcher");
    open.fetch_crl(&url, &none).await.expect("fetched");
    assert_eq!(counter.hits(), 1);
}

#[tokio::test]
async fn redirects_to_denied_destinations_are_refused() {
    let (inner, inner_counter) = counting_server("127.0.0.2", Duration::ZERO).await;
    let none = Validators::default();
    let f = Fetcher::new(config().with_deny(vec![cidr("127.0.0.2/32")])).expect("fetcher");

    // To the metadata endpoint (a literal, never resolved).
    let (meta, meta_counter) = redirector("http://169.254.169.254/latest/".into()).await;
    let started = Instant::now();
    assert_denied(
        f.fetch_crl(&format!("http://{meta}/a.crl"), &none).await,
        "169.254.169.254",
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(meta_counter.hits(), 1);

    // To a denied loopback address.
    let (to_inner, to_inner_counter) = redirector(format!("http://{inner}/a.crl")).await;
    assert_denied(
        f.fetch_crl(&format!("http://{to_inner}/a.crl"), &none)
            .await,
        "127.0.0.2",
    );
    assert_eq!(to_inner_counter.hits(), 1);
    assert_eq!(inner_counter.hits(), 0);

    // The control: without the deny, the redirect is followed.
    let open = Fetcher::new(config()).expect("fetcher");
    open.fetch_crl(&format!("http://{to_inner}/a.crl"), &none)
        .await
        .expect("followed");
    assert_eq!(inner_counter.hits(), 1);
}

#[tokio::test]
async fn fetches_to_one_host_are_bounded_and_others_are_not_starved() {
    let (busy, busy_counter) = counting_server("127.0.0.1", Duration::from_millis(300)).await;
    let (other, other_counter) = counting_server("127.0.0.3", Duration::ZERO).await;
    let f = Fetcher::new(config().with_max_per_host(3).with_max_concurrent(8)).expect("fetcher");
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..12 {
        let f = f.clone();
        // Distinct URLs: single-flight does not merge them.
        let url = format!("http://{busy}/{i}.crl");
        jobs.spawn(async move { f.fetch_crl(&url, &Validators::default()).await });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Another host is served at once, while the busy one queues.
    let started = Instant::now();
    f.fetch_crl(&format!("http://{other}/x.crl"), &Validators::default())
        .await
        .expect("other host");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    while let Some(done) = jobs.join_next().await {
        done.expect("task").expect("fetched");
    }
    assert_eq!(busy_counter.hits(), 12);
    assert_eq!(busy_counter.peak(), 3, "per-host bound");
    assert_eq!(other_counter.hits(), 1);
}

#[tokio::test]
async fn fetches_in_flight_are_bounded_across_hosts() {
    let delay = Duration::from_millis(200);
    // One counter for both hosts: the peak is of all fetches together.
    let both = Counter::default();
    let a = counting_server_with("127.0.0.1", delay, both.clone()).await;
    let b = counting_server_with("127.0.0.4", delay, both.clone()).await;
    let f = Fetcher::new(config().with_max_per_host(4).with_max_concurrent(3)).expect("fetcher");
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..6 {
        for host in [a, b] {
            let f = f.clone();
            let url = format!("http://{host}/{i}.crl");
            jobs.spawn(async move { f.fetch_crl(&url, &Validators::default()).await });
        }
    }
    while let Some(done) = jobs.join_next().await {
        done.expect("task").expect("fetched");
    }
    assert_eq!(both.hits(), 12);
    assert_eq!(both.peak(), 3, "global bound");
}

#[test]
fn a_certificate_naming_many_urls_costs_a_few_fetches() {
    let many = |n: usize, kind: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!("http://127.0.0.1:9/{kind}{i}"))
            .collect()
    };
    let mut crl_urls = many(300, "crl");
    crl_urls.insert(1, crl_urls[0].clone());
    let (capped, ignored) = cap_sources(Sources {
        crl_urls,
        ocsp_urls: many(7, "ocsp"),
    });
    assert_eq!(capped.crl_urls, many(MAX_CRL_URLS_PER_CERT, "crl"));
    assert_eq!(capped.ocsp_urls, many(MAX_OCSP_URLS_PER_CERT, "ocsp"));
    assert_eq!(ignored, 300 - 4 + 7 - 4);
    let (small, ignored) = cap_sources(Sources {
        crl_urls: many(2, "crl"),
        ocsp_urls: many(1, "ocsp"),
    });
    assert_eq!(ignored, 0);
    assert_eq!(small.crl_urls.len() + small.ocsp_urls.len(), 3);
}

/// 0.0.0.0 reaches this host's listeners on Linux (connect(2) treats the
/// unspecified address as the local host): it is denied by default, and
/// `allow` lifts that default.
#[tokio::test]
async fn allow_lifts_a_default_denial() {
    let (addr, counter) = counting_server("127.0.0.1", Duration::ZERO).await;
    let url = format!("http://0.0.0.0:{}/a.crl", addr.port());
    let none = Validators::default();
    let guarded = Fetcher::new(config()).expect("fetcher");
    assert_denied(guarded.fetch_crl(&url, &none).await, "0.0.0.0");
    assert_eq!(counter.hits(), 0);

    let allowed = Fetcher::new(config().with_allow(vec![cidr("0.0.0.0/32")])).expect("fetcher");
    allowed.fetch_crl(&url, &none).await.expect("fetched");
    assert_eq!(counter.hits(), 1);

    // An explicit deny is not lifted by allow.
    let both = Fetcher::new(
        config()
            .with_deny(vec![cidr("0.0.0.0/8")])
            .with_allow(vec![cidr("0.0.0.0/32")]),
    )
    .expect("fetcher");
    assert_denied(both.fetch_crl(&url, &none).await, "0.0.0.0");
    assert_eq!(counter.hits(), 1);
}

/// A certificate made by `openssl` naming 10 CRL distribution points and 6
/// OCSP responders: the fetcher keeps the first 4 of each and counts the
/// rest.
#[test]
fn capped_sources_of_a_real_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cdp: Vec<String> = (1..=10)
        .map(|i| format!("URI:http://127.0.0.1:9/{i}.crl"))
        .collect();
    let aia: Vec<String> = (1..=6)
        .map(|i| format!("OCSP;URI:http://127.0.0.1:9/ocsp{i}"))
        .collect();
    let cert = dir.path().join("c.der");
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=many",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(dir.path().join("k.pem"))
        .args(["-outform", "DER", "-out"])
        .arg(&cert)
        .arg("-addext")
        .arg(format!("crlDistributionPoints={}", cdp.join(",")))
        .arg("-addext")
        .arg(format!("authorityInfoAccess={}", aia.join(",")))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let der = std::fs::read(&cert).expect("certificate");
    let f = Fetcher::new(config()).expect("fetcher");
    let sources = f.capped_sources(&der).expect("sources");
    assert_eq!(
        sources.crl_urls,
        (1..=4)
            .map(|i| format!("http://127.0.0.1:9/{i}.crl"))
            .collect::<Vec<_>>()
    );
    assert_eq!(sources.ocsp_urls.len(), MAX_OCSP_URLS_PER_CERT);
    assert_eq!(f.urls_ignored(), 6 + 2);
}
