//! The IronRSL model: its configuration, the recorders that keep the ghost history, the
//! model-only switches derived from the network, and every property registered by name.

use std::sync::Arc;

use stateright::actor::{ActorModel, Envelope, Id};
use stateright::Property;

use super::{lossy_network, with_properties, NetworkKind};
use crate::actors::rsl::{
    Answer, App, Client, ClientConfig, ClientPosition, Counter, CounterOp, ModelSwitches, Mutation,
    Params, Replica, ReplicaConfig, RslMsg, RslNode,
};
use crate::invariants::rsl::{self as inv, RslGhost, RslHistory, RslState};
use crate::invariants::spec::AppSpec;
use crate::liveness::rsl as live;
use crate::liveness::LivenessProperty;

/// The configuration of an RSL model.
#[derive(Clone, Debug)]
pub struct RslModelCfg<A: App> {
    /// Number of replicas.
    pub replicas: usize,
    /// The operations each client issues (one client per entry).
    pub client_ops: Vec<Vec<A::Op>>,
    /// Protocol parameters.
    pub params: Params,
    /// At most this many view changes (a model needs a bound: see [`ModelSwitches::max_view`]).
    pub max_view_changes: u64,
    /// Replicas report checkpoints, so log truncation and state transfer are explored
    /// ([`ModelSwitches::report_checkpoints`]).
    pub truncation: bool,
    /// A deliberately broken variant, or `None`.
    pub mutation: Option<Mutation>,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// How many replicas may be down at once (crash-restart with durable storage).
    pub max_crashes: usize,
    /// At most this many crashes over a whole run, of all replicas together; `None`: any
    /// number, `max_crashes` at a time. A crashed replica restarts from what it stored, so
    /// every crash a run may take again wipes the volatile state anew and multiplies the
    /// space; "one crash" in the usual sense of a Paxos test is `Some(1)`. stateright counts
    /// only the actors down now, so the replicas count their restarts
    /// ([`ModelSwitches::counts_restarts`], a ghost in their storage) and the model's boundary
    /// adds those down: a crash beyond the bound leads outside the model.
    pub max_total_crashes: Option<usize>,
}

impl RslModelCfg<Counter> {
    /// `replicas` replicas and `clients` clients that each send `requests` increments.
    pub fn counter(replicas: usize, clients: usize, requests: usize) -> Self {
        RslModelCfg {
            replicas,
            client_ops: vec![vec![CounterOp::Inc; requests]; clients],
            params: Params {
                max_batch_size: 1,
                // Small enough that a snapshot of this model's counter and session table takes
                // more than one chunk: the model checks chunked state transfer.
                state_chunk_bytes: 4,
                ..Params::default()
            },
            max_view_changes: 0,
            truncation: false,
            mutation: None,
            network: NetworkKind::Duplicating,
            lossy: false,
            max_crashes: 0,
            max_total_crashes: None,
        }
    }
}

impl<A: App> RslModelCfg<A> {
    /// The quorum size.
    fn quorum(&self) -> usize {
        self.replicas / 2 + 1
    }

    /// Whether `id` is a replica.
    fn is_replica(&self, id: Id) -> bool {
        usize::from(id) < self.replicas
    }

    /// Whether `id` is a client.
    fn is_client(&self, id: Id) -> bool {
        let i = usize::from(id);
        i >= self.replicas && i < self.replicas + self.client_ops.len()
    }
}

impl<A: App> RslModelCfg<A> {
    /// The groups of clients a checker may treat as interchangeable (symmetry reduction): those
    /// with the same operations, two or more to a group, by actor id. Refused, with the reason,
    /// where the protocol is not symmetric in its clients: a session table that can evict (it
    /// evicts the lowest (sequence number, client id), a tie broken by id), and state transfer
    /// (its chunks carry the session table serialised, beyond a renaming's reach).
    pub fn interchangeable_clients(&self) -> Result<Vec<Vec<Id>>, String> {
        if self.truncation {
            return Err(
                "not with truncation: a state transfer carries the session table \
                 serialised, where client ids cannot be renamed"
                    .into(),
            );
        }
        if self.client_ops.len() > self.params.max_client_sessions {
            return Err(format!(
                "not with more clients ({}) than sessions ({}): the session table evicts the \
                 lowest (sequence number, client id), a tie broken by id",
                self.client_ops.len(),
                self.params.max_client_sessions
            ));
        }
        let mut groups: Vec<(&Vec<A::Op>, Vec<Id>)> = Vec::new();
        for (i, ops) in self.client_ops.iter().enumerate() {
            let id = Id::from(self.replicas + i);
            match groups.iter_mut().find(|(o, _)| *o == ops) {
                Some((_, ids)) => ids.push(id),
                None => groups.push((ops, vec![id])),
            }
        }
        let groups: Vec<Vec<Id>> = groups
            .into_iter()
            .map(|(_, ids)| ids)
            .filter(|ids| ids.len() > 1)
            .collect();
        if groups.is_empty() {
            return Err("no two clients have the same operations: none is interchangeable".into());
        }
        Ok(groups)
    }
}

