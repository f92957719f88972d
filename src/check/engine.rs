//! The exhaustive checker engine of our own, over any stateright `Model` that implements
//! [`Reduce`] (every `ActorModel` does): multi-threaded breadth-first (level by level) or
//! depth-first (a stack per thread, work shared with idle threads) search that keeps only 64-bit
//! fingerprints of visited states (hash compaction), their parent links (fingerprint and action
//! index, from which counterexamples are replayed), and, with [`Reduction::Sleep`], the sleep set
//! each state was reached with. With [`Reduction::Symmetry`] the fingerprint is that of the
//! state's orbit under the model's symmetry ([`super::symmetry`]).
//!
//! ## Why not stateright's checker
//! stateright 0.31's checker has no reduction of any kind. On the RSL model it generates every
//! unique state about nine times, and it counts as different the states that differ only in the
//! last message its duplicating network delivered, which nothing reads (759,319 states where
//! there are 104,831 on the default RSL configuration). This engine runs the same model, the
//! same properties and the same verdicts; unreduced it explores exactly stateright's states and
//! transitions, and stateright's checker stays selectable (`--engine stateright`) for
//! comparison.
//!
//! ## Hash compaction
//! The visited set holds a 64-bit fingerprint per state, not the state. Two distinct states with
//! the same fingerprint would make the second one look visited and leave its successors
//! unexplored. With `n` states the probability that any two collide is about `n² / 2⁶⁵`: below
//! 3·10⁻⁶ for 10 million states, below 3·10⁻⁴ for 100 million. A discovery is replayed from its
//! action indices and must end in a state that confirms it, or it is dropped: a collision can
//! hide a state but never invent a violation.
//!
//! ## Sleep sets (`Reduction::Sleep`)
//! Actions are taken at each state in the model's order. The child reached by action `t` gets the
//! sleep set `{u ∈ Z ∪ {actions before t} : u independent of t}`, where `Z` is the sleep set of
//! the state being expanded, and a sleeping action is not taken from the child: taking it would
//! only reach, by the other interleaving, a state the search reaches anyway (independent actions
//! commute and do not disable each other). In a stateful search, a state reached again with a
//! sleep set that lacks some of the actions stored for it has those actions taken then (a
//! re-expansion; for a state not expanded yet the stored set just shrinks, and it is expanded
//! once with the intersection), and the stored set shrinks to the intersection (Godefroid's
//! rule). The children of a re-expansion get the narrowed set and the actions woken up before
//! them, but never an action taken at an earlier expansion: those earlier children slept the
//! actions woken now, so the woken actions come first in the order of this state's actions, and
//! an earlier action after them. (Putting the earlier actions in the woken children's sleep sets
//! as well made each pair sleep the other: a two-thread depth-first search, and a one-thread one
//! under some `schedule_seed`s, lost 160 or 320 of the 88,220 states of the RSL truncation
//! configuration.) Every order of expansions the threads can produce keeps this: a state's
//! narrowings happen one at a time under its shard's lock, and each re-expansion carries the set
//! it narrowed to. Under a depth bound, a state reached again closer to the root is expanded
//! again from there (depth-first search meets states deep first).
//!
//! *Self-loops.* On a duplicating network most messages stay deliverable for ever, and
//! delivering one again often leads back to the very state of the view (the actor changes
//! nothing the view keeps, and what it sends is in the network already). Such a step `t` from
//! `s` reaches nothing new, so it is not visited again, and it sleeps in the child `s·u` of
//! every step `u` it is independent of in `s`, whether `u` comes before or after it:
//! independence gives `s·u·t = s·t·u = s·u`, so `t` is a self-loop at `s·u` too, and a path
//! from `s·u` that starts with it reaches only states the path without it reaches. (The order
//! of a state's actions matters for the other sleeping actions because each one stands for
//! paths through another child; a self-loop stands for none.) Under symmetry a step that stays
//! in the orbit is a self-loop only if it also keeps the state's view. This took the default
//! configuration from 2.17 to 1.82 transitions per orbit: a third of the transitions had been
//! self-loops. So every state of the view is still
//! visited: sleep sets cut redundant *transitions* only, never states, and every `always` and
//! `sometimes` property is judged on every reachable state, as without reduction. The tests check
//! it: on every small configuration the reduced runs, breadth- and depth-first, visit exactly the
//! states of the view. Independence comes from [`Reduce::footprint`] (for actor models, the
//! actors an action touches) and the parts of the ghost history a step changed
//! ([`Reduce::history_parts`]), and, with [`EngineOptions::conditional`], from
//! [`Reduce::commute`] for two steps the footprints call dependent: whether they commute in the
//! state being expanded (conditional independence; the argument is in [`super::reduce`]).
//!
//! `eventually` properties are judged as stateright judges them: at terminal states, with the
//! properties not yet satisfied on the path that first reached the state. A state whose only
//! remaining actions sleep is not terminal (a sleeping action is enabled).
//!
//! Re-expansions are queued with the next level, so a state first reached through one may carry
//! a parent path longer than its depth; every counterexample is minimised afterwards anyway
//! (see `check::run`). Depths count states on the path, as stateright counts them: an initial
//! state has depth 1.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use stateright::{Expectation, Model, Path};

use super::symmetry::{Renaming, Symmetry, SymmetryFns};

use super::reduce::Reduce;

/// How the engine reduces the exploration. `None`, `View` and `Sleep` each include the one
/// before; `Symmetry` is the view with symmetry, without sleep sets; `All` is sleep sets and
/// symmetry together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: every enabled action of every state is taken, and states are identified
    /// exactly (for actor models, the very states stateright's checker counts).
    None,
    /// States that differ only in what no action and no property reads are identified (TLC
    /// calls such a fingerprint function a VIEW; see [`Reduce::fingerprint`]). Every transition
    /// is still taken.
    View,
    /// Sleep sets over the model's independence relation: every state of the view is visited,
    /// far fewer transitions are taken.
    Sleep,
    /// The view, with states identified up to the model's symmetry ([`EngineOptions::symmetry`],
    /// see [`super::symmetry`]): one state per orbit is visited, every transition is taken
    /// ([`Reduction::All`] adds sleep sets).
    Symmetry,
    /// Sleep sets and symmetry together: one state per orbit, and the sleep sets kept in each
    /// orbit's canonical names (see [`super::symmetry`]).
    All,
}

impl Reduction {
    /// Every reduction, with its command-line name.
    pub const ALL: [(Reduction, &'static str); 5] = [
        (Reduction::None, "none"),
        (Reduction::View, "view"),
        (Reduction::Sleep, "sleep"),
        (Reduction::Symmetry, "symmetry"),
        (Reduction::All, "all"),
    ];

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Result<Reduction, String> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(r, _)| *r)
            .ok_or_else(|| {
                format!("unknown reduction '{s}': use none, view, sleep, symmetry or all")
            })
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("?", |(_, n)| n)
    }
}

/// The order in which the engine visits states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Breadth-first, level by level: the first counterexample found is among the shortest;
    /// memory holds two levels of full states.
    Bfs,
    /// Depth-first: memory holds the visited set and the threads' stacks only.
    Dfs,
}

/// Options of an engine run.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The order of the search.
    pub order: Order,
    /// The reduction.
    pub reduction: Reduction,
    /// Worker threads.
    pub threads: usize,
    /// Do not expand states at this depth or deeper.
    pub max_depth: Option<usize>,
    /// Print a progress line this often (`None`: no progress).
    pub progress: Option<Duration>,
    /// Stop at the first violation of an `always` or `eventually` property.
    pub stop_on_violation: bool,
    /// With `stop_on_violation`, stop only when this property in particular is violated.
    pub target: Option<&'static str>,
    /// Stop (not exhaustive, said in the outcome) once the process's resident memory passes
    /// this many bytes, rather than let the operating system kill it. `None`: no limit.
    pub max_memory: Option<u64>,
    /// Stop (not exhaustive, said in the outcome) once the search has run this long. `None`:
    /// no limit.
    pub max_time: Option<Duration>,
    /// Breadth-first only: go on depth-first once the next level holds more than this many
    /// states (as it does anyway once the process passes half of `max_memory`).
    pub depth_first_beyond: Option<usize>,
    /// The model's symmetry, which [`Reduction::Symmetry`] needs.
    pub symmetry: Option<Symmetry>,
    /// With sleep sets: also count as independent two steps the footprints call dependent
    /// where [`Reduce::commute`] finds that they commute in the state at hand (conditional
    /// independence). Off: the footprints alone, for comparison.
    pub conditional: bool,
    /// Depth-first only: each thread expands next a state picked from its stack by this seed,
    /// not the newest. Threads racing on a shared visited set can expand pending states in any
    /// order; this makes such an order reproducible (on one thread, the same seed is the same
    /// search), so the tests can check that what the engine visits does not depend on it.
    pub schedule_seed: Option<u64>,
    /// Stop (not exhaustive, said in the outcome) once this flag is set: a command sets it on
    /// Ctrl-C, so that a long search ends with its report instead of nothing. `None`: never.
    pub stop_requested: Option<Arc<AtomicBool>>,
}

