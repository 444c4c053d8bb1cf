//! Where a certificate says its revocation data lives: CRL distribution
//! point URIs (RFC 5280 §4.2.1.13) and OCSP responders from the Authority
//! Information Access extension (RFC 5280 §4.2.2.1).

use crate::cert::CertInfo;
use crate::input::InputError;

/// The revocation endpoints a certificate names, in its order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// http(s) URIs of its CRL distribution points (fullName only; other
    /// schemes such as ldap are left out).
    pub crl_urls: Vec<String>,
    /// http(s) URIs of its OCSP responders.
    pub ocsp_urls: Vec<String>,
}

/// Reads the CRL distribution point and OCSP URIs of a DER certificate
/// (one parse, the one verification uses). A verified path carries its certificates'
/// sources already: [`crate::AdmittedPath::revocation_plan`].
pub fn revocation_sources(cert_der: &[u8]) -> Result<Sources, InputError> {
    Ok(CertInfo::parse(cert_der)?.revocation_sources())
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
