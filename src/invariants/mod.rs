//! Safety: the high-level specs, abstraction functions from system states to spec states, the
//! properties every explored state is checked against, and the model builders that assemble
//! actors, network, history and properties for each system.
//!
//! Nothing here calls protocol code to decide what is correct: a property reads actor states and
//! the ghost history (what was sent), and compares them with a small sequential spec.

pub mod kv;
pub mod lock;
pub mod rsl;
pub mod spec;

use serde::{Deserialize, Serialize};
use stateright::actor::{Envelope, Network};

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
    /// Parses `ordered`, `unordered` or `duplicating`.
    pub fn parse(s: &str) -> Option<NetworkKind> {
        match s {
            "ordered" => Some(NetworkKind::Ordered),
            "unordered" => Some(NetworkKind::Unordered),
            "duplicating" => Some(NetworkKind::Duplicating),
            _ => None,
        }
    }

    /// The stateright network with no message in flight.
    pub fn network<M: Clone + Eq + std::hash::Hash + Ord>(self) -> Network<M> {
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
}
