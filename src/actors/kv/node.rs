//! [`KvNode`]: a host or a client, so that both can live in one stateright `ActorModel`.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

use super::client::{KvClient, KvClientState};
use super::durable::HostSave;
use super::host::{Host, HostState};
use super::single_delivery::SingleDelivery;
use super::types::{KvMsg, KvTimer};

/// A host or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvNode {
    /// A host.
    Host(Host),
    /// A client.
    Client(KvClient),
}

/// The state of a [`KvNode`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvNodeState {
    /// A host's state.
    Host(HostState),
    /// A client's state.
    Client(KvClientState),
}

impl KvNodeState {
    /// A state that allocates nothing: it stands in while a step runs on the real state, moved
    /// out of an owned `Cow` (see `owned_step`).
    fn vacant() -> Self {
        KvNodeState::Client(KvClientState {
            next_op: 0,
            waiting: false,
            target: Id::from(0usize),
            replies: Vec::new(),
            sd: SingleDelivery::new(0),
            redirects: 0,
            followed_redirect: false,
            gave_up: false,
            closed: false,
            abandoned: false,
        })
    }

    /// The host state, if this is a host.
    pub fn host(&self) -> Option<&HostState> {
        match self {
            KvNodeState::Host(h) => Some(h),
            KvNodeState::Client(_) => None,
        }
    }

    /// The client state, if this is a client.
    pub fn client(&self) -> Option<&KvClientState> {
        match self {
            KvNodeState::Client(c) => Some(c),
            KvNodeState::Host(_) => None,
        }
    }
}

/// Runs a step of the inner actor `B` on the inner state, mapping the state back and moving the
/// commands out.
fn delegate<B, S>(
    state: &mut Cow<KvNodeState>,
    inner: &S,
    wrap: fn(S) -> KvNodeState,
    o: &mut Out<KvNode>,
    step: impl FnOnce(&mut Cow<S>, &mut Out<B>),
) where
    S: Clone,
    B: Actor<Msg = KvMsg, Timer = KvTimer, Random = (), Storage = HostSave>,
{
    let mut inner_state = Cow::Borrowed(inner);
    let mut inner_out = Out::new();
    step(&mut inner_state, &mut inner_out);
    o.append(&mut inner_out);
    if let Cow::Owned(s) = inner_state {
        *state = Cow::Owned(wrap(s));
    }
}

/// Runs a step of the inner actor `B` on an owned inner state, moved in and back: the runtime
/// and the simulator hand the node an owned state, and a copy per step (what `delegate` does to
/// a borrowed one) would cost a clone of the whole state, a client's growing reply list
/// included, on every message.
fn owned_step<B, S>(s: S, o: &mut Out<KvNode>, step: impl FnOnce(&mut Cow<S>, &mut Out<B>)) -> S
where
    S: Clone,
    B: Actor<Msg = KvMsg, Timer = KvTimer, Random = (), Storage = HostSave>,
{
    let mut inner = Cow::Owned(s);
    let mut inner_out = Out::new();
    step(&mut inner, &mut inner_out);
    o.append(&mut inner_out);
    inner.into_owned()
}

impl Actor for KvNode {
    type Msg = KvMsg;
    type Timer = KvTimer;
    type State = KvNodeState;
    type Storage = HostSave;
    type Random = ();

    fn name(&self) -> String {
        match self {
            KvNode::Host(h) => h.name(),
            KvNode::Client(c) => c.name(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<HostSave>, o: &mut Out<Self>) -> KvNodeState {
        match self {
            KvNode::Host(h) => {
                let mut out = Out::new();
                let s = h.on_start(id, storage, &mut out);
                o.append(&mut out);
                KvNodeState::Host(s)
            }
            KvNode::Client(c) => {
                let mut out = Out::new();
                let s = c.on_start(id, storage, &mut out);
                o.append(&mut out);
                KvNodeState::Client(s)
            }
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<KvNodeState>, src: Id, msg: KvMsg, o: &mut Out<Self>) {
        if let Cow::Owned(outer) = state {
            *outer = match (self, std::mem::replace(outer, KvNodeState::vacant())) {
                (KvNode::Host(h), KvNodeState::Host(s)) => {
                    KvNodeState::Host(owned_step(s, o, |st, out| h.on_msg(id, st, src, msg, out)))
                }
                (KvNode::Client(c), KvNodeState::Client(s)) => {
                    KvNodeState::Client(owned_step(s, o, |st, out| c.on_msg(id, st, src, msg, out)))
                }
                _ => unreachable!("actor and state kinds always match"),
            };
            return;
        }
        let current: &KvNodeState = &Cow::clone(state);
        match (self, current) {
            (KvNode::Host(h), KvNodeState::Host(s)) => {
                delegate(state, s, KvNodeState::Host, o, |st, out| {
                    h.on_msg(id, st, src, msg, out)
                })
            }
            (KvNode::Client(c), KvNodeState::Client(s)) => {
                delegate(state, s, KvNodeState::Client, o, |st, out| {
                    c.on_msg(id, st, src, msg, out)
                })
            }
            _ => unreachable!("actor and state kinds always match"),
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<KvNodeState>, t: &KvTimer, o: &mut Out<Self>) {
        if let Cow::Owned(outer) = state {
            *outer = match (self, std::mem::replace(outer, KvNodeState::vacant())) {
                (KvNode::Host(h), KvNodeState::Host(s)) => {
                    KvNodeState::Host(owned_step(s, o, |st, out| h.on_timeout(id, st, t, out)))
                }
                (KvNode::Client(c), KvNodeState::Client(s)) => {
                    KvNodeState::Client(owned_step(s, o, |st, out| c.on_timeout(id, st, t, out)))
                }
                _ => unreachable!("actor and state kinds always match"),
            };
            return;
        }
        let current: &KvNodeState = &Cow::clone(state);
        match (self, current) {
            (KvNode::Host(h), KvNodeState::Host(s)) => {
                delegate(state, s, KvNodeState::Host, o, |st, out| {
                    h.on_timeout(id, st, t, out)
                })
            }
            (KvNode::Client(c), KvNodeState::Client(s)) => {
                delegate(state, s, KvNodeState::Client, o, |st, out| {
                    c.on_timeout(id, st, t, out)
                })
            }
            _ => unreachable!("actor and state kinds always match"),
        }
    }
}
