//! Fetching the sources of `vigil check`: all at once, each bounded by
//! `--timeout` as a whole (retries and backoff included).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::rand::SecureRandom as _;
use vigil_core::revocation::build_request;
use vigil_runtime::{FetchConfig, FetchError, FetchOutcome, Fetcher, OcspMethod, Validators};

use super::report::{self, Kind, SourceError};
use super::Settings;
use crate::UsageError;

/// Octets of an OCSP nonce (RFC 8954 §2.1 allows 1 to 32).
const NONCE_LEN: usize = 32;

/// One fetch to make.
pub(super) struct Job {
    kind: Kind,
    url: String,
    /// For OCSP: the DER request and the nonce it carries.
    ocsp: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Job {
    pub(super) fn new(kind: Kind, url: &str, settings: &Settings) -> Result<Self, UsageError> {
        let ocsp = match kind {
            Kind::Crl => None,
            Kind::Ocsp => {
                let nonce = if settings.nonce {
                    let mut nonce = vec![0u8; NONCE_LEN];
                    ring::rand::SystemRandom::new()
                        .fill(&mut nonce)
                        .map_err(|_| UsageError("no randomness for the OCSP nonce".into()))?;
                    Some(nonce)
                } else {
                    None
                };
                let request = build_request(
                    &settings.cert,
                    &settings.issuer,
                    settings.hash,
                    nonce.as_deref(),
                )?;
                Some((request, nonce))
            }
        };
        Ok(Self {
            kind,
            url: url.to_owned(),
            ocsp,
        })
    }
}

/// What one fetch brought.
pub(super) struct Fetched {
    pub(super) kind: Kind,
    pub(super) url: String,
    pub(super) elapsed: Duration,
    pub(super) result: Result<Body, SourceError>,
}

pub(super) enum Body {
    Crl(Vec<u8>),
    Ocsp {
        der: Vec<u8>,
        method: OcspMethod,
        nonce: Option<Vec<u8>>,
    },
}

/// Fetches every job at once (a dead responder costs one timeout, not one
/// per source) on a runtime of this call's own; results keep the job order.
pub(super) fn fetch_all(
    jobs: Vec<Job>,
    timeout: Duration,
    rules: &crate::fetch_args::FetchArgs,
) -> Result<Vec<Fetched>, UsageError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))?;
    let fetcher = Fetcher::new(
        rules.apply(
            FetchConfig::default()
                .with_connect_timeout(timeout.min(FetchConfig::default().connect_timeout))
                .with_total_timeout(timeout),
        ),
    )
    .map_err(|e| UsageError(e.to_string()))?;
    Ok(runtime.block_on(async move {
        let mut slots: Vec<Fetched> = jobs
            .iter()
            .map(|job| Fetched {
                kind: job.kind,
                url: job.url.clone(),
                elapsed: Duration::ZERO,
                result: Err(SourceError::new("internal", "the fetch task failed")),
            })
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        let mut index = HashMap::new();
        for (i, job) in jobs.into_iter().enumerate() {
            let fetcher = fetcher.clone();
            let handle = tasks.spawn(async move { (i, fetch_one(&fetcher, job, timeout).await) });
            index.insert(handle.id(), i);
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, fetched)) => slots[i] = fetched,
                Err(e) => {
                    if let Some(&i) = index.get(&e.id()) {
                        slots[i].result = Err(SourceError::new("internal", e.to_string()));
                    }
                }
            }
        }
        slots
    }))
}

async fn fetch_one(fetcher: &Fetcher, job: Job, timeout: Duration) -> Fetched {
    let started = Instant::now();
    let url = job.url.as_str();
    let result = match job.ocsp {
        None => bounded(timeout, url, fetcher.fetch_crl(url, &Validators::default()))
            .await
            .and_then(|outcome| match outcome {
                FetchOutcome::Body { bytes, .. } => Ok(Body::Crl(bytes.to_vec())),
                _ => Err(SourceError::new(
                    "not_modified",
                    format!("{url}: 304 Not Modified to an unconditional request"),
                )),
            }),
        Some((request, nonce)) => bounded(timeout, url, fetcher.fetch_ocsp(url, &request))
            .await
            .map(|outcome| Body::Ocsp {
                der: outcome.body.to_vec(),
                method: outcome.method,
                nonce,
            }),
    };
    Fetched {
        kind: job.kind,
        url: job.url,
        elapsed: started.elapsed(),
        result,
    }
}

/// `--timeout` covers a whole fetch, retries and their backoff included.
async fn bounded<T>(
    timeout: Duration,
    url: &str,
    fetch: impl std::future::Future<Output = Result<T, FetchError>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(timeout, fetch).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(SourceError::new(
            e.code(),
            elide_requests(&e.to_string(), url),
        )),
        Err(_) => Err(SourceError::new(
            "timeout",
            format!("{url}: no answer within {}", report::seconds(timeout)),
        )),
    }
}

/// Replaces what follows `responder/` in `detail` (the base64 request of
/// an OCSP GET, some hundred characters, once per mention) with
/// `<request>`.
fn elide_requests(detail: &str, responder: &str) -> String {
    let prefix = format!("{}/", responder.trim_end_matches('/'));
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(at) = rest.find(&prefix) {
        let (head, tail) = rest.split_at(at + prefix.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | ':' | '"' | '\''))
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str("<request>");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsp_get_requests_are_elided_from_error_details() {
        let url = "http://127.0.0.1:9/ocsp/ca";
        assert_eq!(
            elide_requests(
                "http://127.0.0.1:9/ocsp/ca/MFEw%2B%3D: failed (http://127.0.0.1:9/ocsp/ca/MFEw%3D): x",
                url
            ),
            "http://127.0.0.1:9/ocsp/ca/<request>: failed (http://127.0.0.1:9/ocsp/ca/<request>): x"
        );
        assert_eq!(
            elide_requests("http://127.0.0.1:9/ocsp/ca: HTTP status 500", url),
            "http://127.0.0.1:9/ocsp/ca: HTTP status 500"
        );
    }
}