/// Options for the tests: `order`, `reduction`, `threads`, conditional independence, and
/// nothing else (no bound, no progress, no limit, no symmetry).
#[cfg(test)]
pub(crate) fn test_options(order: Order, reduction: Reduction, threads: usize) -> EngineOptions {
    EngineOptions {
        order,
        reduction,
        threads,
        max_depth: None,
        progress: None,
        stop_on_violation: false,
        target: None,
        max_memory: None,
        max_time: None,
        depth_first_beyond: None,
        symmetry: None,
        conditional: true,
        schedule_seed: None,
        stop_requested: None,
    }
}

/// What an engine run found: the figures, and a counterexample (or example) path per property
/// with a discovery. [`super::run`] turns it into verdicts.
pub struct Explored<S, A> {
    /// States generated (transitions taken, plus the initial states).
    pub states: usize,
    /// Unique states (fingerprints).
    pub unique: usize,
    /// The deepest state (an initial state has depth 1, as in stateright).
    pub depth: usize,
    /// Whether the whole space was explored (no depth bound, no early stop).
    pub complete: bool,
    /// Why the search stopped before the end, if it ran out of its memory limit: the resident
    /// bytes when it stopped.
    pub memory_stop: Option<u64>,
    /// Why the search stopped before the end, if it ran out of its time limit: how long it had
    /// run when it stopped.
    pub time_stop: Option<Duration>,
    /// Why the search stopped before the end, if it was asked to
    /// ([`EngineOptions::stop_requested`]): how long it had run when it stopped.
    pub requested_stop: Option<Duration>,
    /// The path to each property's discovery, by name.
    pub paths: HashMap<&'static str, Path<S, A>>,
    /// The engine's own figures.
    pub stats: EngineStats,
}

/// Figures of an engine run beyond the common ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// States re-expanded because they were reached again with a smaller sleep set.
    pub reexpansions: usize,
    /// The most states queued at once: the widest BFS level, or the largest DFS stack.
    pub widest_level: usize,
    /// Bytes held by the visited set at the end (table and sleep sets).
    pub visited_bytes: usize,
    /// A breadth-first search whose frontier passed half the memory limit went on depth-first
    /// from there: the unique states visited and the depth reached when it did.
    pub depth_first_from: Option<(usize, usize)>,
}

/// The visited-set hasher: fingerprints are already uniform hashes, but every shard holds the
/// fingerprints with one top byte, so they are mixed once more before the table uses their bits.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        (self.0 ^ (self.0 >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The answers of [`Reduce::commute`], remembered by the tests' contexts and actions
/// ([`Reduce::commute_context`]): a direct-mapped table of `MEMO_SLOTS` words, each holding a
/// 64-bit key and its answer, written and read without locks (a newer key takes an older one's
/// slot). Two tests share a key only if their contexts and actions hash alike: a wrong answer
/// is as unlikely as two states colliding in the visited set.
struct CommuteMemo {
    slots: Vec<AtomicU64>,
}

/// Slots of the [`CommuteMemo`] (8 bytes each: 8 MiB).
const MEMO_SLOTS: usize = 1 << 20;

impl CommuteMemo {
    fn new() -> Self {
        CommuteMemo {
            slots: (0..MEMO_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, key: u64) -> &AtomicU64 {
        &self.slots[(key as usize) % MEMO_SLOTS]
    }

    /// The remembered answer for `key`, if its slot holds it. (A word holds the key with bit 1
    /// set, so that no word is 0, and the answer in bit 0; the slot index is the key's low
    /// bits, so every bit of the key is compared.)
    fn get(&self, key: u64) -> Option<bool> {
        let word = self.slot(key).load(Ordering::Relaxed);
        (word != 0 && word | 3 == key | 3).then_some(word & 1 == 1)
    }

    fn put(&self, key: u64, answer: bool) {
        let word = ((key | 2) & !1) | u64::from(answer);
        self.slot(key).store(word, Ordering::Relaxed);
    }
}

/// What the visited set keeps per state.
struct Entry {
    /// The fingerprint of the state it was first reached from (0 for an initial state).
    parent: u64,
    /// The index of the action taken there, in the model's order.
    action: u32,
    /// The depth at which it was first reached, and [`EXPANDED`].
    depth: u32,
    /// The intersection of the sleep sets it was reached with (see [`Asleep`]), as its id in
    /// [`SleepSets`].
    sleep: u32,
}

/// Sleep sets, interned: far fewer distinct sets than states (6,418 for the 161,699 states the
/// default RSL configuration had when this was measured), so a state's entry keeps a 4-byte id
/// instead of its own allocation (48 bytes for an average set of three, plus the allocator's
/// overhead). Id 0 is
/// the empty set. Written only when a set is new; read under a shared lock otherwise.
struct SleepSets {
    inner: RwLock<Interned>,
}

#[derive(Default)]
struct Interned {
    ids: HashMap<Arc<[Asleep]>, u32, ahash::RandomState>,
    sets: Vec<Arc<[Asleep]>>,
    bytes: usize,
}

impl SleepSets {
    fn new() -> Self {
        let empty: Arc<[Asleep]> = Arc::from(Vec::new());
        let mut i = Interned::default();
        i.ids.insert(empty.clone(), 0);
        i.sets.push(empty);
        SleepSets {
            inner: RwLock::new(i),
        }
    }

    /// The id of `set`, interning it if it is new.
    fn id(&self, set: &[Asleep]) -> u32 {
        if let Some(&id) = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .get(set)
        {
            return id;
        }
        let mut i = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = i.ids.get(set) {
            return id;
        }
        let id = u32::try_from(i.sets.len()).expect("fewer than 2^32 distinct sleep sets");
        let shared: Arc<[Asleep]> = Arc::from(set);
        i.bytes += std::mem::size_of_val(set) + 2 * std::mem::size_of::<Arc<[Asleep]>>() + 16;
        i.ids.insert(shared.clone(), id);
        i.sets.push(shared);
        id
    }

    /// The set with id `id`.
    fn get(&self, id: u32) -> Arc<[Asleep]> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).sets[id as usize].clone()
    }

    fn bytes(&self) -> usize {
        self.inner.read().map_or(0, |i| i.bytes)
    }
}

/// The bit of [`Entry::depth`] that says the state was expanded.
const EXPANDED: u32 = 1 << 31;

type Shard = HashMap<u64, Entry, BuildHasherDefault<FingerprintHasher>>;

const SHARDS: usize = 256;

struct Visited {
    shards: Vec<Mutex<Shard>>,
    sleep_sets: SleepSets,
    /// Whether the search has a depth bound.
    bounded: bool,
}

/// What a visit found.
enum Visit {
    /// A new state.
    New,
    /// A state already visited with a sleep set no larger than this one, or not expanded yet
    /// (its stored sleep set is narrowed, and it will be expanded with that): nothing to do.
    Seen,
    /// A state already expanded whose stored sleep set had actions this path does not sleep:
    /// take `only` now (`None`: every action, for a state reached again at a smaller depth under
    /// a depth bound), with sleep set `sleep`, at depth `depth`.
    Reexpand {
        only: Option<Vec<Asleep>>,
        sleep: Vec<Asleep>,
        depth: u32,
    },
}

impl Visited {
    fn new(bounded: bool) -> Self {
        Visited {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            sleep_sets: SleepSets::new(),
            bounded,
        }
    }

