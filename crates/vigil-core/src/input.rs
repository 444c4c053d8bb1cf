//! Reading certificates, CRLs and private keys from bytes and files: PEM or
//! DER, with clear errors for everything else.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::der::{self, tag};

/// Largest input file Vigil reads (CRLs of several million entries fit).
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

/// Why an input could not be used. Every variant names its source.
#[derive(Debug)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The input is empty.
    Empty {
        /// Where it came from.
        source: String,
    },
    /// PEM without any section of the expected kind.
    WrongPemLabel {
        /// Where it came from.
        source: String,
        /// What was expected, e.g. `CERTIFICATE`.
        expected: &'static str,
        /// The labels that were found.
        found: Vec<String>,
    },
    /// Not PEM and not valid DER of the expected kind.
    Malformed {
        /// Where it came from.
        source: String,
        /// What is wrong.
        detail: String,
    },
    /// Larger than [`MAX_INPUT_BYTES`].
    TooLarge {
        /// Where it came from.
        source: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A directory holds no certificate at all.
    NoCertificates {
        /// The directory searched.
        path: PathBuf,
    },
    /// The private key is encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY`, or a
    /// legacy PEM key with `Proc-Type: 4,ENCRYPTED`); Vigil reads only
    /// unencrypted keys.
    EncryptedKey {
        /// Where it came from.
        source: String,
    },
    /// More than one private key where exactly one is expected.
    SeveralKeys {
        /// Where it came from.
        source: String,
        /// How many keys were found.
        count: usize,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Self::Empty { source } => write!(f, "{source}: file is empty"),
            Self::WrongPemLabel {
                source,
                expected,
                found,
            } => write!(
                f,
                "{source}: no PEM '{expected}' section (found: {})",
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(", ")
                }
            ),
            Self::Malformed { source, detail } => write!(f, "{source}: {detail}"),
            Self::TooLarge { source, size } => {
                write!(
                    f,
                    "{source}: {size} bytes is over the {MAX_INPUT_BYTES}-byte limit"
                )
            }
            Self::NoCertificates { path } => {
                write!(f, "{}: directory holds no certificate", path.display())
            }
            Self::EncryptedKey { source } => write!(
                f,
                "{source}: the private key is encrypted; give an unencrypted key \
                 (e.g. `openssl pkey -in KEY -out PLAIN_KEY`)"
            ),
            Self::SeveralKeys { source, count } => {
                write!(f, "{source}: {count} private keys where one is expected")
            }
        }
    }
}

impl std::error::Error for InputError {}

/// Reads a whole file, bounded by [`MAX_INPUT_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, InputError> {
    let io = |error| InputError::Io {
        path: path.to_owned(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            source: path.display().to_string(),
            size: meta.len(),
        });
    }
    std::fs::read(path).map_err(io)
}

/// Certificates from PEM (every `CERTIFICATE` section) or one DER certificate.
pub fn parse_certificates(
    bytes: &[u8],
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, InputError> {
    let ders = sections(bytes, source, SectionKind::Certificate, "CERTIFICATE")?;
    for der in &ders {
        crate::cert::CertInfo::parse(der).map_err(|e| InputError::Malformed {
            source: source.to_owned(),
            detail: match e {
                InputError::Malformed { detail, .. } => {
                    format!("not a valid certificate: {detail}")
                }
                other => other.to_string(),
            },
        })?;
    }
    Ok(ders.into_iter().map(CertificateDer::from).collect())
}

/// CRLs from PEM (every `X509 CRL` section) or one DER CRL. Only the outer
/// structure is checked here; the CRL parser checks the rest.
pub fn parse_crls(bytes: &[u8], source: &str) -> Result<Vec<Vec<u8>>, InputError> {
    sections(bytes, source, SectionKind::Crl, "X509 CRL")
}

/// Certificates from a file, or from every `.pem`/`.crt`/`.cer`/`.der` file
/// of a directory.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, InputError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|error| InputError::Io {
                path: path.to_owned(),
                error,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "pem" | "crt" | "cer" | "der"))
            })
            .collect();
        entries.sort();
        let mut out = Vec::new();
        for entry in entries {
            out.extend(load_certificates(&entry)?);
        }
        if out.is_empty() {
            return Err(InputError::NoCertificates {
                path: path.to_owned(),
            });
        }
        return Ok(out);
    }
    parse_certificates(&read_file(path)?, &path.display().to_string())
}

