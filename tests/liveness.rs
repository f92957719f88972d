//! The liveness checkers on the real models: the correct protocols pass, the liveness mutations
//! are caught (lassos and fair continuations, snapshotted), in configurations small enough for
//! the default test run.

mod common;

use ironfleet::actors::lock::LockMutation;
use ironfleet::actors::rsl::{Counter, Mutation};
use ironfleet::check::bounded::{check_bounded, BoundedOptions, BoundedVerdict};
use ironfleet::check::fairness::{actor_action_kind, same_actor_state};
use ironfleet::check::lasso::{check_liveness, LiveVerdict, LivenessOptions};
use ironfleet::check::report::{print_bounded_report, print_live_report};
use ironfleet::model::lock::{lock_liveness, lock_model, LockModelCfg};
use ironfleet::model::rsl::{rsl_liveness, rsl_model, RslModelCfg};

/// The report from its first counterexample on (the figures before it vary run to run).
fn counterexample_part(report: Vec<u8>) -> String {
    let text = String::from_utf8(report).unwrap();
    let at = text
        .find("Lasso counterexample")
        .or_else(|| text.find("Counterexample"))
        .expect("a counterexample in the report");
    text[at..].to_string()
}

/// What the lasso checker said: `Ok(states)` when the property holds (exhaustively), or the
/// counterexample part of its report.
fn rsl_lasso(cfg: RslModelCfg<Counter>) -> Result<usize, String> {
    let model = rsl_model(cfg);
    let o = check_liveness(
        &model,
        &rsl_liveness::<Counter>(),
        &actor_action_kind,
        &LivenessOptions::default(),
    );
    assert!(o.complete);
    let mut report = Vec::new();
    let violated = print_live_report(&model, &o, "(replay)", &mut report);
    match &o.properties[0].1 {
        LiveVerdict::Holds => Ok(o.states),
        LiveVerdict::NoCounterexample { caveat } => panic!("undecided: {caveat}"),
        LiveVerdict::Violated(_) => {
            assert!(violated);
            Err(counterexample_part(report))
        }
    }
}

fn rsl_bounded(cfg: RslModelCfg<Counter>, walks: u64) -> (bool, String) {
    let model = rsl_model(cfg);
    let opts = BoundedOptions {
        walks,
        depth: 30,
        ..BoundedOptions::default()
    };
    let o = check_bounded(
        &model,
        &rsl_liveness::<Counter>(),
        &actor_action_kind,
        &same_actor_state,
        &opts,
    );
    let mut report = Vec::new();
    let violated = print_bounded_report(&model, &o, opts.k, "(replay)", &mut report);
    match &o.properties[0].1 {
        BoundedVerdict::Holds { continuations } => {
            assert!(*continuations > 0);
            (false, String::new())
        }
        BoundedVerdict::Violated(_) => {
            assert!(violated);
            (true, counterexample_part(report))
        }
    }
}

#[test]
fn rsl_every_client_is_answered_exhaustively() {
    assert_eq!(rsl_lasso(common::cfg(1)), Ok(431)); // 1,785 without the view
}

#[test]
fn rsl_every_client_is_answered_with_a_crash() {
    let mut cfg = common::cfg(1);
    cfg.max_crashes = 1;
    assert_eq!(rsl_lasso(cfg), Ok(19_152)); // 95,688 without the view
}

#[test]
fn never_suspecting_the_leader_is_caught_as_a_lasso() {
    // One crash and one view change allowed: the correct protocol moves to view 1 when the
    // leader crashes; with the mutation nothing ever moves. stateright's own `eventually` check
    // passes this (the crashed replica can always restart, so no state is terminal).
    let mut cfg = common::cfg(1);
    cfg.max_crashes = 1;
    cfg.max_view_changes = 1;
    cfg.mutation = Some(Mutation::NeverSuspect);
    let trace = rsl_lasso(cfg).expect_err("the mutation must be caught");
    insta::assert_snapshot!(trace);
}

#[test]
fn leader_crash_and_view_change_stay_live_in_fair_continuations() {
    let mut cfg = common::cfg(1);
    cfg.max_crashes = 1;
    cfg.max_view_changes = 1;
    let (violated, trace) = rsl_bounded(cfg.clone(), 300);
    assert!(!violated, "{trace}");
    cfg.mutation = Some(Mutation::NeverSuspect);
    let (violated, trace) = rsl_bounded(cfg, 300);
    assert!(violated);
    insta::assert_snapshot!(trace);
}

#[test]
fn a_client_that_stops_retransmitting_is_caught_over_a_lossy_network() {
    let mut cfg = common::cfg(1);
    cfg.lossy = true;
    let (violated, trace) = rsl_bounded(cfg.clone(), 100);
    assert!(!violated, "{trace}");
    cfg.mutation = Some(Mutation::ClientNeverRetransmits);
    let (violated, trace) = rsl_bounded(cfg, 100);
    assert!(violated);
    insta::assert_snapshot!(trace);
}

fn lock_report(cfg: LockModelCfg) -> Option<String> {
    let model = lock_model(cfg);
    let o = check_liveness(
        &model,
        &lock_liveness(),
        &actor_action_kind,
        &LivenessOptions::default(),
    );
    let mut report = Vec::new();
    print_live_report(&model, &o, "(replay)", &mut report).then(|| counterexample_part(report))
}

#[test]
fn the_lock_keeps_moving() {
    assert_eq!(lock_report(LockModelCfg::default()), None);
}

#[test]
fn a_holder_that_never_grants_is_caught() {
    let trace = lock_report(LockModelCfg {
        mutation: Some(LockMutation::NeverGrant),
        ..LockModelCfg::default()
    })
    .expect("a violation");
    insta::assert_snapshot!(trace);
}

#[test]
fn a_lost_transfer_strands_the_lock() {
    let trace = lock_report(LockModelCfg {
        lossy: true,
        ..LockModelCfg::default()
    })
    .expect("a violation");
    insta::assert_snapshot!(trace);
}

#[test]
fn liveness_flag_sets_the_exit_code() {
    let bin = env!("CARGO_BIN_EXE_ironfleet");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run(&["lock", "--liveness", "check"]), Some(0));
    assert_eq!(
        run(&["lock", "--liveness", "--mutation", "never-grant", "check"]),
        Some(1)
    );
    assert_eq!(
        run(&[
            "rsl",
            "--clients",
            "1",
            "--liveness",
            "simulate",
            "--walks",
            "20"
        ]),
        Some(0)
    );
    assert_eq!(run(&["lock", "--liveness", "explore"]), Some(2));
}
