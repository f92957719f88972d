//! IronKV's spec, abstraction and safety properties, and the ghost history they read.
//!
//! The spec is one hash table ([`HashTableSpec`]). The abstraction maps a system state to a table:
//! each host contributes the pairs of the keys its own delegation map says it owns, and every
//! `Delegate` still in flight (sent, not yet delivered by the receiver's SingleDelivery)
//! contributes its pairs. Properties:
//! * **one hash table**: that abstract table is exactly the spec table, which the ghost history
//!   builds by applying each Set at the moment a host applies it (when it sends the Set's reply);
//! * **every key owned once**: each key is owned by exactly one host or carried by exactly one
//!   undelivered delegation;
//! * **exactly once, in order**: no SingleDelivery channel ever delivered a message twice;
//! * **linearizable**: the clients' Get/Set histories, checked by stateright's
//!   `LinearizabilityTester` against the spec;
//! * **delegation maps bounded** by `max_delegations`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stateright::actor::{ActorModelState, Id};
use stateright::semantics::{LinearizabilityTester, SequentialSpec};

use crate::actors::kv::{
    HostState, Key, KeyRange, KvClientState, KvNode, KvNodeState, KvPayload, Pairs, Value,
};
use crate::invariants::ghost::{keyed_part, tester_invoke, tester_return, GhostHistory, ALL_PARTS};

/// An operation on the spec table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TableOp {
    /// Read.
    Get(Key),
    /// Write (`None`: delete).
    Set(Key, Option<Value>),
}

/// The spec: one hash table. Get returns the current value; Set stores (or deletes) and returns
/// the value written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HashTableSpec {
    /// The table.
    pub map: BTreeMap<Key, Value>,
}

impl SequentialSpec for HashTableSpec {
    type Op = TableOp;
    type Ret = Option<Value>;

    fn invoke(&mut self, op: &TableOp) -> Option<Value> {
        match op {
            TableOp::Get(k) => self.map.get(k).cloned(),
            TableOp::Set(k, v) => {
                match v {
                    Some(v) => self.map.insert(k.clone(), v.clone()),
                    None => self.map.remove(k),
                };
                v.clone()
            }
        }
    }
}

/// What the model records (a ghost: no actor reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvGhost {
    /// The spec table, with each Set applied when a host applies it.
    pub spec: BTreeMap<Key, Value>,
    /// The highest reply sequence number recorded per (host, client) channel on sending.
    pub replies_out: BTreeMap<(Id, Id), u64>,
    /// A mirror of each client's state, advanced by the client's own handler on every delivery
    /// to it, so that a return is recorded exactly when the client code takes a reply. Shared:
    /// the ghost is cloned on every change and a client's state changes only at its deliveries.
    pub clients: BTreeMap<Id, Arc<KvClientState>>,
    /// Per client: invocations and returns so far.
    pub calls: BTreeMap<Id, (usize, usize)>,
    /// The clients' history.
    pub linearizability: LinearizabilityTester<Id, HashTableSpec>,
}

/// Hashes everything but the client mirrors: a mirror equals its client's own state (both start
/// from `on_start` and take the same deliveries through the same handler), which the model
/// state hashes already, so leaving it out loses no distinction between states and saves
/// hashing each client's state twice.
impl std::hash::Hash for KvGhost {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.spec.hash(state);
        self.replies_out.hash(state);
        self.calls.hash(state);
        self.linearizability.hash(state);
    }
}

impl Default for KvGhost {
    fn default() -> Self {
        KvGhost {
            spec: BTreeMap::new(),
            replies_out: BTreeMap::new(),
            clients: BTreeMap::new(),
            calls: BTreeMap::new(),
            linearizability: LinearizabilityTester::new(HashTableSpec::default()),
        }
    }
}

/// The per-channel reply counters and the client mirrors belong to one actor each (the host
/// that sends, the client that receives): they touch no part. A write applied to the spec touches its
/// key; an invocation reads the other clients' completions and a return changes its client's.
impl GhostHistory for KvGhost {
    fn changed_parts(&self, next: &Self) -> u64 {
        let mut parts = 0;
        for (client, (inv, ret)) in &next.calls {
            let (old_inv, old_ret) = self.calls.get(client).copied().unwrap_or((0, 0));
            if *inv != old_inv {
                parts |= tester_invoke(*client);
            }
            if *ret != old_ret {
                parts |= tester_return(*client);
            }
        }
        if self.spec != next.spec {
            for key in self.spec.keys().chain(next.spec.keys()) {
                if self.spec.get(key) != next.spec.get(key) {
                    parts |= keyed_part(key);
                }
            }
        }
        if parts == 0 && self.linearizability != next.linearizability {
            parts = ALL_PARTS; // a change of the tester the counts do not explain
        }
        parts
    }
}

