//! IronKV in the simulator: hosts `0..n` (host 0 owns every key at start, each host journals
//! to its disk), clients after them issuing gets, sets (each a unique value) and deletes over a
//! small key space, and now and then asking a host to move a range to another. The safety
//! monitor checks, on every step, that no key is claimed by two hosts (a host's claims are
//! its durable delegation map: they survive its crashes); the clients' history must be
//! linearizable per key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use stateright::actor::Id;

use super::disk::SimFs;
use super::faults::FaultKind;
use super::history::SeqSpec;
use super::world::{SimSystem, StartOver};
use crate::actors::kv::{
    ClientOp, Host, HostConfig, HostSave, Key, KeyRange, KvClient, KvClientConfig, KvModelSwitches,
    KvMsg, KvMutation, KvNode, KvNodeState, KvParams, KvPayload, KvTimer, Persistence, Value,
};
use crate::net::journal::HostLog;
use crate::net::storage::Store;

/// A KV cluster to simulate.
#[derive(Clone, Debug)]
pub struct KvSim {
    /// Hosts.
    pub hosts: usize,
    /// Clients.
    pub clients: usize,
    /// Keys `0..keys`.
    pub keys: u64,
    /// Protocol parameters.
    pub params: KvParams,
    /// A protocol mutation, or `None`.
    pub mutation: Option<KvMutation>,
    /// Probability that a client's next operation is a range move.
    pub move_rate: f64,
    /// A client gives up an operation unanswered for this long (milliseconds) and goes on as a
    /// new incarnation, as `KvRemote`'s caller does at its timeout.
    pub give_up_ms: u64,
}

impl KvSim {
    /// `hosts` hosts and `clients` clients over 8 keys, with the runtime's parameters.
    pub fn new(hosts: usize, clients: usize) -> Self {
        KvSim {
            hosts,
            clients,
            keys: 8,
            params: KvParams::default(),
            mutation: None,
            move_rate: 0.05,
            give_up_ms: 2_000,
        }
    }

    fn switches(&self) -> KvModelSwitches {
        KvModelSwitches {
            mutation: self.mutation,
            ..KvModelSwitches::default()
        }
    }

    fn key(&self, k: u64) -> Key {
        Key::from(k)
    }
}

/// The hash table as the clients see it: one register per key.
pub struct TableSeq;

impl SeqSpec for TableSeq {
    type Op = ClientOp;
    type Ret = Option<Value>;
    type State = Option<Value>;
    fn partition(op: &ClientOp) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in op.key().map(|k| k.as_bytes()).unwrap_or(&[]) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        h
    }
    fn init() -> Option<Value> {
        None
    }
    fn step(s: &mut Option<Value>, op: &ClientOp) -> Option<Value> {
        match op {
            ClientOp::Get(_) => s.clone(),
            ClientOp::Set(_, v) => {
                s.clone_from(v);
                v.clone()
            }
            ClientOp::Shard { .. } => None,
        }
    }
}

/// What the KV monitor remembers.
#[derive(Default)]
pub struct KvMonitor {
    /// Each host's claimed keys (from its delegation map).
    claims: BTreeMap<usize, Vec<bool>>,
    /// The key space.
    keys: Vec<Key>,
    delegations: u64,
    moves_asked: u64,
}

impl SimSystem for KvSim {
    type Msg = KvMsg;
    type Timer = KvTimer;
    type Storage = HostSave;
    type Actor = KvNode;
    type Spec = TableSeq;
    type Monitor = KvMonitor;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn servers(&self) -> usize {
        self.hosts
    }

    fn clients(&self) -> usize {
        self.clients
    }

    fn fault_kinds(&self) -> Vec<FaultKind> {
        // A host is the only copy of its ranges: one that loses its disk loses them for good.
        FaultKind::ALL
            .into_iter()
            .filter(|k| *k != FaultKind::DiskCorruption)
            .collect()
    }

    fn max_down(&self) -> usize {
        self.hosts
    }

    fn max_lost(&self) -> usize {
        0
    }

