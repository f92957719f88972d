//! IronLock model checks: every property holds on the real protocol, and each mutation is caught
//! with its shortest counterexample snapshotted.

use ironfleet::actors::lock::LockMutation;
use ironfleet::model::lock::{lock_model, LockModelCfg};

/// The safety properties the lock model registers, in report order.
const SAFETY: [&str; 2] = ["Locked sent by the epoch's holder", "mutual exclusion"];
use ironfleet::check::report::format_trace;
use ironfleet::check::run::{run, Mode, RunOptions, Verdict};
use ironfleet::model::NetworkKind;

fn opts() -> RunOptions {
    RunOptions {
        mode: Mode::Bfs,
        threads: 1,
        progress: None,
        ..RunOptions::default()
    }
}

#[test]
fn ring_lock_is_safe_exhaustively() {
    let mut unique = Vec::new();
    for network in [
        NetworkKind::Duplicating,
        NetworkKind::Unordered,
        NetworkKind::Ordered,
    ] {
        for nodes in [2, 3, 4] {
            let cfg = LockModelCfg {
                nodes,
                network,
                ..LockModelCfg::default()
            };
            let outcome = run(lock_model(cfg), &opts(), &mut std::io::sink());
            assert!(outcome.complete);
            unique.push(outcome.unique);
            for p in &outcome.properties {
                assert_ne!(
                    p.verdict,
                    Verdict::Violated,
                    "{} with {nodes} nodes",
                    p.name
                );
                assert_ne!(
                    p.verdict,
                    Verdict::NotReached,
                    "{} with {nodes} nodes",
                    p.name
                );
            }
        }
    }
    // Unique states per (network, nodes), in the loop's order: pinned, so a change to the
    // state space cannot go unnoticed.
    assert_eq!(
        unique,
        [14, 14, 14, 14, 14, 14, 26, 144, 182],
        "the state spaces changed"
    );
}

#[test]
fn lossy_network_keeps_the_lock_safe_but_may_lose_it() {
    let cfg = LockModelCfg {
        lossy: true,
        ..LockModelCfg::default()
    };
    let outcome = run(lock_model(cfg), &opts(), &mut std::io::sink());
    let registered: Vec<&str> = outcome.safety().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        registered, SAFETY,
        "the model registers exactly these safety properties"
    );
    for name in SAFETY {
        assert_eq!(outcome.property(name).unwrap().verdict, Verdict::Holds);
    }
    // A lost Transfer strands the lock: the first grant's loss is a terminal state where the lock
    // never moved on, and stateright's terminal-state check does report it.
    assert_eq!(
        outcome
            .property(ironfleet::liveness::lock::LOCK_MOVES)
            .unwrap()
            .verdict,
        Verdict::Violated
    );
}

fn caught(m: LockMutation) -> String {
    let cfg = LockModelCfg {
        mutation: Some(m),
        ..LockModelCfg::default()
    };
    let model = lock_model(cfg.clone());
    let outcome = run(model, &opts(), &mut std::io::sink());
    let p = outcome
        .property("mutual exclusion")
        .expect("property exists");
    assert_eq!(p.verdict, Verdict::Violated, "{m:?} must be caught");
    format_trace(&lock_model(cfg), p.path.as_ref().unwrap())
}

#[test]
fn keep_after_grant_is_caught() {
    insta::assert_snapshot!(caught(LockMutation::KeepAfterGrant));
}

#[test]
fn accept_stale_transfer_is_caught() {
    insta::assert_snapshot!(caught(LockMutation::AcceptStaleTransfer));
}
