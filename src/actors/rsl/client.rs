//! The IronRSL client: issues its operations one at a time with increasing sequence numbers,
//! sends each to every replica (the liveness theorem's client, which reaches the live quorum),
//! retransmits on a timer until the reply arrives, and records what it got. Told its session
//! expired, it stops: the outcome of its outstanding request is unknown, and it has no more
//! sequence numbers above the watermark to offer (the runtime client starts a new session).

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
}

/// A client's state: the replies received so far, in order. The outstanding request is
/// `ops[replies.len()]` with sequence number `first_seqno + replies.len()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState<A: App> {
    /// Replies received, one per completed operation.
    pub replies: Vec<A::Reply>,
    /// Told that its session expired: it stopped, the outstanding request's outcome unknown.
    pub expired: bool,
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

    /// Whether every operation has been answered, or the client stopped on an expired session.
    pub fn is_done(&self, s: &ClientState<A>) -> bool {
        s.replies.len() >= self.cfg.ops.len() || s.expired
    }

    /// The sequence number of the outstanding request (if any).
    fn outstanding_seqno(&self, s: &ClientState<A>) -> u64 {
        self.cfg.first_seqno.saturating_add(s.replies.len() as u64)
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

    fn send_outstanding(&self, s: &ClientState<A>, o: &mut Out<Self>) {
        if let Some(op) = self.cfg.ops.get(s.replies.len()) {
            let msg = RslMsg::Request {
                seqno: self.outstanding_seqno(s),
                op: op.clone(),
            };
            o.broadcast(self.cfg.replicas.iter(), &msg);
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
        };
        if !self.is_done(&s) {
            self.send_outstanding(&s, o);
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
        let (seqno, reply) = match msg {
            RslMsg::Reply { seqno, reply } => (seqno, Some(reply)),
            RslMsg::SessionExpired { seqno, .. } => (seqno, None),
            _ => return,
        };
        if self.is_done(state)
            || seqno != self.outstanding_seqno(state)
            || !self.cfg.replicas.contains(&src)
        {
            return;
        }
        let s = state.to_mut();
        match reply {
            Some(reply) => s.replies.push(reply),
            None => s.expired = true,
        }
        if self.is_done(s) {
            if self.cfg.retransmit {
                o.cancel_timer(RslTimer::Retransmit);
            }
        } else {
            self.send_outstanding(s, o);
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
            self.send_outstanding(state, o);
            self.arm_retransmit(o);
        }
    }
}
