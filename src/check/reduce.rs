//! What the engine needs to know of a model to reduce its exploration, and the independence
//! relation it derives for any stateright actor model from the actor structure alone.
//!
//! [`Reduce`] has four hooks: a state fingerprint (exact, or leaving out what nothing reads), an
//! action's *footprint* (the resources it touches, as a bit set: two actions whose footprints are
//! disjoint are independent), the parts of the ghost history a step changed, and an action's
//! identity key. Any `Model` can implement it with the defaults (`impl Reduce for MyModel {}`):
//! every action then touches everything, so sleep sets cut nothing and the engine is a plain
//! fingerprint search. Every stateright `ActorModel` gets the implementation below, with no
//! change to its actors.
//!
//! ## Independence in an actor model
//!
//! A step of actor `a` (a delivery to `a`, a timer of `a`, a random choice of `a`) reads and
//! writes only `a`'s state, `a`'s timers, `a`'s storage, the messages it consumes from the
//! network and the messages it adds. Two steps of different actors therefore commute: sends add
//! to a set (duplicating network), a multiset (unordered), or the tail of a per-pair queue
//! (ordered, whose deliverable head a send to a non-empty queue does not change), and neither step
//! can disable the other. The exceptions, which the footprints encode:
//!
//! * a drop of envelope `e` touches `e`'s sender and receiver (it disables the delivery of `e`,
//!   and on a duplicating network a resend of `e` by its sender re-adds what the drop removed);
//! * crashes and restarts also share the crash budget (`max_crashes`): a crash of one actor can
//!   disable the crash of another, and a restart re-enables it;
//! * the ghost history. A step's change to it is described by [`GhostHistory::changed_parts`]
//!   as a second bit set: two steps whose history changes share a part are dependent. The default
//!   is one part for any change, so every two history-changing steps are dependent; a history
//!   made of commutative pieces says so (insertions into sets, per-actor maxima: no part at all;
//!   stateright's `LinearizabilityTester`: see [`crate::invariants::ghost`]). This
//!   rests on the recorders being *monotone across actors*: a message a recorder ignores (returns
//!   `None` for) stays ignored after another actor's record. Recorders that insert into sets or
//!   keep per-actor entries (every recorder in this crate) are. The test suite checks the
//!   consequence on every small configuration: sleep-set exploration reaches exactly the states
//!   of the view explored without reduction (and ignoring the history parts loses states there).
//!
//! stateright's duplicating network also remembers the last message delivered, only so that a
//! redelivery that changes no actor gets a new fingerprint. No action and no property reads it
//! (no network iterator yields it), yet it makes every two deliveries non-commuting and multiplies
//! the states. [`Reduce::fingerprint`] leaves it out unless asked for the exact state
//! (`exact`), which is what `--reduction none` uses to match stateright's count state for state.

use std::hash::{BuildHasher, Hash, Hasher};

use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState, Id, Network};
use stateright::Model;

pub use crate::invariants::ghost::{GhostHistory, ALL_PARTS};

/// The footprint bit of the crash budget (crashes and restarts).
pub const CRASH_BUDGET: u64 = 1 << 63;
/// How many footprint bits name actors; actor `i` gets bit `i % ACTOR_BITS` (two actors sharing
/// a bit are only treated as dependent: sound, less reduction).
pub const ACTOR_BITS: usize = 63;
/// A fast hasher with fixed keys, so fingerprints are the same in every run and on every thread.
pub(crate) fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
    .build_hasher()
}

/// Hashes a value with [`hasher`] (also the key of an action, [`Reduce::action_key`], which
/// symmetry's renamed keys must equal for the identity).
pub(crate) fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = hasher();
    value.hash(&mut h);
    h.finish()
}

/// What the reducing engine needs to know of a model. Every method has a default that makes the
/// reduction do nothing, so any `Model` can opt in with an empty `impl`.
pub trait Reduce: Model {
    /// The state's 64-bit fingerprint (never 0). With `exact`, every field counts; without, the
    /// engine may leave out parts that no action and no property reads.
    fn fingerprint(&self, state: &Self::State, exact: bool) -> u64
    where
        Self::State: Hash,
    {
        let _ = exact;
        hash_of(state).max(1)
    }

    /// The resources `action` touches, as bits (see the module doc). The default touches
    /// everything: nothing is independent.
    fn footprint(&self, action: &Self::Action) -> u64 {
        let _ = action;
        u64::MAX
    }

    /// The parts of the ghost history changed by the step from `before` to `after` (see
    /// [`GhostHistory`]). The default: none (models without a history).
    fn history_parts(&self, before: &Self::State, after: &Self::State) -> u64 {
        let _ = (before, after);
        0
    }

    /// The identity of an action, the same in every state where it is enabled.
    fn action_key(&self, action: &Self::Action) -> u64
    where
        Self::Action: Hash,
    {
        hash_of(action)
    }
}

