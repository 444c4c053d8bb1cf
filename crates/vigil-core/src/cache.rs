//! The verdict cache: repeated verifications of the same chain with
//! unchanged data are answered by a hash lookup.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls_pki_types::CertificateDer;

use crate::options::VerifyOptions;
use crate::verdict::Verdict;

/// Verdicts per generation: the cache holds at most twice as many.
const GENERATION_CAPACITY: usize = 4 * 1024;

/// Independently locked parts of the cache: a hit locks one of them, so
/// concurrent verifications rarely meet (a power of two).
const SHARDS: usize = 16;

/// What every snapshot descended from one verifier shares: the verdict
/// cache, the seed of its key hash (random per verifier, fixed for its
/// life) and the generation counter.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) cache: ShardedCache,
    pub(crate) seed: hashbrown::DefaultHashBuilder,
    generations: AtomicU64,
}

impl Shared {
    /// A generation no snapshot of this lineage had before.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The verdict cache in [`SHARDS`] parts chosen by the key hash, each a
/// two-generation [`VerdictCache`] of a share of the capacity: the same
/// memory bound as one cache, without one lock for every hit.
pub(crate) struct ShardedCache {
    shards: Vec<Mutex<VerdictCache>>,
}

impl Default for ShardedCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(VerdictCache::with_capacity(GENERATION_CAPACITY / SHARDS)))
                .collect(),
        }
    }
}

impl ShardedCache {
    fn shard(&self, key: &CacheKey) -> std::sync::MutexGuard<'_, VerdictCache> {
        // The high bits: the map inside uses the low ones.
        let i = (key.hash >> 32) as usize % self.shards.len();
        // A cache holds no invariant a panic could break halfway.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(
        &self,
        key: &CacheKey,
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        self.shard(key).get(key, options, generation, now)
    }

    pub(crate) fn insert(
        &self,
        key: &CacheKey,
        options: &VerifyOptions,
        generation: u64,
        window: (i64, i64),
        verdict: Arc<Verdict>,
    ) {
        self.shard(key)
            .insert(key, options, generation, window, verdict);
    }
}

/// What a verification is cached under: the chain's SHA-256 over its
/// certificates, each preceded by its length, and a fast seeded hash of
/// that digest and the options (the map key; its collisions are harmless,
/// hits are confirmed by the digest and the options). Computed before the
/// cache is locked. The digest is kept instead of a copy of the chain (a
/// cached verdict would otherwise hold a second copy of every certificate);
/// SHA-256 is what certificates are identified by elsewhere too (the
/// registry, deny rules).
pub(crate) struct CacheKey {
    hash: u64,
    chain: [u8; 32],
}

impl CacheKey {
    pub(crate) fn new(
        seed: &hashbrown::DefaultHashBuilder,
        chain: &[CertificateDer<'_>],
        options: &VerifyOptions,
    ) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for c in chain {
            let der: &[u8] = c.as_ref();
            ctx.update(&(der.len() as u64).to_be_bytes());
            ctx.update(der);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ctx.finish().as_ref());
        let mut h = seed.build_hasher();
        digest.hash(&mut h);
        options.hash(&mut h);
        Self {
            hash: h.finish(),
            chain: digest,
        }
    }
}

/// Two generations: new verdicts go to `current`; when it is full it
/// becomes `previous` (the older one is dropped). A hit in `previous` moves
/// back to `current`, so chains in steady use stay cached however many
/// others pass through, and there is no cliff where a working set just
/// over the capacity never hits.
pub(crate) struct VerdictCache {
    current: HashMap<u64, CacheEntry>,
    previous: HashMap<u64, CacheEntry>,
    /// Verdicts per generation.
    capacity: usize,
}

impl Default for VerdictCache {
    fn default() -> Self {
        Self::with_capacity(GENERATION_CAPACITY)
    }
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
    fn with_capacity(capacity: usize) -> Self {
        Self {
            current: HashMap::new(),
            previous: HashMap::new(),
            capacity,
        }
    }

    pub(crate) fn get(
        &mut self,
        key: &CacheKey,
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        let holds = |e: &CacheEntry| {
            e.generation == generation
                && now >= e.valid_from
                && now < e.valid_until
                && e.chain == key.chain
                && &e.options == options
        };
        if let Some(e) = self.current.get(&key.hash) {
            return holds(e).then(|| e.verdict.clone());
        }
        let e = self.previous.remove(&key.hash)?;
        if !holds(&e) {
            return None;
        }
        let verdict = e.verdict.clone();
        self.put(key.hash, e);
        Some(verdict)
    }

    fn put(&mut self, hash: u64, entry: CacheEntry) {
        if self.current.len() >= self.capacity {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(hash, entry);
    }

    pub(crate) fn insert(
        &mut self,
        key: &CacheKey,
        options: &VerifyOptions,
        generation: u64,
        window: (i64, i64),
        verdict: Arc<Verdict>,
    ) {
        self.previous.remove(&key.hash);
        self.put(
            key.hash,
            CacheEntry {
                chain: key.chain,
                options: options.clone(),
                generation,
                valid_from: window.0,
                valid_until: window.1,
                verdict,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Decision, ReasonCode, Status};

    fn verdict(detail: &str) -> Arc<Verdict> {
        Arc::new(Verdict {
            verdict: Decision::Accepted,
            status: Status::Good,
            reason: ReasonCode::Ok,
            detail: detail.into(),
            chain: Vec::new(),
            revocation: Vec::new(),
            valid_until: None,
            proof: None,
        })
    }

    fn chain(i: usize) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(format!("leaf {i}").into_bytes())]
    }

    #[test]
    fn hits_are_confirmed_by_the_chain_and_steady_chains_outlive_rotation() {
        let seed = hashbrown::DefaultHashBuilder::default();
        let options = VerifyOptions::default();
        let mut cache = VerdictCache::default();
        let key = |c: &[CertificateDer<'_>]| CacheKey::new(&seed, c, &options);
        let hot = chain(0);
        cache.insert(&key(&hot), &options, 1, (0, 100), verdict("hot"));
        // A chain whose hash collides is not the cached one.
        let mut forged = key(&chain(1));
        forged.hash = key(&hot).hash;
        assert!(cache.get(&forged, &options, 1, 10).is_none());
        // Nor is the same chain under other options, another generation of
        // data, or outside the verdict's window.
        let strict = VerifyOptions {
            usage: crate::Usage::Server,
            ..VerifyOptions::default()
        };
        assert!(cache.get(&key(&hot), &strict, 1, 10).is_none());
        assert!(cache.get(&key(&hot), &options, 2, 10).is_none());
        assert!(cache.get(&key(&hot), &options, 1, 100).is_none());
        // Three generations' worth of other chains pass through; the hot
        // chain, used once per generation, stays.
        for i in 1..=3 * GENERATION_CAPACITY {
            let c = chain(i);
            cache.insert(&key(&c), &options, 1, (0, 100), verdict("cold"));
            if i % (GENERATION_CAPACITY / 2) == 0 {
                let hit = cache.get(&key(&hot), &options, 1, 10);
                assert_eq!(hit.map(|v| v.detail.clone()).as_deref(), Some("hot"));
            }
            assert!(cache.current.len() + cache.previous.len() <= 2 * GENERATION_CAPACITY);
        }
        // A chain not used for two generations is gone.
        let first = chain(1);
        assert!(cache.get(&key(&first), &options, 1, 10).is_none());
    }
}
