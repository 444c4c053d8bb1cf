//! OCSP on the wire (RFC 6960 §4.1 and §4.2, profiled by RFC 5019): just enough DER to
//! read an OCSPRequest and write an OCSPResponse.

use time::OffsetDateTime;

use crate::der::{self, generalized_time, tlv, Reader};
use crate::{FixtureError, KeyAlg, Reason};

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;
const ENUMERATED: u8 = 0x0a;
const BIT_STRING: u8 = 0x03;

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
const OID_OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];

/// OCSPResponseStatus values (RFC 6960 §4.2.1) other than successful (0).
pub(crate) mod status {
    /// malformedRequest
    pub(crate) const MALFORMED_REQUEST: u8 = 1;
    /// tryLater
    pub(crate) const TRY_LATER: u8 = 3;
    /// unauthorized
    pub(crate) const UNAUTHORIZED: u8 = 6;
}

/// The hash algorithm of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    fn from_alg_id(content: &[u8]) -> Option<Self> {
        let mut r = Reader::new(content);
        let id = r.read(OID)?;
        // Parameters, when present, must be NULL (RFC 5754 allows both forms).
        if !r.is_empty() && !r.read(0x05)?.is_empty() {
            return None;
        }
        if !r.is_empty() {
            return None;
        }
        Some(match id {
            [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Self::Sha1,
            [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01] => Self::Sha256,
            [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02] => Self::Sha384,
            [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03] => Self::Sha512,
            _ => return None,
        })
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, data).as_ref().to_vec()
    }
}

/// One CertID of a request (RFC 6960 §4.1.1).
#[derive(Debug)]
pub(crate) struct CertId<'a> {
    /// The whole CertID encoding, echoed verbatim in the answer.
    pub(crate) der: &'a [u8],
    /// `None` when the hash algorithm is not one this responder computes.
    pub(crate) hash: Option<HashAlg>,
    pub(crate) name_hash: &'a [u8],
    pub(crate) key_hash: &'a [u8],
    /// serialNumber as minimal big-endian unsigned bytes; `None` if negative.
    pub(crate) serial: Option<Vec<u8>>,
}

/// A parsed OCSPRequest.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) cert_ids: Vec<CertId<'a>>,
    /// The whole nonce Extension of requestExtensions, echoed in responseExtensions.
    pub(crate) nonce: Option<&'a [u8]>,
}

/// Parses an OCSPRequest (RFC 6960 §4.1.1). A request signature, if any, is ignored.
pub(crate) fn parse_request(input: &[u8]) -> Option<Request<'_>> {
    let mut outer = Reader::new(der::single(input, SEQUENCE)?);
    let mut tbs = Reader::new(outer.read(SEQUENCE)?);
    outer.read_optional(0xa0)?; // optionalSignature
    if !outer.is_empty() {
        return None;
    }
    if let Some(version) = tbs.read_optional(0xa0)? {
        if der::single(version, INTEGER)? != [0] {
            return None;
        }
    }
    tbs.read_optional(0xa1)?; // requestorName
    let mut list = Reader::new(tbs.read(SEQUENCE)?);
    let mut nonce = None;
    if let Some(exts) = tbs.read_optional(0xa2)? {
        let mut exts = Reader::new(der::single(exts, SEQUENCE)?);
        while !exts.is_empty() {
            let ext = exts.read_element(SEQUENCE)?;
            let mut e = Reader::new(der::single(ext, SEQUENCE)?);
            if e.read(OID)? == OID_OCSP_NONCE {
                nonce = Some(ext);
            }
        }
    }
    if !tbs.is_empty() {
        return None;
    }
    let mut cert_ids = Vec::new();
    while !list.is_empty() {
        let mut request = Reader::new(list.read(SEQUENCE)?);
        let id = request.read_element(SEQUENCE)?;
        request.read_optional(0xa0)?; // singleRequestExtensions
        if !request.is_empty() {
            return None;
        }
        cert_ids.push(parse_cert_id(id)?);
    }
    if cert_ids.is_empty() {
        return None;
    }
    Some(Request { cert_ids, nonce })
}

fn parse_cert_id(whole: &[u8]) -> Option<CertId<'_>> {
    let mut r = Reader::new(der::single(whole, SEQUENCE)?);
    let alg = r.read(SEQUENCE)?;
    let name_hash = r.read(OCTET_STRING)?;
    let key_hash = r.read(OCTET_STRING)?;
    let serial = r.read(INTEGER)?;
    if !r.is_empty() || serial.is_empty() {
        return None;
    }
    let serial = (serial[0] & 0x80 == 0).then(|| der::minimal_unsigned(serial));
    Some(CertId {
        der: whole,
        hash: HashAlg::from_alg_id(alg),
        name_hash,
        key_hash,
        serial,
    })
}

/// certStatus of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: Option<Reason>,
    },
    Unknown,
}

