//! Chains as the API takes them: a JSON array whose elements are each a PEM
//! block (or bundle) or one base64 DER certificate, leaf first.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, Visitor};
use vigil_core::CertificateDer;

use super::error::ApiError;

/// Most certificates one chain may hold (deeper paths are not real).
pub(crate) const MAX_CHAIN: usize = 16;

/// One element of a request's `chain`, decoded while the JSON is read: the
/// common case (clean CERTIFICATE blocks, or one base64 DER certificate)
/// becomes DER at once, without keeping a copy of the text; anything else
/// keeps its text for the strict parser, which also words the errors.
#[derive(Debug)]
pub(crate) enum ChainItem {
    Decoded(Vec<Vec<u8>>),
    Text(String),
}

impl ChainItem {
    pub(crate) fn from_text(text: &str) -> Self {
        let trimmed = text.trim();
        let quick = if trimmed.contains("-----BEGIN") {
            quick_pem(trimmed)
        } else {
            decode_base64(trimmed).ok().map(|der| vec![der])
        };
        match quick {
            Some(ders) => Self::Decoded(ders),
            None => Self::Text(text.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for ChainItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = ChainItem;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ChainItem, E> {
                Ok(ChainItem::from_text(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// A request's chain, decoded but not yet parsed as X.509: see
/// [`Chain::check`].
pub(crate) struct Chain {
    /// The certificates, leaf first.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// For each certificate, the index of the `chain` element it came from.
    items: Vec<usize>,
}

impl Chain {
    /// 400 `invalid_certificate` unless every certificate is one
    /// well-formed X.509 certificate, naming the element at fault. Not
    /// needed for a chain that hits the verdict cache: that holds only
    /// accepted verdicts, for chains octet-equal to one that passed here.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        for (der, item) in self.certs.iter().zip(&self.items) {
            check_certificate(der, *item)?;
        }
        Ok(())
    }
}

/// The certificates of `items`, in order; 400 `invalid_certificate` naming
/// the element at fault. Error details never quote the input.
pub(crate) fn parse_chain(items: Vec<ChainItem>) -> Result<Chain, ApiError> {
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "chain must hold at least the leaf certificate",
        ));
    }
    let mut chain = Chain {
        certs: Vec::with_capacity(items.len()),
        items: Vec::with_capacity(items.len()),
    };
    for (i, item) in items.into_iter().enumerate() {
        let ders = match item {
            ChainItem::Decoded(ders) => ders,
            ChainItem::Text(text) => strict_certificates(text.trim(), i)?,
        };
        for der in ders {
            chain.certs.push(CertificateDer::from(der));
            chain.items.push(i);
        }
        if chain.certs.len() > MAX_CHAIN {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("a chain holds at most {MAX_CHAIN} certificates"),
            ));
        }
    }
    Ok(chain)
}

/// The DER certificates of an element the quick decoders did not take.
fn strict_certificates(text: &str, item: usize) -> Result<Vec<Vec<u8>>, ApiError> {
    let source = format!("chain[{item}]");
    if text.contains("-----BEGIN") {
        pem_certificates(text.as_bytes(), &source)
    } else {
        decode_base64(text).map(|der| vec![der]).map_err(|detail| {
            ApiError::bad_request("invalid_certificate", format!("{source}: {detail}"))
        })
    }
}

/// The CERTIFICATE sections of a PEM text (RFC 7468 §2). The common case
/// (only CERTIFICATE blocks with standard base64 bodies) is decoded here
/// with a fast base64 decoder (certificates are public: no constant-time
/// decoding needed); anything else goes to the strict parser that
/// `vigil verify` uses, which also words the errors.
fn pem_certificates(bytes: &[u8], source: &str) -> Result<Vec<Vec<u8>>, ApiError> {
    if let Some(ders) = std::str::from_utf8(bytes).ok().and_then(quick_pem) {
        return Ok(ders);
    }
    use rustls_pki_types::pem::{PemObject, SectionKind};
    let mut out = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        match section {
            Ok((SectionKind::Certificate, der)) => out.push(der),
            Ok(_) => {}
            Err(_) => {
                out.clear();
                break;
            }
        }
    }
    if out.is_empty() {
        let e = vigil_core::input::parse_certificates(bytes, source)
            .err()
            .map_or_else(|| format!("{source}: no certificate"), |e| e.to_string());
        return Err(ApiError::bad_request("invalid_certificate", e));
    }
    Ok(out)
}

