//! A map of a few entries kept as a vector sorted by key, no larger than its entries: a saga's
//! handled triggers and its armed timers.
//!
//! A saga holds a handful of each, and the process keeps the states of thousands of sagas in flight
//! in memory (the write model's cache): a `BTreeMap` gave each map a node sized for eleven entries
//! from its first one (~450 bytes for the handled triggers, ~160 for the timers). Serialized, it is
//! the same JSON object as the `BTreeMap` was (keys in order), so stored states read as before.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Key -> value, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn find(&self, key: &K) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// Whether `key` has a value.
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Set `key` to `value`; answers the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Forget `key`; answers its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key).ok()?;
        let (_, value) = self.0.remove(i);
        self.0.shrink_to_fit();
        Some(value)
    }

    /// How many keys have a value.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No key has a value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every key with its value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl<K: Ord + Clone, V: Clone> SmallMap<K, V> {
    /// The same entries in a `BTreeMap`.
    #[must_use]
    pub fn to_map(&self) -> BTreeMap<K, V> {
        self.0.iter().cloned().collect()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = Self::default();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    }
}

impl<K: Ord + Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<K, V>::deserialize(deserializer)?;
        let mut entries: Vec<(K, V)> = map.into_iter().collect();
        entries.shrink_to_fit();
        Ok(Self(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_keys_in_any_order_it_answers_each_and_keeps_them_sorted() {
        let mut map = SmallMap::default();
        for n in [5, 1, 3, 2, 4] {
            assert_eq!(map.insert(n, n * 10), None);
        }
        assert_eq!(map.len(), 5);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(map.get(&3), Some(&30));
        assert!(!map.contains_key(&6));
        assert_eq!(map.insert(3, 33), Some(30));
        assert_eq!(map.get(&3), Some(&33));
        assert_eq!(map.remove(&1), Some(10));
        assert_eq!(map.remove(&1), None);
        assert!(!map.contains_key(&1));
        assert_eq!(map.len(), 4);
        assert_eq!(
            map.to_map(),
            BTreeMap::from([(2, 20), (3, 33), (4, 40), (5, 50)])
        );
    }

    #[test]
    fn it_serializes_as_the_map_it_replaced_and_reads_one_back() {
        let map: SmallMap<String, u32> = [("b".into(), 2), ("c".into(), 3), ("a".into(), 1)]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, serde_json::to_string(&map.to_map()).unwrap());
        assert_eq!(json, r#"{"a":1,"b":2,"c":3}"#);
        let back: SmallMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
    }

    #[test]
    fn it_holds_no_more_room_than_its_entries() {
        let mut map = SmallMap::default();
        for n in 0..7 {
            map.insert(n, ());
            assert_eq!(map.0.capacity(), map.0.len());
        }
        map.remove(&3);
        assert_eq!(map.0.capacity(), map.0.len());
    }
}
