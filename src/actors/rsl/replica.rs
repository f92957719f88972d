//! The IronRSL Replica actor: Proposer + Acceptor + Learner + Executor + Election.
//!
//! Every step is one packet or one timer, followed by the replica's periodic actions done eagerly
//! (IronRSL runs them round-robin in its scheduler loop; running them right after each event
//! only removes interleavings in which a replica idles): maybe enter a new view and send 1a,
//! maybe enter phase 2, maybe nominate a batch, make decisions and execute them, truncate the log.
//! Durable state (acceptor ballot, votes and truncation point, the highest 1a ballot, the
//! executor) is saved with `Out::save` whenever it changes and restored by `on_start`.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use stateright::actor::{Actor, Id, Out};

use super::acceptor::{Acceptor, TwoAOutcome};
use super::app::App;
use super::election::Election;
use super::executor::{Executor, Outcome};
use super::learner::Learner;
use super::params::{ModelSwitches, Mutation, Params};
use super::proposer::{Phase, Proposer};
use super::sessions::Lookup;
use super::transfer::{self, Transfer};
use super::types::{Ballot, OpNum, Request, RslMsg, RslTimer, Votes};

/// A replica's configuration: who the replicas are, which one it is, the parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicaConfig {
    /// Every replica's id, in configuration order (the order defines ballot proposer indices).
    pub replicas: Arc<Vec<Id>>,
    /// This replica's index in `replicas`.
    pub me: usize,
    /// Protocol parameters.
    pub params: Params,
    /// Model-only settings ([`ModelSwitches::default`] at run time).
    pub switches: ModelSwitches,
}

impl ReplicaConfig {
    /// Number of replicas.
    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    /// Quorum size: floor(n/2)+1.
    pub fn quorum(&self) -> usize {
        self.n() / 2 + 1
    }

    /// The index of a replica id, if it is one.
    pub(crate) fn index_of(&self, id: Id) -> Option<u32> {
        self.replicas
            .iter()
            .position(|&r| r == id)
            .map(|i| i as u32)
    }
}

/// Milestones a replica has passed, kept so that the checker can show that the bounded model
/// reaches the interesting mechanisms (and so an operator can see them). Each is a single bit.
///
/// They are left out of the state's hash (see the `Hash` impl below), so every checker, ours and
/// stateright's, identifies two states that differ only by them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Milestones {
    /// Answered a retransmitted request from the session table, while not the view's leader
    /// (the leader's cached reply is the very message it sent at execution; see `process_msg`).
    pub served_from_cache: bool,
    /// Caught up through state transfer.
    pub state_transfer: bool,
    /// Refused a request from a client whose session expired.
    pub session_expired: bool,
}

/// Hashes nothing. No step reads a milestone (they are only set), and only `sometimes`
/// properties do, so two states that differ only by milestones take the same steps to states
/// that again differ only by them, and every `always` and `eventually` verdict is the same on
/// both. Checkers identify states by their hash, so they now visit one of the two; yet the
/// milestones split a quarter of the states of the default check's ninth configuration (484 K
/// states against 360 K) and a fifth of the three-replica view change's. Left so, a
/// step that sets only a milestone is a self-loop of the view, whose state is never a new
/// state: our engine judges the open `sometimes` properties on every successor it computes
/// (`Search::judge_step` in `src/check/engine.rs`), so such a mark is still reached. Nothing
/// here can read "reached" falsely, nor hide a violation, and the tests require every such
/// property reached where it was before. The lasso checker makes no edge of a step that only
/// sets a mark (see "twins" in `check::lasso`). Equality still compares them, consistent with
/// this hash (equal states hash equal).
impl std::hash::Hash for Milestones {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A replica's whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicaState<A: App> {
    /// Proposer (leader) state.
    pub proposer: Proposer<A>,
    /// Acceptor state.
    pub acceptor: Acceptor<A>,
    /// Learner state.
    pub learner: Learner<A>,
    /// Executor state.
    pub executor: Executor<A>,
    /// Election state.
    pub election: Election,
    /// Milestones passed.
    pub milestones: Milestones,
    /// The content of the last heartbeat sent: (view, suspicious, checkpoint).
    pub last_heartbeat: (Ballot, bool, OpNum),
    /// A state transfer under way: the chunks of a snapshot received so far.
    pub transfer: Option<Transfer>,
    /// Ghost: how many times this replica restarted from storage, counted only where a model
    /// bounds the crashes of a whole run ([`ModelSwitches::counts_restarts`]); 0 otherwise.
    /// No step reads it. It rides in the storage ([`ReplicaStorage::restarts`]) so that the
    /// model's boundary can count the crashes of every replica, down or up.
    pub restarts: u8,
}

