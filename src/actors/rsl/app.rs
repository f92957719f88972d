//! The application interface of IronRSL and the two bundled applications.
//!
//! An [`App`] is a deterministic state machine: `execute(state, op) -> reply`. IronRSL replicates
//! it: every replica executes the same decided batches in the same order. The reference app of
//! IronFleet is a [`Counter`]; [`MapApp`] is a small map of numbers and [`StoreApp`] a
//! key-value store of byte strings (RSL apps, not IronKV).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bounds every value that travels in messages and lives in model states.
pub trait Value:
    Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<T> Value for T where
    T: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// A deterministic application replicated by IronRSL.
///
/// The implementing type is a marker (it carries no data); the state lives in
/// [`App::State`] so that it can be cloned into model states, sent in state transfer and saved.
pub trait App: Clone + Debug + Default + Eq + Hash + Ord + Send + Sync + 'static {
    /// An operation a client asks for.
    type Op: Value;
    /// What executing an operation returns to the client.
    type Reply: Value;
    /// The application state.
    type State: Value + Default;

    /// A short name, used in reports.
    const NAME: &'static str;

    /// Executes one operation. Must be deterministic: the same state and op give the same result.
    fn execute(state: &mut Self::State, op: &Self::Op) -> Self::Reply;
}

/// Operations of the [`Counter`] app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CounterOp {
    /// Adds one and returns the new value.
    Inc,
    /// Returns the current value.
    Get,
}

/// IronFleet's reference app: a counter that increments. The state saturates at `u64::MAX`
/// (IronRSL's `max_integer_val` overflow guard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Counter;

impl App for Counter {
    type Op = CounterOp;
    type Reply = u64;
    type State = u64;
    const NAME: &'static str = "counter";

    fn execute(state: &mut u64, op: &CounterOp) -> u64 {
        if let CounterOp::Inc = op {
            *state = state.saturating_add(1);
        }
        *state
    }
}

/// Operations of the [`MapApp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MapOp {
    /// Reads a key.
    Get(u64),
    /// Writes a key.
    Put(u64, u64),
    /// Removes a key.
    Delete(u64),
}

/// Replies of the [`MapApp`]: the value a key held before the operation (for `Get`, the
/// current value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MapReply(pub Option<u64>);

/// A small replicated key-value map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapApp;

impl App for MapApp {
    type Op = MapOp;
    type Reply = MapReply;
    type State = BTreeMap<u64, u64>;
    const NAME: &'static str = "map";

    fn execute(state: &mut BTreeMap<u64, u64>, op: &MapOp) -> MapReply {
        match *op {
            MapOp::Get(k) => MapReply(state.get(&k).copied()),
            MapOp::Put(k, v) => MapReply(state.insert(k, v)),
            MapOp::Delete(k) => MapReply(state.remove(&k)),
        }
    }
}

/// A byte string, shown in traces and reports by its length and a few leading bytes rather
/// than in full.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blob(pub Vec<u8>);

impl Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blob({} B", self.0.len())?;
        for b in self.0.iter().take(8) {
            write!(f, " {b:02x}")?;
        }
        if self.0.len() > 8 {
            write!(f, " ..")?;
        }
        write!(f, ")")
    }
}

/// Operations of the [`StoreApp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StoreOp {
    /// Reads a key.
    Get(u64),
    /// Writes a key.
    Put(u64, Blob),
    /// Removes a key.
    Delete(u64),
}

/// Replies of the [`StoreApp`]: the value a key held before the operation (for `Get`, the
/// current value).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoreReply(pub Option<Blob>);

/// A replicated key-value store of byte strings: its state outgrows a datagram long before
/// a counter's does, so it exercises state transfer in chunks (and a reply of kilobytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreApp;

impl App for StoreApp {
    type Op = StoreOp;
    type Reply = StoreReply;
    type State = BTreeMap<u64, Blob>;
    const NAME: &'static str = "store";

    fn execute(state: &mut BTreeMap<u64, Blob>, op: &StoreOp) -> StoreReply {
        match op {
            StoreOp::Get(k) => StoreReply(state.get(k).cloned()),
            StoreOp::Put(k, v) => StoreReply(state.insert(*k, v.clone())),
            StoreOp::Delete(k) => StoreReply(state.remove(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_increments_and_reads() {
        let mut s = 0;
        assert_eq!(Counter::execute(&mut s, &CounterOp::Inc), 1);
        assert_eq!(Counter::execute(&mut s, &CounterOp::Get), 1);
        let mut max = u64::MAX;
        assert_eq!(Counter::execute(&mut max, &CounterOp::Inc), u64::MAX);
    }

    #[test]
    fn kv_returns_previous_values() {
        let mut s = BTreeMap::new();
        assert_eq!(MapApp::execute(&mut s, &MapOp::Put(1, 5)), MapReply(None));
        assert_eq!(
            MapApp::execute(&mut s, &MapOp::Put(1, 6)),
            MapReply(Some(5))
        );
        assert_eq!(MapApp::execute(&mut s, &MapOp::Get(1)), MapReply(Some(6)));
        assert_eq!(
            MapApp::execute(&mut s, &MapOp::Delete(1)),
            MapReply(Some(6))
        );
        assert_eq!(MapApp::execute(&mut s, &MapOp::Get(1)), MapReply(None));
    }

    #[test]
    fn store_returns_previous_values_and_shows_blobs_briefly() {
        let mut s = BTreeMap::new();
        let v = Blob(vec![7; 2_000]);
        assert_eq!(
            StoreApp::execute(&mut s, &StoreOp::Put(1, v.clone())),
            StoreReply(None)
        );
        assert_eq!(
            StoreApp::execute(&mut s, &StoreOp::Get(1)),
            StoreReply(Some(v.clone()))
        );
        assert_eq!(
            StoreApp::execute(&mut s, &StoreOp::Delete(1)),
            StoreReply(Some(v.clone()))
        );
        assert_eq!(
            StoreApp::execute(&mut s, &StoreOp::Get(1)),
            StoreReply(None)
        );
        assert_eq!(format!("{v:?}"), "blob(2000 B 07 07 07 07 07 07 07 07 ..)");
    }
}
