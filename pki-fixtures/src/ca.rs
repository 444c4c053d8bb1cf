//! Certificate authorities, certificates and CRLs.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::der;
use crate::keys::{generate_key, GeneratedKey, KeySource};
use crate::{FixtureError, KeyAlg};

/// Organization (O) put in every subject name made by this crate.
pub const ORGANIZATION: &str = "Vigil Test PKI";

/// Longest serial number accepted, in DER content octets (RFC 5280 section 4.1.2.2).
const MAX_SERIAL_OCTETS: usize = 20;

/// Global knobs for fixture generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiOptions {
    /// Key algorithm used for every certificate of a generated PKI.
    pub alg: KeyAlg,
    /// Prefix of the CRL distribution point and OCSP URLs written into certificates:
    /// `{base_url}/crl/{issuer-role}.crl` and `{base_url}/ocsp/{issuer-role}`.
    /// A trailing `/` is ignored. Must be ASCII.
    pub base_url: String,
    /// The instant every validity window and CRL time is computed from. Certificates and
    /// CRLs only carry whole seconds, so sub-second precision is dropped.
    pub now: OffsetDateTime,
}

impl Default for PkiOptions {
    /// P-256, `http://127.0.0.1:8080`, and the current time truncated to seconds.
    fn default() -> Self {
        Self {
            alg: KeyAlg::default(),
            base_url: "http://127.0.0.1:8080".to_string(),
            now: normalize_time(OffsetDateTime::now_utc()),
        }
    }
}

/// Converts to UTC and drops sub-second precision, which is what gets encoded anyway.
pub(crate) fn normalize_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// An issued certificate with its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Cert {
    /// Role name, e.g. `"client"`; also the file stem used by [`crate::Pki::write_to`].
    pub name: String,
    /// Role name of the CA that signed this certificate (its own role for a self-signed root).
    pub issuer: String,
    /// The key algorithm of this certificate's subject key.
    pub alg: KeyAlg,
    /// DER encoding of the certificate.
    pub der: Vec<u8>,
    /// PEM encoding (`CERTIFICATE`) of the certificate.
    pub pem: String,
    /// The subject private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
    /// The subject private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: String,
    /// Serial number as minimal positive big-endian bytes (no leading `0x00` sign octet).
    pub serial: Vec<u8>,
    /// Start of the validity window, as encoded (UTC, whole seconds).
    pub not_before: OffsetDateTime,
    /// End of the validity window, as encoded (UTC, whole seconds).
    pub not_after: OffsetDateTime,
}

impl Cert {
    /// The serial number as lower-case hex.
    pub fn serial_hex(&self) -> String {
        der::hex(&self.serial)
    }

    /// Whether `at` falls inside `[not_before, not_after]`.
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// The certificate as rustls and webpki take it (an owned copy of
    /// [`Cert::der`]).
    pub fn certificate_der(&self) -> rustls_pki_types::CertificateDer<'static> {
        rustls_pki_types::CertificateDer::from(self.der.clone())
    }
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cert")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("alg", &self.alg)
            .field("serial", &self.serial_hex())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Which extended key usages a leaf certificate carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LeafUsage {
    /// `id-kp-clientAuth` only.
    #[default]
    Client,
    /// `id-kp-serverAuth` only.
    Server,
    /// Both `id-kp-serverAuth` and `id-kp-clientAuth`.
    Both,
    /// No extended key usage extension at all.
    None,
    /// `id-kp-OCSPSigning` only: a delegated OCSP responder (RFC 6960 §4.2.2.2).
    OcspSigning,
}

