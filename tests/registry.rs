//! The live-connection registry (issue 4, item 1) over the fixture PKI:
//! each kind of data change tears down exactly the connections it concerns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use pki_fixtures::{generate_shared, Ca, Cert, CertSpec, CrlSpec, Pki, PkiOptions, Reason};
use time::{macros::datetime, Duration, OffsetDateTime};
use vigil_core::{
    ConnectionId, CrlLoad, Registry, TeardownReason, TeardownSignal, TrustStore, Usage, Verifier,
    VerifyOptions,
};

fn pki() -> &'static Pki {
    generate_shared(&PkiOptions {
        now: datetime!(2026-03-01 12:00:00 UTC),
        ..PkiOptions::default()
    })
    .unwrap()
}

fn options() -> VerifyOptions {
    VerifyOptions::new(Usage::Client)
}

fn at(t: OffsetDateTime) -> SystemTime {
    t.into()
}

/// Verifier trusting both fixture roots, with fresh empty CRLs of its own
/// for the root (number 1) and intermediate (number 1), and the other PKI's.
fn verifier(pki: &Pki) -> Verifier {
    let mut trust = TrustStore::new();
    trust.add(pki.root.cert.certificate_der()).unwrap();
    trust.add(pki.other_root.cert.certificate_der()).unwrap();
    let mut v = Verifier::new(trust);
    for ca in [&pki.intermediate, &pki.other_intermediate] {
        v.add_ca_certificate(&ca.cert.certificate_der()).unwrap();
    }
    let fresh = CrlSpec::new(&pki.options);
    for crl in [
        pki.root.crl(&fresh).unwrap().der,
        pki.intermediate.crl(&fresh).unwrap().der,
        pki.other_root_crl.der.clone(),
        pki.other_intermediate_crl.der.clone(),
    ] {
        assert!(matches!(v.add_crl(&crl).unwrap(), CrlLoad::Verified { .. }));
    }
    v
}

fn leaf(ca: &Ca, name: &str, pki: &Pki) -> Cert {
    ca.issue_leaf(&CertSpec::leaf(name, name, &pki.options))
        .unwrap()
}

struct Tracked {
    id: ConnectionId,
    signal: TeardownSignal,
    serial: String,
}

fn track(reg: &Registry, v: &Verifier, leaf: &Cert, ca: &Ca, now: SystemTime) -> Tracked {
    let chain = vec![leaf.certificate_der(), ca.cert.certificate_der()];
    let verdict = v.verify(&chain, &options(), now);
    assert!(verdict.is_accepted(), "{}", verdict.to_json());
    let mut labels = BTreeMap::new();
    labels.insert("client".to_owned(), leaf.name.clone());
    let accepted = verdict.accepted_path().expect("an accepted verdict");
    let (id, signal) = reg.track(chain, labels, &accepted, now);
    assert!(!signal.is_fired());
    Tracked {
        id,
        signal,
        serial: leaf.serial_hex(),
    }
}

/// Intermediate CRL `number` revoking `certs`.
fn crl(ca: &Ca, pki: &Pki, number: u64, certs: &[&Cert]) -> Vec<u8> {
    let mut spec = CrlSpec::new(&pki.options);
    spec.number = number;
    spec.this_update += Duration::minutes(number as i64);
    for cert in certs {
        spec = spec.revoke(
            cert,
            pki.options.now - Duration::minutes(30),
            Reason::KeyCompromise,
        );
    }
    ca.crl(&spec).unwrap().der
}

