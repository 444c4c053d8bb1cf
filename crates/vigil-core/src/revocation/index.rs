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

/// Hash index from serial-number content octets to their CRL entry.
pub(crate) struct SerialIndex {
    slots: Vec<Slot>,
    table: HashTable<u32>,
    long: HashMap<Box<[u8]>, RevokedEntry>,
    hasher: DefaultHashBuilder,
}

impl SerialIndex {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            slots: Vec::with_capacity(n),
            table: HashTable::with_capacity(n),
            long: HashMap::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Number of entries (a duplicated serial counts twice).
    pub(crate) fn len(&self) -> usize {
        self.slots.len() + self.long.len()
    }

    /// Adds an entry. A serial listed twice (which RFC 5280 does not allow)
    /// is stored twice and looked up as either entry (both say "revoked"); not probing for it
    /// here halves the cost of building a large index.
    pub(crate) fn insert(&mut self, serial: &[u8], entry: RevokedEntry) {
        if serial.len() > INLINE {
            self.long.entry(serial.into()).or_insert(entry);
            return;
        }
        let hash = self.hasher.hash_one(serial);
        let Ok(position) = u32::try_from(self.slots.len()) else {
            // More than 4 billion entries cannot come from a CRL under the
            // fetch size limits; keep the rest in the side map.
            self.long.entry(serial.into()).or_insert(entry);
            return;
        };
        let mut inline = [0u8; INLINE];
        inline[..serial.len()].copy_from_slice(serial);
        self.slots.push(Slot {
            serial: inline,
            len: serial.len() as u8,
            reason: entry.reason.map_or(NO_REASON, |r| r as u8),
            revoked_at: entry.revoked_at,
        });
        let hasher = &self.hasher;
        let slots = &self.slots;
        self.table.insert_unique(hash, position, |&i| {
            hasher.hash_one(slot_serial(&slots[i as usize]))
        });
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
        self.table
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
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
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
        let mut index = SerialIndex::with_capacity(4);
        let entry = |t| RevokedEntry {
            revoked_at: t,
            reason: Some(Reason::KeyCompromise),
        };
        index.insert(&[0x01], entry(1));
        index.insert(&[0x01], entry(2));
        index.insert(&[0xff, 0x7f], entry(3));
        index.insert(&[0x42; 21], entry(4));
        assert_eq!(index.len(), 4);
        assert!(matches!(index.get(&[0x01]), Some(e) if e == entry(1) || e == entry(2)));
        assert_eq!(index.get(&[0xff, 0x7f]), Some(entry(3)));
        assert_eq!(index.get(&[0x42; 21]), Some(entry(4)));
        assert_eq!(index.get(&[0x00, 0x01]), None);
        assert_eq!(index.get(&[0x42; 20]), None);
        assert_eq!(index.get(&[]), None);
    }
}
