//! IronRSL model checks: exhaustive on small configurations, seeded random walks on larger ones
//! (view changes, crashes, other networks), and reproducibility of simulation.

mod common;

use common::{assert_reached, assert_safe, cfg, check, walks};
use ironfleet::check::run::{Mode, Verdict};
use ironfleet::model::NetworkKind;

#[test]
fn one_request_is_safe_exhaustively() {
    let outcome = check(&cfg(1), Mode::Bfs, 2);
    assert!(outcome.complete);
    assert_eq!(outcome.unique, 220, "the state space changed"); // 1,785 unreduced
    assert_safe(&outcome);
    assert_reached(&outcome, "a value is chosen");
    assert_reached(&outcome, "a reply is served from the cache");
    assert_reached(&outcome, "every client is answered");
    // No view change is allowed in this configuration: the property is left out, not reported.
    assert!(outcome.property("a view change completes").is_none());
    assert!(outcome.property("the log is truncated").is_none());
    for p in &outcome.properties {
        assert_ne!(p.verdict, Verdict::NotReached, "{}", p.name);
    }
}

#[test]
fn default_configuration_is_safe_exhaustively() {
    // The configuration `cargo run --release --example check-paxos` checks: two concurrent
    // clients; 33,183 states with sleep sets and the reduced view, 759,319 unreduced (as
    // stateright counts them).
    let outcome = check(&cfg(2), Mode::Bfs, 2);
    assert!(outcome.complete);
    assert_eq!(outcome.unique, 33_183, "the state space changed");
    assert_safe(&outcome);
    for p in &outcome.properties {
        assert_ne!(p.verdict, Verdict::NotReached, "{}", p.name);
    }
}

#[test]
fn log_truncation_and_state_transfer_are_safe_exhaustively() {
    let mut c = cfg(1);
    c.truncation = true;
    let outcome = check(&c, Mode::Dfs, 2);
    assert!(outcome.complete);
    // 567,454 unreduced (a snapshot here takes two 4-byte chunks).
    assert_eq!(outcome.unique, 21_392, "the state space changed");
    assert_safe(&outcome);
    assert_reached(&outcome, "the log is truncated");
    assert_reached(&outcome, "a state transfer is done");
}

#[test]
fn a_one_slot_log_window_still_serves_two_clients() {
    let mut c = cfg(2);
    c.truncation = true;
    c.params.max_log_length = 1;
    let outcome = check(&c, walks(1, 3_000, 120), 1);
    assert_safe(&outcome);
    assert_reached(&outcome, "every client is answered");
    assert_reached(&outcome, "the log is truncated");
}

#[test]
fn view_changes_are_safe_on_random_walks() {
    let mut c = cfg(2);
    c.max_view_changes = 2;
    let outcome = check(&c, walks(7, 3_000, 150), 1);
    assert_safe(&outcome);
    assert_reached(&outcome, "a view change completes");
    assert_reached(&outcome, "every client is answered");
}

#[test]
fn crash_and_restart_are_safe_on_random_walks() {
    let mut c = cfg(2);
    c.max_view_changes = 1;
    c.truncation = true;
    c.max_crashes = 1;
    let outcome = check(&c, walks(11, 3_000, 150), 1);
    assert_safe(&outcome);
    assert_reached(&outcome, "a view change completes");
    assert_reached(&outcome, "every client is answered");
}

#[test]
fn batching_up_to_two_requests_is_safe() {
    let mut c = cfg(2);
    c.params.max_batch_size = 2;
    let outcome = check(&c, walks(3, 2_000, 100), 1);
    assert_safe(&outcome);
    assert_reached(&outcome, "every client is answered");
}

#[test]
fn other_networks_are_safe_within_a_depth_bound() {
    for network in [NetworkKind::Ordered, NetworkKind::Unordered] {
        let mut c = cfg(1);
        c.network = network;
        let outcome = check(&c, walks(5, 1_000, 60), 1);
        assert_safe(&outcome);
        assert_reached(&outcome, "every client is answered");
    }
    let mut c = cfg(1);
    c.lossy = true;
    let outcome = check(&c, walks(5, 1_000, 60), 1);
    assert_safe(&outcome);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let mut c = cfg(2);
    c.max_view_changes = 1;
    let a = check(&c, walks(42, 300, 80), 1);
    let b = check(&c, walks(42, 300, 80), 1);
    let other = check(&c, walks(43, 300, 80), 1);
    assert_eq!((a.states, a.unique, a.depth), (b.states, b.unique, b.depth));
    assert_ne!(a.unique, other.unique, "another seed explores other states");
}

#[test]
fn a_one_session_table_refuses_expired_clients_and_stays_safe_exhaustively() {
    // Two replicas (quorum 2: the smallest cluster that votes over the network), two clients,
    // room for one session: the second client's request evicts the first client's session, and
    // a redelivery of the first client's request is refused as expired.
    let mut c = ironfleet::model::rsl::RslModelCfg::counter(2, 2, 1);
    c.params.max_client_sessions = 1;
    let outcome = check(&c, Mode::Bfs, 2);
    assert!(outcome.complete);
    assert_eq!(outcome.unique, 363, "the state space changed"); // 2,143 unreduced
    assert_safe(&outcome);
    assert_reached(&outcome, "a session expires");
    assert_reached(&outcome, "every client is answered");
}

#[test]
fn evicting_sessions_under_view_changes_is_safe_on_random_walks() {
    // Three replicas, two clients of two requests each, room for one session, a view change.
    let mut c = ironfleet::model::rsl::RslModelCfg::counter(3, 2, 2);
    c.params.max_client_sessions = 1;
    c.max_view_changes = 1;
    let outcome = check(&c, walks(7, 3_000, 150), 1);
    assert_safe(&outcome);
    assert_reached(&outcome, "a session expires");
}
