//! The standard fixture PKI and writing it to disk.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::ca::normalize_time;
use crate::keys::KeySource;
use crate::{der, Ca, Cert, CertSpec, Crl, CrlSpec, FixtureError, LeafUsage, PkiOptions, Reason};

/// Role names of everything in a [`Pki`].
pub mod roles {
    /// Root CA.
    pub const ROOT: &str = "root";
    /// Intermediate CA issued by [`ROOT`]; issues the plain leaves.
    pub const INTERMEDIATE: &str = "intermediate";
    /// Valid client certificate (clientAuth, CN `client.vigil.test`).
    pub const CLIENT: &str = "client";
    /// Valid server certificate (serverAuth, DNS `server.vigil.test`, IP `127.0.0.1`).
    pub const SERVER: &str = "server";
    /// Client certificate listed in `intermediate.crl` (keyCompromise).
    pub const REVOKED_CLIENT: &str = "revoked-client";
    /// Client certificate whose notAfter is one day before `now`.
    pub const EXPIRED_CLIENT: &str = "expired-client";
    /// Client certificate whose notBefore is one day after `now`.
    pub const NOT_YET_VALID_CLIENT: &str = "not-yet-valid-client";
    /// Client certificate issued by [`INTERMEDIATE`] whose signature has one byte flipped.
    pub const BAD_SIGNATURE_CLIENT: &str = "bad-signature-client";
    /// CA issued by [`ROOT`] whose notAfter is one day before `now`.
    pub const EXPIRED_INTERMEDIATE: &str = "expired-intermediate";
    /// Currently valid client leaf issued by [`EXPIRED_INTERMEDIATE`].
    pub const LEAF_OF_EXPIRED_INTERMEDIATE: &str = "leaf-of-expired-intermediate";
    /// CA issued by [`ROOT`] and listed in `root.crl` (cACompromise).
    pub const REVOKED_INTERMEDIATE: &str = "revoked-intermediate";
    /// Currently valid client leaf issued by [`REVOKED_INTERMEDIATE`].
    pub const LEAF_OF_REVOKED_INTERMEDIATE: &str = "leaf-of-revoked-intermediate";
    /// An unrelated root CA.
    pub const OTHER_ROOT: &str = "other-root";
    /// CA issued by [`OTHER_ROOT`].
    pub const OTHER_INTERMEDIATE: &str = "other-intermediate";
    /// Client leaf issued by [`OTHER_INTERMEDIATE`]: an unknown-issuer chain.
    pub const OTHER_CLIENT: &str = "other-client";

    /// Root's CRL, revoking [`REVOKED_INTERMEDIATE`].
    pub const ROOT_CRL: &str = "root.crl";
    /// Intermediate's current CRL, revoking [`REVOKED_CLIENT`].
    pub const INTERMEDIATE_CRL: &str = "intermediate.crl";
    /// Intermediate's previous CRL: nextUpdate one day before `now`.
    pub const INTERMEDIATE_STALE_CRL: &str = "intermediate-stale.crl";
    /// CRL claiming the intermediate as issuer (same name and AKI) but signed by another key.
    pub const INTERMEDIATE_WRONG_KEY_CRL: &str = "intermediate-wrong-key.crl";
    /// Empty CRL of [`REVOKED_INTERMEDIATE`].
    pub const REVOKED_INTERMEDIATE_CRL: &str = "revoked-intermediate.crl";
    /// Empty CRL of [`EXPIRED_INTERMEDIATE`].
    pub const EXPIRED_INTERMEDIATE_CRL: &str = "expired-intermediate.crl";
    /// Empty CRL of [`OTHER_ROOT`].
    pub const OTHER_ROOT_CRL: &str = "other-root.crl";
    /// Empty CRL of [`OTHER_INTERMEDIATE`].
    pub const OTHER_INTERMEDIATE_CRL: &str = "other-intermediate.crl";
}

use roles::*;