    fn draw_ops(&self, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<ClientOp> {
        let mut ops = Vec::with_capacity(n);
        let mut calls = 0;
        let mut unique = 0u64;
        while calls < n {
            if self.hosts > 1 && rng.random_bool(self.move_rate) {
                let a = rng.random_range(0..self.keys);
                let b = rng.random_range(a + 1..=self.keys);
                let hi = (b < self.keys).then(|| self.key(b));
                ops.push(ClientOp::Shard {
                    range: KeyRange::new(self.key(a), hi),
                    from: rng.random_range(0..self.hosts),
                    to: rng.random_range(0..self.hosts),
                });
                continue;
            }
            let k = self.key(rng.random_range(0..self.keys));
            let op = match rng.random_range(0..10) {
                0..=4 => ClientOp::Get(k),
                5..=8 => {
                    unique += 1;
                    ClientOp::Set(k, Some(format!("c{client}v{unique}").into_bytes()))
                }
                _ => ClientOp::Set(k, None),
            };
            ops.push(op);
            calls += 1;
        }
        ops
    }

    fn is_call(&self, op: &ClientOp) -> bool {
        op.key().is_some()
    }

    fn actor(&self, node: usize, start_us: u64, _variant: u64, ops: &Arc<Vec<ClientOp>>) -> KvNode {
        let hosts: Arc<Vec<Id>> = Arc::new((0..self.hosts).map(Id::from).collect());
        // As at run time: a new incarnation's epoch comes from its clock (made unique).
        let epoch = (start_us.max(1) << 8) | node as u64;
        if node < self.hosts {
            KvNode::Host(Host::new(HostConfig {
                hosts,
                me: node,
                epoch,
                params: self.params.clone(),
                switches: self.switches(),
                persistence: Persistence::Journal,
            }))
        } else {
            KvNode::Client(KvClient::new(KvClientConfig {
                index: node - self.hosts,
                hosts,
                ops: ops.clone(),
                epoch,
                params: self.params.clone(),
                switches: self.switches(),
                give_up_ms: Some(self.give_up_ms),
            }))
        }
    }

    fn accept_from_stranger(&self) -> fn(&KvMsg) -> bool {
        |m| match m {
            KvMsg::Single { payload, .. } => {
                matches!(
                    payload,
                    KvPayload::Get { .. } | KvPayload::Set { .. } | KvPayload::Shard { .. }
                )
            }
            KvMsg::Ack { .. } => true,
            _ => false,
        }
    }

    fn store(&self, fs: Arc<SimFs>, node: usize) -> (Box<dyn Store<HostSave>>, PathBuf) {
        let base = PathBuf::from(format!("/sim/host-{node}"));
        let log = HostLog::on(fs, &base, format!("sim kv host {node}"));
        let snapshot = log.snapshot_path().to_owned();
        (Box::new(log), snapshot)
    }

    fn client_progress(&self, actor: &KvNode, state: &KvNodeState) -> (usize, usize, bool) {
        match (actor, state.client()) {
            (KvNode::Client(c), Some(s)) => {
                let ops = &c.cfg.ops;
                let issued = ops[..s.next_op.min(ops.len())]
                    .iter()
                    .filter(|o| o.key().is_some())
                    .count();
                let invoked = issued + usize::from(s.waiting);
                // A closed or abandoned client starts over (`client_starts_over`): not done.
                let done = s.next_op >= ops.len() || s.gave_up;
                (invoked, s.replies.len(), done)
            }
            _ => (0, 0, true),
        }
    }

    /// As `KvRemote` does: told its channel was closed, or past its caller's timeout, a client
    /// starts a new incarnation (a new SingleDelivery epoch) and goes on with the operations
    /// after the one it abandons.
    fn client_starts_over(&self, state: &KvNodeState) -> Option<StartOver> {
        let s = state.client()?;
        if s.closed {
            Some(StartOver::Told)
        } else if s.abandoned {
            Some(StartOver::GaveUp)
        } else {
            None
        }
    }

    fn client_answer(&self, state: &KvNodeState, k: usize) -> Option<Value> {
        state.client().and_then(|s| s.replies[k].clone())
    }

    fn monitor(&self) -> KvMonitor {
        KvMonitor::default()
    }

    fn check_state(
        &self,
        mon: &mut KvMonitor,
        node: usize,
        state: &KvNodeState,
    ) -> Result<(), String> {
        let Some(h) = state.host() else {
            return Ok(());
        };
        let me = Id::from(node);
        if mon.keys.len() as u64 != self.keys {
            mon.keys = (0..self.keys).map(|k| self.key(k)).collect();
        }
        let claims: Vec<bool> = mon
            .keys
            .iter()
            .map(|k| h.delegation.owner(k) == me)
            .collect();
        if mon.claims.get(&node) == Some(&claims) {
            return Ok(()); // unchanged: checked when it last changed
        }
        for (other, theirs) in &mon.claims {
            if *other == node {
                continue;
            }
            if let Some(k) = (0..claims.len()).find(|&k| claims[k] && theirs[k]) {
                return Err(format!(
                    "key {} is owned by host {node} and by host {other}",
                    self.key(k as u64)
                ));
            }
        }
        mon.claims.insert(node, claims);
        Ok(())
    }

    fn check_send(
        &self,
        mon: &mut KvMonitor,
        _from: usize,
        _to: usize,
        msg: &KvMsg,
    ) -> Result<(), String> {
        if let KvMsg::Single { payload, .. } = msg {
            match payload {
                KvPayload::Delegate { .. } => mon.delegations += 1,
                KvPayload::Shard { .. } => mon.moves_asked += 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn milestones(&self, mon: &KvMonitor) -> Vec<(&'static str, u64)> {
        vec![
            ("range moves asked", mon.moves_asked),
            ("delegations sent", mon.delegations),
        ]
    }
}
