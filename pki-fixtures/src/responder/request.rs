//! OCSP requests for the responder, made in code (tests need no `openssl` for them).

use super::wire;
use crate::openssl::CertIdHash;
use crate::{Cert, FixtureError};

/// A DER OCSPRequest about `certs`, all issued by `issuer`, with CertIDs hashed with
/// `hash` and, if given, a nonce extension (RFC 8954: the nonce as an OCTET STRING in
/// extnValue). Unsigned, version 1, one Request per certificate.
pub fn ocsp_request(
    issuer: &Cert,
    certs: &[&Cert],
    hash: CertIdHash,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, FixtureError> {
    let (subject, key) = crate::der::cert_subject_and_key(&issuer.der).ok_or_else(|| {
        FixtureError::invalid(format!("{}: cannot read subject and key", issuer.name))
    })?;
    let serials: Vec<&[u8]> = certs.iter().map(|c| c.serial.as_slice()).collect();
    let hash = match hash {
        CertIdHash::Sha1 => wire::HashAlg::Sha1,
        CertIdHash::Sha256 => wire::HashAlg::Sha256,
    };
    Ok(wire::build_request(subject, key, &serials, hash, nonce))
}

/// The GET form of an OCSP request (RFC 6960 Appendix A.1): `{ocsp_url}/{base64}`, with
/// `+`, `/` and `=` percent-encoded.
pub fn ocsp_get_url(ocsp_url: &str, request: &[u8]) -> String {
    let encoded = crate::der::base64(request)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("{}/{encoded}", ocsp_url.trim_end_matches('/'))
}