/// What a replica saves to stable storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct ReplicaStorage<A: App> {
    /// Acceptor: highest ballot promised.
    pub max_bal: Option<Ballot>,
    /// Acceptor: votes.
    pub votes: Votes<A>,
    /// Acceptor: log truncation point.
    pub log_truncation_point: OpNum,
    /// Proposer: highest ballot it sent a 1a for.
    pub max_ballot_sent_1a: Option<Ballot>,
    /// Executor: slots executed.
    pub ops_complete: OpNum,
    /// Executor: app state.
    pub app_state: Arc<A::State>,
    /// Executor: client session table.
    pub sessions: super::types::Sessions<A>,
    /// Ghost: [`ReplicaState::restarts`]. Never written to disk (`serde(skip)`): the on-disk
    /// format is the runtime's, which counts nothing, and a restored replica reads 0.
    #[serde(skip)]
    pub restarts: u8,
}

/// See [`Replica::durable_version`].
type DurableVersion<A> = (Option<Ballot>, Votes<A>, OpNum, Option<Ballot>, OpNum);

/// The replica actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replica<A: App> {
    /// Its configuration.
    pub cfg: Arc<ReplicaConfig>,
    _app: PhantomData<A>,
}

impl<A: App> Replica<A> {
    /// A replica with this configuration.
    pub fn new(cfg: ReplicaConfig) -> Self {
        Replica {
            cfg: Arc::new(cfg),
            _app: PhantomData,
        }
    }

    fn me(&self) -> u32 {
        self.cfg.me as u32
    }

    fn params(&self) -> &Params {
        &self.cfg.params
    }

    fn switches(&self) -> &ModelSwitches {
        &self.cfg.switches
    }

    fn epoch_timer(&self, s: &ReplicaState<A>) -> std::ops::Range<Duration> {
        let d = Duration::from_millis(s.election.epoch_length_ms);
        d..d
    }