/// Everything needed to issue one certificate (leaf or CA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    /// Role name (`[A-Za-z0-9._-]`, not starting with `.`); used in URLs and file names.
    pub name: String,
    /// Subject common name. The subject is `O=Vigil Test PKI, CN={cn}`.
    pub cn: String,
    /// Subject key algorithm. The *signature* algorithm is that of the issuer's key.
    pub alg: KeyAlg,
    /// Start of validity (UTC, truncated to seconds when encoded).
    pub not_before: OffsetDateTime,
    /// End of validity (UTC, truncated to seconds when encoded). Must be after `not_before`.
    pub not_after: OffsetDateTime,
    /// Extended key usage of a leaf. Ignored for CA certificates, which carry no EKU.
    pub usage: LeafUsage,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// IP address subjectAltNames.
    pub ip_addrs: Vec<IpAddr>,
    /// URI subjectAltNames (e.g. SPIFFE IDs).
    pub uris: Vec<String>,
    /// Serial number, big-endian unsigned. `None`: 16 random bytes with the top bit
    /// cleared and the next bit set (so it always encodes in exactly 16 octets).
    /// Must be non-zero and encode in at most 20 octets.
    pub serial: Option<Vec<u8>>,
    /// Prefix for the CRL distribution point and OCSP URLs (see [`PkiOptions::base_url`]).
    pub base_url: String,
}

impl CertSpec {
    /// A leaf spec: `opts.alg`, clientAuth, valid from `opts.now - 1 day` to
    /// `opts.now + 365 days`, no SANs, random serial.
    pub fn leaf(name: &str, cn: &str, opts: &PkiOptions) -> Self {
        Self {
            name: name.to_string(),
            cn: cn.to_string(),
            alg: opts.alg,
            not_before: opts.now - Duration::days(1),
            not_after: opts.now + Duration::days(365),
            usage: LeafUsage::Client,
            dns_names: Vec::new(),
            ip_addrs: Vec::new(),
            uris: Vec::new(),
            serial: None,
            base_url: opts.base_url.clone(),
        }
    }

    /// A CA spec: same defaults as [`CertSpec::leaf`] but with [`LeafUsage::None`].
    pub fn ca(name: &str, cn: &str, opts: &PkiOptions) -> Self {
        Self {
            usage: LeafUsage::None,
            ..Self::leaf(name, cn, opts)
        }
    }

    /// Sets the validity window.
    pub fn with_validity(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Sets the extended key usage.
    pub fn with_usage(mut self, usage: LeafUsage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the key algorithm.
    pub fn with_alg(mut self, alg: KeyAlg) -> Self {
        self.alg = alg;
        self
    }

    /// Adds a DNS subjectAltName.
    pub fn with_dns(mut self, name: &str) -> Self {
        self.dns_names.push(name.to_string());
        self
    }

    /// Adds an IP address subjectAltName.
    pub fn with_ip(mut self, addr: IpAddr) -> Self {
        self.ip_addrs.push(addr);
        self
    }

    /// Adds a URI subjectAltName (e.g. a SPIFFE ID).
    pub fn with_uri(mut self, uri: &str) -> Self {
        self.uris.push(uri.to_string());
        self
    }

    /// Sets an explicit serial number (big-endian unsigned bytes).
    pub fn with_serial(mut self, serial: &[u8]) -> Self {
        self.serial = Some(serial.to_vec());
        self
    }
}

/// A revocation reason code (RFC 5280 section 5.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// unspecified (0). RFC 5280 says to omit the extension instead, so an entry with this
    /// reason is written *without* a reasonCode extension.
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl Reason {
    /// The numeric CRLReason code.
    pub fn code(self) -> u8 {
        self.to_rcgen() as u8
    }

    /// The reason with this numeric CRLReason code (7 is unused in RFC 5280).
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Reason::Unspecified,
            1 => Reason::KeyCompromise,
            2 => Reason::CaCompromise,
            3 => Reason::AffiliationChanged,
            4 => Reason::Superseded,
            5 => Reason::CessationOfOperation,
            6 => Reason::CertificateHold,
            8 => Reason::RemoveFromCrl,
            9 => Reason::PrivilegeWithdrawn,
            10 => Reason::AaCompromise,
            _ => return None,
        })
    }

    fn to_rcgen(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::CaCompromise => RevocationReason::CaCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::CertificateHold => RevocationReason::CertificateHold,
            Reason::RemoveFromCrl => RevocationReason::RemoveFromCrl,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            Reason::AaCompromise => RevocationReason::AaCompromise,
        }
    }
}

/// One entry of a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number of the revoked certificate, big-endian unsigned.
    pub serial: Vec<u8>,
    /// Revocation date.
    pub revoked_at: OffsetDateTime,
    /// Reason code, if any.
    pub reason: Option<Reason>,
}

