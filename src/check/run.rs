//! Running a model: exhaustive BFS or DFS through our engine ([`super::engine`], with a
//! reduction) or stateright's checkers, with progress lines; seeded random walks; per-property
//! verdicts, and every counterexample minimised.
//!
//! Simulation drives its own random walk instead of stateright's simulation checker: that checker
//! can record a path whose indices no longer match the walk when a chosen action is a no-op
//! (stateright 0.31 records the index of a chosen action even when the action yields no new
//! state). Our walk only records actions that produced a state, so every reported path replays
//! exactly, and the same seed always gives the same walks.

use std::fmt::Debug;
use std::hash::Hash;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::actor::{Actor, ActorModelAction, ActorModelState};
use stateright::report::{ReportData, ReportDiscovery, Reporter};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};

use super::engine::{explore, EngineOptions, EngineStats, Order, Reduction, MAX_PROPERTIES};
use super::reduce::Reduce;
use super::symmetry::Symmetry;

/// How to run a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exhaustive breadth-first search (shortest counterexamples).
    Bfs,
    /// Exhaustive depth-first search (far less memory).
    Dfs,
    /// Seeded random walks.
    Simulate {
        /// The seed of the first walk; walk `i` uses `seed + i`.
        seed: u64,
        /// How many walks.
        walks: u64,
        /// Steps per walk.
        depth: usize,
    },
}

/// Which engine runs the exhaustive modes (BFS and DFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Our engine ([`super::engine`]) with a reduction.
    Own(Reduction),
    /// stateright's own checkers (for comparison).
    Stateright,
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The mode.
    pub mode: Mode,
    /// The engine of the exhaustive modes (BFS and DFS).
    pub engine: Engine,
    /// Checker threads (BFS/DFS).
    pub threads: usize,
    /// Stop exploring paths longer than this.
    pub max_depth: Option<usize>,
    /// Print a progress line this often (`None`: no progress).
    pub progress: Option<Duration>,
    /// Stop as soon as any safety property is violated.
    pub stop_on_violation: bool,
    /// Simulation and our engine: with `stop_on_violation`, go on until this property in
    /// particular is violated.
    pub target: Option<&'static str>,
    /// Our engine: stop once the process's resident memory passes this many bytes (the
    /// outcome then says so). The default is nine tenths of the memory available at start.
    pub max_memory: Option<u64>,
    /// Our engine: stop once the search has run this long (the outcome then says so). `None`:
    /// no limit.
    pub max_time: Option<Duration>,
    /// Our engine's breadth-first search goes on depth-first once the next level holds more
    /// than this many states (it does anyway past half of `max_memory`). `None`: only then.
    pub depth_first_beyond: Option<usize>,
    /// The model's symmetry, for `Engine::Own(Reduction::Symmetry)` (see
    /// [`super::symmetry`]).
    pub symmetry: Option<Symmetry>,
    /// Our engine's sleep sets also test whether two steps of one actor commute where they are
    /// taken (see [`super::engine::EngineOptions::conditional`]; on by default).
    pub conditional: bool,
    /// Our engine's depth-first search: expand pending states in an order picked by this seed
    /// (see [`super::engine::EngineOptions::schedule_seed`]).
    pub schedule_seed: Option<u64>,
    /// Our engine: stop (not exhaustive, said in the outcome) once this flag is set; a command
    /// sets it on Ctrl-C (see [`super::engine::EngineOptions::stop_requested`]).
    pub stop_requested: Option<Arc<AtomicBool>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: Mode::Bfs,
            engine: Engine::Own(Reduction::Sleep),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            max_depth: None,
            progress: Some(Duration::from_secs(2)),
            stop_on_violation: false,
            target: None,
            max_memory: super::engine::default_memory_limit(),
            max_time: None,
            depth_first_beyond: None,
            symmetry: None,
            conditional: true,
            schedule_seed: None,
            stop_requested: None,
        }
    }
}

