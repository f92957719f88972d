//! IronRSL's safety properties and the ghost history they read.
//!
//! The history ([`RslGhost`]) records what was sent, never what an actor believes: every 2a, every
//! 2b (the votes), the highest ballot each acceptor promised in a 1b or 2b, every reply sent,
//! and the clients' invocations and returns (fed to a linearizability tester, [`Linearizability`]). From it
//! a slot is **chosen** when a quorum of acceptors sent a 2b for the same batch in the same
//! ballot.
//!
//! **Refinement.** The spec is one sequential state machine ([`AppSpec::Spec`]) that executes
//! batches in slot order, each request at most once (a request whose client already had an equal
//! or later request executed is answered from the spec's own reply record, not executed), with a
//! bounded reply record: beyond `max_client_sessions` clients the one with the lowest last seqno
//! is forgotten, and a request from a forgotten client at or below the highest seqno forgotten is
//! refused, not executed. The abstraction function maps a replica's executor to the spec state
//! it claims: `(ops_complete, app_state, session table)`. Property `refinement` demands that for every replica
//! every executed slot was chosen and its executor equals the spec run over the chosen batches
//! `0..ops_complete`, and that every reply ever sent is the spec's reply to that request. Since a
//! chosen slot never changes (agreement) and `ops_complete` only grows, the abstract service state
//! (the spec state of the longest executed prefix, plus the replies sent) can only move by the
//! spec's step: execute the next chosen batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stateright::actor::{ActorModelState, Id};
use stateright::semantics::SequentialSpec;
use stateright::{Rewrite, RewritePlan};

use crate::actors::rsl::{
    Ballot, Batch, OpNum, Params, Phase, ReplicaState, RslMsg, RslNode, RslNodeState,
};
use crate::invariants::ghost::{tester_invoke, tester_return, GhostHistory, ALL_PARTS};
use crate::invariants::linearizability::Linearizability;
use crate::invariants::spec::AppSpec;

/// What was sent, recorded by the model (a ghost: no actor reads it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RslGhost<A: AppSpec> {
    /// How many replicas there are (ids below it): their records are the commuting ones.
    pub replicas: usize,
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
    /// What each client's handler has taken: (answers, told its session expired). A mirror of
    /// the client's own state, advanced by the client's own decision on each delivery (see
    /// `ClientPosition::takes`), so that a return is recorded exactly when the client code
    /// takes an answer.
    pub answered: BTreeMap<Id, (usize, bool)>,
    /// The clients' history, checked for linearizability against the app's spec.
    pub linearizability: Linearizability<A::Spec>,
}

/// The replicas' records (2a, 2b, chosen slots, promises, replies) are insertions into sets and
/// per-replica maxima: they commute with every other change and touch no part. Only the
/// clients' linearizability history is ordered: an invocation reads the other clients'
/// completions, a return changes its client's.
impl<A: AppSpec> GhostHistory for RslGhost<A> {
    fn changed_parts(&self, next: &Self) -> u64 {
        let mut parts = 0;
        for (client, seqno) in &next.invoked {
            if self.invoked.get(client) != Some(seqno) {
                parts |= tester_invoke(*client);
            }
        }
        for (client, taken) in &next.answered {
            if self.answered.get(client) != Some(taken) {
                parts |= tester_return(*client);
            }
        }
        if parts == 0 && self.linearizability != next.linearizability {
            parts = ALL_PARTS; // a change of the tester the maps do not explain
        }
        parts
    }

    /// A replica's records are the commuting insertions and maxima above; a client's are its
    /// invocations and returns, ordered.
    fn records_commute(&self, actor: Id) -> bool {
        usize::from(actor) < self.replicas
    }

    /// Old 1a, 1b and heartbeat messages a replica can never use again ([`RslNode::spent`]).
    fn spent(
        &self,
        receiver: &dyn std::any::Any,
        receiver_state: &dyn std::any::Any,
        src: Id,
        msg: &dyn std::any::Any,
    ) -> bool {
        match (
            receiver.downcast_ref::<RslNode<A>>(),
            receiver_state.downcast_ref::<RslNodeState<A>>(),
            msg.downcast_ref::<RslMsg<A>>(),
        ) {
            (Some(actor), Some(state), Some(msg)) => actor.spent(state, src, msg),
            _ => false,
        }
    }

    /// Every property reads replicas through [`replicas`], which passes over crashed ones.
    fn crashed_states_unread(&self) -> bool {
        true
    }
}

