//! `load_private_key` on keys made by the `openssl` command: every plain
//! form rustls accepts loads (and is the key openssl made, checked by ring),
//! while an encrypted key, a file without a key and a file with two are
//! refused with an error that says so.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls_pki_types::PrivateKeyDer;
use vigil_core::input::InputError;
use vigil_core::input::{load_private_key, parse_private_key};

/// Runs `openssl ARGS` and returns what it printed.
fn openssl(args: &[&str]) -> Vec<u8> {
    pki_fixtures::openssl::run(args).unwrap()
}

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A new P-256 key, PKCS#8 PEM (openssl's default output).
    fn ec(&self) -> PathBuf {
        let pem = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        self.write("ec.pkcs8.pem", &pem)
    }

    /// A new 2048-bit RSA key, PKCS#8 PEM.
    fn rsa(&self) -> PathBuf {
        let pem = openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]);
        self.write("rsa.pkcs8.pem", &pem)
    }

    /// `openssl pkey -in KEY EXTRA...` written to `name`.
    fn convert(&self, key: &std::path::Path, extra: &[&str], name: &str) -> PathBuf {
        let mut args = vec!["pkey", "-in", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = openssl(&args);
        self.write(name, &out)
    }
}

fn text(bytes: &std::path::Path) -> String {
    std::fs::read_to_string(bytes).unwrap()
}

/// The PKCS#8 DER of `key` as openssl writes it (`pkey -outform DER`
/// writes the traditional form).
fn pkcs8_der(key: &std::path::Path) -> Vec<u8> {
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        key.to_str().unwrap(),
        "-outform",
        "DER",
    ])
}

#[test]
fn a_pkcs8_ec_key_loads_and_signs() {
    let keys = Keys::new();
    let path = keys.ec();
    assert!(text(&path).contains("-----BEGIN PRIVATE KEY-----"));
    let key = load_private_key(&path).unwrap();
    let PrivateKeyDer::Pkcs8(der) = &key else {
        panic!("expected PKCS#8, got {key:?}");
    };
    assert_eq!(der.secret_pkcs8_der(), &pkcs8_der(&path)[..]);
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        der.secret_pkcs8_der(),
        &SystemRandom::new(),
    )
    .unwrap();
}

#[test]
fn a_sec1_ec_key_loads() {
    let keys = Keys::new();
    let path = keys.ec();
    let sec1 = keys.convert(&path, &["-traditional"], "ec.sec1.pem");
    assert!(text(&sec1).contains("-----BEGIN EC PRIVATE KEY-----"));
    let key = load_private_key(&sec1).unwrap();
    let PrivateKeyDer::Sec1(der) = &key else {
        panic!("expected SEC1, got {key:?}");
    };
    let expected = openssl(&["ec", "-in", path.to_str().unwrap(), "-outform", "DER"]);
    assert_eq!(der.secret_sec1_der(), &expected[..]);
}

#[test]
fn a_pkcs1_rsa_key_loads_and_signs() {
    let keys = Keys::new();
    let path = keys.rsa();
    let pkcs1 = keys.convert(&path, &["-traditional"], "rsa.pkcs1.pem");
    assert!(text(&pkcs1).contains("-----BEGIN RSA PRIVATE KEY-----"));
    let key = load_private_key(&pkcs1).unwrap();
    let PrivateKeyDer::Pkcs1(der) = &key else {
        panic!("expected PKCS#1, got {key:?}");
    };
    RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap();
}

#[test]
fn der_keys_load_in_each_form() {
    let keys = Keys::new();
    let ec = keys.ec();
    let rsa = keys.rsa();
    let pkcs8 = keys.write("ec.pkcs8.der", &pkcs8_der(&ec));
    assert!(matches!(
        load_private_key(&pkcs8).unwrap(),
        PrivateKeyDer::Pkcs8(_)
    ));
    let sec1 = openssl(&["ec", "-in", ec.to_str().unwrap(), "-outform", "DER"]);
    let sec1 = keys.write("ec.sec1.der", &sec1);
    assert!(matches!(
        load_private_key(&sec1).unwrap(),
        PrivateKeyDer::Sec1(_)
    ));
    let pkcs1 = keys.convert(&rsa, &["-traditional", "-outform", "DER"], "rsa.pkcs1.der");
    assert!(matches!(
        load_private_key(&pkcs1).unwrap(),
        PrivateKeyDer::Pkcs1(_)
    ));
}

#[test]
fn a_key_next_to_its_certificate_chain_loads() {
    let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
    let both = format!("{}{}", pki.server.pem, pki.server.key_pem);
    let key = parse_private_key(both.as_bytes(), "server.pem").unwrap();
    assert_eq!(key.secret_der(), &pki.server.key_pkcs8_der[..]);
}

fn assert_encrypted(path: &std::path::Path) {
    let err = load_private_key(path).unwrap_err();
    assert!(
        matches!(err, InputError::EncryptedKey { .. }),
        "{}: {err:?}",
        path.display()
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("encrypted"), "{message}");
}

#[test]
fn an_encrypted_key_is_refused_as_encrypted() {
    let keys = Keys::new();
    let ec = keys.ec();
    let pass = ["-aes256", "-passout", "pass:secret"];
    let pkcs8 = keys.convert(&ec, &pass, "ec.enc.pem");
    assert!(text(&pkcs8).contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_encrypted(&pkcs8);

    // OpenSSL's legacy form: a traditional PEM key with RFC 1421 headers.
    let mut legacy_args = vec!["-traditional"];
    legacy_args.extend_from_slice(&pass);
    let legacy = keys.convert(&ec, &legacy_args, "ec.enc.legacy.pem");
    assert!(text(&legacy).contains("Proc-Type: 4,ENCRYPTED"));
    assert_encrypted(&legacy);

    let der = openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        ec.to_str().unwrap(),
        "-v2",
        "aes256",
        "-outform",
        "DER",
        "-passout",
        "pass:secret",
    ]);
    assert_encrypted(&keys.write("ec.enc.der", &der));
}

#[test]
fn a_file_without_a_key_says_what_it_holds() {
    let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).unwrap();
    let keys = Keys::new();
    let path = keys.write("server.chain.pem", pki.server.pem.as_bytes());
    let err = load_private_key(&path).unwrap_err();
    let InputError::WrongPemLabel { found, .. } = &err else {
        panic!("expected WrongPemLabel, got {err:?}");
    };
    assert_eq!(found, &["Certificate".to_owned()]);
    let message = err.to_string();
    assert!(message.contains("PRIVATE KEY"), "{message}");
    assert!(message.contains("Certificate"), "{message}");

    let empty = keys.write("empty.pem", b"\n");
    assert!(matches!(
        load_private_key(&empty).unwrap_err(),
        InputError::Empty { .. }
    ));
    let garbage = keys.write("garbage.der", b"\x30\x03\x02\x01\x05");
    let err = load_private_key(&garbage).unwrap_err();
    assert!(matches!(err, InputError::Malformed { .. }), "{err:?}");
    let missing = keys.dir.path().join("missing.pem");
    assert!(matches!(
        load_private_key(&missing).unwrap_err(),
        InputError::Io { .. }
    ));
}

#[test]
fn two_keys_in_one_file_are_refused() {
    let keys = Keys::new();
    let ec = keys.ec();
    let rsa = keys.rsa();
    let both = format!("{}{}", text(&ec), text(&rsa));
    let path = keys.write("two.pem", both.as_bytes());
    let err = load_private_key(&path).unwrap_err();
    assert!(
        matches!(err, InputError::SeveralKeys { count: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("2 private keys"), "{err}");
}
