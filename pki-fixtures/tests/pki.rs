//! Behavioural tests: parse everything that `generate` produces and check it against the
//! documented shape, both with x509-parser and with rustls-webpki.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use pki_fixtures::{
    generate, roles, Ca, Cert, CertSpec, Crl, CrlSpec, FileFormat, FileKind, KeyAlg, LeafUsage,
    Manifest, Pki, PkiOptions, Reason, RevokedEntry,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Version};
use x509_parser::revocation_list::CertificateRevocationList;

const BASE: &str = "http://fixtures.test:9999";

fn opts(alg: KeyAlg) -> PkiOptions {
    PkiOptions {
        alg,
        base_url: format!("{BASE}/"), // trailing slash must be ignored
        // Sub-second part must be dropped by generate().
        now: OffsetDateTime::from_unix_timestamp(1_750_000_000)
            .expect("valid timestamp")
            .replace_nanosecond(123_456_789)
            .expect("valid nanos"),
    }
}

fn parse(cert: &Cert) -> X509Certificate<'_> {
    let (rest, x) = X509Certificate::from_der(&cert.der)
        .unwrap_or_else(|e| panic!("{}: does not parse: {e}", cert.name));
    assert!(rest.is_empty(), "{}: trailing data", cert.name);
    x
}

fn parse_crl(crl: &Crl) -> CertificateRevocationList<'_> {
    let (rest, x) = CertificateRevocationList::from_der(&crl.der)
        .unwrap_or_else(|e| panic!("{}: does not parse: {e}", crl.name));
    assert!(rest.is_empty(), "{}: trailing data", crl.name);
    x
}

fn ski<'a>(x: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    x.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
}

fn aki_of(exts: &[x509_parser::extensions::X509Extension<'_>]) -> Option<Vec<u8>> {
    exts.iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(a) => {
            a.key_identifier.as_ref().map(|k| k.0.to_vec())
        }
        _ => None,
    })
}

