//! What the responder knows about one CA: its keys, the serials it issued, its
//! revocations and its current CRL; and how it signs CRLs and OCSP answers.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use rcgen::{Issuer, KeyPair, SigningKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::{Duration, OffsetDateTime};

use super::wire::{self, Basic, CertStatus, Request, ResponderId, Single};
use super::{OcspSigner, Publication, ResponderIdKind};
use crate::ca::{normalize_time, sign_crl};
use crate::der::{self, Reader};
use crate::keys::{generate_key, KeySource};
use crate::{
    Ca, Cert, CertSpec, Crl, CrlSpec, FixtureError, KeyAlg, LeafUsage, PkiOptions, Reason,
    RevokedEntry, RSA_POOL_SIZE,
};

/// A revocation as the responder records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Revocation {
    pub(crate) at: OffsetDateTime,
    pub(crate) reason: Option<Reason>,
}

/// The CRL currently served, with its HTTP validators.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub(crate) crl: Crl,
    /// `crl.der`, cheap to clone into responses.
    pub(crate) body: axum::body::Bytes,
    pub(crate) etag: String,
    pub(crate) last_modified: OffsetDateTime,
    pub(crate) published: Instant,
}

impl Served {
    fn new(crl: Crl, last_modified: OffsetDateTime) -> Self {
        Self {
            etag: etag(&crl.der),
            body: axum::body::Bytes::from(crl.der.clone()),
            crl,
            last_modified,
            published: Instant::now(),
        }
    }
}

/// A strong entity tag for a body: a prefix of its SHA-256.
pub(crate) fn etag(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!("\"{}\"", der::hex(&digest.as_ref()[..12]))
}

/// A key that can sign, with its certificate's subject and public key.
struct Signer {
    key: KeyPair,
    alg: KeyAlg,
    cert_der: Vec<u8>,
    subject: Vec<u8>,
    key_bits: Vec<u8>,
}

impl Signer {
    fn from_cert(cert: &Cert) -> Result<Self, FixtureError> {
        let (subject, key_bits) = der::cert_subject_and_key(&cert.der).ok_or_else(|| {
            FixtureError::Generation(format!("{}: cannot read subject and key", cert.name))
        })?;
        Ok(Self {
            key: load_key(cert)?,
            alg: cert.alg,
            cert_der: cert.der.clone(),
            subject: subject.to_vec(),
            key_bits: key_bits.to_vec(),
        })
    }

    fn responder_id(&self, kind: ResponderIdKind) -> ResponderId<'_> {
        match kind {
            ResponderIdKind::ByKey => ResponderId::ByKey(&self.key_bits),
            ResponderIdKind::ByName => ResponderId::ByName(&self.subject),
        }
    }
}

fn load_key(cert: &Cert) -> Result<KeyPair, FixtureError> {
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.as_slice()),
        cert.alg.signature_algorithm(),
    )
    .map_err(|e| FixtureError::generation(&format!("loading the key of {}", cert.name), e))
}

/// How one OCSP answer is to be made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OcspParams {
    pub(crate) signer: OcspSigner,
    pub(crate) responder_id: ResponderIdKind,
    pub(crate) validity: Duration,
    /// thisUpdate/nextUpdate moved into the past (nextUpdate = now - 1 h).
    pub(crate) stale: bool,
    /// Signed with the unrelated key while naming the usual signer.
    pub(crate) wrong_signer: bool,
}

/// One CA served by the responder.
pub(crate) struct CaState {
    role: String,
    ca: Signer,
    /// Signs CRLs with the CA's real key.
    issuer: Issuer<'static, KeyPair>,
    /// The CA's name and key identifier with an unrelated key of the same algorithm.
    impostor: Issuer<'static, KeyPair>,
    key_id: Vec<u8>,
    delegate: Signer,
    delegate_cert: Cert,
    known: HashSet<Vec<u8>>,
    revoked: BTreeMap<Vec<u8>, Revocation>,
    served: Served,
}

