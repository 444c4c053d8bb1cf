//! Key algorithms and key generation, including the per-process RSA key pool.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rcgen::{KeyPair, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, PKCS_RSA_SHA256};
use rustls_pki_types::PrivatePkcs8KeyDer;

use crate::FixtureError;

/// The key (and signature) algorithm of a generated certificate.
///
/// Signatures made *by* a key of this type use: ECDSA P-256 with SHA-256,
/// RSA PKCS#1 v1.5 with SHA-256, or pure Ed25519.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum KeyAlg {
    /// ECDSA on NIST P-256 (`p256`). The default: fast to generate.
    #[default]
    EcdsaP256,
    /// RSA with a 2048-bit modulus (`rsa2048`). Keys come from a shared per-process pool,
    /// see [`RSA_POOL_SIZE`].
    Rsa2048,
    /// Ed25519 (`ed25519`).
    Ed25519,
}

impl KeyAlg {
    /// Every supported algorithm, in a fixed order.
    pub const ALL: [KeyAlg; 3] = [KeyAlg::EcdsaP256, KeyAlg::Rsa2048, KeyAlg::Ed25519];

    /// The short name used by [`FromStr`], [`fmt::Display`], the CLI and `manifest.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::EcdsaP256 => "p256",
            KeyAlg::Rsa2048 => "rsa2048",
            KeyAlg::Ed25519 => "ed25519",
        }
    }

    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlg::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            KeyAlg::Rsa2048 => &PKCS_RSA_SHA256,
            KeyAlg::Ed25519 => &PKCS_ED25519,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlg {
    type Err = FixtureError;

    /// Parses `p256`, `rsa2048` or `ed25519` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                FixtureError::invalid(format!(
                    "unknown key algorithm {s:?} (expected p256, rsa2048 or ed25519)"
                ))
            })
    }
}

/// Number of RSA-2048 keys generated (once, lazily, on first use) per process.
///
/// `ring` cannot generate RSA keys and generating them with the `rsa` crate is slow, so
/// every RSA certificate made by this crate takes its key from this small shared pool.
/// **Fixture RSA keys are therefore reused across certificates, PKIs and tests in the same
/// process; they are test material and must never be used for anything real.**
///
/// Within one [`crate::generate`] call every CA gets a distinct pool key, and every leaf
/// gets a key different from its issuer's. Through the [`crate::Ca`] API a new key is
/// always different from the issuing CA's key, but two unrelated CAs may share one.
pub const RSA_POOL_SIZE: usize = 10;

/// PKCS#8 DER of each pool key.
static RSA_POOL: OnceLock<Result<Vec<Vec<u8>>, String>> = OnceLock::new();
/// Round-robin cursor for [`KeySource::Auto`].
static RSA_NEXT: AtomicUsize = AtomicUsize::new(0);

fn rsa_generate_one() -> Result<Vec<u8>, String> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| format!("RSA key generation: {e}"))?;
    let doc = key
        .to_pkcs8_der()
        .map_err(|e| format!("RSA PKCS#8 encoding: {e}"))?;
    Ok(doc.as_bytes().to_vec())
}

fn rsa_generate_pool() -> Result<Vec<Vec<u8>>, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, RSA_POOL_SIZE);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // How many pool indices i satisfy i % threads == t.
                let count = (RSA_POOL_SIZE - t).div_ceil(threads);
                scope.spawn(move || {
                    (0..count)
                        .map(|_| rsa_generate_one())
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut pool = Vec::with_capacity(RSA_POOL_SIZE);
        for handle in handles {
            match handle.join() {
                Ok(keys) => pool.extend(keys?),
                Err(_) => return Err("RSA key generation thread panicked".to_string()),
            }
        }
        Ok(pool)
    })
}

fn rsa_pool() -> Result<&'static [Vec<u8>], FixtureError> {
    match RSA_POOL.get_or_init(rsa_generate_pool) {
        Ok(pool) => Ok(pool),
        Err(e) => Err(FixtureError::Generation(e.clone())),
    }
}

/// Which pool key an RSA certificate should use. Ignored for other algorithms, whose
/// keys are always freshly generated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeySource {
    /// Next pool key in process-wide round-robin order, skipping `avoid`.
    Auto { avoid: Option<usize> },
    /// This exact pool index.
    Slot(usize),
}

