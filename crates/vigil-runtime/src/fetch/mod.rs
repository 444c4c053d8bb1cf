//! Fetching CRLs and OCSP responses over HTTP (issue 3, item 1).
//!
//! The rules, whatever the caller asks: `http` and `https` only (redirect
//! targets too); no credentials ever sent (URLs with a user name or password
//! are refused, and the client keeps no cookies); at most
//! [`FetchConfig::max_redirects`] redirects; a connect timeout and a total
//! timeout per attempt (redirects and body included); a body limit enforced
//! while the body streams in; retries with exponential backoff and full
//! jitter on timeouts, connection failures and 5xx only. Concurrent fetches
//! of the same thing share one request (single-flight).
//!
//! Where a fetch may connect is checked on the resolved address, at connect
//! time, also for redirect targets (see `guard`): by default link-local
//! (169.254.0.0/16, fe80::/10), unspecified, multicast and broadcast
//! addresses are refused; [`FetchConfig::deny`] adds ranges and
//! [`FetchConfig::allow`] lifts default denials. Environment proxies are
//! not used (a proxy would connect on our behalf, past the check).
//!
//! Bounds: at most [`FetchConfig::max_concurrent`] fetches at once and
//! [`FetchConfig::max_per_host`] to one host (others queue);
//! [`Fetcher::capped_sources`] keeps at most [`MAX_CRL_URLS_PER_CERT`] CRL
//! and [`MAX_OCSP_URLS_PER_CERT`] OCSP URLs of one certificate.
//!
//! Nothing fetched is trusted here: the core verifies it. That is also why
//! a redirect from https to http is followed: CRLs and OCSP responses are
//! signed, and TLS (rustls with ring and the webpki-roots set) only
//! protects the transfer.

mod body;
mod config;
mod error;
mod flight;
mod guard;
mod url;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::Rng as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tracing::Instrument as _;

pub use config::FetchConfig;
pub use error::FetchError;
use flight::Flights;
use guard::{check_literal, AddressPolicy, GuardedResolver};
pub use guard::{Cidr, CidrError, DEFAULT_DENIED};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::{checked_url, redirect_target};
use vigil_core::revocation::{revocation_sources, Sources};

/// HTTP validators of a cached body, for a conditional GET (RFC 9110
/// §13.1.2 If-None-Match, §13.1.3 If-Modified-Since).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Validators {
    /// The ETag the server sent with the cached body.
    pub etag: Option<String>,
    /// The Last-Modified the server sent with the cached body.
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to validate with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The result of a CRL fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// 304: the cached body is still current. Nothing to re-parse.
    NotModified {
        /// The validators to keep (the server's, else the ones sent).
        etag: Option<String>,
        /// See `etag`.
        last_modified: Option<String>,
        /// Time taken, retries included.
        elapsed: Duration,
    },
    /// A new body.
    Body {
        /// The CRL, DER (PEM input is converted).
        bytes: Bytes,
        /// The ETag sent with it.
        etag: Option<String>,
        /// The Last-Modified sent with it.
        last_modified: Option<String>,
        /// Time taken, retries included.
        elapsed: Duration,
    },
}

/// How an OCSP request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspMethod {
    /// GET with the request in the URL (cacheable; RFC 5019 §5).
    Get,
    /// POST with `application/ocsp-request`.
    Post,
}

/// The result of an OCSP fetch: the raw response, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspOutcome {
    /// The DER OCSPResponse.
    pub body: Bytes,
    /// How it was asked for.
    pub method: OcspMethod,
    /// Time taken, retries included.
    pub elapsed: Duration,
}

/// Fetches CRLs and OCSP responses. Cheap to clone; clones share the
/// connection pool and the single-flight table. Needs a tokio runtime.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

/// At most this many CRL distribution point URLs of one certificate are
/// fetched; the rest are ignored (and counted).
pub const MAX_CRL_URLS_PER_CERT: usize = 4;
/// At most this many OCSP responder URLs of one certificate are asked; the
/// rest are ignored (and counted).
pub const MAX_OCSP_URLS_PER_CERT: usize = 4;