impl CaState {
    /// State for `ca`, starting from `crl` (its entries become the revocations and it is
    /// served as is) or, without one, from a fresh empty CRL number 1 signed at `now`.
    /// `base_url` goes into the delegated responder certificate made here.
    pub(crate) fn new(
        ca: &Ca,
        crl: Option<&Crl>,
        now: OffsetDateTime,
        crl_validity: Duration,
        base_url: &str,
    ) -> Result<Self, FixtureError> {
        let role = ca.name().to_string();
        let cert_der = rustls_pki_types::CertificateDer::from(ca.cert.der.as_slice());
        let issuer = Issuer::from_ca_cert_der(&cert_der, load_key(&ca.cert)?)
            .map_err(|e| FixtureError::generation(&format!("CRL signer of {role}"), e))?;
        let impostor = Issuer::from_ca_cert_der(&cert_der, unrelated_key(&ca.cert)?)
            .map_err(|e| FixtureError::generation(&format!("impostor of {role}"), e))?;
        let delegate_opts = PkiOptions {
            alg: ca.cert.alg,
            base_url: base_url.to_string(),
            now,
        };
        let delegate_cert = ca.issue_leaf(
            &CertSpec::leaf(
                &format!("{role}-ocsp"),
                &format!("OCSP responder for {role}"),
                &delegate_opts,
            )
            .with_usage(LeafUsage::OcspSigning),
        )?;
        let key_id = ca.key_id().to_vec();
        let mut revoked = BTreeMap::new();
        let served = match crl {
            Some(crl) => {
                let entries = crl_entries(&crl.der).ok_or_else(|| {
                    FixtureError::invalid(format!("{}: cannot read its entries", crl.name))
                })?;
                for entry in entries {
                    let revocation = Revocation {
                        at: entry.revoked_at,
                        reason: entry.reason,
                    };
                    revoked.insert(entry.serial, revocation);
                }
                Served::new(crl.clone(), crl.this_update)
            }
            None => {
                let crl = sign_entries(
                    &issuer,
                    &key_id,
                    &role,
                    &revoked,
                    now,
                    now + crl_validity,
                    1,
                )?;
                Served::new(crl, now)
            }
        };
        Ok(Self {
            ca: Signer::from_cert(&ca.cert)?,
            delegate: Signer::from_cert(&delegate_cert)?,
            known: HashSet::from([delegate_cert.serial.clone()]),
            delegate_cert,
            issuer,
            impostor,
            key_id,
            revoked,
            served,
            role,
        })
    }

    pub(crate) fn served(&self) -> &Served {
        &self.served
    }

    pub(crate) fn delegate_cert(&self) -> &Cert {
        &self.delegate_cert
    }

    /// Remembers `serial` as issued by this CA, so OCSP answers `good` rather than
    /// `unknown` for it.
    pub(crate) fn register(&mut self, serial: &[u8]) {
        self.known.insert(der::minimal_unsigned(serial));
    }

    pub(crate) fn revoke(&mut self, serial: &[u8], revocation: Revocation) {
        let serial = der::minimal_unsigned(serial);
        self.known.insert(serial.clone());
        self.revoked.insert(serial, revocation);
    }

    /// Whether an entry was removed.
    pub(crate) fn unrevoke(&mut self, serial: &[u8]) -> bool {
        self.revoked
            .remove(&der::minimal_unsigned(serial))
            .is_some()
    }

