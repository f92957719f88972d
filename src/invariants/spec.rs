//! Sequential specifications of the replicated apps, written independently of the apps'
//! implementations in `actors::rsl::app`, and the abstraction function from an app state to its
//! spec state. They serve the refinement check and stateright's `LinearizabilityTester`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use stateright::semantics::SequentialSpec;

use crate::actors::rsl::{App, Counter, CounterOp, MapApp, MapOp, MapReply};

/// An app with a sequential spec.
pub trait AppSpec: App {
    /// The spec: a sequential object with the app's operations and replies.
    type Spec: SequentialSpec<Op = Self::Op, Ret = Self::Reply>
        + Clone
        + Debug
        + Default
        + Eq
        + Hash
        + Send
        + Sync
        + 'static;

    /// The abstraction function: the spec state an app state stands for.
    fn abstraction(state: &Self::State) -> Self::Spec;
}

/// The spec of a counter: `Inc` adds one (saturating) and returns the new value; `Get` returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterSpec {
    /// The current value.
    pub value: u64,
}

impl SequentialSpec for CounterSpec {
    type Op = CounterOp;
    type Ret = u64;

    fn invoke(&mut self, op: &CounterOp) -> u64 {
        match op {
            CounterOp::Inc => {
                self.value = self.value.saturating_add(1);
                self.value
            }
            CounterOp::Get => self.value,
        }
    }
}

impl AppSpec for Counter {
    type Spec = CounterSpec;

    fn abstraction(state: &u64) -> CounterSpec {
        CounterSpec { value: *state }
    }
}

/// The spec of a key-value map: each operation returns the value the key held before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec {
    /// The map.
    pub map: BTreeMap<u64, u64>,
}

impl SequentialSpec for KvSpec {
    type Op = MapOp;
    type Ret = MapReply;

    fn invoke(&mut self, op: &MapOp) -> MapReply {
        let before = match op {
            MapOp::Get(k) | MapOp::Put(k, _) | MapOp::Delete(k) => self.map.get(k).copied(),
        };
        match *op {
            MapOp::Get(_) => {}
            MapOp::Put(k, v) => {
                self.map.insert(k, v);
            }
            MapOp::Delete(k) => {
                self.map.remove(&k);
            }
        }
        MapReply(before)
    }
}

impl AppSpec for MapApp {
    type Spec = KvSpec;

    fn abstraction(state: &BTreeMap<u64, u64>) -> KvSpec {
        KvSpec { map: state.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counter_op() -> impl Strategy<Value = CounterOp> {
        prop_oneof![Just(CounterOp::Inc), Just(CounterOp::Get)]
    }

    fn kv_op() -> impl Strategy<Value = MapOp> {
        prop_oneof![
            (0u64..4).prop_map(MapOp::Get),
            (0u64..4, any::<u64>()).prop_map(|(k, v)| MapOp::Put(k, v)),
            (0u64..4).prop_map(MapOp::Delete),
        ]
    }

    /// Runs `ops` through the app and through its spec; every reply and the final abstraction
    /// must agree.
    fn agrees<A: AppSpec>(ops: &[A::Op], start: A::State) -> Result<(), TestCaseError> {
        let mut app = start;
        let mut spec = A::abstraction(&app);
        for op in ops {
            let got = A::execute(&mut app, op);
            let want = spec.invoke(op);
            prop_assert_eq!(got, want, "reply to {:?}", op);
            prop_assert_eq!(A::abstraction(&app), spec.clone());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn counter_matches_its_spec(ops in prop::collection::vec(counter_op(), 0..64),
                                    start in prop_oneof![Just(0u64), Just(u64::MAX - 2), any::<u64>()]) {
            agrees::<Counter>(&ops, start)?;
        }

        #[test]
        fn kv_matches_its_spec(ops in prop::collection::vec(kv_op(), 0..64)) {
            agrees::<MapApp>(&ops, BTreeMap::new())?;
        }
    }
}
