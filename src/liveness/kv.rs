//! IronKV's liveness: with a fair network (faults eventually stop), every message sent through
//! SingleDelivery is eventually delivered, and so every request is answered.

use stateright::actor::Id;

use crate::actors::kv::KvNodeState;
use crate::invariants::kv::{answered_or_bound_spent, KvModel, KvState};

use super::checker::{LivenessProperty, Premise};

/// The name of the `eventually` property.
pub const EVERY_REQUEST_ANSWERED: &str = "eventually every request is answered";

/// The name of the delivery property.
pub const EVERYTHING_DELIVERED: &str = "everything sent is eventually delivered";

/// No SingleDelivery message is waiting to be delivered: every message any actor sent has been
/// delivered by its receiver.
pub fn nothing_undelivered(_: &KvModel, s: &KvState) -> bool {
    let sd = |i: usize| match &*s.actor_states[i] {
        KvNodeState::Host(h) => &h.sd,
        KvNodeState::Client(c) => &c.sd,
    };
    (0..s.actor_states.len()).all(|i| {
        sd(i).send.iter().all(|(dst, ch)| {
            let done = sd(usize::from(*dst))
                .recv
                .get(&Id::from(i))
                .map_or(0, |c| c.last_delivered);
            ch.last_sent <= done
        })
    })
}

/// The KV liveness properties for the liveness checkers.
pub fn properties() -> Vec<LivenessProperty<KvModel>> {
    vec![
        LivenessProperty {
            name: EVERY_REQUEST_ANSWERED,
            premise: Premise::Init,
            goal: answered_or_bound_spent,
        },
        LivenessProperty {
            name: EVERYTHING_DELIVERED,
            premise: Premise::Init,
            goal: |m, s| answered_or_bound_spent(m, s) && nothing_undelivered(m, s),
        },
    ]
}