    fn shard(&self, fp: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(fp >> 56) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn visit(&self, fp: u64, parent: u64, action: u32, depth: u32, sleep: &[Asleep]) -> Visit {
        let mut shard = self.shard(fp);
        match shard.entry(fp) {
            MapEntry::Vacant(e) => {
                e.insert(Entry {
                    parent,
                    action,
                    depth,
                    sleep: self.sleep_sets.id(sleep),
                });
                Visit::New
            }
            MapEntry::Occupied(mut e) => {
                let entry = e.get_mut();
                let expanded = entry.depth & EXPANDED != 0;
                // Under a depth bound, a state reached again closer to the root (depth-first
                // search) must be expanded again from there: its successors near the bound were
                // cut off before.
                let shallower = self.bounded && depth < entry.depth & !EXPANDED;
                if shallower {
                    entry.depth = depth | (entry.depth & EXPANDED);
                }
                let stored = self.sleep_sets.get(entry.sleep);
                let narrower = !is_subset(&stored, sleep);
                let only = difference(&stored, sleep);
                let narrowed = narrower.then(|| intersection(&stored, sleep));
                if let Some(n) = &narrowed {
                    entry.sleep = self.sleep_sets.id(n);
                }
                if !expanded || !(narrower || shallower) {
                    // Not expanded yet: it will be, with the narrowed set and the new depth.
                    return Visit::Seen;
                }
                Visit::Reexpand {
                    only: (!shallower).then_some(only),
                    sleep: narrowed.unwrap_or_else(|| stored.to_vec()),
                    depth: entry.depth & !EXPANDED,
                }
            }
        }
    }

    /// The sleep set stored for a visited state (`None` if it is not visited).
    fn stored_sleep(&self, fp: u64) -> Option<Arc<[Asleep]>> {
        let id = self.shard(fp).get(&fp).map(|e| e.sleep)?;
        Some(self.sleep_sets.get(id))
    }

    /// Marks the state expanded and returns the sleep set and depth to expand it with.
    fn start_expanding(&self, fp: u64, depth: u32) -> (Vec<Asleep>, u32) {
        let mut shard = self.shard(fp);
        match shard.get_mut(&fp) {
            Some(e) => {
                e.depth |= EXPANDED;
                (self.sleep_sets.get(e.sleep).to_vec(), e.depth & !EXPANDED)
            }
            None => (Vec::new(), depth),
        }
    }

    fn parent(&self, fp: u64) -> Option<(u64, u32)> {
        self.shard(fp).get(&fp).map(|e| (e.parent, e.action))
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    fn bytes(&self) -> usize {
        let bucket = std::mem::size_of::<(u64, Entry)>() + 1;
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.capacity() * bucket))
            .sum::<usize>()
            + self.sleep_sets.bytes()
    }
}

/// A sleep-set element: the action's key and the history parts it changed where it was taken
/// (sleep sets are sorted by key).
type Asleep = (u64, u64);

fn is_subset(a: &[Asleep], b: &[Asleep]) -> bool {
    a.iter()
        .all(|x| b.binary_search_by_key(&x.0, |y| y.0).is_ok())
}

fn difference(a: &[Asleep], b: &[Asleep]) -> Vec<Asleep> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search_by_key(&x.0, |y| y.0).is_err())
        .collect()
}

/// The elements of both, with the history parts of either (the more dependent reading).
fn intersection(a: &[Asleep], b: &[Asleep]) -> Vec<Asleep> {
    a.iter()
        .filter_map(|x| {
            b.binary_search_by_key(&x.0, |y| y.0)
                .ok()
                .map(|i| (x.0, x.1 | b[i].1))
        })
        .collect()
}

/// A state to expand.
struct Task<S> {
    state: S,
    fp: u64,
    depth: u32,
    /// The `eventually` properties (by index) not yet satisfied on the path.
    pending: u64,
    /// For a re-expansion: take only the first actions (`None`: all), with the second as sleep
    /// set. (A first expansion reads its sleep set and depth from the visited set, where every
    /// path that reached the state before it was expanded has narrowed them.)
    reexpand: Option<(Option<Vec<Asleep>>, Vec<Asleep>)>,
    /// With sleep sets and symmetry: the renaming that gives the state its orbit's fingerprint,
    /// in whose names its stored sleep set is kept.
    renaming: Option<Renaming>,
}

struct Search<'m, M: Model> {
    model: &'m M,
    opts: &'m EngineOptions,
    exact: bool,
    /// With [`Reduction::Symmetry`] or [`Reduction::All`]: the model's symmetry.
    symmetry: Option<SymmetryFns<M>>,
    properties: Vec<stateright::Property<M>>,
    /// Bit `i`: property `i` has a discovery (its condition is then no longer evaluated).
    found: AtomicU64,
    /// Per property: the fingerprint of the state its witness ends at, the witness's length,
    /// and whether the witness goes one step past that state (see [`Search::judge_step`]).
    discoveries: Mutex<Vec<Option<(u64, u32, bool)>>>,
    visited: Visited,
    generated: AtomicUsize,
    /// States visited so far (for the progress line; the final count is the visited set's).
    unique: AtomicUsize,
    reexpansions: AtomicUsize,
    max_depth: AtomicUsize,
    stop: AtomicBool,
    /// Resident bytes when the memory limit stopped the search (0: it did not).
    memory_stop: AtomicU64,
    /// The search passed its time limit.
    time_stop: AtomicBool,
    /// The search was asked to stop ([`EngineOptions::stop_requested`]).
    requested_stop: AtomicBool,
    /// Breadth-first only: the frontier passed half the memory limit; go on depth-first.
    go_depth_first: AtomicBool,
    /// With [`EngineOptions::conditional`]: the answers of the commute tests.
    memo: Option<CommuteMemo>,
}

