//! The certificate fields Vigil needs beyond path validation: names, serial,
//! validity, keys, key usage and CRL distribution points (RFC 5280 §4).

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::{self, tag, Reader};
use crate::input::InputError;
use crate::revocation::Sources;
use crate::x509::{distribution_point_name, http_uri, ocsp_uris, reasons};

/// keyUsage keyCertSign as a bit of [`CertInfo::key_usage`].
pub(crate) const KU_KEY_CERT_SIGN: u16 = 1 << 5;
/// keyUsage cRLSign as a bit of [`CertInfo::key_usage`].
pub(crate) const KU_CRL_SIGN: u16 = 1 << 6;

const OID_SKI: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_CRL_DP: &[u8] = &[0x55, 0x1d, 0x1f];
const OID_AIA: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
const OID_OCSP_NOCHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];

/// One DistributionPoint of a certificate (RFC 5280 §4.2.1.13).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DistributionPoint {
    /// fullName GeneralNames, each as DER.
    pub(crate) full_names: Vec<Vec<u8>>,
    /// nameRelativeToCRLIssuer, as a DER RelativeDistinguishedName.
    pub(crate) relative_name: Option<Vec<u8>>,
    /// reasons, when the point covers only some.
    pub(crate) reasons: Option<u16>,
    /// cRLIssuer GeneralNames (each as DER): the CRL is indirect.
    pub(crate) crl_issuer: Option<Vec<Vec<u8>>>,
}

/// Parsed, owned facts about one certificate.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    /// RFC 5280 §7.1 comparison keys of subject and issuer.
    pub(crate) subject_key: Vec<u8>,
    pub(crate) issuer_key: std::sync::Arc<[u8]>,
    pub(crate) subject: String,
    pub(crate) issuer: std::sync::Arc<str>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) ski: Option<Vec<u8>>,
    pub(crate) key_usage: Option<u16>,
    pub(crate) is_ca: bool,
    /// Shared between certificates with the same points where the holder
    /// interns them (the registry does, per issuer).
    pub(crate) crl_dps: Option<std::sync::Arc<[DistributionPoint]>>,
    /// extendedKeyUsage includes id-kp-OCSPSigning.
    pub(crate) ocsp_signing: bool,
    /// id-pkix-ocsp-nocheck is present (RFC 6960 §4.2.2.2.1).
    pub(crate) ocsp_nocheck: bool,
    pub(crate) sha256: [u8; 32],
    /// SHA-256 of the SubjectPublicKeyInfo: the key identity that
    /// revocation memory and OCSP holdings are keyed by (a name can be
    /// copied by anyone; a key cannot).
    pub(crate) spki_sha256: [u8; 32],
    /// The certificate itself (DER).
    pub(crate) der: Box<[u8]>,
    /// Where subject and issuer name, serial (minimal form) and
    /// SubjectPublicKeyInfo are in [`CertInfo::der`]: kept as positions
    /// rather than copies, since a tracked connection holds its leaf's.
    spans: [Span; 4],
    /// Where the Authority Information Access extension's value is in
    /// [`CertInfo::der`], when there is one.
    aia: Option<Span>,
}

/// A range of [`CertInfo::der`].
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The position of `part` within `whole` (None when not inside it).
    fn of(whole: &[u8], part: &[u8]) -> Option<Self> {
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= whole.len()).then_some(Self {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }
}

const SUBJECT: usize = 0;
const ISSUER: usize = 1;
const SERIAL: usize = 2;
const SPKI: usize = 3;

impl CertInfo {
    pub(crate) fn parse(der: &[u8]) -> Result<Self, InputError> {
        let bad = |detail: String| InputError::Malformed {
            source: "certificate".into(),
            detail,
        };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing data after certificate".into()));
        }
        let mut ski = None;
        let mut crl_dps = None;
        let mut aia = None;
        for ext in cert.extensions() {
            match ext.oid.as_bytes() {
                OID_SKI => {
                    ski = der::single(ext.value, tag::OCTET_STRING)
                        .ok()
                        .map(<[u8]>::to_vec)
                }
                OID_CRL_DP => {
                    crl_dps = Some(
                        parse_crl_dps(ext.value)
                            .ok_or_else(|| bad("malformed cRLDistributionPoints".into()))?
                            .into(),
                    )
                }
                OID_AIA => aia = Span::of(der, ext.value),
                _ => {}
            }
        }
        let key_usage = match cert.key_usage() {
            Ok(ku) => ku.map(|ku| ku.value.flags),
            Err(e) => return Err(bad(format!("keyUsage: {e}"))),
        };
        let span = |part: &[u8]| {
            Span::of(der, part).ok_or_else(|| bad("a field lies outside the certificate".into()))
        };
        let spans = [
            span(cert.subject().as_raw())?,
            span(cert.issuer().as_raw())?,
            span(minimal_integer(cert.raw_serial()))?,
            span(cert.public_key().raw)?,
        ];
        Ok(Self {
            subject_key: crate::name::key_of(cert.subject()),
            issuer_key: crate::name::key_of(cert.issuer()).into(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string().into(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            ski,
            key_usage,
            is_ca: cert.is_ca(),
            crl_dps,
            ocsp_nocheck: cert
                .extensions()
                .iter()
                .any(|e| e.oid.as_bytes() == OID_OCSP_NOCHECK),
            ocsp_signing: matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing),
            sha256: sha256(der),
            spki_sha256: sha256(cert.public_key().raw),
            der: der.into(),
            spans,
            aia,
        })
    }

