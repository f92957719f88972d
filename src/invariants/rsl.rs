//! IronRSL's safety properties, its ghost history, and the model builder.
//!
//! The history ([`RslGhost`]) records what was sent, never what an actor believes: every 2a, every
//! 2b (the votes), the highest ballot each acceptor promised in a 1b or 2b, every reply sent,
//! and the clients' invocations and returns (fed to stateright's `LinearizabilityTester`). From it
//! a slot is **chosen** when a quorum of acceptors sent a 2b for the same batch in the same
//! ballot.
//!
//! **Refinement.** The spec is one sequential state machine ([`AppSpec::Spec`]) that executes
//! batches in slot order, each request at most once (a request whose client already had an equal
//! or later request executed is answered from the spec's own reply record, not executed). The
//! abstraction function maps a replica's executor to the spec state it claims:
//! `(ops_complete, app_state, reply_cache)`. Property `refinement` demands that for every replica
//! every executed slot was chosen and its executor equals the spec run over the chosen batches
//! `0..ops_complete`, and that every reply ever sent is the spec's reply to that request. Since a
//! chosen slot never changes (agreement) and `ops_complete` only grows, the abstract service state
//! (the spec state of the longest executed prefix, plus the replies sent) can only move by the
//! spec's step: execute the next chosen batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stateright::actor::{ActorModel, ActorModelState, Envelope, Id, LossyNetwork};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use stateright::Expectation;

use crate::actors::rsl::Mutation;
use crate::actors::rsl::{
    App, Ballot, Batch, Client, ClientConfig, Counter, CounterOp, OpNum, Params, Phase, Replica,
    ReplicaConfig, ReplicaState, RslMsg, RslNode, RslNodeState,
};
use crate::invariants::spec::AppSpec;
use crate::invariants::NetworkKind;
use crate::liveness;

/// What was sent, recorded by the model (a ghost: no actor reads it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RslGhost<A: AppSpec> {
    /// Every 2a: (ballot, slot, batch).
    pub two_a: BTreeSet<(Ballot, OpNum, Batch<A>)>,
    /// Every 2b: (slot, ballot, batch, acceptor).
    pub two_b: BTreeSet<(OpNum, Ballot, Batch<A>, Id)>,
    /// The slots chosen so far: those where a quorum of acceptors sent a 2b for the same batch
    /// in the same ballot. Kept up to date as each 2b is recorded (it is a function of `two_b`,
    /// so it adds no distinct states), so that the properties do not rebuild it on every state.
    /// More than one batch in a slot is an agreement violation.
    pub chosen: BTreeMap<OpNum, BTreeSet<Batch<A>>>,
    /// The highest ballot each acceptor sent in a 1b or 2b.
    pub promised: BTreeMap<Id, Ballot>,
    /// Every reply sent: (client, seqno, reply).
    pub replies: BTreeSet<(Id, u64, A::Reply)>,
    /// The highest seqno each client invoked.
    pub invoked: BTreeMap<Id, u64>,
    /// The highest seqno each client saw returned.
    pub returned: BTreeMap<Id, u64>,
    /// The clients' history, checked for linearizability against the app's spec.
    pub linearizability: LinearizabilityTester<Id, A::Spec>,
}

/// The history type of RSL models: shared, since most steps leave it unchanged.
pub type RslHistory<A> = Arc<RslGhost<A>>;

impl<A: AppSpec> Default for RslGhost<A> {
    fn default() -> Self {
        RslGhost {
            two_a: BTreeSet::new(),
            two_b: BTreeSet::new(),
            chosen: BTreeMap::new(),
            promised: BTreeMap::new(),
            replies: BTreeSet::new(),
            invoked: BTreeMap::new(),
            returned: BTreeMap::new(),
            linearizability: LinearizabilityTester::new(A::Spec::default()),
        }
    }
}

impl<A: AppSpec> RslGhost<A> {
    /// Records a 2b and, if it completes a quorum for its (slot, ballot, batch), marks the batch
    /// chosen.
    fn record_2b(&mut self, quorum: usize, opn: OpNum, bal: Ballot, batch: &Batch<A>, src: Id) {
        if !self.two_b.insert((opn, bal, batch.clone(), src)) {
            return;
        }
        let lo = (opn, bal, batch.clone(), Id::from(0usize));
        let hi = (opn, bal, batch.clone(), Id::from(usize::MAX));
        if self.two_b.range(lo..=hi).count() >= quorum {
            self.chosen.entry(opn).or_default().insert(batch.clone());
        }
    }
}