impl<M> Search<'_, M>
where
    M: Reduce,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + Hash + PartialEq,
{
    /// The state's fingerprint: of its orbit under symmetry, else of its view (or exact).
    fn fingerprint(&self, state: &M::State) -> u64 {
        self.fingerprint_and_renaming(state).0
    }

    /// The state's fingerprint and, with sleep sets and symmetry, its canonical renaming.
    fn fingerprint_and_renaming(&self, state: &M::State) -> (u64, Option<Renaming>) {
        match &self.symmetry {
            Some(sym) => {
                let (fp, renaming) = (sym.orbit)(self.model, state);
                let keep = self.opts.reduction == Reduction::All;
                (fp.max(1), renaming.filter(|_| keep))
            }
            None => (self.view_fingerprint(state), None),
        }
    }

    /// The state's fingerprint without symmetry: exact, or of its reduced view.
    fn view_fingerprint(&self, state: &M::State) -> u64 {
        if self.exact {
            self.model.fingerprint(state, true)
        } else {
            self.model.fingerprint_reduced(state)
        }
    }

    fn discover(&self, index: usize, fp: u64, depth: u32) {
        self.discover_at(index, fp, depth, false);
    }

    /// Records a discovery of property `index`: at the state with fingerprint `fp`, or, with
    /// `past`, at a successor of it one step further.
    fn discover_at(&self, index: usize, fp: u64, depth: u32, past: bool) {
        let mut d = self.discoveries.lock().unwrap_or_else(|e| e.into_inner());
        if d[index].is_none_or(|(_, old, _)| depth < old) {
            d[index] = Some((fp, depth, past));
        }
        self.found.fetch_or(1 << index, Ordering::Relaxed);
        let p = &self.properties[index];
        let stops = match self.opts.target {
            Some(target) => p.name == target,
            None => p.expectation != Expectation::Sometimes,
        };
        if self.opts.stop_on_violation && stops {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Judges the open `sometimes` properties on a successor of the state with fingerprint
    /// `parent_fp`, whether the successor is new, already visited or the state itself. A view
    /// that leaves out what no step reads (a coverage mark, say) makes a step that sets only
    /// that a self-loop, or a step into a state already visited, and such a successor is never
    /// judged as a new state: a `sometimes` property that reads the mark would read "not
    /// reached". Judged here, it is found, with a witness that ends in the step taken. Once
    /// every `sometimes` property is found this costs one load per step.
    fn judge_step(&self, next: &M::State, parent_fp: u64, depth: u32) {
        let found = self.found.load(Ordering::Relaxed);
        for (i, p) in self.properties.iter().enumerate() {
            if p.expectation != Expectation::Sometimes || found & (1 << i) != 0 {
                continue;
            }
            if (p.condition)(self.model, next) {
                self.discover_at(i, parent_fp, depth + 1, true);
            }
        }
    }

    /// Judges a newly visited state; returns the `eventually` properties still pending after it.
    /// `sometimes` properties are judged here only at initial states (`initial`): every other
    /// state is a successor, which [`Search::judge_step`] has judged them on already.
    fn judge(&self, state: &M::State, fp: u64, depth: u32, pending: u64, initial: bool) -> u64 {
        let found = self.found.load(Ordering::Relaxed);
        let mut pending = pending;
        for (i, p) in self.properties.iter().enumerate() {
            let bit = 1u64 << i;
            let (open, hit_when) = match p.expectation {
                Expectation::Always => (found & bit == 0, false),
                Expectation::Sometimes => (initial && found & bit == 0, true),
                Expectation::Eventually => (pending & bit != 0, true),
            };
            if !open || (p.condition)(self.model, state) != hit_when {
                continue;
            }
            if p.expectation == Expectation::Eventually {
                pending &= !bit;
            } else {
                self.discover(i, fp, depth);
            }
        }
        pending
    }

    /// Whether `actions[a]` and `actions[b]` commute in `state` ([`Reduce::commute`]),
    /// remembered by their contexts and keys where the model gives contexts. `contexts` holds
    /// each action's context and key, computed the first time a test needs them.
    fn commute(
        &self,
        state: &M::State,
        actions: &[M::Action],
        a: usize,
        b: usize,
        contexts: &mut Vec<Option<Option<(u64, u64)>>>,
    ) -> bool {
        let Some(memo) = &self.memo else {
            return self.model.commute(state, &actions[a], &actions[b]);
        };
        if contexts.is_empty() {
            contexts.resize(actions.len(), None);
        }
        let mut context = |i: usize| {
            *contexts[i].get_or_insert_with(|| {
                let context = self.model.commute_context(state, &actions[i])?;
                Some((context, self.model.action_key(&actions[i])))
            })
        };
        let (Some(x), Some(y)) = (context(a), context(b)) else {
            return self.model.commute(state, &actions[a], &actions[b]);
        };
        // The test is symmetric: the pair is keyed in a fixed order.
        let key = super::reduce::hash_of(&(x.min(y), x.max(y)));
        if let Some(answer) = memo.get(key) {
            return answer;
        }
        let answer = self.model.commute(state, &actions[a], &actions[b]);
        memo.put(key, answer);
        answer
    }

    /// Expands one state, appending the states to expand next to `out`.
    fn expand(&self, task: &Task<M::State>, out: &mut Vec<Task<M::State>>) {
        let (only, sleep, depth) = match &task.reexpand {
            Some((only, sleep)) => (only.as_ref(), sleep.clone(), task.depth),
            None => {
                let (sleep, depth) = self.visited.start_expanding(task.fp, task.depth);
                (None, sleep, depth)
            }
        };
        if self.opts.max_depth.is_some_and(|d| depth as usize >= d) {
            return;
        }
        let mut actions = Vec::new();
        self.model.actions(&task.state, &mut actions);
        let sleep_on = matches!(self.opts.reduction, Reduction::Sleep | Reduction::All);
        // With symmetry, sleep sets are stored in the names of each state's canonical renaming:
        // keys and history parts are renamed on the way in and out (see `super::symmetry`).
        let canon = match (&self.symmetry, &task.renaming) {
            (Some(sym), Some(r)) if sleep_on => sym
                .rename_key
                .clone()
                .zip(sym.rename_parts.clone())
                .map(|(key, parts)| (key, parts, r.clone())),
            _ => None,
        };
        let keys: Vec<u64> = actions
            .iter()
            .map(|a| match &canon {
                Some((key, _, r)) => key(a, r),
                None => self.model.action_key(a),
            })
            .collect();
        // The sleep set of this state, each element with its full footprint: (key, actors,
        // history parts in this state's names, index of the action). A sleeping action is
        // enabled here (independent steps do not disable it); one not among the actions is
        // dropped, which only sleeps less.
        let mut asleep: Vec<(u64, u64, u64, usize)> = Vec::new();
        for z in &sleep {
            if let Some(j) = keys.iter().position(|k| *k == z.0) {
                let parts = match &canon {
                    Some((_, rename, r)) => rename(z.1, r, true),
                    None => z.1,
                };
                asleep.push((z.0, self.model.footprint(&actions[j]), parts, j));
            }
        }
        let mut before: Vec<(u64, u64, u64, usize)> = Vec::new();
        let mut enabled = !asleep.is_empty();
        // Each action's commute context and key (see `Search::commute`).
        let mut contexts: Vec<Option<Option<(u64, u64)>>> = Vec::new();
        // The successors, first all of them: with sleep sets, a step that leads back to this
        // very state (a self-loop: a redelivery that changes nothing the view keeps) sleeps in
        // every child whose step it commutes with, whichever comes first (see the module doc).
        let mut successors: Vec<(usize, M::State, u64, Option<Renaming>)> = Vec::new();
        for (i, action) in actions.iter().enumerate() {
            let key = keys[i];
            if asleep.iter().any(|z| z.0 == key) {
                continue;
            }
            if let Some(only) = only {
                if !only.iter().any(|o| o.0 == key) {
                    // Taken at an earlier expansion. It must not enter the sleep sets of the
                    // children taken now: the children it reached then were given the actions
                    // taken now in their sleep sets (they were asleep here then), so each pair
                    // would sleep the other and the states after both would be lost. The
                    // actions woken up now come before every earlier one (see the module doc).
                    enabled = true;
                    continue;
                }
            }
            let Some(next) = self.model.next_state(&task.state, action.clone()) else {
                continue;
            };
            if !self.model.within_boundary(&next) {
                continue;
            }
            enabled = true;
            self.generated.fetch_add(1, Ordering::Relaxed);
            self.judge_step(&next, task.fp, depth);
            let (fp, renaming) = self.fingerprint_and_renaming(&next);
            successors.push((i, next, fp, renaming));
        }
        let mut loops: Vec<(u64, u64, u64, usize)> = Vec::new();
        if sleep_on {
            // Under symmetry `fp` is the orbit's: a self-loop must also keep the state's view.
            let mut own_view = None;
            for (i, next, fp, _) in &successors {
                let same = *fp == task.fp
                    && (self.symmetry.is_none() || {
                        let own =
                            *own_view.get_or_insert_with(|| self.view_fingerprint(&task.state));
                        self.view_fingerprint(next) == own
                    });
                if same {
                    let action = &actions[*i];
                    loops.push((keys[*i], self.model.footprint(action), 0, *i));
                }
            }
        }
        for (i, next, fp, renaming) in successors {
            let (action, key) = (&actions[i], keys[i]);
            let actors = self.model.footprint(action);
            let looped = loops.iter().any(|l| l.3 == i);
            let mut child_sleep: Vec<Asleep> = Vec::new();
            if sleep_on {
                let parts = self.model.history_parts(&task.state, &next);
                if looped {
                    // Taking it again reaches nothing new: no visit.
                    before.push((key, actors, parts, i));
                    continue;
                }
                // The sleep set the child is stored with, if it is visited already: an action
                // that only a conditional test could add to the child's set is tested only if
                // that set holds it (otherwise the child's set does not need it).
                let mut stored: Option<Option<Arc<[Asleep]>>> = None;
                let later_loops = loops.iter().filter(|l| l.3 > i);
                for &(k, a, h, j) in asleep.iter().chain(before.iter()).chain(later_loops) {
                    let element = match (&canon, &renaming) {
                        // The child's canonical names are this state's (the common case): the
                        // key is already in them.
                        (Some((_, rename, mine)), Some(r)) if r == mine => (k, rename(h, r, false)),
                        (Some((key, rename, _)), Some(r)) => {
                            (key(&actions[j], r), rename(h, r, false))
                        }
                        _ => (k, h),
                    };
                    let independent = (a & actors == 0 && h & parts == 0)
                        || self.opts.conditional && {
                            let stored =
                                stored.get_or_insert_with(|| self.visited.stored_sleep(fp));
                            let needed = stored.as_ref().is_none_or(|set| {
                                set.binary_search_by_key(&element.0, |z| z.0).is_ok()
                            });
                            needed && self.commute(&task.state, &actions, j, i, &mut contexts)
                        };
                    if independent {
                        child_sleep.push(element);
                    }
                }
                child_sleep.sort_unstable_by_key(|z| z.0);
                child_sleep.dedup();
                before.push((key, actors, parts, i));
            }
            let child_depth = depth + 1;
            match self
                .visited
                .visit(fp, task.fp, i as u32, child_depth, &child_sleep)
            {
                Visit::New => {
                    self.unique.fetch_add(1, Ordering::Relaxed);
                    self.max_depth
                        .fetch_max(child_depth as usize, Ordering::Relaxed);
                    let pending = self.judge(&next, fp, child_depth, task.pending, false);
                    out.push(Task {
                        state: next,
                        fp,
                        depth: child_depth,
                        pending,
                        reexpand: None,
                        renaming,
                    });
                }
                Visit::Seen => {}
                Visit::Reexpand { only, sleep, depth } => {
                    self.reexpansions.fetch_add(1, Ordering::Relaxed);
                    out.push(Task {
                        state: next,
                        fp,
                        depth,
                        pending: task.pending,
                        reexpand: Some((only, sleep)),
                        renaming,
                    });
                }
            }
        }
        if !enabled && task.reexpand.is_none() && task.pending != 0 {
            for i in 0..self.properties.len() {
                if task.pending & (1 << i) != 0 {
                    self.discover(i, task.fp, task.depth);
                }
            }
        }
    }

    /// The path to the state with fingerprint `fp`, replayed along the fingerprints of its
    /// parent links (`None` if a link is missing or does not replay: a fingerprint collision).
    ///
    /// A link's action index counts the actions of the state that was expanded when the child
    /// was found, and that is not always the state the replay reaches: a state reached again
    /// is re-expanded as it was reached, and another state with the same fingerprint may list
    /// its actions in another order (a renaming of it under symmetry, whose network iterates
    /// in another order) or list others (a view that leaves out messages no step can use any
    /// more). So each step takes the recorded index only if it leads to the recorded child's
    /// fingerprint, and otherwise the action that does: every state with a fingerprint has a
    /// successor with each fingerprint another state with it has (they are one state of the
    /// view, or renamings of each other). Trusting the index alone replayed some paths to
    /// another state, and a violation whose replay ended elsewhere was dropped.
    fn path_to(&self, inits: &[M::State], fp: u64) -> Option<Path<M::State, M::Action>> {
        let (init, taken, _) = self.actions_to(inits, fp)?;
        Path::from_actions(self.model, init, &taken)
    }

    /// The path to the state with fingerprint `fp` and one step further, to a successor where
    /// `condition` holds ([`Search::judge_step`]).
    fn path_past(
        &self,
        inits: &[M::State],
        fp: u64,
        condition: &fn(&M, &M::State) -> bool,
    ) -> Option<Path<M::State, M::Action>> {
        let (init, mut taken, last) = self.actions_to(inits, fp)?;
        let mut actions = Vec::new();
        self.model.actions(&last, &mut actions);
        let step = actions.into_iter().find(|a| {
            self.model.next_state(&last, a.clone()).is_some_and(|next| {
                self.model.within_boundary(&next) && condition(self.model, &next)
            })
        })?;
        taken.push(step);
        Path::from_actions(self.model, init, &taken)
    }

    /// The initial state, the actions and the last state of the path to the state with
    /// fingerprint `fp`, replayed along the fingerprints of its parent links.
    fn actions_to(&self, inits: &[M::State], fp: u64) -> Option<Replayed<M>> {
        let mut links = Vec::new();
        let mut cur = fp;
        loop {
            let (parent, action) = self.visited.parent(cur)?;
            if parent == 0 {
                break;
            }
            links.push((action as usize, cur));
            cur = parent;
        }
        links.reverse();
        let init = inits.iter().find(|s| self.fingerprint(s) == cur)?;
        let mut state = init.clone();
        let mut taken = Vec::with_capacity(links.len());
        let mut actions = Vec::new();
        for (index, child) in links {
            actions.clear();
            self.model.actions(&state, &mut actions);
            let leads_to_child = |a: &M::Action| {
                self.model
                    .next_state(&state, a.clone())
                    .filter(|next| self.fingerprint(next) == child)
            };
            let recorded = actions
                .get(index)
                .and_then(|a| Some((a.clone(), leads_to_child(a)?)));
            let (a, next) = match recorded {
                Some(found) => found,
                None => actions
                    .iter()
                    .find_map(|a| Some((a.clone(), leads_to_child(a)?)))?,
            };
            state = next;
            taken.push(a);
        }
        Some((init.clone(), taken, state))
    }
}

/// A replayed path: its initial state, its actions and its last state.
type Replayed<M> = (
    <M as Model>::State,
    Vec<<M as Model>::Action>,
    <M as Model>::State,
);

/// The process's resident memory in bytes (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Nine tenths of the memory available when called (Linux; `None` elsewhere): the default
/// limit of an exhaustive search, which otherwise runs until the operating system kills it.
pub fn default_memory_limit() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 10 * 9 * 1024)
}