/// One SingleResponse to write.
pub(crate) struct Single<'a> {
    pub(crate) cert_id: &'a [u8],
    pub(crate) status: CertStatus,
    pub(crate) this_update: OffsetDateTime,
    pub(crate) next_update: OffsetDateTime,
}

/// How the responder identifies itself (RFC 6960 §4.2.1 ResponderID).
pub(crate) enum ResponderId<'a> {
    /// `byName [1] Name`: the whole Name encoding.
    ByName(&'a [u8]),
    /// `byKey [2] KeyHash`: the subjectPublicKey bits, hashed with SHA-1 here.
    ByKey(&'a [u8]),
}

/// Everything that goes into tbsResponseData and around the signature.
pub(crate) struct Basic<'a> {
    pub(crate) responder: ResponderId<'a>,
    pub(crate) produced_at: OffsetDateTime,
    pub(crate) singles: Vec<Single<'a>>,
    /// The request's nonce Extension, echoed.
    pub(crate) nonce: Option<&'a [u8]>,
    /// Certificates for the `certs` field (a delegated responder's own certificate).
    pub(crate) certs: Vec<&'a [u8]>,
}

/// The AlgorithmIdentifier of signatures made by a key of `alg`, as rustls-webpki and
/// RFC 5758 / RFC 4055 / RFC 8410 write them.
pub(crate) fn signature_alg_id(alg: KeyAlg) -> &'static [u8] {
    match alg {
        // ecdsa-with-SHA256, parameters absent
        KeyAlg::EcdsaP256 => &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ],
        // sha256WithRSAEncryption, parameters NULL
        KeyAlg::Rsa2048 => &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ],
        // id-Ed25519, parameters absent
        KeyAlg::Ed25519 => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
    }
}

impl Basic<'_> {
    /// The DER OCSPResponse (status successful) carrying this BasicOCSPResponse,
    /// signed by `sign` with a key of `alg`.
    pub(crate) fn sign(
        &self,
        alg: KeyAlg,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, FixtureError>,
    ) -> Result<Vec<u8>, FixtureError> {
        let tbs = self.tbs_response_data();
        let signature = sign(&tbs)?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        let mut basic = tbs;
        basic.extend_from_slice(signature_alg_id(alg));
        basic.extend(tlv(BIT_STRING, &bits));
        if !self.certs.is_empty() {
            basic.extend(tlv(0xa0, &tlv(SEQUENCE, &self.certs.concat())));
        }
        let basic = tlv(SEQUENCE, &basic);
        let mut response_bytes = tlv(OID, OID_OCSP_BASIC);
        response_bytes.extend(tlv(OCTET_STRING, &basic));
        let mut out = tlv(ENUMERATED, &[0]);
        out.extend(tlv(0xa0, &tlv(SEQUENCE, &response_bytes)));
        Ok(tlv(SEQUENCE, &out))
    }

    fn tbs_response_data(&self) -> Vec<u8> {
        // version is v1, the DEFAULT, so it is omitted (DER).
        let mut data = match self.responder {
            ResponderId::ByName(name) => tlv(0xa1, name),
            ResponderId::ByKey(key) => tlv(0xa2, &tlv(OCTET_STRING, &HashAlg::Sha1.digest(key))),
        };
        data.extend(generalized_time(self.produced_at));
        let singles: Vec<u8> = self.singles.iter().flat_map(single_response).collect();
        data.extend(tlv(SEQUENCE, &singles));
        if let Some(nonce) = self.nonce {
            data.extend(tlv(0xa1, &tlv(SEQUENCE, nonce)));
        }
        tlv(SEQUENCE, &data)
    }
}

fn single_response(s: &Single<'_>) -> Vec<u8> {
    let mut out = s.cert_id.to_vec();
    match s.status {
        CertStatus::Good => out.extend(tlv(0x80, &[])),
        CertStatus::Revoked { at, reason } => {
            let mut info = generalized_time(at);
            // RFC 5280 §5.3.1: unspecified is better left out than written.
            if let Some(reason) = reason.filter(|r| *r != Reason::Unspecified) {
                info.extend(tlv(0xa0, &tlv(ENUMERATED, &[reason.code()])));
            }
            out.extend(tlv(0xa1, &info));
        }
        CertStatus::Unknown => out.extend(tlv(0x82, &[])),
    }
    out.extend(generalized_time(s.this_update));
    out.extend(tlv(0xa0, &generalized_time(s.next_update)));
    tlv(SEQUENCE, &out)
}

