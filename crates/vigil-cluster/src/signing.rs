//! Operator signatures on deny records (Ed25519, RFC 8032): with a verify
//! key configured, a node applies only records signed by one of its keys,
//! so whoever can write to the bus still cannot set or lift a ban.
//!
//! Keys are the files `openssl genpkey -algorithm ed25519` and `openssl
//! pkey -pubout` write: a PKCS#8 private key and an X.509
//! SubjectPublicKeyInfo (RFC 8410), both PEM.

use std::path::Path;

use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

/// Domain separation: what a deny-record signature covers starts with this.
const CONTEXT: &[u8] = b"vigil-deny-record-v1\0";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4):
/// SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) },
/// followed by the 32-octet key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key that signs the deny records this node writes.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field(
                "public",
                &vigil_core::text::hex(self.pair.public_key().as_ref()),
            )
            .finish()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 Ed25519 private key (PEM `PRIVATE KEY`).
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_file(path)
            .map_err(|e| format!("{}: not a PEM private key ({e})", path.display()))?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(format!(
                "{}: expected a PKCS#8 Ed25519 key (openssl genpkey -algorithm ed25519)",
                path.display()
            ));
        };
        // `maybe_unchecked` accepts PKCS#8 v1 (no public key inside), which is
        // what OpenSSL writes; the public key is derived from the seed.
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.secret_pkcs8_der())
            .map_err(|e| format!("{}: not an Ed25519 private key ({e})", path.display()))?;
        Ok(Self { pair })
    }

    /// The matching verify key.
    pub fn verify_key(&self) -> VerifyKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        VerifyKey(key)
    }

    /// Signs `record` (the exact octets of a record's JSON).
    pub(crate) fn sign(&self, record: &[u8]) -> Vec<u8> {
        self.pair.sign(&message(record)).as_ref().to_vec()
    }
}

/// A public key whose signatures on deny records are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyKey([u8; 32]);

impl VerifyKey {
    /// Reads an Ed25519 SubjectPublicKeyInfo (PEM `PUBLIC KEY`).
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoDer::from_pem_file(path)
            .map_err(|e| format!("{}: not a PEM public key ({e})", path.display()))?;
        Self::from_spki(spki.as_ref()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// An Ed25519 SubjectPublicKeyInfo, DER.
    pub fn from_spki(der: &[u8]) -> Result<Self, String> {
        match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => {
                let mut out = [0u8; 32];
                out.copy_from_slice(key);
                Ok(Self(out))
            }
            _ => Err("not an Ed25519 public key (RFC 8410 SubjectPublicKeyInfo)".into()),
        }
    }

    /// Whether `sig` is this key's signature over `record`.
    pub(crate) fn verifies(&self, record: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(&message(record), sig)
            .is_ok()
    }
}

fn message(record: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + record.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(record);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_its_record_under_its_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let key = SigningKey { pair };
        let other = {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
            SigningKey {
                pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"),
            }
        };
        let sig = key.sign(b"{\"op\":\"set\"}");
        assert!(key.verify_key().verifies(b"{\"op\":\"set\"}", &sig));
        assert!(!key.verify_key().verifies(b"{\"op\":\"lift\"}", &sig));
        assert!(!other.verify_key().verifies(b"{\"op\":\"set\"}", &sig));
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&key.verify_key().0);
        assert_eq!(VerifyKey::from_spki(&spki), Ok(key.verify_key()));
        spki.push(0);
        assert!(VerifyKey::from_spki(&spki).is_err());
    }
}
