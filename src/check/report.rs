//! Reports of every checker: figures, per-property verdicts, numbered traces, the action index
//! path and the explorer link that replay a counterexample.

use std::fmt::{Debug, Display, Write as _};
use std::hash::Hash;
use std::io::Write;

use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState};
use stateright::{Expectation, Path};

use super::bounded::{BoundedOutcome, BoundedVerdict};
use super::lasso::{LiveOutcome, LiveVerdict};
use super::run::{ActorOutcome, Verdict};

type ActorPath<A, H> = Path<
    ActorModelState<A, H>,
    ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>,
>;

/// Renders a path as numbered steps: deliveries with sender, receiver and message, timer firings,
/// drops, crashes and recoveries.
pub fn format_trace<A, C, H>(model: &ActorModel<A, C, H>, path: &ActorPath<A, H>) -> String
where
    A: Actor,
    A::Msg: Ord + Display,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    let actions: Vec<_> = path.clone().into_actions();
    format_actions(model, &actions, 1)
}

/// Renders actions as numbered steps, numbering from `first`.
pub(crate) fn format_actions<A, C, H>(
    model: &ActorModel<A, C, H>,
    actions: &[ActorModelAction<A::Msg, A::Timer, A::Random>],
    first: usize,
) -> String
where
    A: Actor,
    A::Msg: Ord + Display,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    let name = |id: stateright::actor::Id| {
        let i = usize::from(id);
        model
            .actors
            .get(i)
            .map(|a| a.name())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("actor {i}"))
    };
    let mut s = String::new();
    for (i, a) in actions.iter().enumerate() {
        let line = match a {
            ActorModelAction::Deliver { src, dst, msg } => {
                format!("{} -> {}: {}", name(*src), name(*dst), msg)
            }
            ActorModelAction::Drop(env) => {
                format!(
                    "network drops {} -> {}: {}",
                    name(env.src),
                    name(env.dst),
                    env.msg
                )
            }
            ActorModelAction::Timeout(id, t) => format!("{}: timer {:?} fires", name(*id), t),
            ActorModelAction::Crash(id) => format!("{} crashes", name(*id)),
            ActorModelAction::Recover(id) => format!("{} restarts from storage", name(*id)),
            ActorModelAction::SelectRandom { actor, random, .. } => {
                format!("{} chooses {:?}", name(*actor), random)
            }
        };
        let _ = writeln!(s, "{:>3}. {}", i + first, line);
    }
    s
}

