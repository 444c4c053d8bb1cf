//! The `openssl` command-line tool as an OCSP responder for test certificates.
//!
//! [`OcspQuery`] builds an OCSP request with `openssl ocsp -issuer … -cert … -reqout …`
//! and answers it with the real OpenSSL responder,
//! `openssl ocsp -index … -rsigner … -rkey … -CA … -reqin … -respout … -ndays N`, from an
//! OpenSSL CA index file written from [`IndexEntry`]s. Everything happens in a fresh
//! temporary directory (removed afterwards) and never touches the network; the result is
//! the DER `OCSPResponse`. Inputs are PEM text, so certificates from anywhere can be used;
//! [`OcspQuery::from_issuer`], [`OcspQuery::signed_by`] and [`IndexEntry::good`] /
//! [`IndexEntry::revoked`] are shortcuts for this crate's [`Cert`]s.
//!
//! The tool is `$PKI_FIXTURES_OPENSSL` when that is set, `openssl` from `PATH` otherwise
//! ([`program`]). When it cannot be run every function here returns
//! [`FixtureError::Tool`] saying so, so that tests relying on it fail rather than skip.
//!
//! [`response_signature_range`] and [`corrupt_response_signature`] locate and damage the
//! signature of such a response while keeping its DER well-formed.
//!
//! ```
//! use pki_fixtures::openssl::{IndexEntry, OcspQuery};
//! use pki_fixtures::{PkiOptions, Reason};
//!
//! let pki = pki_fixtures::generate(&PkiOptions::default())?;
//! let revoked_at = pki.options.now - time::Duration::hours(1);
//! let der = OcspQuery::from_issuer(&pki.intermediate.cert)
//!     .about(&pki.client.pem)
//!     .entry(IndexEntry::revoked(&pki.client, revoked_at, Some(Reason::KeyCompromise)))
//!     .respond()?;
//! assert_eq!(der[0], 0x30);
//! let damaged = pki_fixtures::openssl::corrupt_response_signature(&der)?;
//! assert_eq!(damaged.len(), der.len());
//! # Ok::<(), pki_fixtures::FixtureError>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::pki::write_file;
use crate::pki_dir::temp_dir;
use crate::{der, Cert, FixtureError, Reason};

/// The environment variable naming the `openssl` program to run instead of `openssl` from
/// `PATH`.
pub const OPENSSL_ENV: &str = "PKI_FIXTURES_OPENSSL";

/// The checked `openssl` program.
struct Tool {
    program: OsString,
    version: String,
}

/// Finds the program and runs `openssl version` once per process.
fn tool() -> Result<&'static Tool, FixtureError> {
    static TOOL: OnceLock<Result<Tool, String>> = OnceLock::new();
    TOOL.get_or_init(probe)
        .as_ref()
        .map_err(|msg| FixtureError::Tool(msg.clone()))
}

fn probe() -> Result<Tool, String> {
    let program = std::env::var_os(OPENSSL_ENV)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from("openssl"));
    let shown = Path::new(&program).display().to_string();
    let out = Command::new(&program)
        .arg("version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{shown}` ({e}). The OCSP helpers of pki-fixtures need the OpenSSL 3 \
             command-line tool on PATH (e.g. `apt-get install openssl`) or named by \
             ${OPENSSL_ENV}; tests using them fail rather than skip without it."
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "`{shown} version` failed ({}): {}. The OCSP helpers of pki-fixtures need the \
             OpenSSL 3 command-line tool.",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Tool {
        program,
        version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    })
}

/// The program run as `openssl` (`$PKI_FIXTURES_OPENSSL`, or `openssl` from `PATH`),
/// after checking once per process that `openssl version` succeeds.
pub fn program() -> Result<&'static Path, FixtureError> {
    tool().map(|t| Path::new(&t.program))
}

/// What `openssl version` printed, e.g. `OpenSSL 3.0.13 30 Jan 2024 (Library: …)`.
pub fn version() -> Result<&'static str, FixtureError> {
    tool().map(|t| t.version.as_str())
}

