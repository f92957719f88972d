//! Symmetry reduction: states identified up to a renaming of interchangeable actors.
//!
//! Two clients with the same workload are interchangeable when the protocol never tells them
//! apart by id: swapping their ids everywhere in a state (actor slots, messages, the ghost
//! history) gives a state with the same future, up to the same swap, and every property here
//! reads clients only through what they did, never through which id did it. So a search may
//! visit one state per *orbit* (the states reachable from each other by such renamings) and
//! reach every verdict it would reach unreduced.
//!
//! The engine does it by fingerprint, not by canonical state: a state's fingerprint is the
//! smallest fingerprint of its renamings (what the view hashes, renamed in place), so all the
//! states of an orbit share one, and the first of them reached is the one expanded. Only the
//! renamings that could give the smallest are tried: within a group, actors are ordered by a
//! signature no renaming changes, and only ties are tried in every order. The
//! search still expands real states along real transitions, so every counterexample replays as
//! it was found, in the actors' own names; it never shows a renamed state.
//!
//! ## With sleep sets (`--reduction all`)
//! A sleep set names actions in the ids of the state it was computed in, and another state of
//! the same orbit names them differently. So under symmetry the visited set keeps sleep sets in
//! the ids of the orbit's *canonical renaming*: the renaming whose fingerprint is the orbit's
//! (the smallest). The engine expands a real state `t`, computes each child's sleep set in
//! `t`'s ids (independence does not depend on names), and stores it renamed by the child's
//! canonical renaming: each action's key is the key of the renamed action, each history part
//! moves with its client ([`crate::invariants::ghost::rename_parts`]). When it expands a state it
//! renames the stored set back through that state's own canonical renaming.
//!
//! Why this is sound: every notion the sleep-set argument uses is invariant under renaming. Two
//! actions are independent in `t` exactly when their renamings are independent in the renamed
//! state (footprints are actor sets, history parts client sets), and the renamed successor of
//! `t` by `a` is the successor of the renamed `t` by the renamed `a`. So the search over orbits
//! is the sleep-set search over the quotient system, whose states are the canonical renamings.
//! Where a canonical state has automorphisms (two renamings with the smallest fingerprint), the
//! renaming picked is one of them; an automorphism maps the state to itself and an action to
//! one whose successor lies in the same orbit, so a set stored through either names transitions
//! whose targets are covered alike. The tests check the consequence: with sleep sets and
//! symmetry together the engine visits exactly the orbits symmetry alone visits, with the same
//! verdicts, and catches every mutation.
//!
//! What a model must give: the groups of interchangeable actors, and stateright's [`Rewrite`]
//! over [`Id`] for its actor states, messages, storage and history
//! ([`Symmetry::actors`] does the rest for any actor model). Where the protocol breaks a
//! tie by id, or keeps ids where a renaming cannot reach them, it is not symmetric and the model
//! must not offer this (the RSL model refuses it with evicting session tables and with state
//! transfer: see `actors::rsl::rename`).

use std::any::Any;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::actor::{
    Actor, ActorModel, ActorModelAction, ActorModelState, Envelope, Id, Network,
};
use stateright::util::DenseNatMap;
use stateright::{Model, Rewrite, RewritePlan};

use super::reduce::{hash_of, hasher, ReducedReading};
use crate::invariants::ghost::{rename_parts, GhostHistory};

/// A model's symmetry for the engine: the function that gives a state the fingerprint of its
/// orbit and, for actor models, the renaming that gives it (to rename sleep sets, see the
/// module doc). Type-erased, so that run options stay free of the model's type; the engine takes
/// it back for its model ([`Symmetry::for_model`]).
#[derive(Clone)]
pub struct Symmetry {
    fns: Arc<dyn Any + Send + Sync>,
    what: String,
}

/// A renaming of actor ids (actor `i` becomes `self.0[i]`), opaque to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renaming(Arc<[Id]>);