/// How often the main thread reads the resident memory.
const MEMORY_POLL: Duration = Duration::from_millis(100);

/// Prints a progress line every so often, and watches the memory and time limits.
struct ProgressLine<'a> {
    out: &'a mut dyn Write,
    every: Duration,
    last: (Duration, usize),
    start: Instant,
    last_memory_check: Duration,
}

impl ProgressLine<'_> {
    fn poll<M: Model>(&mut self, search: &Search<'_, M>) {
        let now = self.start.elapsed();
        if search.opts.max_time.is_some_and(|limit| now >= limit) {
            search.time_stop.store(true, Ordering::Relaxed);
            search.stop.store(true, Ordering::Relaxed);
        }
        let requested = search.opts.stop_requested.as_ref();
        if requested.is_some_and(|r| r.load(Ordering::Relaxed)) {
            search.requested_stop.store(true, Ordering::Relaxed);
            search.stop.store(true, Ordering::Relaxed);
        }
        if let Some(limit) = search.opts.max_memory {
            if now >= self.last_memory_check + MEMORY_POLL {
                self.last_memory_check = now;
                let rss = resident_bytes();
                if let Some(rss) = rss.filter(|&r| r > limit) {
                    search.memory_stop.store(rss, Ordering::Relaxed);
                    search.stop.store(true, Ordering::Relaxed);
                } else if search.opts.order == Order::Bfs && rss.is_some_and(|r| r > limit / 2) {
                    search.go_depth_first.store(true, Ordering::Relaxed);
                }
            }
        }
        if now < self.last.0 + self.every {
            return;
        }
        let u = search.unique.load(Ordering::Relaxed);
        let rate = (u - self.last.1) as f64 / (now - self.last.0).as_secs_f64();
        let _ = writeln!(
            self.out,
            "  ... {:>6.1}s  states={}  unique={}  depth={}  ({:.0} unique/s)",
            now.as_secs_f64(),
            search.generated.load(Ordering::Relaxed),
            u,
            search.max_depth.load(Ordering::Relaxed),
            rate
        );
        let _ = self.out.flush();
        self.last = (now, u);
    }
}

/// Breadth-first, one level at a time, the level split among the threads. Returns the widest
/// level (or the largest depth-first stack, if larger), and where it went on depth-first.
///
/// A level of whole states can outgrow memory long before the visited set does (about 4.5 KB a
/// state on the RSL model against 52-68 bytes in the visited set). Once the process passes half
/// the memory limit, the search goes on depth-first from where it is: the states of the current
/// level not yet expanded and the next level found so far (visited, not expanded) become the
/// roots of [`dfs`], which expands them the same way ([`Search::expand`]) with the same visited
/// set. The space explored is the same; only counterexamples found from there on are not
/// shortest by construction (every counterexample is minimised afterwards anyway).
fn bfs<M>(
    search: &Search<'_, M>,
    mut level: Vec<Task<M::State>>,
    progress: &mut ProgressLine<'_>,
) -> (usize, Option<(usize, usize)>)
where
    M: Reduce + Sync,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    let mut widest = 0usize;
    while !level.is_empty() && !search.stop.load(Ordering::Relaxed) {
        widest = widest.max(level.len());
        let next_index = AtomicUsize::new(0);
        let found = AtomicUsize::new(0);
        let level_ref = &level;
        let mut next: Vec<Task<M::State>> = Vec::new();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..search.opts.threads.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut local = Vec::new();
                        loop {
                            if search.stop.load(Ordering::Relaxed)
                                || search.go_depth_first.load(Ordering::Relaxed)
                            {
                                break;
                            }
                            let from = next_index.fetch_add(CHUNK, Ordering::Relaxed);
                            if from >= level_ref.len() {
                                break;
                            }
                            let before = local.len();
                            for task in &level_ref[from..(from + CHUNK).min(level_ref.len())] {
                                search.expand(task, &mut local);
                            }
                            let next_len = found.fetch_add(local.len() - before, Ordering::Relaxed)
                                + (local.len() - before);
                            if search.opts.depth_first_beyond.is_some_and(|n| next_len > n) {
                                search.go_depth_first.store(true, Ordering::Relaxed);
                            }
                        }
                        local
                    })
                })
                .collect();
            for mut local in join_polling(workers, search, progress) {
                next.append(&mut local);
            }
        });
        if search.go_depth_first.load(Ordering::Relaxed) && !search.stop.load(Ordering::Relaxed) {
            // Every chunk taken was expanded whole: what is left of the level starts here.
            let expanded = next_index.load(Ordering::Relaxed).min(level.len());
            let at = (
                search.unique.load(Ordering::Relaxed),
                search.max_depth.load(Ordering::Relaxed),
            );
            let mut roots: Vec<Task<M::State>> = level.drain(expanded..).collect();
            drop(level);
            roots.append(&mut next);
            widest = widest.max(roots.len());
            let deepest = dfs(search, roots, progress);
            return (widest.max(deepest), Some(at));
        }
        level = next;
    }
    (widest, None)
}