#[test]
fn a_new_crl_tears_down_exactly_the_revoked_client() {
    let pki = pki();
    let now = at(pki.options.now);
    let mut v = verifier(pki);
    let reg = Registry::new(options());
    let leaves: Vec<Cert> = (0..4)
        .map(|i| leaf(&pki.intermediate, &format!("reg-client-{i}"), pki))
        .collect();
    let conns: Vec<Tracked> = leaves
        .iter()
        .map(|l| track(&reg, &v, l, &pki.intermediate, now))
        .collect();
    let other = track(&reg, &v, &pki.other_client, &pki.other_intermediate, now);
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    conns[2].signal.on_fire(Box::new(move |e| {
        assert_eq!(e.reason, TeardownReason::Revoked);
        f.fetch_add(1, Ordering::SeqCst);
    }));

    let new_crl = crl(&pki.intermediate, pki, 2, &[&leaves[2]]);
    assert!(matches!(
        v.add_crl(&new_crl).unwrap(),
        CrlLoad::Verified { .. }
    ));
    let events = reg.on_crl(&v, &new_crl, now);

    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.connection_id, conns[2].id);
    assert_eq!(e.reason, TeardownReason::Revoked);
    assert_eq!(vigil_core::text::hex(&e.serial), conns[2].serial);
    assert!(e.subject.contains("reg-client-2"), "{}", e.subject);
    assert_eq!(vigil_core::text::rfc3339(e.at), "2026-03-01T12:00:00Z");
    assert_eq!(conns[2].signal.event().as_ref(), Some(e));
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(c.signal.is_fired(), i == 2);
        assert_eq!(reg.contains(c.id), i != 2);
    }
    assert!(!other.signal.is_fired());
    assert_eq!(reg.len(), 4);

    // Loading the same data again changes nothing and fires nothing twice.
    assert!(reg.on_crl(&v, &new_crl, now).is_empty());
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    // The torn-down connection is already gone; untracking it is harmless.
    assert!(!reg.untrack(conns[2].id));

    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["reason"], "revoked");
    assert_eq!(json["serial"], conns[2].serial.as_str());
}

#[test]
fn a_revoked_intermediate_takes_all_and_only_its_leaves() {
    let pki = pki();
    let now = at(pki.options.now);
    let mut v = verifier(pki);
    let second = pki
        .root
        .issue_ca(&CertSpec::ca(
            "reg-second-intermediate",
            "Registry Second Intermediate",
            &pki.options,
        ))
        .unwrap();
    v.add_ca_certificate(&second.cert.certificate_der())
        .unwrap();
    v.add_crl(&second.crl(&CrlSpec::new(&pki.options)).unwrap().der)
        .unwrap();
    let reg = Registry::new(options());
    let kept: Vec<Tracked> = (0..3)
        .map(|i| {
            let l = leaf(&pki.intermediate, &format!("reg-kept-{i}"), pki);
            track(&reg, &v, &l, &pki.intermediate, now)
        })
        .collect();
    let gone: Vec<Tracked> = (0..3)
        .map(|i| {
            let l = leaf(&second, &format!("reg-gone-{i}"), pki);
            track(&reg, &v, &l, &second, now)
        })
        .collect();

    let root_crl = crl(&pki.root, pki, 2, &[&second.cert]);
    assert!(matches!(
        v.add_crl(&root_crl).unwrap(),
        CrlLoad::Verified { .. }
    ));
    let events = reg.on_crl(&v, &root_crl, now);

    let mut ids: Vec<ConnectionId> = events.iter().map(|e| e.connection_id).collect();
    ids.sort();
    assert_eq!(ids, gone.iter().map(|t| t.id).collect::<Vec<_>>());
    for e in &events {
        assert_eq!(e.reason, TeardownReason::Revoked);
        assert_eq!(vigil_core::text::hex(&e.serial), second.cert.serial_hex());
    }
    assert!(gone.iter().all(|t| t.signal.is_fired()));
    assert!(kept
        .iter()
        .all(|t| !t.signal.is_fired() && reg.contains(t.id)));
}

