//! [`RslNode`]: one actor type for a whole IronRSL system (replicas and clients), as a
//! stateright `ActorModel` needs a single actor type.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

use super::app::App;
use super::client::{Client, ClientState};
use super::replica::{Replica, ReplicaState, ReplicaStorage};
use super::types::{RslMsg, RslTimer};

/// A replica or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RslNode<A: App> {
    /// A replica.
    Replica(Replica<A>),
    /// A client.
    Client(Client<A>),
}

/// The state of a replica or a client. Model states already hold each actor state behind an
/// `Arc`, so the size difference between the variants costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RslNodeState<A: App> {
    /// A replica's state.
    Replica(ReplicaState<A>),
    /// A client's state.
    Client(ClientState<A>),
}

impl<A: App> RslNodeState<A> {
    /// A state that allocates nothing: it stands in while a step runs on the real state, moved
    /// out of an owned `Cow` (see `owned_step`).
    fn vacant() -> Self {
        RslNodeState::Client(ClientState {
            replies: Vec::new(),
            expired: false,
            leader: None,
        })
    }

    /// The replica state, if this is a replica.
    pub fn replica(&self) -> Option<&ReplicaState<A>> {
        match self {
            RslNodeState::Replica(r) => Some(r),
            RslNodeState::Client(_) => None,
        }
    }

    /// The client state, if this is a client.
    pub fn client(&self) -> Option<&ClientState<A>> {
        match self {
            RslNodeState::Client(c) => Some(c),
            RslNodeState::Replica(_) => None,
        }
    }
}

/// Runs a step of the inner actor `B` on the inner state, mapping the state back and moving the
/// commands out.
fn delegate<A: App, B, S>(
    state: &mut Cow<RslNodeState<A>>,
    inner: &S,
    wrap: fn(S) -> RslNodeState<A>,
    o: &mut Out<RslNode<A>>,
    step: impl FnOnce(&mut Cow<S>, &mut Out<B>),
) where
    S: Clone,
    B: Actor<Msg = RslMsg<A>, Timer = RslTimer, Random = (), Storage = ReplicaStorage<A>>,
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
fn owned_step<A: App, B, S>(
    s: S,
    o: &mut Out<RslNode<A>>,
    step: impl FnOnce(&mut Cow<S>, &mut Out<B>),
) -> S
where
    S: Clone,
    B: Actor<Msg = RslMsg<A>, Timer = RslTimer, Random = (), Storage = ReplicaStorage<A>>,
{
    let mut inner = Cow::Owned(s);
    let mut inner_out = Out::new();
    step(&mut inner, &mut inner_out);
    o.append(&mut inner_out);
    inner.into_owned()
}

impl<A: App> RslNode<A> {
    /// Whether `msg` from `src` can never change this actor again, in `state` or any state it
    /// can reach (see [`Replica::spent`] and [`Client::spent`]).
    pub fn spent(&self, state: &RslNodeState<A>, src: Id, msg: &RslMsg<A>) -> bool {
        match (self, state) {
            (RslNode::Replica(r), RslNodeState::Replica(s)) => r.spent(s, src, msg),
            (RslNode::Client(c), RslNodeState::Client(s)) => c.spent(s, src, msg),
            _ => false,
        }
    }
}

impl<A: App> Actor for RslNode<A> {
    type Msg = RslMsg<A>;
    type Timer = RslTimer;
    type State = RslNodeState<A>;
    type Storage = ReplicaStorage<A>;
    type Random = ();

    fn name(&self) -> String {
        match self {
            RslNode::Replica(r) => r.name(),
            RslNode::Client(c) => c.name(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> Self::State {
        match self {
            RslNode::Replica(r) => {
                let mut out = Out::new();
                let s = r.on_start(id, storage, &mut out);
                o.append(&mut out);
                RslNodeState::Replica(s)
            }
            RslNode::Client(c) => {
                let mut out = Out::new();
                let s = c.on_start(id, storage, &mut out);
                o.append(&mut out);
                RslNodeState::Client(s)
            }
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: Self::Msg,
        o: &mut Out<Self>,
    ) {
        if let Cow::Owned(outer) = state {
            *outer = match (self, std::mem::replace(outer, RslNodeState::vacant())) {
                (RslNode::Replica(r), RslNodeState::Replica(s)) => {
                    RslNodeState::Replica(owned_step(s, o, |st, out| {
                        r.on_msg(id, st, src, msg, out)
                    }))
                }
                (RslNode::Client(c), RslNodeState::Client(s)) => {
                    RslNodeState::Client(owned_step(s, o, |st, out| {
                        c.on_msg(id, st, src, msg, out)
                    }))
                }
                _ => unreachable!("actor and state kinds always match"),
            };
            return;
        }
        let current: &RslNodeState<A> = &Cow::clone(state);
        match (self, current) {
            (RslNode::Replica(r), RslNodeState::Replica(s)) => {
                delegate(state, s, RslNodeState::Replica, o, |st, out| {
                    r.on_msg(id, st, src, msg, out)
                })
            }
            (RslNode::Client(c), RslNodeState::Client(s)) => {
                delegate(state, s, RslNodeState::Client, o, |st, out| {
                    c.on_msg(id, st, src, msg, out)
                })
            }
            _ => unreachable!("actor and state kinds always match"),
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        timer: &Self::Timer,
        o: &mut Out<Self>,
    ) {
        if let Cow::Owned(outer) = state {
            *outer = match (self, std::mem::replace(outer, RslNodeState::vacant())) {
                (RslNode::Replica(r), RslNodeState::Replica(s)) => {
                    RslNodeState::Replica(owned_step(s, o, |st, out| {
                        r.on_timeout(id, st, timer, out)
                    }))
                }
                (RslNode::Client(c), RslNodeState::Client(s)) => {
                    RslNodeState::Client(owned_step(s, o, |st, out| {
                        c.on_timeout(id, st, timer, out)
                    }))
                }
                _ => unreachable!("actor and state kinds always match"),
            };
            return;
        }
        let current: &RslNodeState<A> = &Cow::clone(state);
        match (self, current) {
            (RslNode::Replica(r), RslNodeState::Replica(s)) => {
                delegate(state, s, RslNodeState::Replica, o, |st, out| {
                    r.on_timeout(id, st, timer, out)
                })
            }
            (RslNode::Client(c), RslNodeState::Client(s)) => {
                delegate(state, s, RslNodeState::Client, o, |st, out| {
                    c.on_timeout(id, st, timer, out)
                })
            }
            _ => unreachable!("actor and state kinds always match"),
        }
    }
}