fn crl_dp_uris(x: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for e in x.iter_extensions() {
        if let ParsedExtension::CRLDistributionPoints(dps) = e.parsed_extension() {
            for dp in dps.iter() {
                if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                    for n in names {
                        if let GeneralName::URI(u) = n {
                            out.push((*u).to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

fn ocsp_uris(x: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for e in x.iter_extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = e.parsed_extension() {
            assert!(!e.critical);
            for d in &aia.accessdescs {
                assert_eq!(d.access_method.to_id_string(), "1.3.6.1.5.5.7.48.1");
                if let GeneralName::URI(u) = d.access_location {
                    out.push(u.to_string());
                }
            }
        }
    }
    out
}

fn ca_of<'p>(pki: &'p Pki, cert: &Cert) -> &'p Ca {
    pki.ca(&cert.issuer)
        .unwrap_or_else(|| panic!("{}: issuer {} is not a CA", cert.name, cert.issuer))
}

/// Everything that must hold for any algorithm.
fn check_pki(pki: &Pki, alg: KeyAlg) {
    let now = pki.options.now;
    assert_eq!(now.nanosecond(), 0);
    let day = Duration::days(1);

    // Roles are unique and complete.
    let cert_roles: Vec<&str> = pki.certs().map(|c| c.name.as_str()).collect();
    assert_eq!(cert_roles.len(), 15);
    assert_eq!(cert_roles.iter().collect::<HashSet<_>>().len(), 15);
    for role in [
        roles::ROOT,
        roles::INTERMEDIATE,
        roles::CLIENT,
        roles::SERVER,
        roles::REVOKED_CLIENT,
        roles::EXPIRED_CLIENT,
        roles::NOT_YET_VALID_CLIENT,
        roles::BAD_SIGNATURE_CLIENT,
        roles::EXPIRED_INTERMEDIATE,
        roles::LEAF_OF_EXPIRED_INTERMEDIATE,
        roles::REVOKED_INTERMEDIATE,
        roles::LEAF_OF_REVOKED_INTERMEDIATE,
        roles::OTHER_ROOT,
        roles::OTHER_INTERMEDIATE,
        roles::OTHER_CLIENT,
    ] {
        assert!(pki.cert(role).is_some(), "missing {role}");
    }
    assert!(pki.cert("nope").is_none());
    assert_eq!(pki.crls().count(), 8);

    let ca_names: HashSet<&str> = pki.cas().map(|c| c.name()).collect();
    let mut ca_spkis = HashSet::new();
    for ca in pki.cas() {
        assert!(
            ca_spkis.insert(parse(&ca.cert).public_key().raw.to_vec()),
            "{}: CA key reused",
            ca.name()
        );
    }

    for cert in pki.certs() {
        let x = parse(cert);
        let name = cert.name.as_str();
        let is_ca = ca_names.contains(name);
        let issuer = ca_of(pki, cert);
        let ix = parse(&issuer.cert);

        assert_eq!(x.version(), X509Version::V3, "{name}");
        assert_eq!(
            x.issuer().as_raw(),
            ix.subject().as_raw(),
            "{name}: issuer DN"
        );
        assert_eq!(x.raw_serial(), cert.serial.as_slice(), "{name}: serial");
        assert_eq!(cert.serial.len(), 16, "{name}: random serials are 16 bytes");
        assert_eq!(
            x.validity().not_before.timestamp(),
            cert.not_before.unix_timestamp()
        );
        assert_eq!(
            x.validity().not_after.timestamp(),
            cert.not_after.unix_timestamp()
        );
        assert_eq!(cert.alg, alg);
        assert_eq!(
            x.subject()
                .iter_organization()
                .next()
                .and_then(|o| o.as_str().ok()),
            Some(pki_fixtures::ORGANIZATION)
        );

        // Signature: good for everything but the bad-signature leaf.
        let sig = x.verify_signature(Some(ix.public_key()));
        if name == roles::BAD_SIGNATURE_CLIENT {
            assert!(sig.is_err(), "bad-signature-client verifies");
        } else {
            assert!(sig.is_ok(), "{name}: signature does not verify: {sig:?}");
        }

        // Key material matches the certificate.
        assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let key = rcgen_key(&cert.key_pkcs8_der);
        assert_eq!(
            key.as_slice(),
            x.public_key().subject_public_key.data.as_ref(),
            "{name}: key mismatch"
        );
        if !is_ca {
            assert!(
                !ca_spkis.contains(x.public_key().raw),
                "{name}: leaf shares a CA key"
            );
        }

        // Key identifiers.
        let aki = aki_of(x.extensions()).unwrap_or_else(|| panic!("{name}: no AKI"));
        assert_eq!(aki, issuer.key_id(), "{name}: AKI");
        assert_eq!(ski(&ix), Some(issuer.key_id()), "{name}: issuer SKI");

        // Basic constraints and key usage.
        let bc = x
            .basic_constraints()
            .expect("bc parses")
            .expect("bc present");
        assert!(bc.critical);
        assert_eq!(bc.value.ca, is_ca, "{name}: cA flag");
        let ku = x.key_usage().expect("ku parses").expect("ku present");
        assert!(ku.critical);
        let eku = x.extended_key_usage().expect("eku parses");
        if is_ca {
            assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
            assert!(!ku.value.digital_signature());
            assert!(ski(&x).is_some(), "{name}: CA without SKI");
            assert!(eku.is_none(), "{name}: CA with EKU");
        } else {
            assert!(ku.value.digital_signature());
            assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
            assert_eq!(
                ku.value.key_encipherment(),
                alg == KeyAlg::Rsa2048,
                "{name}"
            );
            let eku = eku.expect("leaf EKU").value;
            let server = name == roles::SERVER;
            assert_eq!(eku.server_auth, server, "{name}: serverAuth");
            assert_eq!(eku.client_auth, !server, "{name}: clientAuth");
            assert!(!eku.any && eku.other.is_empty());
        }

        // Revocation pointers.
        let is_root = cert.issuer == cert.name;
        if is_root {
            assert!(
                crl_dp_uris(&x).is_empty() && ocsp_uris(&x).is_empty(),
                "{name}"
            );
            assert!(x.verify_signature(None).is_ok(), "{name}: not self-signed");
        } else {
            let dp = format!("{BASE}/crl/{}.crl", cert.issuer);
            assert_eq!(crl_dp_uris(&x), vec![dp], "{name}: CRL DP");
            assert_eq!(
                ocsp_uris(&x),
                vec![format!("{BASE}/ocsp/{}", cert.issuer)],
                "{name}"
            );
            // Every DP resolves to a CRL of the right CA in the PKI.
            let crl = pki
                .crl(&format!("{}.crl", cert.issuer))
                .unwrap_or_else(|| panic!("{name}: no CRL for its issuer"));
            assert_eq!(crl.issuer, cert.issuer);
        }
    }

    // Validity windows.
    let valid_now: Vec<&str> = pki
        .certs()
        .filter(|c| c.is_valid_at(now))
        .map(|c| c.name.as_str())
        .collect();
    let invalid: HashSet<&str> = pki
        .certs()
        .map(|c| c.name.as_str())
        .filter(|n| !valid_now.contains(n))
        .collect();
    assert_eq!(
        invalid,
        HashSet::from([
            roles::EXPIRED_CLIENT,
            roles::NOT_YET_VALID_CLIENT,
            roles::EXPIRED_INTERMEDIATE
        ])
    );
    assert_eq!(pki.expired_client.not_after, now - day);
    assert_eq!(pki.expired_client.not_before, now - day * 30);
    assert_eq!(pki.not_yet_valid_client.not_before, now + day);
    assert_eq!(pki.expired_intermediate.cert.not_after, now - day);
    assert!(pki.leaf_of_expired_intermediate.is_valid_at(now));
    // Leaves sit inside their issuer's window (except under the expired CA).
    for leaf in pki.leaves() {
        let issuer = &ca_of(pki, leaf).cert;
        if issuer.name != roles::EXPIRED_INTERMEDIATE {
            assert!(issuer.not_before <= leaf.not_before && leaf.not_after <= issuer.not_after);
        }
    }

    // Names.
    let server = parse(&pki.server);
    let san = server
        .subject_alternative_name()
        .expect("san")
        .expect("san present");
    assert_eq!(
        san.value.general_names,
        vec![
            GeneralName::DNSName("server.vigil.test"),
            GeneralName::IPAddress(&[127, 0, 0, 1])
        ]
    );
    let client = parse(&pki.client);
    assert_eq!(
        client
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok()),
        Some("client.vigil.test")
    );
    assert_ne!(
        parse(&pki.other_root.cert).subject().as_raw(),
        parse(&pki.root.cert).subject().as_raw()
    );

    check_crls(pki);
    check_chains(pki);
}

/// The raw public key bytes of a PKCS#8 key, via rcgen (as the lib uses).
fn rcgen_key(pkcs8: &[u8]) -> Vec<u8> {
    // Re-derive through ring-compatible parsing in x509-parser's terms: sign nothing, just
    // compare the public key that a KeyPair built from the PKCS#8 reports.
    let kp = rcgen::KeyPair::try_from(pkcs8).expect("key parses");
    rcgen::PublicKeyData::der_bytes(&kp).to_vec()
}

fn check_crls(pki: &Pki) {
    let now = pki.options.now;
    let day = Duration::days(1);
    let mut names = HashSet::new();
    for crl in pki.crls() {
        assert!(names.insert(crl.name.clone()), "duplicate CRL {}", crl.name);
        let x = parse_crl(crl);
        let ca = pki.ca(&crl.issuer).expect("CRL issuer is a CA");
        let cax = parse(&ca.cert);
        assert_eq!(x.version(), Some(X509Version::V2), "{}", crl.name);
        assert_eq!(
            x.issuer().as_raw(),
            cax.subject().as_raw(),
            "{}: issuer",
            crl.name
        );
        assert_eq!(
            aki_of(x.extensions()).as_deref(),
            Some(ca.key_id()),
            "{}: AKI",
            crl.name
        );
        assert_eq!(
            x.crl_number().map(|n| n.to_bytes_be()),
            Some(
                crl.number
                    .to_be_bytes()
                    .iter()
                    .copied()
                    .skip_while(|b| *b == 0)
                    .collect::<Vec<_>>()
            )
            .map(|v| if v.is_empty() { vec![0] } else { v }),
            "{}: number",
            crl.name
        );
        assert_eq!(
            x.last_update().timestamp(),
            crl.this_update.unix_timestamp()
        );
        assert_eq!(
            x.next_update().map(|t| t.timestamp()),
            Some(crl.next_update.unix_timestamp())
        );
        assert!(crl.pem.starts_with("-----BEGIN X509 CRL-----\n"));
        let listed: Vec<Vec<u8>> = x
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        assert_eq!(listed, crl.revoked_serials, "{}: entries", crl.name);

        let sig = x.verify_signature(cax.public_key());
        if crl.name == roles::INTERMEDIATE_WRONG_KEY_CRL {
            assert!(
                sig.is_err(),
                "wrong-key CRL verifies against the intermediate"
            );
        } else {
            assert!(sig.is_ok(), "{}: signature: {sig:?}", crl.name);
        }
        if crl.name == roles::INTERMEDIATE_STALE_CRL {
            assert!(crl.next_update < now);
            assert_eq!(crl.this_update, now - day * 10);
            assert_eq!(crl.next_update, now - day);
        } else {
            assert_eq!(crl.this_update, now - Duration::hours(1));
            assert_eq!(crl.next_update, now + day * 7);
        }
    }

    let entry = |crl: &Crl| {
        let x = parse_crl(crl);
        x.iter_revoked_certificates()
            .map(|r| {
                (
                    r.raw_serial().to_vec(),
                    r.reason_code().map(|(_, c)| c.0),
                    r.revocation_date.timestamp(),
                )
            })
            .collect::<Vec<_>>()
    };
    let revoked_at = (now - Duration::hours(2)).unix_timestamp();
    assert_eq!(
        entry(&pki.intermediate_crl),
        vec![(pki.revoked_client.serial.clone(), Some(1), revoked_at)]
    );
    assert_eq!(
        entry(&pki.root_crl),
        vec![(
            pki.revoked_intermediate.cert.serial.clone(),
            Some(2),
            revoked_at
        )]
    );
    for empty in [
        &pki.intermediate_stale_crl,
        &pki.intermediate_wrong_key_crl,
        &pki.revoked_intermediate_crl,
        &pki.expired_intermediate_crl,
        &pki.other_root_crl,
        &pki.other_intermediate_crl,
    ] {
        assert!(entry(empty).is_empty(), "{}", empty.name);
    }
    assert_eq!(pki.intermediate_crl.number, 2);
    assert_eq!(pki.intermediate_stale_crl.number, 1);
    assert_eq!(pki.intermediate_wrong_key_crl.number, 3);
    assert_eq!(pki.intermediate_wrong_key_crl.issuer, roles::INTERMEDIATE);
    assert_eq!(pki.root_crl.number, 1);
}

fn check_chains(pki: &Pki) {
    assert_eq!(
        pki.chain_pem("client"),
        format!("{}{}", pki.client.pem, pki.intermediate.cert.pem)
    );
    assert_eq!(
        pki.chain_pem(roles::OTHER_CLIENT),
        format!(
            "{}{}",
            pki.other_client.pem, pki.other_intermediate.cert.pem
        )
    );
    assert_eq!(
        pki.chain_pem(roles::LEAF_OF_REVOKED_INTERMEDIATE),
        format!(
            "{}{}",
            pki.leaf_of_revoked_intermediate.pem, pki.revoked_intermediate.cert.pem
        )
    );
    assert_eq!(
        pki.chain_pem(roles::INTERMEDIATE),
        pki.intermediate.cert.pem
    );
    assert_eq!(pki.chain_pem(roles::ROOT), pki.root.cert.pem);
    assert_eq!(pki.chain_pem("unknown"), "");
    assert!(pki.chain("unknown").is_none());
}

#[test]
fn standard_pki_p256() {
    let pki = generate(&opts(KeyAlg::EcdsaP256)).expect("generate");
    check_pki(&pki, KeyAlg::EcdsaP256);
    webpki_checks(&pki);
}

#[test]
fn standard_pki_ed25519() {
    let pki = generate(&opts(KeyAlg::Ed25519)).expect("generate");
    check_pki(&pki, KeyAlg::Ed25519);
    webpki_checks(&pki);
}

#[test]
fn standard_pki_rsa2048() {
    let pki = generate(&opts(KeyAlg::Rsa2048)).expect("generate");
    check_pki(&pki, KeyAlg::Rsa2048);
    webpki_checks(&pki);
    let x = parse(&pki.client);
    assert_eq!(
        x.public_key().parsed().map(|k| k.key_size()).ok(),
        Some(2048)
    );
}

#[test]
fn pki_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pki>();
    assert_send_sync::<Ca>();
    assert_send_sync::<pki_fixtures::FixtureError>();
}

#[test]
fn default_options() {
    let o = PkiOptions::default();
    assert_eq!(o.alg, KeyAlg::EcdsaP256);
    assert_eq!(o.base_url, "http://127.0.0.1:8080");
    assert_eq!(o.now.nanosecond(), 0);
    assert!((OffsetDateTime::now_utc() - o.now).abs() < Duration::minutes(1));
}

mod webpki_support {
    use pki_fixtures::{Cert, Crl};
    use rustls_pki_types::{CertificateDer, UnixTime};
    use time::OffsetDateTime;
    use webpki::{
        BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage,
        RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
    };

    /// Verifies `leaf` for `usage` with `chain` as intermediates and `root` as the only
    /// anchor, checking revocation of the whole chain against `crls` (unknown status denied,
    /// expired CRLs rejected).
    pub(crate) fn verify(
        root: &Cert,
        chain: &[&Cert],
        leaf: &Cert,
        usage: KeyUsage,
        crls: &[&Crl],
        now: OffsetDateTime,
    ) -> Result<(), webpki::Error> {
        let root_der = CertificateDer::from(root.der.as_slice());
        let anchors = [webpki::anchor_from_trusted_cert(&root_der)?];
        let inter: Vec<CertificateDer<'_>> = chain
            .iter()
            .map(|c| CertificateDer::from(c.der.as_slice()))
            .collect();
        let leaf_der = CertificateDer::from(leaf.der.as_slice());
        let ee = EndEntityCert::try_from(&leaf_der)?;
        let parsed: Vec<CertRevocationList<'_>> = crls
            .iter()
            .map(|c| BorrowedCertRevocationList::from_der(&c.der).map(Into::into))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&CertRevocationList<'_>> = parsed.iter().collect();
        let revocation = if refs.is_empty() {
            None
        } else {
            Some(
                RevocationOptionsBuilder::new(&refs)
                    .expect("non-empty")
                    .with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build(),
            )
        };
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now.unix_timestamp()).expect("after 1970"),
        ));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &inter,
            time,
            usage,
            revocation,
            None,
        )
        .map(|_| ())
    }
}

