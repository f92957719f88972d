//! The delegation map: which host owns which key. Every host keeps one (its belief); at start
//! every host believes the root owns everything.

use std::collections::BTreeMap;

use stateright::actor::Id;

use super::types::{Key, KeyRange};

/// Key ranges to owners: `owner(k)` is the value at the greatest lower bound `<= k`. The map
/// always has an entry at key 0, so every key has an owner. Decoding (from a host's storage)
/// refuses a map without it, or one that is not coalesced.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "BTreeMap<Key, Id>", into = "BTreeMap<Key, Id>")]
pub struct DelegationMap {
    bounds: BTreeMap<Key, Id>,
}

impl TryFrom<BTreeMap<Key, Id>> for DelegationMap {
    type Error = String;

    fn try_from(bounds: BTreeMap<Key, Id>) -> Result<Self, String> {
        if !bounds.contains_key(&Key::MIN) {
            return Err("a delegation map without an owner of the smallest key".into());
        }
        let owners: Vec<Id> = bounds.values().copied().collect();
        if owners.windows(2).any(|w| w[0] == w[1]) {
            return Err("a delegation map that is not coalesced".into());
        }
        Ok(DelegationMap { bounds })
    }
}

impl From<DelegationMap> for BTreeMap<Key, Id> {
    fn from(m: DelegationMap) -> Self {
        m.bounds
    }
}

impl DelegationMap {
    /// `root` owns every key.
    pub fn new(root: Id) -> Self {
        DelegationMap {
            bounds: BTreeMap::from([(Key::MIN, root)]),
        }
    }

    /// The owner of `k`.
    pub fn owner(&self, k: &Key) -> Id {
        *self
            .bounds
            .range(..=k)
            .next_back()
            .expect("an entry at the smallest key")
            .1
    }

