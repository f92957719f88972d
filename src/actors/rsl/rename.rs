//! Renaming actor ids in RSL states, messages and storage (stateright's [`Rewrite`] over
//! [`Id`]), for symmetry reduction over clients: a checker identifies a state with the one in
//! which two interchangeable clients swapped ids everywhere.
//!
//! What is renamed: every client id the protocol keeps (requests in queues, batches, votes and
//! messages; the session table; the election's pending requests; the proposer's per-client
//! sequence numbers). What is not: replica indices (`Ballot::proposer`, vote senders), which a
//! client renaming never touches, and the app's operations, replies and state, which name no
//! client in any app here.
//!
//! Where the protocol is *not* symmetric in clients, a renaming would be unsound, and the
//! model refuses symmetry there rather than rename: the bounded session table evicts the
//! session with the lowest (sequence number, client id), a tie broken by id; and a state
//! transfer carries the session table serialised, so its chunks cannot be renamed (the
//! assertions below say so if a checker ever tries).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stateright::actor::Id;
use stateright::{Rewrite, RewritePlan};

use super::acceptor::Acceptor;
use super::app::App;
use super::client::ClientState;
use super::election::Election;
use super::executor::Executor;
use super::learner::Learner;
use super::node::RslNodeState;
use super::proposer::Proposer;
use super::replica::{ReplicaState, ReplicaStorage};
use super::types::{Ballot, Batch, Request, RslMsg, RslTimer, Vote, Votes};

impl<R> Rewrite<R> for Ballot {
    fn rewrite<S>(&self, _: &RewritePlan<R, S>) -> Self {
        *self
    }
}

impl<R> Rewrite<R> for RslTimer {
    fn rewrite<S>(&self, _: &RewritePlan<R, S>) -> Self {
        *self
    }
}

impl<A: App> Rewrite<Id> for Request<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Request {
            client: plan.rewrite(&self.client),
            seqno: self.seqno,
            op: self.op.clone(),
        }
    }
}

fn batch<A: App, S>(b: &Batch<A>, plan: &RewritePlan<Id, S>) -> Batch<A> {
    Arc::new(b.iter().map(|r| r.rewrite(plan)).collect())
}

impl<A: App> Rewrite<Id> for Vote<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Vote {
            bal: self.bal,
            batch: batch(&self.batch, plan),
        }
    }
}

fn votes<A: App, S>(v: &Votes<A>, plan: &RewritePlan<Id, S>) -> Votes<A> {
    Arc::new(v.iter().map(|(o, v)| (*o, v.rewrite(plan))).collect())
}

impl<A: App> Rewrite<Id> for RslMsg<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            RslMsg::OneB {
                bal,
                log_truncation_point,
                votes: v,
            } => RslMsg::OneB {
                bal: *bal,
                log_truncation_point: *log_truncation_point,
                votes: votes(v, plan),
            },
            RslMsg::TwoA { bal, opn, batch: b } => RslMsg::TwoA {
                bal: *bal,
                opn: *opn,
                batch: batch(b, plan),
            },
            RslMsg::TwoB { bal, opn, batch: b } => RslMsg::TwoB {
                bal: *bal,
                opn: *opn,
                batch: batch(b, plan),
            },
            RslMsg::AppStateChunk { .. } => {
                panic!("a state-transfer chunk carries client ids serialised: no renaming")
            }
            // The rest name no client (the envelope's source and destination do).
            other => other.clone(),
        }
    }
}

impl<A: App> Rewrite<Id> for Proposer<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Proposer {
            phase: self.phase,
            max_ballot_sent_1a: self.max_ballot_sent_1a,
            request_queue: self.request_queue.iter().map(|r| r.rewrite(plan)).collect(),
            received_1b: self
                .received_1b
                .iter()
                .map(|(i, (ltp, v))| (*i, (*ltp, votes(v, plan))))
                .collect(),
            next_opn: self.next_opn,
            highest_seqno_requested: self.highest_seqno_requested.rewrite(plan),
            batch_timer_armed: self.batch_timer_armed,
        }
    }
}

impl<A: App> Rewrite<Id> for Acceptor<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Acceptor {
            max_bal: self.max_bal,
            votes: votes(&self.votes, plan),
            log_truncation_point: self.log_truncation_point,
            last_checkpointed: self.last_checkpointed.clone(),
        }
    }
}