/// Renames client ids everywhere in the history (for symmetry reduction over clients; replica
/// ids are left as they are by a renaming of clients).
impl<A: AppSpec> Rewrite<Id> for RslGhost<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        let batch =
            |b: &Batch<A>| -> Batch<A> { Arc::new(b.iter().map(|r| r.rewrite(plan)).collect()) };
        RslGhost {
            replicas: self.replicas,
            two_a: self
                .two_a
                .iter()
                .map(|(bal, opn, b)| (*bal, *opn, batch(b)))
                .collect(),
            two_b: self
                .two_b
                .iter()
                .map(|(opn, bal, b, id)| (*opn, *bal, batch(b), plan.rewrite(id)))
                .collect(),
            chosen: self
                .chosen
                .iter()
                .map(|(opn, bs)| (*opn, bs.iter().map(batch).collect()))
                .collect(),
            promised: self
                .promised
                .iter()
                .map(|(id, bal)| (plan.rewrite(id), *bal))
                .collect(),
            replies: self
                .replies
                .iter()
                .map(|(c, seqno, r)| (plan.rewrite(c), *seqno, r.clone()))
                .collect(),
            invoked: self
                .invoked
                .iter()
                .map(|(c, q)| (plan.rewrite(c), *q))
                .collect(),
            answered: self
                .answered
                .iter()
                .map(|(c, a)| (plan.rewrite(c), *a))
                .collect(),
            linearizability: self.linearizability.rewrite(plan),
        }
    }
}

/// The history type of RSL models: shared, since most steps leave it unchanged.
pub type RslHistory<A> = Arc<RslGhost<A>>;

impl<A: AppSpec> RslGhost<A> {
    /// The empty history of a system of `replicas` replicas.
    pub fn new(replicas: usize) -> Self {
        RslGhost {
            replicas,
            two_a: BTreeSet::new(),
            two_b: BTreeSet::new(),
            chosen: BTreeMap::new(),
            promised: BTreeMap::new(),
            replies: BTreeSet::new(),
            invoked: BTreeMap::new(),
            answered: BTreeMap::new(),
            linearizability: Linearizability::new(A::Spec::default()),
        }
    }
}

