//! Model builders: for each system, the model configuration, the ghost-history recorders, the
//! one place where model-only switches are derived from the network, and the registration of
//! every property by name with its predicate.
//!
//! A builder puts together the actors (from [`crate::actors`]), a stateright network, the
//! ghost history and its recorders, and the properties: the safety ones from
//! [`crate::invariants`], the liveness ones from [`crate::liveness`]. The checker engine
//! ([`crate::check`]) knows nothing of any system: it takes the stateright `Model` built here.

pub mod kv;
pub mod lock;
pub mod rsl;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, ActorModel, Envelope, LossyNetwork, Network};
use stateright::Property;

/// The network semantics a model runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkKind {
    /// FIFO per (sender, receiver) pair; delivery consumes the message.
    Ordered,
    /// Any order; delivery consumes the message (a multiset).
    Unordered,
    /// Any order, and every message may be delivered again and again (a set). The state space
    /// stays finite even though hosts resend periodically, so this is the default.
    Duplicating,
}

impl NetworkKind {
    /// Every kind, with its command-line name.
    pub const ALL: [(NetworkKind, &'static str); 3] = [
        (NetworkKind::Ordered, "ordered"),
        (NetworkKind::Unordered, "unordered"),
        (NetworkKind::Duplicating, "duplicating"),
    ];

    /// Parses `ordered`, `unordered` or `duplicating`.
    pub fn parse(s: &str) -> Option<NetworkKind> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }

    /// The stateright network with no message in flight.
    pub(crate) fn network<M: Clone + Eq + std::hash::Hash + Ord>(self) -> Network<M> {
        let none: [Envelope<M>; 0] = [];
        match self {
            NetworkKind::Ordered => Network::new_ordered(none),
            NetworkKind::Unordered => Network::new_unordered_nonduplicating(none),
            NetworkKind::Duplicating => Network::new_unordered_duplicating(none),
        }
    }

    /// Whether hosts that resend periodically make the state space infinite under this network
    /// (so a depth bound is needed).
    pub fn needs_depth_bound(self) -> bool {
        self != NetworkKind::Duplicating
    }

    /// Whether a message once sent stays deliverable for ever, any number of times: a lossless
    /// duplicating network. There, sending a message at the earliest moment covers every later
    /// resend, which is what the models' reductions (eager heartbeats, no retransmission) rely
    /// on.
    pub fn redelivers_for_ever(self, lossy: bool) -> bool {
        self == NetworkKind::Duplicating && !lossy
    }
}

/// Whether a state with these crash flags is inside a model's crash bounds. Only the first
/// `crashing` actors (replicas, hosts) crash: stateright lets any actor crash, so a state with
/// another one crashed is outside. With a bound on the crashes of a whole run (`total`), the
/// crashes so far are the restarts each actor counted in its storage (`restarts`) plus the
/// actors down now: a crash is counted at its restart, since no actor hears of its own crash,
/// and a crash beyond the bound leads outside.
pub(crate) fn within_crash_bounds(
    crashed: &[bool],
    crashing: usize,
    total: Option<usize>,
    restarts: impl Iterator<Item = u8>,
) -> bool {
    if crashed.iter().skip(crashing).any(|&c| c) {
        return false;
    }
    let Some(bound) = total else {
        return true;
    };
    let down = crashed.iter().filter(|&&c| c).count();
    restarts.map(usize::from).sum::<usize>() + down <= bound
}

/// stateright's lossiness flag.
pub(crate) fn lossy_network(lossy: bool) -> LossyNetwork {
    if lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    }
}

/// Registers `properties` on `model`, each under its own name with its own predicate.
pub(crate) fn with_properties<A, C, H>(
    model: ActorModel<A, C, H>,
    properties: Vec<Property<ActorModel<A, C, H>>>,
) -> ActorModel<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + std::fmt::Debug + std::hash::Hash,
{
    properties
        .into_iter()
        .fold(model, |m, p| m.property(p.expectation, p.name, p.condition))
}