/// The configuration of an RSL model.
#[derive(Clone, Debug)]
pub struct RslModelCfg<A: App> {
    /// Number of replicas.
    pub replicas: usize,
    /// The operations each client issues (one client per entry).
    pub client_ops: Vec<Vec<A::Op>>,
    /// Protocol parameters (including the model's view bound and any mutation).
    pub params: Params,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// How many replicas may be down at once (crash-restart with durable storage).
    pub max_crashes: usize,
}

impl RslModelCfg<Counter> {
    /// `replicas` replicas and `clients` clients that each send `requests` increments.
    pub fn counter(replicas: usize, clients: usize, requests: usize) -> Self {
        RslModelCfg {
            replicas,
            client_ops: vec![vec![CounterOp::Inc; requests]; clients],
            params: Params {
                max_batch_size: 1,
                max_view: Some(0),
                report_checkpoints: false,
                ..Params::default()
            },
            network: NetworkKind::Duplicating,
            lossy: false,
            max_crashes: 0,
        }
    }
}

impl<A: App> RslModelCfg<A> {
    /// The quorum size.
    pub fn quorum(&self) -> usize {
        self.replicas / 2 + 1
    }

    /// Whether `id` is a replica.
    pub fn is_replica(&self, id: Id) -> bool {
        usize::from(id) < self.replicas
    }

    /// Whether `id` is a client.
    pub fn is_client(&self, id: Id) -> bool {
        let i = usize::from(id);
        i >= self.replicas && i < self.replicas + self.client_ops.len()
    }
}

/// The model type of an RSL system.
pub type RslModel<A> = ActorModel<RslNode<A>, RslModelCfg<A>, RslHistory<A>>;
/// The state type of an RSL model.
pub type RslState<A> = ActorModelState<RslNode<A>, RslHistory<A>>;