#[test]
fn on_revoked_is_one_lookup_for_one_certificate() {
    let pki = pki();
    let now = at(pki.options.now);
    let v = verifier(pki);
    let reg = Registry::new(options());
    let a = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let b = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let c = track(&reg, &v, &pki.other_client, &pki.other_intermediate, now);
    let issuer = x509_parser::parse_x509_certificate(&pki.client.der)
        .unwrap()
        .1
        .issuer()
        .as_raw()
        .to_vec();
    let events = reg.on_revoked(
        &issuer,
        &pki.client.serial,
        Some(vigil_core::revocation::Reason::KeyCompromise),
        now,
    );
    assert_eq!(events.len(), 2);
    assert!(a.signal.is_fired() && b.signal.is_fired() && !c.signal.is_fired());
    assert!(events[0].detail.contains("keyCompromise"));
}

#[test]
fn expire_due_ends_a_connection_when_its_certificate_expires() {
    let pki = pki();
    let now = pki.options.now;
    let v = verifier(pki);
    let reg = Registry::new(options());
    let short = pki
        .intermediate
        .issue_leaf(
            &CertSpec::leaf("reg-short", "reg-short", &pki.options)
                .with_validity(now - Duration::days(1), now + Duration::hours(1)),
        )
        .unwrap();
    let s = track(&reg, &v, &short, &pki.intermediate, at(now));
    let long = track(&reg, &v, &pki.client, &pki.intermediate, at(now));
    assert_eq!(reg.next_deadline(), Some(at(short.not_after)));

    assert!(reg
        .expire_due(&v, at(now + Duration::minutes(30)))
        .is_empty());
    let events = reg.expire_due(&v, at(now + Duration::hours(2)));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].connection_id, s.id);
    assert_eq!(events[0].reason, TeardownReason::Expired);
    assert_eq!(vigil_core::text::hex(&events[0].serial), s.serial);
    assert!(!long.signal.is_fired());

    // A week on, the CRLs are past nextUpdate and nothing refreshed them:
    // under `require` the remaining connection is unverifiable.
    let events = reg.expire_due(&v, at(now + Duration::days(8)));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, TeardownReason::Unverifiable);
    assert!(long.signal.is_fired());
    assert!(reg.is_empty());
}

#[test]
fn removing_an_anchor_untrusts_its_connections_only() {
    let pki = pki();
    let now = at(pki.options.now);
    let v = verifier(pki);
    let reg = Registry::new(options());
    let a = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let o = track(&reg, &v, &pki.other_client, &pki.other_intermediate, now);
    let root_sha: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &pki.root.cert.der)
        .as_ref()
        .try_into()
        .unwrap();
    let events = reg.on_anchor_removed(&root_sha, now);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].connection_id, a.id);
    assert_eq!(events[0].reason, TeardownReason::Untrusted);
    assert_eq!(
        vigil_core::text::hex(&events[0].serial),
        pki.root.cert.serial_hex()
    );
    assert!(!o.signal.is_fired());

    // A verifier without that anchor: a CRL re-check also says untrusted.
    let b = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let mut trust = TrustStore::new();
    trust.add(pki.other_root.cert.certificate_der()).unwrap();
    let without = Verifier::new(trust);
    let events = reg.reverify(&without, &[b.id, o.id], now);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.reason == TeardownReason::Untrusted
                || e.reason == TeardownReason::Unverifiable)
    );
}

/// The registry tracks only the verifier's proof: a rejected verdict
/// rewritten to say "accepted" yields none, and a proof presented with
/// another leaf than the one it proves is refused.
#[test]
fn only_the_verifiers_proof_is_tracked_and_only_for_its_own_chain() {
    let pki = pki();
    let now = at(pki.options.now);
    let v = verifier(pki);
    let reg = Registry::new(options());
    let expired = vec![
        pki.expired_client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ];
    let rejected = v.verify(&expired, &options(), now);
    assert!(!rejected.is_accepted());
    let mut forged = (*rejected).clone();
    forged.verdict = vigil_core::Decision::Accepted;
    forged.status = vigil_core::Status::Good;
    assert!(forged.is_accepted());
    assert!(Arc::new(forged).accepted_path().is_none());

    let good = vec![
        pki.client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ];
    let accepted = v
        .verify(&good, &options(), now)
        .accepted_path()
        .expect("an accepted verdict");
    let (_, signal) = reg.track(expired, BTreeMap::new(), &accepted, now);
    assert_eq!(
        signal.event().map(|e| e.reason),
        Some(TeardownReason::Untrusted)
    );
    assert!(reg.is_empty());
    let (id, signal) = reg.track(good, BTreeMap::new(), &accepted, now);
    assert!(!signal.is_fired() && reg.contains(id));
}