impl RevokedEntry {
    /// An entry revoking `cert`.
    pub fn for_cert(cert: &Cert, revoked_at: OffsetDateTime, reason: Option<Reason>) -> Self {
        Self {
            serial: cert.serial.clone(),
            revoked_at,
            reason,
        }
    }
}

/// Everything needed to sign one CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSpec {
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate; must be after `this_update`.
    pub next_update: OffsetDateTime,
    /// The cRLNumber extension value.
    pub number: u64,
    /// Revoked certificates, in order.
    pub revoked: Vec<RevokedEntry>,
}

impl CrlSpec {
    /// `this_update = now - 1h`, `next_update = now + 7 days`, number 1, nothing revoked.
    pub fn new(opts: &PkiOptions) -> Self {
        Self {
            this_update: opts.now - Duration::hours(1),
            next_update: opts.now + Duration::days(7),
            number: 1,
            revoked: Vec::new(),
        }
    }

    /// [`CrlSpec::new`] listing `n` made-up certificates (serials of 16
    /// octets, `5a…5a` then `i` big-endian, never a fixture's), revoked
    /// two hours before `opts.now` for keyCompromise: the large CRLs of the
    /// benchmarks and load tests.
    pub fn synthetic(opts: &PkiOptions, n: u32) -> Self {
        let mut spec = Self::new(opts);
        spec.revoked = (0..n)
            .map(|i| {
                let mut serial = vec![0x5a; 12];
                serial.extend_from_slice(&i.to_be_bytes());
                RevokedEntry {
                    serial,
                    revoked_at: opts.now - Duration::hours(2),
                    reason: Some(Reason::KeyCompromise),
                }
            })
            .collect();
        spec
    }

    /// Adds an entry revoking `cert`.
    pub fn revoke(mut self, cert: &Cert, revoked_at: OffsetDateTime, reason: Reason) -> Self {
        self.revoked
            .push(RevokedEntry::for_cert(cert, revoked_at, Some(reason)));
        self
    }
}

/// How [`Ca::nonconforming_crl`] breaks the cRLNumber rule of RFC 5280 §5.2.3 ("conforming
/// CRL issuers MUST include this extension in all CRLs", "MUST NOT be marked critical").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrlNumberFault {
    /// No cRLNumber extension at all.
    Missing,
    /// The cRLNumber extension is marked critical.
    Critical,
}

/// A signed CRL (version 2, with authorityKeyIdentifier and cRLNumber, no
/// issuingDistributionPoint).
#[derive(Clone, PartialEq, Eq)]
pub struct Crl {
    /// Role name, e.g. `"intermediate.crl"`; also its file name in [`crate::Pki::write_to`].
    pub name: String,
    /// Role of the CA whose name is in the CRL's issuer field.
    pub issuer: String,
    /// DER encoding.
    pub der: Vec<u8>,
    /// PEM encoding (`X509 CRL`).
    pub pem: String,
    /// cRLNumber.
    pub number: u64,
    /// thisUpdate, as encoded.
    pub this_update: OffsetDateTime,
    /// nextUpdate, as encoded.
    pub next_update: OffsetDateTime,
    /// Serials (minimal big-endian) of the revoked entries, in order.
    pub revoked_serials: Vec<Vec<u8>>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let serials: Vec<String> = self.revoked_serials.iter().map(|s| der::hex(s)).collect();
        f.debug_struct("Crl")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("number", &self.number)
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("revoked_serials", &serials)
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// A certificate authority: its certificate plus the signing key.
pub struct Ca {
    /// The CA's own certificate (and key).
    pub cert: Cert,
    issuer: Issuer<'static, KeyPair>,
    key_id: Vec<u8>,
    rsa_slot: Option<usize>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert", &self.cert)
            .field("key_id", &der::hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

fn check_role(name: &str) -> Result<(), FixtureError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(FixtureError::invalid(format!(
            "role name {name:?} must be non-empty, use only [A-Za-z0-9._-] and not start with '.'"
        )))
    }
}

fn check_base_url(url: &str) -> Result<&str, FixtureError> {
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() || !trimmed.is_ascii() || trimmed.bytes().any(|b| b.is_ascii_control()) {
        return Err(FixtureError::invalid(format!(
            "base URL {url:?} must be non-empty printable ASCII"
        )));
    }
    Ok(trimmed)
}

fn random_serial() -> Result<Vec<u8>, FixtureError> {
    let mut serial = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| FixtureError::Generation("system RNG failed".into()))?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

fn resolve_serial(requested: Option<&[u8]>) -> Result<Vec<u8>, FixtureError> {
    let Some(bytes) = requested else {
        return random_serial();
    };
    let minimal = der::minimal_unsigned(bytes);
    let encoded_len = minimal.len() + usize::from(minimal[0] & 0x80 != 0);
    if minimal == [0] {
        return Err(FixtureError::invalid("serial number must be positive"));
    }
    if encoded_len > MAX_SERIAL_OCTETS {
        return Err(FixtureError::invalid(format!(
            "serial number encodes in {encoded_len} octets; RFC 5280 allows at most {MAX_SERIAL_OCTETS}"
        )));
    }
    Ok(minimal)
}

fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, cn);
    dn
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ca,
    Leaf,
}