/// The fixtures mean what they say to the verification library Vigil builds on.
fn webpki_checks(pki: &Pki) {
    use webpki::{Error, KeyUsage};
    let now = pki.options.now;
    let v = |leaf: &Cert, chain: &[&Cert], usage: KeyUsage, crls: &[&Crl]| {
        webpki_support::verify(&pki.root.cert, chain, leaf, usage, crls, now)
    };
    let inter = [&pki.intermediate.cert];
    let good_crls = [&pki.root_crl, &pki.intermediate_crl];
    let client = KeyUsage::client_auth;
    let server = KeyUsage::server_auth;

    assert_eq!(v(&pki.client, &inter, client(), &good_crls), Ok(()));
    assert_eq!(v(&pki.server, &inter, server(), &good_crls), Ok(()));
    assert_eq!(v(&pki.client, &inter, client(), &[]), Ok(()));
    assert!(matches!(
        v(&pki.server, &inter, client(), &good_crls),
        Err(Error::RequiredEkuNotFoundContext(_))
    ));
    assert_eq!(
        v(&pki.revoked_client, &inter, client(), &good_crls),
        Err(Error::CertRevoked)
    );
    assert_eq!(v(&pki.revoked_client, &inter, client(), &[]), Ok(()));
    assert!(matches!(
        v(&pki.expired_client, &inter, client(), &good_crls),
        Err(Error::CertExpired { .. })
    ));
    assert!(matches!(
        v(&pki.not_yet_valid_client, &inter, client(), &good_crls),
        Err(Error::CertNotValidYet { .. })
    ));
    assert_eq!(
        v(&pki.bad_signature_client, &inter, client(), &good_crls),
        Err(Error::InvalidSignatureForPublicKey)
    );
    assert!(matches!(
        v(
            &pki.client,
            &inter,
            client(),
            &[&pki.root_crl, &pki.intermediate_stale_crl]
        ),
        Err(Error::CrlExpired { .. })
    ));
    assert_eq!(
        v(
            &pki.revoked_client,
            &inter,
            client(),
            &[&pki.root_crl, &pki.intermediate_wrong_key_crl]
        ),
        Err(Error::InvalidCrlSignatureForPublicKey)
    );
    assert!(matches!(
        v(
            &pki.leaf_of_expired_intermediate,
            &[&pki.expired_intermediate.cert],
            client(),
            &[&pki.root_crl, &pki.expired_intermediate_crl]
        ),
        Err(Error::CertExpired { .. })
    ));
    let rev_int = [&pki.revoked_intermediate.cert];
    assert_eq!(
        v(
            &pki.leaf_of_revoked_intermediate,
            &rev_int,
            client(),
            &[&pki.root_crl, &pki.revoked_intermediate_crl]
        ),
        Err(Error::CertRevoked)
    );
    assert_eq!(
        v(&pki.leaf_of_revoked_intermediate, &rev_int, client(), &[]),
        Ok(())
    );
    assert_eq!(
        v(
            &pki.other_client,
            &[&pki.other_intermediate.cert],
            client(),
            &[]
        ),
        Err(Error::UnknownIssuer)
    );
    // The other chain is internally sound: it verifies against its own root.
    assert_eq!(
        webpki_support::verify(
            &pki.other_root.cert,
            &[&pki.other_intermediate.cert],
            &pki.other_client,
            client(),
            &[&pki.other_root_crl, &pki.other_intermediate_crl],
            now
        ),
        Ok(())
    );
}