#[test]
fn a_rejected_verdict_is_never_tracked() {
    let pki = pki();
    let now = at(pki.options.now);
    let v = verifier(pki);
    let reg = Registry::new(options());
    let chain = vec![
        pki.expired_client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ];
    let verdict = v.verify(&chain, &options(), now);
    assert!(!verdict.is_accepted());
    // No proof, so nothing to track: the refusal comes back fired.
    assert!(verdict.accepted_path().is_none());
    let (_, signal) = reg.refuse(&verdict, now);
    assert_eq!(
        signal.event().map(|e| e.reason),
        Some(TeardownReason::Expired)
    );
    assert!(reg.is_empty());
}

#[test]
fn closed_connections_leave_no_trace() {
    let pki = pki();
    let now = at(pki.options.now);
    let v = verifier(pki);
    let reg = Registry::new(options());
    let empty = reg.stats();
    assert_eq!(empty.connections + empty.certificates + empty.parsed, 0);
    // One long-lived connection on the same chain keeps its parsed
    // certificates shared, as in a server with many clients of one CA.
    let keep = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let baseline = reg.stats();
    let chain = vec![
        pki.client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
    ];
    let accepted = v
        .verify(&chain, &options(), now)
        .accepted_path()
        .expect("an accepted verdict");
    let mut labels = BTreeMap::new();
    labels.insert("peer".to_owned(), "127.0.0.1:1".to_owned());
    for i in 0..200_000u32 {
        let (id, signal) = reg.track(chain.clone(), labels.clone(), &accepted, now);
        if i % 2 == 0 {
            signal.on_fire(Box::new(|_| {}));
        }
        assert!(reg.untrack(id));
    }
    let after = reg.stats();
    assert_eq!(after.connections, baseline.connections);
    assert_eq!(after.certificates, baseline.certificates);
    assert_eq!(after.issuers, baseline.issuers);
    assert_eq!(after.cas, baseline.cas);
    assert_eq!(after.deadlines, baseline.deadlines);
    assert_eq!(after.parsed, baseline.parsed);
    assert_eq!(after.shared, baseline.shared);
    assert!(reg.untrack(keep.id));
    let s = reg.stats();
    assert_eq!(
        (
            s.connections,
            s.issuers,
            s.certificates,
            s.cas,
            s.deadlines,
            s.parsed,
            s.shared
        ),
        (0, 0, 0, 0, 0, 0, 0)
    );
}

