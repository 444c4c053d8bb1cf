//! Revocation policy: how much revocation checking a verdict demands.

use std::fmt;
use std::str::FromStr;

/// How missing or undeterminable revocation status is treated.
///
/// The default is [`RevocationPolicy::Require`]: fail closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RevocationPolicy {
    /// No revocation checking at all.
    Off,
    /// Soft-fail: a status that cannot be determined is accepted. A revoked
    /// answer or a bad CRL signature is still rejected.
    Prefer,
    /// Hard-fail: every certificate in scope needs an authoritative, fresh,
    /// verified answer.
    #[default]
    Require,
}

/// Which certificates revocation covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Depth {
    /// Only the end-entity certificate.
    Leaf,
    /// Every certificate below the trust anchor.
    #[default]
    Chain,
}

/// A policy or depth string that is not one of the allowed words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseWordError {
    expected: &'static str,
    found: String,
}

impl ParseWordError {
    pub(crate) fn new(expected: &'static str, found: &str) -> Self {
        Self {
            expected,
            found: found.into(),
        }
    }
}

impl fmt::Display for ParseWordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected one of {}, found '{}'",
            self.expected, self.found
        )
    }
}

impl std::error::Error for ParseWordError {}

impl FromStr for RevocationPolicy {
    type Err = ParseWordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            _ => Err(ParseWordError {
                expected: "off|prefer|require",
                found: s.into(),
            }),
        }
    }
}

impl fmt::Display for RevocationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Prefer => "prefer",
            Self::Require => "require",
        })
    }
}

impl FromStr for Depth {
    type Err = ParseWordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "leaf" => Ok(Self::Leaf),
            "chain" => Ok(Self::Chain),
            _ => Err(ParseWordError {
                expected: "leaf|chain",
                found: s.into(),
            }),
        }
    }
}

impl fmt::Display for Depth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Leaf => "leaf",
            Self::Chain => "chain",
        })
    }
}
