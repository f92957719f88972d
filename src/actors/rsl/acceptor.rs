//! The Acceptor: the durable half of Paxos. It promises ballots (1a/1b), votes for batches
//! (2a/2b), learns every replica's checkpoint from heartbeats and truncates its log at the point a
//! quorum has executed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::app::App;
use super::params::{ModelSwitches, Mutation, Params};
use super::types::{Ballot, Batch, OpNum, Vote, Votes};

/// The acceptor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acceptor<A: App> {
    /// The highest ballot promised or voted in (`None` before the first 1a).
    pub max_bal: Option<Ballot>,
    /// Votes by slot; only slots in `[log_truncation_point, log_truncation_point + max_log_length)`.
    pub votes: Votes<A>,
    /// Slots below this have been executed by a quorum and are forgotten.
    pub log_truncation_point: OpNum,
    /// The highest checkpoint (ops executed) each replica has reported, by replica index.
    pub last_checkpointed: Vec<OpNum>,
}

/// What an acceptor did with a 2a.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwoAOutcome {
    /// Voted: send the 2b.
    Accepted,
    /// Already voted exactly this: a duplicate (a resend, or the network duplicated it).
    Duplicate,
    /// Promised a higher ballot, or the slot is outside the log window.
    Rejected,
}

impl<A: App> Acceptor<A> {
    /// A fresh acceptor in a cluster of `n` replicas.
    pub fn new(n: usize) -> Self {
        Acceptor {
            max_bal: None,
            votes: Arc::new(BTreeMap::new()),
            log_truncation_point: 0,
            last_checkpointed: vec![0; n],
        }
    }

    /// Phase 1: promise `bal` if it is higher than any ballot seen. Returns whether a 1b should be
    /// sent.
    pub(crate) fn process_1a(&mut self, bal: Ballot) -> bool {
        if Some(bal) > self.max_bal {
            self.max_bal = Some(bal);
            true
        } else {
            false
        }
    }

    /// The acceptor's local invariants, asserted after every change: every vote lies in the log
    /// window `[log_truncation_point, log_truncation_point + max_log_length)`, and no vote is in
    /// a ballot above the promise (`max_bal` covers every vote).
    fn assert_invariants(&self, params: &Params) {
        let ltp = self.log_truncation_point;
        assert!(
            self.votes.first_key_value().is_none_or(|(&o, _)| o >= ltp),
            "a vote below the log truncation point {ltp}"
        );
        assert!(
            self.votes
                .last_key_value()
                .is_none_or(|(&o, _)| o < ltp.saturating_add(params.max_log_length)),
            "a vote beyond the log window"
        );
        debug_assert!(self.votes.values().all(|v| Some(v.bal) <= self.max_bal));
    }

    /// Phase 2: vote for `batch` in slot `opn` unless a higher ballot was promised or the slot
    /// lies outside the log window.
    pub(crate) fn process_2a(
        &mut self,
        params: &Params,
        sw: &ModelSwitches,
        bal: Ballot,
        opn: OpNum,
        batch: &Batch<A>,
    ) -> TwoAOutcome {
        let promised_ok = Some(bal) >= self.max_bal || sw.has(Mutation::AcceptBelowPromise);
        let in_window = opn >= self.log_truncation_point
            && opn
                < self
                    .log_truncation_point
                    .saturating_add(params.max_log_length);
        if !promised_ok || !in_window {
            return TwoAOutcome::Rejected;
        }
        let vote = Vote {
            bal,
            batch: batch.clone(),
        };
        if self.max_bal >= Some(bal) && self.votes.get(&opn) == Some(&vote) {
            return TwoAOutcome::Duplicate;
        }
        let promised_before = self.max_bal;
        self.max_bal = self.max_bal.max(Some(bal));
        Arc::make_mut(&mut self.votes).insert(opn, vote);
        assert!(self.max_bal >= promised_before, "max_bal decreased");
        assert!(self.max_bal >= Some(bal), "voted above the promise");
        self.assert_invariants(params);
        TwoAOutcome::Accepted
    }

    /// Records a checkpoint reported by replica `idx` (from a heartbeat, or our own executor).
    pub(crate) fn record_checkpoint(&mut self, idx: usize, opn: OpNum) {
        if let Some(c) = self.last_checkpointed.get_mut(idx) {
            if opn > *c {
                *c = opn;
            }
        }
    }

    /// The truncation point a quorum supports: the `quorum`-th highest checkpoint.
    pub(crate) fn quorum_checkpoint(&self, sw: &ModelSwitches, quorum: usize) -> OpNum {
        let mut c = self.last_checkpointed.clone();
        c.sort_unstable_by(|a, b| b.cmp(a));
        if sw.has(Mutation::TruncateBeyondQuorum) {
            return c[0];
        }
        c[quorum - 1]
    }

    /// Truncates the log up to what a quorum has executed. Returns whether anything changed.
    pub fn truncate(&mut self, sw: &ModelSwitches, quorum: usize) -> bool {
        let point = self.quorum_checkpoint(sw, quorum);
        if point <= self.log_truncation_point {
            return false;
        }
        self.log_truncation_point = point;
        if self.votes.keys().next().is_some_and(|&o| o < point) {
            Arc::make_mut(&mut self.votes).retain(|&o, _| o >= point);
        }
        assert!(
            self.votes
                .first_key_value()
                .is_none_or(|(&o, _)| o >= point),
            "a vote below the new truncation point {point}"
        );
        true
    }
}