/// The standard fixture PKI produced by [`generate`]. See [`roles`] for what each role is.
///
/// With `now = opts.now`, validity windows are:
/// roots `now - 60d .. now + 3650d`; `intermediate`, `revoked-intermediate`,
/// `other-intermediate` `now - 45d .. now + 1825d`; `expired-intermediate`
/// `now - 45d .. now - 1d`; `expired-client` `now - 30d .. now - 1d`;
/// `not-yet-valid-client` `now + 1d .. now + 366d`; every other leaf `now - 1d .. now + 365d`.
///
/// CRLs: `intermediate.crl` is number 2 (this_update `now - 1h`, next_update `now + 7d`)
/// and revokes `revoked-client` at `now - 2h`. `intermediate-stale.crl` is number 1
/// (`now - 10d .. now - 1d`) and, having been issued before that revocation, lists nothing.
/// `intermediate-wrong-key.crl` is number 3, lists nothing, carries the intermediate's
/// issuer name and authorityKeyIdentifier, and is signed by an unrelated key (a forged
/// "nothing is revoked" CRL). `root.crl` is number 1 and revokes `revoked-intermediate` at
/// `now - 2h`. The others are number 1 and empty. All non-stale CRLs run `now - 1h .. now + 7d`.
#[derive(Debug)]
pub struct Pki {
    /// The options this PKI was generated with (`now` normalised to UTC whole seconds,
    /// trailing `/` removed from `base_url`).
    pub options: PkiOptions,
    /// `root`
    pub root: Ca,
    /// `intermediate`
    pub intermediate: Ca,
    /// `expired-intermediate`
    pub expired_intermediate: Ca,
    /// `revoked-intermediate`
    pub revoked_intermediate: Ca,
    /// `other-root`
    pub other_root: Ca,
    /// `other-intermediate`
    pub other_intermediate: Ca,
    /// `client`
    pub client: Cert,
    /// `server`
    pub server: Cert,
    /// `revoked-client`
    pub revoked_client: Cert,
    /// `expired-client`
    pub expired_client: Cert,
    /// `not-yet-valid-client`
    pub not_yet_valid_client: Cert,
    /// `bad-signature-client`
    pub bad_signature_client: Cert,
    /// `leaf-of-expired-intermediate`
    pub leaf_of_expired_intermediate: Cert,
    /// `leaf-of-revoked-intermediate`
    pub leaf_of_revoked_intermediate: Cert,
    /// `other-client`
    pub other_client: Cert,
    /// `root.crl`
    pub root_crl: Crl,
    /// `intermediate.crl`
    pub intermediate_crl: Crl,
    /// `intermediate-stale.crl`
    pub intermediate_stale_crl: Crl,
    /// `intermediate-wrong-key.crl`
    pub intermediate_wrong_key_crl: Crl,
    /// `revoked-intermediate.crl`
    pub revoked_intermediate_crl: Crl,
    /// `expired-intermediate.crl`
    pub expired_intermediate_crl: Crl,
    /// `other-root.crl`
    pub other_root_crl: Crl,
    /// `other-intermediate.crl`
    pub other_intermediate_crl: Crl,
}

/// Hands out RSA pool slots so that, within one PKI, all CAs (and the forged-CRL key)
/// have distinct keys and leaves never share a key with any CA.
struct SlotPlan {
    next_ca: usize,
    next_leaf: usize,
}

/// CA keys (including the wrong-key CRL signer) use slots `0..LEAF_SLOT_START`.
const LEAF_SLOT_START: usize = 7;
const _: () = assert!(LEAF_SLOT_START < crate::RSA_POOL_SIZE);

impl SlotPlan {
    fn ca(&mut self) -> KeySource {
        let slot = self.next_ca;
        self.next_ca += 1;
        debug_assert!(slot < LEAF_SLOT_START);
        KeySource::Slot(slot)
    }

