//! What a ghost history tells a reducing checker about each step's change to it: which *parts*
//! a change touched. Two steps whose changes share a part do not commute; changes that commute
//! with every other change (insertions into sets, per-actor maxima) touch no part. The checker
//! engine ([`crate::check::reduce`]) reads this to decide which steps are independent.
//!
//! The parts are the bits of a `u64`: bits `0..CLIENT_PARTS` are clients' completion counts in a
//! linearizability history (see [`tester_invoke`]), the rest are for keyed pieces of a spec
//! ([`keyed_part`]).

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::actor::Id;

/// Every part: a change that touches all of them is dependent with every other change.
pub const ALL_PARTS: u64 = u64::MAX;
/// How many parts name clients (by id); clients with larger ids touch every part.
pub const CLIENT_PARTS: usize = 32;

/// How a ghost history tells the reducing engine what a step changed in it.
pub trait GhostHistory: Hash {
    /// The parts of the history changed from `self` to `next`, as bits (0: no change, or only
    /// changes that commute with every other change). Two steps whose changes share a bit are
    /// dependent. The default: every change touches every part.
    fn changed_parts(&self, next: &Self) -> u64 {
        if hash(self) == hash(next) {
            0
        } else {
            ALL_PARTS
        }
    }

    /// Whether the records of `actor`'s own steps (the messages delivered to it and those it
    /// sends) are insertions that commute with each other and are idempotent: from any history,
    /// a sequence of them leaves a history that depends only on the set of messages recorded.
    /// The engine's test of whether two steps of one actor commute ([`Reduce::commute`]) then
    /// compares the messages instead of building the history both ways. The default: no.
    ///
    /// [`Reduce::commute`]: crate::check::reduce::Reduce::commute
    fn records_commute(&self, actor: Id) -> bool {
        let _ = actor;
        false
    }

    /// Whether the message `msg` from `src` can never change its receiver again: delivering it
    /// to `receiver` (the actor) in `receiver_state` changes nothing, and so it stays in every
    /// state the receiver can reach, through crashes and restarts. The engine's view leaves
    /// such messages out of a duplicating network (`Reduce::fingerprint_reduced`): states that
    /// differ only by them behave alike. Only the system knows, so the history, which each
    /// system's model already supplies, answers for it; the actor, its state and the message
    /// come as `Any` so that this trait stays free of any one actor type. The default: never.
    fn spent(&self, receiver: &dyn Any, receiver_state: &dyn Any, src: Id, msg: &dyn Any) -> bool {
        let _ = (receiver, receiver_state, src, msg);
        false
    }

    /// Whether no property of the model reads the state of a crashed actor: the properties
    /// see a crashed actor through its storage alone. stateright keeps the state an actor had
    /// when it crashed until it restarts, though no step reads it (deliveries and timers to a
    /// crashed actor are disabled, and a restart starts from storage), so every state reached
    /// while an actor is down splits by where it crashed. With this, the engine's reduced view
    /// leaves that state out (`Reduce::fingerprint_reduced`) and judges the messages to the
    /// crashed actor by the state it restarts in. The default: no (some property may read it).
    fn crashed_states_unread(&self) -> bool {
        false
    }
}

fn hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl GhostHistory for () {}

impl<T: GhostHistory> GhostHistory for Arc<T> {
    fn changed_parts(&self, next: &Self) -> u64 {
        if Arc::ptr_eq(self, next) {
            0
        } else {
            (**self).changed_parts(next)
        }
    }

    fn records_commute(&self, actor: Id) -> bool {
        (**self).records_commute(actor)
    }

    fn spent(&self, receiver: &dyn Any, receiver_state: &dyn Any, src: Id, msg: &dyn Any) -> bool {
        (**self).spent(receiver, receiver_state, src, msg)
    }

    fn crashed_states_unread(&self) -> bool {
        (**self).crashed_states_unread()
    }
}

/// The parts an invocation by client `thread` touches in stateright's `LinearizabilityTester`:
/// it records how many operations every other client has completed (their completions are its
/// real-time predecessors), so it is dependent with any other client's return; invocations by
/// two clients commute when they are the only two.
pub fn tester_invoke(thread: Id) -> u64 {
    let clients = (1u64 << CLIENT_PARTS) - 1;
    match usize::from(thread) {
        i if i < CLIENT_PARTS => clients & !(1 << i),
        _ => ALL_PARTS,
    }
}

