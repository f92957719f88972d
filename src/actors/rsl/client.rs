//! The IronRSL client: issues its operations one at a time with increasing sequence numbers,
//! sends each to every replica (the liveness theorem's client, which reaches the live quorum) or,
//! tracking the leader, first to the replica that answered last, retransmits to every replica on
//! a timer until the reply arrives, and records what it got. Told its session expired, it stops:
//! the outcome of its outstanding request is unknown, and it has no more sequence numbers above
//! the watermark to offer (the runtime client starts a new session).
//!
//! This actor is the one client core: models check it, the simulator runs it through the
//! runtime's driver, and the UDP client (`net::rsl::RslClient`, used by the command line and the
//! bench) runs one instance of it per call through the same driver.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use stateright::actor::{Actor, Id, Out};

use super::app::App;
use super::replica::ReplicaStorage;
use super::types::{RslMsg, RslTimer};

/// A client's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientConfig<A: App> {
    /// The client's index among clients (for names).
    pub index: usize,
    /// The replicas.
    pub replicas: Arc<Vec<Id>>,
    /// The operations to issue, in order.
    pub ops: Arc<Vec<A::Op>>,
    /// Retransmission period in milliseconds.
    pub retransmit_ms: u64,
    /// Whether to retransmit at all. Always at run time; a model with a lossless duplicating
    /// network turns it off, since there the request already sent can be delivered again at any
    /// time, which is exactly what a retransmission would add.
    pub retransmit: bool,
    /// The sequence number of the first operation (1 in models). A new incarnation of a client
    /// on the address of an earlier one must start above every number the earlier one used:
    /// replicas answer a number they executed from their session table, so a reused number
    /// would get the earlier operation's reply. The runtime client starts at its clock.
    pub first_seqno: u64,
    /// The `ClientAcceptsStaleReply` mutation: takes a late reply to an earlier request as the
    /// answer. `false` outside tests.
    pub accepts_stale: bool,
    /// Send each new request first to the replica that answered last (only a view's leader
    /// replies), and to every replica only when none has answered yet or on a retransmission
    /// (a leader silent for one period is also what makes the other replicas suspect it). On
    /// at run time and in the simulator; off in models, whose client broadcasts every request.
    pub track_leader: bool,
    /// The replica (an index into `replicas`) believed to lead when the client starts.
    pub leader: Option<usize>,
}

/// A client's state: the replies received so far, in order. The outstanding request is
/// `ops[replies.len()]` with sequence number `first_seqno + replies.len()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState<A: App> {
    /// Replies received, one per completed operation.
    pub replies: Vec<A::Reply>,
    /// Told that its session expired: it stopped, the outstanding request's outcome unknown.
    pub expired: bool,
    /// The replica (an index) that answered last, while tracking the leader; `None` otherwise.
    pub leader: Option<usize>,
}

/// What a client's handler takes from a message: the answer to its outstanding request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<R> {
    /// The reply: the operation returned this.
    Reply(R),
    /// The session expired: the client stops, the operation's outcome unknown.
    Expired,
}

/// Where a client stands, as far as taking an answer goes: everything its handler's decision
/// reads. The actor builds it from its configuration and state; the model's history recorder
/// builds it from the model's configuration and its mirror of what each client took, so that
/// the history holds exactly what the client code accepted (one decision, [`Self::takes`], not
/// a filter re-applied by the recorder that would judge a client accepting a stale reply as if
/// it were correct).
#[derive(Clone, Copy, Debug)]
pub struct ClientPosition<'a> {
    /// The replicas it takes answers from.
    pub replicas: &'a [Id],
    /// The sequence number of its first operation.
    pub first_seqno: u64,
    /// How many operations it issues.
    pub ops: usize,
    /// How many answers it has taken.
    pub answered: usize,
    /// Whether it was told its session expired.
    pub expired: bool,
    /// The `ClientAcceptsStaleReply` mutation.
    pub accepts_stale: bool,
}

impl ClientPosition<'_> {
    /// Whether every operation has been answered, or the client stopped on an expired session.
    pub fn is_done(&self) -> bool {
        self.answered >= self.ops || self.expired
    }

    /// The sequence number of the outstanding request.
    pub fn outstanding_seqno(&self) -> u64 {
        self.first_seqno.saturating_add(self.answered as u64)
    }

    /// The answer the client takes from `msg`, sent by `src`, or `None` if it ignores it: a
    /// reply or refusal from a replica with the outstanding request's sequence number (with the
    /// mutation: with any number up to it, so a late copy of an earlier reply is taken). It
    /// ignores a message either for ever ([`ClientPosition::ignores_for_ever`]) or because it
    /// answers a later request than the outstanding one.
    pub fn takes<A: App>(&self, src: Id, msg: &RslMsg<A>) -> Option<Answer<A::Reply>> {
        let seqno = answer_seqno(msg)?;
        if self.ignores_for_ever(src, msg) || seqno > self.outstanding_seqno() {
            return None;
        }
        match msg {
            RslMsg::Reply { reply, .. } => Some(Answer::Reply(reply.clone())),
            _ => Some(Answer::Expired),
        }
    }

    /// Whether the client ignores `msg` from `src` here and in every position it can reach:
    /// it is not an answer, or not from a replica, or the client is done, or it answers a
    /// request before the outstanding one (unless the client takes stale replies). A position
    /// only moves forward: the answers taken and the expiry only grow, and a client never
    /// crashes in a model. An answer to a later request would be taken once the client gets
    /// there, so it is not ignored for ever (none is ever sent: a replica answers only
    /// requests it received).
    pub fn ignores_for_ever<A: App>(&self, src: Id, msg: &RslMsg<A>) -> bool {
        let Some(seqno) = answer_seqno(msg) else {
            return true;
        };
        self.is_done()
            || !self.replicas.contains(&src)
            || (seqno < self.outstanding_seqno() && !self.accepts_stale)
    }
}

