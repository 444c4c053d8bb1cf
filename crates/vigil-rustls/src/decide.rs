//! The decision shared by both verifiers: cached first, fetch only when the
//! verdict hinges on revocation data the engine lacks.

use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};
use vigil_core::{CertificateDer, ReasonCode, RevocationPolicy, Status, Verdict, VerifyOptions};
use vigil_runtime::Engine;

/// Decides on `chain` (leaf first) under `options`; see the crate
/// documentation for when and how this fetches.
pub(crate) fn decide(
    engine: &Engine,
    chain: &[CertificateDer<'_>],
    options: &VerifyOptions,
) -> Arc<Verdict> {
    let cached = engine.verify_cached(chain, options);
    if !worth_fetching(&cached, options) {
        return cached;
    }
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(engine.verify(chain, options)))
        }
        Ok(handle) => {
            // A current-thread runtime would deadlock if blocked here: the
            // fetch it waits for needs this very thread.
            let engine = engine.clone();
            let chain: Vec<CertificateDer<'static>> =
                chain.iter().map(|c| c.clone().into_owned()).collect();
            let options = options.clone();
            handle.spawn(async move {
                engine.verify(&chain, &options).await;
            });
            tracing::debug!(
                reason = %cached.reason,
                "revocation data missing on a current-thread runtime; fetching in the background"
            );
            cached
        }
        Err(_) => cached,
    }
}

/// Whether fetching could change the verdict: the status is unknown (also
/// when soft-failed under `prefer`) or the revocation data held did not
/// verify. A revoked certificate or a broken path is final.
fn worth_fetching(verdict: &Verdict, options: &VerifyOptions) -> bool {
    options.policy != RevocationPolicy::Off
        && (verdict.status == Status::Unknown
            || matches!(
                verdict.reason,
                ReasonCode::CrlSignatureInvalid
                    | ReasonCode::OcspSignatureInvalid
                    | ReasonCode::OcspResponderNotAuthorized
            ))
}