/// The verdict on one property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An `always` property held on every explored state.
    Holds,
    /// An `always` property failed, or an `eventually` property failed at a terminal state.
    Violated,
    /// A `sometimes` property was reached.
    Reached,
    /// A `sometimes` property was never reached.
    NotReached,
    /// An `eventually` property held at every terminal state explored (which says nothing about
    /// cycles: see `liveness`).
    NoTerminalCounterexample,
}

/// One property's outcome.
#[derive(Clone, Debug)]
pub struct PropertyOutcome<S, A> {
    /// The property's name.
    pub name: &'static str,
    /// Its expectation.
    pub expectation: Expectation,
    /// The verdict.
    pub verdict: Verdict,
    /// The counterexample or example found.
    pub path: Option<Path<S, A>>,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Outcome<S, A> {
    /// States generated (including revisits).
    pub states: usize,
    /// Unique states.
    pub unique: usize,
    /// Maximum depth reached.
    pub depth: usize,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Whether the whole bounded space was explored (BFS/DFS without early stop).
    pub complete: bool,
    /// The resident bytes at which our engine stopped for its memory limit, if it did.
    pub memory_stop: Option<u64>,
    /// How long our engine had run when it stopped for its time limit, if it did.
    pub time_stop: Option<Duration>,
    /// How long our engine had run when it stopped on request, if it did.
    pub requested_stop: Option<Duration>,
    /// Every property's outcome, in the model's order.
    pub properties: Vec<PropertyOutcome<S, A>>,
    /// Our engine's own figures (when it ran).
    pub engine: Option<(Reduction, EngineStats)>,
}

impl<S, A> Outcome<S, A> {
    /// Unique states per second.
    pub(crate) fn unique_per_sec(&self) -> f64 {
        self.unique as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The properties that were violated.
    pub fn violations(&self) -> impl Iterator<Item = &PropertyOutcome<S, A>> {
        self.properties
            .iter()
            .filter(|p| p.verdict == Verdict::Violated)
    }

    /// The outcome of the named property.
    pub fn property(&self, name: &str) -> Option<&PropertyOutcome<S, A>> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The verdict on the named property.
    pub fn verdict(&self, name: &str) -> Option<Verdict> {
        self.property(name).map(|p| p.verdict.clone())
    }

    /// The names of the safety (`always`) properties, in the model's order, with their verdicts.
    pub fn safety(&self) -> Vec<(&'static str, Verdict)> {
        self.properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
            .map(|p| (p.name, p.verdict.clone()))
            .collect()
    }
}

struct Progress<'a> {
    out: &'a mut dyn Write,
    every: Duration,
    last_unique: usize,
    last_at: Duration,
}

/// How often the checker is polled; progress lines are printed every `RunOptions::progress`.
const POLL: Duration = Duration::from_millis(50);

impl<M: Model> Reporter<M> for Progress<'_> {
    fn report_checking(&mut self, data: ReportData) {
        if data.done || data.duration < self.last_at + self.every {
            return;
        }
        let dt = (data.duration - self.last_at).as_secs_f64().max(1e-9);
        let rate = (data.unique_states - self.last_unique) as f64 / dt;
        self.last_unique = data.unique_states;
        self.last_at = data.duration;
        let _ = writeln!(
            self.out,
            "  ... {:>6.1}s  states={}  unique={}  depth={}  ({:.0} unique/s)",
            data.duration.as_secs_f64(),
            data.total_states,
            data.unique_states,
            data.max_depth,
            rate
        );
    }

    fn report_discoveries(
        &mut self,
        _: &M,
        _: std::collections::BTreeMap<&'static str, ReportDiscovery<M>>,
    ) {
    }

    fn delay(&self) -> Duration {
        POLL
    }
}

/// The outcome of running an actor model.
pub type ActorOutcome<A, H> = Outcome<
    ActorModelState<A, H>,
    ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>,
>;

