//! The Learner: collects 2b messages per slot and decides a batch once a quorum of acceptors
//! voted for it in the same ballot.

use std::collections::{BTreeMap, BTreeSet};

use super::app::App;
use super::params::{ModelSwitches, Mutation, Params};
use super::types::{Ballot, Batch, OpNum};

/// The learner's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Learner<A: App> {
    /// The highest ballot seen in a 2b; votes of lower ballots are ignored.
    pub max_ballot_seen: Option<Ballot>,
    /// Per slot not yet executed: the acceptors (by index) that voted, and the batch.
    pub pending: BTreeMap<OpNum, (BTreeSet<u32>, Batch<A>)>,
}

impl<A: App> Default for Learner<A> {
    fn default() -> Self {
        Learner {
            max_ballot_seen: None,
            pending: BTreeMap::new(),
        }
    }
}

impl<A: App> Learner<A> {
    /// Records a 2b from acceptor `idx`. `ops_complete` is the executor's progress: slots below
    /// it are already executed, slots `max_log_length` beyond it are ignored (bounded state).
    pub(crate) fn process_2b(
        &mut self,
        params: &Params,
        idx: u32,
        bal: Ballot,
        opn: OpNum,
        batch: &Batch<A>,
        ops_complete: OpNum,
    ) {
        if Some(bal) < self.max_ballot_seen {
            return;
        }
        if opn < ops_complete || opn >= ops_complete.saturating_add(params.max_log_length) {
            return;
        }
        if Some(bal) > self.max_ballot_seen {
            self.max_ballot_seen = Some(bal);
            self.pending.clear();
        }
        let entry = self
            .pending
            .entry(opn)
            .or_insert_with(|| (BTreeSet::new(), batch.clone()));
        if &entry.1 == batch {
            entry.0.insert(idx);
        }
    }

    /// The decided batch for slot `opn`, if a quorum voted for it.
    pub(crate) fn decided(
        &self,
        sw: &ModelSwitches,
        quorum: usize,
        opn: OpNum,
    ) -> Option<&Batch<A>> {
        let needed = if sw.has(Mutation::DecideWithoutQuorum) {
            1
        } else {
            quorum
        };
        self.pending
            .get(&opn)
            .filter(|(voters, _)| voters.len() >= needed)
            .map(|(_, b)| b)
    }

    /// Forgets every slot below `opn` (executed, or skipped by state transfer).
    pub(crate) fn forget_below(&mut self, opn: OpNum) {
        if self.pending.keys().next().is_some_and(|&o| o < opn) {
            self.pending.retain(|&o, _| o >= opn);
        }
    }
}
