//! IronKV's liveness: with a fair network (faults eventually stop), every message sent through
//! SingleDelivery is eventually delivered, and so every request is answered.
//!
//! The model bounds the redirects a client follows for one operation (`max_redirects`); a client
//! that spent the bound gave up. A continuation in which one did is excused
//! ([`some_client_gave_up`]); giving up is final, so a permanent redirect loop would also read as
//! "gave up": the bound hides it.

use stateright::actor::Id;

use crate::actors::kv::{ClientOp, KvClientState, KvNodeState};
use crate::invariants::kv::KvState;

/// The name of the `eventually` property.
pub const EVERY_REQUEST_ANSWERED: &str = "eventually every request is answered";

/// The name of the delivery property.
pub const EVERYTHING_DELIVERED: &str = "everything sent is eventually delivered";

/// Each client's state (the actors after the `n` hosts) with its operations.
fn clients<'a>(
    n: usize,
    ops: &'a [Vec<ClientOp>],
    s: &'a KvState,
) -> impl Iterator<Item = (&'a KvClientState, &'a Vec<ClientOp>)> + 'a {
    s.actor_states
        .iter()
        .skip(n)
        .filter_map(|a| a.client())
        .zip(ops)
}

/// Every client has done all its operations, or was told its channel was closed (an explicit
/// answer: it stops there).
pub fn all_clients_done(n: usize, ops: &[Vec<ClientOp>], s: &KvState) -> bool {
    clients(n, ops, s).all(|(c, ops)| c.closed || (c.next_op >= ops.len() && !c.waiting))
}

/// Some client gave up an operation after the model's redirect bound (final: it stops there).
pub fn some_client_gave_up(n: usize, ops: &[Vec<ClientOp>], s: &KvState) -> bool {
    clients(n, ops, s).any(|(c, _)| c.gave_up)
}

/// Every client has done all its operations, or gave up one after the model's redirect bound
/// (`max_redirects`): the bound, not the protocol, stopped it.
pub fn answered_or_bound_spent(n: usize, ops: &[Vec<ClientOp>], s: &KvState) -> bool {
    clients(n, ops, s)
        .all(|(c, ops)| c.gave_up || c.closed || (c.next_op >= ops.len() && !c.waiting))
}

/// No SingleDelivery message is waiting to be delivered: every message any actor sent has been
/// delivered by its receiver.
pub fn nothing_undelivered(s: &KvState) -> bool {
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
