//! IronKV's liveness: with a fair network (faults eventually stop), every message sent through
//! SingleDelivery is eventually delivered, and so every request is answered.
//!
//! The model bounds the redirects a client follows for one operation (`max_redirects`); a client
//! that spent the bound gave up. Giving up is final, so "some client gave up" alone would excuse
//! a permanent redirect loop too: the bound would hide it. The exemption is therefore
//! [`gave_up_where_the_route_answers`]: every client that gave up did so on a route that leads
//! to an answer in the state at hand (the hosts' own redirect decisions, followed from the host
//! the client last asked, reach one that answers). A redirect bounced while a delegation was in
//! flight is excused once the delegation lands; the checkers excuse a continuation only if the
//! exemption holds throughout it (its cycle, or the second half of a bounded continuation), so
//! a loop that never resolves is judged.

use stateright::actor::Id;

use crate::actors::kv::{ClientOp, KvClientState, KvNode, KvNodeState};
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

/// Some client gave up, and every client that did would now be answered: from the host it last
/// asked, each host's redirect decision for the client's key ([`crate::actors::kv::Host::redirect_for`],
/// what its handler would do) leads, within one hop per host, to a host that answers. `actors`
/// are the model's actors (hosts first, `n` of them). A route that loops is no excuse.
pub fn gave_up_where_the_route_answers(
    actors: &[KvNode],
    n: usize,
    ops: &[Vec<ClientOp>],
    s: &KvState,
) -> bool {
    let mut any = false;
    for (c, ops) in clients(n, ops, s) {
        if !c.gave_up {
            continue;
        }
        any = true;
        let Some(op) = ops.get(c.next_op) else {
            return false;
        };
        let Some(key) = op.key() else {
            return false;
        };
        let write = matches!(op, ClientOp::Set(..));
        let mut at = c.target;
        let mut answered = false;
        for _ in 0..=n {
            let i = usize::from(at);
            let (Some(KvNode::Host(host)), Some(state)) =
                (actors.get(i), s.actor_states.get(i).and_then(|a| a.host()))
            else {
                return false;
            };
            match host.redirect_for(state, key, write) {
                None => {
                    answered = true;
                    break;
                }
                Some(next) => at = next,
            }
        }
        if !answered {
            return false;
        }
    }
    any
}

/// Every client has done all its operations, or gave up one after the model's redirect bound
/// (`max_redirects`): the bound, not the protocol, stopped it. A `sometimes`-style summary for
/// stateright's terminal-state check; the liveness checkers use the stricter
/// [`gave_up_where_the_route_answers`] as their exemption.
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
