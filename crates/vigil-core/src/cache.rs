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
    fn shard(&self, key: &CacheKey<'_>) -> std::sync::MutexGuard<'_, VerdictCache> {
        // The high bits: the map inside uses the low ones.
        let i = (key.hash >> 32) as usize % self.shards.len();
        // A cache holds no invariant a panic could break halfway.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(
        &self,
        key: &CacheKey<'_>,
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        self.shard(key).get(key, options, generation, now)
    }

    pub(crate) fn insert(
        &self,
        key: &CacheKey<'_>,
        options: &VerifyOptions,
        generation: u64,
        window: (i64, i64),
        verdict: Arc<Verdict>,
    ) {
        self.shard(key)
            .insert(key, options, generation, window, verdict);
    }
}

/// What a verification is cached under: a fast seeded hash (the map key)
/// of the options, the chain's shape (how many certificates, each one's
/// length) and the last [`TAIL`] octets of each certificate, which are its
/// signature: unpredictable, and different for every certificate a CA
/// signs. A hit is confirmed by comparing the whole chain with the copy the
/// entry keeps, octet for octet, so a collision (even one made on purpose,
/// by copying a certificate's signature onto other contents) costs a
/// verification, never a wrong verdict; and only accepted verdicts are
/// cached, so a chain that fails cannot displace one that passed. Hashing a
/// few octets per certificate instead of the whole chain (a SHA-256 over
/// the chain cost ~1 µs, ten times the rest of a hit) is what keeps a hit
/// near 100 ns; the price is the chain copy per entry, bounded by the
/// cache's capacity.
pub(crate) struct CacheKey<'a> {
    hash: u64,
    chain: &'a [CertificateDer<'a>],
}

/// Octets of each certificate's end that go into the key hash.
const TAIL: usize = 32;

impl<'a> CacheKey<'a> {
    pub(crate) fn new(
        seed: &hashbrown::DefaultHashBuilder,
        chain: &'a [CertificateDer<'a>],
        options: &VerifyOptions,
    ) -> Self {
        let mut h = seed.build_hasher();
        chain.len().hash(&mut h);
        for c in chain {
            let der: &[u8] = c.as_ref();
            der.len().hash(&mut h);
            h.write(&der[der.len().saturating_sub(TAIL)..]);
        }
        options.hash(&mut h);
        Self {
            hash: h.finish(),
            chain,
        }
    }
}

/// A cached chain: its certificates end to end, each after its length (u32,
/// big-endian), in one allocation.
struct ChainCopy(Box<[u8]>);

impl ChainCopy {
    fn new(chain: &[CertificateDer<'_>]) -> Self {
        let total = chain.iter().map(|c| 4 + c.as_ref().len()).sum();
        let mut out = Vec::with_capacity(total);
        for c in chain {
            let der: &[u8] = c.as_ref();
            // Certificates come from TLS messages (at most 2^24 octets).
            out.extend_from_slice(&u32::try_from(der.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(der);
        }
        Self(out.into_boxed_slice())
    }

    /// Whether `chain` is this chain, octet for octet.
    fn is(&self, chain: &[CertificateDer<'_>]) -> bool {
        let mut rest: &[u8] = &self.0;
        for c in chain {
            let der: &[u8] = c.as_ref();
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return false;
            };
            if u32::from_be_bytes(*len) as usize != der.len() || tail.len() < der.len() {
                return false;
            }
            let (this, after) = tail.split_at(der.len());
            if this != der {
                return false;
            }
            rest = after;
        }
        rest.is_empty()
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
    chain: ChainCopy,
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
        key: &CacheKey<'_>,
        options: &VerifyOptions,
        generation: u64,
        now: i64,
    ) -> Option<Arc<Verdict>> {
        let holds = |e: &CacheEntry| {
            e.generation == generation
                && now >= e.valid_from
                && now < e.valid_until
                && e.chain.is(key.chain)
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
        key: &CacheKey<'_>,
        options: &VerifyOptions,
        generation: u64,
        window: (i64, i64),
        verdict: Arc<Verdict>,
    ) {
        self.previous.remove(&key.hash);
        self.put(
            key.hash,
            CacheEntry {
                chain: ChainCopy::new(key.chain),
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
        fn key_with<'a>(
            seed: &hashbrown::DefaultHashBuilder,
            c: &'a [CertificateDer<'a>],
            options: &VerifyOptions,
        ) -> CacheKey<'a> {
            CacheKey::new(seed, c, options)
        }
        macro_rules! key {
            ($c:expr) => {
                key_with(&seed, $c, &options)
            };
        }
        let hot = chain(0);
        cache.insert(&key!(&hot), &options, 1, (0, 100), verdict("hot"));
        // A chain whose hash collides is not the cached one.
        let other = chain(1);
        let mut forged = key!(&other);
        forged.hash = key!(&hot).hash;
        assert!(cache.get(&forged, &options, 1, 10).is_none());
        // Nor is one that copies the cached chain's tail (its signature)
        // and length onto other contents: same key hash, other octets.
        let signed = vec![CertificateDer::from(vec![7u8; 3 * TAIL])];
        cache.insert(&key!(&signed), &options, 1, (0, 100), verdict("signed"));
        let mut copied = signed[0].as_ref().to_vec();
        copied[0] ^= 1;
        let copied = vec![CertificateDer::from(copied)];
        assert_eq!(key!(&copied).hash, key!(&signed).hash);
        assert!(cache.get(&key!(&copied), &options, 1, 10).is_none());
        assert!(cache.get(&key!(&signed), &options, 1, 10).is_some());
        // Nor a prefix or an extension of it.
        let longer = vec![hot[0].clone(), hot[0].clone()];
        assert!(cache.get(&key!(&longer), &options, 1, 10).is_none());
        assert!(cache.get(&key!(&[]), &options, 1, 10).is_none());
        assert!(cache.get(&key!(&hot), &options, 1, 10).is_some());
        // Nor is the same chain under other options, another generation of
        // data, or outside the verdict's window.
        let strict = VerifyOptions {
            usage: crate::Usage::Server,
            ..VerifyOptions::default()
        };
        assert!(cache.get(&key!(&hot), &strict, 1, 10).is_none());
        assert!(cache.get(&key!(&hot), &options, 2, 10).is_none());
        assert!(cache.get(&key!(&hot), &options, 1, 100).is_none());
        // Three generations' worth of other chains pass through; the hot
        // chain, used once per generation, stays.
        for i in 1..=3 * GENERATION_CAPACITY {
            let c = chain(i);
            cache.insert(&key!(&c), &options, 1, (0, 100), verdict("cold"));
            if i % (GENERATION_CAPACITY / 2) == 0 {
                let hit = cache.get(&key!(&hot), &options, 1, 10);
                assert_eq!(hit.map(|v| v.detail.clone()).as_deref(), Some("hot"));
            }
            assert!(cache.current.len() + cache.previous.len() <= 2 * GENERATION_CAPACITY);
        }
        // A chain not used for two generations is gone.
        let first = chain(1);
        assert!(cache.get(&key!(&first), &options, 1, 10).is_none());
    }
}
