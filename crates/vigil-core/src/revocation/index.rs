//! The revoked-serial index of one CRL: O(1) lookups, about 42 bytes per
//! entry, built once when the CRL is verified.

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::BuildHasher;

use super::Reason;

/// Serial numbers up to this many content octets are stored inline. RFC 5280
/// §4.1.2.2 caps conforming serials at 20 octets; longer ones go to a side map.
const INLINE: usize = 20;

/// One revoked certificate as a CRL lists it (RFC 5280 §5.1.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
    /// reasonCode entry extension (RFC 5280 §5.3.1), when present.
    pub reason: Option<Reason>,
}

#[derive(Clone, Copy)]
struct Slot {
    serial: [u8; INLINE],
    len: u8,
    reason: u8,
    revoked_at: i64,
}

const NO_REASON: u8 = 0xff;

/// Hash index from serial-number content octets to their CRL entry, in two
/// tables chosen by one bit of the serial's hash, so that a large index is
/// built by two threads at once (inserting a million serials is mostly
/// cache misses, one per serial). Built by [`SerialIndexBuilder`].
pub(crate) struct SerialIndex {
    slots: Vec<Slot>,
    tables: [HashTable<u32>; 2],
    long: HashMap<Box<[u8]>, RevokedEntry>,
    hasher: DefaultHashBuilder,
}

/// Slots at least this many are put in their tables by two threads.
const PARALLEL_BUILD: usize = 1 << 16;

/// Which of the two tables a hash goes to: a bit that is neither among the
/// low bits the table indexes buckets with nor among the top seven it
/// keeps as control bytes.
fn half(hash: u64) -> usize {
    ((hash >> 40) & 1) as usize
}

/// The entries of one CRL as they are read; [`SerialIndexBuilder::build`]
/// makes the index.
pub(crate) struct SerialIndexBuilder {
    slots: Vec<Slot>,
    long: HashMap<Box<[u8]>, RevokedEntry>,
}

impl SerialIndexBuilder {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            slots: Vec::with_capacity(n),
            long: HashMap::new(),
        }
    }

    /// Adds an entry. A serial listed twice (which RFC 5280 does not allow)
    /// is stored twice and looked up as either entry (both say "revoked");
    /// not probing for it here halves the cost of building a large index.
    pub(crate) fn insert(&mut self, serial: &[u8], entry: RevokedEntry) {
        // More than 4 billion entries cannot come from a CRL under the
        // fetch size limits; past that, the rest go to the side map.
        if serial.len() > INLINE || u32::try_from(self.slots.len()).is_err() {
            self.long.entry(serial.into()).or_insert(entry);
            return;
        }
        let mut inline = [0u8; INLINE];
        inline[..serial.len()].copy_from_slice(serial);
        self.slots.push(Slot {
            serial: inline,
            len: serial.len() as u8,
            reason: entry.reason.map_or(NO_REASON, |r| r as u8),
            revoked_at: entry.revoked_at,
        });
    }

    /// The index: each slot hashed into its table, by two threads when
    /// there are many.
    pub(crate) fn build(self) -> SerialIndex {
        let hasher = DefaultHashBuilder::default();
        let slots = self.slots;
        let fill = |which: usize| {
            let mut table = HashTable::with_capacity(slots.len() / 2 + slots.len() / 16);
            for (i, slot) in slots.iter().enumerate() {
                let hash = hasher.hash_one(slot_serial(slot));
                if half(hash) == which {
                    // `i` fits: the builder keeps at most u32::MAX slots.
                    table.insert_unique(hash, i as u32, |&j| {
                        hasher.hash_one(slot_serial(&slots[j as usize]))
                    });
                }
            }
            table
        };
        let tables = if slots.len() >= PARALLEL_BUILD {
            std::thread::scope(|scope| {
                let other = std::thread::Builder::new()
                    .name("vigil-crl-index".into())
                    .spawn_scoped(scope, || fill(1));
                let first = fill(0);
                // No thread to be had, or it panicked: fill it here.
                let second = other
                    .ok()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_else(|| fill(1));
                [first, second]
            })
        } else {
            [fill(0), fill(1)]
        };
        SerialIndex {
            slots,
            tables,
            long: self.long,
            hasher,
        }
    }
}

