//! Verification at extreme times, also against a verdict cache holding an
//! acceptance.

use std::time::{Duration, SystemTime};

use vigil_core::{Decision, ReasonCode, RevocationPolicy};

use crate::fixture::{fx, options, require, verifier};
use crate::harness::{verify_both, Case};

#[test]
fn extreme_times_reject_the_good_chain_without_panic() {
    let fx = fx();
    let v = verifier(fx, true);
    let day = Duration::from_secs(86_400);
    // 9999-12-31T23:59:59Z
    let year_9999 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    // (name, time, the reasons it must be rejected for: any when `None`)
    let mut times: Vec<(&str, SystemTime, Option<&[ReasonCode]>)> = vec![
        (
            "UNIX_EPOCH",
            SystemTime::UNIX_EPOCH,
            Some(&[ReasonCode::NotYetValid]),
        ),
        (
            "1969-12-31",
            SystemTime::UNIX_EPOCH - day,
            Some(&[ReasonCode::NotYetValid]),
        ),
        ("year 9999", year_9999, Some(&[ReasonCode::Expired])),
    ];
    // Representable extremes of SystemTime on this platform.
    let epoch = SystemTime::UNIX_EPOCH;
    let extremes = [
        (
            "35000 years before 1970",
            epoch.checked_sub(Duration::from_secs(1 << 40)),
        ),
        (
            "i64::MAX seconds",
            epoch.checked_add(Duration::from_secs(i64::MAX as u64)),
        ),
        (
            "u64::MAX seconds",
            epoch.checked_add(Duration::from_secs(u64::MAX)),
        ),
    ];
    times.extend(
        extremes
            .into_iter()
            .filter_map(|(name, t)| Some((name, t?, None))),
    );
    let policies = [
        RevocationPolicy::Require,
        RevocationPolicy::Prefer,
        RevocationPolicy::Off,
    ];
    for (name, at, expected) in &times {
        for policy in policies {
            let case = Case::fixed(name, &[]);
            let verdict = verify_both(&case, &v, &fx.client_chain, &options(policy), *at);
            assert_eq!(
                verdict.verdict,
                Decision::Rejected,
                "{name}: {}",
                verdict.to_json()
            );
            if let Some(expected) = expected {
                assert!(
                    expected.contains(&verdict.reason),
                    "{name} ({policy}): {}",
                    verdict.to_json()
                );
            }
        }
    }
    // A verifier loaded with data, asked at extreme times, then at the
    // right time: extreme lookups must not poison the cache.
    let good = verify_both(
        &Case::fixed("after extremes", &[]),
        &v,
        &fx.client_chain,
        &require(),
        fx.now,
    );
    assert!(good.is_accepted(), "{}", good.to_json());

    // The reverse: an accepted verdict is now cached; asked again at the
    // extreme times (and just after the CRL's nextUpdate), the cache must
    // not answer with it.
    let cached = v.verify(&fx.client_chain, &require(), fx.now);
    assert!(cached.is_accepted(), "{}", cached.to_json());
    let after_next_update = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(fx.crl_next_update.unwrap() + 1).unwrap());
    let mut later: Vec<(&str, SystemTime)> = times.iter().map(|(n, t, _)| (*n, *t)).collect();
    later.push(("just after nextUpdate", after_next_update));
    for (name, at) in later {
        let verdict = v.verify(&fx.client_chain, &require(), at);
        assert_eq!(
            verdict.verdict,
            Decision::Rejected,
            "{name}, after a cached acceptance: {}",
            verdict.to_json()
        );
    }
    let stale = v.verify(&fx.client_chain, &require(), after_next_update);
    assert_eq!(
        stale.reason,
        ReasonCode::RevocationDataStale,
        "{}",
        stale.to_json()
    );
}