/// The request sequence number an answer carries (`None`: `msg` is not an answer).
fn answer_seqno<A: App>(msg: &RslMsg<A>) -> Option<u64> {
    match msg {
        RslMsg::Reply { seqno, .. } | RslMsg::SessionExpired { seqno, .. } => Some(*seqno),
        _ => None,
    }
}

/// The client actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client<A: App> {
    /// Its configuration.
    pub cfg: Arc<ClientConfig<A>>,
    _app: PhantomData<A>,
}

impl<A: App> Client<A> {
    /// A client with this configuration.
    pub fn new(cfg: ClientConfig<A>) -> Self {
        Client {
            cfg: Arc::new(cfg),
            _app: PhantomData,
        }
    }

    /// Where the client in state `s` stands.
    pub fn position<'a>(&'a self, s: &ClientState<A>) -> ClientPosition<'a> {
        ClientPosition {
            replicas: &self.cfg.replicas,
            first_seqno: self.cfg.first_seqno,
            ops: self.cfg.ops.len(),
            answered: s.replies.len(),
            expired: s.expired,
            accepts_stale: self.cfg.accepts_stale,
        }
    }

    /// Whether every operation has been answered, or the client stopped on an expired session.
    pub fn is_done(&self, s: &ClientState<A>) -> bool {
        self.position(s).is_done()
    }

    /// Whether `msg` from `src` can never change this client again (see `Replica::spent`, and
    /// `GhostHistory::spent` for why a model's checker asks): the handler decides from
    /// [`ClientPosition::takes`], which takes nothing its position ignores for ever
    /// ([`ClientPosition::ignores_for_ever`]).
    pub fn spent(&self, s: &ClientState<A>, src: Id, msg: &RslMsg<A>) -> bool {
        self.position(s).ignores_for_ever(src, msg)
    }

    /// The sequence number of the outstanding request (if any).
    fn outstanding_seqno(&self, s: &ClientState<A>) -> u64 {
        self.position(s).outstanding_seqno()
    }

    fn retransmit_period(&self) -> std::ops::Range<Duration> {
        let d = Duration::from_millis(self.cfg.retransmit_ms);
        d..d
    }

    /// Arms the retransmission timer (if this client retransmits).
    fn arm_retransmit(&self, o: &mut Out<Self>) {
        if self.cfg.retransmit {
            o.set_timer(RslTimer::Retransmit, self.retransmit_period());
        }
    }

    /// Sends the outstanding request: a new one to the leader it believes in, if it tracks one
    /// and knows it, and otherwise (and every retransmission) to every replica.
    fn send_outstanding(&self, s: &ClientState<A>, new: bool, o: &mut Out<Self>) {
        if let Some(op) = self.cfg.ops.get(s.replies.len()) {
            let msg = RslMsg::Request {
                seqno: self.outstanding_seqno(s),
                op: op.clone(),
            };
            match s.leader.and_then(|l| self.cfg.replicas.get(l)) {
                Some(&leader) if new => o.send(leader, msg),
                _ => o.broadcast(self.cfg.replicas.iter(), &msg),
            }
        }
    }
}

impl<A: App> Actor for Client<A> {
    type Msg = RslMsg<A>;
    type Timer = RslTimer;
    type State = ClientState<A>;
    type Storage = ReplicaStorage<A>;
    type Random = ();

    fn name(&self) -> String {
        format!("client {}", self.cfg.index)
    }

    fn on_start(
        &self,
        _id: Id,
        _storage: &Option<Self::Storage>,
        o: &mut Out<Self>,
    ) -> Self::State {
        let s = ClientState {
            replies: Vec::new(),
            expired: false,
            leader: self.cfg.leader.filter(|_| self.cfg.track_leader),
        };
        if !self.is_done(&s) {
            self.send_outstanding(&s, true, o);
            self.arm_retransmit(o);
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
        let Some(answer) = self.position(state).takes(src, &msg) else {
            return;
        };
        let s = state.to_mut();
        match answer {
            Answer::Reply(reply) => s.replies.push(reply),
            Answer::Expired => s.expired = true,
        }
        if self.cfg.track_leader {
            s.leader = self.cfg.replicas.iter().position(|r| *r == src);
        }
        if self.is_done(s) {
            if self.cfg.retransmit {
                o.cancel_timer(RslTimer::Retransmit);
            }
        } else {
            self.send_outstanding(s, true, o);
            self.arm_retransmit(o);
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<Self::State>,
        timer: &Self::Timer,
        o: &mut Out<Self>,
    ) {
        if *timer == RslTimer::Retransmit && !self.is_done(state) {
            self.send_outstanding(state, false, o);
            self.arm_retransmit(o);
        }
    }
}
