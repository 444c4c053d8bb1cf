//! OCSP responses (RFC 6960 §4.2, profiled by RFC 5019): parsing and
//! verification of responses handed to the verifier (stapled, or given on
//! the command line). Fetching lives in the runtime, not here.

use std::fmt;

use super::crl::{for_each_extension, verify_signature, CrlError};
use super::Reason;
use crate::cert::CertInfo;
use crate::der::{self, tag, DerError, Reader};

mod oid {
    /// id-pkix-ocsp-basic (RFC 6960 §4.2.1)
    pub(super) const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    /// id-pkix-ocsp-nonce (RFC 6960 §4.4.1)
    pub(super) const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    pub(super) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub(super) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub(super) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub(super) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
}

/// Why an OCSP response can't be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OcspError {
    /// Not a DER OCSPResponse.
    Malformed {
        /// Which part failed and how.
        detail: String,
    },
    /// responseStatus other than successful (RFC 6960 §4.2.1), e.g. `tryLater`.
    NotSuccessful {
        /// The status name.
        status: &'static str,
    },
    /// A responseType other than id-pkix-ocsp-basic.
    UnsupportedResponseType,
    /// No supported algorithm for the signature and the signer's key.
    UnsupportedSignatureAlgorithm,
    /// The signature does not verify with the responder's key.
    BadSignature,
    /// The responder is neither the issuer nor a certificate the issuer
    /// delegated OCSP signing to (RFC 6960 §4.2.2.2).
    UnauthorizedResponder {
        /// Why the responder was refused.
        detail: String,
    },
    /// Older than the answer already held for the same source (RFC 6960
    /// §3.2 (4): the most recent answer counts; holdings only move forward).
    Older {
        /// thisUpdate of the answer held, Unix seconds.
        held: i64,
        /// thisUpdate of the answer offered, Unix seconds.
        offered: i64,
    },
    /// A stapled answer that speaks of no certificate of the peer's
    /// validated path (or the path does not validate): not admitted.
    NotForPath {
        /// Which CertID or path check failed, for logs.
        detail: String,
    },
}

impl fmt::Display for OcspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { detail } => write!(f, "malformed OCSP response: {detail}"),
            Self::NotSuccessful { status } => write!(f, "OCSP responder answered {status}"),
            Self::UnsupportedResponseType => f.write_str("unsupported OCSP response type"),
            Self::UnsupportedSignatureAlgorithm => {
                f.write_str("unsupported OCSP signature algorithm for the responder's key")
            }
            Self::BadSignature => f.write_str("OCSP response signature does not verify"),
            Self::UnauthorizedResponder { detail } => {
                write!(f, "OCSP responder not authorized: {detail}")
            }
            Self::Older { held, offered } => write!(
                f,
                "OCSP answer older than the one held (thisUpdate {} < {})",
                crate::text::rfc3339(*offered),
                crate::text::rfc3339(*held)
            ),
            Self::NotForPath { detail } => write!(f, "stapled OCSP answer not admitted: {detail}"),
        }
    }
}

impl std::error::Error for OcspError {}

fn malformed(what: &str) -> impl Fn(DerError) -> OcspError + '_ {
    move |e| OcspError::Malformed {
        detail: format!("{what}: {e}"),
    }
}

/// The hash of a CertID (RFC 6960 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertIdHash {
    /// SHA-1, the RFC 5019 default.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl CertIdHash {
    fn from_alg(alg: &[u8]) -> Option<Self> {
        let mut r = Reader::new(alg);
        let id = r.read(tag::OID).ok()?;
        // Parameters, when present, must be NULL.
        if !r.is_empty() && !r.read(0x05).ok()?.is_empty() {
            return None;
        }
        r.finish().ok()?;
        Some(match id {
            oid::SHA1 => Self::Sha1,
            oid::SHA256 => Self::Sha256,
            oid::SHA384 => Self::Sha384,
            oid::SHA512 => Self::Sha512,
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

/// certStatus of one SingleResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspCertStatus {
    /// good
    Good,
    /// revoked, at this time (Unix seconds), with an optional reason.
    Revoked {
        /// revocationTime
        at: i64,
        /// revocationReason
        reason: Option<Reason>,
    },
    /// unknown: the responder does not know the certificate. Not good.
    Unknown,
}

/// One SingleResponse (RFC 6960 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponse {
    hash: Option<CertIdHash>,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
    /// The answer.
    pub status: OcspCertStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: Option<i64>,
}

impl SingleResponse {
    /// Whether this answer is about `cert` issued by `issuer` (CertID match).
    pub(crate) fn is_for(&self, cert: &CertInfo, issuer: &CertInfo) -> bool {
        let Some(hash) = self.hash else {
            return false;
        };
        self.serial == cert.serial()
            && hash.digest(issuer.subject_der()) == self.name_hash
            && crate::cert::public_key_bits(issuer.spki_der())
                .is_some_and(|key| hash.digest(key) == self.key_hash)
    }
}

/// A successful basic OCSP response, parsed but not verified.
pub struct ParsedOcsp<'a> {
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    responder: Responder<'a>,
    produced_at: i64,
    responses: Vec<SingleResponse>,
    certs: Vec<&'a [u8]>,
    nonce: Option<Vec<u8>>,
}