    fn others(&self) -> impl Iterator<Item = &Id> {
        let me = self.cfg.me;
        self.cfg
            .replicas
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != me)
            .map(|(_, id)| id)
    }

    fn storage(s: &ReplicaState<A>) -> ReplicaStorage<A> {
        ReplicaStorage {
            max_bal: s.acceptor.max_bal,
            votes: s.acceptor.votes.clone(),
            log_truncation_point: s.acceptor.log_truncation_point,
            max_ballot_sent_1a: s.proposer.max_ballot_sent_1a,
            ops_complete: s.executor.ops_complete,
            app_state: s.executor.app_state.clone(),
            sessions: s.executor.sessions.clone(),
            restarts: s.restarts,
        }
    }

    /// The parts of the durable state that identify a change to it: the acceptor's, the
    /// proposer's 1a ballot, and `ops_complete` (the executor's app state and session table change
    /// only together with it: by executing a batch, or by a state transfer to a later slot).
    fn durable_version(s: &ReplicaState<A>) -> DurableVersion<A> {
        (
            s.acceptor.max_bal,
            s.acceptor.votes.clone(),
            s.acceptor.log_truncation_point,
            s.proposer.max_ballot_sent_1a,
            s.executor.ops_complete,
        )
    }

    /// Forgets requests the executor settled (executed, or refused as expired): the election
    /// stops counting them against the leader, and the proposer's per-client dedup entries go,
    /// so both stay bounded by the requests in flight rather than by every client ever seen.
    fn forget_settled(&self, s: &mut ReplicaState<A>) {
        let ex = &s.executor;
        s.election.forget_executed(|c, q| ex.is_settled(c, q));
        s.proposer.forget_settled(|c, q| ex.is_settled(c, q));
    }

    /// Sends a heartbeat to the other replicas. With `eager_heartbeats`, only when its content
    /// changed since the last one.
    fn send_heartbeat(&self, s: &mut ReplicaState<A>, o: &mut Out<Self>) {
        let ckpt = if self.switches().report_checkpoints {
            s.executor.ops_complete
        } else {
            0
        };
        let content = (s.election.view, s.election.suspicious(self.me()), ckpt);
        if content == s.last_heartbeat && self.switches().eager_heartbeats {
            return;
        }
        s.last_heartbeat = content;
        let hb = RslMsg::Heartbeat {
            bal: content.0,
            suspicious: content.1,
            opn_ckpt: content.2,
        };
        o.broadcast(self.others(), &hb);
    }

    /// In phase 1, sends the 1a again to the replicas whose 1b has not arrived: a 1a or 1b lost
    /// on a real network (a peer not yet listening at start-up) would otherwise hold the view
    /// until the next view change. A duplicate of a message already sent, so safety is untouched;
    /// an acceptor answers it with its 1b again. Found by the bounded liveness checker: without
    /// the second half, one lost 1b left a lossy model stuck for ever.
    fn resend_1a(&self, s: &ReplicaState<A>, o: &mut Out<Self>) {
        if !self.switches().repair_lost_votes() || s.proposer.phase != Phase::Phase1 {
            return;
        }
        let Some(bal) = s.proposer.max_ballot_sent_1a else {
            return;
        };
        for (i, id) in self.cfg.replicas.iter().enumerate() {
            if i != self.cfg.me && !s.proposer.received_1b.contains_key(&(i as u32)) {
                o.send(*id, RslMsg::OneA { bal });
            }
        }
    }

    /// In phase 2 with `repair_lost_votes`, sends the 2a of every slot this leader proposed that
    /// is still not executed here: a lost 2a or 2b would otherwise hold the slot, and with it the
    /// whole log, until the next view change. A duplicate of a 2a already sent.
    fn resend_undecided_2a(&self, s: &ReplicaState<A>, o: &mut Out<Self>) {
        if !self.switches().repair_lost_votes()
            || s.proposer.phase != Phase::Phase2
            || s.proposer.max_ballot_sent_1a != Some(s.election.view)
        {
            return;
        }
        let view = s.election.view;
        // After a state transfer the executor can be ahead of what this leader proposed.
        let undecided = s.executor.ops_complete..s.proposer.next_opn.max(s.executor.ops_complete);
        for (&opn, vote) in s.acceptor.votes.range(undecided) {
            if vote.bal == view {
                let twoa = RslMsg::TwoA {
                    bal: view,
                    opn,
                    batch: vote.batch.clone(),
                };
                o.broadcast(self.others(), &twoa);
            }
        }
        self.resend_decided_votes(s, o);
    }

    /// Sends a follower that reported a checkpoint below what this leader executed the 2a (if
    /// of this view) and this replica's own 2b of every such slot still in the log: a follower
    /// that lost the leader's 2b of a slot the leader already executed cannot decide it, and the
    /// slots above it stay undecided there too. `resend_undecided_2a` does not cover it (the
    /// slot is decided at the leader), and neither does state transfer (the slot is not below
    /// the truncation point). With one replica of three down for good the log then stalls: the
    /// truncation point needs this follower's checkpoint, and the leader's log window is full.
    /// Found by the simulator (`rsl sim`, seed 798). Duplicates of messages already sent, so
    /// safety is untouched; at most `max_log_length` slots per follower per heartbeat.
    fn resend_decided_votes(&self, s: &ReplicaState<A>, o: &mut Out<Self>) {
        if !self.switches().report_checkpoints {
            return;
        }
        let view = s.election.view;
        let done = s.executor.ops_complete;
        for (i, id) in self.cfg.replicas.iter().enumerate() {
            if i == self.cfg.me {
                continue;
            }
            let from = s
                .acceptor
                .last_checkpointed
                .get(i)
                .copied()
                .unwrap_or(0)
                .max(s.acceptor.log_truncation_point);
            if from >= done {
                continue;
            }
            for (&opn, vote) in s.acceptor.votes.range(from..done) {
                let batch = vote.batch.clone();
                if vote.bal == view {
                    o.send(
                        *id,
                        RslMsg::TwoA {
                            bal: view,
                            opn,
                            batch: batch.clone(),
                        },
                    );
                }
                o.send(
                    *id,
                    RslMsg::TwoB {
                        bal: vote.bal,
                        opn,
                        batch,
                    },
                );
            }
        }
    }

    /// Whether `msg` from `src` can never change this replica again: delivering it now changes
    /// nothing, and so it stays in every state the replica can reach from `s`, through crashes
    /// and restarts too. A model's checker leaves such messages out of the states it tells
    /// apart (`GhostHistory::spent`): on a duplicating network every message sent stays
    /// deliverable for ever, and old 1a, 1b and heartbeat messages that no replica can use any
    /// more would otherwise split states that behave alike.
    ///
    /// The argument rests on what only grows: the promised ballot and the highest 1a ballot
    /// sent are durable and only grow, so the view a restart rejoins at (the higher of them)
    /// only grows, and while the replica is up its view only grows. So no later view is below
    /// `floor`, the lower of the current view and the view a restart would rejoin at.
    /// * A 1a at or below the promise is refused (with vote repair, a 1a equal to it is
    ///   answered again, so only one below it is spent).
    /// * A 1b counts only in phase 1 of its own ballot, once per acceptor, and a proposer enters
    ///   phase 1 only for a ballot above the highest it sent a 1a for: a 1b below that, or of
    ///   that ballot once phase 1 is over or its sender counted, never counts again.
    /// * A heartbeat with no checkpoint in it acts only on the view: it raises the view when
    ///   above it, and counts a suspicion of the view it names. One below `floor`, or at it and
    ///   not suspicious, does neither ever again.
    ///
    /// Other messages are never spent here (2a and 2b messages gain nothing: the ghost
    /// history records every one sent, so they split no states the history does not). No
    /// mutation touches the handlers this rests on (`tests/rsl_spent.rs` checks the argument
    /// on random walks under each of them).
    pub fn spent(&self, s: &ReplicaState<A>, src: Id, msg: &RslMsg<A>) -> bool {
        let sw = self.switches();
        let Some(from) = self.cfg.index_of(src) else {
            return false;
        };
        let max_bal = s.acceptor.max_bal;
        let max_1a = s.proposer.max_ballot_sent_1a;
        match msg {
            RslMsg::OneA { bal } => {
                if sw.repair_lost_votes() {
                    Some(*bal) < max_bal
                } else {
                    Some(*bal) <= max_bal
                }
            }
            RslMsg::OneB { bal, .. } => {
                let phase1 = s.proposer.phase == Phase::Phase1;
                let counted = s.proposer.received_1b.contains_key(&from);
                Some(*bal) < max_1a || (Some(*bal) == max_1a && (!phase1 || counted))
            }
            RslMsg::Heartbeat {
                bal,
                suspicious,
                opn_ckpt: 0,
            } => {
                let rejoin = max_bal
                    .max(max_1a)
                    .unwrap_or_else(|| Ballot::of_view(0, self.cfg.n()));
                let floor = s.election.view.min(rejoin);
                *bal < floor || (*bal == floor && !suspicious)
            }
            _ => false,
        }
    }

    fn my_id(&self) -> Id {
        self.cfg.replicas[self.cfg.me]
    }

    /// Sends `msg` to `dst`; a message to itself is processed at once, inside this step (the
    /// proposer, acceptor and learner of one replica share a process, so IronRSL's reduction
    /// argument makes the local hop atomic, and the model saves the interleavings).
    fn send(&self, s: &mut ReplicaState<A>, dst: Id, msg: RslMsg<A>, o: &mut Out<Self>) {
        if dst == self.my_id() {
            self.process_msg(s, dst, msg, o);
        } else {
            o.send(dst, msg);
        }
    }

    /// Sends `msg` to every replica, itself included (processed at once).
    fn broadcast_all(&self, s: &mut ReplicaState<A>, msg: RslMsg<A>, o: &mut Out<Self>) {
        o.broadcast(self.others(), &msg);
        self.process_msg(s, self.my_id(), msg, o);
    }

    /// Handles one message (without the periodic actions).
    // The arms test the result of a state-changing call, which cannot move into a match guard.
    #[allow(clippy::collapsible_match)]
    fn process_msg(&self, s: &mut ReplicaState<A>, src: Id, msg: RslMsg<A>, o: &mut Out<Self>) {
        let params = self.params();
        let sw = self.switches();
        let from = self.cfg.index_of(src);
        match (msg, from) {
            (RslMsg::Request { seqno, op }, None) => {
                match s.executor.sessions.lookup(src, seqno) {
                    Lookup::Executed(cached) => {
                        if let Some(reply) = cached {
                            let reply = reply.clone();
                            o.send(src, RslMsg::Reply { seqno, reply });
                            // Only a replica other than the view's leader marks it: the
                            // leader's cached reply repeats the one it sent when it executed
                            // the request (the same message), which is not the mechanism the
                            // milestone shows. (Milestones cost no model states: they hash to
                            // nothing, see `Milestones`.)
                            if s.election.view.proposer != self.me() {
                                s.milestones.served_from_cache = true;
                            }
                        }
                        return;
                    }
                    Lookup::Expired { watermark } if !sw.has(Mutation::ExecuteExpired) => {
                        o.send(src, RslMsg::SessionExpired { seqno, watermark });
                        s.milestones.session_expired = true;
                        return;
                    }
                    _ => {}
                }
                s.election.saw_request(params, sw, self.me(), src, seqno);
                let req = Request {
                    client: src,
                    seqno,
                    op,
                };
                s.proposer.queue_request(params, req);
            }
            (RslMsg::OneA { bal }, Some(_)) => {
                // A 1a for the ballot already promised is a resend (`resend_1a`): the 1b was
                // lost, so answer again (`ModelSwitches::repair_lost_votes`).
                let again = sw.repair_lost_votes() && s.acceptor.max_bal == Some(bal);
                if s.acceptor.process_1a(bal) || again {
                    let oneb = RslMsg::OneB {
                        bal,
                        log_truncation_point: s.acceptor.log_truncation_point,
                        votes: s.acceptor.votes.clone(),
                    };
                    self.send(s, src, oneb, o);
                }
            }
            (
                RslMsg::OneB {
                    bal,
                    log_truncation_point,
                    votes,
                },
                Some(idx),
            ) => {
                s.proposer
                    .process_1b(params, idx, bal, log_truncation_point, &votes);
            }
            (
                RslMsg::StartingPhase2 {
                    log_truncation_point,
                    ..
                },
                Some(_),
            ) => {
                if log_truncation_point > s.executor.ops_complete {
                    let req = RslMsg::AppStateRequest {
                        bal: s.election.view,
                        opn: log_truncation_point,
                    };
                    o.broadcast(self.others(), &req);
                }
            }
            (RslMsg::TwoA { bal, opn, batch }, Some(_)) => {
                match s.acceptor.process_2a(params, sw, bal, opn, &batch) {
                    TwoAOutcome::Accepted => {
                        self.broadcast_all(s, RslMsg::TwoB { bal, opn, batch }, o)
                    }
                    // The leader resends a 2a when the slot stays undecided: some 2a or 2b was
                    // lost, so vote again (`ModelSwitches::repair_lost_votes`).
                    TwoAOutcome::Duplicate if sw.repair_lost_votes() => {
                        o.broadcast(self.others(), &RslMsg::TwoB { bal, opn, batch })
                    }
                    _ => {}
                }
            }
            (RslMsg::TwoB { bal, opn, batch }, Some(idx)) => {
                let done = s.executor.ops_complete;
                s.learner.process_2b(params, idx, bal, opn, &batch, done);
            }
            (
                RslMsg::Heartbeat {
                    bal,
                    suspicious,
                    opn_ckpt,
                },
                Some(idx),
            ) => {
                s.acceptor.record_checkpoint(idx as usize, opn_ckpt);
                s.election.reflect_heartbeat(idx, bal, suspicious);
                // Behind what a quorum executed (so the decisions we miss may be truncated
                // everywhere) and the sender has it: ask for the state.
                let ltp = s.acceptor.quorum_checkpoint(sw, self.cfg.quorum());
                if ltp > s.executor.ops_complete && opn_ckpt >= ltp {
                    o.send(
                        src,
                        RslMsg::AppStateRequest {
                            bal: s.election.view,
                            opn: ltp,
                        },
                    );
                }
            }
            (RslMsg::AppStateRequest { opn, .. }, Some(_)) => {
                if opn > 0 && s.executor.ops_complete >= opn {
                    let e = &s.executor;
                    for chunk in transfer::chunks::<A>(
                        e.ops_complete,
                        &e.app_state,
                        &e.sessions,
                        params.state_chunk_bytes,
                    ) {
                        let bal = s.election.view;
                        o.send(src, RslMsg::AppStateChunk { bal, chunk });
                    }
                }
            }
            (RslMsg::AppStateChunk { chunk, .. }, Some(_)) => {
                let done = s.executor.ops_complete;
                if let Some(snapshot) = transfer::receive::<A>(&mut s.transfer, done, chunk) {
                    let opn = snapshot.opn;
                    assert!(
                        opn > s.executor.ops_complete,
                        "a transfer only moves forward"
                    );
                    s.executor.ops_complete = opn;
                    s.executor.app_state = snapshot.app_state;
                    s.executor.sessions = snapshot.sessions;
                    s.learner.forget_below(opn);
                    self.forget_settled(s);
                    s.milestones.state_transfer = true;
                }
            }
            // Replies are for clients; anything else from an unexpected sender is ignored.
            _ => {}
        }
    }

    /// The periodic actions, run after every event.
    fn periodic(&self, s: &mut ReplicaState<A>, o: &mut Out<Self>, batch_timer_fired: bool) {
        let params = self.params();
        let sw = self.switches();
        let quorum = self.cfg.quorum();
        let n = self.cfg.n();

        // Check for a quorum of view suspicions.
        if s.election.check_quorum_of_suspicions(params, sw, n) {
            o.set_timer(RslTimer::Epoch, self.epoch_timer(s));
        }
        s.election.forget_seen_if_unread(sw, self.me());

        // Step down when the view moved on; maybe enter a new view and send 1a.
        let view = s.election.view;
        if s.proposer.phase != Phase::Idle && s.proposer.max_ballot_sent_1a != Some(view) {
            s.proposer.reset();
        }
        if view.proposer == self.me()
            && s.proposer.phase == Phase::Idle
            && Some(view) > s.proposer.max_ballot_sent_1a
        {
            s.proposer.start_phase1(view);
            self.broadcast_all(s, RslMsg::OneA { bal: view }, o);
        }

        // Maybe enter phase 2.
        if let Some(start) = s.proposer.enter_phase2(sw, quorum) {
            o.broadcast(
                self.others(),
                &RslMsg::StartingPhase2 {
                    bal: view,
                    log_truncation_point: start.log_truncation_point,
                },
            );
            // The 1b quorum truncated its logs beyond what this leader executed: the slots in
            // between are decided but gone from every log it will hear from, so it asks for the
            // state, as a follower does on a StartingPhase2. Without it a leader behind the
            // quorum waited for ever (found by the simulator, `rsl sim --duration 5s --ops 100`
            // seed 737: the replica whose checkpoint allowed the truncation was down for good,
            // so the leader's own quorum checkpoint never showed it was behind).
            if start.log_truncation_point > s.executor.ops_complete {
                o.broadcast(
                    self.others(),
                    &RslMsg::AppStateRequest {
                        bal: view,
                        opn: start.log_truncation_point,
                    },
                );
            }
            for (opn, batch) in start.proposals {
                let twoa = RslMsg::TwoA {
                    bal: view,
                    opn,
                    batch,
                };
                self.broadcast_all(s, twoa, o);
            }
        }

        // Maybe nominate batches: a full one, an incomplete one when the batch timer fired, or
        // an incomplete one at once when the pipeline is idle (`Params::propose_when_idle`).
        let idle = params.propose_when_idle && s.proposer.next_opn <= s.executor.ops_complete;
        let mut force = batch_timer_fired || idle;
        if batch_timer_fired {
            s.proposer.batch_timer_armed = false;
        }
        while let Some((opn, batch)) =
            s.proposer
                .nominate(params, s.acceptor.log_truncation_point, force)
        {
            force = false;
            let twoa = RslMsg::TwoA {
                bal: view,
                opn,
                batch,
            };
            self.broadcast_all(s, twoa, o);
        }
        // The incomplete-batch timer runs while requests wait in the queue.
        let wants_timer = s.proposer.phase == Phase::Phase2 && !s.proposer.request_queue.is_empty();
        if wants_timer && !s.proposer.batch_timer_armed {
            o.set_timer(RslTimer::Batch, params.batch_delay());
            s.proposer.batch_timer_armed = true;
        } else if !wants_timer && s.proposer.batch_timer_armed {
            o.cancel_timer(RslTimer::Batch);
            s.proposer.batch_timer_armed = false;
        }

        // Make decisions and execute them in order.
        while let Some(batch) = s
            .learner
            .decided(sw, quorum, s.executor.ops_complete)
            .cloned()
        {
            // The view's leader answers; the others answer retransmissions from their tables.
            let outcomes = s.executor.execute(params, sw, &batch);
            if s.election.view.proposer == self.me() {
                for (client, seqno, outcome) in outcomes {
                    let msg = match outcome {
                        Outcome::Reply(reply) => RslMsg::Reply { seqno, reply },
                        Outcome::Expired(watermark) => {
                            s.milestones.session_expired = true;
                            RslMsg::SessionExpired { seqno, watermark }
                        }
                    };
                    o.send(client, msg);
                }
            }
            s.learner.forget_below(s.executor.ops_complete);
            let ex = &s.executor;
            s.election.forget_executed(|c, q| ex.is_settled(c, q));
            s.proposer.forget_executed_batch(&batch);
        }
        // A snapshot no later than what we executed ourselves is of no more use.
        if s.transfer
            .as_ref()
            .is_some_and(|t| t.opn <= s.executor.ops_complete)
        {
            s.transfer = None;
        }

        // Record our own checkpoint and truncate the log.
        if sw.report_checkpoints {
            s.acceptor
                .record_checkpoint(self.cfg.me, s.executor.ops_complete);
            s.acceptor.truncate(sw, quorum);
        }

        if sw.eager_heartbeats {
            self.send_heartbeat(s, o);
        } else if sw.report_checkpoints
            && s.executor.ops_complete
                >= s.last_heartbeat
                    .2
                    .saturating_add((params.max_log_length / 2).max(1))
        {
            // Report a checkpoint half a log window past the last one at once rather than at
            // the next heartbeat: the leader may not propose beyond the quorum's truncation
            // point + max_log_length, so with the original's window of 7 slots and 100 ms
            // heartbeats the pipeline would stall at 70 batches a second.
            self.send_heartbeat(s, o);
        }
    }

    /// Runs one event on a copy of the state, then the periodic actions; keeps the copy only if
    /// something changed, and saves the durable part if it changed.
    ///
    /// A runtime that owns its state passes `Cow::Owned` and the step runs in place: cloning the
    /// whole state per packet (per-client maps included) is what a model checker needs to detect
    /// no-ops, not what a server can afford.
    fn step(
        &self,
        state: &mut Cow<ReplicaState<A>>,
        o: &mut Out<Self>,
        event: impl FnOnce(&mut ReplicaState<A>, &mut Out<Self>) -> bool,
    ) {
        if let Cow::Owned(s) = state {
            // What would tell a durable change, without holding the executor's maps: holding
            // them (as a full `storage` snapshot would) makes the step's first write to the app
            // state and to the session table (one entry per client) copy them whole, on every
            // executed batch. They change only when `ops_complete` does, so it stands for them;
            // the votes are few (at most `max_log_length`) and are compared as they are.
            let before = Self::durable_version(s);
            let batch_timer_fired = event(s, o);
            self.periodic(s, o, batch_timer_fired);
            if Self::durable_version(s) != before {
                o.save(Self::storage(s));
            }
            return;
        }
        let mut s = (**state).clone();
        let batch_timer_fired = event(&mut s, o);
        self.periodic(&mut s, o, batch_timer_fired);
        if s != **state {
            let before = Self::storage(state);
            let after = Self::storage(&s);
            if before != after {
                o.save(after);
            }
            *state = Cow::Owned(s);
        }
    }
}