/// Runs `model` as `opts` says, printing progress to `progress_out`.
pub fn run<M>(
    model: M,
    opts: &RunOptions,
    progress_out: &mut dyn Write,
) -> Outcome<M::State, M::Action>
where
    M: Reduce + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    let start = Instant::now();
    if let Mode::Simulate { seed, walks, depth } = opts.mode {
        let stop = opts.stop_on_violation.then_some(opts.target);
        return simulate(&model, seed, walks, depth, stop, opts.threads, start);
    }
    // Our engine keeps one bit per property; a model with more runs on stateright's checker.
    let fits = model.properties().len() <= MAX_PROPERTIES;
    if let (Mode::Bfs | Mode::Dfs, Engine::Own(reduction), true) = (&opts.mode, opts.engine, fits) {
        let engine_opts = EngineOptions {
            order: if opts.mode == Mode::Dfs {
                Order::Dfs
            } else {
                Order::Bfs
            },
            reduction,
            threads: opts.threads,
            max_depth: opts.max_depth,
            progress: opts.progress,
            stop_on_violation: opts.stop_on_violation,
            target: opts.target,
            max_memory: opts.max_memory,
            max_time: opts.max_time,
            depth_first_beyond: opts.depth_first_beyond,
            symmetry: opts.symmetry.clone(),
            conditional: opts.conditional,
            schedule_seed: opts.schedule_seed,
            stop_requested: opts.stop_requested.clone(),
        };
        let found = explore(&model, &engine_opts, progress_out);
        return Outcome {
            states: found.states,
            unique: found.unique,
            depth: found.depth,
            complete: found.complete,
            memory_stop: found.memory_stop,
            time_stop: found.time_stop,
            requested_stop: found.requested_stop,
            properties: verdicts(&model, found.paths),
            engine: Some((reduction, found.stats)),
            elapsed: start.elapsed(),
        };
    }
    let mut builder = model.checker().threads(opts.threads.max(1));
    if let Some(d) = opts.max_depth {
        builder = builder.target_max_depth(d);
    }
    if opts.stop_on_violation {
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
    }
    let mut outcome = match opts.mode {
        Mode::Dfs => finish(builder.spawn_dfs(), opts, progress_out),
        _ => finish(builder.spawn_bfs(), opts, progress_out),
    };
    outcome.elapsed = start.elapsed();
    outcome
}

fn finish<M, K>(
    checker: K,
    opts: &RunOptions,
    progress_out: &mut dyn Write,
) -> Outcome<M::State, M::Action>
where
    M: Model,
    M::State: Clone + Debug + Hash + PartialEq,
    M::Action: Clone + Debug + PartialEq,
    K: Checker<M>,
{
    let every = opts.progress.unwrap_or(Duration::MAX / 4);
    let checker = checker.report(&mut Progress {
        out: progress_out,
        every,
        last_unique: 0,
        last_at: Duration::ZERO,
    });
    let checker = checker.join();
    let discoveries = checker.discoveries();
    let stopped_early =
        opts.stop_on_violation
            && checker.model().properties().iter().any(|p| {
                p.expectation != Expectation::Sometimes && discoveries.contains_key(p.name)
            });
    Outcome {
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        depth: checker.max_depth(),
        elapsed: Duration::ZERO,
        complete: opts.max_depth.is_none() && !stopped_early,
        memory_stop: None,
        time_stop: None,
        requested_stop: None,
        properties: verdicts(checker.model(), discoveries),
        engine: None,
    }
}

/// How many states the counterexample minimisation may visit before it settles for the
/// discovered path cut at its first violating state.
pub(crate) const MINIMIZE_BUDGET: usize = 100_000;