/// A DER OCSPRequest (RFC 6960 §4.1.1, unsigned, version 1) about `serials` (big-endian
/// unsigned) of the issuer whose subject Name encoding and subjectPublicKey bits are
/// given, with an optional nonce extension (RFC 8954: an OCTET STRING in extnValue).
pub(crate) fn build_request(
    issuer_subject: &[u8],
    issuer_key_bits: &[u8],
    serials: &[&[u8]],
    hash: HashAlg,
    nonce: Option<&[u8]>,
) -> Vec<u8> {
    let alg_oid: &[u8] = match hash {
        HashAlg::Sha1 => &[0x2b, 0x0e, 0x03, 0x02, 0x1a],
        HashAlg::Sha256 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
        HashAlg::Sha384 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
        HashAlg::Sha512 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
    };
    let alg = tlv(SEQUENCE, &[tlv(OID, alg_oid), tlv(0x05, &[])].concat());
    let name_hash = tlv(OCTET_STRING, &hash.digest(issuer_subject));
    let key_hash = tlv(OCTET_STRING, &hash.digest(issuer_key_bits));
    let mut requests = Vec::new();
    for serial in serials {
        let mut int = der::minimal_unsigned(serial);
        if int[0] & 0x80 != 0 {
            int.insert(0, 0);
        }
        let cert_id = tlv(
            SEQUENCE,
            &[
                alg.clone(),
                name_hash.clone(),
                key_hash.clone(),
                tlv(INTEGER, &int),
            ]
            .concat(),
        );
        requests.extend(tlv(SEQUENCE, &cert_id));
    }
    let mut tbs = tlv(SEQUENCE, &requests);
    if let Some(nonce) = nonce {
        let ext = tlv(
            SEQUENCE,
            &[
                tlv(OID, OID_OCSP_NONCE),
                tlv(OCTET_STRING, &tlv(OCTET_STRING, nonce)),
            ]
            .concat(),
        );
        tbs.extend(tlv(0xa2, &tlv(SEQUENCE, &ext)));
    }
    tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
}

/// An OCSPResponse with a non-successful status and no responseBytes.
pub(crate) fn status_only(code: u8) -> Vec<u8> {
    tlv(SEQUENCE, &tlv(ENUMERATED, &[code]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_id(serial: &[u8]) -> Vec<u8> {
        let alg = tlv(
            SEQUENCE,
            &[tlv(OID, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), tlv(0x05, &[])].concat(),
        );
        tlv(
            SEQUENCE,
            &[
                alg,
                tlv(OCTET_STRING, &[1; 20]),
                tlv(OCTET_STRING, &[2; 20]),
                tlv(INTEGER, serial),
            ]
            .concat(),
        )
    }

    #[test]
    fn parses_a_request_with_nonce() {
        let nonce = tlv(
            SEQUENCE,
            &[
                tlv(OID, OID_OCSP_NONCE),
                tlv(OCTET_STRING, &tlv(OCTET_STRING, &[7; 16])),
            ]
            .concat(),
        );
        let req = tlv(SEQUENCE, &[cert_id(&[0x00, 0x80, 0x01])].concat());
        let tbs = tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &req), tlv(0xa2, &tlv(SEQUENCE, &nonce))].concat(),
        );
        let der = tlv(SEQUENCE, &tbs);
        let parsed = parse_request(&der).expect("parses");
        assert_eq!(parsed.nonce, Some(nonce.as_slice()));
        assert_eq!(parsed.cert_ids.len(), 1);
        let id = &parsed.cert_ids[0];
        assert_eq!(id.hash, Some(HashAlg::Sha1));
        assert_eq!(id.serial.as_deref(), Some(&[0x80, 0x01][..]));
        assert_eq!(id.name_hash, &[1; 20]);
    }

    #[test]
    fn rejects_malformed_requests() {
        assert!(parse_request(&[]).is_none());
        assert!(parse_request(b"GET / HTTP/1.1").is_none());
        // No requests at all.
        let empty = tlv(SEQUENCE, &tlv(SEQUENCE, &tlv(SEQUENCE, &[])));
        assert!(parse_request(&empty).is_none());
        // A negative serial parses but matches nothing.
        let tbs = tlv(SEQUENCE, &tlv(SEQUENCE, &tlv(SEQUENCE, &cert_id(&[0xff]))));
        let der = tlv(SEQUENCE, &tbs);
        assert_eq!(
            parse_request(&der).expect("parses").cert_ids[0].serial,
            None
        );
    }

    #[test]
    fn built_requests_parse() {
        let der = build_request(
            b"name",
            b"key",
            &[&[0x80], &[0, 5]],
            HashAlg::Sha256,
            Some(b"n"),
        );
        let parsed = parse_request(&der).expect("parses");
        assert_eq!(parsed.cert_ids.len(), 2);
        assert_eq!(parsed.cert_ids[0].serial.as_deref(), Some(&[0x80][..]));
        assert_eq!(parsed.cert_ids[1].serial.as_deref(), Some(&[5][..]));
        assert_eq!(parsed.cert_ids[0].hash, Some(HashAlg::Sha256));
        assert_eq!(
            parsed.cert_ids[0].key_hash,
            HashAlg::Sha256.digest(b"key").as_slice()
        );
        assert!(parsed.nonce.is_some());
    }

    #[test]
    fn status_only_shape() {
        assert_eq!(
            status_only(status::TRY_LATER),
            vec![0x30, 0x03, 0x0a, 0x01, 0x03]
        );
    }
}
