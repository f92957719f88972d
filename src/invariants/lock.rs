//! IronLock's spec and safety properties, and the ghost history they read.
//!
//! The spec is the history of lock holders: `holders[e - 1]` is the host that holds the lock in
//! epoch `e` (host 0 in epoch 1). The abstraction grows it by one step whenever the current holder
//! grants the lock (sends `Transfer(e + 1)`), exactly the spec's one action.
//! Properties: every `Locked(e)` was sent by the `e`-th holder of that history; at most one host
//! holds the lock at a time, and a holder in epoch `e` is the `e`-th holder.

use std::collections::BTreeSet;

use stateright::actor::{ActorModelState, Id};

use crate::actors::lock::LockNode;
use crate::invariants::ghost::{GhostHistory, ALL_PARTS};

/// The ghost history of an IronLock model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LockHistory {
    /// The spec: `holders[e - 1]` holds the lock in epoch `e`.
    pub holders: Vec<Id>,
    /// Every `Locked(e)` sent, with its sender.
    pub locked: BTreeSet<(u64, Id)>,
}

/// The `Locked` records are insertions into a set (no part); the holders are a sequence, so a
/// change to it touches every part.
impl GhostHistory for LockHistory {
    fn changed_parts(&self, next: &Self) -> u64 {
        if self.holders != next.holders {
            ALL_PARTS
        } else {
            0
        }
    }
}

/// The state type of IronLock models: the hosts' states and the ghost history.
pub type LockModelState = ActorModelState<LockNode, LockHistory>;

/// Every `Locked(e)` was sent by the `e`-th holder.
pub fn locked_by_epoch_holder(s: &LockModelState) -> bool {
    s.history
        .locked
        .iter()
        .all(|&(e, id)| e >= 1 && s.history.holders.get(e as usize - 1) == Some(&id))
}

/// At most one host holds the lock, and a host holding it in epoch `e` is the `e`-th holder.
pub fn mutual_exclusion(s: &LockModelState) -> bool {
    let mut holders = 0;
    for (i, st) in s.actor_states.iter().enumerate() {
        if st.held {
            holders += 1;
            if s.history.holders.get(st.epoch as usize - 1) != Some(&Id::from(i)) {
                return false;
            }
        }
    }
    holders <= 1
}