/// The model type of an RSL system.
pub type RslModel<A> = ActorModel<RslNode<A>, RslModelCfg<A>, RslHistory<A>>;

impl<A: App> RslModelCfg<A> {
    /// The model-only switches of this configuration: the one place they are derived. Eager
    /// heartbeats (and with them no vote repair and no client retransmission) only where the
    /// network redelivers every message for ever: see [`ModelSwitches::eager_heartbeats`].
    pub fn switches(&self) -> ModelSwitches {
        ModelSwitches {
            max_view: Some(self.max_view_changes),
            eager_heartbeats: self.network.redelivers_for_ever(self.lossy),
            report_checkpoints: self.truncation,
            timeless: true,
            counts_restarts: self.max_total_crashes.is_some(),
            mutation: self.mutation,
        }
    }
}

/// Every property of the RSL model, each under its name with its predicate, in report order. A
/// `sometimes` property that the configuration excludes by construction is left out rather than
/// reported as "not reached".
pub fn rsl_properties<A: AppSpec>(cfg: &RslModelCfg<A>) -> Vec<Property<RslModel<A>>> {
    let mut p = vec![
        Property::always("agreement", |_: &RslModel<A>, s: &RslState<A>| {
            inv::agreement(s)
        }),
        Property::always(
            "executed prefixes agree",
            |m: &RslModel<A>, s: &RslState<A>| inv::executed_prefixes_agree(m.cfg.replicas, s),
        ),
        Property::always(
            "executed at most once",
            |_: &RslModel<A>, s: &RslState<A>| inv::executed_at_most_once(s),
        ),
        Property::always("linearizable", |_: &RslModel<A>, s: &RslState<A>| {
            inv::linearizable(s)
        }),
        Property::always("refinement", |m: &RslModel<A>, s: &RslState<A>| {
            inv::refinement(m.cfg.replicas, &m.cfg.params, s)
        }),
        Property::always(
            "max_bal never decreases",
            |m: &RslModel<A>, s: &RslState<A>| inv::max_bal_never_decreases(m.cfg.replicas, s),
        ),
        Property::always("2b matches a 2a", |_: &RslModel<A>, s: &RslState<A>| {
            inv::two_b_matches_two_a(s)
        }),
        Property::always("logs bounded", |m: &RslModel<A>, s: &RslState<A>| {
            inv::logs_bounded(m.cfg.replicas, &m.cfg.params, s)
        }),
        Property::always(
            "truncation below quorum checkpoint",
            |m: &RslModel<A>, s: &RslState<A>| {
                inv::truncation_below_quorum_checkpoint(m.cfg.replicas, s)
            },
        ),
        Property::sometimes("a value is chosen", |_: &RslModel<A>, s: &RslState<A>| {
            inv::value_chosen(s)
        }),
    ];
    if cfg.max_view_changes > 0 {
        p.push(Property::sometimes(
            "a view change completes",
            |m: &RslModel<A>, s: &RslState<A>| inv::view_change_completed(m.cfg.replicas, s),
        ));
    }
    if cfg.truncation {
        p.push(Property::sometimes(
            "the log is truncated",
            |m: &RslModel<A>, s: &RslState<A>| inv::log_truncated(m.cfg.replicas, s),
        ));
        p.push(Property::sometimes(
            "a state transfer is done",
            |m: &RslModel<A>, s: &RslState<A>| inv::state_transfer_done(m.cfg.replicas, s),
        ));
    }
    if cfg.client_ops.len() > cfg.params.max_client_sessions {
        p.push(Property::sometimes(
            "a session expires",
            |m: &RslModel<A>, s: &RslState<A>| inv::session_expired(m.cfg.replicas, s),
        ));
    }
    p.push(Property::sometimes(
        "a reply is served from the cache",
        |m: &RslModel<A>, s: &RslState<A>| inv::reply_from_cache(m.cfg.replicas, s),
    ));
    p.push(Property::sometimes(
        "every client is answered",
        |m: &RslModel<A>, s: &RslState<A>| {
            live::all_clients_answered(m.cfg.replicas, &m.cfg.client_ops, s)
        },
    ));
    // Judged at terminal states, where a path that never held it ends. A run the view bound
    // stopped for good (see [`live::view_bound_spent_for_good`]: once it holds it holds in every
    // later state, so it excuses only the terminal states after it) is excused, as the lasso
    // checker excuses a cycle spent throughout. Without a bound on the crashes of a whole run
    // no state with crashes allowed is terminal (a crash is always enabled), so this mattered
    // only once that bound came.
    p.push(Property::eventually(
        live::EVERY_CLIENT_ANSWERED,
        |m: &RslModel<A>, s: &RslState<A>| {
            live::all_clients_answered(m.cfg.replicas, &m.cfg.client_ops, s)
                || live::view_bound_spent_for_good(m.cfg.replicas, m.cfg.switches().max_view, s)
        },
    ));
    p
}