/// The replicas' states with their ids.
pub fn replicas<'a, A: AppSpec>(
    cfg: &RslModelCfg<A>,
    state: &'a RslState<A>,
) -> impl Iterator<Item = (Id, &'a ReplicaState<A>)> + 'a {
    state
        .actor_states
        .iter()
        .take(cfg.replicas)
        .enumerate()
        .filter_map(|(i, s)| s.replica().map(|r| (Id::from(i), r)))
}

fn record_out<A: AppSpec>(
    cfg: &RslModelCfg<A>,
    h: &RslHistory<A>,
    env: Envelope<&RslMsg<A>>,
) -> Option<RslHistory<A>> {
    match env.msg {
        RslMsg::Request { seqno, op } if cfg.is_client(env.src) => {
            if h.invoked.get(&env.src).is_some_and(|&s| s >= *seqno) {
                return None;
            }
            let mut n = (**h).clone();
            n.invoked.insert(env.src, *seqno);
            let _ = n.linearizability.on_invoke(env.src, op.clone());
            Some(Arc::new(n))
        }
        RslMsg::Reply { seqno, reply } if cfg.is_replica(env.src) => {
            let key = (env.dst, *seqno, reply.clone());
            if h.replies.contains(&key) {
                return None;
            }
            let mut n = (**h).clone();
            n.replies.insert(key);
            Some(Arc::new(n))
        }
        RslMsg::TwoA { bal, opn, batch } => {
            let key = (*bal, *opn, batch.clone());
            if h.two_a.contains(&key) {
                return None;
            }
            let mut n = (**h).clone();
            n.two_a.insert(key);
            Some(Arc::new(n))
        }
        RslMsg::TwoB { bal, opn, batch } => {
            let key = (*opn, *bal, batch.clone(), env.src);
            let promised = h.promised.get(&env.src).copied();
            if h.two_b.contains(&key) && promised >= Some(*bal) {
                return None;
            }
            let mut n = (**h).clone();
            n.record_2b(cfg.quorum(), *opn, *bal, batch, env.src);
            if promised < Some(*bal) {
                n.promised.insert(env.src, *bal);
            }
            Some(Arc::new(n))
        }
        RslMsg::OneB { bal, .. } => {
            if h.promised.get(&env.src).copied() >= Some(*bal) {
                return None;
            }
            let mut n = (**h).clone();
            n.promised.insert(env.src, *bal);
            Some(Arc::new(n))
        }
        _ => None,
    }
}

fn record_in<A: AppSpec>(
    cfg: &RslModelCfg<A>,
    h: &RslHistory<A>,
    env: Envelope<&RslMsg<A>>,
) -> Option<RslHistory<A>> {
    match env.msg {
        RslMsg::Reply { seqno, reply } if cfg.is_client(env.dst) && cfg.is_replica(env.src) => {
            let invoked = h.invoked.get(&env.dst).copied().unwrap_or(0);
            let returned = h.returned.get(&env.dst).copied().unwrap_or(0);
            if *seqno != invoked || returned >= *seqno {
                return None;
            }
            let mut n = (**h).clone();
            n.returned.insert(env.dst, *seqno);
            let _ = n.linearizability.on_return(env.dst, reply.clone());
            Some(Arc::new(n))
        }
        _ => None,
    }
}

/// Runs the spec over the chosen batches `0..upto`. Returns, per prefix length `k`, the spec state
/// and reply record after `k` slots, plus every reply the spec gave — or `None` if some slot below
/// `upto` is not chosen or chosen twice.
#[allow(clippy::type_complexity)]
pub fn spec_run<A: AppSpec>(
    chosen: &BTreeMap<OpNum, BTreeSet<Batch<A>>>,
    upto: OpNum,
) -> Option<(
    Vec<(A::Spec, BTreeMap<Id, (u64, A::Reply)>)>,
    BTreeMap<(Id, u64), A::Reply>,
)> {
    let mut spec = A::Spec::default();
    let mut cache: BTreeMap<Id, (u64, A::Reply)> = BTreeMap::new();
    let mut all = BTreeMap::new();
    let mut prefixes = vec![(spec.clone(), cache.clone())];
    for opn in 0..upto {
        let batches = chosen.get(&opn)?;
        if batches.len() != 1 {
            return None;
        }
        let batch = batches.iter().next()?;
        for req in batch.iter() {
            if cache.get(&req.client).is_some_and(|(s, _)| *s >= req.seqno) {
                continue;
            }
            let ret = spec.invoke(&req.op);
            cache.insert(req.client, (req.seqno, ret.clone()));
            all.insert((req.client, req.seqno), ret);
        }
        prefixes.push((spec.clone(), cache.clone()));
    }
    Some((prefixes, all))
}

/// Agreement: at most one batch is chosen per slot, across all ballots.
pub fn agreement<A: AppSpec>(_: &RslModel<A>, s: &RslState<A>) -> bool {
    s.history.chosen.values().all(|b| b.len() <= 1)
}

/// Replicas that executed the same number of slots hold the same app state and reply cache.
pub fn executed_prefixes_agree<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    let mut by_len: BTreeMap<OpNum, &ReplicaState<A>> = BTreeMap::new();
    for (_, r) in replicas(&m.cfg, s) {
        let e = &r.executor;
        match by_len.get(&e.ops_complete) {
            Some(o) => {
                if o.executor.app_state != e.app_state || o.executor.reply_cache != e.reply_cache {
                    return false;
                }
            }
            None => {
                by_len.insert(e.ops_complete, r);
            }
        }
    }
    true
}

/// Each (client, seqno) is executed at most once: no two different replies were ever sent for it.
pub fn executed_at_most_once<A: AppSpec>(_: &RslModel<A>, s: &RslState<A>) -> bool {
    let mut seen: BTreeMap<(Id, u64), &A::Reply> = BTreeMap::new();
    for (c, q, r) in &s.history.replies {
        if let Some(prev) = seen.insert((*c, *q), r) {
            if prev != r {
                return false;
            }
        }
    }
    true
}

/// The clients' history is linearizable against the app's sequential spec.
pub fn linearizable<A: AppSpec>(_: &RslModel<A>, s: &RslState<A>) -> bool {
    s.history.linearizability.serialized_history().is_some()
}