impl SerialIndex {
    /// Number of entries (a duplicated serial counts twice).
    pub(crate) fn len(&self) -> usize {
        self.slots.len() + self.long.len()
    }

    /// Every (serial, entry).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], RevokedEntry)> + '_ {
        self.slots
            .iter()
            .map(|slot| {
                (
                    slot_serial(slot),
                    RevokedEntry {
                        revoked_at: slot.revoked_at,
                        reason: Reason::from_code(slot.reason),
                    },
                )
            })
            .chain(self.long.iter().map(|(k, v)| (&k[..], *v)))
    }

    /// The entry for `serial` (raw INTEGER content octets), if listed.
    pub(crate) fn get(&self, serial: &[u8]) -> Option<RevokedEntry> {
        if serial.len() > INLINE || !self.long.is_empty() {
            if let Some(entry) = self.long.get(serial) {
                return Some(*entry);
            }
            if serial.len() > INLINE {
                return None;
            }
        }
        let hash = self.hasher.hash_one(serial);
        self.tables[half(hash)]
            .find(hash, |&i| slot_serial(&self.slots[i as usize]) == serial)
            .map(|&i| {
                let slot = &self.slots[i as usize];
                RevokedEntry {
                    revoked_at: slot.revoked_at,
                    reason: Reason::from_code(slot.reason),
                }
            })
    }

    /// Bytes held by the index (for reporting retained memory).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.tables.iter().map(HashTable::capacity).sum::<usize>()
                * (std::mem::size_of::<u32>() + 1)
            + self.long.capacity() * 48
    }
}

fn slot_serial(slot: &Slot) -> &[u8] {
    &slot.serial[..usize::from(slot.len)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_and_long_serials_only() {
        let mut index = SerialIndexBuilder::with_capacity(4);
        let entry = |t| RevokedEntry {
            revoked_at: t,
            reason: Some(Reason::KeyCompromise),
        };
        index.insert(&[0x01], entry(1));
        index.insert(&[0x01], entry(2));
        index.insert(&[0xff, 0x7f], entry(3));
        index.insert(&[0x42; 21], entry(4));
        let index = index.build();
        assert_eq!(index.len(), 4);
        assert!(matches!(index.get(&[0x01]), Some(e) if e == entry(1) || e == entry(2)));
        assert_eq!(index.get(&[0xff, 0x7f]), Some(entry(3)));
        assert_eq!(index.get(&[0x42; 21]), Some(entry(4)));
        assert_eq!(index.get(&[0x00, 0x01]), None);
        assert_eq!(index.get(&[0x42; 20]), None);
        assert_eq!(index.get(&[]), None);
    }

    #[test]
    fn a_large_index_built_by_two_threads_finds_every_entry_and_no_other() {
        let n = 3 * PARALLEL_BUILD as u32;
        let mut builder = SerialIndexBuilder::with_capacity(n as usize);
        for i in 0..n {
            let reason = (i % 2 == 0).then_some(Reason::KeyCompromise);
            builder.insert(
                &i.to_be_bytes(),
                RevokedEntry {
                    revoked_at: i64::from(i),
                    reason,
                },
            );
        }
        let index = builder.build();
        assert_eq!(index.len(), n as usize);
        // Both tables hold a share.
        assert!(index.tables.iter().all(|t| t.len() > n as usize / 3));
        for i in 0..n {
            let found = index.get(&i.to_be_bytes()).map(|e| e.revoked_at);
            assert_eq!(found, Some(i64::from(i)), "serial {i}");
        }
        for i in n..n + 1_000 {
            assert_eq!(index.get(&i.to_be_bytes()), None);
        }
    }
}
