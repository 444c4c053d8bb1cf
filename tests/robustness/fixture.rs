//! The fixture PKI and what the tests derive from it, built once.

use std::sync::OnceLock;
use std::time::SystemTime;

use pki_fixtures::{KeyAlg, Pki, PkiOptions};
use vigil_core::revocation::{CrlSigner, ParsedCrl};
use vigil_core::{
    CertificateDer, CrlLoad, ReasonCode, RevocationPolicy, TrustStore, Usage, Verifier,
    VerifyOptions,
};

/// The fixture PKI and what the tests derive from it, built once.
pub(crate) struct Fx {
    pub(crate) pki: Pki,
    /// When every verification happens (the fixture's `now`).
    pub(crate) now: SystemTime,
    /// client, intermediate
    pub(crate) client_chain: Vec<CertificateDer<'static>>,
    /// revoked-client, intermediate
    pub(crate) revoked_chain: Vec<CertificateDer<'static>>,
    /// The intermediate as a CRL signer.
    pub(crate) signer: CrlSigner,
    /// The original intermediate CRL's thisUpdate / nextUpdate / entries.
    pub(crate) crl_this_update: i64,
    pub(crate) crl_next_update: Option<i64>,
    pub(crate) crl_entries: usize,
}

pub(crate) fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let pki = pki_fixtures::generate(&PkiOptions::default()).unwrap();
        assert_eq!(
            pki.options.alg,
            KeyAlg::EcdsaP256,
            "re-signing assumes P-256"
        );
        let now = SystemTime::from(pki.options.now);
        let client_chain = vec![
            CertificateDer::from(pki.client.der.clone()),
            CertificateDer::from(pki.intermediate.cert.der.clone()),
        ];
        let revoked_chain = vec![
            CertificateDer::from(pki.revoked_client.der.clone()),
            CertificateDer::from(pki.intermediate.cert.der.clone()),
        ];
        let signer = CrlSigner::from_cert_der(&pki.intermediate.cert.der).unwrap();
        let crl = ParsedCrl::from_der(&pki.intermediate_crl.der)
            .unwrap()
            .verify(&signer)
            .unwrap();
        assert_eq!(crl.len(), 1);
        assert!(crl.lookup(&pki.revoked_client.serial).is_some());
        assert!(crl.lookup(&pki.client.serial).is_none());
        let fx = Fx {
            crl_this_update: crl.this_update(),
            crl_next_update: crl.next_update(),
            crl_entries: crl.len(),
            pki,
            now,
            client_chain,
            revoked_chain,
            signer,
        };
        // Baseline: the good chain is accepted, the revoked one is not.
        let v = verifier(&fx, true);
        let good = v.verify_uncached(&fx.client_chain, &require(), fx.now);
        assert!(good.is_accepted(), "baseline: {}", good.to_json());
        let bad = v.verify_uncached(&fx.revoked_chain, &require(), fx.now);
        assert_eq!(
            bad.reason,
            ReasonCode::Revoked,
            "baseline: {}",
            bad.to_json()
        );
        fx
    })
}

pub(crate) fn options(policy: RevocationPolicy) -> VerifyOptions {
    VerifyOptions::new(Usage::Client).with_policy(policy)
}

pub(crate) fn require() -> VerifyOptions {
    options(RevocationPolicy::Require)
}

/// Root anchor, the intermediate as a known CA, the root CRL, and the
/// original intermediate CRL when `with_crl`.
pub(crate) fn verifier(fx: &Fx, with_crl: bool) -> Verifier {
    let mut trust = TrustStore::new();
    trust
        .add(CertificateDer::from(fx.pki.root.cert.der.clone()))
        .unwrap();
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&CertificateDer::from(fx.pki.intermediate.cert.der.clone()))
        .unwrap();
    assert_eq!(
        v.add_crl(&fx.pki.root_crl.der).unwrap(),
        CrlLoad::Verified { entries: 1 }
    );
    if with_crl {
        assert_eq!(
            v.add_crl(&fx.pki.intermediate_crl.der).unwrap(),
            CrlLoad::Verified { entries: 1 }
        );
    }
    v
}

/// The intermediate's private key (PKCS#8), which signs leaves and CRLs.
pub(crate) fn intermediate_key(fx: &Fx) -> &[u8] {
    &fx.pki.intermediate.cert.key_pkcs8_der
}

/// `leaf` followed by the fixture's intermediate.
pub(crate) fn over_intermediate<'a>(
    fx: &Fx,
    leaf: impl Into<CertificateDer<'a>>,
) -> [CertificateDer<'a>; 2] {
    [leaf.into(), fx.client_chain[1].clone()]
}
