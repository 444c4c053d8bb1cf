//! Issue 11 against the release-shaped binary: `vigil verify` and a running
//! `vigil serve`, attacked with chains that name the attacker's responder.
//! A second fixture PKI plays the attacker: its intermediate copies the real
//! intermediate's name under another key.
#![allow(clippy::unwrap_used)]

mod serve_support;

use std::process::Command;

use pki_fixtures::responder::{start_with_fresh_pki, Responder, ResponderOptions};
use pki_fixtures::{PkiOptions, Reason};
use serde_json::{json, Value};
use serve_support::{vigil, Api, Fixture};

fn requests(r: &Responder) -> u64 {
    let c = r.counts();
    c.crl + c.ocsp_get + c.ocsp_post + c.not_found
}

async fn attacker() -> (Responder, pki_fixtures::Pki) {
    start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap()
}

/// `vigil verify` (online) of a chain that leads to no anchor: rejected,
/// and the responder its certificates name hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigil_verify_of_an_untrusted_chain_fetches_nothing() {
    let fx = Fixture::start().await;
    let (evil, evil_pki) = attacker().await;
    let chain = fx.dir.path().join("evil-chain.pem");
    std::fs::write(
        &chain,
        format!("{}{}", evil_pki.client.pem, evil_pki.intermediate.cert.pem),
    )
    .unwrap();
    for policy in ["require", "prefer"] {
        let out = Command::new(vigil())
            .arg("verify")
            .arg("--anchor")
            .arg(fx.anchor())
            .args([
                "--usage",
                "client",
                "--format",
                "json",
                "--revocation",
                policy,
            ])
            .arg(&chain)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["verdict"], "rejected", "{verdict}");
    }
    assert_eq!(requests(&evil), 0);
}

/// `POST /v1/verify` with an untrusted chain, and with a valid chain that
/// has the attacker's certificates appended: no request reaches the
/// attacker, no source is created for it, and the victim stays good after
/// the attacker's CRLs list and then drop its serial (also across a
/// restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_fetches_only_for_validated_paths_and_cannot_be_poisoned() {
    let fx = Fixture::start().await;
    let (evil, evil_pki) = attacker().await;
    let mut sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    api.wait_ready().await;
    let untrusted = json!({"chain": [evil_pki.client.pem, evil_pki.intermediate.cert.pem],
                           "usage": "client"});
    let reply = api.post("/v1/verify", &untrusted).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["verdict"], "rejected", "{}", reply.text);

    let victim = json!({"chain": [fx.pki.client.pem, fx.pki.intermediate.cert.pem],
                        "usage": "client"});
    let appended = json!({"chain": [fx.pki.client.pem, fx.pki.intermediate.cert.pem,
                                    evil_pki.client.pem, evil_pki.intermediate.cert.pem],
                          "usage": "client"});
    evil.revoke_serial("intermediate", &fx.pki.client.serial, Reason::KeyCompromise)
        .unwrap();
    let reply = api.post("/v1/verify", &appended).await;
    assert_eq!(reply.body["status"], "good", "{}", reply.text);
    evil.unrevoke(&fx.pki.client).unwrap();
    api.refresh().await;
    let reply = api.post("/v1/verify", &appended).await;
    assert_eq!(reply.body["status"], "good", "{}", reply.text);

    assert_eq!(requests(&evil), 0, "the attacker's responder was asked");
    let sources = api.get("/v1/revocation").await;
    assert!(
        !sources.text.contains(evil.base_url()),
        "a source of the attacker's: {}",
        sources.text
    );

    sidecar.kill9();
    let sidecar = fx.sidecar(&[]);
    let api = Api::new(&sidecar, None);
    api.wait_ready().await;
    let reply = api.post("/v1/verify", &victim).await;
    assert_eq!(reply.body["verdict"], "accepted", "{}", reply.text);
    assert_eq!(reply.body["status"], "good", "{}", reply.text);
}
