//! IronKV's spec, abstraction and properties, and the model builder.
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

use std::collections::BTreeMap;
use std::sync::Arc;

use stateright::actor::{ActorModel, ActorModelState, Envelope, Id, LossyNetwork};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use stateright::Expectation;

use crate::actors::kv::{
    ClientOp, Host, HostConfig, Key, KeyRange, KvClient, KvClientConfig, KvMsg, KvNode,
    KvNodeState, KvParams, KvPayload, Value,
};
use crate::invariants::NetworkKind;

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
                    Some(v) => self.map.insert(*k, v.clone()),
                    None => self.map.remove(k),
                };
                v.clone()
            }
        }
    }
}

/// What the model records (a ghost: no actor reads it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvGhost {
    /// The spec table, with each Set applied when a host applies it.
    pub spec: BTreeMap<Key, Value>,
    /// The highest reply sequence number recorded per (host, client) channel on sending.
    pub replies_out: BTreeMap<(Id, Id), u64>,
    /// The highest sequence number a client has delivered per (host, client) channel.
    pub replies_in: BTreeMap<(Id, Id), u64>,
    /// Per client: invocations and returns so far.
    pub calls: BTreeMap<Id, (usize, usize)>,
    /// The clients' history.
    pub linearizability: LinearizabilityTester<Id, HashTableSpec>,
}

impl Default for KvGhost {
    fn default() -> Self {
        KvGhost {
            spec: BTreeMap::new(),
            replies_out: BTreeMap::new(),
            replies_in: BTreeMap::new(),
            calls: BTreeMap::new(),
            linearizability: LinearizabilityTester::new(HashTableSpec::default()),
        }
    }
}

/// The history type of KV models.
pub type KvHistory = Arc<KvGhost>;

/// An IronKV model's configuration.
#[derive(Clone, Debug)]
pub struct KvModelCfg {
    /// Hosts (`0` is the root).
    pub hosts: usize,
    /// Each client's operations (one client per entry).
    pub clients: Vec<Vec<ClientOp>>,
    /// Keys `0..keys` are checked for single ownership.
    pub keys: Key,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// Parameters.
    pub params: KvParams,
}

impl KvModelCfg {
    /// The small configuration the examples start from: 2 hosts; one client writes key 1 then
    /// reads it; an admin moves keys `1..` from the root to host 1 meanwhile.
    pub fn small() -> Self {
        KvModelCfg {
            hosts: 2,
            clients: vec![
                vec![ClientOp::Set(1, Some(b"a".to_vec())), ClientOp::Get(1)],
                vec![ClientOp::Shard {
                    range: KeyRange::new(1, None),
                    from: 0,
                    to: 1,
                }],
            ],
            keys: 2,
            network: NetworkKind::Duplicating,
            lossy: false,
            params: KvParams {
                max_delegations: 8,
                max_unacked: 8,
                max_redirects: Some(2),
                ..KvParams::default()
            },
        }
    }

    fn is_client(&self, id: Id) -> bool {
        let i = usize::from(id);
        i >= self.hosts && i < self.hosts + self.clients.len()
    }
}

/// The model type of IronKV.
pub type KvModel = ActorModel<KvNode, KvModelCfg, KvHistory>;
/// The state type of IronKV models.
pub type KvState = ActorModelState<KvNode, KvHistory>;

fn record_out(cfg: &KvModelCfg, h: &KvHistory, env: Envelope<&KvMsg>) -> Option<KvHistory> {
    let KvMsg::Single { seqno, payload, .. } = env.msg else {
        return None;
    };
    if cfg.is_client(env.src) {
        let op = match payload {
            KvPayload::Get { key } => TableOp::Get(*key),
            KvPayload::Set { key, value } => TableOp::Set(*key, value.clone()),
            _ => return None,
        };
        let (inv, ret) = h.calls.get(&env.src).copied().unwrap_or((0, 0));
        if inv > ret {
            return None; // the same call, resent to the owner a redirect named
        }
        let mut n = (**h).clone();
        n.calls.insert(env.src, (inv + 1, ret));
        let _ = n.linearizability.on_invoke(env.src, op);
        return Some(Arc::new(n));
    }
    if cfg.is_client(env.dst) {
        let last = h.replies_out.get(&(env.src, env.dst)).copied().unwrap_or(0);
        if *seqno <= last {
            return None; // a retransmission
        }
        let mut n = (**h).clone();
        n.replies_out.insert((env.src, env.dst), *seqno);
        if let KvPayload::Reply {
            key,
            value,
            write: true,
        } = payload
        {
            match value {
                Some(v) => n.spec.insert(*key, v.clone()),
                None => n.spec.remove(key),
            };
        }
        return Some(Arc::new(n));
    }
    None
}

