//! Where a certificate says its revocation data lives: CRL distribution
//! point URIs (RFC 5280 §4.2.1.13) and OCSP responders from the Authority
//! Information Access extension (RFC 5280 §4.2.2.1).

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::{self, tag, Reader};
use crate::input::InputError;

const OID_CRL_DP: &[u8] = &[0x55, 0x1d, 0x1f];
const OID_AIA: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// uniformResourceIdentifier [6] IA5String in a GeneralName.
const URI: u8 = 0x86;

/// The revocation endpoints a certificate names, in its order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// http(s) URIs of its CRL distribution points (fullName only; other
    /// schemes such as ldap are left out).
    pub crl_urls: Vec<String>,
    /// http(s) URIs of its OCSP responders.
    pub ocsp_urls: Vec<String>,
}

/// Reads the CRL distribution point and OCSP URIs of a DER certificate.
pub fn revocation_sources(cert_der: &[u8]) -> Result<Sources, InputError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| InputError::Malformed {
        source: "certificate".into(),
        detail: e.to_string(),
    })?;
    let mut sources = Sources::default();
    for ext in cert.extensions() {
        match ext.oid.as_bytes() {
            OID_CRL_DP => {
                for dp in crate::cert::parse_crl_dps(ext.value).unwrap_or_default() {
                    sources
                        .crl_urls
                        .extend(dp.full_names.iter().filter_map(|n| uri(n)));
                }
            }
            OID_AIA => sources
                .ocsp_urls
                .extend(ocsp_uris(ext.value).unwrap_or_default()),
            _ => {}
        }
    }
    Ok(sources)
}

fn ocsp_uris(value: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut r = Reader::new(der::single(value, tag::SEQUENCE).ok()?);
    while !r.is_empty() {
        let mut ad = Reader::new(r.read(tag::SEQUENCE).ok()?);
        let method = ad.read(tag::OID).ok()?;
        let (_, _, location) = ad.read_any().ok()?;
        if method == OID_AD_OCSP {
            out.extend(uri(location));
        }
    }
    Some(out)
}

/// The URI of a GeneralName, when it is an http(s) one.
fn uri(general_name: &[u8]) -> Option<String> {
    match Reader::new(general_name).read_any().ok()? {
        (URI, value, _) => {
            let text = std::str::from_utf8(value).ok()?;
            let lower = text.to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://")).then(|| text.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_certificates_name_their_crl_and_ocsp_urls() {
        let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions {
            base_url: "http://127.0.0.1:9".into(),
            ..pki_fixtures::PkiOptions::default()
        })
        .unwrap();
        let s = revocation_sources(&pki.client.der).unwrap();
        assert_eq!(
            s.crl_urls,
            vec!["http://127.0.0.1:9/crl/intermediate.crl".to_owned()]
        );
        assert_eq!(
            s.ocsp_urls,
            vec!["http://127.0.0.1:9/ocsp/intermediate".to_owned()]
        );
        assert_eq!(
            revocation_sources(&pki.root.cert.der).unwrap(),
            Sources::default()
        );
    }
}
