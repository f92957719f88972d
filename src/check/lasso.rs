//! The fairness-aware liveness checker: `eventually Q` and `P leads-to Q` over any stateright
//! [`Model`](stateright::Model), with lasso counterexamples.
//!
//! # Why not stateright's `eventually`
//! stateright 0.31 judges an `eventually` property only at terminal states: a path that loops, or
//! joins a state seen before, is never judged (the FIXMEs in its `checker/bfs.rs`). Proposers that
//! duel forever, or a sender that retransmits forever without progress, pass. This checker keeps
//! the whole bounded reachable graph and looks for cycles.
//!
//! # What is assumed (the fairness model)
//! Every action is classified by the model's wiring ([`ActionKind`]):
//! * **Faults** (message loss, crash, restart) may happen any finite number of times, and then
//!   stop: IronFleet's eventually-synchronous network, "from some point on, no loss, no crash,
//!   no duplicates". So a counterexample's *stem* may contain faults; its *cycle* never does.
//! * **Fair tasks** (delivering one particular message, firing one particular actor's timer) are
//!   under *weak fairness*: a task that stays enabled is eventually taken. A task is enabled at a
//!   state when taking it changes the state (stateright drops no-op steps; a no-op can be added to
//!   any cycle without changing it, so it imposes nothing).
//!
//! Timers carry no time in the model: a timer may fire before any message is delivered, however
//! long its duration. So "the view timeout grows until it outlasts message delay" cannot be
//! expressed; a protocol that relies on it shows up as a fair cycle of timeouts unless the model
//! bounds the number of views (our RSL models do, with `max_view`).
//!
//! # What a verdict means
//! `P leads-to Q` is **violated** when some reachable state satisfies P and not Q, and from it
//! there is a fair infinite continuation, faults eventually stopping, on which Q never holds.
//! Within the explored graph such a continuation exists iff, inside the subgraph of not-Q states,
//! P's state reaches either a strongly connected component (with at least one edge) that contains
//! no fault edge and is weakly fair (every task enabled at all its states is taken by one of its
//! edges: see `graph::unfair_tasks`), or a dead end: a not-Q state with no fair task
//! enabled, where a stabilized system stutters forever. The counterexample is a lasso: the stem
//! from an initial state, and a cycle that visits, for every task ever enabled in the component,
//! either an edge taking it or a state where it is disabled (so the printed cycle itself is fair).
//!
//! `eventually Q` is `init leads-to Q`. A verdict of **holds** is a proof for the bounded model:
//! every state was explored (no `max_states`/`max_depth` cut), and no fair not-Q cycle or dead end
//! is reachable. A component or dead end that touches a state whose fair successors left the
//! model's boundary or depth limit cannot be judged (the missing edges might break the cycle or
//! be a way out), so it is counted as *undecided* and never reported as a violation; the verdict
//! then says "no counterexample, N components undecided".
//!
//! # Memory
//! States are not stored: each explored state keeps a 64-bit fingerprint, its BFS parent (for the
//! stem), and its out-edges (target, interned task, action index: 12 bytes each). The stem and
//! cycle are rebuilt by replaying the path from an initial state along the nodes' fingerprints
//! (`replay`).
//!
//! States are identified by the model's view ([`Reduce::fingerprint`] without `exact`): for an
//! actor model, stateright's duplicating network's memory of the last message delivered is left
//! out. States that differ only there have the same enabled actions, the same successors (up to
//! that memory again) and the same labels, so the quotient graph has the same fair cycles and
//! dead ends, and every verdict is the one on the full graph: 1,785 states become 431 for one
//! RSL client. No other reduction applies here (sleep sets drop edges a cycle may need).
//!
//! Milestones (RSL's replicas', IronKV's hosts') hash to nothing, so the view also identifies
//! *twins*: states that differ only in marks that no step reads and only `sometimes` properties
//! do. Twins take the same steps to twins, but for a step that only sets a mark: enabled where
//! the mark is unset, a no-op stateright does not take where it is set. Such a step leads from a
//! node to a twin of itself, and it is not made an edge: as a self-loop it would be a "cycle"
//! that no run can take twice (it was seen: IronKV's redirect-loop dead end printed as a cycle of
//! two redeliveries "repeated forever"). Without it, the node's steps are those of its twin
//! with every mark set, which every fair run reaches once it has taken the marking steps it
//! keeps enabled; so a fair cycle or dead end of the real graph is one of this one, and back,
//! with the marking steps taken once on the way in. A step that changes nothing the view keeps
//! (a redelivery that only resends what the network holds) is left out for the same reason: a
//! stutter can be added to any run, so it makes no cycle fair or unfair and ends no dead end.
//! A liveness goal must not read a milestone (none does). A replay may meet a twin of the node
//! explored, which lists its actions in another order, so it follows fingerprints, not action
//! indices.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::graph::{self, Csr};
use super::reduce::Reduce;
use crate::liveness::{LivenessProperty, Premise};

/// How the checker treats an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// A fault: allowed before stabilization, never after.
    Fault,
    /// A task under weak fairness, identified by a key (the same key in two states is the same
    /// task: "deliver this message", "fire this actor's timer").
    Fair(u64),
}