/// What the engine uses of a symmetry for models of type `M`.
pub struct SymmetryFns<M: Model> {
    /// The orbit's fingerprint, with the renaming that gives it when the symmetry can rename
    /// actions (`None` otherwise).
    pub orbit: Orbit<M>,
    /// An action's key in the names of a renaming (`None`: this symmetry cannot rename
    /// actions, so it cannot be combined with sleep sets).
    pub rename_key: Option<RenameKey<M>>,
    /// A step's history parts in the names of a renaming (`false`) or back from them (`true`).
    pub rename_parts: Option<RenameParts>,
}

/// A state's orbit fingerprint, with the renaming that gives it.
pub type Orbit<M> = Arc<dyn Fn(&M, &<M as Model>::State) -> (u64, Option<Renaming>) + Send + Sync>;

/// History parts renamed into the names of a renaming (`false`) or back from them (`true`).
pub type RenameParts = Arc<dyn Fn(u64, &Renaming, bool) -> u64 + Send + Sync>;

/// An action's key in the names of a renaming.
pub type RenameKey<M> = Arc<dyn Fn(&<M as Model>::Action, &Renaming) -> u64 + Send + Sync>;

impl<M: Model> Clone for SymmetryFns<M> {
    fn clone(&self) -> Self {
        SymmetryFns {
            orbit: self.orbit.clone(),
            rename_key: self.rename_key.clone(),
            rename_parts: self.rename_parts.clone(),
        }
    }
}

impl Symmetry {
    /// A symmetry of models of type `M` given by its orbit fingerprint alone, described by
    /// `what` (for the report). The function may hold what it needs, computed once. Such a
    /// symmetry cannot be combined with sleep sets.
    pub fn new<M: Model + 'static>(
        orbit_fingerprint: impl Fn(&M, &M::State) -> u64 + Send + Sync + 'static,
        what: String,
    ) -> Self {
        let fns: SymmetryFns<M> = SymmetryFns {
            orbit: Arc::new(move |m: &M, s: &M::State| (orbit_fingerprint(m, s), None)),
            rename_key: None,
            rename_parts: None,
        };
        Symmetry {
            fns: Arc::new(fns),
            what,
        }
    }

    /// The symmetry of an actor model whose actors in each of `groups` are interchangeable (see
    /// the module doc for what that takes), described by `what`. It can be combined with sleep
    /// sets.
    pub fn actors<A, C, H>(groups: Vec<Vec<Id>>, what: String) -> Self
    where
        A: Actor + 'static,
        A::State: Rewrite<Id>,
        A::Msg: Rewrite<Id> + Hash + Ord,
        A::Timer: Hash + Ord,
        A::Random: Rewrite<Id> + Hash,
        A::Storage: Rewrite<Id>,
        C: 'static,
        H: Rewrite<Id> + Hash + Clone + std::fmt::Debug + GhostHistory + 'static,
        ActorModel<A, C, H>: Model<
            State = ActorModelState<A, H>,
            Action = ActorModelAction<A::Msg, A::Timer, A::Random>,
        >,
    {
        let fns: SymmetryFns<ActorModel<A, C, H>> = SymmetryFns {
            orbit: Arc::new(move |m: &ActorModel<A, C, H>, s: &ActorModelState<A, H>| {
                let reading = ReducedReading::of(m, s);
                let seen = Seen {
                    spent: &|src: Id, dst: Id, msg: &A::Msg| reading.spent(m, s, src, dst, msg),
                    left_out: &|i: usize| reading.left_out(i),
                };
                let (fp, map) = actor_orbit(s, &groups, &seen);
                (fp, Some(Renaming(map.into())))
            }),
            rename_key: Some(Arc::new(
                |a: &ActorModelAction<A::Msg, A::Timer, A::Random>, r: &Renaming| {
                    renamed_action_key(a, &r.0)
                },
            )),
            rename_parts: Some(Arc::new(|parts: u64, r: &Renaming, back: bool| {
                if !back {
                    return rename_parts(parts, &r.0);
                }
                let mut inverse = r.0.to_vec();
                for (i, id) in r.0.iter().enumerate() {
                    inverse[usize::from(*id)] = Id::from(i);
                }
                rename_parts(parts, &inverse)
            })),
        };
        Symmetry {
            fns: Arc::new(fns),
            what,
        }
    }

    /// What the engine uses, if this symmetry is for models of type `M`.
    pub fn for_model<M: Model + 'static>(&self) -> Option<SymmetryFns<M>> {
        self.fns.downcast_ref::<SymmetryFns<M>>().cloned()
    }

    /// Whether this symmetry can rename actions (and so be combined with sleep sets).
    pub fn renames_actions<M: Model + 'static>(&self) -> bool {
        self.for_model::<M>()
            .is_some_and(|f| f.rename_key.is_some())
    }

    /// What is interchangeable, in words.
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// The key of `action` renamed by `map`: the key [`crate::check::reduce::Reduce::action_key`]
/// gives the renamed action (the same value, unrenamed, for the identity).
fn renamed_action_key<M, T, R>(action: &ActorModelAction<M, T, R>, map: &[Id]) -> u64
where
    M: Rewrite<Id> + Hash,
    T: Hash + Clone,
    R: Rewrite<Id> + Hash,
{
    let identity = is_identity(map);
    if identity {
        return hash_of(action);
    }
    let plan = plan_of(map);
    let id = |i: &Id| plan.rewrite(i);
    let renamed = match action {
        ActorModelAction::Deliver { src, dst, msg } => ActorModelAction::Deliver {
            src: id(src),
            dst: id(dst),
            msg: msg.rewrite(&plan),
        },
        ActorModelAction::Drop(env) => ActorModelAction::Drop(Envelope {
            src: id(&env.src),
            dst: id(&env.dst),
            msg: env.msg.rewrite(&plan),
        }),
        ActorModelAction::Timeout(a, t) => ActorModelAction::Timeout(id(a), t.clone()),
        ActorModelAction::Crash(a) => ActorModelAction::Crash(id(a)),
        ActorModelAction::Recover(a) => ActorModelAction::Recover(id(a)),
        ActorModelAction::SelectRandom { actor, key, random } => ActorModelAction::SelectRandom {
            actor: id(actor),
            key: key.clone(),
            random: random.rewrite(&plan),
        },
    };
    hash_of(&renamed)
}