/// The history type of KV models.
pub type KvHistory = Arc<KvGhost>;

/// The state type of KV models: the actors' states and the ghost history.
pub type KvState = ActorModelState<KvNode, KvHistory>;

/// The hosts' states with their ids.
pub fn hosts(n: usize, s: &KvState) -> impl Iterator<Item = (Id, &HostState)> {
    s.actor_states
        .iter()
        .take(n)
        .enumerate()
        .filter_map(|(i, a)| a.host().map(|h| (Id::from(i), h)))
}

/// Delegations in flight: (range, pairs) sent by a host and not yet delivered by the receiver.
fn delegations_in_flight(n: usize, s: &KvState) -> Vec<(KeyRange, Pairs)> {
    let mut out = Vec::new();
    for (src, h) in hosts(n, s) {
        for (dst, r) in hosts(n, s) {
            for p in h.sd.undelivered(dst, r.sd.recv.get(&src)) {
                if let KvPayload::Delegate { range, pairs } = p {
                    out.push((range.clone(), pairs.clone()));
                }
            }
        }
    }
    out
}

/// The abstraction: the table the system stands for, or `None` if some key is claimed twice.
pub fn abstract_table(n: usize, s: &KvState) -> Option<BTreeMap<Key, Value>> {
    let mut t = BTreeMap::new();
    for (id, h) in hosts(n, s) {
        for (k, v) in &h.table {
            if h.delegation.owner(k) == id && t.insert(k.clone(), v.clone()).is_some() {
                return None;
            }
        }
    }
    for (_, pairs) in delegations_in_flight(n, s) {
        for (k, v) in pairs.iter() {
            if t.insert(k.clone(), v.clone()).is_some() {
                return None;
            }
        }
    }
    Some(t)
}

/// One hash table: the abstract table is the spec's.
pub fn one_hash_table(n: usize, s: &KvState) -> bool {
    abstract_table(n, s).is_some_and(|t| t == s.history.spec)
}

/// Every key (of `n` hosts) is owned by exactly one host or carried by exactly one delegation in
/// flight. Checked at every key where the count can change, which covers all keys: the smallest
/// key, every range boundary in any host's delegation map and of any delegation in flight, and
/// the model's keys `0..keys`. (Ownership is constant between consecutive boundaries.)
pub fn every_key_owned_once(n: usize, keys: u64, s: &KvState) -> bool {
    let flying = delegations_in_flight(n, s);
    let mut points: BTreeSet<Key> = (0..keys).map(Key::from).collect();
    points.insert(Key::MIN);
    for (_, h) in hosts(n, s) {
        points.extend(h.delegation.ranges().into_iter().map(|(r, _)| r.lo));
    }
    for (r, _) in &flying {
        points.insert(r.lo.clone());
        points.extend(r.hi.clone());
    }
    points.iter().all(|k| {
        let owners = hosts(n, s)
            .filter(|(id, h)| h.delegation.owner(k) == *id)
            .count();
        let carried = flying.iter().filter(|(r, _)| r.contains(k)).count();
        owners + carried == 1
    })
}

/// SingleDelivery delivered each message at most once, in order.
pub fn exactly_once_in_order(s: &KvState) -> bool {
    s.actor_states.iter().all(|a| {
        let sd = match &**a {
            KvNodeState::Host(h) => &h.sd,
            KvNodeState::Client(c) => &c.sd,
        };
        sd.recv.values().all(|c| c.delivered == c.last_delivered)
    })
}

/// The clients' history is linearizable.
pub fn linearizable(s: &KvState) -> bool {
    s.history.linearizability.serialized_history().is_some()
}

/// No delegation map of the `n` hosts outgrows `max_delegations`.
pub fn delegation_bounded(n: usize, max_delegations: usize, s: &KvState) -> bool {
    hosts(n, s).all(|(_, h)| h.delegation.len() <= max_delegations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The spec agrees with a plain map on any sequence of operations.
        #[test]
        fn spec_is_a_map(ops in proptest::collection::vec((0u64..4, proptest::option::of(0u8..3), any::<bool>()), 0..20)) {
            let mut spec = HashTableSpec::default();
            let mut map: BTreeMap<Key, Value> = BTreeMap::new();
            for (k, v, is_get) in ops {
                let k = Key::from(k);
                if is_get {
                    prop_assert_eq!(spec.invoke(&TableOp::Get(k.clone())), map.get(&k).cloned());
                } else {
                    let v = v.map(|b| vec![b]);
                    prop_assert_eq!(spec.invoke(&TableOp::Set(k.clone(), v.clone())), v.clone());
                    match v { Some(v) => { map.insert(k, v); } None => { map.remove(&k); } }
                }
            }
        }
    }
}