fn record_in(cfg: &KvModelCfg, h: &KvHistory, env: Envelope<&KvMsg>) -> Option<KvHistory> {
    if !cfg.is_client(env.dst) {
        return None;
    }
    let KvMsg::Single { seqno, payload, .. } = env.msg else {
        return None;
    };
    let last = h.replies_in.get(&(env.src, env.dst)).copied().unwrap_or(0);
    if *seqno != last + 1 {
        return None; // not delivered by the client's SingleDelivery
    }
    let mut n = (**h).clone();
    n.replies_in.insert((env.src, env.dst), *seqno);
    if let KvPayload::Reply { value, .. } = payload {
        let (inv, ret) = n.calls.get(&env.dst).copied().unwrap_or((0, 0));
        if inv > ret {
            n.calls.insert(env.dst, (inv, ret + 1));
            let _ = n.linearizability.on_return(env.dst, value.clone());
        }
    }
    Some(Arc::new(n))
}

/// The hosts' states with their ids.
pub fn hosts<'a>(
    cfg: &KvModelCfg,
    s: &'a KvState,
) -> impl Iterator<Item = (Id, &'a crate::actors::kv::HostState)> + 'a {
    s.actor_states
        .iter()
        .take(cfg.hosts)
        .enumerate()
        .filter_map(|(i, a)| a.host().map(|h| (Id::from(i), h)))
}

/// Delegations in flight: (range, pairs) sent by a host and not yet delivered by the receiver.
fn delegations_in_flight(
    cfg: &KvModelCfg,
    s: &KvState,
) -> Vec<(KeyRange, crate::actors::kv::Pairs)> {
    let mut out = Vec::new();
    for (src, h) in hosts(cfg, s) {
        for (dst, r) in hosts(cfg, s) {
            for p in h.sd.undelivered(dst, r.sd.recv.get(&src)) {
                if let KvPayload::Delegate { range, pairs } = p {
                    out.push((*range, pairs.clone()));
                }
            }
        }
    }
    out
}

/// The abstraction: the table the system stands for, or `None` if some key is claimed twice.
pub fn abstract_table(cfg: &KvModelCfg, s: &KvState) -> Option<BTreeMap<Key, Value>> {
    let mut t = BTreeMap::new();
    for (id, h) in hosts(cfg, s) {
        for (k, v) in &h.table {
            if h.delegation.owner(*k) == id && t.insert(*k, v.clone()).is_some() {
                return None;
            }
        }
    }
    for (_, pairs) in delegations_in_flight(cfg, s) {
        for (k, v) in pairs.iter() {
            if t.insert(*k, v.clone()).is_some() {
                return None;
            }
        }
    }
    Some(t)
}

/// One hash table: the abstract table is the spec's.
pub fn one_hash_table(m: &KvModel, s: &KvState) -> bool {
    abstract_table(&m.cfg, s).is_some_and(|t| t == s.history.spec)
}

/// Every key in `0..keys` is owned by exactly one host or carried by exactly one delegation in
/// flight.
pub fn every_key_owned_once(m: &KvModel, s: &KvState) -> bool {
    let flying = delegations_in_flight(&m.cfg, s);
    (0..m.cfg.keys).all(|k| {
        let owners = hosts(&m.cfg, s)
            .filter(|(id, h)| h.delegation.owner(k) == *id)
            .count();
        let carried = flying.iter().filter(|(r, _)| r.contains(k)).count();
        owners + carried == 1
    })
}

/// SingleDelivery delivered each message at most once, in order.
pub fn exactly_once_in_order(_: &KvModel, s: &KvState) -> bool {
    s.actor_states.iter().all(|a| {
        let sd = match &**a {
            KvNodeState::Host(h) => &h.sd,
            KvNodeState::Client(c) => &c.sd,
        };
        sd.recv.values().all(|c| c.delivered == c.last_delivered)
    })
}

/// The clients' history is linearizable.
pub fn linearizable(_: &KvModel, s: &KvState) -> bool {
    s.history.linearizability.serialized_history().is_some()
}

/// No delegation map outgrows `max_delegations`.
pub fn delegation_bounded(m: &KvModel, s: &KvState) -> bool {
    hosts(&m.cfg, s).all(|(_, h)| h.delegation.len() <= m.cfg.params.max_delegations)
}

/// Each client's state with its operations.
fn clients<'a>(
    m: &'a KvModel,
    s: &'a KvState,
) -> impl Iterator<Item = (&'a crate::actors::kv::KvClientState, &'a Vec<ClientOp>)> + 'a {
    s.actor_states
        .iter()
        .skip(m.cfg.hosts)
        .filter_map(|a| a.client())
        .zip(&m.cfg.clients)
}

