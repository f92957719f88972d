//! The Proposer: the leader's half of Paxos. It queues client requests, runs phase 1 for its view
//! (1a, a quorum of 1b), re-proposes the highest-ballot vote of every slot the quorum reported,
//! then nominates batches of requests in phase 2, never beyond `max_log_length` slots past the
//! log truncation point.

use std::collections::BTreeMap;
use std::sync::Arc;

use stateright::actor::Id;

use super::app::App;
use super::params::{ModelSwitches, Mutation, Params};
use super::types::{Ballot, Batch, OpNum, Request, Vote, Votes};

/// Where the proposer stands in its view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Not leading.
    Idle,
    /// Sent 1a, collecting 1b.
    Phase1,
    /// Leading: proposing batches.
    Phase2,
}

/// The proposer's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proposer<A: App> {
    /// Where it stands.
    pub phase: Phase,
    /// The highest ballot for which it sent a 1a (durable: a restarted replica never reuses it).
    pub max_ballot_sent_1a: Option<Ballot>,
    /// Requests waiting to be proposed.
    pub request_queue: Vec<Request<A>>,
    /// The 1b messages of the current ballot, by acceptor index: (truncation point, votes).
    pub received_1b: BTreeMap<u32, (OpNum, Votes<A>)>,
    /// The next slot to propose.
    pub next_opn: OpNum,
    /// The highest sequence number queued per client in this view (no request queued twice),
    /// for requests not yet settled by the executor.
    pub highest_seqno_requested: BTreeMap<Id, u64>,
    /// Whether the incomplete-batch timer is armed.
    pub batch_timer_armed: bool,
}

impl<A: App> Default for Proposer<A> {
    fn default() -> Self {
        Proposer {
            phase: Phase::Idle,
            max_ballot_sent_1a: None,
            request_queue: Vec::new(),
            received_1b: BTreeMap::new(),
            next_opn: 0,
            highest_seqno_requested: BTreeMap::new(),
            batch_timer_armed: false,
        }
    }
}

/// What phase 2 starts with: the truncation point, and the 2a proposals for reported slots.
pub(crate) struct Phase2Start<A: App> {
    /// The highest truncation point of the 1b quorum.
    pub log_truncation_point: OpNum,
    /// The slots to (re-)propose, with their batches.
    pub proposals: Vec<(OpNum, Batch<A>)>,
}

