//! IronRSL in the simulator: replicas `0..n` running the counter app (increments and reads) or
//! the map app (gets, puts and deletes over a few keys, checked per key), clients after them, and a safety monitor that checks the running cluster on every
//! step: agreement (a quorum of 2b votes never chooses two batches for one slot), executed
//! prefixes agree (replicas that executed the same number of slots hold the same app state and
//! session table, across restarts too), at most once (no two different replies for one
//! request), promises never go backwards (an acceptor's ballot, across restarts), and logs stay
//! bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use stateright::actor::Id;

use super::disk::SimFs;
use super::faults::FaultKind;
use super::history::SeqSpec;
use super::world::SimSystem;
use crate::actors::rsl::{
    App, Ballot, Batch, Blob, Client, ClientConfig, Counter, CounterOp, MapApp, MapOp, MapReply,
    ModelSwitches, Mutation, OpNum, Params, Replica, ReplicaConfig, ReplicaStorage, RslMsg,
    RslNode, RslNodeState, RslTimer, StoreApp, StoreOp, StoreReply,
};
use crate::net::driver::RuntimeMutation;
use crate::net::storage::{StorageFile, Store};

/// An RSL cluster to simulate, running app `A` (the counter by default).
#[derive(Clone, Debug)]
pub struct RslSim<A: SimApp = Counter> {
    /// Replicas.
    pub replicas: usize,
    /// Clients.
    pub clients: usize,
    /// Protocol parameters.
    pub params: Params,
    /// A protocol mutation, or `None`.
    pub mutation: Option<Mutation>,
    /// Client retransmission period, ms.
    pub retransmit_ms: u64,
    /// A broken client: a new incarnation numbers its requests from 1 again instead of from its
    /// clock (see `ClientConfig::first_seqno`).
    pub reuse_seqnos: bool,
    _app: std::marker::PhantomData<A>,
}

impl<A: SimApp> RslSim<A> {
    /// `replicas` replicas and `clients` clients with the runtime's parameters.
    pub fn new(replicas: usize, clients: usize) -> Self {
        RslSim {
            replicas,
            clients,
            params: Params::default(),
            mutation: None,
            retransmit_ms: 100,
            reuse_seqnos: false,
            _app: std::marker::PhantomData,
        }
    }

    /// Whether client `client` tracks the leader in a case with this `variant` word. The
    /// client has both behaviours: tracking the leader, as the UDP client does (a new request
    /// to the replica that answered last), or sending every request to every replica, as the
    /// model's client does. Half the cases have every client broadcast; in the other half
    /// each client draws its own. (Clients that all track the leader put fewer requests at
    /// followers, so fewer suspicions and view changes: with them alone some mutations took
    /// ten times the seeds to catch.)
    fn tracks_leader(&self, variant: u64, client: usize) -> bool {
        variant >> 63 == 0 && (variant >> (client % 63)) & 1 == 1
    }

    /// Switches on the runtime mutations that live in the RSL system rather than in the driver:
    /// a client numbering from 1 again, and state transfer in one message.
    pub fn with_runtime_mutation(mut self, m: RuntimeMutation) -> Self {
        match m {
            RuntimeMutation::ClientReusesSeqno => self.reuse_seqnos = true,
            RuntimeMutation::StateTransferInOneMessage => {
                self.params.state_chunk_bytes = usize::MAX
            }
            _ => {}
        }
        self
    }

    fn switches(&self) -> ModelSwitches {
        ModelSwitches {
            mutation: self.mutation,
            ..ModelSwitches::default()
        }
    }
}

/// The counter as the clients see it: one object.
pub struct CounterSeq;

impl SeqSpec for CounterSeq {
    type Op = CounterOp;
    type Ret = u64;
    type State = u64;
    fn partition(_: &CounterOp) -> u64 {
        0
    }
    fn init() -> u64 {
        0
    }
    fn step(s: &mut u64, op: &CounterOp) -> u64 {
        if let CounterOp::Inc = op {
            *s = s.saturating_add(1);
        }
        *s
    }
}

/// An app the simulator can drive: how clients draw operations, and the sequential spec the
/// history is checked against.
pub trait SimApp: App {
    /// The spec, per partition.
    type Seq: SeqSpec<Op = Self::Op, Ret = Self::Reply>;
    /// Client `client`'s `i`-th operation.
    fn draw(rng: &mut ChaCha8Rng, client: usize, i: usize) -> Self::Op;
    /// Shows the app state in a violation.
    fn show(state: &Self::State) -> String {
        format!("{state:?}")
    }
}