/// Refinement (see the module doc): every replica's executor is the spec run over the chosen
/// prefix it executed, and every reply sent is the spec's reply.
pub fn refinement<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    let chosen = &s.history.chosen;
    let longest = replicas(&m.cfg, s)
        .map(|(_, r)| r.executor.ops_complete)
        .max()
        .unwrap_or(0);
    let Some((prefixes, spec_replies)) = spec_run::<A>(chosen, longest) else {
        return false;
    };
    for (_, r) in replicas(&m.cfg, s) {
        let e = &r.executor;
        let (spec, cache) = &prefixes[e.ops_complete as usize];
        if &A::abstraction(&e.app_state) != spec || *e.reply_cache != *cache {
            return false;
        }
    }
    s.history
        .replies
        .iter()
        .all(|(c, q, r)| spec_replies.get(&(*c, *q)) == Some(r))
}

/// An acceptor's `max_bal` never decreases: it is never below a ballot it promised or voted in.
pub fn max_bal_never_decreases<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    replicas(&m.cfg, s).all(|(id, r)| {
        s.history
            .promised
            .get(&id)
            .is_none_or(|&b| r.acceptor.max_bal >= Some(b))
    })
}

/// Every 2b matches a 2a sent in that ballot for that slot and batch.
pub fn two_b_matches_two_a<A: AppSpec>(_: &RslModel<A>, s: &RslState<A>) -> bool {
    s.history
        .two_b
        .iter()
        .all(|(opn, bal, batch, _)| s.history.two_a.contains(&(*bal, *opn, batch.clone())))
}

/// Logs stay bounded: votes within `max_log_length` of the truncation point, learner slots within
/// `max_log_length` of the executed prefix, request queues within their bound.
pub fn logs_bounded<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    let p = &m.cfg.params;
    replicas(&m.cfg, s).all(|(_, r)| {
        let ltp = r.acceptor.log_truncation_point;
        let done = r.executor.ops_complete;
        r.acceptor
            .votes
            .keys()
            .all(|&o| o >= ltp && o < ltp + p.max_log_length)
            && r.learner
                .pending
                .keys()
                .all(|&o| o >= done && o < done + p.max_log_length)
            && r.proposer.request_queue.len() <= p.max_request_queue
    })
}

/// Log truncation only discards slots a quorum of replicas has executed: no acceptor's truncation
/// point exceeds the quorum-th highest `ops_complete`.
pub fn truncation_below_quorum_checkpoint<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    let mut done: Vec<OpNum> = replicas(&m.cfg, s)
        .map(|(_, r)| r.executor.ops_complete)
        .collect();
    done.sort_unstable_by(|a, b| b.cmp(a));
    let q = done[m.cfg.quorum() - 1];
    replicas(&m.cfg, s).all(|(_, r)| r.acceptor.log_truncation_point <= q)
}

/// Sometimes: a slot is chosen.
pub fn value_chosen<A: AppSpec>(_: &RslModel<A>, s: &RslState<A>) -> bool {
    !s.history.chosen.is_empty()
}

/// Sometimes: a leader of a later view reached phase 2.
pub fn view_change_completed<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    replicas(&m.cfg, s).any(|(_, r)| {
        r.proposer.phase == Phase::Phase2
            && r.proposer.max_ballot_sent_1a.is_some_and(|b| b.seqno >= 1)
    })
}

/// Sometimes: an acceptor truncated its log.
pub fn log_truncated<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    replicas(&m.cfg, s).any(|(_, r)| r.acceptor.log_truncation_point > 0)
}

/// Sometimes: a replica caught up through state transfer.
pub fn state_transfer_done<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    replicas(&m.cfg, s).any(|(_, r)| r.milestones.state_transfer)
}

/// Sometimes: a retransmitted request was answered from the reply cache.
pub fn reply_from_cache<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    replicas(&m.cfg, s).any(|(_, r)| r.milestones.served_from_cache)
}

/// The names of the safety (`always`) properties, in report order.
pub const SAFETY: [&str; 9] = [
    "agreement",
    "executed prefixes agree",
    "executed at most once",
    "linearizable",
    "refinement",
    "max_bal never decreases",
    "2b matches a 2a",
    "logs bounded",
    "truncation below quorum checkpoint",
];