/// A freshly made (or pool-assigned) key pair.
pub(crate) struct GeneratedKey {
    pub(crate) key: KeyPair,
    pub(crate) pkcs8: Vec<u8>,
    pub(crate) rsa_slot: Option<usize>,
}

pub(crate) fn generate_key(alg: KeyAlg, source: KeySource) -> Result<GeneratedKey, FixtureError> {
    match alg {
        KeyAlg::EcdsaP256 => {
            let key = KeyPair::generate_for(alg.signature_algorithm())
                .map_err(|e| FixtureError::generation("key generation", e))?;
            let pkcs8 = key.serialize_der();
            Ok(GeneratedKey {
                key,
                pkcs8,
                rsa_slot: None,
            })
        }
        KeyAlg::Ed25519 => {
            let generated = KeyPair::generate_for(&PKCS_ED25519)
                .map_err(|e| FixtureError::generation("key generation", e))?;
            let pkcs8 = ed25519_pkcs8_v1(generated.serialized_der())?;
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
                &PKCS_ED25519,
            )
            .map_err(|e| FixtureError::generation("re-loading Ed25519 key", e))?;
            Ok(GeneratedKey {
                key,
                pkcs8,
                rsa_slot: None,
            })
        }
        KeyAlg::Rsa2048 => {
            let pool = rsa_pool()?;
            let slot = match source {
                KeySource::Slot(i) if i < pool.len() => i,
                KeySource::Slot(i) => {
                    return Err(FixtureError::invalid(format!(
                        "RSA pool slot {i} out of range (pool has {} keys)",
                        pool.len()
                    )))
                }
                KeySource::Auto { avoid } => (0..pool.len())
                    .map(|_| RSA_NEXT.fetch_add(1, Ordering::Relaxed) % pool.len())
                    .find(|i| Some(*i) != avoid)
                    .ok_or_else(|| FixtureError::Generation("RSA key pool exhausted".into()))?,
            };
            let pkcs8 = pool[slot].clone();
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
                &PKCS_RSA_SHA256,
            )
            .map_err(|e| FixtureError::generation("loading pooled RSA key", e))?;
            Ok(GeneratedKey {
                key,
                pkcs8,
                rsa_slot: Some(slot),
            })
        }
    }
}

/// What follows the outer SEQUENCE header in an Ed25519 PKCS#8 v2 document (as ring
/// writes it), up to the 32-byte seed: version 1, id-Ed25519, OCTET STRING { OCTET STRING }.
const ED25519_V2_BODY_PREFIX: &[u8] = &[
    0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// An RFC 8410 PKCS#8 v1 Ed25519 private key up to the 32-byte seed.
const ED25519_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// ring writes Ed25519 keys as PKCS#8 v2 (with the public key), which OpenSSL 3.0 cannot
/// load; re-encode as the plain RFC 8410 v1 form that every tool reads.
fn ed25519_pkcs8_v1(v2: &[u8]) -> Result<Vec<u8>, FixtureError> {
    let seed = match v2 {
        // Outer SEQUENCE with a short-form length.
        [0x30, len, body @ ..] if usize::from(*len) == body.len() => body
            .strip_prefix(ED25519_V2_BODY_PREFIX)
            .and_then(|rest| rest.get(..32)),
        _ => None,
    }
    .ok_or_else(|| FixtureError::Generation("unexpected Ed25519 PKCS#8 layout".into()))?;
    let mut v1 = ED25519_V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    Ok(v1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_round_trip() {
        for alg in KeyAlg::ALL {
            assert_eq!(alg.to_string().parse::<KeyAlg>().ok(), Some(alg));
        }
        assert_eq!("P256".parse::<KeyAlg>().ok(), Some(KeyAlg::EcdsaP256));
        assert!("rsa4096".parse::<KeyAlg>().is_err());
        assert_eq!(KeyAlg::default(), KeyAlg::EcdsaP256);
    }

    #[test]
    fn ed25519_keys_are_pkcs8_v1() {
        let k = generate_key(KeyAlg::Ed25519, KeySource::Auto { avoid: None }).expect("key");
        assert_eq!(k.pkcs8.len(), 48);
        assert!(k.pkcs8.starts_with(ED25519_V1_PREFIX));
        assert_eq!(k.key.serialized_der(), k.pkcs8.as_slice());
    }
}