/// Every client has done all its operations.
pub fn all_clients_done(m: &KvModel, s: &KvState) -> bool {
    clients(m, s).all(|(c, ops)| c.next_op >= ops.len() && !c.waiting)
}

/// Every client has done all its operations, or gave up one after the model's redirect bound
/// (`max_redirects`): the bound, not the protocol, stopped it.
pub fn answered_or_bound_spent(m: &KvModel, s: &KvState) -> bool {
    clients(m, s).all(|(c, ops)| c.gave_up || (c.next_op >= ops.len() && !c.waiting))
}

/// The safety property names.
pub const SAFETY: [&str; 5] = [
    "one hash table",
    "every key owned once",
    "exactly once, in order",
    "linearizable",
    "delegation maps bounded",
];

/// Builds the IronKV model: hosts `0..n`, clients after them.
pub fn kv_model(cfg: KvModelCfg) -> KvModel {
    let host_ids: Arc<Vec<Id>> = Arc::new((0..cfg.hosts).map(Id::from).collect());
    let mut params = cfg.params.clone();
    // On a lossless duplicating network a message once sent can be delivered again at any time:
    // retransmission adds nothing there.
    params.retransmit = cfg.network != NetworkKind::Duplicating || cfg.lossy;
    let mut actors = Vec::new();
    for me in 0..cfg.hosts {
        actors.push(KvNode::Host(Host::new(HostConfig {
            hosts: host_ids.clone(),
            me,
            epoch: 0,
            params: params.clone(),
        })));
    }
    for (index, ops) in cfg.clients.iter().enumerate() {
        actors.push(KvNode::Client(KvClient::new(KvClientConfig {
            index,
            hosts: host_ids.clone(),
            ops: Arc::new(ops.clone()),
            epoch: 0,
            params: params.clone(),
        })));
    }
    let network = cfg.network.network();
    let lossy = if cfg.lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    };
    ActorModel::new(cfg, Arc::new(KvGhost::default()))
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .record_msg_out(record_out)
        .record_msg_in(record_in)
        .property(Expectation::Always, SAFETY[0], one_hash_table)
        .property(Expectation::Always, SAFETY[1], every_key_owned_once)
        .property(Expectation::Always, SAFETY[2], exactly_once_in_order)
        .property(Expectation::Always, SAFETY[3], linearizable)
        .property(Expectation::Always, SAFETY[4], delegation_bounded)
        .property(
            Expectation::Sometimes,
            "a redirect is followed",
            |_, s: &KvState| {
                s.actor_states
                    .iter()
                    .any(|a| a.client().is_some_and(|c| c.followed_redirect))
            },
        )
        .property(
            Expectation::Sometimes,
            "a range moves with its data",
            |m: &KvModel, s: &KvState| hosts(&m.cfg, s).any(|(_, h)| h.milestones.received_data),
        )
        .property(
            Expectation::Sometimes,
            "a duplicate is ignored",
            |m: &KvModel, s: &KvState| {
                hosts(&m.cfg, s).any(|(_, h)| h.milestones.ignored_duplicate)
            },
        )
        .property(
            Expectation::Sometimes,
            "every client is answered",
            all_clients_done,
        )
        .property(
            Expectation::Eventually,
            crate::liveness::kv::EVERY_REQUEST_ANSWERED,
            answered_or_bound_spent,
        )
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
                if is_get {
                    prop_assert_eq!(spec.invoke(&TableOp::Get(k)), map.get(&k).cloned());
                } else {
                    let v = v.map(|b| vec![b]);
                    prop_assert_eq!(spec.invoke(&TableOp::Set(k, v.clone())), v.clone());
                    match v { Some(v) => { map.insert(k, v); } None => { map.remove(&k); } }
                }
            }
        }
    }
}
