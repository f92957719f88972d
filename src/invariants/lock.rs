//! IronLock's spec and safety properties, and the model builder.
//!
//! The spec is the history of lock holders: `holders[e - 1]` is the host that holds the lock in
//! epoch `e` (host 0 in epoch 1). The abstraction grows it by one step whenever the current holder
//! grants the lock (sends `Transfer(e + 1)`), exactly the spec's one action.
//! Properties: every `Locked(e)` was sent by the `e`-th holder of that history; at most one host
//! holds the lock at a time, and a holder in epoch `e` is the `e`-th holder.

use std::collections::BTreeSet;
use std::sync::Arc;

use stateright::actor::{ActorModel, ActorModelState, Envelope, Id, LossyNetwork};
use stateright::Expectation;

use crate::actors::lock::{LockConfig, LockMsg, LockMutation, LockNode};
use crate::invariants::NetworkKind;

/// The ghost history of an IronLock model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LockHistory {
    /// The spec: `holders[e - 1]` holds the lock in epoch `e`.
    pub holders: Vec<Id>,
    /// Every `Locked(e)` sent, with its sender.
    pub locked: BTreeSet<(u64, Id)>,
}

/// The configuration of an IronLock model.
#[derive(Clone, Debug)]
pub struct LockModelCfg {
    /// Hosts in the ring.
    pub nodes: usize,
    /// The model stops exploring past this epoch.
    pub max_epoch: u64,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// A deliberately broken variant, or `None`.
    pub mutation: Option<LockMutation>,
}

impl Default for LockModelCfg {
    fn default() -> Self {
        LockModelCfg {
            nodes: 3,
            max_epoch: 7,
            network: NetworkKind::Duplicating,
            lossy: false,
            mutation: None,
        }
    }
}

/// The model type of IronLock.
pub type LockModel = ActorModel<LockNode, LockModelCfg, LockHistory>;
/// The state type of IronLock models.
pub type LockModelState = ActorModelState<LockNode, LockHistory>;

fn record_out(_: &LockModelCfg, h: &LockHistory, env: Envelope<&LockMsg>) -> Option<LockHistory> {
    match *env.msg {
        LockMsg::Transfer(e) if e == h.holders.len() as u64 + 1 => {
            let mut n = h.clone();
            n.holders.push(env.dst);
            Some(n)
        }
        LockMsg::Locked(e) if !h.locked.contains(&(e, env.src)) => {
            let mut n = h.clone();
            n.locked.insert((e, env.src));
            Some(n)
        }
        _ => None,
    }
}

/// Every `Locked(e)` was sent by the `e`-th holder.
pub fn locked_by_epoch_holder(_: &LockModel, s: &LockModelState) -> bool {
    s.history
        .locked
        .iter()
        .all(|&(e, id)| e >= 1 && s.history.holders.get(e as usize - 1) == Some(&id))
}

/// At most one host holds the lock, and a host holding it in epoch `e` is the `e`-th holder.
pub fn mutual_exclusion(_: &LockModel, s: &LockModelState) -> bool {
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

/// Sometimes: the lock went all the way round the ring.
pub fn went_round(m: &LockModel, s: &LockModelState) -> bool {
    s.history.holders.len() > m.cfg.nodes
}

/// The safety property names.
pub const SAFETY: [&str; 2] = ["Locked sent by the epoch's holder", "mutual exclusion"];

/// Builds the IronLock model.
pub fn lock_model(cfg: LockModelCfg) -> LockModel {
    let ring: Arc<Vec<Id>> = Arc::new((0..cfg.nodes).map(Id::from).collect());
    let actors: Vec<LockNode> = (0..cfg.nodes)
        .map(|me| {
            LockNode::new(LockConfig {
                ring: ring.clone(),
                me,
                hold_ms: 100,
                mutation: cfg.mutation,
            })
        })
        .collect();
    let init = LockHistory {
        holders: vec![Id::from(0)],
        locked: BTreeSet::new(),
    };
    let network = cfg.network.network();
    let lossy = if cfg.lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    };
    ActorModel::new(cfg, init)
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .record_msg_out(record_out)
        .within_boundary(|cfg, s| s.actor_states.iter().all(|a| a.epoch <= cfg.max_epoch))
        .property(Expectation::Always, SAFETY[0], locked_by_epoch_holder)
        .property(Expectation::Always, SAFETY[1], mutual_exclusion)
        .property(
            Expectation::Sometimes,
            "the lock goes round the ring",
            went_round,
        )
        .property(
            Expectation::Eventually,
            crate::liveness::lock::LOCK_MOVES,
            crate::liveness::lock::lock_moved_past_start,
        )
}