/// The private key of a file: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE
/// KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM, or one DER key of those forms.
/// Exactly one key: none, several, or an encrypted one is an error; other
/// PEM sections (e.g. the certificate chain in the same file) are ignored.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default())?;
/// # let dir = pki_fixtures::PkiDir::new(&pki)?;
/// # let path = dir.file("server.key.pem");
/// let key = vigil_core::input::load_private_key(&path)?; // e.g. "server.key.pem"
/// let chain = vigil_core::input::load_certificates(&dir.file("server.chain.pem"))?;
/// // Ready for rustls: `ServerConfig::builder()...with_single_cert(chain, key)`.
/// # assert!(matches!(key, rustls_pki_types::PrivateKeyDer::Pkcs8(_)));
/// # assert_eq!(chain.len(), 2);
/// # Ok(()) }
/// ```
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, InputError> {
    parse_private_key(&read_file(path)?, &path.display().to_string())
}

/// The private key in `bytes` (PEM or DER), as [`load_private_key`] reads a
/// file; `source` names the input in errors.
pub fn parse_private_key(bytes: &[u8], source: &str) -> Result<PrivateKeyDer<'static>, InputError> {
    let encrypted = || InputError::EncryptedKey {
        source: source.to_owned(),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty {
            source: source.to_owned(),
        });
    }
    if looks_like_pem(bytes) {
        // RFC 1421 headers of a legacy OpenSSL encrypted key; the base64
        // decoder would otherwise report them as bad PEM.
        const LEGACY_ENCRYPTED: &[u8] = b"Proc-Type: 4,ENCRYPTED";
        if bytes
            .windows(LEGACY_ENCRYPTED.len())
            .any(|w| w == LEGACY_ENCRYPTED)
        {
            return Err(encrypted());
        }
        let mut found = Vec::new();
        let mut keys = Vec::new();
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
            let (kind, der) = item.map_err(|e| InputError::Malformed {
                source: source.to_owned(),
                detail: pem_error(&e),
            })?;
            let key = match kind {
                SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
                SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
                SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
                other => {
                    found.push(format!("{other:?}"));
                    continue;
                }
            };
            der::single(key.secret_der(), tag::SEQUENCE).map_err(|e| InputError::Malformed {
                source: source.to_owned(),
                detail: format!("not a valid private key ({e})"),
            })?;
            keys.push(key);
        }
        let unknown = unknown_labels(bytes);
        if unknown.iter().any(|l| l == "ENCRYPTED PRIVATE KEY") {
            return Err(encrypted());
        }
        return match keys.len() {
            0 => {
                found.extend(unknown);
                Err(InputError::WrongPemLabel {
                    source: source.to_owned(),
                    expected: "PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
                    found,
                })
            }
            1 => Ok(keys.remove(0)),
            count => Err(InputError::SeveralKeys {
                source: source.to_owned(),
                count,
            }),
        };
    }
    let malformed = |detail: String| InputError::Malformed {
        source: source.to_owned(),
        detail,
    };
    let content = der::single(bytes, tag::SEQUENCE)
        .map_err(|e| malformed(format!("neither PEM nor DER ({e})")))?;
    // EncryptedPrivateKeyInfo (RFC 5958 §3) opens with an AlgorithmIdentifier
    // SEQUENCE; the plain forms open with an INTEGER version.
    if der::Reader::new(content).peek_tag() == Some(tag::SEQUENCE) {
        return Err(encrypted());
    }
    PrivateKeyDer::try_from(bytes.to_vec())
        .map_err(|e| malformed(format!("not a PKCS#8, SEC1 or PKCS#1 private key ({e})")))
}

fn sections(
    bytes: &[u8],
    source: &str,
    kind: SectionKind,
    label: &'static str,
) -> Result<Vec<Vec<u8>>, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty {
            source: source.to_owned(),
        });
    }
    if looks_like_pem(bytes) {
        let mut found = Vec::new();
        let mut out = Vec::new();
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
            let (k, der) = item.map_err(|e| InputError::Malformed {
                source: source.to_owned(),
                detail: pem_error(&e),
            })?;
            if k == kind {
                out.push(der);
            } else {
                found.push(format!("{k:?}"));
            }
        }
        if out.is_empty() {
            found.extend(unknown_labels(bytes));
            return Err(InputError::WrongPemLabel {
                source: source.to_owned(),
                expected: label,
                found,
            });
        }
        return Ok(out);
    }
    // DER: exactly one SEQUENCE spanning the whole input.
    der::single(bytes, tag::SEQUENCE).map_err(|e| InputError::Malformed {
        source: source.to_owned(),
        detail: format!("neither PEM nor DER ({e})"),
    })?;
    Ok(vec![bytes.to_vec()])
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Labels of PEM sections that pki-types does not know.
fn unknown_labels(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .filter(|l| SectionKind::try_from(l.as_bytes()).is_err())
        .map(str::to_owned)
        .collect()
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "bad PEM: missing end line '{}'",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "bad PEM: malformed BEGIN line '{}'",
            String::from_utf8_lossy(line)
        ),
        other => format!("bad PEM: {other}"),
    }
}