#[test]
fn custom_hierarchy_mixed_algorithms() {
    let o = PkiOptions::default();
    let root = Ca::new_root("my-root", "My Root", KeyAlg::Ed25519, &o).expect("root");
    let sub = root
        .issue_ca(&CertSpec::ca("my-sub", "My Sub", &o).with_alg(KeyAlg::EcdsaP256))
        .expect("sub");
    let leaf = sub
        .issue_leaf(
            &CertSpec::leaf("my-leaf", "leaf.example", &o)
                .with_alg(KeyAlg::Ed25519)
                .with_usage(LeafUsage::Both)
                .with_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
                .with_serial(&[0x00, 0x80, 0x01]),
        )
        .expect("leaf");
    assert_eq!(leaf.issuer, "my-sub");
    assert_eq!(leaf.serial, vec![0x80, 0x01]);
    assert_eq!(root.cert.not_before, o.now - Duration::days(1));
    assert_eq!(root.cert.not_after, o.now + Duration::days(365));

    let (x, sx, rx) = (parse(&leaf), parse(&sub.cert), parse(&root.cert));
    assert_eq!(x.raw_serial(), &[0x00, 0x80, 0x01]); // sign octet added in DER only
    assert!(x.verify_signature(Some(sx.public_key())).is_ok());
    assert!(sx.verify_signature(Some(rx.public_key())).is_ok());
    assert!(x.verify_signature(Some(rx.public_key())).is_err());
    let eku = x.extended_key_usage().expect("eku").expect("present").value;
    assert!(eku.client_auth && eku.server_auth);
    assert_eq!(
        crl_dp_uris(&x),
        vec!["http://127.0.0.1:8080/crl/my-sub.crl".to_string()]
    );

    let none = sub
        .issue_leaf(&CertSpec::leaf("no-eku", "n", &o).with_usage(LeafUsage::None))
        .expect("leaf");
    assert!(parse(&none).extended_key_usage().expect("eku").is_none());

    // A CRL with every kind of entry.
    let spec = CrlSpec {
        number: 0x0102_0304_0506,
        revoked: vec![
            RevokedEntry::for_cert(&leaf, o.now - Duration::hours(3), Some(Reason::Superseded)),
            RevokedEntry::for_cert(&none, o.now - Duration::hours(3), Some(Reason::Unspecified)),
            RevokedEntry {
                serial: vec![0x05],
                revoked_at: o.now - Duration::hours(4),
                reason: None,
            },
        ],
        ..CrlSpec::new(&o)
    };
    let crl = sub.crl(&spec).expect("crl");
    assert_eq!(crl.name, "my-sub.crl");
    assert_eq!(crl.issuer, "my-sub");
    let cx = parse_crl(&crl);
    assert!(cx.verify_signature(sx.public_key()).is_ok());
    assert_eq!(
        cx.crl_number().map(|n| n.to_bytes_be()),
        Some(vec![1, 2, 3, 4, 5, 6])
    );
    let reasons: Vec<Option<u8>> = cx
        .iter_revoked_certificates()
        .map(|r| r.reason_code().map(|(_, c)| c.0))
        .collect();
    // Unspecified is written as "no reasonCode", per RFC 5280.
    assert_eq!(reasons, vec![Some(Reason::Superseded.code()), None, None]);

    // Forgery helper.
    let forged = sub
        .forged_crl(&CrlSpec::new(&o), KeyAlg::EcdsaP256)
        .expect("forged");
    let fx = parse_crl(&forged);
    assert_eq!(fx.issuer().as_raw(), sx.subject().as_raw());
    assert!(fx.verify_signature(sx.public_key()).is_err());
}