    fn leaf(&mut self) -> KeySource {
        let span = crate::RSA_POOL_SIZE - LEAF_SLOT_START;
        let slot = LEAF_SLOT_START + self.next_leaf % span;
        self.next_leaf += 1;
        KeySource::Slot(slot)
    }
}

/// Generates the standard fixture PKI described on [`Pki`].
pub fn generate(opts: &PkiOptions) -> Result<Pki, FixtureError> {
    let options = PkiOptions {
        alg: opts.alg,
        base_url: opts.base_url.trim_end_matches('/').to_string(),
        now: normalize_time(opts.now),
    };
    let opts = &options;
    let now = opts.now;
    let day = Duration::days(1);
    let mut slots = SlotPlan {
        next_ca: 0,
        next_leaf: 0,
    };

    let root_validity = (now - day * 60, now + day * 3650);
    let ca_validity = (now - day * 45, now + day * 1825);

    let root = Ca::self_signed_with(
        &CertSpec::ca(ROOT, "Vigil Test Root CA", opts)
            .with_validity(root_validity.0, root_validity.1),
        slots.ca(),
    )?;
    let intermediate = root.issue_ca_with(
        &CertSpec::ca(INTERMEDIATE, "Vigil Test Intermediate CA", opts)
            .with_validity(ca_validity.0, ca_validity.1),
        slots.ca(),
    )?;
    let expired_intermediate = root.issue_ca_with(
        &CertSpec::ca(
            EXPIRED_INTERMEDIATE,
            "Vigil Test Expired Intermediate CA",
            opts,
        )
        .with_validity(ca_validity.0, now - day),
        slots.ca(),
    )?;
    let revoked_intermediate = root.issue_ca_with(
        &CertSpec::ca(
            REVOKED_INTERMEDIATE,
            "Vigil Test Revoked Intermediate CA",
            opts,
        )
        .with_validity(ca_validity.0, ca_validity.1),
        slots.ca(),
    )?;
    let other_root = Ca::self_signed_with(
        &CertSpec::ca(OTHER_ROOT, "Vigil Other Root CA", opts)
            .with_validity(root_validity.0, root_validity.1),
        slots.ca(),
    )?;
    let other_intermediate = other_root.issue_ca_with(
        &CertSpec::ca(OTHER_INTERMEDIATE, "Vigil Other Intermediate CA", opts)
            .with_validity(ca_validity.0, ca_validity.1),
        slots.ca(),
    )?;
    let forged_crl_key = slots.ca();

    let client_spec = |role: &str| CertSpec::leaf(role, &format!("{role}.vigil.test"), opts);

    let client = intermediate.issue_leaf_with(&client_spec(CLIENT), slots.leaf())?;
    let server = intermediate.issue_leaf_with(
        &client_spec(SERVER)
            .with_usage(LeafUsage::Server)
            .with_dns("server.vigil.test")
            .with_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        slots.leaf(),
    )?;
    let revoked_client =
        intermediate.issue_leaf_with(&client_spec(REVOKED_CLIENT), slots.leaf())?;
    let expired_client = intermediate.issue_leaf_with(
        &client_spec(EXPIRED_CLIENT).with_validity(now - day * 30, now - day),
        slots.leaf(),
    )?;
    let not_yet_valid_client = intermediate.issue_leaf_with(
        &client_spec(NOT_YET_VALID_CLIENT).with_validity(now + day, now + day * 366),
        slots.leaf(),
    )?;
    let bad_signature_client = crate::ca::corrupt(
        intermediate.issue_leaf_with(&client_spec(BAD_SIGNATURE_CLIENT), slots.leaf())?,
    )?;
    let leaf_of_expired_intermediate = expired_intermediate
        .issue_leaf_with(&client_spec(LEAF_OF_EXPIRED_INTERMEDIATE), slots.leaf())?;
    let leaf_of_revoked_intermediate = revoked_intermediate
        .issue_leaf_with(&client_spec(LEAF_OF_REVOKED_INTERMEDIATE), slots.leaf())?;
    let other_client =
        other_intermediate.issue_leaf_with(&client_spec(OTHER_CLIENT), slots.leaf())?;

    let revoked_at = now - Duration::hours(2);
    let fresh = CrlSpec::new(opts);
    let root_crl = root.crl(&fresh.clone().revoke(
        &revoked_intermediate.cert,
        revoked_at,
        Reason::CaCompromise,
    ))?;
    let intermediate_crl = renamed(
        intermediate.crl(&CrlSpec {
            number: 2,
            ..fresh
                .clone()
                .revoke(&revoked_client, revoked_at, Reason::KeyCompromise)
        })?,
        INTERMEDIATE_CRL,
    );
    let intermediate_stale_crl = renamed(
        intermediate.crl(&CrlSpec {
            this_update: now - day * 10,
            next_update: now - day,
            number: 1,
            revoked: Vec::new(),
        })?,
        INTERMEDIATE_STALE_CRL,
    );
    let intermediate_wrong_key_crl = renamed(
        intermediate.forged_crl_with(
            &CrlSpec {
                number: 3,
                ..fresh.clone()
            },
            opts.alg,
            forged_crl_key,
        )?,
        INTERMEDIATE_WRONG_KEY_CRL,
    );
    let revoked_intermediate_crl = revoked_intermediate.crl(&fresh)?;
    let expired_intermediate_crl = expired_intermediate.crl(&fresh)?;
    let other_root_crl = other_root.crl(&fresh)?;
    let other_intermediate_crl = other_intermediate.crl(&fresh)?;

    Ok(Pki {
        options: options.clone(),
        root,
        intermediate,
        expired_intermediate,
        revoked_intermediate,
        other_root,
        other_intermediate,
        client,
        server,
        revoked_client,
        expired_client,
        not_yet_valid_client,
        bad_signature_client,
        leaf_of_expired_intermediate,
        leaf_of_revoked_intermediate,
        other_client,
        root_crl,
        intermediate_crl,
        intermediate_stale_crl,
        intermediate_wrong_key_crl,
        revoked_intermediate_crl,
        expired_intermediate_crl,
        other_root_crl,
        other_intermediate_crl,
    })
}