/// Limits of a liveness check.
#[derive(Clone, Debug, Default)]
pub struct LivenessOptions {
    /// Stop exploring after this many states (the verdict is then not a proof).
    pub max_states: Option<usize>,
    /// Do not expand states at this depth or deeper.
    pub max_depth: Option<usize>,
    /// Print a progress line this often.
    pub progress: Option<Duration>,
    /// Stop exploring (not exhaustive, said in the outcome) once the process's resident memory
    /// passes this many bytes; the graph explored so far is still analysed.
    pub max_memory: Option<u64>,
    /// Stop exploring (not exhaustive, said in the outcome) once exploration has run this
    /// long; the graph explored so far is still analysed.
    pub max_time: Option<Duration>,
    /// Stop exploring (not exhaustive, said in the outcome) once this flag is set (a command
    /// sets it on Ctrl-C); the graph explored so far is still analysed.
    pub stop_requested: Option<Arc<AtomicBool>>,
}

/// A lasso counterexample: from an initial state, the stem, then the cycle repeated forever (an
/// empty cycle: the system stutters at a dead end).
#[derive(Clone, Debug)]
pub struct Lasso<S, A> {
    /// The initial state.
    pub init: S,
    /// Actions from the initial state to the loop point.
    pub stem: Vec<A>,
    /// Actions from the loop point back to it (empty: a dead end).
    pub cycle: Vec<A>,
}

/// The verdict on one liveness property.
#[derive(Clone, Debug)]
pub enum LiveVerdict<S, A> {
    /// No fair counterexample, every state explored, nothing undecided.
    Holds,
    /// No fair counterexample found, but the exploration was cut or some components could not be
    /// judged.
    NoCounterexample {
        /// Why this is not a proof.
        caveat: String,
    },
    /// A fair counterexample.
    Violated(Box<Lasso<S, A>>),
}