impl<A: App> Proposer<A> {
    /// Steps down: the view moved on to another leader.
    pub(crate) fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.request_queue.clear();
        self.received_1b.clear();
        self.highest_seqno_requested.clear();
    }

    /// Starts phase 1 for `view`.
    pub(crate) fn start_phase1(&mut self, view: Ballot) {
        self.reset();
        self.phase = Phase::Phase1;
        self.max_ballot_sent_1a = Some(view);
    }

    /// Queues a request if leading and not already queued in this view. Returns whether it was
    /// queued.
    pub(crate) fn queue_request(&mut self, params: &Params, req: Request<A>) -> bool {
        if self.phase == Phase::Idle || self.request_queue.len() >= params.max_request_queue {
            return false;
        }
        if self
            .highest_seqno_requested
            .get(&req.client)
            .is_some_and(|&s| s >= req.seqno)
        {
            return false;
        }
        self.highest_seqno_requested.insert(req.client, req.seqno);
        self.request_queue.push(req);
        true
    }

    /// Forgets the dedup entries of requests that are settled (executed or refused): a
    /// duplicate of one is caught by the session table before it reaches the queue. A scan of
    /// every entry: for a state transfer, which settles requests of slots never seen here.
    pub(crate) fn forget_settled(&mut self, settled: impl Fn(Id, u64) -> bool) {
        self.highest_seqno_requested
            .retain(|&c, &mut q| !settled(c, q));
    }

    /// Forgets the dedup entries of the requests of a batch just executed (their entry is at
    /// most the request's seqno: anything later is still pending). Only the batch's clients are
    /// looked at, so executing stays O(batch) however many clients have entries.
    pub(crate) fn forget_executed_batch(&mut self, batch: &[Request<A>]) {
        for req in batch {
            if self
                .highest_seqno_requested
                .get(&req.client)
                .is_some_and(|&q| q <= req.seqno)
            {
                self.highest_seqno_requested.remove(&req.client);
            }
        }
    }

    /// Records a 1b for the current ballot from acceptor `idx`. Returns whether it was new.
    ///
    /// A 1b that no correct acceptor could send is ignored: a vote outside the sender's log
    /// window `[ltp, ltp + max_log_length)`, or in a ballot above the one promised. (Taken, a
    /// vote at slot `u64::MAX` would make the new leader re-propose every slot up to it.)
    pub(crate) fn process_1b(
        &mut self,
        params: &Params,
        idx: u32,
        bal: Ballot,
        ltp: OpNum,
        votes: &Votes<A>,
    ) -> bool {
        if self.phase != Phase::Phase1 || Some(bal) != self.max_ballot_sent_1a {
            return false;
        }
        let window_end = ltp.saturating_add(params.max_log_length);
        if votes
            .iter()
            .any(|(&opn, v)| opn < ltp || opn >= window_end || v.bal > bal)
        {
            return false;
        }
        if self.received_1b.contains_key(&idx) {
            return false;
        }
        self.received_1b.insert(idx, (ltp, votes.clone()));
        true
    }

    /// With a quorum of 1b, enters phase 2: for every slot from the highest reported truncation
    /// point to the highest reported vote, re-propose the vote with the highest ballot (or an
    /// empty batch for a gap).
    pub(crate) fn enter_phase2(
        &mut self,
        sw: &ModelSwitches,
        quorum: usize,
    ) -> Option<Phase2Start<A>> {
        if self.phase != Phase::Phase1 || self.received_1b.len() < quorum {
            return None;
        }
        let ltp = self
            .received_1b
            .values()
            .map(|(l, _)| *l)
            .max()
            .unwrap_or(0);
        let mut best: BTreeMap<OpNum, &Vote<A>> = BTreeMap::new();
        if !sw.has(Mutation::IgnoreOneBVotes) {
            for (_, votes) in self.received_1b.values() {
                for (&opn, vote) in votes.range(ltp..) {
                    let slot = best.entry(opn).or_insert(vote);
                    if vote.bal > slot.bal {
                        *slot = vote;
                    }
                }
            }
        }
        let mut proposals = Vec::new();
        let mut next = ltp;
        if let Some(&last) = best.keys().next_back() {
            for opn in ltp..=last {
                let batch = best
                    .get(&opn)
                    .map(|v| v.batch.clone())
                    .unwrap_or_else(|| Arc::new(Vec::new()));
                proposals.push((opn, batch));
            }
            next = last + 1;
        }
        self.phase = Phase::Phase2;
        self.next_opn = next;
        self.received_1b.clear();
        Some(Phase2Start {
            log_truncation_point: ltp,
            proposals,
        })
    }

    /// Nominates the next batch if leading, the queue has a full batch (or `force` for the
    /// incomplete-batch timer) and the slot is within the log window. Returns `(opn, batch)`.
    pub(crate) fn nominate(
        &mut self,
        params: &Params,
        log_truncation_point: OpNum,
        force: bool,
    ) -> Option<(OpNum, Batch<A>)> {
        if self.phase != Phase::Phase2 || self.request_queue.is_empty() {
            return None;
        }
        if !force && self.request_queue.len() < params.max_batch_size {
            return None;
        }
        if self.next_opn >= log_truncation_point.saturating_add(params.max_log_length) {
            return None;
        }
        let take = self.request_queue.len().min(params.max_batch_size);
        let batch: Vec<Request<A>> = self.request_queue.drain(..take).collect();
        let opn = self.next_opn;
        self.next_opn += 1;
        assert!(
            opn < log_truncation_point.saturating_add(params.max_log_length),
            "a proposal beyond the log window"
        );
        Some((opn, Arc::new(batch)))
    }
}
