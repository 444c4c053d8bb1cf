//! The client-certificate verifier (the server side of mTLS).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use vigil_core::{Depth, RevocationPolicy, Usage, Verdict, VerifyOptions};
use vigil_runtime::Engine;

use crate::decide::decide;
use crate::error::authorize;
use crate::{verdict_error, Authorizer};

/// Requires and verifies client certificates with a Vigil [`Engine`]: the
/// path to one of the engine's anchors, id-kp-clientAuth, and revocation
/// under the configured policy (`require` and the whole chain by default).
///
/// ```no_run
/// # fn demo(engine: vigil_runtime::Engine) -> Result<(), rustls::Error> {
/// use std::sync::Arc;
/// let verifier = vigil_rustls::VigilClientVerifier::new(engine);
/// let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
///     rustls::crypto::ring::default_provider(),
/// ))
/// .with_safe_default_protocol_versions()?
/// .with_client_cert_verifier(Arc::new(verifier));
/// # let _ = builder; Ok(()) }
/// ```
pub struct VigilClientVerifier {
    engine: Engine,
    options: VerifyOptions,
    algorithms: WebPkiSupportedAlgorithms,
    authorizer: Option<Authorizer>,
    hints: Vec<DistinguishedName>,
}

impl VigilClientVerifier {
    /// A verifier over `engine` with the strict defaults (`require`, whole
    /// chain) and the signature algorithms of rustls's ring provider.
    pub fn new(engine: Engine) -> Self {
        let hints = engine
            .anchor_subjects()
            .into_iter()
            .map(DistinguishedName::from)
            .collect();
        Self {
            engine,
            options: VerifyOptions::new(Usage::Client),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            authorizer: None,
            hints,
        }
    }

    /// Sets the revocation policy (`prefer` soft-fails unknown status only).
    pub fn with_policy(mut self, policy: RevocationPolicy) -> Self {
        self.options.policy = policy;
        self
    }

    /// Sets which certificates revocation covers.
    pub fn with_depth(mut self, depth: Depth) -> Self {
        self.options.depth = depth;
        self
    }

    /// Uses `provider`'s signature verification algorithms for handshake
    /// signatures.
    pub fn with_provider(mut self, provider: &CryptoProvider) -> Self {
        self.algorithms = provider.signature_verification_algorithms;
        self
    }

    /// Asks `authorizer` about the leaf of every chain Vigil accepts; a
    /// refusal fails the handshake with `access_denied`. Full handshakes
    /// only: rustls calls no verifier when a session is resumed, and open
    /// connections are not asked again when the rules change; an
    /// application with rules that change re-checks the peers it tracks.
    pub fn with_authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// The options every chain is verified with.
    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    /// Decides on a chain (leaf first) as a handshake would, returning the
    /// whole verdict.
    pub fn verdict(&self, chain: &[CertificateDer<'_>]) -> Arc<Verdict> {
        decide(&self.engine, chain, &self.options)
    }
}

impl std::fmt::Debug for VigilClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VigilClientVerifier")
            .field("options", &self.options)
            .field("authorizer", &self.authorizer.is_some())
            .field("root_hints", &self.hints.len())
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for VigilClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain = chain_of(end_entity, intermediates);
        let verdict = self.verdict(&chain);
        if verdict.is_accepted() {
            authorize(self.authorizer.as_ref(), end_entity)?;
            return Ok(ClientCertVerified::assertion());
        }
        tracing::info!(
            reason = %verdict.reason,
            detail = %verdict.detail,
            "client certificate rejected"
        );
        Err(verdict_error(&verdict))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The presented chain, leaf first, borrowing rustls's buffers.
pub(crate) fn chain_of<'a>(
    end_entity: &'a CertificateDer<'_>,
    intermediates: &'a [CertificateDer<'_>],
) -> Vec<CertificateDer<'a>> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .map(|c| CertificateDer::from(c.as_ref()))
        .collect()
}
