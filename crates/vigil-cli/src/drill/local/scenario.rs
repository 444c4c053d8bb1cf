//! The fixture of one scenario (PKI, responder, one leaf per connection)
//! and the act the scenario is about (revoke, expire, responder down).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::responder::{
    start_with_fresh_pki, Behaviour, Responder, ResponderOptions, Target,
};
use pki_fixtures::{Ca, Cert, CertSpec, Pki, PkiOptions, Reason};
use rand::seq::index::sample;
use rand::{rngs::StdRng, SeedableRng};
use vigil_runtime::Engine;

use super::super::progress::Progress;
use super::super::{DrillArgs, Scenario, SourceArg};
use super::{instant_at, unix};

/// The fixture for one scenario.
/// Where the drill pulls: the in-process engine, or a proxy's admin API.
pub(super) enum Lever<'a> {
    Engine(&'a Engine),
    Admin(&'a super::proxy::Admin),
}

pub(super) struct Setup {
    pub(super) responder: Responder,
    pub(super) pki: Pki,
    /// Each connection's leaf and the certificate of the CA that issued it.
    pub(super) leaves: Vec<(Cert, Cert)>,
    /// Indices of the connections that must go.
    pub(super) doomed: Vec<usize>,
    /// For `revoke-intermediate`: the intermediate to revoke.
    revoked_ca: Option<Cert>,
    /// For `expire`: when the short-lived certificates stop being valid.
    expires_at: Option<SystemTime>,
}

/// Setup time budget per connection, for certificate lifetimes and data
/// validity that must outlast the setup.
fn setup_budget(n: usize) -> Duration {
    Duration::from_secs(6) + Duration::from_millis(4) * n as u32
}

pub(super) async fn prepare(
    args: &DrillArgs,
    scenario: Scenario,
    seed: u64,
) -> Result<Setup, String> {
    let n = args.connections;
    let short = setup_budget(n);
    let validity = match scenario {
        Scenario::ResponderDown { .. } => time::Duration::seconds(short.as_secs() as i64),
        _ => time::Duration::hours(1),
    };
    let (responder, pki) = start_with_fresh_pki(
        PkiOptions::default(),
        ResponderOptions {
            crl_validity: validity,
            ocsp_validity: validity,
            ..ResponderOptions::default()
        },
    )
    .await
    .map_err(|e| format!("fixture responder: {e}"))?;
    let k = ((n as f64) * args.revoke_fraction).round().max(1.0) as usize;
    let k = k.min(n);
    let mut rng = StdRng::seed_from_u64(seed);
    let doomed: Vec<usize> = match scenario {
        Scenario::ResponderDown { require: true } => (0..n).collect(),
        Scenario::ResponderDown { require: false } => Vec::new(),
        Scenario::RevokeIntermediate => (0..k).collect(),
        _ => {
            let mut v = sample(&mut rng, n, k).into_vec();
            v.sort_unstable();
            v
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let opts = pki.options.clone();
    // revoke-intermediate: a second intermediate keeps the other leaves.
    let (revoked_ca, other_ca) = if scenario == Scenario::RevokeIntermediate {
        let other = pki
            .root
            .issue_ca(&CertSpec::ca(
                "drill-intermediate-b",
                "Vigil Drill Intermediate B",
                &opts,
            ))
            .map_err(|e| e.to_string())?;
        responder.add_ca(&other, None).map_err(|e| e.to_string())?;
        responder.register(&other.cert).map_err(|e| e.to_string())?;
        (Some(pki.intermediate.cert.clone()), Some(other))
    } else {
        (None, None)
    };
    let expires_at = (scenario == Scenario::Expire).then(|| now + short);
    let doomed_set: std::collections::HashSet<usize> = doomed.iter().copied().collect();
    let mut leaves = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("drill-client-{i}");
        let mut spec = CertSpec::leaf(&name, &name, &opts);
        let issuer: &Ca = match (&other_ca, doomed_set.contains(&i)) {
            (Some(other), false) => other,
            _ => &pki.intermediate,
        };
        if let (Some(until), true) = (expires_at, doomed_set.contains(&i)) {
            spec = spec.with_validity(now - time::Duration::hours(1), until);
        }
        let leaf = issuer.issue_leaf(&spec).map_err(|e| e.to_string())?;
        responder.register(&leaf).map_err(|e| e.to_string())?;
        leaves.push((leaf, issuer.cert.clone()));
    }
    if let Scenario::ResponderDown { .. } = scenario {
        // Published now, so that they carry the short validity.
        for ca in ["root", "intermediate"] {
            responder.publish(ca).map_err(|e| e.to_string())?;
        }
    }
    Ok(Setup {
        responder,
        pki,
        leaves,
        doomed,
        revoked_ca,
        expires_at: expires_at.map(SystemTime::from),
    })
}

/// Does what the scenario is about; returns the instant the connections
/// concerned stopped being trusted (publication, expiry, data lapse) and
/// the refresh path.
pub(super) async fn act(
    setup: &Setup,
    scenario: Scenario,
    lever: &Lever<'_>,
    args: &DrillArgs,
    progress: &Progress,
    label: &str,
) -> Result<(Instant, &'static str), String> {
    let trigger = |lever: &Lever<'_>| match lever {
        Lever::Engine(engine) => {
            let engine = (*engine).clone();
            tokio::spawn(async move {
                engine.refresh_all().await;
            });
        }
        Lever::Admin(admin) => {
            let admin = (*admin).clone();
            tokio::spawn(async move {
                if let Err(e) = admin.refresh().await {
                    tracing::warn!(error = %e, "drill: the proxy's refresh failed");
                }
            });
        }
    };
    let refresh = if args.refresh_interval.is_some() {
        "scheduled"
    } else {
        "triggered"
    };
    match scenario {
        Scenario::RevokeLeaf => {
            let certs: Vec<&Cert> = setup.doomed.iter().map(|i| &setup.leaves[*i].0).collect();
            progress.line(&format!("{label}: revoking {} leaves", certs.len()));
            setup
                .responder
                .revoke_many(&certs, Reason::KeyCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger(lever);
            }
            Ok((t0, refresh))
        }
        Scenario::RevokeIntermediate => {
            let ca = setup
                .revoked_ca
                .as_ref()
                .ok_or("no intermediate to revoke")?;
            progress.line(&format!(
                "{label}: revoking the intermediate of {} leaves",
                setup.doomed.len()
            ));
            setup
                .responder
                .revoke(ca, Reason::CaCompromise)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            if args.refresh_interval.is_none() {
                trigger(lever);
            }
            Ok((t0, refresh))
        }
        Scenario::Expire => {
            // The notAfter as encoded (whole seconds), not as requested.
            let until = setup
                .doomed
                .iter()
                .map(|i| SystemTime::from(setup.leaves[*i].0.not_after))
                .max()
                .or(setup.expires_at)
                .ok_or("no expiry set")?;
            // RFC 5280 §4.1.2.5: notAfter is inclusive; with whole-second
            // times the certificate is expired from notAfter + 1 s.
            let lapse = until + Duration::from_secs(1);
            progress.line(&format!(
                "{label}: {} certificates expire at {}",
                setup.doomed.len(),
                vigil_core::text::rfc3339(unix(until))
            ));
            Ok((instant_at(lapse), "deadline"))
        }
        Scenario::Deny => {
            progress.line(&format!("{label}: denying {} leaves", setup.doomed.len()));
            let t0 = Instant::now();
            for i in &setup.doomed {
                let der = &setup.leaves[*i].0.der;
                match lever {
                    Lever::Engine(engine) => {
                        let key = vigil_core::DenyKey::CertSha256(vigil_core::text::hex(
                            &vigil_core::sha256(der),
                        ));
                        engine
                            .deny(vigil_core::DenyRule::new(key, "revocation drill", None))
                            .map_err(|e| format!("deny: {e}"))?;
                    }
                    Lever::Admin(admin) => admin.deny(der).await?,
                }
            }
            Ok((t0, "deny"))
        }
        Scenario::ResponderDown { .. } => {
            setup
                .responder
                .set_behaviour(Target::All, Behaviour::Down)
                .map_err(|e| e.to_string())?;
            // The data lapses at the latest nextUpdate the engine holds
            // (+1 s: stale once strictly past it).
            let latest = next_updates(lever)
                .await?
                .into_values()
                .max()
                .ok_or("the engine holds no revocation data")?;
            let lapse = SystemTime::UNIX_EPOCH + Duration::from_secs(latest.max(0) as u64 + 1);
            progress.line(&format!(
                "{label}: responder down; revocation data lapses at {}",
                vigil_core::text::rfc3339(latest)
            ));
            // Refreshes keep failing meanwhile.
            trigger(lever);
            Ok((instant_at(lapse), "deadline"))
        }
    }
}

/// The nextUpdate (Unix seconds) of each revocation source the engine
/// holds, by its key: the in-process engine's, or the proxy's through its
/// admin API.
pub(super) async fn next_updates(lever: &Lever<'_>) -> Result<HashMap<String, i64>, String> {
    match lever {
        Lever::Engine(engine) => Ok(engine
            .sources()
            .into_iter()
            .filter_map(|s| Some((s.key, s.next_update?)))
            .collect()),
        Lever::Admin(admin) => admin.next_updates().await,
    }
}

/// When each connection's revocation data stops being usable: for each
/// certificate of its chain, the latest nextUpdate among the sources the
/// method reads (the engine falls back from one to the other), then the
/// earliest over the chain; +1 s, as data is stale once strictly past
/// nextUpdate (clock skew 0 in this scenario).
pub(super) fn lapse_per_connection(
    setup: &Setup,
    next: &HashMap<String, i64>,
    source: SourceArg,
) -> Vec<Option<Instant>> {
    let cert_lapse = |issuer_role: &str, serial: &str| -> Option<i64> {
        let crl = next.get(&setup.responder.crl_url(issuer_role)).copied();
        let ocsp = next
            .get(&format!(
                "{}#{serial}",
                setup.responder.ocsp_url(issuer_role)
            ))
            .copied();
        match source {
            SourceArg::Crl => crl,
            SourceArg::Ocsp => ocsp,
            SourceArg::Both => crl.max(ocsp),
        }
    };
    let ca = &setup.pki.intermediate.cert;
    let intermediate = cert_lapse(&ca.issuer, &ca.serial_hex());
    setup
        .leaves
        .iter()
        .map(|(leaf, _)| {
            let leaf = cert_lapse(&leaf.issuer, &leaf.serial_hex())?;
            let at = intermediate.map_or(leaf, |i| i.min(leaf));
            Some(instant_at(
                SystemTime::UNIX_EPOCH + Duration::from_secs(at.max(0) as u64 + 1),
            ))
        })
        .collect()
}