/// The outcome of a liveness check.
#[derive(Clone, Debug)]
pub struct LiveOutcome<S, A> {
    /// Unique states explored.
    pub states: usize,
    /// Edges kept.
    pub edges: usize,
    /// Deepest BFS level.
    pub depth: usize,
    /// Time exploring the graph.
    pub explore_time: Duration,
    /// Time analysing it (all properties).
    pub analyse_time: Duration,
    /// Whether the whole bounded space was explored.
    pub complete: bool,
    /// Memory held per explored state, in bytes (graph arrays and fingerprint index).
    pub bytes_per_state: f64,
    /// The resident bytes at which exploration stopped for the memory limit, if it did.
    pub memory_stop: Option<u64>,
    /// How long exploration had run when it stopped for the time limit, if it did.
    pub time_stop: Option<Duration>,
    /// How long exploration had run when it stopped on request, if it did.
    pub requested_stop: Option<Duration>,
    /// Each property's verdict.
    pub properties: Vec<(&'static str, LiveVerdict<S, A>)>,
}

impl<S, A> LiveOutcome<S, A> {
    /// States explored per second of exploration.
    pub(crate) fn states_per_sec(&self) -> f64 {
        self.states as f64 / self.explore_time.as_secs_f64().max(1e-9)
    }
}

const FAULT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Edge {
    to: u32,
    task: u32,
    action: u32,
}

/// The explored graph.
struct Explored {
    /// BFS parent and the action index that led here (`u32::MAX` parent: an initial state, and
    /// the "action" is its index in `init_states`).
    parent: Vec<(u32, u32)>,
    /// Each node's fingerprint, which a replay follows (see [`replay`]).
    fingerprints: Vec<u64>,
    start: Vec<u32>,
    edges: Vec<Edge>,
    /// Some fair successor was cut by the boundary or the depth limit, or not expanded at all.
    cut: Vec<bool>,
    /// Bit 3i: premise i holds; bit 3i+1: goal i holds; bit 3i+2: the state is exempt for i.
    labels: Vec<u64>,
    depth: usize,
    complete: bool,
    /// The resident bytes at which exploration stopped for the memory limit, if it did.
    memory_stop: Option<u64>,
    /// How long exploration had run when it stopped for the time limit, if it did.
    time_stop: Option<Duration>,
    /// How long exploration had run when it stopped on request, if it did.
    requested_stop: Option<Duration>,
    index_bytes: usize,
}

fn explore<M>(
    model: &M,
    props: &[LivenessProperty<M>],
    classify: &dyn Fn(&M::Action) -> ActionKind,
    opts: &LivenessOptions,
) -> Explored
where
    M: Reduce,
    M::State: Hash + PartialEq,
{
    assert!(props.len() <= 21, "at most 21 liveness properties at once");
    let mut index: HashMap<u64, u32> = HashMap::new();
    let mut tasks: HashMap<u64, u32> = HashMap::new();
    let mut g = Explored {
        parent: Vec::new(),
        fingerprints: Vec::new(),
        start: vec![0],
        edges: Vec::new(),
        cut: Vec::new(),
        labels: Vec::new(),
        depth: 0,
        complete: true,
        memory_stop: None,
        time_stop: None,
        requested_stop: None,
        index_bytes: 0,
    };
    let mut depth_of: Vec<u32> = Vec::new();
    let mut queue: VecDeque<(u32, M::State)> = VecDeque::new();
    let label = |s: &M::State, is_init: bool| -> u64 {
        let mut l = 0u64;
        for (i, p) in props.iter().enumerate() {
            let premise = match p.premise {
                Premise::Init => is_init,
                Premise::When(f) => f(model, s),
            };
            if premise {
                l |= 1 << (3 * i);
            }
            if (p.goal)(model, s) {
                l |= 1 << (3 * i + 1);
            }
            if p.exempt.is_some_and(|f| f(model, s)) {
                l |= 1 << (3 * i + 2);
            }
        }
        l
    };
    for (i, s) in model.init_states().into_iter().enumerate() {
        if !model.within_boundary(&s) {
            continue;
        }
        let fp = model.fingerprint(&s, false);
        if index.contains_key(&fp) {
            continue;
        }
        let id = g.parent.len() as u32;
        index.insert(fp, id);
        g.parent.push((u32::MAX, i as u32));
        g.fingerprints.push(fp);
        g.cut.push(false);
        g.labels.push(label(&s, true));
        depth_of.push(0);
        queue.push_back((id, s));
    }
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut actions = Vec::new();
    let mut next = 0u32;
    while let Some((id, state)) = queue.pop_front() {
        debug_assert_eq!(id, next);
        next += 1;
        let d = depth_of[id as usize] as usize;
        g.depth = g.depth.max(d);
        if let (Some(limit), None, 0) = (opts.max_memory, g.memory_stop, next % 1024) {
            g.memory_stop = super::engine::resident_bytes().filter(|&r| r > limit);
        }
        if let (Some(limit), None, 0) = (opts.max_time, g.time_stop, next % 1024) {
            g.time_stop = Some(started.elapsed()).filter(|&t| t >= limit);
        }
        if let (Some(flag), None, 0) = (&opts.stop_requested, g.requested_stop, next % 1024) {
            g.requested_stop = flag.load(Ordering::Relaxed).then(|| started.elapsed());
        }
        let over_states = opts.max_states.is_some_and(|m| g.parent.len() >= m);
        if opts.max_depth.is_some_and(|m| d >= m)
            || over_states && queue.len() > 1_000_000
            || g.memory_stop.is_some()
            || g.time_stop.is_some()
            || g.requested_stop.is_some()
        {
            g.cut[id as usize] = true;
            g.complete = false;
            g.start.push(g.edges.len() as u32);
            continue;
        }
        actions.clear();
        model.actions(&state, &mut actions);
        for (ai, a) in actions.drain(..).enumerate() {
            let kind = classify(&a);
            let Some(ns) = model.next_state(&state, a) else {
                continue;
            };
            if !model.within_boundary(&ns) {
                if kind != ActionKind::Fault {
                    g.cut[id as usize] = true;
                }
                continue;
            }
            let fp = model.fingerprint(&ns, false);
            if fp == g.fingerprints[id as usize] && ns != state {
                // A step to a twin of this state: it only sets a mark, or changes nothing the
                // view keeps, so it is a no-op or a stutter of the node (see the module doc).
                continue;
            }
            let to = match index.get(&fp) {
                Some(&t) => t,
                None => {
                    if opts.max_states.is_some_and(|m| g.parent.len() >= m) {
                        g.complete = false;
                        if kind != ActionKind::Fault {
                            g.cut[id as usize] = true;
                        }
                        continue;
                    }
                    let t = g.parent.len() as u32;
                    index.insert(fp, t);
                    g.parent.push((id, ai as u32));
                    g.fingerprints.push(fp);
                    g.cut.push(false);
                    g.labels.push(label(&ns, false));
                    depth_of.push(d as u32 + 1);
                    queue.push_back((t, ns));
                    t
                }
            };
            let task = match kind {
                ActionKind::Fault => FAULT,
                ActionKind::Fair(k) => {
                    let n = tasks.len() as u32;
                    *tasks.entry(k).or_insert(n)
                }
            };
            g.edges.push(Edge {
                to,
                task,
                action: ai as u32,
            });
        }
        g.start.push(g.edges.len() as u32);
        if let Some(every) = opts.progress {
            if last_report.elapsed() >= every {
                last_report = Instant::now();
                eprintln!(
                    "  ... {:>6.1}s  states={}  edges={}  depth={}  ({:.0} states/s)",
                    started.elapsed().as_secs_f64(),
                    g.parent.len(),
                    g.edges.len(),
                    g.depth,
                    g.parent.len() as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    // Fingerprint index: key + value + hashbrown's control byte, at its capacity.
    g.index_bytes = index.capacity() * (8 + 4 + 1) + tasks.capacity() * (8 + 4 + 1);
    g
}

impl Explored {
    fn n(&self) -> usize {
        self.parent.len()
    }

    fn out(&self, v: u32) -> &[Edge] {
        &self.edges[self.start[v as usize] as usize..self.start[v as usize + 1] as usize]
    }

    fn bytes(&self) -> usize {
        self.parent.capacity() * 8
            + self.fingerprints.capacity() * 8
            + self.start.capacity() * 4
            + self.edges.capacity() * std::mem::size_of::<Edge>()
            + self.cut.capacity()
            + self.labels.capacity() * 8
            + self.index_bytes
    }

    /// The fair tasks enabled at every node, sorted and deduplicated, as one CSR.
    fn enabled(&self) -> Csr {
        let mut lists = Csr {
            start: vec![0],
            targets: Vec::new(),
        };
        for v in 0..self.n() as u32 {
            let from = lists.targets.len();
            lists
                .targets
                .extend(self.out(v).iter().map(|e| e.task).filter(|&t| t != FAULT));
            lists.targets[from..].sort_unstable();
            let mut w = from;
            for r in from..lists.targets.len() {
                if w == from || lists.targets[r] != lists.targets[w - 1] {
                    lists.targets[w] = lists.targets[r];
                    w += 1;
                }
            }
            lists.targets.truncate(w);
            lists.start.push(lists.targets.len() as u32);
        }
        lists
    }

    /// The path of action indices from an initial state to `v`: (init index, its node,
    /// actions).
    fn tree_path(&self, mut v: u32) -> (usize, u32, Vec<u32>) {
        let mut rev = Vec::new();
        loop {
            let (p, a) = self.parent[v as usize];
            if p == u32::MAX {
                rev.reverse();
                return (a as usize, v, rev);
            }
            rev.push(a);
            v = p;
        }
    }

    /// Shortest path from `from` to a node satisfying `is_target`, through nodes satisfying
    /// `inside` and edges satisfying `edge_ok`: (end node, action indices).
    fn bfs_path(
        &self,
        from: u32,
        inside: impl Fn(u32) -> bool,
        edge_ok: impl Fn(&Edge) -> bool,
        is_target: impl Fn(u32) -> bool,
    ) -> Option<(u32, Vec<u32>)> {
        if is_target(from) {
            return Some((from, Vec::new()));
        }
        let mut prev: HashMap<u32, (u32, u32)> = HashMap::new();
        let mut q = VecDeque::from([from]);
        prev.insert(from, (u32::MAX, 0));
        while let Some(v) = q.pop_front() {
            for e in self.out(v) {
                if !edge_ok(e) || !inside(e.to) || prev.contains_key(&e.to) {
                    continue;
                }
                prev.insert(e.to, (v, e.action));
                if is_target(e.to) {
                    let mut path = Vec::new();
                    let mut w = e.to;
                    while w != from {
                        let (p, a) = prev[&w];
                        path.push(a);
                        w = p;
                    }
                    path.reverse();
                    return Some((e.to, path));
                }
                q.push_back(e.to);
            }
        }
        None
    }
}

/// What makes a set of not-Q nodes a fair trap.
enum Trap {
    /// A fair, fault-free strongly connected component with at least one edge.
    Cycle(Vec<u32>),
    /// A not-Q node with no fair task enabled.
    DeadEnd(u32),
}

struct Analysis {
    trap: Option<(u32, Trap)>,
    undecided: usize,
}

fn analyse(g: &Explored, enabled: &Csr, i: usize) -> Analysis {
    let goal = |v: u32| g.labels[v as usize] >> (3 * i + 1) & 1 == 1;
    let premise = |v: u32| g.labels[v as usize] >> (3 * i) & 1 == 1;
    let exempt = |v: u32| g.labels[v as usize] >> (3 * i + 2) & 1 == 1;
    let not_goal = |v: u32| !goal(v);
    // Components of the fault-free not-Q subgraph.
    let fault_free = Csr {
        start: {
            let mut s = vec![0u32];
            let mut n = 0u32;
            for v in 0..g.n() as u32 {
                n += g.out(v).iter().filter(|e| e.task != FAULT).count() as u32;
                s.push(n);
            }
            s
        },
        targets: g
            .edges
            .iter()
            .filter(|e| e.task != FAULT)
            .map(|e| e.to)
            .collect(),
    };
    let (comp, comps) = graph::sccs(&fault_free, not_goal);
    let members = graph::members(&comp, comps);
    let mut bad = vec![false; g.n()];
    let mut traps: Vec<Trap> = Vec::new();
    let mut undecided = 0;
    let comp = &comp;
    for (c, m) in members.iter().enumerate() {
        let c = c as u32;
        let internal = |v: u32| {
            g.out(v)
                .iter()
                .filter(move |e| e.task != FAULT && comp[e.to as usize] == c)
        };
        let has_edge = m.iter().any(|&v| internal(v).next().is_some());
        let touches_cut = m.iter().any(|&v| g.cut[v as usize]);
        if has_edge {
            let taken: Vec<u32> = m
                .iter()
                .flat_map(|&v| internal(v).map(|e| e.task))
                .collect();
            // A fair component visits all its states: exempt only if every one of them is.
            if graph::unfair_tasks(m, |v| enabled.succ(v), &taken).is_empty()
                && !m.iter().all(|&v| exempt(v))
            {
                if touches_cut {
                    undecided += 1;
                } else {
                    m.iter().for_each(|&v| bad[v as usize] = true);
                    traps.push(Trap::Cycle(m.clone()));
                }
            }
        } else if enabled.succ(m[0]).is_empty() && !exempt(m[0]) {
            if touches_cut {
                undecided += 1;
            } else {
                bad[m[0] as usize] = true;
                traps.push(Trap::DeadEnd(m[0]));
            }
        }
    }
    if traps.is_empty() {
        return Analysis {
            trap: None,
            undecided,
        };
    }
    // Not-Q states that reach a trap through not-Q states (faults allowed: the stem).
    let mut reach = bad.clone();
    let mut rev: Vec<Vec<u32>> = vec![Vec::new(); g.n()];
    for v in 0..g.n() as u32 {
        if goal(v) {
            continue;
        }
        for e in g.out(v) {
            if !goal(e.to) {
                rev[e.to as usize].push(v);
            }
        }
    }
    let mut q: VecDeque<u32> = (0..g.n() as u32).filter(|&v| bad[v as usize]).collect();
    while let Some(v) = q.pop_front() {
        for &u in &rev[v as usize] {
            if !reach[u as usize] {
                reach[u as usize] = true;
                q.push_back(u);
            }
        }
    }
    // The shallowest premise state that reaches a trap (nodes are numbered in BFS order).
    let Some(start) = (0..g.n() as u32).find(|&v| premise(v) && !goal(v) && reach[v as usize])
    else {
        return Analysis {
            trap: None,
            undecided,
        };
    };
    // Which trap: the first one reachable from `start` (any trap node works).
    let (entry, _) = g
        .bfs_path(start, not_goal, |_| true, |v| bad[v as usize])
        .expect("start reaches a trap");
    let trap = traps
        .into_iter()
        .find(|t| match t {
            Trap::Cycle(m) => m.contains(&entry),
            Trap::DeadEnd(v) => *v == entry,
        })
        .expect("the entry belongs to a trap");
    Analysis {
        trap: Some((start, trap)),
        undecided,
    }
}

/// A closed walk from `entry` through the component `m` that, for every task enabled somewhere
/// in it, takes an edge of that task or passes a state where it is disabled: a weakly fair cycle.
fn fair_cycle(g: &Explored, enabled: &Csr, m: &[u32], entry: u32) -> Vec<u32> {
    let mut in_comp = HashMap::new();
    for &v in m {
        in_comp.insert(v, ());
    }
    let inside = |v: u32| in_comp.contains_key(&v);
    let fair_edge = |e: &Edge| e.task != FAULT;
    let mut all_tasks: Vec<u32> = m.iter().flat_map(|&v| enabled.succ(v).to_vec()).collect();
    all_tasks.sort_unstable();
    all_tasks.dedup();
    let mut path: Vec<u32> = Vec::new();
    let mut cur = entry;
    let mut satisfied: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let note = |v: u32, taken: Option<u32>, satisfied: &mut std::collections::HashSet<u32>| {
        let en = enabled.succ(v);
        for &t in &all_tasks {
            if en.binary_search(&t).is_err() {
                satisfied.insert(t);
            }
        }
        if let Some(t) = taken {
            satisfied.insert(t);
        }
    };
    note(cur, None, &mut satisfied);
    for &t in &all_tasks {
        if satisfied.contains(&t) {
            continue;
        }
        // Prefer a state where t is disabled, else an edge taking t.
        let disabled_at = |v: u32| enabled.succ(v).binary_search(&t).is_err();
        let target = g
            .bfs_path(cur, inside, fair_edge, disabled_at)
            .map(|(end, p)| (end, p, None))
            .or_else(|| {
                let src = |v: u32| g.out(v).iter().any(|e| e.task == t && inside(e.to));
                g.bfs_path(cur, inside, fair_edge, src).map(|(end, mut p)| {
                    let e = g
                        .out(end)
                        .iter()
                        .find(|e| e.task == t && inside(e.to))
                        .expect("an edge of t");
                    p.push(e.action);
                    (e.to, p, Some(t))
                })
            });
        let Some((end, steps, took)) = target else {
            continue;
        };
        // Note every state passed on the way.
        let mut v = cur;
        for &a in &steps {
            let e = g.out(v).iter().find(|e| e.action == a).expect("edge");
            note(e.to, Some(e.task), &mut satisfied);
            v = e.to;
        }
        if let Some(t) = took {
            satisfied.insert(t);
        }
        path.extend(steps);
        cur = end;
    }
    // Back to the entry (at least one step, so the cycle is a real loop).
    if cur == entry && path.is_empty() {
        let e = g
            .out(entry)
            .iter()
            .find(|e| e.task != FAULT && inside(e.to))
            .expect("a component with an edge");
        path.push(e.action);
        cur = e.to;
    }
    if cur != entry {
        let (_, back) = g
            .bfs_path(cur, inside, fair_edge, |v| v == entry)
            .expect("strongly connected");
        path.extend(back);
    }
    path
}

/// Replays the path of action indices `indices` from node `from`, whose state is `state`:
/// the actions taken, the state reached and its node.
///
/// The replay follows the fingerprints of the nodes the path visits, not the indices alone.
/// The state it reaches is one of the view's twins of each node, not always the one explored:
/// one that differs in what the view leaves out (a milestone that hashes to nothing, the last
/// message delivered). A twin's steps reach the same nodes, but it may list its actions in
/// another order (a step that only sets a mark is listed where the mark is unset). So each
/// step takes the recorded index if it reaches the next node's fingerprint, else the action
/// that does; a self-loop that no action of the twin takes is left out, as the twin is that
/// node already. Trusting the indices alone replayed to another node once IronKV's
/// milestones were left out of the view (`a_replay_through_a_twin_follows_fingerprints_not_
/// indices` has the smallest such model).
fn replay<M: Reduce>(
    model: &M,
    g: &Explored,
    from: u32,
    state: &M::State,
    indices: &[u32],
) -> (Vec<M::Action>, M::State, u32)
where
    M::State: Clone + Hash,
    M::Action: Clone,
{
    let mut s = state.clone();
    let mut v = from;
    let mut out = Vec::new();
    let mut actions = Vec::new();
    for &i in indices {
        let to = g
            .out(v)
            .iter()
            .find(|e| e.action == i)
            .expect("replay: an edge of the path")
            .to;
        let want = g.fingerprints[to as usize];
        actions.clear();
        model.actions(&s, &mut actions);
        let reaches = |a: &M::Action| {
            model
                .next_state(&s, a.clone())
                .filter(|n| model.within_boundary(n) && model.fingerprint(n, false) == want)
                .map(|n| (a.clone(), n))
        };
        let step = actions
            .get(i as usize)
            .and_then(reaches)
            .or_else(|| actions.iter().find_map(reaches));
        match step {
            Some((a, n)) => {
                out.push(a);
                s = n;
            }
            None => assert!(
                to == v,
                "replay: no step of the replayed state reaches the next node of the path"
            ),
        }
        v = to;
    }
    (out, s, v)
}

/// Checks `props` on `model`. `classify` says which actions are faults and which fair task each
/// other action is.
pub fn check_liveness<M>(
    model: &M,
    props: &[LivenessProperty<M>],
    classify: &dyn Fn(&M::Action) -> ActionKind,
    opts: &LivenessOptions,
) -> LiveOutcome<M::State, M::Action>
where
    M: Reduce,
    M::State: Hash + Clone + PartialEq,
    M::Action: Clone + Debug,
{
    let t0 = Instant::now();
    let g = explore(model, props, classify, opts);
    let explore_time = t0.elapsed();
    let t1 = Instant::now();
    let enabled = g.enabled();
    let mut properties = Vec::new();
    for (i, p) in props.iter().enumerate() {
        let a = analyse(&g, &enabled, i);
        let verdict = match a.trap {
            Some((start, trap)) => {
                let (init_idx, root, mut stem) = g.tree_path(start);
                let inside = |v: u32| g.labels[v as usize] >> (3 * i + 1) & 1 == 0;
                let cycle = match &trap {
                    Trap::Cycle(m) => {
                        let member = |v: u32| m.contains(&v);
                        let (entry, to_entry) = g
                            .bfs_path(start, inside, |_| true, member)
                            .expect("start reaches its trap");
                        stem.extend(to_entry);
                        fair_cycle(&g, &enabled, m, entry)
                    }
                    Trap::DeadEnd(d) => {
                        let (_, to_end) = g
                            .bfs_path(start, inside, |_| true, |v| v == *d)
                            .expect("start reaches its dead end");
                        stem.extend(to_end);
                        Vec::new()
                    }
                };
                let init = model
                    .init_states()
                    .into_iter()
                    .nth(init_idx)
                    .expect("initial state");
                let (stem_actions, loop_point, loop_node) = replay(model, &g, root, &init, &stem);
                let (cycle_actions, ..) = replay(model, &g, loop_node, &loop_point, &cycle);
                LiveVerdict::Violated(Box::new(Lasso {
                    init,
                    stem: stem_actions,
                    cycle: cycle_actions,
                }))
            }
            None if g.complete && a.undecided == 0 => LiveVerdict::Holds,
            None => {
                let mut why = Vec::new();
                if g.memory_stop.is_some() {
                    why.push("exploration stopped at the memory limit".to_string());
                } else if g.time_stop.is_some() {
                    why.push("exploration stopped at the time limit".to_string());
                } else if g.requested_stop.is_some() {
                    why.push("exploration stopped on request".to_string());
                } else if !g.complete {
                    why.push("exploration cut by --max-depth or the state limit".to_string());
                }
                if a.undecided > 0 {
                    why.push(format!(
                        "{} possible trap(s) touch states not fully expanded (boundary, depth or \
                         state limit)",
                        a.undecided
                    ));
                }
                LiveVerdict::NoCounterexample {
                    caveat: why.join("; "),
                }
            }
        };
        properties.push((p.name, verdict));
    }
    LiveOutcome {
        states: g.n(),
        edges: g.edges.len(),
        depth: g.depth,
        explore_time,
        analyse_time: t1.elapsed(),
        complete: g.complete,
        bytes_per_state: (g.bytes() + enabled.start.capacity() * 4 + enabled.targets.capacity() * 4)
            as f64
            / g.n().max(1) as f64,
        memory_stop: g.memory_stop,
        time_stop: g.time_stop,
        requested_stop: g.requested_stop,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::bounded::{check_bounded, BoundedOptions, BoundedVerdict};
    use stateright::Model;

    /// A hand-made graph as a model: states are numbers from 0, actions are (from, to, task),
    /// task 255 is a fault; the goal is a set of states.
    struct Toy {
        edges: Vec<(u8, u8, u8)>,
        goal: Vec<u8>,
    }

    impl Reduce for Toy {}

    impl Model for Toy {
        type State = u8;
        type Action = (u8, u8, u8);
        fn init_states(&self) -> Vec<u8> {
            vec![0]
        }
        fn actions(&self, s: &u8, a: &mut Vec<(u8, u8, u8)>) {
            a.extend(self.edges.iter().filter(|e| e.0 == *s).copied());
        }
        fn next_state(&self, _: &u8, a: (u8, u8, u8)) -> Option<u8> {
            Some(a.1)
        }
    }

    fn classify(a: &(u8, u8, u8)) -> ActionKind {
        if a.2 == 255 {
            ActionKind::Fault
        } else {
            ActionKind::Fair(a.2 as u64)
        }
    }

    fn in_goal(m: &Toy, s: &u8) -> bool {
        m.goal.contains(s)
    }

    fn eventually() -> Vec<LivenessProperty<Toy>> {
        vec![LivenessProperty {
            exempt: None,
            name: "eventually goal",
            premise: Premise::Init,
            goal: in_goal,
        }]
    }

    fn verdict(edges: &[(u8, u8, u8)], goal: &[u8]) -> LiveVerdict<u8, (u8, u8, u8)> {
        let m = Toy {
            edges: edges.to_vec(),
            goal: goal.to_vec(),
        };
        let mut o = check_liveness(&m, &eventually(), &classify, &LivenessOptions::default());
        o.properties.remove(0).1
    }

    fn lasso(v: LiveVerdict<u8, (u8, u8, u8)>) -> Lasso<u8, (u8, u8, u8)> {
        match v {
            LiveVerdict::Violated(l) => *l,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    /// A state whose mark, like a milestone, is left out of its hash (and read by no step
    /// but the one that sets it): `(n, marked)`.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Marked(u8, bool);

    impl Hash for Marked {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.hash(h);
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum MarkStep {
        /// Sets the mark only (enabled while unmarked).
        Mark,
        /// To `n + 1` (below `top`), keeping the mark.
        Step,
        /// Back to 0, keeping the mark.
        Back,
        /// To `n + 1` (below `top`), setting the mark.
        MarkAndStep,
    }

    /// States `(0..=top, marked)`; nothing is a goal.
    struct Marks {
        top: u8,
    }

    impl Reduce for Marks {}

    impl Model for Marks {
        type State = Marked;
        type Action = MarkStep;
        fn init_states(&self) -> Vec<Marked> {
            vec![Marked(0, false)]
        }
        fn actions(&self, s: &Marked, a: &mut Vec<MarkStep>) {
            if !s.1 {
                a.push(MarkStep::Mark);
            }
            if s.0 < self.top {
                a.push(MarkStep::Step);
            }
            if s.0 > 0 {
                a.push(MarkStep::Back);
            }
            if s.0 < self.top {
                a.push(MarkStep::MarkAndStep);
            }
        }
        fn next_state(&self, s: &Marked, a: MarkStep) -> Option<Marked> {
            Some(match a {
                MarkStep::Mark => Marked(s.0, true),
                MarkStep::Step => Marked(s.0 + 1, s.1),
                MarkStep::Back => Marked(0, s.1),
                MarkStep::MarkAndStep => Marked(s.0 + 1, true),
            })
        }
    }

    fn never(_: &Marks, _: &Marked) -> bool {
        false
    }

    fn mark_task(a: &MarkStep) -> ActionKind {
        ActionKind::Fair(*a as u64)
    }

    #[test]
    fn a_step_that_only_sets_a_mark_is_no_edge_and_no_cycle() {
        // At (0, unmarked) only the mark can be set; then nothing is enabled. Taken as a
        // self-loop of the node, the mark would make a fair cycle "repeated forever", which no
        // run can take twice: it is a dead end after one step.
        let props = [LivenessProperty::eventually("never", never)];
        let mut o = check_liveness(
            &Marks { top: 0 },
            &props,
            &mark_task,
            &LivenessOptions::default(),
        );
        assert_eq!((o.states, o.edges), (1, 0));
        let LiveVerdict::Violated(l) = o.properties.remove(0).1 else {
            panic!("a dead end is a violation");
        };
        assert!(l.cycle.is_empty(), "a dead end, not a cycle: {:?}", l.cycle);
    }

    #[test]
    fn a_replay_through_a_twin_follows_fingerprints_not_indices() {
        // Node 1 is (1, unmarked), found by `Step`; `MarkAndStep` from node 0 reaches its twin
        // (1, marked), which lists no `Mark`, so the index of `Step` at node 1 (1) is `Back`
        // at the twin, and a replay by index would go back to node 0 instead of on to node 2.
        let m = Marks { top: 2 };
        let g = explore(&m, &[], &mark_task, &LivenessOptions::default());
        let index_of = |v: u32, a: MarkStep| {
            let mut actions = Vec::new();
            m.actions(&Marked(v as u8, false), &mut actions);
            actions.iter().position(|&x| x == a).unwrap() as u32
        };
        let path = [
            index_of(0, MarkStep::MarkAndStep),
            index_of(1, MarkStep::Step),
        ];
        let (actions, end, node) = replay(&m, &g, 0, &Marked(0, false), &path);
        assert_eq!(actions, [MarkStep::MarkAndStep, MarkStep::Step]);
        assert_eq!((end, node), (Marked(2, true), 2));
    }

    /// States 10 and above are exempt (a model bound stops progress there).
    fn exempt_from_ten(_: &Toy, s: &u8) -> bool {
        *s >= 10
    }

    #[test]
    fn an_exemption_excuses_a_cycle_only_if_it_holds_throughout() {
        let run = |edges: &[(u8, u8, u8)]| {
            let m = Toy {
                edges: edges.to_vec(),
                goal: vec![9],
            };
            let props = vec![LivenessProperty::eventually("eventually goal", in_goal)
                .unless_stuck_by_bound(exempt_from_ten)];
            let mut o = check_liveness(&m, &props, &classify, &LivenessOptions::default());
            o.properties.remove(0).1
        };
        // 0 -> 10 (exempt) -> 1 <-> 2 (not exempt, never the goal): passing an exempt state
        // excuses nothing. Folding the exemption into the goal would have called this "holds".
        let v = run(&[(0, 10, 1), (10, 1, 2), (1, 2, 3), (2, 1, 4)]);
        assert!(matches!(v, LiveVerdict::Violated(_)), "{v:?}");
        // A cycle of exempt states only (10 <-> 11) is excused, and so is an exempt dead end.
        let v = run(&[(0, 10, 1), (10, 11, 2), (11, 10, 3)]);
        assert!(matches!(v, LiveVerdict::Holds), "{v:?}");
        let v = run(&[(0, 12, 1)]);
        assert!(matches!(v, LiveVerdict::Holds), "{v:?}");
        // A cycle that mixes exempt and non-exempt states is judged: 10 <-> 1.
        let v = run(&[(0, 10, 1), (10, 1, 2), (1, 10, 3)]);
        assert!(matches!(v, LiveVerdict::Violated(_)), "{v:?}");
    }

    #[test]
    fn a_dag_join_holds() {
        // 0 -> {1, 2} -> 3 = goal: state 3 is reached twice but nothing loops.
        let v = verdict(&[(0, 1, 1), (0, 2, 2), (1, 3, 3), (2, 3, 4)], &[3]);
        assert!(matches!(v, LiveVerdict::Holds), "{v:?}");
    }

    #[test]
    fn a_cycle_that_starves_an_always_enabled_task_is_unfair() {
        // 0 <-> 1, and the way to the goal (task 9) is enabled at both: weak fairness forces it.
        let v = verdict(&[(0, 1, 1), (1, 0, 2), (0, 9, 9), (1, 9, 9)], &[9]);
        assert!(matches!(v, LiveVerdict::Holds), "{v:?}");
    }

    #[test]
    fn a_fair_cycle_is_a_lasso() {
        // The way out (task 9) is enabled only at 0, so 0 -> 1 -> 0 -> ... is fair: a livelock
        // that stateright's terminal-state check cannot see (no state is terminal).
        let l = lasso(verdict(&[(0, 1, 1), (1, 0, 2), (0, 9, 9)], &[9]));
        assert!(l.stem.is_empty());
        assert_eq!(l.cycle, vec![(0, 1, 1), (1, 0, 2)]);
    }

    #[test]
    fn the_printed_cycle_is_itself_fair() {
        // Component {0, 1, 2}: task 7 is enabled at 0 and 2, disabled at 1; the cycle must pass
        // state 1 (or take 7) rather than loop 0 <-> 2.
        let edges = [
            (0, 2, 1),
            (2, 0, 2),
            (0, 1, 3),
            (1, 0, 4),
            (0, 9, 7),
            (2, 9, 7),
        ];
        let l = lasso(verdict(&edges, &[9]));
        let visits_1 = l.cycle.iter().any(|a| a.1 == 1);
        assert!(visits_1, "{:?}", l.cycle);
        assert_eq!(l.cycle.first().unwrap().0, l.cycle.last().unwrap().1);
    }

    #[test]
    fn a_dead_end_after_a_fault_is_a_lasso_with_an_empty_cycle() {
        let l = lasso(verdict(&[(0, 1, 255), (0, 9, 9)], &[9]));
        assert_eq!(l.stem, vec![(0, 1, 255)]);
        assert!(l.cycle.is_empty());
    }

    #[test]
    fn faults_never_close_a_cycle() {
        // 0 -> 1 (fair), 1 -> 0 (fault), 1 -> 9 (fair): after faults stop, 1 must go to 9.
        let v = verdict(&[(0, 1, 1), (1, 0, 255), (1, 9, 9)], &[9]);
        assert!(matches!(v, LiveVerdict::Holds), "{v:?}");
        // The same graph with the back edge fair is a livelock.
        let l = lasso(verdict(&[(0, 1, 1), (1, 0, 2), (1, 9, 9)], &[9]));
        assert_eq!(l.cycle.len(), 2);
    }

    #[test]
    fn leads_to_applies_only_where_its_premise_holds() {
        // From 0 a fair cycle 2 <-> 3 avoids the goal; it matters only if the premise holds on
        // a state that reaches it.
        let m = Toy {
            edges: vec![(0, 2, 1), (2, 3, 2), (3, 2, 3), (0, 9, 9)],
            goal: vec![9],
        };
        let p = |premise: fn(&Toy, &u8) -> bool| {
            let props = vec![LivenessProperty {
                exempt: None,
                name: "p leads to goal",
                premise: Premise::When(premise),
                goal: in_goal,
            }];
            let mut o = check_liveness(&m, &props, &classify, &LivenessOptions::default());
            o.properties.remove(0).1
        };
        // Unreachable premise, and a premise that holds only where the goal does.
        assert!(matches!(p(|_, s| *s == 5), LiveVerdict::Holds));
        assert!(matches!(p(|_, s| *s == 9), LiveVerdict::Holds));
        let l = lasso(p(|_, s| *s == 3));
        assert_eq!(l.stem, vec![(0, 2, 1), (2, 3, 2)]);
    }

    #[test]
    fn a_depth_cut_is_not_a_proof() {
        let m = Toy {
            edges: vec![(0, 1, 1), (1, 2, 2), (2, 3, 3)],
            goal: vec![3],
        };
        let opts = LivenessOptions {
            max_depth: Some(1),
            ..LivenessOptions::default()
        };
        let mut o = check_liveness(&m, &eventually(), &classify, &opts);
        assert!(!o.complete);
        let v = o.properties.remove(0).1;
        assert!(matches!(v, LiveVerdict::NoCounterexample { .. }), "{v:?}");
    }

    #[test]
    fn bounded_mode_finds_dead_ends_and_passes_progress() {
        let run = |edges: Vec<(u8, u8, u8)>| {
            let m = Toy {
                edges,
                goal: vec![9],
            };
            let opts = BoundedOptions {
                walks: 20,
                depth: 5,
                k: 50,
                ..BoundedOptions::default()
            };
            let mut o = check_bounded(&m, &eventually(), &classify, &|a, b| a == b, &opts);
            o.properties.remove(0).1
        };
        let v = run(vec![(0, 1, 255), (0, 9, 9)]);
        match v {
            BoundedVerdict::Violated(c) => {
                assert!(c.dead_end);
                assert_eq!(c.stem, vec![(0, 1, 255)]);
            }
            other => panic!("expected a violation, got {other:?}"),
        }
        // A long chain to the goal with a distracting loop: the fair scheduler gets there.
        let v = run(vec![(0, 1, 1), (1, 0, 2), (0, 9, 9), (1, 9, 9)]);
        assert!(matches!(v, BoundedVerdict::Holds { .. }), "{v:?}");
    }
}