impl fmt::Debug for Symmetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symmetry({})", self.what)
    }
}

/// Whether `map` renames no actor.
fn is_identity(map: &[Id]) -> bool {
    map.iter().enumerate().all(|(i, id)| usize::from(*id) == i)
}

/// stateright's rewrite plan for the renaming `map` (actor `i` becomes `map[i]`).
fn plan_of(map: &[Id]) -> RewritePlan<Id, DenseNatMap<Id, Id>> {
    let dense: DenseNatMap<Id, Id> = map.to_vec().into();
    RewritePlan::new(dense, |x, m| *m.get(*x).unwrap_or(x))
}

/// Every permutation of `0..k`, the identity first.
fn permutations(k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(k - 1) {
        for at in (0..k).rev() {
            let mut q = p.clone();
            q.insert(at, k - 1);
            out.push(q);
        }
    }
    out
}

/// `state` with every actor id renamed by `map` (actor `i` becomes actor `map[i]`): actor
/// slots, messages, timers, crash flags, storage and the history.
pub fn rename<A, H>(state: &ActorModelState<A, H>, map: &[Id]) -> ActorModelState<A, H>
where
    A: Actor,
    A::State: Rewrite<Id>,
    A::Msg: Rewrite<Id>,
    A::Random: Rewrite<Id>,
    A::Storage: Rewrite<Id>,
    H: Rewrite<Id>,
{
    let plan = plan_of(map);
    ActorModelState {
        actor_states: plan.reindex(&state.actor_states),
        network: match &state.network {
            Network::UnorderedDuplicating(set, _) => {
                // The last message delivered is left out of the view anyway; renaming it would
                // only allocate.
                Network::UnorderedDuplicating(set.rewrite(&plan), None)
            }
            other => other.rewrite(&plan),
        },
        timers_set: plan.reindex(&state.timers_set),
        random_choices: plan.reindex(&state.random_choices),
        crashed: plan.reindex(&state.crashed),
        actor_storages: plan.reindex(&state.actor_storages),
        history: state.history.rewrite(&plan),
    }
}