/// Builds the rcgen parameters for `spec`. `issuer_role` is `None` for self-signed roots,
/// which get no CRL distribution point or AIA.
fn params_for(
    spec: &CertSpec,
    kind: Kind,
    issuer_role: Option<&str>,
    serial: &[u8],
) -> Result<CertificateParams, FixtureError> {
    check_role(&spec.name)?;
    if spec.not_after <= spec.not_before {
        return Err(FixtureError::invalid(format!(
            "{}: not_after ({}) must be after not_before ({})",
            spec.name, spec.not_after, spec.not_before
        )));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&spec.cn);
    params.not_before = normalize_time(spec.not_before);
    params.not_after = normalize_time(spec.not_after);
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;

    for dns in &spec.dns_names {
        let name = dns
            .clone()
            .try_into()
            .map_err(|e| FixtureError::invalid(format!("{}: DNS name {dns:?}: {e}", spec.name)))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params
        .subject_alt_names
        .extend(spec.ip_addrs.iter().map(|ip| SanType::IpAddress(*ip)));
    for uri in &spec.uris {
        let value = uri
            .clone()
            .try_into()
            .map_err(|e| FixtureError::invalid(format!("{}: URI {uri:?}: {e}", spec.name)))?;
        params.subject_alt_names.push(SanType::URI(value));
    }

    match kind {
        Kind::Ca => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Kind::Leaf => {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if spec.alg == KeyAlg::Rsa2048 {
                params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            }
            params.extended_key_usages = match spec.usage {
                LeafUsage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
                LeafUsage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
                LeafUsage::Both => vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
                LeafUsage::None => Vec::new(),
                LeafUsage::OcspSigning => vec![ExtendedKeyUsagePurpose::OcspSigning],
            };
        }
    }

    if let Some(issuer_role) = issuer_role {
        let base = check_base_url(&spec.base_url)?;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![crl_url(base, issuer_role)],
        }];
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                der::OID_AUTHORITY_INFO_ACCESS,
                der::aia_ocsp_value(&ocsp_url(base, issuer_role)),
            ));
    }
    Ok(params)
}

/// `{base_url}/crl/{issuer_role}.crl`: the CRL distribution point written into
/// certificates issued by the CA with role `issuer_role`.
pub fn crl_url(base_url: &str, issuer_role: &str) -> String {
    format!("{}/crl/{issuer_role}.crl", base_url.trim_end_matches('/'))
}

/// `{base_url}/ocsp/{issuer_role}`: the OCSP responder URI written into certificates
/// issued by the CA with role `issuer_role`.
pub fn ocsp_url(base_url: &str, issuer_role: &str) -> String {
    format!("{}/ocsp/{issuer_role}", base_url.trim_end_matches('/'))
}

