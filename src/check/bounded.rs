//! The cheaper liveness mode, for configurations too large to keep whole: from states reached by
//! seeded random walks (faults included), stop the faults and let a *fair scheduler* run; does
//! the goal hold within K steps?
//!
//! The scheduler is randomized but weakly fair in a bounded sense: it picks uniformly among the
//! enabled fair tasks, except that a task continuously enabled for `patience` steps is taken at
//! once (the oldest first). Faults are never taken after the stem. Steps that lead back to the
//! same state (a timer resending what the network still holds) are stutters and are not taken;
//! a continuation that reaches a state where only stutters are possible stays there forever (a
//! dead end).
//!
//! A violation here is a concrete fault-then-fair execution in which the goal did not hold for K
//! steps (or got stuck at a dead end): strong evidence of a liveness bug, and exactly replayable
//! from the seed; but unlike the lasso checker it is not a proof that the goal is *never* reached,
//! so choose K well above the protocol's normal latency in steps. A "holds" verdict covers only
//! the states and schedules sampled.
//!
//! For `eventually Q` the continuation is started from every visited state, not only the initial
//! one: for a stable goal (once every client is answered it stays so) that is the same property,
//! and it is what catches "after a crash here, nothing ever happens again".

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::Model;

use super::lasso::ActionKind;
use crate::liveness::{LivenessProperty, Premise};

/// Options of the bounded check.
#[derive(Clone, Debug)]
pub struct BoundedOptions {
    /// Seed of walk 0 (walk i uses seed + i).
    pub seed: u64,
    /// Random walks (faults allowed) that choose the start states.
    pub walks: u64,
    /// Steps per walk.
    pub depth: usize,
    /// Steps each fair continuation may take to reach the goal.
    pub k: usize,
    /// A task enabled this many steps in a row is taken at once.
    pub patience: usize,
}

impl Default for BoundedOptions {
    fn default() -> Self {
        BoundedOptions {
            seed: 0,
            walks: 200,
            depth: 30,
            k: 300,
            patience: 8,
        }
    }
}

/// A bounded counterexample: a stem (faults allowed), then a fair continuation of `k` steps (or
/// to a dead end) in which the goal never held.
#[derive(Clone, Debug)]
pub struct BoundedCounterexample<S, A> {
    /// The initial state.
    pub init: S,
    /// Actions to the state where faults stop.
    pub stem: Vec<A>,
    /// The fair continuation.
    pub continuation: Vec<A>,
    /// Whether the continuation ended at a dead end (no fair task enabled) before `k` steps.
    pub dead_end: bool,
    /// The seed of the walk that found it.
    pub seed: u64,
}

/// The verdict on one property.
#[derive(Clone, Debug)]
pub enum BoundedVerdict<S, A> {
    /// Every continuation tried reached the goal within K steps.
    Holds {
        /// Continuations run.
        continuations: u64,
    },
    /// One did not.
    Violated(Box<BoundedCounterexample<S, A>>),
}