/// What of a state the fingerprints read, beyond the plain view: which messages are spent and
/// which actors' states are left out (see `ReducedReading`). A renaming renames a receiver
/// with its message and an actor with its state, so both are asked of the state as it is.
pub struct Seen<'a, Msg> {
    /// Whether a message (source, destination, message) is left out.
    pub spent: &'a dyn Fn(Id, Id, &Msg) -> bool,
    /// Whether actor `i`'s state is left out.
    pub left_out: &'a dyn Fn(usize) -> bool,
}

/// A signature of actor `c` that no renaming within its group changes: its state with every
/// member of the group written as the group's first (so which member it names does not
/// matter), its crash flag, its timers, and how many envelopes it sent and is sent, all as the
/// view sees them. A state and any renaming of it give each actor the same signature as its
/// image, and so do two states the view identifies.
fn signature<A, H>(
    state: &ActorModelState<A, H>,
    c: Id,
    collapse: &[Id],
    seen: &Seen<'_, A::Msg>,
) -> u64
where
    A: Actor,
    A::State: Rewrite<Id>,
{
    let plan = plan_of(collapse);
    let i = usize::from(c);
    let (mut sent, mut received) = (0usize, 0usize);
    let duplicating = matches!(state.network, Network::UnorderedDuplicating(..));
    for env in state.network.iter_all() {
        if (env.src != c && env.dst != c)
            || (duplicating && (seen.spent)(env.src, env.dst, env.msg))
        {
            continue;
        }
        sent += usize::from(env.src == c);
        received += usize::from(env.dst == c);
    }
    let mut h = DefaultHasher::new();
    if !(seen.left_out)(i) {
        state.actor_states[i].rewrite(&plan).hash(&mut h);
    }
    state.crashed[i].hash(&mut h);
    state.timers_set[i].hash(&mut h);
    (sent, received).hash(&mut h);
    h.finish()
}

/// The renamings worth trying for `state`: within each group, the members ordered by
/// [`signature`] take the group's ids in order; members with equal signatures take them in
/// every order. The set is the same, up to the renaming, for every state of an orbit, so the
/// smallest fingerprint over it is still the orbit's, and a state whose interchangeable actors
/// all differ costs one fingerprint instead of one per renaming of the group.
fn candidate_renamings<A, H>(
    state: &ActorModelState<A, H>,
    groups: &[Vec<Id>],
    seen: &Seen<'_, A::Msg>,
) -> Vec<Vec<Id>>
where
    A: Actor,
    A::State: Rewrite<Id>,
{
    let n = state.actor_states.len();
    let mut all = vec![(0..n).map(Id::from).collect::<Vec<Id>>()];
    for group in groups {
        let mut ids = group.clone();
        ids.sort();
        let mut collapse: Vec<Id> = (0..n).map(Id::from).collect();
        for &m in &ids {
            collapse[usize::from(m)] = ids[0];
        }
        let mut members: Vec<(u64, Id)> = ids
            .iter()
            .map(|&m| (signature(state, m, &collapse, seen), m))
            .collect();
        members.sort();
        // Runs of equal signatures: each run's members may take its slots in any order.
        let mut orders: Vec<Vec<Id>> = vec![Vec::new()];
        let mut at = 0;
        while at < members.len() {
            let end = members[at..]
                .iter()
                .position(|m| m.0 != members[at].0)
                .map_or(members.len(), |k| at + k);
            let run: Vec<Id> = members[at..end].iter().map(|m| m.1).collect();
            let mut next = Vec::new();
            for perm in permutations(run.len()) {
                for prefix in &orders {
                    let mut o = prefix.clone();
                    o.extend(perm.iter().map(|&k| run[k]));
                    next.push(o);
                }
            }
            orders = next;
            at = end;
        }
        let mut next = Vec::new();
        for order in &orders {
            for base in &all {
                let mut map = base.clone();
                for (slot, member) in order.iter().enumerate() {
                    map[usize::from(*member)] = ids[slot];
                }
                next.push(map);
            }
        }
        all = next;
    }
    all
}

