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
        if !bounds.contains_key(&0) {
            return Err("a delegation map without an owner of key 0".into());
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
            bounds: BTreeMap::from([(0, root)]),
        }
    }

    /// The owner of `k`.
    pub fn owner(&self, k: Key) -> Id {
        *self
            .bounds
            .range(..=k)
            .next_back()
            .expect("an entry at key 0")
            .1
    }

    /// The entries strictly inside `range` (after its first key, before its end): where the
    /// owner can change within it. Empty for an empty range, and for a range starting at the
    /// last key (no overflow).
    fn inner(&self, range: KeyRange) -> impl Iterator<Item = (&Key, &Id)> {
        let start = range.lo.checked_add(1).filter(|_| !range.is_empty());
        let bounds = match (start, range.hi) {
            (None, _) => None,
            (Some(s), Some(h)) if h <= s => None,
            (Some(s), Some(h)) => Some(self.bounds.range(s..h)),
            (Some(s), None) => Some(self.bounds.range(s..)),
        };
        bounds.into_iter().flatten()
    }

    /// Whether `host` owns every key of `range` (an empty range: no).
    pub fn owns_all(&self, range: KeyRange, host: Id) -> bool {
        !range.is_empty()
            && self.owner(range.lo) == host
            && self.inner(range).all(|(_, &o)| o == host)
    }

    /// Whether `host` owns some key of `range` (an empty range: no).
    pub(crate) fn owns_some(&self, range: KeyRange, host: Id) -> bool {
        !range.is_empty()
            && (self.owner(range.lo) == host || self.inner(range).any(|(_, &o)| o == host))
    }

    /// Gives `range` to `owner`.
    pub fn set(&mut self, range: KeyRange, owner: Id) {
        if range.is_empty() {
            return;
        }
        // The owner after the range keeps its keys.
        let after = range.hi.map(|h| (h, self.owner(h)));
        match range.hi {
            Some(h) => {
                let inner: Vec<Key> = self.bounds.range(range.lo..h).map(|(&k, _)| k).collect();
                for k in inner {
                    self.bounds.remove(&k);
                }
            }
            None => {
                self.bounds.split_off(&range.lo);
            }
        }
        self.bounds.insert(range.lo, owner);
        if let Some((h, o)) = after {
            self.bounds.insert(h, o);
        }
        self.coalesce();
        self.assert_invariants();
        debug_assert_eq!(
            self.owner(range.lo),
            owner,
            "the range was given to its owner"
        );
    }

    /// The map's invariants, asserted after every change: total (an entry at key 0, so every
    /// key has an owner) and coalesced (no two neighbouring ranges with the same owner, so
    /// `len` counts real ranges and the `max_delegations` bound means what it says).
    fn assert_invariants(&self) {
        assert!(self.bounds.contains_key(&0), "the map is total");
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
        for (&k, &o) in &self.bounds {
            if prev == Some(o) {
                redundant.push(k);
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
        let entries: Vec<(Key, Id)> = self.bounds.iter().map(|(&k, &o)| (k, o)).collect();
        entries
            .iter()
            .enumerate()
            .map(|(i, &(lo, o))| (KeyRange::new(lo, entries.get(i + 1).map(|e| e.0)), o))
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

    #[test]
    fn delegating_a_middle_range_keeps_both_sides() {
        let mut m = DelegationMap::new(id(0));
        m.set(KeyRange::new(10, Some(20)), id(1));
        assert_eq!(m.owner(9), id(0));
        assert_eq!(m.owner(10), id(1));
        assert_eq!(m.owner(19), id(1));
        assert_eq!(m.owner(20), id(0));
        assert!(m.owns_all(KeyRange::new(12, Some(20)), id(1)));
        assert!(!m.owns_all(KeyRange::new(5, Some(15)), id(1)));
        assert!(m.owns_some(KeyRange::new(5, Some(15)), id(1)));
        assert_eq!((m.count_owned_by(id(0)), m.count_owned_by(id(1))), (2, 1));
        m.set(KeyRange::new(10, Some(20)), id(0));
        assert_eq!(m.len(), 1, "merged back: {:?}", m.ranges());
    }

    proptest! {
        /// The map behaves like an array of owners, one per key.
        #[test]
        fn matches_a_per_key_model(ops in proptest::collection::vec((0u64..12, 0u64..13, 0usize..3), 0..12)) {
            let mut m = DelegationMap::new(id(0));
            let mut model = [id(0); 16];
            for (lo, hi, o) in ops {
                let hi = if hi >= 12 { None } else { Some(hi) };
                let r = KeyRange::new(lo, hi);
                m.set(r, id(o));
                for (k, owner) in model.iter_mut().enumerate() {
                    if r.contains(k as u64) { *owner = id(o); }
                }
                for (k, owner) in model.iter().enumerate() {
                    prop_assert_eq!(m.owner(k as u64), *owner);
                }
                for (lo, hi) in [(0u64, Some(16u64)), (lo, hi)] {
                    let r = KeyRange::new(lo, hi);
                    if r.is_empty() { continue; }
                    let keys: Vec<usize> = (0..16).filter(|&k| r.contains(k as u64)).collect();
                    for h in 0..3 {
                        if hi.is_some() {
                            prop_assert_eq!(m.owns_all(r, id(h)), keys.iter().all(|&k| model[k] == id(h)));
                            prop_assert_eq!(m.owns_some(r, id(h)), keys.iter().any(|&k| model[k] == id(h)));
                        }
                    }
                }
            }
        }
    }
}