/// Shortest path (in steps) from an initial state to a state where `bad` holds, found by a
/// single-threaded breadth-first search of at most `max_depth` steps and `budget` states.
///
/// stateright 0.31's BFS overwrites a property's discovery every time another violating state is
/// met, so the path it reports is the *last* one found, often far from the shortest (reproduced
/// here with IronLock's keep-after-grant mutation: 13 steps reported, 2 needed). This search gives
/// the shortest one, deterministically (actions are explored in the model's order).
pub(crate) fn shortest_path_to<M>(
    model: &M,
    bad: impl Fn(&M::State) -> bool,
    max_depth: usize,
    budget: usize,
) -> Option<Path<M::State, M::Action>>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    use std::collections::{HashMap, VecDeque};
    let mut parents: HashMap<u64, Option<(u64, M::Action)>> = HashMap::new();
    let mut queue: VecDeque<(M::State, u64, usize)> = VecDeque::new();
    let inits = model.init_states();
    for s in &inits {
        let fp = state_hash(s);
        if parents.insert(fp, None).is_none() {
            queue.push_back((s.clone(), fp, 0));
        }
    }
    let mut actions = Vec::new();
    while let Some((state, fp, depth)) = queue.pop_front() {
        if bad(&state) {
            let mut steps = Vec::new();
            let mut cur = fp;
            while let Some(Some((parent, action))) = parents.get(&cur) {
                steps.push(action.clone());
                cur = *parent;
            }
            steps.reverse();
            let init = inits.iter().find(|s| state_hash(*s) == cur)?.clone();
            return Path::from_actions(model, init, &steps);
        }
        if depth >= max_depth || parents.len() > budget {
            continue;
        }
        model.actions(&state, &mut actions);
        for a in actions.drain(..) {
            let Some(next) = model.next_state(&state, a.clone()) else {
                continue;
            };
            if !model.within_boundary(&next) {
                continue;
            }
            let nfp = state_hash(&next);
            if let std::collections::hash_map::Entry::Vacant(e) = parents.entry(nfp) {
                e.insert(Some((fp, a)));
                queue.push_back((next, nfp, depth + 1));
            }
        }
    }
    None
}

/// Replays `actions` from `init`; returns the index of the first state (0 = `init`) where `bad`
/// holds, or `None` if an action is not enabled where it is taken or no state is bad.
fn first_bad<M>(
    model: &M,
    init: &M::State,
    actions: &[M::Action],
    bad: &impl Fn(&M::State) -> bool,
) -> Option<usize>
where
    M: Model,
    M::State: Clone,
    M::Action: Clone + PartialEq,
{
    let mut state = init.clone();
    if bad(&state) {
        return Some(0);
    }
    let mut enabled = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        enabled.clear();
        model.actions(&state, &mut enabled);
        if !enabled.contains(a) {
            return None;
        }
        state = model.next_state(&state, a.clone())?;
        if !model.within_boundary(&state) {
            return None;
        }
        if bad(&state) {
            return Some(i + 1);
        }
    }
    None
}

/// Greedy shrinking: drops single steps (last first) as long as the rest still replays and still
/// reaches a bad state, until no single step can go.
fn shrink<M>(
    model: &M,
    init: &M::State,
    mut actions: Vec<M::Action>,
    bad: &impl Fn(&M::State) -> bool,
) -> Vec<M::Action>
where
    M: Model,
    M::State: Clone,
    M::Action: Clone + PartialEq,
{
    loop {
        let mut shrunk = false;
        let mut i = actions.len();
        while i > 0 {
            i -= 1;
            let mut candidate = actions.clone();
            candidate.remove(i);
            if let Some(end) = first_bad(model, init, &candidate, bad) {
                candidate.truncate(end);
                actions = candidate;
                shrunk = true;
                i = i.min(actions.len());
            }
        }
        if shrunk {
            continue;
        }
        // No single step can go: try pairs (a crash and its restart, a send and its delivery).
        'pairs: for i in (0..actions.len()).rev() {
            for j in (i + 1..actions.len()).rev() {
                let mut candidate = actions.clone();
                candidate.remove(j);
                candidate.remove(i);
                if let Some(end) = first_bad(model, init, &candidate, bad) {
                    candidate.truncate(end);
                    actions = candidate;
                    shrunk = true;
                    break 'pairs;
                }
            }
        }
        if !shrunk {
            return actions;
        }
    }
}