/// Runs `openssl` with `args` and returns its standard output. A non-zero exit status is
/// an error naming the arguments, the status, stdout and stderr.
pub fn run<I, S>(args: I) -> Result<Vec<u8>, FixtureError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let tool = tool()?;
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new(&tool.program)
        .args(&args)
        .output()
        .map_err(|e| FixtureError::Tool(format!("cannot run openssl {args:?}: {e}")))?;
    if !out.status.success() {
        return Err(FixtureError::Tool(format!(
            "openssl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// What an [`IndexEntry`] says about its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexStatus {
    /// `V`: the responder answers `good`.
    Good,
    /// `R`: the responder answers `revoked`, with this revocationTime and, when given,
    /// this revocationReason.
    Revoked {
        /// The revocation time. Written as UTCTime, so it must fall in 1950–2049.
        at: OffsetDateTime,
        /// The reason. openssl knows neither [`Reason::PrivilegeWithdrawn`] nor
        /// [`Reason::AaCompromise`] in an index file; both are refused.
        reason: Option<Reason>,
    },
}

/// One line of an OpenSSL CA index file (`index.txt`), as read by `openssl ocsp -index`.
/// A serial that no entry lists is answered `unknown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Serial number, big-endian unsigned (leading zero octets are ignored).
    pub serial: Vec<u8>,
    /// The certificate's notAfter (the index's expiry column).
    pub not_after: OffsetDateTime,
    /// The subject column, e.g. `/CN=client`. openssl's responder does not read it.
    pub subject: String,
    /// Good or revoked.
    pub status: IndexStatus,
}

impl IndexEntry {
    /// `V`: `cert` is good. The subject column is `/CN={cert.name}`.
    pub fn good(cert: &Cert) -> Self {
        Self {
            serial: cert.serial.clone(),
            not_after: cert.not_after,
            subject: format!("/CN={}", cert.name),
            status: IndexStatus::Good,
        }
    }

    /// `R`: `cert` was revoked at `at`, for `reason` if given.
    pub fn revoked(cert: &Cert, at: OffsetDateTime, reason: Option<Reason>) -> Self {
        Self {
            status: IndexStatus::Revoked { at, reason },
            ..Self::good(cert)
        }
    }

    /// This entry as one index line, `\n` included.
    pub fn line(&self) -> Result<String, FixtureError> {
        let expiry = index_time(self.not_after, true)?;
        let serial = der::hex(&der::minimal_unsigned(&self.serial)).to_uppercase();
        let (kind, revocation) = match self.status {
            IndexStatus::Good => ("V", String::new()),
            IndexStatus::Revoked { at, reason } => {
                let at = index_time(at, false)?;
                match reason {
                    Some(reason) => ("R", format!("{at},{}", reason_name(reason)?)),
                    None => ("R", at),
                }
            }
        };
        Ok(format!(
            "{kind}\t{expiry}\t{revocation}\t{serial}\tunknown\t{}\n",
            self.subject
        ))
    }
}

/// The index file's name for a revocation reason.
fn reason_name(reason: Reason) -> Result<&'static str, FixtureError> {
    Ok(match reason {
        Reason::Unspecified => "unspecified",
        Reason::KeyCompromise => "keyCompromise",
        Reason::CaCompromise => "CACompromise",
        Reason::AffiliationChanged => "affiliationChanged",
        Reason::Superseded => "superseded",
        Reason::CessationOfOperation => "cessationOfOperation",
        Reason::CertificateHold => "certificateHold",
        Reason::RemoveFromCrl => "removeFromCRL",
        Reason::PrivilegeWithdrawn | Reason::AaCompromise => {
            return Err(FixtureError::invalid(format!(
                "an openssl index file cannot hold the revocation reason {reason:?}"
            )))
        }
    })
}

/// `YYMMDDHHMMSSZ` (UTCTime, years 1950–2049); with `generalized_ok`, other years as
/// `YYYYMMDDHHMMSSZ`.
fn index_time(t: OffsetDateTime, generalized_ok: bool) -> Result<String, FixtureError> {
    let t = t.to_offset(UtcOffset::UTC);
    let utc_time = (1950..2050).contains(&t.year());
    let formatted = if utc_time {
        t.format(format_description!(
            "[year repr:last_two][month][day][hour][minute][second]Z"
        ))
    } else if generalized_ok {
        t.format(format_description!(
            "[year][month][day][hour][minute][second]Z"
        ))
    } else {
        return Err(FixtureError::invalid(format!(
            "{t} cannot be written as a UTCTime in an openssl index file"
        )));
    };
    formatted.map_err(|e| FixtureError::Serialize(format!("formatting {t}: {e}")))
}

/// The text of an OpenSSL CA index file holding `entries`, one line each, in order.
pub fn index_text(entries: &[IndexEntry]) -> Result<String, FixtureError> {
    entries.iter().map(IndexEntry::line).collect()
}

/// Writes [`index_text`] of `entries` to `path`.
pub fn write_index(path: &Path, entries: &[IndexEntry]) -> Result<(), FixtureError> {
    let text = index_text(entries)?;
    std::fs::write(path, text).map_err(|source| FixtureError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The hash of the CertIDs in an OCSP request (and so in the response).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CertIdHash {
    /// SHA-1, openssl's default.
    #[default]
    Sha1,
    /// SHA-256 (`-sha256`).
    Sha256,
}

/// One OCSP exchange with the openssl responder: what to ask, who answers and from which
/// index. Build it with [`OcspQuery::new`] and the builder methods, then call
/// [`OcspQuery::respond`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspQuery {
    /// PEM of the CA that issued every certificate asked about: `-issuer` of the request
    /// and `-CA` of the responder.
    pub issuer_pem: String,
    /// PEM of each certificate asked about, one SingleRequest each, in order.
    pub cert_pems: Vec<String>,
    /// The CertID hash.
    pub hash: CertIdHash,
    /// Whether the request carries a nonce (openssl echoes it in the response).
    pub nonce: bool,
    /// The responder's index file.
    pub index: Vec<IndexEntry>,
    /// PEM of the certificate that signs the response (`-rsigner`).
    pub signer_pem: String,
    /// PEM of the signer's PKCS#8 private key (`-rkey`).
    pub signer_key_pem: String,
    /// `-ndays`: nextUpdate is this many days after thisUpdate.
    pub ndays: u32,
    /// Extra responder options, after all the others (e.g. `-resp_no_certs`,
    /// `-resp_key_id`).
    pub responder_args: Vec<String>,
}

impl OcspQuery {
    /// A query to the issuer (`issuer_pem`), which also signs the response with its key
    /// `issuer_key_pem`: no certificates and no index entries yet, SHA-1 CertIDs, no
    /// nonce, `-ndays 7`.
    pub fn new(issuer_pem: &str, issuer_key_pem: &str) -> Self {
        Self {
            issuer_pem: issuer_pem.to_owned(),
            cert_pems: Vec::new(),
            hash: CertIdHash::Sha1,
            nonce: false,
            index: Vec::new(),
            signer_pem: issuer_pem.to_owned(),
            signer_key_pem: issuer_key_pem.to_owned(),
            ndays: 7,
            responder_args: Vec::new(),
        }
    }

    /// [`OcspQuery::new`] for a CA certificate of this crate, which answers and signs.
    pub fn from_issuer(issuer: &Cert) -> Self {
        Self::new(&issuer.pem, &issuer.key_pem)
    }

    /// Also asks about this certificate (PEM; issued by the issuer).
    pub fn about(mut self, cert_pem: &str) -> Self {
        self.cert_pems.push(cert_pem.to_owned());
        self
    }

    /// Adds a line to the responder's index.
    pub fn entry(mut self, entry: IndexEntry) -> Self {
        self.index.push(entry);
        self
    }

    /// Adds lines to the responder's index.
    pub fn entries(mut self, entries: impl IntoIterator<Item = IndexEntry>) -> Self {
        self.index.extend(entries);
        self
    }

    /// Signs the response with this certificate and key (PEM) instead of the issuer's.
    pub fn signer(mut self, cert_pem: &str, key_pem: &str) -> Self {
        cert_pem.clone_into(&mut self.signer_pem);
        key_pem.clone_into(&mut self.signer_key_pem);
        self
    }

    /// [`OcspQuery::signer`] with a certificate of this crate and its key.
    pub fn signed_by(self, cert: &Cert) -> Self {
        self.signer(&cert.pem, &cert.key_pem)
    }

    /// Sets the CertID hash.
    pub fn hash(mut self, hash: CertIdHash) -> Self {
        self.hash = hash;
        self
    }

    /// Puts a nonce in the request.
    pub fn with_nonce(mut self) -> Self {
        self.nonce = true;
        self
    }

    /// Sets `-ndays`.
    pub fn ndays(mut self, days: u32) -> Self {
        self.ndays = days;
        self
    }

    /// Adds an option for the responder command.
    pub fn responder_arg(mut self, arg: &str) -> Self {
        self.responder_args.push(arg.to_owned());
        self
    }

    /// Writes the inputs into a fresh temporary directory, makes the request
    /// (`openssl ocsp -issuer [-sha256] -cert … -reqout [-no_nonce]`), answers it
    /// (`openssl ocsp -index -rsigner -rkey -CA -reqin -respout -ndays N …`) and returns
    /// the DER response. openssl stamps thisUpdate with the real clock.
    pub fn respond(&self) -> Result<Vec<u8>, FixtureError> {
        if self.cert_pems.is_empty() {
            return Err(FixtureError::invalid(
                "an OCSP query must ask about at least one certificate",
            ));
        }
        let tmp = temp_dir("pki-fixtures-ocsp-")?;
        let dir = tmp.path();
        write_file(dir, "issuer.pem", self.issuer_pem.as_bytes(), false)?;
        write_file(dir, "signer.pem", self.signer_pem.as_bytes(), false)?;
        write_file(dir, "signer.key.pem", self.signer_key_pem.as_bytes(), true)?;
        write_index(&dir.join("index.txt"), &self.index)?;

        let mut request: Vec<OsString> = vec!["ocsp".into(), "-issuer".into()];
        request.push(dir.join("issuer.pem").into());
        if self.hash == CertIdHash::Sha256 {
            // The digest applies to the -cert options after it.
            request.push("-sha256".into());
        }
        for (i, pem) in self.cert_pems.iter().enumerate() {
            let name = format!("cert-{i}.pem");
            write_file(dir, &name, pem.as_bytes(), false)?;
            request.extend(["-cert".into(), dir.join(name).into()]);
        }
        request.extend(["-reqout".into(), dir.join("request.der").into()]);
        if !self.nonce {
            request.push("-no_nonce".into());
        }
        run(&request)?;

        let response = dir.join("response.der");
        let mut answer: Vec<OsString> = vec!["ocsp".into()];
        for (flag, file) in [
            ("-index", "index.txt"),
            ("-rsigner", "signer.pem"),
            ("-rkey", "signer.key.pem"),
            ("-CA", "issuer.pem"),
            ("-reqin", "request.der"),
        ] {
            answer.extend([flag.into(), dir.join(file).into()]);
        }
        answer.extend(["-respout".into(), response.clone().into()]);
        answer.extend(["-ndays".into(), self.ndays.to_string().into()]);
        answer.extend(self.responder_args.iter().map(OsString::from));
        run(&answer)?;

        std::fs::read(&response).map_err(|e| {
            FixtureError::Tool(format!(
                "openssl ocsp wrote no response to {}: {e}",
                response.display()
            ))
        })
    }
}

/// (tag, start of content, end of content) of the DER element at `pos`, which must have
/// tag `tag`.
fn element(der: &[u8], pos: usize, tag: u8, what: &str) -> Result<(usize, usize), FixtureError> {
    let bad = || FixtureError::invalid(format!("not a DER OCSPResponse: no {what} at {pos}"));
    let (found, header, len) = der.get(pos..).and_then(der::read_header).ok_or_else(bad)?;
    let start = pos + header;
    let end = start
        .checked_add(len)
        .filter(|end| *end <= der.len())
        .ok_or_else(bad)?;
    if found != tag {
        return Err(bad());
    }
    Ok((start, end))
}

/// Where the signature value of a DER `OCSPResponse` is: the bits of the
/// BasicOCSPResponse's signature BIT STRING (after its unused-bits octet). An error for
/// anything else, including responses without responseBytes (e.g. `tryLater`).
pub fn response_signature_range(der: &[u8]) -> Result<Range<usize>, FixtureError> {
    let (response, _) = element(der, 0, 0x30, "OCSPResponse")?;
    let (_, status_end) = element(der, response, 0x0a, "responseStatus")?;
    let (bytes, _) = element(der, status_end, 0xa0, "responseBytes")?;
    let (rb, _) = element(der, bytes, 0x30, "ResponseBytes")?;
    let (_, type_end) = element(der, rb, 0x06, "responseType")?;
    let (octets, _) = element(der, type_end, 0x04, "response")?;
    let (basic, _) = element(der, octets, 0x30, "BasicOCSPResponse")?;
    let (_, tbs_end) = element(der, basic, 0x30, "tbsResponseData")?;
    let (_, alg_end) = element(der, tbs_end, 0x30, "signatureAlgorithm")?;
    let (start, end) = element(der, alg_end, 0x03, "signature")?;
    if der.get(start) != Some(&0) || end <= start + 1 {
        return Err(FixtureError::invalid(
            "not a DER OCSPResponse: the signature has unused bits or no octets",
        ));
    }
    Ok(start + 1..end)
}

/// A copy of a DER `OCSPResponse` whose signature value has the lowest bit of its last
/// octet flipped (the end of ECDSA's `s`). Every length stays the same, so the result is
/// still well-formed DER; only the signature is wrong.
pub fn corrupt_response_signature(der: &[u8]) -> Result<Vec<u8>, FixtureError> {
    let signature = response_signature_range(der)?;
    let mut out = der.to_vec();
    out[signature.end - 1] ^= 0x01;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ca, CertSpec, KeyAlg, PkiOptions};
    use time::macros::datetime;

    fn cert() -> Cert {
        let opts = PkiOptions {
            now: datetime!(2026-01-15 12:00:00 UTC),
            ..PkiOptions::default()
        };
        let root = Ca::new_root("r", "R", KeyAlg::EcdsaP256, &opts).expect("root");
        root.issue_leaf(&CertSpec::leaf("leaf", "leaf.test", &opts).with_serial(&[0, 0x0a, 0xbc]))
            .expect("leaf")
    }

    #[test]
    fn index_lines() {
        let cert = cert();
        let at = datetime!(2026-01-15 09:00:00 UTC);
        assert_eq!(
            IndexEntry::good(&cert).line().ok().as_deref(),
            Some("V\t270115120000Z\t\t0ABC\tunknown\t/CN=leaf\n")
        );
        let revoked = IndexEntry::revoked(&cert, at, Some(Reason::CaCompromise));
        assert_eq!(
            revoked.line().ok().as_deref(),
            Some("R\t270115120000Z\t260115090000Z,CACompromise\t0ABC\tunknown\t/CN=leaf\n")
        );
        let no_reason = IndexEntry::revoked(&cert, at, None);
        assert_eq!(
            no_reason.line().ok().as_deref(),
            Some("R\t270115120000Z\t260115090000Z\t0ABC\tunknown\t/CN=leaf\n")
        );
        let text = index_text(&[IndexEntry::good(&cert), no_reason]).expect("index");
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn index_refuses_what_openssl_cannot_read() {
        let cert = cert();
        let at = datetime!(2026-01-15 09:00:00 UTC);
        for reason in [Reason::PrivilegeWithdrawn, Reason::AaCompromise] {
            assert!(IndexEntry::revoked(&cert, at, Some(reason)).line().is_err());
        }
        let far = datetime!(2051-01-01 00:00:00 UTC);
        assert!(IndexEntry::revoked(&cert, far, None).line().is_err());
        let long_lived = IndexEntry {
            not_after: far,
            ..IndexEntry::good(&cert)
        };
        assert_eq!(
            long_lived.line().ok().as_deref(),
            Some("V\t20510101000000Z\t\t0ABC\tunknown\t/CN=leaf\n")
        );
    }

    #[test]
    fn signature_range_refuses_other_der() {
        assert!(response_signature_range(&[]).is_err());
        // tryLater: responseStatus only.
        assert!(response_signature_range(&[0x30, 0x03, 0x0a, 0x01, 0x03]).is_err());
        assert!(corrupt_response_signature(&cert().der).is_err());
    }

    #[test]
    fn a_query_must_ask_about_something() {
        let cert = cert();
        assert!(matches!(
            OcspQuery::from_issuer(&cert).respond(),
            Err(FixtureError::InvalidInput(_))
        ));
    }
}
