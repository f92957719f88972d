//! IronLock's bounded liveness: the lock eventually leaves its first holder. In the bounded model
//! (epochs up to `max_epoch`) every path ends at the boundary, so terminal states exist and
//! stateright's terminal-state check is meaningful here.

use crate::invariants::lock::{LockModel, LockModelState};

/// The name of the `eventually` property.
pub const LOCK_MOVES: &str = "eventually the lock moves on";

/// Some host other than the first holder has taken the lock (a host is in epoch 2 or later).
pub fn lock_moved_past_start(_: &LockModel, s: &LockModelState) -> bool {
    s.actor_states.iter().any(|a| a.epoch >= 2)
}
