//! What the engine needs to know of a model to reduce its exploration, and the independence
//! relation it derives for any stateright actor model from the actor structure alone.
//!
//! [`Reduce`] has five hooks: a state fingerprint (exact, or leaving out what nothing reads), an
//! action's *footprint* (the resources it touches, as a bit set: two actions whose footprints are
//! disjoint are independent), the parts of the ghost history a step changed, an action's
//! identity key, and a test of whether two steps the footprints call dependent commute all the
//! same in a given state. Any `Model` can implement it with the defaults (`impl Reduce for MyModel {}`):
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
//! ## Conditional independence
//!
//! Two steps of one actor are dependent by their footprints, yet many commute where they are
//! taken: two 2b votes delivered to one learner, a heartbeat and a request at one replica. Sleep
//! sets stay sound with a dependency relation that depends on the state (Godefroid and
//! Pirottin, *Refining dependencies improves partial-order verification methods*, CAV 1993): the
//! child `s·t` may sleep `u` if `t` and `u` are independent *in `s`*: both enabled there, neither
//! disables the other, and `s·t·u = s·u·t`. The argument for sleep sets needs no more than this
//! diamond at the state where the sleeping action is added. [`Reduce::commute`] decides it for
//! an actor model, for two deliveries or timers of one actor on an unordered network, from that
//! actor alone: it takes both steps in each order from the actor's state, as stateright's
//! `next_state` would, and compares what each order leaves:
//!
//! * the actor's state;
//! * the messages sent: a set on a duplicating network, a multiset otherwise. Neither step
//!   touches the network's other messages: a duplicating delivery removes nothing, and a
//!   non-duplicating one removes its own envelope in both orders;
//! * the timers set and cancelled, the random choices made and the storage saved (the last
//!   word on each);
//! * the ghost history, built both ways, unless the history says that the actor's records are
//!   commuting, idempotent insertions ([`GhostHistory::records_commute`]: RSL's replicas). Then
//!   equal messages make equal histories.
//!
//! A step that is a no-op in either order (stateright does not take it), or a timer the other
//! step cancels, fails the test. So a sleeping action is always enabled, which the judgement of
//! `eventually` properties at terminal states relies on. Ordered networks are left to the
//! footprints (a delivery takes a queue's head, a send appends to a queue). The test runs the
//! actor's handlers four times, so the engine runs it only where its answer can matter: for a
//! child already visited, only for the actions the child's stored sleep set holds. Its fidelity
//! is checked as every reduction here is: the sleep-set searches of the test suite visit exactly
//! the states of the view.
//!
//! stateright's duplicating network also remembers the last message delivered, only so that a
//! redelivery that changes no actor gets a new fingerprint. No action and no property reads it
//! (no network iterator yields it), yet it makes every two deliveries non-commuting and multiplies
//! the states. [`Reduce::fingerprint`] leaves it out unless asked for the exact state
//! (`exact`), which is what `--reduction none` uses to match stateright's count state for state.
//! The engine's reduced view ([`Reduce::fingerprint_reduced`]) also leaves out the messages of a
//! duplicating network that their receivers can never use again, as the model's ghost history
//! says ([`GhostHistory::spent`]): states that differ only by them have the same successors, but
//! for deliveries of those, which change nothing. Where the history says no property reads a
//! crashed actor's state ([`GhostHistory::crashed_states_unread`]), it leaves out the state a
//! crashed actor crashed with, which no step reads either (see `ReducedReading`).

use std::hash::{BuildHasher, Hash, Hasher};

use std::borrow::Cow;
use std::collections::BTreeMap;

use stateright::actor::{
    Actor, ActorModel, ActorModelAction, ActorModelState, Command, Envelope, Id, Network, Out,
    Timers,
};
use stateright::Model;

pub use crate::invariants::ghost::{GhostHistory, ALL_PARTS};

