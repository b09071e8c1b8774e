//! Splitting the consumers of the global log: [`Partition`] `i` of `n` holds the keys whose 64-bit hash
//! is `i` modulo `n`. The projector partitions by lodging and the saga by reservation, each with its
//! own stable hash of the key; both validate and name their slices the same way.

/// Slice `index` of `count`: the keys with `hash % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    index: u32,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard index {index} must be below the shard count {count} (and the count above 0)")]
pub struct PartitionError {
    pub index: u32,
    pub count: u32,
}

impl Default for Partition {
    fn default() -> Self {
        Self::ALL
    }
}

impl Partition {
    /// The only slice: every key (an unsharded consumer).
    pub const ALL: Self = Self { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Self, PartitionError> {
        if count == 0 || index >= count {
            return Err(PartitionError { index, count });
        }
        Ok(Self { index, count })
    }

    #[must_use]
    pub fn index(self) -> u32 {
        self.index
    }

    #[must_use]
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the key with this hash is in this slice.
    #[must_use]
    pub fn holds(self, hash: u64) -> bool {
        hash % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_is_held_by_exactly_one_slice_and_bad_slices_are_refused() {
        let slices: Vec<_> = (0..3).map(|i| Partition::new(i, 3).unwrap()).collect();
        for hash in [0, 1, 2, 3, 7, u64::MAX] {
            assert_eq!(slices.iter().filter(|s| s.holds(hash)).count(), 1, "{hash}");
            assert!(Partition::ALL.holds(hash));
        }
        assert_eq!(
            Partition::new(3, 3),
            Err(PartitionError { index: 3, count: 3 })
        );
        assert!(Partition::new(0, 0).is_err());
        assert_eq!(Partition::default(), Partition::ALL);
    }
}
