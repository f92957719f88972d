//! IronLock, IronFleet's tutorial system: hosts in a ring pass a lock. The holder grants it to
//! the next host with `Transfer(epoch + 1)`; a host that receives a transfer with an epoch higher
//! than any it has seen takes the lock and announces `Locked(epoch)`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// IronLock's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockMsg {
    /// The holder hands the lock to the recipient for this epoch.
    Transfer(u64),
    /// The sender holds the lock in this epoch.
    Locked(u64),
}

impl fmt::Display for LockMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockMsg::Transfer(e) => write!(f, "Transfer(epoch={e})"),
            LockMsg::Locked(e) => write!(f, "Locked(epoch={e})"),
        }
    }
}

/// IronLock's one timer: the holder decides to grant the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockTimer {
    /// Grant the lock to the next host.
    Grant,
}

mutations! {
    /// Deliberately broken variants, for tests and demonstrations only.
    pub enum LockMutation {
        /// The holder keeps the lock after granting it.
        KeepAfterGrant => "keep-after-grant",
        /// A host accepts any transfer, even one with a stale epoch.
        AcceptStaleTransfer => "accept-stale-transfer",
        /// A host that takes the lock never arms its grant timer, so it never passes the lock on
        /// (a liveness bug: safety still holds).
        NeverGrant => "never-grant",
    }
}

/// A host's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockConfig {
    /// The ring, in order; host `ring[0]` holds the lock at epoch 1 initially.
    pub ring: Arc<Vec<Id>>,
    /// This host's index in the ring.
    pub me: usize,
    /// How long the holder keeps the lock before granting it, in milliseconds.
    pub hold_ms: u64,
    /// A deliberately broken variant, or `None`.
    pub mutation: Option<LockMutation>,
}

/// A host's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LockState {
    /// Whether it holds the lock.
    pub held: bool,
    /// The highest epoch it has held the lock in (0: never).
    pub epoch: u64,
}

/// A lock host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockNode {
    /// Its configuration.
    pub cfg: Arc<LockConfig>,
}

impl LockNode {
    /// A host with this configuration.
    pub fn new(cfg: LockConfig) -> Self {
        LockNode { cfg: Arc::new(cfg) }
    }

    fn next(&self) -> Id {
        self.cfg.ring[(self.cfg.me + 1) % self.cfg.ring.len()]
    }

    fn hold(&self) -> std::ops::Range<Duration> {
        let d = Duration::from_millis(self.cfg.hold_ms);
        d..d
    }
}

impl Actor for LockNode {
    type Msg = LockMsg;
    type Timer = LockTimer;
    type State = LockState;
    type Storage = ();
    type Random = ();

    fn name(&self) -> String {
        format!("node {}", self.cfg.me)
    }

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> LockState {
        if self.cfg.me == 0 {
            o.set_timer(LockTimer::Grant, self.hold());
            LockState {
                held: true,
                epoch: 1,
            }
        } else {
            LockState::default()
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<LockState>,
        src: Id,
        msg: LockMsg,
        o: &mut Out<Self>,
    ) {
        if let LockMsg::Transfer(epoch) = msg {
            let accept = epoch > state.epoch
                || self.cfg.mutation == Some(LockMutation::AcceptStaleTransfer) && !state.held;
            if accept {
                *state.to_mut() = LockState { held: true, epoch };
                o.send(src, LockMsg::Locked(epoch));
                if self.cfg.mutation != Some(LockMutation::NeverGrant) {
                    o.set_timer(LockTimer::Grant, self.hold());
                }
            }
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<LockState>,
        _timer: &LockTimer,
        o: &mut Out<Self>,
    ) {
        if state.held {
            o.send(self.next(), LockMsg::Transfer(state.epoch + 1));
            if self.cfg.mutation != Some(LockMutation::KeepAfterGrant) {
                state.to_mut().held = false;
            }
        }
    }
}
