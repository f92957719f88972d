//! Liveness: the properties of each system, and the checkers that judge them.
//!
//! **What stateright concludes, and why we built more.** stateright 0.31 judges an
//! `Expectation::Eventually` property only at *terminal* states (states with no successor inside
//! the boundary). A path that loops, or that joins a state already visited, is never judged, and
//! a depth cut-off never yields a counterexample. Our replicas and clients keep periodic timers
//! armed, so almost no RSL state is terminal: stateright's verdict rules out dead ends, not
//! livelock. So:
//!
//! * [`checker`] keeps the bounded reachable graph compactly and finds fair lassos (a stem with
//!   faults, then a fault-free weakly fair cycle or dead end where the goal never holds): a proof
//!   for the bounded model, or a counterexample. [`graph`] holds its SCC and fairness algorithms.
//! * [`bounded`] is the cheaper mode for configurations too large to keep: from states on seeded
//!   random walks, faults stop and a fair scheduler must reach the goal within K steps.
//!
//! Both take the fairness model from [`actor_action_kind`] for stateright actor models: message
//! loss, crashes and restarts are faults (they stop after stabilization); delivering a message
//! and firing a timer are weakly fair tasks. The stateright `eventually` properties stay on the
//! models (their terminal-state check is cheap and sometimes enough: IronLock's bounded model has
//! terminal states).

pub mod bounded;
pub mod checker;
pub mod graph;
pub mod kv;
pub mod lock;
pub mod rsl;

use std::collections::hash_map::DefaultHasher;
use std::fmt::{Debug, Display};
use std::hash::{Hash, Hasher};
use std::io::Write;

use stateright::actor::{Actor, ActorModel, ActorModelAction};
use stateright::Path;

use self::bounded::{BoundedOutcome, BoundedVerdict};
use self::checker::{ActionKind, LiveOutcome, LiveVerdict};
use crate::runner::format_actions;

/// The fairness model of a stateright actor model: drops, crashes and restarts are faults;
/// delivering a particular message (sender, receiver, content) and firing a particular actor's
/// timer are weakly fair tasks.
pub fn actor_action_kind<M: Hash, T: Hash, R: Hash>(a: &ActorModelAction<M, T, R>) -> ActionKind {
    let mut h = DefaultHasher::new();
    match a {
        ActorModelAction::Drop(_) | ActorModelAction::Crash(_) | ActorModelAction::Recover(_) => {
            return ActionKind::Fault
        }
        ActorModelAction::Deliver { src, dst, msg } => {
            0u8.hash(&mut h);
            (src, dst, msg).hash(&mut h);
        }
        ActorModelAction::Timeout(id, t) => {
            1u8.hash(&mut h);
            (id, t).hash(&mut h);
        }
        ActorModelAction::SelectRandom { actor, key, random } => {
            2u8.hash(&mut h);
            (actor, key, random).hash(&mut h);
        }
    }
    ActionKind::Fair(h.finish())
}

/// Whether two actor-model states are the same but for the last message stateright's duplicating
/// network remembers delivering (it keeps it so that redelivering a message that changes no
/// actor still yields a new fingerprint; for liveness such a step is a stutter).
pub fn same_actor_state<A, H>(
    a: &stateright::actor::ActorModelState<A, H>,
    b: &stateright::actor::ActorModelState<A, H>,
) -> bool
where
    A: Actor,
    A::Msg: PartialEq,
    H: PartialEq,
{
    a.actor_states == b.actor_states
        && a.timers_set == b.timers_set
        && a.crashed == b.crashed
        && a.history == b.history
        && a.actor_storages == b.actor_storages
        && a.random_choices == b.random_choices
        && a.network.len() == b.network.len()
        && a.network.iter_all().all(|e| {
            b.network
                .iter_all()
                .any(|f| e.src == f.src && e.dst == f.dst && e.msg == f.msg)
        })
}

type Action<A> = ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>;

