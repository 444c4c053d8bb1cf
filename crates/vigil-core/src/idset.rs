//! A set of ids that is usually a single one: kept inline then, as a hash
//! set only from the second. Indexes with one entry per connection (a
//! certificate held by one connection, a chain registered once) hold
//! hundreds of thousands of these.

use std::hash::Hash;

use hashbrown::HashSet;

/// A set of `T` (small, `Copy` ids), without an allocation while it holds
/// at most one.
#[derive(Clone, Debug, Default)]
pub enum IdSet<T> {
    /// No id.
    #[default]
    None,
    /// Exactly one.
    One(T),
    /// Two or more.
    Many(Box<HashSet<T>>),
}

impl<T: Copy + Eq + Hash> IdSet<T> {
    /// Adds `id`.
    pub fn insert(&mut self, id: T) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(id),
            Self::One(first) if first == id => Self::One(first),
            Self::One(first) => Self::Many(Box::new(HashSet::from_iter([first, id]))),
            Self::Many(mut set) => {
                set.insert(id);
                Self::Many(set)
            }
        };
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: T) {
        match self {
            Self::One(only) if *only == id => *self = Self::None,
            Self::Many(set) => {
                set.remove(&id);
                if set.is_empty() {
                    *self = Self::None;
                }
            }
            _ => {}
        }
    }

    /// Whether it holds no id.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The ids, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let (one, many) = match self {
            Self::None => (None, None),
            Self::One(id) => (Some(*id), None),
            Self::Many(set) => (None, Some(set.iter().copied())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Heap bytes held (estimate).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Many(set) => {
                std::mem::size_of::<HashSet<T>>() + set.capacity() * (std::mem::size_of::<T>() + 1)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn one_then_many_then_none() {
        let mut ids = IdSet::default();
        assert!(ids.is_empty());
        ids.insert(7u64);
        ids.insert(7);
        assert!(matches!(ids, IdSet::One(7)));
        ids.insert(9);
        let mut all: Vec<u64> = ids.iter().collect();
        all.sort_unstable();
        assert_eq!(all, vec![7, 9]);
        ids.remove(7);
        ids.remove(9);
        assert!(ids.is_empty());
        assert_eq!(ids.heap_bytes(), 0);
    }
}