struct Inner {
    client: reqwest::Client,
    config: FetchConfig,
    policy: Arc<AddressPolicy>,
    slots: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    urls_ignored: AtomicU64,
    crl_flights: Flights<(String, Validators), Result<FetchOutcome, FetchError>>,
    ocsp_flights: Flights<(String, Vec<u8>), Result<OcspOutcome, FetchError>>,
}

impl Fetcher {
    /// A fetcher with these limits.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let policy = Arc::new(AddressPolicy {
            deny: config.deny.clone(),
            allow: config.allow.clone(),
        });
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .connect_timeout(config.connect_timeout)
            // Redirects are followed by hand, to check every target.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(config.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(30));
        if !config.use_env_proxy {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| FetchError::Setup {
            detail: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                slots: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
                hosts: Mutex::new(HashMap::new()),
                urls_ignored: AtomicU64::new(0),
                policy,
                config,
                crl_flights: Flights::new(),
                ocsp_flights: Flights::new(),
            }),
        })
    }

    /// The limits, timeouts and destination rules this fetcher was built
    /// with.
    pub fn config(&self) -> &FetchConfig {
        &self.inner.config
    }

    /// The revocation sources of `cert_der` (DER), as
    /// [`revocation_sources`] reads them, deduplicated and capped at
    /// [`MAX_CRL_URLS_PER_CERT`] CRL and [`MAX_OCSP_URLS_PER_CERT`] OCSP
    /// URLs (the first ones, in certificate order). What is left out is
    /// logged and counted ([`Fetcher::urls_ignored`]): a certificate naming
    /// hundreds of URLs costs a few fetches, not hundreds.
    pub fn capped_sources(
        &self,
        cert_der: &[u8],
    ) -> Result<Sources, vigil_core::input::InputError> {
        Ok(self.cap(revocation_sources(cert_der)?))
    }

    /// `sources` deduplicated and capped as [`Fetcher::capped_sources`]
    /// does, for sources read already (a validated path carries them:
    /// [`vigil_core::AdmittedPath::revocation_plan`]).
    pub fn cap(&self, sources: Sources) -> Sources {
        let (sources, ignored) = cap_sources(sources);
        if ignored > 0 {
            self.inner
                .urls_ignored
                .fetch_add(ignored as u64, Ordering::Relaxed);
            tracing::warn!(
                ignored,
                crl_cap = MAX_CRL_URLS_PER_CERT,
                ocsp_cap = MAX_OCSP_URLS_PER_CERT,
                "certificate names more revocation URLs than are fetched; the rest are ignored"
            );
        }
        sources
    }

    /// How many URLs [`Fetcher::capped_sources`] has left out so far.
    pub fn urls_ignored(&self) -> u64 {
        self.inner.urls_ignored.load(Ordering::Relaxed)
    }

    /// Fetches the CRL at `url`, conditionally when `validators` are given
    /// (an empty [`Validators`] asks unconditionally). Concurrent calls with
    /// the same URL and validators share one request.
    pub async fn fetch_crl(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let key = (url.to_owned(), validators.clone());
        let span = tracing::debug_span!("fetch", kind = "crl", url = %url);
        self.inner
            .crl_flights
            .run(key, || self.fetch_crl_now(url, validators).instrument(span))
            .await
    }

    /// Sends `request_der` (a DER OCSPRequest) to the responder at `url`:
    /// GET when the encoded request is under 255 bytes, POST otherwise
    /// (RFC 6960 Appendix A.1, RFC 5019 §5). Only a 200 answer with an
    /// OCSP content type is accepted. Identical concurrent requests share
    /// one fetch (requests with a nonce are never identical).
    pub async fn fetch_ocsp(
        &self,
        url: &str,
        request_der: &[u8],
    ) -> Result<OcspOutcome, FetchError> {
        let key = (url.to_owned(), request_der.to_vec());
        let span = tracing::debug_span!("fetch", kind = "ocsp", url = %url);
        self.inner
            .ocsp_flights
            .run(key, || {
                self.fetch_ocsp_now(url, request_der).instrument(span)
            })
            .await
    }

    async fn fetch_crl_now(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let started = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/pkix-crl, application/x-pem-file;q=0.9, */*;q=0.5",
            ),
        );
        // Validators that are not valid header values are not sent: the
        // fetch is then unconditional, which is always correct.
        if let Some(v) = validators.etag.as_deref().and_then(header_value) {
            headers.insert(header::IF_NONE_MATCH, v);
        }
        if let Some(v) = validators.last_modified.as_deref().and_then(header_value) {
            headers.insert(header::IF_MODIFIED_SINCE, v);
        }
        let conditional = headers.contains_key(header::IF_NONE_MATCH)
            || headers.contains_key(header::IF_MODIFIED_SINCE);
        let request = Request {
            method: Method::GET,
            url: checked_url(url)?,
            headers,
            body: None,
            limit: self.inner.config.max_crl_bytes,
        };
        let response = self.with_retries(&request).await?;
        let elapsed = started.elapsed();
        match response.status {
            StatusCode::NOT_MODIFIED if conditional => Ok(FetchOutcome::NotModified {
                etag: response.etag.or_else(|| validators.etag.clone()),
                last_modified: response
                    .last_modified
                    .or_else(|| validators.last_modified.clone()),
                elapsed,
            }),
            StatusCode::OK => Ok(FetchOutcome::Body {
                bytes: body::crl_der(response.url.as_str(), response.body)?,
                etag: response.etag,
                last_modified: response.last_modified,
                elapsed,
            }),
            other => Err(FetchError::Status {
                url: response.url.to_string(),
                status: other.as_u16(),
            }),
        }
    }

    async fn fetch_ocsp_now(
        &self,
        url: &str,
        request_der: &[u8],
    ) -> Result<OcspOutcome, FetchError> {
        let started = Instant::now();
        let responder = checked_url(url)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/ocsp-response"),
        );
        let (request, method) = match body::ocsp_get_url(&responder, request_der) {
            Some(get_url) => (
                Request {
                    method: Method::GET,
                    url: checked_url(&get_url)?,
                    headers,
                    body: None,
                    limit: self.inner.config.max_ocsp_bytes,
                },
                OcspMethod::Get,
            ),
            None => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/ocsp-request"),
                );
                (
                    Request {
                        method: Method::POST,
                        url: responder,
                        headers,
                        body: Some(Bytes::copy_from_slice(request_der)),
                        limit: self.inner.config.max_ocsp_bytes,
                    },
                    OcspMethod::Post,
                )
            }
        };
        // Errors name the responder, not the GET URL that carries the
        // request (RFC 6960 Appendix A.1): that is opaque and long.
        let sent = request.url.to_string();
        let shown = url.to_owned();
        let name_responder = |mut e: FetchError| {
            if let Some(named) = e.url_mut().filter(|u| **u == sent) {
                named.clone_from(&shown);
            }
            e
        };
        let response = self.with_retries(&request).await.map_err(&name_responder)?;
        if response.status != StatusCode::OK {
            return Err(name_responder(FetchError::Status {
                url: response.url.to_string(),
                status: response.status.as_u16(),
            }));
        }
        let body = body::ocsp_der(
            response.url.as_str(),
            response.content_type.as_deref(),
            response.body,
        )
        .map_err(&name_responder)?;
        Ok(OcspOutcome {
            body,
            method,
            elapsed: started.elapsed(),
        })
    }

    /// Runs attempts until one succeeds, a failure is not transient, or the
    /// retries are spent. Each attempt is bounded by the total timeout.
    async fn with_retries(&self, request: &Request) -> Result<Response, FetchError> {
        let config = &self.inner.config;
        let mut attempt = 0;
        loop {
            // Queueing for a slot is not part of the attempt's time; the
            // slots are given back during the backoff.
            let permits = self.permits(&request.url).await;
            let result = tokio::time::timeout(config.total_timeout, self.attempt(request))
                .await
                .unwrap_or_else(|_| {
                    Err(FetchError::Timeout {
                        url: request.url.to_string(),
                        after: config.total_timeout,
                    })
                });
            match result {
                Err(e) if e.is_transient() && attempt < config.retries => {
                    drop(permits);
                    let delay = backoff(config, attempt);
                    tracing::debug!(
                        attempt,
                        error = %e,
                        delay_ms = delay.as_millis() as u64,
                        "fetch failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::debug!(error = %e, code = e.code(), "fetch failed");
                    return Err(e);
                }
                Ok(response) => {
                    tracing::debug!(
                        status = response.status.as_u16(),
                        bytes = response.body.len(),
                        "fetched"
                    );
                    return Ok(response);
                }
            }
        }
    }

    /// One attempt: follows redirects by hand (checking each target), then
    /// reads the body of a 200 within the limit. A 304 comes back without a
    /// body; other statuses are errors.
    async fn attempt(&self, request: &Request) -> Result<Response, FetchError> {
        let config = &self.inner.config;
        let mut url = request.url.clone();
        let mut redirects = 0;
        loop {
            // A literal address is connected to without resolution: it is
            // checked here, on every hop (names are checked by the resolver).
            check_literal(&url, &self.inner.policy)?;
            let mut builder = self
                .inner
                .client
                .request(request.method.clone(), url.clone())
                .headers(request.headers.clone());
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let response = builder
                .send()
                .await
                .map_err(|e| error::from_reqwest(url.as_str(), &e, config.connect_timeout))?;
            let status = response.status();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                if redirects == config.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        url: url.to_string(),
                        limit: config.max_redirects,
                    });
                }
                url = redirect_target(&url, response.headers())?;
                redirects += 1;
                continue;
            }
            // Only a body (200) or "still current" (304) is an answer; any
            // other status is an error, retried if 5xx.
            if status != StatusCode::OK && status != StatusCode::NOT_MODIFIED {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let header_text = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let etag = header_text(header::ETAG);
            let last_modified = header_text(header::LAST_MODIFIED);
            let content_type = header_text(header::CONTENT_TYPE);
            let body = if status == StatusCode::OK {
                read_limited(response, url.as_str(), request.limit, config).await?
            } else {
                Bytes::new()
            };
            return Ok(Response {
                url,
                status,
                etag,
                last_modified,
                content_type,
                body,
            });
        }
    }
}

impl Fetcher {
    /// A global slot and a slot for the host of `url` (name and port),
    /// held for one attempt, redirects included (a redirect to another host
    /// still counts against the first one's slot).
    async fn permits(
        &self,
        url: &Url,
    ) -> (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>) {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let per_host =
            {
                let mut hosts = self
                    .inner
                    .hosts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !hosts.contains_key(&host) {
                    // Forget hosts nobody is fetching from or waiting on (a
                    // held or awaited permit holds a clone), so the table stays
                    // as small as the set of busy hosts.
                    hosts.retain(|_, s| Arc::strong_count(s) > 1);
                }
                Arc::clone(hosts.entry(host).or_insert_with(|| {
                    Arc::new(Semaphore::new(self.inner.config.max_per_host.max(1)))
                }))
            };
        // Per host first, so one busy host's queue does not hold global
        // slots that other hosts could use. The semaphores are never
        // closed, so acquiring cannot fail.
        let host_permit = per_host.acquire_owned().await.ok();
        let global = Arc::clone(&self.inner.slots).acquire_owned().await.ok();
        (global, host_permit)
    }
}

/// Deduplicates the URLs of `sources` and keeps the first
/// [`MAX_CRL_URLS_PER_CERT`] and [`MAX_OCSP_URLS_PER_CERT`]; returns them
/// and how many were left out.
pub fn cap_sources(sources: Sources) -> (Sources, usize) {
    fn cap(urls: Vec<String>, limit: usize, ignored: &mut usize) -> Vec<String> {
        let mut kept: Vec<String> = Vec::with_capacity(limit.min(urls.len()));
        for url in urls {
            if kept.contains(&url) {
                continue;
            }
            if kept.len() == limit {
                *ignored += 1;
            } else {
                kept.push(url);
            }
        }
        kept
    }
    let mut ignored = 0;
    let capped = Sources {
        crl_urls: cap(sources.crl_urls, MAX_CRL_URLS_PER_CERT, &mut ignored),
        ocsp_urls: cap(sources.ocsp_urls, MAX_OCSP_URLS_PER_CERT, &mut ignored),
    };
    (capped, ignored)
}

struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    limit: u64,
}

struct Response {
    url: Url,
    status: StatusCode,
    etag: Option<String>,
    last_modified: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// Reads the body, refusing it as soon as it passes `limit`: at once when
/// Content-Length says so, otherwise on the first chunk past the limit.
/// Dropping the response then closes the connection, so the rest is never
/// read.
async fn read_limited(
    mut response: reqwest::Response,
    url: &str,
    limit: u64,
    config: &FetchConfig,
) -> Result<Bytes, FetchError> {
    let too_large = |received| FetchError::TooLarge {
        url: url.to_owned(),
        limit,
        received,
    };
    let announced = response.content_length();
    if let Some(len) = announced {
        if len > limit {
            return Err(too_large(len));
        }
    }
    // With a Content-Length the buffer is allocated once, at its final size:
    // a 50 MB CRL is not copied through doubling reallocations.
    let capacity = announced.unwrap_or(64 * 1024).min(limit);
    let mut buf = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| error::from_reqwest(url, &e, config.total_timeout))?;
        let Some(chunk) = chunk else {
            return Ok(buf.freeze());
        };
        let received = buf.len() as u64 + chunk.len() as u64;
        if received > limit {
            return Err(too_large(received));
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Full jitter (uniform in `[0, min(max, base * 2^attempt)]`): spreads
/// the retries of many clients after a responder outage.
fn backoff(config: &FetchConfig, attempt: u32) -> Duration {
    let ceiling = config
        .backoff_base
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(config.backoff_max);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling_ms))
}

fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fetch_config_setter_sets_its_own_field() {
        let cidr = |text: &str| text.parse::<Cidr>().unwrap();
        let built = FetchConfig::default()
            .with_connect_timeout(Duration::from_secs(1))
            .with_total_timeout(Duration::from_secs(2))
            .with_max_crl_bytes(3)
            .with_max_ocsp_bytes(4)
            .with_max_redirects(5)
            .with_retries(6)
            .with_backoff_base(Duration::from_secs(7))
            .with_backoff_max(Duration::from_secs(8))
            .with_user_agent("ua")
            .with_use_env_proxy(true)
            .with_deny(vec![cidr("10.0.0.0/8")])
            .with_allow(vec![cidr("169.254.0.0/16")])
            .with_max_concurrent(9)
            .with_max_per_host(10);
        let expected = FetchConfig {
            connect_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(2),
            max_crl_bytes: 3,
            max_ocsp_bytes: 4,
            max_redirects: 5,
            retries: 6,
            backoff_base: Duration::from_secs(7),
            backoff_max: Duration::from_secs(8),
            user_agent: "ua".to_owned(),
            use_env_proxy: true,
            deny: vec![cidr("10.0.0.0/8")],
            allow: vec![cidr("169.254.0.0/16")],
            max_concurrent: 9,
            max_per_host: 10,
        };
        // No PartialEq (nothing compares configs); Debug shows every field.
        assert_eq!(format!("{built:?}"), format!("{expected:?}"));
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let config = FetchConfig::default()
            .with_backoff_base(Duration::from_millis(100))
            .with_backoff_max(Duration::from_millis(450));
        for attempt in 0..40 {
            let ceiling = (100u64 << attempt.min(20)).min(450);
            for _ in 0..20 {
                assert!(backoff(&config, attempt) <= Duration::from_millis(ceiling));
            }
        }
    }
}