/// The outcome of a bounded check.
#[derive(Clone, Debug)]
pub struct BoundedOutcome<S, A> {
    /// Steps taken in all (walks and continuations).
    pub steps: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Each property's verdict.
    pub properties: Vec<(&'static str, BoundedVerdict<S, A>)>,
}

/// The fair successors of `s` that change it: (task, action, next state).
fn fair_steps<M: Model>(
    model: &M,
    s: &M::State,
    classify: &dyn Fn(&M::Action) -> ActionKind,
    same: &dyn Fn(&M::State, &M::State) -> bool,
    buf: &mut Vec<M::Action>,
) -> Vec<(u64, M::Action, M::State)>
where
    M::Action: Clone,
{
    buf.clear();
    model.actions(s, buf);
    let mut out = Vec::new();
    for a in buf.drain(..) {
        let ActionKind::Fair(task) = classify(&a) else {
            continue;
        };
        if let Some(ns) = model.next_state(s, a.clone()) {
            // A step back to the same state (a timer resending what the network still holds)
            // is a stutter: it imposes nothing and shows nothing.
            if model.within_boundary(&ns) && !same(&ns, s) {
                out.push((task, a, ns));
            }
        }
    }
    out
}

/// Runs a fair continuation from `s` for at most `k` steps. Returns `None` if the goal held, or
/// if the property's exemption held at every state of the continuation's second half (or at its
/// dead end): the finite stand-in for "exempt throughout the cycle". Otherwise returns the
/// continuation and whether it hit a dead end.
#[allow(clippy::too_many_arguments)]
fn continuation<M: Model>(
    model: &M,
    s: &M::State,
    goal: fn(&M, &M::State) -> bool,
    exempt: Option<fn(&M, &M::State) -> bool>,
    classify: &dyn Fn(&M::Action) -> ActionKind,
    same: &dyn Fn(&M::State, &M::State) -> bool,
    opts: &BoundedOptions,
    rng: &mut ChaCha8Rng,
    steps: &mut u64,
    buf: &mut Vec<M::Action>,
) -> Option<(Vec<M::Action>, bool)>
where
    M::State: Clone,
    M::Action: Clone,
{
    let mut cur = s.clone();
    let mut taken = Vec::new();
    let mut since: BTreeMap<u64, usize> = BTreeMap::new();
    let is_exempt = |s: &M::State| exempt.is_some_and(|f| f(model, s));
    // The first step from which every state so far has been exempt.
    let mut exempt_from: Option<usize> = None;
    for step in 0..opts.k {
        if goal(model, &cur) {
            return None;
        }
        if !is_exempt(&cur) {
            exempt_from = None;
        } else if exempt_from.is_none() {
            exempt_from = Some(step);
        }
        let mut succ = fair_steps(model, &cur, classify, same, buf);
        if succ.is_empty() {
            return (exempt_from.is_none()).then_some((taken, true));
        }
        since.retain(|t, _| succ.iter().any(|(u, _, _)| u == t));
        for (t, _, _) in &succ {
            since.entry(*t).or_insert(step);
        }
        let overdue = since
            .iter()
            .filter(|(_, &first)| step - first >= opts.patience)
            .min_by_key(|(_, &first)| first)
            .map(|(t, _)| *t);
        let pick = match overdue {
            Some(t) => succ.iter().position(|(u, _, _)| *u == t).expect("enabled"),
            None => rng.random_range(0..succ.len()),
        };
        let (t, a, ns) = succ.swap_remove(pick);
        since.remove(&t);
        taken.push(a);
        cur = ns;
        *steps += 1;
    }
    if goal(model, &cur) || (is_exempt(&cur) && exempt_from.is_some_and(|f| f <= opts.k / 2)) {
        None
    } else {
        Some((taken, false))
    }
}

/// Runs the bounded check of `props` on `model`. `same` says when a step changed nothing that
/// matters (for stateright actor models, [`super::fairness::same_actor_state`]: stateright's duplicating
/// network remembers the last message delivered, so redelivering an old message "changes" the
/// state without changing anything else).
pub fn check_bounded<M>(
    model: &M,
    props: &[LivenessProperty<M>],
    classify: &dyn Fn(&M::Action) -> ActionKind,
    same: &dyn Fn(&M::State, &M::State) -> bool,
    opts: &BoundedOptions,
) -> BoundedOutcome<M::State, M::Action>
where
    M: Model,
    M::State: Hash + Clone,
    M::Action: Clone + Debug,
{
    let started = Instant::now();
    let mut steps = 0u64;
    let mut found: Vec<Option<BoundedCounterexample<M::State, M::Action>>> =
        props.iter().map(|_| None).collect();
    let mut runs = vec![0u64; props.len()];
    let mut buf = Vec::new();
    let inits = model.init_states();
    for w in 0..opts.walks {
        if found.iter().all(|f| f.is_some()) {
            break;
        }
        let seed = opts.seed + w;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        if inits.is_empty() {
            break;
        }
        let init = inits[rng.random_range(0..inits.len())].clone();
        let mut cur = init.clone();
        let mut stem: Vec<M::Action> = Vec::new();
        for _ in 0..=opts.depth {
            for (i, p) in props.iter().enumerate() {
                if found[i].is_some() {
                    continue;
                }
                let applies = match p.premise {
                    Premise::Init => true,
                    Premise::When(f) => f(model, &cur),
                };
                if !applies {
                    continue;
                }
                runs[i] += 1;
                if let Some((cont, dead_end)) = continuation(
                    model, &cur, p.goal, p.exempt, classify, same, opts, &mut rng, &mut steps,
                    &mut buf,
                ) {
                    found[i] = Some(BoundedCounterexample {
                        init: init.clone(),
                        stem: stem.clone(),
                        continuation: cont,
                        dead_end,
                        seed,
                    });
                }
            }
            // Advance the walk: any action, faults included.
            buf.clear();
            model.actions(&cur, &mut buf);
            let mut next = Vec::new();
            for a in buf.drain(..) {
                if let Some(ns) = model.next_state(&cur, a.clone()) {
                    if model.within_boundary(&ns) {
                        next.push((a, ns));
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            let (a, ns) = next.swap_remove(rng.random_range(0..next.len()));
            stem.push(a);
            cur = ns;
            steps += 1;
        }
    }
    let properties = props
        .iter()
        .zip(found)
        .zip(runs)
        .map(|((p, f), n)| {
            let v = match f {
                Some(c) => BoundedVerdict::Violated(Box::new(c)),
                None => BoundedVerdict::Holds { continuations: n },
            };
            (p.name, v)
        })
        .collect();
    BoundedOutcome {
        steps,
        elapsed: started.elapsed(),
        properties,
    }
}