/// Builds the model: replicas `0..n`, clients after them, the ghost history, every property.
pub fn rsl_model<A: AppSpec>(cfg: RslModelCfg<A>) -> RslModel<A> {
    let replica_ids: Arc<Vec<Id>> = Arc::new((0..cfg.replicas).map(Id::from).collect());
    let mut params = cfg.params.clone();
    // A message once sent stays deliverable forever on a lossless duplicating network, so
    // heartbeats can go out eagerly there (see `Params::eager_heartbeats`).
    params.eager_heartbeats = cfg.network == NetworkKind::Duplicating && !cfg.lossy;
    params.repair_lost_votes = !params.eager_heartbeats;
    let mut actors = Vec::new();
    for me in 0..cfg.replicas {
        actors.push(RslNode::Replica(Replica::new(ReplicaConfig {
            replicas: replica_ids.clone(),
            me,
            params: params.clone(),
        })));
    }
    for (index, ops) in cfg.client_ops.iter().enumerate() {
        actors.push(RslNode::Client(Client::new(ClientConfig {
            index,
            replicas: replica_ids.clone(),
            ops: Arc::new(ops.clone()),
            retransmit_ms: 1000,
            retransmit: !params.eager_heartbeats && !params.has(Mutation::ClientNeverRetransmits),
        })));
    }
    let network = cfg.network.network();
    let lossy = if cfg.lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    };
    let crashes = cfg.max_crashes;
    let view_changes = cfg.params.max_view != Some(0);
    let truncation = cfg.params.report_checkpoints;
    let mut model = ActorModel::new(cfg, Arc::new(RslGhost::default()))
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(crashes)
        .record_msg_out(record_out::<A>)
        .record_msg_in(record_in::<A>)
        // Only replicas crash: stateright lets any actor crash, so states with a crashed client
        // are outside the model.
        .within_boundary(|cfg, s| s.crashed.iter().skip(cfg.replicas).all(|c| !c))
        .property(Expectation::Always, SAFETY[0], agreement::<A>)
        .property(Expectation::Always, SAFETY[1], executed_prefixes_agree::<A>)
        .property(Expectation::Always, SAFETY[2], executed_at_most_once::<A>)
        .property(Expectation::Always, SAFETY[3], linearizable::<A>)
        .property(Expectation::Always, SAFETY[4], refinement::<A>)
        .property(Expectation::Always, SAFETY[5], max_bal_never_decreases::<A>)
        .property(Expectation::Always, SAFETY[6], two_b_matches_two_a::<A>)
        .property(Expectation::Always, SAFETY[7], logs_bounded::<A>)
        .property(
            Expectation::Always,
            SAFETY[8],
            truncation_below_quorum_checkpoint::<A>,
        )
        .property(
            Expectation::Sometimes,
            "a value is chosen",
            value_chosen::<A>,
        );
    // A `sometimes` property that the configuration excludes by construction is left out rather
    // than reported as "not reached".
    if view_changes {
        model = model.property(
            Expectation::Sometimes,
            "a view change completes",
            view_change_completed::<A>,
        );
    }
    if truncation {
        model = model
            .property(
                Expectation::Sometimes,
                "the log is truncated",
                log_truncated::<A>,
            )
            .property(
                Expectation::Sometimes,
                "a state transfer is done",
                state_transfer_done::<A>,
            );
    }
    model
        .property(
            Expectation::Sometimes,
            "a reply is served from the cache",
            reply_from_cache::<A>,
        )
        .property(
            Expectation::Sometimes,
            "every client is answered",
            liveness::rsl::all_clients_answered::<A>,
        )
        .property(
            Expectation::Eventually,
            liveness::rsl::EVERY_CLIENT_ANSWERED,
            liveness::rsl::all_clients_answered::<A>,
        )
}

/// Whether the client at `state.actor_states[i]` got every reply.
pub fn client_done<A: AppSpec>(cfg: &RslModelCfg<A>, state: &RslState<A>, i: usize) -> bool {
    let ops = cfg.client_ops[i - cfg.replicas].len();
    match &*state.actor_states[i] {
        RslNodeState::Client(c) => c.replies.len() >= ops,
        RslNodeState::Replica(_) => true,
    }
}