    /// Signs and serves the next CRL: number + 1, thisUpdate `now`, nextUpdate
    /// `now + validity`. Last-Modified strictly increases from one CRL to the next, even
    /// within one second, so that If-Modified-Since never hides a new CRL.
    pub(crate) fn publish(
        &mut self,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Publication, FixtureError> {
        let crl = self.sign(
            &self.issuer,
            now,
            now + validity,
            self.served.crl.number + 1,
        )?;
        let last_modified = now.max(self.served.last_modified + Duration::seconds(1));
        self.served = Served::new(crl, last_modified);
        Ok(self.publication())
    }

    pub(crate) fn publication(&self) -> Publication {
        Publication {
            ca: self.role.clone(),
            crl_number: self.served.crl.number,
            this_update: self.served.crl.this_update,
            next_update: self.served.crl.next_update,
            at: self.served.published,
        }
    }

    /// The current revocations re-signed with thisUpdate `now - validity - 1 h` and
    /// nextUpdate `now - 1 h`, under the current CRL number.
    pub(crate) fn stale_crl(
        &self,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Crl, FixtureError> {
        let next = now - Duration::hours(1);
        self.sign(&self.issuer, next - validity, next, self.served.crl.number)
    }

    /// The current CRL's content signed by an unrelated key under the CA's name and
    /// authorityKeyIdentifier.
    pub(crate) fn forged_crl(&self) -> Result<Crl, FixtureError> {
        let c = &self.served.crl;
        self.sign(&self.impostor, c.this_update, c.next_update, c.number)
    }

    /// The current CRL with its cRLNumber broken as `fault` says, signed by the CA's key.
    pub(crate) fn nonconforming_crl(
        &self,
        fault: crate::CrlNumberFault,
    ) -> Result<Vec<u8>, FixtureError> {
        crate::ca::with_crl_number_fault(&self.served.crl.der, fault, self.issuer.key())
    }

    fn sign(
        &self,
        issuer: &Issuer<'static, KeyPair>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<Crl, FixtureError> {
        sign_entries(
            issuer,
            &self.key_id,
            &self.role,
            &self.revoked,
            this_update,
            next_update,
            number,
        )
    }

    /// The DER OCSPResponse for `request`, which was sent to this CA's URL: `unauthorized`
    /// when a CertID names another issuer (or a hash this responder does not compute),
    /// else one SingleResponse per CertID.
    pub(crate) fn answer(
        &self,
        request: &Request<'_>,
        now: OffsetDateTime,
        params: OcspParams,
    ) -> Result<Vec<u8>, FixtureError> {
        let now = normalize_time(now);
        let (this_update, next_update) = if params.stale {
            let next = now - Duration::hours(1);
            (next - params.validity, next)
        } else {
            (now, now + params.validity)
        };
        let mut singles = Vec::with_capacity(request.cert_ids.len());
        for id in &request.cert_ids {
            let Some(hash) = id.hash else {
                return Ok(wire::status_only(wire::status::UNAUTHORIZED));
            };
            if hash.digest(&self.ca.subject) != id.name_hash
                || hash.digest(&self.ca.key_bits) != id.key_hash
            {
                return Ok(wire::status_only(wire::status::UNAUTHORIZED));
            }
            let status = match &id.serial {
                Some(serial) => match self.revoked.get(serial) {
                    Some(r) => CertStatus::Revoked {
                        at: r.at,
                        reason: r.reason,
                    },
                    None if self.known.contains(serial) => CertStatus::Good,
                    None => CertStatus::Unknown,
                },
                None => CertStatus::Unknown,
            };
            singles.push(Single {
                cert_id: id.der,
                status,
                this_update,
                next_update,
            });
        }
        let signer = match params.signer {
            OcspSigner::Ca => &self.ca,
            OcspSigner::Delegated => &self.delegate,
        };
        let basic = Basic {
            responder: signer.responder_id(params.responder_id),
            produced_at: this_update,
            singles,
            nonce: request.nonce,
            certs: match params.signer {
                OcspSigner::Ca => Vec::new(),
                OcspSigner::Delegated => vec![signer.cert_der.as_slice()],
            },
        };
        let key = if params.wrong_signer {
            self.impostor.key()
        } else {
            &signer.key
        };
        basic.sign(signer.alg, |tbs| {
            key.sign(tbs)
                .map_err(|e| FixtureError::generation("signing an OCSP response", e))
        })
    }
}

fn sign_entries(
    issuer: &Issuer<'static, KeyPair>,
    key_id: &[u8],
    role: &str,
    revoked: &BTreeMap<Vec<u8>, Revocation>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    number: u64,
) -> Result<Crl, FixtureError> {
    let spec = CrlSpec {
        this_update,
        next_update,
        number,
        revoked: revoked
            .iter()
            .map(|(serial, r)| RevokedEntry {
                serial: serial.clone(),
                revoked_at: r.at,
                reason: r.reason,
            })
            .collect(),
    };
    sign_crl(issuer, key_id, role, &spec)
}

/// A freshly generated key of `cert`'s algorithm that is not `cert`'s key (RSA keys come
/// from a shared pool, so the pool may hand back the same one).
fn unrelated_key(cert: &Cert) -> Result<KeyPair, FixtureError> {
    for _ in 0..=RSA_POOL_SIZE {
        let key = generate_key(cert.alg, KeySource::Auto { avoid: None })?;
        if key.pkcs8 != cert.key_pkcs8_der {
            return Ok(key.key);
        }
    }
    Err(FixtureError::Generation(format!(
        "no key unrelated to {}'s",
        cert.name
    )))
}

/// OID 2.5.29.21 (id-ce-cRLReasons), content octets.
const OID_CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];

/// The entries of a DER CRL (RFC 5280 §5.1), with their reason codes.
pub(crate) fn crl_entries(crl: &[u8]) -> Option<Vec<RevokedEntry>> {
    let mut outer = Reader::new(der::single(crl, 0x30)?);
    let mut tbs = Reader::new(outer.read(0x30)?);
    tbs.read_optional(0x02)?; // version
    tbs.read(0x30)?; // signature
    tbs.read(0x30)?; // issuer
    tbs.read_any()?; // thisUpdate
    if matches!(tbs.peek_tag(), Some(0x17 | 0x18)) {
        tbs.read_any()?; // nextUpdate
    }
    let mut entries = Vec::new();
    let Some(list) = tbs.read_optional(0x30)? else {
        return Some(entries);
    };
    let mut list = Reader::new(list);
    while !list.is_empty() {
        let mut entry = Reader::new(list.read(0x30)?);
        let serial = entry.read(0x02)?;
        let (tag, time, _) = entry.read_any()?;
        let revoked_at = der::parse_time(tag, time)?;
        let mut reason = None;
        if let Some(exts) = entry.read_optional(0x30)? {
            let mut exts = Reader::new(exts);
            while !exts.is_empty() {
                let mut ext = Reader::new(exts.read(0x30)?);
                let id = ext.read(0x06)?;
                ext.read_optional(0x01)?; // critical
                let value = ext.read(0x04)?;
                if id == OID_CRL_REASON {
                    match der::single(value, 0x0a)? {
                        [code] => reason = Some(Reason::from_code(*code)?),
                        _ => return None,
                    }
                }
            }
        }
        entries.push(RevokedEntry {
            serial: der::minimal_unsigned(serial),
            revoked_at,
            reason,
        });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_entries_round_trip() {
        let opts = PkiOptions::default();
        let ca = Ca::new_root("r", "R", KeyAlg::EcdsaP256, &opts).expect("root");
        let leaf = ca
            .issue_leaf(&CertSpec::leaf("l", "l.test", &opts))
            .expect("leaf");
        let at = opts.now - Duration::hours(3);
        let crl = ca
            .crl(
                &CrlSpec::new(&opts)
                    .revoke(&leaf, at, Reason::Superseded)
                    .revoke(&ca.cert, at, Reason::Unspecified),
            )
            .expect("crl");
        let entries = crl_entries(&crl.der).expect("parses");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].serial, leaf.serial);
        assert_eq!(entries[0].revoked_at, at);
        assert_eq!(entries[0].reason, Some(Reason::Superseded));
        // rcgen writes no reasonCode for unspecified.
        assert_eq!(entries[1].reason, None);
        let empty = ca.crl(&CrlSpec::new(&opts)).expect("crl");
        assert_eq!(crl_entries(&empty.der).map(|e| e.len()), Some(0));
        assert!(crl_entries(&leaf.der).is_none());
    }
}
