//! IronLock's liveness: the lock keeps moving round the ring. In the bounded model (epochs up to
//! `max_epoch`) that is "the lock reaches epoch `max_epoch`"; stateright's own terminal-state
//! check of the weaker "the lock leaves its first holder" stays on the model.

use crate::invariants::lock::LockModelState;

/// The name of stateright's `eventually` property.
pub const LOCK_MOVES: &str = "eventually the lock moves on";

/// The name of the lasso checker's property.
pub const LOCK_KEEPS_MOVING: &str = "the lock keeps moving round the ring";

/// Some host other than the first holder has taken the lock (a host is in epoch 2 or later).
pub fn lock_moved_past_start(s: &LockModelState) -> bool {
    s.actor_states.iter().any(|a| a.epoch >= 2)
}

/// The lock has reached epoch `max_epoch`.
pub fn reached_epoch(max_epoch: u64, s: &LockModelState) -> bool {
    s.actor_states.iter().any(|a| a.epoch >= max_epoch)
}
