//! The IronKV client: issues its operations one at a time through SingleDelivery, follows
//! redirects to the owner a host names, and records the replies. A `Shard` operation is an
//! admin request: sent to the host named, not answered, and the client moves on at once.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use super::params::{KvModelSwitches, KvMutation, KvParams};
use super::single_delivery::SingleDelivery;
use super::types::{Key, KeyRange, KvMsg, KvPayload, KvTimer, Value};

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientOp {
    /// Read a key.
    Get(Key),
    /// Write a key (`None`: delete).
    Set(Key, Option<Value>),
    /// Admin: ask host `from` (an index) to move `range` to host `to`.
    Shard {
        /// The range.
        range: KeyRange,
        /// The host asked (it must own the whole range).
        from: usize,
        /// The new owner.
        to: usize,
    },
}

impl ClientOp {
    /// The key a Get or Set is about.
    pub fn key(&self) -> Option<&Key> {
        match self {
            ClientOp::Get(k) | ClientOp::Set(k, _) => Some(k),
            ClientOp::Shard { .. } => None,
        }
    }
}

/// A client's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvClientConfig {
    /// Its index among clients (for names).
    pub index: usize,
    /// The hosts; requests go first to `hosts[0]`.
    pub hosts: Arc<Vec<Id>>,
    /// The operations, in order.
    pub ops: Arc<Vec<ClientOp>>,
    /// Its SingleDelivery epoch (0 in models).
    pub epoch: u64,
    /// Protocol parameters.
    pub params: KvParams,
    /// Model-only settings ([`KvModelSwitches::default`] at run time).
    pub switches: KvModelSwitches,
    /// Give up an operation unanswered for this long, in milliseconds, and stop (abandoned:
    /// its outcome unknown; a runtime client goes on as a new incarnation). The caller's
    /// timeout; `None` in models.
    pub give_up_ms: Option<u64>,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvClientState {
    /// The next operation to issue (`== ops.len()`: done).
    pub next_op: usize,
    /// Whether the current Get/Set waits for its reply.
    pub waiting: bool,
    /// The host the current request went to.
    pub target: Id,
    /// Replies received, one per Get/Set.
    pub replies: Vec<Option<Value>>,
    /// Reliable channels.
    pub sd: SingleDelivery<KvPayload>,
    /// Redirects followed for the current operation.
    pub redirects: u32,
    /// Followed a redirect (at least once, for any operation).
    pub followed_redirect: bool,
    /// Gave up the current operation after `max_redirects` redirects (models only).
    pub gave_up: bool,
    /// A host closed this client's channel: it stopped (the outcome of its current operation
    /// is unknown; a runtime client would start again as a new incarnation).
    pub closed: bool,
    /// It gave up its current operation after `give_up_ms` and stopped (the outcome unknown).
    pub abandoned: bool,
}

/// The client actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvClient {
    /// Its configuration.
    pub cfg: Arc<KvClientConfig>,
}

impl KvClient {
    /// A client with this configuration.
    pub fn new(cfg: KvClientConfig) -> Self {
        KvClient { cfg: Arc::new(cfg) }
    }

    /// Sends `payload` reliably; arms the retransmission timer.
    fn send(&self, s: &mut KvClientState, dst: Id, payload: KvPayload, o: &mut Out<Self>) {
        let p = &self.cfg.params;
        let timer = self.cfg.switches.retransmit_timer(p);
        s.sd.send_out(dst, payload, p.max_unacked, timer, o);
    }

    /// The request of a Get or Set (`None` for a Shard, which `issue` sends itself).
    fn request(op: &ClientOp) -> Option<KvPayload> {
        match op {
            ClientOp::Get(key) => Some(KvPayload::Get { key: key.clone() }),
            ClientOp::Set(key, value) => Some(KvPayload::Set {
                key: key.clone(),
                value: value.clone(),
            }),
            ClientOp::Shard { .. } => None,
        }
    }

    /// Starts this configuration's operations from the first, the first request going to
    /// `target`, keeping the channels of `s`: how a runtime client (`net::kv::KvRemote`) runs
    /// one call after another through one long-lived state, each call a configuration of its
    /// own.
    pub fn begin(&self, s: &mut KvClientState, target: Id, o: &mut Out<Self>) {
        s.next_op = 0;
        s.waiting = false;
        s.replies.clear();
        s.redirects = 0;
        s.gave_up = false;
        s.target = target;
        self.issue(s, o);
    }

