//! Repeated `POST /v1/verify` requests, by their exact body.
//!
//! A client that verifies the same chain again sends the same octets. The
//! memo keeps, for a body whose verdict was accepted, the chain and options
//! it decoded to; a repeat then skips JSON parsing and base64 decoding and
//! goes straight to the engine's verdict cache, which alone decides whether
//! that verdict still holds (snapshot generation, validity window). A miss
//! there, or any body not seen, takes the full path.
//!
//! Bounded: bodies over [`MAX_BODY`] are never kept, and the memo is
//! emptied when it holds [`CAPACITY`] entries (at most about 8 MiB of
//! bodies and as much of decoded chains). Entries are found by a seeded
//! hash and confirmed octet for octet, so a collision is only a miss.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::Bytes;
use vigil_core::{CertificateDer, VerifyOptions};

/// Most entries held.
pub(crate) const CAPACITY: usize = 1024;
/// Largest body kept, bytes.
pub(crate) const MAX_BODY: usize = 8 * 1024;

/// What a body decoded to.
pub(crate) struct Decoded {
    body: Bytes,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) options: VerifyOptions,
}

#[derive(Default)]
pub(crate) struct RequestMemo {
    seed: hashbrown::DefaultHashBuilder,
    entries: RwLock<HashMap<u64, Arc<Decoded>>>,
}

impl RequestMemo {
    /// What `body` decoded to when it was last accepted, if it is held.
    pub(crate) fn get(&self, body: &[u8]) -> Option<Arc<Decoded>> {
        if body.len() > MAX_BODY {
            return None;
        }
        let key = self.seed.hash_one(body);
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&key)
            .filter(|d| d.body[..] == *body)
            .map(Arc::clone)
    }

    /// Remembers that `body` decoded to `chain` and `options`, whose
    /// verdict was accepted.
    pub(crate) fn insert(
        &self,
        body: Bytes,
        chain: Vec<CertificateDer<'static>>,
        options: VerifyOptions,
    ) {
        if body.len() > MAX_BODY {
            return;
        }
        let key = self.seed.hash_one(&body[..]);
        // A body is often a slice of a larger read buffer: keep a copy of
        // its own so the buffer is not held.
        let body = Bytes::copy_from_slice(&body);
        let decoded = Arc::new(Decoded {
            body,
            chain,
            options,
        });
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::Usage;

    #[test]
    fn holds_exact_bodies_only_and_stays_bounded() {
        let memo = RequestMemo::default();
        let options = VerifyOptions::new(Usage::Client);
        let chain = vec![CertificateDer::from(vec![0x30, 0x00])];
        memo.insert(
            Bytes::from_static(b"{\"chain\":[\"a\"]}"),
            chain.clone(),
            options.clone(),
        );
        assert!(memo.get(b"{\"chain\":[\"a\"]}").is_some());
        assert!(memo.get(b"{\"chain\":[\"b\"]}").is_none());
        assert!(memo.get(b"{\"chain\":[\"a\"]} ").is_none());
        // Too large to keep.
        let big = Bytes::from(vec![b' '; MAX_BODY + 1]);
        memo.insert(big.clone(), chain.clone(), options.clone());
        assert!(memo.get(&big).is_none());
        // Never more than CAPACITY entries.
        for i in 0..CAPACITY * 2 {
            memo.insert(Bytes::from(format!("{i}")), chain.clone(), options.clone());
            let held = memo.entries.read().unwrap().len();
            assert!(held <= CAPACITY, "{held}");
        }
        // A colliding key with other octets is a miss, not a wrong answer.
        let key = memo.seed.hash_one(&b"x"[..]);
        memo.entries.write().unwrap().insert(
            key,
            Arc::new(Decoded {
                body: Bytes::from_static(b"y"),
                chain,
                options,
            }),
        );
        assert!(memo.get(b"x").is_none());
    }
}