/// Prints the lasso checker's report for an actor model; returns whether a property was violated.
pub fn print_live_report<A, C, H>(
    model: &ActorModel<A, C, H>,
    outcome: &LiveOutcome<stateright::actor::ActorModelState<A, H>, Action<A>>,
    replay_hint: &str,
    out: &mut dyn Write,
) -> bool
where
    A: Actor,
    A::Msg: Ord + Display,
    A::Timer: Ord,
    H: Clone + Debug + Hash + PartialEq,
{
    let _ = writeln!(
        out,
        "\n{} states, {} edges, depth {}, explored in {:.2} s ({:.0} states/s), analysed in {:.2} s, {:.0} bytes/state{}",
        outcome.states,
        outcome.edges,
        outcome.depth,
        outcome.explore_time.as_secs_f64(),
        outcome.states_per_sec(),
        outcome.analyse_time.as_secs_f64(),
        outcome.bytes_per_state,
        if outcome.complete { " (exhaustive)" } else { " (cut: not exhaustive)" }
    );
    let _ = writeln!(out, "\nLiveness (weak fairness; faults stop eventually):");
    for (name, v) in &outcome.properties {
        let verdict = match v {
            LiveVerdict::Holds => "holds".to_string(),
            LiveVerdict::NoCounterexample { caveat } => format!("no counterexample ({caveat})"),
            LiveVerdict::Violated(_) => "VIOLATED".to_string(),
        };
        let _ = writeln!(out, "  {name:<50} {verdict}");
    }
    let mut violated = false;
    for (name, v) in &outcome.properties {
        let LiveVerdict::Violated(lasso) = v else {
            continue;
        };
        violated = true;
        let _ = writeln!(out, "\nLasso counterexample to \"{name}\":");
        let _ = writeln!(out, "stem ({} steps, faults allowed):", lasso.stem.len());
        let _ = write!(out, "{}", format_actions(model, &lasso.stem, 1));
        if lasso.cycle.is_empty() {
            let _ = writeln!(
                out,
                "then nothing: no message or timer can change the state (a dead end), forever."
            );
        } else {
            let _ = writeln!(
                out,
                "cycle ({} steps, fault-free, weakly fair), repeated forever:",
                lasso.cycle.len()
            );
            let _ = write!(
                out,
                "{}",
                format_actions(model, &lasso.cycle, lasso.stem.len() + 1)
            );
        }
        print_link(
            model,
            &lasso.init,
            &lasso.stem,
            &lasso.cycle,
            replay_hint,
            out,
        );
    }
    violated
}

fn print_link<A, C, H>(
    model: &ActorModel<A, C, H>,
    init: &stateright::actor::ActorModelState<A, H>,
    stem: &[Action<A>],
    cycle: &[Action<A>],
    replay_hint: &str,
    out: &mut dyn Write,
) where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + Debug + Hash + PartialEq,
{
    let all: Vec<Action<A>> = stem.iter().chain(cycle).cloned().collect();
    if let Some(path) = Path::from_actions(model, init.clone(), all.iter()) {
        let encoded = path.encode(model);
        let _ = writeln!(out, "Action index path: {encoded}");
        let _ = writeln!(out, "Open it in the explorer: {replay_hint}");
        let _ = writeln!(out, "  then http://localhost:3000/#/steps/{encoded}");
    }
}

/// Prints the bounded checker's report; returns whether a property was violated.
pub fn print_bounded_report<A, C, H>(
    model: &ActorModel<A, C, H>,
    outcome: &BoundedOutcome<stateright::actor::ActorModelState<A, H>, Action<A>>,
    k: usize,
    replay_hint: &str,
    out: &mut dyn Write,
) -> bool
where
    A: Actor,
    A::Msg: Ord + Display,
    A::Timer: Ord,
    H: Clone + Debug + Hash + PartialEq,
{
    let _ = writeln!(
        out,
        "\n{} steps in {:.2} s",
        outcome.steps,
        outcome.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "\nLiveness within {k} fair steps after faults stop (sampled, not a proof):"
    );
    for (name, v) in &outcome.properties {
        let verdict = match v {
            BoundedVerdict::Holds { continuations } => {
                format!("held in all {continuations} continuations")
            }
            BoundedVerdict::Violated(_) => "VIOLATED".into(),
        };
        let _ = writeln!(out, "  {name:<50} {verdict}");
    }
    let mut violated = false;
    for (name, v) in &outcome.properties {
        let BoundedVerdict::Violated(c) = v else {
            continue;
        };
        violated = true;
        let _ = writeln!(
            out,
            "\nCounterexample to \"{name}\" (walk seed {}):",
            c.seed
        );
        let _ = writeln!(out, "stem ({} steps, faults allowed):", c.stem.len());
        let _ = write!(out, "{}", format_actions(model, &c.stem, 1));
        let end = if c.dead_end {
            "then a dead end: no message or timer can change the state."
        } else {
            "and the goal still does not hold."
        };
        let _ = writeln!(
            out,
            "fair continuation ({} steps, no faults):",
            c.continuation.len()
        );
        let _ = write!(
            out,
            "{}",
            format_actions(model, &c.continuation, c.stem.len() + 1)
        );
        let _ = writeln!(out, "{end}");
        print_link(model, &c.init, &c.stem, &c.continuation, replay_hint, out);
    }
    violated
}