/// The fingerprint of `state` renamed by `map`, computed without building the renamed state's
/// network set: each actor's renamed state, storage, timers and crash flag in its new slot, the
/// wrapping sum of the renamed envelopes' hashes, the renamed history. The same function for
/// every map (the identity renames nothing), so equal renamed states get equal values.
fn renamed_fingerprint<A, H>(
    state: &ActorModelState<A, H>,
    map: &[Id],
    seen: &Seen<'_, A::Msg>,
) -> u64
where
    A: Actor,
    A::State: Rewrite<Id>,
    A::Msg: Rewrite<Id>,
    A::Random: Rewrite<Id>,
    A::Storage: Rewrite<Id>,
    H: Rewrite<Id> + Hash,
{
    let identity = is_identity(map);
    let plan = plan_of(map);
    let n = state.actor_states.len();
    // The actor that lands in slot `j`.
    let mut from = vec![0usize; n];
    for (i, id) in map.iter().enumerate() {
        from[usize::from(*id)] = i;
    }
    let mut h = hasher();
    h.write_usize(n);
    for &i in &from {
        let left_out = (seen.left_out)(i);
        h.write_u8(u8::from(left_out));
        if identity {
            if !left_out {
                state.actor_states[i].hash(&mut h);
            }
            state.actor_storages[i].hash(&mut h);
        } else {
            if !left_out {
                state.actor_states[i].rewrite(&plan).hash(&mut h);
            }
            state.actor_storages[i].rewrite(&plan).hash(&mut h);
        }
        state.timers_set[i].hash(&mut h);
        state.random_choices[i].hash(&mut h);
        state.crashed[i].hash(&mut h);
    }
    let envelope_hash = |env: &Envelope<A::Msg>| -> u64 {
        let mut e = hasher();
        if identity {
            env.hash(&mut e);
        } else {
            Envelope {
                src: plan.rewrite(&env.src),
                dst: plan.rewrite(&env.dst),
                msg: env.msg.rewrite(&plan),
            }
            .hash(&mut e);
        }
        e.finish()
    };
    match &state.network {
        // The last message delivered is left out, as in the view, and so are the messages
        // their receivers can never use again, as in the reduced view (a renaming renames the
        // receiver with its message, so whether a message is spent is the same in every
        // renaming: it is asked of the state as it is).
        Network::UnorderedDuplicating(set, _) => {
            let (mut count, mut sum) = (0usize, 0u64);
            for env in set
                .iter()
                .filter(|env| !(seen.spent)(env.src, env.dst, &env.msg))
            {
                count += 1;
                sum = sum.wrapping_add(envelope_hash(env));
            }
            h.write_usize(count);
            h.write_u64(sum);
        }
        other => {
            if identity {
                other.hash(&mut h);
            } else {
                other.rewrite(&plan).hash(&mut h);
            }
        }
    }
    if identity {
        state.history.hash(&mut h);
    } else {
        state.history.rewrite(&plan).hash(&mut h);
    }
    h.finish().max(1)
}

/// The fingerprint of `state`'s orbit under the renamings of `groups`, with the renaming that
/// gives it: the smallest fingerprint of the state renamed by each of the renamings
/// `candidate_renamings` picks (by signature; ties in every order), equal for every state of an
/// orbit, and the first renaming in that order to give it.
pub fn actor_orbit<A, H>(
    state: &ActorModelState<A, H>,
    groups: &[Vec<Id>],
    seen: &Seen<'_, A::Msg>,
) -> (u64, Vec<Id>)
where
    A: Actor,
    A::State: Rewrite<Id>,
    A::Msg: Rewrite<Id>,
    A::Random: Rewrite<Id>,
    A::Storage: Rewrite<Id>,
    H: Rewrite<Id> + Hash,
{
    candidate_renamings(state, groups, seen)
        .into_iter()
        .map(|map| (renamed_fingerprint(state, &map, seen), map))
        .min_by_key(|(fp, _)| *fp)
        .unwrap_or_else(|| (1, (0..state.actor_states.len()).map(Id::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_all_distinct_the_identity_first() {
        let p = permutations(3);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], vec![0, 1, 2]);
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
        assert_eq!(permutations(0), vec![Vec::<usize>::new()]);
    }
}
