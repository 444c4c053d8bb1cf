//! Shared by the fleet tests (`fleet`, `fleet_cluster`): finding
//! `nats-server`, and what the tests ask every node.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::serve_support::Api;

/// `nats-server` on the PATH, else Debian's /usr/sbin one.
pub fn nats_server() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// SHA-256 of `der`, hex: a `cert_sha256` deny key.
pub fn hex(der: &[u8]) -> String {
    vigil_core::text::hex(&vigil_core::sha256(der))
}

/// The subject of `leaf` as events show it.
pub fn subject(leaf: &pki_fixtures::Cert) -> String {
    vigil_core::CertSummary::from_der(&leaf.der)
        .unwrap()
        .subject
}

/// The `cert_sha256` of every deny rule a node holds.
pub async fn denied_keys(api: &Api) -> Vec<String> {
    let reply = api.get("/v1/deny").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["cert_sha256"].as_str().map(str::to_owned))
        .collect()
}

/// A node's verdict on a client chain.
pub async fn verdict(api: &Api, chain: &Value) -> Value {
    let reply = api
        .post("/v1/verify", &json!({"chain": chain, "usage": "client"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// The `cluster` object of a node's `/readyz`.
pub async fn cluster_status(api: &Api) -> Value {
    api.get("/readyz").await.body["cluster"].clone()
}