#[test]
fn rsa_pool_keys_never_shared_with_issuer() {
    let o = PkiOptions {
        alg: KeyAlg::Rsa2048,
        ..PkiOptions::default()
    };
    let root = Ca::new_root("r", "R", KeyAlg::Rsa2048, &o).expect("root");
    for i in 0..(2 * pki_fixtures::RSA_POOL_SIZE) {
        let leaf = root
            .issue_leaf(&CertSpec::leaf(&format!("l{i}"), "l", &o))
            .expect("leaf");
        assert_ne!(leaf.key_pkcs8_der, root.cert.key_pkcs8_der);
        let forged = root
            .forged_crl(&CrlSpec::new(&o), KeyAlg::Rsa2048)
            .expect("forged");
        assert!(parse_crl(&forged)
            .verify_signature(parse(&root.cert).public_key())
            .is_err());
    }
}

#[test]
fn invalid_input_is_rejected() {
    let o = PkiOptions::default();
    let root = Ca::new_root("root", "Root", KeyAlg::EcdsaP256, &o).expect("root");
    assert!(Ca::new_root("../evil", "x", KeyAlg::EcdsaP256, &o).is_err());
    assert!(Ca::new_root("", "x", KeyAlg::EcdsaP256, &o).is_err());
    let spec = CertSpec::leaf("ok", "ok", &o);
    assert!(root
        .issue_leaf(&spec.clone().with_validity(o.now, o.now - Duration::days(1)))
        .is_err());
    assert!(root.issue_leaf(&spec.clone().with_serial(&[0])).is_err());
    assert!(root
        .issue_leaf(&spec.clone().with_serial(&[0xff; 20]))
        .is_err());
    assert!(root
        .issue_leaf(&spec.clone().with_dns("bad\u{e9}.test"))
        .is_err());
    assert!(root
        .issue_leaf(&CertSpec {
            base_url: "http://caf\u{e9}".into(),
            ..spec.clone()
        })
        .is_err());
    let backwards = CrlSpec {
        next_update: o.now - Duration::days(30),
        ..CrlSpec::new(&o)
    };
    let err = root
        .crl(&backwards)
        .expect_err("next_update before this_update");
    assert!(!err.to_string().is_empty());
    assert!(root.issue_leaf(&spec).is_ok());
}