    /// The entries strictly inside `range` (after its first key, before its end): where the
    /// owner can change within it. Empty for an empty range.
    fn inner<'a>(&'a self, range: &KeyRange) -> impl Iterator<Item = (&'a Key, &'a Id)> {
        use std::ops::Bound::{Excluded, Unbounded};
        let bounds = if range.is_empty() {
            None
        } else {
            // Not empty: lo < hi, so the bounds are in order.
            let hi = range.hi.clone().map_or(Unbounded, Excluded);
            Some(self.bounds.range((Excluded(range.lo.clone()), hi)))
        };
        bounds.into_iter().flatten()
    }

    /// Whether `host` owns every key of `range` (an empty range: no).
    pub fn owns_all(&self, range: &KeyRange, host: Id) -> bool {
        !range.is_empty()
            && self.owner(&range.lo) == host
            && self.inner(range).all(|(_, &o)| o == host)
    }

    /// Whether `host` owns some key of `range` (an empty range: no).
    pub(crate) fn owns_some(&self, range: &KeyRange, host: Id) -> bool {
        !range.is_empty()
            && (self.owner(&range.lo) == host || self.inner(range).any(|(_, &o)| o == host))
    }

    /// Gives `range` to `owner`.
    pub fn set(&mut self, range: &KeyRange, owner: Id) {
        if range.is_empty() {
            return;
        }
        // The owner after the range keeps its keys.
        let after = range.hi.as_ref().map(|h| (h.clone(), self.owner(h)));
        match &range.hi {
            Some(h) => {
                let inner: Vec<Key> = self
                    .bounds
                    .range(range.lo.clone()..h.clone())
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in inner {
                    self.bounds.remove(&k);
                }
            }
            None => {
                self.bounds.split_off(&range.lo);
            }
        }
        self.bounds.insert(range.lo.clone(), owner);
        if let Some((h, o)) = after {
            self.bounds.insert(h, o);
        }
        self.coalesce();
        self.assert_invariants();
        debug_assert_eq!(
            self.owner(&range.lo),
            owner,
            "the range was given to its owner"
        );
    }

    /// The map's invariants, asserted after every change: total (an entry at key 0, so every
    /// key has an owner) and coalesced (no two neighbouring ranges with the same owner, so
    /// `len` counts real ranges and the `max_delegations` bound means what it says).
    fn assert_invariants(&self) {
        assert!(self.bounds.contains_key(&Key::MIN), "the map is total");
        let mut owners = self.bounds.values();
        let mut prev = owners.next();
        for o in owners {
            assert!(prev != Some(o), "the map is coalesced");
            prev = Some(o);
        }
    }

    /// Merges neighbouring entries with the same owner.
    fn coalesce(&mut self) {
        let mut prev: Option<Id> = None;
        let mut redundant = Vec::new();
        for (k, &o) in &self.bounds {
            if prev == Some(o) {
                redundant.push(k.clone());
            }
            prev = Some(o);
        }
        for k in redundant {
            self.bounds.remove(&k);
        }
    }

    /// How many ranges the map holds.
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    /// Whether the map is empty (never: key 0 always has an owner).
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// How many of the map's ranges `host` owns.
    pub(crate) fn count_owned_by(&self, host: Id) -> usize {
        self.bounds.values().filter(|&&o| o == host).count()
    }

    /// The ranges and their owners, in key order.
    pub fn ranges(&self) -> Vec<(KeyRange, Id)> {
        let entries: Vec<(&Key, Id)> = self.bounds.iter().map(|(k, &o)| (k, o)).collect();
        entries
            .iter()
            .enumerate()
            .map(|(i, &(lo, o))| {
                let hi = entries.get(i + 1).map(|e| e.0.clone());
                (KeyRange::new(lo.clone(), hi), o)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(i: usize) -> Id {
        Id::from(i)
    }

    /// A one-byte key: byte order is numeric order, so the tests can count.
    fn k(n: u64) -> Key {
        Key(vec![n as u8])
    }

    fn r(lo: u64, hi: Option<u64>) -> KeyRange {
        KeyRange::new(k(lo), hi.map(k))
    }

    #[test]
    fn delegating_a_middle_range_keeps_both_sides() {
        let mut m = DelegationMap::new(id(0));
        m.set(&r(10, Some(20)), id(1));
        assert_eq!(m.owner(&k(9)), id(0));
        assert_eq!(m.owner(&k(10)), id(1));
        assert_eq!(m.owner(&k(19)), id(1));
        assert_eq!(m.owner(&k(20)), id(0));
        assert!(m.owns_all(&r(12, Some(20)), id(1)));
        assert!(!m.owns_all(&r(5, Some(15)), id(1)));
        assert!(m.owns_some(&r(5, Some(15)), id(1)));
        assert_eq!((m.count_owned_by(id(0)), m.count_owned_by(id(1))), (2, 1));
        m.set(&r(10, Some(20)), id(0));
        assert_eq!(m.len(), 1, "merged back: {:?}", m.ranges());
    }

    #[test]
    fn string_keys_split_by_prefix() {
        let mut m = DelegationMap::new(id(0));
        m.set(&KeyRange::parse("user/..user0").unwrap(), id(1));
        assert_eq!(m.owner(&Key::from("user/alice")), id(1));
        assert_eq!(m.owner(&Key::from("user")), id(0));
        assert_eq!(m.owner(&Key::from("zebra")), id(0));
        assert_eq!(m.owner(&Key::MIN), id(0));
        assert!(m.owns_all(&KeyRange::parse("user/a..user/b").unwrap(), id(1)));
    }

    proptest! {
        /// The map behaves like an array of owners, one per key.
        #[test]
        fn matches_a_per_key_model(ops in proptest::collection::vec((0u64..12, 0u64..13, 0usize..3), 0..12)) {
            let mut m = DelegationMap::new(id(0));
            let mut model = [id(0); 16];
            for (lo, hi, o) in ops {
                let hi = if hi >= 12 { None } else { Some(hi) };
                let range = r(lo, hi);
                m.set(&range, id(o));
                for (key, owner) in model.iter_mut().enumerate() {
                    if range.contains(&k(key as u64)) { *owner = id(o); }
                }
                for (key, owner) in model.iter().enumerate() {
                    prop_assert_eq!(m.owner(&k(key as u64)), *owner);
                }
                for (lo, hi) in [(0u64, Some(16u64)), (lo, hi)] {
                    let range = r(lo, hi);
                    if range.is_empty() { continue; }
                    let keys: Vec<usize> = (0..16).filter(|&key| range.contains(&k(key as u64))).collect();
                    for h in 0..3 {
                        if hi.is_some() {
                            prop_assert_eq!(m.owns_all(&range, id(h)), keys.iter().all(|&key| model[key] == id(h)));
                            prop_assert_eq!(m.owns_some(&range, id(h)), keys.iter().any(|&key| model[key] == id(h)));
                        }
                    }
                }
            }
        }
    }
}