    /// The revocation endpoints it names: the http(s) fullName URIs of its
    /// CRL distribution points (RFC 5280 §4.2.1.13) and its OCSP
    /// responders (Authority Information Access, §4.2.2.1), in its order.
    /// A malformed AIA names none.
    pub(crate) fn revocation_sources(&self) -> Sources {
        let crl_urls = self
            .crl_dps
            .iter()
            .flat_map(|dps| dps.iter())
            .flat_map(|dp| dp.full_names.iter().filter_map(|n| http_uri(n)))
            .collect();
        let ocsp_urls = self
            .aia
            .and_then(|span| {
                self.der
                    .get(span.start as usize..span.end as usize)
                    .and_then(ocsp_uris)
            })
            .unwrap_or_default();
        Sources {
            crl_urls,
            ocsp_urls,
        }
    }

    fn part(&self, which: usize) -> &[u8] {
        let span = self.spans[which];
        self.der
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    /// The subject Name, DER.
    pub(crate) fn subject_der(&self) -> &[u8] {
        self.part(SUBJECT)
    }

    /// The issuer Name, DER.
    pub(crate) fn issuer_der(&self) -> &[u8] {
        self.part(ISSUER)
    }

    /// The serial number: minimal INTEGER content octets.
    pub(crate) fn serial(&self) -> &[u8] {
        self.part(SERIAL)
    }

    /// The SubjectPublicKeyInfo, DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        self.part(SPKI)
    }

    /// Self-issued: subject and issuer are the same name (RFC 5280 §3.2).
    pub(crate) fn self_issued(&self) -> bool {
        self.subject_key[..] == self.issuer_key[..]
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint (RFC 5280 §4.2.1.13).
pub(crate) fn parse_crl_dps(value: &[u8]) -> Option<Vec<DistributionPoint>> {
    let mut out = Vec::new();
    let mut r = Reader::new(der::single(value, tag::SEQUENCE).ok()?);
    while !r.is_empty() {
        let mut dp = Reader::new(r.read(tag::SEQUENCE).ok()?);
        let mut point = DistributionPoint::default();
        if let Some(name) = dp.read_optional(0xa0).ok()? {
            let (names, relative) = distribution_point_name(name).ok()?;
            point.full_names = names;
            point.relative_name = relative;
        }
        if let Some(bits) = dp.read_optional(0x81).ok()? {
            point.reasons = Some(reasons::from_bit_string(bits)?);
        }
        if let Some(names) = dp.read_optional(0xa2).ok()? {
            let mut g = Reader::new(names);
            let mut list = Vec::new();
            while !g.is_empty() {
                list.push(g.read_any().ok()?.2.to_vec());
            }
            point.crl_issuer = Some(list);
        }
        dp.finish().ok()?;
        out.push(point);
    }
    Some(out)
}

/// Whether the certificate's signature verifies with `spki` (RFC 5280
/// §6.1.3 (a)(1)); used for separate CRL-signing certificates, which are not
/// part of the path webpki validated.
pub(crate) fn signed_by(cert_der: &[u8], spki: &[u8]) -> bool {
    let parts = || -> Option<(&[u8], &[u8], &[u8])> {
        let mut outer = Reader::new(der::single(cert_der, tag::SEQUENCE).ok()?);
        let tbs = outer.read_element(tag::SEQUENCE).ok()?;
        let alg = outer.read(tag::SEQUENCE).ok()?;
        let bits = outer.read(tag::BIT_STRING).ok()?;
        outer.finish().ok()?;
        match bits.split_first() {
            Some((0, sig)) => Some((tbs, alg, sig)),
            _ => None,
        }
    };
    parts().is_some_and(|(tbs, alg, sig)| {
        crate::revocation::crl::verify_signature(spki, alg, tbs, sig).is_ok()
    })
}

/// The subjectPublicKey BIT STRING value of a SubjectPublicKeyInfo (what
/// OCSP key hashes cover, RFC 6960 §4.1.1).
pub(crate) fn public_key_bits(spki: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(der::single(spki, tag::SEQUENCE).ok()?);
    r.read(tag::SEQUENCE).ok()?;
    let bits = r.read(tag::BIT_STRING).ok()?;
    match bits.split_first() {
        Some((0, key)) => Some(key),
        _ => None,
    }
}

/// The minimal two's-complement form of INTEGER content octets: a
/// certificate whose serial carries redundant leading octets (not DER, but
/// accepted by path validators) still matches CRL entries and OCSP CertIDs,
/// which are parsed strictly.
pub(crate) fn minimal_integer(mut value: &[u8]) -> &[u8] {
    while let [first, second, ..] = value {
        if (*first == 0x00 && second & 0x80 == 0) || (*first == 0xff && second & 0x80 != 0) {
            value = &value[1..];
        } else {
            break;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::minimal_integer;

    #[test]
    fn integers_are_reduced_to_minimal_form() {
        assert_eq!(minimal_integer(&[0x00, 0x00, 0x01]), &[0x01]);
        assert_eq!(minimal_integer(&[0x00, 0x80]), &[0x00, 0x80]);
        assert_eq!(minimal_integer(&[0xff, 0xff, 0x80]), &[0x80]);
        assert_eq!(minimal_integer(&[0xff, 0x7f]), &[0xff, 0x7f]);
        assert_eq!(minimal_integer(&[0x00]), &[0x00]);
        assert_eq!(minimal_integer(&[]), &[] as &[u8]);
    }
}