/// Replaces a discovered counterexample by the shortest one (see [`shortest_path_to`]), or, if
/// that search runs out of budget, by the discovered path cut at its first violating state and
/// then shrunk step by step (each removal re-validated by replay).
pub(crate) fn minimize<M>(
    model: &M,
    property: &'static str,
    path: Path<M::State, M::Action>,
) -> Path<M::State, M::Action>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    let Some(prop) = model.properties().into_iter().find(|p| p.name == property) else {
        return path;
    };
    if prop.expectation != Expectation::Always {
        return path;
    }
    let cond = prop.condition;
    let steps = path.clone().into_vec();
    let cut = steps
        .iter()
        .position(|(s, _)| !cond(model, s))
        .unwrap_or(steps.len() - 1);
    if let Some(shortest) = shortest_path_to(model, |s| !cond(model, s), cut, MINIMIZE_BUDGET) {
        return shortest;
    }
    let init = steps[0].0.clone();
    let actions: Vec<M::Action> = steps[..cut].iter().filter_map(|(_, a)| a.clone()).collect();
    let actions = shrink(model, &init, actions, &|s| !cond(model, s));
    Path::from_actions(model, init, &actions).unwrap_or(path)
}

fn verdicts<M>(
    model: &M,
    mut discoveries: std::collections::HashMap<&'static str, Path<M::State, M::Action>>,
) -> Vec<PropertyOutcome<M::State, M::Action>>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    model
        .properties()
        .into_iter()
        .map(|p| {
            let path = discoveries
                .remove(p.name)
                .map(|path| minimize(model, p.name, path));
            let verdict = match (p.expectation.clone(), path.is_some()) {
                (Expectation::Always, false) => Verdict::Holds,
                (Expectation::Always, true) | (Expectation::Eventually, true) => Verdict::Violated,
                (Expectation::Sometimes, true) => Verdict::Reached,
                (Expectation::Sometimes, false) => Verdict::NotReached,
                (Expectation::Eventually, false) => Verdict::NoTerminalCounterexample,
            };
            PropertyOutcome {
                name: p.name,
                expectation: p.expectation,
                verdict,
                path,
            }
        })
        .collect()
}

