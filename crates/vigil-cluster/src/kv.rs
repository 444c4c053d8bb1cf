//! The fleet's JetStream buckets.
//!
//! Debian's nats-server (2.9) answers the account-info request that
//! `async_nats`' `create_key_value` starts with in a shape that client
//! cannot read, so the deny bucket is created as the stream a KV bucket is
//! (ADR-8: `KV_<bucket>`, subjects `$KV.<bucket>.>`, one message per
//! revision, rollups allowed, deletes by API refused, direct gets on) and
//! then opened as a bucket.

use async_nats::jetstream::{self, kv, stream};

use crate::record::MAX_ENVELOPE;

/// Revisions kept per rule.
pub(crate) const HISTORY: i64 = 16;

/// The deny bucket's name for `fleet`.
pub(crate) fn deny_bucket_name(fleet: &str) -> String {
    format!("{fleet}_deny")
}

/// Opens (creating when missing) the deny bucket.
pub(crate) async fn deny_bucket(
    js: &jetstream::Context,
    fleet: &str,
    replicas: usize,
) -> Result<kv::Store, String> {
    bucket(
        js,
        &deny_bucket_name(fleet),
        HISTORY,
        MAX_ENVELOPE + 1024,
        replicas,
    )
    .await
}

/// Opens (creating when missing) a KV bucket keeping `history` revisions
/// per key, with values of at most `max_value` bytes (headers included).
pub(crate) async fn bucket(
    js: &jetstream::Context,
    bucket: &str,
    history: i64,
    max_value: usize,
    replicas: usize,
) -> Result<kv::Store, String> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_message_size: i32::try_from(max_value).unwrap_or(i32::MAX),
        max_bytes: 256 * 1024 * 1024,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("bucket {bucket}: {e}"))?;
    js.get_key_value(bucket.to_owned())
        .await
        .map_err(|e| format!("bucket {bucket}: {e}"))
}
