//! Reading certificates and CRLs from bytes and files: PEM bundles or DER,
//! with clear errors for everything else.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::CertificateDer;

use crate::der::{self, tag};

/// Largest input file Vigil reads (CRLs of several million entries fit).
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

/// Why an input could not be used. Every variant names its source.
#[derive(Debug)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    Io {
        /// The path.
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
        /// Its size.
        size: u64,
    },
    /// A directory holds no certificate at all.
    NoCertificates {
        /// The directory.
        path: PathBuf,
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