enum Responder<'a> {
    ByName(&'a [u8]),
    ByKey(&'a [u8]),
}

impl<'a> ParsedOcsp<'a> {
    /// Parses an OCSPResponse (RFC 6960 §4.2.1). A response whose status is
    /// not `successful` is an [`OcspError::NotSuccessful`].
    pub fn from_der(der: &'a [u8]) -> Result<Self, OcspError> {
        let mut r =
            Reader::new(der::single(der, tag::SEQUENCE).map_err(malformed("OCSPResponse"))?);
        let status = r
            .read(tag::ENUMERATED)
            .map_err(malformed("responseStatus"))?;
        match status {
            [0] => {}
            [1] => {
                return Err(OcspError::NotSuccessful {
                    status: "malformedRequest",
                })
            }
            [2] => {
                return Err(OcspError::NotSuccessful {
                    status: "internalError",
                })
            }
            [3] => return Err(OcspError::NotSuccessful { status: "tryLater" }),
            [5] => {
                return Err(OcspError::NotSuccessful {
                    status: "sigRequired",
                })
            }
            [6] => {
                return Err(OcspError::NotSuccessful {
                    status: "unauthorized",
                })
            }
            _ => {
                return Err(OcspError::Malformed {
                    detail: "unknown responseStatus".into(),
                })
            }
        }
        let bytes = r.read(tag::CONTEXT_0).map_err(malformed("responseBytes"))?;
        r.finish().map_err(malformed("OCSPResponse"))?;
        let mut rb =
            Reader::new(der::single(bytes, tag::SEQUENCE).map_err(malformed("ResponseBytes"))?);
        let response_type = rb.read(tag::OID).map_err(malformed("responseType"))?;
        let response = rb.read(tag::OCTET_STRING).map_err(malformed("response"))?;
        rb.finish().map_err(malformed("ResponseBytes"))?;
        if response_type != oid::OCSP_BASIC {
            return Err(OcspError::UnsupportedResponseType);
        }

        let mut basic = Reader::new(
            der::single(response, tag::SEQUENCE).map_err(malformed("BasicOCSPResponse"))?,
        );
        let tbs = basic
            .read_element(tag::SEQUENCE)
            .map_err(malformed("tbsResponseData"))?;
        let sig_alg = basic
            .read(tag::SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        let sig_bits = basic
            .read(tag::BIT_STRING)
            .map_err(malformed("signature"))?;
        let mut certs = Vec::new();
        if let Some(list) = basic
            .read_optional(tag::CONTEXT_0)
            .map_err(malformed("certs"))?
        {
            let mut c = Reader::new(der::single(list, tag::SEQUENCE).map_err(malformed("certs"))?);
            while !c.is_empty() {
                certs.push(c.read_element(tag::SEQUENCE).map_err(malformed("certs"))?);
            }
        }
        basic.finish().map_err(malformed("BasicOCSPResponse"))?;
        let signature = match sig_bits.split_first() {
            Some((0, sig)) => sig,
            _ => &[][..],
        };

        let mut data =
            Reader::new(der::single(tbs, tag::SEQUENCE).map_err(malformed("ResponseData"))?);
        if let Some(version) = data
            .read_optional(tag::CONTEXT_0)
            .map_err(malformed("version"))?
        {
            if der::single(version, tag::INTEGER).map_err(malformed("version"))? != [0] {
                return Err(OcspError::Malformed {
                    detail: "unsupported ResponseData version".into(),
                });
            }
        }
        let responder = match data.read_any().map_err(malformed("responderID"))? {
            (0xa1, name, _) => {
                der::single(name, tag::SEQUENCE).map_err(malformed("responderID"))?;
                Responder::ByName(name)
            }
            (0xa2, key, _) => Responder::ByKey(
                der::single(key, tag::OCTET_STRING).map_err(malformed("responderID"))?,
            ),
            _ => {
                return Err(OcspError::Malformed {
                    detail: "responderID is neither byName nor byKey".into(),
                })
            }
        };
        let produced_at = read_generalized(&mut data).map_err(malformed("producedAt"))?;
        let list = data.read(tag::SEQUENCE).map_err(malformed("responses"))?;
        let mut nonce = None;
        if let Some(exts) = data
            .read_optional(0xa1)
            .map_err(malformed("responseExtensions"))?
        {
            let list = der::single(exts, tag::SEQUENCE).map_err(malformed("responseExtensions"))?;
            check_extensions(list)?;
            for_each_extension(list, |id, _, value| {
                if id == oid::OCSP_NONCE {
                    // RFC 8954: an OCTET STRING inside extnValue; some
                    // responders put the raw bytes there instead.
                    nonce = Some(
                        der::single(value, tag::OCTET_STRING)
                            .unwrap_or(value)
                            .to_vec(),
                    );
                }
                Ok(())
            })
            .map_err(|e| OcspError::Malformed {
                detail: e.to_string(),
            })?;
        }
        data.finish().map_err(malformed("ResponseData"))?;

        let mut responses = Vec::new();
        let mut l = Reader::new(list);
        while !l.is_empty() {
            responses.push(single_response(
                l.read(tag::SEQUENCE).map_err(malformed("SingleResponse"))?,
            )?);
        }
        Ok(Self {
            tbs,
            sig_alg,
            signature,
            responder,
            produced_at,
            responses,
            certs,
            nonce,
        })
    }

    /// producedAt, Unix seconds.
    pub fn produced_at(&self) -> i64 {
        self.produced_at
    }

    /// The signed bytes, the signature algorithm and the signature, for
    /// measuring the signature check alone.
    pub fn signed_parts(&self) -> (&[u8], &[u8], &[u8]) {
        (self.tbs, self.sig_alg, self.signature)
    }

    /// Verifies the response for certificates issued by `issuer_der` at
    /// `at` (RFC 6960 §3.2, §4.2.2.2: issuer or delegated responder) and
    /// returns its answers. Freshness and CertID matching are the caller's
    /// (the verifier does both).
    pub fn verify_for_issuer(
        &self,
        issuer_der: &[u8],
        at: std::time::SystemTime,
    ) -> Result<&[SingleResponse], OcspError> {
        let issuer = CertInfo::parse(issuer_der).map_err(|e| OcspError::Malformed {
            detail: format!("issuer: {e}"),
        })?;
        let now = at
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify(&issuer, now)?;
        Ok(&self.responses)
    }

    /// The answer about `cert_der` issued by `issuer_der` (CertID match),
    /// if the response has one. Unverified until
    /// [`ParsedOcsp::verify_for_issuer`] succeeds.
    pub fn status_for(&self, cert_der: &[u8], issuer_der: &[u8]) -> Option<&SingleResponse> {
        let cert = CertInfo::parse(cert_der).ok()?;
        let issuer = CertInfo::parse(issuer_der).ok()?;
        self.responses.iter().find(|r| r.is_for(&cert, &issuer))
    }

    /// The certificates the response carries (DER), e.g. a delegated
    /// responder's.
    pub(crate) fn certs(&self) -> &[&'a [u8]] {
        &self.certs
    }

    /// The nonce the responder echoed (RFC 6960 §4.4.1), if any.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// Every SingleResponse.
    pub fn responses(&self) -> &[SingleResponse] {
        &self.responses
    }

    /// RFC 6960 §4.2.2.2 and §3.2: the response is signed by the issuer of
    /// the certificates it answers for, or by a responder certificate that
    /// the issuer signed, that carries id-kp-OCSPSigning and is valid at
    /// `now`. Returns the delegated responder's certificate, if one signed.
    pub(crate) fn verify(
        &self,
        issuer: &CertInfo,
        now: i64,
    ) -> Result<Option<CertInfo>, OcspError> {
        if self.responder_is(issuer) {
            return self.check_signature(issuer.spki_der()).map(|()| None);
        }
        let mut why = "no certificate in the response matches the responder ID".to_owned();
        for der in &self.certs {
            let Ok(candidate) = CertInfo::parse(der) else {
                continue;
            };
            if !self.responder_is(&candidate) {
                continue;
            }
            if candidate.issuer_key[..] != issuer.subject_key[..]
                || !crate::cert::signed_by(der, issuer.spki_der())
            {
                why = format!(
                    "responder {} is not certified by the issuer",
                    candidate.subject
                );
                continue;
            }
            if !candidate.ocsp_signing {
                why = format!("responder {} lacks id-kp-OCSPSigning", candidate.subject);
                continue;
            }
            if now < candidate.not_before || now > candidate.not_after {
                why = format!(
                    "responder certificate {} is not valid now",
                    candidate.subject
                );
                continue;
            }
            return self
                .check_signature(candidate.spki_der())
                .map(|()| Some(candidate));
        }
        Err(OcspError::UnauthorizedResponder { detail: why })
    }

    fn responder_is(&self, cert: &CertInfo) -> bool {
        match self.responder {
            Responder::ByName(name) => crate::name::names_match(name, cert.subject_der()),
            // KeyHash is SHA-1 of the subjectPublicKey BIT STRING value.
            Responder::ByKey(hash) => crate::cert::public_key_bits(cert.spki_der())
                .is_some_and(|key| CertIdHash::Sha1.digest(key) == hash),
        }
    }

    fn check_signature(&self, spki: &[u8]) -> Result<(), OcspError> {
        verify_signature(spki, self.sig_alg, self.tbs, self.signature).map_err(|e| match e {
            CrlError::UnsupportedSignatureAlgorithm => OcspError::UnsupportedSignatureAlgorithm,
            _ => OcspError::BadSignature,
        })
    }
}

/// SingleResponse (RFC 6960 §4.2.1).
fn single_response(value: &[u8]) -> Result<SingleResponse, OcspError> {
    let mut r = Reader::new(value);
    let mut id = Reader::new(r.read(tag::SEQUENCE).map_err(malformed("CertID"))?);
    let alg = id.read(tag::SEQUENCE).map_err(malformed("hashAlgorithm"))?;
    let name_hash = id
        .read(tag::OCTET_STRING)
        .map_err(malformed("issuerNameHash"))?;
    let key_hash = id
        .read(tag::OCTET_STRING)
        .map_err(malformed("issuerKeyHash"))?;
    let serial = der::integer(id.read(tag::INTEGER).map_err(malformed("serialNumber"))?)
        .map_err(malformed("serialNumber"))?;
    id.finish().map_err(malformed("CertID"))?;
    let status = match r.read_any().map_err(malformed("certStatus"))? {
        (0x80, [], _) => OcspCertStatus::Good,
        (0xa1, info, _) => {
            let mut i = Reader::new(info);
            let at = read_generalized(&mut i).map_err(malformed("revocationTime"))?;
            let reason = match i
                .read_optional(tag::CONTEXT_0)
                .map_err(malformed("revocationReason"))?
            {
                None => None,
                Some(r) => {
                    match der::single(r, tag::ENUMERATED).map_err(malformed("revocationReason"))? {
                        [c] => Some(Reason::from_code(*c).ok_or(OcspError::Malformed {
                            detail: "unknown revocationReason".into(),
                        })?),
                        _ => {
                            return Err(OcspError::Malformed {
                                detail: "bad revocationReason".into(),
                            })
                        }
                    }
                }
            };
            i.finish().map_err(malformed("RevokedInfo"))?;
            OcspCertStatus::Revoked { at, reason }
        }
        (0x82, [], _) => OcspCertStatus::Unknown,
        _ => {
            return Err(OcspError::Malformed {
                detail: "bad certStatus".into(),
            })
        }
    };
    let this_update = read_generalized(&mut r).map_err(malformed("thisUpdate"))?;
    let next_update = match r
        .read_optional(tag::CONTEXT_0)
        .map_err(malformed("nextUpdate"))?
    {
        Some(v) => {
            let mut n = Reader::new(v);
            let t = read_generalized(&mut n).map_err(malformed("nextUpdate"))?;
            n.finish().map_err(malformed("nextUpdate"))?;
            Some(t)
        }
        None => None,
    };
    if let Some(exts) = r
        .read_optional(0xa1)
        .map_err(malformed("singleExtensions"))?
    {
        check_extensions(der::single(exts, tag::SEQUENCE).map_err(malformed("singleExtensions"))?)?;
    }
    r.finish().map_err(malformed("SingleResponse"))?;
    Ok(SingleResponse {
        hash: CertIdHash::from_alg(alg),
        name_hash: name_hash.to_vec(),
        key_hash: key_hash.to_vec(),
        serial: serial.to_vec(),
        status,
        this_update,
        next_update,
    })
}

/// Unknown critical extensions make a response unusable (RFC 5280 §4.2
/// semantics, which RFC 6960 §4.4 extensions follow).
fn check_extensions(list: &[u8]) -> Result<(), OcspError> {
    for_each_extension(list, |id, critical, _| {
        if critical && id != oid::OCSP_NONCE {
            return Err(CrlError::Malformed {
                detail: format!(
                    "unsupported critical OCSP extension {}",
                    super::crl::dotted(id)
                ),
            });
        }
        Ok(())
    })
    .map_err(|e| OcspError::Malformed {
        detail: e.to_string(),
    })
}

fn read_generalized(r: &mut Reader<'_>) -> Result<i64, DerError> {
    let value = r.read(tag::GENERALIZED_TIME)?;
    der::time(tag::GENERALIZED_TIME, value)
}

/// Builds a DER OCSPRequest (RFC 6960 §4.1.1, profiled by RFC 5019 §2.1:
/// one request, unsigned) for `cert` issued by `issuer`, with the CertID
/// hashed by `hash` and, when given, a nonce extension (RFC 8954: the
/// value is an OCTET STRING of 1 to 32 octets).
pub fn build_request(
    cert_der: &[u8],
    issuer_der: &[u8],
    hash: CertIdHash,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, crate::input::InputError> {
    let cert = CertInfo::parse(cert_der)?;
    let issuer = CertInfo::parse(issuer_der)?;
    let key = crate::cert::public_key_bits(issuer.spki_der()).ok_or_else(|| {
        crate::input::InputError::Malformed {
            source: "issuer certificate".into(),
            detail: "unreadable subjectPublicKey".into(),
        }
    })?;
    let alg_oid = match hash {
        CertIdHash::Sha1 => oid::SHA1,
        CertIdHash::Sha256 => oid::SHA256,
        CertIdHash::Sha384 => oid::SHA384,
        CertIdHash::Sha512 => oid::SHA512,
    };
    let mut alg = der::encode(tag::OID, alg_oid);
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut cert_id = der::encode(tag::SEQUENCE, &alg);
    cert_id.extend(der::encode(
        tag::OCTET_STRING,
        &hash.digest(issuer.subject_der()),
    ));
    cert_id.extend(der::encode(tag::OCTET_STRING, &hash.digest(key)));
    cert_id.extend(der::encode(tag::INTEGER, cert.serial()));
    let request = der::encode(tag::SEQUENCE, &der::encode(tag::SEQUENCE, &cert_id));
    let mut tbs = der::encode(tag::SEQUENCE, &request);
    if let Some(nonce) = nonce {
        let mut ext = der::encode(tag::OID, oid::OCSP_NONCE);
        ext.extend(der::encode(
            tag::OCTET_STRING,
            &der::encode(tag::OCTET_STRING, nonce),
        ));
        let exts = der::encode(tag::SEQUENCE, &der::encode(tag::SEQUENCE, &ext));
        tbs.extend(der::encode(0xa2, &exts));
    }
    Ok(der::encode(
        tag::SEQUENCE,
        &der::encode(tag::SEQUENCE, &tbs),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_back_with_the_expected_cert_id() {
        let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
        let (leaf, issuer) = (&pki.client.der, &pki.intermediate.cert.der);
        for (hash, nonce) in [
            (CertIdHash::Sha1, None),
            (CertIdHash::Sha256, Some(&[7u8; 16][..])),
        ] {
            let req = build_request(leaf, issuer, hash, nonce).unwrap();
            // OCSPRequest > TBSRequest > requestList > Request > CertID
            let tbs = der::single(&req, tag::SEQUENCE).unwrap();
            let mut t = Reader::new(der::single(tbs, tag::SEQUENCE).unwrap());
            let list = t.read(tag::SEQUENCE).unwrap();
            let exts = t.read_optional(0xa2).unwrap();
            assert_eq!(exts.is_some(), nonce.is_some());
            let request = der::single(list, tag::SEQUENCE).unwrap();
            let mut id = Reader::new(der::single(request, tag::SEQUENCE).unwrap());
            assert_eq!(
                CertIdHash::from_alg(id.read(tag::SEQUENCE).unwrap()),
                Some(hash)
            );
            let cert = CertInfo::parse(leaf).unwrap();
            let issuer = CertInfo::parse(issuer).unwrap();
            let single = SingleResponse {
                hash: Some(hash),
                name_hash: id.read(tag::OCTET_STRING).unwrap().to_vec(),
                key_hash: id.read(tag::OCTET_STRING).unwrap().to_vec(),
                serial: id.read(tag::INTEGER).unwrap().to_vec(),
                status: OcspCertStatus::Good,
                this_update: 0,
                next_update: None,
            };
            assert!(single.is_for(&cert, &issuer));
        }
    }
}