/// Every block of `text`, when all are well-formed CERTIFICATE blocks with
/// nothing but whitespace around them; `None` otherwise.
fn quick_pem(text: &str) -> Option<Vec<Vec<u8>>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix(BEGIN)?;
        let end = rest.find(END)?;
        let mut body = String::with_capacity(end);
        for line in rest[..end].split_ascii_whitespace() {
            body.push_str(line);
        }
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .ok()?,
        );
        rest = rest[end + END.len()..].trim_start();
    }
    (!out.is_empty()).then_some(out)
}

/// Digests of certificates that already parsed: a certificate is parsed in
/// full (x509, about 7 µs) once, then recognised by its SHA-256 (0.4 µs).
/// Bounded: cleared when full.
static PARSED: std::sync::OnceLock<RwLock<HashSet<[u8; 32]>>> = std::sync::OnceLock::new();
const PARSED_CAPACITY: usize = 64 * 1024;

/// 400 unless `der` is one well-formed X.509 certificate.
fn check_certificate(der: &[u8], item: usize) -> Result<(), ApiError> {
    let digest = vigil_core::sha256(der);
    let known = PARSED.get_or_init(Default::default);
    if known
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&digest)
    {
        return Ok(());
    }
    vigil_core::input::parse_certificates(der, &format!("chain[{item}]"))
        .map_err(|e| ApiError::bad_request("invalid_certificate", e.to_string()))?;
    let mut set = known.write().unwrap_or_else(PoisonError::into_inner);
    if set.len() >= PARSED_CAPACITY {
        set.clear();
    }
    set.insert(digest);
    Ok(())
}

/// Standard or URL-safe base64, padded or not, whitespace ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.is_empty() {
        return Err("empty; expected a PEM block or base64 DER".into());
    }
    let compact: String;
    let text = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        compact.as_str()
    } else {
        text
    };
    let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
    let padded = text.ends_with('=');
    let engine = match (url_safe, padded) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    engine
        .decode(text)
        .map_err(|e| format!("neither a PEM block nor valid base64 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_pem_takes_only_clean_certificate_blocks() {
        let one = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(quick_pem(one), Some(vec![vec![0x30, 0x00]]));
        let two = format!("{one}\n{one}");
        assert_eq!(quick_pem(&two).map(|v| v.len()), Some(2));
        for bad in [
            "junk\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMA!=\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMAA=\n",
            "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----",
            "",
        ] {
            assert_eq!(quick_pem(bad), None, "{bad}");
        }
    }

    fn parse(items: &[&str]) -> Result<Chain, ApiError> {
        let chain = parse_chain(items.iter().map(|t| ChainItem::from_text(t)).collect())?;
        chain.check()?;
        Ok(chain)
    }

    #[test]
    fn bad_elements_are_named_and_not_quoted() {
        let e = parse(&["not base64 at all!"]).map(|_| ()).unwrap_err();
        assert_eq!(e.code, "invalid_certificate");
        assert!(e.detail.starts_with("chain[0]:"), "{}", e.detail);
        assert!(!e.detail.contains("at all"));
        let e = parse(&["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code, "invalid_certificate");
        let e = parse(&["AAAA"]).map(|_| ()).unwrap_err();
        assert_eq!(e.code, "invalid_certificate");
        // A private key where a certificate should be.
        let e = parse(&["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code, "invalid_certificate");
        assert_eq!(parse(&[]).map(|_| ()).unwrap_err().code, "invalid_request");
    }
}
