//! IronRSL's vocabulary: ballots, operation numbers, requests, batches, votes, the messages
//! replicas and clients exchange, and the timers that drive the periodic actions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use super::app::App;
use super::transfer::Chunk;

/// A log slot: the position of a batch in the replicated log, counted from 0.
pub type OpNum = u64;

/// A ballot (also a view): `(seqno, proposer)` ordered lexicographically. `proposer` is the
/// index of the leader in the replica list of the configuration. View `k` is led by replica
/// `k mod n` (round robin).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Ballot {
    /// The view number; it grows by one on every view change.
    pub seqno: u64,
    /// The index of the replica that leads this view.
    pub proposer: u32,
}

impl Ballot {
    /// The ballot of view `seqno` in a cluster of `n` replicas.
    pub(crate) fn of_view(seqno: u64, n: usize) -> Ballot {
        Ballot {
            seqno,
            proposer: (seqno % n as u64) as u32,
        }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{},{}>", self.seqno, self.proposer)
    }
}

/// A client request: who asked, its sequence number, and the operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Request<A: App> {
    /// The client that sent it.
    pub client: Id,
    /// The client's sequence number (starts at 1, one request in flight per client).
    pub seqno: u64,
    /// What the client asks the replicated app to do.
    pub op: A::Op,
}

/// The requests decided together in one slot. Shared behind an `Arc`: a batch is copied into
/// many messages and votes and must stay cheap to clone and hash.
pub type Batch<A> = Arc<Vec<Request<A>>>;

/// An acceptor's vote for a slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Vote<A: App> {
    /// The ballot in which the acceptor accepted the batch.
    pub bal: Ballot,
    /// The requests voted for, in execution order.
    pub batch: Batch<A>,
}

/// An acceptor's votes by slot, shared behind an `Arc` (it travels in every 1b message).
pub type Votes<A> = Arc<BTreeMap<OpNum, Vote<A>>>;

/// The client session table (IronRSL's reply cache, bounded): shared, since it changes only when
/// a batch executes.
pub(super) type Sessions<A> = Arc<super::sessions::ClientSessions<<A as App>::Reply>>;

/// Every IronRSL message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RslMsg<A: App> {
    /// Client to replica: please execute `op`.
    Request {
        /// The client's sequence number: one request in flight, numbers only grow.
        seqno: u64,
        /// What the client asks the replicated app to do.
        op: A::Op,
    },
    /// Replica to client: the result of the request with this sequence number.
    Reply {
        /// The sequence number of the request answered.
        seqno: u64,
        /// The application's reply.
        reply: A::Reply,
    },
    /// Phase 1a: a proposer asks acceptors to promise `bal`.
    OneA {
        /// The ballot the proposer wants promised (its view).
        bal: Ballot,
    },
    /// Phase 1b: an acceptor promises `bal` and reports its votes from its truncation point.
    OneB {
        /// The ballot promised: the acceptor will vote in no lower ballot.
        bal: Ballot,
        /// The acceptor's log truncation point.
        log_truncation_point: OpNum,
        /// The acceptor's votes from its truncation point on, with their ballots.
        votes: Votes<A>,
    },
    /// The new leader tells everyone phase 2 starts at this truncation point (a replica behind
    /// it must fetch the app state).
    StartingPhase2 {
        /// The leader's ballot.
        bal: Ballot,
        /// The highest truncation point reported by the 1b quorum.
        log_truncation_point: OpNum,
    },
    /// Phase 2a: the leader proposes `batch` for slot `opn`.
    TwoA {
        /// The leader's ballot; acceptors that promised higher reject it.
        bal: Ballot,
        /// The slot proposed for, within the leader's log window.
        opn: OpNum,
        /// The batch proposed.
        batch: Batch<A>,
    },
    /// Phase 2b: an acceptor accepted `batch` for slot `opn` (sent to every replica's learner).
    TwoB {
        /// The ballot the vote was cast in.
        bal: Ballot,
        /// The slot voted for.
        opn: OpNum,
        /// The batch accepted; a quorum of equal 2bs decides it.
        batch: Batch<A>,
    },
    /// Periodic liveness and checkpoint report.
    Heartbeat {
        /// The sender's view.
        bal: Ballot,
        /// Whether the sender suspects that view.
        suspicious: bool,
        /// The number of operations the sender has executed.
        opn_ckpt: OpNum,
    },
    /// A lagging replica asks for the app state up to `opn`.
    AppStateRequest {
        /// The requester's view.
        bal: Ballot,
        /// The operation number the requester needs to reach.
        opn: OpNum,
    },
    /// State transfer: one chunk of the executor's snapshot (the app state after `opn`
    /// operations with the client session table, so at-most-once survives the transfer); see
    /// `actors::rsl::transfer`.
    AppStateChunk {
        /// The supplier's view.
        bal: Ballot,
        /// The chunk.
        chunk: Chunk,
    },
    /// Replica to client (last in the enum, so the wire encoding of the others is unchanged):
    /// the request with this sequence number is refused, because the client has no session and
    /// the number is at or below the expiry watermark (its session may have been evicted from
    /// the bounded session table). The request was not executed now; whether
    /// it was executed earlier, in the evicted session, is unknown. A client continues only as
    /// a new session, with sequence numbers above `watermark`.
    SessionExpired {
        /// The sequence number of the request refused.
        seqno: u64,
        /// The session table's expiry watermark.
        watermark: u64,
    },
}