impl SimApp for Counter {
    type Seq = CounterSeq;
    fn draw(rng: &mut ChaCha8Rng, _: usize, _: usize) -> CounterOp {
        if rng.random_bool(0.8) {
            CounterOp::Inc
        } else {
            CounterOp::Get
        }
    }
}

/// The map app as the clients see it: one register per key, each operation answering the value
/// the key held before it.
pub struct MapSeq;

impl SeqSpec for MapSeq {
    type Op = MapOp;
    type Ret = MapReply;
    type State = Option<u64>;
    fn partition(op: &MapOp) -> u64 {
        match *op {
            MapOp::Get(k) | MapOp::Put(k, _) | MapOp::Delete(k) => k,
        }
    }
    fn init() -> Option<u64> {
        None
    }
    fn step(s: &mut Option<u64>, op: &MapOp) -> MapReply {
        match *op {
            MapOp::Get(_) => MapReply(*s),
            MapOp::Put(_, v) => MapReply(s.replace(v)),
            MapOp::Delete(_) => MapReply(s.take()),
        }
    }
}

impl SimApp for MapApp {
    type Seq = MapSeq;
    /// Gets, puts of values unique to the client and operation, and deletes, over 8 keys.
    fn draw(rng: &mut ChaCha8Rng, client: usize, i: usize) -> MapOp {
        let k = rng.random_range(0..8);
        match rng.random_range(0..10) {
            0..=4 => MapOp::Get(k),
            5..=8 => MapOp::Put(k, (client as u64 + 1) * 1_000_000 + i as u64),
            _ => MapOp::Delete(k),
        }
    }
}

/// The store app as the clients see it: one register of byte strings per key.
pub struct StoreSeq;

impl SeqSpec for StoreSeq {
    type Op = StoreOp;
    type Ret = StoreReply;
    type State = Option<Blob>;
    fn partition(op: &StoreOp) -> u64 {
        match op {
            StoreOp::Get(k) | StoreOp::Put(k, _) | StoreOp::Delete(k) => *k,
        }
    }
    fn init() -> Option<Blob> {
        None
    }
    fn step(s: &mut Option<Blob>, op: &StoreOp) -> StoreReply {
        match op {
            StoreOp::Get(_) => StoreReply(s.clone()),
            StoreOp::Put(_, v) => StoreReply(s.replace(v.clone())),
            StoreOp::Delete(_) => StoreReply(s.take()),
        }
    }
}

/// Bytes of every value the store workload puts: with [`STORE_KEYS`] keys the state reaches
/// about 96 KB, beyond one datagram, so state transfer must travel in chunks.
pub const STORE_VALUE_BYTES: usize = 2_000;
/// Keys of the store workload.
pub const STORE_KEYS: u64 = 48;

impl SimApp for StoreApp {
    type Seq = StoreSeq;
    /// Gets, puts of values unique to the client and operation, and deletes, over
    /// [`STORE_KEYS`] keys; every value is [`STORE_VALUE_BYTES`] long.
    fn draw(rng: &mut ChaCha8Rng, client: usize, i: usize) -> StoreOp {
        let k = rng.random_range(0..STORE_KEYS);
        match rng.random_range(0..10) {
            0..=3 => StoreOp::Get(k),
            4..=8 => {
                let mut v = Vec::with_capacity(STORE_VALUE_BYTES);
                v.extend_from_slice(&(client as u64).to_le_bytes());
                v.extend_from_slice(&(i as u64).to_le_bytes());
                v.resize(STORE_VALUE_BYTES, (client * 31 + i) as u8);
                StoreOp::Put(k, Blob(v))
            }
            _ => StoreOp::Delete(k),
        }
    }
    fn show(state: &BTreeMap<u64, Blob>) -> String {
        let bytes: usize = state.values().map(|v| v.0.len()).sum();
        format!("{} keys, {bytes} bytes of values", state.len())
    }
}

/// What the RSL monitor remembers.
pub struct RslMonitor<A: App> {
    /// 2b votes per (slot, ballot, batch).
    votes: BTreeMap<(OpNum, Ballot, Batch<A>), BTreeSet<usize>>,
    /// The batch chosen per slot.
    chosen: BTreeMap<OpNum, Batch<A>>,
    /// Every reply sent, per (client, seqno).
    replies: BTreeMap<(Id, u64), A::Reply>,
    /// A hash of the executed state per number of executed slots.
    executed: BTreeMap<OpNum, u64>,
    /// Per replica, the executed-slot count whose state was last hashed in this incarnation:
    /// the executor's state changes only with that count (executing a batch, installing a
    /// snapshot), so an unchanged count skips rehashing an app state that may be large.
    hashed_at: BTreeMap<usize, OpNum>,
    /// The highest promise each replica made (its acceptor's ballot).
    promised: BTreeMap<usize, Ballot>,
    highest_view: u64,
    state_transfers: u64,
    truncations: BTreeMap<usize, OpNum>,
    truncated: u64,
    sessions_expired: u64,
}

