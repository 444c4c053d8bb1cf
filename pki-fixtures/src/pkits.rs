//! The NIST PKITS test table shipped in `tests/data/pkits/` (sections 4.1-4.7
//! and 4.14-4.15), for the conformance tests of the library and the CLI.
//!
//! Source of the expected results: NIST, *Public Key Interoperability Test
//! Suite (PKITS), Certification Path Validation*, version 1.0.1, 2011. See
//! `tests/data/pkits/README.md` for where the data files come from.

use std::path::{Path, PathBuf};

/// One PKITS test: a path to validate at 2020-01-01 with every listed CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkitsCase {
    /// Test number, e.g. `4.4.3`.
    pub id: String,
    /// Test name, e.g. `Invalid Revoked EE Test3`.
    pub name: String,
    /// Whether PKITS expects the path to validate.
    pub expected_valid: bool,
    /// End-entity certificate file, in `certs/`.
    pub ee: String,
    /// Intermediate and helper certificate files, in `certs/`.
    pub certs: Vec<String>,
    /// CRL files, in `crls/`.
    pub crls: Vec<String>,
    /// What the test checks.
    pub note: String,
}

impl PkitsCase {
    /// The section, e.g. `4.4` for `4.4.3`.
    pub fn section(&self) -> &str {
        self.id
            .rsplit_once('.')
            .map_or(self.id.as_str(), |(s, _)| s)
    }
}

/// The trust anchor file name in `certs/`.
pub const PKITS_ANCHOR: &str = "TrustAnchorRootCertificate.crt";

/// The validation time every case uses.
pub const PKITS_TIME: &str = "2020-01-01T00:00:00Z";

/// `tests/data/pkits` of the workspace.
pub fn pkits_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("data")
        .join("pkits")
}

/// Reads `pkits.tsv`.
pub fn pkits_cases(dir: &Path) -> Result<Vec<PkitsCase>, crate::FixtureError> {
    let path = dir.join("pkits.tsv");
    let text = std::fs::read_to_string(&path).map_err(|source| crate::FixtureError::Io {
        path: path.clone(),
        source,
    })?;
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                return Err(crate::FixtureError::InvalidInput(format!(
                    "pkits.tsv: bad line: {line}"
                )));
            }
            Ok(PkitsCase {
                id: f[0].to_owned(),
                name: f[1].to_owned(),
                expected_valid: match f[2] {
                    "valid" => true,
                    "invalid" => false,
                    other => {
                        return Err(crate::FixtureError::InvalidInput(format!(
                            "pkits.tsv: bad expected value {other}"
                        )))
                    }
                },
                ee: f[3].to_owned(),
                certs: list(f[4]),
                crls: list(f[5]),
                note: f.get(6).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}
