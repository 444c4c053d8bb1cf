//! Trust anchors: the certificates a path must end at.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::cert::CertInfo;
use crate::input::InputError;

/// A set of trust anchors, deduplicated by certificate digest.
#[derive(Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
    webpki: Vec<TrustAnchor<'static>>,
}

#[derive(Clone)]
pub(crate) struct Anchor {
    pub(crate) info: Arc<CertInfo>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one DER certificate; returns false when it was already present.
    pub fn add(&mut self, der: CertificateDer<'static>) -> Result<bool, InputError> {
        let info = CertInfo::parse(&der)?;
        if self.anchors.iter().any(|a| a.info.sha256 == info.sha256) {
            return Ok(false);
        }
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| InputError::Malformed {
                source: "trust anchor".into(),
                detail: format!("unusable as a trust anchor: {e}"),
            })?
            .to_owned();
        self.webpki.push(anchor);
        self.anchors.push(Anchor {
            info: Arc::new(info),
        });
        Ok(true)
    }

    /// Adds every certificate of a PEM bundle or DER blob; returns how many
    /// were new.
    pub fn add_bytes(&mut self, bytes: &[u8], source: &str) -> Result<usize, InputError> {
        let mut added = 0;
        for der in crate::input::parse_certificates(bytes, source)? {
            added += usize::from(self.add(der)?);
        }
        Ok(added)
    }

    /// Adds a file (PEM bundle or DER) or every certificate file of a
    /// directory; returns how many were new.
    pub fn add_path(&mut self, path: &Path) -> Result<usize, InputError> {
        let mut added = 0;
        for der in crate::input::load_certificates(path)? {
            added += usize::from(self.add(der)?);
        }
        Ok(added)
    }

    /// Removes the anchor whose certificate has this SHA-256; returns
    /// whether it was present.
    pub fn remove(&mut self, sha256: &[u8; 32]) -> bool {
        let Some(i) = self.anchors.iter().position(|a| &a.info.sha256 == sha256) else {
            return false;
        };
        // `webpki` and `anchors` are kept index-aligned (see `anchor_info`).
        self.anchors.remove(i);
        self.webpki.remove(i);
        true
    }

    /// The SHA-256 of every anchor's certificate.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        self.anchors.iter().map(|a| a.info.sha256).collect()
    }

    /// Whether the anchor with this certificate SHA-256 is present.
    pub fn contains(&self, sha256: &[u8; 32]) -> bool {
        self.anchors.iter().any(|a| &a.info.sha256 == sha256)
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The DER subject Name (outer SEQUENCE included) of each anchor, in
    /// the order they were added: e.g. a TLS CertificateRequest's
    /// certificate_authorities.
    pub fn subjects(&self) -> Vec<Vec<u8>> {
        self.anchor_infos()
            .map(|a| a.subject_der().to_vec())
            .collect()
    }

    pub(crate) fn webpki_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.webpki
    }

    /// Whether some anchor's subject is byte-identical to this name.
    pub(crate) fn has_subject_bytes(&self, name: &[u8]) -> bool {
        self.anchors.iter().any(|a| a.info.subject_der() == name)
    }

    /// Every anchor's parsed certificate.
    pub(crate) fn anchor_infos(&self) -> impl Iterator<Item = &CertInfo> {
        self.anchors.iter().map(|a| a.info.as_ref())
    }

    /// The anchor at `index` of [`TrustStore::webpki_anchors`].
    pub(crate) fn anchor_info(&self, index: usize) -> Option<&Arc<CertInfo>> {
        self.anchors.get(index).map(|a| &a.info)
    }

    /// The anchor whose certificate has this SHA-256, if still trusted.
    pub(crate) fn anchor_by_sha256(&self, sha256: &[u8; 32]) -> Option<&Arc<CertInfo>> {
        self.anchors
            .iter()
            .find(|a| &a.info.sha256 == sha256)
            .map(|a| &a.info)
    }

    /// Whether some anchor's subject matches this name (RFC 5280 §7.1).
    pub(crate) fn has_subject(&self, name: &[u8]) -> bool {
        let key = crate::name::name_key(name);
        self.anchors.iter().any(|a| a.info.subject_key == key)
    }
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .finish()
    }
}