    /// Issues operations from `next_op` until one waits for a reply (or all are issued).
    fn issue(&self, s: &mut KvClientState, o: &mut Out<Self>) {
        while let Some(op) = self.cfg.ops.get(s.next_op) {
            match op {
                ClientOp::Shard { range, from, to } => {
                    let p = KvPayload::Shard {
                        range: range.clone(),
                        recipient: self.cfg.hosts[*to],
                    };
                    self.send(s, self.cfg.hosts[*from], p, o);
                    s.next_op += 1;
                }
                _ => {
                    let target = s.target;
                    if let Some(p) = Self::request(op) {
                        self.send(s, target, p, o);
                    }
                    s.waiting = true;
                    if let Some(ms) = self.cfg.give_up_ms {
                        let d = std::time::Duration::from_millis(ms);
                        o.set_timer(KvTimer::GiveUp, d..d);
                    }
                    return;
                }
            }
        }
    }
}

impl Actor for KvClient {
    type Msg = KvMsg;
    type Timer = KvTimer;
    type State = KvClientState;
    type Storage = super::durable::HostSave;
    type Random = ();

    fn name(&self) -> String {
        format!("client {}", self.cfg.index)
    }

    fn on_start(
        &self,
        _id: Id,
        _storage: &Option<super::durable::HostSave>,
        o: &mut Out<Self>,
    ) -> KvClientState {
        let mut s = KvClientState {
            next_op: 0,
            waiting: false,
            target: self.cfg.hosts[0],
            replies: Vec::new(),
            sd: SingleDelivery::new(self.cfg.epoch),
            redirects: 0,
            followed_redirect: false,
            gave_up: false,
            closed: false,
            abandoned: false,
        };
        self.issue(&mut s, o);
        s
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<KvClientState>,
        src: Id,
        msg: KvMsg,
        o: &mut Out<Self>,
    ) {
        if state.closed || state.abandoned {
            return;
        }
        match msg {
            KvMsg::Ack { epoch, from, seqno } => {
                if SingleDelivery::on_ack(state, src, epoch, from, seqno)
                    && self.cfg.switches.retransmits()
                {
                    o.cancel_timer(KvTimer::Retransmit);
                }
            }
            KvMsg::Closed { epoch, .. } => {
                if epoch == state.sd.epoch && self.cfg.hosts.contains(&src) {
                    state.to_mut().closed = true;
                    if self.cfg.switches.retransmits() {
                        o.cancel_timer(KvTimer::Retransmit);
                    }
                }
            }
            KvMsg::Single {
                epoch,
                to,
                seqno,
                payload,
            } => {
                if !self.cfg.switches.retransmit && state.sd.is_old(src, epoch, to, seqno) {
                    return; // the model's network redelivering: already acked
                }
                let s = state.to_mut();
                let r = s.sd.receive(src, epoch, to, seqno, payload, false);
                if let Some(ack) = r.ack {
                    o.send(src, ack);
                }
                let Some(p) = r.deliver else { return };
                let current = self.cfg.ops.get(s.next_op).and_then(|op| op.key());
                match p {
                    KvPayload::Reply { key, value, .. } if s.waiting && current == Some(&key) => {
                        if self.cfg.give_up_ms.is_some() {
                            o.cancel_timer(KvTimer::GiveUp);
                        }
                        s.replies.push(value);
                        s.waiting = false;
                        s.redirects = 0;
                        s.next_op += 1;
                        self.issue(s, o);
                    }
                    KvPayload::Redirect { key, owner }
                        if s.waiting
                            && !s.gave_up
                            && current == Some(&key)
                            && owner != s.target =>
                    {
                        if self
                            .cfg
                            .switches
                            .has(KvMutation::ClientTakesRedirectAsAbsent)
                        {
                            s.replies.push(None);
                            s.waiting = false;
                            s.redirects = 0;
                            s.next_op += 1;
                            self.issue(s, o);
                            return;
                        }
                        if self
                            .cfg
                            .switches
                            .max_redirects
                            .is_some_and(|m| s.redirects >= m)
                        {
                            s.gave_up = true;
                            return;
                        }
                        s.redirects += 1;
                        s.target = owner;
                        s.followed_redirect = true;
                        if let Some(p) = Self::request(&self.cfg.ops[s.next_op]) {
                            self.send(s, owner, p, o);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<KvClientState>, t: &KvTimer, o: &mut Out<Self>) {
        if state.closed || state.abandoned {
            return;
        }
        if *t == KvTimer::GiveUp {
            if state.waiting {
                state.to_mut().abandoned = true;
            }
            return;
        }
        if *t != KvTimer::Retransmit {
            return;
        }
        if let Some(timer) = self.cfg.switches.retransmit_timer(&self.cfg.params) {
            state.sd.resend_unacked(timer, o);
        }
    }
}

impl AsRef<SingleDelivery<KvPayload>> for KvClientState {
    fn as_ref(&self) -> &SingleDelivery<KvPayload> {
        &self.sd
    }
}

impl AsMut<SingleDelivery<KvPayload>> for KvClientState {
    fn as_mut(&mut self) -> &mut SingleDelivery<KvPayload> {
        &mut self.sd
    }
}
