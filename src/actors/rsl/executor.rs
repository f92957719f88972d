//! The Executor: applies decided batches to the app in slot order, keeps the client session table
//! (the last reply per client, so a retransmitted request is answered and never executed twice;
//! bounded, see `sessions`), and takes part in state transfer.

use std::sync::Arc;

use stateright::actor::Id;

use super::app::App;
use super::params::{ModelSwitches, Mutation, Params};
use super::sessions::{ClientSessions, Lookup};
use super::types::{Batch, OpNum, Sessions};

/// The executor's state. It is durable: it is saved with the acceptor's state, so a restarted
/// replica never reports a checkpoint it no longer has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Executor<A: App> {
    /// Slots executed so far.
    pub ops_complete: OpNum,
    /// The application state after `ops_complete` slots.
    pub app_state: Arc<A::State>,
    /// The client session table after `ops_complete` slots.
    pub sessions: Sessions<A>,
}

/// What executing a request produced for its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<R> {
    /// The app's reply (just computed, or cached from the first execution).
    Reply(R),
    /// Refused: the client has no session and the seqno is at or below this watermark.
    Expired(u64),
}

impl<A: App> Default for Executor<A> {
    fn default() -> Self {
        Executor {
            ops_complete: 0,
            app_state: Arc::new(A::State::default()),
            sessions: Arc::new(ClientSessions::default()),
        }
    }
}

impl<A: App> Executor<A> {
    /// Whether the request `(client, seqno)` needs nothing more from the log: executed before,
    /// or refused as from an expired session.
    pub(crate) fn is_settled(&self, client: Id, seqno: u64) -> bool {
        self.sessions.is_settled(client, seqno)
    }

    /// Executes the batch decided for slot `ops_complete`. Returns what to tell each client:
    /// `(client, seqno, outcome)`, including cached replies for requests executed before (a
    /// request superseded by a later one of its client gets nothing).
    pub fn execute(
        &mut self,
        params: &Params,
        sw: &ModelSwitches,
        batch: &Batch<A>,
    ) -> Vec<(Id, u64, Outcome<A::Reply>)> {
        let mut out = Vec::with_capacity(batch.len());
        for req in batch.iter() {
            match self.sessions.lookup(req.client, req.seqno) {
                Lookup::Executed(cached) if !sw.has(Mutation::ExecuteTwice) => {
                    if let Some(r) = cached {
                        out.push((req.client, req.seqno, Outcome::Reply(r.clone())));
                    }
                    continue;
                }
                Lookup::Expired { watermark } if !sw.has(Mutation::ExecuteExpired) => {
                    out.push((req.client, req.seqno, Outcome::Expired(watermark)));
                    continue;
                }
                _ => {}
            }
            let reply = A::execute(Arc::make_mut(&mut self.app_state), &req.op);
            if !matches!(
                self.sessions.lookup(req.client, req.seqno),
                Lookup::Executed(_)
            ) {
                Arc::make_mut(&mut self.sessions).record(
                    req.client,
                    req.seqno,
                    reply.clone(),
                    params.max_client_sessions,
                );
            }
            out.push((req.client, req.seqno, Outcome::Reply(reply)));
        }
        let done = self.ops_complete;
        self.ops_complete = done.checked_add(1).expect("ops_complete overflows u64");
        assert!(self.ops_complete > done, "ops_complete only grows");
        assert!(
            self.sessions.len() <= params.max_client_sessions.max(1),
            "the session table stays within its bound"
        );
        debug_assert!(batch
            .iter()
            .all(|req| self.is_settled(req.client, req.seqno)));
        out
    }
}