/// Waits for the workers, printing progress meanwhile, and returns what each returned. A
/// worker's panic (a property or an actor that panics) stops the others, which would otherwise
/// wait for ever for the work it held, and is passed on once they are done.
fn join_polling<M: Model, T>(
    workers: Vec<std::thread::ScopedJoinHandle<'_, T>>,
    search: &Search<'_, M>,
    progress: &mut ProgressLine<'_>,
) -> Vec<T> {
    let mut running: Vec<Option<std::thread::ScopedJoinHandle<'_, T>>> =
        workers.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = running.iter().map(|_| None).collect();
    let mut panic = None;
    while running.iter().any(Option::is_some) {
        for (slot, result) in running.iter_mut().zip(results.iter_mut()) {
            if !slot.as_ref().is_some_and(|w| w.is_finished()) {
                continue;
            }
            match slot.take().map(|w| w.join()) {
                Some(Ok(value)) => *result = Some(value),
                Some(Err(payload)) => {
                    search.stop.store(true, Ordering::SeqCst);
                    panic.get_or_insert(payload);
                }
                None => {}
            }
        }
        if running.iter().any(Option::is_some) {
            std::thread::sleep(POLL);
            progress.poll(search);
        }
    }
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
    results.into_iter().flatten().collect()
}

/// Depth-first: each thread works through a stack of its own and hands the oldest half of it
/// (the largest subtrees) to a shared pool when another thread is idle. Memory is the visited
/// set and the stacks only. Returns the largest stack.
fn dfs<M>(
    search: &Search<'_, M>,
    roots: Vec<Task<M::State>>,
    progress: &mut ProgressLine<'_>,
) -> usize
where
    M: Reduce + Sync,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    let threads = search.opts.threads.max(1);
    let pool = Mutex::new(roots);
    let idle = AtomicUsize::new(0);
    let deepest = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut stack: Vec<Task<M::State>> = Vec::new();
                    let mut picks = 0u64;
                    loop {
                        if search.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let next = match search.opts.schedule_seed {
                            Some(seed) if !stack.is_empty() => {
                                picks += 1;
                                let at =
                                    super::reduce::hash_of(&(seed, picks)) % stack.len() as u64;
                                Some(stack.swap_remove(at as usize))
                            }
                            _ => stack.pop(),
                        };
                        let task = match next {
                            Some(t) => t,
                            None => {
                                idle.fetch_add(1, Ordering::SeqCst);
                                let taken = loop {
                                    let t = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
                                    if let Some(t) = t {
                                        idle.fetch_sub(1, Ordering::SeqCst);
                                        break Some(t);
                                    }
                                    if idle.load(Ordering::SeqCst) == threads
                                        || search.stop.load(Ordering::Relaxed)
                                    {
                                        break None;
                                    }
                                    std::thread::sleep(Duration::from_micros(200));
                                };
                                match taken {
                                    Some(t) => t,
                                    None => break,
                                }
                            }
                        };
                        search.expand(&task, &mut stack);
                        deepest.fetch_max(stack.len(), Ordering::Relaxed);
                        if stack.len() >= 2 && idle.load(Ordering::Relaxed) > 0 {
                            let mut shared = pool.lock().unwrap_or_else(|e| e.into_inner());
                            if shared.is_empty() {
                                let half = stack.len() / 2;
                                shared.extend(stack.drain(..half));
                            }
                        }
                    }
                })
            })
            .collect();
        join_polling(workers, search, progress);
    });
    deepest.load(Ordering::Relaxed)
}

/// The most properties a model may register for this engine (one bit each); `check::run` runs a
/// model with more on stateright's checker.
pub const MAX_PROPERTIES: usize = 64;

/// How many tasks a worker takes at once.
const CHUNK: usize = 32;
/// How often the main thread looks at the workers (to join them and to print progress).
const POLL: Duration = Duration::from_millis(2);

