//! The verdict cache: repeated verifications of the same chain with
//! unchanged data are answered by a hash lookup.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use crate::verdict::Verdict;
use crate::verify::VerifyOptions;

/// Most verdicts kept by the cache before it starts over.
const CACHE_CAPACITY: usize = 16 * 1024;

/// A fast, seeded hash of the chain and options. Hits are confirmed by the
/// chain's SHA-256 ([`chain_digest`]) and the options, so collisions of
/// this hash are harmless.
pub(crate) fn cache_key(
    seed: &hashbrown::DefaultHashBuilder,
    chain: &[CertificateDer<'_>],
    options: &VerifyOptions,
) -> u64 {
    let mut h = seed.build_hasher();
    for c in chain {
        c.as_ref().hash(&mut h);
    }
    options.hash(&mut h);
    h.finish()
}

/// SHA-256 over the chain's certificates, each preceded by its length: what
/// a cache hit is confirmed by. Kept instead of a copy of the chain (a
/// cached verdict would otherwise hold a second copy of every certificate);
/// SHA-256 is what certificates are identified by elsewhere too (the
/// registry, deny rules).
fn chain_digest(chain: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for c in chain {
        let der: &[u8] = c.as_ref();
        ctx.update(&(der.len() as u64).to_be_bytes());
        ctx.update(der);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[derive(Default)]
pub(crate) struct VerdictCache {
    entries: HashMap<u64, CacheEntry>,
}

struct CacheEntry {
    chain: [u8; 32],
    options: VerifyOptions,
    generation: u64,
    valid_from: i64,
    valid_until: i64,
    verdict: Arc<Verdict>,
}

impl VerdictCache {
    pub(crate) fn get(
        &self,
        key: u64,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        let e = self.entries.get(&key)?;
        // The key is a fast hash: confirm the options exactly and the chain
        // by its digest.
        (e.generation == generation
            && now >= e.valid_from
            && now < e.valid_until
            && &e.options == options
            && e.chain == chain_digest(chain))
        .then(|| e.verdict.clone())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        key: u64,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
        generation: u64,
        valid_from: i64,
        valid_until: i64,
        verdict: Arc<Verdict>,
    ) {
        if self.entries.len() >= CACHE_CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            CacheEntry {
                chain: chain_digest(chain),
                options: options.clone(),
                generation,
                valid_from,
                valid_until,
                verdict,
            },
        );
    }
}