fn actor_bit(id: Id) -> u64 {
    1u64 << (usize::from(id) % ACTOR_BITS)
}

impl<A, C, H> Reduce for ActorModel<A, C, H>
where
    A: Actor,
    A::Msg: Ord + Hash,
    A::Timer: Ord + Hash,
    A::Random: Hash,
    A::State: Hash,
    A::Storage: Hash,
    H: Clone + std::fmt::Debug + GhostHistory,
{
    fn fingerprint(&self, s: &ActorModelState<A, H>, exact: bool) -> u64 {
        if exact {
            return hash_of(s).max(1);
        }
        let mut h = hasher();
        s.actor_states.hash(&mut h);
        match &s.network {
            // Everything but the last message delivered (see the module doc). The set's hash
            // is the wrapping sum of its envelopes' hashes: independent of the set's order
            // without the sort stateright's `Hash` of a set does.
            Network::UnorderedDuplicating(set, _last_delivered) => {
                0u8.hash(&mut h);
                h.write_usize(set.len());
                let sum = set
                    .iter()
                    .fold(0u64, |sum, env| sum.wrapping_add(hash_of(env)));
                h.write_u64(sum);
            }
            other => {
                1u8.hash(&mut h);
                other.hash(&mut h);
            }
        }
        s.timers_set.hash(&mut h);
        s.random_choices.hash(&mut h);
        s.crashed.hash(&mut h);
        s.actor_storages.hash(&mut h);
        s.history.hash(&mut h);
        h.finish().max(1)
    }

    fn history_parts(&self, before: &ActorModelState<A, H>, after: &ActorModelState<A, H>) -> u64 {
        before.history.changed_parts(&after.history)
    }

    fn footprint(&self, action: &ActorModelAction<A::Msg, A::Timer, A::Random>) -> u64 {
        match action {
            ActorModelAction::Deliver { dst, .. } => actor_bit(*dst),
            ActorModelAction::Timeout(id, _) => actor_bit(*id),
            ActorModelAction::SelectRandom { actor, .. } => actor_bit(*actor),
            ActorModelAction::Crash(id) | ActorModelAction::Recover(id) => {
                actor_bit(*id) | CRASH_BUDGET
            }
            ActorModelAction::Drop(env) => actor_bit(env.src) | actor_bit(env.dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::{Envelope, Out};
    use std::borrow::Cow;

    /// An actor that does nothing: only its action footprints are looked at.
    struct Idle;

    impl Actor for Idle {
        type Msg = u8;
        type State = u8;
        type Timer = u8;
        type Random = u8;
        type Storage = u8;
        fn on_start(&self, _: Id, _: &Option<u8>, _: &mut Out<Self>) -> u8 {
            0
        }
        fn on_msg(&self, _: Id, _: &mut Cow<u8>, _: Id, _: u8, _: &mut Out<Self>) {}
    }

    fn footprint(a: ActorModelAction<u8, u8, u8>) -> u64 {
        ActorModel::<Idle, (), ()>::new((), ()).footprint(&a)
    }

    fn deliver(src: usize, dst: usize, msg: u8) -> u64 {
        footprint(ActorModelAction::Deliver {
            src: Id::from(src),
            dst: Id::from(dst),
            msg,
        })
    }

    #[test]
    fn independence_follows_the_actors() {
        // Deliveries to different actors are independent; to the same actor, dependent.
        assert_eq!(deliver(0, 1, 7) & deliver(2, 3, 7), 0);
        assert_ne!(deliver(0, 1, 7) & deliver(2, 1, 8), 0);
        // A timer and a delivery at the same actor are dependent.
        assert_ne!(
            footprint(ActorModelAction::Timeout(Id::from(1), 0)) & deliver(0, 1, 0),
            0
        );
        // Crashes and restarts of different actors share the crash budget.
        let crash0 = footprint(ActorModelAction::Crash(Id::from(0)));
        let recover1 = footprint(ActorModelAction::Recover(Id::from(1)));
        assert_ne!(crash0 & recover1, 0);
        // A crash of one actor and a delivery to another are independent.
        assert_eq!(crash0 & deliver(2, 1, 0), 0);
        // A drop touches sender and receiver: dependent with the delivery it disables and with
        // any step of the sender (which may resend what the drop removed).
        let drop = footprint(ActorModelAction::Drop(Envelope {
            src: Id::from(2),
            dst: Id::from(1),
            msg: 0,
        }));
        assert_ne!(drop & deliver(2, 1, 0), 0);
        assert_ne!(
            drop & footprint(ActorModelAction::Timeout(Id::from(2), 0)),
            0
        );
        assert_eq!(drop & deliver(1, 0, 0), 0);
    }
}