/// Renames a CRL (CAs name their CRLs `{ca}.crl`; some fixtures need other names).
fn renamed(mut crl: Crl, name: &str) -> Crl {
    crl.name = name.to_string();
    crl
}

/// What a file listed in `manifest.json` contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A single certificate.
    Certificate,
    /// A PKCS#8 private key.
    Key,
    /// A CRL.
    Crl,
    /// A leaf certificate followed by its intermediate(s), PEM.
    Chain,
}

/// Encoding of a file listed in `manifest.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// PEM text.
    Pem,
    /// Raw DER.
    Der,
}

/// One file written by [`Pki::write_to`]. Optional fields are omitted from the JSON when
/// absent: certificate and chain entries carry `issuer`, `serial`, `not_before`,
/// `not_after` (of the certificate / chain's first certificate); CRL entries carry
/// `issuer`, `crl_number`, `this_update`, `next_update` and `revoked_serials`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the output directory.
    pub path: String,
    /// Role of the certificate, key or CRL.
    pub role: String,
    /// What the file holds.
    pub kind: FileKind,
    /// How it is encoded.
    pub format: FileFormat,
    /// Role of the signing CA (a root's own role for a root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Certificate serial number, lower-case hex, minimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Certificate notBefore, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Certificate notAfter, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// CRL number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_number: Option<u64>,
    /// CRL thisUpdate, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub this_update: Option<String>,
    /// CRL nextUpdate, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// Serials (lower-case hex) listed as revoked in a CRL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_serials: Option<Vec<String>>,
}

impl ManifestEntry {
    fn new(path: String, role: &str, kind: FileKind, format: FileFormat) -> Self {
        Self {
            path,
            role: role.to_string(),
            kind,
            format,
            issuer: None,
            serial: None,
            not_before: None,
            not_after: None,
            crl_number: None,
            this_update: None,
            next_update: None,
            revoked_serials: None,
        }
    }