/// Explores `model` exhaustively (or to `opts.max_depth`) and judges every property.
pub fn explore<M>(
    model: &M,
    opts: &EngineOptions,
    progress_out: &mut dyn Write,
) -> Explored<M::State, M::Action>
where
    M: Reduce + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    let start = Instant::now();
    let properties = model.properties();
    let symmetry = match opts.reduction {
        Reduction::Symmetry | Reduction::All => Some(
            opts.symmetry
                .as_ref()
                .and_then(Symmetry::for_model::<M>)
                .expect("symmetry reductions need EngineOptions::symmetry for this model"),
        ),
        _ => None,
    };
    assert!(
        opts.reduction != Reduction::All
            || symmetry.as_ref().is_some_and(|s| s.rename_key.is_some()),
        "Reduction::All needs a symmetry that renames actions (Symmetry::actors)"
    );
    assert!(
        properties.len() <= MAX_PROPERTIES,
        "the engine tracks at most {MAX_PROPERTIES} properties"
    );
    let search = Search {
        model,
        opts,
        exact: opts.reduction == Reduction::None,
        symmetry,
        discoveries: Mutex::new(vec![None; properties.len()]),
        properties,
        found: AtomicU64::new(0),
        visited: Visited::new(opts.max_depth.is_some()),
        generated: AtomicUsize::new(0),
        unique: AtomicUsize::new(0),
        reexpansions: AtomicUsize::new(0),
        max_depth: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        memory_stop: AtomicU64::new(0),
        time_stop: AtomicBool::new(false),
        requested_stop: AtomicBool::new(false),
        go_depth_first: AtomicBool::new(false),
        memo: opts.conditional.then(CommuteMemo::new),
    };
    let all_eventually = search
        .properties
        .iter()
        .enumerate()
        .filter(|(_, p)| p.expectation == Expectation::Eventually)
        .fold(0u64, |acc, (i, _)| acc | (1 << i));
    let inits: Vec<M::State> = model
        .init_states()
        .into_iter()
        .filter(|s| model.within_boundary(s))
        .collect();
    let mut level = Vec::new();
    for s in &inits {
        let (fp, renaming) = search.fingerprint_and_renaming(s);
        search.generated.fetch_add(1, Ordering::Relaxed);
        if let Visit::New = search.visited.visit(fp, 0, 0, 1, &[]) {
            let pending = search.judge(s, fp, 1, all_eventually, true);
            level.push(Task {
                state: s.clone(),
                fp,
                depth: 1,
                pending,
                reexpand: None,
                renaming,
            });
        }
    }
    search.unique.store(level.len(), Ordering::Relaxed);
    let mut progress = ProgressLine {
        out: progress_out,
        every: opts.progress.unwrap_or(Duration::MAX / 4),
        last: (Duration::ZERO, 0),
        start,
        last_memory_check: Duration::ZERO,
    };
    let (widest, depth_first_from) = match opts.order {
        Order::Bfs => bfs(&search, level, &mut progress),
        Order::Dfs => (dfs(&search, level, &mut progress), None),
    };
    let stopped = search.stop.load(Ordering::Relaxed);
    let discoveries = search
        .discoveries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut paths = HashMap::new();
    for (i, d) in discoveries.iter().enumerate() {
        let Some((fp, _, past)) = d else { continue };
        let p = &search.properties[i];
        // The replayed path must end where the discovery was made: a sometimes property holds
        // there, an always or eventually property does not. (Only a fingerprint collision could
        // make it end elsewhere; then the discovery is dropped rather than reported untrue.)
        // A discovery one step past its state ends in a step of that state to a state where
        // the (sometimes) property holds.
        let path = if *past {
            search.path_past(&inits, *fp, &p.condition)
        } else {
            search.path_to(&inits, *fp)
        };
        let path = path.filter(|path| {
            (p.condition)(model, path.last_state()) == (p.expectation == Expectation::Sometimes)
        });
        if let Some(path) = path {
            paths.insert(p.name, path);
        }
    }
    let stats = EngineStats {
        reexpansions: search.reexpansions.load(Ordering::Relaxed),
        widest_level: widest,
        visited_bytes: search.visited.bytes(),
        depth_first_from,
    };
    Explored {
        states: search.generated.load(Ordering::Relaxed),
        unique: search.visited.len(),
        depth: search.max_depth.load(Ordering::Relaxed),
        complete: opts.max_depth.is_none() && !stopped,
        memory_stop: Some(search.memory_stop.load(Ordering::Relaxed)).filter(|&m| m > 0),
        time_stop: search
            .time_stop
            .load(Ordering::Relaxed)
            .then(|| start.elapsed()),
        requested_stop: search
            .requested_stop
            .load(Ordering::Relaxed)
            .then(|| start.elapsed()),
        paths,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::ghost::GhostHistory;
    use stateright::actor::{Actor, ActorModel, Envelope, Id, Out};
    use std::borrow::Cow;

    /// Two writers (actors 0 and 1) each fire one timer and tell actor 2; the ghost history
    /// records who told, in order. The writers are independent actors, but their records are not:
    /// the order is the history.
    #[derive(Clone)]
    struct Writer;

    impl Actor for Writer {
        type Msg = ();
        type State = bool;
        type Timer = ();
        type Random = ();
        type Storage = ();
        fn on_start(&self, id: Id, _: &Option<()>, o: &mut Out<Self>) -> bool {
            if usize::from(id) < 2 {
                o.set_timer((), Duration::ZERO..Duration::ZERO);
            }
            false
        }
        fn on_msg(&self, _: Id, _: &mut Cow<bool>, _: Id, _: (), _: &mut Out<Self>) {}
        fn on_timeout(&self, _: Id, state: &mut Cow<bool>, _: &(), o: &mut Out<Self>) {
            *state.to_mut() = true;
            o.send(Id::from(2), ());
        }
    }

    /// Who wrote, in order. `HONEST`: the log says that any change touches every part; if not,
    /// it claims its changes commute, which they do not.
    #[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
    struct WriteLog<const HONEST: bool>(Vec<Id>);

    impl<const HONEST: bool> GhostHistory for WriteLog<HONEST> {
        fn changed_parts(&self, next: &Self) -> u64 {
            if HONEST && self != next {
                crate::invariants::ghost::ALL_PARTS
            } else {
                0
            }
        }
    }

    fn record<const HONEST: bool>(
        _: &(),
        h: &WriteLog<HONEST>,
        env: Envelope<&()>,
    ) -> Option<WriteLog<HONEST>> {
        let mut order = h.0.clone();
        order.push(env.src);
        Some(WriteLog(order))
    }

    fn not_one_then_zero<const HONEST: bool>(
        _: &ActorModel<Writer, (), WriteLog<HONEST>>,
        s: &stateright::actor::ActorModelState<Writer, WriteLog<HONEST>>,
    ) -> bool {
        s.history.0 != [Id::from(1), Id::from(0)]
    }

    /// Whether the sleep-set search finds the state where writer 1 wrote, then writer 0.
    fn finds_one_then_zero<const HONEST: bool>() -> bool {
        let model = ActorModel::new((), WriteLog::<HONEST>::default())
            .actors(vec![Writer, Writer, Writer])
            .record_msg_out(record::<HONEST>)
            .property(
                Expectation::Always,
                "not 1 then 0",
                not_one_then_zero::<HONEST>,
            );
        let opts = test_options(Order::Bfs, Reduction::Sleep, 1);
        let found = explore(&model, &opts, &mut std::io::sink());
        found.paths.contains_key("not 1 then 0")
    }

    #[test]
    fn history_changes_make_independent_actors_dependent() {
        // The two timers are at different actors; only the history orders them. Told so, the
        // sleep sets take both orders and the violation (1 then 0) is found; a history that
        // claims its changes commute makes the reduction sleep through it (0 fires first, so
        // from "1 fired" the sleeping 0 is never taken).
        assert!(finds_one_then_zero::<true>());
        assert!(!finds_one_then_zero::<false>());
    }

    /// Counts to 2 by a timer; restarts from nothing.
    #[derive(Clone)]
    struct Ticker;

    impl Actor for Ticker {
        type Msg = ();
        type State = u8;
        type Timer = ();
        type Random = ();
        type Storage = ();
        fn on_start(&self, _: Id, _: &Option<()>, o: &mut Out<Self>) -> u8 {
            o.set_timer((), Duration::ZERO..Duration::ZERO);
            0
        }
        fn on_msg(&self, _: Id, _: &mut Cow<u8>, _: Id, _: (), _: &mut Out<Self>) {}
        fn on_timeout(&self, _: Id, state: &mut Cow<u8>, _: &(), o: &mut Out<Self>) {
            *state.to_mut() += 1;
            if **state < 2 {
                o.set_timer((), Duration::ZERO..Duration::ZERO);
            }
        }
    }

    /// A history that says (`UNREAD`) or not that no property reads a crashed actor's state.
    #[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
    struct CrashContract<const UNREAD: bool>;

    impl<const UNREAD: bool> GhostHistory for CrashContract<UNREAD> {
        fn crashed_states_unread(&self) -> bool {
            UNREAD
        }
    }

    /// The states the reduced view tells apart, and whether a property that (against the
    /// contract when `UNREAD`) reads the crashed ticker's state finds it crashed at 2.
    fn ticker_states<const UNREAD: bool>() -> (usize, bool) {
        let model = ActorModel::new((), CrashContract::<UNREAD>)
            .actors(vec![Ticker])
            .max_crashes(1)
            .property(
                Expectation::Always,
                "not crashed at 2",
                |_, s: &stateright::actor::ActorModelState<Ticker, CrashContract<UNREAD>>| {
                    !(s.crashed[0] && *s.actor_states[0] == 2)
                },
            );
        let opts = test_options(Order::Bfs, Reduction::Sleep, 1);
        let found = explore(&model, &opts, &mut std::io::sink());
        (found.unique, found.paths.contains_key("not crashed at 2"))
    }

    #[test]
    fn the_reduced_view_leaves_a_crashed_actors_state_out_only_where_the_history_allows() {
        // Up at 0, 1, 2, and crashed at each: six states. Left out, the three crashed ones are
        // one (the restart is the same from each), the one reached first: crashed at 0.
        assert_eq!(ticker_states::<false>(), (6, true));
        assert_eq!(ticker_states::<true>(), (4, false));
    }

    /// One state fanning out to `WIDE` states, each with two successors, each with one: levels
    /// wider than the chunk a worker takes, so that going depth-first in the middle of the
    /// second level hands over both that level's unexpanded rest and the next level found so
    /// far (the test fails if either is dropped).
    struct Fan;

    const WIDE: u32 = 200;

    impl Model for Fan {
        type State = (u32, u32);
        type Action = u32;
        fn init_states(&self) -> Vec<(u32, u32)> {
            vec![(0, 0)]
        }
        fn actions(&self, s: &(u32, u32), actions: &mut Vec<u32>) {
            match s.0 {
                0 => actions.extend(0..WIDE),
                1 => actions.extend([0, 1]),
                2 => actions.push(0),
                _ => {}
            }
        }
        fn next_state(&self, s: &(u32, u32), a: u32) -> Option<(u32, u32)> {
            Some(match s.0 {
                0 => (1, a),
                1 => (2, 2 * s.1 + a),
                _ => (s.0 + 1, s.1),
            })
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::always(
                "shallow",
                |_, s: &(u32, u32)| s.0 < 4,
            )]
        }
    }

    impl Reduce for Fan {}

    /// Four steps a, b, c, d (actions 0 to 3), each taken once. a and b are dependent (one
    /// actor); c and d are independent of everything. Once a and b are done the state records
    /// which came last, and a state where b came last lists its actions in reverse; the view
    /// leaves the record out (no step and no property reads it). So "a then b" and "b then a"
    /// are one state of the view whose two members list their actions in different orders.
    /// After a alone, c and d are listed before b, so "a then b" is reached with both asleep,
    /// and "b then a", reached later without them, is expanded again for them: the witness
    /// (c after a and b, no d) may be found there, at an index of that member's list, while the
    /// path to the state replays to the other member.
    struct Orders;

    impl Model for Orders {
        type State = ([bool; 4], u8);
        type Action = u8;
        fn init_states(&self) -> Vec<Self::State> {
            vec![([false; 4], 0)]
        }
        fn actions(&self, s: &Self::State, actions: &mut Vec<u8>) {
            let mut order: Vec<u8> = (0..4).filter(|&a| !s.0[a as usize]).collect();
            if s.0 == [true, false, false, false] {
                order = vec![2, 3, 1];
            }
            if s.1 == 2 {
                order.reverse();
            }
            actions.extend(order);
        }
        fn next_state(&self, s: &Self::State, a: u8) -> Option<Self::State> {
            let mut next = *s;
            next.0[a as usize] = true;
            if a < 2 && next.0[0] && next.0[1] {
                next.1 = a + 1;
            }
            Some(next)
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::sometimes(
                "c after a and b, no d",
                |_, s: &Self::State| s.0 == [true, true, true, false],
            )]
        }
    }

    impl Reduce for Orders {
        fn fingerprint_reduced(&self, s: &Self::State) -> u64 {
            super::super::reduce::hash_of(&s.0).max(1)
        }
        fn footprint(&self, a: &u8) -> u64 {
            [1, 1, 2, 4][*a as usize]
        }
    }

    #[test]
    fn a_witness_replays_through_a_state_the_view_identifies_with_another() {
        // Replaying the recorded action indices alone lost the witness under schedule seeds
        // 20, 22, 38, 73, 125, 148, 152 and 155 of these.
        let mut missed = Vec::new();
        for seed in 0..200 {
            let opts = EngineOptions {
                schedule_seed: Some(seed),
                ..test_options(Order::Dfs, Reduction::Sleep, 1)
            };
            let found = explore(&Orders, &opts, &mut std::io::sink());
            if !found.paths.contains_key("c after a and b, no d") {
                missed.push(seed);
            }
        }
        assert!(
            missed.is_empty(),
            "seeds whose witness did not replay: {missed:?}"
        );
    }

    /// A counter to 2 and a mark that the view leaves out (no step reads it): marking is a
    /// self-loop of the view, so the marked state is never a new state. A `sometimes` property
    /// that reads the mark must still be found, with a witness that ends in the marking step.
    struct Mark;

    impl Model for Mark {
        type State = (u8, bool);
        type Action = u8;
        fn init_states(&self) -> Vec<Self::State> {
            vec![(0, false)]
        }
        fn actions(&self, s: &Self::State, actions: &mut Vec<u8>) {
            if s.0 < 2 {
                actions.push(0);
            }
            if s.0 == 1 {
                actions.push(1);
            }
        }
        fn next_state(&self, s: &Self::State, a: u8) -> Option<Self::State> {
            Some(if a == 0 { (s.0 + 1, s.1) } else { (s.0, true) })
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::sometimes(
                "marked",
                |_, s: &Self::State| s.1,
            )]
        }
    }

    impl Reduce for Mark {
        fn fingerprint_reduced(&self, s: &Self::State) -> u64 {
            super::super::reduce::hash_of(&s.0).max(1)
        }
    }

    #[test]
    fn a_mark_set_by_a_self_loop_of_the_view_is_still_reached() {
        for order in [Order::Bfs, Order::Dfs] {
            for reduction in [Reduction::View, Reduction::Sleep] {
                let found = explore(
                    &Mark,
                    &test_options(order, reduction, 1),
                    &mut std::io::sink(),
                );
                let path = found.paths.get("marked");
                assert!(path.is_some(), "{order:?}, {reduction:?}: not reached");
                let last = path.unwrap().last_state();
                assert_eq!(*last, (1, true), "{order:?}, {reduction:?}");
            }
        }
    }

    /// [`Fan`] with a property that panics at one state of the third level.
    struct PanickingFan;

    impl Model for PanickingFan {
        type State = (u32, u32);
        type Action = u32;
        fn init_states(&self) -> Vec<(u32, u32)> {
            Fan.init_states()
        }
        fn actions(&self, s: &(u32, u32), actions: &mut Vec<u32>) {
            Fan.actions(s, actions)
        }
        fn next_state(&self, s: &(u32, u32), a: u32) -> Option<(u32, u32)> {
            Fan.next_state(s, a)
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::always(
                "panics",
                |_, s: &(u32, u32)| {
                    assert!(*s != (2, 7), "the property panics here");
                    true
                },
            )]
        }
    }

    impl Reduce for PanickingFan {}

    #[test]
    fn a_worker_that_panics_stops_the_search_and_the_panic_is_passed_on() {
        // Before the fix the other depth-first worker waited for ever for the work the
        // panicking one held, and the search never returned.
        for order in [Order::Dfs, Order::Bfs] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let opts = test_options(order, Reduction::Sleep, 2);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    explore(&PanickingFan, &opts, &mut std::io::sink()).unique
                }));
                let _ = tx.send(outcome.is_err());
            });
            let panicked = rx.recv_timeout(Duration::from_secs(60));
            assert_eq!(
                panicked,
                Ok(true),
                "{order:?}: the search must end with the panic"
            );
        }
    }

    /// Counts up for ever, two ways each step: a search of it ends only when stopped.
    struct Endless;

    impl Model for Endless {
        type State = u64;
        type Action = u64;
        fn init_states(&self) -> Vec<u64> {
            vec![0]
        }
        fn actions(&self, _: &u64, actions: &mut Vec<u64>) {
            actions.extend([1, 2]);
        }
        fn next_state(&self, s: &u64, a: u64) -> Option<u64> {
            Some(s + a)
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::always("any", |_, _: &u64| true)]
        }
    }

    impl Reduce for Endless {}

    #[test]
    fn a_search_asked_to_stop_stops_and_says_so() {
        for order in [Order::Bfs, Order::Dfs] {
            let request = Arc::new(AtomicBool::new(false));
            let opts = EngineOptions {
                stop_requested: Some(request.clone()),
                ..test_options(order, Reduction::Sleep, 2)
            };
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let found = explore(&Endless, &opts, &mut std::io::sink());
                let _ = tx.send((found.requested_stop.is_some(), found.complete, found.unique));
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                rx.try_recv().is_err(),
                "{order:?}: the search must not end by itself"
            );
            request.store(true, Ordering::Relaxed);
            let (requested, complete, unique) = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{order:?}: the search did not stop on request"));
            assert!(requested, "{order:?}: the outcome says why it stopped");
            assert!(!complete, "{order:?}");
            assert!(unique > 1, "{order:?}");
        }
    }

    #[test]
    fn breadth_first_goes_depth_first_mid_level_and_visits_everything() {
        for threads in [1, 2] {
            let opts = EngineOptions {
                depth_first_beyond: Some(300),
                ..test_options(Order::Bfs, Reduction::Sleep, threads)
            };
            let found = explore(&Fan, &opts, &mut std::io::sink());
            assert_eq!(found.unique, 1 + 5 * WIDE as usize, "{threads} threads");
            assert!(found.complete);
            assert!(found.stats.depth_first_from.is_some());
        }
    }

    /// Actor 0 counts `x` up to `LAST` (action 0); actor 1's action 1 leaves the state as it
    /// is until `y` is set, then sets `z`; action 2, enabled once `x` is `LAST`, sets `y`
    /// (it reads `x` and writes what action 1 reads: it touches both actors).
    struct Loops;

    const LAST: u8 = 5;

    impl Model for Loops {
        type State = (u8, bool, bool);
        type Action = u8;
        fn init_states(&self) -> Vec<(u8, bool, bool)> {
            vec![(0, false, false)]
        }
        fn actions(&self, s: &(u8, bool, bool), actions: &mut Vec<u8>) {
            if s.0 < LAST {
                actions.push(0);
            }
            actions.push(1);
            if s.0 == LAST && !s.1 {
                actions.push(2);
            }
        }
        fn next_state(&self, s: &(u8, bool, bool), a: u8) -> Option<(u8, bool, bool)> {
            let (x, y, z) = *s;
            Some(match a {
                0 => (x + 1, y, z),
                1 => (x, y, z || y),
                _ => (x, true, z),
            })
        }
        fn properties(&self) -> Vec<stateright::Property<Self>> {
            vec![stateright::Property::sometimes(
                "z",
                |_, s: &(u8, bool, bool)| s.2,
            )]
        }
    }

    impl Reduce for Loops {
        fn footprint(&self, a: &u8) -> u64 {
            match a {
                0 => 1,
                1 => 2,
                _ => 3,
            }
        }
    }

    #[test]
    fn a_self_loop_sleeps_where_it_commutes_and_only_there() {
        for threads in [1, 2] {
            let opts = test_options(Order::Dfs, Reduction::Sleep, threads);
            let found = explore(&Loops, &opts, &mut std::io::sink());
            // x = 0..=LAST, then y, then z: every state. After action 2, on which it depends,
            // action 1 is taken again (sleeping it there would lose z).
            assert_eq!(found.unique, usize::from(LAST) + 3);
            assert!(found.paths.contains_key("z"));
            // The initial state, action 0 LAST times, action 2 once, and action 1 three times:
            // its self-loop at the first state, then after y and after z. It sleeps along the
            // count, which it is independent of, though it comes after action 0 (by the order
            // alone it was taken at each of the LAST + 1 states before y: 15 transitions).
            assert_eq!(found.states, 1 + usize::from(LAST) + 1 + 3);
        }
    }

    #[test]
    fn the_commute_memo_returns_what_was_put_for_that_key_only() {
        let memo = CommuteMemo::new();
        let slots = MEMO_SLOTS as u64;
        for key in [0, 1, 2, 3, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(memo.get(key), None, "{key:#x} empty");
            memo.put(key, true);
            assert_eq!(memo.get(key), Some(true), "{key:#x}");
            memo.put(key, false);
            assert_eq!(memo.get(key), Some(false), "{key:#x}");
            // Same slot, another key: not its answer; putting it takes the slot.
            let other = key ^ slots;
            assert_eq!(memo.get(other), None, "{other:#x} shares the slot only");
            memo.put(other, true);
            assert_eq!(memo.get(other), Some(true));
            assert_eq!(memo.get(key), None, "{key:#x} was replaced");
            // Keys that differ in their lowest two bits have different slots.
            assert_eq!(memo.get(key ^ 1), None);
            assert_eq!(memo.get(key ^ 2), None);
        }
    }

    #[test]
    fn sleep_set_operations() {
        let a = vec![(1, 0), (3, 4), (5, 0)];
        let b = vec![(3, 0), (5, 8), (7, 0)];
        assert!(!is_subset(&a, &b));
        assert!(is_subset(&[(3, 1), (5, 0)], &b));
        assert_eq!(difference(&a, &b), vec![(1, 0)]);
        // The history parts of either side are kept: the more dependent reading.
        assert_eq!(intersection(&a, &b), vec![(3, 4), (5, 8)]);
    }
}
