//! OCSP stapling of the proxy's own certificate (server mode): the
//! response is fetched from the responder the certificate names (AIA),
//! through the same fetcher rules as all revocation data (destination
//! checks, limits, timeouts), checked, and handed to rustls, which sends it
//! in the handshake (RFC 6066 §8, RFC 8446 §4.4.2.1). Refreshed at half its
//! remaining validity, and again at once when the certificate is renewed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use vigil_core::revocation::{
    build_request, revocation_sources, CertIdHash, OcspCertStatus, ParsedOcsp,
};
use vigil_runtime::Fetcher;

use super::tls::Identity;

const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// A certificate without an OCSP URL is looked at again this often (a
/// renewal wakes the loop sooner).
const NO_SOURCE: Duration = Duration::from_secs(3600);

/// Keeps a fresh staple on `identity` for as long as the proxy runs.
pub(crate) async fn staple_loop(identity: Arc<Identity>, fetcher: Fetcher, listen: String) {
    let mut retry = FIRST_RETRY;
    loop {
        let wait = match staple_once(&identity, &fetcher).await {
            Ok(Some(next)) => {
                retry = FIRST_RETRY;
                tracing::debug!(listen = %listen, "OCSP staple fetched");
                next
            }
            Ok(None) => NO_SOURCE,
            Err(e) => {
                tracing::warn!(listen = %listen, error = %e, retry_secs = retry.as_secs(), "OCSP staple not fetched; handshakes go on without a fresh one");
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = identity.renewed.notified() => retry = FIRST_RETRY,
        }
    }
}

/// One fetch. Ok(Some(wait)): stapled, refresh after `wait`; Ok(None):
/// nothing to staple (no issuer in the chain, or no OCSP URL).
async fn staple_once(identity: &Identity, fetcher: &Fetcher) -> Result<Option<Duration>, String> {
    let chain = identity.chain();
    let (Some(leaf), Some(issuer)) = (chain.first(), chain.get(1)) else {
        return Ok(None);
    };
    let sources = revocation_sources(leaf).map_err(|e| e.to_string())?;
    let Some(url) = sources.ocsp_urls.first() else {
        return Ok(None);
    };
    let request = build_request(leaf, issuer, CertIdHash::Sha1, None).map_err(|e| e.to_string())?;
    let fetched = fetcher
        .fetch_ocsp(url, &request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let der = fetched.body.to_vec();
    let now = SystemTime::now();
    let parsed = ParsedOcsp::from_der(&der).map_err(|e| format!("{url}: {e}"))?;
    // RFC 6960 §3.2: signed by the issuer or its delegated responder.
    parsed
        .verify_for_issuer(issuer, now)
        .map_err(|e| format!("{url}: {e}"))?;
    let single = parsed
        .status_for(leaf, issuer)
        .ok_or_else(|| format!("{url}: the response is not about this certificate"))?;
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match single.status {
        OcspCertStatus::Good => {}
        OcspCertStatus::Revoked { .. } => {
            tracing::error!(url = %url, "the proxy's own certificate is revoked: its clients will refuse it; renew it");
            return Err(format!("{url}: the proxy's certificate is revoked"));
        }
        OcspCertStatus::Unknown => {
            return Err(format!(
                "{url}: the responder does not know the proxy's certificate"
            ));
        }
    }
    // RFC 5019 §4: a response is usable from thisUpdate to nextUpdate.
    if single.this_update > now_secs + 300 {
        return Err(format!("{url}: thisUpdate is in the future"));
    }
    if single.next_update.is_some_and(|n| n <= now_secs) {
        return Err(format!("{url}: the response is past its nextUpdate"));
    }
    let next_update = single.next_update;
    drop(parsed);
    if !identity.staple(&chain, der) {
        // Renewed meanwhile: the loop fetches for the new one.
        return Ok(Some(Duration::ZERO));
    }
    let left = next_update.map_or(MAX_REFRESH, |n| {
        Duration::from_secs(u64::try_from(n - now_secs).unwrap_or(0) / 2)
    });
    Ok(Some(left.clamp(MIN_REFRESH, MAX_REFRESH)))
}
