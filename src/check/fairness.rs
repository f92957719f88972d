//! What the engine knows of stateright actor models, and nothing of any system: which actions
//! are faults and which are weakly fair tasks, and which steps are stutters.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use stateright::actor::{Actor, ActorModelAction, ActorModelState};

use super::lasso::ActionKind;

/// The fairness model of a stateright actor model: drops, crashes and restarts are faults;
/// delivering a particular message (sender, receiver, content) and firing a particular actor's
/// timer are weakly fair tasks.
pub fn actor_action_kind<M: Hash, T: Hash, R: Hash>(a: &ActorModelAction<M, T, R>) -> ActionKind {
    let mut h = DefaultHasher::new();
    match a {
        ActorModelAction::Drop(_) | ActorModelAction::Crash(_) | ActorModelAction::Recover(_) => {
            return ActionKind::Fault
        }
        ActorModelAction::Deliver { src, dst, msg } => {
            0u8.hash(&mut h);
            (src, dst, msg).hash(&mut h);
        }
        ActorModelAction::Timeout(id, t) => {
            1u8.hash(&mut h);
            (id, t).hash(&mut h);
        }
        ActorModelAction::SelectRandom { actor, key, random } => {
            2u8.hash(&mut h);
            (actor, key, random).hash(&mut h);
        }
    }
    ActionKind::Fair(h.finish())
}

/// As [`actor_action_kind`], but a restart is a weakly fair task of its actor rather than a
/// fault: a crashed actor comes back eventually. Crashes stay faults, so they still stop; what
/// changes is that faults can no longer stop with an actor down for good, which is the
/// assumption of a system whose liveness needs every host back (IronKV: a host that stays down
/// strands the keys it owns). A restart is enabled in every state its actor is down, so weak
/// fairness takes it in every fair cycle, and a state with an actor down is no dead end.
pub fn actor_action_kind_restarting<M: Hash, T: Hash, R: Hash>(
    a: &ActorModelAction<M, T, R>,
) -> ActionKind {
    if let ActorModelAction::Recover(id) = a {
        let mut h = DefaultHasher::new();
        3u8.hash(&mut h);
        id.hash(&mut h);
        return ActionKind::Fair(h.finish());
    }
    actor_action_kind(a)
}

/// Whether two actor-model states are the same but for the last message stateright's duplicating
/// network remembers delivering (it keeps it so that redelivering a message that changes no
/// actor still yields a new fingerprint; for liveness such a step is a stutter).
pub fn same_actor_state<A, H>(a: &ActorModelState<A, H>, b: &ActorModelState<A, H>) -> bool
where
    A: Actor,
    A::Msg: PartialEq,
    H: PartialEq,
{
    a.actor_states == b.actor_states
        && a.timers_set == b.timers_set
        && a.crashed == b.crashed
        && a.history == b.history
        && a.actor_storages == b.actor_storages
        && a.random_choices == b.random_choices
        && a.network.len() == b.network.len()
        && a.network.iter_all().all(|e| {
            b.network
                .iter_all()
                .any(|f| e.src == f.src && e.dst == f.dst && e.msg == f.msg)
        })
}
