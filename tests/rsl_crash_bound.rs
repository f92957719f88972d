//! A bound on the crashes of a whole run (`RslModelCfg::max_total_crashes`,
//! `--max-total-crashes`): replicas count their restarts in a ghost of their storage and the
//! model's boundary adds the replicas down. Checked here by exploring small configurations
//! state by state: the count never passes the bound, the bound is reached, restarts only grow;
//! and the exemption of the `eventually` property (`view_bound_spent_for_good`) is permanent
//! along every transition, so it excuses only the terminal states the view bound stopped. A
//! real liveness bug is still caught at a terminal state.

mod common;

use std::collections::{HashSet, VecDeque};

use common::{assert_safe, check};
use ironfleet::actors::rsl::{Counter, Mutation};
use ironfleet::check::reduce::Reduce;
use ironfleet::check::run::{Mode, Verdict};
use ironfleet::liveness::rsl::{view_bound_spent_for_good, EVERY_CLIENT_ANSWERED};
use ironfleet::model::rsl::{rsl_model, RslModel, RslModelCfg};
use stateright::actor::ActorModelAction;
use stateright::Model;

type State = <RslModel<Counter> as Model>::State;

fn crash_bounded(
    replicas: usize,
    clients: usize,
    total: usize,
    views: u64,
) -> RslModelCfg<Counter> {
    let mut c = RslModelCfg::counter(replicas, clients, 1);
    c.max_crashes = 1;
    c.max_total_crashes = Some(total);
    c.max_view_changes = views;
    c
}

/// Restarts each replica counted, from its storage.
fn restarts(s: &State, replicas: usize) -> Vec<u8> {
    s.actor_storages
        .iter()
        .take(replicas)
        .map(|st| st.as_ref().map_or(0, |st| st.restarts))
        .collect()
}

fn crashes_so_far(s: &State, replicas: usize) -> usize {
    let down = s.crashed.iter().filter(|&&c| c).count();
    restarts(s, replicas)
        .iter()
        .map(|&r| usize::from(r))
        .sum::<usize>()
        + down
}

/// What an exhaustive walk of every transition inside the boundary saw.
#[derive(Default)]
struct Seen {
    states: usize,
    most_crashes: usize,
    most_restarts_of_one: u8,
    spent_for_good: usize,
}

/// Explores `cfg` transition by transition (stateright's own successors, no reduction) and
/// asserts on every transition: the crashes so far stay within the bound, no replica's restart
/// count falls, and once the view bound is spent for good it stays so.
fn explore(cfg: RslModelCfg<Counter>) -> Seen {
    let bound = cfg.max_total_crashes.unwrap();
    let n = cfg.replicas;
    let max_view = cfg.switches().max_view;
    let model = rsl_model(cfg);
    let mut seen = Seen::default();
    let mut visited = HashSet::new();
    let mut queue: VecDeque<State> = model.init_states().into();
    for s in &queue {
        visited.insert(model.fingerprint(s, true));
    }
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        seen.states += 1;
        let crashes = crashes_so_far(&s, n);
        assert!(crashes <= bound, "{crashes} crashes, bound {bound}");
        seen.most_crashes = seen.most_crashes.max(crashes);
        let before = restarts(&s, n);
        seen.most_restarts_of_one = seen
            .most_restarts_of_one
            .max(before.iter().copied().max().unwrap());
        let spent = view_bound_spent_for_good(n, max_view, &s);
        seen.spent_for_good += usize::from(spent);
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let is_crash = matches!(a, ActorModelAction::Crash(_));
            let Some(next) = model.next_state(&s, a) else {
                continue;
            };
            // The count is exact: a crash adds one, and nothing else (a restart included) adds
            // or removes any. Checked before the boundary, which relies on it.
            assert_eq!(
                crashes_so_far(&next, n),
                crashes + usize::from(is_crash),
                "the crash count after a step"
            );
            if !Model::within_boundary(&model, &next) {
                continue;
            }
            let after = restarts(&next, n);
            assert!(
                before.iter().zip(&after).all(|(b, a)| a >= b),
                "a restart count fell: {before:?} -> {after:?}"
            );
            assert!(
                !spent || view_bound_spent_for_good(n, max_view, &next),
                "the view bound was spent for good, and then not"
            );
            if visited.insert(model.fingerprint(&next, true)) {
                queue.push_back(next);
            }
        }
    }
    seen
}

#[test]
fn the_crash_bound_counts_restarts_and_replicas_down_and_is_reached() {
    // Two replicas, a view change, two crashes in all: the bound is reached, by one replica
    // twice among other runs, and the view bound is spent for good in some states.
    let seen = explore(crash_bounded(2, 1, 2, 1));
    assert_eq!(seen.most_crashes, 2);
    assert_eq!(seen.most_restarts_of_one, 2);
    assert!(seen.spent_for_good > 0, "the exemption is never exercised");
    // One crash in all: never a second.
    let seen = explore(crash_bounded(2, 1, 1, 1));
    assert_eq!(seen.most_crashes, 1);
    assert_eq!(seen.most_restarts_of_one, 1);
}

#[test]
fn one_crash_in_all_is_safe_exhaustively_and_answers_every_client_or_is_stopped_by_the_bound() {
    // Without the exemption, the leader's crash after its 1a read as a violation of the
    // `eventually` property: with no view change allowed, a restarted leader never leads the
    // view it began, and the run ends there. (Without a bound on all crashes no state is
    // terminal, since a crash is always enabled, so the property was never judged so.)
    let outcome = check(&crash_bounded(3, 1, 1, 0), Mode::Bfs, 2);
    assert!(outcome.complete);
    assert_safe(&outcome);
    assert_eq!(
        outcome.property(EVERY_CLIENT_ANSWERED).unwrap().verdict,
        Verdict::NoTerminalCounterexample
    );
    assert_eq!(outcome.unique, 1_947, "the state space changed");
}

#[test]
fn a_leader_never_suspected_after_its_crash_is_caught_at_a_terminal_state() {
    // A view change is allowed, so a crash of the first leader is not the bound's doing: a
    // replica that never suspects leaves the run stuck, and the terminal state is reported.
    let mut c = crash_bounded(3, 1, 1, 1);
    c.mutation = Some(Mutation::NeverSuspect);
    let outcome = check(&c, Mode::Dfs, 2);
    assert_eq!(
        outcome.property(EVERY_CLIENT_ANSWERED).unwrap().verdict,
        Verdict::Violated
    );
}
