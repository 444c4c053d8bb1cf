//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while generating or writing fixtures.
#[derive(Debug)]
#[non_exhaustive]
pub enum FixtureError {
    /// A [`crate::CertSpec`], [`crate::CrlSpec`], role name, URL or other input was rejected
    /// before anything was signed.
    InvalidInput(String),
    /// Key generation, certificate or CRL signing failed inside the crypto/encoding layer.
    Generation(String),
    /// Writing a fixture file (or creating its directory) failed.
    Io {
        /// The path being written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Serialising `manifest.json` or formatting a timestamp failed.
    Serialize(String),
    /// The test responder ([`crate::responder`]) could not bind, re-bind or serve.
    Net {
        /// What was being done, e.g. `binding 127.0.0.1:0`.
        what: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An external program driven by [`crate::openssl`] (the `openssl` command) could not
    /// be run, failed, or did not produce what it was asked for.
    Tool(String),
}

impl FixtureError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }

    pub(crate) fn generation(what: &str, err: impl fmt::Display) -> Self {
        Self::Generation(format!("{what}: {err}"))
    }
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(msg) => write!(f, "invalid fixture input: {msg}"),
            Self::Generation(msg) => write!(f, "fixture generation failed: {msg}"),
            Self::Io { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            Self::Serialize(msg) => write!(f, "serialisation failed: {msg}"),
            Self::Net { what, source } => write!(f, "responder: {what}: {source}"),
            Self::Tool(msg) => write!(f, "external tool failed: {msg}"),
        }
    }
}

impl std::error::Error for FixtureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } | Self::Net { source, .. } => Some(source),
            _ => None,
        }
    }
}
