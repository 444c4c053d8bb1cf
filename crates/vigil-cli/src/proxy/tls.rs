//! The proxy's TLS: its own certificate and key, reloadable without
//! dropping connections ([`Identity`]), and the rustls configurations of
//! both modes with Vigil's verifiers and the route's allow rules.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use vigil_rustls::{Authorizer, VigilClientVerifier, VigilServerVerifier};

use super::allow::AllowList;

/// The proxy's certificate and key, swapped in whole when the files change
/// (a handshake in progress keeps the pair it started with).
#[derive(Debug)]
pub(crate) struct Identity {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The files' modification times at the last load.
    stamp: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    /// Told when a new pair is in use (the stapler fetches for it).
    pub(crate) renewed: tokio::sync::Notify,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = vigil_core::input::load_certificates(cert).map_err(|e| format!("cert {e}"))?;
    if chain.is_empty() {
        return Err(format!("cert {}: no certificate", cert.display()));
    }
    let key_der = vigil_core::input::load_private_key(key).map_err(|e| format!("key {e}"))?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| format!("cert {} and key {}: {e}", cert.display(), key.display()))
}

fn stamps(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (at(cert), at(key))
}

impl Identity {
    /// Loads the pair; the key must match the certificate.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let stamp = stamps(cert, key);
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: ArcSwap::from_pointee(pair),
            stamp: Mutex::new(stamp),
            renewed: tokio::sync::Notify::new(),
        }))
    }

    /// Loads the files again and swaps the pair in when it loads and
    /// matches; a pair that fails leaves the current one in place.
    /// `force`: even when the files' times did not change (SIGHUP).
    /// Ok(true): a new pair is in use.
    pub(crate) fn reload(&self, force: bool) -> Result<bool, String> {
        let now = stamps(&self.cert, &self.key);
        {
            let mut stamp = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
            if !force && *stamp == now {
                return Ok(false);
            }
            *stamp = now;
        }
        let pair = load_pair(&self.cert, &self.key)?;
        let current = self.current.load_full();
        if pair.cert == current.cert {
            // Same certificate (a key rotation keeps it only with its
            // key): keep the staple.
            let mut pair = pair;
            pair.ocsp = current.ocsp.clone();
            self.current.store(Arc::new(pair));
            return Ok(false);
        }
        self.current.store(Arc::new(pair));
        self.renewed.notify_one();
        Ok(true)
    }

    /// The certificate chain in use.
    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }

    /// Staples `ocsp` to handshakes while the chain in use is still `chain`
    /// (a reload in between wins).
    pub(crate) fn staple(&self, chain: &[CertificateDer<'static>], ocsp: Vec<u8>) -> bool {
        let current = self.current.load_full();
        if current.cert != chain {
            return false;
        }
        let mut stapled = (*current).clone();
        stapled.ocsp = Some(ocsp);
        self.current.store(Arc::new(stapled));
        true
    }

    /// The certificate file.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl rustls::client::ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The route's allow rules, replaced on reload.
pub(crate) type Rules = Arc<ArcSwap<AllowList>>;

/// The allow rules as the verifiers' authorizer: asked after Vigil accepts
/// the chain, refusing with access_denied (RFC 8446 §6.2: a valid chain, not
/// authorized here).
fn authorizer(rules: Rules) -> Authorizer {
    Arc::new(move |leaf: &CertificateDer<'_>| rules.load().permits(leaf))
}

/// Server mode: mutual TLS with Vigil deciding on client certificates.
pub(crate) fn server_config(
    verifier: VigilClientVerifier,
    rules: Rules,
    identity: Arc<Identity>,
) -> Result<rustls::ServerConfig, String> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(Arc::new(verifier.with_authorizer(authorizer(rules))))
        .with_cert_resolver(identity);
    Ok(config)
}

/// Client mode: mutual TLS out, Vigil deciding on the server's certificate.
pub(crate) fn client_config(
    verifier: VigilServerVerifier,
    rules: Rules,
    identity: Arc<Identity>,
) -> Result<rustls::ClientConfig, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier.with_authorizer(authorizer(rules))))
        .with_client_cert_resolver(identity);
    Ok(config)
}

/// Server mode with `--target-tls`: TLS to the backend, its certificate
/// checked by rustls's webpki verifier against `anchors`.
pub(crate) fn target_config(
    anchors: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for anchor in anchors {
        roots.add(anchor).map_err(|e| format!("target-ca: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