impl<A: App> Actor for Replica<A> {
    type Msg = RslMsg<A>;
    type Timer = RslTimer;
    type State = ReplicaState<A>;
    type Storage = ReplicaStorage<A>;
    type Random = ();

    fn name(&self) -> String {
        format!("replica {}", self.cfg.me)
    }

    fn on_start(&self, _id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> Self::State {
        let params = self.params();
        let n = self.cfg.n();
        let mut s = ReplicaState {
            proposer: Proposer::default(),
            acceptor: Acceptor::new(n),
            learner: Learner::default(),
            executor: Executor::default(),
            election: Election::new(params, n),
            milestones: Milestones::default(),
            last_heartbeat: (Ballot::default(), false, 0),
            transfer: None,
            restarts: 0,
        };
        // A model that counts restarts saves at every start: a restart's count must reach the
        // storage, and a replica must have storage from its first start on, or a crash before
        // its first save would restart it from nothing, uncounted (stateright starts it the same
        // way as at the beginning).
        let counts = self.switches().counts_restarts;
        if let Some(st) = storage {
            if counts {
                // The model's boundary stops a run long before 255 restarts; saturating keeps
                // even a boundless model from overflowing.
                s.restarts = st.restarts.saturating_add(1);
            }
            s.acceptor.max_bal = st.max_bal;
            if !self.switches().has(Mutation::ForgetVotesOnRestart) {
                s.acceptor.votes = st.votes.clone();
            }
            s.acceptor.log_truncation_point = st.log_truncation_point;
            s.proposer.max_ballot_sent_1a = st.max_ballot_sent_1a;
            s.executor.ops_complete = st.ops_complete;
            s.executor.app_state = st.app_state.clone();
            s.executor.sessions = st.sessions.clone();
            // Rejoin at the highest view we know of; its leader is not us if we sent its 1a.
            let known = st.max_bal.max(st.max_ballot_sent_1a);
            if let Some(b) = known {
                s.election.view = b;
            }
            s.last_heartbeat = (s.election.view, false, 0);
        }
        if !self.switches().eager_heartbeats {
            o.set_timer(RslTimer::Heartbeat, params.heartbeat_period());
        }
        o.set_timer(RslTimer::Epoch, self.epoch_timer(&s));
        let before = Self::storage(&s);
        self.periodic(&mut s, o, false);
        let after = Self::storage(&s);
        if after != before || counts {
            o.save(after);
        }
        s
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: Self::Msg,
        o: &mut Out<Self>,
    ) {
        self.step(state, o, |s, o| {
            self.process_msg(s, src, msg, o);
            false
        });
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<Self::State>,
        timer: &Self::Timer,
        o: &mut Out<Self>,
    ) {
        match timer {
            RslTimer::Heartbeat => {
                if self.switches().eager_heartbeats {
                    return;
                }
                self.step(state, o, |s, o| {
                    self.send_heartbeat(s, o);
                    self.resend_1a(s, o);
                    self.resend_undecided_2a(s, o);
                    false
                });
                o.set_timer(RslTimer::Heartbeat, self.params().heartbeat_period());
            }
            RslTimer::Epoch => {
                self.step(state, o, |s, o| {
                    if s.election
                        .end_epoch(self.params(), self.switches(), self.me())
                    {
                        self.send_heartbeat(s, o);
                    }
                    false
                });
                o.set_timer(RslTimer::Epoch, self.epoch_timer(state));
            }
            RslTimer::Batch => self.step(state, o, |_, _| true),
            RslTimer::Retransmit => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::rsl::app::{Counter, CounterOp};

    /// Replica 2 of three in a model bounded at one view change.
    fn follower() -> Replica<Counter> {
        Replica::new(ReplicaConfig {
            replicas: Arc::new((0..3).map(Id::from).collect()),
            me: 2,
            params: Params::default(),
            switches: ModelSwitches {
                max_view: Some(1),
                eager_heartbeats: true,
                timeless: true,
                ..ModelSwitches::default()
            },
        })
    }

    fn deliver(
        r: &Replica<Counter>,
        s: &ReplicaState<Counter>,
        src: usize,
        msg: RslMsg<Counter>,
    ) -> ReplicaState<Counter> {
        let mut state = Cow::Borrowed(s);
        r.on_msg(Id::from(2), &mut state, Id::from(src), msg, &mut Out::new());
        state.into_owned()
    }

    /// A replica that saw a request in view 0 and then reached the last view a model allows
    /// keeps nothing of it: in that view no epoch end can make it suspect, and an epoch end
    /// (which used to be what cleared it) changes nothing. The request it saw used to stay until
    /// that epoch end and split the states in two.
    #[test]
    fn a_replica_in_the_last_view_of_a_model_keeps_no_requests_seen() {
        let r = follower();
        let s = r.on_start(Id::from(2), &None, &mut Out::new());
        let request = RslMsg::Request {
            seqno: 1,
            op: CounterOp::Inc,
        };
        let s = deliver(&r, &s, 3, request);
        assert!(
            !s.election.seen_prev_epochs.is_empty(),
            "view 0: the request counts"
        );
        let view_1 = Ballot::of_view(1, 3);
        let heartbeat = RslMsg::Heartbeat {
            bal: view_1,
            suspicious: false,
            opn_ckpt: 0,
        };
        let s = deliver(&r, &s, 1, heartbeat);
        assert_eq!(s.election.view, view_1);
        assert!(s.election.seen_prev_epochs.is_empty() && s.election.seen_this_epoch.is_empty());
        let mut after_epoch = Cow::Borrowed(&s);
        r.on_timeout(
            Id::from(2),
            &mut after_epoch,
            &RslTimer::Epoch,
            &mut Out::new(),
        );
        assert_eq!(
            *after_epoch, s,
            "an epoch end in the last view changes nothing"
        );
    }

    /// The saves of a restart, from `storage`, under `switches`.
    fn restart_saves(
        switches: ModelSwitches,
        storage: &ReplicaStorage<Counter>,
    ) -> Vec<ReplicaStorage<Counter>> {
        let r = Replica::<Counter>::new(ReplicaConfig {
            replicas: Arc::new((0..3).map(Id::from).collect()),
            me: 1,
            params: Params::default(),
            switches,
        });
        let mut out = Out::new();
        let s = r.on_start(Id::from(1), &Some(storage.clone()), &mut out);
        let saves: Vec<_> = out
            .into_iter()
            .filter_map(|c| match c {
                stateright::actor::Command::Save(st) => Some(st),
                _ => None,
            })
            .collect();
        if let Some(last) = saves.last() {
            assert_eq!(last.restarts, s.restarts, "the state and its storage agree");
        }
        saves
    }

    /// In a model that bounds all crashes a restart is counted and saved (the model's boundary
    /// reads the storage); the runtime's replicas count nothing and save nothing for it; and the
    /// count never reaches the bytes on disk, so the runtime's format is what it was.
    #[test]
    fn restarts_are_counted_only_where_a_model_asks_and_never_written_to_disk() {
        let first = Replica::<Counter>::new(ReplicaConfig {
            replicas: Arc::new((0..3).map(Id::from).collect()),
            me: 1,
            params: Params::default(),
            switches: ModelSwitches::default(),
        })
        .on_start(Id::from(1), &None, &mut Out::new());
        let stored = Replica::<Counter>::storage(&first);
        assert_eq!(stored.restarts, 0);
        let counting = ModelSwitches {
            counts_restarts: true,
            ..ModelSwitches::default()
        };
        let saves = restart_saves(counting.clone(), &stored);
        assert_eq!(saves.last().map(|s| s.restarts), Some(1));
        let again = restart_saves(counting, saves.last().unwrap());
        assert_eq!(again.last().map(|s| s.restarts), Some(2));
        let runtime = restart_saves(ModelSwitches::default(), &stored);
        assert!(runtime.iter().all(|s| s.restarts == 0), "{runtime:?}");

        let counted = again.last().unwrap().clone();
        let bytes = postcard::to_allocvec(&counted).unwrap();
        let uncounted = ReplicaStorage {
            restarts: 0,
            ..counted
        };
        assert_eq!(bytes, postcard::to_allocvec(&uncounted).unwrap());
        let back: ReplicaStorage<Counter> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, uncounted);
    }
}