impl<A: App> Default for RslMonitor<A> {
    fn default() -> Self {
        RslMonitor {
            votes: BTreeMap::new(),
            chosen: BTreeMap::new(),
            replies: BTreeMap::new(),
            executed: BTreeMap::new(),
            hashed_at: BTreeMap::new(),
            promised: BTreeMap::new(),
            highest_view: 0,
            state_transfers: 0,
            truncations: BTreeMap::new(),
            truncated: 0,
            sessions_expired: 0,
        }
    }
}

impl<A: SimApp> SimSystem for RslSim<A> {
    type Msg = RslMsg<A>;
    type Timer = RslTimer;
    type Storage = ReplicaStorage<A>;
    type Actor = RslNode<A>;
    type Spec = A::Seq;
    type Monitor = RslMonitor<A>;

    fn name(&self) -> &'static str {
        "rsl"
    }

    fn servers(&self) -> usize {
        self.replicas
    }

    fn clients(&self) -> usize {
        self.clients
    }

    fn fault_kinds(&self) -> Vec<FaultKind> {
        FaultKind::ALL.to_vec()
    }

    fn max_down(&self) -> usize {
        (self.replicas - 1) / 2
    }

    fn max_lost(&self) -> usize {
        (self.replicas - 1) / 2
    }

    fn draw_ops(&self, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<A::Op> {
        (0..n).map(|i| A::draw(rng, client, i)).collect()
    }

    fn actor(&self, node: usize, start_us: u64, variant: u64, ops: &Arc<Vec<A::Op>>) -> RslNode<A> {
        let replicas: Arc<Vec<Id>> = Arc::new((0..self.replicas).map(Id::from).collect());
        if node < self.replicas {
            RslNode::Replica(Replica::new(ReplicaConfig {
                replicas,
                me: node,
                params: self.params.clone(),
                switches: self.switches(),
            }))
        } else {
            RslNode::Client(Client::new(ClientConfig {
                index: node - self.replicas,
                replicas,
                ops: ops.clone(),
                retransmit_ms: self.retransmit_ms,
                retransmit: self.switches().client_retransmits(),
                // As the runtime client: numbers from the clock, so that a new incarnation on
                // the same address starts above every number an earlier one used.
                first_seqno: if self.reuse_seqnos {
                    1
                } else {
                    start_us.max(1)
                },
                accepts_stale: self.switches().has(Mutation::ClientAcceptsStaleReply),
                track_leader: self.tracks_leader(variant, node - self.replicas),
                leader: None,
            }))
        }
    }

    fn accept_from_stranger(&self) -> fn(&RslMsg<A>) -> bool {
        |m| matches!(m, RslMsg::Request { .. })
    }

    fn store(&self, fs: Arc<SimFs>, node: usize) -> (Box<dyn Store<ReplicaStorage<A>>>, PathBuf) {
        let path = PathBuf::from(format!("/sim/replica-{node}.storage"));
        let file = StorageFile::on(fs, path.clone(), format!("sim replica {node}"));
        (Box::new(file), path)
    }

    fn request_id(&self, actor: &RslNode<A>, k: usize) -> Option<u64> {
        match actor {
            RslNode::Client(c) => c.cfg.first_seqno.checked_add(k as u64),
            _ => None,
        }
    }

    /// The chosen batches in slot order (up to the first slot not chosen), each request taken
    /// the first time it would execute: above its client's last executed sequence number.
    fn witness(&self, mon: &RslMonitor<A>) -> Option<Vec<(usize, u64)>> {
        let mut last: BTreeMap<Id, u64> = BTreeMap::new();
        let mut order = Vec::new();
        for (i, (&opn, batch)) in mon.chosen.iter().enumerate() {
            if opn != i as OpNum {
                break;
            }
            for req in batch.iter() {
                let l = last.entry(req.client).or_insert(0);
                if req.seqno > *l {
                    *l = req.seqno;
                    let client = usize::from(req.client).checked_sub(self.replicas)?;
                    order.push((client, req.seqno));
                }
            }
        }
        Some(order)
    }

    fn client_progress(&self, actor: &RslNode<A>, state: &RslNodeState<A>) -> (usize, usize, bool) {
        match (actor, state.client()) {
            (RslNode::Client(c), Some(s)) => {
                let answered = s.replies.len();
                let invoked = (answered + 1).min(c.cfg.ops.len());
                (invoked, answered, c.is_done(s))
            }
            _ => (0, 0, true),
        }
    }

    fn client_answer(&self, state: &RslNodeState<A>, k: usize) -> A::Reply {
        state
            .client()
            .map(|s| s.replies[k].clone())
            .expect("answers are read from clients only")
    }

    fn monitor(&self) -> RslMonitor<A> {
        RslMonitor::default()
    }

    fn check_state(
        &self,
        mon: &mut RslMonitor<A>,
        node: usize,
        state: &RslNodeState<A>,
    ) -> Result<(), String> {
        let Some(r) = state.replica() else {
            return Ok(());
        };
        if let Some(bal) = r.acceptor.max_bal {
            match mon.promised.get(&node) {
                Some(p) if *p > bal => {
                    return Err(format!(
                    "promise went backwards: ballot {bal:?} after {p:?} (lost across a restart?)"
                ))
                }
                _ => {
                    mon.promised.insert(node, bal);
                }
            }
            mon.highest_view = mon.highest_view.max(bal.seqno);
        }
        let e = &r.executor;
        if mon.hashed_at.insert(node, e.ops_complete) != Some(e.ops_complete) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.app_state.hash(&mut h);
            e.sessions.hash(&mut h);
            let digest = h.finish();
            match mon.executed.get(&e.ops_complete) {
                Some(d) if *d != digest => {
                    return Err(format!(
                        "executed prefixes disagree: after {} slots this replica's app state or \
                         session table differs from another's (app state {})",
                        e.ops_complete,
                        A::show(&e.app_state)
                    ))
                }
                Some(_) => {}
                None => {
                    mon.executed.insert(e.ops_complete, digest);
                }
            }
        }
        let bound = self.params.max_log_length as usize * 4 + 64;
        if r.acceptor.votes.len() > bound {
            return Err(format!(
                "log unbounded: {} votes kept (bound {bound})",
                r.acceptor.votes.len()
            ));
        }
        if r.milestones.state_transfer {
            mon.state_transfers = mon.state_transfers.max(1);
        }
        if r.milestones.session_expired {
            mon.sessions_expired = mon.sessions_expired.max(1);
        }
        let t = r.acceptor.log_truncation_point;
        let prev = mon.truncations.insert(node, t).unwrap_or(0);
        if t > prev {
            mon.truncated += 1;
        }
        Ok(())
    }

    fn check_send(
        &self,
        mon: &mut RslMonitor<A>,
        from: usize,
        to: usize,
        msg: &RslMsg<A>,
    ) -> Result<(), String> {
        match msg {
            RslMsg::TwoB { bal, opn, batch } if from < self.replicas => {
                let voters = mon.votes.entry((*opn, *bal, batch.clone())).or_default();
                voters.insert(from);
                if voters.len() > self.replicas / 2 {
                    match mon.chosen.get(opn) {
                        Some(b) if b != batch => {
                            return Err(format!(
                                "agreement: slot {opn} chosen twice ({} and {} requests, ballot \
                                 {bal:?})",
                                b.len(),
                                batch.len()
                            ))
                        }
                        Some(_) => {}
                        None => {
                            mon.chosen.insert(*opn, batch.clone());
                        }
                    }
                }
            }
            RslMsg::Reply { seqno, reply } if from < self.replicas => {
                let key = (Id::from(to), *seqno);
                if let Some(prev) = mon.replies.insert(key, reply.clone()) {
                    if prev != *reply {
                        return Err(format!(
                            "at most once: request {seqno} of node {to} answered {prev:?} and \
                             then {reply:?} (executed twice)"
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn started(&self, mon: &mut RslMonitor<A>, node: usize) {
        mon.hashed_at.remove(&node);
    }

    fn milestones(&self, mon: &RslMonitor<A>) -> Vec<(&'static str, u64)> {
        vec![
            ("slots chosen", mon.chosen.len() as u64),
            ("view changes", mon.highest_view),
            ("state transfers", mon.state_transfers),
            ("log truncations", mon.truncated),
            ("sessions expired", mon.sessions_expired),
        ]
    }
}