fn state_hash<S: Hash>(s: &S) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// What one random walk found: its counts, the hashes of the states it visited, and for each
/// property it hit, the path to the first state where it did.
struct Walk<S, A> {
    /// Which walk (its seed is the first seed plus this).
    index: u64,
    states: usize,
    depth: usize,
    hashes: Vec<u64>,
    found: Vec<(&'static str, Path<S, A>)>,
    /// The walk ended because the stop condition was met.
    stopped: bool,
}

/// Walk `w` of a simulation: a ChaCha8 generator seeded with `seed + w` picks uniformly among
/// the enabled actions that change the state. Properties in `skip` (found by earlier walks) are
/// not evaluated.
fn walk<M>(
    model: &M,
    inits: &[M::State],
    seed: u64,
    depth: usize,
    stop: Option<Option<&'static str>>,
    skip: &std::collections::HashSet<&'static str>,
) -> Walk<M::State, M::Action>
where
    M: Model,
    M::State: Clone + Debug + Hash + PartialEq,
    M::Action: Clone + Debug + PartialEq,
{
    let properties = model.properties();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init = inits[rng.random_range(0..inits.len())].clone();
    let mut out = Walk {
        index: 0,
        states: 0,
        depth: 0,
        hashes: Vec::with_capacity(depth + 1),
        found: Vec::new(),
        stopped: false,
    };
    let known = |out: &Walk<M::State, M::Action>, name| {
        skip.contains(name) || out.found.iter().any(|(n, _)| *n == name)
    };
    let mut actions_taken = Vec::new();
    let mut state = init.clone();
    let mut terminal = false;
    for step in 0..=depth {
        out.states += 1;
        out.hashes.push(state_hash(&state));
        out.depth = out.depth.max(step);
        for p in &properties {
            if known(&out, p.name) {
                continue;
            }
            let holds = (p.condition)(model, &state);
            let hit = match p.expectation {
                Expectation::Always => !holds,
                Expectation::Sometimes => holds,
                Expectation::Eventually => false,
            };
            if hit {
                if let Some(path) = Path::from_actions(model, init.clone(), &actions_taken) {
                    out.found.push((p.name, path));
                }
            }
        }
        let stop_now = match stop {
            None => false,
            Some(Some(target)) => known(&out, target),
            Some(None) => properties
                .iter()
                .any(|p| p.expectation == Expectation::Always && known(&out, p.name)),
        };
        if stop_now {
            out.stopped = true;
            return out;
        }
        if step == depth {
            break;
        }
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        actions.shuffle(&mut rng);
        let next = actions.into_iter().find_map(|a| {
            let n = model.next_state(&state, a.clone())?;
            model.within_boundary(&n).then_some((a, n))
        });
        match next {
            Some((a, n)) => {
                actions_taken.push(a);
                state = n;
            }
            None => {
                terminal = true;
                break;
            }
        }
    }
    if terminal {
        for p in &properties {
            if p.expectation == Expectation::Eventually
                && !known(&out, p.name)
                && !(p.condition)(model, &state)
            {
                if let Some(path) = Path::from_actions(model, init.clone(), &actions_taken) {
                    out.found.push((p.name, path));
                }
            }
        }
    }
    out
}

/// Seeded random walks (see [`walk`]) on `threads` threads. The result does not depend on the
/// number of threads: walks run in batches, and each batch is merged in walk order, so every
/// count, every reported path (the first walk to hit a property) and where a stop happens are
/// those of running the walks one after another. (A walk in a batch does not know what the
/// walks before it in the same batch found, so it may evaluate a property they already hit;
/// the merge keeps the earlier walk's path, as the sequential run would.)
fn simulate<M>(
    model: &M,
    seed: u64,
    walks: u64,
    depth: usize,
    stop: Option<Option<&'static str>>,
    threads: usize,
    start: Instant,
) -> Outcome<M::State, M::Action>
where
    M: Model + Sync,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + PartialEq + Send,
{
    let threads = threads.max(1);
    let batch = threads as u64 * 16;
    let mut found: std::collections::HashMap<&'static str, Path<M::State, M::Action>> =
        Default::default();
    let mut states = 0usize;
    let mut max_depth = 0usize;
    let mut seen = std::collections::HashSet::new();
    let inits = model.init_states();
    let mut first = 0u64;
    'batches: while first < walks {
        let last = walks.min(first + batch);
        let skip: std::collections::HashSet<&'static str> = found.keys().copied().collect();
        let next = std::sync::atomic::AtomicU64::new(first);
        let mut results: Vec<Walk<M::State, M::Action>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let w = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if w >= last {
                                break;
                            }
                            let seed = seed.wrapping_add(w);
                            let mut done = walk(model, &inits, seed, depth, stop, &skip);
                            done.index = w;
                            mine.push(done);
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|h| h.join().expect("a simulation thread panicked"))
                .collect()
        });
        results.sort_by_key(|r| r.index);
        for r in results {
            states += r.states;
            max_depth = max_depth.max(r.depth);
            seen.extend(r.hashes);
            for (name, path) in r.found {
                found.entry(name).or_insert(path);
            }
            if r.stopped {
                break 'batches;
            }
        }
        first = last;
    }
    Outcome {
        states,
        unique: seen.len(),
        depth: max_depth,
        elapsed: start.elapsed(),
        complete: false,
        memory_stop: None,
        time_stop: None,
        requested_stop: None,
        properties: verdicts(model, found),
        engine: None,
    }
}