fn make_cert(
    spec: &CertSpec,
    issuer_role: &str,
    der: Vec<u8>,
    key: &GeneratedKey,
    serial: Vec<u8>,
    params: &CertificateParams,
) -> Cert {
    Cert {
        name: spec.name.clone(),
        issuer: issuer_role.to_string(),
        alg: spec.alg,
        pem: der::pem("CERTIFICATE", &der),
        der,
        key_pem: der::pem("PRIVATE KEY", &key.pkcs8),
        key_pkcs8_der: key.pkcs8.clone(),
        serial,
        not_before: params.not_before,
        not_after: params.not_after,
    }
}

impl Ca {
    /// A self-signed root CA valid from `opts.now - 1 day` to `opts.now + 365 days`.
    /// Roots carry no CRL distribution point or AIA.
    pub fn new_root(
        name: &str,
        cn: &str,
        alg: KeyAlg,
        opts: &PkiOptions,
    ) -> Result<Ca, FixtureError> {
        Self::self_signed(&CertSpec::ca(name, cn, opts).with_alg(alg))
    }

    /// A self-signed root CA from a full spec (for custom validity or serial).
    pub fn self_signed(spec: &CertSpec) -> Result<Ca, FixtureError> {
        Self::self_signed_with(spec, KeySource::Auto { avoid: None })
    }

    pub(crate) fn self_signed_with(spec: &CertSpec, source: KeySource) -> Result<Ca, FixtureError> {
        let serial = resolve_serial(spec.serial.as_deref())?;
        let params = params_for(spec, Kind::Ca, None, &serial)?;
        let key = generate_key(spec.alg, source)?;
        let cert = params
            .self_signed(&key.key)
            .map_err(|e| FixtureError::generation(&spec.name, e))?;
        let cert = make_cert(spec, &spec.name, cert.der().to_vec(), &key, serial, &params);
        Ok(Self::from_parts(cert, params, key))
    }

    fn from_parts(cert: Cert, params: CertificateParams, key: GeneratedKey) -> Ca {
        let key_id = params.key_identifier(&key.key);
        Ca {
            cert,
            rsa_slot: key.rsa_slot,
            key_id,
            issuer: Issuer::new(params, key.key),
        }
    }

    /// Issues an intermediate CA certificate signed by this CA.
    pub fn issue_ca(&self, spec: &CertSpec) -> Result<Ca, FixtureError> {
        self.issue_ca_with(spec, self.auto_key())
    }

    pub(crate) fn issue_ca_with(
        &self,
        spec: &CertSpec,
        source: KeySource,
    ) -> Result<Ca, FixtureError> {
        let (cert, params, key) = self.issue(spec, Kind::Ca, source)?;
        Ok(Self::from_parts(cert, params, key))
    }

    /// Issues an end-entity certificate signed by this CA.
    pub fn issue_leaf(&self, spec: &CertSpec) -> Result<Cert, FixtureError> {
        self.issue_leaf_with(spec, self.auto_key())
    }

    pub(crate) fn issue_leaf_with(
        &self,
        spec: &CertSpec,
        source: KeySource,
    ) -> Result<Cert, FixtureError> {
        Ok(self.issue(spec, Kind::Leaf, source)?.0)
    }

    fn auto_key(&self) -> KeySource {
        KeySource::Auto {
            avoid: self.rsa_slot,
        }
    }

    fn issue(
        &self,
        spec: &CertSpec,
        kind: Kind,
        source: KeySource,
    ) -> Result<(Cert, CertificateParams, GeneratedKey), FixtureError> {
        let serial = resolve_serial(spec.serial.as_deref())?;
        let params = params_for(spec, kind, Some(&self.cert.name), &serial)?;
        let key = generate_key(spec.alg, source)?;
        let cert = params
            .signed_by(&key.key, &self.issuer)
            .map_err(|e| FixtureError::generation(&spec.name, e))?;
        let cert = make_cert(
            spec,
            &self.cert.name,
            cert.der().to_vec(),
            &key,
            serial,
            &params,
        );
        Ok((cert, params, key))
    }

    /// Signs a CRL with this CA's key. The CRL is named `{ca-name}.crl`.
    pub fn crl(&self, spec: &CrlSpec) -> Result<Crl, FixtureError> {
        sign_crl(&self.issuer, &self.key_id, &self.cert.name, spec)
    }