/// The RSL liveness properties for the lasso and bounded checkers. Every client must be
/// answered, unless the model's view bound is spent throughout the continuation (see
/// [`live::view_bound_spent`]): a path that passes a spent state and moves on is still judged.
pub fn rsl_liveness<A: AppSpec>() -> Vec<LivenessProperty<RslModel<A>>> {
    vec![LivenessProperty::eventually(
        live::EVERY_CLIENT_ANSWERED,
        |m: &RslModel<A>, s: &RslState<A>| {
            live::all_clients_answered(m.cfg.replicas, &m.cfg.client_ops, s)
        },
    )
    .unless_stuck_by_bound(|m: &RslModel<A>, s: &RslState<A>| {
        live::view_bound_spent(m.cfg.replicas, m.cfg.switches().max_view, s)
    })]
}

/// Builds the model: replicas `0..n`, clients after them, the ghost history, every property.
pub fn rsl_model<A: AppSpec>(cfg: RslModelCfg<A>) -> RslModel<A> {
    let replica_ids: Arc<Vec<Id>> = Arc::new((0..cfg.replicas).map(Id::from).collect());
    let switches = cfg.switches();
    let mut actors = Vec::new();
    for me in 0..cfg.replicas {
        actors.push(RslNode::Replica(Replica::new(ReplicaConfig {
            replicas: replica_ids.clone(),
            me,
            params: cfg.params.clone(),
            switches: switches.clone(),
        })));
    }
    for (index, ops) in cfg.client_ops.iter().enumerate() {
        actors.push(RslNode::Client(Client::new(ClientConfig {
            index,
            replicas: replica_ids.clone(),
            ops: Arc::new(ops.clone()),
            retransmit_ms: 1000,
            retransmit: switches.client_retransmits(),
            first_seqno: 1,
            accepts_stale: switches.has(Mutation::ClientAcceptsStaleReply),
            track_leader: false,
            leader: None,
        })));
    }
    let network = cfg.network.network();
    let lossy = lossy_network(cfg.lossy);
    let crashes = cfg.max_crashes;
    let properties = rsl_properties(&cfg);
    let ghost = RslGhost::new(cfg.replicas);
    let model = ActorModel::new(cfg, Arc::new(ghost))
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(crashes)
        .record_msg_out(record_out::<A>)
        .record_msg_in(record_in::<A>)
        .within_boundary(within_crash_bounds);
    with_properties(model, properties)
}

/// Whether a state is inside the model's crash bounds ([`super::within_crash_bounds`]): only
/// replicas crash, and they count their restarts in their storage.
fn within_crash_bounds<A: AppSpec>(cfg: &RslModelCfg<A>, s: &RslState<A>) -> bool {
    let restarts = s.actor_storages.iter().flatten().map(|st| st.restarts);
    super::within_crash_bounds(&s.crashed, cfg.replicas, cfg.max_total_crashes, restarts)
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

/// A return is recorded when the client's own decision ([`ClientPosition::takes`], the code its
/// handler runs) takes the delivered message as its answer, from the ghost's mirror of what the
/// client took so far: the history is what the client accepted, right or wrong.
fn record_in<A: AppSpec>(
    cfg: &RslModelCfg<A>,
    h: &RslHistory<A>,
    env: Envelope<&RslMsg<A>>,
) -> Option<RslHistory<A>> {
    if !cfg.is_client(env.dst)
        || !matches!(
            env.msg,
            RslMsg::Reply { .. } | RslMsg::SessionExpired { .. }
        )
    {
        return None;
    }
    let index = usize::from(env.dst) - cfg.replicas;
    let (answered, expired) = h.answered.get(&env.dst).copied().unwrap_or((0, false));
    let replicas: Vec<Id> = (0..cfg.replicas).map(Id::from).collect();
    let position = ClientPosition {
        replicas: &replicas,
        first_seqno: 1,
        ops: cfg.client_ops[index].len(),
        answered,
        expired,
        accepts_stale: cfg.mutation == Some(Mutation::ClientAcceptsStaleReply),
    };
    let answer = position.takes(env.src, env.msg)?;
    let mut n = (**h).clone();
    match answer {
        Answer::Reply(reply) => {
            n.answered.insert(env.dst, (answered + 1, expired));
            let _ = n.linearizability.on_return(env.dst, reply);
        }
        Answer::Expired => {
            n.answered.insert(env.dst, (answered, true));
        }
    }
    Some(Arc::new(n))
}
