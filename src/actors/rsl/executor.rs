//! The Executor: applies decided batches to the app in slot order, keeps the reply cache (the
//! last reply per client, so a retransmitted request is answered and never executed twice), and
//! takes part in state transfer.

use std::collections::BTreeMap;
use std::sync::Arc;

use stateright::actor::Id;

use super::app::App;
use super::params::{ModelSwitches, Mutation};
use super::types::{Batch, OpNum, ReplyCache};

/// The executor's state. It is durable: it is saved with the acceptor's state, so a restarted
/// replica never reports a checkpoint it no longer has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Executor<A: App> {
    /// Slots executed so far.
    pub ops_complete: OpNum,
    /// The application state after `ops_complete` slots.
    pub app_state: Arc<A::State>,
    /// The last reply sent to each client.
    pub reply_cache: ReplyCache<A>,
}

impl<A: App> Default for Executor<A> {
    fn default() -> Self {
        Executor {
            ops_complete: 0,
            app_state: Arc::new(A::State::default()),
            reply_cache: Arc::new(BTreeMap::new()),
        }
    }
}

impl<A: App> Executor<A> {
    /// Whether the request `(client, seqno)` has been executed (it is at or below the cached one).
    pub(crate) fn has_executed(&self, client: Id, seqno: u64) -> bool {
        self.reply_cache
            .get(&client)
            .is_some_and(|(cached, _)| *cached >= seqno)
    }

    /// The cached reply for exactly `(client, seqno)`.
    pub(crate) fn cached_reply(&self, client: Id, seqno: u64) -> Option<&A::Reply> {
        self.reply_cache
            .get(&client)
            .filter(|(cached, _)| *cached == seqno)
            .map(|(_, r)| r)
    }

    /// Executes the batch decided for slot `ops_complete`. Returns the replies to send:
    /// `(client, seqno, reply)`, including cached replies for requests executed before.
    pub fn execute(&mut self, sw: &ModelSwitches, batch: &Batch<A>) -> Vec<(Id, u64, A::Reply)> {
        let mut replies = Vec::with_capacity(batch.len());
        for req in batch.iter() {
            let executed_before = self.has_executed(req.client, req.seqno);
            if executed_before && !sw.has(Mutation::ExecuteTwice) {
                if let Some(r) = self.cached_reply(req.client, req.seqno) {
                    replies.push((req.client, req.seqno, r.clone()));
                }
                continue;
            }
            let reply = A::execute(Arc::make_mut(&mut self.app_state), &req.op);
            Arc::make_mut(&mut self.reply_cache).insert(req.client, (req.seqno, reply.clone()));
            replies.push((req.client, req.seqno, reply));
        }
        let done = self.ops_complete;
        self.ops_complete = done.checked_add(1).expect("ops_complete overflows u64");
        assert!(self.ops_complete > done, "ops_complete only grows");
        debug_assert!(batch
            .iter()
            .all(|req| self.has_executed(req.client, req.seqno)));
        replies
    }
}
