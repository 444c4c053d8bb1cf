//! A fixture PKI written to a temporary directory.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::pki::write_file;
use crate::{FixtureError, Manifest, Pki};

/// A [`Pki`] written by [`Pki::write_to`] into a fresh temporary directory, which is
/// removed when this is dropped. For tests that hand files to a program.
///
/// ```
/// let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default())?;
/// let dir = pki_fixtures::PkiDir::new(&pki)?;
/// assert!(dir.file("client.chain.pem").is_file());
/// let extra = dir.write("extra.pem", pki.client.pem.as_bytes())?;
/// assert_eq!(extra, dir.file("extra.pem"));
/// # Ok::<(), pki_fixtures::FixtureError>(())
/// ```
#[derive(Debug)]
pub struct PkiDir {
    dir: TempDir,
    manifest: Manifest,
}

impl PkiDir {
    /// Writes `pki` into a new temporary directory.
    pub fn new(pki: &Pki) -> Result<Self, FixtureError> {
        let dir = temp_dir("pki-fixtures-")?;
        let manifest = pki.write_to(dir.path())?;
        Ok(Self { dir, manifest })
    }

    /// The temporary directory the files are in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path of the file `name` in the directory (which need not exist).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to the file `name` in the directory and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, FixtureError> {
        write_file(self.dir.path(), name, bytes, false)?;
        Ok(self.file(name))
    }

    /// What [`Pki::write_to`] wrote.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

/// A new temporary directory (under the system's), removed when dropped.
pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir, FixtureError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| FixtureError::Io {
            path: std::env::temp_dir(),
            source,
        })
}