impl<A: AppSpec> RslGhost<A> {
    /// Records a 2b and, if it completes a quorum for its (slot, ballot, batch), marks the batch
    /// chosen.
    pub(crate) fn record_2b(
        &mut self,
        quorum: usize,
        opn: OpNum,
        bal: Ballot,
        batch: &Batch<A>,
        src: Id,
    ) {
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

/// The state type of RSL models: the actors' states and the ghost history.
pub type RslState<A> = ActorModelState<RslNode<A>, RslHistory<A>>;

/// The states of the replicas that are up, with their ids. A crashed replica has no state but
/// its storage: stateright keeps the state it crashed with, which no step reads until the
/// restart replaces it, and the properties pass over it too, so that the checker may leave it
/// out ([`GhostHistory::crashed_states_unread`]). Whatever a crashed replica keeps is judged
/// once it restarts from it.
pub fn replicas<A: AppSpec>(
    n: usize,
    state: &RslState<A>,
) -> impl Iterator<Item = (Id, &ReplicaState<A>)> {
    state
        .actor_states
        .iter()
        .take(n)
        .enumerate()
        .filter(|(i, _)| !state.crashed.get(*i).copied().unwrap_or(false))
        .filter_map(|(i, s)| s.replica().map(|r| (Id::from(i), r)))
}

/// How many slots each replica executed: a replica that is up by its state, a crashed one by
/// its storage (what it restarts with; a replica saves whenever its executor changes).
fn ops_complete<A: AppSpec>(n: usize, s: &RslState<A>) -> impl Iterator<Item = OpNum> + '_ {
    (0..n).map(|i| match (s.crashed.get(i), s.actor_states.get(i)) {
        (Some(false), Some(a)) => a.replica().map_or(0, |r| r.executor.ops_complete),
        _ => s
            .actor_storages
            .get(i)
            .and_then(Option::as_ref)
            .map_or(0, |st| st.ops_complete),
    })
}

/// The spec's reply record: the last (seqno, reply) per remembered client, and the highest
/// seqno of a forgotten client.
pub type SpecSessions<R> = (BTreeMap<Id, (u64, R)>, u64);

/// Runs the spec over the chosen batches `0..upto`, remembering at most `max_sessions` clients.
/// Returns, per prefix length `k`, the spec state and reply record after `k` slots, plus every
/// reply the spec gave — or `None` if some slot below `upto` is not chosen or chosen twice.
#[allow(clippy::type_complexity)]
pub fn spec_run<A: AppSpec>(
    chosen: &BTreeMap<OpNum, BTreeSet<Batch<A>>>,
    upto: OpNum,
    max_sessions: usize,
) -> Option<(
    Vec<(A::Spec, SpecSessions<A::Reply>)>,
    BTreeMap<(Id, u64), A::Reply>,
)> {
    let mut spec = A::Spec::default();
    let mut cache: BTreeMap<Id, (u64, A::Reply)> = BTreeMap::new();
    let mut forgotten = 0u64;
    let mut all = BTreeMap::new();
    let mut prefixes = vec![(spec.clone(), (cache.clone(), forgotten))];
    for opn in 0..upto {
        let batches = chosen.get(&opn)?;
        if batches.len() != 1 {
            return None;
        }
        let batch = batches.iter().next()?;
        for req in batch.iter() {
            match cache.get(&req.client) {
                Some((s, _)) if *s >= req.seqno => continue,
                None if req.seqno <= forgotten => continue,
                _ => {}
            }
            let ret = spec.invoke(&req.op);
            cache.insert(req.client, (req.seqno, ret.clone()));
            all.insert((req.client, req.seqno), ret);
            while cache.len() > max_sessions.max(1) {
                let (victim, seqno) = cache
                    .iter()
                    .filter(|(c, _)| **c != req.client)
                    .map(|(c, (s, _))| (*c, *s))
                    .min_by_key(|&(c, s)| (s, c))?;
                cache.remove(&victim);
                forgotten = forgotten.max(seqno);
            }
        }
        prefixes.push((spec.clone(), (cache.clone(), forgotten)));
    }
    Some((prefixes, all))
}

/// Agreement: at most one batch is chosen per slot, across all ballots.
pub fn agreement<A: AppSpec>(s: &RslState<A>) -> bool {
    s.history.chosen.values().all(|b| b.len() <= 1)
}

/// Replicas that executed the same number of slots hold the same app state and client session table.
pub fn executed_prefixes_agree<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    let mut by_len: BTreeMap<OpNum, &ReplicaState<A>> = BTreeMap::new();
    for (_, r) in replicas(n, s) {
        let e = &r.executor;
        match by_len.get(&e.ops_complete) {
            Some(o) => {
                if o.executor.app_state != e.app_state || o.executor.sessions != e.sessions {
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
pub fn executed_at_most_once<A: AppSpec>(s: &RslState<A>) -> bool {
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
pub fn linearizable<A: AppSpec>(s: &RslState<A>) -> bool {
    s.history.linearizability.is_linearizable()
}

/// Refinement (see the module doc): every replica's executor is the spec run over the chosen
/// prefix it executed, and every reply sent is the spec's reply.
pub fn refinement<A: AppSpec>(n: usize, p: &Params, s: &RslState<A>) -> bool {
    let chosen = &s.history.chosen;
    let longest = ops_complete(n, s).max().unwrap_or(0);
    let Some((prefixes, spec_replies)) = spec_run::<A>(chosen, longest, p.max_client_sessions)
    else {
        return false;
    };
    for (_, r) in replicas(n, s) {
        let e = &r.executor;
        let (spec, (cache, forgotten)) = &prefixes[e.ops_complete as usize];
        let sessions_match = e.sessions.watermark() == *forgotten
            && e.sessions.len() == cache.len()
            && e.sessions
                .iter()
                .all(|(c, q, r)| cache.get(&c).is_some_and(|(cq, cr)| *cq == q && cr == r));
        if &A::abstraction(&e.app_state) != spec || !sessions_match {
            return false;
        }
    }
    s.history
        .replies
        .iter()
        .all(|(c, q, r)| spec_replies.get(&(*c, *q)) == Some(r))
}

/// An acceptor's `max_bal` never decreases: it is never below a ballot it promised or voted in.
pub fn max_bal_never_decreases<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).all(|(id, r)| {
        s.history
            .promised
            .get(&id)
            .is_none_or(|&b| r.acceptor.max_bal >= Some(b))
    })
}

/// Every 2b matches a 2a sent in that ballot for that slot and batch.
pub fn two_b_matches_two_a<A: AppSpec>(s: &RslState<A>) -> bool {
    s.history
        .two_b
        .iter()
        .all(|(opn, bal, batch, _)| s.history.two_a.contains(&(*bal, *opn, batch.clone())))
}

/// Logs stay bounded: votes within `max_log_length` of the truncation point, learner slots within
/// `max_log_length` of the executed prefix, request queues within their bound.
pub fn logs_bounded<A: AppSpec>(n: usize, p: &Params, s: &RslState<A>) -> bool {
    replicas(n, s).all(|(_, r)| {
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
/// A crashed replica counts with the slots its storage says it executed.
pub fn truncation_below_quorum_checkpoint<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    let mut done: Vec<OpNum> = ops_complete(n, s).collect();
    done.sort_unstable_by(|a, b| b.cmp(a));
    let Some(&q) = done.get(n / 2) else {
        return true;
    };
    replicas(n, s).all(|(_, r)| r.acceptor.log_truncation_point <= q)
}

/// Sometimes: a slot is chosen.
pub fn value_chosen<A: AppSpec>(s: &RslState<A>) -> bool {
    !s.history.chosen.is_empty()
}

/// Sometimes: a leader of a later view reached phase 2.
pub fn view_change_completed<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).any(|(_, r)| {
        r.proposer.phase == Phase::Phase2
            && r.proposer.max_ballot_sent_1a.is_some_and(|b| b.seqno >= 1)
    })
}

/// Sometimes: an acceptor truncated its log.
pub fn log_truncated<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).any(|(_, r)| r.acceptor.log_truncation_point > 0)
}

/// Sometimes: a replica caught up through state transfer.
pub fn state_transfer_done<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).any(|(_, r)| r.milestones.state_transfer)
}

/// Sometimes: a request from a client without a session was refused as expired.
pub fn session_expired<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).any(|(_, r)| r.milestones.session_expired)
}

/// Sometimes: a retransmitted request was answered from the reply cache.
pub fn reply_from_cache<A: AppSpec>(n: usize, s: &RslState<A>) -> bool {
    replicas(n, s).any(|(_, r)| r.milestones.served_from_cache)
}