    /// Signs a CRL whose issuer name and authorityKeyIdentifier are this CA's, but whose
    /// signature is made with a freshly generated, unrelated key of `alg`: a forgery that
    /// must fail signature verification against this CA's public key.
    pub fn forged_crl(&self, spec: &CrlSpec, alg: KeyAlg) -> Result<Crl, FixtureError> {
        self.forged_crl_with(spec, alg, self.auto_key())
    }

    pub(crate) fn forged_crl_with(
        &self,
        spec: &CrlSpec,
        alg: KeyAlg,
        source: KeySource,
    ) -> Result<Crl, FixtureError> {
        let key = generate_key(alg, source)?;
        if key.pkcs8 == self.cert.key_pkcs8_der {
            return Err(FixtureError::Generation(
                "forged CRL key unexpectedly equals the real CA key".into(),
            ));
        }
        // Same DN, key usages and key identifier as the real CA, different key.
        let impostor = Issuer::from_ca_cert_der(&self.cert.der.as_slice().into(), key.key)
            .map_err(|e| FixtureError::generation("impostor issuer", e))?;
        sign_crl(&impostor, &self.key_id, &self.cert.name, spec)
    }

    /// Signs a CRL like [`Ca::crl`], then breaks RFC 5280 §5.2.3's rule for its cRLNumber
    /// extension as `fault` says and signs it again with this CA's key: a CRL with a good
    /// signature that a conforming relying party must still refuse.
    pub fn nonconforming_crl(
        &self,
        spec: &CrlSpec,
        fault: CrlNumberFault,
    ) -> Result<Crl, FixtureError> {
        let crl = self.crl(spec)?;
        let der = with_crl_number_fault(&crl.der, fault, self.issuer.key())?;
        Ok(Crl {
            pem: der::pem("X509 CRL", &der),
            der,
            ..crl
        })
    }

    /// The subjectKeyIdentifier of this CA (truncated SHA-256 of its public key), which is
    /// also the authorityKeyIdentifier of everything it signs.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// This CA's role name.
    pub fn name(&self) -> &str {
        &self.cert.name
    }
}

pub(crate) fn sign_crl(
    issuer: &Issuer<'_, KeyPair>,
    key_id: &[u8],
    issuer_role: &str,
    spec: &CrlSpec,
) -> Result<Crl, FixtureError> {
    let this_update = normalize_time(spec.this_update);
    let next_update = normalize_time(spec.next_update);
    let mut revoked_certs = Vec::with_capacity(spec.revoked.len());
    let mut revoked_serials = Vec::with_capacity(spec.revoked.len());
    for entry in &spec.revoked {
        let serial = resolve_serial(Some(&entry.serial))?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: normalize_time(entry.revoked_at),
            reason_code: entry.reason.map(Reason::to_rcgen),
            invalidity_date: None,
        });
        revoked_serials.push(serial);
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(spec.number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(key_id.to_vec()),
    };
    let crl = params
        .signed_by(issuer)
        .map_err(|e| FixtureError::generation(&format!("CRL of {issuer_role}"), e))?;
    let der = crl.der().to_vec();
    Ok(Crl {
        name: format!("{issuer_role}.crl"),
        issuer: issuer_role.to_string(),
        pem: der::pem("X509 CRL", &der),
        der,
        number: spec.number,
        this_update,
        next_update,
        revoked_serials,
    })
}

