//! The IronLock model: its configuration, the recorder that keeps the ghost history (the spec's
//! holder sequence), and every property registered by name.

use std::collections::BTreeSet;
use std::sync::Arc;

use stateright::actor::{ActorModel, Envelope, Id};
use stateright::Property;

use super::{lossy_network, with_properties, NetworkKind};
use crate::actors::lock::{LockConfig, LockMsg, LockMutation, LockNode};
use crate::invariants::lock::{self as inv, LockHistory, LockModelState};
use crate::liveness::lock as live;
use crate::liveness::LivenessProperty;

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

/// Every property of the lock model, each under its name with its predicate, in report order.
pub fn lock_properties() -> Vec<Property<LockModel>> {
    vec![
        Property::always(
            "Locked sent by the epoch's holder",
            |_: &LockModel, s: &LockModelState| inv::locked_by_epoch_holder(s),
        ),
        Property::always("mutual exclusion", |_: &LockModel, s: &LockModelState| {
            inv::mutual_exclusion(s)
        }),
        Property::sometimes(
            "the lock goes round the ring",
            |m: &LockModel, s: &LockModelState| s.history.holders.len() > m.cfg.nodes,
        ),
        Property::eventually(live::LOCK_MOVES, |_: &LockModel, s: &LockModelState| {
            live::lock_moved_past_start(s)
        }),
    ]
}

/// The lock liveness properties for the lasso and bounded checkers.
pub fn lock_liveness() -> Vec<LivenessProperty<LockModel>> {
    vec![LivenessProperty::eventually(
        live::LOCK_KEEPS_MOVING,
        |m: &LockModel, s: &LockModelState| live::reached_epoch(m.cfg.max_epoch, s),
    )]
}

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
    let lossy = lossy_network(cfg.lossy);
    let model = ActorModel::new(cfg, init)
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .record_msg_out(record_out)
        .within_boundary(|cfg, s| s.actor_states.iter().all(|a| a.epoch <= cfg.max_epoch));
    with_properties(model, lock_properties())
}

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
