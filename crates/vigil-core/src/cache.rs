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

/// A fast, seeded hash of the chain and options. Hits are confirmed by
/// comparing the chain and options exactly, so collisions are harmless.
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

#[derive(Default)]
pub(crate) struct VerdictCache {
    entries: HashMap<u64, CacheEntry>,
}

struct CacheEntry {
    chain: Vec<Vec<u8>>,
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
        // The key is a fast hash: confirm the chain and options exactly.
        (e.generation == generation
            && now >= e.valid_from
            && now < e.valid_until
            && &e.options == options
            && e.chain.len() == chain.len()
            && e.chain
                .iter()
                .zip(chain)
                .all(|(a, b)| a.as_slice() == b.as_ref()))
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
                chain: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
                options: options.clone(),
                generation,
                valid_from,
                valid_until,
                verdict,
            },
        );
    }
}