/// `crl` (DER) with its cRLNumber extension broken as `fault` says, signed again with
/// `key` (the CA's own key, so only the cRLNumber rule of RFC 5280 §5.2.3 is broken).
pub(crate) fn with_crl_number_fault(
    crl: &[u8],
    fault: CrlNumberFault,
    key: &KeyPair,
) -> Result<Vec<u8>, FixtureError> {
    let bad = || FixtureError::Generation("re-encoding the fixture CRL".into());
    let mut outer = der::Reader::new(der::single(crl, 0x30).ok_or_else(bad)?);
    let tbs = outer.read(0x30).ok_or_else(bad)?;
    let alg = outer.read_element(0x30).ok_or_else(bad)?;
    let mut fields = der::Reader::new(tbs);
    let mut content = Vec::with_capacity(tbs.len());
    while !fields.is_empty() {
        let (tag, value, whole) = fields.read_any().ok_or_else(bad)?;
        if tag != 0xa0 {
            content.extend_from_slice(whole);
            continue;
        }
        // crlExtensions [0] EXPLICIT SEQUENCE OF Extension
        let mut exts = der::Reader::new(der::single(value, 0x30).ok_or_else(bad)?);
        let mut list = Vec::new();
        while !exts.is_empty() {
            let ext = exts.read_element(0x30).ok_or_else(bad)?;
            let mut e = der::Reader::new(der::single(ext, 0x30).ok_or_else(bad)?);
            let oid = e.read_element(0x06).ok_or_else(bad)?;
            if oid != [0x06, 0x03, 0x55, 0x1d, 0x14] {
                list.extend_from_slice(ext);
                continue;
            }
            match fault {
                CrlNumberFault::Missing => {}
                CrlNumberFault::Critical => {
                    let _ = e.read_optional(0x01).ok_or_else(bad)?;
                    let value = e.read_element(0x04).ok_or_else(bad)?;
                    let mut body = oid.to_vec();
                    body.extend(der::tlv(0x01, &[0xff]));
                    body.extend_from_slice(value);
                    list.extend(der::tlv(0x30, &body));
                }
            }
        }
        content.extend(der::tlv(0xa0, &der::tlv(0x30, &list)));
    }
    let tbs = der::tlv(0x30, &content);
    let signature = rcgen::SigningKey::sign(key, &tbs)
        .map_err(|e| FixtureError::generation("re-signing the CRL", e))?;
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut body = tbs;
    body.extend_from_slice(alg);
    body.extend(der::tlv(0x03, &bits));
    Ok(der::tlv(0x30, &body))
}

/// Issues a leaf like [`Ca::issue_leaf`] and then flips one bit in the last byte of its
/// signature value. The DER stays well-formed; only the signature is invalid.
pub(crate) fn corrupt(cert: Cert) -> Result<Cert, FixtureError> {
    let der = der::corrupt_signature(&cert.der)?;
    Ok(Cert {
        pem: der::pem("CERTIFICATE", &der),
        der,
        ..cert
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_flips_exactly_one_bit_of_the_signature() {
        let opts = PkiOptions::default();
        let root = Ca::new_root("r", "R", KeyAlg::EcdsaP256, &opts).expect("root");
        let leaf = root
            .issue_leaf(&CertSpec::leaf("l", "l.test", &opts))
            .expect("leaf");
        let bad = corrupt(leaf.clone()).expect("corrupt");
        assert_eq!(bad.der.len(), leaf.der.len());
        let diffs: Vec<usize> = (0..leaf.der.len())
            .filter(|i| leaf.der[*i] != bad.der[*i])
            .collect();
        assert_eq!(diffs, vec![leaf.der.len() - 1]);
        assert_eq!(leaf.der[diffs[0]] ^ bad.der[diffs[0]], 0x01);
        assert_ne!(bad.pem, leaf.pem);
        assert_eq!(bad.serial, leaf.serial);
    }

    #[test]
    fn serial_validation() {
        assert_eq!(resolve_serial(Some(&[0, 0, 7])).ok(), Some(vec![7]));
        assert!(resolve_serial(Some(&[0, 0])).is_err());
        assert!(resolve_serial(Some(&[])).is_err());
        assert!(resolve_serial(Some(&[0x7f; 20])).is_ok());
        assert!(resolve_serial(Some(&[0x80; 20])).is_err()); // needs a 21st sign octet
        let random = resolve_serial(None).expect("random");
        assert_eq!(random.len(), 16);
        assert_eq!(random[0] & 0xc0, 0x40);
    }

    #[test]
    fn role_and_url_validation() {
        assert!(check_role("leaf-1.crl").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b", "caf\u{e9}"] {
            assert!(check_role(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_base_url("http://x/").ok(), Some("http://x"));
        assert!(check_base_url("/").is_err());
        assert!(check_base_url("http://h\u{e9}").is_err());
        assert_eq!(crl_url("http://x/", "ca"), "http://x/crl/ca.crl");
        assert_eq!(ocsp_url("http://x", "ca"), "http://x/ocsp/ca");
    }
}
