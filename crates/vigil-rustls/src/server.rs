//! The server-certificate verifier (the client side of TLS).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use vigil_core::{Depth, RevocationPolicy, Usage, Verdict, VerifyOptions};
use vigil_runtime::Engine;

use crate::client::chain_of;
use crate::decide::decide;
use crate::error::authorize;
use crate::{verdict_error, Authorizer};

/// Verifies server certificates with a Vigil [`Engine`]: the path to one of
/// the engine's anchors, id-kp-serverAuth, the name the client connects to,
/// and revocation under the configured policy (`require` and the whole chain
/// by default). An OCSP response the server staples is loaded into the
/// engine (which verifies it like any other) before deciding, so a good
/// stapled answer saves the fetch.
pub struct VigilServerVerifier {
    engine: Engine,
    options: VerifyOptions,
    algorithms: WebPkiSupportedAlgorithms,
    authorizer: Option<Authorizer>,
}

impl VigilServerVerifier {
    /// A verifier over `engine` with the strict defaults (`require`, whole
    /// chain) and the signature algorithms of rustls's ring provider.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            options: VerifyOptions::new(Usage::Server),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            authorizer: None,
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

    /// Decides on a chain (leaf first) for `server_name`, after loading a
    /// stapled OCSP response when one is given (empty: none).
    pub fn verdict(
        &self,
        chain: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
    ) -> Arc<Verdict> {
        let options = self
            .options
            .clone()
            .with_name(server_name.to_str().into_owned());
        // Considered only once the server's path validates, and only for
        // the certificates of that path (see Engine::add_stapled_ocsp).
        if !ocsp_response.is_empty() {
            if let Err(e) = self.engine.add_stapled_ocsp(ocsp_response, chain, &options) {
                tracing::info!(error = %e, "stapled OCSP response not used");
            }
        }
        decide(&self.engine, chain, &options)
    }
}

impl std::fmt::Debug for VigilServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VigilServerVerifier")
            .field("options", &self.options)
            .field("authorizer", &self.authorizer.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for VigilServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = chain_of(end_entity, intermediates);
        let verdict = self.verdict(&chain, server_name, ocsp_response);
        if verdict.is_accepted() {
            authorize(self.authorizer.as_ref(), end_entity)?;
            return Ok(ServerCertVerified::assertion());
        }
        tracing::info!(
            reason = %verdict.reason,
            detail = %verdict.detail,
            "server certificate rejected"
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