    fn with_cert(mut self, cert: &Cert) -> Result<Self, FixtureError> {
        self.issuer = Some(cert.issuer.clone());
        self.serial = Some(cert.serial_hex());
        self.not_before = Some(rfc3339(cert.not_before)?);
        self.not_after = Some(rfc3339(cert.not_after)?);
        Ok(self)
    }

    fn with_crl(mut self, crl: &Crl) -> Result<Self, FixtureError> {
        self.issuer = Some(crl.issuer.clone());
        self.crl_number = Some(crl.number);
        self.this_update = Some(rfc3339(crl.this_update)?);
        self.next_update = Some(rfc3339(crl.next_update)?);
        self.revoked_serials = Some(crl.revoked_serials.iter().map(|s| der::hex(s)).collect());
        Ok(self)
    }
}

/// Contents of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The PKI's `now`, RFC 3339.
    pub generated_at: String,
    /// Key algorithm name (`p256`, `rsa2048`, `ed25519`).
    pub alg: String,
    /// Base URL of the CRL/OCSP URLs in the certificates.
    pub base_url: String,
    /// Every file written, `manifest.json` excluded.
    pub files: Vec<ManifestEntry>,
}

/// Formats a time as RFC 3339.
pub fn rfc3339(t: OffsetDateTime) -> Result<String, FixtureError> {
    t.format(&Rfc3339)
        .map_err(|e| FixtureError::Serialize(format!("formatting {t}: {e}")))
}

pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    data: &[u8],
    private: bool,
) -> Result<(), FixtureError> {
    let path = dir.join(name);
    let io = |source| FixtureError::Io {
        path: path.clone(),
        source,
    };
    fs::write(&path, data).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

impl Pki {
    /// All CAs: `root`, `intermediate`, `expired-intermediate`, `revoked-intermediate`,
    /// `other-root`, `other-intermediate`.
    pub fn cas(&self) -> impl Iterator<Item = &Ca> + '_ {
        [
            &self.root,
            &self.intermediate,
            &self.expired_intermediate,
            &self.revoked_intermediate,
            &self.other_root,
            &self.other_intermediate,
        ]
        .into_iter()
    }

    /// All leaf certificates.
    pub fn leaves(&self) -> impl Iterator<Item = &Cert> + '_ {
        [
            &self.client,
            &self.server,
            &self.revoked_client,
            &self.expired_client,
            &self.not_yet_valid_client,
            &self.bad_signature_client,
            &self.leaf_of_expired_intermediate,
            &self.leaf_of_revoked_intermediate,
            &self.other_client,
        ]
        .into_iter()
    }

    /// Every certificate: the CAs' (in [`Pki::cas`] order), then the leaves.
    pub fn certs(&self) -> impl Iterator<Item = &Cert> + '_ {
        self.cas().map(|ca| &ca.cert).chain(self.leaves())
    }

    /// Every CRL.
    pub fn crls(&self) -> impl Iterator<Item = &Crl> + '_ {
        [
            &self.root_crl,
            &self.intermediate_crl,
            &self.intermediate_stale_crl,
            &self.intermediate_wrong_key_crl,
            &self.revoked_intermediate_crl,
            &self.expired_intermediate_crl,
            &self.other_root_crl,
            &self.other_intermediate_crl,
        ]
        .into_iter()
    }

    /// The certificate with this role (CA or leaf).
    pub fn cert(&self, role: &str) -> Option<&Cert> {
        self.certs().find(|c| c.name == role)
    }

    /// The CA with this role.
    pub fn ca(&self, role: &str) -> Option<&Ca> {
        self.cas().find(|c| c.cert.name == role)
    }

    /// The CRL with this role, e.g. `"intermediate.crl"`.
    pub fn crl(&self, role: &str) -> Option<&Crl> {
        self.crls().find(|c| c.name == role)
    }

    /// The certificate with this role followed by its issuers, stopping before the
    /// self-signed root (a root's chain is just the root). `None` for an unknown role.
    pub fn chain(&self, role: &str) -> Option<Vec<&Cert>> {
        let mut cert = self.cert(role)?;
        let mut chain = vec![cert];
        // The deepest chain here is leaf -> intermediate -> root; the bound guards cycles.
        for _ in 0..8 {
            if cert.issuer == cert.name {
                break;
            }
            cert = self.cert(&cert.issuer)?;
            if cert.issuer == cert.name {
                break; // the root itself is not part of the chain
            }
            chain.push(cert);
        }
        Some(chain)
    }

    /// PEM of [`Pki::chain`]: the certificate, then its intermediate(s), not the root.
    /// Empty for an unknown role.
    pub fn chain_pem(&self, role: &str) -> String {
        self.chain(role)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.pem.as_str())
            .collect()
    }

    /// Writes every certificate, key, CRL and leaf chain into `dir` (created if needed),
    /// plus `manifest.json`, and returns the manifest.
    ///
    /// Per certificate (CA or leaf): `{role}.pem`, `{role}.der`, `{role}.key.pem`
    /// (mode 0600 on Unix). Per leaf: `{role}.chain.pem`. Per CRL: `{role}` (DER, e.g.
    /// `intermediate.crl`) and `{role}.pem`.
    pub fn write_to(&self, dir: &Path) -> Result<Manifest, FixtureError> {
        fs::create_dir_all(dir).map_err(|source| FixtureError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        let cas: Vec<&str> = self.cas().map(|c| c.name()).collect();

        for cert in self.certs() {
            let role = cert.name.as_str();
            let pem_name = format!("{role}.pem");
            write_file(dir, &pem_name, cert.pem.as_bytes(), false)?;
            files.push(
                ManifestEntry::new(pem_name, role, FileKind::Certificate, FileFormat::Pem)
                    .with_cert(cert)?,
            );
            let der_name = format!("{role}.der");
            write_file(dir, &der_name, &cert.der, false)?;
            files.push(
                ManifestEntry::new(der_name, role, FileKind::Certificate, FileFormat::Der)
                    .with_cert(cert)?,
            );
            let key_name = format!("{role}.key.pem");
            write_file(dir, &key_name, cert.key_pem.as_bytes(), true)?;
            files.push(ManifestEntry::new(
                key_name,
                role,
                FileKind::Key,
                FileFormat::Pem,
            ));
            if !cas.contains(&role) {
                let chain_name = format!("{role}.chain.pem");
                write_file(dir, &chain_name, self.chain_pem(role).as_bytes(), false)?;
                files.push(
                    ManifestEntry::new(chain_name, role, FileKind::Chain, FileFormat::Pem)
                        .with_cert(cert)?,
                );
            }
        }

        for crl in self.crls() {
            let role = crl.name.as_str();
            write_file(dir, role, &crl.der, false)?;
            files.push(
                ManifestEntry::new(role.to_string(), role, FileKind::Crl, FileFormat::Der)
                    .with_crl(crl)?,
            );
            let pem_name = format!("{role}.pem");
            write_file(dir, &pem_name, crl.pem.as_bytes(), false)?;
            files.push(
                ManifestEntry::new(pem_name, role, FileKind::Crl, FileFormat::Pem).with_crl(crl)?,
            );
        }

        let manifest = Manifest {
            generated_at: rfc3339(self.options.now)?,
            alg: self.options.alg.to_string(),
            base_url: self.options.base_url.clone(),
            files,
        };
        let mut json = serde_json::to_string_pretty(&manifest)
            .map_err(|e| FixtureError::Serialize(format!("manifest.json: {e}")))?;
        json.push('\n');
        write_file(dir, "manifest.json", json.as_bytes(), false)?;
        Ok(manifest)
    }
}