/// Connections share their certificates (the registry keeps one parsed
/// copy, with its DER) and a re-verification starts from the chain as
/// presented, extra certificates included.
#[test]
fn connections_on_one_certificate_share_it_and_reverify_from_the_presented_chain() {
    let pki = pki();
    let now = at(pki.options.now);
    let mut v = verifier(pki);
    let reg = Registry::new(options());
    // The anchor and an unrelated CA certificate presented too.
    let long = vec![
        pki.client.certificate_der(),
        pki.intermediate.cert.certificate_der(),
        pki.root.cert.certificate_der(),
        pki.other_intermediate.cert.certificate_der(),
    ];
    let verdict = v.verify(&long, &options(), now);
    assert!(verdict.is_accepted(), "{}", verdict.to_json());
    let accepted = verdict.accepted_path().expect("an accepted verdict");
    let (a, a_signal) = reg.track(long, BTreeMap::new(), &accepted, now);
    let b = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let c = track(&reg, &v, &pki.client, &pki.intermediate, now);
    let s = reg.stats();
    assert_eq!((s.connections, s.certificates, s.parsed), (3, 2, 2));
    assert_eq!(reg.labels(a), Some(BTreeMap::new()));
    assert_eq!(
        reg.leaf(a).map(|(s, n)| (s, vigil_core::text::hex(&n))),
        Some((verdict.chain[0].subject.clone(), pki.client.serial_hex()))
    );

    // Nothing changed: all three stay, each with its deadline renewed.
    assert!(reg.reverify(&v, &[a, b.id, c.id], now).is_empty());
    assert_eq!(reg.len(), 3);
    // One untracked: the others still hold the certificate.
    assert!(reg.untrack(c.id));
    assert_eq!(reg.stats().certificates, 2);

    let new_crl = crl(&pki.intermediate, pki, 2, &[&pki.client]);
    assert!(matches!(
        v.add_crl(&new_crl).unwrap(),
        CrlLoad::Verified { .. }
    ));
    let mut gone: Vec<ConnectionId> = reg
        .on_crl(&v, &new_crl, now)
        .iter()
        .map(|e| e.connection_id)
        .collect();
    gone.sort_unstable();
    assert_eq!(gone, vec![a, b.id]);
    assert!(a_signal.is_fired() && b.signal.is_fired() && !c.signal.is_fired());
    reg.reclaim();
    let s = reg.stats();
    assert_eq!(
        (s.connections, s.certificates, s.parsed, s.shared),
        (0, 0, 0, 0)
    );
}

#[test]
fn a_crl_touches_only_listed_serials_and_nothing_for_untracked_ones() {
    let pki = pki();
    let now = at(pki.options.now);
    let mut v = verifier(pki);
    let reg = Registry::new(options());
    let leaves: Vec<Cert> = (0..3)
        .map(|i| leaf(&pki.intermediate, &format!("reg-listed-{i}"), pki))
        .collect();
    let conns: Vec<Tracked> = leaves
        .iter()
        .map(|l| track(&reg, &v, l, &pki.intermediate, now))
        .collect();
    let fired = Arc::new(AtomicUsize::new(0));
    for c in &conns {
        let f = fired.clone();
        c.signal.on_fire(Box::new(move |_| {
            f.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let deadlines: Vec<_> = conns.iter().map(|c| reg.valid_until(c.id)).collect();

    // A CRL of the same issuer revoking only certificates no connection
    // uses: nothing fires, nothing changes.
    let untracked: Vec<Cert> = (0..2)
        .map(|i| leaf(&pki.intermediate, &format!("reg-untracked-{i}"), pki))
        .collect();
    let first = crl(&pki.intermediate, pki, 2, &[&untracked[0], &untracked[1]]);
    assert!(matches!(
        v.add_crl(&first).unwrap(),
        CrlLoad::Verified { entries: 2 }
    ));
    assert!(reg.on_crl(&v, &first, now).is_empty());
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    assert_eq!(reg.len(), 3);

    // The next issue also lists conns[1]: only it goes; its siblings under
    // the same issuer are untouched (same signal state, same deadline).
    let second = crl(
        &pki.intermediate,
        pki,
        3,
        &[&untracked[0], &untracked[1], &leaves[1]],
    );
    assert!(matches!(
        v.add_crl(&second).unwrap(),
        CrlLoad::Verified { entries: 3 }
    ));
    let events = reg.on_crl(&v, &second, now);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].connection_id, conns[1].id);
    assert_eq!(events[0].reason, TeardownReason::Revoked);
    assert_eq!(vigil_core::text::hex(&events[0].serial), conns[1].serial);
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(c.signal.is_fired(), i == 1);
        assert_eq!(reg.contains(c.id), i != 1);
        if i != 1 {
            assert_eq!(reg.valid_until(c.id), deadlines[i]);
        }
    }

    // One revocation of an untracked serial, delivered as a fact: nothing.
    let issuer = x509_parser::parse_x509_certificate(&pki.intermediate.cert.der)
        .unwrap()
        .1
        .subject()
        .as_raw()
        .to_vec();
    assert!(reg
        .on_revoked(&issuer, &untracked[0].serial, None, now)
        .is_empty());
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(reg.len(), 2);
    // The tracked ones still go by that path, once.
    let events = reg.on_revoked(&issuer, &leaves[0].serial, None, now);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].connection_id, conns[0].id);
    assert!(reg
        .on_revoked(&issuer, &leaves[0].serial, None, now)
        .is_empty());
    assert_eq!(fired.load(Ordering::SeqCst), 2);
}

