//! Helpers shared by the model-checking tests.

#![allow(dead_code)]

use ironfleet::actors::rsl::{Counter, Mutation, RslNode};
use ironfleet::check::report::format_trace;
use ironfleet::check::run::{run, ActorOutcome, Mode, Outcome, RunOptions, Verdict};
use ironfleet::invariants::rsl::RslHistory;
use ironfleet::model::rsl::{rsl_model, RslModelCfg};

/// The RSL model configuration with `clients` clients of one increment each.
pub fn cfg(clients: usize) -> RslModelCfg<Counter> {
    RslModelCfg::counter(3, clients, 1)
}

/// Runs `cfg` in `mode` with progress off.
pub fn check(
    cfg: &RslModelCfg<Counter>,
    mode: Mode,
    threads: usize,
) -> ActorOutcome<RslNode<Counter>, RslHistory<Counter>> {
    let opts = RunOptions {
        mode,
        threads,
        progress: None,
        ..RunOptions::default()
    };
    run(rsl_model(cfg.clone()), &opts, &mut std::io::sink())
}

/// Seeded random walks.
pub fn walks(seed: u64, walks: u64, depth: usize) -> Mode {
    Mode::Simulate { seed, walks, depth }
}

/// The safety properties the RSL model registers, in report order.
pub const SAFETY: [&str; 9] = [
    "agreement",
    "executed prefixes agree",
    "executed at most once",
    "linearizable",
    "refinement",
    "max_bal never decreases",
    "2b matches a 2a",
    "logs bounded",
    "truncation below quorum checkpoint",
];

/// Asserts the model registered exactly [`SAFETY`] and every one of them held.
pub fn assert_safe<S, A>(outcome: &Outcome<S, A>) {
    let registered: Vec<&str> = outcome.safety().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        registered, SAFETY,
        "the model registers exactly these safety properties"
    );
    for name in SAFETY {
        assert_eq!(
            outcome.property(name).unwrap().verdict,
            Verdict::Holds,
            "{name} must hold"
        );
    }
}

/// Asserts the `sometimes` property `name` was reached.
pub fn assert_reached<S, A>(outcome: &Outcome<S, A>, name: &str) {
    assert_eq!(
        outcome.property(name).unwrap().verdict,
        Verdict::Reached,
        "{name} must be reached"
    );
}

/// Runs `cfg` with `mutation` as seeded random walks that stop at the first violation; asserts
/// `property` is violated and returns its (shrunk) counterexample as a numbered trace.
pub fn caught(
    mut cfg: RslModelCfg<Counter>,
    mutation: Mutation,
    property: &'static str,
    seed: u64,
) -> String {
    cfg.mutation = Some(mutation);
    let opts = RunOptions {
        mode: walks(seed, 20_000, 80),
        threads: 1,
        progress: None,
        stop_on_violation: true,
        target: Some(property),
        ..RunOptions::default()
    };
    let outcome = run(rsl_model(cfg.clone()), &opts, &mut std::io::sink());
    let p = outcome.property(property).unwrap();
    assert_eq!(
        p.verdict,
        Verdict::Violated,
        "{mutation:?} must violate {property}"
    );
    format_trace(&rsl_model(cfg), p.path.as_ref().unwrap())
}