impl<A: App> Rewrite<Id> for Learner<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Learner {
            max_ballot_seen: self.max_ballot_seen,
            pending: self
                .pending
                .iter()
                .map(|(o, (voters, b))| (*o, (voters.clone(), batch(b, plan))))
                .collect(),
        }
    }
}

impl<A: App> Rewrite<Id> for Executor<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Executor {
            ops_complete: self.ops_complete,
            app_state: self.app_state.clone(),
            sessions: self.sessions.rewrite(plan),
        }
    }
}

fn pending(set: &BTreeSet<(Id, u64)>, plan: &RewritePlan<Id, impl Sized>) -> BTreeSet<(Id, u64)> {
    set.iter().map(|(c, q)| (plan.rewrite(c), *q)).collect()
}

impl Rewrite<Id> for Election {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Election {
            view: self.view,
            suspectors: self.suspectors.clone(),
            epoch_length_ms: self.epoch_length_ms,
            seen_prev_epochs: pending(&self.seen_prev_epochs, plan),
            seen_this_epoch: pending(&self.seen_this_epoch, plan),
        }
    }
}

impl<A: App> Rewrite<Id> for ReplicaState<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        assert!(
            self.transfer.is_none(),
            "a state transfer under way holds client ids serialised: no renaming"
        );
        ReplicaState {
            proposer: self.proposer.rewrite(plan),
            acceptor: self.acceptor.rewrite(plan),
            learner: self.learner.rewrite(plan),
            executor: self.executor.rewrite(plan),
            election: self.election.rewrite(plan),
            milestones: self.milestones,
            last_heartbeat: self.last_heartbeat,
            transfer: None,
            restarts: self.restarts,
        }
    }
}

impl<A: App> Rewrite<Id> for ClientState<A> {
    fn rewrite<S>(&self, _: &RewritePlan<Id, S>) -> Self {
        // Replies name no client; `leader` is a replica index.
        self.clone()
    }
}

impl<A: App> Rewrite<Id> for RslNodeState<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            RslNodeState::Replica(r) => RslNodeState::Replica(r.rewrite(plan)),
            RslNodeState::Client(c) => RslNodeState::Client(c.rewrite(plan)),
        }
    }
}

impl<A: App> Rewrite<Id> for ReplicaStorage<A> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        ReplicaStorage {
            max_bal: self.max_bal,
            votes: votes(&self.votes, plan),
            log_truncation_point: self.log_truncation_point,
            max_ballot_sent_1a: self.max_ballot_sent_1a,
            ops_complete: self.ops_complete,
            app_state: self.app_state.clone(),
            sessions: self.sessions.rewrite(plan),
            restarts: self.restarts,
        }
    }
}

/// A map keyed by client id with values that name none.
pub(super) fn rename_keys<V: Clone, S>(
    map: &BTreeMap<Id, V>,
    plan: &RewritePlan<Id, S>,
) -> BTreeMap<Id, V> {
    map.iter()
        .map(|(k, v)| (plan.rewrite(k), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::rsl::{Counter, CounterOp};
    use stateright::util::DenseNatMap;

    fn swap_3_4() -> RewritePlan<Id, DenseNatMap<Id, Id>> {
        let map: DenseNatMap<Id, Id> = (0..5)
            .map(|i| {
                Id::from(match i {
                    3 => 4,
                    4 => 3,
                    i => i,
                })
            })
            .collect::<Vec<_>>()
            .into();
        RewritePlan::new(map, |x, m| *m.get(*x).unwrap_or(x))
    }

    fn req(client: usize) -> Request<Counter> {
        Request {
            client: Id::from(client),
            seqno: 1,
            op: CounterOp::Inc,
        }
    }

    #[test]
    fn a_2a_names_its_batch_clients_after_renaming() {
        let m: RslMsg<Counter> = RslMsg::TwoA {
            bal: Ballot::of_view(0, 3),
            opn: 0,
            batch: Arc::new(vec![req(3), req(1)]),
        };
        let want: RslMsg<Counter> = RslMsg::TwoA {
            bal: Ballot::of_view(0, 3),
            opn: 0,
            batch: Arc::new(vec![req(4), req(1)]),
        };
        let plan = swap_3_4();
        assert_eq!(m.rewrite(&plan), want);
        assert_eq!(m.rewrite(&plan).rewrite(&plan), m, "a swap undone");
    }
}