#[test]
fn a_stale_crl_still_rechecks_every_connection_of_its_issuer() {
    // Not current at delivery: the unlisted connections' status changed
    // (good -> stale), so they are all re-checked, as before.
    let pki = pki();
    let now = pki.options.now;
    let mut v = verifier(pki);
    let reg = Registry::new(options());
    let leaves: Vec<Cert> = (0..2)
        .map(|i| leaf(&pki.intermediate, &format!("reg-stale-{i}"), pki))
        .collect();
    let conns: Vec<Tracked> = leaves
        .iter()
        .map(|l| track(&reg, &v, l, &pki.intermediate, at(now)))
        .collect();
    let mut spec = CrlSpec::new(&pki.options);
    spec.number = 2;
    spec.this_update = now - Duration::days(10);
    spec.next_update = now - Duration::days(3);
    let stale = pki.intermediate.crl(&spec).unwrap().der;
    assert!(matches!(
        v.add_crl(&stale).unwrap(),
        CrlLoad::Verified { .. }
    ));
    let events = reg.on_crl(&v, &stale, at(now));
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e.reason == TeardownReason::Unverifiable));
    assert!(conns.iter().all(|c| c.signal.is_fired()));
}

/// A lapsed connection is judged again on its validated path, as a full
/// verification would judge it: validity first, then the deny list (a rule
/// the registry was not told about still ends it), then revocation.
#[test]
fn a_lapsed_connection_is_judged_again_on_its_path() {
    let pki = pki();
    let now = pki.options.now;
    let mut v = verifier(pki);
    let reg = Registry::new(options());
    let short = pki
        .intermediate
        .issue_leaf(
            &CertSpec::leaf("reg-lapse", "reg-lapse", &pki.options)
                .with_validity(now - Duration::days(1), now + Duration::hours(1)),
        )
        .unwrap();
    let expiring = track(&reg, &v, &short, &pki.intermediate, at(now));
    let denied = track(&reg, &v, &pki.client, &pki.intermediate, at(now));
    let rule = |cert: &Cert| {
        vigil_core::DenyRule::new(
            vigil_core::DenyKey::CertSha256(vigil_core::text::hex(&vigil_core::sha256(&cert.der))),
            "key leaked",
            None,
        )
    };
    assert!(v.deny(rule(&short)));
    assert!(v.deny(rule(&pki.client)));
    // Expired and denied: expired, as path validation would say first.
    let events = reg.expire_due(&v, at(now + Duration::hours(2)));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].connection_id, expiring.id);
    assert_eq!(events[0].reason, TeardownReason::Expired);
    // The other one was not due: untouched until its deadline (the CRLs'
    // nextUpdate), when the rule it was not told about ends it.
    assert!(!denied.signal.is_fired());
    let deadline = reg.valid_until(denied.id).unwrap();
    assert!(deadline > at(now + Duration::hours(2)));
    let events = reg.expire_due(&v, deadline + std::time::Duration::from_secs(1));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].connection_id, denied.id);
    assert_eq!(events[0].reason, TeardownReason::Denied);
    assert!(
        events[0].detail.contains("key leaked"),
        "{}",
        events[0].detail
    );
    assert!(reg.is_empty());
}