impl<A: App> RslMsg<A> {
    /// The message's kind, for reports and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RslMsg::Request { .. } => "Request",
            RslMsg::Reply { .. } => "Reply",
            RslMsg::SessionExpired { .. } => "SessionExpired",
            RslMsg::OneA { .. } => "1a",
            RslMsg::OneB { .. } => "1b",
            RslMsg::StartingPhase2 { .. } => "StartingPhase2",
            RslMsg::TwoA { .. } => "2a",
            RslMsg::TwoB { .. } => "2b",
            RslMsg::Heartbeat { .. } => "Heartbeat",
            RslMsg::AppStateRequest { .. } => "AppStateRequest",
            RslMsg::AppStateChunk { .. } => "AppStateChunk",
        }
    }
}

/// Compact, readable rendering used in counterexample traces.
impl<A: App> fmt::Display for RslMsg<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batch = |b: &Batch<A>| {
            let items: Vec<String> = b
                .iter()
                .map(|r| format!("{}#{}:{:?}", usize::from(r.client), r.seqno, r.op))
                .collect();
            format!("[{}]", items.join(", "))
        };
        match self {
            RslMsg::Request { seqno, op } => write!(f, "Request(seqno={seqno}, {op:?})"),
            RslMsg::Reply { seqno, reply } => write!(f, "Reply(seqno={seqno}, {reply:?})"),
            RslMsg::SessionExpired { seqno, watermark } => {
                write!(f, "SessionExpired(seqno={seqno}, watermark={watermark})")
            }
            RslMsg::OneA { bal } => write!(f, "1a(bal={bal})"),
            RslMsg::OneB {
                bal,
                log_truncation_point,
                votes,
            } => {
                let vs: Vec<String> = votes
                    .iter()
                    .map(|(o, v)| format!("{o}:{}{}", v.bal, batch(&v.batch)))
                    .collect();
                write!(
                    f,
                    "1b(bal={bal}, ltp={log_truncation_point}, votes={{{}}})",
                    vs.join(", ")
                )
            }
            RslMsg::StartingPhase2 {
                bal,
                log_truncation_point,
            } => write!(f, "StartingPhase2(bal={bal}, ltp={log_truncation_point})"),
            RslMsg::TwoA { bal, opn, batch: b } => {
                write!(f, "2a(bal={bal}, opn={opn}, {})", batch(b))
            }
            RslMsg::TwoB { bal, opn, batch: b } => {
                write!(f, "2b(bal={bal}, opn={opn}, {})", batch(b))
            }
            RslMsg::Heartbeat {
                bal,
                suspicious,
                opn_ckpt,
            } => write!(
                f,
                "Heartbeat(bal={bal}, suspicious={suspicious}, ckpt={opn_ckpt})"
            ),
            RslMsg::AppStateRequest { bal, opn } => {
                write!(f, "AppStateRequest(bal={bal}, opn={opn})")
            }
            RslMsg::AppStateChunk { bal, chunk } => write!(
                f,
                "AppStateChunk(bal={bal}, opn={}, chunk {}/{}, {} bytes)",
                chunk.opn,
                chunk.index + 1,
                chunk.total,
                chunk.bytes.len()
            ),
        }
    }
}

/// The timers of replicas and clients. Each stands for one of IronRSL's periodic actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RslTimer {
    /// Replica: send a heartbeat (every `heartbeat_period`).
    Heartbeat,
    /// Replica: the current election epoch ends (after `epoch_length`): check for suspicion.
    Epoch,
    /// Replica (leader): the incomplete-batch timer (`max_batch_delay`): propose a partial batch.
    Batch,
    /// Client: retransmit the outstanding request.
    Retransmit,
}