/// Prints the end-of-run report: figures, every property's verdict, and for each violation its
/// numbered trace, the action index path and the explorer link. Returns whether a safety or
/// liveness property was violated.
pub fn print_report<A, C, H>(
    model: &ActorModel<A, C, H>,
    outcome: &ActorOutcome<A, H>,
    explorer_addr: &str,
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
        "\n{} states, {} unique, depth {}, {:.2} s, {:.0} unique states/s{}",
        outcome.states,
        outcome.unique,
        outcome.depth,
        outcome.elapsed.as_secs_f64(),
        outcome.unique_per_sec(),
        if outcome.complete {
            " (exhaustive)"
        } else {
            " (bounded: not exhaustive)"
        }
    );
    if let Some(rss) = outcome.memory_stop {
        let _ = writeln!(
            out,
            "STOPPED at the memory limit ({:.1} GiB resident): not exhaustive, and no verdict on \
             the whole space. `dfs` keeps only the visited set and its stacks; --max-memory \
             sets the limit; a smaller configuration shrinks the space.",
            rss as f64 / (1u64 << 30) as f64
        );
    }
    if let Some(after) = outcome.time_stop {
        let _ = writeln!(
            out,
            "STOPPED at the time limit (after {:.1} s): not exhaustive, and no verdict on the \
             whole space. --max-time sets the limit; a smaller configuration shrinks the space.",
            after.as_secs_f64()
        );
    }
    if let Some(after) = outcome.requested_stop {
        let _ = writeln!(
            out,
            "STOPPED on request (Ctrl-C, after {:.1} s): not exhaustive, and no verdict on the \
             whole space; what was found so far is below.",
            after.as_secs_f64()
        );
    }
    if let Some((_, stats)) = &outcome.engine {
        if let Some((unique, depth)) = stats.depth_first_from {
            let _ = writeln!(
                out,
                "breadth-first until the frontier passed half the memory limit ({unique} states, \
                 depth {depth}), depth-first from there: the same states, and counterexamples \
                 found after that minimised rather than shortest by construction"
            );
        }
    }
    if let Some((reduction, stats)) = &outcome.engine {
        let _ = writeln!(
            out,
            "reduction {}: {:.2} transitions per state, {} re-expansions, at most {} states queued, visited set {:.1} MB ({:.0} bytes/state)",
            reduction.name(),
            outcome.states as f64 / outcome.unique.max(1) as f64,
            stats.reexpansions,
            stats.widest_level,
            stats.visited_bytes as f64 / 1e6,
            stats.visited_bytes as f64 / outcome.unique.max(1) as f64,
        );
    }
    let _ = writeln!(out, "\nProperties:");
    for p in &outcome.properties {
        let kind = match p.expectation {
            Expectation::Always => "always",
            Expectation::Sometimes => "sometimes",
            Expectation::Eventually => "eventually",
        };
        let verdict = match p.verdict {
            Verdict::Holds if outcome.complete => "holds",
            Verdict::Holds => "holds on every state explored",
            Verdict::Violated => "VIOLATED",
            Verdict::Reached => "reached",
            Verdict::NotReached => "not reached",
            Verdict::NoTerminalCounterexample => {
                "no counterexample at terminal states (cycles not judged)"
            }
        };
        let _ = writeln!(out, "  {:<10} {:<42} {}", kind, p.name, verdict);
    }
    let mut violated = false;
    for p in outcome.violations() {
        violated = true;
        let path = p.path.as_ref().expect("a violation has a path");
        let _ = writeln!(out, "\nCounterexample to \"{}\":", p.name);
        let _ = write!(out, "{}", format_trace(model, path));
        print_explorer_link(&path.encode(model), explorer_addr, replay_hint, out);
    }
    violated
}

type Action<A> = ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>;

/// Prints the lasso checker's report for an actor model; returns whether a property was violated.
pub fn print_live_report<A, C, H>(
    model: &ActorModel<A, C, H>,
    outcome: &LiveOutcome<ActorModelState<A, H>, Action<A>>,
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
    if let Some(rss) = outcome.memory_stop {
        let _ = writeln!(
            out,
            "STOPPED at the memory limit ({:.1} GiB resident): the graph explored so far is \
             analysed, with no verdict on the whole space. --max-memory sets the limit; \
             --max-states cuts earlier; a smaller configuration shrinks the space.",
            rss as f64 / (1u64 << 30) as f64
        );
    }
    if let Some(after) = outcome.time_stop {
        let _ = writeln!(
            out,
            "STOPPED at the time limit (after {:.1} s): the graph explored so far is analysed, \
             with no verdict on the whole space. --max-time sets the limit; a smaller \
             configuration shrinks the space.",
            after.as_secs_f64()
        );
    }
    if let Some(after) = outcome.requested_stop {
        let _ = writeln!(
            out,
            "STOPPED on request (Ctrl-C, after {:.1} s): the graph explored so far is analysed, \
             with no verdict on the whole space.",
            after.as_secs_f64()
        );
    }
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
                "then nothing, forever: a dead end, where no delivery or timer changes the state \
                 and faults (loss, crash, restart) have stopped."
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

/// The action index path of a counterexample and how to open it in the explorer.
fn print_explorer_link(encoded: &str, explorer_addr: &str, replay_hint: &str, out: &mut dyn Write) {
    let _ = writeln!(out, "Action index path: {encoded}");
    let _ = writeln!(out, "Open it in the explorer: {replay_hint}");
    let _ = writeln!(out, "  then http://{explorer_addr}/#/steps/{encoded}");
}

fn print_link<A, C, H>(
    model: &ActorModel<A, C, H>,
    init: &ActorModelState<A, H>,
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
        print_explorer_link(&path.encode(model), "localhost:3000", replay_hint, out);
    }
}

/// Prints the bounded checker's report; returns whether a property was violated.
pub fn print_bounded_report<A, C, H>(
    model: &ActorModel<A, C, H>,
    outcome: &BoundedOutcome<ActorModelState<A, H>, Action<A>>,
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
            "then a dead end: no delivery or timer changes the state, and faults (loss, crash, \
             restart) have stopped."
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