/// The parts a return to client `thread` touches in stateright's `LinearizabilityTester`: that
/// client's count of completed operations.
pub fn tester_return(thread: Id) -> u64 {
    match usize::from(thread) {
        i if i < CLIENT_PARTS => 1 << i,
        _ => ALL_PARTS,
    }
}

/// `parts` (of a step, as [`GhostHistory::changed_parts`] gives them) in the names of a
/// renaming of actor ids (actor `i` becomes `map[i]`): the per-client parts
/// ([`tester_invoke`], [`tester_return`]) move with their clients. Any other part (a
/// [`keyed_part`], whose key may name an actor) cannot be renamed, so a renamed step with one
/// is taken to touch every part: more dependent, which is sound for sleep sets.
pub fn rename_parts(parts: u64, map: &[Id]) -> u64 {
    let clients = (1u64 << CLIENT_PARTS) - 1;
    let identity = map.iter().enumerate().all(|(i, id)| usize::from(*id) == i);
    if parts == ALL_PARTS || identity {
        return parts;
    }
    if parts & !clients != 0 {
        return ALL_PARTS;
    }
    let mut out = 0u64;
    for bit in 0..CLIENT_PARTS {
        if parts & (1 << bit) != 0 {
            let to = map.get(bit).map_or(bit, |id| usize::from(*id));
            if to >= CLIENT_PARTS {
                return ALL_PARTS;
            }
            out |= 1 << to;
        }
    }
    out
}

/// The part of a keyed piece of a spec (a key of a table): changes to different keys commute
/// (two keys may share a part, which only makes their changes dependent).
pub fn keyed_part<K: Hash + ?Sized>(key: &K) -> u64 {
    1 << (CLIENT_PARTS as u64 + hash(key) % (64 - CLIENT_PARTS as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_parts_move_with_their_clients() {
        let ids = |v: &[usize]| v.iter().map(|&i| Id::from(i)).collect::<Vec<Id>>();
        let swap = ids(&[0, 1, 2, 4, 3]);
        let (a, b) = (Id::from(3), Id::from(4));
        assert_eq!(rename_parts(tester_return(a), &swap), tester_return(b));
        assert_eq!(rename_parts(tester_invoke(a), &swap), tester_invoke(b));
        assert_eq!(
            rename_parts(tester_invoke(b) | tester_return(a), &swap),
            tester_invoke(a) | tester_return(b)
        );
        assert_eq!(rename_parts(0, &swap), 0);
        assert_eq!(rename_parts(ALL_PARTS, &swap), ALL_PARTS);
        // The identity renames nothing, keyed parts included; another renaming cannot rename a
        // keyed part, so it touches everything.
        let keyed = keyed_part(&7u8);
        assert_eq!(rename_parts(keyed, &ids(&[0, 1, 2, 3, 4])), keyed);
        assert_eq!(rename_parts(keyed | tester_return(a), &swap), ALL_PARTS);
        // Renaming there and back is the identity.
        let back = swap.clone();
        let p = tester_invoke(a) | tester_return(b);
        assert_eq!(rename_parts(rename_parts(p, &swap), &back), p);
    }

    #[test]
    fn invocations_depend_on_other_clients_returns() {
        let (a, b) = (Id::from(3), Id::from(4));
        assert_ne!(tester_invoke(a) & tester_return(b), 0);
        // Not on its own return (the same actor orders them anyway); returns commute, and so do
        // the invocations of two clients.
        assert_eq!(tester_invoke(a) & tester_return(a), 0);
        assert_eq!(tester_return(a) & tester_return(b), 0);
        assert_eq!(
            tester_invoke(a) & tester_invoke(b) & (tester_return(a) | tester_return(b)),
            0
        );
        // Beyond the ids told apart, everything is dependent.
        assert_eq!(tester_invoke(Id::from(40)), ALL_PARTS);
        assert_ne!(tester_return(Id::from(40)) & tester_invoke(a), 0);
        // Spec keys never alias clients.
        assert_eq!(keyed_part("k") & ((1 << CLIENT_PARTS) - 1), 0);
    }

    #[test]
    fn the_default_touches_everything_on_any_change() {
        #[derive(Hash)]
        struct H(u8);
        impl GhostHistory for H {}
        assert_eq!(H(1).changed_parts(&H(1)), 0);
        assert_eq!(H(1).changed_parts(&H(2)), ALL_PARTS);
        let shared = Arc::new(H(1));
        assert_eq!(shared.changed_parts(&shared.clone()), 0);
    }
}