#[test]
fn write_to_dir_and_manifest() {
    let dir = std::env::temp_dir().join(format!(
        "pki-fixtures-test-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    let pki = generate(&opts(KeyAlg::EcdsaP256)).expect("generate");
    let manifest = pki.write_to(&dir).expect("write");

    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("manifest parses");
    assert_eq!(on_disk, manifest);
    assert_eq!(manifest.alg, "p256");
    assert_eq!(manifest.base_url, BASE);
    assert_eq!(manifest.generated_at, "2025-06-15T15:06:40Z");

    // 15 certs x (pem, der, key) + 9 leaf chains + 8 CRLs x (der, pem).
    assert_eq!(manifest.files.len(), 15 * 3 + 9 + 8 * 2);
    let paths: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths.len(), manifest.files.len());
    for f in &manifest.files {
        let bytes = std::fs::read(dir.join(&f.path)).unwrap_or_else(|e| panic!("{}: {e}", f.path));
        match (f.kind, f.format) {
            (FileKind::Certificate, FileFormat::Der) => {
                assert_eq!(bytes, pki.cert(&f.role).expect("role").der);
                assert_eq!(
                    f.serial.as_deref(),
                    Some(pki.cert(&f.role).expect("role").serial_hex().as_str())
                );
            }
            (FileKind::Crl, FileFormat::Der) => {
                assert_eq!(bytes, pki.crl(&f.role).expect("role").der);
                assert!(f.crl_number.is_some() && f.this_update.is_some());
            }
            (FileKind::Key, _) => {
                assert!(bytes.starts_with(b"-----BEGIN PRIVATE KEY-----"));
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(dir.join(&f.path))
                        .expect("meta")
                        .permissions()
                        .mode();
                    assert_eq!(mode & 0o777, 0o600, "{}", f.path);
                }
            }
            (FileKind::Chain, _) => {
                assert_eq!(
                    String::from_utf8(bytes).expect("utf8"),
                    pki.chain_pem(&f.role)
                );
            }
            (_, FileFormat::Pem) => assert!(bytes.starts_with(b"-----BEGIN ")),
        }
    }
    for expected in [
        "client.pem",
        "client.der",
        "client.key.pem",
        "client.chain.pem",
        "root.pem",
        "root.key.pem",
        "intermediate.crl",
        "intermediate.crl.pem",
        "intermediate-wrong-key.crl",
        "other-intermediate.crl",
    ] {
        assert!(paths.contains(expected), "missing {expected}");
    }
    assert!(!paths.contains("root.chain.pem"));

    // The JSON uses the documented spellings.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("read"))
            .expect("json");
    let client_pem = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "client.pem")
        .expect("client.pem entry");
    assert_eq!(client_pem["kind"], "certificate");
    assert_eq!(client_pem["format"], "pem");
    assert_eq!(client_pem["issuer"], "intermediate");
    assert_eq!(client_pem["not_before"], "2025-06-14T15:06:40Z");

    std::fs::remove_dir_all(&dir).expect("cleanup");
}