/// The footprint bit of the crash budget (crashes and restarts).
pub const CRASH_BUDGET: u64 = 1 << 63;
/// How many footprint bits name actors; actor `i` gets bit `i % ACTOR_BITS` (two actors sharing
/// a bit are only treated as dependent: sound, less reduction).
pub const ACTOR_BITS: usize = 63;
/// The hasher of fingerprints, action keys and commute contexts: two `ahash` hashers with
/// fixed keys (the same in every run and on every thread) fed the same writes, their results
/// combined.
///
/// Why two. Without AES instructions `ahash` folds each write into its 64-bit state by a
/// multiplication whose high and low halves are added: a fast step, but not one-to-one, so two
/// states can meet halfway through their writes, and the chance of that grows with the number
/// of writes (hundreds for an RSL state), beyond the `n² / 2⁶⁵` of an ideal 64-bit hash. It was
/// seen: two different states of the one-view-change space (24.6 M states) shared a
/// fingerprint, and the second was never visited. Two hashers with independent keys meet
/// halfway only together, so the combined fingerprint collides about as rarely as an ideal one.
pub(crate) struct Fingerprinter {
    a: ahash::AHasher,
    b: ahash::AHasher,
}

impl Hasher for Fingerprinter {
    fn finish(&self) -> u64 {
        self.a.finish() ^ self.b.finish().rotate_left(29)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.a.write(bytes);
        self.b.write(bytes);
    }
    fn write_u8(&mut self, i: u8) {
        self.a.write_u8(i);
        self.b.write_u8(i);
    }
    fn write_u16(&mut self, i: u16) {
        self.a.write_u16(i);
        self.b.write_u16(i);
    }
    fn write_u32(&mut self, i: u32) {
        self.a.write_u32(i);
        self.b.write_u32(i);
    }
    fn write_u64(&mut self, i: u64) {
        self.a.write_u64(i);
        self.b.write_u64(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.a.write_u128(i);
        self.b.write_u128(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.a.write_usize(i);
        self.b.write_usize(i);
    }
}

/// A [`Fingerprinter`] with its fixed keys.
pub(crate) fn hasher() -> Fingerprinter {
    Fingerprinter {
        a: ahash::RandomState::with_seeds(
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7344,
            0xa409_3822_299f_31d0,
            0x082e_fa98_ec4e_6c89,
        )
        .build_hasher(),
        b: ahash::RandomState::with_seeds(
            0x4528_21e6_38d0_1377,
            0xbe54_66cf_34e9_0c6c,
            0xc0ac_29b7_c97c_50dd,
            0x3f84_d5b5_b547_0917,
        )
        .build_hasher(),
    }
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

    /// The fingerprint of the state's reduced view (never 0): the view of
    /// [`Reduce::fingerprint`] without `exact`, less what the model knows no step can use
    /// again. For an actor model, the messages of a duplicating network that their receivers
    /// can never use again ([`GhostHistory::spent`]). Two states that differ only there have
    /// the same successors but for those deliveries, which change nothing, so they are one
    /// state for every safety property that does not read the network. Where the history
    /// allows it ([`GhostHistory::crashed_states_unread`]), also the states crashed actors
    /// crashed with (see `ReducedReading`). The default: the view.
    /// The lasso checker keeps to the view, whose states have the very same actions.
    fn fingerprint_reduced(&self, state: &Self::State) -> u64
    where
        Self::State: Hash,
    {
        self.fingerprint(state, false)
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

    /// Whether `a` and `b`, two actions enabled in `state` that the footprints do not show
    /// independent, commute in `state` all the same: each stays enabled after the other and
    /// both orders reach the same state of the view (see "Conditional independence" in the
    /// module doc). The default: never.
    fn commute(&self, state: &Self::State, a: &Self::Action, b: &Self::Action) -> bool {
        let _ = (state, a, b);
        false
    }

    /// A fingerprint of everything in `state` that [`Reduce::commute`] reads for `action`,
    /// besides the actions themselves: two tests whose actions are equal and whose contexts are
    /// equal give the same answer, so the engine remembers answers by them. `None`: not
    /// remembered (the default).
    fn commute_context(&self, state: &Self::State, action: &Self::Action) -> Option<u64> {
        let _ = (state, action);
        None
    }
}

/// What one actor's deliveries did to everything but the network's other messages: the
/// actor's state, the ghost history (by hash), the messages sent, the timers set or cancelled,
/// the random choices made and the storage saved. Two orders of the same deliveries that leave
/// equal effects reach the same state of the view ([`Reduce::commute`]).
struct LocalEffect<'a, A: Actor> {
    state: Cow<'a, A::State>,
    history: u64,
    sends: Vec<(Id, A::Msg)>,
    timers: BTreeMap<A::Timer, bool>,
    randoms: BTreeMap<String, Vec<A::Random>>,
    saved: Option<A::Storage>,
}

impl<A: Actor> PartialEq for LocalEffect<'_, A>
where
    A::Msg: Ord,
{
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state
            && self.history == other.history
            && self.sends == other.sends
            && self.timers == other.timers
            && self.randoms == other.randoms
            && self.saved == other.saved
    }
}

fn actor_bit(id: Id) -> u64 {
    1u64 << (usize::from(id) % ACTOR_BITS)
}

/// The view's fingerprint of an actor model's state (see [`Reduce::fingerprint`]), and with
/// `reduced` the reduced view's ([`Reduce::fingerprint_reduced`]).
fn view_fingerprint<A, C, H>(
    model: &ActorModel<A, C, H>,
    s: &ActorModelState<A, H>,
    reduced: bool,
) -> u64
where
    A: Actor + 'static,
    A::Msg: Ord + Hash + 'static,
    A::Timer: Ord + Hash,
    A::Random: Hash,
    A::State: Hash + 'static,
    A::Storage: Hash,
    H: Clone + std::fmt::Debug + GhostHistory,
{
    let reading = reduced.then(|| ReducedReading::of(model, s));
    let mut h = hasher();
    h.write_usize(s.actor_states.len());
    for (i, state) in s.actor_states.iter().enumerate() {
        match &reading {
            Some(r) if r.left_out(i) => h.write_u8(0),
            _ => {
                h.write_u8(1);
                state.hash(&mut h);
            }
        }
    }
    match &s.network {
        // Everything but the last message delivered (see the module doc), and, reduced,
        // the messages their receivers can never use again. The set's hash is the wrapping
        // sum of its envelopes' hashes: independent of the set's order without the sort
        // stateright's `Hash` of a set does.
        Network::UnorderedDuplicating(set, _last_delivered) => {
            0u8.hash(&mut h);
            let (mut count, mut sum) = (0usize, 0u64);
            for env in set.iter() {
                if !reading
                    .as_ref()
                    .is_some_and(|r| r.spent(model, s, env.src, env.dst, &env.msg))
                {
                    count += 1;
                    sum = sum.wrapping_add(hash_of(env));
                }
            }
            h.write_usize(count);
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

/// How the reduced view reads one state of an actor model: which actors' states it leaves
/// out, and by which state it judges whether a message is spent.
///
/// A crashed actor's state is left out where the model's properties never read it
/// ([`GhostHistory::crashed_states_unread`]): stateright keeps the state an actor crashed
/// with, but no step reads it (a delivery or a timer to a crashed actor is disabled, and a
/// restart builds the actor's state from its storage alone, which the view keeps), so two
/// states that differ only there have the same successors, up to that same difference, until
/// the restart, and the same ones after it. The messages to a crashed actor are judged by the
/// state it restarts in (`on_start` from its storage, which does not change while it is down):
/// a message spent for that state is spent from the restart on, and until then no step can
/// deliver it. So two states that differ in the states their crashed actors crashed with, and
/// in messages spent for the states those actors restart in, are one state of the reduced view.
pub(crate) struct ReducedReading<A: Actor> {
    /// Per actor: the state a crashed actor restarts in, where the view leaves out the state it
    /// crashed with (empty when no actor is left out).
    restarts: Vec<Option<A::State>>,
}

impl<A: Actor + 'static> ReducedReading<A>
where
    A::State: 'static,
    A::Msg: 'static,
{
    /// The reading of `s`.
    pub(crate) fn of<C, H>(model: &ActorModel<A, C, H>, s: &ActorModelState<A, H>) -> Self
    where
        A::Msg: Ord,
        A::Timer: Ord,
        H: Clone + std::fmt::Debug + GhostHistory,
    {
        let restarts = if s.crashed.iter().any(|&c| c) && s.history.crashed_states_unread() {
            s.crashed
                .iter()
                .enumerate()
                .map(|(i, &crashed)| {
                    let actor = model.actors.get(i).filter(|_| crashed)?;
                    let storage = s.actor_storages.get(i)?;
                    Some(actor.on_start(Id::from(i), storage, &mut Out::new()))
                })
                .collect()
        } else {
            Vec::new()
        };
        ReducedReading { restarts }
    }

    /// Whether the view leaves out actor `i`'s state.
    pub(crate) fn left_out(&self, i: usize) -> bool {
        self.restarts.get(i).is_some_and(Option::is_some)
    }

    /// Whether the receiver `dst` of `msg` from `src` can never use it again
    /// ([`GhostHistory::spent`]), judged by the state it restarts in if it is left out.
    pub(crate) fn spent<C, H>(
        &self,
        model: &ActorModel<A, C, H>,
        s: &ActorModelState<A, H>,
        src: Id,
        dst: Id,
        msg: &A::Msg,
    ) -> bool
    where
        A::Msg: Ord,
        A::Timer: Ord,
        H: Clone + std::fmt::Debug + GhostHistory,
    {
        let dst = usize::from(dst);
        let state: &A::State = match (self.restarts.get(dst), s.actor_states.get(dst)) {
            (Some(Some(restart)), _) => restart,
            (_, Some(state)) => state,
            _ => return false,
        };
        model
            .actors
            .get(dst)
            .is_some_and(|actor| s.history.spent(actor, state, src, msg))
    }
}

impl<A, C, H> Reduce for ActorModel<A, C, H>
where
    A: Actor + 'static,
    A::Msg: Ord + Hash + 'static,
    A::Timer: Ord + Hash,
    A::Random: Hash,
    A::State: Hash + 'static,
    A::Storage: Hash,
    H: Clone + std::fmt::Debug + GhostHistory,
{
    fn fingerprint(&self, s: &ActorModelState<A, H>, exact: bool) -> u64 {
        if exact {
            return hash_of(s).max(1);
        }
        view_fingerprint(self, s, false)
    }

    fn fingerprint_reduced(&self, s: &ActorModelState<A, H>) -> u64 {
        view_fingerprint(self, s, true)
    }

    fn history_parts(&self, before: &ActorModelState<A, H>, after: &ActorModelState<A, H>) -> u64 {
        before.history.changed_parts(&after.history)
    }

    fn commute(
        &self,
        s: &ActorModelState<A, H>,
        a: &ActorModelAction<A::Msg, A::Timer, A::Random>,
        b: &ActorModelAction<A::Msg, A::Timer, A::Random>,
    ) -> bool {
        let Some(duplicating) = unordered_duplicating(&s.network) else {
            return false;
        };
        let (Some(id), Some(other)) = (local_actor(a), local_actor(b)) else {
            return false;
        };
        let i = usize::from(id);
        if id != other || s.crashed.get(i) != Some(&false) {
            return false;
        }
        let Some(start) = s.actor_states.get(i) else {
            return false;
        };
        // stateright grows the timer sets only as far as the last actor that set a timer.
        let none = Timers::new();
        let timers = s.timers_set.get(i).unwrap_or(&none);
        let ab = take_in_turn(self, s, id, start, timers, [a, b]);
        let ba = take_in_turn(self, s, id, start, timers, [b, a]);
        match (ab, ba) {
            (Some(mut ab), Some(mut ba)) => {
                for e in [&mut ab, &mut ba] {
                    e.sends.sort_unstable();
                    if duplicating {
                        e.sends.dedup();
                    }
                }
                ab == ba
            }
            _ => false,
        }
    }

    /// What [`Reduce::commute`] reads for a delivery or timer of actor `i`: `i`, its state,
    /// whether it is up, its timers, the kind of network, and the ghost history unless the
    /// history says `i`'s records commute. The same for every step of one actor in one state,
    /// and the same in every state where that actor's part is the same: RSL's replicas meet the
    /// same replica state in many global states.
    fn commute_context(
        &self,
        s: &ActorModelState<A, H>,
        action: &ActorModelAction<A::Msg, A::Timer, A::Random>,
    ) -> Option<u64> {
        let duplicating = unordered_duplicating(&s.network)?;
        let id = local_actor(action)?;
        let i = usize::from(id);
        let mut h = hasher();
        (i, duplicating, s.crashed.get(i)).hash(&mut h);
        s.actor_states.get(i).hash(&mut h);
        s.timers_set.get(i).hash(&mut h);
        if !s.history.records_commute(id) {
            s.history.hash(&mut h);
        }
        Some(h.finish())
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

/// For an unordered network, whether it duplicates; `None` for an ordered one, whose steps
/// [`Reduce::commute`] leaves to the footprints.
fn unordered_duplicating<M: Eq + Hash>(network: &Network<M>) -> Option<bool> {
    match network {
        Network::UnorderedDuplicating(..) => Some(true),
        Network::UnorderedNonDuplicating(..) => Some(false),
        Network::Ordered(..) => None,
    }
}

/// The actor whose local step `action` is (a delivery or a timer), if it is one.
fn local_actor<M, T, R>(action: &ActorModelAction<M, T, R>) -> Option<Id> {
    match action {
        ActorModelAction::Deliver { dst, .. } => Some(*dst),
        ActorModelAction::Timeout(id, _) => Some(*id),
        _ => None,
    }
}

/// Two local steps of actor `id` (whose state is `start` and timers `timers`) taken in turn, in
/// the order given, as stateright's `ActorModel` takes them, with their effect gathered
/// ([`Reduce::commute`]); `None` if either is disabled or a no-op where it is taken.
fn take_in_turn<'s, A, C, H>(
    model: &ActorModel<A, C, H>,
    s: &ActorModelState<A, H>,
    id: Id,
    start: &'s A::State,
    timers: &Timers<A::Timer>,
    steps: [&ActorModelAction<A::Msg, A::Timer, A::Random>; 2],
) -> Option<LocalEffect<'s, A>>
where
    A: Actor,
    A::Msg: Ord + Hash,
    A::Timer: Ord,
    H: Clone + std::fmt::Debug + GhostHistory,
{
    let actor = &model.actors[usize::from(id)];
    let mut state = Cow::Borrowed(start);
    let mut history = Cow::Borrowed(&s.history);
    // Where the actor's records commute, equal messages make equal histories: the
    // history is not built.
    let record = !s.history.records_commute(id);
    let mut sends = Vec::new();
    let mut timer_changes = BTreeMap::new();
    let mut randoms = BTreeMap::new();
    let mut saved = None;
    for step in steps {
        let mut cow = Cow::Borrowed(&*state);
        let mut out = Out::new();
        match step {
            ActorModelAction::Deliver { src, msg, .. } => {
                actor.on_msg(id, &mut cow, *src, msg.clone(), &mut out);
                if matches!(cow, Cow::Borrowed(_)) && out.is_empty() {
                    // A no-op: stateright does not enable it.
                    return None;
                }
                if record {
                    let envelope = Envelope {
                        src: *src,
                        dst: id,
                        msg,
                    };
                    if let Some(h) = (model.record_msg_in)(&model.cfg, &history, envelope) {
                        history = Cow::Owned(h);
                    }
                }
            }
            ActorModelAction::Timeout(_, timer) => {
                let set = match timer_changes.get(timer) {
                    Some(set) => *set,
                    None => timers.iter().any(|t| t == timer),
                };
                if !set {
                    return None;
                }
                actor.on_timeout(id, &mut cow, timer, &mut out);
                let renews_only =
                    out.len() == 1 && matches!(&out[0], Command::SetTimer(t, _) if t == timer);
                if matches!(cow, Cow::Borrowed(_)) && renews_only {
                    // A no-op: stateright does not enable it.
                    return None;
                }
                timer_changes.insert(timer.clone(), false);
            }
            _ => return None,
        }
        // A step that only sends leaves the state borrowed: no copy.
        let next = match cow {
            Cow::Owned(next) => Some(next),
            Cow::Borrowed(_) => None,
        };
        for command in out {
            match command {
                Command::Send(dst, msg) => {
                    if record {
                        let envelope = Envelope {
                            src: id,
                            dst,
                            msg: &msg,
                        };
                        if let Some(h) = (model.record_msg_out)(&model.cfg, &history, envelope) {
                            history = Cow::Owned(h);
                        }
                    }
                    sends.push((dst, msg));
                }
                Command::SetTimer(t, _) => {
                    timer_changes.insert(t, true);
                }
                Command::CancelTimer(t) => {
                    timer_changes.insert(t, false);
                }
                Command::ChooseRandom(key, random) => {
                    randoms.insert(key, random);
                }
                Command::Save(storage) => saved = Some(storage),
            }
        }
        if let Some(next) = next {
            state = Cow::Owned(next);
        }
    }
    Some(LocalEffect {
        state,
        history: if record { hash_of(&*history) } else { 0 },
        sends,
        timers: timer_changes,
        randoms,
        saved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::{Envelope, Out};
    use std::borrow::Cow;
    use std::time::Duration;

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

    /// An actor whose deliveries commute or not, by message: 1 and 2 are added to a set
    /// (commute); 3 and 4 each claim the first place (the state depends on the order); 5 adds
    /// itself and reports the set's size to actor 1 (what it sends depends on the order); 7
    /// sets the timer that 8 cancels; 9 changes nothing. Its timer, when it fires, adds 20.
    struct Tally;

    type TallyState = (std::collections::BTreeSet<u8>, Option<u8>);

    impl Actor for Tally {
        type Msg = u8;
        type State = TallyState;
        type Timer = ();
        type Random = ();
        type Storage = ();
        fn on_start(&self, id: Id, _: &Option<()>, o: &mut Out<Self>) -> TallyState {
            // Actors 1 and 2 send actor 0 the messages of the engine test below.
            match usize::from(id) {
                1 => o.send(Id::from(0), 5),
                2 => o.send(Id::from(0), 1),
                _ => {}
            }
            Default::default()
        }
        fn on_msg(&self, _: Id, s: &mut Cow<TallyState>, _: Id, m: u8, o: &mut Out<Self>) {
            match m {
                1 | 2 => {
                    s.to_mut().0.insert(m);
                }
                3 | 4 if s.1.is_none() => s.to_mut().1 = Some(m),
                5 => {
                    s.to_mut().0.insert(m);
                    o.send(Id::from(1), 10 + s.0.len() as u8);
                }
                7 => o.set_timer((), Duration::ZERO..Duration::ZERO),
                8 => o.cancel_timer(()),
                _ => {}
            }
        }
        fn on_timeout(&self, _: Id, s: &mut Cow<TallyState>, _: &(), _: &mut Out<Self>) {
            s.to_mut().0.insert(20);
        }
    }

    /// The messages delivered, in order: a history whose records do not commute unless
    /// `COMMUTE` says they do.
    #[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
    struct Delivered<const COMMUTE: bool>(Vec<u8>);

    impl<const COMMUTE: bool> GhostHistory for Delivered<COMMUTE> {
        fn records_commute(&self, _: Id) -> bool {
            COMMUTE
        }
    }

    fn record_in<const COMMUTE: bool>(
        _: &(),
        h: &Delivered<COMMUTE>,
        env: Envelope<&u8>,
    ) -> Option<Delivered<COMMUTE>> {
        let mut n = h.clone();
        n.0.push(*env.msg);
        Some(n)
    }

    fn tally<const COMMUTE: bool>(record: bool) -> ActorModel<Tally, (), Delivered<COMMUTE>> {
        let m = ActorModel::new((), Delivered::default()).actors(vec![Tally, Tally, Tally]);
        if record {
            m.record_msg_in(record_in::<COMMUTE>)
        } else {
            m
        }
    }

    fn to_0(msg: u8) -> ActorModelAction<u8, (), ()> {
        ActorModelAction::Deliver {
            src: Id::from(1),
            dst: Id::from(0),
            msg,
        }
    }

    /// Whether `a` and `b` commute at the initial state, once `first` has been delivered.
    fn commute_after<const COMMUTE: bool>(record: bool, first: &[u8], a: u8, b: u8) -> bool {
        let m = tally::<COMMUTE>(record);
        let mut s = m.init_states().remove(0);
        for &f in first {
            s = m.next_state(&s, to_0(f)).expect("not a no-op");
        }
        let answer = m.commute(&s, &to_0(a), &to_0(b));
        assert_eq!(answer, m.commute(&s, &to_0(b), &to_0(a)), "symmetric");
        answer
    }

    #[test]
    fn two_steps_of_one_actor_commute_only_if_both_orders_do_the_same() {
        // Set insertions commute.
        assert!(commute_after::<false>(false, &[], 1, 2));
        // The state depends on the order.
        assert!(!commute_after::<false>(false, &[], 3, 4));
        // The same state, but a message sent that depends on the order.
        assert!(!commute_after::<false>(false, &[], 5, 1));
        // A timer set and cancelled: the timers depend on the order.
        assert!(!commute_after::<false>(false, &[], 7, 8));
        // A timer firing and a delivery that cancels it: one disables the other.
        let m = tally::<false>(false);
        let s = m.next_state(&m.init_states()[0], to_0(7)).unwrap();
        let fire = ActorModelAction::Timeout(Id::from(0), ());
        assert!(!m.commute(&s, &fire, &to_0(8)));
        // A timer firing and an insertion commute.
        assert!(m.commute(&s, &fire, &to_0(1)));
        // A no-op is not a step stateright takes: not a diamond.
        assert!(!commute_after::<false>(false, &[], 1, 9));
        // After a first delivery, the same test: inserting again changes nothing, in either
        // order.
        assert!(commute_after::<false>(false, &[2], 1, 2));
        // A history that records the order: the steps do not commute, unless the history
        // says its records do.
        assert!(!commute_after::<false>(true, &[], 1, 2));
        assert!(commute_after::<true>(true, &[], 1, 2));
        // Steps of different actors, and anything but deliveries and timers, are left to the
        // footprints.
        let other = ActorModelAction::Deliver {
            src: Id::from(0),
            dst: Id::from(2),
            msg: 1,
        };
        assert!(!m.commute(&s, &to_0(1), &other));
        assert!(!m.commute(&s, &to_0(1), &ActorModelAction::Crash(Id::from(0))));
    }

    #[test]
    fn sleep_sets_with_conditional_independence_keep_every_state() {
        use crate::check::engine::{explore, test_options, EngineOptions, Order, Reduction};
        // Actor 0 gets 5 (from actor 1) and 1 (from actor 2): in one order it reports size 1,
        // in the other size 2. A test that ignored what is sent would sleep through one.
        let model = tally::<false>(false).property(
            stateright::Expectation::Sometimes,
            "reports 11",
            |_, s| s.network.iter_deliverable().any(|e| *e.msg == 11),
        );
        let model = model.property(stateright::Expectation::Sometimes, "reports 12", |_, s| {
            s.network.iter_deliverable().any(|e| *e.msg == 12)
        });
        let run = |reduction, conditional| {
            let opts = EngineOptions {
                conditional,
                ..test_options(Order::Dfs, reduction, 1)
            };
            explore(&model, &opts, &mut std::io::sink())
        };
        let view = run(Reduction::View, false);
        for conditional in [false, true] {
            let sleep = run(Reduction::Sleep, conditional);
            assert_eq!(sleep.unique, view.unique, "conditional {conditional}");
            assert!(sleep.paths.contains_key("reports 11"));
            assert!(sleep.paths.contains_key("reports 12"));
        }
    }
}
